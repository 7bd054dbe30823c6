//! Evaluation of a trained VLAE: −ELBO and its terms, and the importance-weighted NLL.
//!
//! Noise comes from a seeded generator, so the same images and weights always give the
//! same figures.
#![forbid(unsafe_code)]

use super::vlae::{pixels_tensor, Vlae};
use crate::config::VlaeConfig;
use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::path::Path;

/// Seed of the evaluation noise: fixed so that reruns print the same figures.
pub const EVAL_SEED: u64 = 0x5eed_e1b0;

/// Loads a model from a safetensors file.
pub fn load_model(weights: &Path, cfg: &VlaeConfig) -> Result<Vlae> {
    let tensors = candle_core::safetensors::load(weights, &Device::Cpu)?;
    Vlae::new(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        cfg,
    )
}

/// Loads a model from safetensors bytes (a built-in model's).
pub fn load_model_bytes(weights: &[u8], cfg: &VlaeConfig) -> Result<Vlae> {
    let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu)?;
    Vlae::new(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        cfg,
    )
}

/// Standard-normal noise `(rows, dim)` from `rng`.
pub fn normal_noise(rng: &mut StdRng, rows: usize, dim: usize) -> Result<Tensor> {
    let v: Vec<f32> = (0..rows * dim)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    Tensor::from_vec(v, (rows, dim), &Device::Cpu)
}

/// Mean per-image figures over a set of images, in nats.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ElboStats {
    pub images: usize,
    pub recon_nats: f64,
    pub kl_nats: f64,
}

impl ElboStats {
    pub fn neg_elbo_nats(&self) -> f64 {
        self.recon_nats + self.kl_nats
    }
}

/// Mean −ELBO terms over `images` (flat 0/1 canvases: the tiles themselves for a model
/// without context), one posterior sample per canvas.
pub fn evaluate_elbo(
    model: &Vlae,
    images: &[u8],
    latent: usize,
    batch: usize,
) -> Result<ElboStats> {
    let mut rng = StdRng::seed_from_u64(EVAL_SEED);
    let (mut recon, mut kl) = (0f64, 0f64);
    let pixels = model.sample_pixels();
    let n = images.len() / pixels;
    for chunk in images.chunks(batch * pixels) {
        let b = chunk.len() / pixels;
        let terms = model.elbo_terms(
            &pixels_tensor(chunk, &Device::Cpu)?,
            &normal_noise(&mut rng, b, latent)?,
        )?;
        recon += f64::from(terms.recon.sum_all()?.to_scalar::<f32>()?);
        kl += f64::from(terms.kl_per_dim.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(ElboStats {
        images: n,
        recon_nats: recon / n as f64,
        kl_nats: kl / n as f64,
    })
}

/// Importance-weighted NLL estimate with `k` samples: its mean and standard error over
/// images, in nats.
pub fn evaluate_iwae(model: &Vlae, images: &[u8], latent: usize, k: usize) -> Result<(f64, f64)> {
    let mut rng = StdRng::seed_from_u64(EVAL_SEED ^ k as u64);
    let pixels = model.sample_pixels();
    let mut per_image = Vec::with_capacity(images.len() / pixels);
    // Each image is repeated `chunk` times per forward pass, keeping batches near 256.
    let chunk = k.clamp(1, 256);
    for img in images.chunks(pixels) {
        let mut log_w = Vec::with_capacity(k);
        let mut left = k;
        while left > 0 {
            let n = left.min(chunk);
            let x = pixels_tensor(&img.repeat(n), &Device::Cpu)?;
            log_w.extend(
                model
                    .log_weight(&x, &normal_noise(&mut rng, n, latent)?)?
                    .to_vec1::<f32>()?,
            );
            left -= n;
        }
        let w = Tensor::from_vec(
            log_w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            k,
            &Device::Cpu,
        )?;
        let lse = w
            .unsqueeze(0)?
            .log_sum_exp(D::Minus1)?
            .squeeze(0)?
            .to_scalar::<f64>()?;
        per_image.push((k as f64).ln() - lse);
    }
    let n = per_image.len() as f64;
    let mean = per_image.iter().sum::<f64>() / n;
    let var = per_image.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok((mean, (var / n).sqrt()))
}
