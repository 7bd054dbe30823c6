//! Property tests: any bi-level image of any size survives the coder, and no byte string
//! makes the container parser panic or decode run away.

mod common;

use common::*;
use proptest::prelude::*;
use vlae_zip::container;

/// Images of any size up to 3×3 tiles and any ink density, from empty to full.
fn image() -> impl Strategy<Value = (u32, u32, Vec<u8>)> {
    (1u32..70, 1u32..70, 0u32..=100).prop_flat_map(|(w, h, density)| {
        proptest::collection::vec(
            (0u32..100).prop_map(move |r| u8::from(r < density)),
            (w * h) as usize,
        )
        .prop_map(move |p| (w, h, p))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_images_round_trip(images in proptest::collection::vec(image(), 1..4), lanes in 1usize..4) {
        let sizes: Vec<(u32, u32)> = images.iter().map(|(w, h, _)| (*w, *h)).collect();
        let pixels: Vec<Vec<u8>> = images.into_iter().map(|(_, _, p)| p).collect();
        round_trip(tiny(), &entries_for(&sizes), &pixels, Some(lanes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Straightening moves pixels within rows and columns only, cyclically, so any image
    /// comes back from any slope the format allows.
    #[test]
    fn straightening_is_undone_at_any_slope(
        (w, h, pixels) in image(),
        skew in -i64::from(container::MAX_SKEW)..=i64::from(container::MAX_SKEW),
    ) {
        let (w, h) = (w as usize, h as usize);
        let stored = vlae_zip::skew::straighten(&pixels, w, h, skew);
        prop_assert_eq!(vlae_zip::skew::restore(stored, w, h, skew), pixels);
    }
}

/// Random bytes behind a valid magic and version, so that they reach the checks after it.
fn after_magic(version: u16) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_map(move |tail| {
        let mut b = container::MAGIC.to_vec();
        b.extend_from_slice(&version.to_le_bytes());
        b.extend(tail);
        b
    })
}

/// Rewrites the trailing CRC so that edited bytes reach the structural checks behind it.
fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 4 {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = container::parse(&bytes);
    }

    #[test]
    fn parser_never_panics_behind_the_magic(v1 in after_magic(1), v2 in after_magic(2)) {
        let _ = container::parse(&reseal(v1));
        let _ = container::parse(&reseal(v2));
    }

    /// Mutations of valid archives with the checksum recomputed: whatever parses must
    /// decode or fail cleanly, never panic.
    #[test]
    fn mutated_archives_parse_and_decode_or_fail_cleanly(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let file = [
            "tests/data/golden-v1.vlz",
            "tests/data/golden-v2.vlz",
            "tests/data/golden-v10-skewed.vlz",
            "tests/data/golden-v11-mixing.vlz",
            "tests/data/golden-v12-mixing.vlz",
        ][which];
        let mut b = std::fs::read(file).unwrap();
        for (at, v) in edits {
            let i = at % b.len();
            b[i] = v;
        }
        b.truncate(12 + cut % (b.len() - 11));
        let b = reseal(b);
        if container::parse(&b).is_ok() {
            let _ = decode(&[tiny()], &b);
        }
    }
}
