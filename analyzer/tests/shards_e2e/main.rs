//! Issue 15 end to end, on one machine as a cluster would run it: `engine kube` renders the Indexed
//! Job, and its pods' engine processes are started exactly as Kubernetes would start them (the
//! container's args as rendered, the ConfigMap laid out where the profile volume is mounted,
//! `JOB_COMPLETION_INDEX` set per pod), against one loopback target that keeps its own count; then
//! `analyzer report` merges the shards, and its figures are checked against the target's count and
//! against nearest rank over every shard's samples read with the `formats` crate alone.
//!
//! What the engine alone checks is in engine/tests/shards.rs (the deal of users, rows and arrivals;
//! `--shard 9/8` and `--shard 0/0`); what the analyzer alone checks, on synthetic shards, is in
//! tests/shards/. These tests check that the two agree across the boundary.
//!
//! Every process runs under a time limit (killed, and the test failed, past it); load goes only to
//! 127.0.0.1. The tests run one at a time, each a few seconds of load.
//!
//! The tests are here; the processes they start (`process`), the loopback target (`target`) and the
//! rendered Job (`job`) are modules of their own.

#[path = "../util/mod.rs"]
mod util;

mod job;
mod process;
mod target;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{nearest_rank, raw_samples, raw_sharded_samples};

use job::Job;
use process::{Bounded, analyzer, now_ns, stderr};
use target::Target;

/// How long an engine or analyzer process may run before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(40);

/// The Job's shards.
const SHARDS: u32 = 3;

/// One test at a time: each starts three engines, and the machine is small.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The profile every test renders: a closed model of 9 users (3 per shard), each alternating a fast
/// and a slow request with a little think time, for `duration`. Its `host` is a closed port: the pods
/// reach the target only through the `--host` the Job passes them.
fn write_profile(dir: &Path, duration: &str) -> PathBuf {
    let path = dir.join("profiles/e2e.ron");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            r#"(
    name: "e2e-shards",
    host: "http://127.0.0.1:9",
    load: Closed(users: 9, duration: "{duration}"),
    users: [(cookies: false, wait: Constant("5ms"), tasks: [(requests: [
        (path: "/item", name: "item", query: {{"shard": "{{{{shard_id()}}}}", "user": "{{{{user_id()}}}}"}}),
        (path: "/slow", name: "slow", query: {{"shard": "{{{{shard_id()}}}}"}}),
    ])])],
)"#
        ),
    )
    .unwrap();
    path
}

/// Corrected latencies of every sample of every shard, sorted, read with the formats crate alone.
fn union_of_samples(run: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = raw_sharded_samples(run).into_iter().map(|s| s.1).collect();
    v.sort_unstable();
    v
}

/// `analyzer report RUN --format json,md`: the JSON report and the Markdown one.
fn report(run: &Path) -> (Value, String) {
    let out = analyzer(&["report", run.to_str().unwrap(), "--format", "json,md"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = std::fs::read_to_string(run.join("report.json")).unwrap();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    (serde_json::from_str(&json).unwrap(), md)
}

/// The merged run's P50, P99 and P99.9 of corrected latency equal nearest rank over `union` (µs;
/// report.json gives milliseconds with microsecond digits).
fn assert_exact_percentiles(run: &Value, union: &[u64]) {
    assert_eq!(run["requests"], union.len() as u64);
    assert_eq!(run["percentile_method"], "exact_nearest_rank");
    for (label, permille) in [("p50", 500), ("p99", 990), ("p999", 999)] {
        let ms = run["latency_ms"][label]
            .as_f64()
            .unwrap_or_else(|| panic!("no {label} in {}", run["latency_ms"]));
        assert_eq!(
            (ms * 1000.0).round() as u64,
            nearest_rank(union, permille),
            "merged {label} over {} samples",
            union.len()
        );
    }
}

/// Three pods of one Job run to the end: the target's own count is the merged report's request
/// count, shard by shard and in total; the merged P50, P99 and P99.9 are nearest rank over the
/// union of every shard's samples; the shard table lists three completed shards; and the shards'
/// schedules started together, by their manifests and by the target's clock.
#[test]
fn a_rendered_job_of_three_pods_merges_into_one_exact_run() {
    let _serial = one_at_a_time();
    let target = Target::start();
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "3s");
    let job = Job::render(
        tmp.path(),
        &profile,
        "e2e-complete",
        "3s",
        &["--host", &target.url()],
    );
    let pods: Vec<Bounded> = (0..SHARDS).map(|i| job.start_pod(i)).collect();
    let deadline = Instant::now() + LIMIT;
    for (i, pod) in pods.into_iter().enumerate() {
        let o = pod.wait(deadline);
        assert_eq!(o.status.code(), Some(0), "pod {i}: {}", stderr(&o));
    }
    let run = job.run_dir();
    let (json, md) = report(&run);
    let merged = &json["runs"][0];

    // The target's own count, in total and shard by shard.
    let union = union_of_samples(&run);
    assert!(union.len() > 500, "only {} requests", union.len());
    assert_eq!(
        target.served(),
        union.len() as u64,
        "one sample per request"
    );
    assert_exact_percentiles(merged, &union);
    let seen = target.by_shard();
    let rows = merged["shards"]["shards"].as_array().unwrap();
    assert_eq!(rows.len(), SHARDS as usize, "{rows:#?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["index"], i as u64);
        assert_eq!(row["status"], "completed", "{row}");
        assert_eq!(
            row["requests"].as_u64().unwrap(),
            seen[&i.to_string()].0,
            "shard {i}: the report's requests against the target's count"
        );
    }
    assert_eq!(merged["shards"]["count"], SHARDS);
    let section = &md[md.find("## Shards").expect("a shard table")..md.find("## Run").unwrap()];
    let completed = section
        .lines()
        .filter(|l| l.starts_with('|') && l.contains("completed"))
        .count();
    assert_eq!(completed, SHARDS as usize, "{section}");
    assert!(
        !md.contains("INCOMPLETE") && !md.contains("PARTIAL"),
        "{md}"
    );
    assert_eq!(merged["finalized"], true);

    // Aligned: every shard's time zero is the Job's instant, and the target saw each shard's first
    // request within a few milliseconds of the others'.
    let alignment = &merged["shards"]["alignment"];
    assert_eq!(
        alignment["start_spread_ms"].as_f64().unwrap(),
        0.0,
        "{alignment}"
    );
    for i in 0..SHARDS {
        let m = formats::Run::open(&run.join(format!("shard-{i}")))
            .unwrap()
            .manifest
            .unwrap();
        assert_eq!(m.started_unix_ns, job.start_ns, "shard {i}'s time zero");
        assert_eq!(
            m.shard.as_ref().unwrap().index,
            i,
            "its JOB_COMPLETION_INDEX"
        );
    }
    let firsts: Vec<i64> = (0..SHARDS).map(|i| seen[&i.to_string()].1).collect();
    let spread_ms = (firsts.iter().max().unwrap() - firsts.iter().min().unwrap()) as f64 / 1e6;
    eprintln!(
        "first requests {:?} ms after the start instant; spread {spread_ms:.2} ms",
        firsts
            .iter()
            .map(|f| (f - job.start_ns) as f64 / 1e6)
            .collect::<Vec<_>>()
    );
    assert!(
        spread_ms < 20.0,
        "the shards' first requests are {spread_ms} ms apart"
    );
    assert!(
        firsts.iter().all(|f| *f >= job.start_ns),
        "a shard sent before the start instant"
    );
}

/// One pod killed (SIGKILL) once its log holds a flushed block, the others run to the end: the
/// merged report holds the killed shard's complete blocks (its requests are what the formats crate
/// reads from its logs), the completed shards' requests are the target's count for them, the
/// percentiles are exact over the union, and the report names the killed shard as unfinished.
#[test]
fn a_pod_killed_mid_run_is_merged_up_to_its_last_block_and_named_unfinished() {
    let _serial = one_at_a_time();
    let target = Target::start();
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "4s");
    let job = Job::render(
        tmp.path(),
        &profile,
        "e2e-killed",
        "3s",
        &["--host", &target.url()],
    );
    let mut pods: Vec<Bounded> = (0..SHARDS).map(|i| job.start_pod(i)).collect();
    let deadline = Instant::now() + LIMIT;

    // The engine flushes its log once a second. Kill shard 1 half-way through its 4 s: once its log
    // holds the block flushed at about 2 s, and the target has answered 100 more of its requests than
    // that log holds (samples only its memory had, which the kill loses).
    let log = job.run_dir().join("shard-1").join("core-0.log");
    loop {
        let (flushed, reached_us) = formats::read_log_file(&log).map_or((0, 0), |l| {
            let reached = l.samples.intended_us.iter().max().copied().unwrap_or(0);
            (l.samples.len() as u64, reached)
        });
        let answered = target.by_shard().get("1").map_or(0, |v| v.0);
        if reached_us >= 1_500_000 && answered >= flushed + 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shard 1 made no progress in time: {flushed} samples flushed up to {reached_us} µs, {answered} answered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    pods[1].kill();
    let killed_at = now_ns();
    for (i, pod) in pods.into_iter().enumerate() {
        if i == 1 {
            continue;
        }
        let o = pod.wait(deadline);
        assert_eq!(o.status.code(), Some(0), "pod {i}: {}", stderr(&o));
    }
    assert!(
        killed_at < job.start_ns + 4_000_000_000,
        "shard 1 was killed after its planned end"
    );

    let run = job.run_dir();
    let (json, md) = report(&run);
    let merged = &json["runs"][0];
    let union = union_of_samples(&run);
    assert_exact_percentiles(merged, &union);
    let seen = target.by_shard();
    let rows = merged["shards"]["shards"].as_array().unwrap();
    assert_eq!(rows.len(), SHARDS as usize);
    for (i, row) in rows.iter().enumerate() {
        let sent = seen[&i.to_string()].0;
        let requests = row["requests"].as_u64().unwrap();
        // What the formats crate alone reads from this shard's logs: every complete block.
        let readable = raw_samples(&run.join(format!("shard-{i}"))).len() as u64;
        assert_eq!(requests, readable, "shard {i}: the report against its logs");
        if i == 1 {
            eprintln!(
                "shard 1, killed {:.2} s into the run: {requests} requests merged of the {sent} the target answered",
                (killed_at - job.start_ns) as f64 / 1e9
            );
            assert_eq!(row["status"], "unfinished", "{row}");
            assert!(
                requests > 0 && requests <= sent,
                "shard 1: {requests} merged of the {sent} the target answered"
            );
        } else {
            assert_eq!(row["status"], "completed", "{row}");
            assert_eq!(requests, sent, "shard {i}");
        }
    }
    // Said loudly: an alert naming the shard and its share, the INCOMPLETE banner above the figures,
    // and a health finding.
    let alerts = merged["shards"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = alerts[0].as_str().unwrap();
    assert!(
        alert.starts_with("shard 1 (") && alert.contains("never finalized"),
        "{alert}"
    );
    assert!(alert.contains("33.3% of the load"), "{alert}");
    let top = &md[..md.find("## Generator health").unwrap_or(md.len())];
    assert!(top.contains("**INCOMPLETE**"), "{top}");
    assert!(top.contains(alert), "{top}");
    let reasons = merged["health"]["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| {
            let r = r.as_str().unwrap();
            r.starts_with("shard 1 (") && r.contains("was never finalized")
        }),
        "{reasons:?}"
    );
    assert_eq!(merged["finalized"], false);
}

/// Shards of two runs given together are refused with exit 2, naming both run ids, whether given one
/// by one or mixed up in one run directory.
#[test]
fn shards_of_two_runs_given_together_are_refused() {
    let _serial = one_at_a_time();
    let target = Target::start();
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "500ms");
    let a = Job::render(
        tmp.path(),
        &profile,
        "e2e-a",
        "2s",
        &["--host", &target.url()],
    );
    let pods_a: Vec<Bounded> = (0..2).map(|i| a.start_pod(i)).collect();
    let b = Job::render(
        tmp.path(),
        &profile,
        "e2e-b",
        "2s",
        &["--host", &target.url()],
    );
    let pods_b: Vec<Bounded> = (1..3).map(|i| b.start_pod(i)).collect();
    let deadline = Instant::now() + LIMIT;
    for pod in pods_a.into_iter().chain(pods_b) {
        let o = pod.wait(deadline);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let (a0, b1) = (a.run_dir().join("shard-0"), b.run_dir().join("shard-1"));
    let id = |d: &Path| {
        formats::Run::open(d)
            .unwrap()
            .manifest
            .unwrap()
            .run_id
            .to_string()
    };
    let (id_a, id_b) = (id(&a0), id(&b1));
    assert_ne!(id_a, id_b);
    let out = analyzer(&["report", a0.to_str().unwrap(), b1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("run {id_a} in {}", a0.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("run {id_b} in {}", b1.display())),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A collector that copied both runs' pods into one directory.
    std::fs::remove_dir_all(a.run_dir().join("shard-1")).unwrap();
    std::fs::rename(&b1, a.run_dir().join("shard-1")).unwrap();
    let out = analyzer(&["report", a.run_dir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("holds shards of 2 different runs"), "{err}");
    assert!(err.contains(&id_a) && err.contains(&id_b), "{err}");
    assert!(
        !a.run_dir().join("report.html").exists(),
        "nothing reported"
    );
}
