//! Training and evaluation samples: the canvases of tiles cut from images of any size.
//!
//! A sample is what the model sees of one tile: its canvas (the tile plus, for a context
//! model, the already-decoded surround), exactly as the coder builds it. Only tiles with
//! both ink and paper are samples, since only those reach the model when coding.
#![forbid(unsafe_code)]

use crate::geometry::{ink_and_paper, model_tiles, Canvas};
use rand::{rngs::StdRng, Rng};
use serde::{Deserialize, Serialize};

/// How images that are a single tile (digits, characters, silhouettes) are varied in
/// training. A few thousand such images are too few for the model not to learn them by
/// heart; moved or mirrored copies are new images of the same kind, where the kind allows
/// it (characters must not be mirrored; silhouettes may).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Moves the image by up to this many pixels each way, white coming in at the edges.
    pub shift: usize,
    /// Mirrors the image left to right half of the time.
    pub mirror: bool,
}

impl Augment {
    /// `pixels` (`width × height`) moved and mirrored as `rng` draws.
    fn apply(&self, pixels: &[u8], width: usize, height: usize, rng: &mut StdRng) -> Vec<u8> {
        let s = self.shift as i64;
        let (dy, dx) = (rng.random_range(-s..=s), rng.random_range(-s..=s));
        let mirror = self.mirror && rng.random_bool(0.5);
        let mut out = vec![0; width * height];
        for (y, row) in out.chunks_exact_mut(width).enumerate() {
            let from_y = y as i64 - dy;
            if !(0..height as i64).contains(&from_y) {
                continue;
            }
            for (x, pixel) in row.iter_mut().enumerate() {
                let from_x = x as i64 - dx;
                if (0..width as i64).contains(&from_x) {
                    let from_x = if mirror {
                        width - 1 - from_x as usize
                    } else {
                        from_x as usize
                    };
                    *pixel = pixels[from_y as usize * width + from_x];
                }
            }
        }
        out
    }
}

/// One bi-level image: `width × height` bytes of 0/1.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// The modelled tiles of a set of images.
pub struct TileSet {
    images: Vec<Image>,
    /// Every tile with ink and paper, in raster order: (image, row, column).
    tiles: Vec<(usize, usize, usize)>,
    canvas: Canvas,
}

impl TileSet {
    /// Lists the tiles of `images` on the grid the coder uses (from the top-left corner).
    pub fn new(images: Vec<Image>, canvas: Canvas) -> Self {
        let side = canvas.side;
        let mut tiles = Vec::new();
        for (i, img) in images.iter().enumerate() {
            tiles.extend(
                model_tiles(&img.pixels, img.width, img.height, side).map(|(y, x)| (i, y, x)),
            );
        }
        TileSet {
            images,
            tiles,
            canvas,
        }
    }

    /// Modelled tiles.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// Images the tiles come from.
    pub fn images(&self) -> usize {
        self.images.len()
    }

    /// Appends the canvas of tile `i` to `out`, with the image above and left of it as
    /// context. With `jitter`, the tile first moves by up to half a tile each way (staying
    /// inside the image, and only to where it still has ink and paper): training then sees
    /// glyphs at every offset from the grid, as pages give them. An image that is a single
    /// tile cannot move so; `augment` varies it instead.
    pub fn push_canvas(&self, i: usize, jitter: Option<(&mut StdRng, Augment)>, out: &mut Vec<u8>) {
        let (k, mut y, mut x) = self.tiles[i];
        let img = &self.images[k];
        let side = self.canvas.side;
        let start = out.len();
        out.resize(start + self.canvas.pixels(), 0);
        let single = img.width <= side && img.height <= side;
        match jitter {
            Some((rng, augment)) if single && augment != Augment::default() => {
                let varied = augment.apply(&img.pixels, img.width, img.height, rng);
                self.canvas
                    .fill(&varied, img.width, img.height, 0, 0, &mut out[start..]);
                return;
            }
            Some((rng, _)) => {
                let half = (side / 2) as i64;
                let moved = |at: usize, dim: usize, d: i64| -> usize {
                    (at as i64 + d).clamp(0, dim.saturating_sub(side) as i64) as usize
                };
                let (dy, dx) = (
                    rng.random_range(-half..=half),
                    rng.random_range(-half..=half),
                );
                let (ny, nx) = (moved(y, img.height, dy), moved(x, img.width, dx));
                let inside = (side.min(img.height - ny), side.min(img.width - nx));
                if ink_and_paper(&img.pixels, img.width, (ny, nx), inside) == (true, true) {
                    (y, x) = (ny, nx);
                }
            }
            None => {}
        }
        self.canvas
            .fill(&img.pixels, img.width, img.height, y, x, &mut out[start..]);
    }

    /// Every tile's canvas, in order, on the grid.
    pub fn grid_canvases(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.canvas.pixels());
        for i in 0..self.len() {
            self.push_canvas(i, None, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn page() -> Image {
        // 40×30: ink in a band of rows 10..14, nothing else.
        let (width, height) = (40, 30);
        let pixels = (0..width * height)
            .map(|p| u8::from((10..14).contains(&(p / width)) && p % 3 == 0))
            .collect();
        Image {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn only_tiles_with_ink_and_paper_are_samples() {
        let set = TileSet::new(vec![page()], Canvas { side: 8, margin: 2 });
        // Rows 10..14 lie in tile row 1 (8..16); 5 tiles across 40 columns.
        assert_eq!(set.len(), 5);
        assert_eq!(set.grid_canvases().len(), 5 * 10 * 12);
    }

    /// A tile the size of its image never moves, so 28×28 digits train as they always did.
    #[test]
    fn jitter_keeps_whole_image_tiles_in_place() {
        let img = page();
        let digit = Image {
            width: 8,
            height: 8,
            pixels: img.pixels[10 * 40..]
                .iter()
                .step_by(5)
                .take(64)
                .copied()
                .collect(),
        };
        let set = TileSet::new(vec![digit], Canvas { side: 8, margin: 0 });
        assert_eq!(set.len(), 1);
        let mut rng = StdRng::seed_from_u64(3);
        let mut moved = Vec::new();
        for _ in 0..20 {
            moved.clear();
            set.push_canvas(0, Some((&mut rng, Augment::default())), &mut moved);
            assert_eq!(moved, set.grid_canvases());
        }
    }

    /// Augmenting moves and mirrors a single-tile image's ink, keeping its count where
    /// nothing leaves the frame; mirroring twice is the identity.
    #[test]
    fn augmenting_moves_and_mirrors_single_tiles() {
        let (width, height) = (8, 8);
        let mut pixels = vec![0u8; 64];
        pixels[3 * 8 + 2] = 1; // (3, 2)
        let mirror = Augment {
            shift: 0,
            mirror: true,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen_mirrored = false;
        for _ in 0..20 {
            let out = mirror.apply(&pixels, width, height, &mut rng);
            assert_eq!(out.iter().filter(|&&p| p == 1).count(), 1);
            assert!(out[3 * 8 + 2] == 1 || out[3 * 8 + 5] == 1);
            seen_mirrored |= out[3 * 8 + 5] == 1;
        }
        assert!(seen_mirrored);
        let shift = Augment {
            shift: 1,
            mirror: false,
        };
        let mut moved = false;
        for _ in 0..20 {
            let out = shift.apply(&pixels, width, height, &mut rng);
            let at = out.iter().position(|&p| p == 1).unwrap();
            let (y, x) = (at / 8, at % 8);
            assert!(y.abs_diff(3) <= 1 && x.abs_diff(2) <= 1, "({y}, {x})");
            moved |= (y, x) != (3, 2);
        }
        assert!(moved);
    }
}
