//! Bits-back coding (BB-ANS) of images with the VLAE, chained through one ANS stack per
//! lane.
//!
//! Compressing an image pops its latent from the stack with the discretized posterior
//! q(ε|x), pushes its pixels with p(x_i | z, x_<i) in reverse raster order, then pushes
//! the latent with the prior. Decompressing runs the same steps backwards. Latents live in
//! the prior flow's base space ε, discretized into equal-mass buckets of N(0, 1): there the
//! prior is exactly uniform, and because the flow is an autoregressive shift, the
//! posterior of ε_i given the earlier dimensions is the Gaussian N(μ_i − T_i, σ_i).

use super::model::{Bernoulli, Categorical, Coder};
use super::quantize::{pixel_probability, LatentGrid};
use crate::geometry::PIXELS;
use crate::infer::network::Network;
use constriction::stream::{Decode, Encode};

/// Fixed words every lane's stack starts from. Popping the first image's latent from an
/// empty stack would give degenerate latents (the all-zero state always yields bucket 0);
/// popping from these pseudo-random words gives typical ones. The words the chain never
/// touched are not stored (see [`Lane::seed_words_elided`]).
pub const SEED_WORDS: usize = 32;
/// The ANS head the seeded stack starts with (≥ 2^32, as the coder's invariant needs).
pub const SEED_STATE: u64 = 0x9e37_79b9_7f4a_7c15;

/// The seed words: a SplitMix64 stream from [`SEED_STATE`], low halves.
pub fn seed_words() -> Vec<u32> {
    let mut x = SEED_STATE;
    (0..SEED_WORDS)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u32
        })
        .collect()
}

/// One lane: an independent bits-back chain over a run of consecutive images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub image_count: u32,
    /// How many bottom words of the final stack equal the seed's and were left out.
    pub seed_words_elided: u32,
    /// The ANS head.
    pub state: u64,
    /// The rest of the stack, bottom first.
    pub words: Vec<u32>,
}

/// Why coding failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("image is {0} pixels, the model codes {PIXELS}")]
    WrongSize(usize),
    #[error("lane {lane}: the chain did not end at its seed; the archive is corrupt or was made by another model")]
    ChainMismatch { lane: usize },
    #[error("lane {lane}: invalid lane header ({0})", .reason)]
    BadLane { lane: usize, reason: String },
    #[error("entropy coder failed: {0}")]
    Coder(String),
}

fn coder_err(e: impl std::fmt::Debug) -> CodecError {
    CodecError::Coder(format!("{e:?}"))
}

/// A model plus its latent discretization: everything needed to code images.
pub struct BitsBack<'n> {
    net: &'n Network,
    grid: LatentGrid,
}

impl<'n> BitsBack<'n> {
    /// Codes with `net`, latents discretized into `2^log2_buckets` buckets.
    pub fn new(net: &'n Network, log2_buckets: u32) -> Self {
        BitsBack { net, grid: LatentGrid::new(log2_buckets) }
    }

    /// Pushes one image (784 bytes of 0/1) onto the stack.
    pub fn encode(&self, coder: &mut Coder, pixels: &[u8]) -> Result<(), CodecError> {
        if pixels.len() != PIXELS {
            return Err(CodecError::WrongSize(pixels.len()));
        }
        let net = self.net;
        let post = net.posterior(pixels);
        let d = post.mean.len();
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        let mut prior = net.prior_start();
        let mut buckets = Vec::with_capacity(d);
        for i in 0..d {
            let shift = net.prior_shift(&mut prior);
            self.grid.posterior_cdf(post.mean[i] - shift, post.log_sd[i], &mut cdf);
            let j = coder.decode_symbol(Categorical::new(&cdf)).map_err(coder_err)?;
            net.prior_push(&mut prior, self.grid.centre(j) + shift);
            buckets.push(j);
        }
        let mut state = net.pixels_start(Network::latent(&prior));
        let mut probs = [0u32; PIXELS];
        for (p, prob) in probs.iter_mut().enumerate() {
            *prob = pixel_probability(state.logit(p));
            state.set(p, pixels[p]);
        }
        for (&x, &prob) in pixels.iter().zip(&probs).rev() {
            coder.encode_symbol(x, Bernoulli::new(prob)).map_err(coder_err)?;
        }
        for &j in buckets.iter().rev() {
            coder.encode_symbol(j, Categorical::new(self.grid.prior_cdf())).map_err(coder_err)?;
        }
        Ok(())
    }

    /// Pops one image from the stack, restoring the stack to what it was before the
    /// image's [`Self::encode`].
    pub fn decode(&self, coder: &mut Coder) -> Result<Vec<u8>, CodecError> {
        let net = self.net;
        let d = net.config().latent_dim;
        let mut buckets = Vec::with_capacity(d);
        for _ in 0..d {
            buckets.push(coder.decode_symbol(Categorical::new(self.grid.prior_cdf())).map_err(coder_err)?);
        }
        let mut prior = net.prior_start();
        let mut shifts = Vec::with_capacity(d);
        for &j in &buckets {
            let shift = net.prior_shift(&mut prior);
            net.prior_push(&mut prior, self.grid.centre(j) + shift);
            shifts.push(shift);
        }
        let mut state = net.pixels_start(Network::latent(&prior));
        let mut pixels = vec![0u8; PIXELS];
        for p in 0..PIXELS {
            let prob = pixel_probability(state.logit(p));
            pixels[p] = coder.decode_symbol(Bernoulli::new(prob)).map_err(coder_err)?;
            state.set(p, pixels[p]);
        }
        let post = net.posterior(&pixels);
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        for i in (0..d).rev() {
            self.grid.posterior_cdf(post.mean[i] - shifts[i], post.log_sd[i], &mut cdf);
            coder.encode_symbol(buckets[i], Categorical::new(&cdf)).map_err(coder_err)?;
        }
        Ok(pixels)
    }

    /// Compresses consecutive images into one lane.
    pub fn compress_lane<'a>(&self, images: impl IntoIterator<Item = &'a [u8]>) -> Result<Lane, CodecError> {
        let seed = seed_words();
        let mut coder = Coder::from_raw_parts(seed.clone(), SEED_STATE);
        let mut count = 0u32;
        for img in images {
            self.encode(&mut coder, img)?;
            count += 1;
        }
        let (bulk, state) = coder.into_raw_parts();
        let elided = bulk.iter().zip(&seed).take_while(|(a, b)| a == b).count();
        Ok(Lane { image_count: count, seed_words_elided: elided as u32, state, words: bulk[elided..].to_vec() })
    }

    /// Decompresses a lane's images in their original order. `index` names the lane in
    /// errors.
    pub fn decompress_lane(&self, lane: &Lane, index: usize) -> Result<Vec<Vec<u8>>, CodecError> {
        let seed = seed_words();
        let elided = lane.seed_words_elided as usize;
        if elided > SEED_WORDS {
            return Err(CodecError::BadLane { lane: index, reason: format!("{elided} elided seed words, at most {SEED_WORDS}") });
        }
        let mut bulk = Vec::with_capacity(elided + lane.words.len());
        bulk.extend_from_slice(&seed[..elided]);
        bulk.extend_from_slice(&lane.words);
        let mut coder = Coder::from_raw_parts(bulk, lane.state);
        let mut images = (0..lane.image_count).map(|_| self.decode(&mut coder)).collect::<Result<Vec<_>, _>>()?;
        images.reverse();
        if coder.into_raw_parts() != (seed, SEED_STATE) {
            return Err(CodecError::ChainMismatch { lane: index });
        }
        Ok(images)
    }
}
