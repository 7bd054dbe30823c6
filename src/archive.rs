//! Whole archives: images → lanes of coded rows → container bytes, and back.
//!
//! A lane is a run of consecutive pixel rows through the images in archive order: whole
//! digits, or bands of a page cut at tile rows. Lanes are independent, so they are coded
//! in parallel, and which thread codes which lane cannot change a single bit of the
//! output. Decoding goes in waves of lanes, each wave's images handed to a sink in order,
//! so memory is bounded by a wave whatever the image count.
#![forbid(unsafe_code)]

use crate::codec::bitsback::{BitsBack, Chain, LANE_GROUP};
use crate::codec::lane::{CodecError, CodedLane, LaneCodec, LaneToDecode, Strip};
use crate::codec::memory::PageMemory;
use crate::codec::mixing::PageMixing;
use crate::codec::model::PRECISION;
use crate::codec::stored::Stored;
use crate::codec::template::ContextModel;
use crate::container::{self, Archive, ContainerError, Entry, Lane, LaneCoder, ModelId};
use crate::geometry;
use crate::infer::network::Network;
use rayon::prelude::*;

mod choice;

/// Default discretization of each latent dimension: 2^6 buckets. Measured on the 10,000
/// test digits with the shipped model (README): 2^4 to 2^12 buckets all land within 0.17
/// bits/image; fewer buckets cost less at each lane's start and fewer CDF evaluations, while
/// 2^6 keeps a margin for models with sharper posteriors.
pub const DEFAULT_LATENT_BITS: u8 = 6;

/// Model tiles (tiles with ink and paper) per lane that the default lane count aims at:
/// 625 digits. A lane's start-up costs a few hundred bits whatever it holds (format-spec.md
/// §6), so lanes are sized by what the model codes, not by pixels: a 200-dpi text page's
/// 3.7 million pixels hold about 1,500 model tiles, which one lane per 490,000 pixels cut
/// into 8 lanes, at 3% of the archive (measured on the 8 test pages).
pub const MODEL_TILES_PER_LANE: u64 = 625;

/// Inputs of more pixels or model tiles than one lane's (625 digits) get at least two
/// lanes, so that two cores share the decoding of a single page.
pub const PIXELS_PER_LANE: u64 = 625 * 784;

/// The default lane count for images of `pixels` pixels in all, of which `model_tiles`
/// tiles have ink and paper, coded with up to `samples` importance samples a tile: one lane
/// per [`MODEL_TILES_PER_LANE`] (times a quarter of the samples, see below), rounded to an
/// even count, so that two cores get equal shares (three lanes on two cores take as long
/// as four), and at least two for inputs larger than one lane. (Lanes past the per-lane
/// pixel limit are cut anyway.)
///
/// With importance samples each lane's start-up grows with them: its samples ramp up one
/// every second tile (format-spec.md §3.4), so its first 2K tiles are coded nearer the
/// −ELBO than the IWAE-K bound. On the 10,000 test digits at K = 16 the default 16 lanes
/// came to 0.56 bits/image above the IWAE-16 estimate, and 4 lanes to 0.16 (README), so
/// lanes hold K/4 times as many tiles from K = 8 on; coding that slow is not the default.
pub fn default_lanes(model_tiles: u64, pixels: u64, samples: usize) -> usize {
    let per_lane = MODEL_TILES_PER_LANE * (samples as u64 / 4).max(1);
    if model_tiles <= per_lane && pixels <= PIXELS_PER_LANE {
        return 1;
    }
    let pairs = (model_tiles + per_lane) / (2 * per_lane);
    (2 * pairs).clamp(2, container::MAX_LANES) as usize
}

/// Least common multiple.
fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}

/// The strips of each planned lane.
fn lane_strips<'a, P: AsRef<[u8]>>(
    plan: &[Vec<Segment>],
    shapes: &[(usize, usize)],
    images: &'a [P],
) -> Vec<Vec<Strip<'a>>> {
    plan.iter()
        .map(|lane| {
            lane.iter()
                .map(|s| {
                    let w = shapes[s.image].0;
                    Strip {
                        width: w,
                        rows: s.rows,
                        pixels: &images[s.image].as_ref()
                            [s.first_row * w..(s.first_row + s.rows) * w],
                    }
                })
                .collect()
        })
        .collect()
}

/// What trying page mixing on the whole input found.
enum MixedPages {
    /// The input's lanes, coded.
    Coded(Vec<Lane<Vec<u8>>>),
    /// Page mixing learnt the input too little to code it alone, and is not worth trying
    /// lane by lane either.
    Unlearnt,
    /// Not tried: some image is small, or lanes must use the chain.
    LaneByLane,
}

/// Inputs of large images that page mixing learns well (text pages, clean or scanned)
/// are coded with page mixing alone, in as few lanes as the per-lane limit allows: each
/// lane starts learning afresh, so halving a page's lanes takes about a tenth off its size
/// (page 3 of the training documents, one lane a page against `auto`'s two to four),
/// while decoding a page on one core still runs at about 3 Mpx/s. Gives the lanes where
/// every image has at least [`MIXING_MIN_STRIP_PIXELS`] pixels and page mixing codes the
/// lanes together within [`PAGES_ARE_MIXED`] of template 0, unless, above
/// [`MIXING_OUTRUNS_CHAINS`] of it, a model's chain is estimated within
/// [`CHAIN_BEATS_MIXING`] of page mixing (then [`MixedPages::LaneByLane`]).
fn mixed_pages<P: AsRef<[u8]> + Sync>(
    shapes: &[(usize, usize)],
    images: &[P],
    cut: usize,
    chains: &[Chain],
    opts: CompressOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<MixedPages, ArchiveError> {
    if opts.coders != LaneCoders::Smallest || !shapes.iter().all(|&(w, h)| mixes(w * h, 1)) {
        return Ok(MixedPages::LaneByLane);
    }
    let total: u64 = shapes.iter().map(|&(w, h)| (w * h) as u64).sum();
    let fewest = (total.div_ceil(container::MAX_LANE_PIXELS) as usize).max(opts.lanes.unwrap_or(1));
    // Equal shares may overrun the limit by a band; then one lane more.
    let mut plan = plan_lanes(shapes, fewest, cut);
    if plan.len() > fewest {
        plan = plan_lanes(shapes, fewest + 1, cut);
    }
    if plan.len() as u64 > container::MAX_LANES {
        return Ok(MixedPages::LaneByLane);
    }
    let strips = lane_strips(&plan, shapes, images);
    let coded = strips
        .par_iter()
        .map(|lane| {
            let (mixed, counted) = rayon::join(
                || PageMixing.encode(&[lane]),
                || COUNTING_MODELS[0].encode(&[lane]),
            );
            Ok((mixed?.remove(0), counted?.remove(0)))
        })
        .collect::<Result<Vec<_>, CodecError>>()?;
    let mixed: u64 = coded.iter().map(|(m, _)| m.payload.len() as u64).sum();
    let counted: u64 = coded.iter().map(|(_, c)| c.payload.len() as u64).sum();
    if !at_most(mixed, counted, PAGES_ARE_MIXED) {
        return Ok(MixedPages::Unlearnt);
    }
    if !at_most(mixed, counted, MIXING_OUTRUNS_CHAINS) {
        let views: Vec<&[Strip]> = strips.iter().map(Vec::as_slice).collect();
        let best = choice::best_chain_bits(chains, &views, cut);
        if at_most(best, 8 * mixed, CHAIN_BEATS_MIXING) {
            return Ok(MixedPages::LaneByLane);
        }
    }
    // Each lane still takes the smallest coding, so that none expands.
    coded
        .iter()
        .zip(&strips)
        .map(|((mixed, counted), lane)| {
            let stored = Stored.encode(&[lane])?.remove(0);
            let rows: u64 = lane.iter().map(|s| s.rows as u64).sum();
            progress(rows);
            let candidates = [
                (LaneCoder::PageMixing, mixed),
                (LaneCoder::Context { template: 0 }, counted),
                (LaneCoder::Stored, &stored),
            ];
            Ok(smallest(candidates.into_iter(), rows))
        })
        .collect::<Result<Vec<_>, CodecError>>()
        .map(MixedPages::Coded)
        .map_err(ArchiveError::from)
}

/// Whether page mixing, coding a lane as `mixed`, learnt it well enough that its chain
/// need not be tried: see [`MIXING_SKIPS_CHAIN`]; `counted` is the lane under template 0.
fn mixing_skips_chain(mixed: &CodedLane, counted: &CodedLane) -> bool {
    at_most(
        mixed.payload.len() as u64,
        counted.payload.len() as u64,
        MIXING_SKIPS_CHAIN,
    )
}

/// Whether `part` ≤ num/den × `whole`, in integers.
fn at_most(part: u64, whole: u64, (num, den): (u64, u64)) -> bool {
    part * den <= whole * num
}

/// How many tiles of side `tile` have both ink and paper: the tiles a chain codes with its
/// model (format-spec.md §3.2).
pub fn model_tiles<P: AsRef<[u8]>>(shapes: &[(usize, usize)], images: &[P], tile: usize) -> u64 {
    shapes
        .iter()
        .zip(images)
        .map(|(&(w, h), img)| geometry::model_tiles(img.as_ref(), w, h, tile).count() as u64)
        .sum()
}

/// Why an archive could not be made or decoded.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive needs model {0}, which is not loaded (choose it with --model)")]
    MissingModel(ModelId),
    #[error("the archive uses {0}-bit probabilities; this build codes with {PRECISION}")]
    Precision(u8),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("decoded pixels fail their checksum (stored {stored:#010x}, decoded {decoded:#010x}): wrong model or corrupt archive")]
    PixelChecksum { stored: u32, decoded: u32 },
    #[error("{0}")]
    Input(String),
    #[error("{name}: not enough memory for its pixels ({needed} bytes)")]
    Memory { name: String, needed: u64 },
}

/// A run of rows of one image, part of a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub image: usize,
    pub first_row: usize,
    pub rows: usize,
}

/// Splits images of the given `(width, height)` into at least `lanes` runs of rows with
/// about equal pixels, each within the container's per-lane limits. Lanes break between
/// images, or inside an image at multiples of `tile` rows.
pub fn plan_lanes(shapes: &[(usize, usize)], lanes: usize, tile: usize) -> Vec<Vec<Segment>> {
    let total: u64 = shapes.iter().map(|&(w, h)| (w * h) as u64).sum();
    let lanes = lanes.max(1) as u64;
    let mut plan: Vec<Vec<Segment>> = vec![Vec::new()];
    let (mut done, mut in_lane) = (0u64, 0u64);
    for (image, &(w, h)) in shapes.iter().enumerate() {
        for first_row in (0..h).step_by(tile) {
            let rows = tile.min(h - first_row);
            let pixels = (w * rows) as u64;
            let k = plan.len() as u64;
            let current = &plan[plan.len() - 1];
            // Close the current lane once it reached its share of the pixels, or before
            // it would pass a per-lane limit.
            let share_reached = done * lanes >= k * total && k < lanes;
            let full = in_lane + pixels > container::MAX_LANE_PIXELS
                || current.len() as u64 >= container::MAX_LANE_SEGMENTS;
            if !current.is_empty() && (share_reached || full) {
                plan.push(Vec::new());
                in_lane = 0;
            }
            let lane = plan.last_mut().expect("one lane");
            match lane.last_mut() {
                Some(s) if s.image == image => s.rows += rows,
                _ => lane.push(Segment {
                    image,
                    first_row,
                    rows,
                }),
            }
            done += pixels;
            in_lane += pixels;
        }
    }
    plan
}

/// How decoding or encoding spreads lanes over `threads`: lockstep groups of
/// [`LANE_GROUP`] when there are enough lanes to keep every thread busy with one, groups
/// of 2 when there are enough for those, single lanes otherwise. Returns the lanes per
/// task.
pub fn lanes_per_task(lanes: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    if lanes >= LANE_GROUP * threads {
        LANE_GROUP
    } else if lanes >= 2 * threads {
        2
    } else {
        1
    }
}

/// Which coders a lane may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LaneCoders {
    /// The smallest of the bits-back chain, the context model and stored bits.
    #[default]
    Smallest,
    /// The bits-back chain; stored bits only where the chain cannot code a lane.
    BitsBack,
}

/// Options for [`compress`].
#[derive(Clone, Copy, Debug)]
pub struct CompressOptions {
    pub latent_bits: u8,
    /// Also try [`SMALL_INPUT_LATENT_BITS`] on inputs of at most [`SMALL_INPUT_PIXELS`],
    /// keeping the smaller archive.
    pub adapt_latent_bits: bool,
    /// Lanes; `None` for [`default_lanes`].
    pub lanes: Option<usize>,
    pub coders: LaneCoders,
    /// Importance samples per tile for bits-back lanes (1: plain bits-back).
    pub samples: usize,
}

/// Latent bits also tried on small inputs. A chain's first tile pops its latent from
/// seed bits that never come back, about d·B − KL bits: 2^3 buckets instead of 2^6 save
/// about 90 of them, which is a tenth of ten digits' size (measured: 162.4 against 172.0
/// bits/image), while on large inputs the finer grid codes each digit a little better.
pub const SMALL_INPUT_LATENT_BITS: u8 = 3;
/// Inputs of at most this many pixels (64 digits) are also tried with
/// [`SMALL_INPUT_LATENT_BITS`]: coding them twice costs little.
pub const SMALL_INPUT_PIXELS: u64 = 64 * 784;

/// CRC-32 over images' pixels in order.
pub fn pixel_crc<'a>(images: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for img in images {
        h.update(img);
    }
    h.finalize()
}

/// Compresses images (each `width × height` bytes of 0/1, as its entry says) into archive
/// bytes. Each lane is coded as a bits-back chain with the
/// model whose chain codes a sample of it smallest, by the context model and as stored
/// bits, and the smallest is kept: no lane ever takes more than its raw bits, nor much
/// more than a classical coder. Lanes are cut at rows where every model's tile rows
/// break. `progress` gets the rows just finished.
pub fn compress<P: AsRef<[u8]> + Sync>(
    models: &[&Network],
    entries: &[Entry],
    images: &[P],
    opts: CompressOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, ArchiveError> {
    if entries.len() != images.len() || images.is_empty() {
        return Err(ArchiveError::Input(format!(
            "{} entries for {} images",
            entries.len(),
            images.len()
        )));
    }
    container::check_limit("image count", images.len() as u64, container::MAX_IMAGES)?;
    if let Some((e, _)) = entries
        .iter()
        .zip(images)
        .find(|(e, img)| e.pixels() != img.as_ref().len() as u64)
    {
        return Err(ArchiveError::Input(format!(
            "{}: the pixels do not fill {}×{}",
            e.name, e.width, e.height
        )));
    }
    if models.is_empty() {
        return Err(ArchiveError::Input("no model to code with".into()));
    }
    let crc = pixel_crc(images.iter().map(AsRef::as_ref));
    let archive = compress_with_grid(models, entries, images, crc, opts, progress)?;
    let total: u64 = entries.iter().map(Entry::pixels).sum();
    if !opts.adapt_latent_bits
        || opts.latent_bits == SMALL_INPUT_LATENT_BITS
        || total > SMALL_INPUT_PIXELS
    {
        return Ok(archive);
    }
    let coarse = CompressOptions {
        latent_bits: SMALL_INPUT_LATENT_BITS,
        ..opts
    };
    let other = compress_with_grid(models, entries, images, crc, coarse, &|_| {})?;
    Ok(if other.len() < archive.len() {
        other
    } else {
        archive
    })
}

/// [`compress`] with the latent grid of `opts` only, of images as they are stored, whose
/// pixels as given have the checksum `pixel_crc`.
fn compress_with_grid<P: AsRef<[u8]> + Sync>(
    models: &[&Network],
    entries: &[Entry],
    images: &[P],
    pixel_crc: u32,
    opts: CompressOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u8>, ArchiveError> {
    let shapes: Vec<(usize, usize)> = entries
        .iter()
        .map(|e| (e.width as usize, e.height as usize))
        .collect();
    // Bands of a page are cut where every model's tile rows break, so that each model
    // codes a band with the tile grid it was trained on; model tiles are counted on the
    // largest tile, which `auto` gives pages to.
    let band = models.iter().map(|m| m.tile()).max().unwrap_or(1);
    let cut = models.iter().map(|m| m.tile()).fold(1, lcm);
    // Plain chains choose each lane's model; a lane is then coded with `opts.samples`
    // importance samples, or half as many, and so on down to plain bits-back, the first
    // whose chain can be coded.
    let chains_with = |samples: usize, memory: bool| {
        models
            .iter()
            .map(|net| {
                Ok(Chain {
                    bits_back: BitsBack::new(net, opts.latent_bits.into())?
                        .with_samples(samples)
                        .with_memory(memory && remembers(net)),
                })
            })
            .collect::<Result<Vec<_>, CodecError>>()
    };
    let sample_counts: Vec<usize> =
        std::iter::successors(Some(opts.samples.max(1)), |&k| (k > 1).then_some(k / 2)).collect();
    let chain_sets = sample_counts
        .iter()
        .map(|&k| chains_with(k, true))
        .collect::<Result<Vec<_>, _>>()?;
    // The same chains without the page memory, for small lanes (below); none are needed
    // where no model remembers.
    let forgetful_sets = if models.iter().any(|net| remembers(net)) {
        sample_counts
            .iter()
            .map(|&k| chains_with(k, false))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let coders = Coders {
        models,
        band,
        cut,
        sample_counts,
        chain_sets,
        forgetful_sets,
    };
    let total: u64 = entries.iter().map(Entry::pixels).sum();
    let mut coded = Vec::new();
    for run in image_runs(&shapes) {
        let pixels: u64 = entries[run.clone()].iter().map(Entry::pixels).sum();
        // `--lanes N`: each run its share of N, rounded up.
        let lanes = opts
            .lanes
            .map(|n| (n as u64 * pixels).div_ceil(total.max(1)).max(1) as usize);
        coded.extend(code_run(
            &coders,
            &shapes[run.clone()],
            &images[run],
            CompressOptions { lanes, ..opts },
            progress,
        )?);
    }
    container::check_limit("lane count", coded.len() as u64, container::MAX_LANES)?;
    // The model table lists the models lanes use, in order of first use.
    let mut table: Vec<u16> = Vec::new();
    let coded: Vec<Lane<Vec<u8>>> = coded
        .into_iter()
        .map(|mut lane| {
            if let LaneCoder::BitsBack { model, .. } = &mut lane.coder {
                let at = table.iter().position(|&m| m == *model).unwrap_or_else(|| {
                    table.push(*model);
                    table.len() - 1
                });
                *model = at as u16;
            }
            lane
        })
        .collect();
    Ok(container::write(&container::NewArchive {
        models: table.iter().map(|&m| models[m as usize].id()).collect(),
        latent_bits: opts.latent_bits,
        entries,
        lanes: coded,
        pixel_crc,
    })?)
}

/// What coding a run of images needs, made once for the whole input: the models, where
/// their tile rows break, and their chains at each sample count tried, with and without
/// the page memory.
struct Coders<'n> {
    models: &'n [&'n Network],
    /// The largest tile side, on which lanes count model tiles.
    band: usize,
    /// The least common multiple of the tile sides, where lanes may be cut.
    cut: usize,
    /// `opts.samples`, half as many, and so on down to 1.
    sample_counts: Vec<usize>,
    chain_sets: Vec<Vec<Chain<'n>>>,
    forgetful_sets: Vec<Vec<Chain<'n>>>,
}

/// The input's runs of consecutive images that are all large (pages and drawings, which
/// page mixing may learn) or all small (digits and glyphs, the VLAE's), each planned and
/// coded in lanes of its own: a folder of a page and 200 digits came to 10,852 bytes with
/// the page's last band and the digits in one lane under the documents model, against
/// 7,740 with the runs coded apart. More than [`MAX_RUNS`] runs are coded as one.
fn image_runs(shapes: &[(usize, usize)]) -> Vec<std::ops::Range<usize>> {
    let large = |k: usize| mixes(shapes[k].0 * shapes[k].1, 1);
    let mut runs = Vec::new();
    let mut start = 0;
    for k in 1..=shapes.len() {
        if k == shapes.len() || large(k) != large(start) {
            runs.push(start..k);
            start = k;
        }
    }
    if runs.len() > MAX_RUNS {
        return std::iter::once(0..shapes.len()).collect();
    }
    runs
}

/// Runs of images coded apart at most: each costs at least a lane.
const MAX_RUNS: usize = 16;

/// The lanes of one run of images (see [`image_runs`]), bits-back lanes naming their model
/// by its index in `coders.models`.
// Longer than 80 lines: each group of lanes tries every coder, and the smallest
// coding is chosen from all of their results at once.
fn code_run<P: AsRef<[u8]> + Sync>(
    coders: &Coders,
    shapes: &[(usize, usize)],
    images: &[P],
    opts: CompressOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Lane<Vec<u8>>>, ArchiveError> {
    let (band, cut) = (coders.band, coders.cut);
    let chains = coders.chain_sets.last().expect("plain chains");
    let unlearnt = match mixed_pages(shapes, images, cut, chains, opts, progress)? {
        MixedPages::Coded(lanes) => return Ok(lanes),
        MixedPages::Unlearnt => true,
        MixedPages::LaneByLane => false,
    };
    let lanes = opts.lanes.unwrap_or_else(|| {
        let total: u64 = shapes.iter().map(|&(w, h)| (w * h) as u64).sum();
        default_lanes(model_tiles(shapes, images, band), total, opts.samples)
    });
    let plan = plan_lanes(shapes, lanes, cut);
    container::check_limit("lane count", plan.len() as u64, container::MAX_LANES)?;
    let strips = lane_strips(&plan, shapes, images);
    let per_task = lanes_per_task(strips.len(), rayon::current_num_threads());
    let all_views: Vec<&[Strip]> = strips.iter().map(Vec::as_slice).collect();
    let pooled: Vec<Option<usize>> = plan
        .iter()
        .map(|lane| (lane.len() == 1).then(|| lane[0].image))
        .collect();
    let choices = choice::choose_models(chains, &all_views, cut, &pooled, per_task);
    let coded = strips
        .par_chunks(per_task)
        .zip(choices.par_chunks(per_task))
        .map(|(group, choice)| {
            let views: Vec<&[Strip]> = group.iter().map(Vec::as_slice).collect();
            let context = match opts.coders {
                LaneCoders::Smallest => COUNTING_MODELS
                    .iter()
                    .map(|m| Ok((m.template, m.encode(&views)?)))
                    .collect::<Result<Vec<_>, CodecError>>()?,
                LaneCoders::BitsBack => Vec::new(),
            };
            // Lanes of large images are also coded with page mixing, and where that
            // learnt the lane well the chain is not tried (see `MIXING_SKIPS_CHAIN`).
            let mixed: Vec<Option<CodedLane>> = views
                .iter()
                .map(|lane| {
                    let pixels: usize = lane.iter().map(|s| s.pixels.len()).sum();
                    let tried = opts.coders == LaneCoders::Smallest
                        && !unlearnt
                        && mixes(pixels, lane.len());
                    tried
                        .then(|| PageMixing.encode(&[lane]))
                        .transpose()
                        .map(|c| c.map(|mut c| c.remove(0)))
                })
                .collect::<Result<_, CodecError>>()?;
            let chain_wanted: Vec<bool> = (0..views.len())
                .map(|k| {
                    mixed[k]
                        .as_ref()
                        .is_none_or(|m| !mixing_skips_chain(m, &context[0].1[k]))
                })
                .collect();
            let (chained, memory) = chain_group(coders, &views, choice, &chain_wanted);
            let stored = Stored.encode(&views)?;
            let lanes = group
                .iter()
                .enumerate()
                .map(|(k, lane)| {
                    let rows: u64 = lane.iter().map(|s| s.rows as u64).sum();
                    progress(rows);
                    let chain = chained[k].as_ref().map(|(samples, c)| {
                        let m = choice[k];
                        (bits_back_coder(m as u16, *samples, memory[k]), c)
                    });
                    let fallbacks = context
                        .iter()
                        .map(|(template, c)| {
                            (
                                LaneCoder::Context {
                                    template: *template,
                                },
                                &c[k],
                            )
                        })
                        .chain(mixed[k].as_ref().map(|c| (LaneCoder::PageMixing, c)))
                        .chain(std::iter::once((LaneCoder::Stored, &stored[k])));
                    match opts.coders {
                        LaneCoders::BitsBack if chain.is_some() => {
                            smallest(chain.into_iter(), rows)
                        }
                        _ => smallest(chain.into_iter().chain(fallbacks), rows),
                    }
                })
                .collect::<Vec<_>>();
            Ok(lanes)
        })
        .collect::<Result<Vec<_>, CodecError>>()?
        .concat();
    Ok(coded)
}

/// Each lane of a group coded by its chosen model's chain (`choice`), where `wanted`, with
/// the sample count that could be coded, and whether it kept the page memory.
fn chain_group(
    coders: &Coders,
    views: &[&[Strip]],
    choice: &[usize],
    wanted: &[bool],
) -> (Vec<Option<(usize, CodedLane)>>, Vec<bool>) {
    let models = coders.models;
    let (sample_counts, chain_sets) = (&coders.sample_counts, &coders.chain_sets);
    // Each lane's chain with its model and its sample count. A chain that cannot be
    // coded (see `BitsBack::compress_lanes`) is left out. With importance samples,
    // fewer are then tried lane by lane: a lane whose first pushed tiles follow a
    // blank margin has too few bits on its stack for the samples its ramp asks for.
    let mut chained: Vec<Option<(usize, CodedLane)>> = vec![None; views.len()];
    for m in 0..models.len() {
        let mine: Vec<usize> = (0..views.len())
            .filter(|&k| choice[k] == m && wanted[k])
            .collect();
        if mine.is_empty() {
            continue;
        }
        let lanes: Vec<&[Strip]> = mine.iter().map(|&k| views[k]).collect();
        let tries: Vec<(usize, &Chain)> = sample_counts
            .iter()
            .zip(chain_sets)
            .map(|(&k, set)| (k, &set[m]))
            .collect();
        if let Ok(coded) = tries[0].1.encode(&lanes) {
            for (k, lane) in mine.into_iter().zip(coded) {
                chained[k] = Some((tries[0].0, lane));
            }
            continue;
        }
        // A lone lane has just failed the first try.
        let retries = if lanes.len() == 1 {
            &tries[1..]
        } else {
            &tries[..]
        };
        for (k, lane) in mine.into_iter().zip(lanes) {
            chained[k] = retries.iter().find_map(|&(samples, c)| {
                c.encode(&[lane])
                    .ok()
                    .map(|mut coded| (samples, coded.remove(0)))
            });
        }
    }
    // A small lane of a remembering model is also coded without the page memory,
    // and the smaller kept: there the counts learn too little to make up for the
    // fixed mixer's caution while they are still empty (format-spec.md §3.8).
    let mut memory: Vec<bool> = choice.iter().map(|&m| remembers(models[m])).collect();
    for (k, lane) in views.iter().enumerate() {
        let pixels: usize = lane.iter().map(|s| s.pixels.len()).sum();
        let Some((samples, coded)) = &chained[k] else {
            continue;
        };
        if !memory[k] || pixels > SMALL_LANE_PIXELS {
            continue;
        }
        let at = sample_counts
            .iter()
            .position(|s| s == samples)
            .expect("tried");
        if let Ok(mut plain) = coders.forgetful_sets[at][choice[k]].encode(&[lane]) {
            if plain[0].payload.len() < coded.payload.len() {
                chained[k] = Some((*samples, plain.remove(0)));
                memory[k] = false;
            }
        }
    }
    (chained, memory)
}

/// The context model with each template, tried on every lane.
const COUNTING_MODELS: [ContextModel; 2] =
    [ContextModel { template: 0 }, ContextModel { template: 1 }];

/// Lanes whose strips hold at least this many pixels on average (a 91 × 91 image) are also
/// coded with page mixing. Smaller images, digits and 28 × 28 glyphs, are the VLAE's:
/// there page mixing never won, and its tables (121 MB) would cost more time than the
/// coding. From OMNIGLOT's 105 × 105 characters up it learns across a folder's images:
/// their 400 test images take 316.3 bits each in one page-mixing lane, against 436.4 with
/// the context model and 390.5 with a chain fine-tuned on their train split (README).
const MIXING_MIN_STRIP_PIXELS: usize = 1 << 13;

/// Whether page mixing is tried on `strips` strips of `pixels` pixels in all.
fn mixes(pixels: usize, strips: usize) -> bool {
    pixels >= MIXING_MIN_STRIP_PIXELS * strips
}

/// A lane's chain is not coded where page mixing took it to at most this fraction of the
/// context model's size under template 0. Page mixing gains most over plain counts where
/// the page repeats itself, which is where the chain gains least over page mixing: on the
/// 72 lanes of page 3 of each of the 24 training documents (no test page), every lane below
/// 0.55 was coded 3–52% smaller by page mixing than by the chain, and above 0.58 the
/// chain won nearly all (the scanned pages, whose noise does not repeat). That was
/// measured with an early page mixing, which coded lanes larger than today's, so the rule
/// errs toward trying the chain. The chain is the slow coder, so skipping it is
/// most of the speed of compressing mixed inputs of pages.
const MIXING_SKIPS_CHAIN: (u64, u64) = (14, 25);

/// Inputs of large images are coded by page mixing alone where it codes them, whole, to
/// at most this fraction of the context model's size under template 0. On page 3 of each
/// of the 24 training documents (no test page), clean pages came to 0.26–0.39 of template
/// 0 and scanned ones to 0.71–0.82, and page mixing coded every one of them smaller than
/// the chains did (0.62–0.94 of the chains' archive); a grid of 3,600 training digits
/// came to 0.97. Failing inputs are planned for the chains, and page mixing is not tried
/// again lane by lane.
const PAGES_ARE_MIXED: (u64, u64) = (9, 10);

/// Where page mixing codes an input to more than this fraction of template 0, the chains
/// are also estimated on a sample (`choice::best_chain_bits`) before page mixing alone is chosen:
/// scanned pages and such, and images of small things in a grid, which page mixing learns
/// only in part (a grid of 12 × 12 test digits came to 0.90) and the digit model knows
/// well. Clean pages (0.26–0.39 on the training documents' pages 3) skip the estimate.
const MIXING_OUTRUNS_CHAINS: (u64, u64) = (1, 2);

/// An input whose best chain is estimated at most this fraction of page mixing's size is
/// coded lane by lane, where each lane takes the smaller of its chain and page mixing.
const CHAIN_BEATS_MIXING: (u64, u64) = (9, 10);

/// Lanes of at most this many pixels (a 724 × 724 image) are coded with and without the
/// page memory. Larger ones, with it: a text page's lanes hold 1 to 4 megapixels, and
/// coding them twice would halve the speed of compression for a gain that only small
/// lanes see.
const SMALL_LANE_PIXELS: usize = 1 << 19;

/// Whether lanes coded with `net` mix in the page memory (format-spec.md §3.8): models
/// with context, which code pages and drawings, where glyphs and strokes come back. Small
/// images such as digits gain nothing from it and would each pay for its tables.
fn remembers(net: &Network) -> bool {
    net.config().context
}

/// The bits-back coder with model `model`, up to `samples` importance samples a tile,
/// and the page memory or not.
fn bits_back_coder(model: u16, samples: usize, memory: bool) -> LaneCoder {
    LaneCoder::BitsBack {
        model,
        samples: samples as u32,
        memory,
    }
}

/// Bytes a lane record of each kind takes beyond its payload, at most (format-spec.md §1.2).
fn record_bytes(coder: LaneCoder) -> usize {
    use container::registry::Record;
    match coder.info().record {
        Record::Chain => 1 + 10 + 10 + 2 + 2 + 1 + 8,
        Record::Head => 1 + 10 + 10 + 8,
        Record::Bits => 1 + 10 + 10,
    }
}

/// The smallest of a lane's codings, record included; the first wins a tie.
fn smallest<'a>(
    candidates: impl Iterator<Item = (LaneCoder, &'a CodedLane)>,
    rows: u64,
) -> Lane<Vec<u8>> {
    let (coder, lane) = candidates
        .min_by_key(|(coder, lane)| lane.payload.len() + record_bytes(*coder))
        .expect("a stored coding always exists");
    Lane {
        coder,
        rows,
        seed_words_elided: lane.seed_words_elided,
        state: lane.state,
        payload: lane.payload.clone(),
    }
}

/// The strips of each lane with their images' widths, mapped onto the entries: lane k
/// covers the next `rows` rows.
fn lane_segments<'a>(
    archive: &'a Archive,
) -> impl Iterator<Item = (usize, Vec<(Segment, usize)>)> + 'a {
    let mut sizes = archive.entry_sizes().enumerate();
    // The image being split into lanes: (index, width, height, rows used).
    let mut current: Option<(usize, u32, u32, usize)> = None;
    archive.lanes.iter().enumerate().map(move |(k, lane)| {
        let mut left = lane.rows as usize;
        let mut segments = Vec::new();
        while left > 0 {
            if current.is_none_or(|(_, _, h, used)| used == h as usize) {
                let (i, (w, h)) = sizes.next().expect("lanes cover the entries' rows (parse)");
                current = Some((i, w, h, 0));
            }
            let (i, w, h, used) = current.as_mut().expect("set above");
            let rows = left.min(*h as usize - *used);
            segments.push((
                Segment {
                    image: *i,
                    first_row: *used,
                    rows,
                },
                *w as usize,
            ));
            *used += rows;
            left -= rows;
        }
        (k, segments)
    })
}

/// Bytes that compressing images of `shapes` on `threads` threads holds at most: the
/// images (a byte a pixel), and for each thread the tables and strip of the largest coder
/// it may run on a lane (page mixing's, about 118 MiB, with a lane's known pixels; the
/// chain's page memory; the context models' counts), twice over, since page mixing
/// predicts a lane on a second thread while the first codes. Known from the shapes alone,
/// so that a caller's memory limit can choose fewer threads, or refuse, before coding.
pub fn encode_bytes(shapes: &[(usize, usize)], threads: usize) -> u64 {
    let pixels: u64 = shapes.iter().map(|&(w, h)| (w * h) as u64).sum();
    let Some(width) = shapes.iter().map(|&(w, _)| w).max() else {
        return 0;
    };
    let tallest = shapes.iter().map(|&(_, h)| h).max().unwrap_or(0);
    let lane_rows = tallest.min(container::MAX_LANE_PIXELS as usize / width.max(1) + 1);
    let counts: usize = COUNTING_MODELS.iter().map(|m| 4 << m.size()).sum();
    let per_thread = PageMixing::TABLE_BYTES
        + PageMixing::strip_bytes(width, lane_rows)
        + PageMemory::TABLE_BYTES
        + counts;
    pixels + 2 * threads.max(1) as u64 * per_thread as u64
}

/// Bytes that decoding `archive` on `threads` threads holds at most, beyond what the sink
/// keeps: for the wave of lanes decoded together that needs most, their pixels and their
/// coders' tables (page mixing's, about 118 MiB a lane, and the page memory's), and the
/// image being assembled. Known from the container alone, before anything is decoded, so
/// that a caller's memory limit refuses an archive before it allocates.
pub fn decode_bytes(archive: &Archive, threads: usize) -> u64 {
    let threads = threads.max(1);
    let per_task = lanes_per_task(archive.lanes.len(), threads);
    let wave = per_task * threads;
    let mut lanes = lane_segments(archive).map(|(k, segments)| {
        let lane = &archive.lanes[k];
        let strips = segments.iter().map(|(s, width)| (*width, s.rows));
        let pixels: u64 = strips.clone().map(|(w, r)| (w * r) as u64).sum();
        let tables = match lane.coder {
            LaneCoder::PageMixing => {
                let strip = strips.map(|(w, r)| PageMixing::strip_bytes(w, r)).max();
                PageMixing::TABLE_BYTES + strip.unwrap_or(0)
            }
            LaneCoder::BitsBack { memory: true, .. } => PageMemory::TABLE_BYTES,
            LaneCoder::Context { template } => 4 << COUNTING_MODELS[usize::from(template)].size(),
            LaneCoder::BitsBack { .. } | LaneCoder::Stored => 0,
        };
        pixels + tables as u64
    });
    let mut most = 0u64;
    loop {
        let in_wave: Vec<u64> = lanes.by_ref().take(wave).collect();
        if in_wave.is_empty() {
            break;
        }
        most = most.max(in_wave.iter().sum());
    }
    let largest_image = archive.size_range.1;
    most + u64::from(largest_image.0) * u64::from(largest_image.1)
}

/// Decodes every image of an archive, in order, handing each to `sink` with its entry
/// as soon as its last row is decoded. The pixel checksum is verified incrementally;
/// when it fails, the error comes after the last image, so the sink must treat its output
/// as provisional until this returns `Ok`. `models` are the networks available; a lane
/// whose model is missing fails with [`ArchiveError::MissingModel`].
pub fn decompress<E: From<ArchiveError>>(
    models: &[&Network],
    archive: &Archive,
    sink: &mut dyn FnMut(Entry, Vec<u8>) -> Result<(), E>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), E> {
    let decoded = decode_images(models, archive, None, sink, progress)?;
    if decoded != archive.pixel_crc {
        return Err(ArchiveError::PixelChecksum {
            stored: archive.pixel_crc,
            decoded,
        }
        .into());
    }
    Ok(())
}

/// Decodes only the images whose entries `wanted` accepts, in order, decoding only the
/// lanes that hold them: one digit of 60,000 costs one lane. The pixel checksum covers
/// every image, so it cannot be checked here; the file checksum, which
/// [`container::parse`] checked, still covers every byte the images came from.
pub fn decompress_some<E: From<ArchiveError>>(
    models: &[&Network],
    archive: &Archive,
    wanted: &dyn Fn(&Entry) -> bool,
    sink: &mut dyn FnMut(Entry, Vec<u8>) -> Result<(), E>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), E> {
    let chosen: Vec<bool> = archive.entries().map(|e| wanted(&e)).collect();
    decode_images(models, archive, Some(&chosen), sink, progress).map(|_| ())
}

/// The decoding both of the above share: the lanes holding an image of `chosen` (every
/// lane where `None`), wave by wave, each chosen image handed to `sink` once whole.
/// Returns the CRC-32 of the images handed on.
fn decode_images<E: From<ArchiveError>>(
    models: &[&Network],
    archive: &Archive,
    chosen: Option<&[bool]>,
    sink: &mut dyn FnMut(Entry, Vec<u8>) -> Result<(), E>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u32, E> {
    if archive.precision as usize != PRECISION {
        return Err(ArchiveError::Precision(archive.precision).into());
    }
    let wants = |image: usize| chosen.is_none_or(|c| c[image]);
    let coders = DecodingCoders::resolve(models, archive)?;
    let threads = rayon::current_num_threads();
    let per_task = lanes_per_task(archive.lanes.len(), threads);
    let wave = per_task * threads;
    let mut crc = crc32fast::Hasher::new();
    let mut lanes =
        lane_segments(archive).filter(|(_, segs)| segs.iter().any(|(s, _)| wants(s.image)));
    let mut entries = archive.entries();
    let mut next_entry = 0; // the index `entries` yields next
    let mut pending: Option<(Entry, Vec<u8>)> = None; // the image being assembled
    loop {
        let planned: Vec<(usize, Vec<(Segment, usize)>)> = lanes.by_ref().take(wave).collect();
        if planned.is_empty() {
            break;
        }
        let decoded = decode_wave(archive, &coders, &planned, per_task)?;
        for ((_, segs), strips) in planned.iter().zip(decoded) {
            for ((seg, _), pixels) in segs.iter().zip(strips) {
                if !wants(seg.image) {
                    continue;
                }
                let (e, buf) = match pending.take() {
                    Some((e, mut buf)) => {
                        buf.extend_from_slice(&pixels);
                        (e, buf)
                    }
                    None => {
                        let e = entries
                            .nth(seg.image - next_entry)
                            .expect("segments follow the entries");
                        next_entry = seg.image + 1;
                        if pixels.len() as u64 == e.pixels() {
                            // A whole image in one strip is handed on as decoded.
                            (e, pixels)
                        } else {
                            // An image over several strips gets its whole buffer now, and
                            // fallibly: a valid archive may hold an image larger than this
                            // machine's memory, which must be a clean error, not an abort.
                            let mut buf = image_buffer(&e)?;
                            buf.extend_from_slice(&pixels);
                            (e, buf)
                        }
                    }
                };
                progress(seg.rows as u64);
                if buf.len() as u64 == e.pixels() {
                    crc.update(&buf);
                    sink(e, buf)?;
                } else {
                    pending = Some((e, buf));
                }
            }
        }
    }
    Ok(crc.finalize())
}

/// An empty buffer for the pixels of the image of `e`, reserved whole, or the memory
/// error that names it.
fn image_buffer(e: &Entry) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(e.pixels() as usize)
        .map_err(|_| ArchiveError::Memory {
            name: e.name.clone(),
            needed: e.pixels(),
        })?;
    Ok(buf)
}

/// The coder of every lane of an archive, one chain per (model, samples, memory), resolved
/// before anything is decoded.
struct DecodingCoders<'n> {
    chains: Vec<(LaneCoder, Chain<'n>)>,
}

impl<'n> DecodingCoders<'n> {
    fn resolve(models: &[&'n Network], archive: &Archive) -> Result<Self, ArchiveError> {
        let mut chains: Vec<(LaneCoder, Chain)> = Vec::new();
        for lane in &archive.lanes {
            let LaneCoder::BitsBack {
                model,
                samples,
                memory,
            } = lane.coder
            else {
                continue;
            };
            if chains.iter().any(|(c, _)| *c == lane.coder) {
                continue;
            }
            let id = archive.models[model as usize];
            let net = models
                .iter()
                .find(|n| n.is(&id))
                .ok_or(ArchiveError::MissingModel(id))?;
            let bits_back = BitsBack::new(net, archive.latent_bits.into())?
                .with_samples(samples as usize)
                .with_memory(memory);
            chains.push((lane.coder, Chain { bits_back }));
        }
        Ok(DecodingCoders { chains })
    }

    fn of(&self, coder: LaneCoder) -> &dyn LaneCodec {
        match coder {
            LaneCoder::BitsBack { .. } => {
                &self
                    .chains
                    .iter()
                    .find(|(c, _)| *c == coder)
                    .expect("resolved with the archive")
                    .1
            }
            LaneCoder::Context { template } => &COUNTING_MODELS[usize::from(template)],
            LaneCoder::PageMixing => &PageMixing,
            LaneCoder::Stored => &Stored,
        }
    }
}

/// Decodes the lanes `planned` names in parallel, `per_task` a task: each
/// lane's strips' pixels, in order.
fn decode_wave(
    archive: &Archive,
    coders: &DecodingCoders,
    planned: &[(usize, Vec<(Segment, usize)>)],
    per_task: usize,
) -> Result<Vec<Vec<Vec<u8>>>, ArchiveError> {
    let decoded = planned
        .par_chunks(per_task)
        .map(|chunk| {
            let task: Vec<usize> = chunk.iter().map(|(k, _)| *k).collect();
            let inputs: Vec<LaneToDecode> = chunk
                .iter()
                .map(|(k, segs)| {
                    let lane = &archive.lanes[*k];
                    LaneToDecode {
                        seed_words_elided: lane.seed_words_elided,
                        state: lane.state,
                        payload: lane.payload,
                        shapes: segs.iter().map(|(s, width)| (*width, s.rows)).collect(),
                    }
                })
                .collect();
            // Lanes of one task share a coder kind, and are numbered on from the first,
            // when they can; otherwise each goes alone.
            let coder = archive.lanes[task[0]].coder;
            let consecutive = task.windows(2).all(|w| w[1] == w[0] + 1);
            if consecutive && task.iter().all(|&k| archive.lanes[k].coder == coder) {
                coders.of(coder).decode(&inputs, task[0])
            } else {
                let mut out = Vec::with_capacity(task.len());
                for (input, &k) in inputs.iter().zip(&task) {
                    out.extend(
                        coders
                            .of(archive.lanes[k].coder)
                            .decode(std::slice::from_ref(input), k)?,
                    );
                }
                Ok(out)
            }
        })
        .collect::<Result<Vec<_>, CodecError>>()?;
    Ok(decoded.into_iter().flatten().collect())
}
