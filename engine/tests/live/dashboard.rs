//! The dashboard's server: its feed and `/metrics` against the logs, Stop, a taken port, and
//! hostile clients.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::RunState;

use crate::harness::*;
use crate::util::*;

#[test]
fn the_feed_and_metrics_agree_with_the_logs() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let run = LiveRun::start_url(
        tmp.path(),
        &server,
        &[
            "--users",
            "4",
            "--cores",
            "1",
            "--duration",
            "4s",
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
    let started = Instant::now();
    let run = LiveRun::start_url(
        tmp.path(),
        &server,
        &[
            "--users",
            "2",
            "--cores",
            "1",
            "--duration",
            "60s",
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
    let run = LiveRun::start_url(
        tmp.path(),
        &server,
        &[
            "--users",
            "2",
            "--cores",
            "1",
            "--duration",
            "5s",
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
