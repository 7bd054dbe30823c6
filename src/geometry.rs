//! Pixel-grid geometry shared by training and by the deterministic coder.
//!
//! Every convolution in the model is described here as a list of taps (row/column offsets)
//! and a [`TapTable`] saying which input position each (output position, tap) pair reads.
//! Training turns a table into an im2col gather followed by one matmul; the coder walks
//! the same table. Because the causal masks of the PixelCNN exist only here, the coder
//! cannot decode with a different causal structure from the one the model was trained with.
#![forbid(unsafe_code)]

/// A tap: (row offset, column offset) relative to the output position.
pub type Tap = (isize, isize);

/// All taps of a full `k`×`k` kernel (k odd), row-major.
pub fn square_taps(k: usize) -> Vec<Tap> {
    let r = (k / 2) as isize;
    (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dy, dx)))
        .collect()
}

/// The taps of a `k`×`k` PixelCNN mask, row-major: every position strictly before the
/// centre in raster order, plus the centre itself when `include_centre` (mask B).
/// Mask A (`include_centre == false`) is what keeps pixel i from seeing itself.
pub fn causal_taps(k: usize, include_centre: bool) -> Vec<Tap> {
    square_taps(k)
        .into_iter()
        .filter(|&(dy, dx)| dy < 0 || (dy == 0 && (dx < 0 || (include_centre && dx == 0))))
        .collect()
}

/// What the part of a tile inside its image holds: (some ink, some paper). Only tiles
/// with both go through the model; the chain codes the others as one symbol
/// (format-spec.md §3.2), and training never sees them.
pub fn ink_and_paper(
    pixels: &[u8],
    width: usize,
    (y, x): (usize, usize),
    (rows, cols): (usize, usize),
) -> (bool, bool) {
    let (mut ink, mut paper) = (false, false);
    for row in (y..y + rows).map(|r| &pixels[r * width + x..r * width + x + cols]) {
        ink |= row.contains(&1);
        paper |= row.contains(&0);
        if ink && paper {
            break;
        }
    }
    (ink, paper)
}

/// The top-left corners of the tiles of side `side`, on the grid from the image's
/// top-left corner, whose part inside a `width × height` image has both ink and paper:
/// the tiles the model codes, in raster order.
pub fn model_tiles(
    pixels: &[u8],
    width: usize,
    height: usize,
    side: usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..height).step_by(side).flat_map(move |y| {
        (0..width).step_by(side).filter_map(move |x| {
            let inside = (side.min(height - y), side.min(width - x));
            (ink_and_paper(pixels, width, (y, x), inside) == (true, true)).then_some((y, x))
        })
    })
}

/// The window a PixelCNN input layer reads for one tile: the tile itself plus, for a
/// model with context, `margin` rows above it and `margin` columns on either side.
///
/// Tiles are decoded in raster order, so when a tile starts the decoder knows every pixel
/// above it (the whole margin band, left, above and right) and the pixels to its left on
/// its own rows, but nothing to its right on those rows. The canvas holds exactly what the
/// decoder knows; [`TapTable::on_canvas`] never reads the unknown part. With margin 0 the
/// canvas is the tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Canvas {
    pub side: usize,
    pub margin: usize,
}

impl Canvas {
    pub fn width(&self) -> usize {
        self.side + 2 * self.margin
    }

    pub fn height(&self) -> usize {
        self.side + self.margin
    }

    pub fn pixels(&self) -> usize {
        self.width() * self.height()
    }

    /// Canvas index of tile pixel `p` (row-major in the tile).
    #[inline]
    pub fn of_tile(&self, p: usize) -> usize {
        let (y, x) = (p / self.side, p % self.side);
        (y + self.margin) * self.width() + x + self.margin
    }

    /// Whether tile-relative position (y, x) is known before the tile is decoded, or is
    /// the tile's own: above it (within the margin), left of it on its rows, or inside.
    fn readable(&self, y: isize, x: isize) -> bool {
        let (m, t) = (self.margin as isize, self.side as isize);
        y >= -m && y < t && x >= -m && x < t + m && (y < 0 || x < t)
    }

    /// Fills `out` (one canvas) for the tile whose top-left corner is (`y`, `x`) in an
    /// image of `width` columns whose first `rows` rows are `pixels` (0/1): every readable
    /// position inside the image is copied, everything else is white (0). Rows above the
    /// image — such as above a lane's first strip row — are white, as the decoder has them.
    pub fn fill(
        &self,
        pixels: &[u8],
        width: usize,
        rows: usize,
        y: usize,
        x: usize,
        out: &mut [u8],
    ) {
        let m = self.margin as isize;
        out.fill(0);
        for cy in 0..self.height() {
            let (ty, iy) = (cy as isize - m, y as isize + cy as isize - m);
            if iy < 0 || iy >= rows as isize {
                continue;
            }
            for cx in 0..self.width() {
                let (tx, ix) = (cx as isize - m, x as isize + cx as isize - m);
                if ix >= 0 && ix < width as isize && self.readable(ty, tx) {
                    out[cy * self.width() + cx] = pixels[iy as usize * width + ix as usize];
                }
            }
        }
    }
}

/// How an output grid relates to its input grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Output grid equals the input grid.
    Same,
    /// Stride-2 convolution: output (y, x) centres on input (2y, 2x).
    Down2,
    /// Nearest-neighbour 2× upsampling fused with the convolution that follows it.
    Up2,
}

/// For one convolution: which input position each (output position, tap) reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapTable {
    /// Input positions per image.
    pub n_in: usize,
    /// Output positions per image.
    pub n_out: usize,
    /// Taps per output position.
    pub taps: usize,
    /// Output width, for mapping positions back to rows and columns.
    pub out_width: usize,
    src: Vec<u32>,
}

/// Marks a tap that falls outside the input and reads zero.
const PADDING: u32 = u32::MAX;

impl TapTable {
    /// Builds the table for an input grid of `in_h`×`in_w` positions.
    pub fn new(in_h: usize, in_w: usize, resample: Resample, taps: &[Tap]) -> Self {
        let (out_h, out_w) = match resample {
            Resample::Same => (in_h, in_w),
            Resample::Down2 => (in_h.div_ceil(2), in_w.div_ceil(2)),
            Resample::Up2 => (in_h * 2, in_w * 2),
        };
        let locate = |y: usize, x: usize, (dy, dx): Tap| -> u32 {
            let (sy, sx, lim_h, lim_w) = match resample {
                Resample::Same => (y as isize + dy, x as isize + dx, in_h, in_w),
                Resample::Down2 => (2 * y as isize + dy, 2 * x as isize + dx, in_h, in_w),
                Resample::Up2 => (y as isize + dy, x as isize + dx, out_h, out_w),
            };
            if sy < 0 || sx < 0 || sy >= lim_h as isize || sx >= lim_w as isize {
                return PADDING;
            }
            let (sy, sx) = (sy as usize, sx as usize);
            match resample {
                Resample::Up2 => ((sy / 2) * in_w + sx / 2) as u32,
                _ => (sy * in_w + sx) as u32,
            }
        };
        let mut src = Vec::with_capacity(out_h * out_w * taps.len());
        for y in 0..out_h {
            for x in 0..out_w {
                src.extend(taps.iter().map(|&t| locate(y, x, t)));
            }
        }
        TapTable {
            n_in: in_h * in_w,
            n_out: out_h * out_w,
            taps: taps.len(),
            out_width: out_w,
            src,
        }
    }

    /// The causal input layer of a PixelCNN: output positions are the tile's, inputs the
    /// canvas's. A tap reads the canvas where the decoder knows the pixel and is padding
    /// everywhere else; with margin 0 this is the `Same` table over the tile.
    pub fn on_canvas(canvas: Canvas, taps: &[Tap]) -> Self {
        let side = canvas.side as isize;
        let mut src = Vec::with_capacity(canvas.side * canvas.side * taps.len());
        for y in 0..side {
            for x in 0..side {
                src.extend(taps.iter().map(|&(dy, dx)| {
                    let (sy, sx) = (y + dy, x + dx);
                    if !canvas.readable(sy, sx) {
                        return PADDING;
                    }
                    let m = canvas.margin as isize;
                    ((sy + m) as usize * canvas.width() + (sx + m) as usize) as u32
                }));
            }
        }
        TapTable {
            n_in: canvas.pixels(),
            n_out: canvas.side * canvas.side,
            taps: taps.len(),
            out_width: canvas.side,
            src,
        }
    }

    /// The input position read by `tap` of output position `out`, or `None` for padding.
    #[inline]
    pub fn source(&self, out: usize, tap: usize) -> Option<usize> {
        let s = self.src[out * self.taps + tap];
        (s != PADDING).then_some(s as usize)
    }

    /// All sources of output position `out`, one per tap.
    #[inline]
    pub fn sources(&self, out: usize) -> &[u32] {
        &self.src[out * self.taps..(out + 1) * self.taps]
    }

    /// The step k when output positions `first..first + n` read, on every tap, inputs k
    /// apart in order and no padding, as neighbouring positions away from the edges do
    /// (k = 2 for a stride-2 convolution); `None` otherwise.
    pub fn run_step(&self, first: usize, n: usize) -> Option<usize> {
        let base = self.sources(first);
        if n < 2 || base.iter().any(|&b| b == PADDING) {
            return None;
        }
        let step = self.sources(first + 1)[0].checked_sub(base[0])?;
        (step > 0
            && (1..n).all(|i| {
                // In u64, and never padding: a step taken from a padded neighbour is
                // huge, and its multiples must not wrap around onto real sources.
                self.sources(first + i).iter().zip(base).all(|(&s, &b)| {
                    s != PADDING && u64::from(s) == u64::from(b) + i as u64 * u64::from(step)
                })
            }))
        .then_some(step as usize)
    }

    /// Whether a raw entry of [`Self::sources`] is padding.
    #[inline]
    pub fn is_padding(s: u32) -> bool {
        s == PADDING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEIGHT: usize = 28;
    const WIDTH: usize = 28;
    const PIXELS: usize = HEIGHT * WIDTH;

    #[test]
    fn mask_a_excludes_centre_and_future() {
        let taps = causal_taps(3, false);
        assert_eq!(taps, vec![(-1, -1), (-1, 0), (-1, 1), (0, -1)]);
        let taps5 = causal_taps(5, false);
        assert_eq!(taps5.len(), 12);
        assert!(taps5.iter().all(|&(dy, dx)| dy < 0 || (dy == 0 && dx < 0)));
    }

    /// Positions inside a row are runs with the convolution's stride as their step;
    /// groups touching an edge, or wrapping onto the next row, are not.
    #[test]
    fn runs_are_found_inside_rows_only() {
        let same = TapTable::new(8, 8, Resample::Same, &square_taps(3));
        assert_eq!(same.run_step(9, 4), Some(1));
        assert_eq!(same.run_step(8, 4), None, "left edge");
        assert_eq!(same.run_step(12, 4), None, "right edge");
        assert_eq!(same.run_step(1, 4), None, "top edge");
        assert_eq!(same.run_step(14, 4), None, "wraps onto the next row");
        let down = TapTable::new(16, 16, Resample::Down2, &square_taps(3));
        assert_eq!(down.run_step(9, 4), Some(2));
        let up = TapTable::new(4, 4, Resample::Up2, &square_taps(3));
        assert_eq!(up.run_step(9, 4), None, "upsampling repeats inputs");
        // One tap reading the right neighbour: at the row's end it reads padding, and the
        // step to it must not wrap around into a run (found by fuzzing a debug build).
        let right = TapTable::new(8, 8, Resample::Same, &[(0, 1)]);
        assert_eq!(right.run_step(5, 2), Some(1));
        assert_eq!(
            right.run_step(6, 2),
            None,
            "the next position reads padding"
        );
    }

    #[test]
    fn mask_b_adds_only_the_centre() {
        let mut b = causal_taps(3, true);
        assert_eq!(b.pop(), Some((0, 0)));
        assert_eq!(b, causal_taps(3, false));
    }

    /// Composing mask A with any number of mask-B layers must never let an output read
    /// its own pixel or a later one: the property bits-back decoding depends on.
    #[test]
    fn stacked_masks_stay_causal() {
        let a = TapTable::new(HEIGHT, WIDTH, Resample::Same, &causal_taps(5, false));
        let b = TapTable::new(HEIGHT, WIDTH, Resample::Same, &causal_taps(3, true));
        // reach[p] = the set of pixels output p depends on, as a bitmap.
        let mut reach: Vec<Vec<bool>> = (0..PIXELS)
            .map(|p| {
                let mut r = vec![false; PIXELS];
                for s in a.sources(p).iter().filter(|s| !TapTable::is_padding(**s)) {
                    r[*s as usize] = true;
                }
                r
            })
            .collect();
        for _ in 0..6 {
            reach = (0..PIXELS)
                .map(|p| {
                    let mut r = vec![false; PIXELS];
                    for s in b.sources(p).iter().filter(|s| !TapTable::is_padding(**s)) {
                        for (q, &on) in reach[*s as usize].iter().enumerate() {
                            r[q] |= on;
                        }
                    }
                    r
                })
                .collect();
        }
        for (p, r) in reach.iter().enumerate() {
            assert!(
                r[..p].iter().any(|&x| x) || p == 0,
                "pixel {p} sees nothing"
            );
            assert!(
                !r[p..].iter().any(|&x| x),
                "pixel {p} sees itself or the future"
            );
        }
    }

    #[test]
    fn canvas_without_margin_is_the_same_table() {
        let taps = causal_taps(5, false);
        let plain = TapTable::new(8, 8, Resample::Same, &taps);
        let canvas = TapTable::on_canvas(Canvas { side: 8, margin: 0 }, &taps);
        assert_eq!(plain, canvas);
    }

    /// The input layer of a context model reads the rows above and the columns to the left
    /// across the tile border, but never the unknown pixels right of the tile on its rows.
    #[test]
    fn canvas_reads_only_what_the_decoder_knows() {
        let c = Canvas { side: 4, margin: 2 };
        let table = TapTable::on_canvas(c, &causal_taps(5, false));
        // Tile pixel (0, 3), tap (-2, +2) reads the row-above band right of the tile.
        let tap = causal_taps(5, false)
            .iter()
            .position(|&t| t == (-2, 2))
            .unwrap();
        assert_eq!(table.source(3, tap), Some(3 + 2 + 2));
        // Tile pixel (1, 3), tap (-1, +1): right of the tile on its own rows, unknown.
        let tap = causal_taps(5, false)
            .iter()
            .position(|&t| t == (-1, 1))
            .unwrap();
        assert_eq!(table.source(4 + 3, tap), None);
        // Tile pixel (0, 0), tap (0, -2): left of the tile, known.
        let tap = causal_taps(5, false)
            .iter()
            .position(|&t| t == (0, -2))
            .unwrap();
        assert_eq!(table.source(0, tap), Some(2 * c.width()));
        // fill copies the same region: a page of ink gives ink exactly where readable.
        let page = vec![1u8; 12 * 12];
        let mut out = vec![0u8; c.pixels()];
        c.fill(&page, 12, 12, 4, 4, &mut out);
        for cy in 0..c.height() {
            for cx in 0..c.width() {
                let readable = cy < 2 || cx < 2 + 4;
                assert_eq!(out[cy * c.width() + cx], u8::from(readable), "({cy}, {cx})");
            }
        }
        // At the image's top-left corner everything outside the image is white.
        c.fill(&page, 12, 12, 0, 0, &mut out);
        assert_eq!(out.iter().filter(|&&v| v == 1).count(), 4 * 4);
    }

    #[test]
    fn resampling_tables_read_the_right_inputs() {
        let down = TapTable::new(28, 28, Resample::Down2, &square_taps(3));
        assert_eq!((down.n_out, down.taps), (196, 9));
        // Output (1, 1) centres on input (2, 2); its top-left tap reads (1, 1).
        assert_eq!(down.source(14 + 1, 0), Some(28 + 1));
        assert_eq!(down.source(0, 0), None);
        let up = TapTable::new(7, 7, Resample::Up2, &square_taps(3));
        assert_eq!(up.n_out, 196);
        // Output (3, 3), tap (0, 0) reads input (1, 1); tap (+1, +1) reads (2, 2).
        assert_eq!(up.source(3 * 14 + 3, 4), Some(7 + 1));
        assert_eq!(up.source(3 * 14 + 3, 8), Some(2 * 7 + 2));
        assert_eq!(up.source(13 * 14 + 13, 8), None);
    }
}
