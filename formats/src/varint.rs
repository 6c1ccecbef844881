//! LEB128 unsigned varints and zig-zag mapping of signed integers.
//!
//! Every variable-length integer in the format is LEB128: seven bits per byte, least significant group
//! first, the high bit set on every byte but the last. A `u64` takes at most ten bytes.

use crate::error::PayloadError;

/// Appends `v` as LEB128.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Maps a signed integer to an unsigned one so that small magnitudes stay small:
/// 0 → 0, −1 → 1, 1 → 2, −2 → 3, …
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over a payload that reads varints and bytes without ever reading past its end.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads one LEB128 varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, PayloadError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(PayloadError::Truncated);
            };
            self.pos += 1;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(PayloadError::VarintOverflow);
            }
            v |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(PayloadError::VarintOverflow);
            }
        }
    }

    /// Reads a varint that must fit in `usize` and be at most `max`.
    pub fn length(&mut self, max: usize) -> Result<usize, PayloadError> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err(PayloadError::LengthOutOfRange {
                value: v,
                max: max as u64,
            });
        }
        Ok(v as usize)
    }

    /// Reads one byte.
    pub fn byte(&mut self) -> Result<u8, PayloadError> {
        let b = *self.buf.get(self.pos).ok_or(PayloadError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        if n > self.remaining() {
            return Err(PayloadError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert!(out.len() <= 10, "a u64 takes at most ten LEB128 bytes");
            let mut c = Cursor::new(&out);
            assert_eq!(c.varint().unwrap(), v);
            assert_eq!(c.remaining(), 0);
        }
    }

    #[test]
    fn zigzag_keeps_small_magnitudes_small() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        for v in [0, 1, -1, 12345, -12345, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn rejects_overlong_and_truncated_varints() {
        // Eleven continuation bytes can never be a u64.
        let overlong = [0xffu8; 11];
        assert_eq!(
            Cursor::new(&overlong).varint(),
            Err(PayloadError::VarintOverflow)
        );
        // The tenth byte may only carry the single top bit.
        let mut too_big = vec![0xffu8; 9];
        too_big.push(0x02);
        assert_eq!(
            Cursor::new(&too_big).varint(),
            Err(PayloadError::VarintOverflow)
        );
        assert_eq!(
            Cursor::new(&[0x80, 0x80]).varint(),
            Err(PayloadError::Truncated)
        );
    }
}
