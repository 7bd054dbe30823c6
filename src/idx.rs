//! Reading the binarized-MNIST IDX3 files (optionally gzipped) the corpus ships in.

#![forbid(unsafe_code)]

/// Side of the MNIST-style images these files hold.
const HEIGHT: usize = 28;
const WIDTH: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = HEIGHT * WIDTH;
use std::io::Read;
use std::path::Path;

/// IDX magic number for unsigned-byte 3-D arrays.
const IDX3_UBYTE_MAGIC: u32 = 0x0000_0803;
/// gzip's two magic bytes, to accept both plain and gzipped files.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why an IDX file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: {reason}")]
    Io {
        path: String,
        reason: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

/// Reads all images of an IDX3 file as one flat buffer of 0/1 bytes, `PIXELS` per image.
pub fn read_idx_images(path: &Path) -> Result<Vec<u8>, IdxError> {
    let name = path.display().to_string();
    let io = |reason| IdxError::Io {
        path: name.clone(),
        reason,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse_idx_images(&bytes).map_err(|reason| IdxError::Format { path: name, reason })
}

/// Parses an uncompressed IDX3 buffer of 28×28 binary images.
pub fn parse_idx_images(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 16 {
        return Err("too short for an IDX3 header".into());
    }
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    if word(0) != IDX3_UBYTE_MAGIC {
        return Err(format!(
            "not an IDX3 unsigned-byte file (magic {:#010x})",
            word(0)
        ));
    }
    let (count, rows, cols) = (word(4) as usize, word(8) as usize, word(12) as usize);
    if (rows, cols) != (HEIGHT, WIDTH) {
        return Err(format!(
            "images are {rows}×{cols}, the model handles {HEIGHT}×{WIDTH}"
        ));
    }
    let body = &bytes[16..];
    if body.len() != count * PIXELS {
        return Err(format!(
            "header promises {count} images but the file holds {} bytes of pixels",
            body.len()
        ));
    }
    if let Some(i) = body.iter().position(|&b| b > 1) {
        return Err(format!(
            "image {} pixel {} has value {}; only 0 and 1 are bi-level",
            i / PIXELS,
            i % PIXELS,
            body[i]
        ));
    }
    Ok(body.to_vec())
}
