//! The hostile inputs of the hardening review, each run by the release binary under a
//! 1 GB address-space limit (`ulimit -v`): every one must end in a clean error, with
//! memory and time bounded by what the input justifies, not by what it claims.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use vlae_zip::container::{self, Edition, LaneCoder, ModelId};

/// Address space the binary gets, in KiB: the review's 1 GB.
const ADDRESS_SPACE_KIB: u64 = 1_000_000;

/// Runs the binary under the address-space limit; returns its output.
fn limited(args: &[&str]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec '{}' -q {}",
            env!("CARGO_BIN_EXE_vlae-zip"),
            quoted.join(" ")
        ))
        .output()
        .expect("sh runs")
}

/// Asserts a clean failure: exit code 1, one error line naming the problem, no panic,
/// no abort.
fn clean_failure(out: &Output, reason: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "status {:?}: {err}", out.status);
    assert!(err.starts_with("vlae-zip: error:"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "{err}"
    );
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}

/// An archive built by hand, as a hostile writer would: `images` 28×28 entries, the first
/// named `00000000.pbm` and every other with entry flags `flags` (7: its successor, same
/// format and size), in `lanes` equal bits-back lanes with no payload that name model
/// `model`. `raw_len_claim` replaces the entry table's true length.
fn hand_archive(
    model: ModelId,
    images: u64,
    raw_len_claim: Option<u64>,
    lanes: u64,
    flags: u8,
) -> Vec<u8> {
    fn varint(b: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            b.push((v as u8) | 0x80);
            v >>= 7;
        }
        b.push(v as u8);
    }
    let mut raw = Vec::with_capacity(images as usize + 32);
    raw.extend_from_slice(&[0, 0, 0, 28, 28, 12]);
    raw.extend_from_slice(b"00000000.pbm");
    raw.resize(raw.len() + images as usize - 1, flags);
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&raw).unwrap();
    let names = z.finish().unwrap();
    let mut b = container::SIGNATURE.to_vec();
    b.push(container::VERSION);
    varint(&mut b, images);
    b.push(1);
    b.extend_from_slice(&model.0);
    b.push(6);
    varint(&mut b, raw_len_claim.unwrap_or(raw.len() as u64));
    varint(&mut b, names.len() as u64);
    b.extend_from_slice(&names);
    varint(&mut b, lanes);
    for _ in 0..lanes {
        // A chain of its share of the images, model 0, one sample, no page memory, all 32
        // seed words elided, no payload, a head that keeps the coder's invariant.
        b.push(0);
        varint(&mut b, images / lanes * 28);
        b.extend_from_slice(&[0, 0, 2, 32]);
        b.extend_from_slice(&(0x9e37_79b9_7f4a_7c15u64).to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes()); // pixel CRC
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn an_entry_table_claiming_a_gigabyte_is_refused_before_reserving_it() {
    let tmp = tempfile::tempdir().unwrap();
    // The claim is checked against what the deflated bytes can hold.
    let bytes = hand_archive(ModelId([7; 8]), 1 << 20, Some(1 << 30), 64, 7);
    assert!(bytes.len() < 4096, "{} bytes", bytes.len());
    let path = write_tmp(tmp.path(), "claim.vlz", &bytes);
    clean_failure(&limited(&["info", &path]), "entry table claims");
}

#[test]
fn sixteen_million_named_images_are_described_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    // 1,024 lanes of 2^14 images: a valid container, which `info` describes under the
    // limit.
    let bytes = hand_archive(ModelId([7; 8]), 1 << 24, None, 1 << 10, 7);
    assert!(bytes.len() < 250_000, "{} bytes", bytes.len());
    let path = write_tmp(tmp.path(), "many.vlz", &bytes);
    let out = limited(&["info", &path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("16777216 of 28×28"));
    // `test` walks every name once, checking that they could all be written out (in
    // bounded memory), before it finds the model missing.
    clean_failure(&limited(&["test", &path]), "0707070707070707");
    // The same images in one lane: more than a decoder holds, refused at once.
    let path = write_tmp(
        tmp.path(),
        "one-lane.vlz",
        &hand_archive(ModelId([7; 8]), 1 << 24, None, 1, 7),
    );
    clean_failure(&limited(&["info", &path]), "lane pixels");
}

#[test]
fn a_lane_that_claims_millions_of_images_fails_within_a_few() {
    let tmp = tempfile::tempdir().unwrap();
    // 21,000 digits, as many as one lane may hold.
    let bytes = hand_archive(common::shipped().id(), 21_000, None, 1, 7);
    let path = write_tmp(tmp.path(), "claims.vlz", &bytes);
    let out_dir = tmp.path().join("out");
    let decompress = |extra: &[&str]| {
        let mut args = vec![
            "decompress",
            &path,
            "-o",
            out_dir.to_str().unwrap(),
            "--model",
            common::SHIPPED,
        ];
        args.extend_from_slice(extra);
        limited(&args)
    };
    // The lane is decoded, and found to hold far fewer images than it claims.
    clean_failure(&decompress(&[]), "ran dry");
    assert!(!out_dir.exists());
}

#[test]
fn a_huge_pbm_header_on_a_tiny_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    // 32768 × 32768 claimed in 17 bytes: over the pixel limit, and far over the file.
    std::fs::write(dir.join("big.pbm"), b"P1\n32768 32768\n0").unwrap();
    let arc = tmp.path().join("x.vlz");
    let compress = || {
        limited(&[
            "compress",
            dir.to_str().unwrap(),
            "-o",
            arc.to_str().unwrap(),
            "--model",
            common::TINY,
        ])
    };
    clean_failure(&compress(), "big.pbm");
    // Within the pixel limit but far over the file's bytes: refused before allocating.
    std::fs::write(dir.join("big.pbm"), b"P1\n20000 20000\n0").unwrap();
    clean_failure(&compress(), "truncated");
    assert!(!arc.exists());
}

#[test]
fn the_writer_cannot_write_what_the_reader_refuses() {
    // 70,000 lanes for 70,000 one-row images, no two alike (a copy would be a repeat):
    // the writer's limit is the reader's.
    let entries = common::entries_for(&vec![(17, 1); 70_000]);
    let images: Vec<Vec<u8>> = (0..70_000u32)
        .map(|i| (0..17).map(|bit| (i >> bit & 1) as u8).collect())
        .collect();
    let err = vlae_zip::archive::compress(
        &[common::tiny()],
        &entries,
        &images,
        vlae_zip::archive::CompressOptions {
            latent_bits: 6,
            adapt_latent_bits: false,
            lanes: Some(70_000),
            coders: vlae_zip::archive::LaneCoders::Smallest,
            samples: 1,
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("lane count"), "{err}");
}

/// Found by fuzzing `parse_archive`: lane records whose payload lengths add up past 2^64.
/// Each length must fit in the bytes left before it is added (in a build with overflow
/// checks the sum panicked; in a release build it wrapped and the archive was refused for
/// another reason).
#[test]
fn payload_lengths_that_overflow_their_sum_are_refused_as_truncated() {
    // Two lanes, each claiming 2^63 payload bytes.
    let mut bytes = hand_archive(ModelId([7; 8]), 2, None, 2, 7);
    let record = 1 + 1 + 1 + 3 + 8;
    let tail = 4 + 4;
    for lane in 0..2 {
        let len_at = bytes.len() - tail - (1 - lane) * record - record + 2;
        assert_eq!(bytes[len_at], 0);
        let mut huge = vec![0x80; 9];
        huge.push(1);
        bytes.splice(len_at..=len_at, huge);
    }
    reseal(&mut bytes);
    match container::parse(&bytes) {
        Err(container::ContainerError::Truncated(what)) => assert_eq!(what, "lane payload"),
        other => panic!("{:?}", other.map(|a| a.image_count)),
    }
    let tmp = tempfile::tempdir().unwrap();
    clean_failure(
        &limited(&["info", &write_tmp(tmp.path(), "overflow.vlz", &bytes)]),
        "truncated",
    );
}

/// A lane's mode packs its sample count with the page-memory bit: a mode that sets the
/// bit but claims no samples is refused, by the writer as by the reader, and a lane with
/// memory reads back with it.
#[test]
fn lane_modes_round_trip_and_zero_samples_are_refused() {
    let entries = common::entries_for(&[(28, 28)]);
    let archive = |samples: u32| {
        one_lane_archive(
            &entries,
            LaneCoder::BitsBack {
                model: 0,
                samples,
                memory: true,
            },
        )
    };
    let err = archive(0).unwrap_err();
    assert!(err.to_string().contains("0 samples"), "{err}");
    let bytes = archive(3).unwrap();
    let parsed = container::parse(&bytes).unwrap();
    assert!(matches!(
        parsed.lanes[0].coder,
        LaneCoder::BitsBack {
            samples: 3,
            memory: true,
            ..
        }
    ));
}

/// Every coder of the registry reads back as written; a coder id past the registry is
/// refused with its number, as from a later build.
#[test]
fn coders_past_the_registry_are_named() {
    let entries = common::entries_for(&[(28, 28)]);
    // A stored lane must hold its pixels' bits; the other rows' lanes may be empty here.
    // A repeat lane needs an image before it (tested below), and a frame lane a frame
    // (golden `zstd.vlz`).
    let without_payload = container::REGISTRY.iter().filter(|row| {
        !matches!(
            row.record,
            container::registry::Record::Bits
                | container::registry::Record::Repeat
                | container::registry::Record::Frame
        )
    });
    for row in without_payload {
        let coder = match row.record {
            container::registry::Record::Chain => LaneCoder::BitsBack {
                model: 0,
                samples: 1,
                memory: false,
            },
            _ => LaneCoder::without_fields(row.id).unwrap(),
        };
        let bytes = one_lane_archive(&entries, coder).unwrap();
        assert_eq!(container::parse(&bytes).unwrap().lanes[0].coder, coder);
    }
    let err = one_lane_archive(&entries, LaneCoder::Zstd).unwrap_err();
    assert!(
        err.to_string()
            .contains("lane 0 has an empty Zstandard frame"),
        "{err}"
    );
    let mut bytes = one_lane_archive(&entries, LaneCoder::PageMixing(Edition::First)).unwrap();
    let at = bytes.len() - 8 - 8 - 3;
    assert_eq!(bytes[at], container::registry::PAGE_MIXING);
    bytes[at] = container::REGISTRY.len() as u8;
    reseal(&mut bytes);
    let err = container::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            container::ContainerError::UnknownCoder { lane: 0, id }
                if usize::from(id) == container::REGISTRY.len()
        ),
        "{err}"
    );
}

/// Archives of `entries` in lanes of the given coders and rows, with no payloads, as
/// the writer (which parses its own output) makes them.
fn lanes_archive(
    entries: &[container::Entry],
    lanes: &[(LaneCoder, u64)],
) -> Result<Vec<u8>, container::ContainerError> {
    container::write(&container::NewArchive {
        models: vec![],
        latent_bits: 6,
        entries,
        lanes: lanes
            .iter()
            .map(|&(coder, rows)| container::Lane {
                coder,
                rows,
                seed_words_elided: 0,
                state: 1 << 40,
                payload: vec![],
            })
            .collect(),
        pixel_crc: 0,
    })
}

/// A repeat lane reads back with its distance, and may cover parts of images; one that
/// reaches before the first image, repeats an image of another size or carries a
/// payload is refused, naming the lane.
#[test]
fn repeat_lanes_must_repeat_an_earlier_image_of_their_size() {
    let mixing = LaneCoder::PageMixing(Edition::Fourth);
    let repeat = |back| LaneCoder::Repeat { back };
    let same = common::entries_for(&[(28, 28), (28, 28), (28, 28)]);
    // The second image's last 10 rows and the third, both repeats (of image 1, then 2).
    let bytes = lanes_archive(&same, &[(mixing, 46), (repeat(1), 38)]).unwrap();
    let lanes = container::parse(&bytes).unwrap().lanes;
    assert_eq!(lanes[1].coder, repeat(1));
    assert_eq!(lanes[1].rows, 38);
    let err = lanes_archive(&same, &[(mixing, 28), (repeat(2), 56)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("lane 1 repeats image 1 from 2 images back"),
        "{err}"
    );
    let other = common::entries_for(&[(28, 28), (28, 29)]);
    let err = lanes_archive(&other, &[(mixing, 28), (repeat(1), 29)]).unwrap_err();
    assert!(
        err.to_string().contains("(28×28) as image 1 (28×29)"),
        "{err}"
    );
    let err = lanes_archive(&same, &[(mixing, 28), (repeat(0), 56)]).unwrap_err();
    assert!(
        err.to_string().contains("lane 1 repeats the image 0 back"),
        "{err}"
    );
    // A payload: the record is written by hand, since the writer would not.
    let mut bytes = lanes_archive(&same, &[(mixing, 28), (repeat(1), 56)]).unwrap();
    let record = bytes.len() - 8 - 4;
    assert_eq!(
        bytes[record..record + 4],
        [container::registry::REPEAT, 56, 0, 1]
    );
    bytes[record + 2] = 4;
    bytes.splice(record + 4..record + 4, [0u8; 4]);
    reseal(&mut bytes);
    let err = container::parse(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("lane 1 repeats with 4 payload bytes"),
        "{err}"
    );
}

/// Archives of the container versions before format 1 were never released, and are
/// refused by their version byte; so are reserved entry flags.
#[test]
fn other_versions_and_reserved_flags_are_refused() {
    let entries = common::entries_for(&[(28, 28), (28, 28)]);
    let mut bytes = one_lane_archive(&entries, LaneCoder::PageMixing(Edition::First)).unwrap();
    bytes[3] = 12;
    reseal(&mut bytes);
    let err = container::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("container version 12"), "{err}");
    assert!(container::parse(b"VLAEZIP\0\x02\0").is_err());
    // The reserved flag 8 on the second entry.
    let bytes = hand_archive(ModelId([7; 8]), 2, None, 1, 7 | 8);
    let err = container::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("invalid flags"), "{err}");
}

/// A lane may hold 2^24 pixels, a 400-dpi page, and no more.
#[test]
fn a_lane_holds_a_whole_page_and_no_more() {
    let lane_of = |width: u32, height: u32| {
        one_lane_archive(
            &common::entries_for(&[(width, height)]),
            LaneCoder::PageMixing(Edition::First),
        )
    };
    let err = lane_of(4096, 4097).unwrap_err();
    assert!(err.to_string().contains("lane pixels"), "{err}");
    assert!(lane_of(4096, 4096).is_ok());
}

/// Recomputes the file CRC after an edit.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

/// An archive of `entries` in one lane of `coder` with no payload, naming one model.
fn one_lane_archive(
    entries: &[container::Entry],
    coder: LaneCoder,
) -> Result<Vec<u8>, container::ContainerError> {
    container::write(&container::NewArchive {
        models: vec![ModelId([7; 8])],
        latent_bits: 6,
        entries,
        lanes: vec![container::Lane {
            coder,
            rows: entries.iter().map(|e| u64::from(e.height)).sum(),
            seed_words_elided: if matches!(coder, LaneCoder::BitsBack { .. }) {
                32
            } else {
                0
            },
            state: 1 << 40,
            payload: vec![],
        }],
        pixel_crc: 0,
    })
}

/// Runs `line` under `sh` with the address-space limit, `BIN` standing for the binary.
fn limited_shell(line: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && BIN='{}' && {line}",
            env!("CARGO_BIN_EXE_vlae-zip")
        ))
        .output()
        .expect("sh runs")
}

/// A 28×28 PBM followed by four gigabytes (a sparse file, which costs no disk) is refused
/// from its size, unread; the same image followed by an endless stream on standard input is
/// refused after the bytes its header allows; /dev/zero is no image file.
#[test]
fn image_files_are_read_no_further_than_their_header_allows() {
    let tmp = tempfile::tempdir().unwrap();
    let digit = vlae_zip::image_io::encode_image(
        &vlae_zip::image_io::BitImage {
            width: 28,
            height: 28,
            pixels: common::digits(0, 1).remove(0),
        },
        vlae_zip::image_io::ImageFormat::Pbm,
    );
    let path = tmp.path().join("huge.pbm");
    std::fs::write(&path, &digit).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let arc = tmp.path().join("x.vlz");
    let compress = |input: &str| {
        limited(&[
            "compress",
            input,
            "-o",
            arc.to_str().unwrap(),
            "--model",
            common::TINY,
        ])
    };
    clean_failure(
        &compress(path.to_str().unwrap()),
        "huge.pbm: file is 4294967296 bytes",
    );
    clean_failure(&compress("/dev/zero"), "/dev/zero: is a character device");
    let small = tmp.path().join("small.pbm");
    std::fs::write(&small, &digit).unwrap();
    let endless = limited_shell(&format!(
        "(cat '{}'; cat /dev/zero) | \"$BIN\" -q compress - -o '{}' --model '{}'",
        small.display(),
        arc.display(),
        common::TINY
    ));
    clean_failure(&endless, "standard input: file has more than");
    assert!(!arc.exists());
}

/// An image whose pixels do not fit in memory (a 23,000 × 23,000 8-bit PNG: 529 MB of
/// rows, then as many of pixels, under the 1 GB limit) is a clean error naming it and the
/// bytes needed, not the allocator's abort.
#[test]
fn an_image_too_large_for_memory_is_a_clean_error() {
    let tmp = tempfile::tempdir().unwrap();
    let side = 23_000usize;
    let path = tmp.path().join("wide.png");
    std::fs::write(&path, white_png(side)).unwrap();
    let arc = tmp.path().join("x.vlz");
    let out = limited(&[
        "compress",
        path.to_str().unwrap(),
        "-o",
        arc.to_str().unwrap(),
        "--model",
        common::TINY,
    ]);
    clean_failure(&out, "wide.png: not enough memory: 529000000 bytes");
    assert!(!arc.exists());
}

/// A white `side × side` 8-bit grey PNG: the first row white, every other one the same
/// (PNG's "up" filter, all zeros), deflated fast.
fn white_png(side: usize) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = crc32fast::hash(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut row = vec![0xffu8; side + 1];
    row[0] = 0;
    z.write_all(&row).unwrap();
    let mut up = vec![0u8; side + 1];
    up[0] = 2;
    for _ in 1..side {
        z.write_all(&up).unwrap();
    }
    let mut header = (side as u32).to_be_bytes().to_vec();
    header.extend_from_slice(&(side as u32).to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &z.finish().unwrap()));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// An archive whose name has a component longer than this system takes (made where names
/// may be longer) is refused by name before anything is staged or decoded.
#[test]
fn a_name_this_system_cannot_create_is_refused_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let mut entries = common::entries_for(&[(28, 28)]);
    entries[0].name = format!("{}.pbm", "n".repeat(300));
    let bytes = one_lane_archive(&entries, LaneCoder::Context { template: 0 }).unwrap();
    let path = write_tmp(tmp.path(), "long.vlz", &bytes);
    let out = tmp.path().join("out");
    clean_failure(
        &limited(&["decompress", &path, "-o", out.to_str().unwrap()]),
        "a component of 304 bytes is longer than 255 bytes",
    );
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

/// A little-endian TIFF of one page by hand, as a hostile writer would make it: a
/// `width`×`height` page of 1 bit per sample, compressed with `compression`, in one strip
/// that claims `strip_claim` bytes and holds the 10 bytes after the directory.
fn hand_tiff(width: u32, height: u32, compression: u16, strip_claim: u32) -> Vec<u8> {
    let tags: [(u16, u16, u32); 8] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 1),
        (259, 3, u32::from(compression)),
        (262, 3, 0),
        (273, 4, 8 + 2 + 8 * 12 + 4),
        (278, 4, height),
        (279, 4, strip_claim),
    ];
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for (tag, kind, value) in tags {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&value.to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&[0x26, 0x80, 0x01, 0x55, 0, 0xff, 0x13, 0, 0x40, 0x02]);
    b
}

#[test]
fn tiffs_claiming_huge_pages_or_strips_are_refused_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("x.vlz");
    let arc = arc.to_str().unwrap();
    let start = std::time::Instant::now();
    // Sides beyond the limit: refused from the directory alone.
    let path = write_tmp(tmp.path(), "wide.tif", &hand_tiff(4_000_000_000, 3, 4, 10));
    clean_failure(
        &limited(&["compress", &path, "-o", arc]),
        "wide.tif: TIFF page 1: is 4000000000×3",
    );
    // The largest page allowed, from 10 bytes of Group 4 (and of LZW, PackBits, none,
    // Group 3, CCITT RLE) whose strips claim gigabytes: the coded data runs out, the page
    // is refused.
    for compression in [4, 5, 32773, 1, 3, 2] {
        let bytes = hand_tiff(1 << 15, 1 << 14, compression, 4_000_000_000);
        let path = write_tmp(tmp.path(), "claims.tif", &bytes);
        clean_failure(
            &limited(&["compress", &path, "-o", arc]),
            "claims.tif: TIFF page 1: a table, strip or tile claims more",
        );
        let bytes = hand_tiff(1 << 15, 1 << 14, compression, 10);
        let path = write_tmp(tmp.path(), "short.tif", &bytes);
        clean_failure(
            &limited(&["compress", &path, "-o", arc]),
            "short.tif: TIFF page 1",
        );
    }
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    assert!(!Path::new(arc).exists());
}

/// A valid 483-byte archive of one white 32768×16384 image (512 MiB of pixels decoded, in
/// 32 lanes): under the 1 GB limit its decoding fails cleanly, naming the image and the
/// memory it needs, and leaves nothing behind. (Made by `vlae-zip compress` of such a PBM.)
#[test]
fn an_image_larger_than_memory_fails_cleanly_when_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    clean_failure(
        &limited(&[
            "decompress",
            "tests/data/white-32768x16384.vlz",
            "-o",
            out.to_str().unwrap(),
        ]),
        "not enough memory for its pixels (536870912 bytes)",
    );
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// A 6800 × 8800 page (600 dpi, 11 × 14.7 inches) compresses under the 1 GB limit, asked
/// for two threads, and decodes back: the coders' tables are counted against the address
/// space before coding (on as many threads as fit), and glibc's per-thread arenas no
/// longer take a third of it.
#[test]
fn a_600_dpi_page_compresses_and_decodes_within_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (width, height) = (6800, 8800);
    let page = vlae_zip::image_io::BitImage {
        width,
        height,
        pixels: common::text_page(width, height, 5),
    };
    let path = tmp.path().join("page.pbm");
    std::fs::write(
        &path,
        vlae_zip::image_io::encode_image(&page, vlae_zip::image_io::ImageFormat::Pbm),
    )
    .unwrap();
    let arc = tmp.path().join("page.vlz");
    let a = arc.to_str().unwrap();
    let packed = limited(&["compress", path.to_str().unwrap(), "-o", a, "-T", "2"]);
    assert!(packed.status.success(), "{packed:?}");
    let out = tmp.path().join("out");
    let unpacked = limited(&["decompress", a, "-o", out.to_str().unwrap(), "-T", "2"]);
    assert!(unpacked.status.success(), "{unpacked:?}");
    assert_eq!(
        std::fs::read(out.join("page.pbm")).unwrap(),
        std::fs::read(&path).unwrap()
    );
}

/// Under a memory limit that one thread's coding fits and two threads' do not, compress
/// codes on one thread, writing the very archive it writes unlimited; under a limit that
/// not even one fits, it refuses before coding, naming the image and the memory needed.
#[test]
fn a_memory_limit_chooses_fewer_threads_or_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let (width, height) = (600, 400);
    let page = vlae_zip::image_io::BitImage {
        width,
        height,
        pixels: common::text_page(width, height, 9),
    };
    let path = tmp.path().join("page.pbm");
    std::fs::write(
        &path,
        vlae_zip::image_io::encode_image(&page, vlae_zip::image_io::ImageFormat::Pbm),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let one = vlae_zip::archive::encode_bytes(&[(width, height)], 1);
    assert_eq!(
        vlae_zip::archive::threads_within(&[(width, height)], one, 2),
        Some(1)
    );
    let (free, limited_arc) = (tmp.path().join("free.vlz"), tmp.path().join("one.vlz"));
    let limit = one.to_string();
    let runs = [
        (&free, vec!["-T", "2"]),
        (
            &limited_arc,
            vec!["-T", "2", "--memory-limit", limit.as_str()],
        ),
    ];
    for (arc, extra) in runs {
        let mut args = vec!["compress", p, "-o", arc.to_str().unwrap()];
        args.extend(extra);
        let out = limited(&args);
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(
        std::fs::read(&free).unwrap(),
        std::fs::read(&limited_arc).unwrap()
    );
    let refused = tmp.path().join("refused.vlz");
    let below = (one - 1).to_string();
    let out = limited(&[
        "compress",
        p,
        "-o",
        refused.to_str().unwrap(),
        "--memory-limit",
        below.as_str(),
    ]);
    clean_failure(&out, "(page.pbm, 600×400, is the largest image)");
    assert!(!refused.exists());
}

/// Archives written by a decoder made from the spec alone (stored, Zstandard and repeat
/// lanes over images 37 pixels wide, lanes starting and ending inside images): the valid
/// one decodes; a frame declaring a 2^41-byte window, and a skippable frame before the
/// frame, are refused naming the lane, as format-spec.md §3.14 says.
#[test]
fn zstd_lanes_are_one_frame_of_a_bounded_window() {
    let out = limited(&["test", "tests/data/stored-zstd-repeat.vlz"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    clean_failure(
        &limited(&["test", "tests/data/zstd-window-2-41.vlz"]),
        "lane 1: invalid lane (zstd frame",
    );
    clean_failure(
        &limited(&["test", "tests/data/zstd-skippable-first.vlz"]),
        "lane 1: invalid lane (zstd frame of 12 bytes in a payload of 119)",
    );
}
