//! Page mixing (format-spec.md §3.9): a context-mixing model of a lane's pixels, learnt as
//! the lane is decoded, with no VLAE in it.
//!
//! On text pages the VLAE's latents cost about 20 bits a modelled tile, a third of a
//! bits-back lane, while mixing the VLAE's logit into the page memory saves the pixels
//! about as much. Adaptive counts over ten causal neighbourhoods, mixed by weights that
//! themselves adapt to the page, code the pages smaller than the bits-back chain does, and
//! an order of magnitude faster (models/README). Unlike the page memory's fixed mixer this
//! one may learn, since everything it sees is pixels that both ends know. One more count
//! pair comes from glyph matching (`glyph_match.rs`), which follows an earlier copy of a
//! glyph through a scan's noise.
//!
//! All arithmetic is in integers, so that both ends agree bit for bit: inputs and logits in
//! 1/256 units ([`LOGIT_ONE`]), weights in 1/65536.
//!
//! Four editions share this code, each a row of the coder registry. The first (§3.9) is
//! format 1.0's and must decode as it always did; the second (§3.10) adds the runs about
//! each pixel, forgetting narrow counts, weight sets that settle, and two more
//! refinements; the third (§3.11) adds two more second-layer mixers and sizes the hashed
//! tables to the lane; the fourth (§3.12), which the compressor writes, adds the counts of
//! a long context along the rows (docs/experiments.md has what each is worth).
#![forbid(unsafe_code)]

use super::counts::{Counts, Learning, ModelledLanes, PixelModel, Predicted, COUNT_LIMIT};
use super::glyph_match::{copy_of, Matcher, GROUP_BITS, MATCH_CONTEXTS};
use super::lane::{lane_pixels, Strip};
use super::memory::{
    estimate_12, hashed, stretch_table, total_class, Contexts, Memory, Mixing, Near, LOGIT_ONE,
    TOTAL_CLASSES,
};
use super::model::PRECISION;
use super::quantize::pixel_probability;
use crate::container::{Edition, LaneCoder};
use crate::cpu::run_with;
use crate::infer::kernels::Supported;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;

/// Neighbourhoods whose counts are mixed: the six narrow ones, then the page memory's four.
const CONTEXTS: usize = 10;

/// Coarse contexts: [`Memory::coarse_views`] at phase 0, then at phase 1.
const COARSE: usize = 4;

/// Count pairs of each coarse context: its contexts are hashed to 22 bits.
const COARSE_BITS: u32 = 22;

/// The second edition's runs index their counts directly: 2^17 pairs, which stay in
/// the cache (a hashed table of 2^22 pairs for a wider view of the runs coded the real
/// scans 0.2% smaller and decoded 2% slower).
const RUNS_BITS: u32 = 17;

/// The fourth edition's long rows context is hashed to 22 bits, less the lane's shrink.
const LONG_ROWS_BITS: u32 = 22;

/// The third edition's hashed tables lose a bit of index for each bit by which ⌈log2⌉ of
/// a lane's pixels falls short of this, at most [`MOST_SHRINK`]: full size above 2^19
/// pixels (half a megapixel). A 0.13 Mpx page spent a seventh of its time zeroing 118 MiB
/// of tables whose every 2 MiB page it touched, few of their entries.
const FULL_TABLES_LANE_BITS: u32 = 20;
const MOST_SHRINK: u32 = 4;

/// How many bits the hashed tables' indices of a lane of `pixels` lose in `edition`
/// (format-spec.md §3.11).
fn table_shrink(edition: Edition, pixels: usize) -> u32 {
    if edition < Edition::Third {
        return 0;
    }
    // ⌈log2 pixels⌉
    let bits = usize::BITS - pixels.saturating_sub(1).leading_zeros();
    FULL_TABLES_LANE_BITS.saturating_sub(bits).min(MOST_SHRINK)
}

/// Where each of a pixel's count pairs sits, and so its pair of inputs to the first-layer
/// mixers (format-spec.md §3.9): the neighbourhoods of [`super::memory::MIXING_NEIGHBOURHOODS`] narrow to
/// wide, the coarse contexts, then glyph matching. Every use names the slot it reads,
/// rather than counting from another slot's place.
mod slot {
    use super::{COARSE, CONTEXTS};
    use std::ops::Range;

    /// Every neighbourhood: the narrow ones, then the page memory's.
    pub const NEIGHBOURHOODS: Range<usize> = 0..CONTEXTS;
    /// The six narrow neighbourhoods, whose counts learn fast.
    pub const NARROW: Range<usize> = 0..6;
    /// The page memory's four, whose counts go through the count map.
    pub const MEMORY: Range<usize> = NARROW.end..CONTEXTS;
    /// Two rows of 5 and 2 to the left: its context chooses the refinement's curve.
    pub const PIXELS_12: usize = 2;
    /// Three rows of 7 and 3 to the left: its context chooses the fourth mixer's weights.
    pub const PIXELS_24: usize = 5;
    /// The page memory's 16-pixel template: its total chooses the second layer's weights.
    pub const PIXELS_16: usize = MEMORY.start;
    /// The page memory's 62- and 110-pixel neighbourhoods: their totals choose weights of
    /// the first layer.
    pub const PIXELS_62: usize = MEMORY.start + 2;
    pub const PIXELS_110: usize = MEMORY.start + 3;
    /// The coarse contexts.
    pub const COARSE_VIEWS: Range<usize> = CONTEXTS..CONTEXTS + COARSE;
    /// Glyph matching's counts.
    pub const MATCHED: usize = COARSE_VIEWS.end;
    /// The runs' counts (the second edition's; (0, 0) in the first, where the pair's
    /// inputs are then 0 and its weights never move, so that the first edition's 31
    /// inputs of format-spec.md §3.9 are these 35 less two pairs, the runs' and the long
    /// rows', that add nothing; the second's and third's 33 less one).
    pub const RUNS: usize = MATCHED + 1;
    /// The long rows' counts (the fourth edition's; (0, 0) before it, like the runs' in
    /// the first).
    pub const LONG_ROWS: usize = RUNS + 1;
    /// Count pairs a pixel has.
    pub const COUNT: usize = LONG_ROWS + 1;
}

/// Inputs to each first-layer mixer: every count pair's stretched estimate and its
/// estimate's distance from ½, then a bias.
const INPUTS: usize = 2 * slot::COUNT + 1;

/// First-layer mixers, each with its own choice of weight set.
const MIXERS: usize = 4;

/// Weight sets of the fourth mixer, chosen by the low 12 bits of the 24-pixel
/// neighbourhood's count index.
const FOURTH_MIXER_SETS: usize = 1 << 12;

/// Each first-layer mixer's weight sets (see [`PageCounts::evidence`]).
const FIRST_LAYER_SETS: [usize; MIXERS] = [
    TOTAL_CLASSES * TOTAL_CLASSES,
    16 * TOTAL_CLASSES,
    TOTAL_CLASSES * TOTAL_CLASSES,
    FOURTH_MIXER_SETS,
];

/// The coarse context whose count total's class also chooses each of the first three
/// mixers' weight sets: the other-phase blocks, the
/// blocks and the spaced view (measured, format-spec.md §3.9).
const CROSSED_COARSE: [usize; 3] = [3, 1, 0];

/// Second-layer mixers: one in the first two editions, three from the third on, whose
/// logits are averaged.
const SECOND_LAYERS: usize = 3;

/// Each second-layer mixer's weight sets: by the 16-pixel template's count total; by the
/// nearest pixels and what glyph matching's copy says (none, or its pixel and whether it
/// lies on an edge); and by the low 11 bits of the runs about the pixel.
const SECOND_LAYER_SETS: [usize; SECOND_LAYERS] = [TOTAL_CLASSES, 16 * 5, 1 << 11];

/// Logits are kept within ±12 (in 1/256 units).
const LOGIT_LIMIT: i32 = 12 * LOGIT_ONE;

/// Weights are in units of 2^-16.
const WEIGHT_ONE: i32 = 1 << 16;

/// How fast page mixing learns and forgets (format-spec.md §3.9, "Parameters"): the
/// numbers a reader needs besides the shapes above, in one table.
pub struct Params {
    /// Learning rates, as right shifts of input × error (1/256 × 1/4096 units): 2^-12
    /// gives a step of about 0.004 in real units.
    pub first_rate_shift: u32,
    pub second_rate_shift: u32,
    /// The six narrow neighbourhoods' counts are halved above this, so that they follow
    /// the last few dozen pixels of each context.
    pub narrow_count_limit: u32,
    /// The page memory's four neighbourhoods' counts are halved above this.
    pub wide_count_limit: u32,
}

/// Page mixing's parameters. Why each has its value is in docs/experiments.md.
pub const PARAMS: Params = Params {
    first_rate_shift: 10,
    second_rate_shift: 11,
    narrow_count_limit: 63,
    wide_count_limit: 511,
};

/// First-layer weight sets of all mixers together.
const FIRST_LAYER_SET_COUNT: usize = sum(&FIRST_LAYER_SETS);

/// Second-layer weight sets of all its mixers together.
const SECOND_LAYER_SET_COUNT: usize = sum(&SECOND_LAYER_SETS);

/// The sum of `counts`, in a constant.
const fn sum(counts: &[usize]) -> usize {
    let (mut total, mut k) = (0, 0);
    while k < counts.len() {
        total += counts[k];
        k += 1;
    }
    total
}

/// The second edition's page memory counts (tables 6–9) are halved above this, not
/// [`Params::wide_count_limit`]: on the real scans they follow the page better.
const SECOND_WIDE_COUNT_LIMIT: u32 = 255;

/// In the second edition a first-layer weight set learns at
/// [`Params::first_rate_shift`] for its first this many pixels, then at one more (half
/// the step): fast while it is new, steadier once it has seen enough.
const SETTLING_USES: u16 = 1024;

/// Σ w·x / 2^16, rounded toward −∞, kept within ±[`LOGIT_LIMIT`].
#[inline(always)]
fn dot(weights: &[i32], inputs: &[i32]) -> i32 {
    let sum: i64 = weights
        .iter()
        .zip(inputs)
        .map(|(&w, &x)| i64::from(w) * i64::from(x))
        .sum();
    (sum >> 16).clamp(-i64::from(LOGIT_LIMIT), i64::from(LOGIT_LIMIT)) as i32
}

/// P(ink) of every logit within ±[`LOGIT_LIMIT`] (1/256 units), to `PRECISION` bits: the
/// sigmoid as [`pixel_probability`] rounds it.
fn squash_table() -> &'static [u32] {
    static TABLE: OnceLock<Vec<u32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (-LOGIT_LIMIT..=LOGIT_LIMIT)
            .map(|l| pixel_probability(l as f32 / LOGIT_ONE as f32))
            .collect()
    })
}

/// P(ink) of a logit within ±[`LOGIT_LIMIT`], to `PRECISION` bits: what is coded.
#[inline(always)]
fn probability(logit: i32) -> u32 {
    squash_table()[(logit + LOGIT_LIMIT) as usize]
}

/// The same to 12 bits: what the mixers learn from.
#[inline(always)]
fn probability_12(logit: i32) -> i32 {
    (probability(logit) >> (PRECISION - 12)) as i32
}

/// w += x·err / 2^shift, rounded toward −∞, for every weight.
///
/// In i32, which vectorizes: inputs are within ±[`LOGIT_LIMIT`] (stretched estimates
/// within ±2,130, logits within ±3,072) and errors within ±4,096, so no product exceeds
/// 2^24.
#[inline(always)]
fn train(weights: &mut [i32], inputs: &[i32], err: i32, shift: u32) {
    for (w, &x) in weights.iter_mut().zip(inputs) {
        *w += (x * err) >> shift;
    }
}

/// A secondary estimate: for each context, P(ink) as a function of the mixed logit,
/// learnt as a curve through [`Refinement::POINTS`] points. A mixer weighs its inputs
/// the same whatever their context; the curve corrects what it gets wrong in each.
struct Refinement {
    /// P(ink) in 1/65536 at each point of each context's curve.
    curves: Vec<u16>,
}

impl Refinement {
    /// Points 192/256 logit apart span ±12.
    const POINTS: usize = 33;
    const SPACING: i32 = 2 * LOGIT_LIMIT / (Self::POINTS as i32 - 1);
    /// Each step moves a point 1/64 of the way to the pixel.
    const RATE_SHIFT: u32 = 6;
    /// Contexts of the first: the 12-pixel neighbourhood's.
    const CONTEXTS: usize = 1 << 12;
    /// Contexts of the second edition's match refinement: glyph matching's context, or
    /// none, by the 4 nearest pixels.
    const MATCH_CONTEXTS: usize = (MATCH_CONTEXTS + 1) * 16;
    /// Contexts of the second edition's runs refinement: the low 11 bits of the runs.
    const RUNS_CONTEXTS: usize = 1 << 11;

    /// Every curve of its `contexts` the sigmoid.
    fn new(contexts: usize) -> Self {
        let curve: Vec<u16> = (0..Self::POINTS as i32)
            .map(|j| (probability(j * Self::SPACING - LOGIT_LIMIT) >> (PRECISION - 16)) as u16)
            .collect();
        Refinement {
            curves: curve.repeat(contexts),
        }
    }

    /// P(ink) in 1/65536 for `logit` in `context`, interpolated between the two points
    /// about it, and the point nearer to it, which learns.
    #[inline(always)]
    fn estimate(&self, context: usize, logit: i32) -> (u32, usize) {
        let at = logit + LOGIT_LIMIT;
        let i = ((at / Self::SPACING) as usize).min(Self::POINTS - 2);
        let frac = (at - i as i32 * Self::SPACING) as u32;
        let first = context * Self::POINTS + i;
        let (lo, hi) = (
            u32::from(self.curves[first]),
            u32::from(self.curves[first + 1]),
        );
        let p = (lo * (Self::SPACING as u32 - frac) + hi * frac) / Self::SPACING as u32;
        let nearer = if 2 * frac < Self::SPACING as u32 {
            first
        } else {
            first + 1
        };
        (p, nearer)
    }

    /// The point at `at` steps toward `bit`.
    #[inline(always)]
    fn learn(&mut self, at: usize, bit: u8) {
        let target = if bit == 1 { 65535 } else { 0 };
        let v = i32::from(self.curves[at]);
        self.curves[at] = (v + ((target - v) >> Self::RATE_SHIFT)) as u16;
    }
}

/// What each class of count pair has meant on the page, for each of the [`slot::MEMORY`]
/// neighbourhoods (format-spec.md §3.9): P(ink) after pairs whose n0 and n1 fall in given
/// [`count_class`]es, learnt as a running average whose step shrinks as 2/(2k + 3) over
/// its first k = 0, 1, … [`CountMap::SETTLED`] pixels.
struct CountMap {
    /// P(ink) in 1/65536 and pixels seen (up to [`CountMap::SETTLED`]), per cell.
    cells: Vec<[u16; 2]>,
}

/// The neighbourhoods whose estimates a [`CountMap`] gives: the page memory's four.
const MAPPED_COUNT: usize = slot::MEMORY.end - slot::MEMORY.start;

/// A pixel's [`CountMap`] cell for each of the [`slot::MEMORY`] neighbourhoods, or
/// [`CountMap::SCRATCH`] where its counts are (0, 0).
type Cells = [u16; MAPPED_COUNT];

/// 2^15 / (2k + 3), rounded down: a cell's k-th step, 2/(2k + 3), in 1/16384.
const STEPS: [i32; CountMap::SETTLED as usize + 1] = {
    let mut steps = [0; CountMap::SETTLED as usize + 1];
    let mut k = 0;
    while k < steps.len() {
        steps[k] = (1 << 15) / (2 * k as i32 + 3);
        k += 1;
    }
    steps
};

impl CountMap {
    /// Classes of a count: [`count_class`]'s range.
    const CLASSES: usize = 16;
    /// After this many pixels a cell's step stays 2/(2·255 + 3), about 1/256.
    const SETTLED: u32 = 255;
    /// Cells of the neighbourhoods' count classes.
    const CELLS: usize = MAPPED_COUNT * Self::CLASSES * Self::CLASSES;
    /// One more cell, which contexts with no counts learn in and nothing reads: learning
    /// then needs no branch.
    const SCRATCH: u16 = Self::CELLS as u16;

    /// Every cell at the KT estimate of its classes' least counts.
    fn new() -> Self {
        let cells = (0..=Self::CELLS)
            .map(|cell| {
                let (n0, n1) = ((cell / Self::CLASSES) % Self::CLASSES, cell % Self::CLASSES);
                [
                    (estimate_12([least_count(n0), least_count(n1)]) << 4) as u16,
                    0,
                ]
            })
            .collect();
        CountMap { cells }
    }

    /// The cell of counts `n` of context `k`.
    #[inline(always)]
    fn cell(k: usize, [n0, n1]: [u32; 2]) -> u16 {
        ((k * Self::CLASSES + count_class(n0)) * Self::CLASSES + count_class(n1)) as u16
    }

    /// A cell's P(ink) in 1/4096, at least 1.
    #[inline(always)]
    fn q(&self, cell: u16) -> u32 {
        u32::from((self.cells[usize::from(cell)][0] >> 4).max(1))
    }

    /// A pixel of each of `cells` is `bit`: their P(ink) steps toward it, rounded toward
    /// the old value, so that it stops short of 0 or 65535, where a step rounds to
    /// nothing, and as far short of either.
    #[inline(always)]
    fn learn(&mut self, cells: &Cells, bit: u8) {
        let target = if bit == 1 { 65535 } else { 0 };
        for &cell in cells {
            let [p, seen] = &mut self.cells[usize::from(cell)];
            let step = ((target - i32::from(*p)) * STEPS[usize::from(*seen)]) / 16384;
            *p = (i32::from(*p) + step) as u16;
            *seen = (*seen + 1).min(Self::SETTLED as u16);
        }
    }
}

/// The least count of class `class` (see [`count_class`]): where it starts in the table
/// that defines the classes.
fn least_count(class: usize) -> u32 {
    COUNT_CLASSES
        .iter()
        .position(|&c| usize::from(c) == class)
        .expect("every class starts below 128") as u32
}

/// A count's class for [`CountMap`]: 0 to 7 as they are, then two classes an octave, 8–11,
/// 12–15, 16–23, … 64–95, and 15 from 96 on.
#[inline(always)]
fn count_class(n: u32) -> usize {
    usize::from(COUNT_CLASSES[n.min(127) as usize])
}

/// The class of each count below 128, where the last class is reached.
const COUNT_CLASSES: [u8; 128] = {
    let mut classes = [0; 128];
    let mut n = 0;
    while n < 128 {
        classes[n] = if n < 8 {
            n as u8
        } else {
            let octave = n.ilog2() as usize;
            let half = (n >> (octave - 1)) & 1;
            let class = 8 + 2 * (octave - 3) + half;
            if class < CountMap::CLASSES {
                class as u8
            } else {
                CountMap::CLASSES as u8 - 1
            }
        };
        n += 1;
    }
    classes
};

/// What a lane's counts say of one pixel: all that the mixers need of it.
#[derive(Clone, Copy)]
struct Evidence {
    /// Each count pair (n0, n1).
    counts: [[u32; 2]; slot::COUNT],
    /// Glyph matching's group of places for the pixel, if it takes part (ink in its
    /// 110-pixel neighbourhood), and where its count pair is, if a place matched.
    match_group: Option<usize>,
    match_context: Option<usize>,
    /// Each first-layer mixer's weight set.
    sets: [usize; MIXERS],
    /// Each second-layer mixer's weight set.
    second_sets: [usize; SECOND_LAYERS],
    /// The refinement's context: the 12-pixel neighbourhood's.
    refinement_context: usize,
    /// The second edition's refinements': the match context, or [`MATCH_CONTEXTS`]
    /// where there is none, by the nearest pixels; and the runs' low 11 bits.
    added_contexts: [usize; 2],
}

/// Where one pixel's counts are, and its nearest pixels: all that depends on the pixels
/// before it alone, not on what the lane has counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    contexts: Contexts<CONTEXTS>,
    coarse: [usize; COARSE],
    nearest: usize,
    /// Whether the 110-pixel neighbourhood holds ink: where it is white, glyph matching
    /// passes the pixel by, and the decoder does not look ahead.
    ink_about: bool,
    /// Where the long rows' counts are (the fourth edition; 0 before it).
    long_rows: usize,
    /// The runs about the pixel, which index their counts directly (the second edition
    /// on; 0 in the first).
    runs: usize,
}

/// The counts of a lane's neighbourhoods and coarse contexts, and its known pixels: the
/// half of page mixing that depends on the pixels alone.
struct PageCounts {
    memory: Memory<Mixing, CONTEXTS>,
    /// Counts of the coarse contexts.
    coarse: [Counts; COARSE],
    /// The place of a pixel amid white.
    blank: Place,
    matcher: Matcher,
    /// Counts of the runs about each pixel (the second edition).
    runs: Option<Counts>,
    /// Counts of the long rows about each pixel (the fourth edition).
    long_rows: Option<Counts>,
    /// Bits the hashed tables' indices lose (the third edition; format-spec.md §3.11).
    shrink: u32,
}

impl PageCounts {
    /// The counts of a lane of `pixels` pixels in `edition`, none counted yet.
    fn new(edition: Edition, pixels: usize) -> Self {
        let shrink = table_shrink(edition, pixels);
        let narrow = Learning {
            limit: PARAMS.narrow_count_limit,
            forgets: edition >= Edition::Second,
        };
        let learning = std::array::from_fn(|k| {
            if slot::NARROW.contains(&k) {
                narrow
            } else if edition >= Edition::Second {
                Learning::halved_above(SECOND_WIDE_COUNT_LIMIT)
            } else {
                Learning::halved_above(PARAMS.wide_count_limit)
            }
        });
        // Zeroing these tables (over 100 MiB) is most of what a small page costs: two
        // threads share it, before the lane's one thread starts. A thread of its own, not
        // rayon's pool: the encoder builds these on a thread outside the pool while pool
        // threads wait for it, and a job queued for the pool would never run.
        let (memory, (coarse, matcher, runs, long_rows)) = std::thread::scope(|scope| {
            let other = scope.spawn(|| {
                let mut memory = Memory::shrunk(learning, shrink);
                memory.fault_in();
                memory
            });
            let here = {
                let whole = Learning::halved_above(COUNT_LIMIT);
                let coarse: [Counts; COARSE] =
                    std::array::from_fn(|_| Counts::faulted_in(1 << (COARSE_BITS - shrink), whole));
                let mut matcher = Matcher::new(shrink);
                matcher.fault_in();
                let runs =
                    (edition >= Edition::Second).then(|| Counts::faulted_in(1 << RUNS_BITS, whole));
                // They forget as the narrow neighbourhoods' do: a long context's
                // last few pixels say more than its history on a scan.
                let long_rows = (edition >= Edition::Fourth)
                    .then(|| Counts::faulted_in(1 << (LONG_ROWS_BITS - shrink), narrow));
                (coarse, matcher, runs, long_rows)
            };
            (other.join().expect("zeroing tables does not panic"), here)
        });
        let mut counts = PageCounts {
            blank: Place {
                contexts: memory.blank_contexts(),
                coarse: [0; COARSE],
                nearest: 0,
                ink_about: false,
                long_rows: 0,
                runs: 0,
            },
            memory,
            coarse,
            matcher,
            runs,
            long_rows,
            shrink,
        };
        counts.blank.coarse = counts.coarse_indices(|_| [0; 2]);
        counts
    }

    /// Begins a strip of `width × rows`; counts and remembered places carry over.
    fn start_strip(&mut self, width: usize, rows: usize) {
        self.memory.start_strip(width, rows);
        self.matcher.start_strip(width);
    }

    /// Where the counts of the coarse contexts that `views` gives, phase by phase, are.
    #[inline(always)]
    fn coarse_indices(&self, views: impl Fn(usize) -> [u64; 2]) -> [usize; COARSE] {
        let mut at = [0; COARSE];
        // Over every phase, so that each call has its phase as a constant.
        for phase in 0..COARSE / 2 {
            let [spaced, blocks] = views(phase);
            at[2 * phase] = hashed(u128::from(spaced), COARSE_BITS - self.shrink);
            at[2 * phase + 1] = hashed(u128::from(blocks), COARSE_BITS - self.shrink);
        }
        at
    }

    /// Where the long rows' counts of the pixel with rows `near` are, if this edition has
    /// them.
    #[inline(always)]
    fn long_rows_index(&self, near: &Near) -> usize {
        if self.long_rows.is_none() {
            return 0;
        }
        hashed(near.long_rows(), LONG_ROWS_BITS - self.shrink)
    }

    /// The runs about the pixel with rows `near`, if this edition counts them (0 if not).
    #[inline(always)]
    fn runs_about(&self, near: &Near) -> usize {
        if self.runs.is_none() {
            return 0;
        }
        near.runs() as usize
    }

    /// Where pixel (y, x)'s counts are, from the pixels before it in the lane.
    //
    // Always inlined, as is every function on the per-pixel path (see `codec`).
    #[inline(always)]
    fn place(&self, y: usize, x: usize) -> Place {
        let near = self.memory.near(y, x);
        if near.blank_around() {
            // The long rows and the runs reach beyond the blank neighbourhoods.
            return Place {
                long_rows: self.long_rows_index(&near),
                runs: self.runs_about(&near),
                ..self.blank
            };
        }
        self.gathered_place(&near)
    }

    /// The same, gathered from every context's pixels.
    #[inline(always)]
    fn gathered_place(&self, near: &Near) -> Place {
        let (contexts, ink_about) = self.memory.contexts_and_ink(near);
        Place {
            contexts,
            coarse: self.coarse_indices(
                #[inline(always)]
                |phase| near.coarse_views(phase),
            ),
            nearest: near.nearest(),
            ink_about,
            long_rows: self.long_rows_index(near),
            runs: self.runs_about(near),
        }
    }

    /// What the counts at `place`, pixel (y, x)'s, say. Pixels must come in order: glyph
    /// matching follows its matches from one to the next.
    #[inline(always)]
    fn evidence(&mut self, place: &Place, at: (usize, usize)) -> Evidence {
        let mut counts = [[0; 2]; slot::COUNT];
        let (mut match_group, mut match_context) = (None, None);
        let m = &mut self.matcher;
        if !place.ink_about {
            m.pass(at.1);
        } else {
            let group = group_of(place);
            match_group = Some(group);
            match_context = m.find(&self.memory, at, group, place.nearest);
            if let Some(c) = match_context {
                counts[slot::MATCHED] = m.counts(c);
            }
        }
        counts[slot::NEIGHBOURHOODS].copy_from_slice(&self.memory.counts_at(&place.contexts));
        let runs = place.runs;
        if let Some(table) = &self.runs {
            counts[slot::RUNS] = table.get(runs);
        }
        if let Some(table) = &self.long_rows {
            counts[slot::LONG_ROWS] = table.get(place.long_rows);
        }
        for ((n, c), &k) in counts[slot::COARSE_VIEWS]
            .iter_mut()
            .zip(&self.coarse)
            .zip(&place.coarse)
        {
            *n = c.get(k);
        }
        // Weight sets: by the 110-pixel count's total, the 4 nearest pixels, the 62-pixel
        // count's total, and the 24-pixel neighbourhood's index; the first three also by
        // a coarse count's total.
        let mut sets = [
            total_class(counts[slot::PIXELS_110]),
            place.nearest,
            total_class(counts[slot::PIXELS_62]),
            place.contexts.index(slot::PIXELS_24) % FOURTH_MIXER_SETS,
        ];
        for (set, c) in sets.iter_mut().zip(CROSSED_COARSE) {
            *set = *set * TOTAL_CLASSES + total_class(counts[slot::COARSE_VIEWS.start + c]);
        }
        Evidence {
            counts,
            match_group,
            match_context,
            sets,
            second_sets: [
                total_class(counts[slot::PIXELS_16]),
                place.nearest * 5 + match_context.map_or(0, |c| 1 + copy_of(c)),
                runs % SECOND_LAYER_SETS[2],
            ],
            refinement_context: place.contexts.index(slot::PIXELS_12),
            added_contexts: [
                match_context.unwrap_or(MATCH_CONTEXTS) * 16 + place.nearest,
                runs % Refinement::RUNS_CONTEXTS,
            ],
        }
    }

    /// Brings the counts at `place` into the cache, for a pixel to be looked up shortly.
    #[inline(always)]
    fn prefetch(&self, place: &Place) {
        self.memory.prefetch(&place.contexts);
        for (c, &k) in self.coarse.iter().zip(&place.coarse) {
            c.prefetch(k);
        }
        if let Some(table) = &self.long_rows {
            table.prefetch(place.long_rows);
        }
        if place.ink_about {
            self.matcher.prefetch(group_of(place));
        }
    }

    /// Pixel `at`, at `place` with evidence `e`, is `bit`: count it.
    #[inline(always)]
    fn count(&mut self, place: &Place, e: &Evidence, at: (usize, usize), bit: u8) {
        if let Some(group) = e.match_group {
            self.matcher.learn(at, group, e.match_context, bit);
        }
        for (counts, &k) in self.coarse.iter_mut().zip(&place.coarse) {
            counts.update(k, bit);
        }
        self.memory.count(&place.contexts, bit);
        if let Some(runs) = &mut self.runs {
            runs.update(place.runs, bit);
        }
        if let Some(long_rows) = &mut self.long_rows {
            long_rows.update(place.long_rows, bit);
        }
    }
}

/// One pixel's mixing, kept until its value is known.
struct Mixed {
    inputs: [i32; INPUTS],
    /// Its [`CountMap`] cells.
    cells: Cells,
    first: [i32; MIXERS],
    /// Each second-layer mixer's logit.
    seconds: [i32; SECOND_LAYERS],
    /// The refinement's point to learn.
    refined_at: usize,
    /// The second edition's refinements' points, if it is that edition.
    added_at: [usize; 2],
}

/// Two layers of adaptive mixers and a refinement: the half of page mixing that learns
/// from the counts' evidence.
struct Mixers {
    /// First layer: mixer k's weight sets, chosen as [`PageCounts::evidence`] says.
    first: [Vec<[i32; INPUTS]>; MIXERS],
    /// Second layer: each mixer's weights over the first layer's logits and a bias, in
    /// sets as [`SECOND_LAYER_SETS`] says.
    second: [Vec<[i32; MIXERS + 1]>; SECOND_LAYERS],
    /// The second-layer mixers this edition has: the first only, or all.
    second_layers: usize,
    refinement: Refinement,
    count_map: CountMap,
    /// What the second edition adds.
    added: Option<Added>,
}

/// What the second edition adds to the mixers (format-spec.md §3.10).
struct Added {
    /// Two more refinements: by glyph matching's context, and by the runs about the
    /// pixel.
    refinements: [Refinement; 2],
    /// How many pixels each first-layer weight set has learnt, up to
    /// [`SETTLING_USES`].
    uses: [Vec<u16>; MIXERS],
}

impl Mixers {
    /// Equal trust in every neighbourhood's stretched estimate, and in every first-layer
    /// mixer.
    fn new(edition: Edition) -> Self {
        let mut start = [0; INPUTS];
        let trust = WEIGHT_ONE * 3 / (2 * CONTEXTS as i32);
        for k in slot::NEIGHBOURHOODS.chain(slot::COARSE_VIEWS).chain([
            slot::MATCHED,
            slot::RUNS,
            slot::LONG_ROWS,
        ]) {
            start[2 * k] = trust;
        }
        let mut second = [0; MIXERS + 1];
        second[..MIXERS].fill(WEIGHT_ONE / MIXERS as i32);
        let first = FIRST_LAYER_SETS.map(|sets| vec![start; sets]);
        Mixers {
            first,
            second: SECOND_LAYER_SETS.map(|sets| vec![second; sets]),
            second_layers: if edition >= Edition::Third {
                SECOND_LAYERS
            } else {
                1
            },
            refinement: Refinement::new(Refinement::CONTEXTS),
            count_map: CountMap::new(),
            added: (edition >= Edition::Second).then(|| Added {
                refinements: [
                    Refinement::new(Refinement::MATCH_CONTEXTS),
                    Refinement::new(Refinement::RUNS_CONTEXTS),
                ],
                uses: FIRST_LAYER_SETS.map(|sets| vec![0; sets]),
            }),
        }
    }

    /// P(ink), to `PRECISION` bits, of a pixel of which the counts say `e`.
    #[inline(always)]
    fn predict(&self, e: &Evidence) -> (u32, Mixed) {
        let map = &self.count_map;
        self.predict_with(e, |k, n, cells| {
            if slot::MEMORY.contains(&k) {
                let cell = CountMap::cell(k - slot::MEMORY.start, n);
                cells[k - slot::MEMORY.start] = cell;
                map.q(cell)
            } else {
                estimate_12(n)
            }
        })
    }

    /// The same, with `estimate(k, counts, cells)` the 12-bit estimate of context k's
    /// counts, which notes the [`CountMap`] cell it read, if any, in `cells`.
    #[inline(always)]
    fn predict_with(
        &self,
        e: &Evidence,
        estimate: impl Fn(usize, [u32; 2], &mut Cells) -> u32,
    ) -> (u32, Mixed) {
        let mut inputs = [LOGIT_ONE; INPUTS];
        let mut cells: Cells = [CountMap::SCRATCH; MAPPED_COUNT];
        for (k, (pair, &n)) in inputs.chunks_exact_mut(2).zip(&e.counts).enumerate() {
            // An unseen context says nothing.
            let (s, d) = if n == [0, 0] {
                (0, 0)
            } else {
                let q = estimate(k, n, &mut cells);
                (
                    i32::from(stretch_table()[q as usize]),
                    (q as i32 - 2048) >> 3,
                )
            };
            pair.copy_from_slice(&[s, d]);
        }
        let mut first = [0; MIXERS];
        for (k, logit) in first.iter_mut().enumerate() {
            *logit = dot(&self.first[k][e.sets[k]], &inputs);
        }
        let mut seconds = [0; SECOND_LAYERS];
        let layers = self.second_layers;
        let y = second_inputs(&first);
        for ((logit, weights), &set) in seconds
            .iter_mut()
            .zip(&self.second)
            .zip(&e.second_sets)
            .take(layers)
        {
            *logit = dot(&weights[set], &y);
        }
        // Floored, as an i32 division toward −∞, by a constant (one layer is its own
        // mean).
        let logit = if layers == 1 {
            seconds[0]
        } else {
            seconds.iter().sum::<i32>().div_euclid(SECOND_LAYERS as i32)
        };
        let mixed = probability(logit);
        let (refined, refined_at) = self.refinement.estimate(e.refinement_context, logit);
        let refined = refined << (PRECISION - 16);
        // The first edition averages the mixers and the refinement; the second weighs
        // the mixers twice and each of its three refinements once.
        let (p, added_at) = match &self.added {
            None => ((mixed + refined) / 2, [0; 2]),
            Some(added) => {
                let mut sum = 2 * mixed + refined;
                let mut at = [0; 2];
                for ((r, &context), at) in
                    added.refinements.iter().zip(&e.added_contexts).zip(&mut at)
                {
                    let (by, point) = r.estimate(context, logit);
                    sum += by << (PRECISION - 16);
                    *at = point;
                }
                (sum / 5, at)
            }
        };
        let p = p.clamp(1, (1 << PRECISION) - 1);
        (
            p,
            Mixed {
                inputs,
                cells,
                first,
                seconds,
                refined_at,
                added_at,
            },
        )
    }

    /// The pixel of evidence `e`, mixed as `m`, is `bit`: every mixer steps toward it.
    #[inline(always)]
    fn learn(&mut self, e: &Evidence, m: &Mixed, bit: u8) {
        let target = i32::from(bit) << 12;
        for k in 0..MIXERS {
            let err = target - probability_12(m.first[k]);
            let mut shift = PARAMS.first_rate_shift;
            if let Some(added) = &mut self.added {
                let seen = &mut added.uses[k][e.sets[k]];
                if *seen < SETTLING_USES {
                    *seen += 1;
                } else {
                    shift += 1;
                }
            }
            train(&mut self.first[k][e.sets[k]], &m.inputs, err, shift);
        }
        // Each second-layer mixer steps on the error of its own logit.
        let y = second_inputs(&m.first);
        for ((weights, &set), &logit) in self
            .second
            .iter_mut()
            .zip(&e.second_sets)
            .zip(&m.seconds)
            .take(self.second_layers)
        {
            let err = target - probability_12(logit);
            train(&mut weights[set], &y, err, PARAMS.second_rate_shift);
        }
        self.refinement.learn(m.refined_at, bit);
        if let Some(added) = &mut self.added {
            for (r, &at) in added.refinements.iter_mut().zip(&m.added_at) {
                r.learn(at, bit);
            }
        }
        self.count_map.learn(&m.cells, bit);
    }
}

/// The page-mixing model of one lane: its counts and its mixers, as the decoder runs them,
/// a pixel at a time.
pub struct PageMixer {
    counts: PageCounts,
    mixers: Mixers,
    pending: Option<(Evidence, Place, Mixed)>,
    width: usize,
    /// The next pixel's column and place supposing the one being predicted paper, found
    /// while its counts are fetched (see [`PixelModel::predict`]).
    paper_ahead: Option<(usize, Place)>,
    /// The next pixel's column and place, where it was found ahead.
    next: Option<(usize, Place)>,
}

impl PageMixer {
    /// A fresh model of `edition` for a lane of `pixels` pixels, which has seen none.
    pub fn new(edition: Edition, pixels: usize) -> Self {
        PageMixer {
            counts: PageCounts::new(edition, pixels),
            mixers: Mixers::new(edition),
            pending: None,
            width: 0,
            paper_ahead: None,
            next: None,
        }
    }
}

impl PixelModel for PageMixer {
    /// Begins a strip of `width × rows`; counts and weights carry over from the last.
    fn start_strip(&mut self, width: usize, rows: usize) {
        self.counts.start_strip(width, rows);
        self.width = width;
        self.paper_ahead = None;
        self.next = None;
    }

    /// P(ink) of pixel (y, x), to `PRECISION` bits, from the pixels before it in the
    /// lane. [`Self::learn`] must follow with its value.
    ///
    /// The decoder must know a pixel before it can find where the next one's counts are,
    /// and much of a pixel's time went in waiting for its counts from memory. So where
    /// there is ink about, the next pixel's place is found supposing this one paper (as
    /// a pixel not yet known reads), and its counts are fetched while this one's come: if
    /// this pixel is paper, that is the next one's place. Supposing ink as well cost more
    /// than it saved (decoding tribune-page-4x took 0.75 s, against 0.70 supposing
    /// nothing and 0.64 supposing paper alone); so did supposing paper amid white too.
    #[inline(always)]
    fn predict(&mut self, y: usize, x: usize) -> u32 {
        let place = match self.next.take() {
            Some((column, place)) if column == x => place,
            _ => self.counts.place(y, x),
        };
        if place.ink_about && x + 1 < self.width {
            self.counts.prefetch(&place);
            let paper = self.counts.place(y, x + 1);
            self.counts.prefetch(&paper);
            self.paper_ahead = Some((x + 1, paper));
        }
        let evidence = self.counts.evidence(&place, (y, x));
        let (p, mixed) = self.mixers.predict(&evidence);
        self.pending = Some((evidence, place, mixed));
        p
    }

    /// Pixel (y, x), just predicted, is `bit`: every mixer steps toward it and the counts
    /// learn it.
    #[inline(always)]
    fn learn(&mut self, y: usize, x: usize, bit: u8) {
        let (evidence, place, mixed) = self.pending.take().expect("a prediction to learn from");
        self.mixers.learn(&evidence, &mixed, bit);
        self.counts.count(&place, &evidence, (y, x), bit);
        self.counts.memory.know(y, x, bit);
        self.next = self.paper_ahead.take().filter(|_| bit == 0);
    }
}

/// Glyph matching's group of places for a pixel at `place`: the top bits of the hash of
/// its phase 0 blocks view.
#[inline(always)]
fn group_of(place: &Place) -> usize {
    place.coarse[1] >> (COARSE_BITS - GROUP_BITS)
}

/// Pixels a message carries from the counting thread to the mixing one: enough that the
/// channel costs next to nothing, few enough that the two threads keep in step.
const PIPELINE_CHUNK: usize = 4096;

/// How many pixels ahead the counting thread fetches counts: enough to cover a cache
/// miss.
const PREFETCH_DISTANCE: usize = 8;

/// Every pixel of a lane's `strips` with its P(ink), exactly as [`PageMixer`] predicts
/// them one by one, for the encoder. The decoder must know each pixel before it can find
/// the next one's counts, but the encoder knows them all: here the counts are kept on a
/// thread of their own, which fetches the counts of the pixels a few ahead into the cache,
/// while this thread mixes. With a core free, a page compresses in about 0.6 of the time
/// it takes to decode (README).
pub(crate) fn predict_lane(strips: &[Strip], edition: Edition) -> Vec<Predicted> {
    predict_lane_with(strips, edition, Supported::best())
}

/// [`predict_lane`], its threads compiled for `kernels`.
fn predict_lane_with(strips: &[Strip], edition: Edition, kernels: Supported) -> Vec<Predicted> {
    let (send, receive) = sync_channel::<Vec<Evidence>>(4);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            run_with(
                kernels,
                #[inline(always)]
                || count_lane(strips, edition, &send),
            )
        });
        run_with(
            kernels,
            #[inline(always)]
            || mix_lane(strips, edition, &receive),
        )
    })
}

/// The counting thread of [`predict_lane`]: each pixel's evidence, sent in chunks.
#[inline(always)]
fn count_lane(strips: &[Strip], edition: Edition, send: &SyncSender<Vec<Evidence>>) {
    let mut counts = PageCounts::new(edition, lane_pixels(strips));
    let mut chunk = Vec::with_capacity(PIPELINE_CHUNK);
    let mut places = Vec::new();
    for s in strips {
        counts.start_strip(s.width, s.rows);
        for (y, row) in s.pixels.chunks_exact(s.width.max(1)).enumerate() {
            // A pixel's contexts read only the pixels before it, so the whole row
            // may be known at once, and every place in it found before any is
            // counted: the counts of the pixels ahead can then be fetched early.
            for (x, &bit) in row.iter().enumerate() {
                counts.memory.know(y, x, bit);
            }
            places.clear();
            // A loop, not `extend` over a closure, which was left out of line and so
            // compiled for the baseline (see `codec`).
            for x in 0..s.width {
                places.push(counts.place(y, x));
            }
            for (x, &bit) in row.iter().enumerate() {
                if let Some(ahead) = places.get(x + PREFETCH_DISTANCE) {
                    counts.prefetch(ahead);
                }
                let evidence = counts.evidence(&places[x], (y, x));
                counts.count(&places[x], &evidence, (y, x), bit);
                chunk.push(evidence);
                if chunk.len() == PIPELINE_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(PIPELINE_CHUNK));
                    if send.send(full).is_err() {
                        return;
                    }
                }
            }
        }
    }
    // The receiver outlives this thread: it drains the channel to the end.
    let _ = send.send(chunk);
}

/// The mixing thread of [`predict_lane`]: each pixel of `strips` with its P(ink), from
/// the evidence the counting thread sends.
#[inline(always)]
fn mix_lane(
    strips: &[Strip],
    edition: Edition,
    receive: &Receiver<Vec<Evidence>>,
) -> Vec<Predicted> {
    let mut mixers = Mixers::new(edition);
    let mut bits = strips.iter().flat_map(|s| s.pixels.iter().copied());
    let mut predicted = Vec::with_capacity(lane_pixels(strips));
    for evidence in receive.iter().flatten() {
        let bit = bits.next().expect("evidence of a pixel of the lane");
        let (p, mixed) = mixers.predict(&evidence);
        mixers.learn(&evidence, &mixed, bit);
        predicted.push(Predicted::new(p));
    }
    predicted
}

/// Page mixing as a lane coder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageMixing(pub Edition);

impl PageMixing {
    /// Page mixing as format 1.0 has it (format-spec.md §3.9).
    pub const FIRST: PageMixing = PageMixing(Edition::First);
    /// The second edition (§3.10).
    pub const SECOND: PageMixing = PageMixing(Edition::Second);
    /// The third edition (§3.11).
    pub const THIRD: PageMixing = PageMixing(Edition::Third);
    /// The fourth edition (§3.12).
    pub const FOURTH: PageMixing = PageMixing(Edition::Fourth);
    /// The edition the compressor writes.
    pub const LATEST: PageMixing = Self::FOURTH;

    /// The lane coder of this edition, as an archive names it.
    pub const fn coder(self) -> LaneCoder {
        LaneCoder::PageMixing(self.0)
    }

    /// Bytes of the tables one page-mixing lane holds from its start to its end, at most,
    /// whatever its size or edition: counts, glyph matching, mixers' weights, the
    /// refinements and the count map (about 138 MiB; from the third edition on, smaller
    /// on a lane of at most 2^19 pixels). What grows with the lane's strips is not
    /// included.
    pub const TABLE_BYTES: usize = Memory::<Mixing, CONTEXTS>::TABLE_BYTES
        + COARSE * (4 << COARSE_BITS)
        + (4 << RUNS_BITS)
        + (4 << LONG_ROWS_BITS)
        + Matcher::TABLE_BYTES
        + (4 * INPUTS + 2) * FIRST_LAYER_SET_COUNT
        + 4 * (MIXERS + 1) * SECOND_LAYER_SET_COUNT
        + 2 * Refinement::POINTS
            * (Refinement::CONTEXTS + Refinement::MATCH_CONTEXTS + Refinement::RUNS_CONTEXTS)
        + 4 * (CountMap::CELLS + 1);

    /// Bytes that grow with a strip of `width × rows`: its known pixels, and the places
    /// the encoder finds a row ahead.
    pub fn strip_bytes(width: usize, rows: usize) -> usize {
        Memory::<Mixing, CONTEXTS>::strip_bytes(width, rows) + 4 * width
    }
}

impl ModelledLanes for PageMixing {
    type Model = PageMixer;

    fn fresh(&self, pixels: usize) -> PageMixer {
        PageMixer::new(self.0, pixels)
    }

    /// The pipelined encoder: the same predictions, on two threads.
    fn predict(&self, strips: &[Strip]) -> Vec<Predicted> {
        predict_lane(strips, self.0)
    }
}

/// The second layer's inputs: the first layer's logits, then a bias.
#[inline(always)]
fn second_inputs(first: &[i32; MIXERS]) -> [i32; MIXERS + 1] {
    let mut inputs = [LOGIT_ONE; MIXERS + 1];
    inputs[..MIXERS].copy_from_slice(first);
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::counts::{self, COUNT_LIMIT};
    use crate::infer::kernels::Kernels;

    /// [`train`] multiplies in i32: every input it is given (stretched estimates,
    /// distances from ½, first-layer logits, biases) is within ±[`LOGIT_LIMIT`] and every
    /// error within ±4,096, so the products cannot overflow.
    #[test]
    fn training_products_fit_in_i32() {
        let largest_input = stretch_table()
            .iter()
            .map(|&s| i32::from(s).abs())
            .chain([2048 >> 3, LOGIT_ONE, LOGIT_LIMIT])
            .max()
            .unwrap();
        assert!(largest_input <= LOGIT_LIMIT);
        // The error is 4096 − T(d) for ink and −T(d) for white; T rises with d.
        let largest_error = (4096 - probability_12(-LOGIT_LIMIT)).max(probability_12(LOGIT_LIMIT));
        assert!(largest_error <= 4096);
        assert!(i64::from(largest_input) * i64::from(largest_error) < 1 << 24);
    }

    /// The squash table is §4.3's sigmoid: ½ at 0, odd about it, rising, and strictly
    /// inside (0, 1) at ±12.
    #[test]
    fn squash_is_the_pixel_sigmoid() {
        assert_eq!(probability(0), 1 << (PRECISION - 1));
        for l in 1..=LOGIT_LIMIT {
            assert_eq!(probability(l) + probability(-l), 1 << PRECISION, "{l}");
            assert!(probability(l) >= probability(l - 1));
        }
        assert!(probability(LOGIT_LIMIT) < (1 << PRECISION) - 1);
        assert_eq!(probability_12(LOGIT_LIMIT), 4095);
    }

    /// A fresh refinement follows the sigmoid between its points (within its linear
    /// interpolation's error, under 0.7%), every logit included, and its curve learns
    /// only in its own context.
    #[test]
    fn refinement_starts_as_the_sigmoid_and_learns_its_context() {
        let mut r = Refinement::new(Refinement::CONTEXTS);
        for logit in -LOGIT_LIMIT..=LOGIT_LIMIT {
            let (p, at) = r.estimate(7, logit);
            let want = probability(logit) >> (PRECISION - 16);
            assert!(p.abs_diff(want) < 460, "{logit}: {p} vs {want}");
            assert!(at / Refinement::POINTS == 7);
        }
        for _ in 0..200 {
            let (_, at) = r.estimate(7, 0);
            r.learn(at, 1);
        }
        assert!(r.estimate(7, 0).0 > 60_000);
        assert_eq!(r.estimate(8, 0).0, 1 << 15);
    }

    /// The next of a fixed sequence of pseudo-random numbers.
    fn next_random(state: &mut u32) -> u32 {
        *state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *state
    }

    /// The encoder's two threads predict every pixel as the decoder's model does, across
    /// strips (an empty one among them) and messages of the pipeline, each compiled for
    /// the baseline and for AVX2, where the processor has it. The decoder's model looks
    /// ahead, and the encoder does not.
    #[test]
    fn the_pipelined_encoder_predicts_as_the_decoder_does() {
        let (width, rows) = (91, 70);
        let mut state = 7u32;
        let pixels: Vec<u8> = (0..width * rows)
            .map(|i| {
                let (y, x) = (i / width, i % width);
                u8::from((x / 4 + y / 5) % 3 == 0) ^ u8::from(next_random(&mut state) >> 28 == 0)
            })
            .collect();
        let strips = [
            Strip {
                width,
                rows: 50,
                pixels: &pixels[..50 * width],
            },
            Strip {
                width: 0,
                rows: 3,
                pixels: &[],
            },
            Strip {
                width,
                rows: 20,
                pixels: &pixels[50 * width..],
            },
        ];
        assert!(pixels.len() > PIPELINE_CHUNK && pixels.len() % PIPELINE_CHUNK != 0);
        let mut editions = Vec::new();
        for edition in [
            Edition::First,
            Edition::Second,
            Edition::Third,
            Edition::Fourth,
        ] {
            let one_by_one = |kernels: Supported| {
                counts::predict_lane_with(
                    PageMixer::new(edition, lane_pixels(&strips)),
                    &strips,
                    kernels,
                )
            };
            let baseline = Kernels::Baseline
                .check()
                .expect("every CPU runs the baseline");
            let want = one_by_one(baseline);
            assert_eq!(predict_lane_with(&strips, edition, baseline), want);
            if let Ok(avx2) = Kernels::Avx2.check() {
                assert_eq!(one_by_one(avx2), want, "the AVX2 build");
                assert_eq!(
                    predict_lane_with(&strips, edition, avx2),
                    want,
                    "AVX2 encoder"
                );
            }
            editions.push(want);
        }
        // The editions are four models, not one.
        assert_ne!(editions[0], editions[1]);
        assert_ne!(editions[1], editions[2]);
        assert_ne!(editions[2], editions[3]);
    }

    /// The third edition's hashed tables are full size for lanes of more than 2^19
    /// pixels, a bit smaller for each halving below, at most 4 bits, and so the fourth's;
    /// the earlier editions' always full.
    #[test]
    fn editions_from_the_third_size_their_tables_to_the_lane() {
        let shrink = |pixels| table_shrink(Edition::Third, pixels);
        assert_eq!(shrink(1 << 22), 0);
        assert_eq!(shrink((1 << 20) + 1), 0);
        assert_eq!(shrink(1 << 20), 0);
        assert_eq!(shrink((1 << 20) - 1), 0);
        assert_eq!(shrink((1 << 19) + 1), 0);
        assert_eq!(shrink(1 << 19), 1);
        assert_eq!(shrink(329 * 400), 2);
        assert_eq!(shrink(1 << 13), 4);
        assert_eq!(shrink(1), 4);
        assert_eq!(table_shrink(Edition::Fourth, 329 * 400), 2);
        assert_eq!(table_shrink(Edition::Second, 1), 0);
        assert_eq!(table_shrink(Edition::First, 1 << 13), 0);
        let small = PageCounts::new(Edition::Third, 329 * 400);
        assert_eq!(small.coarse[0].len(), 1 << (COARSE_BITS - 2));
        let large = PageCounts::new(Edition::Third, 1 << 20);
        assert_eq!(large.coarse[0].len(), 1 << COARSE_BITS);
        let small = PageCounts::new(Edition::Fourth, 329 * 400);
        let long_rows = small.long_rows.expect("the fourth edition's long rows");
        assert_eq!(long_rows.len(), 1 << (LONG_ROWS_BITS - 2));
    }

    /// A pixel amid white takes the blank place, the one its contexts would give, with
    /// full tables and with a small lane's shrunk ones, but for the fourth edition's long
    /// rows, which reach further; the image has both such pixels and others.
    #[test]
    fn blank_neighbourhoods_take_the_place_their_contexts_give() {
        let (width, rows) = (150, 60);
        for (edition, pixels) in [
            (Edition::First, 0),
            (Edition::Third, width * rows),
            (Edition::Fourth, width * rows),
        ] {
            let mut state = 11u32;
            let mut counts = PageCounts::new(edition, pixels);
            counts.start_strip(width, rows);
            let mut blank = 0;
            for y in 0..rows {
                for x in 0..width {
                    let place = counts.gathered_place(&counts.memory.near(y, x));
                    assert_eq!(counts.place(y, x), place, "({y}, {x})");
                    // The long rows and the runs reach beyond a blank neighbourhood.
                    let neighbourhoods = Place {
                        long_rows: counts.blank.long_rows,
                        runs: counts.blank.runs,
                        ..place
                    };
                    blank += usize::from(neighbourhoods == counts.blank);
                    let bit = u8::from(next_random(&mut state) >> 24 == 0);
                    let evidence = counts.evidence(&place, (y, x));
                    counts.count(&place, &evidence, (y, x), bit);
                    counts.memory.know(y, x, bit);
                }
            }
            assert!(
                blank > width * rows / 10 && blank < width * rows * 9 / 10,
                "{blank}"
            );
        }
    }

    /// After a pattern repeats, the mixer is sure of it.
    #[test]
    fn mixer_learns_what_it_sees() {
        let mut m = PageMixer::new(Edition::First, 0);
        m.start_strip(48, 48);
        for y in 0..48 {
            for x in 0..48 {
                let bit = u8::from((x / 3 + y / 3) % 2 == 0);
                let p = m.predict(y, x);
                if y > 40 {
                    let sure = if bit == 1 { p } else { (1 << PRECISION) - p };
                    assert!(sure > 15 << (PRECISION - 4), "({y}, {x}): {p}");
                }
                m.learn(y, x, bit);
            }
        }
    }

    /// Count classes are §3.9's: 0–7 as they are, then 8–11, 12–15, 16–23, …, 64–95,
    /// and 15 from 96 on; each class's least count is where it starts.
    #[test]
    fn count_classes_are_the_specs() {
        let want = |n: u32| -> usize {
            match n {
                0..=7 => n as usize,
                8..=11 => 8,
                12..=15 => 9,
                16..=23 => 10,
                24..=31 => 11,
                32..=47 => 12,
                48..=63 => 13,
                64..=95 => 14,
                _ => 15,
            }
        };
        for n in 0..=COUNT_LIMIT + 1 {
            assert_eq!(count_class(n), want(n), "{n}");
        }
        for class in 0..CountMap::CLASSES {
            assert_eq!(count_class(least_count(class)), class);
            if class > 0 {
                assert_eq!(count_class(least_count(class) - 1), class - 1);
            }
        }
    }

    /// A cell moves about 2/3 of the way on its first pixel, then by ever smaller steps, and
    /// stops as far short of 0 after white as of 65535 after ink.
    #[test]
    fn count_map_cells_average_what_follows_them() {
        let mut map = CountMap::new();
        let (white, ink) = (CountMap::cell(0, [40, 0]), CountMap::cell(1, [0, 40]));
        let mut cells = [CountMap::SCRATCH; MAPPED_COUNT];
        cells[0] = white;
        let start = map.cells[usize::from(white)][0];
        map.learn(&cells, 0);
        // 2/3 of the way, as 10,922/16,384, rounded toward the old value.
        assert_eq!(STEPS[0], 10_922);
        let moved = (i32::from(start) * 10_922 / 16_384) as u16;
        assert_eq!(map.cells[usize::from(white)][0], start - moved);
        assert!(moved * 3 >= start * 2 - 3, "{start} {moved}");
        for _ in 0..5000 {
            map.learn(&cells, 0);
        }
        cells[0] = CountMap::SCRATCH;
        cells[1] = ink;
        for _ in 0..5000 {
            map.learn(&cells, 1);
        }
        let ([w, seen], [i, _]) = (map.cells[usize::from(white)], map.cells[usize::from(ink)]);
        assert_eq!(u32::from(seen), CountMap::SETTLED);
        assert_eq!(w, 65535 - i);
        // Short of 0 by at most where the settled step rounds to nothing.
        assert!(w > 0 && i32::from(w) * STEPS[255] < 16_384, "{w}");
        assert_eq!(map.q(white), 1.max(u32::from(w >> 4)));
    }
}
