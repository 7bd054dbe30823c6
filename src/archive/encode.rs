//! Compression: images planned into lanes, each lane coded by every coder that applies,
//! the smallest kept, and the lanes written as one archive.

use super::*;
use crate::codec::bitsback::{BitsBack, Chain};
use crate::codec::frame::{self, Frame};
use crate::codec::lane::{lane_pixels, CodecError, CodedLane, LaneCodec, Strip};
use crate::codec::memory::PageMemory;
use crate::codec::mixing::PageMixing;
use crate::codec::stored::Stored;
use crate::container::{self, Entry, Lane, LaneCoder};
use crate::infer::network::Network;
use rayon::prelude::*;

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
    let several = strips.len() > 1;
    let coded = strips
        .par_iter()
        .map(|lane| {
            let mixing = || PageMixing::LATEST.encode(&[lane]);
            let counting = || COUNTING_MODELS[0].encode(&[lane]);
            // Each trial holds 4 bytes a pixel until its lane is coded. Several lanes at
            // once keep both cores busy, so each codes its trials one after the other, the
            // context model's first, whose memory page mixing's probabilities then take
            // up: a 25 Mpx page (two lanes) peaked at 474–478 MB so, against 476–503 MB
            // with the trials at once. One lane codes its trials at once, the context
            // model on the core that page mixing leaves partly free (feyn: 4% faster).
            let (mixed, counted) = if several {
                let counted = counting();
                (mixing(), counted)
            } else {
                rayon::join(mixing, counting)
            };
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
        if choice::chain_within(chains, &views, cut, 8 * mixed, CHAIN_BEATS_MIXING) {
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
            let candidates = vec![
                (PageMixing::LATEST.coder(), mixed),
                (LaneCoder::Context { template: 0 }, counted),
                (LaneCoder::Stored, &stored),
            ];
            smallest_or_frame(candidates, lane, rows)
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
    let coders = Coders::new(models, opts)?;
    let mut coded = Vec::new();
    let stretches = stretches_to_code(&shapes, images, opts.coders);
    // `--lanes N` is shared among the pixels that are coded.
    let coded_pixels: u64 = stretches
        .iter()
        .filter_map(|s| match s {
            repeat::Stretch::Coded(r) => {
                Some(entries[r.clone()].iter().map(Entry::pixels).sum::<u64>())
            }
            repeat::Stretch::Repeat { .. } => None,
        })
        .sum();
    for stretch in stretches {
        let stretch = match stretch {
            repeat::Stretch::Coded(stretch) => stretch,
            repeat::Stretch::Repeat { images, back } => {
                let lanes = repeat::repeat_lanes(&shapes[images], back);
                lanes.iter().for_each(|lane| progress(lane.rows));
                coded.extend(lanes);
                continue;
            }
        };
        for run in image_runs(&shapes[stretch.clone()]) {
            let run = stretch.start + run.start..stretch.start + run.end;
            let pixels: u64 = entries[run.clone()].iter().map(Entry::pixels).sum();
            // `--lanes N`: each run its share of N, rounded up.
            let lanes = opts
                .lanes
                .map(|n| (n as u64 * pixels).div_ceil(coded_pixels.max(1)).max(1) as usize);
            coded.extend(code_run(
                &coders,
                &shapes[run.clone()],
                &images[run],
                CompressOptions { lanes, ..opts },
                progress,
            )?);
        }
    }
    container::check_limit("lane count", coded.len() as u64, container::MAX_LANES)?;
    let (table, coded) = number_models(coded);
    Ok(container::write(&container::NewArchive {
        models: table.iter().map(|&m| models[usize::from(m)].id()).collect(),
        latent_bits: opts.latent_bits,
        entries,
        lanes: coded,
        pixel_crc,
    })?)
}

/// The input's stretches of repeated images and of images to code ([`repeat::stretches`]),
/// or one stretch of all the images: under `--lane-coder bits-back`, which measures the
/// chain alone on every image, and where repeats would make more than [`MAX_STRETCHES`]
/// stretches, each a lane at least, which could pass the archive's lane limit.
fn stretches_to_code<P: AsRef<[u8]> + Sync>(
    shapes: &[(usize, usize)],
    images: &[P],
    coders: LaneCoders,
) -> Vec<repeat::Stretch> {
    let all = || vec![repeat::Stretch::Coded(0..images.len())];
    match coders {
        LaneCoders::Smallest => {
            let stretches = repeat::stretches(shapes, images);
            if stretches.len() > MAX_STRETCHES {
                all()
            } else {
                stretches
            }
        }
        LaneCoders::BitsBack => all(),
    }
}

/// The model table lists the models lanes use, in order of first use: returns it, with
/// each chain lane's model renumbered from the caller's list to its place in the table.
fn number_models(coded: Vec<Lane<Vec<u8>>>) -> (Vec<u16>, Vec<Lane<Vec<u8>>>) {
    let mut table: Vec<u16> = Vec::new();
    let coded = coded
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
    (table, coded)
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

impl<'n> Coders<'n> {
    fn new(models: &'n [&'n Network], opts: CompressOptions) -> Result<Self, CodecError> {
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
            std::iter::successors(Some(opts.samples.max(1)), |&k| (k > 1).then_some(k / 2))
                .collect();
        let chain_sets = sample_counts
            .iter()
            .map(|&k| chains_with(k, true))
            .collect::<Result<Vec<_>, _>>()?;
        // The same chains without the page memory, for small lanes (`chain_group`); none are needed
        // where no model remembers.
        let forgetful_sets = if models.iter().any(|net| remembers(net)) {
            sample_counts
                .iter()
                .map(|&k| chains_with(k, false))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Coders {
            models,
            band,
            cut,
            sample_counts,
            chain_sets,
            forgetful_sets,
        })
    }
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

/// Stretches of repeated and coded images at most (each a lane at least, and each coded
/// one up to [`MAX_RUNS`] runs): well within the archive's 2^16 lanes.
const MAX_STRETCHES: usize = 2048;

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
                    let pixels = lane_pixels(lane);
                    let tried = opts.coders == LaneCoders::Smallest
                        && !unlearnt
                        && mixes(pixels, lane.len());
                    tried
                        .then(|| PageMixing::LATEST.encode(&[lane]))
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
                        .chain(mixed[k].as_ref().map(|c| (PageMixing::LATEST.coder(), c)))
                        .chain(std::iter::once((LaneCoder::Stored, &stored[k])));
                    match opts.coders {
                        LaneCoders::BitsBack if chain.is_some() => {
                            Ok(smallest(chain.into_iter(), rows))
                        }
                        LaneCoders::BitsBack => Ok(smallest(fallbacks, rows)),
                        LaneCoders::Smallest => smallest_or_frame(
                            chain.into_iter().chain(fallbacks).collect(),
                            lane,
                            rows,
                        ),
                    }
                })
                .collect::<Result<Vec<_>, CodecError>>()?;
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
        let pixels = lane_pixels(lane);
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
/// are also estimated on a sample (`choice::chain_within`) before page mixing alone is chosen:
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
        Record::Repeat => 1 + 10 + 10 + 10,
        Record::Frame => 1 + 10 + 10,
    }
}

/// The zstd level of a first, quick frame of each lane: 0.02 s for a megabyte of rows
/// (feyn), where level 19 takes 0.37; on a page of one sparse tile repeated, level 9 came
/// within 7% of level 19 and level 1 to six times it.
const QUICK_FRAME_LEVEL: i32 = 9;

/// A lane is also framed at zstd's strongest level when its quick frame is at most this
/// part of its best other coding. Of the 12 scans and 8 test pages none comes within 1.4.
const FRAME_NEAR: (u64, u64) = (5, 4);

/// The smallest of a lane's codings (`candidates`, every coder but Zstandard's) and of a
/// Zstandard frame of its `strips`, which is tried at [`QUICK_FRAME_LEVEL`] and, where
/// that comes within [`FRAME_NEAR`] of the others, at zstd's strongest level too.
fn smallest_or_frame(
    candidates: Vec<(LaneCoder, &CodedLane)>,
    strips: &[Strip],
    rows: u64,
) -> Result<Lane<Vec<u8>>, CodecError> {
    let best = candidates
        .iter()
        .map(|(coder, lane)| lane.payload.len() + record_bytes(*coder))
        .min()
        .expect("a stored coding always exists");
    let quick = Frame::at_level(strips, QUICK_FRAME_LEVEL)?;
    let framed = quick.payload.len() + record_bytes(LaneCoder::Zstd);
    let strongest = if at_most(framed as u64, best as u64, FRAME_NEAR) {
        Some(Frame::at_level(strips, frame::STRONGEST)?)
    } else {
        None
    };
    let frames = [Some(&quick), strongest.as_ref()]
        .into_iter()
        .flatten()
        .map(|f| (LaneCoder::Zstd, f));
    Ok(smallest(candidates.into_iter().chain(frames), rows))
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

/// [`compress`] within a memory limit: on all the current pool's threads where
/// [`encode_bytes`] fits `limit`, on as many as fit where fewer do (the archive is the
/// same on any number), and [`ArchiveError::CodingMemory`], before coding, where not
/// even one does. `None` is no limit.
pub fn compress_within<P: AsRef<[u8]> + Sync>(
    models: &[&Network],
    entries: &[Entry],
    images: &[P],
    opts: CompressOptions,
    progress: &(dyn Fn(u64) + Sync),
    limit: Option<u64>,
) -> Result<Vec<u8>, ArchiveError> {
    let code = || compress(models, entries, images, opts, progress);
    let Some(limit) = limit else {
        return code();
    };
    let shapes: Vec<(usize, usize)> = entries
        .iter()
        .map(|e| (e.width as usize, e.height as usize))
        .collect();
    let threads = rayon::current_num_threads();
    match threads_within(&shapes, limit, threads) {
        Some(fit) if fit < threads => rayon::ThreadPoolBuilder::new()
            .num_threads(fit)
            .build()
            .map_err(|e| ArchiveError::Input(format!("cannot start {fit} threads: {e}")))?
            .install(code),
        Some(_) => code(),
        None => {
            let largest = entries
                .iter()
                .max_by_key(|e| e.pixels())
                .ok_or_else(|| ArchiveError::Input("no image to compress".into()))?;
            Err(ArchiveError::CodingMemory {
                needed: encode_bytes(&shapes, 1),
                limit,
                largest: largest.name.clone(),
                width: largest.width,
                height: largest.height,
            })
        }
    }
}

/// The most threads, up to `threads`, on which compressing images of `shapes` holds at
/// most `limit` bytes ([`encode_bytes`]), or `None` where not even one thread fits.
pub fn threads_within(shapes: &[(usize, usize)], limit: u64, threads: usize) -> Option<usize> {
    (1..=threads.max(1))
        .rev()
        .find(|&t| encode_bytes(shapes, t) <= limit)
}

/// Bytes that compressing images of `shapes` on `threads` threads holds at most: the
/// images (a byte a pixel); their codings, at most half a byte a pixel (page mixing's and
/// the context model's of every lane held together, stored bits, the archive written),
/// which coin flips come near; and for each thread the tables and strip of the largest
/// coder it may run on a lane (page mixing's, about 138 MiB, with a lane's known pixels;
/// the chain's page memory; the context models' counts), twice over, since page mixing
/// predicts a lane on a second thread while the first codes. The program itself (code,
/// networks, stacks) is not counted. Known from the shapes alone, so that a memory limit
/// can choose fewer threads, or refuse, before coding.
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
    pixels + pixels / 2 + 2 * threads.max(1) as u64 * per_thread as u64
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
