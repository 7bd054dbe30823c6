//! The shipped model: it loads, matches its config, and codes real test digits losslessly
//! at a rate close to its −ELBO.

mod common;

use common::*;
use vlae_zip::archive::{self, CompressOptions};
use vlae_zip::config::VlaeConfig;
use vlae_zip::container;
use vlae_zip::nn::eval;

#[test]
fn shipped_model_codes_test_digits_near_its_elbo() {
    let net = shipped();
    let n = 100;
    let images = digits(5000, n);
    let bytes = archive::compress(
        &[net],
        &digit_entries(n),
        &images,
        CompressOptions {
            latent_bits: archive::DEFAULT_LATENT_BITS,
            adapt_latent_bits: false,
            lanes: Some(1),
            coders: vlae_zip::archive::LaneCoders::Smallest,
            samples: 1,
        },
        &|_| {},
    )
    .unwrap();
    let back = decode(&[net], &bytes).unwrap();
    assert!(back.iter().map(|(_, p)| p).eq(images.iter()));

    let cfg = VlaeConfig::load(SHIPPED_CFG.as_ref()).unwrap();
    let model = eval::load_model(SHIPPED.as_ref(), &cfg).unwrap();
    let elbo = eval::evaluate_elbo(&model, &images.concat(), cfg.latent_dim, 100)
        .unwrap()
        .neg_elbo_nats()
        / std::f64::consts::LN_2;
    // The chain's payload, less the first image's latent (which gets no bits back: at
    // most d·B bits), must be within 1% of the model's −ELBO. Container bytes are fixed
    // costs tested elsewhere.
    let payload = 8.0 * container::parse(&bytes).unwrap().payload_bytes() as f64;
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

/// Fixed costs on the smallest inputs, header, names and the chain's start included:
/// one test digit in at most 64 bytes, ten in at most 170 bits each (1,700 bits, so 212
/// bytes), as `vlae-zip compress` makes them by default.
#[test]
fn one_or_ten_digits_pay_small_fixed_costs() {
    for (n, limit) in [(1, 64), (10, 212)] {
        let images = digits(0, n);
        let bytes = archive::compress(
            &[shipped()],
            &digit_entries(n),
            &images,
            CompressOptions {
                latent_bits: archive::DEFAULT_LATENT_BITS,
                adapt_latent_bits: true,
                lanes: None,
                coders: vlae_zip::archive::LaneCoders::Smallest,
                samples: 1,
            },
            &|_| {},
        )
        .unwrap();
        assert!(bytes.len() <= limit, "{n} digits: {} bytes", bytes.len());
        let back = decode(&[shipped()], &bytes).unwrap();
        assert!(back.iter().map(|(_, p)| p).eq(images.iter()));
    }
}
