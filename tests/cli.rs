//! The command line on real files: round trips in every format, and every kind of bad
//! input failing with a one-line reason, a non-zero exit and no output left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vlae_zip::image_io::{encode_image, BitImage, ImageFormat};

const TINY: &str = "tests/data/tiny.safetensors";

fn vlae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args(args)
        .arg("-q")
        .output()
        .expect("binary runs")
}

/// `CMD INPUT -o OUTPUT --model <tiny model>`: the shape of almost every call here.
fn tiny<'a>(cmd: &'a str, input: &'a str, output: &'a str) -> [&'a str; 6] {
    [cmd, input, "-o", output, "--model", TINY]
}

/// Runs `cmd` (compress or decompress) from `input` to `output` with the tiny model,
/// asserting success.
fn ok_tiny(cmd: &str, input: &Path, output: &Path) -> Output {
    ok(&tiny(
        cmd,
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    ))
}

fn ok(args: &[&str]) -> Output {
    let out = vlae(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = vlae(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(err.starts_with("vlae-zip: error:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

fn digit(i: usize) -> BitImage {
    let flat = vlae_zip::idx::read_idx_images(Path::new(
        "corpus/binarized-mnist/test-images.idx3-ubyte.gz",
    ))
    .unwrap();
    BitImage {
        width: 28,
        height: 28,
        pixels: flat[i * 784..(i + 1) * 784].to_vec(),
    }
}

/// Writes MNIST test digit `i` to `path` as a PBM file.
fn write_digit(path: impl AsRef<Path>, i: usize) {
    std::fs::write(path, encode_image(&digit(i), ImageFormat::Pbm)).unwrap();
}

/// A folder with every supported format, a nested folder and a file to skip.
fn mixed_folder(root: &Path) -> PathBuf {
    let dir = root.join("in");
    std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    let formats = [
        ("a.pbm", ImageFormat::Pbm),
        ("b1.png", ImageFormat::PngGray { bit_depth: 1 }),
        ("b8.png", ImageFormat::PngGray { bit_depth: 8 }),
        ("nested/c16.png", ImageFormat::PngGray { bit_depth: 16 }),
        ("nested/deeper/d.pbm", ImageFormat::Pbm),
    ];
    for (i, (name, f)) in formats.iter().enumerate() {
        std::fs::write(dir.join(name), encode_image(&digit(i), *f)).unwrap();
    }
    let plain: String = digit(7)
        .pixels
        .chunks(28)
        .map(|r| {
            r.iter()
                .map(|p| if *p == 1 { "1 " } else { "0 " })
                .collect::<String>()
                + "\n"
        })
        .collect();
    std::fs::write(
        dir.join("plain.pbm"),
        format!("P1\n# plain\n28 28\n{plain}"),
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    dir
}

fn read_all(dir: &Path) -> Vec<(String, BitImage)> {
    let files = vlae_zip::folder::list_inputs(&[dir.to_path_buf()]).unwrap();
    files
        .iter()
        .map(|(n, p)| {
            let (img, _) = vlae_zip::image_io::read_image(p).unwrap();
            (n.clone(), img)
        })
        .collect()
}

/// Compresses `input` with the tiny model into `tmp`/x.vlz and decompresses that into
/// `tmp`/out, which it returns.
fn round_trip_with_tiny(tmp: &Path, input: &Path) -> PathBuf {
    let arc = tmp.join("x.vlz");
    let out = tmp.join("out");
    ok_tiny("compress", &input, &arc);
    ok_tiny("decompress", &arc, &out);
    out
}

#[test]
fn folders_of_every_format_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let out = round_trip_with_tiny(tmp.path(), &dir);
    assert_eq!(read_all(&dir), read_all(&out));
    // PNGs keep their bit depth; PBM comes back as P4.
    assert!(std::fs::read(out.join("plain.pbm"))
        .unwrap()
        .starts_with(b"P4"));
    let png = std::fs::read(out.join("nested/c16.png")).unwrap();
    assert_eq!(
        vlae_zip::image_io::decode_image(Path::new("c16"), &png)
            .unwrap()
            .1,
        ImageFormat::PngGray { bit_depth: 16 }
    );
    assert!(!out.join("notes.txt").exists());
    let info = String::from_utf8(ok(&["info", tmp.path().join("x.vlz").to_str().unwrap()]).stdout)
        .unwrap();
    assert!(info.contains("images         6 of 28×28"), "{info}");
}

#[test]
fn bad_images_are_named_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    let arc_s = arc.to_str().unwrap();
    let compress_fails = || fails(&tiny("compress", dir.to_str().unwrap(), arc_s));
    let mut grey = digit(0);
    grey.pixels[5] = 0;
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    let mut data: Vec<u8> = grey
        .pixels
        .iter()
        .map(|&p| if p == 1 { 0 } else { 255 })
        .collect();
    data[3 * 28 + 4] = 77;
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    std::fs::write(dir.join("grey.png"), &bytes).unwrap();
    let err = compress_fails();
    assert!(
        err.contains("grey.png") && err.contains("row 3, column 4") && err.contains("77"),
        "{err}"
    );
    std::fs::remove_file(dir.join("grey.png")).unwrap();

    std::fs::write(dir.join("broken.pbm"), b"P4\n28 28\n\x01\x02").unwrap();
    let err = compress_fails();
    assert!(
        err.contains("broken.pbm") && err.contains("truncated"),
        "{err}"
    );
    assert!(!arc.exists(), "a failed compress left an archive behind");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(
        fails(&tiny("compress", empty.to_str().unwrap(), arc_s)).contains("no .pbm, .png or .tif")
    );
    assert!(fails(&tiny("compress", "/no/such/dir", arc_s)).contains("/no/such/dir"));
}

#[test]
fn bad_archives_fail_cleanly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    ok_tiny("compress", &dir, &arc);
    let good = std::fs::read(&arc).unwrap();
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    let try_bytes = |bytes: &[u8]| {
        let p = tmp.path().join("bad.vlz");
        std::fs::write(&p, bytes).unwrap();
        let err = fails(&tiny("decompress", p.to_str().unwrap(), out_s));
        assert!(!out.exists(), "output left behind after: {err}");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "staging left behind");
        err
    };
    assert!(try_bytes(&good[..good.len() / 2]).contains("checksum"));
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    assert!(try_bytes(&flipped).contains("checksum"));
    assert!(try_bytes(b"GIF89a foreign file").contains("not a vlae-zip archive"));
    assert!(try_bytes(b"").contains("not a vlae-zip archive"));

    // The right bytes with the wrong model: refused by fingerprint. (The context golden
    // archive is coded by the tiny context model, which is not built in; the six digits
    // above go to the context model.)
    let other = tmp.path().join("other.safetensors");
    let mut st = std::fs::read(TINY).unwrap();
    let n = st.len();
    st[n - 1] ^= 1;
    std::fs::write(&other, st).unwrap();
    std::fs::copy("tests/data/tiny.json", tmp.path().join("other.json")).unwrap();
    let err = fails(&[
        "decompress",
        "tests/data/golden/context.vlz",
        "-o",
        out_s,
        "--model",
        other.to_str().unwrap(),
    ]);
    assert!(
        err.contains("needs model") && err.contains("--model"),
        "{err}"
    );
    assert!(!out.exists());

    // An existing, non-empty output folder is never touched.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    assert!(fails(&tiny("decompress", arc.to_str().unwrap(), out_s)).contains("not empty"));
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );

    // Overwriting an archive needs --force.
    assert!(fails(&tiny(
        "compress",
        dir.to_str().unwrap(),
        arc.to_str().unwrap()
    ))
    .contains("--force"));
    let fresh = tmp.path().join("fresh");
    assert!(
        fails(&tiny("decompress", "/no/such.vlz", fresh.to_str().unwrap()))
            .contains("/no/such.vlz")
    );
    assert!(!fresh.exists());
    assert!(fails(&[
        "compress",
        dir.to_str().unwrap(),
        "-o",
        tmp.path().join("y.vlz").to_str().unwrap(),
        "--model",
        "/no/model.safetensors"
    ])
    .contains("/no/model"));
}

#[test]
fn bench_reports_rate_and_speed_as_json() {
    let out = ok(&[
        "bench",
        "corpus/test-1000",
        "--model",
        TINY,
        "--json",
        "--lanes",
        "2",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"], 1000);
    assert_eq!(v["roundtrip_ok"], true);
    let (achieved, elbo) = (
        v["achieved_bits_per_image"].as_f64().unwrap(),
        v["neg_elbo_bits_per_image"].as_f64().unwrap(),
    );
    assert!(achieved < elbo * 1.01 + 2.0, "{achieved} vs {elbo}");
    for way in ["compress", "decompress"] {
        let images = v[format!("{way}_images_per_sec")].as_f64().unwrap();
        let megapixels = v[format!("{way}_megapixels_per_sec")].as_f64().unwrap();
        assert!(images > 0.0);
        // 1,000 digits of 784 pixels.
        let ratio = megapixels / images;
        assert!((ratio - 784e-6).abs() < 1e-9, "{way}: {ratio}");
    }
}

/// `--iw` is recorded per lane, and `info` shows it, as it shows lanes with the page
/// memory; plain archives say nothing of them.
#[test]
fn info_shows_importance_samples_and_page_memory_per_lane() {
    let tmp = tempfile::tempdir().unwrap();
    let digits = tmp.path().join("digits");
    std::fs::create_dir(&digits).unwrap();
    for i in 0..40 {
        let name = format!("{i:05}.pbm");
        std::fs::copy(format!("corpus/test-1000/{name}"), digits.join(name)).unwrap();
    }
    let (plain, weighted) = (tmp.path().join("p.vlz"), tmp.path().join("w.vlz"));
    for (arc, iw) in [(&plain, "1"), (&weighted, "3")] {
        ok(&[
            "compress",
            digits.to_str().unwrap(),
            "-o",
            arc.to_str().unwrap(),
            "--model",
            "mnist",
            "--lanes",
            "2",
            "--iw",
            iw,
        ]);
    }
    let info = |arc: &std::path::Path| {
        String::from_utf8(ok(&["info", arc.to_str().unwrap()]).stdout).unwrap()
    };
    assert!(
        info(&weighted).contains("samples        3, 3"),
        "{}",
        info(&weighted)
    );
    assert!(!info(&plain).contains("samples"));
    // Lanes with the page memory are counted; digits' lanes have none.
    assert!(!info(&plain).contains("page memory"));
    let memory = info("tests/data/golden/memory.vlz".as_ref());
    assert!(memory.contains("1 of them with page memory"), "{memory}");
}

/// Under `auto`, a page's rate is set against the model that coded it, not the first one.
#[test]
fn bench_under_auto_compares_with_the_model_that_coded_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy("tests/data/page-crop.pbm", tmp.path().join("page.pbm")).unwrap();
    // Page mixing codes this page crop smallest; the chain alone is what is compared here.
    let dir = tmp.path().to_str().unwrap();
    let out = ok(&["bench", dir, "--json", "--lane-coder", "bits-back"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "documents");
    assert_eq!(v["model_coded_any_lane"], true);
    let (achieved, elbo) = (
        v["achieved_bits_per_image"].as_f64().unwrap(),
        v["neg_elbo_bits_per_image"].as_f64().unwrap(),
    );
    // A 256×192 crop: the container and the lane's start-up are about 700 bits of it.
    assert!(achieved < elbo * 1.05 + 800.0, "{achieved} vs {elbo}");
    assert!(achieved > elbo * 0.9, "{achieved} vs {elbo}");
}

/// A page that page mixing codes, with no model, says so beside the rate.
#[test]
fn bench_says_when_no_model_coded_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("page");
    ok(&[
        "decompress",
        "tests/data/golden/mixing.vlz",
        "-o",
        page.to_str().unwrap(),
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&ok(&["bench", page.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(v["model_coded_any_lane"], false);
    assert_eq!(v["roundtrip_ok"], true);
    let text = String::from_utf8(ok(&["bench", page.to_str().unwrap()]).stdout).unwrap();
    assert!(text.contains("it coded no lane"), "{text}");
}

#[test]
fn eval_reads_folders_and_idx_files_alike() {
    let a: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "eval",
            "corpus/test-1000",
            "--model",
            TINY,
            "--json",
            "--limit",
            "50",
        ])
        .stdout,
    )
    .unwrap();
    let b: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "eval",
            "corpus/binarized-mnist/test-images.idx3-ubyte.gz",
            "--model",
            TINY,
            "--json",
            "--limit",
            "50",
            "--iwae",
            "4",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(a["neg_elbo_bits_per_image"], b["neg_elbo_bits_per_image"]);
    assert!(
        b["iwae_nll_bits_per_image"].as_f64().unwrap()
            <= b["neg_elbo_bits_per_image"].as_f64().unwrap() + 1.0
    );
}

#[test]
fn files_folders_mixed_sizes_and_standard_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let page = BitImage {
        width: 61,
        height: 45,
        pixels: (0..61 * 45)
            .map(|i| u8::from((i / 61 + i % 61) % 9 == 0))
            .collect(),
    };
    let single = tmp.path().join("page.pbm");
    std::fs::write(&single, encode_image(&page, ImageFormat::Pbm)).unwrap();
    let dot = tmp.path().join("dot.png");
    std::fs::write(
        &dot,
        encode_image(
            &BitImage {
                width: 1,
                height: 1,
                pixels: vec![1],
            },
            ImageFormat::PngGray { bit_depth: 1 },
        ),
    )
    .unwrap();
    // Files and a folder together, written to standard output.
    let out = ok(&[
        "compress",
        single.to_str().unwrap(),
        dir.to_str().unwrap(),
        dot.to_str().unwrap(),
        "-o",
        "-",
        "--model",
        TINY,
    ]);
    assert!(out.stdout.starts_with(b"VLZ\x01"));
    // And read back from standard input.
    let restored = tmp.path().join("restored");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args([
            "decompress",
            "-",
            "-o",
            restored.to_str().unwrap(),
            "--model",
            TINY,
            "-q",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    assert!(child.wait().unwrap().success());
    let mut want = read_all(&dir);
    want.push((
        "dot.png".into(),
        read_all(tmp.path())
            .into_iter()
            .find(|(n, _)| n == "dot.png")
            .unwrap()
            .1,
    ));
    want.push(("page.pbm".into(), page));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(read_all(&restored), want);
}

#[test]
fn a_file_argument_with_a_folder_output_path_works() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one.pbm");
    write_digit(&one, 0);
    let arc = tmp.path().join("x.vlz");
    ok_tiny("compress", &one, &arc);
    let out = tmp.path().join("out");
    ok_tiny("decompress", &arc, &out);
    assert_eq!(read_all(&out), vec![("one.pbm".to_string(), digit(0))]);
}

#[test]
fn invalid_arguments_are_refused_by_the_parser() {
    let tmp = tempfile::tempdir().unwrap();
    let never = tmp.path().join("never.vlz");
    let never_run = tmp.path().join("never-run");
    let (never, never_run) = (never.to_str().unwrap(), never_run.to_str().unwrap());
    for args in [
        &[
            "compress",
            "corpus/test-1000",
            "-o",
            never,
            "--lanes",
            "70000",
        ][..],
        &["compress", "corpus/test-1000", "-o", never, "--lanes", "0"],
        &["train", "--batch-size", "0", "--run", never_run],
        &["train", "--learning-rate=-1", "--run", never_run],
        &["eval", "corpus/test-1000", "--iwae", "0"],
        &["eval", "corpus/test-1000", "--limit", "0"],
    ] {
        let out = vlae(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn p4_files_with_trailing_bytes_or_crlf_headers_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let good = encode_image(&digit(0), ImageFormat::Pbm);
    let arc = tmp.path().join("x.vlz");
    let arc_s = arc.to_str().unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    std::fs::write(dir.join("t.pbm"), &trailing).unwrap();
    let err = fails(&tiny("compress", dir.to_str().unwrap(), arc_s));
    assert!(err.contains("t.pbm") && err.contains("after its"), "{err}");
    std::fs::remove_file(dir.join("t.pbm")).unwrap();
    let crlf = [b"P4\r\n28 28\r\n".as_slice(), &good[9..]].concat();
    std::fs::write(dir.join("c.pbm"), &crlf).unwrap();
    let err = fails(&tiny("compress", dir.to_str().unwrap(), arc_s));
    assert!(err.contains("c.pbm") && err.contains("CR LF"), "{err}");
    assert!(!arc.exists());
}

#[test]
fn decompress_checks_the_output_folder_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    // Even a corrupt archive is not read once the output folder is known to be unusable.
    let bad = tmp.path().join("bad.vlz");
    std::fs::write(&bad, b"VLAEZIP\0garbage").unwrap();
    let err = fails(&tiny(
        "decompress",
        bad.to_str().unwrap(),
        out.to_str().unwrap(),
    ));
    assert!(err.contains("not empty"), "{err}");
}

/// `-o` naming a FIFO (or /dev/null) writes the archive into it, with or without
/// --force: a staging file renamed over it would replace the node.
#[cfg(unix)]
#[test]
fn an_output_fifo_is_written_into_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("d.pbm");
    write_digit(&page, 3);
    let file = tmp.path().join("d.vlz");
    ok_tiny("compress", &page, &file);
    let fifo = tmp.path().join("fifo");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for force in [false, true] {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let mut args = tiny("compress", page.to_str().unwrap(), fifo.to_str().unwrap()).to_vec();
        if force {
            args.push("--force");
        }
        ok(&args);
        assert_eq!(reader.join().unwrap(), std::fs::read(&file).unwrap());
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}

/// An image whose name is the folder of another image's (`a.pbm` from one argument,
/// `a.pbm/x.pbm` from another) could never be decompressed: compress refuses it, naming
/// both inputs, and writes nothing; so it does a link to a folder.
#[test]
fn a_file_that_is_also_a_folder_or_a_linked_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (top, other) = (tmp.path().join("top"), tmp.path().join("other"));
    std::fs::create_dir_all(top.join("a.pbm")).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let bytes = encode_image(&digit(1), ImageFormat::Pbm);
    std::fs::write(top.join("a.pbm/x.pbm"), &bytes).unwrap();
    std::fs::write(other.join("a.pbm"), &bytes).unwrap();
    let arc = tmp.path().join("x.vlz");
    let err = fails(&[
        "compress",
        top.to_str().unwrap(),
        other.join("a.pbm").to_str().unwrap(),
        "-o",
        arc.to_str().unwrap(),
        "--model",
        TINY,
    ]);
    assert!(
        err.contains("a.pbm: would be both a file") && err.contains("x.pbm"),
        "{err}"
    );
    assert!(!arc.exists());
    // A link to a folder inside a folder is an error, not images passed by unseen.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(top.join("a.pbm"), other.join("linked")).unwrap();
        let err = fails(&tiny(
            "compress",
            other.to_str().unwrap(),
            arc.to_str().unwrap(),
        ));
        assert!(err.contains("linked: a symbolic link to a folder"), "{err}");
        assert!(!arc.exists());
        // A link into the folder itself is passed by: its images are stored under their
        // own paths.
        std::fs::remove_file(other.join("linked")).unwrap();
        std::fs::create_dir(other.join("real")).unwrap();
        std::fs::write(other.join("real/y.pbm"), &bytes).unwrap();
        std::os::unix::fs::symlink(other.join("real"), other.join("latest")).unwrap();
        ok_tiny("compress", &other, &arc);
        let list = String::from_utf8(ok(&["list", arc.to_str().unwrap()]).stdout).unwrap();
        assert!(
            list.contains("real/y.pbm") && !list.contains("latest"),
            "{list}"
        );
    }
}

/// An archive made by the library's lower layer with `a.pbm` beside `a.pbm/x.pbm` (which
/// compress and the library's `compress` refuse) fails `test`, and decompress refuses it
/// before decoding, leaving no output.
#[test]
fn an_archive_whose_images_could_not_all_be_written_fails_test() {
    use vlae_zip::archive::{self, CompressOptions, LaneCoders, DEFAULT_LATENT_BITS};
    use vlae_zip::container::Entry;
    let pixels = digit(1).pixels;
    let entry = |name: &str| Entry {
        name: name.into(),
        format: ImageFormat::Pbm,
        width: 28,
        height: 28,
    };
    let entries = [entry("a.pbm"), entry("a.pbm/x.pbm")];
    let images = [pixels.clone(), pixels.clone()];
    let opts = CompressOptions {
        latent_bits: DEFAULT_LATENT_BITS,
        adapt_latent_bits: false,
        lanes: Some(1),
        coders: LaneCoders::Smallest,
        samples: 1,
    };
    let mnist = vlae_zip::models::built_in("mnist")
        .unwrap()
        .network()
        .unwrap();
    let bytes = archive::compress(&[&mnist], &entries, &images, opts, &|_| {}).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("clash.vlz");
    std::fs::write(&arc, bytes).unwrap();
    let err = fails(&["test", arc.to_str().unwrap()]);
    assert!(err.contains("a.pbm: would be both a file"), "{err}");
    let out = tmp.path().join("out");
    let err = fails(&[
        "decompress",
        arc.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("a.pbm: would be both a file"), "{err}");
    assert!(!out.exists());
    // Decompressing only one of them writes it.
    ok(&[
        "decompress",
        arc.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "a.pbm/x.pbm",
    ]);
    assert_eq!(read_all(&out).len(), 1);
    let image = |name: &str| vlae_zip::Image::pbm(name, 28, 28, pixels.clone());
    let refused = vlae_zip::compress(
        &[image("a.pbm"), image("a.pbm/x.pbm")],
        &vlae_zip::Options::default(),
    );
    assert!(
        matches!(refused, Err(vlae_zip::Error::Layout(_))),
        "{refused:?}"
    );
}

/// A `--model` that is neither built in nor a file, and an IDX file of no images, are
/// errors that name them.
#[test]
fn unknown_models_and_empty_idx_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("d.pbm");
    write_digit(&page, 2);
    let arc = tmp.path().join("d.vlz");
    let err = fails(&[
        "compress",
        page.to_str().unwrap(),
        "-o",
        arc.to_str().unwrap(),
        "--model",
        "nosuch",
    ]);
    assert!(
        err.contains("--model nosuch: neither") && err.contains("mnist"),
        "{err}"
    );
    let idx = tmp.path().join("none.idx3-ubyte");
    let mut header = vec![0, 0, 8, 3];
    for v in [0u32, 28, 28] {
        header.extend_from_slice(&v.to_be_bytes());
    }
    std::fs::write(&idx, header).unwrap();
    let err = fails(&["bench", idx.to_str().unwrap()]);
    assert!(
        err.contains("none.idx3-ubyte") && err.contains("no images"),
        "{err}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn names_that_collide_are_never_overwritten() {
    // Two entries whose names collide once written (a case-insensitive filesystem would
    // map "A.pbm" and "a.pbm" to one file): simulated with a file that already exists in
    // the staging folder, which `create_new` refuses.
    let tmp = tempfile::tempdir().unwrap();
    let staged = vlae_zip::folder::StagedFolder::create(&tmp.path().join("out")).unwrap();
    let e = vlae_zip::container::Entry {
        name: "a.pbm".into(),
        format: ImageFormat::Pbm,
        width: 1,
        height: 1,
    };
    staged.write(&e, vec![1]).unwrap();
    assert!(staged.write(&e, vec![0]).is_err());
}

#[test]
fn an_installed_binary_works_from_an_empty_folder_with_built_in_models() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for i in 0..12 {
        std::fs::write(
            input.join(format!("{i:02}.pbm")),
            encode_image(&digit(i), ImageFormat::Pbm),
        )
        .unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
            .args(args)
            .arg("-q")
            .current_dir(&empty)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let arc = tmp.path().join("x.vlz");
    let out_dir = tmp.path().join("out");
    run(&[
        "compress",
        input.to_str().unwrap(),
        "-o",
        arc.to_str().unwrap(),
    ]);
    run(&[
        "decompress",
        arc.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(read_all(&out_dir), read_all(&input));
    // The digits went to the built-in MNIST model, which `models` lists and `info` names.
    let listing = String::from_utf8(run(&["models"]).stdout).unwrap();
    assert!(
        listing.starts_with("mnist\n") && listing.contains("tile         28×28"),
        "{listing}"
    );
    let info = String::from_utf8(run(&["info", arc.to_str().unwrap()]).stdout).unwrap();
    let id = listing
        .lines()
        .find_map(|l| l.strip_prefix("  archive id   "))
        .unwrap();
    assert!(
        info.contains(&format!("model          {id}")),
        "{info}\n{listing}"
    );
    // By name too.
    let by_name = tmp.path().join("y.vlz");
    run(&[
        "compress",
        input.to_str().unwrap(),
        "-o",
        by_name.to_str().unwrap(),
        "--model",
        "mnist",
    ]);
    assert_eq!(
        std::fs::read(&arc).unwrap(),
        std::fs::read(&by_name).unwrap()
    );
}

/// `show` draws originals, reconstructions and prior samples: a PNG three panels high,
/// 12 digits wide at the default scale of 4, and a page crop for a page.
#[test]
fn show_writes_a_figure_of_the_expected_size() {
    let tmp = tempfile::tempdir().unwrap();
    let fig = tmp.path().join("fig.png");
    let f = fig.to_str().unwrap();
    ok(&[
        "show",
        "corpus/binarized-mnist/test-images.idx3-ubyte.gz",
        "-o",
        f,
        "--model",
        TINY,
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&fig).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (12 * 28 * 4, 3 * 28 * 4 + 2 * 4));

    let page = tmp.path().join("page.pbm");
    let pixels = (0..300 * 200)
        .map(|p| u8::from(p % 7 == 0 && (p / 300) % 20 < 9))
        .collect();
    let img = BitImage {
        width: 300,
        height: 200,
        pixels,
    };
    std::fs::write(&page, encode_image(&img, ImageFormat::Pbm)).unwrap();
    ok(&[
        "show",
        page.to_str().unwrap(),
        "-o",
        f,
        "--model",
        "tests/data/tiny-context.safetensors",
        "--scale",
        "1",
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&fig).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    // A crop of 12 × 4 tiles of 8 pixels.
    assert_eq!((info.width, info.height), (96, 3 * 32 + 2 * 4));
}

/// `auto` gives a text page to the built-in documents model and digits to the MNIST
/// model, whether as files or as one image of 12 × 12 digits (whose sample, when it was
/// cut at the documents model's tile rows, went through the digits' middles): each
/// archive names the model `vlae-zip models` lists for it.
#[test]
fn auto_picks_the_documents_model_for_a_page_and_mnist_for_digits() {
    let tmp = tempfile::tempdir().unwrap();
    let listing = String::from_utf8(ok(&["models"]).stdout).unwrap();
    let id_of = |name: &str| -> String {
        let block = listing.split(&format!("{name}\n")).nth(1).unwrap();
        block
            .lines()
            .find_map(|l| l.strip_prefix("  archive id   "))
            .unwrap()
            .to_string()
    };
    let digits = tmp.path().join("digits");
    std::fs::create_dir(&digits).unwrap();
    for i in 0..20 {
        std::fs::write(
            digits.join(format!("{i:02}.pbm")),
            encode_image(&digit(i), ImageFormat::Pbm),
        )
        .unwrap();
    }
    let side = 12;
    let mut grid = BitImage {
        width: 28 * side,
        height: 28 * side,
        pixels: vec![0; 28 * 28 * side * side],
    };
    for i in 0..side * side {
        let (x, y) = (28 * (i % side), 28 * (i / side));
        for (r, row) in digit(100 + i).pixels.chunks(28).enumerate() {
            let at = (y + r) * grid.width + x;
            grid.pixels[at..at + 28].copy_from_slice(row);
        }
    }
    let grid_file = tmp.path().join("grid.pbm");
    std::fs::write(&grid_file, encode_image(&grid, ImageFormat::Pbm)).unwrap();
    for (input, model) in [
        ("tests/data/page-crop.pbm", "documents"),
        (digits.to_str().unwrap(), "mnist"),
        (grid_file.to_str().unwrap(), "mnist"),
    ] {
        let arc = tmp.path().join("x.vlz");
        let a = arc.to_str().unwrap();
        // The chain alone: page mixing would code the page crop without a model.
        ok(&[
            "compress",
            input,
            "-o",
            a,
            "--force",
            "--lane-coder",
            "bits-back",
        ]);
        let info = String::from_utf8(ok(&["info", a]).stdout).unwrap();
        assert!(
            info.contains(&format!("model          {}", id_of(model))),
            "{input}: {info}"
        );
        let out = tmp.path().join("out");
        ok(&["decompress", a, "-o", out.to_str().unwrap()]);
        std::fs::remove_dir_all(&out).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Files and processes.

/// The entries of `dir` whose names mark them as staging paths.
fn staging_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("vlae-zip-partial"))
        .collect()
}

/// A process id that no process has: a child's, after it was reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A page whose decoding takes seconds (a bits-back lane with page memory), so that a
/// signal finds the decompression under way.
const SLOW_PAGE: &str = "tests/data/golden/memory.vlz";

/// SIGTERM or SIGINT during decoding: the process ends by that signal, and neither the
/// staging folder nor the output is left.
#[cfg(unix)]
#[test]
fn an_interrupted_decompress_leaves_nothing_behind() {
    use std::os::unix::process::ExitStatusExt;
    for (signal, number) in [("TERM", 15), ("INT", 2)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
            .args(["-q", "decompress", SLOW_PAGE, "-o", out.to_str().unwrap()])
            .spawn()
            .unwrap();
        // The staging folder appears once the archive is parsed; decoding goes on after.
        while staging_in(tmp.path()).is_empty() {
            assert!(child.try_wait().unwrap().is_none(), "ended before staging");
            std::thread::yield_now();
        }
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(number), "{signal}: {status:?}");
        assert!(staging_in(tmp.path()).is_empty(), "{signal}: staging left");
        assert!(!out.exists(), "{signal}: output left");
    }
}

/// Staging paths of processes that no longer run (a run killed with SIGKILL) are removed
/// by the next run that stages in the same folder, whatever output they were for and in
/// either naming; a live process's are kept.
#[test]
fn stale_staging_of_dead_runs_is_removed_and_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (dead, live) = (dead_pid(), std::process::id());
    let leftovers = [
        format!(".out.vlae-zip-partial-{dead}-a1B2c3D4"),
        format!(".out.vlae-zip-partial-{dead}"),
        format!(".other.vlae-zip-partial-{dead}-zz"),
    ];
    for name in &leftovers {
        std::fs::create_dir(tmp.path().join(name)).unwrap();
        std::fs::write(tmp.path().join(name).join("00000.pbm"), "partial").unwrap();
    }
    let kept = format!(".out.vlae-zip-partial-{live}-x");
    std::fs::create_dir(tmp.path().join(&kept)).unwrap();
    let out = tmp.path().join("out");
    ok(&[
        "decompress",
        "tests/data/golden/mnist.vlz",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(staging_in(tmp.path()), [kept]);
    assert!(std::fs::read_dir(&out).unwrap().count() > 0);

    // Inside an empty output folder: a dead run's staging does not make it non-empty.
    let inside = tmp.path().join("inside");
    std::fs::create_dir_all(inside.join(format!(".vlae-zip-partial-{dead}-q"))).unwrap();
    ok(&[
        "decompress",
        "tests/data/golden/mnist.vlz",
        "-o",
        inside.to_str().unwrap(),
    ]);
    assert!(staging_in(&inside).is_empty());
}

/// The staging folder is made only once the archive has been read and checked: while the
/// archive, a FIFO, has been opened but not yet written, nothing is staged. The FIFO is
/// then read as a stream.
#[cfg(unix)]
#[test]
fn nothing_is_staged_before_the_archive_is_read_and_a_fifo_archive_works() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("x.vlz");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = tmp.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args([
            "-q",
            "decompress",
            fifo.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the write end returns once the binary has opened the read end.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    assert!(staging_in(tmp.path()).is_empty(), "staged before reading");
    use std::io::Write;
    writer
        .write_all(&std::fs::read("tests/data/golden/mnist.vlz").unwrap())
        .unwrap();
    drop(writer);
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(std::fs::read_dir(&out).unwrap().count() > 0);
    // A path that names standard input, a pipe, is read as a stream too.
    let piped = tmp.path().join("piped");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args([
            "-q",
            "decompress",
            "/dev/stdin",
            "-o",
            piped.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read("tests/data/golden/mnist.vlz").unwrap())
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(read_all(&piped), read_all(&out));
}

/// Any empty folder takes the output: `.`, a symbolic link to one (which stays a link),
/// a plain one; the images land in it and no staging is left.
#[cfg(unix)]
#[test]
fn any_empty_folder_is_an_output() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = std::fs::canonicalize("tests/data/golden/mnist.vlz").unwrap();
    let reference = tmp.path().join("reference");
    ok(&[
        "decompress",
        archive.to_str().unwrap(),
        "-o",
        reference.to_str().unwrap(),
    ]);
    let want = read_all(&reference);

    let here = tmp.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args(["-q", "decompress", archive.to_str().unwrap(), "-o", "."])
        .current_dir(&here)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_all(&here), want);

    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ok(&[
        "decompress",
        archive.to_str().unwrap(),
        "-o",
        link.to_str().unwrap(),
    ]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read_all(&target), want);

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    ok(&[
        "decompress",
        archive.to_str().unwrap(),
        "-o",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(read_all(&empty), want);
    for dir in [tmp.path(), &here, &target, &empty] {
        assert!(staging_in(dir).is_empty(), "{}", dir.display());
    }
}

/// Without `-o`, the output is the archive's path without `.vlz`; an existing non-empty
/// folder there is refused, and an archive from standard input or of another name needs
/// `-o`.
#[test]
fn decompress_without_an_output_writes_beside_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("digits.vlz");
    std::fs::copy("tests/data/golden/mnist.vlz", &arc).unwrap();
    ok(&["decompress", arc.to_str().unwrap()]);
    let out = tmp.path().join("digits");
    assert!(std::fs::read_dir(&out).unwrap().count() > 0);
    assert!(fails(&["decompress", arc.to_str().unwrap()]).contains("not empty"));
    let other = tmp.path().join("digits.bin");
    std::fs::copy(&arc, &other).unwrap();
    assert!(fails(&["decompress", other.to_str().unwrap()]).contains("-o"));
    assert!(fails(&["decompress", "-"]).contains("-o"));
}

/// `-o` of compress never replaces what is there without --force, not even a symbolic
/// link to nothing (which the old check, `exists`, took for nothing); a folder is never
/// replaced. The archive gets the mode a new file gets under the umask.
#[cfg(unix)]
#[test]
fn compress_replaces_an_output_only_with_force() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one.pbm");
    write_digit(&one, 0);
    let link = tmp.path().join("link.vlz");
    let nowhere = tmp.path().join("nowhere.vlz");
    std::os::unix::fs::symlink(&nowhere, &link).unwrap();
    let err = fails(&tiny(
        "compress",
        one.to_str().unwrap(),
        link.to_str().unwrap(),
    ));
    assert!(err.contains("link.vlz") && err.contains("--force"), "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!nowhere.exists());
    let mut forced = tiny("compress", one.to_str().unwrap(), link.to_str().unwrap()).to_vec();
    forced.push("--force");
    ok(&forced);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_file());

    let folder = tmp.path().join("folder.vlz");
    std::fs::create_dir(&folder).unwrap();
    let mut into_folder =
        tiny("compress", one.to_str().unwrap(), folder.to_str().unwrap()).to_vec();
    into_folder.push("--force");
    assert!(fails(&into_folder).contains("is a folder"));

    let plain = tmp.path().join("plain.vlz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022 && exec '{}' -q compress '{}' -o '{}'",
            env!("CARGO_BIN_EXE_vlae-zip"),
            one.display(),
            plain.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let mode = std::fs::metadata(&plain).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    assert!(staging_in(tmp.path()).is_empty());
}

/// Inputs are regular files or `-`: a FIFO (in a folder or named), a device or a socket
/// is refused by name before it is read; `-` reads one image from standard input, stored
/// as stdin.pbm.
#[cfg(unix)]
#[test]
fn inputs_must_be_regular_files_or_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    write_digit(dir.join("a.pbm"), 0);
    let fifo = dir.join("f.pbm");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let arc = tmp.path().join("x.vlz");
    // `timeout` ends a binary that would wait on the FIFO for a writer forever.
    let guarded = |input: &Path| {
        Command::new("timeout")
            .args(["60", env!("CARGO_BIN_EXE_vlae-zip"), "-q", "compress"])
            .arg(input)
            .args(["-o", arc.to_str().unwrap(), "--model", TINY])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for input in [dir.as_path(), fifo.as_path(), Path::new("/dev/zero")] {
        let out = guarded(input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", input.display());
        assert!(err.contains("not a regular file"), "{err}");
        let named = if input == dir { fifo.as_path() } else { input };
        assert!(err.contains(named.to_str().unwrap()), "{err}");
    }
    assert!(!arc.exists());

    let mut child = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args([
            "-q",
            "compress",
            "-",
            "-o",
            arc.to_str().unwrap(),
            "--model",
            TINY,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&encode_image(&digit(3), ImageFormat::Pbm))
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = tmp.path().join("out");
    ok_tiny("decompress", &arc, &out);
    assert_eq!(read_all(&out), vec![("stdin.pbm".to_string(), digit(3))]);
}

/// What an archive would create is checked against the limits before anything is
/// staged or decoded; the limits can be raised or lifted.
#[test]
fn decompress_refuses_more_than_its_limits_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    ok_tiny("compress", &dir, &arc);
    let out = tmp.path().join("out");
    let (arc_s, out_s) = (arc.to_str().unwrap(), out.to_str().unwrap());
    let run = |extra: &[&'static str]| {
        let mut args = tiny("decompress", arc_s, out_s).to_vec();
        args.extend_from_slice(extra);
        args
    };
    let err = fails(&run(&["--max-files", "5"]));
    assert!(
        err.contains("6 files, more than the limit of 5 files"),
        "{err}"
    );
    assert!(err.contains("x.vlz"), "{err}");
    let err = fails(&run(&["--max-bytes", "1k"]));
    assert!(err.contains("more than the limit of 1,000 bytes"), "{err}");
    assert!(!out.exists() && staging_in(tmp.path()).is_empty());
    ok(&run(&["--max-files", "6", "--max-bytes", "1MB"]));
    std::fs::remove_dir_all(&out).unwrap();
    ok(&run(&["--allow-large"]));
    assert_eq!(read_all(&out), read_all(&dir));
    // `info` writes nothing and is under no limit.
    ok(&["info", arc_s]);
}

/// A stored name that decompress could not create (longer, with the staging folder's
/// name before it, than the kernel takes) is refused when compressing, by name.
#[test]
fn names_too_long_to_decompress_are_refused_by_compress() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    let deep: PathBuf = (0..16)
        .map(|i| format!("{i:02}{}", "d".repeat(238)))
        .collect();
    std::fs::create_dir_all(dir.join(&deep)).unwrap();
    std::fs::write(
        dir.join(&deep).join("x.pbm"),
        encode_image(&digit(0), ImageFormat::Pbm),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args(["-q", "compress", "in", "-o", "x.vlz", "--model"])
        .arg(std::fs::canonicalize(TINY).unwrap())
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("x.pbm") && err.contains("longer than the 3839 bytes"),
        "{err}"
    );
    assert!(!tmp.path().join("x.vlz").exists());
}

// ---------------------------------------------------------------------------------------
// Conventions of compression tools.

/// `test` decodes and checks every archive named, writes nothing, reports each, and
/// fails if any is faulty.
#[test]
fn test_checks_archives_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::canonicalize("tests/data/golden/mnist.vlz").unwrap();
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    let bad = tmp.path().join("bad.vlz");
    std::fs::write(&bad, &bytes).unwrap();
    let run = |args: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
            .arg("test")
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let out = run(&[&good]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("mnist.vlz: ok, "), "{said}");
    let out = run(&[&bad, &good]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.vlz failed the test") && err.contains("checksum"),
        "{err}"
    );
    assert!(err.contains("1 of 2 archives failed"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("mnist.vlz: ok"));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "test wrote something");
}

/// `list` and `info` speak in words: formats as "PNG, 16-bit grey", coders by name, the
/// model by its built-in name; no Rust debug text.
#[test]
fn list_and_info_describe_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    ok_tiny("compress", &dir, &arc);
    let list = String::from_utf8(ok(&["list", arc.to_str().unwrap()]).stdout).unwrap();
    let info = String::from_utf8(ok(&["info", arc.to_str().unwrap()]).stdout).unwrap();
    for text in [&list, &info] {
        for debug in ["PngGray", "Pbm,", "bit_depth", "{", "BitsBack", "Context {"] {
            assert!(!text.contains(debug), "{debug:?} in:\n{text}");
        }
    }
    assert!(
        list.contains("PNG, 16-bit grey") && list.contains("nested/c16.png"),
        "{list}"
    );
    assert!(list.contains("PBM") && list.contains("28×28"), "{list}");
    assert!(info.contains("a.pbm (PBM, 28×28)"), "{info}");
    let images: Vec<&str> = list
        .lines()
        .filter(|l| l.ends_with(".pbm") || l.ends_with(".png"))
        .collect();
    assert_eq!(images.len(), 6, "{list}");
    let listed = String::from_utf8(ok(&["info", "--list", arc.to_str().unwrap()]).stdout).unwrap();
    assert!(listed.contains("nested/deeper/d.pbm"), "{listed}");
    let pages = String::from_utf8(ok(&["list", "tests/data/golden/memory.vlz"]).stdout).unwrap();
    assert!(
        pages.contains("bits-back chain, model") && pages.contains("page memory"),
        "{pages}"
    );
    let mixing = String::from_utf8(ok(&["list", "tests/data/golden/mixing.vlz"]).stdout).unwrap();
    assert!(mixing.contains("page mixing"), "{mixing}");
}

/// `decompress ARCHIVE NAME…` writes only the images named, and those in the folders
/// named; a name the archive lacks is an error before anything is written.
#[test]
fn decompress_writes_only_the_images_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    ok_tiny("compress", &dir, &arc);
    let out = tmp.path().join("out");
    let mut args = tiny("decompress", arc.to_str().unwrap(), out.to_str().unwrap()).to_vec();
    args.extend(["a.pbm", "nested/deeper"]);
    ok(&args);
    let names: Vec<String> = read_all(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a.pbm", "nested/deeper/d.pbm"]);
    let want: Vec<_> = read_all(&dir)
        .into_iter()
        .filter(|(n, _)| names.contains(n))
        .collect();
    assert_eq!(read_all(&out), want);
    let other = tmp.path().join("other");
    let mut args = tiny("decompress", arc.to_str().unwrap(), other.to_str().unwrap()).to_vec();
    args.push("nested/missing.png");
    assert!(fails(&args).contains("nested/missing.png"));
    assert!(!other.exists());
}

/// `-T N` sizes the thread pool, and 0 is a usage error.
#[test]
fn threads_option_sizes_the_pool() {
    let out = ok(&[
        "-T",
        "3",
        "bench",
        "tests/data/page-crop.pbm",
        "--json",
        "--model",
        TINY,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["threads"], 3);
    assert_eq!(vlae(&["--threads", "0", "models"]).status.code(), Some(2));
}

/// An archive is never written to a terminal (a pseudo-terminal from `script` here).
#[test]
fn archives_are_never_written_to_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one.pbm");
    write_digit(&one, 0);
    let line = format!(
        "'{}' -q compress '{}' -o - --model {TINY}; echo \"status $?\"",
        env!("CARGO_BIN_EXE_vlae-zip"),
        one.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("refusing to write an archive to a terminal"),
        "{screen}"
    );
    assert!(screen.contains("status 1"), "{screen}");
    assert!(!screen.contains("VLZ"), "{screen}");
}

/// 0, 1 and 2 as `--help` says: success, an error, a usage error.
#[test]
fn exit_status_is_documented_and_kept() {
    for help in [
        &["--help"][..],
        &["decompress", "--help"],
        &["test", "--help"],
    ] {
        let text = String::from_utf8(ok(help).stdout).unwrap();
        assert!(
            text.contains("Exit status: 0 when everything succeeded; 1 on an error"),
            "{text}"
        );
        assert!(text.contains("2 on a usage error"), "{text}");
    }
    assert_eq!(
        vlae(&["compress", "--no-such-option"]).status.code(),
        Some(2)
    );
    assert_eq!(vlae(&["info", "/no/such.vlz"]).status.code(), Some(1));
}

/// Messages count in words: one image, not "1 images".
#[test]
fn messages_use_the_singular_for_one() {
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one.pbm");
    write_digit(&one, 0);
    let arc = tmp.path().join("x.vlz");
    let out = tmp.path().join("out");
    let talk = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let said = talk(&tiny(
        "compress",
        one.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    assert!(
        said.starts_with("1 image → ") && said.contains(" bytes"),
        "{said}"
    );
    let said = talk(&tiny(
        "decompress",
        arc.to_str().unwrap(),
        out.to_str().unwrap(),
    ));
    assert!(said.starts_with("1 image → "), "{said}");
    let said = talk(&["test", arc.to_str().unwrap()]);
    assert!(said.contains("ok, 1 image\n"), "{said}");
}

/// Progress bars are drawn on a terminal only: with standard error a pipe, and without
/// -q, nothing is written there.
#[test]
fn progress_bars_stay_off_pipes() {
    let tmp = tempfile::tempdir().unwrap();
    let arc = tmp.path().join("x.vlz");
    let out = tmp.path().join("out");
    for args in [
        &tiny("compress", "corpus/test-1000", arc.to_str().unwrap())[..],
        &tiny("decompress", arc.to_str().unwrap(), out.to_str().unwrap()),
        &["test", arc.to_str().unwrap()],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
            .args(args)
            .output()
            .unwrap();
        assert!(run.status.success());
        assert!(
            run.stderr.is_empty(),
            "{args:?}: {:?}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

/// `--memory-limit` refuses, before anything is staged, an archive whose decoding needs
/// more (a page-mixing lane holds about 138 MiB of tables), and lets it through above that.
#[test]
fn decompress_keeps_within_its_memory_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let archive = "tests/data/golden/mixing.vlz";
    let refused = fails(&[
        "decompress",
        archive,
        "-o",
        out.to_str().unwrap(),
        "--memory-limit",
        "64MiB",
    ]);
    assert!(refused.contains("--memory-limit"), "{refused}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    ok(&[
        "decompress",
        archive,
        "-o",
        out.to_str().unwrap(),
        "--memory-limit",
        "1GiB",
    ]);
    assert!(out.join("page.pbm").exists());
}

/// The pages of the TIFFs in tests/data, rebuilt from tests/data/page-crop.pbm: the page
/// itself; the page mirrored left to right, its top-left 200×150; its 77×50 at column 13,
/// row 7 (an odd width, so rows end mid-byte).
fn tiff_test_pages() -> Vec<BitImage> {
    let (page, _) = vlae_zip::image_io::read_image(Path::new("tests/data/page-crop.pbm")).unwrap();
    let crop = |img: &BitImage, left: usize, top: usize, width: usize, height: usize| BitImage {
        width,
        height,
        pixels: (top..top + height)
            .flat_map(|y| img.pixels[y * img.width + left..][..width].to_vec())
            .collect(),
    };
    let mut mirrored = page.clone();
    for row in mirrored.pixels.chunks_mut(page.width) {
        row.reverse();
    }
    vec![
        page.clone(),
        crop(&mirrored, 0, 0, 200, 150),
        crop(&page, 13, 7, 77, 50),
    ]
}

fn tiff_pages(path: &Path) -> Vec<BitImage> {
    vlae_zip::image_io::read_image_file(path)
        .unwrap()
        .into_iter()
        .map(|(img, format)| {
            assert_eq!(format, ImageFormat::TiffPage);
            img
        })
        .collect()
}

/// The Compression tag of every page of a TIFF file.
fn tiff_compressions(path: &Path) -> Vec<u16> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut decoder = tiff::decoder::Decoder::new(file).unwrap();
    let mut codes = Vec::new();
    loop {
        codes.push(
            decoder
                .get_tag_unsigned(tiff::tags::Tag::Compression)
                .unwrap(),
        );
        if !decoder.more_images() {
            return codes;
        }
        decoder.next_image().unwrap();
    }
}

/// The test TIFFs were made once with libtiff's tools and netpbm, in a folder holding
/// page-crop.pbm:
///
/// ```text
/// pamcut -left 13 -top 7 -width 77 -height 50 page-crop.pbm > p3.pbm
/// pnmflip -lr page-crop.pbm | pamcut -left 0 -top 0 -width 200 -height 150 > p2.pbm
/// cp page-crop.pbm p1.pbm
/// for i in 1 2 3; do pnmtotiff -miniswhite -none p$i.pbm > w$i.tif
///                    pnmtotiff -minisblack -none p$i.pbm > b$i.tif; done
/// tiffcp -c g4 w1.tif w2.tif w3.tif pages-g4.tif
/// tiffcp -c lzw -r 40 w1.tif w2.tif w3.tif pages-lzw.tif
/// tiffcp -c packbits b1.tif b2.tif b3.tif pages-packbits.tif
/// tiffcp -c none w1.tif w2.tif w3.tif pages-none.tif
/// tiffcp -c zip w2.tif w3.tif pages-deflate.tif
/// tiffcp -c g4 -t -w 64 -l 64 b1.tif tiled-g4.tif
/// tiffcp -c lzw -t -w 16 -l 16 pages-none.tif,0 pages-none.tif,1 tiled-lzw.tif
/// tiffcp -a -c lzw -t -w 32 -l 16 pages-packbits.tif,2 tiled-lzw.tif
/// tiffcp -c g3 w3.tif page3-g3.tif
/// tiffcp -c g3:1d -r 40 pages-none.tif pages-g3-1d.tif
/// tiffcp -c g3:2d pages-none.tif pages-g3-2d.tif
/// tiffcp -B -c g3:2d:fill pages-none.tif pages-g3-aligned.tif
/// tiffcp -c g3:1d:fill -t -w 64 -l 64 pages-packbits.tif,0 tiled-g3.tif
/// ./tiff-rle pages-none.tif pages-rle.tif 40      # tiff-rle.c, beside the files
/// tiffcp -f lsb2msb -c none pages-none.tif,0 lsb-none-lzw-g3.tif
/// tiffcp -a -f lsb2msb -c lzw pages-none.tif,1 lsb-none-lzw-g3.tif
/// tiffcp -a -f lsb2msb -c g3:2d pages-none.tif,2 lsb-none-lzw-g3.tif
/// tiffcp -f lsb2msb -c packbits pages-packbits.tif,0 lsb-packbits-zip-g4.tif
/// tiffcp -a -f lsb2msb -c zip pages-none.tif,1 lsb-packbits-zip-g4.tif
/// tiffcp -a -f lsb2msb -c g4 pages-none.tif,2 lsb-packbits-zip-g4.tif
/// ```
///
/// So: Group 4, LZW in strips of 40 rows, PackBits, uncompressed and Deflate (pages 2
/// and 3 only), WhiteIsZero but for PackBits and the tiled Group 4 page (BlackIsZero).
/// LZW in tiles of 16×16 (pages 1 and 2, WhiteIsZero) and 32×16 (page 3, BlackIsZero),
/// which the tiff crate 0.11 refuses as truncated.
/// Group 3 (page 3 alone; 1-D in strips of 40 rows; 1-D and 2-D rows mixed; the same with
/// EOLs byte-aligned, big-endian; tiled 1-D with EOLs byte-aligned, BlackIsZero) and CCITT
/// RLE in strips of 40 rows, all written by libtiff. The lsb- files hold one page of each
/// compression named, FillOrder 2 (libtiff reverses the bits of each byte of a strip after
/// compressing it); the PackBits page is BlackIsZero. libtiff (tiffcp -c none) decodes
/// each of these files to the pages of pages-none.tif (tiffcmp).
#[test]
fn multi_page_tiffs_of_every_compression_round_trip_as_group_4() {
    let pages = tiff_test_pages();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scans");
    std::fs::create_dir(&dir).unwrap();
    for name in [
        "pages-g4.tif",
        "pages-lzw.tif",
        "pages-packbits.tif",
        "pages-none.tif",
    ] {
        let from = Path::new("tests/data").join(name);
        assert_eq!(tiff_pages(&from), pages, "{name}");
        std::fs::copy(&from, dir.join(name)).unwrap();
    }
    assert_eq!(tiff_pages(Path::new("tests/data/tiled-g4.tif")), pages[..1]);
    assert_eq!(tiff_pages(Path::new("tests/data/tiled-lzw.tif")), pages);
    assert_eq!(
        tiff_pages(Path::new("tests/data/pages-deflate.tif")),
        pages[1..]
    );
    std::fs::copy("tests/data/tiled-g4.tif", dir.join("tiled-g4.tiff")).unwrap();
    std::fs::copy("tests/data/page-crop.pbm", dir.join("pages-g4.tif.pbm")).unwrap();
    let arc = tmp.path().join("x.vlz");
    let out = tmp.path().join("out");
    ok_tiny("compress", &dir, &arc);
    let list = String::from_utf8(ok(&["list", arc.to_str().unwrap()]).stdout).unwrap();
    assert!(
        list.contains("pages-lzw.tif/0003") && list.contains("TIFF page"),
        "{list}"
    );
    ok_tiny("decompress", &arc, &out);
    for name in [
        "pages-g4.tif",
        "pages-lzw.tif",
        "pages-packbits.tif",
        "pages-none.tif",
    ] {
        let back = out.join(name);
        assert_eq!(tiff_pages(&back), pages, "{name}");
        assert_eq!(tiff_compressions(&back), [4, 4, 4], "{name}");
    }
    assert_eq!(tiff_pages(&out.join("tiled-g4.tiff")), pages[..1]);
    assert!(out.join("pages-g4.tif.pbm").is_file());
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    // One page alone, asked for by name, is written as a TIFF of that page.
    let one = tmp.path().join("one");
    ok(&[
        "decompress",
        arc.to_str().unwrap(),
        "pages-none.tif/0002",
        "-o",
        one.to_str().unwrap(),
        "--model",
        TINY,
    ]);
    assert_eq!(tiff_pages(&one.join("pages-none.tif")), pages[1..2]);
}

/// CCITT Group 3 (1-D, 2-D, EOLs byte-aligned, tiled), CCITT RLE, and pages stored
/// least significant bit first (FillOrder 2) in every compression read: each page equals
/// the same page uncompressed, and comes back as Group 4.
#[test]
fn group_3_rle_and_fill_order_2_tiffs_read_as_libtiff_reads_them() {
    let pages = tiff_pages(Path::new("tests/data/pages-none.tif"));
    assert_eq!(pages, tiff_test_pages());
    assert_eq!(tiff_pages(Path::new("tests/data/page3-g3.tif")), pages[2..]);
    assert_eq!(tiff_pages(Path::new("tests/data/tiled-g3.tif")), pages[..1]);
    for name in [
        "pages-g3-1d.tif",
        "pages-g3-2d.tif",
        "pages-g3-aligned.tif",
        "pages-rle.tif",
        "lsb-none-lzw-g3.tif",
        "lsb-packbits-zip-g4.tif",
    ] {
        assert_eq!(
            tiff_pages(&Path::new("tests/data").join(name)),
            pages,
            "{name}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scans");
    std::fs::create_dir(&dir).unwrap();
    for name in ["pages-g3-2d.tif", "pages-rle.tif", "lsb-none-lzw-g3.tif"] {
        std::fs::copy(Path::new("tests/data").join(name), dir.join(name)).unwrap();
    }
    let out = round_trip_with_tiny(tmp.path(), &dir);
    for name in ["pages-g3-2d.tif", "pages-rle.tif", "lsb-none-lzw-g3.tif"] {
        let back = out.join(name);
        assert_eq!(tiff_pages(&back), pages, "{name}");
        assert_eq!(tiff_compressions(&back), [4, 4, 4], "{name}");
    }
}

#[test]
fn palette_pngs_round_trip_with_their_bit_depth() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    // A 1-bit palette of white and dark green (index 1 ink), and an 8-bit palette of 256
    // greys of which two are used.
    let img = digit(3);
    let write = |name: &str, depth: png::BitDepth, palette: Vec<u8>, index: [u8; 2]| {
        let per = 8 / depth as usize;
        let data: Vec<u8> = img
            .pixels
            .chunks(28)
            .flat_map(|row| {
                row.chunks(per)
                    .map(|c| {
                        c.iter().enumerate().fold(0u8, |acc, (i, &p)| {
                            acc | (index[p as usize] << ((per - 1 - i) * depth as usize))
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut bytes = Vec::new();
        let mut enc = png::Encoder::new(&mut bytes, 28, 28);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(depth);
        enc.set_palette(palette);
        enc.write_header().unwrap().write_image_data(&data).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    write(
        "p1.png",
        png::BitDepth::One,
        vec![255, 255, 255, 0, 60, 0],
        [0, 1],
    );
    write(
        "p8.png",
        png::BitDepth::Eight,
        (0..=255).flat_map(|i| [i, i, i]).collect(),
        [200, 9],
    );
    let out = round_trip_with_tiny(tmp.path(), &dir);
    for (name, depth) in [("p1.png", 1), ("p8.png", 8)] {
        let (back, format) = vlae_zip::image_io::read_image(&out.join(name)).unwrap();
        assert_eq!(back, img, "{name}");
        assert_eq!(format, ImageFormat::PngPalette { bit_depth: depth });
    }
    let list = String::from_utf8(ok(&["list", tmp.path().join("x.vlz").to_str().unwrap()]).stdout)
        .unwrap();
    assert!(list.contains("8-bit index"), "{list}");
}

#[test]
fn grey_and_unsupported_tiffs_are_refused_with_the_file_and_page() {
    let tmp = tempfile::tempdir().unwrap();
    let grey = tmp.path().join("grey.tif");
    let mut bytes = std::io::Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut bytes)
        .unwrap()
        .write_image::<tiff::encoder::colortype::Gray8>(4, 2, &[0, 255, 0, 255, 128, 0, 0, 0])
        .unwrap();
    std::fs::write(&grey, bytes.into_inner()).unwrap();
    let arc = tmp.path().join("x.vlz");
    let err = fails(&tiny(
        "compress",
        grey.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    assert!(
        err.contains("grey.tif") && err.contains("page 1") && err.contains("never binarizes"),
        "{err}"
    );
    // A Group 3 page whose coded rows are damaged (16 zero bytes into page 2's strip):
    // an error naming the file, the page and the coding, never a guess at the rows.
    let damaged = tmp.path().join("damaged.tif");
    let mut bytes = std::fs::read("tests/data/pages-g3-2d.tif").unwrap();
    let strip = {
        let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(&bytes)).unwrap();
        decoder.next_image().unwrap();
        decoder
            .get_tag_u64_vec(tiff::tags::Tag::StripOffsets)
            .unwrap()[0] as usize
    };
    bytes[strip + 40..][..16].fill(0);
    std::fs::write(&damaged, bytes).unwrap();
    let err = fails(&tiny(
        "compress",
        damaged.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    assert!(
        err.contains("damaged.tif: TIFF page 2: its CCITT Group 3 data is corrupt"),
        "{err}"
    );
    // So is a Group 4 page with one bit flipped two thirds into its strip, which the
    // `fax` crate's decoder (the tiff crate's) decoded to other rows without an error.
    let mut bytes = std::fs::read("tests/data/pages-g4.tif").unwrap();
    let strip = {
        let mut decoder = tiff::decoder::Decoder::new(std::io::Cursor::new(&bytes)).unwrap();
        decoder
            .get_tag_u64_vec(tiff::tags::Tag::StripOffsets)
            .unwrap()[0] as usize
    };
    bytes[strip + 629] ^= 0x10;
    std::fs::write(&damaged, bytes).unwrap();
    let err = fails(&tiny(
        "compress",
        damaged.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    assert!(
        err.contains("damaged.tif: TIFF page 1: its CCITT Group 4 data is corrupt"),
        "{err}"
    );
    std::fs::write(
        tmp.path().join("cut.tif"),
        &std::fs::read("tests/data/pages-g4.tif").unwrap()[..900],
    )
    .unwrap();
    let err = fails(&tiny(
        "compress",
        tmp.path().join("cut.tif").to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    assert!(err.contains("cut.tif") && err.contains("TIFF"), "{err}");
    assert!(!arc.exists());
}
