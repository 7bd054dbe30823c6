//! Bits-back coding end to end on the tiny test model: round trips, rate against the
//! model's −ELBO, determinism across threads and lanes, and agreement between the
//! deterministic inference path and the candle model.

use candle_core::{Device, Tensor};
use vlae_zip::archive::{self, DEFAULT_LATENT_BITS};
use vlae_zip::codec::bitsback::BitsBack;
use vlae_zip::codec::model::Coder;
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Entry};
use vlae_zip::geometry::PIXELS;
use vlae_zip::image_io::ImageFormat;
use vlae_zip::infer::network::Network;
use vlae_zip::nn::{eval, vlae::pixels_tensor};

const TINY: &str = "tests/data/tiny.safetensors";
const TINY_CFG: &str = "tests/data/tiny.json";

fn tiny() -> Network {
    Network::load(TINY.as_ref(), TINY_CFG.as_ref()).expect("tiny model loads")
}

fn test_images(n: usize) -> Vec<Vec<u8>> {
    let all =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    all.chunks(PIXELS).take(n).map(|c| c.to_vec()).collect()
}

fn entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            name: format!("{i:05}.pbm"),
            format: ImageFormat::Pbm,
        })
        .collect()
}

fn no_progress(_: u64) {}

#[test]
fn archive_round_trips_and_rate_tracks_the_elbo() {
    let net = tiny();
    let images = test_images(200);
    let arch = archive::compress(
        &net,
        entries(200),
        &images,
        DEFAULT_LATENT_BITS,
        2,
        &no_progress,
    )
    .unwrap();
    let bytes = container::write(&arch);
    let back = archive::decompress(&net, &container::parse(&bytes).unwrap(), &no_progress).unwrap();
    assert_eq!(back, images);

    let cfg = VlaeConfig::load(TINY_CFG.as_ref()).unwrap();
    let model = eval::load_model(TINY.as_ref(), &cfg).unwrap();
    let flat: Vec<u8> = images.concat();
    let elbo_bits = eval::evaluate_elbo(&model, &flat, cfg.latent_dim, 100)
        .unwrap()
        .neg_elbo_nats()
        / std::f64::consts::LN_2;
    let achieved = bytes.len() as f64 * 8.0 / 200.0;
    // Two lanes' start-up and the container cost a few bits an image at this size.
    assert!(
        achieved < elbo_bits * 1.01 + 8.0,
        "achieved {achieved:.2} vs -ELBO {elbo_bits:.2} bits/image"
    );
    assert!(
        achieved > elbo_bits * 0.9,
        "achieved {achieved:.2} is implausibly below -ELBO {elbo_bits:.2}"
    );
}

#[test]
fn edge_case_images_round_trip() {
    let net = tiny();
    let bb = BitsBack::new(&net, 8);
    let mut single = vec![0u8; PIXELS];
    single[PIXELS / 2] = 1;
    let noise: Vec<u8> = (0..PIXELS)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8 & 1)
        .collect();
    let images = vec![vec![0u8; PIXELS], vec![1u8; PIXELS], single, noise];
    let lane = bb.compress_lane(&images).unwrap();
    assert_eq!(bb.decompress_lane(&lane, 0).unwrap(), images);
}

#[test]
fn archives_are_identical_across_threads_and_batching() {
    let net = tiny();
    let images = test_images(64);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            container::write(
                &archive::compress(&net, entries(64), &images, 8, 4, &no_progress).unwrap(),
            )
        })
    };
    assert_eq!(run(1), run(2));
    // A lane's bytes do not depend on what other lanes hold or how many there are.
    let four = archive::compress(&net, entries(64), &images, 8, 4, &no_progress).unwrap();
    let first_alone = BitsBack::new(&net, 8).compress_lane(&images[..16]).unwrap();
    assert_eq!(four.lanes[0], first_alone);
}

#[test]
fn coding_one_image_leaves_the_stack_as_it_was() {
    let net = tiny();
    let bb = BitsBack::new(&net, 8);
    let img = &test_images(1)[0];
    let mut coder = Coder::from_raw_parts(vec![0x1234_5678; 40], 0x0123_4567_89ab_cdef);
    let before = coder.clone().into_raw_parts();
    bb.encode(&mut coder, img).unwrap();
    assert_eq!(&bb.decode(&mut coder).unwrap(), img);
    assert_eq!(coder.into_raw_parts(), before);
}

#[test]
fn deterministic_path_agrees_with_candle() {
    let net = tiny();
    let cfg = VlaeConfig::load(TINY_CFG.as_ref()).unwrap();
    let model = eval::load_model(TINY.as_ref(), &cfg).unwrap();
    let images = test_images(3);
    for img in &images {
        let x = pixels_tensor(img, &Device::Cpu).unwrap();
        let (mean, log_sd) = model.encoder.forward(&x).unwrap();
        let post = net.posterior(img);
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() < 1e-4 * (1.0 + x.abs()))
        };
        assert!(close(
            &mean.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &post.mean
        ));
        assert!(close(
            &log_sd.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &post.log_sd
        ));

        // Prior: the coder's shifts give ε_i = z_i − T_i equal to candle's flow output.
        let z: Vec<f32> = post.mean.clone();
        let eps = model
            .prior
            .to_base(&Tensor::from_vec(z.clone(), (1, z.len()), &Device::Cpu).unwrap())
            .unwrap();
        let eps = eps.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut st = net.prior_start();
        for (i, &zi) in z.iter().enumerate() {
            let t = net.prior_shift(&mut st);
            assert!(
                (zi - t - eps[i]).abs() < 1e-4,
                "dim {i}: {} vs {}",
                zi - t,
                eps[i]
            );
            net.prior_push(&mut st, zi);
        }

        // Pixels: logits given z and the true pixels before each.
        let zt = Tensor::from_vec(z.clone(), (1, z.len()), &Device::Cpu).unwrap();
        let logits = model
            .pixelcnn
            .forward(&x, &model.decoder.forward(&zt).unwrap())
            .unwrap();
        let logits = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut ps = net.pixels_start::<1>([&z]);
        for p in 0..PIXELS {
            let l = ps.logit(p)[0];
            assert!(
                (l - logits[p]).abs() < 1e-3 * (1.0 + l.abs()),
                "pixel {p}: {l} vs {}",
                logits[p]
            );
            ps.set(p, 0, img[p]);
        }
    }
}

#[test]
fn a_different_model_is_refused() {
    let net = tiny();
    let images = test_images(2);
    let mut arch = archive::compress(&net, entries(2), &images, 8, 1, &no_progress).unwrap();
    arch.header.fingerprint[0] ^= 1;
    let err = archive::decompress(&net, &arch, &no_progress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("different model"), "{err}");
}

#[test]
fn simd_and_baseline_kernels_give_identical_archives() {
    let net = tiny();
    let images = test_images(8);
    let lane = |baseline: bool| {
        vlae_zip::infer::kernels::force_baseline(baseline);
        let l = BitsBack::new(&net, 8).compress_lane(&images).unwrap();
        vlae_zip::infer::kernels::force_baseline(false);
        l
    };
    assert_eq!(lane(true), lane(false));
}
