//! Reading IDX3 files (optionally gzipped) of bi-level images: the binarized MNIST the
//! corpus ships in, and data sets of any image size in the same layout.

#![forbid(unsafe_code)]

/// Side of the MNIST images.
const HEIGHT: usize = 28;
const WIDTH: usize = 28;
/// Pixels per MNIST image.
pub const PIXELS: usize = HEIGHT * WIDTH;

/// The images of an IDX3 file, all `rows × cols`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub rows: usize,
    pub cols: usize,
    /// Every image's pixels in turn, 0 or 1, `rows × cols` each.
    pub pixels: Vec<u8>,
}
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

/// Reads all images of an IDX3 file of 28×28 images as one flat buffer of 0/1 bytes,
/// `PIXELS` per image.
pub fn read_idx_images(path: &Path) -> Result<Vec<u8>, IdxError> {
    let images = read_idx(path)?;
    if (images.rows, images.cols) != (HEIGHT, WIDTH) {
        return Err(IdxError::Format {
            path: path.display().to_string(),
            reason: format!(
                "images are {}×{}, not MNIST's {HEIGHT}×{WIDTH}",
                images.rows, images.cols
            ),
        });
    }
    Ok(images.pixels)
}

/// Reads all images of an IDX3 file, of any size.
pub fn read_idx(path: &Path) -> Result<IdxImages, IdxError> {
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

/// Parses an uncompressed IDX3 buffer of binary images.
pub fn parse_idx_images(bytes: &[u8]) -> Result<IdxImages, String> {
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
    if rows == 0 || cols == 0 {
        return Err(format!("images are {rows}×{cols}"));
    }
    let body = &bytes[16..];
    let pixels = rows * cols;
    if Some(body.len()) != count.checked_mul(pixels) {
        return Err(format!(
            "header promises {count} images but the file holds {} bytes of pixels",
            body.len()
        ));
    }
    if let Some(i) = body.iter().position(|&b| b > 1) {
        return Err(format!(
            "image {} pixel {} has value {}; only 0 and 1 are bi-level",
            i / pixels,
            i % pixels,
            body[i]
        ));
    }
    Ok(IdxImages {
        rows,
        cols,
        pixels: body.to_vec(),
    })
}
