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

mod util;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;
use util::{engine_binary, nearest_rank, raw_samples, raw_sharded_samples};

/// How long an engine or analyzer process may run before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(40);
/// The Job's shards.
const SHARDS: u32 = 3;

/// One test at a time: each starts three engines, and the machine is small.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command without the caller's `STAMPEDE_*` and `JOB_COMPLETION_INDEX` variables.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("STAMPEDE_") || k == "JOB_COMPLETION_INDEX" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A child process that is killed if the test ends (or panics) before it does.
struct Bounded {
    child: Option<Child>,
    what: String,
}

impl Bounded {
    fn spawn(mut cmd: Command, what: impl Into<String>) -> Bounded {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        Bounded {
            child: Some(child),
            what: what.into(),
        }
    }

    /// Waits for the process until `deadline`; kills it and fails the test past that.
    fn wait(mut self, deadline: Instant) -> Output {
        let mut child = self.child.take().unwrap();
        // Drain the pipes on threads so a chatty process never blocks on a full pipe.
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        let status: ExitStatus = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} ran past its time limit and was killed", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// SIGKILL, as an OOM kill or a node loss would end a pod.
    fn kill(&mut self) {
        let child = self.child.as_mut().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the analyzer with `args`, bounded in time.
fn analyzer(args: &[&str]) -> Output {
    let mut cmd = clean(env!("CARGO_BIN_EXE_analyzer"));
    cmd.args(args);
    Bounded::spawn(cmd, format!("analyzer {args:?}")).wait(Instant::now() + LIMIT)
}

fn now_ns() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// The loopback target: HTTP/1.1 keep-alive, a thread per connection, `200 ok` to every request
/// (`/slow` after 2 ms, for a latency tail). It keeps its own account: every request it answered, by
/// the `shard` query parameter, and when each shard's first request arrived.
struct Target {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<String, (u64, i64)>>>,
}

impl Target {
    fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<BTreeMap<String, (u64, i64)>>> = Arc::default();
        let (s, n) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let n = n.clone();
                std::thread::spawn(move || serve(conn, &n));
            }
        });
        Target { addr, stop, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered, by shard (the `shard` query parameter), and when each shard's first came.
    fn by_shard(&self) -> BTreeMap<String, (u64, i64)> {
        self.seen.lock().unwrap().clone()
    }

    fn served(&self) -> u64 {
        self.by_shard().values().map(|v| v.0).sum()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, seen: &Mutex<BTreeMap<String, (u64, i64)>>) {
    let _ = conn.set_read_timeout(Some(LIMIT));
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let arrived = now_ns();
        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
        // The rest of the head; the engine sends no body with a GET.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let shard = target
            .split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("shard=")))
            .unwrap_or("?")
            .to_owned();
        if target.starts_with("/slow") {
            std::thread::sleep(Duration::from_millis(2));
        }
        {
            let mut seen = seen.lock().unwrap();
            let e = seen.entry(shard).or_insert((0, arrived));
            e.0 += 1;
            e.1 = e.1.min(arrived);
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
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

/// The YAML documents `engine kube` printed, as JSON values.
fn parse_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{e}:\n{text}")))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, component: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind && d["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
        .unwrap_or_else(|| panic!("no {kind} {component} in {docs:#?}"))
}

/// One rendered Job, laid out on this machine as its pods would see it.
struct Job {
    /// The engine container's args, with each volume's mount path replaced by its local directory.
    args: Vec<String>,
    /// The container's literal environment variables.
    env: Vec<(String, String)>,
    /// Where the results volume is (the ReadWriteMany claim every pod writes to).
    results: PathBuf,
    /// The run id the Job gives every pod.
    run_id: String,
    /// The common start instant, ns since the epoch.
    start_ns: i64,
}

impl Job {
    /// Renders `engine kube PROFILE --shards 3 --image x --run-id ID --start-in LEAD -- EXTRA` in
    /// `suite` and lays out the pods' volumes under `suite/pod`: the ConfigMap's files where the
    /// profile volume is mounted (its `items` give each file's path), an empty results directory.
    fn render(suite: &Path, profile: &Path, run_id: &str, lead: &str, extra: &[&str]) -> Job {
        let mut cmd = clean(engine_binary());
        cmd.current_dir(suite)
            .arg("kube")
            .arg(profile.strip_prefix(suite).unwrap())
            .args(["--shards", &SHARDS.to_string(), "--image", "x"])
            .args(["--run-id", run_id, "--start-in", lead, "--no-collector"])
            .arg("--")
            .args(extra);
        let out = Bounded::spawn(cmd, "engine kube").wait(Instant::now() + LIMIT);
        assert_eq!(out.status.code(), Some(0), "engine kube: {}", stderr(&out));
        let docs = parse_documents(&String::from_utf8(out.stdout).unwrap());
        let job = find(&docs, "Job", "load-generator");
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], SHARDS);
        let pod = &job["spec"]["template"]["spec"];
        let container = &pod["containers"][0];

        // The volumes, as the kubelet would mount them.
        let root = suite.join("pod");
        let cm = find(&docs, "ConfigMap", "profile");
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        let mut results = None;
        for m in container["volumeMounts"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let mount_path = m["mountPath"].as_str().unwrap().to_owned();
            let local = root.join(name);
            std::fs::create_dir_all(&local).unwrap();
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .unwrap();
            if let Some(items) = volume["configMap"]["items"].as_array() {
                for item in items {
                    let path = item["path"].as_str().unwrap();
                    assert!(!path.starts_with('/') && !path.contains(".."), "{path}");
                    let dest = local.join(path);
                    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    let key = item["key"].as_str().unwrap();
                    std::fs::write(dest, cm["data"][key].as_str().unwrap()).unwrap();
                }
            } else if !volume["persistentVolumeClaim"].is_null() {
                results = Some(local.clone());
            }
            mounts.push((mount_path, local));
        }
        let results = results.expect("a results volume");
        let args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_str().unwrap();
                for (mount, local) in &mounts {
                    if a == mount {
                        return local.display().to_string();
                    }
                    if let Some(rest) = a.strip_prefix(&format!("{mount}/")) {
                        return local.join(rest).display().to_string();
                    }
                }
                a.to_owned()
            })
            .collect();
        let env: Vec<(String, String)> = container["env"]
            .as_array()
            .map(|vars| {
                vars.iter()
                    .filter_map(|v| {
                        Some((
                            v["name"].as_str()?.to_owned(),
                            v["value"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        let start = after("--start-at");
        let start_ns = parse_utc(&start);
        assert_eq!(after("--run-id"), run_id);
        assert_eq!(after("--shards"), SHARDS.to_string());
        Job {
            args,
            env,
            results,
            run_id: run_id.to_owned(),
            start_ns,
        }
    }

    /// Starts pod `index`'s engine: the container's args, its environment and the index Kubernetes
    /// gives an Indexed Job's pod.
    fn start_pod(&self, index: u32) -> Bounded {
        assert!(
            now_ns() < self.start_ns,
            "the pods start after the Job's start instant: the machine is too slow for this lead"
        );
        let mut cmd = clean(engine_binary());
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("JOB_COMPLETION_INDEX", index.to_string());
        Bounded::spawn(cmd, format!("pod {index}"))
    }

    /// The sharded run's directory on the results volume.
    fn run_dir(&self) -> PathBuf {
        self.results.join(&self.run_id)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (as `engine kube` writes the start instant), ns since the epoch.
fn parse_utc(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 {
        text.get(r)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{text:?} is not YYYY-MM-DDTHH:MM:SSZ"))
    };
    assert_eq!(text.len(), 20, "{text:?}");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) * 1_000_000_000
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
