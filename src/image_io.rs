//! Reading and writing bi-level images: PBM (P1 and P4) and grayscale PNG.
//!
//! Nothing is ever binarized: a PNG whose pixels are not exactly black and white is an
//! error naming the first offending pixel. Ink is 1, as in PBM; in PNG, black is ink.
#![forbid(unsafe_code)]

pub use crate::container::ImageFormat;
use crate::container::{MAX_IMAGE_PIXELS, MAX_SIDE};
use std::io::Read;
use std::path::Path;

/// A bi-level image, one byte (0 or 1) per pixel, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Why an image could not be read or written. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {reason}")]
    Io {
        path: String,
        reason: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: pixel (row {row}, column {col}) has value {value}, not black or white; vlae-zip never binarizes")]
    NotBiLevel {
        path: String,
        row: usize,
        col: usize,
        value: u32,
    },
    #[error("{path}: is {kind}, not a regular file (images are read from files, or from standard input as -)")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path}: not enough memory: {bytes} bytes are needed for {what}")]
    OutOfMemory {
        path: String,
        bytes: usize,
        what: &'static str,
    },
}

fn invalid(path: &Path, reason: impl Into<String>) -> ImageError {
    ImageError::Invalid {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Reserves room for `extra` more bytes in `v`, or fails with the bytes that were needed: a
/// clean error naming the image rather than the allocator's abort.
fn reserve(
    v: &mut Vec<u8>,
    extra: usize,
    path: &Path,
    what: &'static str,
) -> Result<(), ImageError> {
    v.try_reserve_exact(extra)
        .map_err(|_| ImageError::OutOfMemory {
            path: path.display().to_string(),
            bytes: v.len().saturating_add(extra),
            what,
        })
}

/// What a file type is when it is neither a regular file nor a folder, in words; `None`
/// for those two (and for a symbolic link, which is judged by what it points to).
pub fn special_kind(kind: &std::fs::FileType) -> Option<&'static str> {
    if kind.is_file() || kind.is_dir() || kind.is_symlink() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a file")
}

/// The format of a file judged by its extension, or `None` for files vlae-zip skips.
pub fn format_for_extension(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "pbm" => Some("pbm"),
        "png" => Some("png"),
        _ => None,
    }
}

/// Reads a PBM or PNG file (chosen by its content, not its name). The file must be a
/// regular file, and only as many bytes are read as its header says the image takes, plus
/// a margin: a larger file is refused from its size alone, unread.
pub fn read_image(path: &Path) -> Result<(BitImage, ImageFormat), ImageError> {
    let file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|reason| io_error(path, reason))?
        .len();
    let bytes = read_bounded(file, Some(len), path)?;
    decode_image(path, &bytes)
}

/// Reads an image from a stream (standard input), stopping at the bytes its header
/// allows plus a margin; `name` names it in errors.
pub fn read_image_from(
    reader: impl Read,
    name: &Path,
) -> Result<(BitImage, ImageFormat), ImageError> {
    let bytes = read_bounded(reader, None, name)?;
    decode_image(name, &bytes)
}

fn io_error(path: &Path, reason: std::io::Error) -> ImageError {
    ImageError::Io {
        path: path.display().to_string(),
        reason,
    }
}

/// Opens `path` for reading if it is a regular file. Checked before opening (opening a
/// device can act: a tape rewinds) and again on the open file (the path may have been
/// replaced meanwhile); opened without blocking, so that a FIFO put there meanwhile is
/// refused rather than waited on.
fn open_regular(path: &Path) -> Result<std::fs::File, ImageError> {
    let refuse = |meta: std::fs::Metadata| -> Result<(), ImageError> {
        match special_kind(&meta.file_type()) {
            _ if meta.is_dir() => Err(invalid(path, "is a folder")),
            None => Ok(()),
            Some(kind) => Err(ImageError::NotRegular {
                path: path.display().to_string(),
                kind,
            }),
        }
    };
    refuse(std::fs::metadata(path).map_err(|e| io_error(path, e))?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| io_error(path, e))?;
    refuse(file.metadata().map_err(|e| io_error(path, e))?)?;
    Ok(file)
}

/// Bytes read to find an image's size from its header: a PNG's IHDR is in its first 33,
/// and a PBM header longer than this (comments) is refused.
const HEADER_BYTES: usize = 64 * 1024;
/// Bytes a P1 raster may take per pixel: a digit and up to three bytes of whitespace.
const P1_BYTES_PER_PIXEL: u64 = 4;
/// Bytes a PBM file may hold beyond what its header says the image takes (a P1 file's
/// trailing whitespace): enough that the decoder, not the reader, explains a P4 file's
/// stray bytes.
const PBM_MARGIN: u64 = 64 << 10;
/// Bytes a PNG file may hold beyond its rows stored uncompressed: its ancillary chunks
/// (text, an ICC profile).
const PNG_MARGIN: u64 = 16 << 20;

/// Most bytes a file whose first bytes are `head` may take, with the reason for a refusal
/// when it takes more; `None` when the head is no image header (the decoder then says
/// why).
fn size_limit(head: &[u8]) -> Option<(u64, String)> {
    if head.starts_with(b"\x89PNG") {
        let field = |at: usize| -> Option<u64> {
            Some(u64::from(u32::from_be_bytes(
                head.get(at..at + 4)?.try_into().ok()?,
            )))
        };
        let (width, height) = (field(16)?, field(20)?);
        let (depth, colour) = (u64::from(*head.get(24)?), *head.get(25)?);
        let channels = match colour {
            2 => 3,
            4 => 2,
            6 => 4,
            _ => 1,
        };
        let raw = height.saturating_mul(1 + (width.saturating_mul(depth * channels)).div_ceil(8));
        let limit = raw.saturating_add(raw / 8).saturating_add(PNG_MARGIN);
        return Some((limit, format!("a {width}×{height} PNG")));
    }
    let raw = head.starts_with(b"P4");
    if !raw && !head.starts_with(b"P1") {
        return None;
    }
    let (w, at) = pbm_token(head, 2)?;
    let (h, at) = pbm_token(head, at)?;
    let number = |t: &[u8]| std::str::from_utf8(t).ok()?.parse::<u64>().ok();
    let (width, height) = (number(w)?, number(h)?);
    let header = at as u64 + 1 + PBM_MARGIN;
    let limit = if raw {
        width.div_ceil(8).saturating_mul(height)
    } else {
        (width.saturating_mul(height)).saturating_mul(P1_BYTES_PER_PIXEL)
    }
    .saturating_add(header);
    let kind = if raw { "P4" } else { "P1" };
    Some((limit, format!("a {width}×{height} {kind} image")))
}

/// Reads an image's bytes: the head first, then no more than its header allows (one byte
/// more, to see that there is more). `len`, a regular file's size, refuses a file that is
/// too large before reading it. Every buffer is reserved fallibly.
fn read_bounded(
    mut reader: impl Read,
    len: Option<u64>,
    path: &Path,
) -> Result<Vec<u8>, ImageError> {
    let head_len = len.map_or(HEADER_BYTES, |l| l.min(HEADER_BYTES as u64) as usize);
    let mut bytes = Vec::new();
    reserve(&mut bytes, head_len, path, "its file")?;
    read_into(&mut reader, &mut bytes, head_len as u64, path)?;
    let Some((limit, what)) = size_limit(&bytes) else {
        return Ok(bytes);
    };
    let too_large = |size: String| {
        invalid(
            path,
            format!("{size}, more than {what} takes ({limit} bytes): it has bytes after its image"),
        )
    };
    if let Some(len) = len.filter(|&l| l > limit) {
        return Err(too_large(format!("file is {len} bytes")));
    }
    let want = len.unwrap_or(limit + 1).min(limit + 1);
    if let Some(len) = len {
        reserve(
            &mut bytes,
            (len as usize).saturating_sub(head_len),
            path,
            "its file",
        )?;
    }
    read_into(&mut reader, &mut bytes, want, path)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("file has more than {limit} bytes")));
    }
    Ok(bytes)
}

/// Reads from `reader` until `bytes` holds `want` bytes or the stream ends, reserving
/// fallibly as it grows.
fn read_into(
    reader: &mut impl Read,
    bytes: &mut Vec<u8>,
    want: u64,
    path: &Path,
) -> Result<(), ImageError> {
    let mut chunk = [0u8; 8192];
    while (bytes.len() as u64) < want {
        let room = (want - bytes.len() as u64).min(chunk.len() as u64) as usize;
        let n = match reader.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(path, e)),
        };
        if bytes.capacity() - bytes.len() < n {
            let grow = bytes.len().max(n);
            reserve(bytes, grow, path, "its file")?;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Decodes PBM or PNG bytes; `path` only names the file in errors.
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<(BitImage, ImageFormat), ImageError> {
    if bytes.starts_with(b"\x89PNG") {
        decode_png(path, bytes).map(|(img, depth)| (img, ImageFormat::PngGray { bit_depth: depth }))
    } else if bytes.starts_with(b"P1") || bytes.starts_with(b"P4") {
        decode_pbm(path, bytes).map(|img| (img, ImageFormat::Pbm))
    } else {
        Err(invalid(path, "neither a PBM (P1/P4) nor a PNG file"))
    }
}

/// Encodes an image in `format`. Panics where memory runs out: for tests and small images;
/// output files are written through [`try_encode_image`].
pub fn encode_image(img: &BitImage, format: ImageFormat) -> Vec<u8> {
    try_encode_image(img, format, Path::new("image")).expect("memory for the encoded image")
}

/// Encodes an image in `format`, its buffers reserved fallibly, so that running out of
/// memory is an error naming `name` and the bytes needed.
pub fn try_encode_image(
    img: &BitImage,
    format: ImageFormat,
    name: &Path,
) -> Result<Vec<u8>, ImageError> {
    match format {
        ImageFormat::Pbm => encode_pbm(img, name),
        ImageFormat::PngGray { bit_depth } => encode_png(img, bit_depth, name),
    }
}

/// Splits PBM header tokens, skipping whitespace and `#` comments; returns the token and
/// the offset just past it.
fn pbm_token(bytes: &[u8], mut at: usize) -> Option<(&[u8], usize)> {
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at < bytes.len() && bytes[at] == b'#' {
            while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                at += 1;
            }
            continue;
        }
        break;
    }
    let start = at;
    while at < bytes.len() && !bytes[at].is_ascii_whitespace() && bytes[at] != b'#' {
        at += 1;
    }
    (at > start).then(|| (&bytes[start..at], at))
}

/// A PBM header's width and height, checked against the limits, and the offset just past
/// the height.
fn pbm_header(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize), ImageError> {
    let mut at = 2;
    let mut dims = [0usize; 2];
    for d in &mut dims {
        let (tok, next) =
            pbm_token(bytes, at).ok_or_else(|| invalid(path, "PBM header is truncated"))?;
        *d = std::str::from_utf8(tok)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&v| v > 0 && v <= MAX_SIDE as usize)
            .ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "PBM header has an invalid width or height (each must be 1..={MAX_SIDE})"
                    ),
                )
            })?;
        at = next;
    }
    let [width, height] = dims;
    if (width * height) as u64 > MAX_IMAGE_PIXELS {
        return Err(invalid(
            path,
            format!("{width}×{height} is more than {MAX_IMAGE_PIXELS} pixels"),
        ));
    }
    Ok((width, height, at))
}

fn decode_pbm(path: &Path, bytes: &[u8]) -> Result<BitImage, ImageError> {
    let raw = bytes.starts_with(b"P4");
    let (width, height, at) = pbm_header(path, bytes)?;
    // Check the claimed size against the bytes present before reserving anything: P4
    // needs its whole raster, P1 at least one byte a pixel.
    let left = bytes.len().saturating_sub(at + 1);
    if raw {
        let need = width.div_ceil(8) * height;
        if bytes.get(at..at + 2) == Some(&b"\r\n"[..]) {
            return Err(invalid(
                path,
                "P4 header ends with CR LF; the raster must follow a single whitespace byte",
            ));
        }
        if left != need {
            return Err(invalid(
                path,
                if left < need {
                    format!("P4 raster is truncated: {left} of {need} bytes")
                } else {
                    format!("P4 raster has {} bytes after its {need} bytes", left - need)
                },
            ));
        }
    } else if left < width * height {
        return Err(invalid(
            path,
            format!(
                "P1 raster is truncated: {left} bytes cannot hold {} pixels",
                width * height
            ),
        ));
    }
    let mut pixels = Vec::new();
    reserve(&mut pixels, width * height, path, "its pixels")?;
    if raw {
        // Exactly one whitespace byte separates the header from the raster.
        for row in bytes[at + 1..].chunks_exact(width.div_ceil(8)) {
            pixels.extend((0..width).map(|x| (row[x / 8] >> (7 - x % 8)) & 1));
        }
    } else {
        read_p1_raster(path, &bytes[at..], width * height, &mut pixels)?;
    }
    Ok(BitImage {
        width,
        height,
        pixels,
    })
}

/// Reads a P1 raster's `count` pixels into `pixels` (reserved for them).
fn read_p1_raster(
    path: &Path,
    raster: &[u8],
    count: usize,
    pixels: &mut Vec<u8>,
) -> Result<(), ImageError> {
    for &b in raster {
        match b {
            b'0' | b'1' if pixels.len() < count => pixels.push(b - b'0'),
            b'0' | b'1' => {
                return Err(invalid(
                    path,
                    "P1 raster has more pixels than its header says",
                ))
            }
            b if b.is_ascii_whitespace() => {}
            _ => {
                return Err(invalid(
                    path,
                    format!(
                        "P1 raster has the byte {b:#04x}; only 0, 1 and whitespace are allowed"
                    ),
                ))
            }
        }
    }
    if pixels.len() != count {
        return Err(invalid(
            path,
            format!("P1 raster is truncated: {} of {count} pixels", pixels.len()),
        ));
    }
    Ok(())
}

fn encode_pbm(img: &BitImage, name: &Path) -> Result<Vec<u8>, ImageError> {
    let header = format!("P4\n{} {}\n", img.width, img.height);
    let mut out = Vec::new();
    reserve(
        &mut out,
        header.len() + img.width.div_ceil(8) * img.height,
        name,
        "its file",
    )?;
    out.extend_from_slice(header.as_bytes());
    for row in img.pixels.chunks_exact(img.width) {
        for byte in row.chunks(8) {
            out.push(
                byte.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, &p)| acc | (p << (7 - i))),
            );
        }
    }
    Ok(out)
}

fn decode_png(path: &Path, bytes: &[u8]) -> Result<(BitImage, u8), ImageError> {
    let mut limits = png::Limits::default();
    limits.bytes = MAX_IMAGE_PIXELS as usize;
    let mut reader = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits)
        .read_info()
        .map_err(|e| invalid(path, format!("PNG: {e}")))?;
    let info = reader.info();
    let (width, height, depth) = (
        info.width as usize,
        info.height as usize,
        info.bit_depth as u8,
    );
    if width > MAX_SIDE as usize
        || height > MAX_SIDE as usize
        || (width * height) as u64 > MAX_IMAGE_PIXELS
    {
        return Err(invalid(
            path,
            format!("PNG is {width}×{height}; sides must be at most {MAX_SIDE} and the area {MAX_IMAGE_PIXELS} pixels"),
        ));
    }
    if info.color_type != png::ColorType::Grayscale {
        return Err(invalid(path, format!("PNG colour type {:?} is not supported: save bi-level images as grayscale without alpha", info.color_type)));
    }
    if info.trns.is_some() {
        return Err(invalid(
            path,
            "PNG has a transparency chunk; bi-level images must be opaque",
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| invalid(path, "PNG is too large"))?;
    let mut buf = Vec::new();
    reserve(&mut buf, size, path, "its decoded rows")?;
    buf.resize(size, 0);
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| invalid(path, format!("PNG: {e}")))?;
    let max = (1u32 << depth) - 1;
    let mut pixels = Vec::new();
    reserve(&mut pixels, width * height, path, "its pixels")?;
    for (y, row) in buf[..frame.buffer_size()]
        .chunks_exact(frame.line_size)
        .enumerate()
    {
        for x in 0..width {
            let v = match depth {
                16 => u32::from(u16::from_be_bytes([row[2 * x], row[2 * x + 1]])),
                8 => u32::from(row[x]),
                d => {
                    let per = 8 / d as usize;
                    u32::from((row[x / per] >> ((per - 1 - x % per) * d as usize)) & max as u8)
                }
            };
            match v {
                0 => pixels.push(1),
                v if v == max => pixels.push(0),
                value => {
                    return Err(ImageError::NotBiLevel {
                        path: path.display().to_string(),
                        row: y,
                        col: x,
                        value,
                    })
                }
            }
        }
    }
    Ok((
        BitImage {
            width,
            height,
            pixels,
        },
        depth,
    ))
}

fn encode_png(img: &BitImage, bit_depth: u8, name: &Path) -> Result<Vec<u8>, ImageError> {
    let depth = match bit_depth {
        1 => png::BitDepth::One,
        2 => png::BitDepth::Two,
        4 => png::BitDepth::Four,
        8 => png::BitDepth::Eight,
        _ => png::BitDepth::Sixteen,
    };
    let max = (1u32 << bit_depth) - 1;
    let level = |p: u8| if p == 1 { 0 } else { max };
    let row_bytes = (img.width * bit_depth as usize).div_ceil(8);
    let mut data = Vec::new();
    reserve(&mut data, row_bytes * img.height, name, "its rows")?;
    for row in img.pixels.chunks_exact(img.width) {
        match bit_depth {
            16 => row
                .iter()
                .for_each(|&p| data.extend_from_slice(&(level(p) as u16).to_be_bytes())),
            8 => data.extend(row.iter().map(|&p| level(p) as u8)),
            d => {
                let per = 8 / d as usize;
                for chunk in row.chunks(per) {
                    data.push(chunk.iter().enumerate().fold(0u8, |acc, (i, &p)| {
                        acc | ((level(p) as u8) << ((per - 1 - i) * d as usize))
                    }));
                }
            }
        }
    }
    // The deflated rows of a bi-level image are rarely larger than its packed bits: that
    // much is reserved up front, fallibly; the rare excess grows the buffer as usual.
    let mut out = Vec::new();
    reserve(
        &mut out,
        img.width.div_ceil(8) * img.height + 1024,
        name,
        "its file",
    )?;
    let mut enc = png::Encoder::new(&mut out, img.width as u32, img.height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(depth);
    let mut writer = enc.write_header().expect("PNG header into a Vec");
    writer.write_image_data(&data).expect("PNG data into a Vec");
    writer.finish().expect("PNG end into a Vec");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BitImage {
        let (width, height) = (11, 3);
        BitImage {
            width,
            height,
            pixels: (0..width * height).map(|i| u8::from(i % 3 == 0)).collect(),
        }
    }

    #[test]
    fn every_format_round_trips() {
        let img = sample();
        for format in [
            ImageFormat::Pbm,
            ImageFormat::PngGray { bit_depth: 1 },
            ImageFormat::PngGray { bit_depth: 2 },
            ImageFormat::PngGray { bit_depth: 8 },
            ImageFormat::PngGray { bit_depth: 16 },
        ] {
            let bytes = encode_image(&img, format);
            let (back, f) = decode_image(Path::new("x"), &bytes).unwrap();
            assert_eq!((back, f), (img.clone(), format));
        }
    }

    #[test]
    fn plain_pbm_with_comments_reads() {
        let (img, f) = decode_image(Path::new("a.pbm"), b"P1\n# hi\n3 2\n1 0 1\n0 1 0\n").unwrap();
        assert_eq!(f, ImageFormat::Pbm);
        assert_eq!(img.pixels, vec![1, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn grey_png_is_rejected_with_the_pixel() {
        let mut bytes = Vec::new();
        let mut enc = png::Encoder::new(&mut bytes, 2, 2);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(&[0, 255, 255, 128])
            .unwrap();
        let err = decode_image(Path::new("g.png"), &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("g.png") && err.contains("row 1, column 1") && err.contains("128"),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        assert!(decode_image(Path::new("t.pbm"), b"P4\n28 28\n\x00\x01")
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        assert!(decode_image(Path::new("t.pbm"), b"P1\n2 2\n1 0 1").is_err());
        assert!(decode_image(Path::new("t.pbm"), b"P1\n2 2\n1 0 1 2").is_err());
        assert!(decode_image(Path::new("t.txt"), b"hello")
            .unwrap_err()
            .to_string()
            .contains("neither"));
        assert!(decode_image(Path::new("t.pbm"), b"P4\n99999999 1\n").is_err());
    }
}
