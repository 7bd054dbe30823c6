//! The shipped model: it loads, matches its config, and codes real test digits losslessly
//! at a rate close to its −ELBO.

use vlae_zip::archive;
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Entry};
use vlae_zip::geometry::PIXELS;
use vlae_zip::image_io::ImageFormat;
use vlae_zip::infer::network::Network;
use vlae_zip::nn::eval;

const WEIGHTS: &str = "models/vlae-mnist.safetensors";
const CONFIG: &str = "models/vlae-mnist.json";

#[test]
fn shipped_model_codes_test_digits_near_its_elbo() {
    let net = Network::load(WEIGHTS.as_ref(), CONFIG.as_ref()).expect("shipped model loads");
    let flat =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    let n = 100;
    let images: Vec<Vec<u8>> = flat
        .chunks(PIXELS)
        .skip(5000)
        .take(n)
        .map(|c| c.to_vec())
        .collect();
    let entries = (0..n)
        .map(|i| Entry {
            name: format!("{i:03}.pbm"),
            format: ImageFormat::Pbm,
        })
        .collect();
    let arch = archive::compress(
        &net,
        entries,
        &images,
        archive::DEFAULT_LATENT_BITS,
        1,
        &|_| {},
    )
    .unwrap();
    let bytes = container::write(&arch);
    assert_eq!(
        archive::decompress(&net, &container::parse(&bytes).unwrap(), &|_| {}).unwrap(),
        images
    );

    let cfg = VlaeConfig::load(CONFIG.as_ref()).unwrap();
    let model = eval::load_model(WEIGHTS.as_ref(), &cfg).unwrap();
    let elbo = eval::evaluate_elbo(&model, &images.concat(), cfg.latent_dim, 100)
        .unwrap()
        .neg_elbo_nats()
        / std::f64::consts::LN_2;
    // The chain's payload, less the first image's latent (which gets no bits back: at
    // most d·B bits), must be within 1% of the model's −ELBO. Container bytes are fixed
    // costs tested elsewhere.
    let payload = 8.0 * arch.payload_bytes() as f64;
    let startup = (cfg.latent_dim * archive::DEFAULT_LATENT_BITS as usize) as f64;
    let per_image = (payload - startup) / n as f64;
    assert!(
        per_image < elbo * 1.01,
        "payload {per_image:.2} vs -ELBO {elbo:.2} bits/image"
    );
    // The bar for the shipped model: −ELBO ≤ 130 bits/image on test digits.
    assert!(
        elbo < 130.0,
        "shipped model's -ELBO is {elbo:.2} bits/image"
    );
}
