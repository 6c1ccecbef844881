//! Property tests: whatever the engine writes, the reader gives back exactly.

mod common;

use formats::{
    BlockKind, IntervalStats, LoadChange, LogWriter, MessageId, NameId, Outcome, Sample, read_log,
};
use proptest::prelude::*;

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

/// Writes `samples` (names "x"), one flush per `per_block`, and returns the log's bytes.
fn log_of(samples: &[Sample], per_block: usize) -> Vec<u8> {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.intern_name("x");
    for id in 1..=3 {
        w.define_task(formats::TaskInfo {
            id,
            task_name: format!("t{id}"),
            ..Default::default()
        });
    }
    for (i, s) in samples.iter().enumerate() {
        w.push(*s).unwrap();
        if (i + 1) % per_block == 0 {
            w.flush().unwrap();
        }
    }
    w.finish().unwrap()
}

/// (offset, length, kind) of every block.
fn block_kinds(bytes: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut at = formats::header::HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, formats::block::FRAME_LEN + len, bytes[at + 12]));
        at += formats::block::FRAME_LEN + len;
    }
    out
}

fn connecting(i: u32, tls: bool) -> Sample {
    let opens = i.is_multiple_of(50);
    Sample {
        name: NameId(0),
        intended_us: u64::from(i) * 100,
        actual_us: u64::from(i) * 100,
        latency_us: 2_000 + i % 300,
        connect_us: if opens { 900 + i % 7 } else { 0 },
        tls_us: if opens && tls { 600 + i % 5 } else { 0 },
        ttfb_us: 1_500,
        status: 200,
        ..Sample::default()
    }
}

#[test]
fn writer_clamps_tls_to_connect() {
    let s = Sample {
        connect_us: 100,
        tls_us: 250,
        ..connecting(1, true)
    };
    let log = read_log(&log_of(&[s], 1)).unwrap();
    assert_eq!(log.samples.tls_us, [100]);
}

/// Logs without a handshake carry no extras block at all, so a plain-HTTP log costs exactly what it
/// did in v1.0; with handshakes, one extras block follows each samples block that has any.
#[test]
fn extras_blocks_appear_only_after_samples_blocks_with_a_handshake() {
    let plain: Vec<Sample> = (0..1_000).map(|i| connecting(i, false)).collect();
    let bytes = log_of(&plain, 300);
    let kinds: Vec<u8> = block_kinds(&bytes).iter().map(|b| b.2).collect();
    assert!(
        !kinds.contains(&BlockKind::SampleExtras.code()),
        "{kinds:?}"
    );

    // Handshakes only in the first 300 samples: one extras block, right after the first samples block.
    let mut tls = plain.clone();
    tls[..300].copy_from_slice(&(0..300).map(|i| connecting(i, true)).collect::<Vec<_>>());
    let bytes = log_of(&tls, 300);
    let kinds: Vec<u8> = block_kinds(&bytes).iter().map(|b| b.2).collect();
    let samples = BlockKind::Samples.code();
    let extras = BlockKind::SampleExtras.code();
    assert_eq!(
        kinds.iter().filter(|&&k| k == extras).count(),
        1,
        "{kinds:?}"
    );
    let first_samples = kinds.iter().position(|&k| k == samples).unwrap();
    assert_eq!(kinds[first_samples + 1], extras, "{kinds:?}");
    let log = read_log(&bytes).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    for (i, s) in tls.iter().enumerate() {
        assert_eq!(log.samples.get(i), Some(*s), "sample {i}");
    }
    // Six handshakes in 300 samples cost a few bytes, not a column.
    let extras_len = block_kinds(&bytes)
        .iter()
        .find(|b| b.2 == extras)
        .unwrap()
        .1;
    assert!(extras_len < 40, "{extras_len} bytes");
}

/// What a v1.0 reader sees: it skips the unknown block kind, so removing the extras blocks must leave
/// every sample as it was, with the TLS time 0.
#[test]
fn without_its_extras_blocks_a_log_reads_as_v1_0_did() {
    let samples: Vec<Sample> = (0..2_000).map(|i| connecting(i, true)).collect();
    let bytes = log_of(&samples, 700);
    let mut stripped = bytes[..formats::header::HEADER_LEN].to_vec();
    for (at, len, kind) in block_kinds(&bytes) {
        if kind != BlockKind::SampleExtras.code() {
            stripped.extend_from_slice(&bytes[at..at + len]);
        }
    }
    assert!(stripped.len() < bytes.len());
    let log = read_log(&stripped).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    for (i, s) in samples.iter().enumerate() {
        let want = Sample { tls_us: 0, ..*s };
        assert_eq!(log.samples.get(i), Some(want), "sample {i}");
    }
}

/// Replaces the payload of the block at `at` (of length `len`) with `payload`, framed and checksummed.
fn replace_block(bytes: &[u8], at: usize, len: usize, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut block = formats::block::SYNC.to_vec();
    block.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(&block[4..8]), &[kind]),
        payload,
    );
    block.extend_from_slice(&crc.to_le_bytes());
    block.push(kind);
    block.extend_from_slice(payload);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&block);
    out.extend_from_slice(&bytes[at + len..]);
    out
}

/// A later minor version may append extra columns; this reader decodes the one it knows and skips the
/// rest by length. An extras block whose count disagrees with its samples block, or whose TLS time
/// exceeds the connect time, is reported and its samples keep TLS 0.
#[test]
fn extras_blocks_from_later_versions_and_bad_ones() {
    let samples: Vec<Sample> = (0..100).map(|i| connecting(i, true)).collect();
    let bytes = log_of(&samples, 1_000);
    let (at, len, kind) = *block_kinds(&bytes)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let payload = &bytes[at + formats::block::FRAME_LEN..at + len];
    // count (100, one byte), columns (1), then the column.
    assert_eq!(payload[..2], [100, 1]);
    let column = &payload[2..];

    // A future column of 3 bytes after the three this reader knows (v1.2's task columns come from a
    // log of the same samples with task ids).
    let with_tasks: Vec<Sample> = samples.iter().map(|s| Sample { task: 2, ..*s }).collect();
    let other = log_of(&with_tasks, 1_000);
    let (t_at, t_len, _) = *block_kinds(&other)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let three = &other[t_at + formats::block::FRAME_LEN..t_at + t_len];
    assert_eq!(three[..2], [100, 3]);
    let mut future = vec![100, 4];
    future.extend_from_slice(&three[2..]);
    future.extend_from_slice(&[3, 0xAA, 0xBB, 0xCC]);
    let log = read_log(&replace_block(&bytes, at, len, kind, &future)).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(log.samples.tls_us, read_log(&bytes).unwrap().samples.tls_us);
    assert_eq!(log.samples.tls_us[0], 600);
    assert!(log.samples.task.iter().all(|&t| t == 2));

    let mut wrong_count = vec![99, 1];
    wrong_count.extend_from_slice(column);
    let log = read_log(&replace_block(&bytes, at, len, kind, &wrong_count)).unwrap();
    assert_eq!(log.samples.len(), 100);
    assert!(log.samples.tls_us.iter().all(|&t| t == 0));
    assert_eq!(log.problems.len(), 1, "{:?}", log.problems);
    assert_eq!(log.problems[0].offset, at as u64);
    assert!(
        log.problems[0].to_string().contains("holds 99 samples"),
        "{}",
        log.problems[0]
    );

    // The TLS time of sample 0 raised above its connect time.
    let mut too_long: Vec<Sample> = samples.clone();
    too_long[0].tls_us = 5_000;
    too_long[0].connect_us = 5_000;
    let other = log_of(&too_long, 1_000);
    let (o_at, o_len, _) = *block_kinds(&other)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let bad_payload = other[o_at + formats::block::FRAME_LEN..o_at + o_len].to_vec();
    let log = read_log(&replace_block(&bytes, at, len, kind, &bad_payload)).unwrap();
    assert!(log.samples.tls_us.iter().all(|&t| t == 0));
    assert!(
        log.problems[0].to_string().contains("tls"),
        "{:?}",
        log.problems
    );
}

/// A sample of task `task` (v1.2), starting an iteration every fourth request.
fn tasked(i: u32, task: u32) -> Sample {
    Sample {
        task,
        iteration_start: i.is_multiple_of(4),
        ..connecting(i, false)
    }
}

#[test]
fn task_ids_and_iteration_starts_round_trip_with_their_table() {
    let samples: Vec<Sample> = (0..3_000).map(|i| tasked(i, 1 + i / 1_000)).collect();
    let log = read_log(&log_of(&samples, 700)).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(log.samples.get(i), Some(*s), "sample {i}");
    }
    assert_eq!(
        log.samples
            .iteration_start
            .iter()
            .filter(|&&f| f == 1)
            .count(),
        750
    );
    assert_eq!(log.tasks.get(3).unwrap().task_name, "t3");
    assert_eq!(log.tasks.get(4), None);
}

/// Plain HTTP without tasks writes no extras block, as a v1.1 writer did; with tasks, every samples
/// block has one, and the two task columns cost little.
#[test]
fn the_extras_block_appears_with_tasks_and_stays_small() {
    let plain: Vec<Sample> = (0..2_000).map(|i| connecting(i, false)).collect();
    let bytes = log_of(&plain, 1_000);
    assert!(
        !block_kinds(&bytes)
            .iter()
            .any(|b| b.2 == BlockKind::SampleExtras.code())
    );

    // Users take turns: runs of eight requests of one task, ids 1 to 3.
    let tasked_samples: Vec<Sample> = (0..8_000).map(|i| tasked(i, 1 + (i / 8) % 3)).collect();
    let bytes = log_of(&tasked_samples, 8_000);
    let kinds = block_kinds(&bytes);
    let extras: Vec<_> = kinds
        .iter()
        .filter(|b| b.2 == BlockKind::SampleExtras.code())
        .collect();
    assert_eq!(extras.len(), 1);
    let per_sample = extras[0].1 as f64 / 8_000.0;
    assert!(per_sample < 1.0, "{per_sample} bytes per sample");
    let tables: Vec<_> = kinds
        .iter()
        .filter(|b| b.2 == BlockKind::TaskTable.code())
        .collect();
    assert_eq!(tables.len(), 1);
    let samples_at = kinds
        .iter()
        .position(|b| b.2 == BlockKind::Samples.code())
        .unwrap();
    let table_at = kinds
        .iter()
        .position(|b| b.2 == BlockKind::TaskTable.code())
        .unwrap();
    assert!(
        table_at < samples_at,
        "the task table precedes the samples that use it"
    );
}

/// What a v1.1 reader sees of a v1.2 log: it decodes the extras block's first column and skips the
/// two task columns by their lengths; a v1.1 block (one column) read by this reader gives task 0.
#[test]
fn task_columns_are_skippable_and_optional() {
    let samples: Vec<Sample> = (0..100)
        .map(|i| Sample {
            tls_us: 0,
            ..tasked(i, 2)
        })
        .collect();
    let bytes = log_of(&samples, 1_000);
    let (at, len, kind) = *block_kinds(&bytes)
        .iter()
        .find(|b| b.2 == BlockKind::SampleExtras.code())
        .unwrap();
    let payload = &bytes[at + formats::block::FRAME_LEN..at + len];
    assert_eq!(payload[..2], [100, 3], "count, then three columns");
    // Keep only the first column, as a v1.1 writer would have written it.
    let first_len = payload[2] as usize;
    let mut v1_1 = vec![100, 1];
    v1_1.extend_from_slice(&payload[2..3 + first_len]);
    let log = read_log(&replace_block(&bytes, at, len, kind, &v1_1)).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert!(log.samples.task.iter().all(|&t| t == 0));
    assert!(log.samples.iteration_start.iter().all(|&f| f == 0));
    assert_eq!(
        log.samples.latency_us,
        read_log(&bytes).unwrap().samples.latency_us
    );
}

/// A task id that no task-table block defines is reported, like an unknown name; a task id above the
/// format's limit is stored as 0.
#[test]
fn undefined_and_out_of_range_task_ids() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.intern_name("x");
    w.push(tasked(0, 9)).unwrap();
    w.push(tasked(1, 70_000)).unwrap();
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert_eq!(log.samples.task, [9, 0]);
    assert_eq!(log.problems.len(), 1, "{:?}", log.problems);
    assert!(
        log.problems[0].to_string().contains("task id 9"),
        "{}",
        log.problems[0]
    );
}

fn steer(at_us: u64, to: f64) -> LoadChange {
    LoadChange {
        at_us,
        what: LoadChange::USERS,
        from: 10.0,
        to,
        ramp_us: 2_000_000,
        who: "dashboard".into(),
    }
}

/// A steered run's log: load changes go out with the next flush, in their own block, and read back
/// in order beside every sample; what a v1.1 reader sees (the block skipped) is the rest of the log
/// unchanged.
#[test]
fn load_changes_round_trip_and_a_v1_1_reader_skips_them() {
    let samples: Vec<Sample> = (0..1_000).map(|i| connecting(i, false)).collect();
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.intern_name("x");
    for (i, s) in samples.iter().enumerate() {
        w.push(*s).unwrap();
        if i == 300 {
            w.push_load_change(steer(30_000, 25.0));
        }
        if i == 600 {
            w.push_load_change(steer(60_000, 5.0));
            w.push_load_change(LoadChange {
                what: LoadChange::RATE,
                ..steer(60_001, 123.5)
            });
        }
        if (i + 1) % 250 == 0 {
            w.flush().unwrap();
        }
    }
    let bytes = w.finish().unwrap();
    let kinds: Vec<u8> = block_kinds(&bytes).iter().map(|b| b.2).collect();
    let changes = BlockKind::LoadChanges.code();
    assert_eq!(changes, 7);
    assert_eq!(
        kinds.iter().filter(|&&k| k == changes).count(),
        2,
        "{kinds:?}"
    );
    let log = read_log(&bytes).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(log.header.minor, 2);
    assert_eq!(
        log.load_changes,
        vec![
            steer(30_000, 25.0),
            steer(60_000, 5.0),
            LoadChange {
                what: LoadChange::RATE,
                ..steer(60_001, 123.5)
            }
        ]
    );
    assert_eq!(log.samples.len(), samples.len());

    let mut stripped = bytes[..formats::header::HEADER_LEN].to_vec();
    for (at, len, kind) in block_kinds(&bytes) {
        if kind != changes {
            stripped.extend_from_slice(&bytes[at..at + len]);
        }
    }
    let without = read_log(&stripped).unwrap();
    assert!(without.problems.is_empty(), "{:?}", without.problems);
    assert!(without.load_changes.is_empty());
    assert_eq!(without.samples, log.samples);
    assert_eq!(without.intervals, log.intervals);
}

/// A load-changes block whose checksum matches but whose payload does not decode is reported, adds
/// no change, and costs no sample.
#[test]
fn a_bad_load_changes_block_is_reported_and_skipped() {
    let samples: Vec<Sample> = (0..100).map(|i| connecting(i, false)).collect();
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.intern_name("x");
    for s in &samples {
        w.push(*s).unwrap();
    }
    w.push_load_change(steer(5, 2.0));
    let bytes = w.finish().unwrap();
    let (at, len, kind) = *block_kinds(&bytes)
        .iter()
        .find(|b| b.2 == BlockKind::LoadChanges.code())
        .unwrap();
    for payload in [&[1u8][..], &[1, 3, 0, 0, 0], &[2, 1, 0], &[0, 9]] {
        let damaged = replace_block(&bytes, at, len, kind, payload);
        let log = read_log(&damaged).unwrap();
        assert_eq!(log.problems.len(), 1, "{payload:?}: {:?}", log.problems);
        assert!(
            log.problems[0].to_string().contains("load changes"),
            "{}",
            log.problems[0]
        );
        assert!(log.load_changes.is_empty());
        assert_eq!(log.samples.len(), samples.len());
    }
}
