//! The hostile inputs of the hardening review, each run by the release binary under a
//! 1 GB address-space limit (`ulimit -v`): every one must end in a clean error, with
//! memory and time bounded by what the input justifies, not by what it claims.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use vlae_zip::container::{self, ModelId};

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

/// A version 1 archive as the review built them: `images` entries, the first named
/// `00000000.pbm` and every other its successor, in `lanes` equal lanes with no payload.
fn v1_archive(
    fingerprint: [u8; 16],
    images: u32,
    raw_len_claim: Option<u32>,
    lanes: u32,
) -> Vec<u8> {
    let mut raw = Vec::with_capacity(3 * images as usize + 16);
    raw.extend_from_slice(&[0, 0, 0, 12, 0]);
    raw.extend_from_slice(b"00000000.pbm");
    for _ in 1..images {
        raw.extend_from_slice(&[1, 0, 0]);
    }
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&raw).unwrap();
    let names = z.finish().unwrap();
    let mut b = container::MAGIC.to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&fingerprint);
    b.extend_from_slice(&28u16.to_le_bytes());
    b.extend_from_slice(&28u16.to_le_bytes());
    b.extend_from_slice(&images.to_le_bytes());
    b.extend_from_slice(&lanes.max(1).to_le_bytes());
    b.extend_from_slice(&[6, 24, 0, 0]);
    b.extend_from_slice(&raw_len_claim.unwrap_or(raw.len() as u32).to_le_bytes());
    b.extend_from_slice(&(names.len() as u32).to_le_bytes());
    b.extend_from_slice(&names);
    for _ in 0..lanes {
        // A lane: its share of the images, 32 seed words, no payload, a head that keeps
        // the coder's invariant.
        b.extend_from_slice(&(images / lanes).to_le_bytes());
        b.extend_from_slice(&32u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(0x9e37_79b9_7f4a_7c15u64).to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes()); // pixel CRC
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn shipped_v1_id() -> [u8; 16] {
    match common::shipped().ids()[0] {
        ModelId::V1(id) => id,
        ModelId::V2(_) => unreachable!("ids()[0] is the version 1 id"),
    }
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn an_entry_table_claiming_a_gigabyte_is_refused_before_reserving_it() {
    let tmp = tempfile::tempdir().unwrap();
    // As the review built it, with no lane record: refused before inflating anything.
    let bytes = v1_archive([7; 16], 1 << 20, Some(1 << 30), 0);
    assert!(bytes.len() < 4096, "{} bytes", bytes.len());
    let path = write_tmp(tmp.path(), "claim.vlz", &bytes);
    clean_failure(&limited(&["info", &path]), "lane table");
    // With its lane record: the claim is checked against what the deflated bytes can hold.
    let bytes = v1_archive([7; 16], 1 << 20, Some(1 << 30), 1);
    let path = write_tmp(tmp.path(), "claim.vlz", &bytes);
    clean_failure(&limited(&["info", &path]), "entry table claims");
}

#[test]
fn sixty_seven_million_named_images_are_described_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    // 64 lanes of 2^20 images, as the version 1 writer's default lanes would be: a valid
    // container, which `info` describes under the limit.
    let bytes = v1_archive([7; 16], 1 << 26, None, 64);
    assert!(bytes.len() < 250_000, "{} bytes", bytes.len());
    let path = write_tmp(tmp.path(), "many.vlz", &bytes);
    let out = limited(&["info", &path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("67108864 of 28×28"));
    // The same images in one lane: more than a version 1 decoder holds, refused at once.
    let path = write_tmp(
        tmp.path(),
        "one-lane.vlz",
        &v1_archive([7; 16], 1 << 26, None, 1),
    );
    clean_failure(&limited(&["info", &path]), "lane images");
}

#[test]
fn a_lane_that_claims_millions_of_images_fails_within_a_few() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = v1_archive(shipped_v1_id(), 1 << 20, None, 1);
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
    // A million files is over the default limit: refused before decoding.
    clean_failure(&decompress(&[]), "more than the limit of 100,000 files");
    // Allowed, the lane is decoded, and found to hold far fewer images than it claims.
    clean_failure(&decompress(&["--allow-large"]), "ran dry");
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
    // 70,000 lanes for 70,000 one-pixel images: the writer's limit is the reader's.
    let entries = common::entries_for(&vec![(1, 1); 70_000]);
    let images = vec![vec![0u8]; 70_000];
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
    let bytes = std::fs::read("tests/data/fuzz-payload-overflow.vlz").unwrap();
    match container::parse(&bytes) {
        Err(container::ContainerError::Truncated(what)) => assert_eq!(what, "lane payload"),
        other => panic!("{:?}", other.map(|a| a.image_count)),
    }
    clean_failure(
        &limited(&["info", "tests/data/fuzz-payload-overflow.vlz"]),
        "truncated",
    );
}

/// A version 5 to 10 lane's mode packs its sample count with the page-memory bit: a mode that
/// sets the bit but claims no samples is refused, by the writer as by the reader, and a
/// lane with memory reads back with it.
#[test]
fn lane_modes_round_trip_and_zero_samples_are_refused() {
    use container::{v2, Lane, LaneCoder};
    let entries = common::entries_for(&[(28, 28)]);
    let archive = |samples: u32| {
        v2::write(&v2::NewArchive {
            models: vec![[7; 8]],
            latent_bits: 6,
            entries: &entries,
            lanes: vec![Lane {
                coder: LaneCoder::BitsBack {
                    model: 0,
                    samples,
                    reversed: false,
                    memory: true,
                },
                rows: 28,
                seed_words_elided: 32,
                state: 1 << 40,
                payload: vec![],
            }],
            pixel_crc: 0,
        })
    };
    let err = archive(0).unwrap_err();
    assert!(err.to_string().contains("0 samples"), "{err}");
    let bytes = archive(3).unwrap();
    let parsed = container::parse(&bytes).unwrap();
    assert_eq!(parsed.version, container::VERSION);
    assert!(matches!(
        parsed.lanes[0].coder,
        LaneCoder::BitsBack {
            samples: 3,
            memory: true,
            ..
        }
    ));
}

/// Page mixing's first edition (template 2) is new in version 6, its second (template 3)
/// in version 7, its third (template 4) in version 8, its fourth (template 5) in version 9
/// its fifth (template 6) in version 11 and its sixth (template 7) in version 12: each is
/// refused under the version byte before, and template 8 is not written at all.
#[test]
fn page_mixing_lanes_need_their_versions() {
    let write = |template: u8| context_lane_archive(template, 28, 28);
    let err = write(8).unwrap_err();
    assert!(err.to_string().contains("unknown template 8"), "{err}");
    for (template, first_version) in [(2, 6), (3, 7), (4, 8), (5, 9), (6, 11), (7, 12)] {
        let mut bytes = write(template).unwrap();
        assert!(container::parse(&bytes).is_ok());
        relabel_as_version(&mut bytes, first_version);
        assert!(container::parse(&bytes).is_ok());
        relabel_as_version(&mut bytes, first_version - 1);
        let err = container::parse(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("unknown template {template}")),
            "{err}"
        );
    }
}

/// From version 6 a lane may hold 2^24 pixels, a 400-dpi page; version 5 allowed 2^22.
#[test]
fn lanes_of_a_whole_page_need_version_6() {
    let lane_of = |width: u32, height: u32| context_lane_archive(0, width, height);
    let err = lane_of(4096, 4097).unwrap_err();
    assert!(err.to_string().contains("lane pixels"), "{err}");
    let mut bytes = lane_of(4096, 1025).unwrap();
    assert!(container::parse(&bytes).is_ok());
    relabel_as_version(&mut bytes, 5);
    let err = container::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("lane pixels"), "{err}");
}

/// An entry may say that its image is stored straightened, with the slope, only from
/// version 10, and only for slopes of 1 to 2^17 units either way.
#[test]
fn straightened_entries_need_version_10_and_a_slope_in_range() {
    let with_skew = |skew: i32| {
        let mut entries = common::entries_for(&[(28, 28), (28, 28)]);
        entries[1].skew = skew;
        context_lane_archive_of(&entries, 0)
    };
    for skew in [-10_799, container::MAX_SKEW, -container::MAX_SKEW] {
        let mut bytes = with_skew(skew).unwrap();
        let skews: Vec<i32> = container::parse(&bytes)
            .unwrap()
            .entries()
            .map(|e| e.skew)
            .collect();
        assert_eq!(skews, [0, skew]);
        relabel_as_version(&mut bytes, 9);
        let err = container::parse(&bytes).unwrap_err();
        assert!(err.to_string().contains("invalid flags"), "{err}");
    }
    let err = with_skew(container::MAX_SKEW + 1).unwrap_err();
    assert!(err.to_string().contains("slope 131073"), "{err}");
}

/// Gives a version 3 to 10 archive another version byte, and the file CRC to match.
fn relabel_as_version(bytes: &mut [u8], version: u8) {
    bytes[3] = version;
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

/// An archive of one `width × height` image in one context lane with `template` and no
/// payload.
fn context_lane_archive(
    template: u8,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, container::ContainerError> {
    context_lane_archive_of(&common::entries_for(&[(width, height)]), template)
}

/// An archive of `entries` in one context lane with `template` and no payload.
fn context_lane_archive_of(
    entries: &[container::Entry],
    template: u8,
) -> Result<Vec<u8>, container::ContainerError> {
    use container::{v2, Lane, LaneCoder};
    v2::write(&v2::NewArchive {
        models: vec![],
        latent_bits: 6,
        entries,
        lanes: vec![Lane {
            coder: LaneCoder::Context { template },
            rows: entries.iter().map(|e| u64::from(e.height)).sum(),
            seed_words_elided: 0,
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
    let bytes = context_lane_archive_of(&entries, 0).unwrap();
    let path = write_tmp(tmp.path(), "long.vlz", &bytes);
    let out = tmp.path().join("out");
    clean_failure(
        &limited(&["decompress", &path, "-o", out.to_str().unwrap()]),
        "a component of 304 bytes is longer than 255 bytes",
    );
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}
