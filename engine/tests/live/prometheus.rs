//! A real Prometheus scrapes a run.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::util::*;

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
    let run = LiveRun::start_url(
        &tmp.path().join("runs"),
        &server,
        &[
            "--users",
            "4",
            "--cores",
            "1",
            "--duration",
            "8s",
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
