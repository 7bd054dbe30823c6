//! The lane-coder abstraction, at the bottom of the codec: what every coder takes and
//! gives. Every kind of lane an archive can hold (a row of the container's coder
//! registry) is one implementation of [`LaneCodec`], so adding a coder adds an
//! implementation, not a branch.
#![forbid(unsafe_code)]

/// A band of consecutive rows of one image, `width × rows` bytes of 0/1: lanes are made
/// of these.
#[derive(Clone, Copy, Debug)]
pub struct Strip<'a> {
    pub width: usize,
    pub rows: usize,
    pub pixels: &'a [u8],
}

/// Why coding failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("lane {lane}: the chain did not end at its seed; the archive is corrupt or was made by another model")]
    ChainMismatch { lane: usize },
    #[error("lane {lane}: the stack ran dry before tile {tile}; the archive is corrupt")]
    Exhausted { lane: usize, tile: usize },
    #[error("lane {lane}: invalid lane ({reason})")]
    BadLane { lane: usize, reason: String },
    #[error("this thread flushes subnormal floats to zero (FTZ/DAZ); the coder's probabilities would differ from other machines'")]
    SubnormalsFlushed,
    #[error("entropy coder failed: {0}")]
    Coder(String),
}

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

impl LaneToDecode<'_> {
    /// Pixels of the lane's strips.
    pub fn pixels(&self) -> usize {
        self.shapes.iter().map(|&(width, rows)| width * rows).sum()
    }
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

/// Decodes each lane alone with `decode_one(lane, its index)`, for the coders that do not
/// decode lanes in lockstep; `first_index` numbers the first lane.
pub fn decode_each(
    lanes: &[LaneToDecode],
    first_index: usize,
    decode_one: impl Fn(&LaneToDecode, usize) -> Result<Vec<Vec<u8>>, CodecError>,
) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
    lanes
        .iter()
        .enumerate()
        .map(|(k, lane)| decode_one(lane, first_index + k))
        .collect()
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

/// Pixels of a lane's `strips`.
pub fn lane_pixels(strips: &[Strip]) -> usize {
    strips.iter().map(|s| s.width * s.rows).sum()
}
