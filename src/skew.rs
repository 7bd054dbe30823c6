//! Straightening skewed pages (format-spec.md §1.7).
//!
//! A page scanned a fraction of a degree askew has text lines that climb a pixel every
//! hundred columns and strokes that lean a pixel every hundred rows, so each glyph comes
//! in several kinked variants and every context model has to learn each of them. The six
//! scanned training pages, rotated about 0.6°, cost 10–13% less once straightened. A
//! skewed image is therefore stored straightened by two shears, which only move pixels
//! within their row or column (cyclically, so nothing falls off and every slope is
//! reversible), and sheared back when decoded. They are a rotation's first two shears:
//! rows shifted right, then columns down, each by its offset from the middle times one
//! slope, rounded; one integer per image, the slope in units of 2^−20, describes both.
//!
//! [`estimate`] finds the slope in two steps. The rows' ink profile is sharpest when text
//! lines run level, which finds the angle to within a few hundredths of a degree. The
//! exact slope, whose rounded shifts undo a page's own shears step for step (a slope 40
//! units off keeps only half the gain), is the one that leaves the fewest neighbouring
//! pixels that differ, since every kink that is left adds some. A page rasterized at an
//! angle, as a scanner's optics make it, has no shear steps to undo: straightening it
//! costs more (8–33% on a page rendered at 0.3–1.5°), and [`estimate`] keeps no slope.
#![forbid(unsafe_code)]

/// Slopes are in units of 2^−[`SLOPE_BITS`] pixels a pixel.
pub const SLOPE_BITS: u32 = 20;
/// [`estimate`] looks at slopes up to this, about 3.6°.
const SEARCH: i64 = 1 << 16;
/// A slope is kept only where it takes away more than this part of a page's differing
/// neighbours (rotated scans: 0.36–0.60%; clean pages gain nothing).
const KEEP_BELOW: i64 = 1000;
/// Columns summed together for the ink profile.
const BLOCK: usize = 32;

/// `round((pos − len/2) · slope / 2^20)`, halves rounded up, in exact integers: how far
/// the shear of slope `slope` moves the row or column at `pos` of `len`.
fn shear_shift(pos: usize, len: usize, slope: i64) -> i64 {
    ((2 * pos as i64 - len as i64) * slope + (1 << SLOPE_BITS)).div_euclid(1 << (SLOPE_BITS + 1))
}

/// How far down the column shear moves column `x`, mod `height`.
fn column_shift(x: usize, width: usize, height: usize, skew: i64) -> usize {
    shear_shift(x, width, -skew).rem_euclid(height as i64) as usize
}

/// How far right the row shear moves row `y`, mod `width`.
fn row_shift(y: usize, width: usize, height: usize, skew: i64) -> usize {
    shear_shift(y, height, skew).rem_euclid(width as i64) as usize
}

/// Runs of columns `x0..x1` that the column shear moves together, with their shift.
fn column_runs(width: usize, height: usize, skew: i64) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for x in 0..width {
        let s = column_shift(x, width, height, skew);
        match runs.last_mut() {
            Some(run) if run.2 == s => run.1 = x + 1,
            _ => runs.push((x, x + 1, s)),
        }
    }
    runs
}

/// Row `y` of `pixels` with the column shear undone: `row[x] = pixels[(y + c(x)) mod h][x]`.
fn unshear_row(
    pixels: &[u8],
    width: usize,
    runs: &[(usize, usize, usize)],
    y: usize,
    row: &mut [u8],
) {
    let height = pixels.len() / width;
    for &(x0, x1, s) in runs {
        let from = (y + s) % height * width;
        row[x0..x1].copy_from_slice(&pixels[from + x0..from + x1]);
    }
}

/// The stored form of an image (`width × height` bytes of 0/1) at slope `skew`: what
/// [`restore`] turns back into `pixels`.
pub fn straighten(pixels: &[u8], width: usize, height: usize, skew: i64) -> Vec<u8> {
    let runs = column_runs(width, height, skew);
    let mut out = vec![0; pixels.len()];
    for (y, row) in out.chunks_exact_mut(width).enumerate() {
        unshear_row(pixels, width, &runs, y, row);
        row.rotate_left(row_shift(y, width, height, skew));
    }
    out
}

/// The image whose [`straighten`]ed form at slope `skew` is `stored`, sheared in place:
/// a decoder holds one page and one band of columns, not two pages.
pub fn restore(mut stored: Vec<u8>, width: usize, height: usize, skew: i64) -> Vec<u8> {
    for (y, row) in stored.chunks_exact_mut(width).enumerate() {
        row.rotate_right(row_shift(y, width, height, skew));
    }
    let mut band = Vec::new();
    for (x0, x1, s) in column_runs(width, height, skew) {
        if s == 0 {
            continue;
        }
        band.clear();
        band.extend(stored.chunks_exact(width).flat_map(|row| &row[x0..x1]));
        for (y, from) in band.chunks_exact(x1 - x0).enumerate() {
            let to = (y + s) % height * width;
            stored[to + x0..to + x1].copy_from_slice(from);
        }
    }
    stored
}

/// The slope to store `pixels` at: the one whose straightening leaves the fewest
/// neighbouring pixels that differ, if it leaves fewer than the image as it is by more
/// than a thousandth; otherwise 0, the image as it is. Its size is at most 2^16 + 2,055,
/// within the format's limit of 2^17.
pub fn estimate(pixels: &[u8], width: usize, height: usize) -> i64 {
    if width < 2 || height < 2 {
        return 0;
    }
    let counts = block_counts(pixels, width, height);
    let sharpness = |s: i64| -(profile_sharpness(&counts, width, height, s) as i64);
    let coarse = best_of((-SEARCH..=SEARCH).step_by(1024), sharpness).0;
    let (sharpest, sharper) = best_of((coarse - 1024..=coarse + 1024).step_by(64), sharpness);
    // A profile no sharper than the page's own (a blank, black or noisy page, or a level
    // one) says nothing of a skew: kinks are then looked for near 0, where they are
    // cheap to count, not at whichever slope came first among equals.
    let level = if sharper * KEEP_BELOW < sharpness(0) * (KEEP_BELOW + 1) {
        sharpest
    } else {
        0
    };
    let page = Page::new(pixels, width, height);
    let change = |s: i64| transitions_change(&page, s);
    let near = best_of((level - 1024..=level + 1024).step_by(8), change).0;
    let (best, change) = best_of(near - 7..=near + 7, change);
    if change * KEEP_BELOW < -(page.transitions as i64) {
        best
    } else {
        0
    }
}

/// The candidate with the smallest score, and that score; the first among equals.
fn best_of(candidates: impl Iterator<Item = i64>, score: impl Fn(i64) -> i64) -> (i64, i64) {
    candidates
        .map(|s| (s, score(s)))
        .min_by_key(|&(_, v)| v)
        .expect("a candidate")
}

/// Ink counts of each block of [`BLOCK`] columns in each row, block after block, so that
/// each block's rows are contiguous.
fn block_counts(pixels: &[u8], width: usize, height: usize) -> Vec<u16> {
    let blocks = width.div_ceil(BLOCK);
    let mut counts = vec![0u16; blocks * height];
    for (y, row) in pixels.chunks_exact(width).enumerate() {
        for (b, block) in row.chunks(BLOCK).enumerate() {
            counts[b * height + y] = block.iter().map(|&p| u16::from(p)).sum();
        }
    }
    counts
}

/// Σ over rows of the square of the row's ink once the column shear at `skew` is undone
/// (each block of columns moved by the shift of its middle column): largest when text
/// lines run level. (The row shear moves ink within rows, so it does not change this.)
fn profile_sharpness(counts: &[u16], width: usize, height: usize, skew: i64) -> u64 {
    let mut profile = vec![0u32; height];
    for (b, block) in counts.chunks_exact(height).enumerate() {
        let s = column_shift((b * BLOCK + BLOCK / 2).min(width - 1), width, height, skew);
        let (wrapped, from_shift) = block.split_at(s);
        let (first, second) = profile.split_at_mut(height - s);
        first
            .iter_mut()
            .zip(from_shift)
            .for_each(|(p, &c)| *p += u32::from(c));
        second
            .iter_mut()
            .zip(wrapped)
            .for_each(|(p, &c)| *p += u32::from(c));
    }
    profile.iter().map(|&p| u64::from(p) * u64::from(p)).sum()
}

/// A page as [`transitions_change`] reads it.
struct Page<'p> {
    pixels: &'p [u8],
    width: usize,
    height: usize,
    /// Column after column, so that each column is contiguous.
    columns: Vec<u8>,
    /// For each x, the rows where columns x and x + 1 differ.
    across: Vec<u32>,
    /// Horizontally or vertically neighbouring pixels that differ.
    transitions: u64,
}

impl<'p> Page<'p> {
    fn new(pixels: &'p [u8], width: usize, height: usize) -> Self {
        let mut columns = vec![0; pixels.len()];
        let mut across = vec![0u32; width];
        for (y, row) in pixels.chunks_exact(width).enumerate() {
            for (x, &p) in row.iter().enumerate() {
                columns[x * height + y] = p;
            }
            for (x, pair) in row.windows(2).enumerate() {
                across[x] += u32::from(pair[0] != pair[1]);
            }
        }
        let down: usize = pixels
            .chunks_exact(width)
            .zip(pixels.chunks_exact(width).skip(1))
            .map(|(a, b)| differing(a, 0, b, 0))
            .sum();
        let transitions = across.iter().map(|&a| u64::from(a)).sum::<u64>() + down as u64;
        Page {
            pixels,
            width,
            height,
            columns,
            across,
            transitions,
        }
    }
}

/// How [`straighten`] at `skew` changes the number of neighbouring pixels that differ. A
/// shear changes only the pairs that straddle its breaks, the columns (rows) where its
/// shift steps, so this reads those alone: a fiftieth of a page skewed 0.6°. (Pairs that
/// wrap around the image's edges are not counted, before or after.)
fn transitions_change(page: &Page, skew: i64) -> i64 {
    let (width, height) = (page.width, page.height);
    let column = |x: usize| &page.columns[x * height..(x + 1) * height];
    let mut change = 0i64;
    let mut shift = column_shift(0, width, height, skew);
    for x in 0..width - 1 {
        let next = column_shift(x + 1, width, height, skew);
        if next != shift {
            let after = differing(column(x), shift, column(x + 1), next);
            change += after as i64 - i64::from(page.across[x]);
        }
        shift = next;
    }
    // The row shear acts on the image whose columns are already straight.
    let runs = column_runs(width, height, skew);
    let (mut upper, mut lower) = (vec![0; width], vec![0; width]);
    for y in 0..height - 1 {
        let (r0, r1) = (
            row_shift(y, width, height, skew),
            row_shift(y + 1, width, height, skew),
        );
        if r0 != r1 {
            unshear_row(page.pixels, width, &runs, y, &mut upper);
            unshear_row(page.pixels, width, &runs, y + 1, &mut lower);
            let after = differing(&upper, r0, &lower, r1);
            change += after as i64 - differing(&upper, 0, &lower, 0) as i64;
        }
    }
    change
}

/// Positions where `a` rotated left by `a_shift` and `b` (as long) rotated left by
/// `b_shift` differ, compared as at most three pairs of contiguous runs.
fn differing(a: &[u8], a_shift: usize, b: &[u8], b_shift: usize) -> usize {
    let n = a.len();
    let (mut i, mut j, mut left, mut count) = (a_shift, b_shift, n, 0);
    while left > 0 {
        let run = (n - i).min(n - j).min(left);
        count += a[i..i + run]
            .iter()
            .zip(&b[j..j + run])
            .filter(|(p, q)| p != q)
            .count();
        (i, j, left) = ((i + run) % n, (j + run) % n, left - run);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neighbouring pixels that differ, counted directly.
    fn transitions(pixels: &[u8], width: usize) -> i64 {
        let rows: Vec<&[u8]> = pixels.chunks_exact(width).collect();
        let across: usize = rows
            .iter()
            .map(|r| r.windows(2).filter(|p| p[0] != p[1]).count())
            .sum();
        let down: usize = rows.windows(2).map(|p| differing(p[0], 0, p[1], 0)).sum();
        (across + down) as i64
    }

    /// A page of text-like lines: runs of ink of varied lengths on a blank margin.
    fn lines(width: usize, height: usize) -> Vec<u8> {
        let mut pixels = vec![0u8; width * height];
        let mut seed = 12345u32;
        for y in 8..height - 8 {
            if y % 16 >= 9 {
                continue;
            }
            for x in 8..width - 8 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let glyph = (x / 7 + y / 16) % 5 != 0;
                pixels[y * width + x] = u8::from(glyph && (x % 7 < 3 || seed >> 28 == 0));
            }
        }
        pixels
    }

    #[test]
    fn straightening_is_undone_exactly() {
        let (width, height) = (301, 203);
        let pixels: Vec<u8> = (0..width * height)
            .map(|i| (i * 7919 % 13 < 5) as u8)
            .collect();
        for skew in [7_000, -10_799, 100_000, -(1 << 17)] {
            let stored = straighten(&pixels, width, height, skew);
            assert_ne!(stored, pixels, "slope {skew} moved nothing");
            assert_eq!(restore(stored, width, height, skew), pixels, "slope {skew}");
        }
        assert_eq!(straighten(&pixels, width, height, 0), pixels);
    }

    #[test]
    fn shifts_round_from_the_middle() {
        // A slope of 1/2: the row at the middle stays, rows move half their distance
        // from it, halves rounded up.
        let half = 1 << (SLOPE_BITS - 1);
        let shifts: Vec<i64> = (0..6).map(|y| shear_shift(y, 6, half)).collect();
        assert_eq!(shifts, [-1, -1, 0, 0, 1, 1]);
    }

    #[test]
    fn the_change_in_transitions_is_counted_at_the_breaks_alone() {
        let (width, height) = (300, 200);
        let pixels = lines(width, height);
        let page = Page::new(&pixels, width, height);
        assert_eq!(page.transitions as i64, transitions(&pixels, width));
        for skew in [3_000, -10_799, 20_000] {
            let straight = straighten(&pixels, width, height, skew);
            let direct = transitions(&straight, width) - transitions(&pixels, width);
            assert_eq!(transitions_change(&page, skew), direct, "slope {skew}");
        }
    }

    #[test]
    fn a_skewed_page_is_found_and_a_level_one_left_alone() {
        let (width, height) = (600, 400);
        let level = lines(width, height);
        assert_eq!(estimate(&level, width, height), 0);
        let skew = -10_799;
        let skewed = restore(level.clone(), width, height, skew);
        let found = estimate(&skewed, width, height);
        assert_eq!(
            straighten(&skewed, width, height, found),
            level,
            "found {found}"
        );
    }
}
