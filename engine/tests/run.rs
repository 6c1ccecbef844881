//! `engine run` end to end, on both backends of the event loop: io_uring and epoll. Every test below
//! runs once per backend.

mod util;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use formats::{Outcome, RunState};
use util::*;

/// Defines `mod uring { #[test] fn name() }` and `mod epoll { ... }` calling `name(driver)`.
macro_rules! for_each_driver {
    ($($name:ident),* $(,)?) => {
        mod uring { $( #[test] fn $name() { let _serial = super::one_at_a_time(); super::$name("uring") } )* }
        mod epoll { $( #[test] fn $name() { let _serial = super::one_at_a_time(); super::$name("epoll") } )* }
    };
}

for_each_driver!(
    closed_run_logs_every_request_the_server_answered,
    status_500_is_a_status_failure,
    closed_port_gives_connect_failures_and_exit_0,
    sigint_mid_run_finalizes_the_manifest_and_logs,
    hostile_responses_fail_as_malformed_without_stopping_the_run,
    slow_responses_time_out_at_the_request_timeout,
    chunked_and_close_delimited_bodies_are_read_to_the_end,
    a_keep_alive_connection_closed_while_idle_is_reopened_not_failed,
);

fn closed_run_logs_every_request_the_server_answered(io: &str) {
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(
                name: "count",
                host: "http://{}",
                load: Closed(users: 8, duration: "2s"),
                users: [(cookies: false, tasks: [
                    (weight: 3, requests: [(path: "/", name: "home")]),
                    (weight: 1, requests: [(path: "/items/7", name: "item")]),
                ])],
            )"#,
            server.addr()
        ),
    );
    let out = run(
        tmp.path(),
        &[profile.to_str().unwrap(), "--cores", "2", "--io", io],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let served = server.served();
    let r = read_run(&run_dir(&out));

    assert_eq!(r.manifest.state, RunState::Completed);
    assert_eq!(
        r.manifest.io_driver,
        if io == "epoll" { "epoll" } else { "io_uring" }
    );
    assert!(
        r.manifest
            .io_setup
            .as_deref()
            .unwrap_or("")
            .contains("event loop"),
        "{:?}",
        r.manifest.io_setup
    );
    assert_eq!(r.manifest.logs.len(), 2, "one log per core");
    assert_eq!(r.logs.len(), 2);
    assert!(
        served > 100,
        "the server answered only {served} requests in 2 s"
    );
    assert_eq!(
        r.samples.len() as u64,
        served,
        "one sample per request the server answered"
    );
    for log in 0..r.logs.len() {
        let s = &r.logs[log].samples;
        assert!(!s.is_empty(), "core {log} made requests");
        for i in 0..s.len() {
            let sample = s.get(i).unwrap();
            assert!(sample.latency_us > 0, "positive latency");
            assert!(
                sample.intended_us <= sample.actual_us,
                "no sample starts before it was due"
            );
            assert_eq!(sample.outcome, Outcome::Ok);
            assert_eq!(sample.status, 200);
            assert!(sample.bytes_sent > 0 && sample.bytes_received > 0);
            assert!(
                matches!(r.name(log, i), "home" | "item"),
                "unexpected name {}",
                r.name(log, i)
            );
        }
        assert!(
            !r.logs[log].intervals.is_empty(),
            "per-second interval stats are logged"
        );
    }
    // Users keep their connections: far fewer connects than requests.
    let connects = r.samples.connect_us.iter().filter(|&&c| c > 0).count();
    assert!(connects <= 16, "{connects} connects for 8 keep-alive users");
}

fn status_500_is_a_status_failure(io: &str) {
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/status/500", server.addr());
    let out = run(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "2",
            "--duration",
            "1s",
            "--cores",
            "1",
            "--io",
            io,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "failures are data, not an error: {}",
        stderr(&out)
    );
    let r = read_run(&run_dir(&out));
    assert!(!r.samples.is_empty());
    assert!(r.samples.status.iter().all(|&s| s == 500));
    assert!(
        r.samples
            .outcome
            .iter()
            .all(|&o| o == Outcome::Status.code())
    );
    assert!(
        r.messages().iter().all(|m| m == "unexpected status 500"),
        "{:?}",
        r.messages().first()
    );
}

fn closed_port_gives_connect_failures_and_exit_0(io: &str) {
    // Bind and drop a listener: the port is then (almost certainly) closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    let out = run(
        tmp.path(),
        &[
            "--url",
            &url,
            "--no-preflight",
            "--users",
            "2",
            "--duration",
            "1s",
            "--cores",
            "1",
            "--io",
            io,
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        took < Duration::from_secs(6),
        "the run kept its schedule ({took:?})"
    );
    let r = read_run(&run_dir(&out));
    assert_eq!(r.manifest.state, RunState::Completed);
    assert!(!r.samples.is_empty());
    assert!(
        r.samples
            .outcome
            .iter()
            .all(|&o| o == Outcome::ConnectError.code())
    );
    assert!(r.samples.status.iter().all(|&s| s == 0));
    assert!(
        r.messages().iter().all(|m| m.starts_with("connect:")),
        "{:?}",
        r.messages().first()
    );
    // Failed connects pause a millisecond, so two users make at most a few thousand attempts a second.
    assert!(
        r.samples.len() < 5_000,
        "{} connect attempts in 1 s",
        r.samples.len()
    );
}

fn sigint_mid_run_finalizes_the_manifest_and_logs(io: &str) {
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let mut child = engine()
        .args([
            "run",
            "--url",
            &url,
            "--users",
            "4",
            "--duration",
            "60s",
            "--cores",
            "2",
            "--io",
            io,
            "--out",
        ])
        .arg(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first console line means every core is running and has logged a second.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("req/s")));
    assert!(first.is_some(), "the console printed a per-second line");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let signalled = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        took < Duration::from_secs(2),
        "finalized {took:?} after the interrupt"
    );
    let r = read_run(&run_dir(&out));
    assert_eq!(r.manifest.state, RunState::Interrupted);
    assert!(r.manifest.ended_at.is_some());
    assert!(!r.samples.is_empty());
    assert!(
        r.samples.len() as u64 <= server.served() + 4,
        "at most one cancelled request per user"
    );
}

fn hostile_responses_fail_as_malformed_without_stopping_the_run(io: &str) {
    // A server that answers every request with a body far beyond the 1 MiB default cap, then garbage.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let reply: &[u8] = match i % 3 {
                0 => b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                1 => b"SSH-2.0-OpenSSH\r\n\r\n",
                _ => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            };
            let _ = conn.write_all(reply);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let out = run(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "1",
            "--duration",
            "1s",
            "--cores",
            "1",
            "--io",
            io,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert!(r.samples.len() >= 3);
    assert!(
        r.samples
            .outcome
            .iter()
            .all(|&o| o == Outcome::Malformed.code()),
        "{:?}",
        r.messages()
    );
    let messages = r.messages();
    assert!(messages.iter().any(|m| m.contains("larger than the limit")));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("malformed response head"))
    );
    assert!(messages.iter().any(|m| m.contains("chunked")));
}

fn slow_responses_time_out_at_the_request_timeout(io: &str) {
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(
                name: "slow",
                host: "http://{}",
                http: (request_timeout: "300ms"),
                load: Closed(users: 2, duration: "1500ms"),
                users: [(cookies: false, tasks: [(requests: [(path: "/delay/5000")])])],
            )"#,
            server.addr()
        ),
    );
    let out = run(
        tmp.path(),
        &[profile.to_str().unwrap(), "--cores", "1", "--io", io],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let r = read_run(&run_dir(&out));
    let timeouts: Vec<u32> = (0..r.samples.len())
        .filter(|&i| r.samples.outcome[i] == Outcome::Timeout.code())
        .map(|i| r.samples.latency_us[i])
        .collect();
    assert!(
        timeouts.len() >= 4,
        "2 users x ~4 timeouts each, got {}",
        timeouts.len()
    );
    // The watchdog looks every 50 ms: a timeout fires at 300 ms or a tick (plus scheduling) later,
    // and long before the 5 s response.
    assert!(
        timeouts.iter().all(|&l| (300_000..1_000_000).contains(&l)),
        "{timeouts:?}"
    );
    // Anything else was cut off by the end of the run.
    assert!(
        r.samples
            .outcome
            .iter()
            .all(|&o| o == Outcome::Timeout.code() || o == Outcome::Cancelled.code())
    );
}

fn chunked_and_close_delimited_bodies_are_read_to_the_end(io: &str) {
    // Keep-alive chunked responses on even connections; close-delimited bodies on odd ones.
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
    const UNTIL_CLOSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nno length, ends at close";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // Answer each request as it arrives; a close-delimited answer ends the connection.
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let reply = if i % 2 == 0 { CHUNKED } else { UNTIL_CLOSE };
                    if conn.write_all(reply).is_err() || i % 2 == 1 {
                        return;
                    }
                }
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let out = run(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "2",
            "--duration",
            "1s",
            "--cores",
            "1",
            "--io",
            io,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert!(r.samples.len() > 10);
    assert!(
        r.samples.outcome.iter().all(|&o| o == Outcome::Ok.code()),
        "{:?}",
        r.messages()
    );
    let lengths: std::collections::BTreeSet<u32> =
        r.samples.bytes_received.iter().copied().collect();
    let expected: std::collections::BTreeSet<u32> =
        [CHUNKED.len() as u32, UNTIL_CLOSE.len() as u32].into();
    assert!(lengths.is_subset(&expected), "{lengths:?}");
    assert!(
        lengths.contains(&(UNTIL_CLOSE.len() as u32)),
        "close-delimited responses were read"
    );
}

fn a_keep_alive_connection_closed_while_idle_is_reopened_not_failed(io: &str) {
    // A server that answers one request per connection and then closes it without saying so, as a
    // server does when its keep-alive timeout expires between two requests of a thinking user.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(name: "idle-close", host: "http://{addr}", load: Closed(users: 2, duration: "1s"),
                users: [(wait: Constant("20ms"), cookies: false, tasks: [(requests: [(path: "/")])])])"#
        ),
    );
    let out = run(
        tmp.path(),
        &[profile.to_str().unwrap(), "--cores", "1", "--io", io],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert!(r.samples.len() >= 20, "{} samples", r.samples.len());
    assert!(
        r.samples.outcome.iter().all(|&o| o == Outcome::Ok.code()),
        "{:?}",
        r.messages()
    );
    // Every request needed a fresh connection, and says so.
    assert!(r.samples.connect_us.iter().all(|&c| c > 0));
}
