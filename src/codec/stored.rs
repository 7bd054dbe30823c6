//! The stored lane coder (format-spec.md §1.2): the last resort, so that no lane is ever
//! larger than its pixels' bits.
#![forbid(unsafe_code)]

use super::lane::{decode_each, CodecError, CodedLane, LaneCodec, LaneToDecode, Strip};

/// The last resort: the pixels' bits as they are, MSB first, with no padding between
/// rows or strips and zero bits to the lane's last whole byte.
pub struct Stored;

/// The bytes a stored lane of `pixels` pixels takes.
pub fn stored_len(pixels: u64) -> u64 {
    pixels.div_ceil(8)
}

impl LaneCodec for Stored {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError> {
        Ok(lanes
            .iter()
            .map(|strips| {
                let bits = strips.iter().flat_map(|s| s.pixels.iter().copied());
                let mut payload = Vec::new();
                let (mut byte, mut n) = (0u8, 0);
                for b in bits {
                    byte |= b << (7 - n);
                    n += 1;
                    if n == 8 {
                        payload.push(byte);
                        (byte, n) = (0, 0);
                    }
                }
                if n > 0 {
                    payload.push(byte);
                }
                CodedLane {
                    seed_words_elided: 0,
                    state: 0,
                    payload,
                }
            })
            .collect())
    }

    fn decode(
        &self,
        lanes: &[LaneToDecode],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        decode_each(lanes, first_index, decode_stored)
    }
}

/// One stored lane's strips, lane number `index`.
fn decode_stored(lane: &LaneToDecode, index: usize) -> Result<Vec<Vec<u8>>, CodecError> {
    let bad = |reason: String| CodecError::BadLane {
        lane: index,
        reason,
    };
    let pixels: u64 = lane.shapes.iter().map(|&(w, r)| (w * r) as u64).sum();
    if lane.payload.len() as u64 != stored_len(pixels) {
        return Err(bad(format!(
            "{} stored bytes for {pixels} pixels",
            lane.payload.len()
        )));
    }
    // The bits past the last pixel are 0, so that every lane has one encoding.
    let used = (pixels % 8) as u32;
    if used > 0 && lane.payload.last().is_some_and(|b| b << used != 0) {
        return Err(bad("padding bits after the last pixel are not 0".into()));
    }
    let mut bit = 0usize;
    Ok(lane
        .shapes
        .iter()
        .map(|&(w, r)| {
            (0..w * r)
                .map(|_| {
                    let v = (lane.payload[bit / 8] >> (7 - bit % 8)) & 1;
                    bit += 1;
                    v
                })
                .collect()
        })
        .collect())
}
