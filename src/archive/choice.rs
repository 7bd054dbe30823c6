//! Which model's chain codes each lane under `auto`: every model codes a sample of the
//! lane, and the smallest estimate wins. Sampling is most of what `auto` costs beyond one
//! chain, so it goes in two rounds: every model on a sparse sample first, and only the
//! models still close to the best on the full sample. On the 10,000 test digits every
//! other built-in model's chain takes at least 1.4 times the MNIST model's bits (165.1
//! bits/image for the nearest, against 118.2), so the first round settles every lane.

use super::at_most;
use crate::codec::bitsback::Chain;
use crate::codec::lane::{lane_pixels, LaneCodec, Strip};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;

/// Rows of a lane between two places where every model codes a sample to choose the
/// lane's model: about one tile row in 16 of the largest tiles (32 rows).
const SAMPLE_PERIOD_ROWS: usize = 512;

/// The first round samples one place in four: rows this far apart.
const SPARSE_PERIOD_ROWS: usize = 4 * SAMPLE_PERIOD_ROWS;

/// Rows and columns of a lane that the chains code to estimate it.
#[derive(Clone, Copy)]
struct Sample {
    /// Rows between two places.
    period: usize,
    /// Whether each place keeps only the middle quarter of the lane's columns, in whole
    /// tiles (a lane at most two tiles wide is kept whole).
    middle_quarter: bool,
}

/// [`choose_models`]' rounds: rows a whole lane wide.
const SPARSE: Sample = Sample {
    period: SPARSE_PERIOD_ROWS,
    middle_quarter: false,
};
const FULL: Sample = Sample {
    period: SAMPLE_PERIOD_ROWS,
    middle_quarter: false,
};

/// [`chain_within`]'s first round: the sparse rows, each cut to its middle quarter. On a
/// small page the chains' sample was a third of compression, and most pages' chains are
/// far from page mixing's size: on the 0.13 Mpx dreyfus1 the best was estimated at 1.7
/// times it, beyond [`CONTENDER`], and so they are ruled out on a quarter of a row as on a
/// whole one. A page's middle holds more ink than its margins, so the cut errs toward
/// ruling a chain out; [`CONTENDER`]'s margin covers that, and those that come near go on
/// to the full sample, which alone decides that a chain wins. The choice was the same: on
/// the 12 real scans, the 8 rendered test pages, 400 OMNIGLOT characters and six grids of
/// 16 to 144 test digits (where the MNIST chain wins), every archive came out unchanged.
const SPARSE_MIDDLE: Sample = Sample {
    period: SPARSE_PERIOD_ROWS,
    middle_quarter: true,
};

/// A model goes on to the full sample of a lane where its first-round estimate is at most
/// this multiple of the best one's. The digits' runners-up are 1.4 times the MNIST
/// model's; a quarter of the sample (8 digits a lane) varies by far less than the margin.
const CONTENDER: (u64, u64) = (5, 4);

/// For each lane, the index of the chain that codes it smallest, as [`estimate_chains`]
/// finds. Each model then codes only its own lanes, so `auto` costs a fraction of a chain
/// per extra model instead of a whole one. Lanes that are bands of one image (`pooled[k]`,
/// a page) choose together, whatever task codes them: one band alone may be a blank margin
/// or a heading.
pub(super) fn choose_models(
    chains: &[Chain],
    lanes: &[&[Strip]],
    cut: usize,
    pooled: &[Option<usize>],
    per_task: usize,
) -> Vec<usize> {
    let all: Vec<&Chain> = chains.iter().collect();
    if all.len() < 2 {
        return vec![0; lanes.len()];
    }
    let first = pool(estimate_chains(&all, lanes, cut, per_task, SPARSE), pooled);
    let contenders: Vec<Vec<usize>> = first
        .iter()
        .map(|cost| {
            // The cheapest first, so that a lane no model could code still has one.
            let best = (0..cost.len())
                .min_by_key(|&m| cost[m])
                .expect("two chains");
            std::iter::once(best)
                .chain(
                    (0..cost.len())
                        .filter(|&m| m != best && at_most(cost[m], cost[best], CONTENDER)),
                )
                .collect()
        })
        .collect();
    let open: Vec<usize> = (0..lanes.len())
        .filter(|&k| contenders[k].len() > 1)
        .collect();
    let mut choice: Vec<usize> = contenders.iter().map(|c| c[0]).collect();
    if open.is_empty() || sparse_sample_is_full(lanes, cut) {
        return choice;
    }
    let mut models: Vec<usize> = open.iter().flat_map(|&k| contenders[k].clone()).collect();
    models.sort_unstable();
    models.dedup();
    let second: Vec<&Chain> = models.iter().map(|&m| &chains[m]).collect();
    let views: Vec<&[Strip]> = open.iter().map(|&k| lanes[k]).collect();
    let open_pooled: Vec<Option<usize>> = open.iter().map(|&k| pooled[k]).collect();
    let full = estimate_chains(&second, &views, cut, per_task, FULL);
    for (cost, &k) in pool(full, &open_pooled).iter().zip(&open) {
        choice[k] = contenders[k]
            .iter()
            .copied()
            .min_by_key(|m| cost[models.binary_search(m).expect("a contender")])
            .expect("two contenders");
    }
    choice
}

/// Each lane's costs, or where it is a band of a page, the page's summed over its bands.
fn pool(sizes: Vec<Vec<u64>>, pooled: &[Option<usize>]) -> Vec<Vec<u64>> {
    let mut pages: HashMap<usize, Vec<u64>> = HashMap::new();
    for (cost, image) in sizes.iter().zip(pooled) {
        if let Some(image) = image {
            let sum = pages.entry(*image).or_insert_with(|| vec![0; cost.len()]);
            for (total, &size) in sum.iter_mut().zip(cost) {
                *total = total.saturating_add(size);
            }
        }
    }
    sizes
        .into_iter()
        .zip(pooled)
        .map(|(cost, image)| image.map_or(cost, |image| pages[&image].clone()))
        .collect()
}

/// Whether some chain is estimated to code all lanes together in at most num/den of `bits`:
/// how page mixing is weighed against the chains. As in [`choose_models`], a sparse sample
/// comes first, here also cut to the middle quarter of each row ([`SPARSE_MIDDLE`]); only
/// where its best estimate is within [`CONTENDER`] of that mark are the lanes sampled in
/// full. On a scanned page the chains' sample took two fifths of compression, and their
/// estimates are far above page mixing's size there.
pub(super) fn chain_within(
    chains: &[Chain],
    lanes: &[&[Strip]],
    cut: usize,
    bits: u64,
    (num, den): (u64, u64),
) -> bool {
    let all: Vec<&Chain> = chains.iter().collect();
    let first = model_bits(&all, lanes, cut, SPARSE_MIDDLE);
    let (c_num, c_den) = CONTENDER;
    let contenders: Vec<&Chain> = chains
        .iter()
        .zip(&first)
        .filter(|&(_, &b)| at_most(b, bits, (num * c_num, den * c_den)))
        .map(|(c, _)| c)
        .collect();
    let best = if contenders.is_empty() {
        first
    } else {
        model_bits(&contenders, lanes, cut, FULL)
    };
    best.into_iter().any(|b| at_most(b, bits, (num, den)))
}

/// Whether [`choose_models`]' first round, the sparse sample of `lanes`, is their full
/// sample (lanes too short for more than one place): the second round would then code the
/// same rows again and find the same sizes.
fn sparse_sample_is_full(lanes: &[&[Strip]], cut: usize) -> bool {
    lanes
        .iter()
        .all(|l| sample_places(l, cut, SPARSE.period) == sample_places(l, cut, FULL.period))
}

/// The estimated size of all lanes together under each of `chains`, in bits, from samples
/// as `sample` says.
fn model_bits(chains: &[&Chain], lanes: &[&[Strip]], cut: usize, sample: Sample) -> Vec<u64> {
    let sizes = estimate_chains(chains, lanes, cut, 1, sample);
    (0..chains.len())
        .map(|m| {
            sizes
                .iter()
                .map(|lane| lane[m])
                .fold(0, u64::saturating_add)
        })
        .collect()
}

/// Where [`estimate_chains`] samples a lane: `(strip, first row)` at rows of a strip that
/// are multiples of `cut`, the first at least half a `period` (in rows) into the lane and
/// each next at least a period after the last; a lane too short for one is sampled at its
/// last such row.
fn sample_places(strips: &[Strip], cut: usize, period: usize) -> Vec<(usize, usize)> {
    let mut places = Vec::new();
    let mut last = (0, 0);
    let mut lane_row = 0;
    let mut mark = period / 2;
    for (k, strip) in strips.iter().enumerate() {
        for y in (0..strip.rows).step_by(cut) {
            if lane_row + y >= mark {
                places.push((k, y));
                mark += period * ((lane_row + y - mark) / period + 1);
            }
            last = (k, y);
        }
        lane_row += strip.rows;
    }
    if places.is_empty() {
        places.push(last);
    }
    places
}

/// `sizes[k][m]`: lane k's estimated size under chain m, in bits, from a sample taken at
/// [`sample_places`], where every model's tile rows start, as `sample` says. At each place
/// every model codes one row of its own tiles, so that it sees the tiles it would code: a
/// band of another model's height cuts a grid of digits through their middles, and the
/// digit model then looked twice as costly as it is. Each model's sample is coded as a
/// chain of its own, its start-up counted once and its rest scaled by the lane's pixels
/// over the sample's. The models code their samples in parallel, `per_task` lanes at a
/// time.
fn estimate_chains(
    chains: &[&Chain],
    lanes: &[&[Strip]],
    cut: usize,
    per_task: usize,
    sample: Sample,
) -> Vec<Vec<u64>> {
    let places: Vec<Vec<(usize, usize)>> = lanes
        .iter()
        .map(|l| sample_places(l, cut, sample.period))
        .collect();
    let pixels_per_lane: Vec<u64> = lanes
        .iter()
        .map(|strips| lane_pixels(strips) as u64)
        .collect();
    let lane_numbers: Vec<usize> = (0..lanes.len()).collect();
    lane_numbers
        .par_chunks(per_task)
        .flat_map_iter(|group| {
            let by_model: Vec<Vec<u64>> = chains
                .par_iter()
                .map(|c| {
                    let tile = c.bits_back.tile();
                    let taken: Vec<Vec<SampleRows>> = group
                        .iter()
                        .map(|&k| {
                            places[k]
                                .iter()
                                .map(|&(strip, y)| {
                                    SampleRows::take(&lanes[k][strip], y, tile, sample)
                                })
                                .collect()
                        })
                        .collect();
                    let samples: Vec<Vec<Strip>> = taken
                        .iter()
                        .map(|lane| lane.iter().map(SampleRows::strip).collect())
                        .collect();
                    let views: Vec<&[Strip]> = samples.iter().map(Vec::as_slice).collect();
                    match c.encode(&views) {
                        Ok(coded) => {
                            // The whole lane would cost one start-up (a first latent
                            // popped from the seed, at most d·B bits) and the sample's
                            // rest in proportion: comparing samples as they are would
                            // favour models with small latents.
                            let startup = c.bits_back.prior_bits();
                            coded
                                .iter()
                                .zip(&samples)
                                .zip(group)
                                .map(|((l, sample), &k)| {
                                    let bits = 8 * l.payload.len() as u64;
                                    let sampled: u64 = lane_pixels(sample) as u64;
                                    let rest = u128::from(bits.saturating_sub(startup))
                                        * u128::from(pixels_per_lane[k])
                                        / u128::from(sampled.max(1));
                                    startup.saturating_add(rest.min(u64::MAX as u128) as u64)
                                })
                                .collect()
                        }
                        Err(_) => vec![u64::MAX; group.len()],
                    }
                })
                .collect();
            (0..group.len()).map(move |k| by_model.iter().map(|m| m[k]).collect::<Vec<_>>())
        })
        .collect()
}

/// One place of a sample: a tile's height of rows of a strip, whole (borrowed) or cut to
/// the middle quarter of its columns (copied).
struct SampleRows<'a> {
    width: usize,
    rows: usize,
    pixels: Cow<'a, [u8]>,
}

impl<'a> SampleRows<'a> {
    /// Rows y… of `s`, up to a `tile` of them, as `sample` says.
    fn take(s: &Strip<'a>, y: usize, tile: usize, sample: Sample) -> Self {
        let rows = tile.min(s.rows - y);
        let pixels = &s.pixels[y * s.width..(y + rows) * s.width];
        if !sample.middle_quarter || s.width <= 2 * tile {
            return SampleRows {
                width: s.width,
                rows,
                pixels: Cow::Borrowed(pixels),
            };
        }
        let width = (s.width / 4).div_ceil(tile) * tile;
        let start = (s.width - width) / 2 / tile * tile;
        let middle = pixels
            .chunks_exact(s.width)
            .flat_map(|row| &row[start..start + width])
            .copied()
            .collect();
        SampleRows {
            width,
            rows,
            pixels: Cow::Owned(middle),
        }
    }

    /// The rows as a strip to code.
    fn strip(&self) -> Strip<'_> {
        Strip {
            width: self.width,
            rows: self.rows,
            pixels: &self.pixels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first-round place keeps the middle quarter of a wide strip's columns, in whole
    /// tiles, and the whole of a strip at most two tiles wide; other rounds keep every
    /// column.
    #[test]
    fn first_round_keeps_the_middle_quarter() {
        let (width, rows, tile) = (400, 60, 28);
        let pixels: Vec<u8> = (0..width * rows)
            .map(|i| ((i % width) % 3 == 0) as u8)
            .collect();
        let strip = Strip {
            width,
            rows,
            pixels: &pixels,
        };
        let cut = SampleRows::take(&strip, 28, tile, SPARSE_MIDDLE);
        let s = cut.strip();
        // A quarter is 100 columns: 4 tiles, 112, centred on a tile boundary at 140.
        assert_eq!((s.width, s.rows), (112, 28));
        for (y, row) in s.pixels.chunks_exact(112).enumerate() {
            let from = (28 + y) * width + 140;
            assert_eq!(row, &pixels[from..from + 112]);
        }
        let whole = SampleRows::take(&strip, 50, tile, SPARSE);
        let s = whole.strip();
        assert_eq!((s.width, s.rows), (width, 10));
        assert_eq!(s.pixels, &pixels[50 * width..]);
        let narrow = Strip {
            width: 56,
            rows: 28,
            pixels: &pixels[..56 * 28],
        };
        assert_eq!(
            SampleRows::take(&narrow, 0, tile, SPARSE_MIDDLE)
                .strip()
                .width,
            56
        );
    }

    /// Samples start where every model's tile rows start (rows of their strip that are
    /// multiples of the cut), one a period from half a period in: on a page, on a lane of
    /// digits, and on a lane shorter than half a period.
    #[test]
    fn samples_start_where_every_model_tiles_start() {
        let page = vec![0; 10 * 1680];
        let tall = [Strip {
            width: 10,
            rows: 1680,
            pixels: &page,
        }];
        assert_eq!(
            sample_places(&tall, 224, SAMPLE_PERIOD_ROWS),
            [(0, 448), (0, 896), (0, 1344)]
        );
        let digit = vec![0; 28 * 28];
        let digits = vec![
            Strip {
                width: 28,
                rows: 28,
                pixels: &digit,
            };
            100
        ];
        let at_rows = |places: Vec<(usize, usize)>| -> Vec<usize> {
            places.iter().map(|&(k, y)| 28 * k + y).collect()
        };
        assert_eq!(
            at_rows(sample_places(&digits, 224, SAMPLE_PERIOD_ROWS)),
            [280, 784, 1288, 1792, 2324]
        );
        assert_eq!(
            sample_places(&digits[..9], 28, SAMPLE_PERIOD_ROWS),
            [(8, 0)]
        );
    }
}
