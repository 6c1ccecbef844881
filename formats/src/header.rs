//! The fixed header at the start of every sample log.
//!
//! ```text
//! offset size field
//!  0      8   magic: 89 53 4D 50 4C 0D 0A 1A ("\x89SMPL\r\n\x1a", PNG-style: catches text-mode transfers)
//!  8      2   major version (u16 LE); readers refuse a larger major
//! 10      2   minor version (u16 LE); readers accept any minor of their major
//! 12      4   header length in bytes (u32 LE), including the checksum; 60 in v1.0
//! 16     16   run id (the same in every log of a run and in the manifest)
//! 32      4   core index (u32 LE): which engine thread wrote this log
//! 36      4   flags (u32 LE), 0 in v1.0; readers ignore bits they do not know
//! 40      8   monotonic clock base (u64 LE): CLOCK_MONOTONIC in ns at the run's time zero
//! 48      8   wall-clock start (i64 LE): ns since the Unix epoch (UTC) at the same instant
//! 56      4   CRC32C of bytes 0 .. header length − 4
//! ```
//!
//! A later minor version may lengthen the header; v1.0 readers check the checksum at its stated end and
//! ignore the fields they do not know.

use crate::error::{DecodeError, DecodeErrorKind};
use crate::run_id::RunId;
use crate::{FORMAT_MAJOR, FORMAT_MINOR};

/// The eight bytes every sample log starts with.
pub const MAGIC: [u8; 8] = *b"\x89SMPL\r\n\x1a";

/// The length of a v1.0 header.
pub const HEADER_LEN: usize = 60;

/// The largest header a reader accepts (headers may grow in later minor versions).
const MAX_HEADER_LEN: usize = 4096;

/// What the header of a sample log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    /// The format's major version.
    pub major: u16,
    /// The format's minor version.
    pub minor: u16,
    /// The run this log belongs to.
    pub run_id: RunId,
    /// The engine thread that wrote the log, from 0.
    pub core: u32,
    /// CLOCK_MONOTONIC, in ns, at the run's time zero. Sample times count µs from here.
    pub monotonic_base_ns: u64,
    /// Wall-clock time at the run's time zero, ns since the Unix epoch (UTC).
    pub wall_start_unix_ns: i64,
}

impl LogHeader {
    /// A header for the current format version.
    pub fn new(run_id: RunId, core: u32, monotonic_base_ns: u64, wall_start_unix_ns: i64) -> Self {
        LogHeader {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            run_id,
            core,
            monotonic_base_ns,
            wall_start_unix_ns,
        }
    }

    /// The encoded header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..32].copy_from_slice(&self.run_id.0);
        b[32..36].copy_from_slice(&self.core.to_le_bytes());
        b[40..48].copy_from_slice(&self.monotonic_base_ns.to_le_bytes());
        b[48..56].copy_from_slice(&self.wall_start_unix_ns.to_le_bytes());
        let crc = crc32c::crc32c(&b[..56]);
        b[56..60].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the header at the start of `data`, returning it and its length.
    pub fn decode(data: &[u8]) -> Result<(LogHeader, usize), DecodeError> {
        let err = |kind| DecodeError { kind, offset: 0 };
        if data.len() < 16 {
            // Too short to say; a prefix of the magic is an unfinished log, anything else is not a log.
            let n = data.len().min(8);
            return Err(err(if data[..n] == MAGIC[..n] {
                DecodeErrorKind::HeaderTruncated
            } else {
                DecodeErrorKind::NotALog
            }));
        }
        if data[0..8] != MAGIC {
            return Err(err(DecodeErrorKind::NotALog));
        }
        let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
        let (major, minor) = (u16_at(8), u16_at(10));
        if major > FORMAT_MAJOR {
            return Err(err(DecodeErrorKind::NewerMajorVersion { major, minor }));
        }
        let len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
        if major == 0 {
            return Err(err(DecodeErrorKind::NotALog));
        }
        if !(HEADER_LEN..=MAX_HEADER_LEN).contains(&len) {
            return Err(err(DecodeErrorKind::HeaderChecksum));
        }
        if data.len() < len {
            return Err(err(DecodeErrorKind::HeaderTruncated));
        }
        let stored = u32::from_le_bytes(data[len - 4..len].try_into().expect("4 bytes"));
        if crc32c::crc32c(&data[..len - 4]) != stored {
            return Err(err(DecodeErrorKind::HeaderChecksum));
        }
        let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes"));
        let header = LogHeader {
            major,
            minor,
            run_id: RunId(data[16..32].try_into().expect("16 bytes")),
            core: u32_at(32),
            monotonic_base_ns: u64_at(40),
            wall_start_unix_ns: u64_at(48) as i64,
        };
        Ok((header, len))
    }
}
