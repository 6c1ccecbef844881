//! Every shard judged: clock errors warned when large, a lagging pod named, many struggling shards
//! counted, and host names escaped in the shard table.

use analyzer::health::Verdict;

use super::util::sharded_run;
use super::{analyze, analyzer, s, stderr};

#[test]
fn a_large_clock_error_is_warned_and_a_small_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let good = sharded_run(tmp.path(), "good", 5_000, 2, 8, |p| {
        p.clock_errors_us = vec![300, 2_000];
    });
    let bad = sharded_run(tmp.path(), "bad", 5_000, 2, 9, |p| {
        p.clock_errors_us = vec![300, 35_000];
    });
    let a = analyze(&[good]);
    assert!(a.shards.unwrap().alignment.warnings.is_empty());
    let a = analyze(&[bad]);
    let warnings = a.shards.unwrap().alignment.warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("shard 1 (synth-pod-1)'s clock may be off by 35.0 ms"),
        "{warnings:?}"
    );
}

#[test]
fn one_lagging_pod_makes_the_run_suspect_and_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let steady = sharded_run(tmp.path(), "steady", 40_000, 4, 10, |p| p.incidents = false);
    let a = analyze(&[steady]);
    assert_eq!(a.health.verdict, Verdict::Ok, "{:?}", a.health.reasons);

    let lagging = sharded_run(tmp.path(), "lagging", 40_000, 4, 10, |p| {
        p.incidents = false;
        p.lagging_shard = Some(2);
    });
    let a = analyze(std::slice::from_ref(&lagging));
    assert_eq!(a.health.verdict, Verdict::Suspect, "{:?}", a.health.reasons);
    assert!(!a.health.reasons.is_empty());
    for reason in &a.health.reasons {
        assert!(reason.starts_with("shard 2 (synth-pod-2): "), "{reason}");
    }
    let rows = &a.shards.as_ref().unwrap().shards;
    let verdicts: Vec<Verdict> = rows.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        vec![Verdict::Ok, Verdict::Ok, Verdict::Suspect, Verdict::Ok]
    );
    assert!(rows[2].lag_p99_ms.unwrap() > 1.0);
    assert!(rows[2].cpu_max_pct.unwrap() >= 90.0);
    assert!(rows[0].cpu_max_pct.unwrap() < 90.0);

    let out = analyzer(&["report", s(&lagging), "--format", "md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let md = std::fs::read_to_string(lagging.join("report.md")).unwrap();
    let health = &md[md.find("## Generator health").unwrap()..md.find("## Shards").unwrap()];
    assert!(health.contains("**SUSPECT**"), "{health}");
    assert!(
        health.contains("shard 2 (synth-pod-2): capacity in seconds"),
        "{health}"
    );
    // The run's worst lag and peak CPU name the shard (and the core within it) they come from.
    let figures = health
        .lines()
        .find(|l| l.starts_with("| lagging |"))
        .unwrap();
    assert!(figures.contains(" ms (shard 2) |"), "{figures}");
    assert!(figures.contains(" % (shard 2 core "), "{figures}");
    let table = &md[md.find("| Shard |").unwrap()..];
    assert!(
        table.lines().nth(4).unwrap().contains("| synth-pod-2 |"),
        "{table}"
    );
    assert!(
        table.lines().nth(4).unwrap().contains("| SUSPECT |"),
        "{table}"
    );
}

#[test]
fn many_struggling_shards_are_counted_after_the_first_few() {
    let tmp = tempfile::tempdir().unwrap();
    // Every shard of the synthetic shop stalls once, so every shard is suspect.
    let dir = sharded_run(tmp.path(), "run", 16_000, 8, 22, |_| {});
    let a = analyze(std::slice::from_ref(&dir));
    assert_eq!(a.health.verdict, Verdict::Suspect);
    let rows = &a.shards.as_ref().unwrap().shards;
    assert!(rows.iter().all(|r| r.verdict == Verdict::Suspect));
    // The first six shards are named with their reasons (each shard may have several), in order;
    // the last line counts the rest.
    let (last, named) = a.health.reasons.split_last().unwrap();
    let mut shards_named: Vec<usize> = named
        .iter()
        .map(|reason| {
            (0..8)
                .find(|i| reason.starts_with(&format!("shard {i} (synth-pod-{i}): ")))
                .unwrap_or_else(|| panic!("names no shard: {reason}"))
        })
        .collect();
    assert!(shards_named.is_sorted(), "{:#?}", a.health.reasons);
    shards_named.dedup();
    assert_eq!(shards_named, (0..6).collect::<Vec<_>>());
    assert_eq!(
        last,
        "2 more shards have findings too (shards 6 and 7): their reasons are in the shard table"
    );
}

#[test]
fn hostile_host_names_are_escaped_in_the_shard_table() {
    let tmp = tempfile::tempdir().unwrap();
    let run = sharded_run(tmp.path(), "run", 4_000, 2, 23, |_| {});
    let evil = "<img src=x onerror=alert(1)>|**pod**";
    let dir = run.join("shard-01");
    let mut m = formats::Run::open(&dir).unwrap().manifest.unwrap();
    m.host.name = evil.into();
    m.state = formats::RunState::Running;
    m.write_to(&dir).unwrap();
    let out = analyzer(&["report", s(&run)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        !html.contains("<img"),
        "the host name is text, never markup"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(!md.contains("<img"));
    assert!(
        md.contains("\\|\\*\\*pod\\*\\*"),
        "pipes and emphasis are escaped"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][0]["shards"]["shards"][1]["host"], evil);
}
