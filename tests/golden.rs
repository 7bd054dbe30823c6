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
//! - `golden-v3.vlz`: version 3, the built-in `mnist` and the tiny context model, 8 lanes:
//!   the images of `golden-v2.vlz` and a text-like page, each lane with the model (or
//!   fallback) that codes it smallest.
//! - `golden-v3-mnist.vlz`: version 3, the built-in `mnist` at default settings, 70 digits.
//! - `golden-v3-context.vlz`: version 3, chains of the tiny context model (context across
//!   tile borders) over two text-like pages, 3 lanes.
//! - `golden-v3-documents.vlz`: version 3, the first `documents` model's (`documents-1`) chain over a
//!   crop of a rendered text page (`page-crop.pbm`), 2 lanes.
//!
//! - `golden-v4*.vlz`: version 4 (tile classes in context), the same images and settings
//!   as the four version 3 files.
//!
//! - `golden-v5*.vlz`: version 5, the same images and settings as the four version 4
//!   files (the context file's chains with up to 3 importance samples), and
//!   `golden-v5-memory.vlz`: the built-in `documents` over a synthetic 800×704 page in one
//!   lane, with the page memory (format-spec.md §3.8) and 2 importance samples.
//!
//! - `golden-v6*.vlz`: version 6, the same images and settings as the five version 5
//!   files, and `golden-v6-mixing.vlz`: a synthetic 400×300 page whose one lane page mixing
//!   (format-spec.md §3.9) codes smallest.
//!
//! - `golden-v7*.vlz`: version 7, the same images and settings as the six version 6
//!   files; `golden-v7-mixing.vlz` codes its page with page mixing's second edition.
//!
//! - `golden-v8*.vlz`: version 8, the same images and settings as the six version 7
//!   files; `golden-v8-mixing.vlz` codes its page with page mixing's third edition.
//!
//! - `golden-v9*.vlz`: version 9, the same images and settings as the six version 8
//!   files; `golden-v9-mixing.vlz` codes its page with page mixing's fourth edition.
//!
//! - `golden-v10*.vlz`: version 10, the same images and settings as the six version 9
//!   files, and `golden-v10-skewed.vlz`: a synthetic 600×400 page of repeated glyphs,
//!   skewed by a rotation's shears, which the archive stores straightened (format-spec.md
//!   §1.7).
//!
//! - `golden-v11*.vlz`: version 11, the same images and settings as the seven version 10
//!   files; `golden-v11-mixing.vlz` and `golden-v11-skewed.vlz` code their page with page
//!   mixing's fifth edition.
//!
//! - `golden-v12*.vlz`: version 12, the same images and settings as the seven version 11
//!   files; `golden-v12-mixing.vlz` and `golden-v12-skewed.vlz` code their page with page
//!   mixing's sixth edition.
//!
//! Versions 1 to 11 can no longer be written. If version 12 ever changes, bump the version
//! and keep a decoder for this one; regenerate the version 12 files (only then) with
//! `cargo test --release --test golden -- --ignored`.

mod common;

use vlae_zip::archive::{self, CompressOptions, DEFAULT_LATENT_BITS};
use vlae_zip::container::{self, Entry, ImageFormat};
use vlae_zip::infer::network::Network;

/// The model whose files are `STEM.safetensors` and `STEM.json`.
fn load(stem: &str) -> Network {
    Network::load(
        format!("{stem}.safetensors").as_ref(),
        format!("{stem}.json").as_ref(),
    )
    .unwrap()
}

fn tiny() -> Network {
    load("tests/data/tiny")
}

fn tiny_context() -> Network {
    load("tests/data/tiny-context")
}

/// The first shipped MNIST model, now the retired built-in `mnist-1`: the model the
/// MNIST golden files of versions 1 and 2 were made with.
fn shipped() -> Network {
    load("models/vlae-mnist-1")
}

/// The built-in `mnist` model, the newest.
fn mnist() -> Network {
    load("models/vlae-mnist")
}

/// The built-in `documents` model, the newest.
fn documents() -> Network {
    load("models/vlae-documents")
}

/// The first documents model, now the retired built-in `documents-1`: the model
/// `golden-v3-documents.vlz` was made with.
fn documents_1() -> Network {
    load("models/vlae-documents-1")
}

fn listing(nets: &[&Network], archive: &str) -> String {
    let bytes = std::fs::read(archive).unwrap();
    let arch = container::parse(&bytes).expect("golden archive parses");
    let mut out = String::new();
    archive::decompress(
        nets,
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

fn check(nets: &[&Network], name: &str) {
    let want = std::fs::read_to_string(format!("tests/data/{name}.txt")).unwrap();
    assert_eq!(
        listing(nets, &format!("tests/data/{name}.vlz")),
        want,
        "{name}"
    );
}

#[test]
fn version_1_archives_decode_to_the_same_pixels() {
    check(&[&tiny()], "golden-v1");
    check(&[&shipped()], "golden-v1-mnist");
}

#[test]
fn version_2_archives_decode_to_the_same_pixels() {
    check(&[&shipped()], "golden-v2");
    check(&[&shipped()], "golden-v2-mnist");
}

#[test]
fn version_3_archives_decode_to_the_same_pixels() {
    check(&[&mnist(), &tiny_context()], "golden-v3");
    check(&[&mnist()], "golden-v3-mnist");
    check(&[&tiny_context()], "golden-v3-context");
    check(&[&documents_1()], "golden-v3-documents");
}

#[test]
fn version_4_archives_decode_to_the_same_pixels() {
    check(&[&mnist(), &tiny_context()], "golden-v4");
    check(&[&mnist()], "golden-v4-mnist");
    check(&[&tiny_context()], "golden-v4-context");
    check(&[&documents()], "golden-v4-documents");
}

#[test]
fn version_5_archives_decode_to_the_same_pixels() {
    check(&[&mnist(), &tiny_context()], "golden-v5");
    check(&[&mnist()], "golden-v5-mnist");
    check(&[&tiny_context()], "golden-v5-context");
    check(&[&documents()], "golden-v5-documents");
    check(&[&documents()], "golden-v5-memory");
}

/// Versions 6 to 10 each have the same six files, made from the same images with the same
/// settings: mixed sizes, digits, context chains, a page crop, the page memory and page
/// mixing.
fn check_six_files_of(version: u16) {
    let name = |suffix: &str| format!("golden-v{version}{suffix}");
    check(&[&mnist(), &tiny_context()], &name(""));
    check(&[&mnist()], &name("-mnist"));
    check(&[&tiny_context()], &name("-context"));
    check(&[&documents()], &name("-documents"));
    check(&[&documents()], &name("-memory"));
    check(&[], &name("-mixing"));
}

#[test]
fn version_6_archives_decode_to_the_same_pixels() {
    check_six_files_of(6);
}

#[test]
fn version_7_archives_decode_to_the_same_pixels() {
    check_six_files_of(7);
}

#[test]
fn version_8_archives_decode_to_the_same_pixels() {
    check_six_files_of(8);
}

#[test]
fn version_9_archives_decode_to_the_same_pixels() {
    check_six_files_of(9);
}

#[test]
fn version_10_archives_decode_to_the_same_pixels() {
    check_six_files_of(10);
    check(&[], "golden-v10-skewed");
}

#[test]
fn version_11_archives_decode_to_the_same_pixels() {
    check_six_files_of(11);
    check(&[], "golden-v11-skewed");
}

#[test]
fn version_12_archives_decode_to_the_same_pixels() {
    check_six_files_of(12);
    check(&[], "golden-v12-skewed");
}

fn digits(n: usize) -> Vec<Vec<u8>> {
    let flat =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    flat.chunks(784).take(n).map(<[u8]>::to_vec).collect()
}

/// The images of the mixed golden files: every size class the tiler has to get right.
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
                    skew: 0,
                },
                pixels,
            )
        })
        .unzip()
}

/// Default settings in one lane, each coded by whatever codes it smallest.
const ONE_LANE_SMALLEST: CompressOptions = CompressOptions {
    latent_bits: DEFAULT_LATENT_BITS,
    adapt_latent_bits: false,
    lanes: Some(1),
    coders: vlae_zip::archive::LaneCoders::Smallest,
    samples: 1,
};

/// Writes `tests/data/NAME.vlz` and its listing.
fn write_golden(
    name: &str,
    nets: &[&Network],
    entries: &[Entry],
    images: &[Vec<u8>],
    opts: CompressOptions,
) {
    let bytes = archive::compress(nets, entries, images, opts, &|_| {}).unwrap();
    let path = format!("tests/data/{name}.vlz");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(format!("tests/data/{name}.txt"), listing(nets, &path)).unwrap();
}

#[test]
#[ignore = "regenerates the version 12 golden files; run only when the format version changes"]
fn regenerate_version_12_golden_files() {
    let (mut entries, mut images) = mixed();
    // A text-like page, which the context model codes.
    entries.push(Entry {
        name: "z/text.pbm".into(),
        format: ImageFormat::Pbm,
        width: 90,
        height: 70,
        skew: 0,
    });
    images.push(common::text_page(90, 70, 1));
    let nets = [&mnist(), &tiny_context()];
    // Eight lanes: the noise image gets a lane of its own, which must be stored.
    write_golden(
        "golden-v12",
        &nets,
        &entries,
        &images,
        CompressOptions {
            latent_bits: 8,
            adapt_latent_bits: false,
            lanes: Some(8),
            coders: vlae_zip::archive::LaneCoders::Smallest,
            samples: 1,
        },
    );

    let images = digits(70);
    let entries: Vec<Entry> = (0..70)
        .map(|i| Entry {
            name: format!("{i:05}.pbm"),
            format: ImageFormat::Pbm,
            width: 28,
            height: 28,
            skew: 0,
        })
        .collect();
    write_golden(
        "golden-v12-mnist",
        &[&mnist()],
        &entries,
        &images,
        CompressOptions {
            latent_bits: DEFAULT_LATENT_BITS,
            adapt_latent_bits: false,
            lanes: None,
            coders: vlae_zip::archive::LaneCoders::Smallest,
            samples: 1,
        },
    );

    let sizes = [(90u32, 70u32), (33, 17)];
    let entries: Vec<Entry> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(width, height))| Entry {
            name: format!("page{i}.pbm"),
            format: ImageFormat::Pbm,
            width,
            height,
            skew: 0,
        })
        .collect();
    let images: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&(w, h)| common::text_page(w as usize, h as usize, 2))
        .collect();
    write_golden(
        "golden-v12-context",
        &[&tiny_context()],
        &entries,
        &images,
        CompressOptions {
            latent_bits: DEFAULT_LATENT_BITS,
            adapt_latent_bits: false,
            lanes: Some(3),
            coders: vlae_zip::archive::LaneCoders::BitsBack,
            samples: 3,
        },
    );

    let (page, _) = vlae_zip::image_io::read_image("tests/data/page-crop.pbm".as_ref()).unwrap();
    let entry = Entry {
        name: "page-crop.pbm".into(),
        format: ImageFormat::Pbm,
        width: page.width as u32,
        height: page.height as u32,
        skew: 0,
    };
    write_golden(
        "golden-v12-documents",
        &[&documents()],
        &[entry],
        &[page.pixels],
        CompressOptions {
            latent_bits: DEFAULT_LATENT_BITS,
            adapt_latent_bits: false,
            lanes: Some(2),
            coders: vlae_zip::archive::LaneCoders::BitsBack,
            samples: 1,
        },
    );

    // A lane too large to be tried without the memory.
    let (w, h) = (800, 704);
    write_golden(
        "golden-v12-memory",
        &[&documents()],
        &[Entry {
            name: "page.pbm".into(),
            format: ImageFormat::Pbm,
            width: w as u32,
            height: h as u32,
            skew: 0,
        }],
        &[common::text_page(w, h, 5)],
        CompressOptions {
            latent_bits: DEFAULT_LATENT_BITS,
            adapt_latent_bits: false,
            lanes: Some(1),
            coders: vlae_zip::archive::LaneCoders::BitsBack,
            samples: 2,
        },
    );

    // A page large enough for page mixing, which codes it smallest.
    let (w, h) = (400, 300);
    write_golden(
        "golden-v12-mixing",
        &[&mnist()],
        &[Entry {
            name: "page.pbm".into(),
            format: ImageFormat::Pbm,
            width: w as u32,
            height: h as u32,
            skew: 0,
        }],
        &[common::text_page(w, h, 6)],
        ONE_LANE_SMALLEST,
    );

    // A skewed page of repeated glyphs, stored straightened.
    let (w, h) = (600, 400);
    let level = common::glyph_page(w, h, 3);
    write_golden(
        "golden-v12-skewed",
        &[&mnist()],
        &common::entries_for(&[(w as u32, h as u32)]),
        &[vlae_zip::skew::restore(level, w, h, -10_799)],
        ONE_LANE_SMALLEST,
    );
}

#[test]
fn the_mixed_golden_files_exercise_every_coder_and_mixed_sizes() {
    for (name, version) in [
        ("golden-v2", 2),
        ("golden-v3", 3),
        ("golden-v4", 4),
        ("golden-v5", 5),
        ("golden-v6", 6),
        ("golden-v7", 7),
        ("golden-v8", 8),
        ("golden-v9", 9),
        ("golden-v10", 10),
        ("golden-v11", 11),
        ("golden-v12", 12),
    ] {
        let bytes = std::fs::read(format!("tests/data/{name}.vlz")).unwrap();
        let arch = container::parse(&bytes).unwrap();
        assert_eq!(arch.version, version);
        let has = |f: &dyn Fn(container::LaneCoder) -> bool| arch.lanes.iter().any(|l| f(l.coder));
        assert!(has(&|c| c == container::LaneCoder::Stored), "{name}");
        assert!(
            has(&|c| matches!(c, container::LaneCoder::Context { .. })),
            "{name}"
        );
        assert!(
            has(&|c| matches!(c, container::LaneCoder::BitsBack { .. })),
            "{name}"
        );
        let sizes: std::collections::BTreeSet<_> =
            arch.entries().map(|e| (e.width, e.height)).collect();
        assert!(sizes.len() >= 6, "{name}: {sizes:?}");
    }
}

/// The version 5 memory file codes its lane with the page memory and importance samples,
/// so that that path keeps decoding.
#[test]
fn the_version_5_golden_files_exercise_the_page_memory() {
    let bytes = std::fs::read("tests/data/golden-v5-memory.vlz").unwrap();
    let arch = container::parse(&bytes).unwrap();
    assert!(matches!(
        arch.lanes[..],
        [container::Lane {
            coder: container::LaneCoder::BitsBack {
                memory: true,
                samples: 2,
                ..
            },
            ..
        }]
    ));
}

/// The version 6 to 12 mixing files code their lane with page mixing's first, second,
/// third, fourth (twice), fifth and sixth editions, so that every path keeps decoding.
#[test]
fn the_version_6_to_12_golden_files_exercise_page_mixing() {
    use vlae_zip::codec::context::{
        PAGE_MIXING, PAGE_MIXING_FIFTH_EDITION, PAGE_MIXING_FIRST_EDITION,
        PAGE_MIXING_FOURTH_EDITION, PAGE_MIXING_SECOND_EDITION, PAGE_MIXING_THIRD_EDITION,
    };
    for (version, template) in [
        (6, PAGE_MIXING_FIRST_EDITION),
        (7, PAGE_MIXING_SECOND_EDITION),
        (8, PAGE_MIXING_THIRD_EDITION),
        (9, PAGE_MIXING_FOURTH_EDITION),
        (10, PAGE_MIXING_FOURTH_EDITION),
        (11, PAGE_MIXING_FIFTH_EDITION),
        (12, PAGE_MIXING),
    ] {
        let bytes = std::fs::read(format!("tests/data/golden-v{version}-mixing.vlz")).unwrap();
        let arch = container::parse(&bytes).unwrap();
        assert_eq!(arch.version, version);
        assert_eq!(
            arch.lanes.iter().map(|l| l.coder).collect::<Vec<_>>(),
            [container::LaneCoder::Context { template }]
        );
    }
}

/// The skewed golden files store their page straightened, so that the shears keep
/// decoding.
#[test]
fn the_skewed_golden_files_store_their_page_straightened() {
    for name in [
        "golden-v10-skewed",
        "golden-v11-skewed",
        "golden-v12-skewed",
    ] {
        let bytes = std::fs::read(format!("tests/data/{name}.vlz")).unwrap();
        let arch = container::parse(&bytes).unwrap();
        let skews: Vec<i32> = arch.entries().map(|e| e.skew).collect();
        assert!(matches!(skews[..], [s] if s != 0), "{name}: {skews:?}");
    }
}
