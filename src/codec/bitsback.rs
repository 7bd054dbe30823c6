//! Bits-back coding (BB-ANS) of bi-level images with the VLAE, chained through one ANS
//! stack per lane.
//!
//! A lane's images are cut into tiles of the model's size. Coding a tile pops its latent
//! from the stack with the discretized posterior q(ε|x), pushes its pixels with
//! p(x_i | z, x_<i) in reverse raster order, then pushes the latent with the prior.
//! Latents live in the prior flow's base space ε, discretized into equal-mass buckets of
//! N(0, 1): there the prior is exactly uniform, and because the flow is an autoregressive
//! shift, the posterior of ε_i given the earlier dimensions is the Gaussian N(μ_i − T_i, σ_i).
//!
//! A chain pushes a lane's tiles last to first, so that they decode first to last and
//! decompression can write images as they come. Each tile is preceded on the stack by its
//! class (all white, all black, or coded by the model) under adaptive counts kept per
//! context, the classes of the tiles above and left: text lines and margins make a tile's
//! class predictable from its neighbours, so blank tiles cost almost nothing. A lane may
//! mix the page memory (`memory`) into its pixels' probabilities (format-spec.md §3.8).
#![forbid(unsafe_code)]

use super::lane::{payload, words, CodecError, CodedLane, LaneCodec, LaneToDecode, Strip};
use super::memory::{PageMemory, Recall};
use super::model::{Bernoulli, Categorical, Coder, PRECISION};
use super::quantize::{
    log2_probability, pixel_probability, remembered_probability, uniform_cdf, weights_cdf,
    LatentGrid,
};
use crate::container::SEED_WORDS;
use crate::geometry::ink_and_paper;
use crate::infer::kernels::subnormals_are_ieee;
use crate::infer::network::{Network, Posterior};
use constriction::stream::{Decode, Encode};

/// The ANS head every lane's stack starts with (≥ 2^32, as the coder's invariant needs).
pub const SEED_STATE: u64 = 0x9e37_79b9_7f4a_7c15;

/// The fixed words every lane's stack starts from. Popping the first tile's latent from an
/// empty stack would give degenerate latents (the all-zero state always yields bucket 0);
/// popping from these pseudo-random words gives typical ones. The words the chain never
/// touched are not stored. They are a SplitMix64 stream from [`SEED_STATE`], low halves.
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

/// Lanes coded in lockstep: their PixelCNN steps share every weight load and give the CPU
/// independent accumulator chains. Each lane's arithmetic is unchanged.
pub const LANE_GROUP: usize = 4;

/// A coded lane: its stack, bottom first, less the seed words at the bottom it kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLane {
    pub seed_words_elided: u32,
    pub state: u64,
    pub words: Vec<u32>,
}

/// A lane to decode: its stack and the shapes `(width, rows)` of its strips.
pub struct ChainInput {
    pub lane: ChainLane,
    pub shapes: Vec<(usize, usize)>,
}

impl CodecError {
    /// An exhausted lane renumbered as lane `lane` of the archive at tile `tile`; other
    /// errors unchanged.
    fn at(self, lane: usize, tile: usize) -> Self {
        match self {
            CodecError::Exhausted { .. } => CodecError::Exhausted { lane, tile },
            other => other,
        }
    }
}

fn coder_err(e: impl std::fmt::Debug) -> CodecError {
    CodecError::Coder(format!("{e:?}"))
}

/// Whether a pop has run the stack dry: no word left below a head that has fallen under
/// 2^32, so that further pops read bits that were never pushed. A chain never gets here:
/// the seed's 32 words lie below the deepest pop of any tile (one posterior, at most
/// d·24 bits), and the encoder checks the same condition after its pops. A decoder that
/// gets here reads a corrupt lane, or one that claims more tiles than it holds.
fn ran_dry(coder: &Coder) -> bool {
    coder.num_valid_bits() < 32
}

/// What a tile holds, coded before it (format-spec.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TileClass {
    Model = 0,
    White = 1,
    Black = 2,
}

const CLASSES: [TileClass; 3] = [TileClass::Model, TileClass::White, TileClass::Black];

/// The adaptive class table after `counts` tiles of each class: weights 2n + 1
/// (Krichevsky–Trofimov), every class at least one unit.
fn class_cdf(counts: &[u32; 3]) -> [u32; 4] {
    let w = counts.map(|n| 2 * u64::from(n) + 1);
    let total: u64 = w.iter().sum();
    let free = (1u64 << PRECISION) - 3;
    let mut cdf = [0u32; 4];
    for c in 0..2 {
        cdf[c + 1] = cdf[c] + 1 + (w[c] * free / total) as u32;
    }
    cdf[3] = 1 << PRECISION;
    cdf
}

/// Adaptive tile-class counts of one lane (format-spec.md §3.2): a set per context, all
/// zero when the lane starts and carried from strip to strip.
struct ClassCounts {
    per_context: Vec<[u32; 3]>,
}

impl ClassCounts {
    fn new() -> Self {
        ClassCounts {
            per_context: vec![[0; 3]; CLASSES.len() * CLASSES.len()],
        }
    }

    /// The context of tile `j` of a lane, `t`, in a strip `width` pixels wide, given the
    /// classes of the lane's tiles before it: 3·above + left, where a neighbour outside
    /// the strip counts as white.
    fn context(classes: &[TileClass], j: usize, t: &Tile, width: usize, side: usize) -> usize {
        let above = if t.y > 0 {
            classes[j - width.div_ceil(side)]
        } else {
            TileClass::White
        };
        let left = if t.x > 0 {
            classes[j - 1]
        } else {
            TileClass::White
        };
        3 * above as usize + left as usize
    }

    fn cdf(&self, context: usize) -> [u32; 4] {
        class_cdf(&self.per_context[context])
    }

    /// One more tile of `class` seen in `context`.
    fn add(&mut self, context: usize, class: TileClass) {
        self.per_context[context][class as usize] += 1;
    }

    /// One tile of `class` in `context` taken back: the encoder walks a lane backwards
    /// from its full counts to the counts the decoder has at each tile.
    fn remove(&mut self, context: usize, class: TileClass) {
        self.per_context[context][class as usize] -= 1;
    }
}

/// One tile of a strip: its top-left corner and the part of it inside the strip.
#[derive(Clone, Copy, Debug)]
struct Tile {
    strip: usize,
    y: usize,
    x: usize,
    rows: usize,
    cols: usize,
}

/// The tiles of strips of the given shapes, strip by strip, each in raster order,
/// produced one at a time so that a lane's claimed size costs nothing until decoded.
struct TileCursor<'s> {
    shapes: &'s [(usize, usize)],
    side: usize,
    strip: usize,
    y: usize,
    x: usize,
}

impl<'s> TileCursor<'s> {
    fn new(shapes: &'s [(usize, usize)], side: usize) -> Self {
        TileCursor {
            shapes,
            side,
            strip: 0,
            y: 0,
            x: 0,
        }
    }

    /// How many tiles the strips hold, without listing them.
    fn count(shapes: &[(usize, usize)], side: usize) -> usize {
        shapes
            .iter()
            .map(|&(w, r)| w.div_ceil(side) * r.div_ceil(side))
            .sum()
    }
}

impl Iterator for TileCursor<'_> {
    type Item = Tile;

    fn next(&mut self) -> Option<Tile> {
        let &(width, rows) = self.shapes.get(self.strip)?;
        let tile = Tile {
            strip: self.strip,
            y: self.y,
            x: self.x,
            rows: self.side.min(rows - self.y),
            cols: self.side.min(width - self.x),
        };
        self.x += self.side;
        if self.x >= width {
            self.x = 0;
            self.y += self.side;
            if self.y >= rows {
                self.y = 0;
                self.strip += 1;
            }
        }
        Some(tile)
    }
}

/// The tiles of strips of the given shapes, listed.
fn tiles(shapes: &[(usize, usize)], side: usize) -> Vec<Tile> {
    TileCursor::new(shapes, side).collect()
}

/// A latent as the coder decided it: its bucket per dimension, the prior's shift T_i of
/// each dimension (ε_i = z_i − T_i), and the resulting z.
#[derive(Clone)]
struct Latent {
    buckets: Vec<usize>,
    shifts: Vec<f32>,
    z: Vec<f32>,
    /// log2 Q(ĵ|x), kept when the latent was popped with the posterior (whose tables
    /// that already built); importance weighting needs it.
    log2_posterior: Option<f64>,
}

/// A model plus its latent discretization: everything needed to code tiles.
pub struct BitsBack<'n> {
    net: &'n Network,
    grid: LatentGrid,
    blank: Vec<u8>,
    blank_canvas: Vec<u8>,
    /// Importance samples per tile once the ramp is done (1: plain bits-back).
    samples: usize,
    /// Whether pixels are coded with the page memory mixed in (format-spec.md §3.8).
    memory: bool,
}

/// A pixel's probability of ink from its logit, and from what the page memory recalls
/// where the lane has one.
fn probability(logit: f32, recall: Option<&Recall>) -> u32 {
    match recall {
        Some(r) => remembered_probability(logit, r),
        None => pixel_probability(logit),
    }
}

/// Pops the pixel at (y, x) of its strip, whose logit is `logit`, with the page memory
/// mixed in, and learns it; also gives what the memory recalled.
fn pop_remembered(
    coder: &mut Coder,
    logit: f32,
    memory: &mut PageMemory,
    (y, x): (usize, usize),
) -> Result<(u8, Recall), CodecError> {
    let (recall, contexts) = memory.recall(y, x);
    let bit = coder
        .decode_symbol(Bernoulli::new(remembered_probability(logit, &recall)))
        .map_err(coder_err)?;
    memory.learn(contexts, y, x, bit);
    Ok((bit, recall))
}

/// A lane's page memory while its tiles are decoded, and the strip it is on.
struct Remembering {
    memory: PageMemory,
    strip: usize,
}

impl Remembering {
    fn new() -> Self {
        Remembering {
            memory: PageMemory::default(),
            strip: usize::MAX,
        }
    }

    /// Readies the memory for tile `t` of a strip `width × rows`.
    fn reach(&mut self, t: &Tile, (width, rows): (usize, usize)) {
        if t.strip != self.strip {
            self.memory.start_strip(width, rows);
            self.strip = t.strip;
        }
    }
}

/// Importance samples for the tile pushed `pushed`-th in its lane (0 first), when a lane
/// codes with up to `samples` (format-spec.md §3.4). Popping K latents needs about K
/// posterior entropies on the stack, and a chain grows by about one tile's cost per tile,
/// so K rises by one every second tile.
pub fn samples_at(samples: usize, pushed: usize) -> usize {
    samples.min(1 + pushed / 2)
}

impl<'n> BitsBack<'n> {
    /// Codes with `net`, latents discretized into `2^log2_buckets` buckets. Refuses to run
    /// where subnormals are flushed, since every probability would come out different.
    pub fn new(net: &'n Network, log2_buckets: u32) -> Result<Self, CodecError> {
        if !subnormals_are_ieee() {
            return Err(CodecError::SubnormalsFlushed);
        }
        Ok(BitsBack {
            net,
            grid: LatentGrid::new(log2_buckets),
            blank: vec![0; net.tile_pixels()],
            blank_canvas: vec![0; net.canvas().pixels()],
            samples: 1,
            memory: false,
        })
    }

    /// Codes pixels with the page memory mixed in (format-spec.md §3.8), or without.
    pub fn with_memory(mut self, memory: bool) -> Self {
        self.memory = memory;
        self
    }

    /// What the page memory recalls for every pixel of a lane's modelled tiles, replaying
    /// the decoder: tiles in decoding order, each tile's inside pixels in raster order,
    /// blank tiles known without being learnt from. One vector per tile, indexed like the
    /// tile (`rows × side`); empty for blank tiles.
    fn recall_lane(
        &self,
        strips: &[Strip],
        tiles: &[Tile],
        classes: &[TileClass],
    ) -> Vec<Vec<Recall>> {
        let side = self.net.tile();
        let mut lane = Remembering::new();
        tiles
            .iter()
            .zip(classes)
            .map(|(t, &class)| {
                let s = &strips[t.strip];
                lane.reach(t, (s.width, s.rows));
                let modelled = class == TileClass::Model;
                let mut recalls = vec![Recall::default(); if modelled { t.rows * side } else { 0 }];
                for r in 0..t.rows {
                    for c in 0..t.cols {
                        let (y, x) = (t.y + r, t.x + c);
                        let bit = s.pixels[y * s.width + x];
                        if modelled {
                            let (recall, contexts) = lane.memory.recall(y, x);
                            recalls[r * side + c] = recall;
                            lane.memory.learn(contexts, y, x, bit);
                        } else {
                            lane.memory.know(y, x, bit);
                        }
                    }
                }
                recalls
            })
            .collect()
    }

    /// −log2 P(ĵ) of any latent, the prior being uniform over 2^B buckets a dimension:
    /// d·B bits. Also the most a chain's first latent takes from the seed.
    pub fn prior_bits(&self) -> u64 {
        (self.net.config().latent_dim as u64) * u64::from(self.grid.buckets().trailing_zeros())
    }

    /// The side of the model's square tiles, in pixels.
    pub fn tile(&self) -> usize {
        self.net.tile()
    }

    /// Codes with importance-weighted bits-back, up to `samples` latents per tile.
    pub fn with_samples(mut self, samples: usize) -> Self {
        self.samples = samples.max(1);
        self
    }

    /// log2 Q(ĵ|x) of a latent under the discretized posterior `post`: the same sum, in
    /// the same order, as [`Self::pop_posterior`] keeps.
    fn log2_posterior(&self, post: &Posterior, latent: &Latent) -> f64 {
        if let Some(known) = latent.log2_posterior {
            return known;
        }
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        let mut total = 0f64;
        for (i, &j) in latent.buckets.iter().enumerate() {
            self.grid
                .posterior_cdf(post.mean[i] - latent.shifts[i], post.log_sd[i], &mut cdf);
            total += log2_probability(cdf[j + 1] - cdf[j]);
        }
        total
    }

    /// For each latent, log2 P(x|ẑ) of the tile's inside pixels and every position's
    /// probability of ink: the PixelCNN on the known pixels, four latents in lockstep,
    /// with the bits decoding computes pixel by pixel, mixed with the page memory's
    /// `recalls` where the lane has one.
    fn log2_pixels(
        &self,
        tile: &[u8],
        canvas: &[u8],
        (rows, cols): (usize, usize),
        latents: &[Latent],
        recalls: Option<&[Recall]>,
    ) -> (Vec<f64>, Vec<Vec<u32>>) {
        let side = self.net.tile();
        let reach = rows * side;
        let mut logs = Vec::with_capacity(latents.len());
        let mut probs = Vec::with_capacity(latents.len());
        for chunk in latents.chunks(LANE_GROUP) {
            let logits = self.net.pixel_logits::<LANE_GROUP>(
                std::array::from_fn(|g| chunk.get(g).unwrap_or(&chunk[0]).z.as_slice()),
                [canvas; LANE_GROUP],
                [tile; LANE_GROUP],
                reach,
            );
            for g in 0..chunk.len() {
                let prob: Vec<u32> = (0..reach)
                    .map(|p| probability(logits[p * LANE_GROUP + g], recalls.map(|r| &r[p])))
                    .collect();
                let log: f64 = (0..reach)
                    .filter(|p| p % side < cols)
                    .map(|p| {
                        let p1 = prob[p];
                        log2_probability(if tile[p] == 1 {
                            p1
                        } else {
                            (1 << PRECISION) - p1
                        })
                    })
                    .sum();
                logs.push(log);
                probs.push(prob);
            }
        }
        (logs, probs)
    }

    /// The index table of importance-weighted coding: log2 weights
    /// log P(x|ẑ_k) + log P(ĵ_k) − log Q(ĵ_k|x).
    fn index_cdf(
        &self,
        post: &Posterior,
        tile: &[u8],
        canvas: &[u8],
        inside: (usize, usize),
        latents: &[Latent],
        recalls: Option<&[Recall]>,
    ) -> (Vec<u32>, Vec<Vec<u32>>) {
        let prior = self.prior_bits() as f64;
        let (logs, probs) = self.log2_pixels(tile, canvas, inside, latents, recalls);
        let w: Vec<f64> = latents
            .iter()
            .zip(&logs)
            .map(|(l, &lp)| lp - prior - self.log2_posterior(post, l))
            .collect();
        (weights_cdf(&w), probs)
    }

    /// Pushes one tile with `k` importance samples (format-spec.md §3.4).
    fn encode_weighted(
        &self,
        coder: &mut Coder,
        tile: &[u8],
        canvas: &[u8],
        inside: (usize, usize),
        k: usize,
        recalls: Option<&[Recall]>,
    ) -> Result<(), CodecError> {
        let side = self.net.tile();
        let [post] = self.net.posteriors::<1>([tile]);
        let latents = (0..k)
            .map(|_| self.pop_posterior(coder, &post))
            .collect::<Result<Vec<_>, _>>()?;
        let (cdf, probs) = self.index_cdf(&post, tile, canvas, inside, &latents, recalls);
        let j = coder
            .decode_symbol(Categorical::new(&cdf))
            .map_err(coder_err)?;
        if ran_dry(coder) {
            return Err(CodecError::Exhausted { lane: 0, tile: 0 });
        }
        for (i, latent) in latents.iter().enumerate().rev() {
            if i != j {
                self.push_posterior(coder, &post, latent)?;
            }
        }
        let (rows, cols) = inside;
        for p in (0..rows * side).rev().filter(|p| p % side < cols) {
            coder
                .encode_symbol(tile[p], Bernoulli::new(probs[j][p]))
                .map_err(coder_err)?;
        }
        for &b in latents[j].buckets.iter().rev() {
            coder
                .encode_symbol(b, Categorical::new(self.grid.prior_cdf()))
                .map_err(coder_err)?;
        }
        coder
            .encode_symbol(j, Categorical::new(&uniform_cdf(k)))
            .map_err(coder_err)
    }

    /// Pops one tile pushed by [`Self::encode_weighted`], restoring the stack.
    fn decode_weighted(
        &self,
        coder: &mut Coder,
        canvas: &[u8],
        inside: (usize, usize),
        k: usize,
        memory: Option<(&mut PageMemory, (usize, usize))>,
    ) -> Result<Vec<u8>, CodecError> {
        let j = coder
            .decode_symbol(Categorical::new(&uniform_cdf(k)))
            .map_err(coder_err)?;
        let chosen = self.pop_prior(coder)?;
        let (tile, recalls) = self.decode_pixels(coder, &chosen, canvas, inside, memory)?;
        let [post] = self.net.posteriors::<1>([tile.as_slice()]);
        let mut latents = Vec::with_capacity(k);
        for i in 0..k {
            if i != j {
                latents.push(self.pop_posterior(coder, &post)?);
            } else {
                latents.push(chosen.clone());
            }
        }
        if ran_dry(coder) {
            return Err(CodecError::Exhausted { lane: 0, tile: 0 });
        }
        let (cdf, _) = self.index_cdf(&post, &tile, canvas, inside, &latents, recalls.as_deref());
        coder
            .encode_symbol(j, Categorical::new(&cdf))
            .map_err(coder_err)?;
        for latent in latents.iter().rev() {
            self.push_posterior(coder, &post, latent)?;
        }
        Ok(tile)
    }

    /// Pops a tile's inside pixels given its latent, one at a time, with the lane's page
    /// memory and the tile's top-left corner in its strip where the lane has one; also
    /// gives what the memory recalled for each pixel.
    fn decode_pixels(
        &self,
        coder: &mut Coder,
        latent: &Latent,
        canvas: &[u8],
        (rows, cols): (usize, usize),
        mut memory: Option<(&mut PageMemory, (usize, usize))>,
    ) -> Result<(Vec<u8>, Option<Vec<Recall>>), CodecError> {
        let side = self.net.tile();
        let mut state = self.net.pixels_start::<1>([&latent.z], [canvas]);
        let mut tile = vec![0u8; self.net.tile_pixels()];
        let mut recalls = memory
            .as_ref()
            .map(|_| vec![Recall::default(); rows * side]);
        for p in 0..rows * side {
            let logit = state.logit(p)[0];
            if p % side < cols {
                tile[p] = match (&mut memory, &mut recalls) {
                    (Some((m, (y, x))), Some(recalls)) => {
                        let bit;
                        (bit, recalls[p]) =
                            pop_remembered(coder, logit, m, (*y + p / side, *x + p % side))?;
                        bit
                    }
                    _ => coder
                        .decode_symbol(Bernoulli::new(pixel_probability(logit)))
                        .map_err(coder_err)?,
                };
                state.set(p, 0, tile[p]);
            }
        }
        Ok((tile, recalls))
    }

    /// Pops a latent with the discretized posterior `post`.
    fn pop_posterior(&self, coder: &mut Coder, post: &Posterior) -> Result<Latent, CodecError> {
        let net = self.net;
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        let mut prior = net.prior_start();
        let d = post.mean.len();
        let (mut buckets, mut shifts) = (Vec::with_capacity(d), Vec::with_capacity(d));
        let mut log2_q = 0f64;
        for i in 0..d {
            let shift = net.prior_shift(&mut prior);
            self.grid
                .posterior_cdf(post.mean[i] - shift, post.log_sd[i], &mut cdf);
            let j = coder
                .decode_symbol(Categorical::new(&cdf))
                .map_err(coder_err)?;
            log2_q += log2_probability(cdf[j + 1] - cdf[j]);
            net.prior_push(&mut prior, self.grid.centre(j) + shift);
            buckets.push(j);
            shifts.push(shift);
        }
        Ok(Latent {
            buckets,
            shifts,
            z: Network::latent(&prior).to_vec(),
            log2_posterior: Some(log2_q),
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
            log2_posterior: None,
        })
    }

    /// Pushes a latent back with the posterior `post` of the decoded tile, undoing
    /// [`Self::pop_posterior`].
    fn push_posterior(
        &self,
        coder: &mut Coder,
        post: &Posterior,
        latent: &Latent,
    ) -> Result<(), CodecError> {
        let mut cdf = vec![0u32; self.grid.buckets() + 1];
        for i in (0..latent.buckets.len()).rev() {
            self.grid
                .posterior_cdf(post.mean[i] - latent.shifts[i], post.log_sd[i], &mut cdf);
            coder
                .encode_symbol(latent.buckets[i], Categorical::new(&cdf))
                .map_err(coder_err)?;
        }
        Ok(())
    }

    /// Up to G tiles, filled up with blank tiles for idle lockstep slots.
    fn padded<'a, const G: usize>(&'a self, tiles: &[&'a [u8]]) -> [&'a [u8]; G] {
        std::array::from_fn(|g| tiles.get(g).copied().unwrap_or(&self.blank))
    }

    /// Up to G canvases, filled up with blank canvases for idle lockstep slots.
    fn padded_canvases<'a, const G: usize>(&'a self, canvases: &[&'a [u8]]) -> [&'a [u8]; G] {
        std::array::from_fn(|g| canvases.get(g).copied().unwrap_or(&self.blank_canvas))
    }

    /// Pushes one tile onto each of up to G coders in lockstep (`tiles[g]`, a full
    /// `tile × tile` buffer, for `coders[g]`). Only pixels inside `inside[g]` (rows,
    /// columns) are coded; the rest are white and known to both ends. `recalls[g]` is
    /// what the page memory recalls for the tile's pixels, where the lane has one.
    fn encode_group<const G: usize>(
        &self,
        coders: &mut [Coder],
        tiles: &[&[u8]],
        canvases: &[&[u8]],
        inside: &[(usize, usize)],
        recalls: &[Option<&[Recall]>],
    ) -> Result<(), CodecError> {
        let side = self.net.tile();
        let posts = self.net.posteriors::<G>(self.padded(tiles));
        let latents = coders
            .iter_mut()
            .zip(&posts)
            .map(|(c, post)| self.pop_posterior(c, post))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(g) = coders.iter().position(ran_dry) {
            return Err(CodecError::Exhausted { lane: g, tile: 0 });
        }
        let idle = vec![0f32; self.net.config().latent_dim];
        let reach = inside.iter().map(|&(r, _)| r).max().unwrap_or(0) * side;
        let logits = self.net.pixel_logits::<G>(
            std::array::from_fn(|g| latents.get(g).map_or(idle.as_slice(), |l| l.z.as_slice())),
            self.padded_canvases(canvases),
            self.padded(tiles),
            reach,
        );
        for (g, ((coder, tile), latent)) in coders.iter_mut().zip(tiles).zip(&latents).enumerate() {
            let (rows, cols) = inside[g];
            for p in (0..rows * side).rev().filter(|p| p % side < cols) {
                coder
                    .encode_symbol(
                        tile[p],
                        Bernoulli::new(probability(logits[p * G + g], recalls[g].map(|r| &r[p]))),
                    )
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

    /// Pops one tile from each of up to G coders in lockstep, restoring each stack to what
    /// it was before the tile was pushed. Pixels outside `inside[g]` come back white.
    /// `memories[g]` is lane g's page memory and its tile's top-left corner in its strip,
    /// where the lane has one.
    fn decode_group<const G: usize>(
        &self,
        coders: &mut [Coder],
        canvases: &[&[u8]],
        inside: &[(usize, usize)],
        memories: &mut [Option<(&mut PageMemory, (usize, usize))>],
    ) -> Result<Vec<Vec<u8>>, CodecError> {
        let side = self.net.tile();
        let latents = coders
            .iter_mut()
            .map(|c| self.pop_prior(c))
            .collect::<Result<Vec<_>, _>>()?;
        let idle = vec![0f32; self.net.config().latent_dim];
        let mut state = self.net.pixels_start::<G>(
            std::array::from_fn(|g| latents.get(g).map_or(idle.as_slice(), |l| l.z.as_slice())),
            self.padded_canvases(canvases),
        );
        let mut tiles = vec![vec![0u8; self.net.tile_pixels()]; coders.len()];
        let reach = inside.iter().map(|&(r, _)| r).max().unwrap_or(0) * side;
        for p in 0..reach {
            let logits = state.logit(p);
            for (g, (coder, tile)) in coders.iter_mut().zip(tiles.iter_mut()).enumerate() {
                let (rows, cols) = inside[g];
                if p < rows * side && p % side < cols {
                    tile[p] = match &mut memories[g] {
                        Some((memory, (y, x))) => {
                            pop_remembered(
                                coder,
                                logits[g],
                                memory,
                                (*y + p / side, *x + p % side),
                            )?
                            .0
                        }
                        None => coder
                            .decode_symbol(Bernoulli::new(pixel_probability(logits[g])))
                            .map_err(coder_err)?,
                    };
                    state.set(p, g, tile[p]);
                }
            }
        }
        if let Some(g) = coders.iter().position(ran_dry) {
            return Err(CodecError::Exhausted { lane: g, tile: 0 });
        }
        let views: Vec<&[u8]> = tiles.iter().map(Vec::as_slice).collect();
        let posts = self.net.posteriors::<G>(self.padded(&views));
        for ((coder, post), latent) in coders.iter_mut().zip(&posts).zip(&latents) {
            self.push_posterior(coder, post, latent)?;
        }
        Ok(tiles)
    }

    /// Runs `encode_group` over lockstep chunks of busy lanes.
    fn encode_chunks(
        &self,
        coders: &mut [Coder],
        tiles: &[&[u8]],
        canvases: &[&[u8]],
        inside: &[(usize, usize)],
        recalls: &[Option<&[Recall]>],
    ) -> Result<(), CodecError> {
        for ((((c, t), v), i), r) in coders
            .chunks_mut(LANE_GROUP)
            .zip(tiles.chunks(LANE_GROUP))
            .zip(canvases.chunks(LANE_GROUP))
            .zip(inside.chunks(LANE_GROUP))
            .zip(recalls.chunks(LANE_GROUP))
        {
            match c.len() {
                1 => self.encode_group::<1>(c, t, v, i, r)?,
                2 => self.encode_group::<2>(c, t, v, i, r)?,
                _ => self.encode_group::<LANE_GROUP>(c, t, v, i, r)?,
            }
        }
        Ok(())
    }

    /// Runs `decode_group` over lockstep chunks of busy lanes.
    fn decode_chunks(
        &self,
        coders: &mut [Coder],
        canvases: &[&[u8]],
        inside: &[(usize, usize)],
        memories: &mut [Option<(&mut PageMemory, (usize, usize))>],
    ) -> Result<Vec<Vec<u8>>, CodecError> {
        let mut out = Vec::with_capacity(coders.len());
        for (n, (((c, v), i), m)) in coders
            .chunks_mut(LANE_GROUP)
            .zip(canvases.chunks(LANE_GROUP))
            .zip(inside.chunks(LANE_GROUP))
            .zip(memories.chunks_mut(LANE_GROUP))
            .enumerate()
        {
            let decoded = match c.len() {
                1 => self.decode_group::<1>(c, v, i, m),
                2 => self.decode_group::<2>(c, v, i, m),
                _ => self.decode_group::<LANE_GROUP>(c, v, i, m),
            };
            // Number the failing lane within the whole group, not its chunk.
            out.extend(decoded.map_err(|e| match e {
                CodecError::Exhausted { lane, tile } => CodecError::Exhausted {
                    lane: n * LANE_GROUP + lane,
                    tile,
                },
                other => other,
            })?);
        }
        Ok(out)
    }

    /// What the decoder knows around tile `t` of a strip (`pixels`, `width` columns,
    /// decoded up to the tile): its canvas.
    fn canvas(&self, pixels: &[u8], width: usize, t: &Tile) -> Vec<u8> {
        let canvas = self.net.canvas();
        let mut out = vec![0u8; canvas.pixels()];
        canvas.fill(
            pixels,
            width,
            pixels.len() / width.max(1),
            t.y,
            t.x,
            &mut out,
        );
        out
    }

    /// Copies a tile out of a strip into a full `tile × tile` buffer (white outside).
    fn cut(&self, strip: &Strip, t: &Tile) -> Vec<u8> {
        let side = self.net.tile();
        let mut buf = vec![0u8; side * side];
        for r in 0..t.rows {
            let from = (t.y + r) * strip.width + t.x;
            buf[r * side..r * side + t.cols].copy_from_slice(&strip.pixels[from..from + t.cols]);
        }
        buf
    }

    /// Compresses each lane's strips into its own chain, coding up to [`LANE_GROUP`] lanes
    /// in lockstep. Fails with [`CodecError::Exhausted`] in the (never observed) case where
    /// a chain's stack would hold no word between two tiles, which a decoder treats as
    /// corruption; the caller then stores that lane instead.
    // Longer than 80 lines for the same reason as `decompress_lanes`, its mirror.
    pub fn compress_lanes(&self, lanes: &[&[Strip]]) -> Result<Vec<ChainLane>, CodecError> {
        let side = self.net.tile();
        let seed = seed_words();
        // Per lane: its tiles, their classes and their class contexts, and the class
        // counts of the whole lane, which the walk below takes back down tile by tile.
        let mut counts: Vec<ClassCounts> = Vec::with_capacity(lanes.len());
        let plans: Vec<(Vec<Tile>, Vec<TileClass>, Vec<usize>)> = lanes
            .iter()
            .map(|strips| {
                let shapes: Vec<_> = strips.iter().map(|s| (s.width, s.rows)).collect();
                let tiles = tiles(&shapes, side);
                let classes: Vec<TileClass> = tiles
                    .iter()
                    .map(|t| {
                        let s = &strips[t.strip];
                        match ink_and_paper(s.pixels, s.width, (t.y, t.x), (t.rows, t.cols)) {
                            (false, _) => TileClass::White,
                            (true, false) => TileClass::Black,
                            (true, true) => TileClass::Model,
                        }
                    })
                    .collect();
                let mut lane_counts = ClassCounts::new();
                let contexts = tiles
                    .iter()
                    .enumerate()
                    .map(|(j, t)| {
                        let c = ClassCounts::context(&classes, j, t, strips[t.strip].width, side);
                        lane_counts.add(c, classes[j]);
                        c
                    })
                    .collect();
                counts.push(lane_counts);
                (tiles, classes, contexts)
            })
            .collect();
        // Per lane with page memory, what it recalls for each tile's pixels.
        let recalls: Vec<Vec<Vec<Recall>>> = if self.memory {
            plans
                .iter()
                .zip(lanes)
                .map(|((tiles, classes, _), strips)| self.recall_lane(strips, tiles, classes))
                .collect()
        } else {
            Vec::new()
        };
        let mut coders: Vec<Coder> = lanes
            .iter()
            .map(|_| Coder::from_raw_parts(seed.clone(), SEED_STATE))
            .collect();
        let longest = plans.iter().map(|(t, ..)| t.len()).max().unwrap_or(0);
        for step in 0..longest {
            // Lane k pushes its tile n_k − 1 − step; lanes whose tiles ran out sit it out.
            let busy: Vec<(usize, usize)> = plans
                .iter()
                .enumerate()
                .filter(|(_, (t, ..))| step < t.len())
                .map(|(k, (t, ..))| (k, t.len() - 1 - step))
                .collect();
            let modelled: Vec<(usize, usize)> = busy
                .iter()
                .copied()
                .filter(|&(k, j)| plans[k].1[j] == TileClass::Model)
                .collect();
            let (buffers, canvases): (Vec<Vec<u8>>, Vec<Vec<u8>>) = modelled
                .iter()
                .map(|&(k, j)| {
                    let t = &plans[k].0[j];
                    let strip = &lanes[k][t.strip];
                    (
                        self.cut(strip, t),
                        self.canvas(strip.pixels, strip.width, t),
                    )
                })
                .unzip();
            let inside: Vec<(usize, usize)> = modelled
                .iter()
                .map(|&(k, j)| (plans[k].0[j].rows, plans[k].0[j].cols))
                .collect();
            let mut group: Vec<Coder> = modelled
                .iter()
                .map(|&(k, _)| std::mem::take(&mut coders[k]))
                .collect();
            let views: Vec<&[u8]> = buffers.iter().map(Vec::as_slice).collect();
            let canvas_views: Vec<&[u8]> = canvases.iter().map(Vec::as_slice).collect();
            let recall_views: Vec<Option<&[Recall]>> = modelled
                .iter()
                .map(|&(k, j)| recalls.get(k).map(|r| r[j].as_slice()))
                .collect();
            // Every lane pushes its step-th tile now, so all use the same sample count.
            match samples_at(self.samples, step) {
                1 => {
                    self.encode_chunks(&mut group, &views, &canvas_views, &inside, &recall_views)?
                }
                k => {
                    for ((((c, tile), canvas), &ins), &r) in group
                        .iter_mut()
                        .zip(&views)
                        .zip(&canvas_views)
                        .zip(&inside)
                        .zip(&recall_views)
                    {
                        self.encode_weighted(c, tile, canvas, ins, k, r)?;
                    }
                }
            }
            for (&(k, _), c) in modelled.iter().zip(group) {
                coders[k] = c;
            }
            for &(k, j) in &busy {
                let (class, context) = (plans[k].1[j], plans[k].2[j]);
                counts[k].remove(context, class);
                coders[k]
                    .encode_symbol(class as usize, Categorical::new(&counts[k].cdf(context)))
                    .map_err(coder_err)?;
            }
        }
        Ok(coders
            .into_iter()
            .map(|coder| {
                let (bulk, state) = coder.into_raw_parts();
                let elided = bulk.iter().zip(&seed).take_while(|(a, b)| a == b).count();
                ChainLane {
                    seed_words_elided: elided as u32,
                    state,
                    words: bulk[elided..].to_vec(),
                }
            })
            .collect())
    }

    /// Decompresses lanes, each into its strips' pixels in order. `first_index` numbers the
    /// lanes in errors. Decoding fails as soon as a lane's stack runs dry between tiles,
    /// so a lane that claims more than it holds fails within a few tiles.
    // Longer than 80 lines: the lanes advance in lockstep, one tile each a step, and the
    // step's state (coders, class counts, memories, canvases) is shared by every lane's
    // tile; split further, it would be passed around in pieces.
    pub fn decompress_lanes(
        &self,
        lanes: &[ChainInput],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        let side = self.net.tile();
        let seed = seed_words();
        let mut coders = Vec::with_capacity(lanes.len());
        let mut plans = Vec::with_capacity(lanes.len());
        let mut out: Vec<Vec<Vec<u8>>> = Vec::with_capacity(lanes.len());
        for (k, input) in lanes.iter().enumerate() {
            let lane = &input.lane;
            let bad = |reason: String| CodecError::BadLane {
                lane: first_index + k,
                reason,
            };
            let elided = lane.seed_words_elided as usize;
            if elided > seed.len() {
                return Err(bad(format!("{elided} elided seed words")));
            }
            let mut bulk = Vec::with_capacity(elided + lane.words.len());
            bulk.extend_from_slice(&seed[..elided]);
            bulk.extend_from_slice(&lane.words);
            coders.push(Coder::from_raw_parts(bulk, lane.state));
            plans.push((
                TileCursor::new(&input.shapes, side),
                TileCursor::count(&input.shapes, side),
            ));
            // Strip buffers are made as their first tile is decoded: memory follows what
            // the lane actually holds, not what it claims.
            out.push(vec![Vec::new(); input.shapes.len()]);
        }
        let mut counts: Vec<ClassCounts> = lanes.iter().map(|_| ClassCounts::new()).collect();
        let mut memories: Vec<Option<Remembering>> = lanes
            .iter()
            .map(|_| self.memory.then(Remembering::new))
            .collect();
        // Each lane's classes so far: the contexts of the tiles to come.
        let mut classes: Vec<Vec<TileClass>> = vec![Vec::new(); lanes.len()];
        let longest = plans.iter().map(|p| p.1).max().unwrap_or(0);
        for step in 0..longest {
            let mut modelled: Vec<(usize, Tile, Vec<u8>)> = Vec::new();
            for (k, (cursor, _)) in plans.iter_mut().enumerate().filter(|(_, p)| step < p.1) {
                let t = cursor.next().expect("counted");
                let j = step;
                let strip = &mut out[k][t.strip];
                if strip.is_empty() {
                    let (w, r) = lanes[k].shapes[t.strip];
                    strip.resize(w * r, 0);
                }
                if let Some(m) = &mut memories[k] {
                    m.reach(&t, lanes[k].shapes[t.strip]);
                }
                let width = lanes[k].shapes[t.strip].0;
                let context = ClassCounts::context(&classes[k], j, &t, width, side);
                let c = coders[k]
                    .decode_symbol(Categorical::new(&counts[k].cdf(context)))
                    .map_err(coder_err)?;
                if ran_dry(&coders[k]) {
                    return Err(CodecError::Exhausted {
                        lane: first_index + k,
                        tile: j,
                    });
                }
                counts[k].add(context, CLASSES[c]);
                classes[k].push(CLASSES[c]);
                let class = CLASSES[c];
                match class {
                    // Each lane decodes one tile a step, so its canvas can be cut now.
                    TileClass::Model => {
                        let canvas = self.canvas(&out[k][t.strip], lanes[k].shapes[t.strip].0, &t);
                        modelled.push((k, t, canvas));
                    }
                    blank => {
                        let strip = &mut out[k][t.strip];
                        let width = lanes[k].shapes[t.strip].0;
                        let ink = u8::from(blank == TileClass::Black);
                        for r in 0..t.rows {
                            let at = (t.y + r) * width + t.x;
                            strip[at..at + t.cols].fill(ink);
                        }
                        if let Some(m) = &mut memories[k] {
                            for (y, x) in (t.y..t.y + t.rows)
                                .flat_map(|y| (t.x..t.x + t.cols).map(move |x| (y, x)))
                            {
                                m.memory.know(y, x, ink);
                            }
                        }
                    }
                }
            }
            // Tiles pushed late in long lanes may use several samples: those go one by one,
            // the rest in lockstep.
            let pushed = |k: usize| plans[k].1 - 1 - step;
            let (weighted, modelled): (Vec<_>, Vec<_>) = modelled
                .into_iter()
                .partition(|(k, _, _)| samples_at(self.samples, pushed(*k)) > 1);
            let mut decoded = Vec::with_capacity(weighted.len() + modelled.len());
            // Each lane's page memory, lent to the one tile it decodes this step.
            let mut lent: Vec<Option<&mut PageMemory>> = memories
                .iter_mut()
                .map(|m| m.as_mut().map(|m| &mut m.memory))
                .collect();
            for (k, t, canvas) in weighted {
                let tile = self
                    .decode_weighted(
                        &mut coders[k],
                        &canvas,
                        (t.rows, t.cols),
                        samples_at(self.samples, pushed(k)),
                        lent[k].take().map(|m| (m, (t.y, t.x))),
                    )
                    .map_err(|e| e.at(first_index + k, step))?;
                decoded.push((k, t, tile));
            }
            let inside: Vec<(usize, usize)> =
                modelled.iter().map(|(_, t, _)| (t.rows, t.cols)).collect();
            let canvas_views: Vec<&[u8]> = modelled.iter().map(|(_, _, c)| c.as_slice()).collect();
            let mut group: Vec<Coder> = modelled
                .iter()
                .map(|&(k, _, _)| std::mem::take(&mut coders[k]))
                .collect();
            let mut group_memories: Vec<Option<(&mut PageMemory, (usize, usize))>> = modelled
                .iter()
                .map(|&(k, t, _)| lent[k].take().map(|m| (m, (t.y, t.x))))
                .collect();
            let tiles = self
                .decode_chunks(&mut group, &canvas_views, &inside, &mut group_memories)
                .map_err(|e| match e {
                    CodecError::Exhausted { lane, .. } => {
                        e.at(first_index + modelled[lane].0, step)
                    }
                    other => other,
                })?;
            for ((&(k, t, _), c), tile) in modelled.iter().zip(group).zip(tiles) {
                coders[k] = c;
                decoded.push((k, t, tile));
            }
            for (k, t, tile) in decoded {
                place(
                    &mut out[k][t.strip],
                    lanes[k].shapes[t.strip].0,
                    &t,
                    &tile,
                    side,
                );
            }
        }
        for (k, coder) in coders.into_iter().enumerate() {
            if coder.into_raw_parts() != (seed.clone(), SEED_STATE) {
                return Err(CodecError::ChainMismatch {
                    lane: first_index + k,
                });
            }
        }
        Ok(out)
    }
}

/// A bits-back chain over the VLAE, as a lane coder.
pub struct Chain<'n> {
    pub bits_back: BitsBack<'n>,
}

impl LaneCodec for Chain<'_> {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError> {
        Ok(self
            .bits_back
            .compress_lanes(lanes)?
            .into_iter()
            .map(|l| CodedLane {
                seed_words_elided: l.seed_words_elided,
                state: l.state,
                payload: payload(&l.words),
            })
            .collect())
    }

    fn decode(
        &self,
        lanes: &[LaneToDecode],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        let inputs: Vec<ChainInput> = lanes
            .iter()
            .map(|l| ChainInput {
                lane: ChainLane {
                    seed_words_elided: l.seed_words_elided,
                    state: l.state,
                    words: words(l.payload),
                },
                shapes: l.shapes.clone(),
            })
            .collect();
        self.bits_back.decompress_lanes(&inputs, first_index)
    }
}

/// Copies a decoded `side × side` tile's inside into its strip.
fn place(strip: &mut [u8], width: usize, t: &Tile, tile: &[u8], side: usize) {
    for r in 0..t.rows {
        let at = (t.y + r) * width + t.x;
        strip[at..at + t.cols].copy_from_slice(&tile[r * side..r * side + t.cols]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tile's class context reads the classes above and left within the strip, white
    /// past its edges.
    #[test]
    fn class_contexts_are_the_neighbours_classes() {
        use TileClass::{Black as B, Model as M, White as W};
        // One strip of 2 rows of 3 tiles of side 4, the last column 2 pixels wide.
        let classes = [W, M, B, M, W, M];
        let tiles = tiles(&[(10, 8)], 4);
        let contexts: Vec<usize> = (0..6)
            .map(|j| ClassCounts::context(&classes, j, &tiles[j], 10, 4))
            .collect();
        assert_eq!(contexts, [4, 4, 3, 4, 0, 7]);
    }

    #[test]
    fn class_tables_are_valid_and_adapt() {
        for counts in [[0, 0, 0], [1000, 0, 0], [0, 0, 1 << 24], [5, 7, 9]] {
            let cdf = class_cdf(&counts);
            assert_eq!((cdf[0], cdf[3]), (0, 1 << PRECISION));
            assert!(cdf.windows(2).all(|w| w[1] > w[0]), "{counts:?}");
        }
        let after_many = class_cdf(&[0, 10_000, 0]);
        assert!(after_many[2] - after_many[1] > (1 << PRECISION) - (1 << PRECISION) / 1000);
    }

    /// Fits the page-memory mixer's weights (format-spec.md §3.8) to the built-in
    /// `documents` model on the pages in `$VLAE_FIT_PAGES` (training pages only: see
    /// models/README) and writes them to src/codec/mix_weights.rs. Each modelled pixel is
    /// predicted as the coder predicts it, its latent popped from a stack as bits-back
    /// pops it; the weights are then three passes of online logistic regression over the
    /// pages in order, per set, from equal trust in the three inputs. It is one long
    /// function on purpose: the recipe of the shipped weights, read top to bottom.
    /// `VLAE_FIT_PAGES=DIR cargo test --release --lib fit_memory_mixer -- --ignored`
    #[test]
    #[ignore]
    fn fit_memory_mixer() {
        use crate::codec::memory::{LOGIT_ONE, MIX_INPUTS, TOTAL_CLASSES};
        use crate::image_io::read_image;
        let dir = std::env::var("VLAE_FIT_PAGES").expect("VLAE_FIT_PAGES=a folder of pages");
        let mut pages: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        pages.sort();
        let net = crate::models::built_in("documents")
            .unwrap()
            .network()
            .unwrap();
        let bb = BitsBack::new(&net, 6).unwrap().with_memory(true);
        let side = net.tile();
        // (inputs in logits, set, bit) of every modelled pixel, page by page.
        let mut samples: Vec<([f64; MIX_INPUTS], usize, u8)> = Vec::new();
        let mut coder = Coder::from_raw_parts(seed_words(), SEED_STATE);
        for page in &pages {
            let (img, _) = read_image(page).unwrap();
            let strip = Strip {
                width: img.width,
                rows: img.height,
                pixels: &img.pixels,
            };
            let tiles = tiles(&[(img.width, img.height)], side);
            let classes: Vec<TileClass> = tiles
                .iter()
                .map(|t| {
                    match ink_and_paper(&img.pixels, img.width, (t.y, t.x), (t.rows, t.cols)) {
                        (true, true) => TileClass::Model,
                        _ => TileClass::White,
                    }
                })
                .collect();
            let recalls = bb.recall_lane(&[strip], &tiles, &classes);
            for ((t, class), recalls) in tiles.iter().zip(&classes).zip(&recalls) {
                if *class != TileClass::Model {
                    continue;
                }
                let tile = bb.cut(&strip, t);
                let canvas = bb.canvas(strip.pixels, strip.width, t);
                let [post] = net.posteriors::<1>([&tile]);
                if coder.num_valid_bits() < 1024 {
                    coder = Coder::from_raw_parts(seed_words(), SEED_STATE);
                }
                let latent = bb.pop_posterior(&mut coder, &post).unwrap();
                let logits = net.pixel_logits::<1>([&latent.z], [&canvas], [&tile], t.rows * side);
                for p in (0..t.rows * side).filter(|p| p % side < t.cols) {
                    let r = recalls[p];
                    let vlae = libm::round(f64::from(logits[p].clamp(-64.0, 64.0)) * 256.0);
                    let one = f64::from(LOGIT_ONE);
                    let mut x = [1.0; MIX_INPUTS];
                    x[0] = vlae / one;
                    for (x, &c) in x[1..].iter_mut().zip(&r.counts) {
                        *x = f64::from(c) / one;
                    }
                    samples.push((x, r.set as usize, tile[p]));
                }
            }
            eprintln!("{}: {} pixels so far", page.display(), samples.len());
        }
        let equal = 1.0 / (MIX_INPUTS - 1) as f64;
        let mut start = [equal; MIX_INPUTS];
        start[MIX_INPUTS - 1] = 0.0;
        let mut w = vec![start; TOTAL_CLASSES * TOTAL_CLASSES];
        for pass in 0..3 {
            let mut bits = 0f64;
            for (x, set, bit) in &samples {
                let dot: f64 = (0..MIX_INPUTS).map(|i| w[*set][i] * x[i]).sum();
                let p = (1.0 / (1.0 + (-dot).exp())).clamp(1e-6, 1.0 - 1e-6);
                bits -= if *bit == 1 {
                    p.log2()
                } else {
                    (1.0 - p).log2()
                };
                let err = f64::from(*bit) - p;
                for i in 0..MIX_INPUTS {
                    w[*set][i] += 0.002 * err * x[i];
                }
            }
            eprintln!(
                "pass {pass}: {:.4} bits a pixel",
                bits / samples.len() as f64
            );
        }
        let rows: Vec<String> = w
            .iter()
            .map(|s| format!("    {:?},", s.map(|v| libm::round(v * 65536.0) as i32)))
            .collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/codec/mix_weights.rs");
        let head: String = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            path,
            format!(
                "{head}#[rustfmt::skip]\npub const MIX_WEIGHTS: [[i32; {MIX_INPUTS}]; {}] = [\n{}\n];\n",
                w.len(),
                rows.join("\n")
            ),
        )
        .unwrap();
    }

    #[test]
    fn tiles_cover_odd_shapes_exactly() {
        let t = tiles(&[(30, 29), (1, 1)], 28);
        assert_eq!(t.len(), 5);
        let covered: usize = t.iter().map(|t| t.rows * t.cols).sum();
        assert_eq!(covered, 30 * 29 + 1);
        assert_eq!((t[3].rows, t[3].cols), (1, 2));
    }
}
