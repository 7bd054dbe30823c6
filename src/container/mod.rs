//! The `.vlz` container, as specified in `format-spec.md`.
//!
//! [`parse`] is a pure function over bytes: it checks the signature, the version and the
//! whole-file checksum first, then every count and length against the bytes actually
//! present and against the limits below, before allocating anything. The parsed
//! [`Archive`] borrows the lanes' payloads from those bytes, so a memory-mapped archive is
//! never copied. The container owns its types and knows nothing of models, coders or
//! image files: it moves integers and byte strings. Which lane coders exist is the
//! [`registry`]'s business; the container's version changes only with its byte layout.
#![forbid(unsafe_code)]

mod bytes;
mod layout;
mod names;
pub mod registry;

pub use layout::{write, NewArchive, MAX_SAMPLES, MODEL_ID_LEN, PRECISION, SIGNATURE, TRAILER_LEN};
pub use names::{is_safe_name, successor};

use byteorder::{ByteOrder, LittleEndian};
pub use registry::{CoderInfo, REGISTRY};

/// The container version this build reads and writes: format 1.
pub const VERSION: u8 = 1;

/// Most images in one archive; the entry table and every per-image structure is bounded
/// by it.
pub const MAX_IMAGES: u64 = 1 << 24;
/// Most lanes in one archive.
pub const MAX_LANES: u64 = 1 << 16;
/// Longest stored name, in bytes.
pub const MAX_NAME_LEN: usize = 4096;
/// Longest side of an image, in pixels.
pub const MAX_SIDE: u32 = 1 << 15;
/// Most pixels in one image (over 23,000 × 23,000).
pub const MAX_IMAGE_PIXELS: u64 = 1 << 29;
/// Most pixels in one lane: a 400-dpi page, so that page mixing learns each page in one
/// lane (format-spec.md §3.9). A decoder holds a lane's pixels until the lane ends, a few
/// lanes per thread, so this bounds decoding memory whatever the image count.
pub const MAX_LANE_PIXELS: u64 = 1 << 24;
/// Most image segments (whole images or bands of one) in one lane: bounds a
/// lane's bookkeeping for archives of many tiny images.
pub const MAX_LANE_SEGMENTS: u64 = 1 << 16;
/// Most models one archive may name.
pub const MAX_MODELS: usize = 16;
/// Latent discretizations a reader accepts: 2^1 to 2^16 buckets.
pub const MAX_LATENT_BITS: u8 = 16;
/// Seed words at the bottom of a bits-back lane's stack (format-spec.md §2.1).
pub const SEED_WORDS: u32 = 32;
/// Largest ratio of inflated to deflated bytes DEFLATE can reach (258 bytes per 2-bit
/// symbol, rounded up): the entry table's claimed length is checked against it before
/// anything is reserved.
pub const MAX_DEFLATE_RATIO: usize = 1032;

/// How an image's file is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// PBM; written back as binary P4 whether it came as P1 or P4.
    Pbm,
    /// Grayscale PNG without alpha, of the given bit depth (1, 2, 4, 8 or 16).
    PngGray { bit_depth: u8 },
    /// One page of a TIFF file: the entry is named `<file name>/<page>`, and consecutive
    /// pages of one file are written back together as that file, CCITT Group 4 coded.
    TiffPage,
    /// Palette PNG of two colours, of the given bit depth (1, 2, 4 or 8); written back
    /// with a black-and-white palette (format-spec.md §1.1).
    PngPalette { bit_depth: u8 },
}

/// Entry format codes (format-spec.md §1.1).
pub const FORMAT_PBM: u8 = 0;
pub const FORMAT_PNG_GRAY: u8 = 1;
pub const FORMAT_TIFF_PAGE: u8 = 2;
pub const FORMAT_PNG_PALETTE: u8 = 3;

impl ImageFormat {
    /// The (format code, bit depth) pair stored in entry tables.
    pub fn code(self) -> (u8, u8) {
        match self {
            ImageFormat::Pbm => (FORMAT_PBM, 0),
            ImageFormat::PngGray { bit_depth } => (FORMAT_PNG_GRAY, bit_depth),
            ImageFormat::TiffPage => (FORMAT_TIFF_PAGE, 0),
            ImageFormat::PngPalette { bit_depth } => (FORMAT_PNG_PALETTE, bit_depth),
        }
    }

    /// The format a stored (code, depth) pair names, if any.
    pub fn from_code(code: u8, depth: u8) -> Option<Self> {
        match (code, depth) {
            (FORMAT_PBM, 0) => Some(ImageFormat::Pbm),
            (FORMAT_PNG_GRAY, d @ (1 | 2 | 4 | 8 | 16)) => {
                Some(ImageFormat::PngGray { bit_depth: d })
            }
            (FORMAT_TIFF_PAGE, 0) => Some(ImageFormat::TiffPage),
            (FORMAT_PNG_PALETTE, d @ (1 | 2 | 4 | 8)) => {
                Some(ImageFormat::PngPalette { bit_depth: d })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageFormat::Pbm => write!(f, "PBM"),
            ImageFormat::PngGray { bit_depth } => write!(f, "PNG grey {bit_depth}-bit"),
            ImageFormat::TiffPage => write!(f, "TIFF page"),
            ImageFormat::PngPalette { bit_depth } => write!(f, "PNG palette {bit_depth}-bit"),
        }
    }
}

/// One image: its name (relative, `/`-separated), its format, its size, and how it is
/// stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl Entry {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Which model a bits-back lane was coded with, as the archive names it: the first 8
/// bytes of the model's fingerprint (format-spec.md §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelId(pub [u8; MODEL_ID_LEN]);

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Page mixing's editions, each a row of the coder [`registry`]: the first, of format 1.0
/// (format-spec.md §3.9), the second (§3.10), the third (§3.11) and the fourth (§3.12),
/// which the compressor writes. Each adds to the one before it, and all decode forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edition {
    First,
    Second,
    Third,
    Fourth,
}

/// How a lane's rows are coded: a row of the coder [`registry`], with the parameters its
/// record carries (format-spec.md §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneCoder {
    /// Bits-back chain with `models[model]`; `samples` > 1 is importance-weighted
    /// bits-back, and `memory` mixes the page memory into every pixel's probability
    /// (format-spec.md §3.8).
    BitsBack {
        model: u16,
        samples: u32,
        memory: bool,
    },
    /// The adaptive context model over template `template`, 0 or 1 (format-spec.md §3.6).
    Context { template: u8 },
    /// Page mixing (format-spec.md §3.9) of an edition.
    PageMixing(Edition),
    /// The rows' bits, packed, MSB first, with no padding between rows.
    Stored,
    /// No payload: each strip repeats the same rows of the image `back` places before its
    /// own, which has the same size (format-spec.md §3.13). A folder of identical pages
    /// costs one page.
    Repeat { back: u64 },
    /// The rows, each padded to whole bytes, as one Zstandard frame (format-spec.md
    /// §3.14).
    Zstd,
}

impl LaneCoder {
    /// Whether the lane's record ends in an ANS head: every coder but stored bits,
    /// repeats and Zstandard frames.
    pub fn has_head(self) -> bool {
        !matches!(
            self,
            LaneCoder::Stored | LaneCoder::Repeat { .. } | LaneCoder::Zstd
        )
    }
}

/// One lane as stored: an independent stream over a run of consecutive pixel rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane<P> {
    pub coder: LaneCoder,
    /// Pixel rows, counted through the images in archive order.
    pub rows: u64,
    /// Bits-back lanes: how many bottom words of the final stack equal the seed's.
    pub seed_words_elided: u32,
    /// ANS lanes: the coder's head.
    pub state: u64,
    /// The payload: words of an ANS stack, bottom first, or the stored bits.
    pub payload: P,
}

/// A lane borrowed from archive bytes.
pub type LaneView<'a> = Lane<&'a [u8]>;

/// A parsed archive. Entries stay in their raw table and are produced one at a time by
/// [`Archive::entries`], so that a huge image count costs no memory per image.
#[derive(Debug)]
pub struct Archive<'a> {
    pub models: Vec<ModelId>,
    pub image_count: u64,
    pub latent_bits: u8,
    pub precision: u8,
    pub lanes: Vec<LaneView<'a>>,
    /// CRC-32 of all decoded pixels (one byte, 0 or 1, per pixel, in archive order).
    pub pixel_crc: u32,
    /// The smallest and largest (width, height) among the images.
    pub size_range: ((u32, u32), (u32, u32)),
    entry_table: Vec<u8>,
}

impl Archive<'_> {
    /// The entries in archive order. They were validated by [`parse`].
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut walk = names::EntryWalk::new(&self.entry_table);
        (0..self.image_count)
            .map(move |_| walk.next_entry().expect("entry table validated by parse"))
    }

    /// The entries' (width, height) in archive order, without their names.
    pub fn entry_sizes(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut walk = names::EntryWalk::new(&self.entry_table);
        (0..self.image_count)
            .map(move |_| walk.next_checked().expect("entry table validated by parse"))
    }

    /// Bytes of the lanes' payloads plus each ANS lane's 8-byte head: the coded pixels
    /// without the container around them.
    pub fn payload_bytes(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.payload.len() + if l.coder.has_head() { 8 } else { 0 })
            .sum()
    }

    /// Pixel rows in all images.
    pub fn total_rows(&self) -> u64 {
        self.lanes.iter().map(|l| l.rows).sum()
    }
}

/// Why bytes are not a valid archive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerError {
    #[error("not a vlae-zip archive (bad signature)")]
    NotAnArchive,
    #[error("archive container version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("lane {lane} uses coder {id}, which this build does not know (a later build may)")]
    UnknownCoder { lane: u64, id: u8 },
    #[error("reserved {0} are set: the archive is corrupt or from a newer version")]
    ReservedBits(&'static str),
    #[error("archive is truncated: {0}")]
    Truncated(&'static str),
    #[error("archive checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is truncated or corrupt")]
    Checksum { stored: u32, computed: u32 },
    #[error("{what} is {value}, above the limit {limit}")]
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("archive is invalid: {0}")]
    Invalid(String),
}

/// Fails with [`ContainerError::Limit`] when `value > max`.
pub fn check_limit(what: &'static str, value: u64, max: u64) -> Result<(), ContainerError> {
    if value > max {
        Err(ContainerError::Limit {
            what,
            value,
            limit: max,
        })
    } else {
        Ok(())
    }
}

/// Parses and validates an archive.
pub fn parse(bytes: &[u8]) -> Result<Archive<'_>, ContainerError> {
    if !bytes.starts_with(&SIGNATURE) {
        return Err(ContainerError::NotAnArchive);
    }
    match bytes.get(SIGNATURE.len()) {
        Some(&VERSION) => layout::parse(bytes),
        Some(&v) => Err(ContainerError::UnsupportedVersion(v)),
        None => Err(ContainerError::Truncated("version")),
    }
}

/// Checks the trailing file CRC and splits off the body and the pixel CRC.
fn check_crc(bytes: &[u8], min_len: usize) -> Result<(&[u8], u32), ContainerError> {
    if bytes.len() < min_len {
        return Err(ContainerError::Truncated("header"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = LittleEndian::read_u32(crc);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(ContainerError::Checksum { stored, computed });
    }
    let (body, pixel) = body.split_at(body.len() - 4);
    Ok((body, LittleEndian::read_u32(pixel)))
}

/// Inflates a raw-deflate stream that must yield exactly `len` bytes. The reservation is
/// bounded by what the deflated bytes can expand to, whatever `len` claims.
fn inflate_exact(deflated: &[u8], len: usize) -> Result<Vec<u8>, ContainerError> {
    use std::io::Read;
    if len > deflated.len().saturating_mul(MAX_DEFLATE_RATIO) + 16 {
        return Err(ContainerError::Invalid(format!(
            "entry table claims {len} bytes, more than {} deflated bytes can hold",
            deflated.len()
        )));
    }
    let mut out = Vec::with_capacity(len);
    flate2::read::DeflateDecoder::new(deflated)
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ContainerError::Invalid(format!("entry table does not inflate: {e}")))?;
    if out.len() != len {
        return Err(ContainerError::Invalid(format!(
            "entry table inflates to {} bytes, the header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

/// Deflates an entry table.
fn deflate(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(raw).expect("Vec write");
    z.finish().expect("Vec write")
}

/// What one validating pass over an entry table learns.
struct EntrySummary {
    size_range: ((u32, u32), (u32, u32)),
}

/// Validates an inflated entry table of `count` entries, calling `image` with each
/// entry's (width, height). One pass, no allocation per entry: names must strictly
/// increase bytewise (so they are unique without a set) and be safe relative paths.
fn validate_entries(
    table: &[u8],
    count: u64,
    mut image: impl FnMut(u32, u32) -> Result<(), ContainerError>,
) -> Result<EntrySummary, ContainerError> {
    let mut walk = names::EntryWalk::new(table);
    let (mut smallest, mut largest) = ((u32::MAX, u32::MAX), (0, 0));
    for _ in 0..count {
        let size = walk.next_checked()?;
        smallest = smallest.min(size);
        largest = largest.max(size);
        image(size.0, size.1)?;
    }
    if !walk.finished() {
        return Err(ContainerError::Invalid(
            "entry table has trailing bytes".into(),
        ));
    }
    Ok(EntrySummary {
        size_range: (smallest, largest),
    })
}
