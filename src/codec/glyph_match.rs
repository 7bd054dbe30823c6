//! Glyph matching (format-spec.md §3.9): for each pixel, an earlier place
//! of the lane whose rows above are most like this one's, and what that place's pixel
//! was.
//!
//! Counts over a neighbourhood learn a glyph only where its context recurs exactly. On a
//! scan each border pixel may be flipped, so a 110-pixel context seldom recurs, and the
//! counts cannot tell from the noisy rows above where the clean edge lies. A match that
//! tolerates a few differing pixels finds the last time the same glyph was drawn; it then
//! follows that copy along the row and down the column, so that the copy's identity is
//! carried from pixel to pixel rather than found again from a noisy context. What the
//! copy's pixel said, whether it lay on an edge of the copy (where a scan's noise flips
//! pixels), and how close the match was, select a count pair that the mixers weigh like
//! any other.
#![forbid(unsafe_code)]

use super::counts::Counts;
use super::memory::{Memory, Mixing};

/// Recent places are kept in 2^18 groups of [`WAYS`], chosen by a coarse view's hash
/// (fewer in page mixing from its third edition on, on a small lane: format-spec.md §3.11).
pub const GROUP_BITS: u32 = 18;

/// Places remembered for each group, newest first.
pub const WAYS: usize = 4;

/// The most compared pixels in which a match may differ from the pixel's.
pub const MAX_DISTANCE: u32 = 30;

/// The class of a match's distance: 0, 1, 2, 3–4, 5–7, 8–11, 12–30.
#[inline(always)]
fn distance_class(d: u32) -> usize {
    match d {
        0..=2 => d as usize,
        3..=4 => 3,
        5..=7 => 4,
        8..=11 => 5,
        _ => 6,
    }
}

/// Count pairs: 7 distance classes × 3 states of the second match × the match's pixel ×
/// whether it lay on an edge × the 2 nearest pixels.
pub(super) const MATCH_CONTEXTS: usize = 7 * 3 * 2 * 2 * 4;

/// What a match context says of its copy: the copy's pixel and whether it lies on an
/// edge of the copy, as `2·pixel + edge` (0..4).
#[inline(always)]
pub(super) fn copy_of(context: usize) -> usize {
    (context >> 2) % 4
}

/// A lane's glyph matching: the places it remembers and the counts of what its matches
/// said. Places are raster positions in the strip, y·width + x, stored plus one so that 0
/// means none; a place from an earlier strip is only ever a poor match, never an unknown
/// pixel, as a place must come before the pixel's.
pub(super) struct Matcher {
    groups: Vec<u32>,
    /// For each column, the best match of the pixel above, or 0.
    above: Vec<u32>,
    /// The place after the previous pixel's match, or 0.
    next: u32,
    width: usize,
    counts: Counts,
}

impl Matcher {
    /// Bytes of its tables at full size, at most: the remembered places and the counts.
    pub(super) const TABLE_BYTES: usize = 4 * (WAYS << GROUP_BITS) + 4 * MATCH_CONTEXTS;

    /// A matcher with `2^(GROUP_BITS − shrink)` groups (format-spec.md §3.11).
    pub(super) fn new(shrink: u32) -> Self {
        Matcher {
            groups: vec![0; WAYS << (GROUP_BITS - shrink)],
            above: Vec::new(),
            next: 0,
            width: 0,
            counts: Counts::new(MATCH_CONTEXTS),
        }
    }

    /// Writes every page of its tables once (see [`super::counts::fault_in`]).
    pub(super) fn fault_in(&mut self) {
        super::counts::fault_in(&mut self.groups);
    }

    /// Begins a strip `width` wide; the remembered places carry over.
    pub(super) fn start_strip(&mut self, width: usize) {
        self.above = vec![0; width];
        self.next = 0;
        self.width = width;
    }

    /// The count context of pixel (y, x), whose 110-pixel neighbourhood holds ink, whose
    /// coarse view chooses `group`, and whose 4 nearest pixels are `nearest`; `None` when
    /// no place matches within [`MAX_DISTANCE`]. A place's distance counts the pixels in
    /// which its 110-pixel neighbourhood and its far rows differ from the pixel's
    /// ([`Memory::match_distances`]).
    #[inline(always)]
    pub(super) fn find(
        &mut self,
        memory: &Memory<Mixing, 10>,
        (y, x): (usize, usize),
        group: usize,
        nearest: usize,
    ) -> Option<usize> {
        let here = (y * self.width + x) as u32;
        let window = memory.match_window(y, x);
        let width = self.width as u32;
        // The matches of the pixels above and above right, moved down and down left.
        let above = self.above[x];
        let above_right = self.above.get(x + 1).copied().unwrap_or(0);
        let candidates = [
            self.next,
            (above + width) * u32::from(above != 0),
            (above_right + width - 1) * u32::from(above_right != 0),
        ];
        let remembered = &self.groups[group * WAYS..(group + 1) * WAYS];
        // The best and second best (distance, place), the first of equal distances kept.
        let mut best: [Option<(u32, u32)>; 2] = [None, None];
        for &stored in candidates.iter().chain(remembered) {
            if stored == 0 || stored > here || best.iter().flatten().any(|b| b.1 == stored) {
                continue;
            }
            let (py, px) = self.coordinates(stored);
            let (near, far) =
                Memory::<Mixing, 10>::match_distances(&memory.match_window(py, px), &window);
            let d = near + far;
            if best[0].is_none_or(|b| d < b.0) {
                best = [Some((d, stored)), best[0]];
            } else if best[1].is_none_or(|b| d < b.0) {
                best[1] = Some((d, stored));
            }
        }
        self.above[x] = best[0].map_or(0, |b| b.1);
        self.next = 0;
        let (d, stored) = best[0].filter(|b| b.0 <= MAX_DISTANCE)?;
        self.next = stored + 1;
        // Places before the pixel's are known; the pixel's own and later ones read 0 (the
        // encoder knows them, the decoder not yet).
        let known = |stored: u32| {
            if stored <= here {
                let (py, px) = self.coordinates(stored);
                memory.pixel(py, px)
            } else {
                0
            }
        };
        let expected = known(stored);
        // On an edge of the copy: unlike its right or lower neighbour.
        let edge = known(stored + 1) != expected || known(stored + width) != expected;
        let second = match best[1] {
            Some((d2, s2)) if d2 <= MAX_DISTANCE => 1 + usize::from(known(s2) != expected),
            _ => 0,
        };
        let class = distance_class(d);
        Some(
            (((class * 3 + second) * 2 + usize::from(expected)) * 2 + usize::from(edge)) * 4
                + (nearest & 3),
        )
    }

    /// The (row, column) of a stored place.
    #[inline(always)]
    fn coordinates(&self, stored: u32) -> (usize, usize) {
        let place = (stored - 1) as usize;
        (place / self.width, place % self.width)
    }

    /// Brings `group`'s places into the cache, for a pixel to be matched shortly.
    #[inline(always)]
    pub(super) fn prefetch(&self, group: usize) {
        if let Some(first) = self.groups.get(group * WAYS) {
            crate::cpu::prefetch(first);
        }
    }

    /// A pixel whose 110-pixel neighbourhood is white: nothing to match, or to follow.
    #[inline(always)]
    pub(super) fn pass(&mut self, x: usize) {
        self.above[x] = 0;
        self.next = 0;
    }

    /// The counts at `context`.
    #[inline(always)]
    pub(super) fn counts(&self, context: usize) -> [u32; 2] {
        self.counts.get(context)
    }

    /// Pixel (y, x), found at `context` (if any) in `group`, is `bit`: count it, and
    /// remember its place as the group's newest.
    #[inline(always)]
    pub(super) fn learn(
        &mut self,
        (y, x): (usize, usize),
        group: usize,
        context: Option<usize>,
        bit: u8,
    ) {
        if let Some(c) = context {
            self.counts.update(c, bit);
        }
        let ways = &mut self.groups[group * WAYS..(group + 1) * WAYS];
        ways.copy_within(..WAYS - 1, 1);
        ways[0] = (y * self.width + x + 1) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::memory::hashed;

    /// A glyph drawn twice on a row: inside the second copy every pixel finds the first at
    /// distance 0 (through its group, then by following it), and its context says the
    /// copy's pixel, which is the pixel's own.
    #[test]
    fn a_second_copy_finds_the_first() {
        let (width, rows) = (80, 40);
        let mut state = 5u32;
        let glyph: Vec<u8> = (0..12 * 12)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                u8::from(state >> 30 == 0)
            })
            .collect();
        let mut page = vec![0u8; width * rows];
        for (i, &ink) in glyph.iter().enumerate() {
            page[(10 + i / 12) * width + 10 + i % 12] = ink;
            page[(10 + i / 12) * width + 50 + i % 12] = ink;
        }
        let mut memory = Memory::<Mixing, 10>::default();
        memory.start_strip(width, rows);
        let mut matcher = Matcher::new(0);
        matcher.start_strip(width);
        let mut inside = 0;
        for y in 0..rows {
            for x in 0..width {
                let widest = memory.widest_context(y, x);
                let bit = page[y * width + x];
                if widest == 0 {
                    matcher.pass(x);
                } else {
                    let group = hashed(widest, GROUP_BITS);
                    let context = matcher.find(&memory, (y, x), group, 0);
                    // Rows 14 and on of the second copy see 4 rows of glyph above.
                    if (14..22).contains(&y) && (50..62).contains(&x) {
                        inside += 1;
                        let c = context.expect("a match inside the copy");
                        let (class, expected) = (c / 48, (c / 8) % 2);
                        assert_eq!((class, expected as u8), (0, bit), "({y}, {x})");
                    }
                    matcher.learn((y, x), group, context, bit);
                }
                memory.know(y, x, bit);
            }
        }
        // Every pixel of those rows was looked up: none had a blank neighbourhood.
        assert_eq!(inside, 8 * 12);
    }
}
