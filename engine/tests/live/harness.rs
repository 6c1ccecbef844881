//! Running the engine with its live view in the background, and talking to that view over HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::serve::Server;

use crate::util::*;

/// A run of the engine binary in the background, with the addresses it printed.
pub(crate) struct LiveRun {
    child: Child,
    pub(crate) web: Option<SocketAddr>,
    pub(crate) metrics: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl LiveRun {
    /// Starts `engine run ARGS --out OUT` and waits (bounded) until it printed the live view's
    /// addresses it was asked for.
    pub(crate) fn start(out: &Path, args: &[&str]) -> LiveRun {
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
    pub(crate) fn finish(mut self) -> (i32, PathBuf, String) {
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

    /// `engine run --url http://<server>/ --quiet ARGS`, its run directory under `out`.
    pub(crate) fn start_url(out: &Path, server: &Server, args: &[&str]) -> LiveRun {
        let url = format!("http://{}/", server.addr());
        let mut all = vec!["--url", url.as_str(), "--quiet"];
        all.extend_from_slice(args);
        LiveRun::start(out, &all)
    }

    /// Stops the run from the dashboard (`POST /api/stop`) and waits for the engine to exit as
    /// interrupted (130); returns the run directory and the engine's stderr.
    pub(crate) fn stop(self) -> (PathBuf, String) {
        let web = self.web.expect("the run serves its dashboard (--web)");
        let (status, _) = control(web, "/api/stop", "application/json", "{}");
        assert_eq!(status, 202);
        let (code, dir, stderr) = self.finish();
        assert_eq!(code, 130, "{stderr}");
        (dir, stderr)
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn drain(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

pub(crate) fn address_after(text: &str, prefix: &str) -> Option<SocketAddr> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    let end = rest.find(['/', '\n'])?;
    rest[..end].parse().ok()
}

/// One HTTP exchange on a fresh connection: (status, headers, body).
pub(crate) fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
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

pub(crate) fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"),
    )
}

/// Polls the feed (bounded) until `done` says so; returns that feed. A `503` (every connection slot
/// taken, as the hostile-clients test arranges) is retried.
pub(crate) fn feed_until(
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
pub(crate) fn metric_sum(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// The binary for `name`, or `None` (with a message) outside CI; in CI a missing tool fails the test.
pub(crate) fn tool(name: &str, paths: &[&str], package: &str) -> Option<PathBuf> {
    let found = paths.iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        missing(name, package);
    }
    found
}

/// A tool a test needs is not installed: under `CI` that fails the test; elsewhere the test is skipped
/// with a message written straight to the terminal (the test harness captures `eprintln!`, and a
/// skip that nobody sees looks like a pass).
pub(crate) fn missing(what: &str, package: &str) {
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

pub(crate) fn samples(dir: &Path) -> u64 {
    read_run(dir).samples.len() as u64
}

/// A control request: (status, JSON answer).
pub(crate) fn control(
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

/// The analyzer binary of this workspace (built if the engine's tests ran alone).
pub(crate) fn analyzer_binary() -> PathBuf {
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
