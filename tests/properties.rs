//! Property tests: any bi-level image survives the coder, and no byte string makes the
//! container parser panic.

use proptest::prelude::*;
use vlae_zip::codec::bitsback::BitsBack;
use vlae_zip::container;
use vlae_zip::geometry::PIXELS;
use vlae_zip::infer::network::Network;

fn tiny() -> &'static Network {
    static NET: std::sync::OnceLock<Network> = std::sync::OnceLock::new();
    NET.get_or_init(|| {
        Network::load(
            "tests/data/tiny.safetensors".as_ref(),
            "tests/data/tiny.json".as_ref(),
        )
        .unwrap()
    })
}

/// Images of any ink density, from empty to full.
fn image() -> impl Strategy<Value = Vec<u8>> {
    (0u32..=100).prop_flat_map(|density| {
        proptest::collection::vec((0u32..100).prop_map(move |r| u8::from(r < density)), PIXELS)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_images_round_trip(images in proptest::collection::vec(image(), 1..4), bits in 2u32..=12) {
        let bb = BitsBack::new(tiny(), bits);
        let lane = bb.compress_lane(&images).unwrap();
        prop_assert_eq!(bb.decompress_lane(&lane, 0).unwrap(), images);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = container::parse(&bytes);
    }

    /// Mutations of a valid archive with the checksum recomputed, so that they reach the
    /// structural checks behind it.
    #[test]
    fn parser_never_panics_on_resealed_mutations(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut b = std::fs::read("tests/data/golden.vlz").unwrap();
        for (at, v) in edits {
            let i = at % b.len();
            b[i] = v;
        }
        b.truncate(container::HEADER_LEN + cut % (b.len() - container::HEADER_LEN + 1));
        if b.len() >= 4 {
            let n = b.len() - 4;
            let crc = crc32fast::hash(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
        }
        if let Ok(arch) = container::parse(&b) {
            // Whatever parses must decode or fail cleanly, never panic.
            let _ = vlae_zip::archive::decompress(tiny(), &arch, &|_| {});
        }
    }
}
