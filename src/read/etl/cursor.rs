//! Bounds-checked little-endian reads from byte slices. Every read names what
//! it was reading, so a short or bad input becomes an error that says where
//! and what, never a panic.

use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::error::{EtlError, Result};
use super::guid::Guid;

/// Reads a fixed-layout on-disk structure at `at` in `data`.
/// Offsets in the error are relative to `data`; callers rebase them.
pub fn read_struct<'a, T>(data: &'a [u8], at: usize, what: &'static str) -> Result<&'a T>
where
    T: FromBytes + KnownLayout + Immutable + Unaligned,
{
    let need = std::mem::size_of::<T>();
    let tail = data.get(at..).unwrap_or(&[]);
    match T::ref_from_prefix(tail) {
        Ok((value, _)) => Ok(value),
        Err(_) => Err(EtlError::Truncated {
            what,
            offset: at as u64,
            need: need as u64,
            have: tail.len() as u64,
        }),
    }
}

/// A forward reader over a slice. `base` is added to positions in errors so
/// they name file (or decompressed-buffer) offsets.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Cursor { data, pos: 0, base }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub fn truncated(&self, what: &'static str, need: usize) -> EtlError {
        EtlError::Truncated {
            what,
            offset: self.offset(),
            need: need as u64,
            have: self.remaining() as u64,
        }
    }

    // Inlined: a record's header and payload are a few dozen of these
    // small reads each.
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }

    #[inline]
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    pub fn guid(&mut self, what: &'static str) -> Result<Guid> {
        Ok(Guid::from_le_bytes(self.array(what)?))
    }

    /// A pointer-sized unsigned value (4 or 8 bytes).
    pub fn pointer(&mut self, size: u8, what: &'static str) -> Result<u64> {
        match size {
            4 => Ok(u64::from(self.u32(what)?)),
            _ => self.u64(what),
        }
    }

    /// A binary SID (revision, count, authority, sub-authorities) as
    /// "S-1-5-...".
    pub fn sid(&mut self, what: &'static str) -> Result<String> {
        let (sid, len) =
            super::extended::format_sid(self.rest()).ok_or_else(|| self.truncated(what, 8))?;
        self.skip(len, what)?;
        Ok(sid)
    }

    /// A NUL-terminated 8-bit string; the NUL is consumed, not returned.
    pub fn cstr(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.rest();
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(self.truncated(what, rest.len() + 1)),
        }
    }

    /// A NUL-terminated UTF-16LE string, decoded lossily.
    pub fn utf16z(&mut self, what: &'static str) -> Result<String> {
        let rest = self.rest();
        match rest.chunks_exact(2).position(|unit| unit == [0, 0]) {
            Some(n) => {
                self.pos += 2 * n + 2;
                Ok(utf16_lossy(&rest[..2 * n]))
            }
            None => Err(self.truncated(what, rest.len() + 2)),
        }
    }
}

pub use crate::read::text::{ansi_lossy, utf16_lossy};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_what_and_where_on_short_input() {
        let mut c = Cursor::new(&[1, 0, 2], 100);
        assert_eq!(c.u16("a").unwrap(), 1);
        let e = c.u32("thread id").unwrap_err();
        assert_eq!(
            e.to_string(),
            "truncated thread id at byte offset 102: needs 4 bytes, 1 left"
        );
    }

    #[test]
    fn strings_stop_at_nul_and_fail_without_one() {
        let data = b"ab\0c\0\0\0x";
        let mut c = Cursor::new(data, 0);
        assert_eq!(c.cstr("s").unwrap(), b"ab");
        assert_eq!(c.utf16z("w").unwrap(), "c");
        assert!(c.utf16z("w").is_err());
        assert_eq!(c.position(), 7);
    }
}
