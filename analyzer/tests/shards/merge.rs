//! The shards merged into one run, exactly: percentiles over the union of every shard's samples, the
//! same report from the run directory or its shards one by one, time series on the common clock, and
//! the CSV export as one run.

use std::path::PathBuf;

use analyzer::health::Verdict;
use analyzer::report::{Format, ReportOptions, report};

use super::util::{raw_sharded_samples, shard_dirs, sharded_run};
use super::{analyze, assert_exact_over_all_shards};

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
