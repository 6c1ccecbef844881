//! Small structured records: per-interval engine counters, load changes (v1.2) and the end-of-log
//! summary.
//!
//! All are encoded with postcard (varints for integers, IEEE 754 little-endian for floats, a varint
//! length before a string's UTF-8, fields in declaration order). An intervals or load-changes payload
//! is `count varint` then `count × (length varint, postcard record)`; the length lets a later minor
//! version append fields that this version skips. An end payload is one postcard [`EndOfLog`].
//!
//! A record written by an older minor version is shorter than this version's: the fields it lacks
//! read as 0 (or `None`). The reader pads the record with zero bytes before decoding it, which works
//! because postcard writes a varint 0 and an `Option::None` as one zero byte each.

use serde::{Deserialize, Serialize};

use crate::error::PayloadError;
use crate::varint::{self, Cursor};

/// What one engine core measured about itself over one interval (normally one second).
///
/// These are the generator's health figures: the analyzer uses them to tell whether the load generator
/// kept up with its schedule, and if it did not, why (the rules are in [`crate::health`]).
///
/// Fields up to `open_connections` are format v1.0; the rest were added in v1.1 and read as 0 or
/// `None` in records written by v1.0 writers.
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
    // Format v1.1 from here on: what explains schedule lag.
    /// The most virtual users alive at once during the interval (v1.1). `active_users` is the count at
    /// the end, which misses users that ran during the interval and left before its end.
    pub users_max: u32,
    /// Virtual users started in the interval: spawned, or back for a new span of a staged population
    /// (v1.1).
    pub users_started: u32,
    /// Requests completed in the interval whose schedule lag passed
    /// [`crate::health::LAG_LIMIT_US`] (v1.1): the count a per-second lag judgement rests on.
    pub late_requests: u32,
    /// Voluntary context switches of the core's thread in the interval: it waited for I/O or a timer
    /// (v1.1).
    pub voluntary_switches: u32,
    /// Involuntary context switches of the core's thread in the interval: the kernel took the CPU
    /// away while it could run (v1.1).
    pub involuntary_switches: u32,
    /// Time the core's thread was runnable but not running (waiting on a run queue), µs, from
    /// `/proc/thread-self/schedstat` (v1.1). `None` where the kernel does not report it.
    pub run_delay_us: Option<u32>,
    /// Steal time of the CPU the core's thread is pinned to, µs, from `/proc/stat`: time a hypervisor
    /// gave that virtual CPU to someone else (v1.1). `None` when the thread is not pinned or the kernel
    /// does not report steal. Counted in clock ticks (usually 10 ms).
    pub steal_us: Option<u32>,
    /// Timed waits of the core's loop that ended in the interval: the sample behind the two
    /// wake-up lateness figures (v1.1).
    pub wakeups: u32,
    /// 99th percentile of how late those waits woke up after their deadline, µs (v1.1).
    pub wake_late_p99_us: u32,
    /// The latest wake-up after a deadline, µs (v1.1).
    pub wake_late_max_us: u32,
    /// In a core's first interval only: how long after the run's time zero the core finished setting
    /// up (runtime, log, connections' memory) and could start its schedule, µs; 0 when it was ready in
    /// time (v1.1).
    pub start_late_us: u32,
    /// Open models: arrivals that found every user of their kind busy and waited in the queue for one
    /// to become free (v1.1). Their wait is schedule lag, but the pool's size, not the generator's
    /// speed, caused it.
    pub iterations_queued: u32,
}

/// An encoded [`IntervalStats`] is at most this long: 10 bytes for the `u64`, 5 for each `u32`, 6 for
/// each `Option<u32>`. Shorter records (older minor versions) are padded to it before decoding.
const MAX_RECORD: usize = 10 + 23 * 5 + 2 * 6;

/// A change of the load made while the run went (format v1.2, block kind 7): someone steered the run
/// from the live dashboard. Every core's log holds every change of the run, with the run-wide figures
/// (not the core's share), so that any one log describes the run's load over time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadChange {
    /// When the change begins, µs since the run's clock base.
    pub at_us: u64,
    /// What was changed: [`LoadChange::USERS`] or [`LoadChange::RATE`]. A reader shows other codes as
    /// unknown (a later minor version may add some).
    pub what: u8,
    /// The run-wide target when the change began: users, or arrivals per second.
    pub from: f64,
    /// The run-wide target asked for.
    pub to: f64,
    /// How long the target takes to move linearly from `from` to `to`, µs (0: at once).
    pub ramp_us: u64,
    /// Who asked: `"dashboard"` for the live dashboard or its HTTP API. At most
    /// [`LoadChange::MAX_WHO`] bytes.
    pub who: String,
}

impl LoadChange {
    /// `what`: the number of virtual users of a closed model.
    pub const USERS: u8 = 1;
    /// `what`: the arrival rate (iterations per second) of an open model.
    pub const RATE: u8 = 2;
    /// The longest `who` a writer stores, in bytes; longer text is cut at a character boundary.
    pub const MAX_WHO: usize = 64;

    /// `"users"`, `"rate"`, or `"unknown"` for a code this version does not know.
    pub fn what_name(&self) -> &'static str {
        match self.what {
            LoadChange::USERS => "users",
            LoadChange::RATE => "rate",
            _ => "unknown",
        }
    }
}

/// An encoded [`LoadChange`] is at most this long: 10 bytes for each `u64`, 1 for the code, 8 for
/// each float, 1 for the string's length and [`LoadChange::MAX_WHO`] for its bytes.
const MAX_CHANGE: usize = 10 + 1 + 8 + 8 + 10 + 1 + LoadChange::MAX_WHO;

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
    let mut buf = [0u8; MAX_RECORD];
    for r in records {
        let bytes = postcard::to_slice(r, &mut buf).expect("an IntervalStats fits in MAX_RECORD");
        varint::put(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

pub(crate) fn decode_intervals(
    payload: &[u8],
    out: &mut Vec<IntervalStats>,
) -> Result<(), PayloadError> {
    decode_framed(payload, out, |record| {
        // Fields an older writer did not know read as zero bytes: 0 or None.
        let mut padded = [0u8; MAX_RECORD];
        let record = if record.len() < MAX_RECORD {
            padded[..record.len()].copy_from_slice(record);
            &padded[..]
        } else {
            record
        };
        postcard::take_from_bytes::<IntervalStats>(record).map(|(r, _newer_fields)| r)
    })
}

/// Reads a count and that many length-prefixed records, each with `read`. A damaged record or
/// trailing bytes add nothing to `out`: the block is all or none.
fn decode_framed<T>(
    payload: &[u8],
    out: &mut Vec<T>,
    read: impl Fn(&[u8]) -> postcard::Result<T>,
) -> Result<(), PayloadError> {
    let mut cur = Cursor::new(payload);
    let count = cur.length(payload.len())?;
    let start = out.len();
    for _ in 0..count {
        let len = cur.length(cur.remaining())?;
        match read(cur.take(len)?) {
            Ok(r) => out.push(r),
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

pub(crate) fn encode_load_changes(records: &[LoadChange], out: &mut Vec<u8>) {
    varint::put(out, records.len() as u64);
    let mut buf = [0u8; MAX_CHANGE];
    for r in records {
        let mut r = r.clone();
        if r.who.len() > LoadChange::MAX_WHO {
            let mut cut = LoadChange::MAX_WHO;
            while !r.who.is_char_boundary(cut) {
                cut -= 1;
            }
            r.who.truncate(cut);
        }
        let bytes = postcard::to_slice(&r, &mut buf).expect("a LoadChange fits in MAX_CHANGE");
        varint::put(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

pub(crate) fn decode_load_changes(
    payload: &[u8],
    out: &mut Vec<LoadChange>,
) -> Result<(), PayloadError> {
    // Fields a later minor version appends are skipped.
    decode_framed(payload, out, |record| {
        postcard::take_from_bytes::<LoadChange>(record).map(|(r, _newer_fields)| r)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(who: &str) -> LoadChange {
        LoadChange {
            at_us: 12_345_678,
            what: LoadChange::USERS,
            from: 10.0,
            to: 37.5,
            ramp_us: 5_000_000,
            who: who.into(),
        }
    }

    #[test]
    fn load_changes_round_trip_and_a_long_who_is_cut_at_a_character() {
        let long = "é".repeat(40);
        let mut payload = Vec::new();
        encode_load_changes(&[change("dashboard"), change(&long)], &mut payload);
        let mut out = Vec::new();
        decode_load_changes(&payload, &mut out).unwrap();
        assert_eq!(out[0], change("dashboard"));
        assert_eq!(out[1].who, "é".repeat(32));
        assert_eq!(out[1].what_name(), "users");
    }

    #[test]
    fn a_damaged_load_change_payload_is_an_error_and_adds_nothing() {
        let mut payload = Vec::new();
        encode_load_changes(&[change("dashboard")], &mut payload);
        for cut in 0..payload.len() {
            let mut out = vec![change("before")];
            assert!(
                decode_load_changes(&payload[..cut], &mut out).is_err(),
                "{cut}"
            );
            assert_eq!(out.len(), 1, "{cut}");
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(decode_load_changes(&longer, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_later_version_s_longer_load_change_is_read() {
        #[derive(Serialize)]
        struct Later {
            at_us: u64,
            what: u8,
            from: f64,
            to: f64,
            ramp_us: u64,
            who: String,
            added_later: u32,
        }
        let later = Later {
            at_us: 1,
            what: 9,
            from: 1.0,
            to: 2.0,
            ramp_us: 0,
            who: "api".into(),
            added_later: 77,
        };
        let record = postcard::to_allocvec(&later).unwrap();
        let mut out = Vec::new();
        decode_load_changes(&payload(&[&record]), &mut out).unwrap();
        assert_eq!(out[0].who, "api");
        assert_eq!(out[0].what_name(), "unknown");
    }

    /// The record as format v1.0 wrote it: the same fields, fewer of them.
    #[derive(Serialize)]
    struct V10 {
        start_us: u64,
        duration_us: u32,
        active_users: u32,
        iterations_started: u32,
        iterations_dropped: u32,
        requests: u32,
        failures: u32,
        lag_p50_us: u32,
        lag_p99_us: u32,
        lag_max_us: u32,
        cpu_user_us: u32,
        cpu_system_us: u32,
        connections_opened: u32,
        open_connections: u32,
    }

    fn payload(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        varint::put(&mut out, records.len() as u64);
        for r in records {
            varint::put(&mut out, r.len() as u64);
            out.extend_from_slice(r);
        }
        out
    }

    #[test]
    fn a_v1_0_record_decodes_with_the_new_fields_zero() {
        let old = V10 {
            start_us: 3_000_000,
            duration_us: 1_000_000,
            active_users: 20,
            iterations_started: 150,
            iterations_dropped: 1,
            requests: 245,
            failures: 2,
            lag_p50_us: 3,
            lag_p99_us: 2200,
            lag_max_us: 3300,
            cpu_user_us: 15_000,
            cpu_system_us: 5_000,
            connections_opened: 4,
            open_connections: 20,
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        // Two records, so that the padding of the first cannot swallow the second.
        let mut out = Vec::new();
        decode_intervals(&payload(&[&bytes, &bytes]), &mut out).unwrap();
        let want = IntervalStats {
            start_us: 3_000_000,
            duration_us: 1_000_000,
            active_users: 20,
            iterations_started: 150,
            iterations_dropped: 1,
            requests: 245,
            failures: 2,
            lag_p50_us: 3,
            lag_p99_us: 2200,
            lag_max_us: 3300,
            cpu_user_us: 15_000,
            cpu_system_us: 5_000,
            connections_opened: 4,
            open_connections: 20,
            ..IntervalStats::default()
        };
        assert_eq!(out, [want, want]);
        assert_eq!(out[0].run_delay_us, None);
        assert_eq!(out[0].steal_us, None);
    }

    #[test]
    fn the_largest_record_fits_and_round_trips() {
        let big = IntervalStats {
            start_us: u64::MAX,
            duration_us: u32::MAX,
            active_users: u32::MAX,
            iterations_started: u32::MAX,
            iterations_dropped: u32::MAX,
            requests: u32::MAX,
            failures: u32::MAX,
            lag_p50_us: u32::MAX,
            lag_p99_us: u32::MAX,
            lag_max_us: u32::MAX,
            cpu_user_us: u32::MAX,
            cpu_system_us: u32::MAX,
            connections_opened: u32::MAX,
            open_connections: u32::MAX,
            users_max: u32::MAX,
            users_started: u32::MAX,
            late_requests: u32::MAX,
            voluntary_switches: u32::MAX,
            involuntary_switches: u32::MAX,
            run_delay_us: Some(u32::MAX),
            steal_us: Some(u32::MAX),
            wakeups: u32::MAX,
            wake_late_p99_us: u32::MAX,
            wake_late_max_us: u32::MAX,
            start_late_us: u32::MAX,
            iterations_queued: u32::MAX,
        };
        assert_eq!(postcard::to_allocvec(&big).unwrap().len(), MAX_RECORD);
        let mut payload = Vec::new();
        encode_intervals(&[big], &mut payload);
        let mut out = Vec::new();
        decode_intervals(&payload, &mut out).unwrap();
        assert_eq!(out, [big]);
    }

    #[test]
    fn a_longer_record_from_a_later_version_keeps_the_fields_this_one_knows() {
        let r = IntervalStats {
            requests: 7,
            steal_us: Some(10_000),
            start_late_us: 5,
            ..IntervalStats::default()
        };
        let mut bytes = postcard::to_allocvec(&r).unwrap();
        bytes.extend_from_slice(&[0x7f; 200]);
        let mut out = Vec::new();
        decode_intervals(&payload(&[&bytes]), &mut out).unwrap();
        assert_eq!(out, [r]);
    }
}
