//! The classical fallback: an adaptive context model over a JBIG-style template, coded
//! on an ANS stack of its own (format-spec.md §3.6).
//!
//! Each pixel's probability comes from the counts of the 16-pixel causal neighbourhood
//! it was seen in before, within the same lane. ANS is a stack, so the encoder computes
//! the probabilities forward, as the decoder will, and pushes the pixels in reverse.
//! It needs no model, runs at tens of megapixels a second, and codes what the VLAE has
//! never seen (noise, text, drawings) about as well as JBIG does.
#![forbid(unsafe_code)]

use super::bitsback::{CodecError, Strip};
use super::lane::{payload, words, CodedLane, LaneCodec, LaneToDecode};
use super::mixing::{self, Edition, PageMixer, EDITIONS};
use super::model::{Bernoulli, Coder, PRECISION};
use constriction::stream::{Decode, Encode};

/// The templates: (row, column) offsets of the causal neighbours whose values, bit k for
/// offset k, index a pixel's context. Positions outside the strip read 0. A lane records
/// which it uses (format-spec.md §3.6): the wide one suits dense text, the JBIG-like
/// narrow one learns faster on small or varied images.
pub const TEMPLATES: [&[(isize, isize)]; 2] = [
    &[
        (-2, -2),
        (-2, -1),
        (-2, 0),
        (-2, 1),
        (-2, 2),
        (-1, -3),
        (-1, -2),
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (-1, 2),
        (-1, 3),
        (0, -4),
        (0, -3),
        (0, -2),
        (0, -1),
    ],
    &[
        (-2, -1),
        (-2, 0),
        (-2, 1),
        (-1, -2),
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (-1, 2),
        (0, -2),
        (0, -1),
    ],
];

/// Counts are halved once their sum exceeds this, so the model follows local statistics.
/// High enough that long white runs cost next to nothing (≈ 0.0002 bits a pixel): 255
/// made text pages 20% larger.
pub const COUNT_LIMIT: u32 = 4095;

/// Adaptive counts (n0, n1) for every context; each pair is halved once its sum passes
/// the limit, at most [`COUNT_LIMIT`], so 16 bits hold it.
pub(crate) struct Counts {
    pairs: Vec<[u16; 2]>,
    limit: u32,
}

impl Counts {
    /// Counts for `contexts` contexts, all zero, halved above [`COUNT_LIMIT`].
    pub(crate) fn new(contexts: usize) -> Self {
        Self::with_limit(contexts, COUNT_LIMIT)
    }

    /// Counts for `contexts` contexts, all zero, halved above `limit`: a low limit follows
    /// the most recent statistics.
    pub(crate) fn with_limit(contexts: usize, limit: u32) -> Self {
        assert!(limit <= COUNT_LIMIT, "16-bit counts");
        Counts {
            pairs: vec![[0, 0]; contexts],
            limit,
        }
    }

    /// (n0, n1) of a context.
    #[inline]
    pub(crate) fn get(&self, ctx: usize) -> [u32; 2] {
        self.pairs[ctx].map(u32::from)
    }

    /// P(ink) for a context, in fixed point: (2·n1 + 1) / (2·(n0 + n1) + 2), the
    /// Krichevsky–Trofimov estimate, kept strictly inside (0, 1).
    fn probability(&self, ctx: usize) -> u32 {
        let [n0, n1] = self.get(ctx).map(u64::from);
        let p = ((2 * n1 + 1) << PRECISION) / (2 * (n0 + n1) + 2);
        (p as u32).clamp(1, (1 << PRECISION) - 1)
    }

    /// Asks the processor to bring a context's counts into its cache, for a pixel to be
    /// counted shortly: a hint, which changes no result.
    #[inline]
    pub(crate) fn prefetch(&self, ctx: usize) {
        if let Some(pair) = self.pairs.get(ctx) {
            crate::prefetch::prefetch(pair);
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, ctx: usize, bit: u8) {
        let c = &mut self.pairs[ctx];
        c[bit as usize] += 1;
        if u32::from(c[0]) + u32::from(c[1]) > self.limit {
            *c = c.map(|n| n.div_ceil(2));
        }
    }
}

/// A strip with a border of white around it: 2 rows above, 4 columns left and 3 right,
/// the templates' reach. Every neighbour is then a fixed offset from the pixel, with no
/// bounds to check, and the border reads 0 as the format wants.
struct Padded {
    stride: usize,
    buf: Vec<u8>,
    /// Each template offset as a distance in `buf`.
    offsets: Vec<isize>,
}

impl Padded {
    const ABOVE: usize = 2;
    const LEFT: usize = 4;
    const RIGHT: usize = 3;

    fn new(template: &[(isize, isize)], width: usize, rows: usize) -> Self {
        let stride = Self::LEFT + width + Self::RIGHT;
        Padded {
            stride,
            buf: vec![0; (Self::ABOVE + rows) * stride],
            offsets: template
                .iter()
                .map(|&(dy, dx)| dy * stride as isize + dx)
                .collect(),
        }
    }

    fn at(&self, y: usize, x: usize) -> usize {
        (Self::ABOVE + y) * self.stride + Self::LEFT + x
    }

    /// The context of pixel (y, x): bit k is the neighbour at template offset k.
    #[inline]
    fn context(&self, y: usize, x: usize) -> usize {
        let here = self.at(y, x) as isize;
        self.offsets.iter().enumerate().fold(0, |ctx, (k, &o)| {
            ctx | usize::from(self.buf[(here + o) as usize]) << k
        })
    }

    fn set(&mut self, y: usize, x: usize, bit: u8) {
        let i = self.at(y, x);
        self.buf[i] = bit;
    }
}

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

/// Counts over one of the [`TEMPLATES`] (format-spec.md §3.6).
struct TemplateCounts {
    template: &'static [(isize, isize)],
    counts: Counts,
    known: Padded,
    context: usize,
}

impl TemplateCounts {
    fn new(template: &'static [(isize, isize)]) -> Self {
        TemplateCounts {
            template,
            counts: Counts::new(1 << template.len()),
            known: Padded::new(template, 0, 0),
            context: 0,
        }
    }
}

impl PixelModel for TemplateCounts {
    fn start_strip(&mut self, width: usize, rows: usize) {
        self.known = Padded::new(self.template, width, rows);
    }

    #[inline]
    fn predict(&mut self, y: usize, x: usize) -> u32 {
        self.context = self.known.context(y, x);
        self.counts.probability(self.context)
    }

    #[inline]
    fn learn(&mut self, y: usize, x: usize, bit: u8) {
        self.counts.update(self.context, bit);
        self.known.set(y, x, bit);
    }
}

/// The templates that select page mixing (format-spec.md §3.9) rather than counts over a
/// template's contexts: its first edition from version 6, its second from version 7, its
/// third from version 8, its fourth from version 9, its fifth from version 11, and its
/// sixth, which this build writes, from version 12.
pub const PAGE_MIXING_FIRST_EDITION: u8 = TEMPLATES.len() as u8;
pub const PAGE_MIXING_SECOND_EDITION: u8 = PAGE_MIXING_FIRST_EDITION + 1;
pub const PAGE_MIXING_THIRD_EDITION: u8 = PAGE_MIXING_SECOND_EDITION + 1;
pub const PAGE_MIXING_FOURTH_EDITION: u8 = PAGE_MIXING_THIRD_EDITION + 1;
pub const PAGE_MIXING_FIFTH_EDITION: u8 = PAGE_MIXING_FOURTH_EDITION + 1;
pub const PAGE_MIXING: u8 = PAGE_MIXING_FIFTH_EDITION + 1;
// One template for each edition, the newest last.
const _: () = assert!((PAGE_MIXING - PAGE_MIXING_FIRST_EDITION) as usize + 1 == EDITIONS.len());

/// The context-model lane coder with one of the [`TEMPLATES`], or page mixing.
pub struct ContextModel {
    pub template: u8,
}

impl ContextModel {
    /// The page-mixing edition of a template past the [`TEMPLATES`].
    fn edition(&self) -> &'static Edition {
        EDITIONS[usize::from(self.template - PAGE_MIXING_FIRST_EDITION)]
    }
}

/// Every pixel of a lane's `strips` with the P(ink) that `model`, fresh, gives it: the
/// probabilities are computed forward, as the decoder will.
fn predict_lane(mut model: impl PixelModel, strips: &[Strip]) -> Vec<(u8, u32)> {
    let total: usize = strips.iter().map(|s| s.pixels.len()).sum();
    let mut predicted = Vec::with_capacity(total);
    for s in strips {
        model.start_strip(s.width, s.rows);
        for y in 0..s.rows {
            for x in 0..s.width {
                let bit = s.pixels[y * s.width + x];
                predicted.push((bit, model.predict(y, x)));
                model.learn(y, x, bit);
            }
        }
    }
    predicted
}

/// Codes a lane's pixels with their P(ink): ANS is a stack, so they are pushed last first
/// for the decoder to pop them in order.
fn encode_lane(coded: &[(u8, u32)]) -> Result<CodedLane, CodecError> {
    let mut coder = Coder::new();
    for &(bit, p) in coded.iter().rev() {
        coder
            .encode_symbol(bit, Bernoulli::new(p))
            .map_err(|e| CodecError::Coder(format!("{e:?}")))?;
    }
    let (words, state) = coder.into_raw_parts();
    Ok(CodedLane {
        seed_words_elided: 0,
        state,
        payload: payload(&words),
    })
}

/// Decodes lane `index` with `model`, fresh.
fn decode_lane(
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

impl LaneCodec for ContextModel {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError> {
        lanes
            .iter()
            .map(|strips| match TEMPLATES.get(usize::from(self.template)) {
                Some(template) => encode_lane(&predict_lane(TemplateCounts::new(template), strips)),
                None => encode_lane(&mixing::predict_lane(self.edition(), strips)),
            })
            .collect()
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
                let index = first_index + k;
                match TEMPLATES.get(usize::from(self.template)) {
                    Some(template) => decode_lane(TemplateCounts::new(template), lane, index),
                    None => decode_lane(PageMixer::new(self.edition()), lane, index),
                }
            })
            .collect()
    }
}
