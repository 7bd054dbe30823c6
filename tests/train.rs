//! Training: a run resumes from its checkpoint where it stopped, a run folder is never
//! silently overwritten, and `vlae-zip train` learns from a folder of pages of any size,
//! with context, fine-tunes with `--init`, and writes a model that codes at once.

mod common;

use std::path::Path;
use std::process::Command;
use vlae_zip::config::VlaeConfig;
use vlae_zip::image_io::{encode_image, BitImage, ImageFormat};
use vlae_zip::nn::data::{Image, TileSet};
use vlae_zip::nn::{eval, train};

fn digit_tiles(range: std::ops::Range<usize>, cfg: &VlaeConfig) -> TileSet {
    let images = common::digits(range.start, range.len())
        .into_iter()
        .map(|pixels| Image {
            width: 28,
            height: 28,
            pixels,
        })
        .collect();
    TileSet::new(images, cfg.canvas())
}

#[test]
fn training_resumes_from_its_checkpoint() {
    let cfg = VlaeConfig::load("tests/data/tiny.json".as_ref()).unwrap();
    let (train_set, valid_set) = (digit_tiles(0..160, &cfg), digit_tiles(160..200, &cfg));
    let opts = train::TrainOptions {
        batch_size: 32,
        epochs: 1,
        validation_images: 40,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let quietly = |resume| train::Invocation {
        resume,
        quiet: true,
        ..Default::default()
    };

    train::train(&train_set, &valid_set, &cfg, &opts, &run, quietly(false)).unwrap();
    let err = train::train(&train_set, &valid_set, &cfg, &opts, &run, quietly(false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");

    let more = train::TrainOptions { epochs: 2, ..opts };
    let best = train::train(&train_set, &valid_set, &cfg, &more, &run, quietly(true)).unwrap();
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    // 160 training digits / 32 per batch = 5 steps an epoch: the resumed run starts at
    // epoch 1, step 5, and finishes epoch 1.
    assert!(log.contains("epoch 1 batch 0 step 5"), "{log}");
    assert!(log.contains("epoch 1 done"), "{log}");
    assert!(eval::load_model(&best, &cfg).is_ok());

    let other = VlaeConfig {
        pixel_blocks: 2,
        ..cfg
    };
    assert!(
        train::train(&train_set, &valid_set, &other, &more, &run, quietly(true))
            .unwrap_err()
            .to_string()
            .contains("different config")
    );
}

fn vlae(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .args(args)
        .arg("-q")
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write_pages(dir: &Path, sizes: &[(usize, usize)], seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, &(width, height)) in sizes.iter().enumerate() {
        let page = BitImage {
            width,
            height,
            pixels: common::text_page(width, height, seed + i as u64),
        };
        std::fs::write(
            dir.join(format!("page{i}.pbm")),
            encode_image(&page, ImageFormat::Pbm),
        )
        .unwrap();
    }
}

/// A context model trained from a folder of pages of mixed sizes codes pages losslessly
/// straight from the files `train` writes, and `--init` fine-tunes it, starting where it
/// ended (its first validation is no worse than the model it started from).
#[test]
fn train_learns_from_a_folder_and_fine_tunes_with_init() {
    let tmp = tempfile::tempdir().unwrap();
    let pages = tmp.path().join("pages");
    write_pages(
        &pages,
        &[(90, 70), (64, 64), (50, 120), (77, 33), (100, 40)],
        1,
    );
    let run = tmp.path().join("run");
    let run = run.to_str().unwrap();
    let said = vlae(&[
        "train",
        pages.to_str().unwrap(),
        "--config",
        "tests/data/tiny-context.json",
        "--run",
        run,
        "--epochs",
        "2",
        "--batch-size",
        "16",
    ]);
    let model = Path::new(run).join("run.safetensors");
    assert!(said.contains(model.to_str().unwrap()), "{said}");
    assert!(model.with_extension("json").exists());
    let log = std::fs::read_to_string(Path::new(run).join("train.log")).unwrap();
    assert!(
        log.contains("from 4 images") && log.contains("from 1 images"),
        "{log}"
    );

    let unseen = tmp.path().join("unseen");
    write_pages(&unseen, &[(81, 57), (8, 8), (1, 30)], 50);
    let arc = tmp.path().join("x.vlz");
    let back = tmp.path().join("back");
    let m = model.to_str().unwrap();
    let (u, a, b) = (
        unseen.to_str().unwrap(),
        arc.to_str().unwrap(),
        back.to_str().unwrap(),
    );
    vlae(&[
        "compress",
        u,
        "-o",
        a,
        "--model",
        m,
        "--lane-coder",
        "bits-back",
    ]);
    vlae(&["decompress", a, "-o", b, "--model", m]);
    for i in 0..3 {
        let name = format!("page{i}.pbm");
        assert_eq!(
            std::fs::read(unseen.join(&name)).unwrap(),
            std::fs::read(back.join(&name)).unwrap(),
            "{name}"
        );
    }

    let tuned = tmp.path().join("tuned");
    vlae(&[
        "train",
        pages.to_str().unwrap(),
        "--init",
        m,
        "--run",
        tuned.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--learning-rate",
        "0.000001",
    ]);
    let valid = |log: &str| -> f64 {
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("valid (ema)"))
            .unwrap();
        let at = line.find("-elbo ").unwrap() + 6;
        line[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let before = valid(&log);
    let after = valid(&std::fs::read_to_string(tuned.join("train.log")).unwrap());
    assert!(after <= before + 0.05 * before.abs(), "{after} vs {before}");
}

/// An IDX3 file of `count` images `side × side`, each a few random strokes.
fn stroke_idx(count: usize, side: usize) -> Vec<u8> {
    let mut idx = vec![0, 0, 8, 3];
    for v in [count, side, side] {
        idx.extend_from_slice(&(v as u32).to_be_bytes());
    }
    let mut state = 17u64;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    for _ in 0..count {
        let mut img = vec![0u8; side * side];
        for _ in 0..4 {
            let (mut y, mut x) = (next(side), next(side));
            let (dy, dx) = (next(3) as isize - 1, next(3) as isize - 1);
            for _ in 0..side / 2 {
                img[y * side + x] = 1;
                y = (y as isize + dy).clamp(0, side as isize - 1) as usize;
                x = (x as isize + dx).clamp(0, side as isize - 1) as usize;
            }
        }
        idx.extend(img);
    }
    idx
}

/// `train` runs from an empty folder (no `models/` beside it: the built-in config) on an
/// IDX file of 105×105 images, and `extract` writes them at their size.
#[test]
fn train_takes_an_idx_of_any_size_from_an_empty_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("chars.idx3-ubyte");
    std::fs::write(&idx, stroke_idx(12, 105)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vlae-zip"))
        .current_dir(tmp.path())
        .args([
            "train",
            "chars.idx3-ubyte",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--validation-images",
            "3",
            "--run",
            "run",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp.path().join("run/run.safetensors").exists());
    assert!(tmp.path().join("run/run.json").exists());
    let extracted = tmp.path().join("x");
    vlae(&[
        "extract",
        idx.to_str().unwrap(),
        "-o",
        extracted.to_str().unwrap(),
    ]);
    let (first, _) =
        vlae_zip::image_io::read_image(&extracted.join("00000.pbm")).expect("a 105×105 image");
    assert_eq!((first.width, first.height), (105, 105));
}

/// `--shift` and `--mirror` reach the trainer: the run records them in its options.
#[test]
fn train_varies_single_tile_images_as_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("chars.idx3-ubyte");
    std::fs::write(&idx, stroke_idx(12, 28)).unwrap();
    let run = tmp.path().join("run");
    vlae(&[
        "train",
        idx.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--validation-images",
        "3",
        "--shift",
        "2",
        "--mirror",
        "--run",
        run.to_str().unwrap(),
    ]);
    let options: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("options.json")).unwrap()).unwrap();
    assert_eq!(options["augment"]["shift"], 2);
    assert_eq!(options["augment"]["mirror"], true);
}

/// `auto` codes images of each built-in 28×28 model's kind (samples from its prior) with
/// that model: the models for Caltech-101 Silhouettes and OMNIGLOT are chosen for their
/// own data, and MNIST's for digits.
#[test]
fn auto_picks_each_model_for_its_own_kind_of_image() {
    use vlae_zip::container::{self, LaneCoder};
    for name in ["mnist", "caltech", "omniglot"] {
        let net = vlae_zip::models::built_in(name).unwrap().network().unwrap();
        let images = vlae_zip::figure::prior_samples(&net, 40, 3);
        let entries = common::entries_for(&[(28, 28); 40]);
        let models: Vec<_> = vlae_zip::models::BUILT_IN
            .iter()
            .map(|m| m.network().unwrap())
            .collect();
        let nets: Vec<_> = models.iter().collect();
        let bytes = vlae_zip::archive::compress(
            &nets,
            &entries,
            &images,
            vlae_zip::archive::CompressOptions {
                latent_bits: vlae_zip::archive::DEFAULT_LATENT_BITS,
                adapt_latent_bits: false,
                lanes: Some(1),
                coders: vlae_zip::archive::LaneCoders::BitsBack,
                samples: 1,
            },
            &|_| {},
        )
        .unwrap();
        let arch = container::parse(&bytes).unwrap();
        let used: Vec<_> = arch
            .lanes
            .iter()
            .map(|l| match l.coder {
                LaneCoder::BitsBack { model, .. } => arch.models[model as usize],
                other => panic!("{name}: a lane coded by {other:?}"),
            })
            .collect();
        assert_eq!(used, [net.id()], "{name}");
    }
}
