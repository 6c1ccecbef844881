//! The time series: the partial interval a core closes after the planned end is left out, and the
//! load changes of a steered run are listed and marked on the charts.

use std::path::{Path, PathBuf};

use analyzer::report::report;
use formats::{Outcome, RunState};

use super::util::{handmade_run, paced_log, synth_run};
use super::{all_formats, analyze_one, assert_snapshot};

/// A 3 s run whose core closed a 10 ms interval after the planned end (busy shutting down: 103 % CPU)
/// and whose users left during the last second: the series, charts and health cover the 3 whole
/// seconds, the CPU never reads 103 %, and the last second shows the users that ran in it.
#[test]
fn the_partial_end_interval_is_left_out_everywhere() {
    use formats::IntervalStats;
    let tmp = tempfile::tempdir().unwrap();
    let dir = handmade_run(
        tmp.path(),
        &[("GET /", 1_000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    paced_log(
        &dir,
        3,
        5,
        |second| IntervalStats {
            requests: 100,
            iterations_started: 100,
            cpu_user_us: 20_000,
            // Users leave during the last second, before its interval closes.
            active_users: if second == 2 { 0 } else { 10 },
            users_max: 10,
            run_delay_us: Some(0),
            ..IntervalStats::default()
        },
        &[IntervalStats {
            start_us: 3_000_200,
            duration_us: 10_000,
            requests: 1,
            cpu_user_us: 10_300,
            late_requests: 1,
            lag_max_us: 2_000,
            ..IntervalStats::default()
        }],
    );
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
