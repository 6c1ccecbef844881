//! Property tests: whatever the engine writes, the reader gives back exactly.

mod common;

use formats::{IntervalStats, LogWriter, MessageId, NameId, Outcome, Sample, read_log};
use proptest::prelude::*;

fn outcome() -> impl Strategy<Value = Outcome> {
    prop::sample::select(Outcome::ALL.to_vec())
}

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
                    ttfb_us: latency.saturating_sub(body),
                    status,
                    outcome,
                    message: message.map(|m| MessageId(std::num::NonZeroU32::new(m).unwrap())),
                    bytes_sent: sent,
                    bytes_received: received,
                    user,
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
                    ttfb_us: ttfb.min(latency),
                    status,
                    outcome,
                    message: message.map(|m| MessageId(std::num::NonZeroU32::new(m).unwrap())),
                    bytes_sent: sent,
                    bytes_received: received,
                    user,
                }
            },
        );
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

#[test]
fn writer_clamps_ttfb_to_latency() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    let n = w.intern_name("x");
    w.push(Sample {
        name: n,
        latency_us: 100,
        ttfb_us: 250,
        ..Sample::default()
    })
    .unwrap();
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert_eq!(log.samples.ttfb_us, [100]);
}

#[test]
fn interning_is_stable_and_bounded() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    let a = w.intern_message("a");
    assert_eq!(w.intern_message("a"), a);
    // Past the limit every new message shares one overflow id, so a target that puts a unique id in
    // each error cannot make the table grow without bound.
    let mut last = a;
    for i in 0..formats::MAX_MESSAGES + 10 {
        last = w.intern_message(&format!("error {i}"));
    }
    assert_eq!(last.get(), formats::MAX_MESSAGES);
    assert_eq!(w.intern_message("yet another"), last);
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert!(
        log.messages
            .get(formats::MAX_MESSAGES)
            .unwrap()
            .contains("too many distinct")
    );
}

#[test]
fn empty_log_is_complete_and_clean() {
    let bytes = LogWriter::new(&common::header(0), Vec::new())
        .unwrap()
        .finish()
        .unwrap();
    let log = read_log(&bytes).unwrap();
    assert!(log.problems.is_empty());
    assert_eq!(log.samples.len(), 0);
    assert_eq!(log.end.unwrap().samples, 0);
}

#[test]
fn smaller_blocks_close_at_the_chosen_size() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.set_block_samples(100);
    let n = w.intern_name("x");
    for i in 0..1_050u32 {
        w.push(Sample {
            name: n,
            latency_us: i,
            actual_us: u64::from(i),
            ..Sample::default()
        })
        .unwrap();
        assert_eq!(w.samples_buffered(), (i as usize + 1) % 100);
    }
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert!(log.problems.is_empty());
    assert_eq!(log.samples.len(), 1_050);
    // One name-table block, eleven samples blocks.
    assert_eq!(log.end.unwrap().blocks, 12);
}
