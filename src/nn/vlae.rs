//! The VLAE as a candle model, for training and evaluation.
//!
//! Activations are kept as row matrices `(B·positions, channels)`, so a 1×1 convolution is
//! a matmul and any other convolution is a [`Gather`] (im2col over a [`TapTable`]) followed
//! by a matmul. Weights are stored as `(inputs, outputs)` matrices; a convolution's input
//! index is `tap·C_in + channel`, taps ordered as `geometry` lists them. The deterministic
//! coder (`infer`) reads the same tensors with the same conventions.
#![forbid(unsafe_code)]

use super::ops::{Elu, Gather};
use crate::arch::{
    Architecture, ConvSpec, DecoderLayers, DenseSpec, EncoderLayers, MadeLayers, MadeSpec,
    PixelCnnLayers,
};
use crate::config::VlaeConfig;
use crate::geometry::{Canvas, TapTable};
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};
use std::sync::Arc;

/// `(inputs, outputs)` weight plus optional bias: a dense layer or a 1×1 convolution.
#[derive(Clone, Debug)]
pub struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Dense {
    /// Creates the layer's variables `weight` (and `bias` if the spec has one) under the
    /// spec's name, He-initialized.
    pub fn new(vb: &VarBuilder, spec: &DenseSpec) -> Result<Self> {
        let vb = vb.pp(&spec.name);
        let (inputs, outputs, bias) = (spec.inputs, spec.outputs, spec.bias);
        let stdev = (1.0 / inputs.max(1) as f64).sqrt();
        let weight =
            vb.get_with_hints((inputs, outputs), "weight", Init::Randn { mean: 0., stdev })?;
        let bias = if bias {
            Some(vb.get_with_hints(outputs, "bias", Init::Const(0.))?)
        } else {
            None
        };
        Ok(Dense { weight, bias })
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// A convolution given by its tap table: gather, then one matmul that adds the bias too.
#[derive(Clone)]
pub struct Conv {
    table: Arc<TapTable>,
    weight: Tensor,
    bias: Tensor,
}

impl Conv {
    /// Creates the convolution `spec` describes.
    pub fn new(vb: &VarBuilder, spec: &ConvSpec) -> Result<Self> {
        let dense = DenseSpec {
            name: spec.name.clone(),
            inputs: spec.table.taps * spec.cin,
            outputs: spec.cout,
            bias: true,
        };
        let Dense { weight, bias } = Dense::new(vb, &dense)?;
        Ok(Conv {
            table: Arc::new(spec.table.clone()),
            weight,
            bias: bias.expect("conv has a bias").unsqueeze(0)?,
        })
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = Tensor::cat(&[&self.weight, &self.bias], 0)?;
        x.contiguous()?
            .apply_op1(Gather(self.table.clone()))?
            .matmul(&w)
    }
}

fn elu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Elu)
}

/// q(z|x): a small convolutional ResNet down to a quarter-size grid, giving a diagonal
/// Gaussian.
pub struct Encoder {
    layers: EncoderLayers<Conv, Dense>,
    latent: usize,
}

impl Encoder {
    pub fn new(vb: &VarBuilder, arch: &Architecture) -> Result<Self> {
        Ok(Encoder {
            layers: arch
                .encoder
                .try_map(|c| Conv::new(vb, c), |d| Dense::new(vb, d))?,
            latent: arch.latent,
        })
    }

    /// Pixels `(B·tile², 1)` → (mean, log standard deviation), each `(B, latent)`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = elu(&self.layers.conv_full.forward(x)?)?;
        let h = elu(&self.layers.conv_half.forward(&h)?)?;
        let h = elu(&self.layers.conv_quarter.forward(&h)?)?;
        let r = self
            .layers
            .res_b
            .forward(&elu(&self.layers.res_a.forward(&h)?)?)?;
        let h = elu(&(h + r)?)?;
        let batch = h.dim(0)? / self.layers.res_b.table.n_out;
        let out = self.layers.head.forward(&h.reshape((batch, ()))?)?;
        Ok((
            out.narrow(1, 0, self.latent)?,
            out.narrow(1, self.latent, self.latent)?,
        ))
    }
}

/// z → the full-size conditioning map the PixelCNN reads, through the quarter and half
/// grids.
pub struct CondDecoder {
    layers: DecoderLayers<Conv, Dense>,
    fc_channels: usize,
}

impl CondDecoder {
    pub fn new(vb: &VarBuilder, arch: &Architecture) -> Result<Self> {
        Ok(CondDecoder {
            layers: arch
                .decoder
                .try_map(|c| Conv::new(vb, c), |d| Dense::new(vb, d))?,
            fc_channels: arch.fc_channels,
        })
    }

    /// `(B, latent)` → `(B·tile², cond_channels)`.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let batch = z.dim(0)?;
        let positions = self.layers.up_half.table.n_in;
        let h = elu(&self
            .layers
            .fc
            .forward(z)?
            .reshape((batch * positions, self.fc_channels))?)?;
        let h = elu(&self.layers.up_half.forward(&h)?)?;
        elu(&self.layers.up_full.forward(&h)?)
    }
}

/// p(x_i | z, x_<i): a PixelCNN with a small receptive field, conditioned on the map.
pub struct PixelCnn {
    layers: PixelCnnLayers<Conv, Dense>,
    pixels: usize,
    canvas: Canvas,
    /// Canvas index of each tile pixel, when the canvas is larger than the tile.
    tile_index: Option<Tensor>,
}

impl PixelCnn {
    pub fn new(vb: &VarBuilder, arch: &Architecture) -> Result<Self> {
        let canvas = arch.canvas;
        let tile_index = (canvas.margin > 0)
            .then(|| {
                let idx: Vec<u32> = (0..arch.tile_pixels())
                    .map(|p| canvas.of_tile(p) as u32)
                    .collect();
                Tensor::from_vec(idx, arch.tile_pixels(), vb.device())
            })
            .transpose()?;
        Ok(PixelCnn {
            layers: arch
                .pixelcnn
                .try_map(|c| Conv::new(vb, c), |d| Dense::new(vb, d))?,
            pixels: arch.tile_pixels(),
            canvas,
            tile_index,
        })
    }

    /// The tiles `(B·tile², 1)` inside canvases `(B·canvas, 1)`.
    pub fn tiles(&self, canvases: &Tensor) -> Result<Tensor> {
        match &self.tile_index {
            None => Ok(canvases.clone()),
            Some(idx) => canvases
                .reshape(((), self.canvas.pixels()))?
                .index_select(idx, 1)?
                .reshape(((), 1)),
        }
    }

    /// Canvases `(B·canvas, 1)` and conditioning map → one Bernoulli logit per tile
    /// pixel, `(B, tile²)`.
    pub fn forward(&self, canvases: &Tensor, cond_map: &Tensor) -> Result<Tensor> {
        let l = &self.layers;
        let mut h = (l.input.forward(canvases)? + l.input_cond.forward(cond_map)?)?;
        for b in &l.blocks {
            let r = (b.masked.forward(&elu(&h)?)? + b.cond.forward(cond_map)?)?;
            h = (h + b.mix.forward(&elu(&r)?)?)?;
        }
        let logits = l.out.forward(&elu(&h)?)?;
        logits.reshape((logits.dim(0)? / self.pixels, self.pixels))
    }
}

/// One masked autoencoder (MADE) step of the prior flow: a mean-only autoregressive shift.
pub struct Made {
    layers: MadeLayers<Dense>,
    mask_in: Tensor,
    mask_out: Tensor,
}

impl Made {
    pub fn new(vb: &VarBuilder, arch: &Architecture, spec: &MadeSpec) -> Result<Self> {
        let (d, h) = (spec.hidden.inputs, spec.hidden.outputs);
        let masks = &arch.prior;
        Ok(Made {
            layers: spec.try_map(|d| Dense::new(vb, d))?,
            mask_in: Tensor::from_vec(masks.mask_hidden.clone(), (d, h), vb.device())?,
            mask_out: Tensor::from_vec(masks.mask_output.clone(), (h, d), vb.device())?,
        })
    }

    /// The shift μ(y), output i depending only on y_<i.
    pub fn forward(&self, y: &Tensor) -> Result<Tensor> {
        let masked = |d: &Dense, m: &Tensor| -> Result<Dense> {
            Ok(Dense {
                weight: (&d.weight * m)?,
                bias: d.bias.clone(),
            })
        };
        let h = elu(&masked(&self.layers.hidden, &self.mask_in)?.forward(y)?)?;
        masked(&self.layers.output, &self.mask_out)?.forward(&h)
    }
}

/// The autoregressive-flow prior: ε = g(z) through `prior_steps` MADE shifts, all in the
/// same order, on top of N(0, I). Same-order steps compose into one autoregressive shift,
/// so p(z_i | z_<i) stays a Gaussian the coder can handle one dimension at a time; shifts
/// only (no scales) keep the flow volume-preserving, log|det| = 0.
pub struct FlowPrior {
    steps: Vec<Made>,
}

impl FlowPrior {
    pub fn new(vb: &VarBuilder, arch: &Architecture) -> Result<Self> {
        let steps = arch
            .prior
            .steps
            .iter()
            .map(|spec| Made::new(vb, arch, spec))
            .collect::<Result<_>>()?;
        Ok(FlowPrior { steps })
    }

    /// z → ε in the base space.
    pub fn to_base(&self, z: &Tensor) -> Result<Tensor> {
        self.steps
            .iter()
            .try_fold(z.clone(), |y, made| y.clone() - made.forward(&y)?)
    }

    /// ε → z, one dimension at a time (used only to sample and to test invertibility).
    pub fn from_base(&self, eps: &Tensor) -> Result<Tensor> {
        let d = eps.dim(1)?;
        // Fixed point of z = ε + Σ shifts: after i+1 sweeps dimensions 0..=i are exact.
        let mut z = eps.clone();
        for _ in 0..d {
            let shift = (self.to_base(&z)? - &z)?;
            z = (eps - shift)?;
        }
        Ok(z)
    }
}

/// Per-image ELBO terms, in nats, each `(B,)` or `(B, latent)`.
pub struct ElboTerms {
    /// −log p(x|z) for the sampled z.
    pub recon: Tensor,
    /// log q(z_i|x) − log p(ε_i) per latent dimension: a one-sample KL estimate.
    pub kl_per_dim: Tensor,
}

/// The whole model.
pub struct Vlae {
    pub encoder: Encoder,
    pub prior: FlowPrior,
    pub decoder: CondDecoder,
    pub pixelcnn: PixelCnn,
}

impl Vlae {
    pub fn new(vb: VarBuilder, cfg: &VlaeConfig) -> Result<Self> {
        let arch = Architecture::new(cfg);
        Ok(Vlae {
            encoder: Encoder::new(&vb, &arch)?,
            prior: FlowPrior::new(&vb, &arch)?,
            decoder: CondDecoder::new(&vb, &arch)?,
            pixelcnn: PixelCnn::new(&vb, &arch)?,
        })
    }

    /// ELBO terms for canvases `canvases` (`(B·canvas, 1)`, 0/1: the tiles themselves
    /// for a model without context) with standard-normal noise `noise` (`(B, latent)`)
    /// for the reparameterized posterior sample.
    pub fn elbo_terms(&self, canvases: &Tensor, noise: &Tensor) -> Result<ElboTerms> {
        let x = self.pixelcnn.tiles(canvases)?;
        let (mean, log_sd) = self.encoder.forward(&x)?;
        let z = (&mean + (log_sd.exp()? * noise)?)?;
        let eps = self.prior.to_base(&z)?;
        let log_q = ((noise.sqr()? * -0.5)? - &log_sd)?;
        let log_p = (eps.sqr()? * -0.5)?;
        // The ½·ln 2π constants cancel between q and p.
        let kl_per_dim = (log_q - log_p)?;
        let logits = self
            .pixelcnn
            .forward(canvases, &self.decoder.forward(&z)?)?;
        let targets = x.reshape(logits.shape())?;
        Ok(ElboTerms {
            recon: bernoulli_nll(&logits, &targets)?.sum(D::Minus1)?,
            kl_per_dim,
        })
    }

    /// Pixels in one tile.
    pub fn tile_pixels(&self) -> usize {
        self.pixelcnn.pixels
    }

    /// Pixels in one training or evaluation sample: a canvas.
    pub fn sample_pixels(&self) -> usize {
        self.pixelcnn.canvas.pixels()
    }

    /// Log importance weights log p(x, z_k) − log q(z_k|x) for one sample per canvas.
    pub fn log_weight(&self, canvases: &Tensor, noise: &Tensor) -> Result<Tensor> {
        let t = self.elbo_terms(canvases, noise)?;
        (t.recon + t.kl_per_dim.sum(D::Minus1)?)?.neg()
    }
}

/// −log Bernoulli(target; sigmoid(logit)) elementwise, as softplus(l) − t·l written in the
/// stable form max(l, 0) + ln(1 + e^−|l|) − t·l.
pub fn bernoulli_nll(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    softplus - (targets * logits)?
}

/// Images as a `(B·tile², 1)` f32 tensor from 0/1 bytes.
pub fn pixels_tensor(images: &[u8], dev: &candle_core::Device) -> Result<Tensor> {
    Tensor::from_iter(images.iter().map(|&p| f32::from(p)), dev)?
        .reshape((images.len(), 1))?
        .to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    fn tiny() -> VlaeConfig {
        VlaeConfig {
            latent_dim: 4,
            enc_channels: [2, 2, 2],
            dec_channels: [2, 2],
            cond_channels: 2,
            pixel_channels: 3,
            first_kernel: 3,
            pixel_blocks: 1,
            prior_steps: 2,
            prior_hidden: 8,
            tile: 28,
            context: false,
        }
    }

    const PIXELS: usize = 28 * 28;

    #[test]
    fn bernoulli_nll_matches_hand_values() -> Result<()> {
        let dev = Device::Cpu;
        let l = Tensor::new(&[0f32, 2.0, -3.0, 40.0], &dev)?;
        let t = Tensor::new(&[1f32, 0.0, 0.0, 0.0], &dev)?;
        let got = bernoulli_nll(&l, &t)?.to_vec1::<f32>()?;
        let want = [
            std::f32::consts::LN_2,
            (1.0 + 2f32.exp()).ln(),
            (1.0 + (-3f32).exp()).ln(),
            40.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        Ok(())
    }

    #[test]
    fn flow_inverts_and_preserves_volume() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = tiny();
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let prior = FlowPrior::new(&vb, &Architecture::new(&cfg))?;
        // Make the shifts non-trivial.
        for v in vm.all_vars() {
            v.set(&(v.as_tensor().randn_like(0.0, 1.0)?))?;
        }
        let z = Tensor::randn(0f32, 1., (3, 4), &dev)?;
        let eps = prior.to_base(&z)?;
        let back = prior.from_base(&eps)?;
        let err = (back - &z)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err < 1e-4, "round trip error {err}");
        // Volume preservation: the Jacobian dε/dz is unit lower-triangular, so its
        // finite-difference diagonal is 1 and everything above it is 0.
        let h = 1e-2f32;
        for i in 0..4 {
            let mut bump = vec![0f32; 12];
            bump[i] = h;
            let dz = Tensor::from_vec(bump, (3, 4), &dev)?;
            let deps = ((prior.to_base(&(&z + dz)?)? - &eps)? / h as f64)?.to_vec2::<f32>()?;
            for (j, &g) in deps[0].iter().enumerate() {
                let want = if j == i {
                    1.0
                } else if j < i {
                    0.0
                } else {
                    g
                };
                assert!((g - want).abs() < 1e-3, "dε_{j}/dz_{i} = {g}");
            }
        }
        Ok(())
    }

    /// With zero noise the KL terms must equal the closed form
    /// log q(m) − log N(g(m)) = −log σ + ½ g(m)², checked on a tiny model.
    #[test]
    fn elbo_terms_match_hand_computation() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = tiny();
        let vm = VarMap::new();
        let model = Vlae::new(VarBuilder::from_varmap(&vm, DType::F32, &dev), &cfg)?;
        let images: Vec<u8> = (0..2 * PIXELS).map(|i| u8::from(i % 7 == 0)).collect();
        let x = pixels_tensor(&images, &dev)?;
        let noise = Tensor::zeros((2, 4), DType::F32, &dev)?;
        let terms = model.elbo_terms(&x, &noise)?;
        let (mean, log_sd) = model.encoder.forward(&x)?;
        let eps = model.prior.to_base(&mean)?.to_vec2::<f32>()?;
        let kl = terms.kl_per_dim.to_vec2::<f32>()?;
        let ls = log_sd.to_vec2::<f32>()?;
        for b in 0..2 {
            for i in 0..4 {
                let want = -ls[b][i] + 0.5 * eps[b][i] * eps[b][i];
                assert!((kl[b][i] - want).abs() < 1e-5);
            }
        }
        // Reconstruction: the sum of per-pixel Bernoulli NLLs of the logits.
        let logits = model
            .pixelcnn
            .forward(&x, &model.decoder.forward(&mean)?)?
            .to_vec2::<f32>()?;
        let recon = terms.recon.to_vec1::<f32>()?;
        for b in 0..2 {
            let want: f32 = (0..PIXELS)
                .map(|p| {
                    let l = logits[b][p];
                    let t = f32::from(images[b * PIXELS + p]);
                    (1.0 + l.exp()).ln() - t * l
                })
                .sum();
            assert!((recon[b] - want).abs() < 1e-2, "{} vs {want}", recon[b]);
        }
        Ok(())
    }
}
