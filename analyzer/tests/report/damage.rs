//! Damaged input: a corrupt block, a truncated log, a run never finalized, an unreadable log, a damaged
//! name table, a run without samples and a clock far in the future still give a report that says what
//! was wrong.

use std::path::Path;

use analyzer::report::{analyze_runs, report};
use formats::{Outcome, RunState};

use super::util::{handmade_run, raw_samples, synth_run};
use super::{all_formats, analyze_one};

fn flip_bytes(path: &Path, at: f64) {
    let mut data = std::fs::read(path).unwrap();
    let i = (data.len() as f64 * at) as usize;
    for b in &mut data[i..i + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(path, data).unwrap();
}

#[test]
fn corrupt_block_is_skipped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 40_000, 2, 13);
    let before = raw_samples(&dir).len() as u64;
    flip_bytes(&dir.join("core-1.log"), 0.5);
    let outcome = report(&all_formats(vec![dir.clone()], None)).unwrap();
    assert!(
        outcome.warnings.iter().any(|w| w.contains("core-1.log")),
        "{:?}",
        outcome.warnings
    );
    let a = analyze_one(&dir);
    assert!(
        a.total.requests < before && a.total.requests > before / 2,
        "{} of {before}",
        a.total.requests
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let quality = &html[html.find("id=\"quality\"").unwrap()..];
    assert!(quality.contains("core-1.log"));
    assert!(quality.contains("checksum"), "the note says what was wrong");
    assert!(
        quality.contains("missing from every figure"),
        "the note says samples were lost"
    );
    assert_eq!(
        quality.matches("missing from every figure").count(),
        1,
        "each problem is listed once"
    );
}

#[test]
fn truncated_log_still_gives_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 40_000, 2, 14);
    let path = dir.join("core-0.log");
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() * 6 / 10]).unwrap();
    report(&all_formats(vec![dir.clone()], None)).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let quality = &md[md.find("## Data quality").unwrap()..];
    assert!(quality.contains("core-0.log"));
    assert!(quality.contains("ends inside a block"), "{quality}");
    assert!(quality.contains("no end-of-file block"), "{quality}");
}

#[test]
fn never_finalized_run_is_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = handmade_run(
        tmp.path(),
        &[("GET /", 1000, Outcome::Ok, 200, None)],
        RunState::Running,
    );
    report(&all_formats(vec![dir.clone()], None)).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("never finalized"));
}

#[test]
fn unreadable_log_is_reported_and_the_rest_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 10_000, 2, 15);
    std::fs::write(dir.join("core-0.log"), b"this is not a sample log").unwrap();
    let a = analyze_one(&dir);
    assert!(a.total.requests > 0 && a.total.requests < 10_000);
    assert!(
        a.notes
            .iter()
            .any(|n| n.file == "core-0.log" && n.message.contains("not a sample log")),
        "{:?}",
        a.notes
    );
}

#[test]
fn damaged_name_table_shows_ids_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 5_000, 1, 18);
    // The first block after the 60-byte header is the request-name table.
    let path = dir.join("core-0.log");
    let mut data = std::fs::read(&path).unwrap();
    data[70] ^= 0xff;
    std::fs::write(&path, data).unwrap();
    let a = analyze_one(&dir);
    assert_eq!(a.total.requests, 5_000, "the samples themselves are intact");
    assert!(
        a.endpoints.iter().all(|e| e.name.starts_with('#')),
        "{:?}",
        a.endpoints.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n.message.contains("no table block defines")),
        "{:?}",
        a.notes
    );
}

#[test]
fn run_without_samples_still_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = handmade_run(tmp.path(), &[], RunState::Completed);
    let outcome = report(&all_formats(vec![dir.clone()], None)).unwrap();
    assert!(outcome.html.is_some());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][0]["requests"], 0);
    assert_eq!(json["runs"][0]["endpoints"], serde_json::json!([]));
}

#[test]
fn a_start_far_in_the_future_cuts_the_series_instead_of_exhausting_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("2026-03-02T09-00-00Z-clock-fault");
    std::fs::create_dir_all(&dir).unwrap();
    let header = formats::LogHeader::new(formats::RunId([9; 16]), 0, 0, 1_772_442_000_000_000_000);
    let mut log = formats::LogWriter::new(&header, Vec::new()).unwrap();
    let name = log.intern_name("GET /");
    for intended_us in [0, 1_000_000, u64::from(u32::MAX) * 1_000_000] {
        let s = formats::Sample {
            name,
            intended_us,
            actual_us: intended_us,
            latency_us: 500,
            ..Default::default()
        };
        log.push(s).unwrap();
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    for limit in [None, Some(1)] {
        let (runs, _) =
            analyze_runs(std::slice::from_ref(&dir), std::time::Duration::ZERO, limit).unwrap();
        let a = &runs[0];
        assert_eq!(a.total.requests, 3);
        assert!(a.timeseries.len() <= analyzer::timeseries::MAX_SECONDS as usize);
        assert!(
            a.notes
                .iter()
                .any(|n| n.message.contains("more than a week")),
            "{:?}",
            a.notes
        );
    }
}
