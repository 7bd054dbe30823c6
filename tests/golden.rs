//! Committed archives must keep decoding to the same images, forever: format 1 is a
//! promise.
//!
//! `tests/data/golden/` holds one archive per coder of the registry and layout, and one
//! manifest, `results.txt`, that lists per archive and per decoded image its name, file
//! format, size and the CRC-32 of its pixels (one byte, 0 or 1, per pixel): pixels, not
//! re-encoded files, so that a png or flate2 upgrade cannot break a golden file without a
//! format change. The test walks the manifest, and checks that between them the archives
//! use every row of the coder registry.
//!
//! - `mixed.vlz`: the built-in `mnist` and the tiny context model, 8 lanes: sizes from 1×1
//!   to 200×200, blank tiles, nested names, every file format, and lanes of the chain, the
//!   context model and stored bits (a noise image).
//! - `narrow.vlz`: one lane of short rows, which the 10-pixel template codes smallest.
//! - `mnist.vlz`: the built-in `mnist` at default settings, 70 digits.
//! - `context.vlz`: chains of the tiny context model (context across tile borders) over two
//!   text-like pages, 3 lanes, with up to 3 importance samples.
//! - `documents.vlz`: the built-in `documents` chain over a crop of a rendered text page
//!   (`page-crop.pbm`), 2 lanes.
//! - `memory.vlz`: the built-in `documents` over a synthetic 800×704 page in one lane, with
//!   the page memory (format-spec.md §3.8) and 2 importance samples.
//! - `mixing.vlz`: a synthetic 400×300 page whose one lane page mixing (format-spec.md
//!   §3.9) codes smallest.
//! - `formats.vlz`: five digits, one in each file format of the entry table (§1.1): palette
//!   PNG, grey PNG, PBM, and two pages of one TIFF.
//! - `mixing-second.vlz`: a synthetic 400×300 page in one lane of page mixing's second
//!   edition (§3.10), which the compressor wrote when that row was added.
//! - `mixing-third.vlz`: the same kind of page in page mixing's third edition (§3.11),
//!   which the compressor wrote when that row was added.
//! - `mixing-fourth.vlz`: the same kind of page in page mixing's fourth edition (§3.12),
//!   which the compressor writes since that row was added.
//! - `repeat.vlz`: two text-like pages, then both again, as one repeat lane (§3.13).
//! - `zstd.vlz`: a page of one tile of sparse dots over and over, which a Zstandard frame
//!   (§3.14) codes smallest.
//!
//! A golden file is never rewritten: `cargo test --release --test golden -- --ignored`
//! writes only those missing from the folder (a new registry row's), and the manifest
//! from all of them.

mod common;

use std::collections::BTreeSet;
use vlae_zip::archive::{self, CompressOptions, DEFAULT_LATENT_BITS};
use vlae_zip::container::{self, Entry, ImageFormat, LaneCoder, REGISTRY};
use vlae_zip::infer::network::Network;

const DIR: &str = "tests/data/golden";
const MANIFEST: &str = "tests/data/golden/results.txt";

/// The model whose files are `STEM.safetensors` and `STEM.json`.
fn load(stem: &str) -> Network {
    Network::load(
        format!("{stem}.safetensors").as_ref(),
        format!("{stem}.json").as_ref(),
    )
    .unwrap()
}

fn tiny_context() -> Network {
    load("tests/data/tiny-context")
}

/// The built-in `mnist` model.
fn mnist() -> Network {
    load("models/vlae-mnist")
}

/// The built-in `documents` model.
fn documents() -> Network {
    load("models/vlae-documents")
}

/// Every model a golden archive may name.
fn all_models() -> Vec<Network> {
    vec![mnist(), documents(), tiny_context()]
}

/// The manifest's lines for one archive: a `== NAME` header, then one line per image.
fn listing(nets: &[&Network], name: &str) -> String {
    let bytes = std::fs::read(format!("{DIR}/{name}")).unwrap();
    let arch = container::parse(&bytes).expect("golden archive parses");
    let mut out = format!("== {name}\n");
    archive::decompress(
        nets,
        &arch,
        &mut |e: Entry, pixels: Vec<u8>| -> Result<(), archive::ArchiveError> {
            out += &format!(
                "{} {} {}x{} {:08x}\n",
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

/// The archives the manifest names, in its order.
fn manifest_archives() -> Vec<String> {
    std::fs::read_to_string(MANIFEST)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("== ").map(str::to_owned))
        .collect()
}

#[test]
fn every_golden_archive_decodes_to_the_manifests_pixels() {
    let models = all_models();
    let nets: Vec<&Network> = models.iter().collect();
    let archives = manifest_archives();
    assert!(archives.len() >= 8, "{archives:?}");
    let decoded: String = archives.iter().map(|a| listing(&nets, a)).collect();
    assert_eq!(decoded, std::fs::read_to_string(MANIFEST).unwrap());
}

/// Between them, the golden archives use every coder of the registry and every file
/// format, so that each keeps decoding; and every file in the folder is in the manifest.
#[test]
fn the_golden_archives_cover_the_registry() {
    let (mut used, mut formats) = (BTreeSet::new(), BTreeSet::new());
    for name in manifest_archives() {
        let bytes = std::fs::read(format!("{DIR}/{name}")).unwrap();
        let arch = container::parse(&bytes).unwrap();
        used.extend(arch.lanes.iter().map(|l| l.coder.id()));
        formats.extend(arch.entries().map(|e| e.format.code().0));
        if name == "memory.vlz" {
            assert!(arch.lanes.iter().all(|l| matches!(
                l.coder,
                LaneCoder::BitsBack {
                    memory: true,
                    samples: 2,
                    ..
                }
            )));
        }
    }
    let all: BTreeSet<u8> = REGISTRY.iter().map(|r| r.id).collect();
    assert_eq!(used, all);
    // Every file format code of the entry table (§1.1), none past them.
    assert_eq!(formats, (0..=3).collect::<BTreeSet<u8>>());
    assert!(container::ImageFormat::from_code(4, 0).is_none());
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".vlz"))
        .collect();
    files.sort();
    let mut listed = manifest_archives();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn the_mixed_golden_archive_has_mixed_sizes() {
    let bytes = std::fs::read(format!("{DIR}/mixed.vlz")).unwrap();
    let arch = container::parse(&bytes).unwrap();
    let sizes: BTreeSet<_> = arch.entries().map(|e| (e.width, e.height)).collect();
    assert!(sizes.len() >= 6, "{sizes:?}");
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

/// Writes `tests/data/golden/NAME` unless it is there already, and returns its manifest
/// lines.
fn write_golden(
    name: &str,
    nets: &[&Network],
    entries: &[Entry],
    images: &[Vec<u8>],
    opts: CompressOptions,
) -> String {
    let path = format!("{DIR}/{name}");
    if !std::path::Path::new(&path).exists() {
        let bytes = archive::compress(nets, entries, images, opts, &|_| {}).unwrap();
        std::fs::write(path, &bytes).unwrap();
    }
    listing(nets, name)
}

/// A 400×300 text-like page of seed `seed` in one lane, which page mixing codes smallest,
/// as `tests/data/golden/NAME`; its manifest lines.
fn write_mixing_golden(name: &str, seed: u64) -> String {
    let (w, h) = (400, 300);
    write_golden(
        name,
        &[&mnist()],
        &[Entry {
            name: "page.pbm".into(),
            format: ImageFormat::Pbm,
            width: w as u32,
            height: h as u32,
        }],
        &[common::text_page(w, h, seed)],
        ONE_LANE_SMALLEST,
    )
}

#[test]
#[ignore = "writes the golden files that are missing, and the manifest"]
fn write_missing_golden_files() {
    std::fs::create_dir_all(DIR).unwrap();
    let mut manifest = String::new();
    let (mut entries, mut images) = mixed();
    // A text-like page, which the context model codes.
    entries.push(Entry {
        name: "z/text.pbm".into(),
        format: ImageFormat::Pbm,
        width: 90,
        height: 70,
    });
    images.push(common::text_page(90, 70, 1));
    let nets = [&mnist(), &tiny_context()];
    // Eight lanes: the noise image gets a lane of its own, which must be stored.
    manifest += &write_golden(
        "mixed.vlz",
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
        })
        .collect();
    manifest += &write_golden(
        "mnist.vlz",
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
        })
        .collect();
    let images: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&(w, h)| common::text_page(w as usize, h as usize, 2))
        .collect();
    manifest += &write_golden(
        "context.vlz",
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
    };
    manifest += &write_golden(
        "documents.vlz",
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
    manifest += &write_golden(
        "memory.vlz",
        &[&documents()],
        &[Entry {
            name: "page.pbm".into(),
            format: ImageFormat::Pbm,
            width: w as u32,
            height: h as u32,
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

    // A page large enough for page mixing, which codes it smallest (its first edition
    // when this file was written).
    manifest += &write_mixing_golden("mixing.vlz", 6);

    // Short rows of fine texture, which the narrow template learns fastest.
    let (w, h) = (12, 40);
    let mut state = 5u32;
    let rows: Vec<u8> = (0..w * h)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            u8::from((i % w) % 3 == (i / w) % 3) ^ u8::from(state >> 29 == 0)
        })
        .collect();
    manifest += &write_golden(
        "narrow.vlz",
        &[&mnist()],
        &common::entries_for(&[(w as u32, h as u32)]),
        &[rows],
        ONE_LANE_SMALLEST,
    );
    // Every file format: the pages of a TIFF, a palette PNG, grey PNG and PBM.
    let d = digits(4);
    let entries: Vec<Entry> = [
        ("a.png", ImageFormat::PngPalette { bit_depth: 1 }),
        ("b.png", ImageFormat::PngGray { bit_depth: 4 }),
        ("c.pbm", ImageFormat::Pbm),
        ("d.tif/0001", ImageFormat::TiffPage),
        ("d.tif/0002", ImageFormat::TiffPage),
    ]
    .into_iter()
    .map(|(name, format)| Entry {
        name: name.into(),
        format,
        width: 28,
        height: 28,
    })
    .collect();
    let images: Vec<Vec<u8>> = (0..5).map(|i| d[i % 4].clone()).collect();
    manifest += &write_golden(
        "formats.vlz",
        &[&mnist()],
        &entries,
        &images,
        ONE_LANE_SMALLEST,
    );

    // The same kind of page, in page mixing's second edition.
    manifest += &write_mixing_golden("mixing-second.vlz", 7);
    // And in its third.
    manifest += &write_mixing_golden("mixing-third.vlz", 8);
    // And in its fourth.
    manifest += &write_mixing_golden("mixing-fourth.vlz", 9);
    // Two pages, then both again: the copies are one repeat lane.
    let pages = [
        common::text_page(200, 120, 10),
        common::text_page(200, 120, 11),
    ];
    manifest += &write_golden(
        "repeat.vlz",
        &[&mnist()],
        &common::entries_for(&[(200, 120); 4]),
        &[&pages[..], &pages[..]].concat(),
        ONE_LANE_SMALLEST,
    );
    // A page of one small tile repeated, which a Zstandard frame codes smallest.
    manifest += &write_golden(
        "zstd.vlz",
        &[&mnist()],
        &common::entries_for(&[(480, 480)]),
        &[common::tiled_page(480, 480, 48, 3)],
        ONE_LANE_SMALLEST,
    );
    std::fs::write(MANIFEST, manifest).unwrap();
}
