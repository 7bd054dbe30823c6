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

use super::context::PixelModel;
use super::memory::{
    estimate_12, stretched, total_class, Contexts, Memory, Mixing, LOGIT_ONE, TOTAL_CLASSES,
};
use super::model::PRECISION;
use super::quantize::pixel_probability;
use std::sync::OnceLock;

/// Neighbourhoods whose counts are mixed.
const CONTEXTS: usize = 10;

/// Inputs to each first-layer mixer: every neighbourhood's stretched estimate and its
/// estimate's distance from ½, then a bias.
const INPUTS: usize = 2 * CONTEXTS + 1;

/// First-layer mixers, each with its own choice of weight set.
const MIXERS: usize = 3;

/// Logits are kept within ±12 (in 1/256 units).
const LOGIT_LIMIT: i32 = 12 * LOGIT_ONE;

/// Weights are in units of 2^-16.
const WEIGHT_ONE: i32 = 1 << 16;

/// Learning rates, as right shifts of input × error (1/256 × 1/4096 units): 2^-12 gives
/// a step of about 0.004 in real units for the first layer, 2^-13 about 0.002 for the
/// second.
const FIRST_RATE_SHIFT: u32 = 12;
const SECOND_RATE_SHIFT: u32 = 13;

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

/// One pixel's prediction, kept until its value is known.
struct Pending {
    contexts: Contexts<CONTEXTS>,
    inputs: [i32; INPUTS],
    sets: [usize; MIXERS],
    first: [i32; MIXERS],
    second_set: usize,
    logit: i32,
}

/// The page-mixing model of one lane: counts, and two layers of adaptive mixers.
pub struct PageMixer {
    memory: Memory<Mixing, CONTEXTS>,
    /// First layer: mixer k's weight sets, chosen by [`Self::sets`].
    first: [Vec<[i32; INPUTS]>; MIXERS],
    /// Second layer: weights over the first layer's logits and a bias, one set per class
    /// of the 16-pixel neighbourhood's count total.
    second: Vec<[i32; MIXERS + 1]>,
    pending: Option<Pending>,
}

impl Default for PageMixer {
    /// Equal trust in every neighbourhood's stretched estimate, and in every first-layer
    /// mixer.
    fn default() -> Self {
        let mut start = [0; INPUTS];
        for w in start.iter_mut().step_by(2).take(CONTEXTS) {
            *w = WEIGHT_ONE * 3 / (2 * CONTEXTS as i32);
        }
        let mut second = [WEIGHT_ONE / MIXERS as i32; MIXERS + 1];
        second[MIXERS] = 0;
        PageMixer {
            memory: Memory::default(),
            first: [
                vec![start; TOTAL_CLASSES],
                vec![start; 16],
                vec![start; TOTAL_CLASSES],
            ],
            second: vec![second; TOTAL_CLASSES],
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
        let mut inputs = [LOGIT_ONE; INPUTS];
        for (pair, &n) in inputs.chunks_exact_mut(2).zip(&counts) {
            // An unseen context says nothing.
            let (s, d) = if n == [0, 0] {
                (0, 0)
            } else {
                let p = estimate_12(n) as i32;
                (i32::from(stretched(n)), (p - 2048) >> 3)
            };
            pair.copy_from_slice(&[s, d]);
        }
        let sets = [
            total_class(counts[CONTEXTS - 1]),
            self.memory.nearest(y, x),
            total_class(counts[CONTEXTS - 2]),
        ];
        let first: [i32; MIXERS] = std::array::from_fn(|k| dot(&self.first[k][sets[k]], &inputs));
        let second_set = total_class(counts[CONTEXTS - 4]);
        let mut second_inputs = [LOGIT_ONE; MIXERS + 1];
        second_inputs[..MIXERS].copy_from_slice(&first);
        let logit = dot(&self.second[second_set], &second_inputs);
        self.pending = Some(Pending {
            contexts,
            inputs,
            sets,
            first,
            second_set,
            logit,
        });
        probability(logit)
    }

    /// Pixel (y, x), just predicted, is `bit`: every mixer steps toward it and the counts
    /// learn it.
    #[inline]
    fn learn(&mut self, y: usize, x: usize, bit: u8) {
        let p = self.pending.take().expect("a prediction to learn from");
        let target = i32::from(bit) << 12;
        for k in 0..MIXERS {
            let err = target - probability_12(p.first[k]);
            train(
                &mut self.first[k][p.sets[k]],
                &p.inputs,
                err,
                FIRST_RATE_SHIFT,
            );
        }
        let mut second_inputs = [LOGIT_ONE; MIXERS + 1];
        second_inputs[..MIXERS].copy_from_slice(&p.first);
        let err = target - probability_12(p.logit);
        train(
            &mut self.second[p.second_set],
            &second_inputs,
            err,
            SECOND_RATE_SHIFT,
        );
        self.memory.learn(p.contexts, y, x, bit);
    }
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

    /// After a pattern repeats, the mixer is sure of it.
    #[test]
    fn mixer_learns_what_it_sees() {
        let mut m = PageMixer::default();
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
