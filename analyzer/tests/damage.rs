//! What a crash or damaged files leave behind still gives a report (issue 9): a run whose engine was
//! killed, a damaged manifest, bit flips in a log. Each problem is named with its file and position,
//! and everything else is analyzed.

mod util;

use std::path::Path;
use std::process::Command;

use analyzer::analysis::RunAnalysis;
use analyzer::report::analyze_runs;
use formats::RunState;
use util::{raw_samples, synth_run};

fn analyze_one(dir: &Path) -> RunAnalysis {
    let (mut runs, _) = analyze_runs(&[dir.to_owned()], std::time::Duration::ZERO, None).unwrap();
    runs.remove(0)
}

/// `analyzer report <dir>` as a user runs it; returns the Markdown report and stderr.
fn report_cli(dir: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .arg("report")
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    (md, stderr)
}

/// Makes `dir` look like the engine was killed mid-run: the manifest back to "running", and each log
/// cut in the middle of a block, without its end-of-log block.
fn kill_the_engine(dir: &Path) {
    let run = formats::Run::open(dir).unwrap();
    let mut manifest = run.manifest.unwrap();
    manifest.state = RunState::Running;
    manifest.ended_at = None;
    manifest.ended_unix_ns = None;
    manifest.write_to(dir).unwrap();
    for (_, path) in &run.logs {
        let data = std::fs::read(path).unwrap();
        std::fs::write(path, &data[..data.len() * 7 / 10]).unwrap();
    }
}

#[test]
fn a_killed_engine_run_reports_every_complete_block_and_never_finalized() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 30_000, 2, 31);
    kill_the_engine(&dir);
    // What the formats crate alone recovers: every sample of every complete block.
    let recoverable = raw_samples(&dir).len() as u64;
    assert!(recoverable > 15_000, "{recoverable} of 30000");

    let a = analyze_one(&dir);
    assert_eq!(
        a.total.requests, recoverable,
        "every complete block is analyzed"
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n.message.contains("never finalized")),
        "{:?}",
        a.notes
    );
    let (md, _) = report_cli(&dir);
    assert!(md.contains("never finalized"), "{md}");
    let quality = &md[md.find("## Data quality").unwrap()..];
    for core in ["core-0.log", "core-1.log"] {
        assert!(quality.contains(core), "{quality}");
    }
    assert!(quality.contains("ends inside a block"), "{quality}");
}

#[test]
fn a_truncated_manifest_is_named_with_its_position_and_the_logs_still_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 10_000, 2, 32);
    let path = dir.join("manifest.json");
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();

    let a = analyze_one(&dir);
    assert_eq!(a.total.requests, 10_000, "the logs are intact");
    let note = a
        .notes
        .iter()
        .find(|n| n.file == "manifest.json")
        .unwrap_or_else(|| panic!("{:?}", a.notes));
    assert!(
        note.message.contains("line") && note.message.contains("column"),
        "the note says where: {}",
        note.message
    );
    let (md, _) = report_cli(&dir);
    assert!(md.contains("manifest.json"), "{md}");
}

#[test]
fn bit_flips_in_the_manifest_and_a_log_are_located_and_the_rest_analyzed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 20_000, 2, 33);
    let before = raw_samples(&dir).len() as u64;
    // A flipped quote breaks the manifest's JSON.
    let path = dir.join("manifest.json");
    let mut text = std::fs::read(&path).unwrap();
    let quote = text.iter().position(|&b| b == b'"').unwrap();
    text[quote] ^= 0x01;
    std::fs::write(&path, text).unwrap();
    // Flipped bits in the middle of core-1's log break one block's checksum.
    let log = dir.join("core-1.log");
    let mut data = std::fs::read(&log).unwrap();
    let middle = data.len() / 2;
    for b in &mut data[middle..middle + 8] {
        *b ^= 0x10;
    }
    std::fs::write(&log, data).unwrap();

    let a = analyze_one(&dir);
    assert!(
        a.total.requests < before && a.total.requests > before / 2,
        "{} of {before}: only the damaged block is lost",
        a.total.requests
    );
    let log_note = a
        .notes
        .iter()
        .find(|n| n.file == "core-1.log")
        .unwrap_or_else(|| panic!("{:?}", a.notes));
    assert!(
        log_note.message.contains("byte "),
        "the note gives the offset: {}",
        log_note.message
    );
    assert!(
        a.notes.iter().any(|n| n.file == "manifest.json"),
        "{:?}",
        a.notes
    );
    let (md, _) = report_cli(&dir);
    let quality = &md[md.find("## Data quality").unwrap()..];
    assert!(quality.contains("core-1.log") && quality.contains("manifest.json"));
}

/// A log cut short after the engine finished it (an incomplete copy) while the manifest still says
/// "completed": the report covers part of the run, so the console must say so, not only the
/// report's data-quality section.
#[test]
fn a_log_cut_short_after_a_completed_run_is_a_warning_on_the_console() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 20_000, 2, 34);
    let log = dir.join("core-1.log");
    let data = std::fs::read(&log).unwrap();
    std::fs::write(&log, &data[..data.len() / 2]).unwrap();

    let a = analyze_one(&dir);
    let note = a
        .notes
        .iter()
        .find(|n| n.file == "core-1.log" && n.severity == analyzer::load::Severity::Warning)
        .unwrap_or_else(|| panic!("a warning about core-1.log: {:?}", a.notes));
    assert!(
        note.message.contains("the manifest says the run completed")
            && note.message.contains("cut short after the run")
            && note.message.contains("copy the run directory again"),
        "the note says what happened and what to do: {}",
        note.message
    );
    assert!(
        !a.notes
            .iter()
            .any(|n| n.file == "core-0.log" && n.severity == analyzer::load::Severity::Warning),
        "the intact log gets no warning: {:?}",
        a.notes
    );
    let (_, stderr) = report_cli(&dir);
    assert!(
        stderr.contains("core-1.log") && stderr.contains("cut short after the run"),
        "{stderr}"
    );
}

/// A run directory that does not exist (a typo) is bad input for every command that takes one: exit
/// 2, and the message says what the analyzer wants instead of only the operating system's "No such
/// file or directory".
#[test]
fn a_missing_run_directory_says_what_to_give_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let good = synth_run(tmp.path(), 2_000, 1, 35);
    let missing = tmp.path().join("runs").join("2026-12-06T03-30-32Z-dmeo");
    let m = missing.to_str().unwrap();
    let out_dir = tmp.path().join("out");
    let o = out_dir.to_str().unwrap();
    let csv = tmp.path().join("samples.csv");
    let hdr = tmp.path().join("run.hlog");
    let commands: [Vec<&str>; 5] = [
        vec!["report", m],
        vec!["check", m],
        vec!["compare", good.to_str().unwrap(), m, "--out", o],
        vec!["export", m, "--csv", csv.to_str().unwrap()],
        vec!["export", m, "--hdr", hdr.to_str().unwrap()],
    ];
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_analyzer"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "analyzer {args:?}: {stderr}");
        assert!(
            stderr.contains(m)
                && stderr.contains("there is no such directory")
                && stderr.contains("give a run directory made by `engine run`"),
            "analyzer {args:?}: {stderr}"
        );
    }
}
