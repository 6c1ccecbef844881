//! Exact figures: percentiles and counts against sorting the raw latencies, on one core, several cores
//! and several runs, the warm-up skipped, and histograms within their stated error past the exact limit.

use std::path::Path;

use analyzer::analysis::RunAnalysis;
use analyzer::report::{analyze_runs, report};
use analyzer::stats::PERCENTILES;
use formats::{Outcome, RunState};

use super::util::{handmade_run, nearest_rank, raw_samples, synth_run};
use super::{all_formats, analyze_one};

const PERMILLE: [u64; 6] = [500, 750, 900, 950, 990, 999];

/// Checks a run's totals and per-name figures against sorting the raw latencies.
fn assert_matches_raw(analysis: &RunAnalysis, dir: &Path) {
    let raw = raw_samples(dir);
    assert_eq!(analysis.total.requests, raw.len() as u64);
    assert_eq!(
        analysis.total.failures,
        raw.iter().filter(|s| !s.3).count() as u64
    );
    let check = |label: &str,
                 summary: &analyzer::stats::Summary,
                 rows: Vec<&(String, u64, u64, bool, u64)>| {
        let mut corrected: Vec<u64> = rows.iter().map(|s| s.1).collect();
        let mut uncorrected: Vec<u64> = rows.iter().map(|s| s.2).collect();
        corrected.sort_unstable();
        uncorrected.sort_unstable();
        assert_eq!(summary.requests, corrected.len() as u64, "{label}: count");
        assert_eq!(summary.latency.min, corrected[0] as f64, "{label}: min");
        assert_eq!(
            summary.latency.max,
            *corrected.last().unwrap() as f64,
            "{label}: max"
        );
        let mean = corrected.iter().sum::<u64>() as f64 / corrected.len() as f64;
        assert!(
            (summary.latency.mean - mean).abs() < 1e-6 * mean,
            "{label}: mean"
        );
        for (i, permille) in PERMILLE.iter().enumerate() {
            assert_eq!(
                summary.latency.percentiles[i],
                nearest_rank(&corrected, *permille) as f64,
                "{label}: corrected {}",
                PERCENTILES[i].0
            );
            assert_eq!(
                summary.latency_uncorrected.percentiles[i],
                nearest_rank(&uncorrected, *permille) as f64,
                "{label}: uncorrected {}",
                PERCENTILES[i].0
            );
        }
        let failures = rows.iter().filter(|s| !s.3).count() as u64;
        assert_eq!(summary.failures, failures, "{label}: failures");
    };
    check("total", &analysis.total, raw.iter().collect());
    let mut names: Vec<&str> = raw.iter().map(|s| s.0.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        analysis
            .endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    for e in &analysis.endpoints {
        check(&e.name, e, raw.iter().filter(|s| s.0 == e.name).collect());
    }
}

#[test]
fn percentiles_and_counts_match_sorting_on_one_core() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 12_345, 1, 3);
    assert_matches_raw(&analyze_one(&dir), &dir);
}

#[test]
fn percentiles_and_counts_match_sorting_on_several_cores() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 30_001, 3, 4);
    let analysis = analyze_one(&dir);
    assert_eq!(analysis.info.cores, 3);
    assert_matches_raw(&analysis, &dir);
}

#[test]
fn percentiles_and_counts_match_sorting_for_each_of_several_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = synth_run(tmp.path(), 8_000, 2, 5);
    let b = synth_run(tmp.path(), 11_000, 2, 6);
    let (runs, warnings) =
        analyze_runs(&[a.clone(), b.clone()], std::time::Duration::ZERO, None).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(runs.len(), 2);
    assert_matches_raw(&runs[0], &a);
    assert_matches_raw(&runs[1], &b);
}

#[test]
fn nearest_rank_handles_small_counts_exactly() {
    // Latencies 1..=10 ms: nearest rank gives P50 = 5 ms, P90 = 9 ms, P99 = P99.9 = 10 ms.
    let tmp = tempfile::tempdir().unwrap();
    let requests: Vec<(&str, u32, Outcome, u16, Option<&str>)> = (1..=10)
        .map(|i| ("GET /", i * 1000, Outcome::Ok, 200, None))
        .collect();
    let dir = handmade_run(tmp.path(), &requests, RunState::Completed);
    let a = analyze_one(&dir);
    assert_eq!(
        a.total.latency.percentiles,
        [5000.0, 8000.0, 9000.0, 10_000.0, 10_000.0, 10_000.0]
    );
    assert_eq!(a.total.latency.min, 1000.0);
    assert_eq!(a.total.latency.max, 10_000.0);
}

#[test]
fn skip_drops_the_warm_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 10_000, 2, 8);
    let kept = raw_samples(&dir)
        .iter()
        .filter(|s| s.4 >= 30_000_000)
        .count() as u64;
    let (runs, _) = analyze_runs(&[dir], std::time::Duration::from_secs(30), None).unwrap();
    assert_eq!(runs[0].total.requests, kept);
    assert_eq!(runs[0].skipped, 10_000 - kept);
    assert!(runs[0].timeseries.t_s[0] >= 30);
}

#[test]
fn synth_is_deterministic_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = synth_run(&tmp.path().join("a"), 5_000, 2, 11);
    let b = synth_run(&tmp.path().join("b"), 5_000, 2, 11);
    let c = synth_run(&tmp.path().join("c"), 5_000, 2, 12);
    let read = |d: &Path| std::fs::read(d.join("core-1.log")).unwrap();
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
    let raw = raw_samples(&a);
    assert!(raw.iter().any(|s| !s.3), "synth writes some failures");
    assert!(
        raw.iter().any(|s| s.1 > s.2 + 1000),
        "synth's stall makes corrected latency differ"
    );
}

#[test]
fn runs_past_the_exact_limit_use_histograms_within_the_stated_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 40_000, 2, 17);
    let (runs, _) = analyze_runs(
        std::slice::from_ref(&dir),
        std::time::Duration::ZERO,
        Some(10_000),
    )
    .unwrap();
    let a = &runs[0];
    assert_eq!(a.method, analyzer::analysis::METHOD_APPROX);
    assert!(
        a.notes.iter().any(|n| n.message.contains("HdrHistograms")),
        "{:?}",
        a.notes
    );
    let raw = raw_samples(&dir);
    assert_eq!(a.total.requests, raw.len() as u64, "counts stay exact");
    assert_eq!(a.total.failures, raw.iter().filter(|s| !s.3).count() as u64);
    assert_eq!(a.timeseries.requests.iter().sum::<u64>(), raw.len() as u64);
    let check = |label: &str,
                 summary: &analyzer::stats::Summary,
                 rows: Vec<&(String, u64, u64, bool, u64)>| {
        let mut corrected: Vec<u64> = rows.iter().map(|s| s.1).collect();
        corrected.sort_unstable();
        assert_eq!(summary.requests, corrected.len() as u64, "{label}");
        assert_eq!(
            summary.latency.min, corrected[0] as f64,
            "{label}: min is exact"
        );
        assert_eq!(
            summary.latency.max,
            *corrected.last().unwrap() as f64,
            "{label}: max is exact"
        );
        let mean = corrected.iter().sum::<u64>() as f64 / corrected.len() as f64;
        assert!(
            (summary.latency.mean - mean).abs() <= 1e-9 * mean,
            "{label}: mean is exact"
        );
        for (i, permille) in PERMILLE.iter().enumerate() {
            let exact = nearest_rank(&corrected, *permille) as f64;
            let approx = summary.latency.percentiles[i];
            assert!(
                (approx - exact).abs() <= exact * 1e-3 + 1.0,
                "{label} {}: {approx} vs exact {exact}",
                PERCENTILES[i].0
            );
        }
    };
    check("total", &a.total, raw.iter().collect());
    for e in &a.endpoints {
        check(&e.name, e, raw.iter().filter(|s| s.0 == e.name).collect());
    }
    let out = tmp.path().join("out");
    let mut options = all_formats(vec![dir], Some(out.clone()));
    options.exact_limit = Some(10_000);
    report(&options).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["runs"][0]["percentile_method"],
        "hdr_histogram_3_digits"
    );
}
