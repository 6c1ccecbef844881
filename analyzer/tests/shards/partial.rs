//! What is missing or unfinished said loudly: a shard killed mid-run, a missing shard with its share
//! (and the judging commands refusing it), an unreadable shard manifest.

use std::path::PathBuf;

use analyzer::health::Verdict;
use analyzer::shards::ShardStatus;

use super::util::{kill_the_engine, raw_sharded_samples, shard_dirs, sharded_run};
use super::{analyze, analyzer, assert_exact_over_all_shards, s, stderr};

#[test]
fn a_shard_killed_mid_run_is_merged_up_to_its_last_complete_block_and_named_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sharded_run(tmp.path(), "run", 60_000, 3, 11, |p| p.incidents = false);
    kill_the_engine(&dir.join("shard-01"), 0.6);
    // What the formats crate alone recovers: every complete block of every shard.
    let raw = raw_sharded_samples(&dir);
    assert!(raw.len() > 45_000 && raw.len() < 60_000, "{}", raw.len());
    let a = analyze(std::slice::from_ref(&dir));
    assert_exact_over_all_shards(&a, &raw);
    let shards = a.shards.as_ref().unwrap();
    assert_eq!(shards.shards[1].status, ShardStatus::Unfinished);
    assert!(!shards.complete && !shards.partial);
    assert_eq!(shards.alerts.len(), 1, "{:?}", shards.alerts);
    assert!(
        shards.alerts[0].starts_with("shard 1 (synth-pod-1) never finalized"),
        "{:?}",
        shards.alerts
    );
    assert!(
        shards.alerts[0].contains("33.3% of the load"),
        "{:?}",
        shards.alerts
    );
    assert_eq!(a.health.verdict, Verdict::Suspect, "{:?}", a.health.reasons);
    assert!(
        a.health
            .reasons
            .iter()
            .any(|r| r.starts_with("shard 1 (synth-pod-1) was never finalized"))
    );
    assert!(!a.info.finalized);
    assert!(
        a.info.state.contains("shard 1 never finalized"),
        "{}",
        a.info.state
    );

    let out = analyzer(&["report", s(&dir), "--format", "md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shard-01/manifest.json: shard 1 (synth-pod-1) was never finalized"),
        "{}",
        stderr(&out)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let top = &md[..md.find("## Generator health").unwrap()];
    assert!(top.contains("**INCOMPLETE**"), "{top}");
    let quality = &md[md.find("## Data quality").unwrap()..];
    assert!(quality.contains("shard-01/core-0.log"), "{quality}");
    assert!(quality.contains("ends inside a block"), "{quality}");
}

#[test]
fn a_missing_shard_is_said_with_its_share_and_judging_commands_refuse_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sharded_run(tmp.path(), "run", 20_000, 4, 12, |p| {
        p.shard_shares = vec![0.4, 0.3, 0.2, 0.1];
    });
    let removed = tmp.path().join("elsewhere");
    std::fs::rename(dir.join("shard-02"), &removed).unwrap();
    let a = analyze(std::slice::from_ref(&dir));
    let shards = a.shards.as_ref().unwrap();
    assert!(shards.partial);
    assert!((shards.missing_share - 0.2).abs() < 1e-12);
    assert_eq!(shards.shards[2].status, ShardStatus::Missing);
    assert_eq!(a.total.requests, 20_000 - 4_000);
    assert!(
        shards.alerts[0].contains("shard 2 missing"),
        "{:?}",
        shards.alerts
    );
    assert!(
        shards.alerts[0].contains("20% of the load is in no figure"),
        "{:?}",
        shards.alerts
    );
    let note = a.notes.iter().find(|n| n.file == "shard-02").unwrap();
    assert!(
        note.message.contains("shard 2 of 4 is missing"),
        "{}",
        note.message
    );
    assert!(
        note.message.contains("It carried 20% of the load"),
        "{}",
        note.message
    );
    assert_eq!(a.health.verdict, Verdict::Suspect);

    let out = analyzer(&["report", s(&dir), "--format", "md"]);
    assert_eq!(out.status.code(), Some(0));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md[..md.find("## Generator health").unwrap()].contains("**PARTIAL**"),
        "{md}"
    );

    // Shard directories given one by one, leaving out one that is there: the note says how to include it.
    std::fs::rename(&removed, dir.join("shard-02")).unwrap();
    let given: Vec<PathBuf> = shard_dirs(&dir)
        .into_iter()
        .filter(|d| !d.ends_with("shard-01"))
        .collect();
    let a = analyze(&given);
    let note = a.notes.iter().find(|n| n.file == "shard-01").unwrap();
    assert!(
        note.message.contains("exists but was not given"),
        "{}",
        note.message
    );

    // check and compare judge whole tests only.
    std::fs::rename(dir.join("shard-02"), &removed).unwrap();
    let slo = tmp.path().join("slo.ron");
    std::fs::write(&slo, "(thresholds: {\"*\": [\"p99 < 10s\"]})").unwrap();
    let out = analyzer(&["check", s(&dir), "--slo", s(&slo)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 of 4 shards is not there (shard 2 missing), 20% of the load"),
        "{}",
        stderr(&out)
    );
    let out = analyzer(&["check", s(&dir), "--slo", s(&slo), "--allow-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = analyzer(&["compare", s(&dir), s(&dir), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--allow-partial"), "{}", stderr(&out));
}

#[test]
fn an_unreadable_shard_manifest_is_reported_and_its_logs_still_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let run = sharded_run(tmp.path(), "run", 12_000, 3, 21, |_| {});
    std::fs::write(
        run.join("shard-01/manifest.json"),
        "{\"schema\": 1, \"run_id\": ",
    )
    .unwrap();
    let a = analyze(std::slice::from_ref(&run));
    assert_eq!(a.total.requests, 12_000, "the shard's logs are merged");
    let shards = a.shards.as_ref().unwrap();
    assert_eq!(shards.shards[1].status, ShardStatus::Unknown);
    assert_eq!(shards.shards[1].requests, 4_000);
    let note = a
        .notes
        .iter()
        .find(|n| n.file == "shard-01/manifest.json")
        .unwrap();
    assert!(
        note.message.contains("logs were read and merged"),
        "{}",
        note.message
    );

    // The same shard given on its own: its index comes from its directory's name, its run from its logs.
    let given: Vec<PathBuf> = shard_dirs(&run);
    assert_eq!(analyze(&given).total.requests, 12_000);

    // Nothing readable in it at all: counted as missing, with its share.
    for f in ["core-0.log", "core-1.log"] {
        std::fs::remove_file(run.join("shard-01").join(f)).unwrap();
    }
    let a = analyze(std::slice::from_ref(&run));
    let shards = a.shards.as_ref().unwrap();
    assert_eq!(shards.shards[1].status, ShardStatus::Unreadable);
    assert!(shards.partial);
    assert!((shards.missing_share - 1.0 / 3.0).abs() < 1e-9);
    let out = analyzer(&["report", s(&run), "--format", "md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shard-01: shard 1 could not be read"),
        "{}",
        stderr(&out)
    );
}
