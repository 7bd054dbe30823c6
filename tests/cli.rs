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

#[test]
fn folders_of_every_format_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    let out = tmp.path().join("out");
    ok(&tiny(
        "compress",
        dir.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    ok(&tiny(
        "decompress",
        arc.to_str().unwrap(),
        out.to_str().unwrap(),
    ));
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
    let info = String::from_utf8(ok(&["info", arc.to_str().unwrap()]).stdout).unwrap();
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
    assert!(fails(&tiny("compress", empty.to_str().unwrap(), arc_s)).contains("no .pbm or .png"));
    assert!(fails(&tiny("compress", "/no/such/dir", arc_s)).contains("/no/such/dir"));
}

#[test]
fn bad_archives_fail_cleanly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mixed_folder(tmp.path());
    let arc = tmp.path().join("x.vlz");
    ok(&tiny(
        "compress",
        dir.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
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
    let out = ok(&["bench", tmp.path().to_str().unwrap(), "--json"]);
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
    std::fs::write(&one, encode_image(&digit(0), ImageFormat::Pbm)).unwrap();
    let arc = tmp.path().join("x.vlz");
    ok(&tiny(
        "compress",
        one.to_str().unwrap(),
        arc.to_str().unwrap(),
    ));
    let out = tmp.path().join("out");
    ok(&tiny(
        "decompress",
        arc.to_str().unwrap(),
        out.to_str().unwrap(),
    ));
    assert_eq!(read_all(&out), vec![("one.pbm".to_string(), digit(0))]);
}

#[test]
fn invalid_arguments_are_refused_by_the_parser() {
    for args in [
        &[
            "compress",
            "corpus/test-1000",
            "-o",
            "/tmp/never.vlz",
            "--lanes",
            "70000",
        ][..],
        &[
            "compress",
            "corpus/test-1000",
            "-o",
            "/tmp/never.vlz",
            "--lanes",
            "0",
        ],
        &["train", "--batch-size", "0", "--run", "/tmp/never-run"],
        &["train", "--learning-rate=-1", "--run", "/tmp/never-run"],
        &["eval", "corpus/test-1000", "--iwae", "0"],
        &["eval", "corpus/test-1000", "--limit", "0"],
    ] {
        let out = vlae(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
    assert!(!Path::new("/tmp/never.vlz").exists() && !Path::new("/tmp/never-run").exists());
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
        ok(&["compress", input, "-o", a, "--force"]);
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
