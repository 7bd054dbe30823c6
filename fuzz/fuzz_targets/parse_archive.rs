//! Fuzzes the container parser: any bytes must give an archive or a typed error, never a
//! panic, a hang or an allocation larger than the input justifies. Every input is parsed
//! as it is and again resealed (its trailing CRC-32 recomputed), so that the structural
//! checks behind the checksum get exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vlae_zip::container::parse(data);
    if data.len() >= 8 {
        let mut sealed = data.to_vec();
        let n = sealed.len() - 4;
        let crc = crc32fast::hash(&sealed[..n]);
        sealed[n..].copy_from_slice(&crc.to_le_bytes());
        let _ = vlae_zip::container::parse(&sealed);
    }
});
