//! Adaptive counts and the loop that drives a pixel model through a lane: what the
//! context models (`template.rs`, `mixing.rs`) and the page memory share.
#![forbid(unsafe_code)]

use super::lane::{
    decode_each, lane_pixels, payload, words, CodecError, CodedLane, LaneCodec, LaneToDecode, Strip,
};
use super::model::{Bernoulli, Coder, PRECISION};
use crate::cpu::run_with;
use crate::infer::kernels::Supported;
use constriction::stream::{Decode, Encode};

/// Counts are halved once their sum exceeds this, so the model follows local statistics.
/// High enough that long white runs cost next to nothing (≈ 0.0002 bits a pixel): 255
/// made text pages 20% larger.
pub const COUNT_LIMIT: u32 = 4095;

/// Writes a zero into every 4 KiB page of `table`, which is all zero, so that the kernel
/// zeroes its fresh pages now rather than at their first write in use. Page mixing's
/// tables are over 100 MiB, and zeroing them took half of a small page's decoding, all on
/// the decoding thread: faulted in on both cores first, they cost half the time.
pub(crate) fn fault_in<T: Copy + Default>(table: &mut [T]) {
    let step = (4096 / std::mem::size_of::<T>()).max(1);
    for i in (0..table.len()).step_by(step) {
        // black_box: the value is unknown to the compiler, so the write is kept.
        table[i] = std::hint::black_box(T::default());
    }
}

/// How a table's count pairs learn a pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Learning {
    /// A pair is halved once its sum passes this, at most [`COUNT_LIMIT`].
    pub(crate) limit: u32,
    /// Whether a pixel also halves the other count, plus one, when that count is over 2,
    /// so that a context's pair says what its last few pixels were: page mixing's second
    /// edition, whose narrow neighbourhoods follow a scan's changes of texture
    /// (format-spec.md §3.10).
    pub(crate) forgets: bool,
}

impl Learning {
    /// Counts halved above `limit`, and no other forgetting.
    pub(crate) const fn halved_above(limit: u32) -> Self {
        Learning {
            limit,
            forgets: false,
        }
    }
}

/// Adaptive counts (n0, n1) for every context; each pair is halved once its sum passes
/// the limit, at most [`COUNT_LIMIT`], so 16 bits hold it.
pub(crate) struct Counts {
    pairs: Vec<[u16; 2]>,
    learning: Learning,
}

impl Counts {
    /// Counts for `contexts` contexts, all zero, halved above [`COUNT_LIMIT`].
    pub(crate) fn new(contexts: usize) -> Self {
        Self::learning(contexts, Learning::halved_above(COUNT_LIMIT))
    }

    /// Counts for `contexts` contexts, all zero, that learn as `learning` says: a low
    /// limit, or forgetting, follows the most recent statistics.
    pub(crate) fn learning(contexts: usize, learning: Learning) -> Self {
        assert!(learning.limit <= COUNT_LIMIT, "16-bit counts");
        Counts {
            pairs: vec![[0, 0]; contexts],
            learning,
        }
    }

    /// [`Self::learning`], with every page of its table already touched: a lane zeroes
    /// its tables before it starts, not pixel by pixel.
    pub(crate) fn faulted_in(contexts: usize, learning: Learning) -> Self {
        let mut counts = Self::learning(contexts, learning);
        counts.fault_in();
        counts
    }

    /// How many contexts it counts.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Writes every page of the table once: see [`fault_in`].
    pub(crate) fn fault_in(&mut self) {
        fault_in(&mut self.pairs);
    }

    /// (n0, n1) of a context.
    #[inline(always)]
    pub(crate) fn get(&self, ctx: usize) -> [u32; 2] {
        self.pairs[ctx].map(u32::from)
    }

    /// P(ink) for a context, in fixed point: (2·n1 + 1) / (2·(n0 + n1) + 2), the
    /// Krichevsky–Trofimov estimate, kept strictly inside (0, 1).
    pub(crate) fn probability(&self, ctx: usize) -> u32 {
        let [n0, n1] = self.get(ctx).map(u64::from);
        let p = ((2 * n1 + 1) << PRECISION) / (2 * (n0 + n1) + 2);
        (p as u32).clamp(1, (1 << PRECISION) - 1)
    }

    /// Asks the processor to bring a context's counts into its cache, for a pixel to be
    /// counted shortly: a hint, which changes no result.
    #[inline(always)]
    pub(crate) fn prefetch(&self, ctx: usize) {
        if let Some(pair) = self.pairs.get(ctx) {
            crate::cpu::prefetch(pair);
        }
    }

    #[inline(always)]
    pub(crate) fn update(&mut self, ctx: usize, bit: u8) {
        let c = &mut self.pairs[ctx];
        c[bit as usize] += 1;
        let other = &mut c[usize::from(1 - bit)];
        if self.learning.forgets && *other > 2 {
            *other = *other / 2 + 1;
        }
        if u32::from(c[0]) + u32::from(c[1]) > self.learning.limit {
            *c = c.map(|n| n.div_ceil(2));
        }
    }
}

/// The P(ink) a pixel is coded with, to `PRECISION` bits, in three bytes. The encoder
/// keeps one for every pixel of a lane until it codes the lane (ANS codes the last
/// first), and reads the pixel itself from the lane's strips: a 25 Mpx page's two lanes
/// held 8 bytes a pixel as a byte and a word, 4 with the pixel in a word's top bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Predicted([u8; 3]);

impl Predicted {
    #[inline(always)]
    pub(crate) fn new(p: u32) -> Self {
        debug_assert!(p < 1 << PRECISION);
        let [b0, b1, b2, _] = p.to_le_bytes();
        Predicted([b0, b1, b2])
    }

    #[inline(always)]
    pub(crate) fn probability(self) -> u32 {
        let [b0, b1, b2] = self.0;
        u32::from_le_bytes([b0, b1, b2, 0])
    }
}

const _: () = assert!(PRECISION <= 24, "a P(ink) fits in three bytes");

/// What a context-model lane coder asks of its model, pixel by pixel in raster order
/// through the lane's strips.
pub(crate) trait PixelModel {
    /// Begins a strip of `width × rows`: none of its pixels is known yet.
    fn start_strip(&mut self, width: usize, rows: usize);
    /// P(ink) of pixel (y, x), to `PRECISION` bits; [`Self::learn`] follows with its value.
    fn predict(&mut self, y: usize, x: usize) -> u32;
    /// Pixel (y, x), just predicted, is `bit`.
    fn learn(&mut self, y: usize, x: usize, bit: u8);
}

/// Every pixel of a lane's `strips` with the P(ink) that `model`, fresh, gives it: the
/// probabilities are computed forward, as the decoder will, and with the same
/// instructions.
fn predict_lane(model: impl PixelModel, strips: &[Strip]) -> Vec<Predicted> {
    predict_lane_with(model, strips, Supported::best())
}

/// [`predict_lane`], compiled for `kernels`.
pub(crate) fn predict_lane_with(
    model: impl PixelModel,
    strips: &[Strip],
    kernels: Supported,
) -> Vec<Predicted> {
    run_with(
        kernels,
        #[inline(always)]
        || predict_pixels(model, strips),
    )
}

/// [`predict_lane`], in whatever build calls it.
#[inline(always)]
fn predict_pixels(mut model: impl PixelModel, strips: &[Strip]) -> Vec<Predicted> {
    let mut predicted = Vec::with_capacity(lane_pixels(strips));
    for s in strips {
        model.start_strip(s.width, s.rows);
        for y in 0..s.rows {
            for x in 0..s.width {
                let bit = s.pixels[y * s.width + x];
                predicted.push(Predicted::new(model.predict(y, x)));
                model.learn(y, x, bit);
            }
        }
    }
    predicted
}

/// Codes a lane's pixels with their P(ink): ANS is a stack, so they are pushed last first
/// for the decoder to pop them in order. `coded` holds a P(ink) for each pixel of
/// `strips`, in order.
fn encode_lane(strips: &[Strip], coded: &[Predicted]) -> Result<CodedLane, CodecError> {
    let mut coder = Coder::new();
    let last_first = strips.iter().rev().flat_map(|s| s.pixels.iter().rev());
    debug_assert_eq!(coded.len(), lane_pixels(strips));
    for (predicted, &bit) in coded.iter().rev().zip(last_first) {
        coder
            .encode_symbol(bit, Bernoulli::new(predicted.probability()))
            .map_err(|e| CodecError::Coder(format!("{e:?}")))?;
    }
    let (words, state) = coder.into_raw_parts();
    Ok(CodedLane {
        seed_words_elided: 0,
        state,
        payload: payload(&words),
    })
}

/// Decodes lane `index` with `model`, fresh, compiled for the fastest instructions this
/// processor has.
fn decode_lane(
    model: impl PixelModel,
    lane: &LaneToDecode,
    index: usize,
) -> Result<Vec<Vec<u8>>, CodecError> {
    run_with(
        Supported::best(),
        #[inline(always)]
        || decode_pixels(model, lane, index),
    )
}

/// [`decode_lane`], in whatever build calls it.
#[inline(always)]
fn decode_pixels(
    mut model: impl PixelModel,
    lane: &LaneToDecode,
    index: usize,
) -> Result<Vec<Vec<u8>>, CodecError> {
    let mut coder = Coder::from_raw_parts(words(lane.payload), lane.state);
    let mut out = Vec::with_capacity(lane.shapes.len());
    for &(width, rows) in &lane.shapes {
        // A strip's buffers are made when it is reached, and each row is decoded before
        // the next: a lane that claims more rows than it holds fails at its checks having
        // decoded only what it held.
        model.start_strip(width, rows);
        let mut pixels = Vec::with_capacity(width * rows);
        for y in 0..rows {
            for x in 0..width {
                let p = model.predict(y, x);
                let bit = coder
                    .decode_symbol(Bernoulli::new(p))
                    .map_err(|e| CodecError::Coder(format!("{e:?}")))?;
                model.learn(y, x, bit);
                pixels.push(bit);
            }
        }
        out.push(pixels);
    }
    // Every pushed bit popped: the stack must be exactly empty again.
    let (rest, state) = coder.into_raw_parts();
    if !rest.is_empty() || state != 0 {
        return Err(CodecError::BadLane {
            lane: index,
            reason: "the context-coded stream did not end where it should".into(),
        });
    }
    Ok(out)
}

/// A lane coder that is a pixel model, fresh at each lane's start, driving one ANS stack:
/// the context model and page mixing. Every such coder is a [`LaneCodec`] through the
/// loop above.
pub(crate) trait ModelledLanes: Sync {
    type Model: PixelModel;

    /// The model as a lane of `pixels` pixels starts, having seen none of them.
    fn fresh(&self, pixels: usize) -> Self::Model;

    /// Every pixel of a lane with its P(ink), as a fresh model predicts them one by one
    /// (an encoder may find them faster, as long as it finds the same).
    fn predict(&self, strips: &[Strip]) -> Vec<Predicted> {
        predict_lane(self.fresh(lane_pixels(strips)), strips)
    }
}

impl<T: ModelledLanes> LaneCodec for T {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError> {
        lanes
            .iter()
            .map(|strips| encode_lane(strips, &self.predict(strips)))
            .collect()
    }

    fn decode(
        &self,
        lanes: &[LaneToDecode],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        decode_each(lanes, first_index, |lane, index| {
            decode_lane(self.fresh(lane.pixels()), lane, index)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probability comes back as packed, at both ends of the range and between.
    #[test]
    fn predicted_keeps_its_probability() {
        for p in [1, 2, 0x80, 0x1234, 0x12_3456, 1 << 23, (1 << PRECISION) - 1] {
            assert_eq!(Predicted::new(p).probability(), p);
        }
    }
}
