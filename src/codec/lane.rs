//! The lane-coder abstraction: every kind of lane an archive can hold is one
//! implementation of [`LaneCodec`], so adding a coder (a context-model fallback,
//! importance-weighted bits-back) adds an implementation, not a branch.
#![forbid(unsafe_code)]

use super::bitsback::{BitsBack, ChainInput, ChainLane, ChainLayout, CodecError, Strip};

/// A coded lane, ready for the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodedLane {
    pub seed_words_elided: u32,
    pub state: u64,
    /// ANS words as little-endian bytes, bottom first, or stored bits.
    pub payload: Vec<u8>,
}

/// A lane to decode: what the container holds, plus the shapes `(width, rows)` of the
/// strips the lane covers.
pub struct LaneToDecode<'a> {
    pub seed_words_elided: u32,
    pub state: u64,
    pub payload: &'a [u8],
    pub shapes: Vec<(usize, usize)>,
}

/// Codes lanes of strips. Implementations may code several lanes at once (in lockstep);
/// the bytes of a lane never depend on which lanes it was coded with.
pub trait LaneCodec: Sync {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError>;
    /// Each lane's strips' pixels, in order. `first_index` numbers lanes in errors.
    fn decode(
        &self,
        lanes: &[LaneToDecode],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError>;
}

/// ANS words as a lane's payload: little-endian bytes, bottom of the stack first.
pub fn payload(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// An ANS lane's payload as its words, bottom of the stack first.
pub fn words(payload: &[u8]) -> Vec<u32> {
    payload
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect()
}

/// A bits-back chain over the VLAE.
pub struct Chain<'n> {
    pub bits_back: BitsBack<'n>,
    pub layout: ChainLayout,
}

impl LaneCodec for Chain<'_> {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError> {
        if self.layout != ChainLayout::NeighbourClasses {
            return Err(CodecError::Coder(
                "chains of versions before 4 are decoded, never written".into(),
            ));
        }
        Ok(self
            .bits_back
            .compress_lanes(lanes)?
            .into_iter()
            .map(|l| CodedLane {
                seed_words_elided: l.seed_words_elided,
                state: l.state,
                payload: payload(&l.words),
            })
            .collect())
    }

    fn decode(
        &self,
        lanes: &[LaneToDecode],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        let inputs: Vec<ChainInput> = lanes
            .iter()
            .map(|l| ChainInput {
                lane: ChainLane {
                    seed_words_elided: l.seed_words_elided,
                    state: l.state,
                    words: words(l.payload),
                },
                shapes: l.shapes.clone(),
            })
            .collect();
        self.bits_back
            .decompress_lanes(&inputs, self.layout, first_index)
    }
}

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
        lanes
            .iter()
            .enumerate()
            .map(|(k, lane)| {
                let pixels: u64 = lane.shapes.iter().map(|&(w, r)| (w * r) as u64).sum();
                if lane.payload.len() as u64 != stored_len(pixels) {
                    return Err(CodecError::BadLane {
                        lane: first_index + k,
                        reason: format!("{} stored bytes for {pixels} pixels", lane.payload.len()),
                    });
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
            })
            .collect()
    }
}
