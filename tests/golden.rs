//! Committed archives made by earlier builds must keep decoding to the same images.
//!
//! Each `tests/data/golden-*.vlz` has a `.txt` beside it listing, per decoded image, its
//! name, format, size and the CRC-32 of its pixels (one byte, 0 or 1, per pixel): pixels,
//! not re-encoded files, so that a png or flate2 upgrade cannot break a golden file
//! without a format change.
//!
//! - `golden-v1.vlz`: version 1, 40 test digits in every format, tiny model, 3 lanes.
//! - `golden-v1-mnist.vlz`: version 1, the first shipped model (`mnist-1`) at default
//!   settings, 70 digits.
//! - `golden-v2.vlz`: version 2, `mnist-1`, 8 lanes: mixed sizes from 1×1 to
//!   200×200, blank tiles, nested names, and lanes of all three coders (bits-back for 40
//!   digits, the context model, stored bits for a noise image).
//! - `golden-v2-mnist.vlz`: version 2, `mnist-1` at default settings, 70 digits.
//!
//! Version 1 files can no longer be written. If version 2 ever changes, bump the version
//! and keep a decoder for this one; regenerate the version 2 files (only then) with
//! `cargo test --release --test golden -- --ignored`.

use vlae_zip::archive::{self, CompressOptions, DEFAULT_LATENT_BITS};
use vlae_zip::container::{self, Entry, ImageFormat};
use vlae_zip::infer::network::Network;

fn tiny() -> Network {
    Network::load(
        "tests/data/tiny.safetensors".as_ref(),
        "tests/data/tiny.json".as_ref(),
    )
    .unwrap()
}

/// The first shipped MNIST model, now the retired built-in `mnist-1`: the model the
/// MNIST golden files were made with.
fn shipped() -> Network {
    Network::load(
        "models/vlae-mnist-1.safetensors".as_ref(),
        "models/vlae-mnist-1.json".as_ref(),
    )
    .unwrap()
}

fn listing(net: &Network, archive: &str) -> String {
    let bytes = std::fs::read(archive).unwrap();
    let arch = container::parse(&bytes).expect("golden archive parses");
    let mut out = String::new();
    archive::decompress(
        &[net],
        &arch,
        &mut |e: Entry, pixels: Vec<u8>| -> Result<(), archive::ArchiveError> {
            out += &format!(
                "{} {:?} {}x{} {:08x}\n",
                e.name,
                e.format,
                e.width,
                e.height,
                crc32fast::hash(&pixels)
            );
            Ok(())
        },
        &|_| {},
    )
    .expect("golden archive decodes");
    out
}

fn check(net: &Network, name: &str) {
    let want = std::fs::read_to_string(format!("tests/data/{name}.txt")).unwrap();
    assert_eq!(
        listing(net, &format!("tests/data/{name}.vlz")),
        want,
        "{name}"
    );
}

#[test]
fn version_1_archives_decode_to_the_same_pixels() {
    check(&tiny(), "golden-v1");
    check(&shipped(), "golden-v1-mnist");
}

#[test]
fn version_2_archives_decode_to_the_same_pixels() {
    check(&shipped(), "golden-v2");
    check(&shipped(), "golden-v2-mnist");
}

fn digits(n: usize) -> Vec<Vec<u8>> {
    let flat =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    flat.chunks(784).take(n).map(<[u8]>::to_vec).collect()
}

/// The images of `golden-v2.vlz`: every size class the tiler has to get right.
fn mixed() -> (Vec<Entry>, Vec<Vec<u8>>) {
    let d = digits(44);
    let mut noise_state = 0x2545_f491_4f6c_dd1du64;
    let mut noise = || {
        noise_state ^= noise_state << 13;
        noise_state ^= noise_state >> 7;
        noise_state ^= noise_state << 17;
        (noise_state & 1) as u8
    };
    let mut page = vec![0u8; 61 * 45];
    for y in 0..45 {
        for x in 0..61 {
            page[y * 61 + x] = d[(x / 28 + y / 28) % 4][(y % 28) * 28 + x % 28];
        }
    }
    let mut images: Vec<(String, ImageFormat, u32, u32, Vec<u8>)> = vec![
        ("a/one.pbm".into(), ImageFormat::Pbm, 1, 1, vec![1]),
        (
            "a/row.png".into(),
            ImageFormat::PngGray { bit_depth: 1 },
            40,
            1,
            (0..40).map(|i| (i % 3 == 0) as u8).collect(),
        ),
        ("b/black.pbm".into(), ImageFormat::Pbm, 28, 28, vec![1; 784]),
        (
            "b/digit.png".into(),
            ImageFormat::PngGray { bit_depth: 8 },
            28,
            28,
            d[0].clone(),
        ),
        ("b/page.pbm".into(), ImageFormat::Pbm, 61, 45, page),
        (
            "b/white.png".into(),
            ImageFormat::PngGray { bit_depth: 16 },
            40,
            40,
            vec![0; 1600],
        ),
        (
            "c/column.pbm".into(),
            ImageFormat::Pbm,
            1,
            30,
            (0..30).map(|i| (i % 2) as u8).collect(),
        ),
        (
            "z/noise.pbm".into(),
            ImageFormat::Pbm,
            200,
            200,
            (0..40_000).map(|_| noise()).collect(),
        ),
    ];
    // Forty digits, enough for lanes that the bits-back chain wins.
    for i in 0..40 {
        let pixels = d[4 + i].clone();
        images.push((format!("d/{i:02}.pbm"), ImageFormat::Pbm, 28, 28, pixels));
    }
    images.sort_by(|a, b| a.0.cmp(&b.0));
    images
        .into_iter()
        .map(|(name, format, width, height, pixels)| {
            (
                Entry {
                    name,
                    format,
                    width,
                    height,
                },
                pixels,
            )
        })
        .unzip()
}

#[test]
#[ignore = "regenerates the version 2 golden files; run only when the format version changes"]
fn regenerate_version_2_golden_files() {
    let (entries, images) = mixed();
    // Eight lanes: the noise image gets a lane of its own, which must be stored.
    let bytes = archive::compress(
        &[&shipped()],
        &entries,
        &images,
        CompressOptions {
            latent_bits: 8,
            lanes: Some(8),
            coders: vlae_zip::archive::LaneCoders::Smallest,
            samples: 1,
        },
        &|_| {},
    )
    .unwrap();
    std::fs::write("tests/data/golden-v2.vlz", &bytes).unwrap();
    std::fs::write(
        "tests/data/golden-v2.txt",
        listing(&shipped(), "tests/data/golden-v2.vlz"),
    )
    .unwrap();

    let images = digits(70);
    let entries: Vec<Entry> = (0..70)
        .map(|i| Entry {
            name: format!("{i:05}.pbm"),
            format: ImageFormat::Pbm,
            width: 28,
            height: 28,
        })
        .collect();
    let bytes = archive::compress(
        &[&shipped()],
        &entries,
        &images,
        CompressOptions {
            latent_bits: DEFAULT_LATENT_BITS,
            lanes: None,
            coders: vlae_zip::archive::LaneCoders::Smallest,
            samples: 1,
        },
        &|_| {},
    )
    .unwrap();
    std::fs::write("tests/data/golden-v2-mnist.vlz", &bytes).unwrap();
    std::fs::write(
        "tests/data/golden-v2-mnist.txt",
        listing(&shipped(), "tests/data/golden-v2-mnist.vlz"),
    )
    .unwrap();
}

#[test]
fn the_v2_golden_file_exercises_every_coder_and_mixed_sizes() {
    let bytes = std::fs::read("tests/data/golden-v2.vlz").unwrap();
    let arch = container::parse(&bytes).unwrap();
    let has = |f: &dyn Fn(container::LaneCoder) -> bool| arch.lanes.iter().any(|l| f(l.coder));
    assert!(has(&|c| c == container::LaneCoder::Stored));
    assert!(has(&|c| matches!(c, container::LaneCoder::Context { .. })));
    assert!(has(&|c| matches!(c, container::LaneCoder::BitsBack { .. })));
    let sizes: std::collections::BTreeSet<_> =
        arch.entries().map(|e| (e.width, e.height)).collect();
    assert!(sizes.len() >= 6, "{sizes:?}");
}
