//! Block framing: every block after the header is self-delimiting and checksummed.
//!
//! ```text
//! offset size field
//!  0      4   sync marker: B7 42 4C 4B ("\xb7BLK"), lets a reader find the next block after damage
//!  4      4   payload length in bytes (u32 LE), at most MAX_BLOCK_LEN
//!  8      4   CRC32C (Castagnoli) of bytes 4..8, the kind byte and the payload, in that order (u32 LE)
//! 12      1   block kind
//! 13      …   payload
//! ```
//!
//! Readers skip blocks of kinds they do not know (a later minor version may add some); the checksum
//! still protects them.

use std::fmt;

/// The four bytes every block starts with.
pub const SYNC: [u8; 4] = *b"\xb7BLK";

/// The bytes of framing before each payload.
pub const FRAME_LEN: usize = 13;

/// The largest payload a block may have; anything longer is treated as damage.
pub const MAX_BLOCK_LEN: usize = 16 << 20;

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockKind {
    /// Columns of samples ([`crate::samples`]).
    Samples,
    /// Request names, interned as they first appear.
    Names,
    /// Failure messages, interned as they first appear.
    Messages,
    /// Per-interval counters from the engine ([`crate::IntervalStats`]).
    Intervals,
    /// The end of the log ([`crate::EndOfLog`]); nothing follows it.
    End,
    /// Extra per-sample columns for the samples block just before it (v1.1: the TLS handshake time;
    /// see [`crate::samples`]). Readers of v1.0 skip it and still read every sample.
    SampleExtras,
    /// The task table (v1.2): what each task id in the samples' `task` column stands for (see
    /// [`crate::tasks`]).
    TaskTable,
    /// Changes of the load made while the run went (v1.2: steering from the live dashboard;
    /// [`crate::LoadChange`]). Readers of v1.1 skip it.
    LoadChanges,
    /// A kind this build does not know; skipped.
    Unknown(u8),
}

impl BlockKind {
    /// The stored byte.
    pub fn code(self) -> u8 {
        match self {
            BlockKind::Samples => 1,
            BlockKind::Names => 2,
            BlockKind::Messages => 3,
            BlockKind::Intervals => 4,
            BlockKind::End => 5,
            BlockKind::SampleExtras => 6,
            BlockKind::TaskTable => 8,
            BlockKind::LoadChanges => 7,
            BlockKind::Unknown(c) => c,
        }
    }

    /// The kind for a stored byte.
    pub fn from_code(code: u8) -> BlockKind {
        match code {
            1 => BlockKind::Samples,
            2 => BlockKind::Names,
            3 => BlockKind::Messages,
            4 => BlockKind::Intervals,
            5 => BlockKind::End,
            6 => BlockKind::SampleExtras,
            8 => BlockKind::TaskTable,
            7 => BlockKind::LoadChanges,
            c => BlockKind::Unknown(c),
        }
    }
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockKind::Samples => f.write_str("samples"),
            BlockKind::Names => f.write_str("name table"),
            BlockKind::Messages => f.write_str("message table"),
            BlockKind::Intervals => f.write_str("interval stats"),
            BlockKind::End => f.write_str("end-of-file"),
            BlockKind::SampleExtras => f.write_str("sample extras"),
            BlockKind::TaskTable => f.write_str("task table"),
            BlockKind::LoadChanges => f.write_str("load changes"),
            BlockKind::Unknown(c) => write!(f, "unknown (kind {c})"),
        }
    }
}

/// Starts a block in `out` (which must be empty): the frame with placeholders for length and checksum.
pub(crate) fn begin(out: &mut Vec<u8>, kind: BlockKind) {
    debug_assert!(out.is_empty());
    out.extend_from_slice(&SYNC);
    out.extend_from_slice(&[0; 8]);
    out.push(kind.code());
}

/// Fills in the length and checksum of the block in `out` once its payload has been appended.
pub(crate) fn finish(out: &mut [u8]) {
    let len = (out.len() - FRAME_LEN) as u32;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&out[4..8], out[12], &out[FRAME_LEN..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn checksum(len: &[u8], kind: u8, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(len);
    let crc = crc32c::crc32c_append(crc, &[kind]);
    crc32c::crc32c_append(crc, payload)
}

/// What [`parse`] found at an offset.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A complete block whose checksum matches.
    Block {
        kind: BlockKind,
        payload: &'a [u8],
        len: usize,
    },
    /// Not a block: no sync marker, an impossible length, or a checksum mismatch.
    Damaged(FrameDamage),
    /// A block that would run past the end of the data.
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameDamage {
    NoSync,
    Length(u64),
    Checksum,
}

/// Parses the block that starts at the beginning of `data`.
pub(crate) fn parse(data: &[u8]) -> Frame<'_> {
    if data.len() < FRAME_LEN {
        return if SYNC.starts_with(&data[..data.len().min(4)]) {
            Frame::Incomplete
        } else {
            Frame::Damaged(FrameDamage::NoSync)
        };
    }
    if data[..4] != SYNC {
        return Frame::Damaged(FrameDamage::NoSync);
    }
    let len = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes")) as usize;
    if len > MAX_BLOCK_LEN {
        return Frame::Damaged(FrameDamage::Length(len as u64));
    }
    if data.len() < FRAME_LEN + len {
        return Frame::Incomplete;
    }
    let stored = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    let payload = &data[FRAME_LEN..FRAME_LEN + len];
    if checksum(&data[4..8], data[12], payload) != stored {
        return Frame::Damaged(FrameDamage::Checksum);
    }
    Frame::Block {
        kind: BlockKind::from_code(data[12]),
        payload,
        len: FRAME_LEN + len,
    }
}

/// The offset of the next sync marker in `data` at or after `from`.
pub(crate) fn find_sync(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(4)
        .position(|w| w == SYNC)
        .map(|p| p + from)
}
