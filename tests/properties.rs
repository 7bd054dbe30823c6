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

/// Random bytes behind a valid signature and version, so that they reach the checks
/// after it.
fn after_signature() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_map(move |tail| {
        let mut b = container::SIGNATURE.to_vec();
        b.push(container::VERSION);
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

/// The golden archives, one per coder and layout, which the mutations start from.
const GOLDEN: [&str; 10] = [
    "mixed.vlz",
    "narrow.vlz",
    "mnist.vlz",
    "context.vlz",
    "documents.vlz",
    "memory.vlz",
    "mixing.vlz",
    "formats.vlz",
    "repeat.vlz",
    "zstd.vlz",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = container::parse(&bytes);
    }

    #[test]
    fn parser_never_panics_behind_the_signature(bytes in after_signature()) {
        let _ = container::parse(&reseal(bytes));
    }

    /// Mutations of valid archives with the checksum recomputed: whatever parses must
    /// decode or fail cleanly, never panic.
    #[test]
    fn mutated_archives_parse_and_decode_or_fail_cleanly(
        which in 0usize..GOLDEN.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut b = std::fs::read(format!("tests/data/golden/{}", GOLDEN[which])).unwrap();
        for (at, v) in edits {
            let i = at % b.len();
            b[i] = v;
        }
        b.truncate(12 + cut % (b.len() - 11));
        let b = reseal(b);
        if container::parse(&b).is_ok() {
            let _ = decode(&[tiny(), tiny_context(), shipped()], &b);
        }
    }
}
