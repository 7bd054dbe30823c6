//! Fuzzes the container parser: any bytes must give an archive or a typed error, never a
//! panic, a hang or an allocation larger than the input justifies. Inputs whose checksum
//! is wrong are resealed half of the time so that the structural checks behind the
//! checksum get exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vlae_zip::container::parse(data);
    if data.len() >= 8 && data[0] & 1 == 1 {
        let mut sealed = data.to_vec();
        let n = sealed.len() - 4;
        let crc = crc32fast_hash(&sealed[..n]);
        sealed[n..].copy_from_slice(&crc.to_le_bytes());
        let _ = vlae_zip::container::parse(&sealed);
    }
});

/// CRC-32 (IEEE), bitwise: the fuzz crate stays free of extra dependencies.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
