//! Load changes (v1.2, a steered run): read back in order beside every sample, skipped by a v1.1
//! reader, and a damaged block reported without costing a sample.

use formats::{BlockKind, LoadChange, LogWriter, Sample, read_log};

use super::common;
use super::{block_kinds, connecting, replace_block};

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
