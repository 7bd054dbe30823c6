//! A bounds-checked little-endian reader and LEB128 varints.
#![forbid(unsafe_code)]

use super::ContainerError;
use byteorder::{ByteOrder, LittleEndian, WriteBytesExt};

/// Reads fields off a byte slice; every read fails cleanly past the end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], at: usize) -> Self {
        Reader { bytes, at }
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ContainerError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(ContainerError::Truncated(what))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, ContainerError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, ContainerError> {
        Ok(LittleEndian::read_u64(self.take(8, what)?))
    }

    /// An unsigned LEB128 varint in its shortest form (at most 10 bytes, no redundant
    /// trailing zero group), so that every value has exactly one encoding.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, ContainerError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.u8(what)?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(ContainerError::Invalid(format!("{what} overflows 64 bits")));
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(ContainerError::Invalid(format!(
                        "{what} is not in its shortest form"
                    )));
                }
                return Ok(value);
            }
        }
        Err(ContainerError::Invalid(format!("{what} overflows 64 bits")))
    }

    pub fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// Appends `v`, little-endian.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.write_u32::<LittleEndian>(v).expect("Vec write");
}

/// Appends `v`, little-endian.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.write_u64::<LittleEndian>(v).expect("Vec write");
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_have_one_form() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader::new(&b, 0);
            assert_eq!(r.varint("v").unwrap(), v);
            assert_eq!(r.left(), 0);
        }
        assert!(Reader::new(&[0x80, 0x00], 0).varint("v").is_err());
        assert!(Reader::new(&[0xff; 10], 0).varint("v").is_err());
        assert!(Reader::new(&[0x80], 0).varint("v").is_err());
    }
}
