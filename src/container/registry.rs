//! The coder registry (format-spec.md §1.2): every lane coder a format 1 archive may name,
//! one row each. A lane record starts with its coder's id; the row says what the record
//! carries after its rows and payload length. Adding a coder adds a row here (and its
//! module in `codec`); the container's version does not change, and a build that meets an
//! id it has no row for says so instead of guessing.
#![forbid(unsafe_code)]

use super::{Edition, LaneCoder};

/// What a lane record carries after its coder id, rows and payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Model index, mode (samples · 2 + memory), elided seed words and the ANS head.
    Chain,
    /// The ANS head alone.
    Head,
    /// Nothing: the payload is the rows' packed bits.
    Bits,
    /// How many images back the repeated image lies; no payload.
    Repeat,
    /// Nothing: the payload is a Zstandard frame.
    Frame,
}

/// One row of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoderInfo {
    /// The byte that names the coder in a lane record.
    pub id: u8,
    /// The coder's name, as `info` and `list` print it.
    pub name: &'static str,
    /// Its section of format-spec.md.
    pub spec: &'static str,
    pub record: Record,
    /// The first format release that has the coder, as (major, minor).
    pub since: (u8, u8),
}

pub const BITS_BACK: u8 = 0;
pub const CONTEXT_WIDE: u8 = 1;
pub const CONTEXT_NARROW: u8 = 2;
pub const PAGE_MIXING: u8 = 3;
pub const STORED: u8 = 4;
pub const PAGE_MIXING_SECOND: u8 = 5;
pub const PAGE_MIXING_THIRD: u8 = 6;
pub const PAGE_MIXING_FOURTH: u8 = 7;
pub const REPEAT: u8 = 8;
pub const ZSTD: u8 = 9;

/// Every coder, by id: a row's place is its id.
pub const REGISTRY: [CoderInfo; 10] = [
    CoderInfo {
        id: BITS_BACK,
        name: "bits-back chain",
        spec: "§2, §3.1–3.4, §3.7–3.8",
        record: Record::Chain,
        since: (1, 0),
    },
    CoderInfo {
        id: CONTEXT_WIDE,
        name: "context model, 16-pixel template",
        spec: "§3.6",
        record: Record::Head,
        since: (1, 0),
    },
    CoderInfo {
        id: CONTEXT_NARROW,
        name: "context model, 10-pixel template",
        spec: "§3.6",
        record: Record::Head,
        since: (1, 0),
    },
    CoderInfo {
        id: PAGE_MIXING,
        name: "page mixing",
        spec: "§3.9",
        record: Record::Head,
        since: (1, 0),
    },
    CoderInfo {
        id: STORED,
        name: "stored",
        spec: "§3.5",
        record: Record::Bits,
        since: (1, 0),
    },
    CoderInfo {
        id: PAGE_MIXING_SECOND,
        name: "page mixing, second edition",
        spec: "§3.10",
        record: Record::Head,
        since: (1, 1),
    },
    CoderInfo {
        id: PAGE_MIXING_THIRD,
        name: "page mixing, third edition",
        spec: "§3.11",
        record: Record::Head,
        since: (1, 2),
    },
    CoderInfo {
        id: PAGE_MIXING_FOURTH,
        name: "page mixing, fourth edition",
        spec: "§3.12",
        record: Record::Head,
        since: (1, 3),
    },
    CoderInfo {
        id: REPEAT,
        name: "repeat",
        spec: "§3.13",
        record: Record::Repeat,
        since: (1, 4),
    },
    CoderInfo {
        id: ZSTD,
        name: "zstd",
        spec: "§3.14",
        record: Record::Frame,
        since: (1, 4),
    },
];

// A row's place is its id.
const _: () = {
    let mut i = 0;
    while i < REGISTRY.len() {
        assert!(REGISTRY[i].id as usize == i);
        i += 1;
    }
};

/// The row of coder `id`, if this build knows it.
pub fn coder(id: u8) -> Option<&'static CoderInfo> {
    REGISTRY.get(usize::from(id))
}

impl LaneCoder {
    /// The id of this coder's registry row.
    pub fn id(self) -> u8 {
        match self {
            LaneCoder::BitsBack { .. } => BITS_BACK,
            LaneCoder::Context { template: 0 } => CONTEXT_WIDE,
            LaneCoder::Context { .. } => CONTEXT_NARROW,
            LaneCoder::PageMixing(Edition::First) => PAGE_MIXING,
            LaneCoder::PageMixing(Edition::Second) => PAGE_MIXING_SECOND,
            LaneCoder::PageMixing(Edition::Third) => PAGE_MIXING_THIRD,
            LaneCoder::PageMixing(Edition::Fourth) => PAGE_MIXING_FOURTH,
            LaneCoder::Stored => STORED,
            LaneCoder::Repeat { .. } => REPEAT,
            LaneCoder::Zstd => ZSTD,
        }
    }

    /// This coder's registry row.
    pub fn info(self) -> &'static CoderInfo {
        &REGISTRY[usize::from(self.id())]
    }

    /// The coder of a record with id `id` whose fields carry nothing more (every row but
    /// [`Record::Chain`]'s and [`Record::Repeat`]'s); `None` for those or an unknown id.
    pub fn without_fields(id: u8) -> Option<LaneCoder> {
        match id {
            CONTEXT_WIDE => Some(LaneCoder::Context { template: 0 }),
            CONTEXT_NARROW => Some(LaneCoder::Context { template: 1 }),
            PAGE_MIXING => Some(LaneCoder::PageMixing(Edition::First)),
            PAGE_MIXING_SECOND => Some(LaneCoder::PageMixing(Edition::Second)),
            PAGE_MIXING_THIRD => Some(LaneCoder::PageMixing(Edition::Third)),
            PAGE_MIXING_FOURTH => Some(LaneCoder::PageMixing(Edition::Fourth)),
            STORED => Some(LaneCoder::Stored),
            ZSTD => Some(LaneCoder::Zstd),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's coder comes back from its id, and names that row.
    #[test]
    fn every_row_round_trips_through_its_id() {
        for row in &REGISTRY {
            let coder = match row.record {
                Record::Chain => LaneCoder::BitsBack {
                    model: 0,
                    samples: 1,
                    memory: false,
                },
                Record::Repeat => LaneCoder::Repeat { back: 1 },
                _ => LaneCoder::without_fields(row.id).expect("a row without fields"),
            };
            assert_eq!(coder.id(), row.id);
            assert_eq!(coder.info(), row);
        }
        assert!(coder(REGISTRY.len() as u8).is_none());
    }
}
