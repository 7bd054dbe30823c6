//! Fuzzes parsing and decoding together: inputs are resealed (their trailing CRC-32
//! recomputed) so that mutations of a valid archive reach the structural checks and then
//! the lane decoders with corrupted payloads. Whatever parses must decode or fail with a
//! typed error: no panic, no hang, no allocation beyond what the lanes actually decode.
//! Seed it with the golden archives of `tests/data/golden/`; `context.vlz` is coded by the
//! tiny context model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vlae_zip::archive::{self, ArchiveError};
use vlae_zip::config::VlaeConfig;
use vlae_zip::container::{self, Entry};
use vlae_zip::infer::network::Network;
use vlae_zip::infer::weights::Weights;

fn network(config: &str, weights: &[u8], name: &str) -> Network {
    let cfg = VlaeConfig::from_json(config, name).expect("tiny config");
    let weights = Weights::from_bytes(weights, name, &cfg).expect("tiny weights");
    Network::new(&weights, &cfg).expect("tiny model")
}

/// The tiny test model and the tiny context model.
fn tiny() -> &'static [Network; 2] {
    static NETS: OnceLock<[Network; 2]> = OnceLock::new();
    NETS.get_or_init(|| {
        [
            network(
                include_str!("../../tests/data/tiny.json"),
                include_bytes!("../../tests/data/tiny.safetensors"),
                "tiny",
            ),
            network(
                include_str!("../../tests/data/tiny-context.json"),
                include_bytes!("../../tests/data/tiny-context.safetensors"),
                "tiny-context",
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let mut sealed = data.to_vec();
    let n = sealed.len() - 4;
    let crc = crc32fast::hash(&sealed[..n]);
    sealed[n..].copy_from_slice(&crc.to_le_bytes());
    if let Ok(arch) = container::parse(&sealed) {
        // Bounded work: the fuzzer's inputs are small, but a valid header may still claim
        // large blank images; skip what would only measure how fast zeros are written.
        if arch.total_rows() > 4096 {
            return;
        }
        let [a, b] = tiny();
        let _ = archive::decompress(
            &[a, b],
            &arch,
            &mut |_: Entry, _: Vec<u8>| -> Result<(), ArchiveError> { Ok(()) },
            &|_| {},
        );
    }
});
