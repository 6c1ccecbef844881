//! Timing phases: connect, TLS, waiting and receiving per request name, checked against sorting the
//! raw samples read with the formats crate alone, exactly and past the exact limit.

mod util;

use std::collections::BTreeMap;
use std::path::Path;

use analyzer::phases::{NamePhases, Phases};
use analyzer::report::{Format, ReportOptions, analyze_runs, report};
use util::{nearest_rank, synth_run};

/// Per name (and "All requests"), per phase, the raw values, computed from the definitions.
fn raw_phases(dir: &Path) -> BTreeMap<String, [Vec<u64>; 4]> {
    let run = formats::Run::open(dir).unwrap();
    let mut out: BTreeMap<String, [Vec<u64>; 4]> = BTreeMap::new();
    for (_, path) in &run.logs {
        let log = formats::read_log_file(path).unwrap();
        let s = &log.samples;
        for i in 0..s.len() {
            let name = log.names.display(s.name[i]);
            let (lat, conn, tls, ttfb) = (
                u64::from(s.latency_us[i]),
                u64::from(s.connect_us[i]),
                u64::from(s.tls_us[i]),
                u64::from(s.ttfb_us[i]),
            );
            for key in [name.clone(), "All requests".to_owned()] {
                let e = out.entry(key).or_default();
                if conn > 0 {
                    e[0].push(conn - tls);
                }
                if tls > 0 {
                    e[1].push(tls);
                }
                if ttfb > 0 {
                    e[2].push(ttfb - conn);
                    e[3].push(lat - ttfb);
                }
            }
        }
    }
    for v in out.values_mut() {
        for phase in v.iter_mut() {
            phase.sort_unstable();
        }
    }
    out
}

fn check(label: &str, got: &NamePhases, raw: &[Vec<u64>; 4], tolerance: f64) {
    for (i, values) in raw.iter().enumerate() {
        let s = &got.phases[i];
        assert_eq!(s.count, values.len() as u64, "{label} phase {i}: count");
        if values.is_empty() {
            continue;
        }
        assert_eq!(
            s.max,
            *values.last().unwrap() as f64,
            "{label} phase {i}: max"
        );
        let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
        assert!(
            (s.mean - mean).abs() <= 1e-6 * mean,
            "{label} phase {i}: mean"
        );
        for (k, permille) in [500, 900, 990].iter().enumerate() {
            let exact = nearest_rank(values, *permille) as f64;
            let got = s.percentiles[k];
            assert!(
                (got - exact).abs() <= exact * tolerance + if tolerance > 0.0 { 1.0 } else { 0.0 },
                "{label} phase {i} P{}: {got} vs exact {exact}",
                permille / 10
            );
        }
    }
}

fn check_all(p: &Phases, raw: &BTreeMap<String, [Vec<u64>; 4]>, tolerance: f64) {
    assert_eq!(p.endpoints.len() + 1, raw.len());
    check("total", &p.total, &raw["All requests"], tolerance);
    for e in &p.endpoints {
        check(&e.name, e, &raw[&e.name], tolerance);
    }
}

#[test]
fn phases_are_exact_nearest_rank_over_the_requests_that_had_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 60_000, 3, 5);
    let (runs, _) =
        analyze_runs(std::slice::from_ref(&dir), std::time::Duration::ZERO, None).unwrap();
    let p = &runs[0].phases;
    assert!(p.exact);
    assert!(p.any_tls);
    let raw = raw_phases(&dir);
    // The synthetic run opens connections on about 2 % of requests: the connection phases have far
    // fewer samples than waiting and receiving, and the report says how many.
    let t = &p.total.phases;
    assert!(t[0].count > 100 && t[0].count * 20 < t[2].count, "{t:?}");
    check_all(p, &raw, 0.0);
}

#[test]
fn past_the_exact_limit_phases_come_from_histograms_within_their_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 40_000, 2, 17);
    let (runs, _) = analyze_runs(
        std::slice::from_ref(&dir),
        std::time::Duration::ZERO,
        Some(10_000),
    )
    .unwrap();
    let p = &runs[0].phases;
    assert!(!p.exact);
    check_all(p, &raw_phases(&dir), 1e-3);
}

#[test]
fn every_format_shows_the_phases() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = synth_run(tmp.path(), 20_000, 2, 3);
    let out = tmp.path().join("out");
    report(&ReportOptions {
        runs: vec![dir.clone()],
        out: Some(out.clone()),
        formats: vec![Format::Html, Format::Markdown, Format::Json],
        skip: std::time::Duration::ZERO,
        baseline: None,
        exact_limit: None,
    })
    .unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"phases\""));
    assert!(html.contains("Where the time goes"));
    assert!(html.contains("resolves each target host once"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("### Timing phases"), "{md}");
    assert!(md.contains("| Receiving |"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let phases = &json["runs"][0]["phases"];
    assert_eq!(phases["percentile_method"], "exact_nearest_rank");
    assert_eq!(phases["dns"], "resolved_once_before_the_run");
    assert_eq!(phases["tls_recorded"], true);
    let raw = raw_phases(&dir);
    let total = &phases["total"];
    for (i, key) in ["connect_ms", "tls_ms", "waiting_ms", "receiving_ms"]
        .iter()
        .enumerate()
    {
        let values = &raw["All requests"][i];
        assert_eq!(total[key]["count"], values.len() as u64, "{key}");
        let p99 = nearest_rank(values, 990) as f64 / 1000.0;
        assert!(
            (total[key]["p99"].as_f64().unwrap() - p99).abs() < 1e-9,
            "{key}: {} vs {p99}",
            total[key]["p99"]
        );
    }
    assert_eq!(phases["endpoints"].as_array().unwrap().len() + 1, raw.len());
}

/// A log without TLS times (written by a v1.0 engine, or plain http://) still gets its phases, and the
/// report says that no handshake was recorded, so a reader knows Connect may include one.
#[test]
fn logs_without_tls_times_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = util::handmade_run(
        tmp.path(),
        &[("GET /", 3_000, formats::Outcome::Ok, 200, None)],
        formats::RunState::Completed,
    );
    // Replace the log: 100 requests, every tenth on a new connection, none with a TLS time.
    let header =
        formats::LogHeader::new(formats::RunId([3; 16]), 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = formats::LogWriter::new(&header, Vec::new()).unwrap();
    let name = log.intern_name("GET /");
    for i in 0..100u32 {
        log.push(formats::Sample {
            name,
            intended_us: u64::from(i) * 1_000,
            actual_us: u64::from(i) * 1_000,
            latency_us: 3_000 + i,
            connect_us: if i % 10 == 0 { 500 + i } else { 0 },
            ttfb_us: 2_000 + i,
            status: 200,
            ..formats::Sample::default()
        })
        .unwrap();
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    let (runs, _) =
        analyze_runs(std::slice::from_ref(&dir), std::time::Duration::ZERO, None).unwrap();
    let p = &runs[0].phases;
    assert!(!p.any_tls);
    assert_eq!(p.total.phases.map(|s| s.count), [10, 0, 100, 100]);
    // Connect 500..590 every tenth request; waiting 2000+i on reused connections, minus connect on new.
    assert_eq!(p.total.phases[0].percentiles[0], 540.0);
    assert_eq!(p.total.phases[0].max, 590.0);
    assert_eq!(p.total.phases[3].max, 1_000.0);
    let out = tmp.path().join("out");
    report(&ReportOptions {
        runs: vec![dir],
        out: Some(out.clone()),
        formats: vec![Format::Markdown],
        skip: std::time::Duration::ZERO,
        baseline: None,
        exact_limit: None,
    })
    .unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("No request recorded a TLS handshake"), "{md}");
    assert!(!md.contains("| TLS |"), "{md}");
}
