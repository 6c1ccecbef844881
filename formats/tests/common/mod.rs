//! Helpers shared by the formats integration tests.

#![allow(dead_code)]

use std::fmt::Write as _;

use formats::{
    IntervalStats, LoadChange, LogContents, LogHeader, LogWriter, Outcome, RunId, Sample,
};

/// A header with fixed, recognisable values.
pub fn header(core: u32) -> LogHeader {
    LogHeader::new(
        RunId([0xA5; 16]),
        core,
        987_654_321_000,
        1_764_000_000_123_456_789,
    )
}

/// A small log with every block kind of v1.0: names, messages, two samples blocks, intervals and the
/// end. It generates the v1 golden files, so it must keep writing no v1.1 block.
pub fn small_log() -> Vec<u8> {
    small_log_with(false, false)
}

/// The same log where the samples that open a connection also did a TLS handshake, so that each
/// samples block is followed by a v1.1 sample-extras block.
pub fn small_log_with_tls() -> Vec<u8> {
    small_log_with(true, false)
}

/// The same log from a run steered while it went (v1.2): a users change goes out with the flush after
/// sample 24, a rate change (a code an open model's log would hold) with the last flush.
pub fn small_log_steered() -> Vec<u8> {
    small_log_with(false, true)
}

fn small_log_with(tls: bool, steer: bool) -> Vec<u8> {
    let mut w = LogWriter::new(&header(3), Vec::new()).unwrap();
    let home = w.intern_name("GET /");
    let item = w.intern_name("GET /items/{id}");
    let refused = w.intern_message("connection refused (os error 111)");
    let status = w.intern_message("unexpected status 503");
    let mut t = 1_000u64;
    for i in 0..40u32 {
        t += 37 + u64::from(i % 7);
        let mut s = Sample {
            name: if i % 3 == 0 { item } else { home },
            intended_us: t,
            actual_us: t + u64::from(i % 4),
            latency_us: 250 + i * 13,
            connect_us: if i % 10 == 0 { 90 + i } else { 0 },
            tls_us: if tls && i % 10 == 0 { 60 + i } else { 0 },
            ttfb_us: 240 + i * 13,
            status: 200,
            outcome: Outcome::Ok,
            message: None,
            bytes_sent: if i % 3 == 0 { 120 } else { 80 },
            bytes_received: 512 + i % 5,
            user: i % 6,
            task: 0,
            iteration_start: false,
        };
        if i == 17 {
            s.outcome = Outcome::ConnectError;
            s.message = Some(refused);
            (
                s.status,
                s.ttfb_us,
                s.bytes_received,
                s.connect_us,
                s.tls_us,
            ) = (0, 0, 0, 0, 0);
        }
        if i == 29 {
            s.outcome = Outcome::Status;
            s.message = Some(status);
            s.status = 503;
        }
        w.push(s).unwrap();
        if i == 24 && steer {
            w.push_load_change(LoadChange {
                at_us: 1_000_250,
                what: LoadChange::USERS,
                from: 6.0,
                to: 12.0,
                ramp_us: 2_500_000,
                who: "dashboard".into(),
            });
        }
        if i == 24 {
            w.push_interval(IntervalStats {
                start_us: 0,
                duration_us: 1_000_000,
                active_users: 6,
                iterations_started: 25,
                requests: 25,
                failures: 1,
                lag_p50_us: 1,
                lag_p99_us: 3,
                lag_max_us: 3,
                cpu_user_us: 1_200,
                cpu_system_us: 800,
                connections_opened: 3,
                open_connections: 6,
                ..IntervalStats::default()
            });
            w.flush().unwrap();
        }
    }
    if steer {
        w.push_load_change(LoadChange {
            at_us: 1_900_000,
            what: LoadChange::RATE,
            from: 12.5,
            to: 0.25,
            ramp_us: 0,
            who: "dashboard".into(),
        });
    }
    w.finish().unwrap()
}

/// A text rendering of everything decoded, one line per item, for golden comparisons.
pub fn dump(log: &LogContents) -> String {
    let h = &log.header;
    let mut out = String::new();
    writeln!(
        out,
        "header version={}.{} run={} core={} monotonic_base_ns={} wall_start_unix_ns={}",
        h.major, h.minor, h.run_id, h.core, h.monotonic_base_ns, h.wall_start_unix_ns
    )
    .unwrap();
    for (id, name) in log.names.iter() {
        writeln!(out, "name {id} {name:?}").unwrap();
    }
    for (id, message) in log.messages.iter() {
        writeln!(out, "message {id} {message:?}").unwrap();
    }
    let s = &log.samples;
    for i in 0..s.len() {
        writeln!(
            out,
            "sample name={} intended={} actual={} latency={} connect={} ttfb={} status={} outcome={} message={} sent={} received={} user={}",
            s.name[i],
            s.intended_us[i],
            s.actual_us[i],
            s.latency_us[i],
            s.connect_us[i],
            s.ttfb_us[i],
            s.status[i],
            Outcome::name_of_code(s.outcome[i]),
            s.message[i],
            s.bytes_sent[i],
            s.bytes_received[i],
            s.user[i]
        )
        .unwrap();
        // v1.1's column is printed only where it is set, so the v1.0 golden texts stay as recorded.
        if s.tls_us[i] != 0 {
            writeln!(out, "  tls={}", s.tls_us[i]).unwrap();
        }
        // Likewise v1.2's task columns.
        if s.task[i] != 0 || s.iteration_start[i] != 0 {
            writeln!(
                out,
                "  task={} iteration_start={}",
                s.task[i], s.iteration_start[i]
            )
            .unwrap();
        }
    }
    for iv in &log.intervals {
        writeln!(out, "interval {}", interval_text(iv)).unwrap();
    }
    // v1.2's load changes, printed only where there are any, so older golden texts stay as recorded.
    for c in &log.load_changes {
        writeln!(out, "load_change {c:?}").unwrap();
    }
    writeln!(out, "end {:?}", log.end).unwrap();
    for p in &log.problems {
        writeln!(out, "problem {p}").unwrap();
    }
    out
}

/// An interval record as the v1.0 golden text shows it (the `Debug` form of the v1.0 struct), then the
/// v1.1 fields, which are left out while they hold their defaults: a v1.0 record decodes to the same
/// text as it always did.
fn interval_text(iv: &IntervalStats) -> String {
    let mut text = format!(
        "IntervalStats {{ start_us: {}, duration_us: {}, active_users: {}, iterations_started: {}, \
         iterations_dropped: {}, requests: {}, failures: {}, lag_p50_us: {}, lag_p99_us: {}, \
         lag_max_us: {}, cpu_user_us: {}, cpu_system_us: {}, connections_opened: {}, open_connections: {} }}",
        iv.start_us,
        iv.duration_us,
        iv.active_users,
        iv.iterations_started,
        iv.iterations_dropped,
        iv.requests,
        iv.failures,
        iv.lag_p50_us,
        iv.lag_p99_us,
        iv.lag_max_us,
        iv.cpu_user_us,
        iv.cpu_system_us,
        iv.connections_opened,
        iv.open_connections
    );
    let v1_1 = IntervalStats {
        users_max: iv.users_max,
        users_started: iv.users_started,
        late_requests: iv.late_requests,
        voluntary_switches: iv.voluntary_switches,
        involuntary_switches: iv.involuntary_switches,
        run_delay_us: iv.run_delay_us,
        steal_us: iv.steal_us,
        wakeups: iv.wakeups,
        wake_late_p99_us: iv.wake_late_p99_us,
        wake_late_max_us: iv.wake_late_max_us,
        start_late_us: iv.start_late_us,
        iterations_queued: iv.iterations_queued,
        ..IntervalStats::default()
    };
    if v1_1 != IntervalStats::default() {
        write!(
            text,
            " v1.1 {{ users_max: {}, users_started: {}, late_requests: {}, voluntary_switches: {}, \
             involuntary_switches: {}, run_delay_us: {:?}, steal_us: {:?}, wakeups: {}, \
             wake_late_p99_us: {}, wake_late_max_us: {}, start_late_us: {}, iterations_queued: {} }}",
            iv.users_max,
            iv.users_started,
            iv.late_requests,
            iv.voluntary_switches,
            iv.involuntary_switches,
            iv.run_delay_us,
            iv.steal_us,
            iv.wakeups,
            iv.wake_late_p99_us,
            iv.wake_late_max_us,
            iv.start_late_us,
            iv.iterations_queued
        )
        .unwrap();
    }
    text
}
