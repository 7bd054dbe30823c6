//! Whole archives: images → lanes of coded rows → container bytes, and back.
//!
//! A lane is a run of consecutive pixel rows through the images in archive order: whole
//! digits, or bands of a page cut at tile rows. Lanes are independent, so they are coded
//! in parallel, and which thread codes which lane cannot change a single bit of the
//! output. Decoding goes in waves of lanes, each wave's images handed to a sink in order,
//! so memory is bounded by a wave whatever the image count.
#![forbid(unsafe_code)]

use crate::codec::bitsback::LANE_GROUP;
use crate::codec::lane::CodecError;
use crate::codec::model::PRECISION;
use crate::codec::template::ContextModel;
use crate::container::{self, ContainerError, ModelId};
use crate::geometry;

mod choice;
mod decode;
mod encode;
mod repeat;

pub use decode::{decode_bytes, decompress, decompress_some};
pub use encode::{compress, compress_within, encode_bytes, threads_within};

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

/// Inputs of more pixels than one lane's (625 digits) get at least two lanes, so that two
/// cores share the decoding of a single page.
pub const PIXELS_PER_LANE: u64 = 625 * 784;

/// Inputs of at least this many model tiles get at least two lanes, so that two cores
/// share them: the 400 OMNIGLOT test characters compressed at 816 images/s in one lane and
/// at 1,239–1,322 in two, and decompressed at 804 and 1,045–1,372, for 0.96 bits/image
/// more (a second lane's start-up, 109.12 against 108.16). From 256 images that start-up
/// is under 1.5%.
pub const TWO_LANES_FROM_TILES: u64 = 256;

/// The default lane count for images of `pixels` pixels in all, of which `model_tiles`
/// tiles have ink and paper, coded with up to `samples` importance samples a tile: one lane
/// per [`MODEL_TILES_PER_LANE`] (times a quarter of the samples, see below), rounded to an
/// even count, so that two cores get equal shares (three lanes on two cores take as long
/// as four), and at least two for inputs of more than one lane's pixels or at least
/// [`TWO_LANES_FROM_TILES`] model tiles. (Lanes past the per-lane pixel limit are cut
/// anyway.)
///
/// With importance samples each lane's start-up grows with them: its samples ramp up one
/// every second tile (format-spec.md §3.4), so its first 2K tiles are coded nearer the
/// −ELBO than the IWAE-K bound. On the 10,000 test digits at K = 16 the default 16 lanes
/// came to 0.56 bits/image above the IWAE-16 estimate, and 4 lanes to 0.16 (README), so
/// lanes hold K/4 times as many tiles from K = 8 on; coding that slow is not the default.
pub fn default_lanes(model_tiles: u64, pixels: u64, samples: usize) -> usize {
    let per_lane = MODEL_TILES_PER_LANE * (samples as u64 / 4).max(1);
    let two_from = TWO_LANES_FROM_TILES * (samples as u64 / 4).max(1);
    if model_tiles < two_from && pixels <= PIXELS_PER_LANE {
        return 1;
    }
    let pairs = (model_tiles + per_lane) / (2 * per_lane);
    (2 * pairs).clamp(2, container::MAX_LANES) as usize
}

/// Whether `part` ≤ num/den × `whole`, in integers wide enough for any `u64` (a size
/// that could not be estimated is `u64::MAX`).
fn at_most(part: u64, whole: u64, (num, den): (u64, u64)) -> bool {
    u128::from(part) * u128::from(den) <= u128::from(whole) * u128::from(num)
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
    #[error("compressing needs {needed} bytes of memory on one thread ({largest}, {width}×{height}, is the largest image), above the limit of {limit}")]
    CodingMemory {
        needed: u64,
        limit: u64,
        largest: String,
        width: u32,
        height: u32,
    },
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

/// The context model with each template, tried on every lane.
const COUNTING_MODELS: [ContextModel; 2] =
    [ContextModel { template: 0 }, ContextModel { template: 1 }];
