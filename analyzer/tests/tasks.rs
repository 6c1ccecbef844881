//! Per user kind, per task and per tag figures, the load-model section, and the Locust CSV export,
//! on runs written by hand with the formats crate, so every expected number is known exactly.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use analyzer::report::{Format, ReportOptions, analyze_runs, report};
use formats::manifest::MANIFEST_SCHEMA;
use formats::{
    HostInfo, LogFile, LogHeader, LogWriter, Manifest, Outcome, RunId, RunState, Sample,
    TagSelection, TaskInfo, TaskRole,
};

const STARTED_NS: i64 = 1_772_442_000_000_000_000;

const PROFILE: &str = r#"#![enable(implicit_some)]
(name: "tagged", load: Closed(users: 6, spawn_rate: 2.0, duration: "4s"),
 users: [
   (name: "shopper", weight: 2, tags: ["web"], on_start: [(method: POST, path: "/login", name: "login")],
    tasks: [(name: "browse", weight: 3, requests: [(path: "/"), (path: "/item")]),
            (name: "buy", tags: ["pay"], requests: [(method: POST, path: "/cart")])]),
   (name: "admin", tasks: [(name: "audit", requests: [(path: "/audit")])]),
 ])"#;

/// The task table the engine would write for PROFILE.
fn task_table() -> Vec<TaskInfo> {
    let t = |id, role, kind: u32, task: &str, task_weight, tags: &[&str]| TaskInfo {
        id,
        role,
        kind,
        kind_weight: if kind == 0 { 2 } else { 1 },
        task_weight,
        kind_name: if kind == 0 { "shopper" } else { "admin" }.into(),
        task_name: task.into(),
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
    };
    vec![
        t(1, TaskRole::Task, 0, "browse", 3, &["web"]),
        t(2, TaskRole::Task, 0, "buy", 1, &["pay", "web"]),
        t(3, TaskRole::OnStart, 0, "on_start", 0, &["web"]),
        t(4, TaskRole::Task, 1, "audit", 1, &[]),
    ]
}

/// One request: (name, task, iteration start, latency µs, ok).
type Req = (&'static str, u32, bool, u32, bool);

/// What two cores did: 4 log-ins, 30 browse iterations of two requests, 10 buys (every fifth fails),
/// 7 audits; latencies distinct per request so that percentiles are checkable.
fn requests(core: u32) -> Vec<Req> {
    let mut out: Vec<Req> = Vec::new();
    for i in 0..2 {
        out.push(("login", 3, false, 5_000 + i, true));
    }
    for i in 0..15u32 {
        out.push(("GET /", 1, true, 1_000 + 10 * i + core, true));
        out.push(("GET /item", 1, false, 2_000 + 10 * i + core, true));
    }
    for i in 0..5u32 {
        out.push((
            "POST /cart",
            2,
            true,
            9_000 + 100 * i,
            i % 5 != 4 || core == 0,
        ));
    }
    let audits = if core == 0 { 4 } else { 3 };
    for i in 0..audits {
        out.push(("GET /audit", 4, true, 300 + i, true));
    }
    out
}

/// Writes a run with two cores: v1.2 logs (task table and task columns) unless `old`, in which
/// case the logs carry no task information, as v1.0 and v1.1 logs read.
fn write_run(parent: &Path, old: bool) -> PathBuf {
    let dir = parent.join(if old { "old-run" } else { "tagged-run" });
    std::fs::create_dir_all(&dir).unwrap();
    let run_id = RunId([9; 16]);
    let mut logs = Vec::new();
    for core in 0..2u32 {
        let header = LogHeader::new(run_id, core, 1_000, STARTED_NS);
        let mut log = LogWriter::new(&header, Vec::new()).unwrap();
        if !old {
            for t in task_table() {
                log.define_task(t);
            }
        }
        let failed = log.intern_message("unexpected status 500");
        for (i, (name, task, first, latency, ok)) in requests(core).into_iter().enumerate() {
            let name = log.intern_name(name);
            // Spread over three seconds so that the history has rows.
            let t = 50_000 * i as u64;
            log.push(Sample {
                name,
                intended_us: t,
                actual_us: t,
                latency_us: latency,
                outcome: if ok { Outcome::Ok } else { Outcome::Status },
                status: if ok { 200 } else { 500 },
                message: (!ok).then_some(failed),
                bytes_received: 100,
                user: core,
                task: if old { 0 } else { task },
                iteration_start: !old && first,
                ..Sample::default()
            })
            .unwrap();
        }
        let file = format!("core-{core}.log");
        std::fs::write(dir.join(&file), log.finish().unwrap()).unwrap();
        logs.push(LogFile {
            core,
            cpu: None,
            file,
        });
    }
    Manifest {
        schema: MANIFEST_SCHEMA,
        log_format: if old { "1.1" } else { "1.2" }.into(),
        run_id,
        profile_name: "tagged".into(),
        profile: PROFILE.into(),
        environment: None,
        target: Some("http://127.0.0.1:1".into()),
        engine_version: "test".into(),
        host: HostInfo::default(),
        io_driver: "epoll".into(),
        io_setup: None,
        started_at: formats::run::format_utc(STARTED_NS),
        started_unix_ns: STARTED_NS,
        monotonic_base_ns: 1_000,
        planned_duration_s: Some(4.0),
        ended_at: Some(formats::run::format_utc(STARTED_NS + 4_000_000_000)),
        ended_unix_ns: Some(STARTED_NS + 4_000_000_000),
        state: RunState::Completed,
        error: None,
        logs,
        shard: None,
        clock_sync: None,
        tags: (!old).then(|| TagSelection {
            known: vec!["pay".into(), "web".into()],
            selected: vec![],
            excluded: vec![],
        }),
        extra: Default::default(),
    }
    .write_to(&dir)
    .unwrap();
    dir
}

fn json_report(dir: &Path) -> serde_json::Value {
    report(&ReportOptions {
        runs: vec![dir.to_owned()],
        out: None,
        formats: vec![Format::Json, Format::Html, Format::Markdown],
        skip: std::time::Duration::ZERO,
        baseline: None,
        exact_limit: None,
    })
    .unwrap();
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn per_kind_task_and_tag_figures_are_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), false);
    let (runs, _) =
        analyze_runs(std::slice::from_ref(&dir), std::time::Duration::ZERO, None).unwrap();
    let a = &runs[0].tasks;
    assert!(a.known && a.exact);
    assert!(a.unknown.is_none(), "every sample named a defined task");
    let rows: Vec<(&str, &str, u32, u64, u64, u64)> = a
        .kinds
        .iter()
        .flat_map(|(k, tasks)| {
            std::iter::once((
                k.kind.as_str(),
                "",
                k.weight,
                k.iterations,
                k.requests,
                k.failures,
            ))
            .chain(tasks.iter().map(|t| {
                (
                    t.kind.as_str(),
                    t.task.as_str(),
                    t.weight,
                    t.iterations,
                    t.requests,
                    t.failures,
                )
            }))
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("shopper", "", 2, 40, 74, 1),
            ("shopper", "on_start", 0, 0, 4, 0),
            ("shopper", "browse", 3, 30, 60, 0),
            ("shopper", "buy", 1, 10, 10, 1),
            ("admin", "", 1, 7, 7, 0),
            ("admin", "audit", 1, 7, 7, 0),
        ]
    );
    // Nearest rank over both cores' latencies: buy's ten are 9000..9400, twice.
    let buy = &a.kinds[0].1[2].latency;
    assert_eq!((buy.count, buy.min, buy.max), (10, 9_000.0, 9_400.0));
    assert_eq!(buy.percentiles[0], 9_200.0, "P50: the 5th of 10");
    assert_eq!(buy.percentiles[4], 9_400.0, "P99: the 10th of 10");
    let audit = &a.kinds[1].1[0].latency;
    assert_eq!(
        audit.percentiles[0], 301.0,
        "the 4th of 300,300,301,301,302,302,303"
    );
    let tags: Vec<(&str, u64, u64)> = a
        .tags
        .iter()
        .map(|t| (t.kind.as_str(), t.iterations, t.requests))
        .collect();
    assert_eq!(tags, [("pay", 10, 10), ("web", 40, 74)]);
}

#[test]
fn the_report_shows_the_load_model_and_the_tasks_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), false);
    let json = json_report(&dir);
    let run = &json["runs"][0];
    assert_eq!(run["load_model"]["model"], "closed");
    assert_eq!(run["load_model"]["users"], 6);
    assert_eq!(run["load_model"]["spawn_rate"], 2.0);
    assert_eq!(run["load_model"]["user_kinds"][0]["name"], "shopper");
    assert_eq!(run["load_model"]["user_kinds"][0]["weight"], 2);
    assert_eq!(run["tags"]["known"], serde_json::json!(["pay", "web"]));
    assert_eq!(run["tasks_known"], true);
    assert_eq!(run["tasks_percentile_method"], "exact_nearest_rank");
    let kinds = run["user_kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 2);
    assert_eq!(kinds[0]["requests"], 74);
    assert_eq!(kinds[0]["tasks"][2]["name"], "buy");
    assert_eq!(kinds[0]["tasks"][2]["failures"], 1);
    assert_eq!(kinds[0]["tasks"][2]["latency_ms"]["p50"], 9.2);
    assert_eq!(run["by_tag"][0]["tag"], "pay");
    assert!(run["unknown_task"].is_null());

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for want in [
        "## Load model and user kinds",
        "Closed: 6 users started at 2/s, for 4s",
        "User kind “shopper”",
        "### User kinds and tasks",
        "shopper / buy",
        "### By tag",
    ] {
        assert!(md.contains(want), "no {want:?} in the Markdown report");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains(r#"<h2 id="model">Load model and user kinds</h2>"#));
    assert!(html.contains(r#"id="tasks""#) && html.contains(r#"id="tags""#));
    assert!(html.contains("browse") && html.contains("Closed: 6 users started at 2"));
}

#[test]
fn logs_before_format_1_2_give_unknown_task_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), true);
    let json = json_report(&dir);
    let run = &json["runs"][0];
    assert_eq!(run["tasks_known"], false);
    assert_eq!(run["user_kinds"], serde_json::json!([]));
    assert_eq!(run["unknown_task"]["requests"], 81);
    assert_eq!(run["unknown_task"]["failures"], 1);
    assert_eq!(run["unknown_task"]["iterations"], 0);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("predate log format 1.2"), "{md}");
}

/// Locust's CSV files, read back with Python's csv module by Locust's own header names, agree with
/// the report's JSON.
#[test]
fn locust_csv_files_read_with_locusts_columns_and_agree_with_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_run(tmp.path(), false);
    let json = json_report(&dir);
    let out = tmp.path().join("locust");
    let outcome = analyzer::locust::export_locust_csv(&dir, &out).unwrap();
    assert_eq!(outcome.files.len(), 3);
    let Ok(python) = which_python() else {
        panic!("python3 is needed to read the CSV files as Locust's tools would");
    };
    // The script prints one JSON document with the rows it read, keyed by Locust's header names.
    let script = r#"
import csv, json, sys
d = sys.argv[1]
def rows(f):
    with open(d + "/" + f, newline="") as fh:
        return list(csv.DictReader(fh))
print(json.dumps({"stats": rows("stats.csv"), "history": rows("stats_history.csv"), "failures": rows("failures.csv")}))
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let csv: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let run = &json["runs"][0];
    let stats = csv["stats"].as_array().unwrap();
    let endpoints = run["endpoints"].as_array().unwrap();
    assert_eq!(
        stats.len(),
        endpoints.len() + 1,
        "one row per name and Aggregated"
    );
    let num = |v: &serde_json::Value| v.as_str().unwrap().parse::<f64>().unwrap();
    for e in endpoints {
        let name = e["name"].as_str().unwrap();
        let row = stats
            .iter()
            .find(|r| {
                format!(
                    "{} {}",
                    r["Type"].as_str().unwrap(),
                    r["Name"].as_str().unwrap()
                ) == name
                    || r["Name"] == e["name"]
            })
            .unwrap_or_else(|| panic!("no stats.csv row for {name}"));
        assert_eq!(
            num(&row["Request Count"]) as u64,
            e["requests"].as_u64().unwrap()
        );
        assert_eq!(
            num(&row["Failure Count"]) as u64,
            e["failures"].as_u64().unwrap()
        );
        let l = &e["latency_uncorrected_ms"];
        assert_eq!(
            num(&row["Median Response Time"]),
            l["p50"].as_f64().unwrap(),
            "{name}"
        );
        assert_eq!(num(&row["50%"]), l["p50"].as_f64().unwrap(), "{name}");
        assert_eq!(num(&row["95%"]), l["p95"].as_f64().unwrap(), "{name}");
        assert_eq!(num(&row["99%"]), l["p99"].as_f64().unwrap(), "{name}");
        assert_eq!(num(&row["100%"]), l["max"].as_f64().unwrap(), "{name}");
        assert_eq!(
            num(&row["Min Response Time"]),
            l["min"].as_f64().unwrap(),
            "{name}"
        );
        let rps = num(&row["Requests/s"]);
        assert!(
            (rps - e["rps"].as_f64().unwrap()).abs() < 1e-6,
            "{name}: {rps}"
        );
    }
    // The login request's method comes from the profile; the others from their names.
    let login = stats.iter().find(|r| r["Name"] == "login").unwrap();
    assert_eq!(login["Type"], "POST");
    let cart = stats.iter().find(|r| r["Name"] == "/cart").unwrap();
    assert_eq!(cart["Type"], "POST");
    let total = stats.last().unwrap();
    assert_eq!(
        (total["Type"].as_str(), total["Name"].as_str()),
        (Some(""), Some("Aggregated"))
    );
    assert_eq!(
        num(&total["Request Count"]) as u64,
        run["requests"].as_u64().unwrap()
    );
    assert_eq!(
        num(&total["99%"]),
        run["latency_uncorrected_ms"]["p99"].as_f64().unwrap()
    );
    assert_eq!(num(&total["Average Content Size"]), 100.0);

    let history = csv["history"].as_array().unwrap();
    assert!(!history.is_empty());
    let last = history.last().unwrap();
    assert_eq!(last["Name"], "Aggregated");
    let first_ts = num(&history[0]["Timestamp"]) as i64;
    assert_eq!(
        first_ts,
        STARTED_NS / 1_000_000_000 + 1,
        "the end of the run's first second"
    );
    let counted: f64 = history.iter().map(|r| num(&r["Requests/s"])).sum();
    assert_eq!(num(&last["Total Request Count"]), counted);

    let failures = csv["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["Method"], "POST");
    assert_eq!(failures[0]["Name"], "/cart");
    assert_eq!(failures[0]["Error"], "unexpected status 500");
    assert_eq!(failures[0]["Occurrences"], "1");
    assert!(failures[0]["First Seen"].as_str().unwrap().ends_with('Z'));
}

fn which_python() -> Result<&'static str, ()> {
    ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or(())
}
