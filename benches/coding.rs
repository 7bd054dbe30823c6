//! Per-image compression and decompression, and one PixelCNN step, with the shipped model.
//! Run with `cargo bench`; `vlae-zip bench` measures whole folders end to end.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vlae_zip::codec::bitsback::{BitsBack, ChainInput};
use vlae_zip::codec::lane::Strip;
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
    let images: Vec<Strip> = flat
        .chunks(784)
        .take(32)
        .map(|p| Strip {
            width: 28,
            rows: 28,
            pixels: p,
        })
        .collect();
    let bb = BitsBack::new(&net, 6).unwrap();
    let one: Vec<&[Strip]> = vec![&images];
    let four: Vec<&[Strip]> = images.chunks(8).collect();
    let inputs = |lanes: &[&[Strip]]| -> Vec<ChainInput> {
        bb.compress_lanes(lanes)
            .unwrap()
            .into_iter()
            .zip(lanes)
            .map(|(lane, strips)| ChainInput {
                lane,
                shapes: vec![(28, 28); strips.len()],
            })
            .collect()
    };
    let (coded_one, coded_four) = (inputs(&one), inputs(&four));

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
    let blank = vec![0u8; net.canvas().pixels()];
    c.bench_function("pixelcnn step (one pixel, one image)", |b| {
        let mut st = net.pixels_start::<1>([&z], [&blank]);
        let mut p = 0;
        b.iter(|| {
            let l = st.logit(p);
            st.set(p, 0, u8::from(l[0] > 0.0));
            p = (p + 1) % 784;
            black_box(l)
        })
    });
    c.bench_function("pixelcnn step (one pixel, 4 images in lockstep)", |b| {
        let mut st = net.pixels_start::<4>([&z; 4], [&blank; 4]);
        let mut p = 0;
        b.iter(|| {
            let l = st.logit(p);
            (0..4).for_each(|g| st.set(p, g, u8::from(l[g] > 0.0)));
            p = (p + 1) % 784;
            black_box(l)
        })
    });
    c.bench_function("posterior (encoder)", |b| {
        b.iter(|| net.posterior(black_box(images[0].pixels)))
    });
}

criterion_group!(benches, coding);
criterion_main!(benches);
