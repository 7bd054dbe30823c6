//! Per-image compression and decompression, and one PixelCNN step, with the shipped model.
//! Run with `cargo bench`; `vlae-zip bench` measures whole folders end to end.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vlae_zip::codec::bitsback::BitsBack;
use vlae_zip::geometry::PIXELS;
use vlae_zip::infer::network::Network;

fn coding(c: &mut Criterion) {
    let net = Network::load("models/vlae-mnist.safetensors".as_ref(), "models/vlae-mnist.json".as_ref()).expect("shipped model");
    let flat = vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref()).unwrap();
    let images: Vec<&[u8]> = flat.chunks(PIXELS).take(32).collect();
    let bb = BitsBack::new(&net, 8);
    let lane = bb.compress_lane(images.iter().copied()).unwrap();

    let mut g = c.benchmark_group("lane of 32 images");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.sample_size(10);
    g.bench_function("compress", |b| b.iter(|| bb.compress_lane(black_box(&images).iter().copied()).unwrap()));
    g.bench_function("decompress", |b| b.iter(|| bb.decompress_lane(black_box(&lane), 0).unwrap()));
    g.finish();

    let z = vec![0.1f32; net.config().latent_dim];
    c.bench_function("pixelcnn step (one pixel)", |b| {
        let mut st = net.pixels_start(&z);
        let mut p = 0;
        b.iter(|| {
            let l = st.logit(p);
            st.set(p, u8::from(l > 0.0));
            p = (p + 1) % PIXELS;
            black_box(l)
        })
    });
    c.bench_function("posterior (encoder)", |b| b.iter(|| net.posterior(black_box(images[0]))));
}

criterion_group!(benches, coding);
criterion_main!(benches);
