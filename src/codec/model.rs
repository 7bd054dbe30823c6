//! Entropy models over fixed-point probabilities, for constriction's ANS coder. They hold
//! integers only; the floats were turned into these integers in `quantize`.
#![forbid(unsafe_code)]

use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel};
use std::borrow::Borrow;
use std::num::NonZeroU32;

/// Bits of fixed-point probability (constriction's default for 32-bit words).
pub const PRECISION: usize = 24;

/// The ANS coder: 32-bit words, 64-bit state.
pub type Coder = constriction::stream::stack::DefaultAnsCoder;

const ONE: u32 = 1 << PRECISION;

/// A binary distribution given by P(1) in fixed point, strictly between 0 and 1.
#[derive(Clone, Copy, Debug)]
pub struct Bernoulli {
    p_one: u32,
}

impl Bernoulli {
    /// `p_one` must lie in `1..2^PRECISION` (as [`super::quantize::pixel_probability`] gives).
    pub fn new(p_one: u32) -> Self {
        debug_assert!(p_one > 0 && p_one < ONE);
        Bernoulli { p_one }
    }
}

impl EntropyModel<PRECISION> for Bernoulli {
    type Symbol = u8;
    type Probability = u32;
}

impl EncoderModel<PRECISION> for Bernoulli {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl Borrow<u8>,
    ) -> Option<(u32, NonZeroU32)> {
        let p_zero = ONE - self.p_one;
        match *symbol.borrow() {
            0 => Some((0, NonZeroU32::new(p_zero)?)),
            1 => Some((p_zero, NonZeroU32::new(self.p_one)?)),
            _ => None,
        }
    }
}

impl DecoderModel<PRECISION> for Bernoulli {
    fn quantile_function(&self, quantile: u32) -> (u8, u32, NonZeroU32) {
        let p_zero = ONE - self.p_one;
        if quantile < p_zero {
            (0, 0, NonZeroU32::new(p_zero).expect("p_one < 1"))
        } else {
            (1, p_zero, NonZeroU32::new(self.p_one).expect("p_one > 0"))
        }
    }
}

/// A distribution over `0..K` given by its cumulative table (K + 1 entries, from 0 to
/// 2^PRECISION, strictly increasing).
#[derive(Clone, Copy, Debug)]
pub struct Categorical<'a> {
    cdf: &'a [u32],
}

impl<'a> Categorical<'a> {
    pub fn new(cdf: &'a [u32]) -> Self {
        debug_assert!(cdf.first() == Some(&0) && cdf.last() == Some(&ONE));
        Categorical { cdf }
    }
}

impl EntropyModel<PRECISION> for Categorical<'_> {
    type Symbol = usize;
    type Probability = u32;
}

impl EncoderModel<PRECISION> for Categorical<'_> {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl Borrow<usize>,
    ) -> Option<(u32, NonZeroU32)> {
        let j = *symbol.borrow();
        let (lo, hi) = (*self.cdf.get(j)?, *self.cdf.get(j + 1)?);
        Some((lo, NonZeroU32::new(hi - lo)?))
    }
}

impl DecoderModel<PRECISION> for Categorical<'_> {
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        // The last bucket whose left edge is at or below the quantile.
        let j = self.cdf[1..].partition_point(|&c| c <= quantile);
        let (lo, hi) = (self.cdf[j], self.cdf[j + 1]);
        (
            j,
            lo,
            NonZeroU32::new(hi - lo).expect("strictly increasing table"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use constriction::stream::{Decode, Encode};

    #[test]
    fn models_round_trip_through_the_coder() {
        let cdf = [0, 1, 5, 1000, ONE - 7, ONE];
        let symbols: Vec<usize> = (0..500).map(|i| (i * 7 + i / 3) % 5).collect();
        let bits: Vec<u8> = (0..500).map(|i| u8::from(i % 3 == 0)).collect();
        let mut coder = Coder::new();
        for (&s, &b) in symbols.iter().zip(&bits).rev() {
            coder.encode_symbol(b, Bernoulli::new(3 << 20)).unwrap();
            coder.encode_symbol(s, Categorical::new(&cdf)).unwrap();
        }
        for (&s, &b) in symbols.iter().zip(&bits) {
            assert_eq!(coder.decode_symbol(Categorical::new(&cdf)).unwrap(), s);
            assert_eq!(coder.decode_symbol(Bernoulli::new(3 << 20)).unwrap(), b);
        }
        assert!(coder.is_empty());
    }

    #[test]
    fn quantiles_map_to_the_bucket_that_contains_them() {
        let cdf = [0, 1, 5, 1000, ONE];
        let m = Categorical::new(&cdf);
        assert_eq!(m.quantile_function(0).0, 0);
        assert_eq!(m.quantile_function(1).0, 1);
        assert_eq!(m.quantile_function(4).0, 1);
        assert_eq!(m.quantile_function(5).0, 2);
        assert_eq!(m.quantile_function(ONE - 1).0, 3);
        assert!(m.left_cumulative_and_probability(4).is_none());
    }
}
