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
