//! The report formats: the JSON schema, HTML and Markdown against their snapshots, a self-contained
//! HTML page, hostile text from the target escaped in every format, comparisons, and the CSV export.

use analyzer::report::report;
use formats::{Outcome, RunState};

use super::util::{handmade_run, synth_run};
use super::{all_formats, assert_snapshot};

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
