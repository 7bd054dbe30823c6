//! Entry tables: names, formats and sizes, walked one entry at a time without allocating
//! per entry.
#![forbid(unsafe_code)]

use super::bytes::Reader;
use super::{
    check_limit, ContainerError, Entry, ImageFormat, MAX_IMAGE_PIXELS, MAX_NAME_LEN, MAX_SIDE,
};

/// Entry flags (format-spec.md §1.1): what an entry shares with the one before, and so
/// does not store. The other bits are reserved and must be 0.
pub const SAME_NAME_SUCCESSOR: u8 = 1;
pub const SAME_FORMAT: u8 = 2;
pub const SAME_SIZE: u8 = 4;
const KNOWN_FLAGS: u8 = SAME_NAME_SUCCESSOR | SAME_FORMAT | SAME_SIZE;

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
    index: u64,
    name: Vec<u8>,
    previous: Vec<u8>,
    format: ImageFormat,
    width: u32,
    height: u32,
}

impl<'a> EntryWalk<'a> {
    pub fn new(table: &'a [u8]) -> Self {
        EntryWalk {
            table: Reader::new(table, 0),
            index: 0,
            name: Vec::new(),
            previous: Vec::new(),
            format: ImageFormat::Pbm,
            width: 0,
            height: 0,
        }
    }

    fn invalid(&self, what: String) -> ContainerError {
        ContainerError::Invalid(format!("entry {} {what}", self.index))
    }

    /// Reads and validates the next entry; returns its (width, height).
    pub fn next_checked(&mut self) -> Result<(u32, u32), ContainerError> {
        let t = &mut self.table;
        let flags = t.u8("entry flags")?;
        // The first entry has no entry before it to share anything with.
        if flags & !KNOWN_FLAGS != 0 || (self.index == 0 && flags != 0) {
            return Err(self.invalid(format!("has the invalid flags {flags:#04x}")));
        }
        let successor = flags & SAME_NAME_SUCCESSOR != 0;
        let (code, depth) = if flags & SAME_FORMAT != 0 {
            self.format.code()
        } else {
            (t.u8("entry format")?, t.u8("entry bit depth")?)
        };
        let (width, height) = if flags & SAME_SIZE != 0 {
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
            let len = self.table.varint("entry name length")?;
            check_limit("entry name length", len, MAX_NAME_LEN as u64)?;
            let bytes = self.table.take(len as usize, "entry name")?;
            self.name.clear();
            self.name.extend_from_slice(bytes);
        }
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
        (self.format, self.width, self.height) = (format, width, height);
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
        })
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
