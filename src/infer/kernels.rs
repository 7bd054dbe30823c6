//! Inner loops of the deterministic network, written so the compiler can vectorize them
//! without changing a single result bit.
//!
//! Each output is its own accumulator, summed in a fixed order (bias, then inputs in
//! index order). Vector instructions only process several independent outputs at once,
//! and Rust never contracts `a * b + c` into an FMA. So the baseline (SSE2) build and
//! the AVX2 build, chosen at run time per network ([`Kernels`]), give identical bits.
//! Output widths common in the model get const-width kernels whose accumulators stay in
//! registers.

#![forbid(unsafe_code)]

use std::hint::black_box;

// On 32-bit x86 without SSE2, f32 arithmetic and libm's f64 functions run on the x87
// unit with extended precision, and the coder's probabilities would depend on when the
// compiler spills registers.
#[cfg(all(target_arch = "x86", not(target_feature = "sse2")))]
compile_error!("vlae-zip needs SSE2 on x86: build for i686 or x86_64, not i586");

/// Whether this thread computes with IEEE subnormals. Flush-to-zero or
/// denormals-are-zero (set by some libraries and fast-math code through the floating-point
/// control register) would change the network's results and so the coder's
/// probabilities; coding refuses to run under them.
pub fn subnormals_are_ieee() -> bool {
    let smallest = black_box(f32::from_bits(1));
    // DAZ reads the subnormal input as 0; FTZ flushes the subnormal result to 0.
    black_box(smallest * black_box(2.0)) == f32::from_bits(2)
        && black_box(f32::MIN_POSITIVE) * black_box(0.5) == f32::from_bits(1 << 22)
}

/// Which build of the network's entry points, and of the context models' loops
/// (`crate::cpu`), runs. Both give the same bits (see above): the choice is one of speed,
/// and a network can be made to run the baseline to check that the two agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// Compiled for the baseline target (SSE2 on x86_64): runs on every CPU.
    Baseline,
    /// Compiled with AVX2 enabled (and, for the coder's loops, BMI1, BMI2, POPCNT and
    /// LZCNT): runs only on x86_64 CPUs that have them.
    Avx2,
}

impl Kernels {
    /// The fastest kernels this CPU runs: [`Kernels::Avx2`] where it has AVX2 and the bit
    /// instructions with it, else [`Kernels::Baseline`].
    pub fn best() -> Kernels {
        Supported::best().get()
    }

    /// Whether this CPU runs these kernels.
    pub fn runs_here(self) -> bool {
        match self {
            Kernels::Baseline => true,
            Kernels::Avx2 => {
                #[cfg(target_arch = "x86_64")]
                {
                    // The bit instructions come with AVX2 on processors that have it, but a
                    // virtual machine may hide them; the coder's loops use them too
                    // (`crate::cpu`), so both fall back to the baseline without them.
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("bmi1")
                        && std::arch::is_x86_feature_detected!("bmi2")
                        && std::arch::is_x86_feature_detected!("popcnt")
                        && std::arch::is_x86_feature_detected!("lzcnt")
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    false
                }
            }
        }
    }

    /// These kernels as [`Supported`], if this CPU runs them.
    pub fn check(self) -> Result<Supported, KernelsUnavailable> {
        if self.runs_here() {
            Ok(Supported(self))
        } else {
            Err(KernelsUnavailable(self))
        }
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kernels::Baseline => "baseline",
            Kernels::Avx2 => "AVX2",
        })
    }
}

/// [`Kernels`] that this CPU has been found to run. Only [`Kernels::check`] and
/// [`Supported::best`] make one, both after asking the CPU, so a `Supported` holding
/// [`Kernels::Avx2`] is proof that the CPU has AVX2 and the bit instructions
/// ([`Kernels::runs_here`]): what lets the network and the coder call the code compiled
/// for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supported(Kernels);

impl Supported {
    /// [`Kernels::best`], checked.
    pub fn best() -> Supported {
        Kernels::Avx2
            .check()
            .unwrap_or(Supported(Kernels::Baseline))
    }

    /// The kernels.
    #[inline]
    pub fn get(self) -> Kernels {
        self.0
    }
}

/// Kernels were asked for that this CPU cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this CPU cannot run the {0} kernels")]
pub struct KernelsUnavailable(pub Kernels);

/// 1.5·2^23: adding it rounds a float of magnitude below 2^22 to an integer
/// (format-spec.md §5, `M`).
pub const ELU_ROUNDER: f32 = 12_582_912.0;
/// log2(e) as binary32 (§5, `L`).
pub const ELU_LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two for the Cody–Waite reduction (§5, `H` and `Lo`).
pub const ELU_LN2_HI: f32 = 0.693_145_75;
pub const ELU_LN2_LO: f32 = 1.428_606_8e-6;
/// 1/2!, 1/3!, …, 1/6! as binary32 (§5, c2..c6).
pub const ELU_TAYLOR: [f32; 5] = [0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0];

/// ELU: x for x > 0, e^x − 1 otherwise.
///
/// e^x is computed as 2^n·p(r) with n = round(x/ln 2) (by the 1.5·2^23 addition trick),
/// r = x − n·ln 2 in two parts (Cody–Waite), p the degree-6 Taylor polynomial (relative
/// error < 2e-7 on |r| ≤ ln 2/2), and 2^n assembled from its bits. Only IEEE +, −, ×
/// and integer operations: it vectorizes, and every machine gets the same bits.
#[inline(always)]
pub fn elu(x: f32) -> f32 {
    let y = x.clamp(-87.0, 0.0);
    let t = y * ELU_LOG2_E + ELU_ROUNDER;
    let n = t - ELU_ROUNDER;
    let r = (y - n * ELU_LN2_HI) - n * ELU_LN2_LO;
    let [c2, c3, c4, c5, c6] = ELU_TAYLOR;
    let p = 1.0 + r * (1.0 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * c6)))));
    let exponent = (t.to_bits() as i32 - ELU_ROUNDER.to_bits() as i32 + 127) as u32;
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

/// `out[g] = bias + Σ_i x[g][i]·w[i, :]` for `(inputs, outputs)` row-major `w`, for G
/// independent inputs at once (`x` is `G × inputs`, `out` is `G × outputs`). Batching
/// gives the CPU G independent accumulator chains per weight row; each output's sum keeps
/// its order, so the result for every g is what G = 1 gives.
#[inline(always)]
pub fn dense<const G: usize>(w: &[f32], bias: Option<&[f32]>, x: &[f32], out: &mut [f32]) {
    struct Dense<'a> {
        w: &'a [f32],
        x: &'a [f32],
        inputs: usize,
        outputs: usize,
    }
    impl Sums for Dense<'_> {
        #[inline(always)]
        fn add_to<A: Accumulators>(&self, acc: &mut A, col: usize) {
            acc.add_rows(
                &self.w[col..],
                self.outputs,
                self.x,
                self.inputs,
                self.inputs,
            );
        }
    }
    let outputs = out.len() / G;
    run::<G>(
        bias,
        out,
        Dense {
            w,
            x,
            inputs: x.len() / G,
            outputs,
        },
    );
}

/// One output position of a convolution for G images at once: `bias`, then for each tap
/// in order (padding taps skipped) and each input channel in order,
/// `+= input[src][g][c]·w[t·cin + c, :]`. `input` is `positions × G × cin`, `out` is
/// `G × cout`.
#[inline(always)]
pub fn conv_at<const G: usize>(
    w: &[f32],
    bias: &[f32],
    cin: usize,
    sources: &[u32],
    input: &[f32],
    out: &mut [f32],
) {
    conv_strided::<G>(w, bias, cin, sources, input, (G * cin, cin), out);
}

/// The sums of [`conv_at`] for G input sets, where tap source `s` starts the first set's
/// input row at `input[s · per_source]` and each further set's `set_stride` after the
/// last. With `per_source = G·cin` and `set_stride = cin` the sets are G images in
/// lockstep. With `per_source = cin` and `set_stride = k·cin` they are G output
/// positions of one image, k inputs apart on every tap (as away from the edges they
/// are; `sources` are then the first position's): positions computed as images in
/// lockstep are, each with the bits it gets alone.
#[inline(always)]
pub fn conv_strided<const G: usize>(
    w: &[f32],
    bias: &[f32],
    cin: usize,
    sources: &[u32],
    input: &[f32],
    (per_source, set_stride): (usize, usize),
    out: &mut [f32],
) {
    struct Conv<'a, const G: usize> {
        w: &'a [f32],
        cin: usize,
        cout: usize,
        sources: &'a [u32],
        input: &'a [f32],
        per_source: usize,
        set_stride: usize,
    }
    impl<const G: usize> Sums for Conv<'_, G> {
        #[inline(always)]
        fn add_to<A: Accumulators>(&self, acc: &mut A, col: usize) {
            let (cin, cout) = (self.cin, self.cout);
            for (t, &s) in self.sources.iter().enumerate() {
                if s != u32::MAX {
                    let at = s as usize * self.per_source;
                    let x = &self.input[at..at + (G - 1) * self.set_stride + cin];
                    acc.add_rows(
                        &self.w[t * cin * cout + col..],
                        cout,
                        x,
                        cin,
                        self.set_stride,
                    );
                }
            }
        }
    }
    run::<G>(
        Some(bias),
        out,
        Conv::<G> {
            w,
            cin,
            cout: bias.len(),
            sources,
            input,
            per_source,
            set_stride,
        },
    );
}

/// Output positions of a convolution over one image, P at a time: for each position, the
/// sum [`conv_at`] computes (bias, then taps in order with that position's padding taps
/// skipped, channels in order), so the bits are the same. One image alone gives a
/// position only a few independent accumulator chains; P positions side by side give the
/// CPU P times as many, as P images in lockstep do. `sources[i]` are position i's taps,
/// `input` is `positions × cin`, `out` is `P × cout`.
#[inline(always)]
pub fn conv_positions<const P: usize>(
    w: &[f32],
    bias: &[f32],
    cin: usize,
    sources: [&[u32]; P],
    input: &[f32],
    out: &mut [f32],
) {
    struct Positions<'a, const P: usize> {
        w: &'a [f32],
        cin: usize,
        cout: usize,
        sources: [&'a [u32]; P],
        input: &'a [f32],
    }
    impl<const P: usize> Sums for Positions<'_, P> {
        #[inline(always)]
        fn add_to<A: Accumulators>(&self, acc: &mut A, col: usize) {
            let (cin, cout) = (self.cin, self.cout);
            for t in 0..self.sources[0].len() {
                let mut xs: [Option<&[f32]>; P] = [None; P];
                for i in 0..P {
                    let s = self.sources[i][t];
                    if s != u32::MAX {
                        xs[i] = Some(&self.input[s as usize * cin..(s as usize + 1) * cin]);
                    }
                }
                acc.add_rows_each(&self.w[t * cin * cout + col..], cout, &xs, cin);
            }
        }
    }
    run::<P>(
        Some(bias),
        out,
        Positions::<P> {
            w,
            cin,
            cout: bias.len(),
            sources,
            input,
        },
    );
}

/// A computation that adds weighted rows into accumulators, for the outputs from column
/// `col` on.
trait Sums {
    fn add_to<A: Accumulators>(&self, acc: &mut A, col: usize);
}

/// G sets of output accumulators.
trait Accumulators {
    /// For each of the first `rows` rows r of `w` (rows `row_stride` apart) in order, and
    /// each g: `acc[g] += x[g·stride + r]·w[r, ..width]`.
    fn add_rows(&mut self, w: &[f32], row_stride: usize, x: &[f32], rows: usize, stride: usize);

    /// The same with each accumulator set's own input row `xs[g]`, or none (adding nothing).
    fn add_rows_each(&mut self, w: &[f32], row_stride: usize, xs: &[Option<&[f32]>], rows: usize);
}

/// Fixed width: the accumulators are an array the compiler keeps in registers.
impl<const W: usize, const G: usize> Accumulators for [[f32; W]; G] {
    #[inline(always)]
    fn add_rows(&mut self, w: &[f32], row_stride: usize, x: &[f32], rows: usize, stride: usize) {
        let x = &x[..(G - 1) * stride + rows];
        for r in 0..rows {
            let row: &[f32; W] = w[r * row_stride..r * row_stride + W]
                .try_into()
                .expect("row width");
            for (g, acc) in self.iter_mut().enumerate() {
                let xv = x[g * stride + r];
                for o in 0..W {
                    acc[o] += xv * row[o];
                }
            }
        }
    }

    #[inline(always)]
    fn add_rows_each(&mut self, w: &[f32], row_stride: usize, xs: &[Option<&[f32]>], rows: usize) {
        for r in 0..rows {
            let row: &[f32; W] = w[r * row_stride..r * row_stride + W]
                .try_into()
                .expect("row width");
            for (acc, x) in self.iter_mut().zip(xs) {
                if let Some(x) = x {
                    let xv = x[r];
                    for o in 0..W {
                        acc[o] += xv * row[o];
                    }
                }
            }
        }
    }
}

/// Any width: G × width accumulators in a slice.
struct Flexible<'a> {
    acc: &'a mut [f32],
    width: usize,
}

impl Accumulators for Flexible<'_> {
    #[inline(always)]
    fn add_rows(&mut self, w: &[f32], row_stride: usize, x: &[f32], rows: usize, stride: usize) {
        for r in 0..rows {
            let row = &w[r * row_stride..r * row_stride + self.width];
            for (g, acc) in self.acc.chunks_exact_mut(self.width).enumerate() {
                let xv = x[g * stride + r];
                acc.iter_mut().zip(row).for_each(|(a, &wi)| *a += xv * wi);
            }
        }
    }

    #[inline(always)]
    fn add_rows_each(&mut self, w: &[f32], row_stride: usize, xs: &[Option<&[f32]>], rows: usize) {
        for r in 0..rows {
            let row = &w[r * row_stride..r * row_stride + self.width];
            for (acc, x) in self.acc.chunks_exact_mut(self.width).zip(xs) {
                if let Some(x) = x {
                    let xv = x[r];
                    acc.iter_mut().zip(row).for_each(|(a, &wi)| *a += xv * wi);
                }
            }
        }
    }
}

/// Most accumulator values kept at once: 12 AVX registers of 8, leaving room for the
/// weight row. Wider outputs are computed in column blocks of 16, each a separate pass
/// over the rows; every output's sum is unchanged.
const MAX_LIVE_ACCUMULATORS: usize = 96;

/// Starts G accumulator sets at `bias` (or 0), adds `sums` and stores them in `out`, with
/// fixed-size accumulators for the widths the model uses.
#[inline(always)]
fn run<const G: usize>(bias: Option<&[f32]>, out: &mut [f32], sums: impl Sums) {
    #[inline(always)]
    fn fixed<const W: usize, const G: usize>(
        bias: Option<&[f32]>,
        out: &mut [f32],
        width: usize,
        col: usize,
        sums: &impl Sums,
    ) {
        let mut acc = [[0f32; W]; G];
        if let Some(b) = bias {
            acc.iter_mut()
                .for_each(|a| a.copy_from_slice(&b[col..col + W]));
        }
        sums.add_to(&mut acc, col);
        for (g, a) in acc.iter().enumerate() {
            out[g * width + col..g * width + col + W].copy_from_slice(a);
        }
    }
    let width = out.len() / G;
    match width {
        8 => fixed::<8, G>(bias, out, width, 0, &sums),
        16 => fixed::<16, G>(bias, out, width, 0, &sums),
        24 => fixed::<24, G>(bias, out, width, 0, &sums),
        w if w % 16 == 0 && w * G > MAX_LIVE_ACCUMULATORS => {
            for col in (0..w).step_by(16) {
                fixed::<16, G>(bias, out, width, col, &sums);
            }
        }
        32 => fixed::<32, G>(bias, out, width, 0, &sums),
        64 => fixed::<64, G>(bias, out, width, 0, &sums),
        _ => {
            for acc in out.chunks_exact_mut(width) {
                match bias {
                    Some(b) => acc.copy_from_slice(b),
                    None => acc.fill(0.0),
                }
            }
            sums.add_to(&mut Flexible { acc: out, width }, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline runs everywhere, the best kernels pass their own check, and AVX2 is
    /// refused exactly where the CPU lacks it.
    #[test]
    fn kernels_are_checked_against_the_cpu() {
        assert_eq!(Kernels::Baseline.check(), Ok(Supported(Kernels::Baseline)));
        assert_eq!(Supported::best().get(), Kernels::best());
        assert!(Kernels::best().check().is_ok());
        let avx2 = Kernels::Avx2.check();
        assert_eq!(avx2.is_ok(), Kernels::Avx2.runs_here());
        assert_eq!(avx2.is_ok(), Kernels::best() == Kernels::Avx2);
        if let Err(e) = avx2 {
            assert_eq!(e.to_string(), "this CPU cannot run the AVX2 kernels");
        }
    }

    /// The bit patterns format-spec.md §5 gives for the ELU constants.
    #[test]
    fn elu_constants_are_the_specified_bits() {
        assert_eq!(ELU_ROUNDER.to_bits(), 0x4B40_0000);
        assert_eq!(ELU_LOG2_E.to_bits(), 0x3FB8_AA3B);
        assert_eq!(ELU_LN2_HI.to_bits(), 0x3F31_7200);
        assert_eq!(ELU_LN2_LO.to_bits(), 0x35BF_BE8E);
        assert_eq!(
            ELU_TAYLOR.map(f32::to_bits),
            [
                0x3F00_0000,
                0x3E2A_AAAB,
                0x3D2A_AAAB,
                0x3C08_8889,
                0x3AB6_0B61
            ]
        );
    }

    #[test]
    fn this_machine_keeps_subnormals() {
        assert!(subnormals_are_ieee());
    }

    #[test]
    fn elu_matches_the_exact_function() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -20.0 + i as f32 * 1e-4;
            let want = if x > 0.0 {
                f64::from(x)
            } else {
                f64::from(x).exp_m1()
            };
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
        let w: Vec<f32> = (0..3 * cin * 24)
            .map(|i| ((i * 7919) % 113) as f32 / 37.0 - 1.5)
            .collect();
        let bias: Vec<f32> = (0..24).map(|i| i as f32 * 0.01).collect();
        let input: Vec<f32> = (0..10 * cin)
            .map(|i| ((i * 31) % 17) as f32 / 7.0 - 1.0)
            .collect();
        let sources = [3u32, u32::MAX, 7];
        let mut fast = [0f32; 24];
        conv_at::<1>(&w, &bias, cin, &sources, &input, &mut fast);
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
        // The same rows batched with other images: image 2 of 3 gets identical bits.
        let batched_input: Vec<f32> = input
            .chunks(cin)
            .flat_map(|x| [vec![9.0; cin], x.to_vec(), vec![-3.0; cin]].concat())
            .collect();
        let mut out = [0f32; 72];
        conv_at::<3>(&w, &bias, cin, &sources, &batched_input, &mut out);
        assert_eq!(
            out[24..48].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            slow.map(f32::to_bits).to_vec()
        );
    }

    /// Positions side by side, some with padding taps that others lack, and a run of
    /// neighbouring positions computed as images in lockstep get the bits each gets
    /// alone, at every output width the kernels special-case.
    #[test]
    fn positions_side_by_side_equal_positions_alone() {
        for width in [16usize, 24, 32, 48] {
            let cin = 3;
            let w: Vec<f32> = (0..4 * cin * width)
                .map(|i| ((i * 7919) % 211) as f32 / 97.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..width).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect();
            let input: Vec<f32> = (0..6 * cin)
                .map(|i| ((i * 31) % 19) as f32 / 9.0 - 1.0)
                .collect();
            let pad = u32::MAX;
            let taps: [[u32; 4]; 4] = [[0, 1, 2, 3], [pad, 1, pad, 4], [5, pad, 0, 2], [pad; 4]];
            let mut side_by_side = vec![0f32; 4 * width];
            conv_positions::<4>(
                &w,
                &bias,
                cin,
                taps.each_ref().map(|t| &t[..]),
                &input,
                &mut side_by_side,
            );
            // Positions 1 to 4 of a row, whose taps read neighbouring inputs.
            let run: [[u32; 4]; 4] = [
                [0, 1, 2, pad],
                [1, 2, 3, pad],
                [2, 3, 4, pad],
                [3, 4, 5, pad],
            ];
            let mut strided = vec![0f32; 4 * width];
            conv_strided::<4>(&w, &bias, cin, &run[0], &input, (cin, cin), &mut strided);
            for (out, sources) in [(&side_by_side, &taps), (&strided, &run)] {
                for (i, t) in sources.iter().enumerate() {
                    let mut alone = vec![0f32; width];
                    conv_at::<1>(&w, &bias, cin, t, &input, &mut alone);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&out[i * width..(i + 1) * width]),
                        bits(&alone),
                        "width {width} position {i} of {sources:?}"
                    );
                }
            }
        }
    }

    /// Wide outputs with 4 images run in column blocks; every image must still get exactly
    /// the bits it gets alone.
    #[test]
    fn column_blocked_batches_equal_single_images() {
        for width in [32usize, 64, 48] {
            let cin = 7;
            let w: Vec<f32> = (0..9 * cin * width)
                .map(|i| ((i * 7919) % 211) as f32 / 97.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..width).map(|i| (i % 5) as f32 * 0.1).collect();
            let sources = [0u32, 1, u32::MAX, 3, 4, 5, 6, 7, 8];
            let image = |g: usize| -> Vec<f32> {
                (0..9 * cin)
                    .map(|i| (((i + 13 * g) * 31) % 19) as f32 / 9.0 - 1.0)
                    .collect()
            };
            // Batched input: position-major, then image, then channel.
            let batched: Vec<f32> = (0..9)
                .flat_map(|s| (0..4).flat_map(move |g| image(g)[s * cin..(s + 1) * cin].to_vec()))
                .collect();
            let mut out4 = vec![0f32; 4 * width];
            conv_at::<4>(&w, &bias, cin, &sources, &batched, &mut out4);
            let mut dense4 = vec![0f32; 4 * width];
            let xs: Vec<f32> = (0..4).flat_map(|g| image(g)[..cin].to_vec()).collect();
            dense::<4>(&w[..cin * width], Some(&bias), &xs, &mut dense4);
            for g in 0..4 {
                let mut one = vec![0f32; width];
                conv_at::<1>(&w, &bias, cin, &sources, &image(g), &mut one);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&out4[g * width..(g + 1) * width]),
                    bits(&one),
                    "conv width {width} image {g}"
                );
                dense::<1>(&w[..cin * width], Some(&bias), &image(g)[..cin], &mut one);
                assert_eq!(
                    bits(&dense4[g * width..(g + 1) * width]),
                    bits(&one),
                    "dense width {width} image {g}"
                );
            }
        }
    }
}
