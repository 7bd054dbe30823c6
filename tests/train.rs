//! Training on a tiny config: a run resumes from its checkpoint where it stopped, and a
//! run folder is never silently overwritten.

use vlae_zip::config::VlaeConfig;
use vlae_zip::nn::{eval, train};

#[test]
fn training_resumes_from_its_checkpoint() {
    let cfg = VlaeConfig::load("tests/data/tiny.json".as_ref()).unwrap();
    let flat =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    let images = &flat[..200 * 784];
    let opts = train::TrainOptions {
        batch_size: 32,
        epochs: 1,
        validation_images: 40,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");

    train::train(images, &cfg, &opts, &run, false, true).unwrap();
    let err = train::train(images, &cfg, &opts, &run, false, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");

    let more = train::TrainOptions { epochs: 2, ..opts };
    let best = train::train(images, &cfg, &more, &run, true, true).unwrap();
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    // 160 training images / 32 per batch = 5 steps an epoch: the resumed run starts at
    // epoch 1, step 5, and finishes epoch 1.
    assert!(log.contains("epoch 1 batch 0 step 5"), "{log}");
    assert!(log.contains("epoch 1 done"), "{log}");
    assert!(eval::load_model(&best, &cfg).is_ok());

    let other = VlaeConfig {
        pixel_blocks: 2,
        ..cfg
    };
    assert!(train::train(images, &other, &more, &run, true, true)
        .unwrap_err()
        .to_string()
        .contains("different config"));
}
