//! Entry tables: names, formats and sizes, walked one entry at a time without allocating
//! per entry.
#![forbid(unsafe_code)]

use super::bytes::Reader;
use super::{
    check_limit, v2, ContainerError, Entry, ImageFormat, MAX_IMAGE_PIXELS, MAX_NAME_LEN, MAX_SIDE,
    MAX_SKEW,
};

/// Version 1 entry name codes: the name is spelled out, or is the successor of the
/// previous name.
pub const NAME_EXPLICIT: u8 = 0;
pub const NAME_SUCCESSOR: u8 = 1;

/// Version 2 entry flags (format-spec.md §1.1): what an entry shares with the one before,
/// and so does not store.
pub const SAME_NAME_SUCCESSOR: u8 = 1;
pub const SAME_FORMAT: u8 = 2;
pub const SAME_SIZE: u8 = 4;
/// From version 10: the image is stored straightened, and its slope ends the entry.
pub const STRAIGHTENED: u8 = 8;

/// Version 1 archives hold 28×28 images only.
const V1_SIDE: u32 = 28;

/// Whether `name` is safe to create under an output folder: relative, `/`-separated,
/// no empty, `.` or `..` components, no backslashes, colons or control characters.
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

/// Increments the last run of ASCII digits of `name` in place, with carry, keeping its
/// width unless the run overflows. `false` if the name has no digits.
fn increment(name: &mut Vec<u8>) -> bool {
    let Some(last) = name.iter().rposition(u8::is_ascii_digit) else {
        return false;
    };
    let start = name[..=last]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let mut i = last + 1;
    loop {
        if i == start {
            name.insert(start, b'1');
            return true;
        }
        i -= 1;
        if name[i] == b'9' {
            name[i] = b'0';
        } else {
            name[i] += 1;
            return true;
        }
    }
}

/// The name that follows `name` in a numbered sequence: its last run of ASCII digits
/// incremented with carry, keeping its width unless the run overflows ("a09.pbm" →
/// "a10.pbm", "99" → "100"). `None` if the name has no digits.
pub fn successor(name: &str) -> Option<String> {
    let mut b = name.as_bytes().to_vec();
    increment(&mut b).then(|| String::from_utf8(b).expect("digits keep UTF-8"))
}

/// A cursor over an inflated entry table (format-spec.md §1.1).
pub(crate) struct EntryWalk<'a> {
    table: Reader<'a>,
    version: u16,
    index: u64,
    name: Vec<u8>,
    previous: Vec<u8>,
    format: ImageFormat,
    width: u32,
    height: u32,
    skew: i32,
}

impl<'a> EntryWalk<'a> {
    pub fn new(table: &'a [u8], version: u16) -> Self {
        EntryWalk {
            table: Reader::new(table, 0),
            version,
            index: 0,
            name: Vec::new(),
            previous: Vec::new(),
            format: ImageFormat::Pbm,
            width: 0,
            height: 0,
            skew: 0,
        }
    }

    fn invalid(&self, what: String) -> ContainerError {
        ContainerError::Invalid(format!("entry {} {what}", self.index))
    }

    /// Reads and validates the next entry; returns its (width, height).
    pub fn next_checked(&mut self) -> Result<(u32, u32), ContainerError> {
        let v1 = self.version == super::v1::VERSION;
        let t = &mut self.table;
        let flags = t.u8("entry flags")?;
        let successor = if v1 {
            match flags {
                NAME_EXPLICIT => false,
                NAME_SUCCESSOR => true,
                _ => return Err(self.invalid(format!("has the invalid name code {flags}"))),
            }
        } else {
            let known = SAME_NAME_SUCCESSOR
                | SAME_FORMAT
                | SAME_SIZE
                | if self.version >= v2::VERSION_10 {
                    STRAIGHTENED
                } else {
                    0
                };
            if flags & !known != 0 || (self.index == 0 && flags & !STRAIGHTENED != 0) {
                return Err(self.invalid(format!("has the invalid flags {flags:#04x}")));
            }
            flags & SAME_NAME_SUCCESSOR != 0
        };
        let t = &mut self.table;
        let (code, depth) = if !v1 && flags & SAME_FORMAT != 0 {
            self.format.code()
        } else {
            (t.u8("entry format")?, t.u8("entry bit depth")?)
        };
        let (width, height) = if v1 {
            (V1_SIDE, V1_SIDE)
        } else if flags & SAME_SIZE != 0 {
            (self.width, self.height)
        } else {
            (
                t.varint("entry width")?.min(u64::from(u32::MAX)) as u32,
                t.varint("entry height")?.min(u64::from(u32::MAX)) as u32,
            )
        };
        std::mem::swap(&mut self.previous, &mut self.name);
        if successor {
            if self.index == 0 {
                return Err(self.invalid("follows no name".into()));
            }
            self.name.clear();
            self.name.extend_from_slice(&self.previous);
            if !increment(&mut self.name) {
                return Err(self.invalid("follows a name without digits".into()));
            }
        } else {
            let len = if v1 {
                u64::from(self.table.u16("entry name length")?)
            } else {
                self.table.varint("entry name length")?
            };
            check_limit("entry name length", len, MAX_NAME_LEN as u64)?;
            let bytes = self.table.take(len as usize, "entry name")?;
            self.name.clear();
            self.name.extend_from_slice(bytes);
        }
        let skew = if !v1 && flags & STRAIGHTENED != 0 {
            let skew = self.table.signed("entry slope")?;
            if skew == 0 || skew.unsigned_abs() > MAX_SKEW as u64 {
                return Err(self.invalid(format!(
                    "is straightened at the slope {skew}; it must be 1..={MAX_SKEW} either way"
                )));
            }
            skew as i32
        } else {
            0
        };
        let format = ImageFormat::from_code(code, depth)
            .ok_or_else(|| self.invalid(format!("has unknown format {code}/{depth}")))?;
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(self.invalid(format!("is {width}×{height}; sides must be 1..={MAX_SIDE}")));
        }
        check_limit(
            "image pixels",
            u64::from(width) * u64::from(height),
            MAX_IMAGE_PIXELS,
        )?;
        // A successor is the previous (checked) name with ASCII digits changed or a '1'
        // inserted before a digit: still UTF-8 and still safe, so only order is checked.
        if !successor {
            let name = std::str::from_utf8(&self.name)
                .map_err(|_| self.invalid("has a name that is not UTF-8".into()))?;
            if !is_safe_name(name) {
                return Err(self.invalid(format!("name {name:?} is not a safe relative path")));
            }
        }
        if self.index > 0 && self.name <= self.previous {
            let name = String::from_utf8_lossy(&self.name).into_owned();
            return Err(self.invalid(format!(
                "name {name:?} does not sort after the previous name (names must strictly increase)"
            )));
        }
        (self.format, self.width, self.height, self.skew) = (format, width, height, skew);
        self.index += 1;
        Ok((width, height))
    }

    /// Reads the next entry (of a table [`Self::next_checked`] already accepted).
    pub fn next_entry(&mut self) -> Result<Entry, ContainerError> {
        self.next_checked()?;
        Ok(Entry {
            name: String::from_utf8(self.name.clone()).expect("checked UTF-8"),
            format: self.format,
            width: self.width,
            height: self.height,
            skew: self.skew,
        })
    }

    /// Whether the entry last read is stored straightened.
    pub fn straightened(&self) -> bool {
        self.skew != 0
    }

    pub fn finished(&self) -> bool {
        self.table.left() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_count_in_decimal() {
        assert_eq!(successor("00009.pbm").as_deref(), Some("00010.pbm"));
        assert_eq!(successor("a/img99.png").as_deref(), Some("a/img100.png"));
        assert_eq!(successor("7").as_deref(), Some("8"));
        assert_eq!(successor("x1y2.pbm").as_deref(), Some("x1y3.pbm"));
        assert_eq!(successor("none.pbm"), None);
    }

    #[test]
    fn unsafe_names_are_recognized() {
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
        }
        assert!(is_safe_name("digits/seven.pbm"));
    }
}
