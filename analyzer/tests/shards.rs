//! Sharded runs (issue 15): the shards of one test merged into one run, exactly; every shard judged;
//! what is missing, unfinished or mixed up said loudly or refused.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analyzer::analysis::RunAnalysis;
use analyzer::health::Verdict;
use analyzer::report::{Format, ReportOptions, analyze_runs, report};
use analyzer::shards::ShardStatus;
use analyzer::stats::PERCENTILES;
use util::{
    kill_the_engine, nearest_rank, raw_sharded_samples, shard_dirs, sharded_run, synth_run,
};

const PERMILLE: [u64; 6] = [500, 750, 900, 950, 990, 999];

fn analyze(dirs: &[PathBuf]) -> RunAnalysis {
    let (mut runs, _) = analyze_runs(dirs, std::time::Duration::ZERO, None).unwrap();
    assert_eq!(runs.len(), 1, "one merged run");
    runs.remove(0)
}

fn analyzer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exact nearest rank over the union of every shard's samples, total and per name, against sorting.
fn assert_exact_over_all_shards(a: &RunAnalysis, raw: &[(String, u64, u64, bool, u64)]) {
    assert_eq!(a.total.requests, raw.len() as u64);
    assert_eq!(a.total.failures, raw.iter().filter(|r| !r.3).count() as u64);
    let mut names: Vec<&str> = raw.iter().map(|r| r.0.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut groups: Vec<(&str, &analyzer::stats::Summary)> = vec![("total", &a.total)];
    for name in &names {
        groups.push((name, a.endpoints.iter().find(|e| e.name == *name).unwrap()));
    }
    for (label, summary) in groups {
        let mut lat: Vec<u64> = raw
            .iter()
            .filter(|r| label == "total" || r.0 == label)
            .map(|r| r.1)
            .collect();
        lat.sort_unstable();
        assert_eq!(summary.requests, lat.len() as u64, "{label}");
        assert_eq!(summary.latency.max, *lat.last().unwrap() as f64, "{label}");
        for (i, permille) in PERMILLE.iter().enumerate() {
            assert_eq!(
                summary.latency.percentiles[i],
                nearest_rank(&lat, *permille) as f64,
                "{label}: {}",
                PERCENTILES[i].0
            );
        }
    }
}

#[test]
fn percentiles_are_exact_over_the_union_of_every_shards_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sharded_run(tmp.path(), "run", 40_000, 4, 5, |p| {
        p.shard_shares = vec![0.4, 0.3, 0.2, 0.1];
        p.shard_offsets_ms = vec![0.0, 1.5, 0.5, 3.0];
    });
    let raw = raw_sharded_samples(&dir);
    assert_eq!(raw.len(), 40_000);
    let a = analyze(std::slice::from_ref(&dir));
    assert_exact_over_all_shards(&a, &raw);
    let shards = a.shards.as_ref().unwrap();
    assert_eq!((shards.count, shards.merged), (4, 4));
    assert!(shards.complete && !shards.partial);
    let requests: Vec<u64> = shards.shards.iter().map(|r| r.requests).collect();
    assert_eq!(requests, vec![16_000, 12_000, 8_000, 4_000]);
    assert_eq!(a.info.cores, 8);
    // One shard's percentile is not the merged one's: the merge is not an average of shard figures.
    assert!(a.health.verdict != Verdict::Invalid, "{:?}", a.health);
}

#[test]
fn the_run_directory_and_its_shards_one_by_one_give_the_same_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sharded_run(
        tmp.path(),
        "2026-03-02T09-00-00Z-shop",
        20_000,
        3,
        6,
        |_| {},
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let options = |runs: Vec<PathBuf>| ReportOptions {
        runs,
        out: None,
        formats: vec![Format::Html, Format::Markdown, Format::Json],
        skip: std::time::Duration::ZERO,
        baseline: None,
        exact_limit: None,
    };
    let outcome = report(&options(vec![dir.clone()])).unwrap();
    assert_eq!(
        outcome.html,
        Some(dir.join("report.html")),
        "written into the run's directory"
    );
    let (json, md, html) = (read("report.json"), read("report.md"), read("report.html"));
    // Listed one by one, in any order.
    let mut listed = shard_dirs(&dir);
    listed.reverse();
    report(&options(listed)).unwrap();
    assert_eq!(read("report.json"), json);
    assert_eq!(read("report.md"), md);
    assert_eq!(read("report.html"), html);
    assert!(md.contains("## Shards"), "{md}");
    assert!(
        md.contains("`2026-03-02T09-00-00Z-shop`"),
        "the run's label is its directory's name"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let shards = &parsed["runs"][0]["shards"];
    assert_eq!(shards["count"], 3);
    assert_eq!(shards["shards"].as_array().unwrap().len(), 3);
    for key in [
        "host",
        "status",
        "share",
        "requests",
        "rps",
        "failures",
        "lag_p99_ms",
        "cpu_max_pct",
        "verdict",
    ] {
        assert!(!shards["shards"][0][key].is_null(), "shards[].{key}");
    }
}

#[test]
fn time_series_put_every_shard_on_the_common_clock() {
    let tmp = tempfile::tempdir().unwrap();
    // Shard 1 starts 4.5 s after shard 0 (no common start would do that; clocks will not).
    let dir = sharded_run(tmp.path(), "run", 30_000, 2, 7, |p| {
        p.shard_offsets_ms = vec![0.0, 4_500.0];
        p.incidents = false;
    });
    let a = analyze(std::slice::from_ref(&dir));
    let raw = raw_sharded_samples(&dir);
    let ts = &a.timeseries;
    // The series holds whole seconds only: a sample in the trailing partial second counts nowhere.
    let mut expected = vec![0u64; ts.len()];
    for r in &raw {
        if let Some(n) = ((r.4 / 1_000_000) as usize)
            .checked_sub(ts.t_s[0] as usize)
            .and_then(|i| expected.get_mut(i))
        {
            *n += 1;
        }
    }
    assert_eq!(ts.requests, expected);
    // The interval records moved too: active users per second, summed over every core of both
    // shards on the common clock, shard 1's from second 4 on.
    let mut users = vec![0u64; ts.len()];
    for (shard, offset_us) in [("shard-00", 0), ("shard-01", 4_500_000)] {
        for core in ["core-0.log", "core-1.log"] {
            let log = formats::read_log_file(&dir.join(shard).join(core)).unwrap();
            for r in &log.intervals {
                let second = ((r.start_us + offset_us) / 1_000_000) as usize;
                if let Some(u) = second
                    .checked_sub(ts.t_s[0] as usize)
                    .and_then(|i| users.get_mut(i))
                {
                    *u += u64::from(r.users_max.max(r.active_users));
                }
            }
        }
    }
    let got: Vec<u64> = ts.users.iter().map(|u| u.unwrap_or(0)).collect();
    assert_eq!(got, users);
    let shards = a.shards.as_ref().unwrap();
    assert_eq!(shards.shards[1].start_offset_ms, Some(4_500.0));
    assert_eq!(shards.alignment.start_spread_ms, 4_500.0);
    assert!(
        shards
            .alignment
            .warnings
            .iter()
            .any(|w| w.contains("4,500 ms")),
        "{:?}",
        shards.alignment.warnings
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n.file == "(shards)" && n.message.contains("4,500 ms"))
    );
}

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

#[test]
fn shards_of_two_runs_are_refused_with_both_run_ids_and_their_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let a = sharded_run(tmp.path(), "a", 4_000, 2, 17, |_| {});
    let b = sharded_run(tmp.path(), "b", 4_000, 2, 18, |_| {});
    let id = |d: &Path| {
        formats::Run::open(&d.join("shard-00"))
            .unwrap()
            .manifest
            .unwrap()
            .run_id
            .to_string()
    };
    let (id_a, id_b) = (id(&a), id(&b));
    // Given one by one.
    let out = analyzer(&["report", s(&a.join("shard-00")), s(&b.join("shard-01"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("run {id_a} in {}", a.join("shard-00").display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("run {id_b} in {}", b.join("shard-01").display())),
        "{err}"
    );
    // Mixed up in one run directory.
    std::fs::remove_dir_all(a.join("shard-01")).unwrap();
    std::fs::rename(b.join("shard-01"), a.join("shard-01")).unwrap();
    let out = analyzer(&["report", s(&a)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} holds shards of 2 different runs", a.display())),
        "{err}"
    );
    assert!(err.contains(&id_a) && err.contains(&id_b), "{err}");
}

#[test]
fn the_same_shard_twice_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = sharded_run(tmp.path(), "run", 4_000, 2, 19, |_| {});
    // A retried pod left a second directory for shard 0.
    let copy = run.join("shard-07");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(run.join("shard-00")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let out = analyzer(&["report", s(&run)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shard 0 of run"), "{}", stderr(&out));
    assert!(stderr(&out).contains("is given twice"), "{}", stderr(&out));
    std::fs::remove_dir_all(&copy).unwrap();
    // The run directory and one of its shards.
    let out = analyzer(&["report", s(&run), s(&run.join("shard-01"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
}

#[test]
fn shards_with_different_profiles_are_refused_showing_the_first_differing_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = sharded_run(tmp.path(), "run", 4_000, 3, 20, |_| {});
    let set_profile = |shard: &str, profile: &str| {
        let dir = run.join(shard);
        let mut m = formats::Run::open(&dir).unwrap().manifest.unwrap();
        m.profile = profile.into();
        m.write_to(&dir).unwrap();
    };
    let profile = "(\n  name: \"shop\",\n  rate: 500,\n  duration: \"60s\",\n)";
    set_profile("shard-00", profile);
    set_profile("shard-01", profile);
    set_profile("shard-02", &profile.replace("rate: 500", "rate: 800"));
    let out = analyzer(&["report", s(&run)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("ran different profiles"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(
        err.contains(&format!(
            "{} has \"rate: 500,\"",
            run.join("shard-00").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} has \"rate: 800,\"",
            run.join("shard-02").display()
        )),
        "{err}"
    );
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

/// `export --csv` on a sharded run's directory writes the run as `report` merges it: one row per
/// sample of every shard, the run id in every row, cores numbered on through the shards, and times on
/// the common clock.
#[test]
fn a_sharded_run_exports_to_csv_as_one_run_on_the_common_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sharded_run(tmp.path(), "run", 12_000, 3, 23, |p| {
        p.shard_offsets_ms = vec![0.0, 1_500.0, 700.0];
    });
    let csv = tmp.path().join("samples.csv");
    let outcome = analyzer::export::export_csv(std::slice::from_ref(&dir), &csv).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows: Vec<(u64, u64)> = Vec::new();
    let mut cores = std::collections::BTreeSet::new();
    let run_id = formats::Run::open(&dir.join("shard-00"))
        .unwrap()
        .manifest
        .unwrap()
        .run_id
        .to_string();
    for line in text.lines().skip(1) {
        // No name or message of the synthetic shop holds a comma, so the fields split plainly.
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0], run_id, "{line}");
        cores.insert(f[1].parse::<u32>().unwrap());
        rows.push((f[3].parse().unwrap(), f[6].parse().unwrap()));
    }
    assert_eq!(outcome.rows, 12_000);
    assert_eq!(cores, (0..6).collect(), "two cores per shard, numbered on");
    let mut raw: Vec<(u64, u64)> = raw_sharded_samples(&dir)
        .into_iter()
        .map(|s| (s.4, s.1))
        .collect();
    raw.sort_unstable();
    rows.sort_unstable();
    assert_eq!(rows, raw, "(intended µs on the common clock, corrected µs)");
}
