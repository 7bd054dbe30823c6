//! `vlae-zip show`: what z keeps, drawn as in the VLAE paper. Three panels, one above the
//! other: originals; lossy reconstructions, each tile's pixels sampled from the PixelCNN
//! given z ~ q(z|x); and samples from the prior. Tiles are drawn in raster order, and a
//! context model reads around each tile what the panel being drawn already holds, as the
//! decoder would.
//!
//! Sampling runs the deterministic network the coder uses: a figure needs no tensors.
#![forbid(unsafe_code)]

use crate::geometry::ink_and_paper;
use crate::infer::network::Network;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A bi-level panel: `width × height` bytes of 0/1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Images that are one tile each go side by side, up to this many.
pub const TILE_IMAGES: usize = 12;
/// Otherwise the panel is a crop of the first image this many tiles wide and high.
pub const CROP_TILES: (usize, usize) = (12, 4);

/// The originals panel for images of the given sizes and pixels (0/1 bytes): up to
/// [`TILE_IMAGES`] images side by side when they are `side × side`, else the crop of the
/// first image, on its tile grid, that holds the most ink.
pub fn originals(images: &[(usize, usize, &[u8])], side: usize) -> Panel {
    if images.iter().all(|&(w, h, _)| (w, h) == (side, side)) {
        let n = images.len().min(TILE_IMAGES);
        let mut panel = Panel {
            width: n * side,
            height: side,
            pixels: vec![0; n * side * side],
        };
        for (i, &(_, _, px)) in images.iter().take(n).enumerate() {
            for y in 0..side {
                let at = y * panel.width + i * side;
                panel.pixels[at..at + side].copy_from_slice(&px[y * side..(y + 1) * side]);
            }
        }
        return panel;
    }
    let (w, h, px) = images[0];
    let (width, height) = ((CROP_TILES.0 * side).min(w), (CROP_TILES.1 * side).min(h));
    let ink = |top: usize, left: usize| -> usize {
        (top..top + height)
            .map(|y| {
                px[y * w + left..y * w + left + width]
                    .iter()
                    .filter(|&&v| v == 1)
                    .count()
            })
            .sum()
    };
    let starts = |len: usize, span: usize| (0..=len - span).step_by(side);
    let (top, left) = starts(h, height)
        .flat_map(|t| starts(w, width).map(move |l| (t, l)))
        .max_by_key(|&(t, l)| (ink(t, l), std::cmp::Reverse((t, l))))
        .expect("one crop at least");
    let mut pixels = Vec::with_capacity(width * height);
    for y in top..top + height {
        pixels.extend_from_slice(&px[y * w + left..y * w + left + width]);
    }
    Panel {
        width,
        height,
        pixels,
    }
}

/// Where a tile's latent comes from.
enum Latents<'a> {
    /// z ~ q(z|x) of the same tile of this panel.
    Posterior(&'a Panel),
    /// z ~ p(z).
    Prior,
}

/// Draws a panel the size of `shape` tile by tile, each tile's pixels sampled from the
/// PixelCNN given a latent from `latents`.
fn sample_panel(net: &Network, shape: &Panel, latents: Latents, rng: &mut StdRng) -> Panel {
    let side = net.tile();
    let canvas = net.canvas();
    let mut out = Panel {
        width: shape.width,
        height: shape.height,
        pixels: vec![0; shape.pixels.len()],
    };
    let mut tile = vec![0u8; side * side];
    let mut known = vec![0u8; canvas.pixels()];
    for y in (0..out.height).step_by(side) {
        for x in (0..out.width).step_by(side) {
            let (rows, cols) = (side.min(out.height - y), side.min(out.width - x));
            let z: Vec<f32> = match &latents {
                Latents::Posterior(original) => {
                    // Blank tiles are coded by their class alone: drawn as they are.
                    if ink_and_paper(&original.pixels, original.width, (y, x), (rows, cols))
                        != (true, true)
                    {
                        for r in 0..rows {
                            let at = (y + r) * original.width + x;
                            out.pixels[at..at + cols]
                                .copy_from_slice(&original.pixels[at..at + cols]);
                        }
                        continue;
                    }
                    tile.fill(0);
                    for r in 0..rows {
                        let at = (y + r) * original.width + x;
                        tile[r * side..r * side + cols]
                            .copy_from_slice(&original.pixels[at..at + cols]);
                    }
                    let post = net.posterior(&tile);
                    post.mean
                        .iter()
                        .zip(&post.log_sd)
                        .map(|(&m, &s)| {
                            let n: f32 = StandardNormal.sample(&mut *rng);
                            m + s.exp() * n
                        })
                        .collect()
                }
                Latents::Prior => {
                    let mut st = net.prior_start();
                    for _ in 0..net.config().latent_dim {
                        let eps: f32 = StandardNormal.sample(&mut *rng);
                        let shift = net.prior_shift(&mut st);
                        net.prior_push(&mut st, eps + shift);
                    }
                    Network::latent(&st).to_vec()
                }
            };
            // The tile itself is still blank in `out`: the canvas holds only its context.
            canvas.fill(&out.pixels, out.width, out.height, y, x, &mut known);
            let mut state = net.pixels_start::<1>([&z], [known.as_slice()]);
            for p in 0..rows * side {
                let logit = state.logit(p)[0];
                let ink = u8::from(rng.random::<f32>() < 1.0 / (1.0 + (-logit).exp()));
                if p % side < cols {
                    out.pixels[(y + p / side) * out.width + x + p % side] = ink;
                    state.set(p, 0, ink);
                }
            }
        }
    }
    out
}

/// The figure: originals, reconstructions and prior samples, `scale` screen pixels a
/// pixel, separated by grey bands, as 8-bit greyscale rows (ink black).
pub fn figure(net: &Network, original: &Panel, seed: u64, scale: usize) -> (usize, usize, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let recon = sample_panel(net, original, Latents::Posterior(original), &mut rng);
    let prior = sample_panel(net, original, Latents::Prior, &mut rng);
    let gap = 4;
    let width = original.width * scale;
    let height = 3 * original.height * scale + 2 * gap;
    let mut grey = vec![128u8; width * height];
    for (k, panel) in [original, &recon, &prior].into_iter().enumerate() {
        let top = k * (original.height * scale + gap);
        for y in 0..original.height * scale {
            for x in 0..width {
                let ink = panel.pixels[(y / scale) * panel.width + x / scale];
                grey[(top + y) * width + x] = if ink == 1 { 0 } else { 255 };
            }
        }
    }
    (width, height, grey)
}

/// `count` images of one tile each, sampled from `net` with z ~ p(z): images the model
/// finds typical, for tests and figures that need its kind of data without the data.
pub fn prior_samples(net: &Network, count: usize, seed: u64) -> Vec<Vec<u8>> {
    let side = net.tile();
    let shape = Panel {
        width: count * side,
        height: side,
        pixels: vec![0; count * side * side],
    };
    let panel = sample_panel(
        net,
        &shape,
        Latents::Prior,
        &mut StdRng::seed_from_u64(seed),
    );
    (0..count)
        .map(|i| {
            (0..side)
                .flat_map(|y| {
                    let at = y * panel.width + i * side;
                    panel.pixels[at..at + side].iter().copied()
                })
                .collect()
        })
        .collect()
}

/// PNG bytes of 8-bit greyscale rows.
pub fn png(width: usize, height: usize, grey: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("PNG header to memory");
    w.write_image_data(grey).expect("PNG data to memory");
    w.finish().expect("PNG end to memory");
    out
}
