//! Per-image compression and decompression, and one PixelCNN step, with the shipped model.
//! Run with `cargo bench`; `vlae-zip bench` measures whole folders end to end.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vlae_zip::codec::bitsback::BitsBack;
use vlae_zip::geometry::PIXELS;
use vlae_zip::infer::network::Network;

fn coding(c: &mut Criterion) {
    let net = Network::load(
        "models/vlae-mnist.safetensors".as_ref(),
        "models/vlae-mnist.json".as_ref(),
    )
    .expect("shipped model");
    let flat =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    let images: Vec<Vec<u8>> = flat.chunks(PIXELS).take(32).map(|c| c.to_vec()).collect();
    let bb = BitsBack::new(&net, 8);
    let one: Vec<&[Vec<u8>]> = vec![&images];
    let four: Vec<&[Vec<u8>]> = images.chunks(8).collect();
    let coded_one = bb.compress_lanes(&one).unwrap();
    let coded_four = bb.compress_lanes(&four).unwrap();

    let mut g = c.benchmark_group("32 images, one thread");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.sample_size(10);
    g.bench_function("compress, 1 lane", |b| {
        b.iter(|| bb.compress_lanes(black_box(&one)).unwrap())
    });
    g.bench_function("compress, 4 lanes in lockstep", |b| {
        b.iter(|| bb.compress_lanes(black_box(&four)).unwrap())
    });
    g.bench_function("decompress, 1 lane", |b| {
        b.iter(|| bb.decompress_lanes(black_box(&coded_one), 0).unwrap())
    });
    g.bench_function("decompress, 4 lanes in lockstep", |b| {
        b.iter(|| bb.decompress_lanes(black_box(&coded_four), 0).unwrap())
    });
    g.finish();

    let z = vec![0.1f32; net.config().latent_dim];
    c.bench_function("pixelcnn step (one pixel, one image)", |b| {
        let mut st = net.pixels_start::<1>([&z]);
        let mut p = 0;
        b.iter(|| {
            let l = st.logit(p);
            st.set(p, 0, u8::from(l[0] > 0.0));
            p = (p + 1) % PIXELS;
            black_box(l)
        })
    });
    c.bench_function("pixelcnn step (one pixel, 4 images in lockstep)", |b| {
        let mut st = net.pixels_start::<4>([&z; 4]);
        let mut p = 0;
        b.iter(|| {
            let l = st.logit(p);
            (0..4).for_each(|g| st.set(p, g, u8::from(l[g] > 0.0)));
            p = (p + 1) % PIXELS;
            black_box(l)
        })
    });
    c.bench_function("posterior (encoder)", |b| {
        b.iter(|| net.posterior(black_box(&images[0])))
    });
}

criterion_group!(benches, coding);
criterion_main!(benches);
