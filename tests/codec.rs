//! Bits-back coding end to end on the tiny test model: round trips of any size, rate
//! against the model's −ELBO, the fallback choice, determinism across threads, lanes and
//! SIMD level, agreement between the deterministic path and the candle model, and lanes
//! that claim more than they hold.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use vlae_zip::archive::{self, plan_lanes, ArchiveError, Segment};
use vlae_zip::codec::bitsback::{BitsBack, ChainInput};
use vlae_zip::codec::lane;
use vlae_zip::codec::lane::{CodecError, Strip};
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Edition, LaneCoder};
use vlae_zip::nn::{eval, vlae::pixels_tensor};

#[test]
fn archive_round_trips_and_rate_tracks_the_elbo() {
    let net = tiny();
    let images = digits(0, 200);
    round_trip(net, &digit_entries(200), &images, Some(2));
    let bytes = compress_chain(net, &digit_entries(200), &images, Some(2));

    let cfg = VlaeConfig::load(TINY_CFG.as_ref()).unwrap();
    let model = eval::load_model(TINY.as_ref(), &cfg).unwrap();
    let elbo_bits = eval::evaluate_elbo(&model, &images.concat(), cfg.latent_dim, 100)
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
fn odd_sizes_round_trip() {
    let net = tiny();
    let d = digits(0, 1).remove(0);
    let sizes: [(u32, u32); 7] = [
        (1, 1),
        (1, 57),
        (57, 1),
        (29, 28),
        (28, 29),
        (83, 61),
        (3, 2),
    ];
    let images: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&(w, h)| {
            (0..(w * h) as usize)
                .map(|i| d[(i * 7 + i / w as usize) % 784])
                .collect()
        })
        .collect();
    for lanes in [1, 3, 9] {
        round_trip(net, &entries_for(&sizes), &images, Some(lanes));
    }
}

#[test]
fn blank_tiles_cost_almost_nothing() {
    let net = tiny();
    let (w, h) = (280u32, 280u32);
    let mut page = vec![0u8; (w * h) as usize];
    // One black square of exactly 2×2 tiles, aligned, and the rest white.
    for y in 56..112 {
        for x in 28..84 {
            page[y * w as usize + x] = 1;
        }
    }
    let bytes = round_trip(net, &entries_for(&[(w, h)]), &[page], Some(1));
    assert!(bytes.len() < 100, "{} bytes for a blank page", bytes.len());
}

#[test]
fn edge_case_images_round_trip() {
    let net = tiny();
    let mut single = vec![0u8; 784];
    single[392] = 1;
    let noise: Vec<u8> = (0..784)
        .map(|i| ((i * 2_654_435_761usize) >> 13) as u8 & 1)
        .collect();
    let mut corner = vec![0u8; 784];
    corner[783] = 1;
    let images = vec![vec![0u8; 784], vec![1u8; 784], single, noise, corner];
    round_trip(net, &digit_entries(5), &images, Some(1));
}

#[test]
fn every_lane_takes_the_smallest_coder() {
    // Text-like strokes the digit model has never seen: the context model codes them.
    // (Strokes in a strict period would be a Zstandard frame's.)
    let (w, h) = (120u32, 56u32);
    let page = text_page(w as usize, h as usize, 4);
    let bytes = round_trip(shipped(), &entries_for(&[(w, h)]), &[page.clone()], Some(1));
    let arch = container::parse(&bytes).unwrap();
    assert!(matches!(arch.lanes[0].coder, LaneCoder::Context { .. }));
    let chained = compress_chain(shipped(), &entries_for(&[(w, h)]), &[page], Some(1));
    assert!(
        bytes.len() < chained.len(),
        "{} vs {}",
        bytes.len(),
        chained.len()
    );
}

#[test]
fn noise_falls_back_to_stored_bits_and_never_expands() {
    let net = tiny();
    let mut x = 0x9e37_79b9u32;
    let noise: Vec<Vec<u8>> = (0..20)
        .map(|_| {
            (0..784)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 1) as u8
                })
                .collect()
        })
        .collect();
    let bytes = round_trip(net, &digit_entries(20), &noise, None);
    let arch = container::parse(&bytes).unwrap();
    assert!(arch.lanes.iter().all(|l| l.coder == LaneCoder::Stored));
    let raw = 20 * 784 / 8;
    assert!(
        bytes.len() <= raw + 64,
        "{} bytes for {raw} raw",
        bytes.len()
    );
    // Digits, by contrast, are coded by the (shipped) model.
    let digits_bytes = round_trip(shipped(), &digit_entries(20), &digits(0, 20), None);
    let arch = container::parse(&digits_bytes).unwrap();
    assert!(arch
        .lanes
        .iter()
        .all(|l| matches!(l.coder, LaneCoder::BitsBack { .. })));
}

#[test]
fn lanes_split_pages_at_tile_rows_and_digits_whole() {
    let plan = plan_lanes(&[(28, 28); 10], 3, 28);
    assert_eq!(plan.len(), 3);
    assert!(plan
        .iter()
        .flatten()
        .all(|s| s.rows == 28 && s.first_row == 0));
    let page = plan_lanes(&[(100, 200)], 4, 28);
    assert_eq!(page.len(), 4);
    let rows: Vec<usize> = page
        .iter()
        .map(|l| l.iter().map(|s| s.rows).sum())
        .collect();
    assert_eq!(rows.iter().sum::<usize>(), 200);
    assert!(page
        .iter()
        .flatten()
        .all(|s: &Segment| s.first_row % 28 == 0));
}

#[test]
fn archives_are_identical_across_threads_and_batching() {
    let net = tiny();
    let images = digits(0, 64);
    let pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let run = |threads: usize| {
        pool(threads).install(|| compress_chain(net, &digit_entries(64), &images, Some(8)))
    };
    // 1 and 2 threads code the 8 lanes in lockstep groups of 4, 4 threads in groups of 2,
    // and 16 threads one by one; decoding groups them the same way.
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
    assert_eq!(one, run(16));
    for threads in [1, 4, 16] {
        let decoded = pool(threads).install(|| decode(&[net], &one)).unwrap();
        assert!(
            decoded.iter().map(|(_, p)| p).eq(images.iter()),
            "{threads} threads"
        );
    }
    // A lane's bytes do not depend on what other lanes hold or how many there are.
    let arch = container::parse(&one).unwrap();
    let bb = BitsBack::new(net, 8).unwrap();
    let strips: Vec<Strip> = images[..8]
        .iter()
        .map(|p| Strip {
            width: 28,
            rows: 28,
            pixels: p,
        })
        .collect();
    let alone = bb.compress_lanes(&[&strips]).unwrap().remove(0);
    assert_eq!(lane::words(arch.lanes[0].payload), alone.words);
}

#[test]
fn a_lane_ends_exactly_at_its_seed() {
    let net = tiny();
    let bb = BitsBack::new(net, 8).unwrap();
    let img = digits(3, 1).remove(0);
    let strip = [Strip {
        width: 28,
        rows: 28,
        pixels: &img,
    }];
    let lane = bb.compress_lanes(&[&strip]).unwrap().remove(0);
    let back = bb
        .decompress_lanes(
            &[ChainInput {
                lane,
                shapes: vec![(28, 28)],
            }],
            0,
        )
        .unwrap();
    assert_eq!(back[0][0], img);
}

#[test]
fn a_lane_that_claims_more_than_it_holds_fails_fast() {
    let net = tiny();
    let images = digits(0, 40);
    let bytes = compress_chain(net, &digit_entries(40), &images, Some(1));
    let arch = container::parse(&bytes).unwrap();
    let bb = BitsBack::new(net, 8).unwrap();
    // The real lane's head and the top 8 of its words: the first tiles decode as they
    // should, then the stack runs out.
    let words = lane::words(arch.lanes[0].payload);
    let lane = vlae_zip::codec::bitsback::ChainLane {
        seed_words_elided: 0,
        state: arch.lanes[0].state,
        words: words[words.len() - 8..].to_vec(),
    };
    // Claims 100,000 digits with eight words: must fail within a few tiles.
    let err = bb
        .decompress_lanes(
            &[ChainInput {
                lane,
                shapes: vec![(28, 28); 100_000],
            }],
            0,
        )
        .unwrap_err();
    match err {
        CodecError::Exhausted { tile, .. } => assert!(tile < 1000, "failed only at tile {tile}"),
        other => panic!("{other}"),
    }
}

#[test]
fn deterministic_path_agrees_with_candle() {
    let net = tiny();
    let cfg = VlaeConfig::load(TINY_CFG.as_ref()).unwrap();
    let model = eval::load_model(TINY.as_ref(), &cfg).unwrap();
    for img in &digits(0, 3) {
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
        assert_logits_agree(net, &model, &z, img, "digit");
    }
}

/// The coder's PixelCNN, fed a canvas pixel by pixel as decoding does (starting without
/// the tile's own pixels), gives the candle model's logits on the whole canvas.
fn assert_logits_agree(
    net: &vlae_zip::infer::network::Network,
    model: &vlae_zip::nn::vlae::Vlae,
    z: &[f32],
    canvas: &[u8],
    what: &str,
) {
    let shape = net.canvas();
    let zt = Tensor::from_vec(z.to_vec(), (1, z.len()), &Device::Cpu).unwrap();
    let logits = model
        .pixelcnn
        .forward(
            &pixels_tensor(canvas, &Device::Cpu).unwrap(),
            &model.decoder.forward(&zt).unwrap(),
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let pixels = net.tile_pixels();
    let mut known = canvas.to_vec();
    (0..pixels).for_each(|p| known[shape.of_tile(p)] = 0);
    let mut ps = net.pixels_start::<1>([z], [known.as_slice()]);
    for p in 0..pixels {
        let l = ps.logit(p)[0];
        assert!(
            (l - logits[p]).abs() < 1e-3 * (1.0 + l.abs()),
            "{what} pixel {p}: {l} vs {}",
            logits[p]
        );
        ps.set(p, 0, canvas[shape.of_tile(p)]);
    }
}

#[test]
fn a_missing_model_is_named() {
    let bytes = compress_chain(tiny(), &digit_entries(2), &digits(0, 2), Some(1));
    let err = decode(&[shipped()], &bytes).unwrap_err();
    assert!(matches!(err, ArchiveError::MissingModel(_)), "{err}");
    assert!(err.to_string().contains(&tiny().id().to_string()), "{err}");
}

/// The baseline kernels and the best this CPU has give the same archive, and each network
/// decodes the other's. Two networks are built, each with its own kernels, so the test
/// changes nothing that tests running beside it use. On a CPU without AVX2 both run the
/// baseline and the test proves nothing (it says so); there the golden archives
/// (tests/golden.rs), written with the AVX2 kernels, carry the cross-check.
#[test]
fn simd_and_baseline_kernels_give_identical_archives() {
    use vlae_zip::infer::kernels::Kernels;
    use vlae_zip::infer::network::Network;
    let load = || Network::load(TINY.as_ref(), TINY_CFG.as_ref()).expect("tiny model loads");
    let baseline = load()
        .with_kernels(Kernels::Baseline)
        .expect("baseline runs");
    let best = load();
    assert_eq!(baseline.kernels(), Kernels::Baseline);
    assert_eq!(best.kernels(), Kernels::best());
    if Kernels::Avx2.runs_here() {
        assert_eq!(best.kernels(), Kernels::Avx2);
    } else {
        assert!(load().with_kernels(Kernels::Avx2).is_err());
        eprintln!(
            "this CPU has no AVX2: both networks run the baseline kernels, \
             so only the golden archives compare them with AVX2"
        );
    }
    let (entries, images) = (digit_entries(8), digits(0, 8));
    let archive = compress_chain(&baseline, &entries, &images, Some(4));
    assert!(archive == compress_chain(&best, &entries, &images, Some(4)));
    for net in [&baseline, &best] {
        let back = decode(&[net], &archive).expect("decodes");
        assert!(back.into_iter().map(|(_, p)| p).eq(images.iter().cloned()));
    }
}

#[test]
fn default_lanes_let_sixteen_threads_decode_ten_thousand_digits() {
    let lanes = archive::default_lanes(10_000, 10_000 * 784, 1);
    assert!(lanes >= 16, "{lanes} lanes");
    let tasks = lanes.div_ceil(archive::lanes_per_task(lanes, 16));
    assert!(tasks >= 16, "{tasks} tasks for 16 threads");
    // On this 2-core machine the same lanes run as lockstep groups of 4.
    assert_eq!(archive::lanes_per_task(lanes, 2), 4);
}

/// Lanes follow what the model codes: a text page's blank margins and line gaps add no
/// lanes, each of which would cost its start-up, yet a page still decodes on two cores.
#[test]
fn default_lanes_follow_model_tiles_and_keep_two_cores_busy() {
    let page = common::text_page(1700, 2200, 5);
    let shapes = [(1700, 2200)];
    let tiles = archive::model_tiles(&shapes, &[&page], 32);
    let all = 1700usize.div_ceil(32) * 2200usize.div_ceil(32);
    assert!(tiles > 0 && (tiles as usize) < all, "{tiles} of {all}");
    let by_pixels = (1700 * 2200u64).div_ceil(archive::PIXELS_PER_LANE) as usize;
    let lanes = archive::default_lanes(tiles, 1700 * 2200, 1);
    assert!(lanes < by_pixels, "{lanes} lanes, {by_pixels} by pixels");
    // An even count near one lane per MODEL_TILES_PER_LANE, so two cores share it evenly.
    assert_eq!(lanes % 2, 0, "{lanes} lanes");
    let per_lane = tiles as f64 / lanes as f64 / archive::MODEL_TILES_PER_LANE as f64;
    assert!((0.66..=1.5).contains(&per_lane), "{per_lane}");
    // A blank page still gets two lanes, as do 1,000 digits; a few digits one.
    assert_eq!(archive::default_lanes(0, 1700 * 2200, 1), 2);
    assert_eq!(archive::default_lanes(1000, 1000 * 784, 1), 2);
    assert_eq!(archive::default_lanes(10, 10 * 784, 1), 1);
    // Two cores share a few hundred digits; fewer stay in one lane.
    assert_eq!(archive::default_lanes(255, 255 * 784, 1), 1);
    assert_eq!(archive::default_lanes(400, 400 * 784, 1), 2);
}

/// With importance samples lanes are longer, since each lane's ramp of samples costs more
/// the more it ramps to: 10,000 digits take 16 lanes plain and at K = 4, 4 at K = 16, and
/// 2 at K = 64, which still keep two cores busy.
#[test]
fn importance_samples_lengthen_the_default_lanes() {
    let lanes = |k| archive::default_lanes(10_000, 10_000 * 784, k);
    assert_eq!([lanes(1), lanes(4), lanes(16), lanes(64)], [16, 16, 4, 2]);
}

#[test]
fn importance_weighted_lanes_round_trip_including_lanes_shorter_than_the_ramp() {
    let net = shipped();
    let images = digits(100, 24);
    let sizes: Vec<(u32, u32)> = vec![(28, 28); 24];
    // Lanes of 1, 2, 3 and 18 digits: the ramp (one more sample every second tile)
    // reaches 8 samples only in the longest.
    for (lanes, samples) in [(Some(24), 8), (Some(12), 8), (Some(8), 4), (Some(1), 8)] {
        let bytes = compress_weighted(net, &entries_for(&sizes), &images, lanes, samples);
        let back = decode(&[net], &bytes).unwrap();
        assert!(
            back.iter().map(|(_, p)| p).eq(images.iter()),
            "{lanes:?} {samples}"
        );
        let arch = container::parse(&bytes).unwrap();
        assert!(arch.lanes.iter().all(|l| matches!(
            l.coder,
            LaneCoder::BitsBack { samples: s, memory: false, .. } if s as usize == samples
        )));
    }
    // Random images of odd sizes, through the tiny model.
    let odd: Vec<Vec<u8>> = [(30usize, 33usize), (5, 61), (28, 28)]
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| (0..w * h).map(|p| ((p * 7 + i) % 5 == 0) as u8).collect())
        .collect();
    let odd_sizes = [(30, 33), (5, 61), (28, 28)];
    let bytes = compress_weighted(tiny(), &entries_for(&odd_sizes), &odd, Some(1), 6);
    let back = decode(&[tiny()], &bytes).unwrap();
    assert!(back.iter().map(|(_, p)| p).eq(odd.iter()));
}

#[test]
fn importance_weighting_codes_digits_in_fewer_bits() {
    let net = shipped();
    let images = digits(200, 200);
    let plain = compress_chain(net, &digit_entries(200), &images, Some(1));
    let weighted = compress_weighted(net, &digit_entries(200), &images, Some(1), 8);
    // The IWAE bound with 8 samples is about a bit below the −ELBO on these digits.
    assert!(
        weighted.len() < plain.len(),
        "{} bytes weighted vs {} plain",
        weighted.len(),
        plain.len()
    );
}

/// The coder's PixelCNN reads a context model's canvas exactly as the candle model that
/// trained it does: same logits for every pixel of tiles in the middle and at the edges of
/// a page, their canvases cut by the one function both use.
#[test]
fn context_model_sees_what_training_saw() {
    let net = tiny_context();
    let cfg = VlaeConfig::load(TINY_CONTEXT_CFG.as_ref()).unwrap();
    let model = eval::load_model(TINY_CONTEXT.as_ref(), &cfg).unwrap();
    let canvas = net.canvas();
    assert_eq!((canvas.side, canvas.margin), (8, 1));
    let (width, height) = (37, 29);
    let page = text_page(width, height, 7);
    for (y, x) in [(0, 0), (8, 8), (8, 32), (24, 16)] {
        let mut c = vec![0u8; canvas.pixels()];
        canvas.fill(&page, width, height, y, x, &mut c);
        let z = vec![0.3f32; cfg.latent_dim];
        assert_logits_agree(net, &model, &z, &c, &format!("tile ({y}, {x})"));
    }
}

/// Context crosses tile borders inside a strip but never lane borders, so pages of any
/// size round-trip however they are split into lanes, plain and importance-weighted, and
/// with the page memory (format-spec.md §3.8), which every lane of a context model has.
#[test]
fn context_model_round_trips_pages_in_any_lanes() {
    let net = tiny_context();
    let sizes = [(61u32, 45u32), (8, 8), (1, 17), (23, 1), (40, 64)];
    let images = pages_of(&in_pixels(&sizes), text_page, 20);
    let entries = entries_for(&sizes);
    for lanes in [Some(1), Some(4), Some(9)] {
        round_trip(net, &entries, &images, lanes);
    }
    let weighted = compress_weighted(net, &entries, &images, Some(3), 3);
    let back = decode(&[net], &weighted).unwrap();
    assert!(back.iter().map(|(_, p)| p).eq(images.iter()));
}

/// Chains with the page memory round-trip strips of every shape, lanes in lockstep groups
/// of any size, plain and importance-weighted, and the memory changes the bytes (so it
/// is in use); a lane's bytes do not depend on the lanes coded beside it.
#[test]
fn page_memory_chains_round_trip_in_any_grouping() {
    let net = tiny_context();
    let sizes = [
        (61, 45),
        (8, 8),
        (1, 17),
        (23, 1),
        (40, 64),
        (70, 33),
        (16, 90),
    ];
    let pages = text_pages(&sizes);
    let strips = strips_of(&sizes, &pages);
    // Lanes of 1 to 3 strips; six lanes make a lockstep group of 4 and one of 2.
    let lanes: Vec<&[Strip]> = vec![
        &strips[..1],
        &strips[1..3],
        &strips[3..4],
        &strips[4..5],
        &strips[5..6],
        &strips[6..],
    ];
    for samples in [1, 3] {
        let bb = BitsBack::new(net, 8).unwrap().with_samples(samples);
        let remembering = BitsBack::new(net, 8)
            .unwrap()
            .with_samples(samples)
            .with_memory(true);
        let coded = remembering.compress_lanes(&lanes).unwrap();
        let forgetful = bb.compress_lanes(&lanes).unwrap();
        assert_ne!(coded, forgetful, "{samples} samples");
        let alone = remembering.compress_lanes(&lanes[1..2]).unwrap();
        assert_eq!(alone[0], coded[1]);
        let inputs: Vec<ChainInput> = coded
            .into_iter()
            .zip(&lanes)
            .map(|(lane, strips)| ChainInput {
                lane,
                shapes: strips.iter().map(|s| (s.width, s.rows)).collect(),
            })
            .collect();
        let back = remembering.decompress_lanes(&inputs, 0).unwrap();
        for (decoded, strips) in back.iter().zip(&lanes) {
            assert!(decoded
                .iter()
                .map(Vec::as_slice)
                .eq(strips.iter().map(|s| s.pixels)));
        }
    }
}

/// With several models, a page's lanes break where every model's tile rows do (224 rows
/// for 28 and 32), so each model codes its bands on the grid it was trained on.
#[test]
fn lanes_of_a_page_break_on_every_models_tile_rows() {
    let mnist = vlae_zip::models::built_in("mnist")
        .unwrap()
        .network()
        .unwrap();
    let documents = vlae_zip::models::built_in("documents")
        .unwrap()
        .network()
        .unwrap();
    let page = common::text_page(120, 1000, 7);
    let bytes = archive::compress(
        &[&mnist, &documents],
        &entries_for(&[(120, 1000)]),
        std::slice::from_ref(&page),
        archive::CompressOptions {
            latent_bits: 6,
            adapt_latent_bits: false,
            lanes: Some(3),
            coders: archive::LaneCoders::Smallest,
            samples: 1,
        },
        &|_| {},
    )
    .unwrap();
    let arch = container::parse(&bytes).unwrap();
    let rows: Vec<u64> = arch.lanes.iter().map(|l| l.rows).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[..2].iter().all(|r| r.is_multiple_of(224)), "{rows:?}");
    let decoded = decode(&[&mnist, &documents], &bytes).unwrap();
    assert_eq!(decoded[0].1, page);
}

/// A lane whose first pushed tiles follow a blank margin has too few bits on its stack for
/// the samples its ramp asks for: it is coded with fewer samples, not left to a fallback.
#[test]
fn importance_weighting_survives_a_blank_margin() {
    let documents = vlae_zip::models::built_in("documents")
        .unwrap()
        .network()
        .unwrap();
    // Text in the top 160 rows, then 160 blank rows: the lane's last tiles, pushed first.
    let (w, h) = (160, 320);
    let mut page = common::text_page(w, 160, 3);
    page.resize(w * h, 0);
    let bytes = compress_weighted(
        &documents,
        &entries_for(&[(w as u32, h as u32)]),
        &[page.clone()],
        Some(1),
        16,
    );
    let arch = container::parse(&bytes).unwrap();
    assert!(
        matches!(arch.lanes[0].coder, LaneCoder::BitsBack { samples, .. } if samples > 1),
        "{:?}",
        arch.lanes[0].coder
    );
    assert_eq!(decode(&[&documents], &bytes).unwrap()[0].1, page);
}

/// Page mixing, both editions (format-spec.md §3.9, §3.10), round-trips lanes of pages of
/// every shape, many strips a lane included, codes a page at least 10% smaller than counts
/// over the wide template do (so its mixers learn), and a lane's bytes do not depend on
/// the lanes coded beside it.
#[test]
fn page_mixing_round_trips_and_learns_the_page() {
    use vlae_zip::codec::lane::{LaneCodec, LaneToDecode};
    use vlae_zip::codec::mixing::PageMixing;
    use vlae_zip::codec::template::ContextModel;
    let sizes = [(300, 240), (1, 33), (77, 1), (64, 65), (130, 9)];
    let pages = text_pages(&sizes);
    let strips = strips_of(&sizes, &pages);
    let lanes: Vec<&[Strip]> = vec![&strips[..1], &strips[1..], &strips[3..4]];
    let counted = ContextModel { template: 0 }.encode(&lanes[..1]).unwrap()[0]
        .payload
        .len();
    for mixing in [
        PageMixing::FIRST,
        PageMixing::SECOND,
        PageMixing::THIRD,
        PageMixing::FOURTH,
    ] {
        let coded = mixing.encode(&lanes).unwrap();
        let alone = mixing.encode(&lanes[2..]).unwrap();
        assert_eq!(coded[2].payload, alone[0].payload);
        let to_decode: Vec<LaneToDecode> = lanes
            .iter()
            .zip(&coded)
            .map(|(lane, c)| LaneToDecode {
                seed_words_elided: 0,
                state: c.state,
                payload: &c.payload,
                shapes: lane.iter().map(|s| (s.width, s.rows)).collect(),
            })
            .collect();
        let back = mixing.decode(&to_decode, 0).unwrap();
        for (lane, got) in lanes.iter().zip(&back) {
            let want: Vec<&[u8]> = lane.iter().map(|s| s.pixels).collect();
            assert_eq!(got.iter().map(Vec::as_slice).collect::<Vec<_>>(), want);
        }
        let mixed = coded[0].payload.len();
        assert!(mixed * 10 < counted * 9, "{mixed} mixed, {counted} counted");
    }
}

/// Page mixing, glyph matching included (format-spec.md §3.9), follows earlier copies of
/// a glyph through the noise of a scan: a page of repeated glyphs whose border pixels were
/// flipped at random codes to under GLYPH_PAGE_BOUND of what the wide template's counts
/// take, and round-trips.
#[test]
fn page_mixing_pays_on_a_scanned_page() {
    use vlae_zip::codec::lane::{LaneCodec, LaneToDecode};
    use vlae_zip::codec::mixing::PageMixing;
    use vlae_zip::codec::template::ContextModel;
    let (width, rows) = (600, 400);
    // Glyphs at twice the scale, 12 × 16 pixels on lines 28 apart, as at 200–300 dpi.
    let small = common::glyph_page(width / 2, rows / 2, 3);
    let clean: Vec<u8> = (0..width * rows)
        .map(|i| small[(i / width / 2) * (width / 2) + (i % width) / 2])
        .collect();
    // As corpus/recipes/scan_noise.py does: each pixel that differs from its right or
    // lower neighbour flips with probability 1/16.
    let mut scan = clean.clone();
    let mut state = 7u64;
    for y in 0..rows - 1 {
        for x in 0..width - 1 {
            let at = y * width + x;
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let border = clean[at] != clean[at + 1] || clean[at] != clean[at + width];
            if border && state >> 60 == 0 {
                scan[at] ^= 1;
            }
        }
    }
    let strips = [Strip {
        width,
        rows,
        pixels: &scan,
    }];
    let lanes: Vec<&[Strip]> = vec![&strips];
    let counted = ContextModel { template: 0 }.encode(&lanes).unwrap()[0]
        .payload
        .len();
    let mixed = PageMixing::LATEST.encode(&lanes).unwrap().remove(0);
    let mixed_bytes = mixed.payload.len();
    assert!(
        (mixed_bytes as f64) < GLYPH_PAGE_BOUND * counted as f64,
        "{mixed_bytes} mixed, {counted} counted"
    );
    let back = PageMixing::LATEST
        .decode(
            &[LaneToDecode {
                seed_words_elided: 0,
                state: mixed.state,
                payload: &mixed.payload,
                shapes: vec![(width, rows)],
            }],
            0,
        )
        .unwrap();
    assert_eq!(back[0], [scan]);
}

/// The bound of `page_mixing_pays_on_a_scanned_page`, as a fraction of template 0: the page
/// measured 0.671 when the bound was set.
const GLYPH_PAGE_BOUND: f64 = 0.7;

/// Text-like pages of these sizes, each its own.
fn text_pages(sizes: &[(usize, usize)]) -> Vec<Vec<u8>> {
    pages_of(sizes, text_page, 40)
}

/// One page of each size drawn by `draw`, with seeds from `first_seed` on.
fn pages_of(
    sizes: &[(usize, usize)],
    draw: fn(usize, usize, u64) -> Vec<u8>,
    first_seed: u64,
) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| draw(w, h, first_seed + i as u64))
        .collect()
}

/// Sizes as the entry table gives them, as pixel counts.
fn in_pixels(sizes: &[(u32, u32)]) -> Vec<(usize, usize)> {
    sizes
        .iter()
        .map(|&(w, h)| (w as usize, h as usize))
        .collect()
}

/// Each page as a whole strip.
fn strips_of<'a>(sizes: &[(usize, usize)], pages: &'a [Vec<u8>]) -> Vec<Strip<'a>> {
    sizes
        .iter()
        .zip(pages)
        .map(|(&(width, rows), pixels)| Strip {
            width,
            rows,
            pixels,
        })
        .collect()
}

/// An input of clean pages is coded by page mixing alone, in as few lanes as the per-lane
/// limit allows, or as many as asked, and round-trips; an input of digits never is.
#[test]
fn clean_pages_are_mixed_in_as_few_lanes_as_allowed() {
    let sizes = [(640u32, 480u32), (500, 420)];
    let pages = pages_of(&in_pixels(&sizes), glyph_page, 60);
    let entries = entries_for(&sizes);
    for (asked, want) in [(None, 1), (Some(3), 3)] {
        let bytes = round_trip(tiny_context(), &entries, &pages, asked);
        let arch = container::parse(&bytes).unwrap();
        let coders: Vec<LaneCoder> = arch.lanes.iter().map(|l| l.coder).collect();
        assert_eq!(coders, vec![LaneCoder::PageMixing(Edition::Fourth); want]);
    }
    let digits = digits(0, 40);
    let bytes = compress(shipped(), &entries_for(&[(28, 28); 40]), &digits, None);
    let arch = container::parse(&bytes).unwrap();
    assert!(arch
        .lanes
        .iter()
        .all(|l| matches!(l.coder, LaneCoder::BitsBack { .. })));
}

/// A page of lines of 26 glyphs of 10×14 pixels, each a fixed random bitmap, set in a
/// random order: a page that repeats itself, as text does.
fn glyph_page(width: usize, height: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let glyphs: Vec<Vec<u8>> = (0..26)
        .map(|_| (0..140).map(|_| u8::from(next() % 3 == 0)).collect())
        .collect();
    let mut page = vec![0u8; width * height];
    for line in 0..(height - 4) / 20 {
        for slot in 0..(width - 4) / 12 {
            let glyph = &glyphs[(next() % 26) as usize];
            for (k, &bit) in glyph.iter().enumerate() {
                page[(4 + line * 20 + k / 10) * width + 4 + slot * 12 + k % 10] = bit;
            }
        }
    }
    page
}

/// A page followed by digits: no lane holds both, so that each run of images gets the
/// coder that suits it. (A folder of a test page and 200 digits came to 10,852 bytes with
/// the page's last band and the digits in one lane under the documents model, against
/// 7,740 with the two apart.)
#[test]
fn a_page_and_digits_are_coded_in_lanes_apart() {
    let mut images = vec![common::text_page(600, 400, 3)];
    images.extend(digits(0, 60));
    let mut sizes = vec![(600, 400)];
    sizes.extend([(28, 28); 60]);
    let entries = entries_for(&sizes);
    let bytes = compress(shipped(), &entries, &images, None);
    let arch = container::parse(&bytes).unwrap();
    let ends: Vec<u64> = arch
        .lanes
        .iter()
        .scan(0, |at, lane| {
            *at += lane.rows;
            Some(*at)
        })
        .collect();
    assert!(ends.contains(&400), "lanes end at rows {ends:?}");
    let back = decode(&[shipped()], &bytes).unwrap();
    assert!(back.into_iter().map(|(_, p)| p).eq(images));
}

/// A page of digits in a 12 × 12 grid: page mixing learns it only in part, and the
/// chains' estimate (a sparse sample, then the full one for models still close) finds the
/// digit model's chain the smaller, so the page is coded lane by lane by that chain.
#[test]
fn a_grid_of_digits_goes_to_the_digit_models_chain() {
    let side = 12 * 28;
    let cells = digits(0, 144);
    let mut grid = vec![0u8; side * side];
    for (k, digit) in cells.iter().enumerate() {
        let (top, left) = (28 * (k / 12), 28 * (k % 12));
        for (row, pixels) in digit.chunks(28).enumerate() {
            grid[(top + row) * side + left..][..28].copy_from_slice(pixels);
        }
    }
    let size = (side as u32, side as u32);
    let bytes = round_trip(shipped(), &entries_for(&[size]), &[grid], None);
    let arch = container::parse(&bytes).unwrap();
    assert!(
        arch.lanes
            .iter()
            .all(|lane| matches!(lane.coder, LaneCoder::BitsBack { .. })),
        "{:?}",
        arch.lanes.iter().map(|l| l.coder).collect::<Vec<_>>()
    );
}

/// `decompress_some` decodes only the lanes holding the images asked for: with a fault
/// planted in the second of two stored lanes (a padding bit set, the file checksum made
/// whole again), the whole archive fails, while an image of the first lane comes back.
#[test]
fn decompressing_some_images_decodes_only_their_lanes() {
    let net = common::tiny();
    // Coin flips of 27 × 27: stored bits code them smallest, 1,458 bits a lane of two,
    // so bits 2 to 5 of each lane's last byte are padding, whichever way bits are packed.
    let mut state = 7u64;
    let images: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            (0..27 * 27)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 63) as u8
                })
                .collect()
        })
        .collect();
    let entries = common::entries_for(&[(27, 27); 4]);
    let mut bytes = common::compress(net, &entries, &images, Some(2));
    let arch = container::parse(&bytes).unwrap();
    assert!(arch.lanes.iter().all(|l| l.coder == LaneCoder::Stored));
    // Images from both lanes, one after a skipped image of its lane.
    let some = |arch: &container::Archive, names: &[&str]| {
        let mut got = Vec::new();
        archive::decompress_some(
            &[net],
            arch,
            &|e| names.contains(&e.name.as_str()),
            &mut |e: container::Entry, p: Vec<u8>| -> Result<(), ArchiveError> {
                got.push((e.name, p));
                Ok(())
            },
            &|_| {},
        )
        .map(|()| got)
    };
    assert_eq!(
        some(&arch, &["00000.pbm", "00003.pbm"]).unwrap(),
        [
            ("00000.pbm".to_string(), images[0].clone()),
            ("00003.pbm".to_string(), images[3].clone())
        ]
    );
    let last = arch.lanes[1].payload;
    let at = last.as_ptr() as usize - bytes.as_ptr() as usize + last.len() - 1;
    bytes[at] |= 0x3c;
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    assert!(common::decode(&[net], &bytes).is_err());
    let arch = container::parse(&bytes).unwrap();
    assert_eq!(
        some(&arch, &["00001.pbm"]).unwrap(),
        [("00001.pbm".to_string(), images[1].clone())]
    );
}

/// Pages that repeat earlier ones are stored as repeat lanes of no payload and come back
/// whole, also when only a repeat is asked for (its source, and the source's source, are
/// decoded for it); a hand-made repeat of part of an image decodes too.
#[test]
fn repeated_images_cost_a_record_and_decode_alone() {
    let (a, b) = (text_page(200, 120, 1), text_page(200, 120, 2));
    let images = vec![a.clone(), b.clone(), a.clone(), b.clone(), a.clone()];
    let entries = entries_for(&[(200, 120); 5]);
    let bytes = round_trip(tiny(), &entries, &images, None);
    let arch = container::parse(&bytes).unwrap();
    let repeats: Vec<(LaneCoder, u64)> = arch
        .lanes
        .iter()
        .filter(|l| matches!(l.coder, LaneCoder::Repeat { .. }))
        .map(|l| (l.coder, l.rows))
        .collect();
    // Images 2, 3 and 4 each repeat the image two before: one run.
    assert_eq!(repeats, [(LaneCoder::Repeat { back: 2 }, 360)]);
    let alone = compress(tiny(), &entries[..2], &images[..2], None);
    assert!(
        bytes.len() < alone.len() + 16,
        "{} against {}",
        bytes.len(),
        alone.len()
    );
    let mut last = Vec::new();
    archive::decompress_some(
        &[tiny()],
        &arch,
        &|e: &container::Entry| e.name == entries[4].name,
        &mut |e: container::Entry, p: Vec<u8>| -> Result<(), ArchiveError> {
            last.push((e, p));
            Ok(())
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(last, [(entries[4].clone(), a.clone())]);

    // Stored bits for the first image and 10 rows of the second, whose last 18 rows repeat
    // the first's.
    let bits: Vec<u8> = [&a[..], &a[..200 * 10]].concat();
    let packed: Vec<u8> = bits
        .chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0, |byte, (i, &p)| byte | p << (7 - i))
        })
        .collect();
    let twice = [a.clone(), a.clone()];
    let lanes = vec![
        container::Lane {
            coder: LaneCoder::Stored,
            rows: 130,
            seed_words_elided: 0,
            state: 0,
            payload: packed,
        },
        container::Lane {
            coder: LaneCoder::Repeat { back: 1 },
            rows: 110,
            seed_words_elided: 0,
            state: 0,
            payload: Vec::new(),
        },
    ];
    let made = container::write(&container::NewArchive {
        models: vec![],
        latent_bits: 6,
        entries: &entries[..2],
        lanes,
        pixel_crc: crc32fast::hash(&twice.concat()),
    })
    .unwrap();
    let decoded = decode(&[], &made).unwrap();
    assert_eq!(
        decoded.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        twice
    );
}

/// A page of one small tile of sparse dots over and over: a Zstandard frame codes it in a
/// fraction of page mixing's bytes, and round-trips.
#[test]
fn a_tiled_page_is_framed_by_zstd() {
    let page = tiled_page(480, 480, 48, 3);
    let entries = entries_for(&[(480, 480)]);
    let bytes = round_trip(tiny(), &entries, std::slice::from_ref(&page), None);
    let arch = container::parse(&bytes).unwrap();
    assert!(
        arch.lanes.iter().all(|l| l.coder == LaneCoder::Zstd),
        "{:?}",
        arch.lanes
    );
    use vlae_zip::codec::lane::LaneCodec;
    let strip = [Strip {
        width: 480,
        rows: 480,
        pixels: &page,
    }];
    let mixed = vlae_zip::codec::mixing::PageMixing::LATEST
        .encode(&[&strip])
        .unwrap()[0]
        .payload
        .len();
    assert!(
        bytes.len() * 2 < mixed,
        "{} against page mixing's {mixed}",
        bytes.len()
    );
}
