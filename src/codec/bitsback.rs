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
use crate::infer::network::{Network, Posterior};
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
    #[error("lane {lane}: invalid lane header ({reason})")]
    BadLane { lane: usize, reason: String },
    #[error("entropy coder failed: {0}")]
    Coder(String),
}

fn coder_err(e: impl std::fmt::Debug) -> CodecError {
    CodecError::Coder(format!("{e:?}"))
}

/// `images` filled up to G with blank images for the idle slots of a lockstep group.
fn padded<'a, const G: usize>(images: &[&'a [u8]]) -> [&'a [u8]; G] {
    const BLANK: [u8; PIXELS] = [0; PIXELS];
    std::array::from_fn(|g| images.get(g).copied().unwrap_or(&BLANK))
}

/// Lanes coded in lockstep: their PixelCNN steps share every weight load and give the CPU
/// independent accumulator chains. Each lane's arithmetic is unchanged.
pub const LANE_GROUP: usize = 4;

/// A latent as the coder decided it: its bucket per dimension, the prior's shift T_i of
/// each dimension (ε_i = z_i − T_i), and the resulting z.
struct Latent {
    buckets: Vec<usize>,
    shifts: Vec<f32>,
    z: Vec<f32>,
}

/// A model plus its latent discretization: everything needed to code images.
pub struct BitsBack<'n> {
    net: &'n Network,
    grid: LatentGrid,
}

impl<'n> BitsBack<'n> {
    /// Codes with `net`, latents discretized into `2^log2_buckets` buckets.
    pub fn new(net: &'n Network, log2_buckets: u32) -> Self {
        BitsBack {
            net,
            grid: LatentGrid::new(log2_buckets),
        }
    }

    /// Pops a latent with the discretized posterior `post`.
    fn pop_posterior(&self, coder: &mut Coder, post: &Posterior) -> Result<Latent, CodecError> {
        let net = self.net;
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        let mut prior = net.prior_start();
        let d = post.mean.len();
        let (mut buckets, mut shifts) = (Vec::with_capacity(d), Vec::with_capacity(d));
        for i in 0..d {
            let shift = net.prior_shift(&mut prior);
            self.grid
                .posterior_cdf(post.mean[i] - shift, post.log_sd[i], &mut cdf);
            let j = coder
                .decode_symbol(Categorical::new(&cdf))
                .map_err(coder_err)?;
            net.prior_push(&mut prior, self.grid.centre(j) + shift);
            buckets.push(j);
            shifts.push(shift);
        }
        Ok(Latent {
            buckets,
            shifts,
            z: Network::latent(&prior).to_vec(),
        })
    }

    /// Pops a latent with the prior.
    fn pop_prior(&self, coder: &mut Coder) -> Result<Latent, CodecError> {
        let net = self.net;
        let d = net.config().latent_dim;
        let mut buckets = Vec::with_capacity(d);
        for _ in 0..d {
            buckets.push(
                coder
                    .decode_symbol(Categorical::new(self.grid.prior_cdf()))
                    .map_err(coder_err)?,
            );
        }
        let mut prior = net.prior_start();
        let mut shifts = Vec::with_capacity(d);
        for &j in &buckets {
            let shift = net.prior_shift(&mut prior);
            net.prior_push(&mut prior, self.grid.centre(j) + shift);
            shifts.push(shift);
        }
        Ok(Latent {
            buckets,
            shifts,
            z: Network::latent(&prior).to_vec(),
        })
    }

    /// Pushes a latent back with the posterior `post` of the decoded image, undoing
    /// [`Self::pop_posterior`].
    fn push_posterior(
        &self,
        coder: &mut Coder,
        post: &Posterior,
        latent: &Latent,
    ) -> Result<(), CodecError> {
        let Latent {
            buckets, shifts, ..
        } = latent;
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        for i in (0..buckets.len()).rev() {
            self.grid
                .posterior_cdf(post.mean[i] - shifts[i], post.log_sd[i], &mut cdf);
            coder
                .encode_symbol(buckets[i], Categorical::new(&cdf))
                .map_err(coder_err)?;
        }
        Ok(())
    }

    /// Pushes one image onto each of up to G coders in lockstep (`images[g]` for
    /// `coders[g]`).
    fn encode_group<const G: usize>(
        &self,
        coders: &mut [Coder],
        images: &[&[u8]],
    ) -> Result<(), CodecError> {
        debug_assert!(images.len() == coders.len() && coders.len() <= G);
        if let Some(img) = images.iter().find(|img| img.len() != PIXELS) {
            return Err(CodecError::WrongSize(img.len()));
        }
        let posts = self.net.posteriors::<G>(padded(images));
        let latents = coders
            .iter_mut()
            .zip(&posts)
            .map(|(c, post)| self.pop_posterior(c, post))
            .collect::<Result<Vec<_>, _>>()?;
        let idle = vec![0f32; self.net.config().latent_dim];
        let mut state = self.net.pixels_start::<G>(std::array::from_fn(|g| {
            latents.get(g).map_or(idle.as_slice(), |l| l.z.as_slice())
        }));
        let mut probs = vec![[0u32; G]; PIXELS];
        for (p, prob) in probs.iter_mut().enumerate() {
            let logits = state.logit(p);
            for (g, img) in images.iter().enumerate() {
                prob[g] = pixel_probability(logits[g]);
                state.set(p, g, img[p]);
            }
        }
        for (g, ((coder, img), latent)) in coders.iter_mut().zip(images).zip(&latents).enumerate() {
            for (&x, prob) in img.iter().zip(&probs).rev() {
                coder
                    .encode_symbol(x, Bernoulli::new(prob[g]))
                    .map_err(coder_err)?;
            }
            for &j in latent.buckets.iter().rev() {
                coder
                    .encode_symbol(j, Categorical::new(self.grid.prior_cdf()))
                    .map_err(coder_err)?;
            }
        }
        Ok(())
    }

    /// Pops one image from each of up to G coders in lockstep, restoring each stack to
    /// what it was before the image was pushed.
    fn decode_group<const G: usize>(
        &self,
        coders: &mut [Coder],
    ) -> Result<Vec<Vec<u8>>, CodecError> {
        let latents = coders
            .iter_mut()
            .map(|c| self.pop_prior(c))
            .collect::<Result<Vec<_>, _>>()?;
        let idle = vec![0f32; self.net.config().latent_dim];
        let mut state = self.net.pixels_start::<G>(std::array::from_fn(|g| {
            latents.get(g).map_or(idle.as_slice(), |l| l.z.as_slice())
        }));
        let mut images = vec![vec![0u8; PIXELS]; coders.len()];
        for p in 0..PIXELS {
            let logits = state.logit(p);
            for (g, (coder, img)) in coders.iter_mut().zip(images.iter_mut()).enumerate() {
                img[p] = coder
                    .decode_symbol(Bernoulli::new(pixel_probability(logits[g])))
                    .map_err(coder_err)?;
                state.set(p, g, img[p]);
            }
        }
        let posts = self.net.posteriors::<G>(padded(
            &images.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        ));
        for ((coder, post), latent) in coders.iter_mut().zip(&posts).zip(&latents) {
            self.push_posterior(coder, post, latent)?;
        }
        Ok(images)
    }

    /// Pushes one image (784 bytes of 0/1) onto the stack.
    pub fn encode(&self, coder: &mut Coder, pixels: &[u8]) -> Result<(), CodecError> {
        self.encode_group::<1>(std::slice::from_mut(coder), &[pixels])
    }

    /// Pops one image from the stack, restoring the stack to what it was before the
    /// image's [`Self::encode`].
    pub fn decode(&self, coder: &mut Coder) -> Result<Vec<u8>, CodecError> {
        Ok(self
            .decode_group::<1>(std::slice::from_mut(coder))?
            .remove(0))
    }

    /// Compresses each run of consecutive images into its own lane, coding up to
    /// [`LANE_GROUP`] lanes in lockstep.
    pub fn compress_lanes(&self, lanes: &[&[Vec<u8>]]) -> Result<Vec<Lane>, CodecError> {
        let seed = seed_words();
        let mut coders: Vec<Coder> = lanes
            .iter()
            .map(|_| Coder::from_raw_parts(seed.clone(), SEED_STATE))
            .collect();
        let longest = lanes.iter().map(|l| l.len()).max().unwrap_or(0);
        for i in 0..longest {
            // Lanes whose images have run out sit this step out.
            let (mut busy, mut images): (Vec<Coder>, Vec<&[u8]>) = (Vec::new(), Vec::new());
            let mut slots = Vec::new();
            for (k, lane) in lanes.iter().enumerate() {
                if let Some(img) = lane.get(i) {
                    busy.push(std::mem::take(&mut coders[k]));
                    images.push(img);
                    slots.push(k);
                }
            }
            for (chunk_coders, chunk_images) in
                busy.chunks_mut(LANE_GROUP).zip(images.chunks(LANE_GROUP))
            {
                if chunk_coders.len() == 1 {
                    self.encode_group::<1>(chunk_coders, chunk_images)?;
                } else {
                    self.encode_group::<LANE_GROUP>(chunk_coders, chunk_images)?;
                }
            }
            for (k, c) in slots.into_iter().zip(busy) {
                coders[k] = c;
            }
        }
        Ok(lanes
            .iter()
            .zip(coders)
            .map(|(lane, coder)| {
                let (bulk, state) = coder.into_raw_parts();
                let elided = bulk.iter().zip(&seed).take_while(|(a, b)| a == b).count();
                Lane {
                    image_count: lane.len() as u32,
                    seed_words_elided: elided as u32,
                    state,
                    words: bulk[elided..].to_vec(),
                }
            })
            .collect())
    }

    /// Decompresses lanes coded by [`Self::compress_lanes`], each lane's images in their
    /// original order. `first_index` numbers the lanes in errors.
    pub fn decompress_lanes(
        &self,
        lanes: &[Lane],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        let seed = seed_words();
        let mut coders = Vec::with_capacity(lanes.len());
        for (k, lane) in lanes.iter().enumerate() {
            let elided = lane.seed_words_elided as usize;
            if elided > SEED_WORDS {
                return Err(CodecError::BadLane {
                    lane: first_index + k,
                    reason: format!("{elided} elided seed words, at most {SEED_WORDS}"),
                });
            }
            let mut bulk = Vec::with_capacity(elided + lane.words.len());
            bulk.extend_from_slice(&seed[..elided]);
            bulk.extend_from_slice(&lane.words);
            coders.push(Coder::from_raw_parts(bulk, lane.state));
        }
        let mut out: Vec<Vec<Vec<u8>>> = lanes
            .iter()
            .map(|l| Vec::with_capacity(l.image_count as usize))
            .collect();
        let longest = lanes
            .iter()
            .map(|l| l.image_count as usize)
            .max()
            .unwrap_or(0);
        for i in 0..longest {
            let (mut busy, mut slots) = (Vec::new(), Vec::new());
            for (k, lane) in lanes.iter().enumerate() {
                if i < lane.image_count as usize {
                    busy.push(std::mem::take(&mut coders[k]));
                    slots.push(k);
                }
            }
            let mut decoded = Vec::with_capacity(busy.len());
            for chunk in busy.chunks_mut(LANE_GROUP) {
                decoded.extend(if chunk.len() == 1 {
                    self.decode_group::<1>(chunk)?
                } else {
                    self.decode_group::<LANE_GROUP>(chunk)?
                });
            }
            for ((k, c), img) in slots.into_iter().zip(busy).zip(decoded) {
                coders[k] = c;
                out[k].push(img);
            }
        }
        for (k, (coder, images)) in coders.into_iter().zip(out.iter_mut()).enumerate() {
            images.reverse();
            if coder.into_raw_parts() != (seed.clone(), SEED_STATE) {
                return Err(CodecError::ChainMismatch {
                    lane: first_index + k,
                });
            }
        }
        Ok(out)
    }

    /// Compresses consecutive images into one lane.
    pub fn compress_lane(&self, images: &[Vec<u8>]) -> Result<Lane, CodecError> {
        Ok(self.compress_lanes(&[images])?.remove(0))
    }

    /// Decompresses one lane's images in their original order. `index` names the lane in
    /// errors.
    pub fn decompress_lane(&self, lane: &Lane, index: usize) -> Result<Vec<Vec<u8>>, CodecError> {
        Ok(self
            .decompress_lanes(std::slice::from_ref(lane), index)?
            .remove(0))
    }
}
