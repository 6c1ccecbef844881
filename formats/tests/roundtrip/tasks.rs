//! Task ids and iteration starts (v1.2): round trips with the task table, the cost of the extras
//! block's task columns, what a v1.1 reader sees, and undefined or out-of-range task ids.

use formats::{BlockKind, LogWriter, Sample, read_log};

use super::common;
use super::{block_kinds, connecting, log_of, replace_block};

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
