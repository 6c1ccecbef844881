//! The property tests: samples anywhere in their types' ranges, intervals and tables, written in
//! blocks of any size, read back exactly.

use formats::{IntervalStats, LogWriter, MessageId, NameId, Outcome, Sample, read_log};
use proptest::prelude::*;

use super::common;

fn outcome() -> impl Strategy<Value = Outcome> {
    prop::sample::select(Outcome::ALL.to_vec())
}

/// Task ids the property tests define (1..=TASKS).
const TASKS: u32 = 4;

/// Samples anywhere in their types' ranges, plus a bias towards realistic, clustered values so that the
/// encoder's common paths (narrow widths, few exceptions) are exercised as well as the extremes.
fn sample(names: u32, messages: u32) -> impl Strategy<Value = Sample> {
    let realistic = (
        0..names,
        0u64..10_000_000,
        0u64..50,
        prop_oneof![Just(0u32), 1u32..10_000_000],
        prop_oneof![9 => Just(0u32), 1 => 1u32..5_000],
        0u32..1_000,
        prop::sample::select(vec![0u16, 200, 200, 200, 404, 500]),
        outcome(),
        prop::option::weighted(0.1, 1..=messages),
        0u32..2_000,
        0u32..100_000,
        0u32..64,
    )
        .prop_map(
            |(
                name,
                start,
                lag,
                latency,
                connect,
                body,
                status,
                outcome,
                message,
                sent,
                received,
                user,
            )| {
                Sample {
                    name: NameId(name),
                    intended_us: start,
                    actual_us: start + lag,
                    latency_us: latency,
                    connect_us: connect,
                    tls_us: 0,
                    ttfb_us: latency.saturating_sub(body),
                    status,
                    outcome,
                    message: message.map(|m| MessageId(std::num::NonZeroU32::new(m).unwrap())),
                    bytes_sent: sent,
                    bytes_received: received,
                    user,
                    task: 0,
                    iteration_start: false,
                }
            },
        );
    let extreme = (
        0..names,
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        outcome(),
        prop::option::of(1..=messages),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(
                name,
                intended,
                actual,
                latency,
                connect,
                ttfb,
                status,
                outcome,
                message,
                sent,
                received,
                user,
            )| {
                Sample {
                    name: NameId(name),
                    intended_us: intended,
                    actual_us: actual,
                    latency_us: latency,
                    connect_us: connect,
                    tls_us: 0,
                    ttfb_us: ttfb.min(latency),
                    status,
                    outcome,
                    message: message.map(|m| MessageId(std::num::NonZeroU32::new(m).unwrap())),
                    bytes_sent: sent,
                    bytes_received: received,
                    user,
                    task: 0,
                    iteration_start: false,
                }
            },
        );
    // v1.1: the TLS handshake's part of the connect time, on some of the samples that connected.
    let realistic =
        (realistic, prop::option::weighted(0.5, any::<u32>())).prop_map(|(mut s, t)| {
            if let Some(t) = t.filter(|_| s.connect_us > 0) {
                s.tls_us = t % s.connect_us + 1;
            }
            s
        });
    let extreme = (extreme, any::<u32>()).prop_map(|(mut s, t)| {
        s.tls_us = t.min(s.connect_us);
        s
    });
    // v1.2: the task (0 for none, else one of the TASKS defined) and the iteration-start flag, on all
    // or on none of a block's samples.
    let realistic = (realistic, 0..=TASKS, prop::bool::weighted(0.2)).prop_map(|(mut s, t, f)| {
        s.task = t;
        s.iteration_start = f;
        s
    });
    let extreme = (extreme, 0..=TASKS, any::<bool>()).prop_map(|(mut s, t, f)| {
        s.task = t;
        s.iteration_start = f;
        s
    });
    prop_oneof![4 => realistic, 1 => extreme]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Samples, flushed at arbitrary points (so blocks of every size occur), read back identically.
    #[test]
    fn samples_round_trip(
        samples in prop::collection::vec(sample(7, 5), 0..20_000),
        flushes in prop::collection::vec(0usize..20_000, 0..6),
    ) {
        let mut w = LogWriter::new(&common::header(1), Vec::new()).unwrap();
        for i in 0..7 {
            assert_eq!(w.intern_name(&format!("name {i}")), NameId(i));
        }
        for i in 1..=5 {
            assert_eq!(w.intern_message(&format!("message {i}")).get(), i);
        }
        for id in 1..=TASKS {
            w.define_task(formats::TaskInfo { id, task_name: format!("task {id}"), ..Default::default() });
        }
        for (i, s) in samples.iter().enumerate() {
            if flushes.contains(&i) {
                w.flush().unwrap();
            }
            w.push(*s).unwrap();
        }
        let bytes = w.finish().unwrap();
        let log = read_log(&bytes).unwrap();
        prop_assert!(log.problems.is_empty(), "{:?}", log.problems);
        prop_assert_eq!(log.samples.len(), samples.len());
        for (i, s) in samples.iter().enumerate() {
            prop_assert_eq!(log.samples.get(i), Some(*s), "sample {}", i);
        }
        prop_assert_eq!(log.end.unwrap().samples, samples.len() as u64);
        prop_assert_eq!(log.names.get(6), Some("name 6"));
        prop_assert_eq!(log.messages.get(5), Some("message 5"));
        prop_assert_eq!(log.tasks.get(TASKS).map(|t| t.task_name.as_str()), Some("task 4"));
    }

    /// Interval counters and odd names survive the trip, in order.
    #[test]
    fn intervals_and_tables_round_trip(
        intervals in prop::collection::vec(
            (any::<[u32; 23]>(), any::<Option<u32>>(), any::<Option<u32>>()),
            0..50,
        ),
        names in prop::collection::vec("\\PC{0,40}", 1..20),
    ) {
        let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
        let ids: Vec<NameId> = names.iter().map(|n| w.intern_name(n)).collect();
        let stats: Vec<IntervalStats> = intervals
            .iter()
            .enumerate()
            .map(|(i, (v, run_delay_us, steal_us))| IntervalStats {
                start_us: i as u64 * 1_000_000,
                duration_us: v[0],
                active_users: v[1],
                iterations_started: v[2],
                iterations_dropped: v[3],
                requests: v[4],
                failures: v[5],
                lag_p50_us: v[6],
                lag_p99_us: v[7],
                lag_max_us: v[8],
                cpu_user_us: v[9],
                cpu_system_us: v[10],
                connections_opened: v[11],
                open_connections: v[12],
                users_max: v[13],
                users_started: v[14],
                late_requests: v[15],
                voluntary_switches: v[16],
                involuntary_switches: v[17],
                run_delay_us: *run_delay_us,
                steal_us: *steal_us,
                wakeups: v[18],
                wake_late_p99_us: v[19],
                wake_late_max_us: v[20],
                start_late_us: v[21],
                iterations_queued: v[22],
            })
            .collect();
        for s in &stats {
            w.push_interval(*s);
            w.push(Sample { name: ids[0], ..Sample::default() }).unwrap();
            w.flush().unwrap();
        }
        let log = read_log(&w.finish().unwrap()).unwrap();
        prop_assert!(log.problems.is_empty(), "{:?}", log.problems);
        prop_assert_eq!(&log.intervals, &stats);
        for (name, id) in names.iter().zip(&ids) {
            prop_assert_eq!(log.names.get(id.0), Some(name.as_str()));
        }
    }
}
