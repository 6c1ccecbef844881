//! The live view end to end: the real engine binary with `--web` and `--metrics` against a test
//! server on loopback. The dashboard's feed and `/metrics` are read over HTTP while the run goes and
//! compared with the run's logs; a real Prometheus scrapes a run; headless Chromium (driven by
//! Selenium) loads the dashboard, raises the users and stops a run, and the analyzer's report shows
//! the change; steering over HTTP raises and lowers users, and bad control requests are refused;
//! hostile clients do what they can.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use formats::RunState;
use util::*;

/// A run of the engine binary in the background, with the addresses it printed.
struct LiveRun {
    child: Child,
    web: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl LiveRun {
    /// Starts `engine run ARGS --out OUT` and waits (bounded) until it printed the live view's
    /// addresses it was asked for.
    fn start(out: &Path, args: &[&str]) -> LiveRun {
        let mut child = engine()
            .arg("run")
            .args(args)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the engine binary runs");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), Arc::clone(&stdout));
        drain(child.stderr.take().unwrap(), Arc::clone(&stderr));
        let wants_web = args.contains(&"--web");
        let wants_metrics = args.contains(&"--metrics");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = stderr.lock().unwrap().clone();
            let web = address_after(&text, "live dashboard: http://");
            let metrics = address_after(&text, "prometheus metrics: http://");
            if web.is_some() == wants_web && metrics.is_some() == wants_metrics {
                return LiveRun {
                    child,
                    web,
                    metrics,
                    stderr,
                    stdout,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the engine exited ({status}) before serving: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "the engine never printed its addresses: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the engine to exit; returns its exit code and run directory.
    fn finish(mut self) -> (i32, PathBuf, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the engine did not exit: {}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes close with the process; the drain threads finish reading them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.stdout) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        let dir = PathBuf::from(
            stdout
                .lines()
                .last()
                .unwrap_or_else(|| panic!("no stdout (exit {status}); stderr: {stderr}")),
        );
        (status.code().unwrap_or(-1), dir, stderr)
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

fn address_after(text: &str, prefix: &str) -> Option<SocketAddr> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    let end = rest.find(['/', '\n'])?;
    rest[..end].parse().ok()
}

/// One HTTP exchange on a fresh connection: (status, headers, body).
fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"),
    )
}

/// Polls the feed (bounded) until `done` says so; returns that feed. A `503` (every connection slot
/// taken, as the hostile-clients test arranges) is retried.
fn feed_until(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = get(addr, "/api/live", "");
        assert!(status == 200 || status == 503, "{status}: {body}");
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).expect("the feed is JSON");
            if done(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "never saw {what}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sums a metric's samples in a text-format scrape (every series of the family).
fn metric_sum(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// The binary for `name`, or `None` (with a message) outside CI; in CI a missing tool fails the test.
fn tool(name: &str, paths: &[&str], package: &str) -> Option<PathBuf> {
    let found = paths.iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        missing(name, package);
    }
    found
}

/// A tool a test needs is not installed: under `CI` that fails the test; elsewhere the test is skipped
/// with a message written straight to the terminal (the test harness captures `eprintln!`, and a
/// skip that nobody sees looks like a pass).
fn missing(what: &str, package: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{what} is not installed; .ci/run installs it (apt-get install {package})"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {what} is not installed (apt-get install {package}); CI runs this test ***\n"
    );
}

fn samples(dir: &Path) -> u64 {
    read_run(dir).samples.len() as u64
}

#[test]
fn the_feed_and_metrics_agree_with_the_logs() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let run = LiveRun::start(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "4",
            "--cores",
            "1",
            "--duration",
            "4s",
            "--quiet",
            "--web",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let (web, metrics) = (run.web.unwrap(), run.metrics.unwrap());

    // The numbers move while the run goes.
    let first = feed_until(web, "a first second", |v| v["seconds"].as_u64() >= Some(1));
    assert_eq!(first["phase"], "running");
    let n1 = first["all"]["requests"].as_u64().unwrap();
    let moved = feed_until(web, "more requests", |v| {
        v["all"]["requests"].as_u64().unwrap() > n1
    });
    assert!(moved["series"]["points"].as_array().unwrap().len() >= 2);
    assert_eq!(moved["run"]["target"], url.trim_end_matches('/'));

    // Both formats while running; the histogram counts what the counters count.
    let (status, head, text) = get(metrics, "/metrics", "");
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_eq!(
        metric_sum(&text, "stampede_requests_total"),
        metric_sum(&text, "stampede_request_duration_seconds_count")
    );
    assert!(metric_sum(&text, "stampede_requests_total") > 0.0);
    if let Some(promtool) = tool("promtool", &["/usr/bin/promtool"], "prometheus") {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, head, om) = get(
        metrics,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(om.ends_with("# EOF\n"));

    // The final state equals the record: the engine waits for a viewer that was watching to see it.
    let last = feed_until(web, "the end", |v| v["phase"] != "running");
    assert_eq!(last["phase"], "completed");
    let (_, _, text) = get(metrics, "/metrics", "");
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    let logged = samples(&dir);
    assert_eq!(last["all"]["requests"].as_u64(), Some(logged));
    assert_eq!(metric_sum(&text, "stampede_requests_total"), logged as f64);
    assert_eq!(last["run"]["dir"].as_str(), dir.to_str());
    assert_eq!(read_run(&dir).manifest.state, RunState::Completed);
}

#[test]
fn stop_on_the_dashboard_is_ctrl_c() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let started = Instant::now();
    let run = LiveRun::start(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "2",
            "--cores",
            "1",
            "--duration",
            "60s",
            "--quiet",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let web = run.web.unwrap();
    feed_until(web, "a first second", |v| v["seconds"].as_u64() >= Some(1));
    let (status, _, body) = http(
        web,
        &format!(
            "POST /api/stop HTTP/1.1\r\nHost: {web}\r\nOrigin: http://{web}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    );
    assert_eq!(status, 202, "{body}");
    let last = feed_until(web, "the end", |v| {
        v["phase"] != "running" && v["phase"] != "stopping"
    });
    assert_eq!(last["phase"], "interrupted");
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("stop requested from the dashboard"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the run went on"
    );
    let r = read_run(&dir);
    assert_eq!(r.manifest.state, RunState::Interrupted);
    assert!(r.manifest.ended_at.is_some());
    assert_eq!(
        last["all"]["requests"].as_u64(),
        Some(r.samples.len() as u64)
    );
}

#[test]
fn a_taken_port_is_an_error_naming_the_flag_before_the_run() {
    let _serial = one_at_a_time();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("runs");
    for flag in ["--web", "--metrics"] {
        let out = run(
            &out_dir,
            &[
                "--url",
                "http://127.0.0.1:9/",
                "--duration",
                "1s",
                flag,
                &format!("127.0.0.1:{port}"),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{flag} 127.0.0.1:{port}")), "{err}");
        assert!(err.contains("cannot listen"), "{err}");
        assert!(!out_dir.exists(), "no run directory before the run starts");
    }
    let out = run(
        &out_dir,
        &["--url", "http://127.0.0.1:9/", "--web", "nonsense"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--web"), "{}", stderr(&out));
}

#[test]
fn hostile_clients_do_not_disturb_the_run() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let run = LiveRun::start(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "2",
            "--cores",
            "1",
            "--duration",
            "5s",
            "--quiet",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let web = run.web.unwrap();
    let host = format!("Host: {web}\r\n");

    // Oversized heads and bodies, malformed and unauthorised control requests.
    let (status, _, _) = get(web, "/", &format!("X-Pad: {}\r\n", "a".repeat(16 * 1024)));
    assert_eq!(status, 431);
    let post = |headers: &str, body: &str| {
        http(
            web,
            &format!(
                "POST /api/stop HTTP/1.1\r\n{host}{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .0
    };
    assert_eq!(
        post("Content-Type: application/json\r\n", "{\"stop\": "),
        400
    );
    assert_eq!(post("Content-Type: text/plain\r\n", "{}"), 415);
    assert_eq!(
        post(
            "Content-Type: application/json\r\nOrigin: http://evil.example\r\n",
            "{}"
        ),
        403
    );
    let (status, _, _) = http(
        web,
        &format!(
            "POST /api/stop HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        ),
    );
    assert_eq!(status, 413);
    let (status, _, _) = http(
        web,
        "GET /api/live HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);

    // Clients that leave mid-request or mid-response.
    for partial in [
        "GET /api/li",
        "POST /api/stop HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
    ] {
        let mut s = TcpStream::connect(web).unwrap();
        s.write_all(partial.as_bytes()).unwrap();
    }
    for _ in 0..5 {
        let mut s = TcpStream::connect(web).unwrap();
        s.write_all(format!("GET /api/live HTTP/1.1\r\n{host}\r\n").as_bytes())
            .unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }

    // Connections past the limit are turned away; the ones held are served again later.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let mut s = TcpStream::connect(web).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET /dashboard.css HTTP/1.1\r\n{host}\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        if head.starts_with("HTTP/1.1 503") {
            break held.len();
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
        assert!(
            Instant::now() < deadline && held.len() < 64,
            "never refused"
        );
    };
    assert!(refused <= 16, "refused only after {refused} connections");
    drop(held);

    // The run goes on and ends as planned, and the dashboard still answers.
    let v = feed_until(web, "the end", |v| v["phase"] != "running");
    assert_eq!(v["phase"], "completed");
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    let r = read_run(&dir);
    assert_eq!(r.manifest.state, RunState::Completed);
    assert!(r.samples.len() > 100, "{} samples", r.samples.len());
}

/// Prometheus (the Debian package) scrapes a run every second; what it stored matches the logs
/// within one scrape interval of requests.
#[test]
fn prometheus_scrapes_a_run() {
    let _serial = one_at_a_time();
    let Some(prometheus) = tool("prometheus", &["/usr/bin/prometheus"], "prometheus") else {
        return;
    };
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[
            "--url",
            &url,
            "--users",
            "4",
            "--cores",
            "1",
            "--duration",
            "8s",
            "--quiet",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let metrics = run.metrics.unwrap();
    let prom = Prometheus::start(&prometheus, tmp.path(), metrics);
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 0, "{stderr}");
    let r = read_run(&dir);
    let logged = r.samples.len() as f64;
    let seconds = (r.manifest.ended_unix_ns.unwrap() - r.manifest.started_unix_ns) as f64 / 1e9;
    let per_interval = logged / seconds * Prometheus::INTERVAL_S;
    let run_id = r.manifest.run_id.to_string();

    let stored = prom.query(&format!(
        "sum(last_over_time(stampede_requests_total{{run_id=\"{run_id}\"}}[5m]))"
    ));
    assert!(
        stored <= logged && logged - stored <= per_interval + 1.0,
        "Prometheus stored {stored} requests; the logs have {logged} ({per_interval:.0} per scrape interval)"
    );
    let counted = prom.query(&format!(
        "sum(last_over_time(stampede_request_duration_seconds_count{{run_id=\"{run_id}\"}}[5m]))"
    ));
    assert_eq!(
        counted, stored,
        "the histogram counts what the counter counts"
    );
    // The buckets parse as a histogram; the quantile is a latency, not zero.
    let p99 = prom.query(&format!(
        "histogram_quantile(0.99, sum by (le) (last_over_time(stampede_request_duration_seconds_bucket{{run_id=\"{run_id}\"}}[5m])))"
    ));
    assert!(p99 > 0.0 && p99 < 1.0, "p99 {p99} s");
    let info = prom.query(&format!(
        "count(last_over_time(stampede_run_info{{run_id=\"{run_id}\",job=\"stampede\"}}[5m]))"
    ));
    assert_eq!(info, 1.0);
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Prometheus {
    const INTERVAL_S: f64 = 1.0;

    /// Prometheus on a free loopback port with its own config and data under `dir`, scraping
    /// `target`; returns once it is ready (bounded).
    fn start(binary: &Path, dir: &Path, target: SocketAddr) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {s}s\n  scrape_timeout: {s}s\nscrape_configs:\n  - job_name: stampede\n    static_configs:\n      - targets: ['{target}']\n",
                s = Self::INTERVAL_S
            ),
        )
        .unwrap();
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prom = Prometheus { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(addr).is_ok() && get(addr, "/-/ready", "").0 == 200 {
                return prom;
            }
            assert!(Instant::now() < deadline, "Prometheus did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An instant query's single value (0 when it has none).
    fn query(&self, promql: &str) -> f64 {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, _, body) = get(self.addr, &format!("/api/v1/query?query={encoded}"), "");
        assert_eq!(status, 200, "{promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map_or(0.0, |s| s.parse().unwrap())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium loads the dashboard during a run, sees its numbers move and its charts drawn
/// with no error in the console, then clicks Stop: the run ends early, interrupted, its manifest
/// final. `STAMPEDE_SCREENSHOT=path` keeps the screenshot (docs/live-dashboard.png is one).
#[test]
fn the_dashboard_in_a_browser() {
    let _serial = one_at_a_time();
    let Some(chromium) = tool("chromium", &["/usr/bin/chromium"], "chromium") else {
        return;
    };
    let Some(driver) = tool(
        "chromedriver",
        &["/usr/bin/chromedriver"],
        "chromium-driver",
    ) else {
        return;
    };
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import selenium"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(python) = python else {
        missing("Selenium for Python", "python3-selenium");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        r#"(name: "shop", host: "embedded", load: Closed(users: 8, spawn_rate: 8.0, duration: "60s"),
            users: [(wait: Between("20ms", "60ms"), tasks: [
                (weight: 4, requests: [(path: "/", name: "GET /")]),
                (weight: 2, requests: [(path: "/delay/15", name: "GET /delay")]),
                (weight: 1, requests: [(path: "/status/503", name: "GET /status/503")]),
            ])])"#,
    );
    let started = Instant::now();
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[
            profile.to_str().unwrap(),
            "--quiet",
            "--web",
            "127.0.0.1:0",
            "--max-users",
            "16",
        ],
    );
    let web = run.web.unwrap();
    let shot = std::env::var("STAMPEDE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tmp.path().join("dashboard.png"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.py");
    let mut browser = Command::new(python)
        .arg(&script)
        .arg(format!("http://{web}/"))
        .arg(&shot)
        .arg(chromium)
        .arg(driver)
        .arg(tmp.path().join("chromium-profile"))
        .arg("12")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while browser.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = browser.kill();
            panic!("the browser script did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = browser.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(seen["second"].as_u64() > seen["first"].as_u64(), "{seen}");
    assert_eq!(seen["phase"], "running");
    let names: Vec<&str> = seen["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, ["GET /", "GET /delay", "GET /status/503"], "{seen}");
    assert!(seen["chart_paths"].as_u64() > Some(0), "{seen}");
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["final_phase"], "interrupted", "{seen}");
    assert!(seen["banner"].as_str().unwrap().contains("runs/"), "{seen}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // Steering: the page offered it, the engine accepted 8 → 12 users, and the users rose.
    assert!(
        seen["steer_status"]
            .as_str()
            .unwrap()
            .contains("target 8 users"),
        "{seen}"
    );
    assert!(seen["users_before"].as_u64() <= Some(8), "{seen}");
    assert!(seen["users_after"].as_u64() >= Some(12), "{seen}");
    assert!(
        seen["steer_result"]
            .as_str()
            .unwrap()
            .starts_with("Accepted: 8 users → 12 users"),
        "{seen}"
    );
    let at_s = seen["steer_at_s"].as_f64().unwrap();
    assert!(
        seen["marks"].as_u64() >= Some(6),
        "every chart marks the change: {seen}"
    );

    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "Stop did not end the run early"
    );
    let r = read_run(&dir);
    assert_eq!(r.manifest.state, RunState::Interrupted);
    assert!(r.manifest.ended_at.is_some());

    // The analyzer lists the change at the second the engine said it began, and marks it.
    let out = Command::new(analyzer_binary())
        .args(["report", "--format", "json,html"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let changes = report["runs"][0]["load_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let change = &changes[0];
    assert_eq!(change["what"], "users");
    assert_eq!(
        (change["from"].as_f64(), change["to"].as_f64()),
        (Some(8.0), Some(12.0))
    );
    assert!(
        (change["at_s"].as_f64().unwrap() - at_s).abs() < 1e-3,
        "{change} vs {at_s}"
    );
    let second = change["second"].as_f64().unwrap();
    assert!((second - at_s).abs() <= 1.0, "{change} vs {at_s}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("→ 12 users"), "the charts mark the change");
}

/// The analyzer binary of this workspace (built if the engine's tests ran alone).
fn analyzer_binary() -> PathBuf {
    let engine = PathBuf::from(env!("CARGO_BIN_EXE_engine"));
    let analyzer = engine.with_file_name(format!("analyzer{}", std::env::consts::EXE_SUFFIX));
    if !analyzer.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "analyzer", "--bin", "analyzer"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the analyzer failed");
    }
    assert!(
        analyzer.exists(),
        "no analyzer binary at {}",
        analyzer.display()
    );
    analyzer
}

/// A control request: (status, JSON answer).
fn control(
    web: SocketAddr,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let (status, _, text) = http(
        web,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {web}\r\nOrigin: http://{web}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
    (status, value)
}

/// Steering over HTTP: bad requests are refused with a reason and change nothing; users rise to the
/// asked number (the new ones making requests), fall back (the others stop starting iterations) and
/// rise again (stopped users start again); every core's log records each change with the start the
/// engine answered.
#[test]
fn steering_over_http_raises_and_lowers_users() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let run = LiveRun::start(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "2",
            "--cores",
            "2",
            "--duration",
            "60s",
            "--quiet",
            "--web",
            "127.0.0.1:0",
            "--max-users",
            "6",
        ],
    );
    let web = run.web.unwrap();
    let first = feed_until(web, "both users", |v| {
        v["seconds"].as_u64() >= Some(1) && v["now"]["users"].as_u64() == Some(2)
    });
    assert_eq!(first["steer"]["available"], true, "{}", first["steer"]);
    assert_eq!(first["steer"]["max"], 6.0);
    let json = "application/json";
    for (content_type, body, status, says) in [
        (json, "{\"users\":", 400, "malformed JSON"),
        (json, "{\"users\": 7}", 409, "--max-users 7"),
        (json, "{\"users\": -1}", 400, "whole number"),
        (json, "{\"users\": 1e12}", 400, "whole number"),
        (json, "{\"rate\": 10}", 400, "closed model"),
        (json, "{\"users\": 3, \"ramp_s\": 99999}", 400, "ramp_s"),
        (json, "{}", 400, "nothing to change"),
        ("text/plain", "{\"users\": 3}", 415, "JSON body"),
    ] {
        let (got, answer) = control(web, "/api/steer", content_type, body);
        assert_eq!(got, status, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }
    let (status, up) = control(web, "/api/steer", json, "{\"users\": 6, \"ramp_s\": 1}");
    assert_eq!(status, 202, "{up}");
    let up_at = up["change"]["at_s"].as_f64().unwrap();
    assert_eq!(
        (up["change"]["from"].as_f64(), up["change"]["to"].as_f64()),
        (Some(2.0), Some(6.0))
    );
    feed_until(web, "six users", |v| v["now"]["users"].as_u64() == Some(6));
    let (status, down) = control(web, "/api/steer", json, "{\"users\": 1}");
    assert_eq!(status, 202, "{down}");
    let down_at = down["change"]["at_s"].as_f64().unwrap();
    let last = feed_until(web, "one user", |v| {
        v["now"]["users"].as_u64() == Some(1) && v["seconds"].as_f64() > Some(down_at + 1.0)
    });
    assert_eq!(last["steer"]["changes"].as_array().unwrap().len(), 2);
    assert_eq!(last["steer"]["target"], 1.0);
    // Up again: the users stopped before start again, as new users in their slots.
    let (status, again) = control(web, "/api/steer", json, "{\"users\": 3, \"spawn_rate\": 4}");
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["change"]["ramp_s"], 0.5);
    let again_at = again["change"]["at_s"].as_f64().unwrap();
    feed_until(web, "three users", |v| {
        v["now"]["users"].as_u64() == Some(3) && v["seconds"].as_f64() > Some(again_at + 1.0)
    });
    let (status, _) = control(web, "/api/stop", json, "{}");
    assert_eq!(status, 202);
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("steered from the dashboard"), "{stderr}");

    let r = read_run(&dir);
    let micros = |s: f64| (s * 1e6).round() as u64;
    for log in &r.logs {
        let got: Vec<(u64, u8, f64)> = log
            .load_changes
            .iter()
            .map(|c| (c.at_us, c.what, c.to))
            .collect();
        assert_eq!(
            got,
            [
                (micros(up_at), formats::LoadChange::USERS, 6.0),
                (micros(down_at), formats::LoadChange::USERS, 1.0),
                (micros(again_at), formats::LoadChange::USERS, 3.0)
            ]
        );
        assert_eq!(log.load_changes[0].ramp_us, 1_000_000);
        assert_eq!(log.load_changes[0].who, "dashboard");
    }
    let rows = r.rows();
    let mut raised: Vec<u32> = rows
        .iter()
        .filter(|s| s.intended_us >= micros(up_at))
        .map(|s| s.user)
        .collect();
    raised.sort_unstable();
    raised.dedup();
    assert_eq!(
        raised,
        [0, 1, 2, 3, 4, 5],
        "the four new users made requests"
    );
    // Users 1.. finish the iteration they were in and start no other after the change (with a
    // second's room for a core that read it late).
    let late: Vec<&Row> = rows
        .iter()
        .filter(|s| {
            s.user >= 1 && s.intended_us > micros(down_at + 1.0) && s.intended_us < micros(again_at)
        })
        .collect();
    assert!(late.is_empty(), "{:?}", &late[..late.len().min(3)]);
    let mut again_users: Vec<u32> = rows
        .iter()
        .filter(|s| s.intended_us >= micros(again_at + 0.5))
        .map(|s| s.user)
        .collect();
    again_users.sort_unstable();
    again_users.dedup();
    assert_eq!(again_users, [0, 1, 2], "users 1 and 2 started again");
}

/// A staged profile owns its load: steering is refused with the reason, and the page is told why.
#[test]
fn a_staged_run_refuses_steering_with_the_reason() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "staged", host: "http://{}", load: Stages(stages: [(users: 2, over: "30s")]),
                users: [(wait: Constant("20ms"), tasks: [(requests: [(path: "/")])])])"#,
            server.addr()
        ),
    );
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[profile.to_str().unwrap(), "--quiet", "--web", "127.0.0.1:0"],
    );
    let web = run.web.unwrap();
    let feed = feed_until(web, "a first second", |v| v["seconds"].as_u64() >= Some(1));
    assert_eq!(feed["steer"]["available"], false);
    assert!(
        feed["steer"]["reason"].as_str().unwrap().contains("Stages"),
        "{}",
        feed["steer"]
    );
    let (status, answer) = control(web, "/api/steer", "application/json", "{\"users\": 5}");
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("Stages"),
        "{answer}"
    );
    let (status, _) = control(web, "/api/stop", "application/json", "{}");
    assert_eq!(status, 202);
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        read_run(&dir)
            .logs
            .iter()
            .all(|l| l.load_changes.is_empty())
    );
}

/// Steering an open model: the arrival rate follows each change on the loop's own schedule, so the
/// log holds exactly the arrivals the new rate asks for, second by second, at once or along a ramp.
#[test]
fn steering_an_open_model_changes_the_arrival_rate() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let run = LiveRun::start(
        tmp.path(),
        &[
            "--url",
            &url,
            "--rate",
            "50",
            "--cores",
            "2",
            "--duration",
            "60s",
            "--quiet",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let web = run.web.unwrap();
    let first = feed_until(web, "a first second", |v| v["seconds"].as_u64() >= Some(2));
    assert_eq!(first["steer"]["knob"], "rate", "{}", first["steer"]);
    let json = "application/json";
    let (status, answer) = control(web, "/api/steer", json, "{\"users\": 5}");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("open model"),
        "{answer}"
    );
    let (status, answer) = control(web, "/api/steer", json, "{\"rate\": 50, \"spawn_rate\": 2}");
    assert_eq!(status, 400, "{answer}");
    let (status, up) = control(web, "/api/steer", json, "{\"rate\": 200}");
    assert_eq!(status, 202, "{up}");
    let up_at = up["change"]["at_s"].as_f64().unwrap();
    assert_eq!(up["change"]["from"], 50.0);
    feed_until(web, "three seconds at 200/s", |v| {
        v["seconds"].as_f64() > Some(up_at + 3.0)
    });
    let (status, down) = control(web, "/api/steer", json, "{\"rate\": 100, \"ramp_s\": 2}");
    assert_eq!(status, 202, "{down}");
    let down_at = down["change"]["at_s"].as_f64().unwrap();
    let last = feed_until(web, "the ramp's end", |v| {
        v["seconds"].as_f64() > Some(down_at + 3.0)
    });
    assert_eq!(last["now"]["target"], 100.0, "{}", last["now"]);
    let (status, _) = control(web, "/api/stop", json, "{}");
    assert_eq!(status, 202);
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");

    let r = read_run(&dir);
    let dropped: u32 = r
        .logs
        .iter()
        .flat_map(|l| &l.intervals)
        .map(|i| i.iterations_dropped)
        .sum();
    assert_eq!(dropped, 0, "every arrival found a user");
    let starts: Vec<f64> = r
        .rows()
        .iter()
        .map(|s| s.intended_us as f64 / 1e6)
        .collect();
    let arrivals = |from: f64, to: f64| starts.iter().filter(|&&t| t >= from && t < to).count();
    let near = |got: usize, want: f64, what: &str| {
        assert!(
            (got as f64 - want).abs() <= 2.0,
            "{what}: {got} arrivals, want {want}"
        );
    };
    near(arrivals(up_at - 1.5, up_at - 0.5), 50.0, "before");
    near(arrivals(up_at + 0.5, up_at + 1.5), 200.0, "after the jump");
    near(
        arrivals(down_at, down_at + 2.0),
        300.0,
        "along the ramp 200 → 100",
    );
    near(
        arrivals(down_at + 2.0, down_at + 3.0),
        100.0,
        "after the ramp",
    );
    for log in &r.logs {
        let got: Vec<(u8, f64, f64, u64)> = log
            .load_changes
            .iter()
            .map(|c| (c.what, c.from, c.to, c.ramp_us))
            .collect();
        assert_eq!(
            got,
            [
                (formats::LoadChange::RATE, 50.0, 200.0, 0),
                (formats::LoadChange::RATE, 200.0, 100.0, 2_000_000)
            ]
        );
    }
}

/// A user that steering stops finishes its iteration (or cuts its think time short) and runs its
/// on_stop then, as Locust's users do; the users that stay run theirs only at the run's end (not at
/// all when it is interrupted).
#[test]
fn users_stopped_by_steering_run_their_on_stop() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "bye", host: "http://{}", load: Closed(users: 4, duration: "60s"),
                users: [(wait: Constant("30s"),
                         tasks: [(requests: [(path: "/", name: "work")])],
                         on_stop: [(path: "/", name: "bye")])])"#,
            server.addr()
        ),
    );
    let run = LiveRun::start(
        &tmp.path().join("runs"),
        &[
            profile.to_str().unwrap(),
            "--quiet",
            "--cores",
            "2",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let web = run.web.unwrap();
    feed_until(web, "four users", |v| v["now"]["users"].as_u64() == Some(4));
    let (status, down) = control(web, "/api/steer", "application/json", "{\"users\": 1}");
    assert_eq!(status, 202, "{down}");
    let down_at = down["change"]["at_s"].as_f64().unwrap();
    feed_until(web, "one user", |v| {
        v["now"]["users"].as_u64() == Some(1) && v["seconds"].as_f64() > Some(down_at + 1.0)
    });
    let (status, _) = control(web, "/api/stop", "application/json", "{}");
    assert_eq!(status, 202);
    let (code, dir, stderr) = run.finish();
    assert_eq!(code, 130, "{stderr}");
    let byes = read_run(&dir).named("bye");
    let mut users: Vec<u32> = byes.iter().map(|s| s.user).collect();
    users.sort_unstable();
    assert_eq!(
        users,
        [1, 2, 3],
        "one on_stop each, for the stopped users only"
    );
    // They were thinking for 30 s: they stop at the change, not when their think time is over.
    let at = (down_at * 1e6) as u64;
    assert!(
        byes.iter()
            .all(|s| s.intended_us >= at && s.intended_us < at + 1_000_000),
        "{byes:?}"
    );
}
