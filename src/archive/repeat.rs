//! Images that repeat earlier ones: found before anything is coded, and stored as repeat
//! lanes (format-spec.md §3.13), which cost a record whatever the images' size. A folder
//! of eight copies of one scanned page came to 18% more than `xz -9e` of the same files
//! before, glyph matching coding each copy in about a quarter of the page's bytes; xz
//! codes a copy for under a hundred bytes.

use super::{plan_lanes, Segment};
use crate::container::{Lane, LaneCoder};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;

/// Consecutive images that repeat earlier ones, each the same number of places back, are
/// stored so only from this many pixels on: every repeat run cuts the lanes about it, and
/// the lane after it starts learning afresh, which costs a bits-back lane a few hundred
/// bits and page mixing a few per cent of what it codes next. A run of 21 digits saves
/// about 2,000 bits; one page, thousands of bytes.
pub(super) const REPEAT_MIN_PIXELS: u64 = 1 << 14;

/// An image repeats one at most this many pixels before it (the source's and those
/// between): a decoder keeps each repeated image until its last copy, so this bounds what
/// it keeps, 64 MiB at a byte a pixel (eight 8-Mpx scans, or 85,000 digits).
pub const REPEAT_WINDOW_PIXELS: u64 = 1 << 26;

/// A stretch of the input: images to code, or a run that repeats earlier images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Stretch {
    Coded(Range<usize>),
    Repeat { images: Range<usize>, back: usize },
}

/// The input cut into stretches, in order: runs of at least [`REPEAT_MIN_PIXELS`] pixels
/// whose every image equals (size and pixels) the image `back` places before it, within
/// [`REPEAT_WINDOW_PIXELS`], and the images between them, to be coded.
pub(super) fn stretches<P: AsRef<[u8]> + Sync>(
    shapes: &[(usize, usize)],
    images: &[P],
) -> Vec<Stretch> {
    let hashes: Vec<u64> = images
        .par_iter()
        .zip(shapes)
        .map(|(pixels, shape)| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (shape, pixels.as_ref()).hash(&mut hasher);
            hasher.finish()
        })
        .collect();
    // Pixels before each image, and after the last.
    let before: Vec<u64> = std::iter::once(0)
        .chain(shapes.iter().scan(0u64, |sum, &(w, h)| {
            *sum += (w * h) as u64;
            Some(*sum)
        }))
        .collect();
    let same = |a: usize, b: usize| {
        before[b] - before[a] <= REPEAT_WINDOW_PIXELS
            && hashes[a] == hashes[b]
            && shapes[a] == shapes[b]
            && images[a].as_ref() == images[b].as_ref()
    };
    let mut latest: HashMap<u64, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut coded_from = 0;
    // The repeat run being extended: (first image, back).
    let mut run: Option<(usize, usize)> = None;
    let mut close = |run: Option<(usize, usize)>, end: usize, coded_from: &mut usize| {
        let Some((first, back)) = run else { return };
        let pixels: u64 = shapes[first..end]
            .iter()
            .map(|&(w, h)| (w * h) as u64)
            .sum();
        if pixels >= REPEAT_MIN_PIXELS {
            if *coded_from < first {
                out.push(Stretch::Coded(*coded_from..first));
            }
            out.push(Stretch::Repeat {
                images: first..end,
                back,
            });
            *coded_from = end;
        }
    };
    for (image, &hash) in hashes.iter().enumerate() {
        let continues = run.is_some_and(|(_, back)| image >= back && same(image - back, image));
        if !continues {
            close(run.take(), image, &mut coded_from);
            run = latest
                .get(&hash)
                .filter(|&&source| same(source, image))
                .map(|&source| (image, image - source));
        }
        latest.insert(hash, image);
    }
    close(run, images.len(), &mut coded_from);
    if coded_from < images.len() {
        out.push(Stretch::Coded(coded_from..images.len()));
    }
    out
}

/// The repeat lanes of images of `shapes` that repeat those `back` places before them:
/// as few as the per-lane limits allow.
pub(super) fn repeat_lanes(shapes: &[(usize, usize)], back: usize) -> Vec<Lane<Vec<u8>>> {
    plan_lanes(shapes, 1, 1)
        .iter()
        .map(|lane| Lane {
            coder: LaneCoder::Repeat { back: back as u64 },
            rows: lane.iter().map(|s: &Segment| s.rows as u64).sum(),
            seed_words_elided: 0,
            state: 0,
            payload: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seed: u8) -> Vec<u8> {
        (0..200 * 100)
            .map(|i| u8::from((i * 7 + usize::from(seed)) % 13 == 0))
            .collect()
    }

    /// Pages repeated at one distance form one run; a repeat too small to pay for its
    /// cut is coded; a page like another in pixels but not in size is no repeat.
    #[test]
    fn runs_of_repeats_are_found_and_small_ones_coded() {
        let (a, b, c) = (page(0), page(1), page(2));
        let digit = vec![1u8; 28 * 28];
        let images = [&a, &b, &a, &b, &c, &digit, &digit, &c, &a];
        let mut shapes = vec![(200, 100); 9];
        (shapes[5], shapes[6]) = ((28, 28), (28, 28));
        assert_eq!(
            stretches(&shapes, &images),
            [
                Stretch::Coded(0..2),
                Stretch::Repeat {
                    images: 2..4,
                    back: 2
                },
                Stretch::Coded(4..7),
                Stretch::Repeat {
                    images: 7..8,
                    back: 3
                },
                Stretch::Repeat {
                    images: 8..9,
                    back: 6
                },
            ]
        );
        // The same pixels as another size are coded.
        shapes[2] = (100, 200);
        assert_eq!(
            stretches(&shapes, &images)[..2],
            [
                Stretch::Coded(0..3),
                Stretch::Repeat {
                    images: 3..4,
                    back: 2
                }
            ]
        );
    }

    /// A copy further back than the window is coded: the decoder would keep too much.
    #[test]
    fn copies_beyond_the_window_are_coded() {
        // Only the shapes count toward the window; the middle image's pixels do not matter.
        let (a, b) = (page(0), page(1));
        let images = [&a, &b, &a];
        let fits = [(200, 100), (4096, 4096), (200, 100)];
        assert_eq!(
            stretches(&fits, &images)[1],
            Stretch::Repeat {
                images: 2..3,
                back: 2
            }
        );
        let far = [(200, 100), (8192, 8192), (200, 100)];
        assert_eq!(stretches(&far, &images), [Stretch::Coded(0..3)]);
    }

    /// A repeat larger than a lane's pixels is cut into lanes within the limit.
    #[test]
    fn a_large_repeat_is_cut_into_lanes_within_the_limit() {
        let lanes = repeat_lanes(&[(8192, 4096), (8192, 4096)], 2);
        assert_eq!(lanes.len(), 4);
        assert!(lanes.iter().all(|l| l.rows == 2048 && l.payload.is_empty()));
        assert!(lanes
            .iter()
            .all(|l| l.coder == LaneCoder::Repeat { back: 2 }));
    }
}
