//! Small structured records: per-interval engine counters and the end-of-log summary.
//!
//! Both are encoded with postcard (varints for integers, fields in declaration order). An intervals
//! payload is `count varint` then `count × (length varint, postcard record)`; the length lets a later
//! minor version append fields that this version skips. An end payload is one postcard [`EndOfLog`].

use serde::{Deserialize, Serialize};

use crate::error::PayloadError;
use crate::varint::{self, Cursor};

/// What one engine core measured about itself over one interval (normally one second).
///
/// These are the generator's health figures: the analyzer uses them to tell whether the load generator
/// kept up with its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IntervalStats {
    /// Start of the interval, µs since the run's clock base.
    pub start_us: u64,
    /// Length of the interval, µs.
    pub duration_us: u32,
    /// Virtual users alive on this core at the end of the interval.
    pub active_users: u32,
    /// Iterations (one pass of a user task) started in the interval.
    pub iterations_started: u32,
    /// Iterations the schedule called for but no free user could start (open models).
    pub iterations_dropped: u32,
    /// Requests completed in the interval.
    pub requests: u32,
    /// Requests that failed in the interval.
    pub failures: u32,
    /// Median schedule lag (actual minus intended start) over the interval, µs.
    pub lag_p50_us: u32,
    /// 99th-percentile schedule lag, µs.
    pub lag_p99_us: u32,
    /// Largest schedule lag, µs.
    pub lag_max_us: u32,
    /// CPU time this core's thread spent in user mode during the interval, µs.
    pub cpu_user_us: u32,
    /// CPU time this core's thread spent in the kernel during the interval, µs.
    pub cpu_system_us: u32,
    /// Connections opened in the interval.
    pub connections_opened: u32,
    /// Connections open at the end of the interval.
    pub open_connections: u32,
}

/// The last block of a log the writer finished properly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndOfLog {
    /// Samples the writer wrote.
    pub samples: u64,
    /// Blocks before this one.
    pub blocks: u64,
}

pub(crate) fn encode_intervals(records: &[IntervalStats], out: &mut Vec<u8>) {
    varint::put(out, records.len() as u64);
    let mut buf = [0u8; 128];
    for r in records {
        let bytes = postcard::to_slice(r, &mut buf).expect("an IntervalStats fits in 128 bytes");
        varint::put(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

pub(crate) fn decode_intervals(
    payload: &[u8],
    out: &mut Vec<IntervalStats>,
) -> Result<(), PayloadError> {
    let mut cur = Cursor::new(payload);
    let count = cur.length(payload.len())?;
    let start = out.len();
    for _ in 0..count {
        let len = cur.length(cur.remaining())?;
        let record = cur.take(len)?;
        match postcard::take_from_bytes::<IntervalStats>(record) {
            Ok((r, _newer_fields)) => out.push(r),
            Err(e) => {
                out.truncate(start);
                return Err(PayloadError::Record(e.to_string()));
            }
        }
    }
    if cur.remaining() != 0 {
        out.truncate(start);
        return Err(PayloadError::TrailingBytes {
            bytes: cur.remaining() as u64,
        });
    }
    Ok(())
}

pub(crate) fn encode_end(end: &EndOfLog, out: &mut Vec<u8>) {
    let mut buf = [0u8; 32];
    out.extend_from_slice(postcard::to_slice(end, &mut buf).expect("an EndOfLog fits in 32 bytes"));
}

pub(crate) fn decode_end(payload: &[u8]) -> Result<EndOfLog, PayloadError> {
    postcard::take_from_bytes::<EndOfLog>(payload)
        .map(|(e, _)| e)
        .map_err(|e| PayloadError::Record(e.to_string()))
}
