//! Page memory (format-spec.md §3.8): adaptive counts over what a lane has decoded so far,
//! mixed with the VLAE's probability of each pixel.
//!
//! A tile's latent says which glyphs it holds and the small-receptive-field PixelCNN draws
//! their edges, but neither remembers the page: a font's glyphs come back hundreds of times,
//! and the model pays for every edge each time. Counts over causal neighbourhoods of 16 to
//! 110 pixels learn the page as it is decoded: the wide ones its glyphs, the narrow ones its
//! texture. A fixed logistic mixer, one weight set per pair of count totals, weighs them
//! with the VLAE. On the 8 test pages this takes a sixth off the archive.
//!
//! Only what depends on the pixels may adapt. The VLAE's probability depends on the tile's
//! latent, which bits-back pops from the stack only after the tiles decoded later were
//! pushed, so a mixer that learned from it across tiles could not be replayed by the
//! encoder. The mixer's weights are therefore constants (`mix_weights.rs`), fitted offline.
//!
//! The known pixels are kept one bit each, so that a neighbourhood's row is one or two word
//! reads rather than a byte per pixel: the widest neighbourhood's rows are read once per
//! pixel and the narrower ones cut from them.
#![forbid(unsafe_code)]

use super::counts::{Counts, Learning, COUNT_LIMIT};
use super::mix_weights::MIX_WEIGHTS;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// A causal neighbourhood, row by row: for each row above the pixel (dy < 0, top first)
/// the half-width r of its run of columns −r..=r, then the run −`left`..=−1 on the pixel's
/// own row. Its context has bit k for the k-th pixel so listed (format-spec.md §3.8).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub rows: &'static [(isize, usize)],
    pub left: usize,
}

impl Shape {
    /// Whether its contexts index a table of 2^`bits` count pairs through a hash: where
    /// it has more pixels than the table has bits.
    pub const fn is_hashed(&self, bits: u32) -> bool {
        self.pixels() > bits as usize
    }

    /// How many pixels it holds.
    pub const fn pixels(&self) -> usize {
        let (mut n, mut i) = (self.left, 0);
        while i < self.rows.len() {
            n += 2 * self.rows[i].1 + 1;
            i += 1;
        }
        n
    }

    /// The (row, column) offsets in bit order: the spec's definition, which the tests
    /// hold the packed contexts to.
    #[cfg(test)]
    fn offsets(&self) -> Vec<(isize, isize)> {
        let above = self.rows.iter().flat_map(|&(dy, r)| {
            let r = r as isize;
            (-r..=r).map(move |dx| (dy, dx))
        });
        above
            .chain((-(self.left as isize)..0).map(|dx| (0, dx)))
            .collect()
    }
}

/// The neighbourhoods whose counts the memory keeps, narrow to wide, each with the log2 of
/// its number of count pairs. The first is the fallback's wide template (§3.6), 16 pixels,
/// whose contexts index its table directly; the others (28, 62 and 110 pixels) are hashed.
pub const NEIGHBOURHOODS: [(Shape, u32); 4] = [
    (
        Shape {
            rows: &[(-2, 2), (-1, 3)],
            left: 4,
        },
        16,
    ),
    (
        Shape {
            rows: &[(-4, 1), (-3, 2), (-2, 3), (-1, 4)],
            left: 4,
        },
        20,
    ),
    (
        Shape {
            rows: &[(-6, 2), (-5, 3), (-4, 4), (-3, 5), (-2, 5), (-1, 6)],
            left: 6,
        },
        22,
    ),
    (
        Shape {
            rows: &[
                (-8, 3),
                (-7, 4),
                (-6, 5),
                (-5, 6),
                (-4, 7),
                (-3, 7),
                (-2, 7),
                (-1, 8),
            ],
            left: 8,
        },
        22,
    ),
];

/// The page-mixing lane coder's neighbourhoods (format-spec.md §3.9): six narrow ones,
/// whose counts learn fast and follow texture and noise, then the page memory's four. The
/// narrow ones are those a context-mixing coder for bi-level images typically keeps: the
/// 4 nearest pixels, 3 up and 3 left, two rows of 5, a column of 8 above, a row of 8 to
/// the left, and three rows of 7; each is measured to pay (models/README).
pub const MIXING_NEIGHBOURHOODS: [(Shape, u32); 10] = [
    (
        Shape {
            rows: &[(-1, 1)],
            left: 1,
        },
        4,
    ),
    (
        Shape {
            rows: &[(-3, 0), (-2, 0), (-1, 0)],
            left: 3,
        },
        6,
    ),
    (
        Shape {
            rows: &[(-2, 2), (-1, 2)],
            left: 2,
        },
        12,
    ),
    (
        Shape {
            rows: &[
                (-8, 0),
                (-7, 0),
                (-6, 0),
                (-5, 0),
                (-4, 0),
                (-3, 0),
                (-2, 0),
                (-1, 0),
            ],
            left: 0,
        },
        8,
    ),
    (Shape { rows: &[], left: 8 }, 8),
    (
        Shape {
            rows: &[(-3, 3), (-2, 3), (-1, 3)],
            left: 3,
        },
        22,
    ),
    NEIGHBOURHOODS[0],
    NEIGHBOURHOODS[1],
    NEIGHBOURHOODS[2],
    NEIGHBOURHOODS[3],
];

/// Which neighbourhoods a memory keeps counts for, narrow to wide, the widest last: its
/// rows must be the 8 above the pixel, and hold every other's.
pub trait Layout<const N: usize>: Sized {
    const NEIGHBOURHOODS: [(Shape, u32); N];
    const WIDEST: Shape = Self::NEIGHBOURHOODS[N - 1].0;

    /// Each neighbourhood's context, cut from the widest neighbourhood's `rows`.
    fn contexts(rows: &WidestRows) -> [u128; N];

    /// Where each neighbourhood's counts are for its context in `values`, the hashed
    /// tables `2^shrink` times smaller.
    fn indices(values: &[u128; N], shrink: u32) -> [usize; N];
}

/// Implements [`Layout`]'s methods neighbourhood by neighbourhood, each with its shape as a
/// constant: its cuts then unroll to fixed shifts, and whether it is hashed is known when
/// compiled. Through a loop over the neighbourhoods the shapes were read as data, and
/// that was a seventh of decoding a page.
macro_rules! neighbourhood_by_neighbourhood {
    ($n:literal: $($k:literal)*) => {
        #[inline(always)]
        fn contexts(rows: &WidestRows) -> [u128; $n] {
            [$(context_in::<Self, $n>(rows, &Self::NEIGHBOURHOODS[$k].0)),*]
        }

        #[inline(always)]
        fn indices(values: &[u128; $n], shrink: u32) -> [usize; $n] {
            [$(index(values[$k], &Self::NEIGHBOURHOODS[$k].0, Self::NEIGHBOURHOODS[$k].1, shrink)),*]
        }
    };
}

/// The page memory of bits-back lanes (§3.8).
pub struct Remembering;

impl Layout<4> for Remembering {
    const NEIGHBOURHOODS: [(Shape, u32); 4] = NEIGHBOURHOODS;
    neighbourhood_by_neighbourhood!(4: 0 1 2 3);
}

/// The page-mixing lane coder's (§3.9).
pub struct Mixing;

impl Layout<10> for Mixing {
    const NEIGHBOURHOODS: [(Shape, u32); 10] = MIXING_NEIGHBOURHOODS;
    neighbourhood_by_neighbourhood!(10: 0 1 2 3 4 5 6 7 8 9);
}

/// Rows −16 to 0 about a pixel, top first, each at columns −[`MATCH_REACH`] and on as
/// bits 0, 1, …: what glyph matching compares of two places ([`Memory::match_distances`]).
pub type MatchWindow = [u64; MATCH_ROWS];
const MATCH_ROWS: usize = 17;
const FAR_ROWS: usize = 8;
const MATCH_REACH: usize = 8;

/// The widest neighbourhood's rows about a pixel: the [`ROWS_ABOVE`] rows above, then its
/// own, each as bits 0, 1, … from its leftmost column.
pub type WidestRows = [u64; ROWS_ABOVE + 1];

/// The context of a neighbourhood of `shape`, cut from the middles of the widest
/// neighbourhood's `rows`.
#[inline(always)]
fn context_in<L: Layout<N>, const N: usize>(rows: &WidestRows, shape: &Shape) -> u128 {
    let mut value = 0u128;
    let mut at = 0;
    for &(dy, r) in shape.rows {
        let row = (dy + ROWS_ABOVE as isize) as usize;
        let wide_r = L::WIDEST.rows[row].1;
        let bits = (rows[row] >> (wide_r - r)) & ((1 << (2 * r + 1)) - 1);
        value |= u128::from(bits) << at;
        at += 2 * r + 1;
    }
    let own = rows[ROWS_ABOVE] >> (L::WIDEST.left - shape.left);
    value | u128::from(own) << at
}

/// The widest neighbourhood's rows about a pixel, cut from its `near` rows.
#[inline(always)]
fn widest_rows<L: Layout<N>, const N: usize>(near: &Near) -> WidestRows {
    let mut widest = [0u64; ROWS_ABOVE + 1];
    for (run, &(dy, r)) in widest.iter_mut().zip(L::WIDEST.rows) {
        *run = near.run(dy, r, 2 * r + 1);
    }
    widest[ROWS_ABOVE] = near.run(0, L::WIDEST.left, L::WIDEST.left);
    widest
}

/// Rows of white above a strip and words of white either side of each row: the widest
/// neighbourhood's reach (its rows are the 8 above the pixel, in order), so that no read
/// needs a bounds check.
const ROWS_ABOVE: usize = 8;
const PAD_WORDS: usize = 1;

/// Fixed-point logits in the mixer are in units of 1/256.
pub const LOGIT_ONE: i32 = 256;

/// Count totals fall into 14 classes (0, 1, 2–3, 4–7, …, 4096–8191): the number of
/// significant bits of the total.
pub const TOTAL_CLASSES: usize = 14;

/// The mixer's inputs: the VLAE's logit, each neighbourhood's stretched estimate, and a
/// bias of one.
pub const MIX_INPUTS: usize = NEIGHBOURHOODS.len() + 2;

/// The Fibonacci hashing constant, ⌊2^64/φ⌋.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The index of context `v` (bit k = the neighbourhood's k-th pixel) of a neighbourhood
/// of `shape` in its table of 2^`bits` count pairs: `v` itself where the neighbourhood has
/// at most `bits` pixels, else a hash of its two 64-bit halves to `bits − shrink` bits
/// (page mixing from its third edition on shrinks a small lane's hashed tables; 0 elsewhere).
#[inline(always)]
pub fn index(v: u128, shape: &Shape, bits: u32, shrink: u32) -> usize {
    if !shape.is_hashed(bits) {
        return v as usize;
    }
    hashed(v, bits - shrink)
}

/// A hash of context `v` to `bits` bits, from its two 64-bit halves.
#[inline(always)]
pub fn hashed(v: u128, bits: u32) -> usize {
    let (lo, hi) = (v as u64, (v >> 64) as u64);
    let folded = lo ^ hi.wrapping_mul(GOLDEN);
    ((folded ^ (folded >> 31)).wrapping_mul(GOLDEN) >> (64 - bits)) as usize
}

/// What the memory says about one pixel: the mixer's weight set and each neighbourhood's
/// stretched estimate, in 1/256 logits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recall {
    pub set: u8,
    pub counts: [i16; NEIGHBOURHOODS.len()],
}

/// ln(p / (1 − p)) · 256, rounded, for p = i / 4096, i in 1..4096.
pub(crate) fn stretch_table() -> &'static [i16; 4096] {
    static TABLE: OnceLock<[i16; 4096]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0i16; 4096];
        for (i, s) in t.iter_mut().enumerate().skip(1) {
            let p = i as f64 / 4096.0;
            *s = libm::round(libm::log(p / (1.0 - p)) * f64::from(LOGIT_ONE)) as i16;
        }
        t
    })
}

/// The stretched Krichevsky–Trofimov estimate of counts (n0, n1), through the stretch
/// table.
fn stretched(counts: [u32; 2]) -> i16 {
    stretch_table()[estimate_12(counts) as usize]
}

/// The Krichevsky–Trofimov estimate of P(ink) from counts (n0, n1), to 12 bits:
/// (2·n1 + 1)·4096 / (2·(n0 + n1) + 2) rounded down and kept in 1..=4095.
#[inline(always)]
pub(crate) fn estimate_12([n0, n1]: [u32; 2]) -> u32 {
    (((2 * n1 + 1) << 12) / (2 * (n0 + n1) + 2)).clamp(1, 4095)
}

/// Bits 0, 2, 4, … of the low 32 bits of `v`, gathered into bits 0, 1, 2, ….
#[inline(always)]
fn even_bits(v: u64) -> u64 {
    let mut v = v & 0x5555_5555;
    v = (v | (v >> 1)) & 0x3333_3333;
    v = (v | (v >> 2)) & 0x0f0f_0f0f;
    v = (v | (v >> 4)) & 0x00ff_00ff;
    (v | (v >> 8)) & 0x0000_ffff
}

/// The class of a count total.
#[inline(always)]
pub(crate) fn total_class([n0, n1]: [u32; 2]) -> usize {
    (32 - (n0 + n1).leading_zeros()) as usize
}

/// The pixels of a strip that the decoder knows, a bit each (bit j of word i of a row is
/// column 64·(i − PAD_WORDS) + j), with white rows above and white words either side.
struct KnownBits {
    words_per_row: usize,
    words: Vec<u64>,
}

impl KnownBits {
    fn new(width: usize, rows: usize) -> Self {
        let words_per_row = width.div_ceil(64) + 2 * PAD_WORDS;
        KnownBits {
            words_per_row,
            words: vec![0; (ROWS_ABOVE + rows) * words_per_row],
        }
    }

    #[inline(always)]
    fn set(&mut self, y: usize, x: usize) {
        let c = x + 64 * PAD_WORDS;
        self.words[(ROWS_ABOVE + y) * self.words_per_row + c / 64] |= 1 << (c % 64);
    }

    /// Columns x − `before` … x − `before` + n − 1 of row y + dy (y + dy ≥ −8, the white
    /// rows above the strip), as bits 0 … n − 1; n ≤ 32, `before` ≤ 64 and x < the strip's
    /// width, so that the word after the first is the row's, or its white padding.
    #[inline(always)]
    fn run(&self, y: usize, dy: isize, x: usize, before: usize, n: usize) -> u64 {
        let row = (ROWS_ABOVE as isize + y as isize + dy) as usize;
        self.window(row, x + 64 * PAD_WORDS - before) & ((1 << n) - 1)
    }

    /// 64 columns of stored row `row` (the white rows above the strip counted) from
    /// padded column `c`, as bits 0 … 63; the word after `c`'s must be the row's, or its
    /// white padding.
    #[inline(always)]
    fn window(&self, row: usize, c: usize) -> u64 {
        let at = row * self.words_per_row + c / 64;
        let s = c % 64;
        debug_assert!(c / 64 + 1 < self.words_per_row, "column {c} is in the row");
        // One bounds check for both words.
        let [lo, hi] = *self.words[at..]
            .first_chunk::<2>()
            .expect("a padding word after every row");
        // Shifted in two steps, so that s = 0 takes none of the next word's bits.
        (lo >> s) | ((hi << 1) << (63 - s))
    }

    /// The rows about pixel (y, x) that its contexts read (see [`Near`]).
    #[inline(always)]
    fn near(&self, y: usize, x: usize) -> Near {
        // Row y + dy is stored at ROWS_ABOVE + y + dy: rows y − 8 … y at y … y + 8.
        let c = x + 64 * PAD_WORDS - NEAR_REACH;
        Near(std::array::from_fn(|d| self.window(y + d, c)))
    }
}

/// How far left of a pixel [`Near`] reaches, and how far right (less one).
const NEAR_REACH: usize = 32;

/// The rows y − 8 … y about a pixel (y, x), each read once as columns x − 32 … x + 31 (bits
/// 0 … 63): every context of the pixel but glyph matching's far rows is cut from these,
/// rather than read from the strip run by run (some sixty reads a pixel of page mixing).
pub struct Near([u64; ROWS_ABOVE + 1]);

impl Near {
    /// Columns x − `before` … x − `before` + n − 1 of row y + dy as bits 0 … n − 1, as
    /// [`KnownBits::run`] reads them: −8 ≤ dy ≤ 0, `before` ≤ 32, n ≤ 32 and
    /// n − `before` ≤ 32.
    #[inline(always)]
    fn run(&self, dy: isize, before: usize, n: usize) -> u64 {
        debug_assert!(before <= NEAR_REACH && n <= 32 && n <= before + NEAR_REACH);
        (self.0[(ROWS_ABOVE as isize + dy) as usize] >> (NEAR_REACH - before)) & ((1 << n) - 1)
    }

    /// Whether every pixel that a context of pixel (y, x) may read is white: those of the
    /// 8 rows above at columns x − 8 … x + 8, and x − 12 … x − 1 of its own row (the coarse
    /// contexts reach furthest). Most pixels of a page are so, and their contexts are
    /// those of a blank page: they need not be gathered.
    #[inline(always)]
    pub fn blank_around(&self) -> bool {
        // Or-ed, not tested one by one: all nine are read in the time of one.
        let mut ink = self.run(0, 12, 12);
        for d in 1..=ROWS_ABOVE as isize {
            ink |= self.run(-d, 8, 17);
        }
        ink == 0
    }

    /// Two coarse views of the rows above pixel (y, x) and of its own row, whose contexts
    /// keep their shape where a scan's edges are ragged or a high resolution's strokes are
    /// thick (format-spec.md §3.9), at `phase` 0 or 1, a row and a column nearer, so that
    /// a stroke that falls between phase 0's samples still shows. Each ends with (y − 1, x), then (y, x − 1); the first
    /// listed bit is the most significant.
    ///
    /// Phase 0:
    /// - Spaced, 44 bits: rows −2, −4, −6 and −8, nearest first, each at columns 8, 6,
    ///   …, −8; then the own row's columns −2, −4, …, −12.
    /// - Blocks, 38 bits: the 2 × 2 blocks of rows −1 to −8 and columns 7 to −8, one bit
    ///   each, set when at least 2 of its pixels are ink, block row by block row from the
    ///   nearest, right to left; then the pairs of columns (−2, −1), (−4, −3), (−6, −5)
    ///   and (−8, −7) of the own row, each set when either is ink.
    ///
    /// Phase 1:
    /// - Spaced, 40 bits: rows −1, −3, −5 and −7, nearest first, each at columns 7, 5,
    ///   …, −7; then the own row's columns −1, −3, …, −11.
    /// - Blocks, 38 bits: the 2 × 2 blocks of rows −1 to −8 and columns 8 to −7, as
    ///   above; then the pairs of columns (−3, −2), (−5, −4), (−7, −6) and (−9, −8) of
    ///   the own row.
    #[inline(always)]
    pub fn coarse_views(&self, phase: usize) -> [u64; 2] {
        let nearest = (self.run(-1, 0, 1) << 1) | self.run(0, 1, 1);
        // A run's bit j is column j − before, so its even bits, gathered, list every other
        // column right to left from the most significant.
        let columns = 9 - phase;
        let mut spaced = 0u64;
        let mut blocks = 0u64;
        for pair in 0..4 {
            let dy = -2 * pair - 2;
            let spaced_row = self.run(dy + phase as isize, 8 - phase, 2 * columns - 1);
            spaced = (spaced << columns) | even_bits(spaced_row);
            let upper = self.run(dy, 8 - phase, 16);
            let lower = self.run(dy + 1, 8 - phase, 16);
            // At least 2 of a block's 4: both of one row's pair, or one of each.
            let (both_up, both_low) = (upper & (upper >> 1), lower & (lower >> 1));
            let (any_up, any_low) = (upper | (upper >> 1), lower | (lower >> 1));
            blocks = (blocks << 8) | even_bits(both_up | both_low | (any_up & any_low));
        }
        spaced = (spaced << 6) | even_bits(self.run(0, 12 - phase, 12 - phase));
        let own = self.run(0, 8 + phase, 8);
        blocks = (blocks << 4) | even_bits(own | (own >> 1));
        [(spaced << 2) | nearest, (blocks << 2) | nearest]
    }

    /// The runs about pixel (y, x) (format-spec.md §3.10), 17 bits: the lengths of the
    /// runs that end at (y, x − 1) and (y − 1, x − 1) and of the one that starts at
    /// (y − 1, x), each with its colour, then pixel (y − 2, x). Halftones and music staves
    /// repeat at distances that the neighbourhoods are too narrow to see. The low 11 bits
    /// are the own row's run and the run above the pixel.
    #[inline(always)]
    pub fn runs(&self) -> u32 {
        // The run ending at the highest of 32 bits, or starting at the lowest, and its
        // colour.
        let ending = |bits: u64, cap: u32| {
            let bits = bits as u32;
            let colour = bits >> 31;
            let same = if colour == 1 { !bits } else { bits };
            (colour, same.leading_zeros().min(cap))
        };
        let starting = |bits: u64, cap: u32| {
            let bits = bits as u32;
            let colour = bits & 1;
            let same = if colour == 1 { !bits } else { bits };
            (colour, same.trailing_zeros().min(cap))
        };
        let (c, left) = ending(self.run(0, 32, 32), 31);
        let (b1, left1) = ending(self.run(-1, 32, 32), 15);
        let (a1, right1) = starting(self.run(-1, 0, 32), 15);
        let above2 = self.run(-2, 0, 1) as u32;
        c | left << 1 | a1 << 6 | right1 << 7 | b1 << 11 | left1 << 12 | above2 << 16
    }

    /// Page mixing's long rows context of pixel (y, x) (format-spec.md §3.12): the 24
    /// pixels left of it in its own row as bits 0–23, columns x − 12 … x + 11 of the row
    /// above as bits 32–55, and columns x − 6 … x + 5 of the row above that as bits 64–75,
    /// each run leftmost first. What the neighbourhoods see two and three times as far
    /// along the rows: where the print is regular, it repeats.
    #[inline(always)]
    pub fn long_rows(&self) -> u128 {
        u128::from(self.run(0, 24, 24))
            | u128::from(self.run(-1, 12, 24)) << 32
            | u128::from(self.run(-2, 6, 12)) << 64
    }

    /// Pixels (y, x − 1), (y − 1, x − 1), (y − 1, x) and (y − 1, x + 1), as bits 0 to 3:
    /// the nearest, which choose weight sets.
    #[inline(always)]
    pub fn nearest(&self) -> usize {
        let above = self.run(-1, 1, 3);
        (self.run(0, 1, 1) | above << 1) as usize
    }
}

/// The memory's counts, carried from strip to strip of a lane, and the pixels of the
/// strip being coded that the decoder knows.
pub struct Memory<L: Layout<N>, const N: usize> {
    counts: [Counts; N],
    known: KnownBits,
    layout: PhantomData<L>,
    /// Bits taken off the hashed tables' indices: page mixing from its third edition on sizes them
    /// to its lane (format-spec.md §3.11); 0 elsewhere.
    shrink: u32,
}

/// The bits-back lanes' page memory.
pub type PageMemory = Memory<Remembering, 4>;

/// Where a pixel's counts are, to update them once its value is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contexts<const N: usize>([usize; N]);

impl<const N: usize> Contexts<N> {
    /// Where neighbourhood `k`'s counts are: for a neighbourhood of at most its table's
    /// bits, its context itself.
    #[inline(always)]
    pub fn index(&self, k: usize) -> usize {
        self.0[k]
    }
}

impl<L: Layout<N>, const N: usize> Default for Memory<L, N> {
    fn default() -> Self {
        Self::shrunk([Learning::halved_above(COUNT_LIMIT); N], 0)
    }
}

impl<L: Layout<N>, const N: usize> Memory<L, N> {
    /// Bytes of its count tables at full size (a pair of 16-bit counts per context),
    /// which a lane holds from its start to its end, whatever its size: at most this
    /// where page mixing from its third edition on shrinks them for a small lane.
    pub const TABLE_BYTES: usize = {
        let (mut bytes, mut k) = (0, 0);
        while k < N {
            bytes += 4 << L::NEIGHBOURHOODS[k].1;
            k += 1;
        }
        bytes
    };

    /// Bytes of the known-pixel plane of a strip of `width × rows`.
    pub fn strip_bytes(width: usize, rows: usize) -> usize {
        8 * (ROWS_ABOVE + rows) * (width.div_ceil(64) + 2 * PAD_WORDS + 1)
    }

    /// A memory whose k-th neighbourhood's counts learn as `learning[k]` says, its hashed
    /// tables `2^shrink` times smaller.
    pub(crate) fn shrunk(learning: [Learning; N], shrink: u32) -> Self {
        Memory {
            counts: std::array::from_fn(|k| {
                let (shape, bits) = &L::NEIGHBOURHOODS[k];
                let bits = if shape.is_hashed(*bits) {
                    bits - shrink
                } else {
                    *bits
                };
                Counts::learning(1 << bits, learning[k])
            }),
            known: KnownBits::new(0, 0),
            layout: PhantomData,
            shrink,
        }
    }

    /// Writes every page of its tables once (see [`super::counts::fault_in`]).
    pub fn fault_in(&mut self) {
        for counts in &mut self.counts {
            counts.fault_in();
        }
    }

    /// Begins a strip of `width × rows`: nothing of it is known yet.
    pub fn start_strip(&mut self, width: usize, rows: usize) {
        self.known = KnownBits::new(width, rows);
    }

    /// Pixel (y, x) of the strip is now known to be `bit`, without learning from it (the
    /// pixels of blank tiles).
    #[inline(always)]
    pub fn know(&mut self, y: usize, x: usize, bit: u8) {
        if bit == 1 {
            self.known.set(y, x);
        }
    }

    /// Each neighbourhood's context of pixel (y, x), from the pixels known so far: the
    /// widest neighbourhood's rows, each read once, and every narrower one's cut from
    /// their middles.
    #[inline(always)]
    fn contexts(&self, y: usize, x: usize) -> [u128; N] {
        L::contexts(&widest_rows::<L, N>(&self.near(y, x)))
    }

    /// The rows about pixel (y, x) that its contexts read, read once.
    #[inline(always)]
    pub fn near(&self, y: usize, x: usize) -> Near {
        self.known.near(y, x)
    }

    /// Each neighbourhood's counts (n0, n1) for pixel (y, x), from the pixels known so far,
    /// and where they are.
    #[inline(always)]
    pub fn look_up(&self, y: usize, x: usize) -> ([[u32; 2]; N], Contexts<N>) {
        let contexts = self.contexts_of(y, x);
        (self.counts_at(&contexts), contexts)
    }

    /// Where the counts of a pixel amid white are.
    pub fn blank_contexts(&self) -> Contexts<N> {
        self.indices([0; N])
    }

    /// Where pixel (y, x)'s counts are, from the pixels known so far.
    #[inline(always)]
    pub fn contexts_of(&self, y: usize, x: usize) -> Contexts<N> {
        self.indices(self.contexts(y, x))
    }

    /// Where the counts of the pixel about which the rows are `near` are, and whether its
    /// widest neighbourhood holds ink.
    #[inline(always)]
    pub fn contexts_and_ink(&self, near: &Near) -> (Contexts<N>, bool) {
        let values = L::contexts(&widest_rows::<L, N>(near));
        (self.indices(values), values[N - 1] != 0)
    }

    /// The widest neighbourhood's context of pixel (y, x) alone.
    #[cfg(test)]
    pub fn widest_context(&self, y: usize, x: usize) -> u128 {
        context_in::<L, N>(&widest_rows::<L, N>(&self.near(y, x)), &L::WIDEST)
    }

    /// Which pixels of a [`MatchWindow`] glyph matching compares: the widest
    /// neighbourhood's, and the far rows −16 to −9 at columns −7 to 7. At high
    /// resolutions, where 8 rows hold a third of a glyph, the far rows make a match the
    /// same glyph and not one that merely starts alike.
    const MATCHED: MatchWindow = {
        let mut masks = [0; MATCH_ROWS];
        let mut i = 0;
        while i < FAR_ROWS {
            masks[i] = 0x7fff << (MATCH_REACH - 7);
            i += 1;
        }
        while i < MATCH_ROWS - 1 {
            let r = L::WIDEST.rows[i - FAR_ROWS].1;
            masks[i] = ((1 << (2 * r + 1)) - 1) << (MATCH_REACH - r);
            i += 1;
        }
        masks[i] = ((1 << L::WIDEST.left) - 1) << (MATCH_REACH - L::WIDEST.left);
        masks
    };

    /// The rows about pixel (y, x) that glyph matching compares (see [`MatchWindow`]). Its
    /// own row holds the columns from x on as the memory knows them: unknown to the
    /// decoder, known to the encoder, which knows a row ahead. Only
    /// [`Self::match_distances`] reads the window, and it leaves them out.
    #[inline(always)]
    pub fn match_window(&self, y: usize, x: usize) -> MatchWindow {
        let mut window = [0; MATCH_ROWS];
        // KnownBits pads the strip with ROWS_ABOVE white rows, no more: far rows above
        // them read as white.
        let top = (MATCH_ROWS - 1).saturating_sub(ROWS_ABOVE + y);
        for (i, row) in window.iter_mut().enumerate().skip(top) {
            *row = self
                .known
                .run(y, i as isize + 1 - MATCH_ROWS as isize, x, MATCH_REACH, 32);
        }
        window
    }

    /// How many compared pixels differ between two places' windows: the widest
    /// neighbourhood's and the far rows', apart.
    #[inline(always)]
    pub fn match_distances(a: &MatchWindow, b: &MatchWindow) -> (u32, u32) {
        let mut near = 0;
        let mut far = 0;
        for (i, ((a, b), mask)) in a.iter().zip(b).zip(&Self::MATCHED).enumerate() {
            let d = ((a ^ b) & mask).count_ones();
            if i < FAR_ROWS {
                far += d;
            } else {
                near += d;
            }
        }
        (near, far)
    }

    /// Pixel (y, x), if known; else 0.
    #[inline(always)]
    pub fn pixel(&self, y: usize, x: usize) -> u8 {
        self.known.run(y, 0, x, 0, 1) as u8
    }

    /// Where the counts of each neighbourhood's context `values` are.
    #[inline(always)]
    fn indices(&self, values: [u128; N]) -> Contexts<N> {
        Contexts(L::indices(&values, self.shrink))
    }

    /// Each neighbourhood's counts (n0, n1) at `contexts`.
    #[inline(always)]
    pub fn counts_at(&self, contexts: &Contexts<N>) -> [[u32; 2]; N] {
        let mut counts = [[0; 2]; N];
        for ((n, table), &ctx) in counts.iter_mut().zip(&self.counts).zip(&contexts.0) {
            *n = table.get(ctx);
        }
        counts
    }

    /// Brings the counts at `contexts` into the cache, for a pixel to be looked up
    /// shortly.
    #[inline(always)]
    pub fn prefetch(&self, contexts: &Contexts<N>) {
        for (counts, &ctx) in self.counts.iter().zip(&contexts.0) {
            counts.prefetch(ctx);
        }
    }

    /// Pixel (y, x), looked up at `contexts`, is `bit`: count it and know it.
    #[inline(always)]
    pub fn learn(&mut self, contexts: Contexts<N>, y: usize, x: usize, bit: u8) {
        self.count(&contexts, bit);
        self.know(y, x, bit);
    }

    /// A pixel looked up at `contexts` is `bit`: count it.
    #[inline(always)]
    pub fn count(&mut self, contexts: &Contexts<N>, bit: u8) {
        for (counts, &ctx) in self.counts.iter_mut().zip(&contexts.0) {
            counts.update(ctx, bit);
        }
    }
}

impl PageMemory {
    /// What the memory recalls for pixel (y, x), from the pixels known so far.
    #[inline(always)]
    pub fn recall(&self, y: usize, x: usize) -> (Recall, Contexts<4>) {
        let (counts, contexts) = self.look_up(y, x);
        let recall = Recall {
            set: (total_class(counts[0]) * TOTAL_CLASSES + total_class(counts[2])) as u8,
            counts: counts.map(stretched),
        };
        (recall, contexts)
    }
}

/// The mixed logit, in 1/256 units, of a pixel whose VLAE logit is `vlae` (already in
/// 1/256 units): Σ w_i·s_i / 2^16 rounded half up, over the VLAE's logit, the counts'
/// and a bias of one, with the weights of the recall's set.
pub fn mix(vlae: i32, recall: &Recall) -> i32 {
    let w = &MIX_WEIGHTS[recall.set as usize];
    let inputs = std::iter::once(vlae)
        .chain(recall.counts.iter().map(|&c| i32::from(c)))
        .chain(std::iter::once(LOGIT_ONE));
    let dot: i64 = w
        .iter()
        .zip(inputs)
        .map(|(&w, s)| i64::from(w) * i64::from(s))
        .sum();
    ((dot + (1 << 15)) >> 16) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::template::TEMPLATES;

    /// Every neighbourhood is causal, lists no pixel twice and fits in the widest, whose
    /// rows are the ones `contexts` reads; the narrowest is the fallback's template.
    #[test]
    fn neighbourhoods_are_causal_and_nested() {
        assert_eq!(NEIGHBOURHOODS[0].0.offsets(), TEMPLATES[0]);
        let widest = Remembering::WIDEST.offsets();
        assert_eq!(widest.len(), 110);
        assert_eq!(
            Remembering::WIDEST
                .rows
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            (-8..0).collect::<Vec<_>>()
        );
        for (shape, _) in NEIGHBOURHOODS.iter().chain(&MIXING_NEIGHBOURHOODS) {
            let offsets = shape.offsets();
            for (i, &(dy, dx)) in offsets.iter().enumerate() {
                assert!(dy < 0 || (dy == 0 && dx < 0), "{dy}, {dx}");
                assert!(!offsets[..i].contains(&(dy, dx)));
                assert!(widest.contains(&(dy, dx)));
            }
        }
        assert_eq!(
            NEIGHBOURHOODS.map(|(s, _)| s.offsets().len()),
            [16, 28, 62, 110]
        );
        assert_eq!(
            MIXING_NEIGHBOURHOODS.map(|(s, _)| s.offsets().len()),
            [4, 6, 12, 8, 8, 24, 16, 28, 62, 110]
        );
        assert_eq!(Mixing::WIDEST.offsets(), widest);
    }

    /// The packed contexts are the spec's: bit k is the k-th offset's pixel of a byte-per-
    /// pixel image, 0 outside it and where not yet known; so are the coarse contexts.
    #[test]
    fn packed_contexts_are_the_listed_pixels() {
        let (w, h) = (150, 40);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let pixels: Vec<u8> = (0..w * h)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                u8::from(state.is_multiple_of(3))
            })
            .collect();
        check_contexts::<Remembering, 4>(&pixels, w, h);
        check_contexts::<Mixing, 10>(&pixels, w, h);
        // Runs longer than every cap, of both colours.
        let stripes: Vec<u8> = (0..w * h)
            .map(|i| u8::from((i % w + 7 * (i / w)) % 90 < 40))
            .collect();
        check_contexts::<Mixing, 10>(&stripes, w, h);
    }

    /// Glyph matching's distances between two places are the spec's: the pixels of the
    /// 110-pixel neighbourhood, and of rows −16 to −9 at columns −7 to 7, in which the
    /// places differ, pixels outside the strip white. Every pixel is known, as to the
    /// encoder, so a window's bits from its own column on must be left out; one width is
    /// a multiple of the 64-bit words.
    #[test]
    fn match_distances_count_the_differing_pixels() {
        let mut state = 0x9e37_79b9u32;
        for (w, h) in [(128, 40), (93, 30)] {
            let pixels: Vec<u8> = (0..w * h)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    u8::from(state >> 30 == 0)
                })
                .collect();
            let mut memory = Memory::<Mixing, 10>::default();
            memory.start_strip(w, h);
            for (i, &bit) in pixels.iter().enumerate() {
                memory.know(i / w, i % w, bit);
            }
            let pixel = |y: isize, x: isize| {
                let inside = y >= 0 && x >= 0 && (x as usize) < w;
                inside && pixels[y as usize * w + x as usize] == 1
            };
            let far: Vec<(isize, isize)> = (-16..=-9)
                .flat_map(|dy| (-7..=7).map(move |dx| (dy, dx)))
                .collect();
            let near = Mixing::WIDEST.offsets();
            let differing = |offsets: &[(isize, isize)], (py, px): (isize, isize), (qy, qx)| {
                offsets
                    .iter()
                    .filter(|&&(dy, dx)| pixel(py + dy, px + dx) != pixel(qy + dy, qx + dx))
                    .count() as u32
            };
            for _ in 0..2000 {
                let [p, q] = [0, 1].map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let at = (state >> 8) as usize % (w * h);
                    (at / w, at % w)
                });
                let got = Memory::<Mixing, 10>::match_distances(
                    &memory.match_window(p.0, p.1),
                    &memory.match_window(q.0, q.1),
                );
                let (pi, qi) = ((p.0 as isize, p.1 as isize), (q.0 as isize, q.1 as isize));
                let want = (differing(&near, pi, qi), differing(&far, pi, qi));
                assert_eq!(got, want, "{p:?} against {q:?}, width {w}");
            }
        }
    }

    fn check_contexts<L: Layout<N>, const N: usize>(pixels: &[u8], w: usize, h: usize) {
        let mut memory = Memory::<L, N>::default();
        memory.start_strip(w, h);
        let known = |y: isize, x: isize| {
            let inside = y >= 0 && x >= 0 && (x as usize) < w;
            inside && pixels[y as usize * w + x as usize] == 1
        };
        for y in 0..h {
            for x in 0..w {
                let (yi, xi) = (y as isize, x as isize);
                let nearest = [(0, -1), (-1, -1), (-1, 0), (-1, 1)]
                    .iter()
                    .enumerate()
                    .fold(0, |v, (k, &(dy, dx))| {
                        v | usize::from(known(yi + dy, xi + dx)) << k
                    });
                assert_eq!(memory.near(y, x).nearest(), nearest, "({y}, {x})");
                // The runs (format-spec.md §3.10), pixel by pixel: from column x + from
                // of row y + dy, step by step, while the colour holds.
                let run = |dy: isize, from: isize, step: isize, cap: u32| {
                    let colour = known(yi + dy, xi + from);
                    let mut n = 0;
                    while n < 32 && known(yi + dy, xi + from + step * n as isize) == colour {
                        n += 1;
                    }
                    (u32::from(colour), n.min(cap))
                };
                let (c, left) = run(0, -1, -1, 31);
                let (b1, left1) = run(-1, -1, -1, 15);
                let (a1, right1) = run(-1, 0, 1, 15);
                let above2 = u32::from(known(yi - 2, xi));
                let runs = c | left << 1 | a1 << 6 | right1 << 7 | b1 << 11 | left1 << 12;
                let runs = runs | above2 << 16;
                assert_eq!(memory.near(y, x).runs(), runs, "({y}, {x})");
                // The long rows (format-spec.md §3.12), pixel by pixel.
                let long_rows = [(0, -24, 24, 0), (-1, -12, 24, 32), (-2, -6, 12, 64)]
                    .iter()
                    .flat_map(|&(dy, from, n, at)| {
                        (0..n).map(move |j| (dy, from + j as isize, at + j))
                    })
                    .fold(0u128, |v, (dy, dx, bit)| {
                        v | u128::from(known(yi + dy, xi + dx)) << bit
                    });
                assert_eq!(memory.near(y, x).long_rows(), long_rows, "({y}, {x})");
                let got = memory.contexts(y, x);
                for ((shape, _), got) in L::NEIGHBOURHOODS.iter().zip(got) {
                    let want = shape
                        .offsets()
                        .iter()
                        .enumerate()
                        .fold(0u128, |v, (k, &(dy, dx))| {
                            v | u128::from(known(yi + dy, xi + dx)) << k
                        });
                    assert_eq!(got, want, "({y}, {x})");
                }
                // The coarse contexts as listed, the first listed bit the most significant.
                let bit = |dy: isize, dx: isize| u64::from(known(yi + dy, xi + dx));
                let mut spaced = Vec::new();
                for dy in [-2, -4, -6, -8] {
                    spaced.extend((-8..=8).rev().step_by(2).map(|dx| bit(dy, dx)));
                }
                spaced.extend((1..=6).map(|k| bit(0, -2 * k)));
                // Blocks of rows −1 to −8 from column `left`, right to left.
                let blocks_from = |left: isize| {
                    let mut blocks = Vec::new();
                    for pair in 0..4 {
                        blocks.extend((0..8).rev().map(|b| {
                            let (top, left) = (-2 * pair - 2, left + 2 * b);
                            let ink = bit(top, left)
                                + bit(top, left + 1)
                                + bit(top + 1, left)
                                + bit(top + 1, left + 1);
                            u64::from(ink >= 2)
                        }));
                    }
                    blocks
                };
                let mut blocks = blocks_from(-8);
                blocks.extend((1..=4).map(|k| bit(0, -2 * k) | bit(0, -2 * k + 1)));
                let mut spaced_other = Vec::new();
                for dy in [-1, -3, -5, -7] {
                    spaced_other.extend((-7..=7).rev().step_by(2).map(|dx| bit(dy, dx)));
                }
                spaced_other.extend((1..=6).map(|k| bit(0, 1 - 2 * k)));
                let mut blocks_other = blocks_from(-7);
                blocks_other.extend((1..=4).map(|k| bit(0, -2 * k - 1) | bit(0, -2 * k)));
                let [first, second] =
                    [[spaced, blocks], [spaced_other, blocks_other]].map(|views| {
                        views.map(|mut bits| {
                            bits.extend([bit(-1, 0), bit(0, -1)]);
                            bits.iter().fold(0, |v, &b| (v << 1) | b)
                        })
                    });
                assert_eq!(memory.near(y, x).coarse_views(0), first, "({y}, {x})");
                assert_eq!(memory.near(y, x).coarse_views(1), second, "({y}, {x})");
                memory.know(y, x, pixels[y * w + x]);
            }
        }
    }

    #[test]
    fn stretch_is_odd_and_monotone() {
        let t = stretch_table();
        assert_eq!(t[2048], 0);
        for i in 1..4095 {
            assert_eq!(t[i], -t[4096 - i], "{i}");
            assert!(t[i + 1] >= t[i]);
        }
        assert_eq!(stretched([0, 0]), 0);
        assert!(stretched([0, 4000]) > 5 * LOGIT_ONE as i16);
    }

    /// What is learnt is recalled: after a pattern is seen, its context predicts it.
    #[test]
    fn memory_learns_what_it_sees() {
        let mut m = PageMemory::default();
        m.start_strip(40, 40);
        for y in 0..40 {
            for x in 0..40 {
                let bit = u8::from((x / 3 + y / 3) % 2 == 0);
                let (recall, ctx) = m.recall(y, x);
                if y > 30 {
                    let wide = recall.counts[2];
                    let sure = if bit == 1 { wide } else { -wide };
                    assert!(sure > LOGIT_ONE as i16, "({y}, {x}): {recall:?}");
                }
                m.learn(ctx, y, x, bit);
            }
        }
    }
}
