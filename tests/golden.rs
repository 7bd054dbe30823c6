//! A committed archive made by an earlier build must keep decoding to the same files.
//!
//! `tests/data/golden.vlz` holds 40 test digits in every supported format, compressed with
//! the tiny model; `tests/data/golden-results.txt` lists the CRC-32 of every file
//! decompression writes. If the format ever has to change, bump its version and keep a
//! decoder for this one. Regenerate (only then) with
//! `cargo test --release --test golden -- --ignored`.

use vlae_zip::archive;
use vlae_zip::container::{self, Entry};
use vlae_zip::folder::FolderImage;
use vlae_zip::geometry::PIXELS;
use vlae_zip::image_io::{encode_image, BitImage, ImageFormat};
use vlae_zip::infer::network::Network;

const GOLDEN: &str = "tests/data/golden.vlz";
const RESULTS: &str = "tests/data/golden-results.txt";

fn tiny() -> Network {
    Network::load(
        "tests/data/tiny.safetensors".as_ref(),
        "tests/data/tiny.json".as_ref(),
    )
    .unwrap()
}

fn file_bytes(img: &FolderImage) -> Vec<u8> {
    encode_image(
        &BitImage {
            width: 28,
            height: 28,
            pixels: img.pixels.clone(),
        },
        img.format,
    )
}

fn decoded_listing() -> String {
    let net = tiny();
    let arch = container::parse(&std::fs::read(GOLDEN).unwrap()).expect("golden archive parses");
    let pixels = archive::decompress(&net, &arch, &|_| {}).expect("golden archive decodes");
    arch.entries
        .into_iter()
        .zip(pixels)
        .map(|(e, pixels)| {
            let img = FolderImage {
                name: e.name,
                format: e.format,
                pixels,
            };
            format!("{} {:08x}\n", img.name, crc32fast::hash(&file_bytes(&img)))
        })
        .collect()
}

#[test]
fn golden_archive_decodes_byte_exactly() {
    let want = std::fs::read_to_string(RESULTS).unwrap();
    assert_eq!(decoded_listing(), want);
}

#[test]
#[ignore = "regenerates the golden files; run only when the format version changes"]
fn regenerate_golden() {
    let flat =
        vlae_zip::idx::read_idx_images("corpus/binarized-mnist/test-images.idx3-ubyte.gz".as_ref())
            .unwrap();
    let formats = [
        ImageFormat::Pbm,
        ImageFormat::PngGray { bit_depth: 1 },
        ImageFormat::PngGray { bit_depth: 8 },
        ImageFormat::PngGray { bit_depth: 16 },
    ];
    let (entries, images): (Vec<Entry>, Vec<Vec<u8>>) = (0..40)
        .map(|i| {
            let format = formats[i % formats.len()];
            let ext = if format == ImageFormat::Pbm {
                "pbm"
            } else {
                "png"
            };
            (
                Entry {
                    name: format!("digits/{i:03}.{ext}"),
                    format,
                },
                flat[i * PIXELS..(i + 1) * PIXELS].to_vec(),
            )
        })
        .unzip();
    let arch = archive::compress(&tiny(), entries, &images, 8, 3, &|_| {}).unwrap();
    std::fs::write(GOLDEN, container::write(&arch)).unwrap();
    std::fs::write(RESULTS, decoded_listing()).unwrap();
}
