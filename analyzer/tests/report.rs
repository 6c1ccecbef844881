//! The analyzer's behaviour, feature by feature: exact percentiles and counts, the report formats,
//! escaping of hostile text, damaged input, and the command line.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use analyzer::analysis::RunAnalysis;
use analyzer::report::{Format, ReportOptions, analyze_runs, report};
use analyzer::stats::PERCENTILES;
use formats::{Outcome, RunState};
use util::{handmade_run, nearest_rank, raw_samples, synth_run};

const PERMILLE: [u64; 6] = [500, 750, 900, 950, 990, 999];

fn analyze_one(dir: &Path) -> RunAnalysis {
    let (mut runs, _) = analyze_runs(&[dir.to_owned()], std::time::Duration::ZERO, None).unwrap();
    runs.remove(0)
}

fn all_formats(runs: Vec<PathBuf>, out: Option<PathBuf>) -> ReportOptions {
    ReportOptions {
        runs,
        out,
        formats: vec![Format::Html, Format::Markdown, Format::Json],
        skip: std::time::Duration::ZERO,
        baseline: None,
        exact_limit: None,
    }
}

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
fn json_report_follows_schema_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 10_000, 2, 9);
    let outcome = report(&all_formats(vec![dir.clone()], None)).unwrap();
    assert_eq!(outcome.html, Some(dir.join("report.html")));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], 1);
    let run = &json["runs"][0];
    for key in [
        "id",
        "profile",
        "started_at",
        "duration_s",
        "requests",
        "failures",
        "rps",
        "latency_ms",
        "latency_uncorrected_ms",
        "endpoints",
        "failures_by_kind",
        "failure_messages",
        "timeseries",
    ] {
        assert!(!run[key].is_null(), "missing {key}");
    }
    for key in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
        assert!(run["latency_ms"][key].is_number(), "latency_ms.{key}");
        assert!(
            run["latency_uncorrected_ms"][key].is_number(),
            "latency_uncorrected_ms.{key}"
        );
    }
    assert_eq!(run["requests"], 10_000);
    let ts = &run["timeseries"];
    let len = ts["t_s"].as_array().unwrap().len();
    assert!(len >= 59);
    for key in ["rps", "failures", "p50_ms", "p99_ms", "users"] {
        assert_eq!(ts[key].as_array().unwrap().len(), len, "timeseries.{key}");
    }
    let per_second: u64 = ts["rps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per_second, 10_000);
    let endpoint = &run["endpoints"][0];
    for key in ["name", "requests", "failures", "rps", "latency_ms"] {
        assert!(!endpoint[key].is_null(), "endpoints[].{key}");
    }
    let m = &run["failure_messages"][0];
    for key in ["name", "kind", "message", "count"] {
        assert!(!m[key].is_null(), "failure_messages[].{key}");
    }
    // The synthetic run's generator stalls for half a percent of it (another process holds its CPU):
    // lag far past 1 ms in that second, so the run is suspect (not invalid: one second of 60, nothing
    // dropped), and says why, naming the cause with its evidence.
    let health = &run["health"];
    assert_eq!(health["verdict"], "SUSPECT", "{health}");
    assert!(health["lagging_seconds"].as_u64().unwrap() >= 1);
    assert!(health["worst_lag_p99_ms"].as_f64().unwrap() > 1.0);
    assert_eq!(health["iterations_dropped"], 0);
    let reasons = health["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("started over 1 ms late in")),
        "{reasons:?}"
    );
    assert_eq!(health["causes"][0]["cause"], "preempted", "{health}");
    assert!(
        reasons.iter().any(|r| {
            let r = r.as_str().unwrap();
            r.starts_with("preempted in second") && r.contains("for a CPU while runnable")
        }),
        "{reasons:?}"
    );
    let second = &health["lagging"][0];
    for key in [
        "second",
        "requests",
        "late",
        "cause",
        "core",
        "cpu_pct",
        "run_delay_ms",
    ] {
        assert!(!second[key].is_null(), "health.lagging[].{key}: {second}");
    }
    assert_eq!(ts["dropped"].as_array().unwrap().len(), len);
    // 10,000 samples cannot support P99.9 (10 above it needs 10,000 ≥ 10 — exactly enough) but each
    // endpoint has fewer, so its P99.9 is marked.
    assert_eq!(run["latency_ms"]["unsupported"], serde_json::json!([]));
    assert!(run["endpoints"].as_array().unwrap().iter().any(|e| {
        e["latency_ms"]["unsupported"]
            .as_array()
            .unwrap()
            .contains(&"p999".into())
    }));
}

/// Compares `text` with the committed snapshot, or rewrites it when UPDATE_SNAPSHOTS is set.
fn assert_snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected != text {
        let line = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{name} differs from its snapshot from line {}:\n  snapshot: {}\n  now:      {}\nrun with UPDATE_SNAPSHOTS=1 to accept",
            line + 1,
            expected.lines().nth(line).unwrap_or(""),
            text.lines().nth(line).unwrap_or("")
        );
    }
}

#[test]
fn html_and_markdown_match_their_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 20_000, 2, 42);
    report(&all_formats(vec![dir.clone()], None)).unwrap();
    assert_snapshot(
        "synth-42.html",
        &std::fs::read_to_string(dir.join("report.html")).unwrap(),
    );
    assert_snapshot(
        "synth-42.md",
        &std::fs::read_to_string(dir.join("report.md")).unwrap(),
    );
}

/// Every value of a `src="…"` or `href="…"` attribute in `html`.
fn linked_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attr in ["src=\"", "href=\"", "src='", "href='"] {
        let quote = attr.chars().last().unwrap();
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find(quote).unwrap_or(rest.len());
            urls.push(rest[..end].to_owned());
        }
    }
    urls
}

#[test]
fn html_links_nothing_outside_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let a = synth_run(tmp.path(), 5_000, 2, 1);
    let b = synth_run(tmp.path(), 5_000, 2, 2);
    for (runs, out) in [
        (vec![a.clone()], None),
        (vec![a, b], Some(tmp.path().join("cmp"))),
    ] {
        let outcome = report(&all_formats(runs, out.clone())).unwrap();
        let html = std::fs::read_to_string(outcome.html.unwrap()).unwrap();
        let urls = linked_urls(&html);
        assert!(
            !urls.is_empty(),
            "the table of contents links within the page"
        );
        for url in urls {
            assert!(url.starts_with('#'), "external or file link {url:?}");
        }
        assert!(!html.contains("<link"), "no external stylesheet");
        assert!(!html.contains("url("), "no CSS url()");
        assert!(!html.contains("@import"), "no CSS import");
        // A single run also has the timing-phases chart; a comparison does not.
        let charts = if out.is_none() { 8 } else { 7 };
        assert_eq!(html.matches("<svg").count(), charts, "inline charts");
    }
}

#[test]
fn hostile_text_from_the_target_is_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let evil = "<script>alert(1)</script>";
    let evil_name = "GET /<img src=x onerror=alert(2)>|**x**";
    let requests = vec![
        ("GET /", 1000, Outcome::Ok, 200, None),
        (evil_name, 2000, Outcome::Status, 500, Some(evil)),
        ("GET /", 3000, Outcome::Check, 200, Some(evil)),
    ];
    let dir = handmade_run(tmp.path(), &requests, RunState::Completed);
    report(&all_formats(vec![dir.clone()], None)).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!html.contains(evil));
    assert!(!html.contains("<img"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the report's own sorting script"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!md.contains("<script") && !md.contains("<img"));
    assert!(
        md.contains("\\|\\*\\*x\\*\\*"),
        "pipes and emphasis in names are escaped"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["runs"][0]["failure_messages"][0]["message"], evil,
        "JSON keeps the text as it was"
    );
}

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
fn comparison_report_has_a_column_per_run_and_deltas() {
    let tmp = tempfile::tempdir().unwrap();
    let a = synth_run(tmp.path(), 8_000, 2, 21);
    let b = synth_run(tmp.path(), 12_000, 2, 22);
    let out = tmp.path().join("cmp");
    let mut options = all_formats(vec![a.clone(), b.clone()], Some(out.clone()));
    options.baseline = Some(b.clone());
    report(&options).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Comparison of 2 runs"));
    assert!(md.contains("baseline"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    assert_eq!(json["runs"][0]["requests"], 8_000);
    assert_eq!(json["runs"][1]["requests"], 12_000);
    assert_eq!(json["baseline"], json["runs"][1]["id"]);
    // Requests: 8,000 against a 12,000 baseline is −33.3%.
    assert!(md.contains("8,000 (\u{2212}33.3%)"), "{md}");
}

#[test]
fn export_writes_one_row_per_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 3_000, 2, 16);
    let csv = tmp.path().join("samples.csv");
    let outcome = analyzer::export::export_csv(&[dir], &csv).unwrap();
    assert_eq!(outcome.rows, 3_000);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 3_001);
    assert_eq!(text.lines().next().unwrap(), analyzer::export::CSV_HEADER);
}

fn analyzer_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
}

#[test]
fn cli_prints_the_html_path_last() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let status = analyzer_bin()
        .args([
            "synth",
            "--samples",
            "2000",
            "--cores",
            "2",
            "--seed",
            "1",
            "--out",
        ])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = analyzer_bin()
        .arg("report")
        .arg(&dir)
        .args(["--format", "html,json", "--skip", "5s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().last().unwrap(),
        dir.join("report.html").display().to_string()
    );
    assert!(dir.join("report.json").exists());
    assert!(!dir.join("report.md").exists());
}

#[test]
fn cli_exits_2_when_nothing_is_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzer_bin()
        .arg("report")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not a run directory"), "{stderr}");
    assert!(
        stderr.contains(&tmp.path().display().to_string()),
        "the message names the directory: {stderr}"
    );
}

#[test]
fn cli_names_the_package_when_chromium_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 1_000, 1, 1);
    let out = analyzer_bin()
        .arg("report")
        .arg(&dir)
        .args(["--format", "pdf"])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("chromium") && stderr.contains("apt-get install"),
        "{stderr}"
    );
}

#[test]
fn help_shows_the_pipeline() {
    let out = analyzer_bin().arg("--help").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("engine run profiles/demo.ron"));
    assert!(stdout.contains("analyzer report runs/<id>"));
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

/// A 3 s run whose core closed a 10 ms interval after the planned end (busy shutting down: 103 % CPU)
/// and whose users left during the last second: the series, charts and health cover the 3 whole
/// seconds, the CPU never reads 103 %, and the last second shows the users that ran in it.
#[test]
fn the_partial_end_interval_is_left_out_everywhere() {
    use formats::{IntervalStats, LogHeader, LogWriter, RunId, Sample};
    let tmp = tempfile::tempdir().unwrap();
    let dir = handmade_run(
        tmp.path(),
        &[("GET /", 1_000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    let header = LogHeader::new(RunId([3; 16]), 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = LogWriter::new(&header, Vec::new()).unwrap();
    let name = log.intern_name("GET /");
    for second in 0..3u64 {
        for i in 0..100u64 {
            let t = second * 1_000_000 + i * 10_000;
            log.push(Sample {
                name,
                intended_us: t,
                actual_us: t + 5,
                latency_us: 1_000,
                status: 200,
                ..Sample::default()
            })
            .unwrap();
        }
        log.push_interval(IntervalStats {
            start_us: second * 1_000_000,
            duration_us: 1_000_000,
            requests: 100,
            iterations_started: 100,
            cpu_user_us: 20_000,
            // Users leave during the last second, before its interval closes.
            active_users: if second == 2 { 0 } else { 10 },
            users_max: 10,
            run_delay_us: Some(0),
            ..IntervalStats::default()
        });
    }
    log.push_interval(IntervalStats {
        start_us: 3_000_200,
        duration_us: 10_000,
        requests: 1,
        cpu_user_us: 10_300,
        late_requests: 1,
        lag_max_us: 2_000,
        ..IntervalStats::default()
    });
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    let a = analyze_one(&dir);
    assert_eq!(a.timeseries.t_s, [0, 1, 2]);
    assert_eq!(a.timeseries.users, [Some(10), Some(10), Some(10)]);
    assert!(
        a.timeseries
            .cpu_max_pct
            .iter()
            .all(|c| c.is_some_and(|c| c < 3.0)),
        "{:?}",
        a.timeseries.cpu_max_pct
    );
    assert_eq!(a.health.seconds, 3);
    assert_eq!(
        a.health.verdict,
        analyzer::health::Verdict::Ok,
        "{:?}",
        a.health.reasons
    );
    assert!(a.health.cpu_max_pct < 3.0);
    let end = a.timeseries.partial_end.unwrap();
    assert_eq!((end.requests, end.samples_left_out), (1, 0));
}

/// A run steered twice while it went, as the engine records it: every core's log holds every change.
fn steered_run(parent: &Path) -> PathBuf {
    use formats::{LoadChange, LogHeader, LogWriter, Manifest, RunId, Sample};
    let base = handmade_run(
        parent,
        &[("GET /", 1000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(base.join("manifest.json")).unwrap()).unwrap();
    let changes = [
        LoadChange {
            at_us: 3_400_000,
            what: LoadChange::USERS,
            from: 10.0,
            to: 20.0,
            ramp_us: 2_000_000,
            who: "dashboard".into(),
        },
        LoadChange {
            at_us: 7_050_000,
            what: LoadChange::USERS,
            from: 20.0,
            to: 5.0,
            ramp_us: 0,
            who: "dashboard".into(),
        },
    ];
    let mut logs = Vec::new();
    for core in 0..2u32 {
        let header = LogHeader::new(RunId([3; 16]), core, 1_000, manifest.started_unix_ns);
        let mut log = LogWriter::new(&header, Vec::new()).unwrap();
        let name = log.intern_name("GET /");
        for i in 0..1_000u64 {
            let t = i * 10_000 + u64::from(core);
            log.push(Sample {
                name,
                intended_us: t,
                actual_us: t,
                latency_us: 1_000 + (i % 17) as u32,
                status: 200,
                ..Sample::default()
            })
            .unwrap();
            for c in &changes {
                if t / 10_000 == c.at_us / 10_000 {
                    log.push_load_change(c.clone());
                }
            }
            if i % 100 == 99 {
                log.flush().unwrap();
            }
        }
        let file = formats::run::log_file_name(core);
        std::fs::write(base.join(&file), log.finish().unwrap()).unwrap();
        logs.push(formats::LogFile {
            core,
            cpu: None,
            file,
        });
    }
    Manifest {
        logs,
        log_format: "1.2".into(),
        ..manifest
    }
    .write_to(&base)
    .unwrap();
    base
}

/// The changes of a steered run are listed once each (not once per core) in every format, and marked
/// on the time-series charts at the whole second each began.
#[test]
fn load_changes_are_listed_and_marked_on_the_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = steered_run(tmp.path());
    let analysis = analyze_one(&dir);
    let at: Vec<u64> = analysis.load_changes.iter().map(|c| c.at_us).collect();
    assert_eq!(at, [3_400_000, 7_050_000]);
    report(&all_formats(vec![dir.clone()], None)).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let changes = json["runs"][0]["load_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0]["second"], 3);
    assert_eq!(changes[0]["at_s"], 3.4);
    assert_eq!(changes[0]["what"], "users");
    assert_eq!(
        (changes[0]["from"].as_f64(), changes[0]["to"].as_f64()),
        (Some(10.0), Some(20.0))
    );
    assert_eq!(changes[0]["ramp_s"], 2.0);
    assert_eq!(changes[0]["who"], "dashboard");
    assert_eq!(changes[1]["second"], 7);

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"steering\""), "a steering section");
    assert!(html.contains("<td class=\"num\" data-sort=\"3.400\">3.4 s</td>"));
    assert!(
        html.contains("→ 20 users") && html.contains("→ 5 users"),
        "chart labels"
    );
    // The throughput chart carries both markers, as every time chart does.
    let rps_chart = &html[html.find("id=\"chart-rps\"").unwrap()..];
    let rps_chart = &rps_chart[..rps_chart.find("</figure>").unwrap()];
    assert_eq!(rps_chart.matches("→ ").count(), 2, "{rps_chart}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Steering"), "{md}");
    assert!(
        md.contains("| 3.4 s | 3 | users | 10 | 20 | 2.0 s | dashboard |"),
        "{md}"
    );
    // The whole report, markers in the charts' SVG included, as committed.
    assert_snapshot("steered.md", &md);
    assert_snapshot("steered.html", &html);

    // A run that was never steered says nothing about it.
    let plain = synth_run(tmp.path(), 2_000, 1, 5);
    report(&all_formats(vec![plain.clone()], None)).unwrap();
    let html = std::fs::read_to_string(plain.join("report.html")).unwrap();
    assert!(!html.contains("id=\"steering\""));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plain.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][0]["load_changes"], serde_json::json!([]));
}
