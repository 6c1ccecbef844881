//! `check` and `compare` on sharded runs: the merged logs judged, and a sharded run compared with an
//! ordinary one.

use analyzer::report::analyze_runs;

use super::util::{sharded_run, synth_run};
use super::{analyze, analyzer, s, stderr};

#[test]
fn check_and_compare_judge_the_merged_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = sharded_run(tmp.path(), "base", 60_000, 3, 13, |p| p.incidents = false);
    let slower = sharded_run(tmp.path(), "slower", 60_000, 3, 14, |p| {
        p.incidents = false;
        p.latency_scale = 1.3;
    });
    let slo = tmp.path().join("slo.ron");
    std::fs::write(
        &slo,
        "(thresholds: {\"*\": [\"p99 < 10s\", \"rps > 600\"]})",
    )
    .unwrap();
    let out = analyzer(&["check", s(&base), "--slo", s(&slo)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    // The whole test's samples and throughput: no shard alone reaches 600 requests per second.
    assert!(text.contains("n = 60,000"), "{text}");
    let a = analyze(std::slice::from_ref(&base));
    assert!(a.shards.unwrap().shards.iter().all(|r| r.rps < 600.0));

    let out = analyzer(&[
        "compare",
        s(&base),
        s(&slower),
        "--out",
        s(&tmp.path().join("cmp")),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("cmp/compare.json")).unwrap(),
    )
    .unwrap();
    // Every latency in `slower` is 30 % higher: P99 is beyond the default 10 % limit.
    assert!(
        json["summary"]["beyond"].as_u64().unwrap() > 0,
        "{}",
        json["summary"]
    );
    assert_eq!(json["baseline"]["label"], "base");
    assert_eq!(json["candidate"]["label"], "slower");
}

#[test]
fn sharded_and_ordinary_runs_given_together_are_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let single = synth_run(&runs, 10_000, 2, 15);
    let sharded = sharded_run(&runs, "2026-03-02T10-00-00Z-sharded", 10_000, 2, 16, |_| {});
    let (runs, _) = analyze_runs(
        &[single.clone(), sharded.clone()],
        std::time::Duration::ZERO,
        None,
    )
    .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].shards.is_none());
    assert_eq!(runs[1].shards.as_ref().unwrap().count, 2);
    assert_eq!(runs[1].info.label, "2026-03-02T10-00-00Z-sharded");
    assert_eq!(runs[1].total.requests, 10_000);
}
