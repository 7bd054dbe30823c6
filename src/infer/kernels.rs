//! Inner loops of the deterministic network, written so the compiler can vectorize them
//! without changing a single result bit.
//!
//! Each output is its own accumulator, summed in a fixed order (bias, then inputs in
//! index order). Vector instructions only process several independent outputs at once,
//! and Rust never contracts `a * b + c` into an FMA. So the baseline (SSE2) build and
//! the AVX2 build, chosen at run time, give identical bits. Output widths common in
//! the model get const-width kernels whose accumulators stay in registers.

use std::sync::atomic::{AtomicBool, Ordering};

static BASELINE_ONLY: AtomicBool = AtomicBool::new(false);

/// Disables the AVX2 kernels (to compare them with the baseline in tests and benches).
pub fn force_baseline(on: bool) {
    BASELINE_ONLY.store(on, Ordering::Relaxed);
}

/// Whether the AVX2 builds of the entry points should run.
#[inline]
pub fn use_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !BASELINE_ONLY.load(Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// ELU: x for x > 0, e^x − 1 otherwise.
///
/// e^x is computed as 2^n·p(r) with n = round(x/ln 2) (by the 1.5·2^23 addition trick),
/// r = x − n·ln 2 in two parts (Cody–Waite), p the degree-6 Taylor polynomial (relative
/// error < 2e-7 on |r| ≤ ln 2/2), and 2^n assembled from its bits. Only IEEE +, −, ×
/// and integer operations: it vectorizes, and every machine gets the same bits.
#[inline(always)]
pub fn elu(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let y = x.clamp(-87.0, 0.0);
    let t = y * LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let exponent = (t.to_bits() as i32 - MAGIC.to_bits() as i32 + 127) as u32;
    let em1 = p * f32::from_bits(exponent << 23) - 1.0;
    if x > 0.0 {
        x
    } else {
        em1
    }
}

/// ELU of every element.
#[inline(always)]
pub fn elu_all(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = elu(*x));
}

/// `out = bias + Σ_i x[i]·w[i, :]` for `(inputs, outputs)` row-major `w`.
#[inline(always)]
pub fn dense(w: &[f32], bias: Option<&[f32]>, x: &[f32], out: &mut [f32]) {
    match out.len() {
        8 => dense_w::<8>(w, bias, x, out),
        16 => dense_w::<16>(w, bias, x, out),
        24 => dense_w::<24>(w, bias, x, out),
        32 => dense_w::<32>(w, bias, x, out),
        64 => dense_w::<64>(w, bias, x, out),
        n => {
            match bias {
                Some(b) => out.copy_from_slice(b),
                None => out.fill(0.0),
            }
            for (&xi, row) in x.iter().zip(w.chunks_exact(n)) {
                out.iter_mut().zip(row).for_each(|(acc, &wi)| *acc += xi * wi);
            }
        }
    }
}

#[inline(always)]
fn dense_w<const W: usize>(w: &[f32], bias: Option<&[f32]>, x: &[f32], out: &mut [f32]) {
    let mut acc = [0f32; W];
    if let Some(b) = bias {
        acc.copy_from_slice(b);
    }
    for (&xi, row) in x.iter().zip(w.chunks_exact(W)) {
        let row: &[f32; W] = row.try_into().expect("row width");
        for o in 0..W {
            acc[o] += xi * row[o];
        }
    }
    out.copy_from_slice(&acc);
}

/// One output position of a convolution: `bias`, then for each tap in order (padding taps
/// skipped) and each input channel in order, `+= input[src][c]·w[t·cin + c, :]`.
#[inline(always)]
pub fn conv_at(w: &[f32], bias: &[f32], cin: usize, sources: &[u32], input: &[f32], out: &mut [f32]) {
    match out.len() {
        8 => conv_w::<8>(w, bias, cin, sources, input, out),
        16 => conv_w::<16>(w, bias, cin, sources, input, out),
        24 => conv_w::<24>(w, bias, cin, sources, input, out),
        32 => conv_w::<32>(w, bias, cin, sources, input, out),
        64 => conv_w::<64>(w, bias, cin, sources, input, out),
        cout => {
            out.copy_from_slice(bias);
            for (t, &s) in sources.iter().enumerate() {
                if s == u32::MAX {
                    continue;
                }
                let x = &input[s as usize * cin..(s as usize + 1) * cin];
                for (&xi, row) in x.iter().zip(w[t * cin * cout..(t + 1) * cin * cout].chunks_exact(cout)) {
                    out.iter_mut().zip(row).for_each(|(acc, &wi)| *acc += xi * wi);
                }
            }
        }
    }
}

#[inline(always)]
fn conv_w<const W: usize>(w: &[f32], bias: &[f32], cin: usize, sources: &[u32], input: &[f32], out: &mut [f32]) {
    let mut acc = [0f32; W];
    acc.copy_from_slice(bias);
    for (t, &s) in sources.iter().enumerate() {
        if s == u32::MAX {
            continue;
        }
        let x = &input[s as usize * cin..(s as usize + 1) * cin];
        for (&xi, row) in x.iter().zip(w[t * cin * W..(t + 1) * cin * W].chunks_exact(W)) {
            let row: &[f32; W] = row.try_into().expect("row width");
            for o in 0..W {
                acc[o] += xi * row[o];
            }
        }
    }
    out.copy_from_slice(&acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elu_matches_the_exact_function() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -20.0 + i as f32 * 1e-4;
            let want = if x > 0.0 { f64::from(x) } else { f64::from(x).exp_m1() };
            worst = worst.max((f64::from(elu(x)) - want).abs());
        }
        assert!(worst < 2e-7, "worst error {worst}");
        assert_eq!(elu(-1000.0), -1.0);
        assert_eq!(elu(3.5), 3.5);
        assert_eq!(elu(0.0), 0.0);
    }

    #[test]
    fn fixed_width_kernels_equal_the_general_loop_bit_for_bit() {
        let cin = 5;
        let w: Vec<f32> = (0..3 * cin * 24).map(|i| ((i * 7919) % 113) as f32 / 37.0 - 1.5).collect();
        let bias: Vec<f32> = (0..24).map(|i| i as f32 * 0.01).collect();
        let input: Vec<f32> = (0..10 * cin).map(|i| ((i * 31) % 17) as f32 / 7.0 - 1.0).collect();
        let sources = [3u32, u32::MAX, 7];
        let mut fast = [0f32; 24];
        conv_at(&w, &bias, cin, &sources, &input, &mut fast);
        let mut slow = [0f32; 24];
        for o in 0..24 {
            let mut acc = bias[o];
            for (t, &s) in sources.iter().enumerate().filter(|(_, &s)| s != u32::MAX) {
                for c in 0..cin {
                    acc += input[s as usize * cin + c] * w[(t * cin + c) * 24 + o];
                }
            }
            slow[o] = acc;
        }
        assert_eq!(fast.map(f32::to_bits), slow.map(f32::to_bits));
    }
}
