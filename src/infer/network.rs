//! The VLAE evaluated with a fixed order of operations, for the coder.
//!
//! Every dot product starts from its bias and adds inputs in index order (taps, then
//! channels); vectorization only ever runs across independent outputs, never inside one
//! sum (see [`kernels`]). Rust never fuses `a * b + c` into an FMA on its own, and the
//! only transcendental function, ELU's exponential, is computed with basic IEEE
//! operations, so the same weights give bit-identical results on every machine, thread
//! count, batch size and SIMD level. Results agree with the candle model only to
//! float tolerance, which is all the ELBO needs; what must agree exactly is compressor
//! and decompressor, and both run this code.

use super::kernels::{self, elu, elu_all, Kernels, KernelsUnavailable, Supported};
use super::weights::{Fingerprint, ModelError, Weights};
use crate::arch::{
    Architecture, ConvSpec, DecoderLayers, DenseSpec, EncoderLayers, MadeLayers, PixelCnnLayers,
};
use crate::config::VlaeConfig;
use crate::container::ModelId;
use crate::geometry::{Canvas, TapTable};

/// Defines `$name`, which runs the `#[inline(always)]` method `$body` compiled for AVX2
/// when the receiver's `kernels` field ([`Supported`]) says [`Kernels::Avx2`], and for
/// the baseline target otherwise. Both builds give the same bits (see [`kernels`]).
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident $(<const $g:ident>)? / $avx2:ident => $body:ident (&mut $s:ident) $args:tt -> $ret:ty) => {
        simd_dispatch!(@emit $(#[$doc])* $vis $name [$($g)?] $avx2 $body [&mut $s] $s $args $ret);
    };
    ($(#[$doc:meta])* $vis:vis fn $name:ident $(<const $g:ident>)? / $avx2:ident => $body:ident (&$s:ident) $args:tt -> $ret:ty) => {
        simd_dispatch!(@emit $(#[$doc])* $vis $name [$($g)?] $avx2 $body [&$s] $s $args $ret);
    };
    (@emit $(#[$doc:meta])* $vis:vis $name:ident [$($g:ident)?] $avx2:ident $body:ident [$($recv:tt)+] $s:ident ($($arg:ident: $ty:ty),*) $ret:ty) => {
        $(#[$doc])*
        $vis fn $name$(<const $g: usize>)?($($recv)+, $($arg: $ty),*) -> $ret {
            match $s.kernels.get() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX2: a `Supported` holds `Kernels::Avx2` only after
                // `is_x86_feature_detected!("avx2")` said so (`Kernels::check`).
                Kernels::Avx2 => unsafe { $s.$avx2$(::<$g>)?($($arg),*) },
                _ => $s.$body$(::<$g>)?($($arg),*),
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2$(<const $g: usize>)?($($recv)+, $($arg: $ty),*) -> $ret {
            $s.$body$(::<$g>)?($($arg),*)
        }
    };
}

/// A dense layer (or 1×1 convolution) with `(inputs, outputs)` row-major weights.
struct Dense {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    outputs: usize,
}

impl Dense {
    fn load(wts: &Weights, spec: &DenseSpec) -> Result<Self, ModelError> {
        let prefix = &spec.name;
        Ok(Dense {
            w: wts.take(&format!("{prefix}.weight"), &[spec.inputs, spec.outputs])?,
            b: if spec.bias {
                Some(wts.take(&format!("{prefix}.bias"), &[spec.outputs])?)
            } else {
                None
            },
            outputs: spec.outputs,
        })
    }

    /// `out[g] = b + Σ_i x[g][i]·w[i, :]` for G inputs, summed in input order.
    #[inline(always)]
    fn apply<const G: usize>(&self, x: &[f32], out: &mut [f32]) {
        kernels::dense::<G>(&self.w, self.b.as_deref(), x, out);
    }

    /// The layer at every position of G images (`x` is `positions × G × inputs`, `out`
    /// `positions × G × outputs`); a single image [`POSITIONS_AT_ONCE`] positions at a
    /// time, with the bits one position alone gets.
    #[inline(always)]
    fn apply_positions<const G: usize>(&self, x: &[f32], out: &mut [f32]) {
        let inputs = x.len() / (out.len() / self.outputs);
        let (mut x, mut out) = (x, out);
        if G == 1 {
            let (chunk_in, chunk_out) =
                (POSITIONS_AT_ONCE * inputs, POSITIONS_AT_ONCE * self.outputs);
            let full = out.len() / chunk_out;
            for (xs, o) in x
                .chunks_exact(chunk_in)
                .zip(out.chunks_exact_mut(chunk_out))
            {
                self.apply::<POSITIONS_AT_ONCE>(xs, o);
            }
            (x, out) = (&x[full * chunk_in..], &mut out[full * chunk_out..]);
        }
        for (xs, o) in x
            .chunks_exact(G * inputs)
            .zip(out.chunks_exact_mut(G * self.outputs))
        {
            self.apply::<G>(xs, o);
        }
    }
}

/// Output positions a single image's convolutions compute side by side.
const POSITIONS_AT_ONCE: usize = 4;

/// A convolution over a tap table with `(taps·C_in, C_out)` weights.
struct Conv {
    table: TapTable,
    dense: Dense,
    cin: usize,
    /// Per group of [`POSITIONS_AT_ONCE`] output positions from 0: its step if it is a
    /// run ([`TapTable::run_step`]).
    runs: Vec<Option<usize>>,
}

impl Conv {
    fn load(wts: &Weights, spec: &ConvSpec) -> Result<Self, ModelError> {
        let dense = Dense::load(
            wts,
            &DenseSpec {
                name: spec.name.clone(),
                inputs: spec.table.taps * spec.cin,
                outputs: spec.cout,
                bias: true,
            },
        )?;
        let runs = (0..spec.table.n_out / POSITIONS_AT_ONCE)
            .map(|n| {
                spec.table
                    .run_step(n * POSITIONS_AT_ONCE, POSITIONS_AT_ONCE)
            })
            .collect();
        Ok(Conv {
            table: spec.table.clone(),
            dense,
            cin: spec.cin,
            runs,
        })
    }

    /// Output position `p` from `input` (`n_in × C_in`): bias, then taps in order,
    /// channels in order; padding taps add nothing.
    #[inline(always)]
    fn apply_at<const G: usize>(&self, input: &[f32], p: usize, out: &mut [f32]) {
        let bias = self.dense.b.as_deref().expect("conv has a bias");
        kernels::conv_at::<G>(
            &self.dense.w,
            bias,
            self.cin,
            self.table.sources(p),
            input,
            out,
        );
    }

    /// Output positions `0..n` for G images (`input` is `n_in × G × C_in`, `out` is
    /// `n × G × C_out`). A single image is computed [`POSITIONS_AT_ONCE`] positions at a
    /// time; every position's sum is what [`Self::apply_at`] computes, so the bits are
    /// the same.
    #[inline(always)]
    fn apply_positions<const G: usize>(&self, input: &[f32], out: &mut [f32]) {
        let width = G * self.dense.outputs;
        let bias = self.dense.b.as_deref().expect("conv has a bias");
        let mut done = 0;
        if G == 1 {
            for (n, o) in out.chunks_exact_mut(POSITIONS_AT_ONCE * width).enumerate() {
                let at = n * POSITIONS_AT_ONCE;
                let (w, cin) = (&self.dense.w, self.cin);
                if let Some(step) = self.runs[n] {
                    let sources = self.table.sources(at);
                    let strides = (cin, step * cin);
                    kernels::conv_strided::<POSITIONS_AT_ONCE>(
                        w, bias, cin, sources, input, strides, o,
                    );
                } else {
                    let sources = std::array::from_fn(|i| self.table.sources(at + i));
                    kernels::conv_positions::<POSITIONS_AT_ONCE>(w, bias, cin, sources, input, o);
                }
                done = at + POSITIONS_AT_ONCE;
            }
        }
        for (p, o) in out.chunks_exact_mut(width).enumerate().skip(done) {
            self.apply_at::<G>(input, p, o);
        }
    }

    /// Every output position for G images (`input` is `n_in × G × C_in`, the result
    /// `n_out × G × C_out`), followed by ELU.
    #[inline(always)]
    fn apply_all_elu<const G: usize>(&self, input: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.table.n_out * G * self.dense.outputs];
        self.apply_positions::<G>(input, &mut out);
        elu_all(&mut out);
        out
    }
}

/// The first `n` pixels (0/1) of G images as a layer reads them: `n × G` floats, the
/// images interleaved position by position.
fn interleaved<const G: usize>(images: [&[u8]; G], n: usize) -> Vec<f32> {
    let mut x = vec![0f32; n * G];
    for (g, image) in images.iter().enumerate() {
        for (i, &v) in image[..n].iter().enumerate() {
            x[i * G + g] = f32::from(v);
        }
    }
    x
}

/// q(z|x) as (mean, log standard deviation) per latent dimension.
pub struct Posterior {
    pub mean: Vec<f32>,
    pub log_sd: Vec<f32>,
}

struct Encoder {
    layers: EncoderLayers<Conv, Dense>,
    latent: usize,
    kernels: Supported,
}

impl Encoder {
    simd_dispatch!(fn forward<const G> / forward_avx2 => forward_body(&self)(images: [&[u8]; G]) -> [Posterior; G]);

    #[inline(always)]
    fn forward_body<const G: usize>(&self, images: [&[u8]; G]) -> [Posterior; G] {
        let x = interleaved(images, self.layers.conv_full.table.n_in);
        let h = self.layers.conv_full.apply_all_elu::<G>(&x);
        let h = self.layers.conv_half.apply_all_elu::<G>(&h);
        let h = self.layers.conv_quarter.apply_all_elu::<G>(&h);
        let a = self.layers.res_a.apply_all_elu::<G>(&h);
        let c = self.layers.res_b.dense.outputs;
        let positions = self.layers.res_b.table.n_out;
        let mut r = vec![0f32; positions * G * c];
        self.layers.res_b.apply_positions::<G>(&a, &mut r);
        // The head reads each image's map flattened (position-major), so gather it per image.
        let mut flat = vec![0f32; G * positions * c];
        for p in 0..positions {
            for g in 0..G {
                for o in 0..c {
                    let at = (p * G + g) * c + o;
                    flat[(g * positions + p) * c + o] = elu(h[at] + r[at]);
                }
            }
        }
        let d = self.latent;
        let mut out = vec![0f32; G * 2 * d];
        self.layers.head.apply::<G>(&flat, &mut out);
        std::array::from_fn(|g| {
            let o = &out[g * 2 * d..(g + 1) * 2 * d];
            Posterior {
                mean: o[..d].to_vec(),
                log_sd: o[d..].to_vec(),
            }
        })
    }
}

struct CondDecoder {
    layers: DecoderLayers<Conv, Dense>,
    kernels: Supported,
}

impl CondDecoder {
    simd_dispatch!(fn forward<const G> / forward_avx2 => forward_body(&self)(zs: [&[f32]; G]) -> Vec<f32>);

    /// The conditioning maps of G latents, `pixels × G × cond_channels`.
    #[inline(always)]
    fn forward_body<const G: usize>(&self, zs: [&[f32]; G]) -> Vec<f32> {
        let z: Vec<f32> = zs.concat();
        let mut fc = vec![0f32; G * self.layers.fc.outputs];
        self.layers.fc.apply::<G>(&z, &mut fc);
        // fc gives each image's 7×7 map position-major; interleave the images per position.
        let c7 = self.layers.up_half.cin;
        let positions = self.layers.fc.outputs / c7;
        let mut h = vec![0f32; fc.len()];
        for g in 0..G {
            for p in 0..positions {
                let src = &fc[(g * positions + p) * c7..(g * positions + p + 1) * c7];
                h[(p * G + g) * c7..(p * G + g + 1) * c7].copy_from_slice(src);
            }
        }
        elu_all(&mut h);
        let h = self.layers.up_half.apply_all_elu::<G>(&h);
        self.layers.up_full.apply_all_elu::<G>(&h)
    }
}

struct PixelCnn {
    layers: PixelCnnLayers<Conv, Dense>,
    channels: usize,
    /// Pixels per tile.
    pixels: usize,
    /// What the input layer reads: the tile, and with context its surround.
    canvas: Canvas,
    kernels: Supported,
}

/// The PixelCNN's incremental state for G images decoded in lockstep: computing pixel p's
/// logit needs one new position per layer, read from the activations of the positions
/// before it. The G images share every weight load, and each image's arithmetic is
/// exactly what it would be alone.
pub struct PixelState<'n, const G: usize> {
    net: &'n PixelCnn,
    /// The canvas as known so far (0/1), the rest 0: `canvas pixels × G`.
    x: Vec<f32>,
    /// Conditioning projections per layer (the input layer, then each block):
    /// `pixels × G × channels`.
    cond: Vec<Vec<f32>>,
    /// ELU of each block's input at every position reached so far: `pixels × G × channels`.
    acts: Vec<Vec<f32>>,
    scratch: [Vec<f32>; 3],
    /// The network's, here for [`simd_dispatch!`].
    kernels: Supported,
}

impl<'n, const G: usize> PixelState<'n, G> {
    /// A fresh state from the conditioning projections and each image's canvas.
    fn new(net: &'n PixelCnn, cond: Vec<Vec<f32>>, canvases: [&[u8]; G]) -> Self {
        let gc = G * net.channels;
        PixelState {
            net,
            x: interleaved(canvases, net.canvas.pixels()),
            cond,
            acts: vec![vec![0.0; net.pixels * gc]; net.layers.blocks.len()],
            scratch: [vec![0.0; gc], vec![0.0; gc], vec![0.0; gc]],
            kernels: net.kernels,
        }
    }

    simd_dispatch!(
        /// The Bernoulli logits of pixel `p` of every image; all pixels before `p` must
        /// have been set.
        pub fn logit / logit_avx2 => logit_body(&mut self)(p: usize) -> [f32; G]
    );

    #[inline(always)]
    fn logit_body(&mut self, p: usize) -> [f32; G] {
        let net = self.net;
        let gc = G * net.channels;
        let cond = |layer: usize| &self.cond[layer][p * gc..(p + 1) * gc];
        let [h, r, m] = &mut self.scratch;
        net.layers.input.apply_at::<G>(&self.x, p, h);
        h.iter_mut().zip(cond(0)).for_each(|(v, k)| *v += k);
        for (i, blk) in net.layers.blocks.iter().enumerate() {
            let act = &mut self.acts[i];
            for (a, &v) in act[p * gc..(p + 1) * gc].iter_mut().zip(h.iter()) {
                *a = elu(v);
            }
            blk.masked.apply_at::<G>(act, p, r);
            for (v, k) in r.iter_mut().zip(cond(i + 1)) {
                *v = elu(*v + k);
            }
            blk.mix.apply::<G>(r, m);
            h.iter_mut().zip(m.iter()).for_each(|(v, k)| *v += k);
        }
        elu_all(h);
        let mut logits = [0f32; G];
        net.layers.out.apply::<G>(h, &mut logits);
        logits
    }

    /// Records tile pixel `p` of image `g`.
    pub fn set(&mut self, p: usize, g: usize, value: u8) {
        self.x[self.net.canvas.of_tile(p) * G + g] = f32::from(value);
    }
}

impl PixelCnn {
    simd_dispatch!(fn logits_known / logits_known_avx2 => logits_known_body(&self)(cond: &[Vec<f32>], canvas: &[f32], reach: usize) -> Vec<f32>);

    /// The logits of positions `0..reach` of a tile whose pixels are all known, as the
    /// encoder has them: layer by layer over all positions, where decoding must go pixel
    /// by pixel. `cond` is the tile's projections, `canvas` its canvas with the tile
    /// filled in. Every value is computed by the same operations in the same order as
    /// [`PixelState::logit`] computes it (the masks keep each position from reading later
    /// ones), so the bits are identical, and the positions side by side give the CPU the
    /// independent accumulator chains that one pixel at a time lacks.
    #[inline(always)]
    fn logits_known_body(&self, cond: &[Vec<f32>], canvas: &[f32], reach: usize) -> Vec<f32> {
        // Plain loops, not closures: closures do not inherit the AVX2 build.
        let n = reach * self.channels;
        let mut h = vec![0f32; n];
        self.layers.input.apply_positions::<1>(canvas, &mut h);
        for j in 0..n {
            h[j] += cond[0][j];
        }
        let (mut act, mut r, mut m) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        for (i, blk) in self.layers.blocks.iter().enumerate() {
            for j in 0..n {
                act[j] = elu(h[j]);
            }
            blk.masked.apply_positions::<1>(&act, &mut r);
            let c = &cond[i + 1][..n];
            for j in 0..n {
                r[j] = elu(r[j] + c[j]);
            }
            blk.mix.apply_positions::<1>(&r, &mut m);
            for j in 0..n {
                h[j] += m[j];
            }
        }
        for v in h.iter_mut() {
            *v = elu(*v);
        }
        let mut logits = vec![0f32; reach];
        self.layers.out.apply_positions::<1>(&h, &mut logits);
        logits
    }

    simd_dispatch!(fn projections<const G> / projections_avx2 => projections_body(&self)(cond_map: &[f32]) -> Vec<Vec<f32>>);

    /// G conditioning maps (`pixels × G × cz`) projected for each layer (the input layer,
    /// then each block): per layer `pixels × G × channels`.
    #[inline(always)]
    fn projections_body<const G: usize>(&self, cond_map: &[f32]) -> Vec<Vec<f32>> {
        // A loop, not a closure: closures do not inherit the AVX2 build of this function.
        let denses = std::iter::once(&self.layers.input_cond)
            .chain(self.layers.blocks.iter().map(|b| &b.cond));
        let mut cond = Vec::with_capacity(self.layers.blocks.len() + 1);
        for dense in denses {
            let mut out = vec![0f32; self.pixels * G * self.channels];
            dense.apply_positions::<G>(cond_map, &mut out);
            cond.push(out);
        }
        cond
    }
}

/// One MADE step with its masks folded into the weights.
type Made = MadeLayers<Dense>;

/// The prior's incremental state: the flow's intermediate vectors for the latent
/// dimensions decided so far (the rest 0).
pub struct PriorState {
    /// levels[0] = z, levels[s] = output of step s.
    levels: Vec<Vec<f32>>,
    /// Per-step shifts of the dimension being decided.
    pending: Vec<f32>,
    known: usize,
}

impl PriorState {
    /// How many latent dimensions have been decided.
    pub fn known(&self) -> usize {
        self.known
    }
}

struct FlowPrior {
    steps: Vec<Made>,
    latent: usize,
    kernels: Supported,
}

impl FlowPrior {
    fn start(&self) -> PriorState {
        PriorState {
            levels: vec![vec![0.0; self.latent]; self.steps.len() + 1],
            pending: vec![0.0; self.steps.len()],
            known: 0,
        }
    }

    simd_dispatch!(
        /// The total shift T_i = Σ_s μ_s,i of the next dimension i: in the base space of
        /// the prior, ε_i = z_i − T_i.
        fn shift / shift_avx2 => shift_body(&self)(st: &mut PriorState) -> f32
    );

    #[inline(always)]
    fn shift_body(&self, st: &mut PriorState) -> f32 {
        let i = st.known;
        let mut hidden = vec![0f32; self.steps.first().map_or(0, |m| m.hidden.outputs)];
        let mut total = 0f32;
        for (s, made) in self.steps.iter().enumerate() {
            made.hidden.apply::<1>(&st.levels[s], &mut hidden);
            let d = made.output.outputs;
            let mut mu = made.output.b.as_ref().expect("MADE output has a bias")[i];
            for (j, &a) in hidden.iter().enumerate() {
                mu += elu(a) * made.output.w[j * d + i];
            }
            st.pending[s] = mu;
            total += mu;
        }
        total
    }

    /// Decides dimension i = z_i, after [`Self::shift`].
    fn push(&self, st: &mut PriorState, z: f32) {
        let i = st.known;
        st.levels[0][i] = z;
        for s in 0..self.steps.len() {
            st.levels[s + 1][i] = st.levels[s][i] - st.pending[s];
        }
        st.known += 1;
    }
}

/// The whole model for the coder. Each part that runs kernels keeps its own copy of the
/// network's [`Supported`] kernels, which [`Network::with_kernels`] sets in all of them.
pub struct Network {
    encoder: Encoder,
    decoder: CondDecoder,
    pixelcnn: PixelCnn,
    prior: FlowPrior,
    cfg: VlaeConfig,
    fingerprint: Fingerprint,
    id: ModelId,
    parameters: usize,
}

impl Network {
    /// Builds the network from weights, checking every tensor's shape against the
    /// architecture `cfg` describes. It runs the [`Kernels::best`] this CPU has.
    pub fn new(wts: &Weights, cfg: &VlaeConfig) -> Result<Self, ModelError> {
        let kernels = Supported::best();
        let arch = Architecture::new(cfg);
        let conv = |spec: &ConvSpec| Conv::load(wts, spec);
        let dense = |spec: &DenseSpec| Dense::load(wts, spec);
        let encoder = Encoder {
            layers: arch.encoder.try_map(conv, dense)?,
            latent: arch.latent,
            kernels,
        };
        let decoder = CondDecoder {
            layers: arch.decoder.try_map(conv, dense)?,
            kernels,
        };
        let pixelcnn = PixelCnn {
            layers: arch.pixelcnn.try_map(conv, dense)?,
            channels: cfg.pixel_channels,
            pixels: arch.tile_pixels(),
            canvas: arch.canvas,
            kernels,
        };
        let masked = |mut layer: Dense, mask: &[f32]| {
            layer.w.iter_mut().zip(mask).for_each(|(w, m)| *w *= m);
            layer
        };
        let prior = FlowPrior {
            steps: arch
                .prior
                .steps
                .iter()
                .map(|m| {
                    let made = m.try_map(dense)?;
                    Ok(Made {
                        hidden: masked(made.hidden, &arch.prior.mask_hidden),
                        output: masked(made.output, &arch.prior.mask_output),
                    })
                })
                .collect::<Result<_, ModelError>>()?,
            latent: arch.latent,
            kernels,
        };
        Ok(Network {
            encoder,
            decoder,
            pixelcnn,
            prior,
            cfg: cfg.clone(),
            fingerprint: wts.fingerprint(),
            id: wts.id(),
            parameters: wts.parameters(),
        })
    }

    /// Loads weights and config files.
    pub fn load(weights: &std::path::Path, config: &std::path::Path) -> Result<Self, ModelError> {
        let cfg = VlaeConfig::load(config)?;
        Network::new(&Weights::load(weights, &cfg)?, &cfg)
    }

    /// The network running `kernels` instead; an error where this CPU cannot run them.
    /// Every choice gives the same bits: baseline kernels are for checking that.
    pub fn with_kernels(mut self, kernels: Kernels) -> Result<Self, KernelsUnavailable> {
        let kernels = kernels.check()?;
        self.encoder.kernels = kernels;
        self.decoder.kernels = kernels;
        self.pixelcnn.kernels = kernels;
        self.prior.kernels = kernels;
        Ok(self)
    }

    /// The kernels the network runs.
    pub fn kernels(&self) -> Kernels {
        self.encoder.kernels.get()
    }

    pub fn config(&self) -> &VlaeConfig {
        &self.cfg
    }

    /// Identifies weights and config (format-spec.md §1.3).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Whether an archive's model id names this model.
    pub fn is(&self, id: &ModelId) -> bool {
        self.id == *id
    }

    /// The id archives record for this model.
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// Number of weights, as trained (MADE masks not applied).
    pub fn parameters(&self) -> usize {
        self.parameters
    }

    /// Side of the square tile the model codes.
    pub fn tile(&self) -> usize {
        self.cfg.tile
    }

    /// Pixels per tile.
    pub fn tile_pixels(&self) -> usize {
        self.pixelcnn.pixels
    }

    /// q(z|x) for one tile (`tile_pixels` bytes of 0/1).
    pub fn posterior(&self, pixels: &[u8]) -> Posterior {
        let [post] = self.encoder.forward::<1>([pixels]);
        post
    }

    /// q(z|x) for G images at once; each result is what [`Self::posterior`] gives.
    /// Fewer images than `POSITIONS_AT_ONCE` (4) go one by one, positions side by side,
    /// which gives the CPU more independent chains than they give in lockstep.
    pub fn posteriors<const G: usize>(&self, images: [&[u8]; G]) -> [Posterior; G] {
        if G < POSITIONS_AT_ONCE {
            return images.map(|image| self.posterior(image));
        }
        self.encoder.forward::<G>(images)
    }

    /// The conditioning maps of G latents (`pixels × G × cond_channels`); fewer than
    /// [`POSITIONS_AT_ONCE`] one by one, as in [`Self::posteriors`].
    fn cond_maps<const G: usize>(&self, zs: [&[f32]; G]) -> Vec<f32> {
        if G < POSITIONS_AT_ONCE {
            let maps = zs.map(|z| self.decoder.forward::<1>([z]));
            let per_image = maps[0].len() / self.pixelcnn.pixels;
            let mut out = vec![0f32; maps[0].len() * G];
            for (g, map) in maps.iter().enumerate() {
                for (p, v) in map.chunks_exact(per_image).enumerate() {
                    out[(p * G + g) * per_image..][..per_image].copy_from_slice(v);
                }
            }
            return out;
        }
        self.decoder.forward::<G>(zs)
    }

    /// Starts deciding a latent, one dimension at a time.
    pub fn prior_start(&self) -> PriorState {
        self.prior.start()
    }

    /// Shift T_i of the next latent dimension (ε_i = z_i − T_i).
    pub fn prior_shift(&self, st: &mut PriorState) -> f32 {
        self.prior.shift(st)
    }

    /// Fixes the next latent dimension to `z`.
    pub fn prior_push(&self, st: &mut PriorState, z: f32) {
        self.prior.push(st, z)
    }

    /// The latent z decided so far.
    pub fn latent(st: &PriorState) -> &[f32] {
        &st.levels[0]
    }

    /// The window the PixelCNN reads around each tile.
    pub fn canvas(&self) -> Canvas {
        self.pixelcnn.canvas
    }

    /// The Bernoulli logits of pixels `0..reach` of G tiles (`tile_pixels` bytes of 0/1
    /// each) given their latents `zs` and canvases, `reach × G`: what decoding computes
    /// pixel by pixel, bit for bit. Fewer tiles than `POSITIONS_AT_ONCE` (4) are each
    /// evaluated layer by layer over all their positions, which every pixel being known
    /// allows, and which gives the CPU more independent chains than they give in
    /// lockstep. More go pixel by pixel in lockstep as decoding does: layer by layer their
    /// activations would outgrow the cache.
    pub fn pixel_logits<const G: usize>(
        &self,
        zs: [&[f32]; G],
        canvases: [&[u8]; G],
        tiles: [&[u8]; G],
        reach: usize,
    ) -> Vec<f32> {
        let mut logits = vec![0f32; reach * G];
        if G < POSITIONS_AT_ONCE {
            for (g, ((z, canvas), tile)) in zs.iter().zip(canvases).zip(tiles).enumerate() {
                let cond = self.pixelcnn.projections::<1>(&self.cond_maps::<1>([z]));
                let mut x = interleaved([canvas], self.pixelcnn.canvas.pixels());
                for (p, &v) in tile.iter().enumerate() {
                    x[self.pixelcnn.canvas.of_tile(p)] = f32::from(v);
                }
                let known = self.pixelcnn.logits_known(&cond, &x, reach);
                for (p, l) in known.into_iter().enumerate() {
                    logits[p * G + g] = l;
                }
            }
            return logits;
        }
        let mut state = self.pixels_start::<G>(zs, canvases);
        for p in 0..reach {
            logits[p * G..(p + 1) * G].copy_from_slice(&state.logit(p));
            for (g, tile) in tiles.iter().enumerate() {
                state.set(p, g, tile[p]);
            }
        }
        logits
    }

    /// Starts the PixelCNN for G tiles with latents `zs` and canvases `canvases` (each
    /// [`Canvas::pixels`] bytes: what the decoder knows around its tile), to be decoded
    /// in lockstep.
    pub fn pixels_start<const G: usize>(
        &self,
        zs: [&[f32]; G],
        canvases: [&[u8]; G],
    ) -> PixelState<'_, G> {
        let cond = self.pixelcnn.projections::<G>(&self.cond_maps::<G>(zs));
        PixelState::new(&self.pixelcnn, cond, canvases)
    }
}

#[cfg(test)]
mod tests {
    use crate::models::built_in;

    /// The encoder's all-positions evaluation gives every pixel the bits that decoding
    /// computes one pixel at a time, for a model without context and one with, over a
    /// reach that is not a whole number of position groups.
    #[test]
    fn known_pixels_give_the_logits_of_pixel_by_pixel_decoding() {
        for name in ["mnist", "documents"] {
            let net = built_in(name).expect("built in").network().expect("loads");
            let (pixels, canvas) = (net.tile_pixels(), net.canvas());
            let mut seed = 0x9e37_79b9u32;
            let mut ink = || {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                u8::from(seed % 10 < 3)
            };
            let mut known: Vec<u8> = (0..canvas.pixels()).map(|_| ink()).collect();
            let tile: Vec<u8> = (0..pixels).map(|p| known[canvas.of_tile(p)]).collect();
            // The decoder knows nothing inside the tile before decoding it.
            (0..pixels).for_each(|p| known[canvas.of_tile(p)] = 0);
            let z: Vec<f32> = (0..net.config().latent_dim)
                .map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0)
                .collect();
            let reach = pixels - 3;
            let all_at_once = net.pixel_logits::<1>([&z], [&known], [&tile], reach);
            assert_eq!(all_at_once.len(), reach);
            let mut state = net.pixels_start::<1>([&z], [&known]);
            for (p, fast) in all_at_once.iter().enumerate() {
                assert_eq!(
                    state.logit(p)[0].to_bits(),
                    fast.to_bits(),
                    "{name} pixel {p}"
                );
                state.set(p, 0, tile[p]);
            }
        }
    }
}
