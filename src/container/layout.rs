//! Format 1's byte layout (format-spec.md §1): the header, the entry table, the lane
//! records and the trailer, written and read by the two functions below, field for field
//! in the same order.
#![forbid(unsafe_code)]

use super::bytes::{put_u32, put_u64, put_varint, Reader};
use super::names::{SAME_FORMAT, SAME_NAME_SUCCESSOR, SAME_SIZE};
use super::registry::{self, Record};
use super::{
    check_crc, check_limit, deflate, inflate_exact, successor, Archive, ContainerError, Entry,
    Lane, LaneCoder, ModelId, MAX_IMAGES, MAX_LANES, MAX_LANE_PIXELS, MAX_LANE_SEGMENTS,
    MAX_LATENT_BITS, MAX_MODELS, MAX_NAME_LEN, SEED_WORDS, VERSION,
};

/// The first bytes of every archive, before the version byte.
pub const SIGNATURE: [u8; 3] = *b"VLZ";
/// The shortest archive: signature, version, the fixed header fields and the trailer.
const MIN_LEN: usize = SIGNATURE.len() + 1 + 8;
/// Bytes of the trailer: pixel CRC-32, then file CRC-32.
pub const TRAILER_LEN: usize = 8;
/// Most importance samples a bits-back lane may use.
pub const MAX_SAMPLES: u64 = 1 << 10;
/// The probability precision of every coder, in bits.
pub const PRECISION: u8 = 24;
/// Bytes of a model id in the model table.
pub const MODEL_ID_LEN: usize = 8;
/// The shortest entry: its flags alone.
const MIN_ENTRY_LEN: u64 = 1;
/// The shortest lane record: coder, rows, payload length.
const MIN_LANE_RECORD_LEN: u64 = 3;

/// What a writer supplies; [`write()`] checks it against the reader's limits.
pub struct NewArchive<'e> {
    pub models: Vec<ModelId>,
    pub latent_bits: u8,
    pub entries: &'e [Entry],
    /// Payloads: ANS words as little-endian bytes, or packed bits for stored lanes.
    pub lanes: Vec<Lane<Vec<u8>>>,
    pub pixel_crc: u32,
}

/// The entry table before deflate (format-spec.md §1.1): per entry, flags for what it
/// shares with the entry before, then only what differs.
fn entry_table(entries: &[Entry]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut prev: Option<&Entry> = None;
    for e in entries {
        let follows = prev
            .and_then(|p| successor(&p.name))
            .is_some_and(|s| s == e.name);
        let same_format = prev.is_some_and(|p| p.format == e.format);
        let same_size = prev.is_some_and(|p| (p.width, p.height) == (e.width, e.height));
        t.push(
            if follows { SAME_NAME_SUCCESSOR } else { 0 }
                | if same_format { SAME_FORMAT } else { 0 }
                | if same_size { SAME_SIZE } else { 0 },
        );
        if !same_format {
            let (code, depth) = e.format.code();
            t.extend_from_slice(&[code, depth]);
        }
        if !same_size {
            put_varint(&mut t, e.width.into());
            put_varint(&mut t, e.height.into());
        }
        if !follows {
            put_varint(&mut t, e.name.len() as u64);
            t.extend_from_slice(e.name.as_bytes());
        }
        prev = Some(e);
    }
    t
}

/// Serializes an archive. The result is parsed back before it is returned, so a writer
/// can never produce what a reader refuses: every limit is the reader's own.
pub fn write(a: &NewArchive) -> Result<Vec<u8>, ContainerError> {
    check_limit("image count", a.entries.len() as u64, MAX_IMAGES)?;
    check_limit("lane count", a.lanes.len() as u64, MAX_LANES)?;
    check_limit("model count", a.models.len() as u64, MAX_MODELS as u64)?;
    let raw = entry_table(a.entries);
    let names = deflate(&raw);
    let mut out = Vec::with_capacity(
        64 + names.len() + a.lanes.iter().map(|l| 24 + l.payload.len()).sum::<usize>(),
    );
    out.extend_from_slice(&SIGNATURE);
    out.push(VERSION);
    put_varint(&mut out, a.entries.len() as u64);
    out.push(a.models.len() as u8);
    for m in &a.models {
        out.extend_from_slice(&m.0);
    }
    out.push(a.latent_bits);
    put_varint(&mut out, raw.len() as u64);
    put_varint(&mut out, names.len() as u64);
    out.extend_from_slice(&names);
    put_varint(&mut out, a.lanes.len() as u64);
    for l in &a.lanes {
        out.push(l.coder.id());
        put_varint(&mut out, l.rows);
        put_varint(&mut out, l.payload.len() as u64);
        match l.coder {
            LaneCoder::BitsBack {
                model,
                samples,
                memory,
            } => {
                put_varint(&mut out, model.into());
                put_varint(&mut out, u64::from(samples) << 1 | u64::from(memory));
                out.push(l.seed_words_elided.min(255) as u8);
                put_u64(&mut out, l.state);
            }
            LaneCoder::Context { .. } | LaneCoder::PageMixing(_) => {
                put_u64(&mut out, l.state);
            }
            LaneCoder::Stored => {}
            LaneCoder::Repeat { back } => put_varint(&mut out, back),
            LaneCoder::Zstd => {}
        }
    }
    for l in &a.lanes {
        out.extend_from_slice(&l.payload);
    }
    put_u32(&mut out, a.pixel_crc);
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    super::parse(&out)?;
    Ok(out)
}

/// Parses an archive whose signature and version the caller has checked: the header,
/// the entry table, the lane records, then the payloads, each read by its own function
/// in the order `write` emits them.
pub(super) fn parse(bytes: &[u8]) -> Result<Archive<'_>, ContainerError> {
    let (body, pixel_crc) = check_crc(bytes, MIN_LEN)?;
    let mut r = Reader::new(body, SIGNATURE.len() + 1);
    let header = read_header(&mut r)?;
    let entry_table = read_entry_table(&mut r, header.image_count)?;
    let records = read_lane_records(&mut r, header.models.len())?;
    let payload_total: u64 = records.iter().map(|l| l.len).sum();
    if payload_total != r.left() as u64 {
        return Err(ContainerError::Invalid(format!(
            "lanes need {payload_total} payload bytes, the archive has {}",
            r.left()
        )));
    }
    let summary = check_lane_rows(&entry_table, header.image_count, &records)?;
    let lanes = records
        .into_iter()
        .map(|l| {
            Ok(Lane {
                coder: l.coder,
                rows: l.rows,
                seed_words_elided: l.seed_words_elided,
                state: l.state,
                payload: r.take(l.len as usize, "payload")?,
            })
        })
        .collect::<Result<_, ContainerError>>()?;
    Ok(Archive {
        models: header.models,
        image_count: header.image_count,
        latent_bits: header.latent_bits,
        precision: PRECISION,
        lanes,
        pixel_crc,
        size_range: summary.size_range,
        entry_table,
    })
}

/// The header's fields after the signature and version.
struct Header {
    image_count: u64,
    models: Vec<ModelId>,
    latent_bits: u8,
}

fn read_header(r: &mut Reader) -> Result<Header, ContainerError> {
    let image_count = r.varint("image count")?;
    check_limit("image count", image_count, MAX_IMAGES)?;
    if image_count == 0 {
        return Err(ContainerError::Invalid(
            "the archive holds no images".into(),
        ));
    }
    let model_count = r.u8("model count")? as usize;
    check_limit("model count", model_count as u64, MAX_MODELS as u64)?;
    let models = (0..model_count)
        .map(|_| {
            Ok(ModelId(
                r.take(MODEL_ID_LEN, "model table")?.try_into().expect("8"),
            ))
        })
        .collect::<Result<Vec<_>, ContainerError>>()?;
    let latent_bits = r.u8("latent bits")?;
    if latent_bits == 0 || latent_bits > MAX_LATENT_BITS {
        return Err(ContainerError::Invalid(format!(
            "latent bucket bits {latent_bits} outside 1..={MAX_LATENT_BITS}"
        )));
    }
    Ok(Header {
        image_count,
        models,
        latent_bits,
    })
}

/// The inflated entry table of `image_count` entries, its claimed length checked before
/// anything is reserved.
fn read_entry_table(r: &mut Reader, image_count: u64) -> Result<Vec<u8>, ContainerError> {
    let raw_len = r.varint("entry table length")?;
    let names_len = r.varint("deflated entry table length")?;
    if names_len > r.left() as u64 {
        return Err(ContainerError::Truncated("entry table"));
    }
    let max_entry = 1 + 2 + 10 + 10 + 2 + MAX_NAME_LEN as u64;
    if raw_len < MIN_ENTRY_LEN * image_count || raw_len > max_entry * image_count {
        return Err(ContainerError::Invalid(format!(
            "entry table of {raw_len} bytes for {image_count} images"
        )));
    }
    inflate_exact(r.take(names_len as usize, "entry table")?, raw_len as usize)
}

/// A lane record as read, before its payload is cut.
struct LaneRecord {
    coder: LaneCoder,
    rows: u64,
    len: u64,
    seed_words_elided: u32,
    state: u64,
}

/// The lane count and every lane record.
fn read_lane_records(
    r: &mut Reader,
    model_count: usize,
) -> Result<Vec<LaneRecord>, ContainerError> {
    let lane_count = r.varint("lane count")?;
    check_limit("lane count", lane_count, MAX_LANES)?;
    if lane_count == 0 || lane_count * MIN_LANE_RECORD_LEN > r.left() as u64 {
        return Err(ContainerError::Truncated("lane table"));
    }
    let mut records = Vec::with_capacity(lane_count as usize);
    for i in 0..lane_count {
        let record = read_lane_record(r, i, model_count)?;
        // Each payload lies within the bytes left, so their total cannot overflow.
        if record.len > r.left() as u64 {
            return Err(ContainerError::Truncated("lane payload"));
        }
        records.push(record);
    }
    Ok(records)
}

/// Lane record `i`: its coder's registry id, rows and payload length, then what the
/// registry row says the record carries.
fn read_lane_record(
    r: &mut Reader,
    i: u64,
    model_count: usize,
) -> Result<LaneRecord, ContainerError> {
    let bad = |what: String| ContainerError::Invalid(format!("lane {i} {what}"));
    let code = r.u8("lane coder")?;
    let rows = r.varint("lane rows")?;
    let len = r.varint("lane payload length")?;
    if rows == 0 {
        return Err(bad("has no rows".into()));
    }
    let row = registry::coder(code).ok_or(ContainerError::UnknownCoder { lane: i, id: code })?;
    let (coder, seed_words_elided, state) = match row.record {
        Record::Chain => {
            let model = r.varint("lane model")?;
            let mode = r.varint("lane mode")?;
            let (samples, memory) = (mode >> 1, mode & 1 == 1);
            let elided = u32::from(r.u8("lane seed")?);
            let state = r.u64("lane state")?;
            if model >= model_count as u64 {
                return Err(bad(format!("names model {model} of {model_count}")));
            }
            if samples == 0 || samples > MAX_SAMPLES {
                return Err(bad(format!("has {samples} samples, not 1..={MAX_SAMPLES}")));
            }
            if elided > SEED_WORDS {
                return Err(bad(format!("has {elided} elided seed words")));
            }
            let coder = LaneCoder::BitsBack {
                model: model as u16,
                samples: samples as u32,
                memory,
            };
            (coder, elided, state)
        }
        Record::Head => {
            let coder = LaneCoder::without_fields(code).expect("a row without fields");
            (coder, 0, r.u64("lane state")?)
        }
        Record::Bits => (LaneCoder::Stored, 0, 0),
        Record::Frame => (LaneCoder::Zstd, 0, 0),
        Record::Repeat => {
            let back = r.varint("lane images back")?;
            if back == 0 || back >= MAX_IMAGES {
                return Err(bad(format!("repeats the image {back} back")));
            }
            (LaneCoder::Repeat { back }, 0, 0)
        }
    };
    match row.record {
        Record::Chain | Record::Head => {
            if len % 4 != 0 {
                return Err(bad(format!("has {len} payload bytes, not whole words")));
            }
            if (seed_words_elided > 0 || len > 0) && state < 1 << 32 {
                return Err(bad(format!(
                    "head {state:#x} is below 2^32 while words follow"
                )));
            }
        }
        Record::Repeat if len > 0 => {
            return Err(bad(format!("repeats with {len} payload bytes")));
        }
        Record::Frame if len == 0 => {
            return Err(bad("has an empty Zstandard frame".into()));
        }
        Record::Repeat | Record::Bits | Record::Frame => {}
    }
    Ok(LaneRecord {
        coder,
        rows,
        len,
        seed_words_elided,
        state,
    })
}

/// Validates the entries and checks that the lanes cover exactly their rows, within the
/// per-lane limits, that each stored lane holds exactly its pixels' bits, and that each
/// repeat lane's images have the size of the images they repeat.
fn check_lane_rows(
    table: &[u8],
    image_count: u64,
    lanes: &[LaneRecord],
) -> Result<super::EntrySummary, ContainerError> {
    let mut lane = 0usize;
    let (mut lane_rows_left, mut lane_pixels, mut lane_segments) = (lanes[0].rows, 0u64, 0u64);
    let finish_lane = |lane: usize, pixels: u64, segments: u64| -> Result<(), ContainerError> {
        check_limit("lane pixels", pixels, MAX_LANE_PIXELS)?;
        check_limit("lane image segments", segments, MAX_LANE_SEGMENTS)?;
        let (coder, len) = (lanes[lane].coder, lanes[lane].len);
        if coder == LaneCoder::Stored && len != pixels.div_ceil(8) {
            return Err(ContainerError::Invalid(format!(
                "stored lane {lane} holds {len} bytes for {pixels} pixels"
            )));
        }
        Ok(())
    };
    // Every image's size, kept only when a lane repeats images: 8 bytes an image, at most
    // 128 MiB for the 2^24 images an archive may hold.
    let repeats = lanes
        .iter()
        .any(|l| matches!(l.coder, LaneCoder::Repeat { .. }));
    let mut sizes: Vec<(u32, u32)> = Vec::new();
    let summary = super::validate_entries(table, image_count, |width, height| {
        let image = sizes.len();
        if repeats {
            sizes.push((width, height));
        }
        let mut rows = u64::from(height);
        while rows > 0 {
            if lane_rows_left == 0 {
                finish_lane(lane, lane_pixels, lane_segments)?;
                lane += 1;
                let next = lanes.get(lane).ok_or_else(|| {
                    ContainerError::Invalid("the lanes hold fewer rows than the images".into())
                })?;
                (lane_rows_left, lane_pixels, lane_segments) = (next.rows, 0, 0);
            }
            if let LaneCoder::Repeat { back } = lanes[lane].coder {
                check_repeat(lane, image, back, &sizes)?;
            }
            let take = rows.min(lane_rows_left);
            lane_pixels += take * u64::from(width);
            lane_segments += 1;
            // Stop early on a lane far over its limit, before counting the rest.
            check_limit("lane pixels", lane_pixels, MAX_LANE_PIXELS)?;
            rows -= take;
            lane_rows_left -= take;
        }
        Ok(())
    })?;
    if lane_rows_left != 0 || lane + 1 != lanes.len() {
        return Err(ContainerError::Invalid(
            "the lanes hold more rows than the images".into(),
        ));
    }
    finish_lane(lane, lane_pixels, lane_segments)?;
    Ok(summary)
}

/// That repeat lane `lane`'s strip of image `image` repeats an earlier image of its size,
/// `back` places before it; `sizes` holds the images' sizes up to `image`.
fn check_repeat(
    lane: usize,
    image: usize,
    back: u64,
    sizes: &[(u32, u32)],
) -> Result<(), ContainerError> {
    let source = (image as u64).checked_sub(back);
    match source.map(|s| sizes[s as usize]) {
        Some(size) if size == sizes[image] => Ok(()),
        Some(size) => Err(ContainerError::Invalid(format!(
            "lane {lane} repeats image {} ({}×{}) as image {image} ({}×{})",
            image as u64 - back,
            size.0,
            size.1,
            sizes[image].0,
            sizes[image].1
        ))),
        None => Err(ContainerError::Invalid(format!(
            "lane {lane} repeats image {image} from {back} images back"
        ))),
    }
}
