//! Zstandard lanes (format-spec.md §3.14): a lane's rows, each padded to whole bytes, as
//! one Zstandard frame. A safety net beside stored bits: page mixing's contexts and glyph
//! matching reach a few dozen pixels, so a page that is one small tile over and over (a
//! sheet of labels, a dot screen, a ruled form) cost up to eight times what `zstd -19`
//! makes of the same file; an LZ coder's matches reach across the whole lane.
#![forbid(unsafe_code)]

use super::lane::{decode_each, CodecError, CodedLane, LaneCodec, LaneToDecode, Strip};

/// The lane coder.
pub struct Frame;

/// zstd's strongest level without `--ultra`. Its window, 8 MiB, holds a whole lane of
/// rows 8 pixels wide or wider (at most 2^24 pixels, 2 MiB and row padding); narrower
/// rows take up to a byte a pixel.
pub const STRONGEST: i32 = 19;

/// What decoding a frame holds besides its output: zstd's decompression context (about
/// 160 KiB in zstd 1.5), rounded up.
pub const CONTEXT_BYTES: usize = 256 << 10;

/// A lane's rows, each packed MSB first and padded with 0 bits to a whole byte.
fn padded_rows(strips: &[Strip]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strips.iter().map(|s| s.width.div_ceil(8) * s.rows).sum());
    for strip in strips {
        for row in strip.pixels.chunks(strip.width) {
            out.extend(row.chunks(8).map(|byte| {
                byte.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, &p)| acc | p << (7 - i))
            }));
        }
    }
    out
}

impl Frame {
    /// A frame of the lane at zstd's compression `level`.
    pub fn at_level(strips: &[Strip], level: i32) -> Result<CodedLane, CodecError> {
        let payload = zstd::bulk::compress(&padded_rows(strips), level)
            .map_err(|e| CodecError::Coder(format!("zstd: {e}")))?;
        Ok(CodedLane {
            seed_words_elided: 0,
            state: 0,
            payload,
        })
    }
}

impl LaneCodec for Frame {
    fn encode(&self, lanes: &[&[Strip]]) -> Result<Vec<CodedLane>, CodecError> {
        lanes
            .iter()
            .map(|strips| Frame::at_level(strips, STRONGEST))
            .collect()
    }

    fn decode(
        &self,
        lanes: &[LaneToDecode],
        first_index: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, CodecError> {
        decode_each(lanes, first_index, decode_frame)
    }
}

/// One Zstandard lane's strips, lane number `index`.
fn decode_frame(lane: &LaneToDecode, index: usize) -> Result<Vec<Vec<u8>>, CodecError> {
    let bad = |reason: String| CodecError::BadLane {
        lane: index,
        reason,
    };
    // One frame, the whole payload: zstd would also take several, or skippable
    // frames, which the format does not.
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(lane.payload).map_err(|code| {
        bad(format!(
            "zstd frame: {}",
            zstd::zstd_safe::get_error_name(code)
        ))
    })?;
    if frame_len != lane.payload.len() {
        return Err(bad(format!(
            "zstd frame of {frame_len} bytes in a payload of {}",
            lane.payload.len()
        )));
    }
    let want: usize = lane.shapes.iter().map(|&(w, r)| w.div_ceil(8) * r).sum();
    // The output is bounded by what the lane's rows take, whatever the frame
    // claims: one byte more shows a frame that decodes to too much.
    let bytes = zstd::bulk::decompress(lane.payload, want + 1)
        .map_err(|e| bad(format!("zstd frame: {e}")))?;
    if bytes.len() != want {
        return Err(bad(format!(
            "zstd frame holds {} bytes for rows of {want}",
            bytes.len()
        )));
    }
    unpack_rows(&bytes, &lane.shapes)
        .ok_or_else(|| bad("padding bits after a row's last pixel are not 0".into()))
}

/// The strips of `shapes` from rows packed as [`padded_rows`] packs them; `None` where a
/// padding bit is 1, so that every lane has one decoding.
fn unpack_rows(bytes: &[u8], shapes: &[(usize, usize)]) -> Option<Vec<Vec<u8>>> {
    let mut rows = bytes.iter();
    shapes
        .iter()
        .map(|&(width, count)| {
            let mut pixels = Vec::with_capacity(width * count);
            for _ in 0..count {
                for x in (0..width).step_by(8) {
                    let byte = *rows.next()?;
                    let n = (width - x).min(8);
                    if n < 8 && byte << n != 0 {
                        return None;
                    }
                    pixels.extend((0..n).map(|i| (byte >> (7 - i)) & 1));
                }
            }
            Some(pixels)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strips of odd widths round-trip; a frame of the wrong length (short, or far too
    /// long), or with a padding bit set, is refused.
    #[test]
    fn padded_rows_round_trip_and_bad_frames_are_refused() {
        let a: Vec<u8> = (0..13 * 5).map(|i| u8::from(i % 3 == 0)).collect();
        let b: Vec<u8> = (0..8 * 2).map(|i| u8::from(i % 5 == 0)).collect();
        let strips = [
            Strip {
                width: 13,
                rows: 5,
                pixels: &a,
            },
            Strip {
                width: 8,
                rows: 2,
                pixels: &b,
            },
        ];
        let coded = Frame.encode(&[&strips]).unwrap().remove(0);
        let lane = |payload| LaneToDecode {
            seed_words_elided: 0,
            state: 0,
            payload,
            shapes: vec![(13, 5), (8, 2)],
        };
        let decoded = Frame.decode(&[lane(&coded.payload)], 0).unwrap();
        assert_eq!(decoded, [vec![a.clone(), b.clone()]]);
        let short = zstd::bulk::compress(&padded_rows(&strips)[1..], 3).unwrap();
        let err = Frame.decode(&[lane(&short)], 4).unwrap_err().to_string();
        assert!(
            err.contains("lane 4") && err.contains("holds 11 bytes for rows of 12"),
            "{err}"
        );
        let mut rows = padded_rows(&strips);
        rows[1] |= 1;
        let padded = zstd::bulk::compress(&rows, 3).unwrap();
        let err = Frame.decode(&[lane(&padded)], 0).unwrap_err().to_string();
        assert!(err.contains("padding bits"), "{err}");
        let err = Frame
            .decode(&[lane(b"not a frame")], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("zstd frame"), "{err}");
        // A frame of 16 MiB of zeros, a few hundred bytes, is refused without decoding
        // more than the lane's rows.
        let bomb = zstd::bulk::compress(&vec![0u8; 1 << 24], 19).unwrap();
        assert!(bomb.len() < 1024);
        let err = Frame.decode(&[lane(&bomb)], 0).unwrap_err().to_string();
        assert!(err.contains("zstd frame"), "{err}");
        // Two frames, each half of the rows, are not one.
        let rows = padded_rows(&strips);
        let two = [
            zstd::bulk::compress(&rows[..6], 3).unwrap(),
            zstd::bulk::compress(&rows[6..], 3).unwrap(),
        ]
        .concat();
        let err = Frame.decode(&[lane(&two)], 0).unwrap_err().to_string();
        assert!(err.contains("in a payload of"), "{err}");
    }
}
