//! # The sample-log format and run manifest
//!
//! This crate is the only contract between the engine, which records every request, and the analyzer,
//! which reads the records long after the load generator has gone. It does no network I/O and depends on
//! nothing heavy; its documentation is the format specification (`docs/format.md` is the same material
//! arranged for people writing a reader in another language).
//!
//! ## A run directory
//!
//! `engine run` creates `runs/<UTC start>-<profile name>/` holding `manifest.json` ([`Manifest`]) and one
//! sample log per engine thread, `core-<N>.log`. See [`run`].
//!
//! ## A sample log, version 1.0 (1.1 and 1.2 additions below)
//!
//! Little-endian throughout. A 60-byte [header] (magic `89 53 4D 50 4C 0D 0A 1A`, version, run
//! id, core, clock base, CRC32C), then [blocks](block) until the end of the file:
//!
//! ```text
//! sync "\xb7BLK" | length u32 | CRC32C u32 | kind u8 | payload
//! ```
//!
//! | kind | block            | payload                                                       |
//! |------|------------------|---------------------------------------------------------------|
//! | 1    | samples          | up to 8192 samples in twelve bit-packed columns ([`samples`]) |
//! | 2    | name table       | (id, UTF-8) pairs for request names ([`tables`])              |
//! | 3    | message table    | (id, UTF-8) pairs for failure messages                        |
//! | 4    | interval stats   | postcard [`IntervalStats`] records ([`records`])              |
//! | 5    | end of file      | postcard [`EndOfLog`]; nothing may follow                     |
//!
//! A table block always precedes the first samples block that uses its ids. A log without an
//! end-of-file block was never finished: its writer was killed, crashed, or is still running.
//!
//! ## v1.1 additions
//!
//! | kind | block            | payload                                                       |
//! |------|------------------|---------------------------------------------------------------|
//! | 6    | sample extras    | extra columns for the samples block just before it: the TLS handshake time ([`samples`]) |
//!
//! A v1.1 writer puts a sample-extras block right after a samples block whose samples did any TLS
//! handshake, and leaves it out otherwise. [`Sample::tls_us`] reads as 0 from v1.0 logs and where the
//! block is absent; a v1.0 reader skips the block and reads every sample as before. `connect_us` keeps
//! its v1.0 meaning (TCP connect *plus* TLS handshake), so the TCP connect alone is
//! `connect_us − tls_us`.
//!
//! ## v1.2 additions
//!
//! | kind | block            | payload                                                       |
//! |------|------------------|---------------------------------------------------------------|
//! | 7    | load changes     | postcard [`LoadChange`] records, framed like interval records ([`records`]) |
//! | 8    | task table       | (id, role, user kind, weights, names, tags) entries ([`tasks`]) |
//!
//! The sample-extras block gains two columns: the task id of each sample ([`Sample::task`], an id of
//! the task table, 0 for none) and a flag on the first request of each iteration
//! ([`Sample::iteration_start`]), so that per user kind and per task figures, iterations included,
//! come from the samples alone. A task-table block precedes the first samples block that uses its
//! ids. Both read as 0 from v1.0 and v1.1 logs, which report their requests under "unknown task".
//!
//! A v1.2 writer adds a load-changes block (with the next flush) whenever the run's load is steered
//! while it goes: the number of users of a closed model or the arrival rate of an open one, with its
//! ramp and who asked. Every core's log holds every change, with run-wide figures. A run that was
//! never steered has no such block; a v1.1 reader skips it and reads everything else as before.
//!
//! **Time.** Every time is a whole number of microseconds. Starts count from the run's time zero, whose
//! CLOCK_MONOTONIC reading (ns) and wall-clock UTC (ns since the epoch) are in the header and the
//! manifest. Microseconds, not nanoseconds, because the clock reads and the kernel's completion
//! timestamps scatter by more than a microsecond anyway, and nanoseconds would add ten bits of noise per
//! time field (docs/format.md has the measurement).
//!
//! **Versions.** A reader accepts every minor version of its major and refuses a newer major with
//! [`DecodeErrorKind::NewerMajorVersion`]. Minor versions may add block kinds (older readers skip them),
//! lengthen the header, append fields to interval records, and append columns to sample-extras blocks.
//! Version 1.1 appended the fields that explain schedule lag to [`IntervalStats`] (context switches,
//! run-queue delay, steal, wake-up lateness, users started, late requests); [`health`] is the rule that
//! reads them. It also added the sample-extras block (the TLS handshake time of each sample). Version
//! 1.2 added the load-changes block (kind 7), the task table (kind 8) and the task columns of the
//! sample-extras block.
//!
//! ## Writing and reading back
//!
//! ```
//! use formats::{LogHeader, LogWriter, Outcome, RunId, Sample, read_log};
//!
//! let header = LogHeader::new(RunId([7; 16]), 0, 1_000_000, 1_764_000_000_000_000_000);
//! let mut log = LogWriter::new(&header, Vec::new()).unwrap();
//! let home = log.intern_name("GET /");
//! let refused = log.intern_message("connection refused");
//! log.push(Sample { name: home, intended_us: 10, actual_us: 12, latency_us: 250, ttfb_us: 240,
//!                   status: 200, bytes_sent: 80, bytes_received: 120, ..Sample::default() }).unwrap();
//! log.push(Sample { name: home, intended_us: 20, actual_us: 20, latency_us: 30,
//!                   outcome: Outcome::ConnectError, message: Some(refused), ..Sample::default() }).unwrap();
//! let bytes = log.finish().unwrap();
//!
//! let log = read_log(&bytes).unwrap();
//! assert!(log.problems.is_empty());
//! assert_eq!(log.samples.len(), 2);
//! assert_eq!(log.names.get(log.samples.name[0]), Some("GET /"));
//! assert_eq!(log.samples.latency_us, [250, 30]);
//! assert_eq!(log.samples.get(1).unwrap().outcome, Outcome::ConnectError);
//! assert_eq!(log.messages.get(log.samples.message[1]), Some("connection refused"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod bitpack;
pub mod block;
mod column;
mod error;
pub mod header;
pub mod health;
pub mod manifest;
mod reader;
pub mod records;
pub mod run;
mod run_id;
mod sample;
pub mod samples;
pub mod tables;
pub mod tasks;
mod varint;
mod writer;

pub use block::BlockKind;
pub use error::{DecodeError, DecodeErrorKind, PayloadError, ReadError, ReadErrorKind};
pub use header::LogHeader;
pub use manifest::{ClockSync, HostInfo, LogFile, Manifest, RunState, ShardInfo, TagSelection};
pub use reader::{LogContents, LogReader, read_log};
pub use records::{EndOfLog, IntervalStats, LoadChange};
pub use run::{Run, read_log_file};
pub use run_id::{ParseRunIdError, RunId};
pub use sample::{MessageId, NameId, Outcome, Sample, SampleColumns};
pub use tables::Table;
pub use tasks::{TaskInfo, TaskRole, TaskTable};
pub use writer::{BlockSink, IoSink, LogWriter, MAX_MESSAGES};

/// The major version this build writes and reads.
pub const FORMAT_MAJOR: u16 = 1;
/// The minor version this build writes.
pub const FORMAT_MINOR: u16 = 2;
