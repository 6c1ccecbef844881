//! Typed errors. Each variant says what is wrong and, where there is one, what to do about it.

use std::fmt;
use std::path::PathBuf;

use crate::block::BlockKind;

/// What is wrong inside one block's payload. The block reader wraps it with the block's offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload ended in the middle of a value.
    #[error("payload ends in the middle of a value")]
    Truncated,
    /// A varint does not fit in 64 bits.
    #[error("a varint is longer than 64 bits")]
    VarintOverflow,
    /// A count or length is larger than the format allows here.
    #[error("a length of {value} is out of range (at most {max})")]
    LengthOutOfRange {
        /// The value read.
        value: u64,
        /// The largest value allowed at this place.
        max: u64,
    },
    /// A column's bit width is above 64.
    #[error("a column bit width of {0} is above 64")]
    BadWidth(u8),
    /// A column's exception points past the last value.
    #[error("a column exception at position {position} is past the {count} values of the block")]
    ExceptionPosition {
        /// The position read.
        position: u64,
        /// The number of values in the block.
        count: u64,
    },
    /// A column's exception has bits above bit 63.
    #[error("a column exception does not fit in 64 bits")]
    ExceptionOverflow,
    /// A decoded value does not fit the field it belongs to.
    #[error("column {column} holds a value out of range for its type")]
    ValueOutOfRange {
        /// The column's name.
        column: &'static str,
    },
    /// A name or message is not UTF-8.
    #[error("a table entry is not UTF-8")]
    Utf8,
    /// A struct encoded with postcard did not decode.
    #[error("a record did not decode: {0}")]
    Record(String),
    /// A sample-extras block does not hold as many samples as the samples block it belongs to.
    #[error("the block holds {extras} samples, but the samples block before it holds {samples}")]
    ExtrasCount {
        /// Samples in the extras block.
        extras: u64,
        /// Samples in the samples block before it.
        samples: u64,
    },
    /// Bytes were left over after the last field.
    #[error("{bytes} bytes left over after the last field")]
    TrailingBytes {
        /// How many.
        bytes: u64,
    },
}

/// A problem found while decoding a sample log, at a byte offset of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {kind}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Where the damaged part starts, in bytes from the start of the file.
    pub offset: u64,
}

impl DecodeError {
    /// Whether nothing in the file can be read (as opposed to one damaged block that was skipped).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.kind,
            DecodeErrorKind::NotALog
                | DecodeErrorKind::NewerMajorVersion { .. }
                | DecodeErrorKind::HeaderChecksum
                | DecodeErrorKind::HeaderTruncated
        )
    }

    /// Whether the problem is only a warning about how the file ends: every complete block was read.
    pub fn is_tail_only(&self) -> bool {
        matches!(
            self.kind,
            DecodeErrorKind::TruncatedTail { .. } | DecodeErrorKind::MissingEnd
        )
    }
}

/// The kinds of [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The file does not start with the sample-log magic bytes.
    #[error("not a sample log (wrong magic bytes); pass a run directory or a core-N.log file")]
    NotALog,
    /// The file is shorter than its header.
    #[error(
        "the file is shorter than the sample-log header; the engine was stopped before it wrote anything"
    )]
    HeaderTruncated,
    /// The header's checksum does not match.
    #[error("the header checksum does not match; the file is damaged")]
    HeaderChecksum,
    /// The file was written by a newer, incompatible format version.
    #[error(
        "written in sample-log format {major}.{minor}, but this build reads {}.x; upgrade the analyzer",
        crate::FORMAT_MAJOR
    )]
    NewerMajorVersion {
        /// The file's major version.
        major: u16,
        /// The file's minor version.
        minor: u16,
    },
    /// A block's checksum does not match; the block was skipped.
    #[error("block checksum does not match; the damaged block was skipped")]
    BlockChecksum,
    /// A block's length field is impossible; the reader looked for the next block.
    #[error("block length {length} is larger than the {max}-byte limit; skipped to the next block")]
    BlockLength {
        /// The length read.
        length: u64,
        /// The largest block the format allows.
        max: u64,
    },
    /// Bytes that are not a block were skipped while looking for the next one.
    #[error("{bytes} bytes that are not a block were skipped")]
    Garbage {
        /// How many bytes were skipped.
        bytes: u64,
    },
    /// A block's checksum matched but its payload did not decode; the block was skipped.
    #[error("{block} block did not decode ({error}); skipped")]
    Payload {
        /// The block's kind.
        block: BlockKind,
        /// What was wrong.
        error: PayloadError,
    },
    /// A samples block names a request or message that no earlier table block defined.
    #[error("samples refer to {what} id {id}, which no table block defines; shown as \"#{id}\"")]
    UnknownId {
        /// "name" or "message".
        what: &'static str,
        /// The id.
        id: u32,
    },
    /// The file ends inside a block: the writer was stopped mid-write.
    #[error("the file ends inside a block ({bytes} bytes lost); every complete block was read")]
    TruncatedTail {
        /// The bytes of the incomplete block.
        bytes: u64,
    },
    /// The file has no end-of-file block: the writer never finished (crash, kill, or still running).
    #[error(
        "no end-of-file block: the engine did not finish this log (killed, crashed, or still running)"
    )]
    MissingEnd,
    /// Bytes follow the end-of-file block.
    #[error("{bytes} bytes follow the end-of-file block and were ignored")]
    DataAfterEnd {
        /// How many.
        bytes: u64,
    },
}

/// A failure to read a file of a run: which file, and what went wrong.
#[derive(Debug, thiserror::Error)]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

/// The kinds of [`ReadError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The operating system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The log is unusable as a whole.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The manifest is not valid.
    #[error("the manifest is not valid JSON for this format: {0}")]
    Manifest(String),
    /// The directory holds no manifest.
    #[error("not a run directory (no manifest.json); pass a directory made by `engine run`")]
    NotARun,
}
