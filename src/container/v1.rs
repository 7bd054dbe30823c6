//! Version 1 archives: read-only. Every archive an earlier build wrote keeps decoding;
//! nothing writes this version any more (format-spec.md, appendix A).
#![forbid(unsafe_code)]

use super::bytes::Reader;
use super::{
    check_crc, check_limit, inflate_exact, validate_entries, Archive, ContainerError, Lane,
    LaneCoder, ModelId, MAX_LANES, MAX_LATENT_BITS, MAX_NAME_LEN, SEED_WORDS,
};

pub const VERSION: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 52;
/// Bytes of one lane record.
pub const LANE_RECORD_LEN: usize = 20;
/// Bytes of the trailer: pixel CRC-32, then file CRC-32.
pub const TRAILER_LEN: usize = 8;
/// Version 1's own image limit.
pub const MAX_IMAGES: u64 = 1 << 26;
/// Most images in one version 1 lane this build decodes. Version 1 lanes decode last
/// image first, so a decoder holds a whole lane (784 bytes an image); the version 1
/// writer's default lanes never held more than 2^26 / 64 = 2^20 images.
pub const MAX_LANE_IMAGES: u32 = 1 << 20;
/// Pixel rows of a version 1 image (all are 28×28).
const ROWS_PER_IMAGE: u64 = 28;

pub(super) fn parse(bytes: &[u8]) -> Result<Archive<'_>, ContainerError> {
    let (body, pixel_crc) = check_crc(bytes, HEADER_LEN + TRAILER_LEN)?;
    let mut r = Reader::new(body, 10);
    if r.u16("flags")? != 0 {
        return Err(ContainerError::ReservedBits("header flags"));
    }
    let fingerprint: [u8; 16] = r.take(16, "fingerprint")?.try_into().expect("16");
    let (width, height) = (r.u16("width")?, r.u16("height")?);
    let image_count = u64::from(r.u32("image count")?);
    let lane_count = u64::from(r.u32("lane count")?);
    let latent_bits = r.u8("latent bits")?;
    let precision = r.u8("precision")?;
    if r.u16("reserved")? != 0 {
        return Err(ContainerError::ReservedBits("header bytes 42-43"));
    }
    let raw_len = r.u32("entry table length")? as usize;
    let names_len = r.u32("deflated entry table length")? as usize;
    check_limit("image count", image_count, MAX_IMAGES)?;
    check_limit("lane count", lane_count, MAX_LANES)?;
    if (lane_count == 0) != (image_count == 0) || lane_count > image_count.max(1) {
        return Err(ContainerError::Invalid(format!(
            "{lane_count} lanes for {image_count} images"
        )));
    }
    if (width, height) != (28, 28) {
        return Err(ContainerError::Invalid(format!(
            "version 1 images are 28×28, this archive says {width}×{height}"
        )));
    }
    if latent_bits == 0 || latent_bits > MAX_LATENT_BITS {
        return Err(ContainerError::Invalid(format!(
            "latent bucket bits {latent_bits} outside 1..={MAX_LATENT_BITS}"
        )));
    }
    // Every entry takes at least 3 bytes and at most 5 + MAX_NAME_LEN.
    let n = image_count as usize;
    if names_len > r.left() {
        return Err(ContainerError::Truncated("entry table"));
    }
    if raw_len < 3 * n || raw_len > n * (5 + MAX_NAME_LEN) {
        return Err(ContainerError::Invalid(format!(
            "entry table of {raw_len} bytes for {n} images"
        )));
    }
    if (lane_count as usize).saturating_mul(LANE_RECORD_LEN) > r.left() - names_len {
        return Err(ContainerError::Truncated("lane table"));
    }
    let entry_table = inflate_exact(r.take(names_len, "entry table")?, raw_len)?;
    let summary = validate_entries(&entry_table, VERSION, image_count, |_, _| Ok(()))?;
    let mut records = Vec::with_capacity(lane_count as usize);
    let (mut images_in_lanes, mut words_total) = (0u64, 0u64);
    for i in 0..lane_count {
        let (count, elided, words, state) = (
            r.u32("lane images")?,
            r.u32("lane seed")?,
            r.u32("lane words")?,
            r.u64("lane state")?,
        );
        check_limit("lane images", count.into(), MAX_LANE_IMAGES.into())?;
        if count == 0 || elided > SEED_WORDS {
            return Err(ContainerError::Invalid(format!(
                "lane {i} has {count} images and {elided} elided seed words"
            )));
        }
        if (elided > 0 || words > 0) && state < 1 << 32 {
            return Err(ContainerError::Invalid(format!(
                "lane {i}'s head {state:#x} is below 2^32 while words follow"
            )));
        }
        images_in_lanes += u64::from(count);
        words_total += u64::from(words);
        records.push((count, elided, words, state));
    }
    if images_in_lanes != image_count {
        return Err(ContainerError::Invalid(format!(
            "lanes hold {images_in_lanes} images, the header says {image_count}"
        )));
    }
    if words_total * 4 != r.left() as u64 {
        return Err(ContainerError::Invalid(format!(
            "lanes need {} payload bytes, the archive has {}",
            words_total * 4,
            r.left()
        )));
    }
    let lanes = records
        .into_iter()
        .map(|(count, seed_words_elided, words, state)| {
            Ok(Lane {
                coder: LaneCoder::BitsBack {
                    model: 0,
                    samples: 1,
                    reversed: true,
                    memory: false,
                },
                rows: u64::from(count) * ROWS_PER_IMAGE,
                seed_words_elided,
                state,
                payload: r.take(words as usize * 4, "payload")?,
            })
        })
        .collect::<Result<_, ContainerError>>()?;
    Ok(Archive {
        version: VERSION,
        models: vec![ModelId::V1(fingerprint)],
        image_count,
        latent_bits,
        precision,
        lanes,
        pixel_crc,
        size_range: summary.size_range,
        straightened: summary.straightened,
        entry_table,
    })
}
