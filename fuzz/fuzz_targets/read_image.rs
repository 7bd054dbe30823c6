//! Fuzzes the image readers (PBM, PNG, TIFF with every compression it reads): any bytes
//! must give images or a typed error naming the file, never a panic, a hang or an
//! allocation larger than the limits on a page allow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vlae_zip::image_io::decode_image_file(std::path::Path::new("fuzz"), data);
});
