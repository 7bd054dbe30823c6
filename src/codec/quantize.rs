//! The one place where model outputs become the fixed-point probabilities the coder uses.
//!
//! Everything here is f64 arithmetic with `libm` functions, so it gives the same integers
//! on every machine. Each function is called identically by compressor and decompressor.
#![forbid(unsafe_code)]

use super::memory::{mix, Recall, LOGIT_ONE};
use super::model::PRECISION;

/// √(2π), for the inverse-CDF refinement.
const SQRT_2PI: f64 = 2.506_628_274_631_000_5;

/// Inverse of the standard normal CDF, by Acklam's rational approximation refined with
/// one Halley step (relative error ~1e-15); deterministic because it uses `libm` only.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail(libm::sqrt(-2.0 * libm::log(p)))
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail(libm::sqrt(-2.0 * libm::log(1.0 - p)))
    };
    let e = normal_cdf(x) - p;
    let u = e * SQRT_2PI * libm::exp(x * x / 2.0);
    x - u / (1.0 + x * u / 2.0)
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// The latent discretization: 2^k buckets of equal mass under N(0, 1) in the prior's base
/// space, each represented by its median.
pub struct LatentGrid {
    /// Interior bucket edges, K − 1 of them.
    edges: Vec<f64>,
    centres: Vec<f32>,
    /// The prior's cumulative table: uniform, since the buckets have equal mass.
    prior_cdf: Vec<u32>,
}

impl LatentGrid {
    /// Grid of `2^log2_buckets` buckets; `log2_buckets` must be in 1..=16.
    pub fn new(log2_buckets: u32) -> Self {
        assert!(
            (1..=16).contains(&log2_buckets),
            "bucket count out of range"
        );
        let k = 1usize << log2_buckets;
        let edges = (1..k)
            .map(|j| normal_quantile(j as f64 / k as f64))
            .collect();
        let centres = (0..k)
            .map(|j| normal_quantile((j as f64 + 0.5) / k as f64) as f32)
            .collect();
        let step = 1u32 << (PRECISION as u32 - log2_buckets);
        LatentGrid {
            edges,
            centres,
            prior_cdf: (0..=k as u32).map(|j| j * step).collect(),
        }
    }

    pub fn buckets(&self) -> usize {
        self.centres.len()
    }

    /// The value ε̂ standing for bucket `j`.
    pub fn centre(&self, j: usize) -> f32 {
        self.centres[j]
    }

    /// The prior's cumulative table (exactly uniform).
    pub fn prior_cdf(&self) -> &[u32] {
        &self.prior_cdf
    }

    /// Fills `cdf` (K + 1 entries) with the cumulative table of the posterior
    /// N(`mean`, exp(`log_sd`)²) over the buckets. Every bucket keeps at least one unit of
    /// probability, so any bucket stays codable whatever the posterior.
    pub fn posterior_cdf(&self, mean: f32, log_sd: f32, cdf: &mut [u32]) {
        let k = self.buckets();
        let free = f64::from((1u32 << PRECISION) - k as u32);
        let (mean, inv_sd) = (f64::from(mean), libm::exp(-f64::from(log_sd)));
        cdf[0] = 0;
        let mut prev = 0u32;
        for (j, &e) in self.edges.iter().enumerate() {
            // `as` saturates (NaN → 0), and the running max keeps the table monotone.
            let mass = (normal_cdf((e - mean) * inv_sd) * free) as u32;
            prev = prev.max(mass.min(free as u32));
            cdf[j + 1] = prev + j as u32 + 1;
        }
        cdf[k] = 1 << PRECISION;
    }
}

/// The cumulative table of a uniform choice among `k` (1 ≤ k ≤ 2^16): entry i is
/// ⌊i·2^P / k⌋, so every choice has at least 2^(P−16) units.
pub fn uniform_cdf(k: usize) -> Vec<u32> {
    (0..=k as u64)
        .map(|i| ((i << PRECISION) / k as u64) as u32)
        .collect()
}

/// The cumulative table of the importance-sample index (format-spec.md §3.4): choice k
/// has probability ∝ 2^(w_k), from the log2 weights `w`, every choice keeping at least
/// one unit.
pub fn weights_cdf(w: &[f64]) -> Vec<u32> {
    let k = w.len();
    let top = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = w.iter().map(|&x| libm::exp2(x - top)).collect();
    let total: f64 = e.iter().sum();
    let free = f64::from((1u32 << PRECISION) - k as u32);
    let mut cdf = vec![0u32; k + 1];
    let (mut acc, mut prev) = (0f64, 0u32);
    for i in 0..k - 1 {
        acc += e[i];
        // `as` saturates (NaN → 0); the running max keeps the table monotone.
        let v = (acc / total * free) as u32;
        prev = prev.max(v.min(free as u32));
        cdf[i + 1] = prev + i as u32 + 1;
    }
    cdf[k] = 1 << PRECISION;
    cdf
}

/// log2 of a fixed-point probability `f / 2^P`.
pub fn log2_probability(f: u32) -> f64 {
    libm::log2(f64::from(f)) - PRECISION as f64
}

/// The fixed-point probability that a pixel is ink, given its logit: sigmoid in f64,
/// rounded to `PRECISION` bits and kept strictly inside (0, 1).
pub fn pixel_probability(logit: f32) -> u32 {
    let p = 1.0 / (1.0 + libm::exp(-f64::from(logit)));
    let scaled = libm::round(p * f64::from(1u32 << PRECISION)) as u32;
    scaled.clamp(1, (1 << PRECISION) - 1)
}

/// The fixed-point probability that a pixel is ink given its VLAE logit and what the page
/// memory recalls (format-spec.md §3.8): the logit, clamped to ±64, in 1/256 units
/// rounded half away from zero, mixed with the recall, then as [`pixel_probability`].
pub fn remembered_probability(logit: f32, recall: &Recall) -> u32 {
    let one = f64::from(LOGIT_ONE);
    let vlae = libm::round(f64::from(logit.clamp(-64.0, 64.0)) * one) as i32;
    pixel_probability((f64::from(mix(vlae, recall)) / one) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit patterns format-spec.md §4.1 gives for Φ's constants.
    #[test]
    fn normal_constants_are_the_specified_bits() {
        assert_eq!(
            std::f64::consts::FRAC_1_SQRT_2.to_bits(),
            0x3FE6_A09E_667F_3BCD
        );
        assert_eq!(SQRT_2PI.to_bits(), 0x4004_0D93_1FF6_2706);
    }

    #[test]
    fn quantile_inverts_the_cdf() {
        for &p in &[
            1e-12,
            1e-5,
            0.01,
            0.02425,
            0.3,
            0.5,
            0.77,
            0.999,
            1.0 - 1e-9,
        ] {
            let x = normal_quantile(p);
            assert!((normal_cdf(x) - p).abs() < 1e-13 * p.max(1e-3), "p={p}");
        }
        assert_eq!(normal_quantile(0.5), 0.0);
    }

    #[test]
    fn grid_buckets_have_equal_prior_mass_and_ordered_centres() {
        let g = LatentGrid::new(8);
        assert_eq!(g.buckets(), 256);
        let cdf = g.prior_cdf();
        assert!(cdf.windows(2).all(|w| w[1] - w[0] == 1 << (PRECISION - 8)));
        assert!(g.centres.windows(2).all(|w| w[0] < w[1]));
        assert!((g.centre(128) - 0.004_896).abs() < 1e-5);
    }

    #[test]
    fn posterior_tables_are_valid_for_any_parameters() {
        let g = LatentGrid::new(6);
        let mut cdf = vec![0u32; 65];
        for &(m, s) in &[
            (0.0, 0.0),
            (0.3, -3.0),
            (-9.0, -12.0),
            (40.0, 2.0),
            (f32::NAN, 0.0),
            (0.0, f32::NAN),
            (0.0, -200.0),
            (1.0, 80.0),
        ] {
            g.posterior_cdf(m, s, &mut cdf);
            assert_eq!((cdf[0], cdf[64]), (0, 1 << PRECISION));
            assert!(cdf.windows(2).all(|w| w[1] > w[0]), "({m}, {s})");
        }
        // A narrow posterior puts nearly all mass on the bucket holding its mean.
        g.posterior_cdf(g.centre(40), -6.0, &mut cdf);
        assert!(cdf[41] - cdf[40] > (1 << PRECISION) - 1000);
    }

    #[test]
    fn index_tables_are_valid_and_follow_the_weights() {
        for w in [
            vec![0.0],
            vec![0.0, 0.0, 0.0],
            vec![-500.0, 3.0, 2.0, f64::NAN],
            vec![1e9, -1e9],
        ] {
            let cdf = weights_cdf(&w);
            assert_eq!((cdf[0], cdf[w.len()]), (0, 1 << PRECISION));
            assert!(cdf.windows(2).all(|p| p[1] > p[0]), "{w:?}");
        }
        let cdf = weights_cdf(&[0.0, 1.0]);
        let (a, b) = (cdf[1], cdf[2] - cdf[1]);
        assert!((f64::from(b) / f64::from(a) - 2.0).abs() < 1e-5);
        let u = uniform_cdf(3);
        assert_eq!(u, vec![0, 5_592_405, 11_184_810, 1 << PRECISION]);
    }

    #[test]
    fn pixel_probabilities_stay_inside_the_open_interval() {
        assert_eq!(pixel_probability(0.0), 1 << (PRECISION - 1));
        assert_eq!(pixel_probability(1000.0), (1 << PRECISION) - 1);
        assert_eq!(pixel_probability(-1000.0), 1);
        assert_eq!(pixel_probability(f32::NAN), 1);
        assert!(pixel_probability(2.0) > pixel_probability(1.0));
    }
}
