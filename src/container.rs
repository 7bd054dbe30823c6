//! The `.vlz` container, as specified in `format-spec.md`.
//!
//! [`parse`] is a pure function over bytes: it checks the magic, version, reserved bits and
//! the whole-file checksum first, then every count and length against the bytes actually
//! present and against fixed limits before allocating anything.

use crate::codec::bitsback::{Lane, SEED_WORDS};
use crate::image_io::ImageFormat;
use crate::infer::weights::FINGERPRINT_LEN;
use byteorder::{ByteOrder, LittleEndian as LE, WriteBytesExt};

/// The first bytes of every archive.
pub const MAGIC: [u8; 8] = *b"VLAEZIP\0";
/// The only format version this build reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 52;
/// Bytes of one lane record.
pub const LANE_RECORD_LEN: usize = 20;
/// Bytes of the trailer: pixel CRC-32, then file CRC-32.
pub const TRAILER_LEN: usize = 8;
/// Entry format codes.
pub const FORMAT_PBM: u8 = 0;
pub const FORMAT_PNG_GRAY: u8 = 1;
/// Entry name codes: the name is spelled out, or is the successor of the previous name.
pub const NAME_EXPLICIT: u8 = 0;
pub const NAME_SUCCESSOR: u8 = 1;
/// Largest inflated entry table accepted.
pub const MAX_ENTRY_TABLE: usize = 1 << 30;

/// Limits a valid archive stays within; anything beyond is rejected before allocation.
pub const MAX_IMAGES: u32 = 1 << 26;
pub const MAX_LANES: u32 = 1 << 16;
pub const MAX_NAME_LEN: usize = 4096;
pub const MAX_LATENT_BITS: u8 = 16;

/// Fixed header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub fingerprint: [u8; FINGERPRINT_LEN],
    pub width: u16,
    pub height: u16,
    pub image_count: u32,
    pub latent_bits: u8,
    pub precision: u8,
}

/// One image's name (relative, `/`-separated) and original format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub format: ImageFormat,
}

/// A whole archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archive {
    pub header: Header,
    pub entries: Vec<Entry>,
    pub lanes: Vec<Lane>,
    /// CRC-32 of all decoded pixels (one byte, 0 or 1, per pixel, in archive order).
    pub pixel_crc: u32,
}

impl Archive {
    /// Bytes of the lanes' stacks (stored words plus each lane's 8-byte ANS head): the
    /// coded images without the container around them.
    pub fn payload_bytes(&self) -> usize {
        self.lanes.iter().map(|l| 4 * l.words.len() + 8).sum()
    }
}

/// Why bytes are not a valid archive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerError {
    #[error("not a vlae-zip archive (bad magic)")]
    NotAnArchive,
    #[error("archive format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u16),
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

/// Whether `name` is safe to create under an output folder: relative, `/`-separated,
/// no empty, `.` or `..` components, no backslashes or control characters.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('/')
        && !name
            .chars()
            .any(|c| c == '\\' || c.is_control() || c == ':')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The name that follows `name` in a numbered sequence: its last run of ASCII digits
/// incremented with carry, keeping its width unless the run overflows ("a09.pbm" →
/// "a10.pbm", "99" → "100"). `None` if the name has no digits.
pub fn successor(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let end = b.iter().rposition(u8::is_ascii_digit)? + 1;
    let start = b[..end]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let mut digits = b[start..end].to_vec();
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, b'1');
            break;
        }
        i -= 1;
        if digits[i] == b'9' {
            digits[i] = b'0';
        } else {
            digits[i] += 1;
            break;
        }
    }
    Some(format!(
        "{}{}{}",
        &name[..start],
        std::str::from_utf8(&digits).expect("digits"),
        &name[end..]
    ))
}

/// The entry table before deflate: per entry a name code, format code, bit depth and, for
/// explicit names, a u16 length and the UTF-8 bytes.
fn entry_table(entries: &[Entry]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut prev: Option<&str> = None;
    for e in entries {
        let (code, depth) = match e.format {
            ImageFormat::Pbm => (FORMAT_PBM, 0),
            ImageFormat::PngGray { bit_depth } => (FORMAT_PNG_GRAY, bit_depth),
        };
        let follows = prev.and_then(successor).is_some_and(|s| s == e.name);
        t.push(if follows {
            NAME_SUCCESSOR
        } else {
            NAME_EXPLICIT
        });
        t.push(code);
        t.push(depth);
        if !follows {
            t.write_u16::<LE>(e.name.len() as u16).expect("Vec write");
            t.extend_from_slice(e.name.as_bytes());
        }
        prev = Some(&e.name);
    }
    t
}

/// Serializes an archive.
pub fn write(archive: &Archive) -> Vec<u8> {
    use std::io::Write;
    let h = &archive.header;
    let raw = entry_table(&archive.entries);
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&raw).expect("Vec write");
    let names = z.finish().expect("Vec write");
    let mut out = Vec::with_capacity(
        HEADER_LEN
            + names.len()
            + archive
                .lanes
                .iter()
                .map(|l| LANE_RECORD_LEN + 4 * l.words.len())
                .sum::<usize>()
            + TRAILER_LEN,
    );
    out.extend_from_slice(&MAGIC);
    out.write_u16::<LE>(VERSION).expect("Vec write");
    out.write_u16::<LE>(0).expect("Vec write");
    out.extend_from_slice(&h.fingerprint);
    out.write_u16::<LE>(h.width).expect("Vec write");
    out.write_u16::<LE>(h.height).expect("Vec write");
    out.write_u32::<LE>(h.image_count).expect("Vec write");
    out.write_u32::<LE>(archive.lanes.len() as u32)
        .expect("Vec write");
    out.push(h.latent_bits);
    out.push(h.precision);
    out.write_u16::<LE>(0).expect("Vec write");
    out.write_u32::<LE>(raw.len() as u32).expect("Vec write");
    out.write_u32::<LE>(names.len() as u32).expect("Vec write");
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&names);
    for l in &archive.lanes {
        out.write_u32::<LE>(l.image_count).expect("Vec write");
        out.write_u32::<LE>(l.seed_words_elided).expect("Vec write");
        out.write_u32::<LE>(l.words.len() as u32)
            .expect("Vec write");
        out.write_u64::<LE>(l.state).expect("Vec write");
    }
    for l in &archive.lanes {
        for &w in &l.words {
            out.write_u32::<LE>(w).expect("Vec write");
        }
    }
    out.write_u32::<LE>(archive.pixel_crc).expect("Vec write");
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).expect("Vec write");
    out
}

/// A bounds-checked reader over the archive body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ContainerError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(ContainerError::Truncated(what))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ContainerError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ContainerError> {
        Ok(LE::read_u16(self.take(2, what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, ContainerError> {
        Ok(LE::read_u32(self.take(4, what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ContainerError> {
        Ok(LE::read_u64(self.take(8, what)?))
    }
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// Inflates a raw-deflate stream that must yield exactly `len` bytes.
fn inflate_exact(deflated: &[u8], len: usize) -> Result<Vec<u8>, ContainerError> {
    use std::io::Read;
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

fn limit(what: &'static str, value: u64, max: u64) -> Result<(), ContainerError> {
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
pub fn parse(bytes: &[u8]) -> Result<Archive, ContainerError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(ContainerError::NotAnArchive);
    }
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(ContainerError::Truncated("header"));
    }
    let version = LE::read_u16(&bytes[8..10]);
    if version != VERSION {
        return Err(ContainerError::UnsupportedVersion(version));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let (stored, computed) = (LE::read_u32(crc_bytes), crc32fast::hash(body));
    if stored != computed {
        return Err(ContainerError::Checksum { stored, computed });
    }
    let (body, pixel_crc_bytes) = body.split_at(body.len() - 4);
    let mut r = Reader {
        bytes: body,
        at: 10,
    };
    if r.u16("flags")? != 0 {
        return Err(ContainerError::ReservedBits("header flags"));
    }
    let mut fingerprint = [0u8; FINGERPRINT_LEN];
    fingerprint.copy_from_slice(r.take(FINGERPRINT_LEN, "fingerprint")?);
    let width = r.u16("width")?;
    let height = r.u16("height")?;
    let image_count = r.u32("image count")?;
    let lane_count = r.u32("lane count")?;
    let latent_bits = r.u8("latent bits")?;
    let precision = r.u8("precision")?;
    if r.u16("reserved")? != 0 {
        return Err(ContainerError::ReservedBits("header bytes 42-43"));
    }
    let raw_len = r.u32("entry table length")? as usize;
    let names_len = r.u32("deflated entry table length")? as usize;
    limit("image count", image_count.into(), MAX_IMAGES.into())?;
    limit("lane count", lane_count.into(), MAX_LANES.into())?;
    if (lane_count == 0) != (image_count == 0) || lane_count > image_count.max(1) {
        return Err(ContainerError::Invalid(format!(
            "{lane_count} lanes for {image_count} images"
        )));
    }
    if width == 0 || height == 0 {
        return Err(ContainerError::Invalid("zero image width or height".into()));
    }
    if latent_bits == 0 || latent_bits > MAX_LATENT_BITS {
        return Err(ContainerError::Invalid(format!(
            "latent bucket bits {latent_bits} outside 1..={MAX_LATENT_BITS}"
        )));
    }
    // Every entry takes at least 3 bytes and at most 5 + MAX_NAME_LEN: check before
    // allocating.
    let n = image_count as usize;
    if names_len > r.left() {
        return Err(ContainerError::Truncated("entry table"));
    }
    if raw_len < 3 * n || raw_len > n * (5 + MAX_NAME_LEN) {
        return Err(ContainerError::Invalid(format!(
            "entry table of {raw_len} bytes for {n} images"
        )));
    }
    limit("entry table length", raw_len as u64, MAX_ENTRY_TABLE as u64)?;
    let raw = inflate_exact(r.take(names_len, "entry table")?, raw_len)?;
    let mut table = Reader { bytes: &raw, at: 0 };
    let mut prev: Option<String> = None;
    let mut entries = Vec::with_capacity(image_count as usize);
    let mut seen = std::collections::HashSet::with_capacity(image_count as usize);
    for i in 0..image_count {
        let name_code = table.u8("entry name code")?;
        let code = table.u8("entry format")?;
        let depth = table.u8("entry bit depth")?;
        let format = match (code, depth) {
            (FORMAT_PBM, 0) => ImageFormat::Pbm,
            (FORMAT_PNG_GRAY, d @ (1 | 2 | 4 | 8 | 16)) => ImageFormat::PngGray { bit_depth: d },
            _ => {
                return Err(ContainerError::Invalid(format!(
                    "entry {i} has unknown format {code}/{depth}"
                )))
            }
        };
        let name = match name_code {
            NAME_EXPLICIT => {
                let len = table.u16("entry name length")? as usize;
                std::str::from_utf8(table.take(len, "entry name")?)
                    .map_err(|_| ContainerError::Invalid(format!("entry {i} name is not UTF-8")))?
                    .to_owned()
            }
            NAME_SUCCESSOR => prev.as_deref().and_then(successor).ok_or_else(|| {
                ContainerError::Invalid(format!("entry {i} follows a name without digits"))
            })?,
            _ => {
                return Err(ContainerError::Invalid(format!(
                    "entry {i} has unknown name code {name_code}"
                )))
            }
        };
        if !is_safe_name(&name) {
            return Err(ContainerError::Invalid(format!(
                "entry {i} name {name:?} is not a safe relative path"
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(ContainerError::Invalid(format!(
                "entry {i} repeats the name {name:?}"
            )));
        }
        prev = Some(name.clone());
        entries.push(Entry { name, format });
    }
    if table.left() != 0 {
        return Err(ContainerError::Invalid(
            "entry table has trailing bytes".into(),
        ));
    }
    if (lane_count as usize).saturating_mul(LANE_RECORD_LEN) > r.left() {
        return Err(ContainerError::Truncated("lane table"));
    }
    let mut records = Vec::with_capacity(lane_count as usize);
    let (mut images_in_lanes, mut words_total) = (0u64, 0u64);
    for i in 0..lane_count {
        let (count, elided, words, state) = (
            r.u32("lane images")?,
            r.u32("lane seed")?,
            r.u32("lane words")?,
            r.u64("lane state")?,
        );
        if count == 0 || elided as usize > SEED_WORDS {
            return Err(ContainerError::Invalid(format!(
                "lane {i} has {count} images and {elided} elided seed words"
            )));
        }
        images_in_lanes += u64::from(count);
        words_total += u64::from(words);
        records.push((count, elided, words, state));
    }
    if images_in_lanes != u64::from(image_count) {
        return Err(ContainerError::Invalid(format!(
            "lanes hold {images_in_lanes} images, the header says {image_count}"
        )));
    }
    if words_total * 4 != r.left() as u64 {
        return Err(ContainerError::Invalid(format!(
            "lanes need {} payload bytes, the archive has {}",
            words_total * 4,
            r.left()
        )));
    }
    let lanes = records
        .into_iter()
        .map(|(image_count, seed_words_elided, words, state)| {
            let raw = r.take(words as usize * 4, "payload")?;
            Ok(Lane {
                image_count,
                seed_words_elided,
                state,
                words: raw.chunks_exact(4).map(LE::read_u32).collect(),
            })
        })
        .collect::<Result<_, ContainerError>>()?;
    Ok(Archive {
        header: Header {
            fingerprint,
            width,
            height,
            image_count,
            latent_bits,
            precision,
        },
        entries,
        lanes,
        pixel_crc: LE::read_u32(pixel_crc_bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        Archive {
            header: Header {
                fingerprint: [7; FINGERPRINT_LEN],
                width: 28,
                height: 28,
                image_count: 3,
                latent_bits: 8,
                precision: 24,
            },
            entries: vec![
                Entry {
                    name: "a.pbm".into(),
                    format: ImageFormat::Pbm,
                },
                Entry {
                    name: "sub/b.png".into(),
                    format: ImageFormat::PngGray { bit_depth: 8 },
                },
                Entry {
                    name: "c.png".into(),
                    format: ImageFormat::PngGray { bit_depth: 1 },
                },
            ],
            lanes: vec![
                Lane {
                    image_count: 2,
                    seed_words_elided: 30,
                    state: 1 << 40,
                    words: vec![1, 2, 3],
                },
                Lane {
                    image_count: 1,
                    seed_words_elided: 0,
                    state: 5 << 33,
                    words: vec![9],
                },
            ],
            pixel_crc: 0xdead_beef,
        }
    }

    #[test]
    fn archives_round_trip() {
        let a = sample();
        assert_eq!(parse(&write(&a)).unwrap(), a);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = write(&sample());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    parse(&b).is_err(),
                    "flip at byte {i} bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_caught() {
        let bytes = write(&sample());
        for n in 0..bytes.len() {
            assert!(
                parse(&bytes[..n]).is_err(),
                "truncation to {n} bytes went unnoticed"
            );
        }
    }

    /// Rewrites the trailing CRC so that a deliberately edited archive reaches the checks
    /// behind the checksum.
    fn reseal(mut b: Vec<u8>) -> Vec<u8> {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        LE::write_u32(&mut b[n..], crc);
        b
    }

    #[test]
    fn versions_reserved_bits_and_limits_are_enforced() {
        let good = write(&sample());
        let mut b = good.clone();
        b[8] = 2;
        assert_eq!(
            parse(&reseal(b)),
            Err(ContainerError::UnsupportedVersion(2))
        );
        let mut b = good.clone();
        b[10] = 1;
        assert_eq!(
            parse(&reseal(b)),
            Err(ContainerError::ReservedBits("header flags"))
        );
        let mut b = good.clone();
        LE::write_u32(&mut b[32..36], u32::MAX);
        assert!(matches!(
            parse(&reseal(b)),
            Err(ContainerError::Limit { .. })
        ));
        let mut b = good.clone();
        LE::write_u32(&mut b[48..52], u32::MAX);
        assert_eq!(
            parse(&reseal(b)),
            Err(ContainerError::Truncated("entry table"))
        );
        let mut b = good.clone();
        LE::write_u32(&mut b[44..48], u32::MAX);
        assert!(matches!(parse(&reseal(b)), Err(ContainerError::Invalid(_))));
        assert_eq!(
            parse(b"PK\x03\x04 not ours"),
            Err(ContainerError::NotAnArchive)
        );
    }

    #[test]
    fn successors_count_in_decimal() {
        assert_eq!(successor("00009.pbm").as_deref(), Some("00010.pbm"));
        assert_eq!(successor("a/img99.png").as_deref(), Some("a/img100.png"));
        assert_eq!(successor("7").as_deref(), Some("8"));
        assert_eq!(successor("x1y2.pbm").as_deref(), Some("x1y3.pbm"));
        assert_eq!(successor("none.pbm"), None);
    }

    #[test]
    fn numbered_names_cost_almost_nothing() {
        let mut a = sample();
        a.header.image_count = 1000;
        a.entries = (0..1000)
            .map(|i| Entry {
                name: format!("{i:05}.pbm"),
                format: ImageFormat::Pbm,
            })
            .collect();
        a.lanes = vec![Lane {
            image_count: 1000,
            seed_words_elided: 0,
            state: 1 << 40,
            words: vec![],
        }];
        let bytes = write(&a);
        assert!(
            bytes.len() < HEADER_LEN + 40 + LANE_RECORD_LEN + TRAILER_LEN,
            "{} bytes",
            bytes.len()
        );
        assert_eq!(parse(&bytes).unwrap(), a);
    }

    #[test]
    fn unsafe_names_are_rejected() {
        for bad in [
            "",
            "/etc/passwd",
            "../x.pbm",
            "a/../../x",
            "a//b",
            "a\\b",
            "./a",
            "c:x",
            "a/\u{0}b",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
            let mut a = sample();
            a.entries[0].name = bad.into();
            assert!(parse(&write(&a)).is_err(), "{bad:?} was accepted");
        }
        assert!(is_safe_name("digits/seven.pbm"));
    }
}
