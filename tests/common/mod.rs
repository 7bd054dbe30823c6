//! Helpers shared by the integration tests.
#![allow(dead_code)]

use vlae_zip::archive::{self, ArchiveError, CompressOptions, LaneCoders};
use vlae_zip::container::{self, Entry, ImageFormat};
use vlae_zip::infer::network::Network;

pub const TINY: &str = "tests/data/tiny.safetensors";
pub const TINY_CFG: &str = "tests/data/tiny.json";
pub const SHIPPED: &str = "models/vlae-mnist.safetensors";
pub const SHIPPED_CFG: &str = "models/vlae-mnist.json";
pub const TEST_IDX: &str = "corpus/binarized-mnist/test-images.idx3-ubyte.gz";
/// A tiny model with context across tile borders (8×8 tiles), trained for a few steps on
/// [`text_page`]s: what tests of context coding need.
pub const TINY_CONTEXT: &str = "tests/data/tiny-context.safetensors";
pub const TINY_CONTEXT_CFG: &str = "tests/data/tiny-context.json";

pub fn tiny() -> &'static Network {
    static NET: std::sync::OnceLock<Network> = std::sync::OnceLock::new();
    NET.get_or_init(|| Network::load(TINY.as_ref(), TINY_CFG.as_ref()).expect("tiny model loads"))
}

pub fn tiny_context() -> &'static Network {
    static NET: std::sync::OnceLock<Network> = std::sync::OnceLock::new();
    NET.get_or_init(|| {
        Network::load(TINY_CONTEXT.as_ref(), TINY_CONTEXT_CFG.as_ref())
            .expect("tiny context model loads")
    })
}

/// Draws numbers below a bound, the same ones for the same `seed` (xorshift).
fn below(seed: u64) -> impl FnMut(u64) -> usize {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n) as usize
    }
}

/// A `width × height` page of one `tile × tile` tile of sparse dots (about 1 in 50 ink)
/// over and over, the same for the same `seed`: exact repeats at a distance that page
/// mixing's contexts do not reach, which a Zstandard frame codes smallest.
pub fn tiled_page(width: usize, height: usize, tile: usize, seed: u64) -> Vec<u8> {
    let mut next = below(seed);
    let dots: Vec<u8> = (0..tile * tile).map(|_| u8::from(next(50) == 0)).collect();
    (0..width * height)
        .map(|i| dots[(i / width % tile) * tile + i % width % tile])
        .collect()
}

/// A `width × height` page of text-like ink, 0/1 bytes: lines of blocky glyphs of a few
/// pixels, with spaces between words and white margins, the same for the same `seed`.
pub fn text_page(width: usize, height: usize, seed: u64) -> Vec<u8> {
    let mut next = below(seed);
    let mut page = vec![0u8; width * height];
    let mut y = 3;
    while y + 7 < height {
        let mut x = 2;
        while x + 5 < width.saturating_sub(2) {
            if next(6) == 0 {
                x += 4; // a space
                continue;
            }
            let (w, h) = (2 + next(3), 3 + next(4));
            for dy in 0..h {
                for dx in 0..w {
                    if next(5) != 0 || dy == 0 {
                        page[(y + 6 - h + dy) * width + x + dx] = 1;
                    }
                }
            }
            x += w + 1;
        }
        y += 9;
    }
    page
}

/// A page of text lines set from a font of 24 glyphs of three random strokes (bars 2
/// pixels thick in a 6×8 box), so that glyphs repeat as they do on a real page, where a
/// skewed scan kinks each copy differently.
pub fn glyph_page(width: usize, height: usize, seed: u64) -> Vec<u8> {
    let mut next = below(seed);
    let font: Vec<Vec<u8>> = (0..24)
        .map(|_| {
            let mut glyph = vec![0u8; 48];
            for _ in 0..3 {
                let (across, at) = (next(2) == 0, next(5));
                for (i, pixel) in glyph.iter_mut().enumerate() {
                    let (row, col) = (i / 6, i % 6);
                    if (across && (at..at + 3).contains(&row))
                        || (!across && (at..at + 2).contains(&col))
                    {
                        *pixel = 1;
                    }
                }
            }
            glyph
        })
        .collect();
    let mut page = vec![0u8; width * height];
    for top in (16..height.saturating_sub(24)).step_by(14) {
        let mut x = 16;
        while x + 24 < width {
            if next(7) == 0 {
                x += 5; // a space
                continue;
            }
            let glyph = &font[next(24)];
            for (i, &ink) in glyph.iter().enumerate() {
                page[(top + i / 6) * width + x + i % 6] = ink;
            }
            x += 7;
        }
    }
    page
}

pub fn shipped() -> &'static Network {
    static NET: std::sync::OnceLock<Network> = std::sync::OnceLock::new();
    NET.get_or_init(|| {
        Network::load(SHIPPED.as_ref(), SHIPPED_CFG.as_ref()).expect("shipped model loads")
    })
}

/// Test digits `skip..skip + n`, 784 bytes of 0/1 each.
pub fn digits(skip: usize, n: usize) -> Vec<Vec<u8>> {
    vlae_zip::idx::read_idx_images(TEST_IDX.as_ref())
        .unwrap()
        .chunks(784)
        .skip(skip)
        .take(n)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Entries `00000.pbm`, … for n 28×28 images.
pub fn digit_entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            name: format!("{i:05}.pbm"),
            format: ImageFormat::Pbm,
            width: 28,
            height: 28,
        })
        .collect()
}

/// Entries `00000.pbm`, … for images of the given sizes.
pub fn entries_for(sizes: &[(u32, u32)]) -> Vec<Entry> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &(width, height))| Entry {
            name: format!("{i:05}.pbm"),
            format: ImageFormat::Pbm,
            width,
            height,
        })
        .collect()
}

pub fn compress(
    net: &Network,
    entries: &[Entry],
    images: &[Vec<u8>],
    lanes: Option<usize>,
) -> Vec<u8> {
    compress_with(net, entries, images, lanes, LaneCoders::Smallest, 1)
}

/// Compresses with the bits-back chain wherever it can code a lane: what tests of the
/// chain itself need, since the tiny model loses to the context model on most images.
pub fn compress_chain(
    net: &Network,
    entries: &[Entry],
    images: &[Vec<u8>],
    lanes: Option<usize>,
) -> Vec<u8> {
    compress_with(net, entries, images, lanes, LaneCoders::BitsBack, 1)
}

/// Compresses with importance-weighted bits-back, up to `samples` latents a tile.
pub fn compress_weighted(
    net: &Network,
    entries: &[Entry],
    images: &[Vec<u8>],
    lanes: Option<usize>,
    samples: usize,
) -> Vec<u8> {
    compress_with(net, entries, images, lanes, LaneCoders::BitsBack, samples)
}

pub fn compress_with(
    net: &Network,
    entries: &[Entry],
    images: &[Vec<u8>],
    lanes: Option<usize>,
    coders: LaneCoders,
    samples: usize,
) -> Vec<u8> {
    archive::compress(
        &[net],
        entries,
        images,
        CompressOptions {
            latent_bits: 8,
            adapt_latent_bits: false,
            lanes,
            coders,
            samples,
        },
        &|_| {},
    )
    .expect("compresses")
}

/// Every image of an archive, in order.
pub fn decode(models: &[&Network], bytes: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>, ArchiveError> {
    let arch = container::parse(bytes)?;
    let mut out = Vec::new();
    archive::decompress(
        models,
        &arch,
        &mut |e: Entry, p: Vec<u8>| -> Result<(), ArchiveError> {
            out.push((e, p));
            Ok(())
        },
        &|_| {},
    )?;
    Ok(out)
}

/// Compresses (with every coder, then with the chain alone) and decompresses, asserting
/// that everything comes back; returns the first archive.
pub fn round_trip(
    net: &Network,
    entries: &[Entry],
    images: &[Vec<u8>],
    lanes: Option<usize>,
) -> Vec<u8> {
    let chained = compress_chain(net, entries, images, lanes);
    check_decodes(net, &chained, entries, images);
    let bytes = compress(net, entries, images, lanes);
    check_decodes(net, &bytes, entries, images);
    bytes
}

fn check_decodes(net: &Network, bytes: &[u8], entries: &[Entry], images: &[Vec<u8>]) {
    let back = decode(&[net], bytes).expect("decodes");
    assert_eq!(back.len(), images.len());
    for ((e, p), (want_e, want_p)) in back.iter().zip(entries.iter().zip(images)) {
        assert_eq!(e, want_e);
        assert!(p == want_p, "{}: pixels differ", e.name);
    }
}
