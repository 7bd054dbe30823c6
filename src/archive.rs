//! Whole archives: named images → lanes of bits-back chains → [`Archive`], and back.
//!
//! Lanes are independent, so they are coded in parallel; which thread codes which lane
//! cannot change a single bit of the output.

use crate::codec::bitsback::{BitsBack, CodecError, LANE_GROUP};
use crate::codec::model::PRECISION;
use crate::container::{Archive, Entry, Header};
use crate::geometry::{HEIGHT, PIXELS, WIDTH};
use crate::infer::network::Network;
use crate::infer::weights::fingerprint_hex;
use rayon::prelude::*;

/// Default discretization of each latent dimension: 2^6 buckets. Measured on the 10,000
/// test digits with the shipped model (README): 2^4 to 2^12 buckets all land within 0.17
/// bits/image; fewer buckets cost less at each lane's start and fewer CDF evaluations, while
/// 2^6 keeps a margin for models with sharper posteriors.
pub const DEFAULT_LATENT_BITS: u8 = 6;

/// Images per lane the default lane count aims at: each lane costs about 450 bits of
/// start-up and bookkeeping, so at 1,000 images a lane that is under half a bit an image.
pub const IMAGES_PER_LANE: usize = 1000;
/// Most lanes chosen by default.
pub const MAX_DEFAULT_LANES: usize = 64;

/// The default lane count for `n` images: one per [`IMAGES_PER_LANE`], rounded down to
/// whole groups of [`LANE_GROUP`] lanes once there are that many, so that every group
/// codes in full lockstep.
pub fn default_lanes(n: usize) -> usize {
    let lanes = (n / IMAGES_PER_LANE).clamp(1, MAX_DEFAULT_LANES);
    if lanes >= LANE_GROUP {
        lanes - lanes % LANE_GROUP
    } else {
        lanes
    }
}

/// Why an archive could not be made or decoded.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "the archive was made with a different model (fingerprint {archive}, this model {model})"
    )]
    WrongModel { archive: String, model: String },
    #[error("the archive holds {w}×{h} images; this model codes {WIDTH}×{HEIGHT}")]
    Geometry { w: u16, h: u16 },
    #[error("the archive uses {0}-bit probabilities; this build codes with {PRECISION}")]
    Precision(u8),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("decoded pixels fail their checksum (stored {stored:#010x}, decoded {decoded:#010x}): wrong model or corrupt archive")]
    PixelChecksum { stored: u32, decoded: u32 },
    #[error("{0}")]
    Input(String),
}

/// CRC-32 over all images' pixels in order.
pub fn pixel_crc<'a>(images: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for img in images {
        h.update(img);
    }
    h.finalize()
}

/// Splits `n` images into `lanes` runs of consecutive images, sizes differing by at most 1.
pub fn lane_sizes(n: usize, lanes: usize) -> Vec<usize> {
    (0..lanes)
        .map(|k| (k + 1) * n / lanes - k * n / lanes)
        .collect()
}

/// Compresses images (each `PIXELS` bytes of 0/1) with their entries into an archive.
/// `progress` is called with the number of images just finished.
pub fn compress(
    net: &Network,
    entries: Vec<Entry>,
    images: &[Vec<u8>],
    latent_bits: u8,
    lanes: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Archive, ArchiveError> {
    if entries.len() != images.len() || images.is_empty() {
        return Err(ArchiveError::Input(format!(
            "{} entries for {} images",
            entries.len(),
            images.len()
        )));
    }
    if let Some(i) = images.iter().position(|img| img.len() != PIXELS) {
        return Err(ArchiveError::Input(format!(
            "{}: image is not {WIDTH}×{HEIGHT}",
            entries[i].name
        )));
    }
    let bb = BitsBack::new(net, latent_bits.into());
    let mut rest = images;
    let runs: Vec<&[Vec<u8>]> = lane_sizes(images.len(), lanes.clamp(1, images.len()))
        .into_iter()
        .map(|size| {
            let (run, tail) = rest.split_at(size);
            rest = tail;
            run
        })
        .collect();
    let lanes = runs
        .par_chunks(LANE_GROUP)
        .map(|group| {
            let lanes = bb.compress_lanes(group)?;
            progress(group.iter().map(|r| r.len() as u64).sum());
            Ok(lanes)
        })
        .collect::<Result<Vec<_>, CodecError>>()?
        .concat();
    Ok(Archive {
        header: Header {
            fingerprint: net.fingerprint(),
            width: WIDTH as u16,
            height: HEIGHT as u16,
            image_count: images.len() as u32,
            latent_bits,
            precision: PRECISION as u8,
        },
        entries,
        lanes,
        pixel_crc: pixel_crc(images.iter().map(|v| v.as_slice())),
    })
}

/// Decodes every image of an archive, in order, and verifies the pixel checksum.
pub fn decompress(
    net: &Network,
    archive: &Archive,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let h = &archive.header;
    if h.fingerprint != net.fingerprint() {
        return Err(ArchiveError::WrongModel {
            archive: fingerprint_hex(&h.fingerprint),
            model: fingerprint_hex(&net.fingerprint()),
        });
    }
    if (h.width as usize, h.height as usize) != (WIDTH, HEIGHT) {
        return Err(ArchiveError::Geometry {
            w: h.width,
            h: h.height,
        });
    }
    if h.precision as usize != PRECISION {
        return Err(ArchiveError::Precision(h.precision));
    }
    let bb = BitsBack::new(net, h.latent_bits.into());
    let per_group = archive
        .lanes
        .par_chunks(LANE_GROUP)
        .enumerate()
        .map(|(i, group)| {
            let images = bb.decompress_lanes(group, i * LANE_GROUP)?;
            progress(group.iter().map(|l| u64::from(l.image_count)).sum());
            Ok(images)
        })
        .collect::<Result<Vec<_>, CodecError>>()?;
    let images: Vec<Vec<u8>> = per_group.into_iter().flatten().flatten().collect();
    let decoded = pixel_crc(images.iter().map(|v| v.as_slice()));
    if decoded != archive.pixel_crc {
        return Err(ArchiveError::PixelChecksum {
            stored: archive.pixel_crc,
            decoded,
        });
    }
    Ok(images)
}
