//! Page mixing (format-spec.md §3.9): a context-mixing model of a lane's pixels, learnt as
//! the lane is decoded, with no VLAE in it.
//!
//! On text pages the VLAE's latents cost about 20 bits a modelled tile, a third of a
//! bits-back lane, while mixing the VLAE's logit into the page memory saves the pixels
//! about as much. Adaptive counts over ten causal neighbourhoods, mixed by weights that
//! themselves adapt to the page, code the pages smaller than the bits-back chain does, and
//! an order of magnitude faster (models/README). Unlike the page memory's fixed mixer this
//! one may learn, since everything it sees is pixels that both ends know.
//!
//! All arithmetic is in integers, so that both ends agree bit for bit: inputs and logits in
//! 1/256 units ([`LOGIT_ONE`]), weights in 1/65536.
#![forbid(unsafe_code)]

use super::context::{Counts, PixelModel, COUNT_LIMIT};
use super::memory::{
    estimate_12, hashed, stretch_table, total_class, Contexts, Memory, Mixing, LOGIT_ONE,
    TOTAL_CLASSES,
};
use super::model::PRECISION;
use super::quantize::pixel_probability;
use std::sync::OnceLock;

/// Neighbourhoods whose counts are mixed: the six narrow ones, then the page memory's four.
const CONTEXTS: usize = 10;
const NARROW_CONTEXTS: usize = 6;

/// Coarse contexts ([`Memory::coarse_contexts`]), counted from the second edition on.
const COARSE: usize = 2;

/// Count pairs of each coarse context: its contexts are hashed to 22 bits.
const COARSE_BITS: u32 = 22;

/// Inputs to each first-layer mixer: every neighbourhood's and coarse context's stretched
/// estimate and its estimate's distance from ½, then a bias. An edition without coarse
/// contexts gives them 0.
const INPUTS: usize = 2 * (CONTEXTS + COARSE) + 1;

/// First-layer mixers, each with its own choice of weight set (the first edition uses
/// the first three).
const MIXERS: usize = 4;

/// Weight sets of the fourth mixer, chosen by the low 12 bits of the 24-pixel
/// neighbourhood's count index.
const FOURTH_MIXER_SETS: usize = 1 << 12;

/// Logits are kept within ±12 (in 1/256 units).
const LOGIT_LIMIT: i32 = 12 * LOGIT_ONE;

/// Weights are in units of 2^-16.
const WEIGHT_ONE: i32 = 1 << 16;

/// How an edition of page mixing learns (format-spec.md §3.9). All share the counts and
/// the mixers' shape; the second learns faster, and adds coarse contexts, a fourth mixer
/// and a refinement; the third's wide counts forget sooner.
pub struct Edition {
    /// Learning rates, as right shifts of input × error (1/256 × 1/4096 units): 2^-12
    /// gives a step of about 0.004 in real units.
    first_rate_shift: u32,
    second_rate_shift: u32,
    /// The narrow neighbourhoods' counts are halved above this.
    narrow_count_limit: u32,
    /// The page memory's four neighbourhoods' counts are halved above this.
    wide_count_limit: u32,
    /// First-layer mixers used: 3 or [`MIXERS`].
    mixers: usize,
    /// Whether the coarse contexts are counted.
    coarse: bool,
    /// Whether a secondary estimate refines the mixed probability.
    refines: bool,
}

/// Template 2, from version 6.
pub const FIRST_EDITION: Edition = Edition {
    first_rate_shift: 12,
    second_rate_shift: 13,
    narrow_count_limit: COUNT_LIMIT,
    wide_count_limit: COUNT_LIMIT,
    mixers: 3,
    coarse: false,
    refines: false,
};

/// Template 3, from version 7. Measured on page 3 of each of the 24 training documents
/// (README, format-spec.md §3.9): learning 4 times faster in the first layer and 4 times in the second
/// took them from 350,190 bytes to about 299,000 (the first edition's rates were chosen
/// in a floating-point prototype, and are far too slow in integers); narrow counts that
/// follow the last 64 pixels, the fourth mixer and the refinement then took another 3%,
/// to 290,201, and the coarse contexts 5% more (7% on the scanned pages), to 275,580.
pub const SECOND_EDITION: Edition = Edition {
    first_rate_shift: 10,
    second_rate_shift: 11,
    narrow_count_limit: 63,
    wide_count_limit: COUNT_LIMIT,
    mixers: MIXERS,
    coarse: true,
    refines: true,
};

/// Template 4, from version 8: the second edition with the page memory's four
/// neighbourhoods' counts halved above 511, so that they follow the last few hundred
/// pixels of each context rather than the last 4,096. Measured on the same 24 training
/// pages, in bytes: 275,580 with 4,095; 274,644 with 127, 274,538 with 255, 274,382 with
/// 511 (−0.4%), 274,523 with 1,023.
pub const THIRD_EDITION: Edition = Edition {
    wide_count_limit: 511,
    ..SECOND_EDITION
};

/// Σ w·x / 2^16, rounded toward −∞, kept within ±[`LOGIT_LIMIT`].
#[inline]
fn dot(weights: &[i32], inputs: &[i32]) -> i32 {
    let sum: i64 = weights
        .iter()
        .zip(inputs)
        .map(|(&w, &x)| i64::from(w) * i64::from(x))
        .sum();
    (sum >> 16).clamp(-i64::from(LOGIT_LIMIT), i64::from(LOGIT_LIMIT)) as i32
}

/// P(ink) of every logit within ±[`LOGIT_LIMIT`] (1/256 units), to `PRECISION` bits: the
/// sigmoid as [`pixel_probability`] rounds it.
fn squash_table() -> &'static [u32] {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (-LOGIT_LIMIT..=LOGIT_LIMIT)
            .map(|l| pixel_probability(l as f32 / LOGIT_ONE as f32))
            .collect()
    })
}

/// P(ink) of a logit within ±[`LOGIT_LIMIT`], to `PRECISION` bits: what is coded.
#[inline]
fn probability(logit: i32) -> u32 {
    squash_table()[(logit + LOGIT_LIMIT) as usize]
}

/// The same to 12 bits: what the mixers learn from.
#[inline]
fn probability_12(logit: i32) -> i32 {
    (probability(logit) >> (PRECISION - 12)) as i32
}

/// w += x·err / 2^shift, rounded toward −∞, for every weight.
#[inline]
fn train(weights: &mut [i32], inputs: &[i32], err: i32, shift: u32) {
    for (w, &x) in weights.iter_mut().zip(inputs) {
        *w += ((i64::from(x) * i64::from(err)) >> shift) as i32;
    }
}

/// A secondary estimate: for each context, P(ink) as a function of the mixed logit,
/// learnt as a curve through [`Refinement::POINTS`] points. A mixer weighs its inputs
/// the same whatever their context; the curve corrects what it gets wrong in each.
struct Refinement {
    /// P(ink) in 1/65536 at each point of each context's curve.
    curves: Vec<u16>,
}

impl Refinement {
    /// Points 192/256 logit apart span ±12.
    const POINTS: usize = 33;
    const SPACING: i32 = 2 * LOGIT_LIMIT / (Self::POINTS as i32 - 1);
    /// Each step moves a point 1/64 of the way to the pixel.
    const RATE_SHIFT: u32 = 6;
    /// Contexts: the 12-pixel neighbourhood's.
    const CONTEXTS: usize = 1 << 12;

    fn new() -> Self {
        let curve: Vec<u16> = (0..Self::POINTS as i32)
            .map(|j| (probability(j * Self::SPACING - LOGIT_LIMIT) >> (PRECISION - 16)) as u16)
            .collect();
        Refinement {
            curves: curve.repeat(Self::CONTEXTS),
        }
    }

    /// P(ink) in 1/65536 for `logit` in `context`, interpolated between the two points
    /// about it, and the point nearer to it, which learns.
    #[inline]
    fn estimate(&self, context: usize, logit: i32) -> (u32, usize) {
        let at = logit + LOGIT_LIMIT;
        let i = ((at / Self::SPACING) as usize).min(Self::POINTS - 2);
        let frac = (at - i as i32 * Self::SPACING) as u32;
        let first = context * Self::POINTS + i;
        let (lo, hi) = (
            u32::from(self.curves[first]),
            u32::from(self.curves[first + 1]),
        );
        let p = (lo * (Self::SPACING as u32 - frac) + hi * frac) / Self::SPACING as u32;
        let nearer = if 2 * frac < Self::SPACING as u32 {
            first
        } else {
            first + 1
        };
        (p, nearer)
    }

    /// The point at `at` steps toward `bit`.
    #[inline]
    fn learn(&mut self, at: usize, bit: u8) {
        let target = if bit == 1 { 65535 } else { 0 };
        let v = i32::from(self.curves[at]);
        self.curves[at] = (v + ((target - v) >> Self::RATE_SHIFT)) as u16;
    }
}

/// One pixel's prediction, kept until its value is known.
struct Pending {
    contexts: Contexts<CONTEXTS>,
    coarse: [usize; COARSE],
    inputs: [i32; INPUTS],
    sets: [usize; MIXERS],
    first: [i32; MIXERS],
    second_set: usize,
    logit: i32,
    /// The refinement's point to learn, if it refines.
    refined_at: Option<usize>,
}

/// The page-mixing model of one lane: counts, two layers of adaptive mixers and, from the
/// second edition on, a refinement.
pub struct PageMixer {
    edition: &'static Edition,
    memory: Memory<Mixing, CONTEXTS>,
    /// Counts of the coarse contexts; none in the first edition.
    coarse: Vec<Counts>,
    /// First layer: mixer k's weight sets, chosen as [`PixelModel::predict`] says.
    first: [Vec<[i32; INPUTS]>; MIXERS],
    /// Second layer: weights over the first layer's logits and a bias, one set per class
    /// of the 16-pixel neighbourhood's count total. Logits of mixers an edition does not
    /// use are 0.
    second: Vec<[i32; MIXERS + 1]>,
    refinement: Option<Refinement>,
    pending: Option<Pending>,
}

impl PageMixer {
    /// A fresh model of `edition`: equal trust in every neighbourhood's stretched
    /// estimate, and in every first-layer mixer.
    pub fn new(edition: &'static Edition) -> Self {
        let mut start = [0; INPUTS];
        for w in start.iter_mut().step_by(2).take(CONTEXTS) {
            *w = WEIGHT_ONE * 3 / (2 * CONTEXTS as i32);
        }
        let mut second = [0; MIXERS + 1];
        second[..edition.mixers].fill(WEIGHT_ONE / edition.mixers as i32);
        let limits = std::array::from_fn(|k| {
            if k < NARROW_CONTEXTS {
                edition.narrow_count_limit
            } else {
                edition.wide_count_limit
            }
        });
        PageMixer {
            edition,
            memory: Memory::with_limits(limits),
            coarse: if edition.coarse {
                (0..COARSE).map(|_| Counts::new(1 << COARSE_BITS)).collect()
            } else {
                Vec::new()
            },
            first: [
                vec![start; TOTAL_CLASSES],
                vec![start; 16],
                vec![start; TOTAL_CLASSES],
                vec![
                    start;
                    if edition.mixers > 3 {
                        FOURTH_MIXER_SETS
                    } else {
                        0
                    }
                ],
            ],
            second: vec![second; TOTAL_CLASSES],
            refinement: edition.refines.then(Refinement::new),
            pending: None,
        }
    }
}

impl PixelModel for PageMixer {
    /// Begins a strip of `width × rows`; counts and weights carry over from the last.
    fn start_strip(&mut self, width: usize, rows: usize) {
        self.memory.start_strip(width, rows);
    }

    /// P(ink) of pixel (y, x), to `PRECISION` bits, from the pixels before it in the
    /// lane. [`Self::learn`] must follow with its value.
    #[inline]
    fn predict(&mut self, y: usize, x: usize) -> u32 {
        let (counts, contexts) = self.memory.look_up(y, x);
        let mut coarse = [0; COARSE];
        let mut coarse_counts = [[0; 2]; COARSE];
        if !self.coarse.is_empty() {
            for (k, v) in self.memory.coarse_contexts(y, x).into_iter().enumerate() {
                coarse[k] = hashed(u128::from(v), COARSE_BITS);
                coarse_counts[k] = self.coarse[k].get(coarse[k]);
            }
        }
        let mut inputs = [LOGIT_ONE; INPUTS];
        for (pair, &n) in inputs
            .chunks_exact_mut(2)
            .zip(counts.iter().chain(&coarse_counts))
        {
            // An unseen context says nothing.
            let (s, d) = if n == [0, 0] {
                (0, 0)
            } else {
                let q = estimate_12(n);
                (
                    i32::from(stretch_table()[q as usize]),
                    (q as i32 - 2048) >> 3,
                )
            };
            pair.copy_from_slice(&[s, d]);
        }
        // Weight sets: by the 110-pixel count's total, the 4 nearest pixels, the 62-pixel
        // count's total, and the 24-pixel neighbourhood's index.
        let sets = [
            total_class(counts[CONTEXTS - 1]),
            self.memory.nearest(y, x),
            total_class(counts[CONTEXTS - 2]),
            contexts.index(5) % FOURTH_MIXER_SETS,
        ];
        let mut first = [0; MIXERS];
        for (k, logit) in first.iter_mut().enumerate().take(self.edition.mixers) {
            *logit = dot(&self.first[k][sets[k]], &inputs);
        }
        let second_set = total_class(counts[CONTEXTS - 4]);
        let logit = dot(&self.second[second_set], &second_inputs(&first));
        let mixed = probability(logit);
        let (p, refined_at) = match &self.refinement {
            None => (mixed, None),
            Some(r) => {
                let (refined, at) = r.estimate(contexts.index(2), logit);
                let p = (mixed + (refined << (PRECISION - 16))) / 2;
                (p.clamp(1, (1 << PRECISION) - 1), Some(at))
            }
        };
        self.pending = Some(Pending {
            contexts,
            coarse,
            inputs,
            sets,
            first,
            second_set,
            logit,
            refined_at,
        });
        p
    }

    /// Pixel (y, x), just predicted, is `bit`: every mixer steps toward it and the counts
    /// learn it.
    #[inline]
    fn learn(&mut self, y: usize, x: usize, bit: u8) {
        let p = self.pending.take().expect("a prediction to learn from");
        let target = i32::from(bit) << 12;
        for k in 0..self.edition.mixers {
            let err = target - probability_12(p.first[k]);
            train(
                &mut self.first[k][p.sets[k]],
                &p.inputs,
                err,
                self.edition.first_rate_shift,
            );
        }
        let err = target - probability_12(p.logit);
        train(
            &mut self.second[p.second_set],
            &second_inputs(&p.first),
            err,
            self.edition.second_rate_shift,
        );
        if let (Some(r), Some(at)) = (&mut self.refinement, p.refined_at) {
            r.learn(at, bit);
        }
        for (counts, &at) in self.coarse.iter_mut().zip(&p.coarse) {
            counts.update(at, bit);
        }
        self.memory.learn(p.contexts, y, x, bit);
    }
}

/// The second layer's inputs: the first layer's logits, then a bias.
#[inline]
fn second_inputs(first: &[i32; MIXERS]) -> [i32; MIXERS + 1] {
    let mut inputs = [LOGIT_ONE; MIXERS + 1];
    inputs[..MIXERS].copy_from_slice(first);
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The squash table is §4.3's sigmoid: ½ at 0, odd about it, rising, and strictly
    /// inside (0, 1) at ±12.
    #[test]
    fn squash_is_the_pixel_sigmoid() {
        assert_eq!(probability(0), 1 << (PRECISION - 1));
        for l in 1..=LOGIT_LIMIT {
            assert_eq!(probability(l) + probability(-l), 1 << PRECISION, "{l}");
            assert!(probability(l) >= probability(l - 1));
        }
        assert!(probability(LOGIT_LIMIT) < (1 << PRECISION) - 1);
        assert_eq!(probability_12(LOGIT_LIMIT), 4095);
    }

    /// A fresh refinement follows the sigmoid between its points (within its linear
    /// interpolation's error, under 0.7%), every logit included, and its curve learns
    /// only in its own context.
    #[test]
    fn refinement_starts_as_the_sigmoid_and_learns_its_context() {
        let mut r = Refinement::new();
        for logit in -LOGIT_LIMIT..=LOGIT_LIMIT {
            let (p, at) = r.estimate(7, logit);
            let want = probability(logit) >> (PRECISION - 16);
            assert!(p.abs_diff(want) < 460, "{logit}: {p} vs {want}");
            assert!(at / Refinement::POINTS == 7);
        }
        for _ in 0..200 {
            let (_, at) = r.estimate(7, 0);
            r.learn(at, 1);
        }
        assert!(r.estimate(7, 0).0 > 60_000);
        assert_eq!(r.estimate(8, 0).0, 1 << 15);
    }

    /// After a pattern repeats, the mixer is sure of it.
    #[test]
    fn mixer_learns_what_it_sees() {
        let mut m = PageMixer::new(&THIRD_EDITION);
        m.start_strip(48, 48);
        for y in 0..48 {
            for x in 0..48 {
                let bit = u8::from((x / 3 + y / 3) % 2 == 0);
                let p = m.predict(y, x);
                if y > 40 {
                    let sure = if bit == 1 { p } else { (1 << PRECISION) - p };
                    assert!(sure > 15 << (PRECISION - 4), "({y}, {x}): {p}");
                }
                m.learn(y, x, bit);
            }
        }
    }
}
