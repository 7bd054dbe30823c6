//! Reading and writing bi-level images: PBM (P1 and P4), grayscale PNG, two-colour palette
//! PNG, and TIFF of 1 bit per pixel (the form bi-level scans come in, often many pages to
//! a file).
//!
//! Nothing is ever binarized: a PNG whose pixels are not exactly black and white (or, with
//! a palette, of more than two colours) is an error naming the first offending pixel, and
//! a TIFF page of more than one bit per pixel is an error naming the page. Ink is 1, as in
//! PBM; in PNG and TIFF, black (the darker palette colour) is ink.
#![forbid(unsafe_code)]

pub use crate::container::ImageFormat;
use crate::container::{MAX_IMAGE_PIXELS, MAX_SIDE};
use std::io::{Read, Seek};
use std::path::Path;

/// The images of one file, in order: one for PBM and PNG, each page of a TIFF.
pub type Pages = Vec<(BitImage, ImageFormat)>;

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
        "tif" | "tiff" => Some("tiff"),
        _ => None,
    }
}

/// Reads a PBM, PNG or TIFF file (chosen by its content, not its name): every page of a
/// TIFF. The file must be a regular file. A PBM or PNG is read only as far as its header
/// says the image takes, plus a margin: a larger file is refused from its size alone,
/// unread. A TIFF is decoded from the file itself, each page bounded before anything is
/// reserved for it (see `decode_tiff`).
pub fn read_image_file(path: &Path) -> Result<Pages, ImageError> {
    let mut file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|reason| io_error(path, reason))?
        .len();
    let mut head = Vec::new();
    (&mut file)
        .take(4)
        .read_to_end(&mut head)
        .and_then(|_| file.rewind())
        .map_err(|reason| io_error(path, reason))?;
    if is_tiff(&head) {
        return decode_tiff(path, std::io::BufReader::new(file));
    }
    let bytes = read_bounded(file, Some(len), path)?;
    decode_image_file(path, &bytes)
}

/// Reads a file of one image: a PBM, a PNG or a TIFF of one page (see
/// [`read_image_file`]).
pub fn read_image(path: &Path) -> Result<(BitImage, ImageFormat), ImageError> {
    only_page(path, read_image_file(path)?)
}

/// Reads an image file from a stream (standard input), stopping at the bytes its header
/// allows plus a margin (a TIFF, whose header says nothing of its size, at
/// [`MAX_TIFF_STREAM_BYTES`]); `name` names it in errors.
pub fn read_image_file_from(reader: impl Read, name: &Path) -> Result<Pages, ImageError> {
    let bytes = read_bounded(reader, None, name)?;
    decode_image_file(name, &bytes)
}

/// Reads one image from a stream (see [`read_image_file_from`]).
pub fn read_image_from(
    reader: impl Read,
    name: &Path,
) -> Result<(BitImage, ImageFormat), ImageError> {
    only_page(name, read_image_file_from(reader, name)?)
}

/// The one image of `pages`, or an error saying how many there are.
fn only_page(path: &Path, mut pages: Pages) -> Result<(BitImage, ImageFormat), ImageError> {
    match pages.len() {
        1 => Ok(pages.pop().expect("one page")),
        n => Err(invalid(
            path,
            format!("has {n} pages where one image was expected"),
        )),
    }
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
/// Most bytes of a TIFF read from a stream, which has to be held whole (a TIFF's parts are
/// found by offsets, in any order): a TIFF file is read from the file itself, unbounded.
pub const MAX_TIFF_STREAM_BYTES: u64 = 1 << 30;

/// Most bytes a file whose first bytes are `head` may take, with the end of the reason for
/// a refusal when it takes more; `None` when the head is no image header (the decoder then
/// says why).
fn size_limit(head: &[u8]) -> Option<(u64, String)> {
    if is_tiff(head) {
        let limit = MAX_TIFF_STREAM_BYTES;
        return Some((
            limit,
            format!("more than a TIFF read from a stream may take ({limit} bytes): name the file instead"),
        ));
    }
    let taken = |limit: u64, what: String| {
        format!("more than {what} takes ({limit} bytes): it has bytes after its image")
    };
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
        return Some((limit, taken(limit, format!("a {width}×{height} PNG"))));
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
    Some((
        limit,
        taken(limit, format!("a {width}×{height} {kind} image")),
    ))
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
    let Some((limit, excess)) = size_limit(&bytes) else {
        return Ok(bytes);
    };
    let too_large = |size: String| invalid(path, format!("{size}, {excess}"));
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

/// Decodes the bytes of a PBM, PNG or TIFF file into its images (a TIFF's pages); `path`
/// only names the file in errors.
pub fn decode_image_file(path: &Path, bytes: &[u8]) -> Result<Pages, ImageError> {
    if is_tiff(bytes) {
        decode_tiff(path, std::io::Cursor::new(bytes))
    } else if bytes.starts_with(b"\x89PNG") {
        Ok(vec![decode_png(path, bytes)?])
    } else if bytes.starts_with(b"P1") || bytes.starts_with(b"P4") {
        Ok(vec![(decode_pbm(path, bytes)?, ImageFormat::Pbm)])
    } else {
        Err(invalid(
            path,
            "neither a PBM (P1/P4), a PNG nor a TIFF file",
        ))
    }
}

/// Decodes the bytes of a file of one image (see [`decode_image_file`]).
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<(BitImage, ImageFormat), ImageError> {
    only_page(path, decode_image_file(path, bytes)?)
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
        ImageFormat::PngGray { bit_depth } => encode_png(img, bit_depth, false, name),
        ImageFormat::PngPalette { bit_depth } => encode_png(img, bit_depth, true, name),
        ImageFormat::TiffPage => {
            let mut tiff = TiffPages::default();
            tiff.push(img, name)?;
            tiff.finish(name)
        }
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

/// The sample at column `x` of a PNG row of `depth` bits per sample, big-endian as PNG
/// packs them.
fn png_sample(row: &[u8], x: usize, depth: u8) -> u32 {
    match depth {
        16 => u32::from(u16::from_be_bytes([row[2 * x], row[2 * x + 1]])),
        8 => u32::from(row[x]),
        d => {
            let per = 8 / d as usize;
            let mask = (1u8 << d) - 1;
            u32::from((row[x / per] >> ((per - 1 - x % per) * d as usize)) & mask)
        }
    }
}

/// Decodes a grayscale PNG of black and white, or a palette PNG of at most two colours.
fn decode_png(path: &Path, bytes: &[u8]) -> Result<(BitImage, ImageFormat), ImageError> {
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
    if !within_size_limits(width as u64, height as u64) {
        return Err(invalid(
            path,
            format!("PNG is {width}×{height}; sides must be at most {MAX_SIDE} and the area {MAX_IMAGE_PIXELS} pixels"),
        ));
    }
    let palette = match info.color_type {
        png::ColorType::Grayscale => None,
        png::ColorType::Indexed => Some(info.palette.as_deref().unwrap_or_default().to_vec()),
        other => return Err(invalid(path, format!("PNG colour type {other:?} is not supported: save bi-level images as grayscale without alpha, or with a palette of two colours"))),
    };
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
    let mut pixels = Vec::new();
    reserve(&mut pixels, width * height, path, "its pixels")?;
    let rows = buf[..frame.buffer_size()].chunks_exact(frame.line_size);
    let format = match palette {
        None => {
            grey_pixels(path, rows, width, depth, &mut pixels)?;
            ImageFormat::PngGray { bit_depth: depth }
        }
        Some(palette) => {
            palette_pixels(path, rows, width, depth, &palette, &mut pixels)?;
            ImageFormat::PngPalette { bit_depth: depth }
        }
    };
    let img = BitImage {
        width,
        height,
        pixels,
    };
    Ok((img, format))
}

/// A grayscale PNG's pixels: black (0) is ink, white (the largest value) paper, and any
/// other value an error naming the pixel.
fn grey_pixels<'a>(
    path: &Path,
    rows: impl Iterator<Item = &'a [u8]>,
    width: usize,
    depth: u8,
    pixels: &mut Vec<u8>,
) -> Result<(), ImageError> {
    let max = (1u32 << depth) - 1;
    for (y, row) in rows.enumerate() {
        for x in 0..width {
            match png_sample(row, x, depth) {
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
    Ok(())
}

/// A palette PNG's pixels: the colours its pixels use (not merely those its palette lists,
/// as tools often write 256 entries) must be at most two, and the darker by luminance is
/// ink. A lone colour is ink when darker than mid-grey. Two colours equally bright leave
/// ink undecided, and are refused rather than guessed.
fn palette_pixels<'a>(
    path: &Path,
    rows: impl Iterator<Item = &'a [u8]>,
    width: usize,
    depth: u8,
    palette: &[u8],
    pixels: &mut Vec<u8>,
) -> Result<(), ImageError> {
    // Luminance in thousandths (ITU-R BT.601 weights), compared as integers.
    let luma = |c: &[u8]| 299 * u32::from(c[0]) + 587 * u32::from(c[1]) + 114 * u32::from(c[2]);
    let mut colours: Vec<&[u8]> = Vec::with_capacity(2);
    for (y, row) in rows.enumerate() {
        for x in 0..width {
            let index = png_sample(row, x, depth) as usize;
            let colour = palette.get(3 * index..3 * index + 3).ok_or_else(|| {
                invalid(path, format!("pixel (row {y}, column {x}) has palette index {index}, past the palette's {} colours", palette.len() / 3))
            })?;
            let slot = match colours.iter().position(|&c| c == colour) {
                Some(slot) => slot,
                None if colours.len() < 2 => {
                    colours.push(colour);
                    colours.len() - 1
                }
                None => {
                    return Err(invalid(path, format!("pixel (row {y}, column {x}) has the palette colour #{:02x}{:02x}{:02x}, a third colour; vlae-zip reads palette PNGs of two colours and never binarizes", colour[0], colour[1], colour[2])));
                }
            };
            pixels.push(slot as u8);
        }
    }
    let ink_slot = match colours[..] {
        [a, b] if luma(a) == luma(b) => {
            return Err(invalid(
                path,
                "its two palette colours are equally bright, so which is ink is unknown",
            ))
        }
        [a, b] => u8::from(luma(b) < luma(a)),
        [a] if luma(a) < 128 * 1000 => 0,
        _ => 1,
    };
    pixels
        .iter_mut()
        .for_each(|p| *p = u8::from(*p == ink_slot));
    Ok(())
}

/// Encodes a PNG of `bit_depth`: grayscale with ink black (0) and paper white (the largest
/// value), or, with `palette`, indexed with the palette black (index 0, ink) and white
/// (index 1, paper).
fn encode_png(
    img: &BitImage,
    bit_depth: u8,
    palette: bool,
    name: &Path,
) -> Result<Vec<u8>, ImageError> {
    let depth = match bit_depth {
        1 => png::BitDepth::One,
        2 => png::BitDepth::Two,
        4 => png::BitDepth::Four,
        8 => png::BitDepth::Eight,
        _ => png::BitDepth::Sixteen,
    };
    let paper = if palette { 1 } else { (1u32 << bit_depth) - 1 };
    let level = |p: u8| if p == 1 { 0 } else { paper };
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
    if palette {
        enc.set_color(png::ColorType::Indexed);
        enc.set_palette(vec![0, 0, 0, 255, 255, 255]);
    } else {
        enc.set_color(png::ColorType::Grayscale);
    }
    enc.set_depth(depth);
    let mut writer = enc.write_header().expect("PNG header into a Vec");
    writer.write_image_data(&data).expect("PNG data into a Vec");
    writer.finish().expect("PNG end into a Vec");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// TIFF.

/// Most pages read from one TIFF file: the page numbers in entry names have four digits,
/// so that names sort in page order (format-spec.md §1.1).
pub const MAX_TIFF_PAGES: usize = 9999;
/// Most bytes the TIFF decoder may hold for one page, decoded (the page's rows packed 8
/// pixels a byte, each row padded to a byte) or as read (one strip or tile): the largest
/// page vlae-zip accepts, so that a page claiming more is refused before it is reserved.
const TIFF_PAGE_BYTES: usize = (MAX_IMAGE_PIXELS / 8 + MAX_SIDE as u64) as usize;

/// Whether `head` starts as a TIFF or BigTIFF file does, in either byte order.
fn is_tiff(head: &[u8]) -> bool {
    [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|magic| head.starts_with(*magic))
}

/// The entry name of page `page` (1-based) of the TIFF file stored as `file`.
pub fn tiff_page_name(file: &str, page: usize) -> String {
    format!("{file}/{page:04}")
}

/// The TIFF file and the page number a TIFF page's entry name holds, if it is of the form
/// `<file>/<digits>`.
pub fn tiff_page_of(name: &str) -> Option<(&str, u32)> {
    let (file, page) = name.rsplit_once('/')?;
    let digits = !page.is_empty() && page.bytes().all(|b| b.is_ascii_digit());
    (digits && !file.is_empty()).then(|| Some((file, page.parse().ok()?)))?
}

/// Decodes every page of a TIFF, at most [`MAX_TIFF_PAGES`]. Each page is checked before
/// anything is reserved for it: its size against [`MAX_SIDE`] and [`MAX_IMAGE_PIXELS`], its
/// samples (one of one bit, else it is refused, never binarized); the decoder's own limits
/// bound its tables, strips and decoded rows, and a coded strip (a fax stream among them)
/// is read no further than its stated length. Pages are read with the tiff crate, but
/// for CCITT RLE, Group 3 and Group 4 ones (see `decode_ccitt_chunks`) and tiled LZW ones
/// (see `decode_lzw_tiles`), whose strips and tiles are bounded the same way. Errors name
/// the file and the page.
fn decode_tiff<R: Read + Seek>(path: &Path, reader: R) -> Result<Pages, ImageError> {
    use tiff::decoder::{Decoder, Limits};
    let mut limits = Limits::default();
    limits.decoding_buffer_size = TIFF_PAGE_BYTES;
    limits.intermediate_buffer_size = TIFF_PAGE_BYTES;
    let page_error =
        |page: usize, e| invalid(path, format!("TIFF page {page}: {}", tiff_reason(e)));
    let mut decoder = Decoder::new(FillOrderReader::new(reader))
        .map_err(|e| invalid(path, format!("TIFF: {e}")))?
        .with_limits(limits);
    let mut pages = Vec::new();
    loop {
        let page = pages.len() + 1;
        let img = decode_tiff_page(&mut decoder, path, page)?;
        pages.push((img, ImageFormat::TiffPage));
        if !decoder.more_images() {
            return Ok(pages);
        }
        if pages.len() == MAX_TIFF_PAGES {
            return Err(invalid(
                path,
                format!("TIFF has more than {MAX_TIFF_PAGES} pages"),
            ));
        }
        decoder.next_image().map_err(|e| page_error(page + 1, e))?;
    }
}

/// What a TIFF decoding error means, in words: the decoder's own words for most, the cause
/// for those it words vaguely.
fn tiff_reason(e: tiff::TiffError) -> String {
    use tiff::TiffError;
    match e {
        TiffError::LimitsExceeded => format!(
            "a table, strip or tile claims more than the largest page takes ({TIFF_PAGE_BYTES} bytes)"
        ),
        TiffError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "is truncated: its data ends before its last row".into()
        }
        TiffError::IoError(e) => format!("its data is corrupt or truncated ({e})"),
        TiffError::UnsupportedError(e) => format!("is not supported: {e}"),
        e => e.to_string(),
    }
}

/// Whether an image of `width × height` is one the container holds: sides of 1 to
/// [`MAX_SIDE`], at most [`MAX_IMAGE_PIXELS`] in all. PNG and TIFF headers are checked
/// against it before any pixel is reserved.
fn within_size_limits(width: u64, height: u64) -> bool {
    let side = 1..=u64::from(MAX_SIDE);
    side.contains(&width) && side.contains(&height) && width * height <= MAX_IMAGE_PIXELS
}

/// The current page's width and height, or why the page is refused: a size past the
/// limits, or pixels that are not one sample of 1 bit.
fn tiff_page_size<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<FillOrderReader<R>>,
) -> Result<(u32, u32), String> {
    let (width, height) = decoder.dimensions().map_err(tiff_reason)?;
    if !within_size_limits(width.into(), height.into()) {
        return Err(format!(
            "is {width}×{height}; sides must be 1..={MAX_SIDE} and the area at most {MAX_IMAGE_PIXELS} pixels"
        ));
    }
    match decoder.colortype().map_err(tiff_reason)? {
        tiff::ColorType::Gray(1) => Ok((width, height)),
        other => Err(format!(
            "has {other:?} pixels, not bi-level (one sample of 1 bit); vlae-zip never binarizes"
        )),
    }
}

/// How the current page's CCITT RLE, Group 3 or Group 4 data is coded, from its tags; the
/// uncompressed mode of Group 3 (T4Options bit 1) and of Group 4 (T6Options bit 1), which
/// scanners rarely use, is refused by name.
fn ccitt_coding<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<FillOrderReader<R>>,
    compression: u16,
) -> Result<Ccitt, String> {
    use tiff::tags::Tag;
    let group3 = compression == TIFF_GROUP3;
    let (options_tag, group) = if compression == TIFF_GROUP4 {
        (TIFF_T6_OPTIONS, "Group 4")
    } else {
        (TIFF_T4_OPTIONS, "Group 3")
    };
    let options: u32 = decoder
        .find_tag_unsigned(Tag::from_u16_exhaustive(options_tag))
        .map_err(tiff_reason)?
        .unwrap_or(0);
    if compression != TIFF_CCITT_RLE && options & 2 != 0 {
        return Err(format!(
            "uses {group}'s uncompressed mode, which is not supported"
        ));
    }
    let photometric: Option<u16> = decoder
        .find_tag_unsigned(Tag::PhotometricInterpretation)
        .map_err(tiff_reason)?;
    Ok(Ccitt {
        compression,
        two_d: group3 && options & 1 != 0,
        eol_aligned: group3 && options & 4 != 0,
        black_is_zero: photometric == Some(1),
    })
}

/// Decodes the decoder's current page, `page` (1-based, for errors).
fn decode_tiff_page<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<FillOrderReader<R>>,
    path: &Path,
    page: usize,
) -> Result<BitImage, ImageError> {
    use tiff::decoder::DecodingResult;
    use tiff::tags::Tag;
    let page_invalid = |reason: String| invalid(path, format!("TIFF page {page}: {reason}"));
    let page_error = |e| page_invalid(tiff_reason(e));
    let (width, height) = tiff_page_size(decoder).map_err(page_invalid)?;
    let tag = |decoder: &mut tiff::decoder::Decoder<_>, tag| {
        decoder.find_tag_unsigned::<u16>(tag).map_err(page_error)
    };
    let compression = tag(decoder, Tag::Compression)?.unwrap_or(TIFF_UNCOMPRESSED);
    // FillOrder 2: each byte of the strips holds its first pixel in its least significant
    // bit. The tiff crate ignores the tag; the reader reverses those bytes as they are
    // read, before any decompression, as libtiff does (see `FillOrderReader`).
    let lsb_first = match tag(decoder, Tag::FillOrder)?.unwrap_or(1) {
        1 => false,
        2 => true,
        other => {
            return Err(page_invalid(format!(
                "has FillOrder {other}, neither 1 (bits most significant first) nor 2"
            )))
        }
    };
    let ccitt = matches!(compression, TIFF_CCITT_RLE | TIFF_GROUP3 | TIFF_GROUP4);
    let lzw_tiles =
        compression == TIFF_LZW && decoder.get_chunk_type() == tiff::decoder::ChunkType::Tile;
    let chunks = if ccitt || lzw_tiles || lsb_first {
        tiff_chunks(decoder).map_err(page_invalid)?
    } else {
        Vec::new()
    };
    if lsb_first {
        decoder.inner().reverse_bits_in(
            chunks
                .iter()
                .map(|c| (c.offset, c.offset.saturating_add(c.len))),
        );
    }
    let (width, height) = (width as usize, height as usize);
    let decoded = if ccitt {
        let coding = ccitt_coding(decoder, compression).map_err(page_invalid)?;
        decode_ccitt_chunks(decoder, &chunks, coding, (width, height), path, page)
    } else if lzw_tiles {
        decode_lzw_tiles(decoder, &chunks, (width, height), path, page)
    } else {
        match decoder.read_image().map_err(page_error) {
            Ok(DecodingResult::U8(packed)) => Ok(packed),
            Ok(_) => Err(page_invalid(
                "decoded to samples of more than 8 bits".into(),
            )),
            Err(e) => Err(e),
        }
    };
    decoder.inner().reverse_bits_in(std::iter::empty());
    let packed = decoded?;
    let stride = width.div_ceil(8);
    if packed.len() < stride * height {
        return Err(page_invalid(format!(
            "decoded to {} bytes, not the {} its rows take",
            packed.len(),
            stride * height
        )));
    }
    let mut pixels = Vec::new();
    reserve(&mut pixels, width * height, path, "its pixels")?;
    // The decoder gives 0 for black whichever interpretation the page has (it inverts
    // WhiteIsZero pages, and `decode_ccitt_chunks` and `decode_lzw_tiles` pack their rows
    // alike): black is ink, 1.
    for row in packed.chunks_exact(stride).take(height) {
        pixels.extend((0..width).map(|x| 1 - ((row[x / 8] >> (7 - x % 8)) & 1)));
    }
    Ok(BitImage {
        width,
        height,
        pixels,
    })
}

/// Codes of the TIFF tag Compression (TIFF 6.0 §3, §10, §11): pages are written
/// uncompressed or Group 4; CCITT RLE, Group 3 and Group 4 are read here rather than by
/// the tiff crate.
const TIFF_UNCOMPRESSED: u16 = 1;
const TIFF_CCITT_RLE: u16 = 2;
const TIFF_GROUP3: u16 = 3;
const TIFF_GROUP4: u16 = 4;
const TIFF_LZW: u16 = 5;

/// The tag of Group 3's options: bit 0 is set where rows may be coded 2-D, bit 2 where
/// fill bits end each EOL on a byte boundary.
const TIFF_T4_OPTIONS: u16 = 292;

/// The tag of Group 4's options: bit 1 is set where uncompressed mode is allowed.
const TIFF_T6_OPTIONS: u16 = 293;

/// One strip or tile of a page: where its bytes lie in the file, and where its rows go
/// on the page. `columns`×`rows` is the size it is coded at (a tile's full size, even
/// where it overhangs the page's right or bottom edge).
struct Chunk {
    offset: u64,
    len: u64,
    x: usize,
    y: usize,
    columns: u32,
    rows: u32,
}

/// The strips or tiles of the decoder's current page, in order, with their places on the
/// page: from its StripOffsets and StripByteCounts (or TileOffsets and TileByteCounts),
/// RowsPerStrip (or TileWidth and TileLength). Too few of them for the page, or tiles
/// larger than a page may be, are refused.
fn tiff_chunks<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<R>,
) -> Result<Vec<Chunk>, String> {
    use tiff::tags::Tag;
    let (width, height) = decoder.dimensions().map_err(tiff_reason)?;
    let tiled = decoder.get_chunk_type() == tiff::decoder::ChunkType::Tile;
    let (offsets_tag, counts_tag, what) = if tiled {
        (Tag::TileOffsets, Tag::TileByteCounts, "tiles")
    } else {
        (Tag::StripOffsets, Tag::StripByteCounts, "strips")
    };
    let mut list = |tag| {
        decoder
            .find_tag_unsigned_vec::<u64>(tag)
            .map_err(tiff_reason)?
            .ok_or_else(|| format!("has no {tag:?} tag"))
    };
    let offsets = list(offsets_tag)?;
    let counts = list(counts_tag)?;
    let (chunk_width, chunk_height) = decoder.chunk_dimensions();
    if chunk_width == 0 || chunk_height == 0 || (tiled && chunk_width.max(chunk_height) > MAX_SIDE)
    {
        return Err(format!(
            "has {what} of {chunk_width}×{chunk_height} pixels; sides must be 1..={MAX_SIDE}"
        ));
    }
    let across = if tiled {
        width.div_ceil(chunk_width)
    } else {
        1
    };
    let needed = across as usize * height.div_ceil(chunk_height) as usize;
    if offsets.len() < needed || counts.len() < needed {
        return Err(format!(
            "has {} {what} and {} byte counts, not the {needed} its rows take",
            offsets.len(),
            counts.len()
        ));
    }
    Ok((0..needed)
        .map(|i| {
            let (column, row) = (i as u32 % across, i as u32 / across);
            let y = row * chunk_height;
            Chunk {
                offset: offsets[i],
                len: counts[i],
                x: (column * chunk_width) as usize,
                y: y as usize,
                columns: chunk_width,
                // A strip is coded at the rows it holds, a tile at its full length.
                rows: if tiled {
                    chunk_height
                } else {
                    chunk_height.min(height - y)
                },
            }
        })
        .collect())
}

/// How a page's strips are CCITT coded: Compression 2 (CCITT RLE: Modified Huffman rows,
/// each starting on a byte boundary, no EOLs), 3 (Group 3, T.4: rows after EOLs, 1-D
/// or, with `two_d`, 1-D and 2-D mixed; `eol_aligned`, fill bits before each EOL) or 4
/// (Group 4, T.6: every row 2-D, from the one above).
#[derive(Clone, Copy)]
struct Ccitt {
    compression: u16,
    two_d: bool,
    eol_aligned: bool,
    /// PhotometricInterpretation BlackIsZero: a coded black run is white on the page.
    black_is_zero: bool,
}

/// How many of a CCITT chunk's bytes are read, however many it claims. Rows coded by
/// T.4 take at most 12 bits a pixel and less than 64 more a row (an EOL, its fill bits, a
/// tag bit, a white run of 0), rows coded by T.6 at most 14 bits a pixel (horizontal
/// mode), and the end of a strip (RTC, EOFB) less than 16 bytes: so no more than 16 bits
/// a pixel, 8 bytes a row and 64 bytes. Strips claiming the same bytes
/// (allowed, so not refused) cost what their rows justify.
fn ccitt_read_bound(chunk: &Chunk) -> u64 {
    let rows = u64::from(chunk.rows);
    chunk
        .len
        .min(u64::from(chunk.columns) * rows * 2 + rows * 8 + 64)
}

/// Appends the `len` bytes at `offset` to `out`, or says why they cannot be read.
fn read_exactly<R: Read + Seek>(
    reader: &mut R,
    offset: u64,
    len: u64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let read = reader
        .seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| reader.take(len).read_to_end(out));
    match read {
        Ok(n) if n as u64 == len => Ok(()),
        Ok(_) => Err("is truncated: its data ends before its last row".into()),
        Err(e) => Err(format!("its data cannot be read ({e})")),
    }
}

/// Decodes a CCITT RLE, Group 3 or Group 4 page from its strips or tiles, read from the
/// file as they are (bits reversed already where the page is FillOrder 2) and decoded with
/// `hayro_ccitt`, into rows packed as the tiff crate packs them (a set bit is white).
///
/// The tiff crate refuses CCITT RLE and Group 3, and the `fax` crate that it decodes
/// Group 4 with has no decoder for them that fits: its `decode_g3` reads only 1-D rows,
/// takes no width, and reports failure on libtiff's Group 3 strips, whose last row has no
/// EOL after it; CCITT RLE (rows without EOLs, each starting on a byte boundary) it does
/// not read at all. Its Group 4 decoder decodes a damaged row as best it can, with no
/// error, so a corrupt scan would be archived with wrong pixels. `hayro_ccitt` decodes all
/// of these; only the strip reading and the placing of rows are written here. Decoding is
/// strict: a damaged row is an error, not patched over, and so is a strip with fewer rows
/// than it claims.
fn decode_ccitt_chunks<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<FillOrderReader<R>>,
    chunks: &[Chunk],
    coding: Ccitt,
    (width, height): (usize, usize),
    path: &Path,
    page: usize,
) -> Result<Vec<u8>, ImageError> {
    use hayro_ccitt::{DecodeSettings, DecoderContext, EncodingMode};
    let page_invalid = |reason: String| invalid(path, format!("TIFF page {page}: {reason}"));
    let name = match coding.compression {
        TIFF_GROUP3 => "CCITT Group 3",
        TIFF_GROUP4 => "CCITT Group 4",
        _ => "CCITT RLE",
    };
    // Every strip's claim is checked before anything is reserved, as the tiff crate
    // checks its own strips.
    if chunks.iter().any(|c| c.len > TIFF_PAGE_BYTES as u64) {
        return Err(page_invalid(tiff_reason(tiff::TiffError::LimitsExceeded)));
    }
    let kind = match decoder.get_chunk_type() {
        tiff::decoder::ChunkType::Tile => "tile",
        tiff::decoder::ChunkType::Strip => "strip",
    };
    let stride = width.div_ceil(8);
    let mut packed = Vec::new();
    reserve(&mut packed, stride * height, path, "its rows")?;
    packed.resize(stride * height, 0);
    let mut coded = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let len = ccitt_read_bound(chunk);
        coded.clear();
        reserve(&mut coded, len as usize, path, "its strips")?;
        read_exactly(decoder.inner(), chunk.offset, len, &mut coded).map_err(page_invalid)?;
        let settings = DecodeSettings {
            columns: chunk.columns,
            rows: chunk.rows,
            end_of_block: coding.compression != TIFF_CCITT_RLE,
            end_of_line: coding.compression == TIFF_GROUP3,
            rows_are_byte_aligned: coding.compression == TIFF_CCITT_RLE || coding.eol_aligned,
            encoding: if coding.compression == TIFF_GROUP4 {
                EncodingMode::Group4
            } else if coding.two_d {
                EncodingMode::Group3_2D
            } else {
                EncodingMode::Group3_1D
            },
            strict: true,
        };
        let mut rows = PackedRows {
            packed: &mut packed,
            stride,
            x: chunk.x,
            width: (chunk.columns as usize).min(width - chunk.x),
            y: chunk.y,
            end: (chunk.y + chunk.rows as usize).min(height),
            white_runs_set: !coding.black_is_zero,
            decoded: 0,
        };
        let chunk_name = || match chunks.len() {
            1 => format!("its {name} data"),
            _ => format!("its {name} data in {kind} {}", i + 1),
        };
        hayro_ccitt::decode(&coded, &mut rows, &mut DecoderContext::new(settings))
            .map_err(|e| page_invalid(format!("{} is corrupt ({e})", chunk_name())))?;
        if rows.decoded < chunk.rows {
            return Err(page_invalid(format!(
                "{} ends after {} of its {} rows",
                chunk_name(),
                rows.decoded,
                chunk.rows
            )));
        }
    }
    Ok(packed)
}

/// Decodes a tiled LZW page tile by tile with `weezl` (the LZW decoder the tiff crate
/// uses), into rows packed as the tiff crate packs them (a set bit is white). The tiff
/// crate 0.11 refuses many such pages as truncated, those with small or very compressible
/// tiles among them (an open bug of the tiff crate), which libtiff reads; its striped LZW
/// pages it reads well. A tile that decodes to fewer bytes than its rows take is an error.
fn decode_lzw_tiles<R: Read + Seek>(
    decoder: &mut tiff::decoder::Decoder<FillOrderReader<R>>,
    chunks: &[Chunk],
    (width, height): (usize, usize),
    path: &Path,
    page: usize,
) -> Result<Vec<u8>, ImageError> {
    use tiff::tags::Tag;
    let page_invalid = |reason: String| invalid(path, format!("TIFF page {page}: {reason}"));
    let predictor: Option<u16> = decoder
        .find_tag_unsigned(Tag::Predictor)
        .map_err(|e| page_invalid(tiff_reason(e)))?;
    if predictor.is_some_and(|p| p != 1) {
        return Err(page_invalid(
            "has LZW tiles with a predictor, which bi-level pages have not".into(),
        ));
    }
    let photometric: Option<u16> = decoder
        .find_tag_unsigned(Tag::PhotometricInterpretation)
        .map_err(|e| page_invalid(tiff_reason(e)))?;
    // WhiteIsZero (0) codes black as a set bit: inverted, so that a set bit is white.
    let flip = if photometric == Some(0) { 0xff } else { 0 };
    if chunks.iter().any(|c| c.len > TIFF_PAGE_BYTES as u64) {
        return Err(page_invalid(tiff_reason(tiff::TiffError::LimitsExceeded)));
    }
    let stride = width.div_ceil(8);
    let mut packed = Vec::new();
    reserve(&mut packed, stride * height, path, "its rows")?;
    packed.resize(stride * height, 0);
    let (mut coded, mut rows) = (Vec::new(), Vec::new());
    for (i, chunk) in chunks.iter().enumerate() {
        let tile_stride = (chunk.columns as usize).div_ceil(8);
        // Only the rows on the page are decoded: a tile overhanging its foot reserves no
        // more than the page's rows.
        let want = tile_stride * (chunk.rows as usize).min(height.saturating_sub(chunk.y));
        // Every code but a clear takes at least 9 bits and gives at least one byte, so no more than
        // twice the rows' bytes are read, however many a tile claims (tiles claiming the
        // same bytes, allowed and so not refused, cost what their rows justify).
        let len = chunk.len.min(2 * want as u64 + 64);
        coded.clear();
        reserve(&mut coded, len as usize, path, "its tiles")?;
        read_exactly(decoder.inner(), chunk.offset, len, &mut coded).map_err(page_invalid)?;
        rows.clear();
        reserve(&mut rows, want, path, "its tiles")?;
        rows.resize(want, 0);
        let mut lzw = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        let (mut read, mut made) = (0, 0);
        // Decoded in steps until the rows are full, the stream ends or stops advancing.
        while made < want {
            let step = lzw.decode_bytes(&coded[read..], &mut rows[made..]);
            (read, made) = (read + step.consumed_in, made + step.consumed_out);
            match step.status {
                Ok(weezl::LzwStatus::Ok) => {}
                Ok(weezl::LzwStatus::Done | weezl::LzwStatus::NoProgress) => break,
                Err(e) => {
                    return Err(page_invalid(format!(
                        "its LZW data in tile {} is corrupt ({e})",
                        i + 1
                    )))
                }
            }
        }
        if made < want {
            return Err(page_invalid(format!(
                "its LZW data in tile {} ends after {made} of its {want} bytes",
                i + 1
            )));
        }
        let columns = (chunk.columns as usize).min(width - chunk.x);
        for (r, tile_row) in rows.chunks_exact(tile_stride).enumerate() {
            let y = chunk.y + r;
            let row = &mut packed[y * stride..][..stride];
            for c in (0..columns).filter(|c| (tile_row[c / 8] ^ flip) >> (7 - c % 8) & 1 == 1) {
                let x = chunk.x + c;
                row[x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    Ok(packed)
}

/// The rows of one CCITT-coded strip or tile as they are decoded, set into the page's
/// packed rows: `width` columns from column `x`, rows from `y` up to `end` (the columns
/// and rows a tile has beyond the page are dropped).
struct PackedRows<'a> {
    packed: &'a mut [u8],
    stride: usize,
    x: usize,
    width: usize,
    y: usize,
    end: usize,
    /// Whether white runs are the set bits (WhiteIsZero, as the tiff crate hands it
    /// on: a set bit is white), or black runs (BlackIsZero).
    white_runs_set: bool,
    decoded: u32,
}

impl hayro_ccitt::Decoder for PackedRows<'_> {
    fn push_row(&mut self, changes: &[u32]) {
        self.decoded += 1;
        if self.y >= self.end {
            return;
        }
        let row = &mut self.packed[self.y * self.stride..][..self.stride];
        // Runs alternate from white: [0, changes[0]) white, then black, and so on.
        let mut start = 0;
        let mut white = true;
        for end in changes
            .iter()
            .map(|&c| (c as usize).min(self.width))
            .chain([self.width])
        {
            if white == self.white_runs_set {
                set_bits(row, self.x + start, self.x + end);
            }
            start = end;
            white = !white;
        }
        self.y += 1;
    }
}

/// Sets bits `from..to` of `row`, the most significant bit of a byte first.
fn set_bits(row: &mut [u8], from: usize, to: usize) {
    if from >= to {
        return;
    }
    let (first, last) = (from / 8, (to - 1) / 8);
    let head = 0xffu8 >> (from % 8);
    let tail = 0xffu8 << (7 - (to - 1) % 8);
    if first == last {
        row[first] |= head & tail;
    } else {
        row[first] |= head;
        row[first + 1..last].fill(0xff);
        row[last] |= tail;
    }
}

/// The reader a TIFF is decoded through, which makes FillOrder 2 pages read as FillOrder
/// 1 ones. TIFF 6.0 defines FillOrder as the logical order of bits within a byte; libtiff
/// reverses the bits of each byte of a FillOrder 2 strip or tile as it reads it, before
/// any decompression (its CCITT codecs read the bits in reverse instead, to the same
/// effect). The tiff crate ignores the tag, so its reads pass through here: each byte read
/// from the ranges set by [`FillOrderReader::reverse_bits_in`] (the current page's strips
/// or tiles) has its bits reversed, and the crate's decompressors, and the CCITT ones,
/// then see what libtiff's see. The reader must start at the beginning of the TIFF.
struct FillOrderReader<R> {
    inner: R,
    /// Where the next byte is read from.
    position: u64,
    /// Sorted, disjoint byte ranges `[start, end)` whose bytes are reversed.
    reversed: Vec<(u64, u64)>,
}

impl<R> FillOrderReader<R> {
    fn new(inner: R) -> Self {
        FillOrderReader {
            inner,
            position: 0,
            reversed: Vec::new(),
        }
    }

    /// Reverses the bits of each byte read from now on from `ranges` (`[start, end)`, in
    /// any order, overlapping or not), and of no others.
    fn reverse_bits_in(&mut self, ranges: impl Iterator<Item = (u64, u64)>) {
        let mut ranges: Vec<_> = ranges.filter(|(start, end)| start < end).collect();
        ranges.sort_unstable();
        self.reversed.clear();
        for (start, end) in ranges {
            match self.reversed.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => self.reversed.push((start, end)),
            }
        }
    }
}

impl<R: Read> Read for FillOrderReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (start, end) = (self.position, self.position + n as u64);
        let first = self.reversed.partition_point(|&(_, e)| e <= start);
        for &(from, to) in self.reversed[first..].iter().take_while(|r| r.0 < end) {
            let bytes = (from.max(start) - start) as usize..(to.min(end) - start) as usize;
            for byte in &mut buf[bytes] {
                *byte = byte.reverse_bits();
            }
        }
        self.position = end;
        Ok(n)
    }
}

impl<R: Seek> Seek for FillOrderReader<R> {
    fn seek(&mut self, from: std::io::SeekFrom) -> std::io::Result<u64> {
        self.position = self.inner.seek(from)?;
        Ok(self.position)
    }
}

/// One page as it is written: its rows coded, in one strip.
struct CodedPage {
    width: u32,
    height: u32,
    compression: u16,
    strip: Vec<u8>,
}

/// The pages of a TIFF file being written back, each coded as it comes (so that only the
/// coded strips are held, not the pixels), and then the file: [`TiffPages::finish`].
#[derive(Default)]
pub struct TiffPages {
    pages: Vec<CodedPage>,
}

impl TiffPages {
    /// Codes a page with CCITT Group 4, the compression bi-level scans are kept in. The
    /// coded page is decoded again and compared with the pixels; where it differs, or is
    /// larger than the packed pixels (G4 expands dithered images), the page is stored
    /// uncompressed instead: lossless whatever the coder does, and never larger than
    /// the bound [`page_file_bytes`] gives.
    pub fn push(&mut self, img: &BitImage, name: &Path) -> Result<(), ImageError> {
        let packed_len = img.width.div_ceil(8) * img.height;
        let g4 = encode_g4(img);
        let (compression, strip) = if g4.len() <= packed_len && g4_decodes_to(&g4, img) {
            (TIFF_GROUP4, g4)
        } else {
            let mut packed = Vec::new();
            reserve(&mut packed, packed_len, name, "its rows")?;
            // WhiteIsZero: a set bit is black, ink.
            for row in img.pixels.chunks_exact(img.width) {
                packed.extend(row.chunks(8).map(|byte| {
                    byte.iter()
                        .enumerate()
                        .fold(0u8, |acc, (i, &p)| acc | (p << (7 - i)))
                }));
            }
            (TIFF_UNCOMPRESSED, packed)
        };
        self.pages.push(CodedPage {
            width: img.width as u32,
            height: img.height as u32,
            compression,
            strip,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The TIFF file of the pages so far, in order: each page one strip, 1 bit per
    /// sample, WhiteIsZero (a set bit is black, ink).
    pub fn finish(&self, name: &Path) -> Result<Vec<u8>, ImageError> {
        use tiff::tags::Tag;
        let strips: usize = self.pages.iter().map(|p| p.strip.len()).sum();
        let mut out = Vec::new();
        reserve(
            &mut out,
            strips + 256 * self.pages.len() + 16,
            name,
            "its file",
        )?;
        let fail = |e: tiff::TiffError| invalid(name, format!("cannot write TIFF: {e}"));
        let mut cursor = std::io::Cursor::new(out);
        let mut encoder = tiff::encoder::TiffEncoder::new(&mut cursor).map_err(fail)?;
        for page in &self.pages {
            let mut dir = encoder.image_directory().map_err(fail)?;
            let offset = dir.write_data(&page.strip[..]).map_err(fail)?;
            let offset = u32::try_from(offset)
                .map_err(|_| invalid(name, "TIFF would exceed 4 GiB, the most a TIFF holds"))?;
            dir.write_tag(Tag::ImageWidth, page.width).map_err(fail)?;
            dir.write_tag(Tag::ImageLength, page.height).map_err(fail)?;
            dir.write_tag(Tag::BitsPerSample, 1u16).map_err(fail)?;
            dir.write_tag(Tag::Compression, page.compression)
                .map_err(fail)?;
            dir.write_tag(Tag::PhotometricInterpretation, 0u16)
                .map_err(fail)?;
            dir.write_tag(Tag::StripOffsets, offset).map_err(fail)?;
            dir.write_tag(Tag::SamplesPerPixel, 1u16).map_err(fail)?;
            dir.write_tag(Tag::RowsPerStrip, page.height)
                .map_err(fail)?;
            dir.write_tag(Tag::StripByteCounts, page.strip.len() as u32)
                .map_err(fail)?;
            dir.finish().map_err(fail)?;
        }
        drop(encoder);
        Ok(cursor.into_inner())
    }
}

/// Most bytes a page adds to a TIFF file that [`TiffPages`] writes: its rows packed (the
/// most a page is stored in) and its directory, with the file's header counted on every
/// page.
pub fn page_file_bytes(width: u64, height: u64) -> u64 {
    width.div_ceil(8) * height + 256
}

/// Codes an image with CCITT Group 4 (T.6), black ink.
fn encode_g4(img: &BitImage) -> Vec<u8> {
    use fax::Color;
    let mut encoder = fax::encoder::Encoder::new(fax::VecWriter::new());
    for row in img.pixels.chunks_exact(img.width) {
        let pels = row
            .iter()
            .map(|&p| if p == 1 { Color::Black } else { Color::White });
        encoder
            .encode_line(pels, img.width as u16)
            .unwrap_or_else(|never| match never {});
    }
    let writer = encoder.finish().unwrap_or_else(|never| match never {});
    writer.finish()
}

/// Whether Group 4 `data` decodes to exactly the rows of `img`.
fn g4_decodes_to(data: &[u8], img: &BitImage) -> bool {
    use fax::decoder::{pels, DecodeStatus, Group4Decoder};
    let width = img.width as u16;
    let bytes = data.iter().map(|&b| Ok::<u8, std::convert::Infallible>(b));
    let Ok(mut decoder) = Group4Decoder::new(bytes, width);
    img.pixels.chunks_exact(img.width).all(|row| {
        matches!(decoder.advance(), Ok(DecodeStatus::Incomplete))
            && pels(decoder.transition(), width)
                .zip(row)
                .all(|(c, &p)| (c == fax::Color::Black) == (p == 1))
    })
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
            ImageFormat::PngPalette { bit_depth: 1 },
            ImageFormat::PngPalette { bit_depth: 2 },
            ImageFormat::PngPalette { bit_depth: 4 },
            ImageFormat::PngPalette { bit_depth: 8 },
            ImageFormat::TiffPage,
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

    /// Pseudo-random pixels with runs of every length, as G4 meets in scans and dithering.
    fn noise(width: usize, height: usize, seed: u64, density: u64) -> BitImage {
        let mut z = seed;
        let pixels = (0..width * height)
            .map(|_| {
                z = z
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                u8::from((z >> 33) % 100 < density)
            })
            .collect();
        BitImage {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn multi_page_tiffs_round_trip_in_group_4() {
        let pages = [
            sample(),
            noise(1, 1, 1, 50),
            noise(77, 50, 2, 3),
            noise(200, 9, 3, 50),
            BitImage {
                width: 300,
                height: 4,
                pixels: vec![1; 1200],
            },
        ];
        let mut tiff = TiffPages::default();
        for page in &pages {
            tiff.push(page, Path::new("t.tif")).unwrap();
        }
        let bytes = tiff.finish(Path::new("t.tif")).unwrap();
        let back = decode_image_file(Path::new("t.tif"), &bytes).unwrap();
        assert_eq!(back.len(), pages.len());
        for ((img, format), page) in back.iter().zip(&pages) {
            assert_eq!((img, *format), (page, ImageFormat::TiffPage));
        }
        // Sparse pages are G4 coded; the 50% noise is stored, never expanded.
        assert_eq!(tiff.pages[2].compression, TIFF_GROUP4);
        assert_eq!(tiff.pages[3].compression, TIFF_UNCOMPRESSED);
        assert!(decode_image(Path::new("t.tif"), &bytes)
            .unwrap_err()
            .to_string()
            .contains("has 5 pages"));
    }

    #[test]
    fn group_4_coding_is_lossless_on_noise_of_every_density() {
        for (seed, density) in
            (0..40).map(|i| (i, [0, 1, 5, 20, 50, 80, 95, 99, 100][i as usize % 9]))
        {
            let img = noise(
                1 + (seed as usize * 37) % 190,
                1 + seed as usize % 13,
                seed,
                density,
            );
            assert!(g4_decodes_to(&encode_g4(&img), &img), "seed {seed}");
        }
    }

    #[test]
    fn a_tiff_of_too_many_pages_is_refused() {
        let mut tiff = TiffPages::default();
        for _ in 0..=MAX_TIFF_PAGES {
            tiff.push(&noise(1, 1, 0, 0), Path::new("many.tif"))
                .unwrap();
        }
        let bytes = tiff.finish(Path::new("many.tif")).unwrap();
        let err = decode_image_file(Path::new("many.tif"), &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("many.tif") && err.contains("more than 9999 pages"),
            "{err}"
        );
    }

    #[test]
    fn palette_pngs_of_two_colours_read_with_the_darker_as_ink() {
        let png = |depth: png::BitDepth, palette: &[u8], data: &[u8]| {
            let mut bytes = Vec::new();
            let mut enc = png::Encoder::new(&mut bytes, 4, 1);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(depth);
            enc.set_palette(palette.to_vec());
            enc.write_header().unwrap().write_image_data(data).unwrap();
            bytes
        };
        // White at index 0, dark blue at index 1: index 1 is ink.
        let bytes = png(
            png::BitDepth::One,
            &[255, 255, 255, 0, 0, 90],
            &[0b0110_0000],
        );
        let (img, f) = decode_image(Path::new("p.png"), &bytes).unwrap();
        assert_eq!(
            (img.pixels, f),
            (vec![0, 1, 1, 0], ImageFormat::PngPalette { bit_depth: 1 })
        );
        // 8 bits, many entries, two used.
        let mut palette: Vec<u8> = (0..=255).flat_map(|i| [i, i, i]).collect();
        palette[3 * 7..3 * 8].copy_from_slice(&[250, 240, 230]);
        let (img, _) = decode_image(
            Path::new("p.png"),
            &png(png::BitDepth::Eight, &palette, &[7, 3, 3, 7]),
        )
        .unwrap();
        assert_eq!(img.pixels, vec![0, 1, 1, 0]);
        let err = decode_image(
            Path::new("p.png"),
            &png(png::BitDepth::Eight, &palette, &[7, 3, 4, 7]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p.png") && err.contains("column 2") && err.contains("third colour"),
            "{err}"
        );
    }

    #[test]
    fn fill_order_reader_reverses_only_the_bytes_of_its_ranges() {
        let data: Vec<u8> = (0..64).map(|i| (i * 37 + 5) as u8).collect();
        let mut reader = FillOrderReader::new(std::io::Cursor::new(data.clone()));
        // Out of order and overlapping: [10, 20) and [15, 30) make [10, 30); and [40, 41).
        reader.reverse_bits_in([(15, 30), (40, 41), (10, 20), (50, 50)].into_iter());
        let expected: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let reversed = (10..30).contains(&i) || i == 40;
                if reversed {
                    b.reverse_bits()
                } else {
                    b
                }
            })
            .collect();
        // Read in pieces of 7 bytes, across the ranges' ends, then again after a seek.
        let mut got = Vec::new();
        let mut piece = [0u8; 7];
        loop {
            let n = reader.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, expected);
        reader.seek(std::io::SeekFrom::Start(28)).unwrap();
        let mut four = [0u8; 4];
        reader.read_exact(&mut four).unwrap();
        assert_eq!(four, expected[28..32]);
        reader.reverse_bits_in(std::iter::empty());
        reader.seek(std::io::SeekFrom::Start(10)).unwrap();
        reader.read_exact(&mut four).unwrap();
        assert_eq!(four, data[10..14]);
    }

    #[test]
    fn set_bits_sets_exactly_its_range() {
        for from in 0..24 {
            for to in from..=24 {
                let mut row = [0u8; 3];
                set_bits(&mut row, from, to);
                let bits: Vec<bool> = (0..24)
                    .map(|i| row[i / 8] >> (7 - i % 8) & 1 == 1)
                    .collect();
                assert!(
                    bits.iter()
                        .enumerate()
                        .all(|(i, &b)| b == (from..to).contains(&i)),
                    "{from}..{to}"
                );
            }
        }
    }

    /// Group 3 and CCITT RLE files with bytes changed anywhere: read or refused, never a
    /// panic, and every refusal names the file.
    #[test]
    fn damaged_group_3_and_rle_tiffs_never_panic() {
        let files: [&[u8]; 4] = [
            include_bytes!("../tests/data/pages-g3-2d.tif"),
            include_bytes!("../tests/data/pages-rle.tif"),
            include_bytes!("../tests/data/tiled-g3.tif"),
            include_bytes!("../tests/data/lsb-none-lzw-g3.tif"),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for file in files {
            for _ in 0..150 {
                let mut bytes = file.to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = next() as usize % bytes.len();
                    bytes[at] = next() as u8;
                }
                if let Err(e) = decode_image_file(Path::new("hurt.tif"), &bytes) {
                    assert!(e.to_string().starts_with("hurt.tif: "), "{e}");
                }
            }
        }
    }
}
