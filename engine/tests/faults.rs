//! Faults the engine must survive (issue 9): hostile targets, a SIGKILL mid-run, a full disk, and
//! running out of file descriptors. Each test runs the real binary against a server on loopback and
//! reads what it recorded back through the `formats` crate.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::{Outcome, RunState};
use util::*;

/// How a fault-injecting server answers one request, chosen by the request's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Half a response, then a TCP reset.
    Reset,
    /// Accepts and reads the request, then never answers.
    Hang,
    /// A valid response, one byte every 20 ms.
    Trickle,
    /// A status line whose code is not a number.
    BadStatus,
    /// A header line without a colon.
    BadHeader,
    /// One header of 100 KiB.
    HugeHead,
    /// 100 headers.
    ManyHeaders,
    /// A Content-Length far over `max_body`.
    HugeLength,
    /// No Content-Length: bytes until the server closes, which it never does.
    EndlessBody,
    /// Content-Length 100, ten bytes, then the connection closes.
    ShortBody,
    /// A chunked body that never ends.
    EndlessChunked,
    /// A chunked body whose trailers never end.
    EndlessTrailers,
    /// `100 Continue` interim responses without end (this once kept a core from ever yielding).
    EndlessInterim,
}

impl Fault {
    const ALL: [Fault; 13] = [
        Fault::Reset,
        Fault::Hang,
        Fault::Trickle,
        Fault::BadStatus,
        Fault::BadHeader,
        Fault::HugeHead,
        Fault::ManyHeaders,
        Fault::HugeLength,
        Fault::EndlessBody,
        Fault::ShortBody,
        Fault::EndlessChunked,
        Fault::EndlessTrailers,
        Fault::EndlessInterim,
    ];

    fn path(self) -> String {
        format!("/{self:?}").to_lowercase()
    }

    /// The outcome and a fragment of the message every sample of this fault must have.
    fn expected(self) -> (Outcome, &'static str) {
        match self {
            Fault::Reset => (Outcome::Reset, ""),
            Fault::Hang | Fault::Trickle => (Outcome::Timeout, ""),
            Fault::EndlessInterim => (
                Outcome::Malformed,
                "interim (1xx) responses longer than 64 KiB",
            ),
            Fault::BadStatus => (Outcome::Malformed, "malformed response head"),
            Fault::BadHeader => (Outcome::Malformed, "malformed response head"),
            Fault::HugeHead => (Outcome::Malformed, "response head larger than 64 KiB"),
            Fault::ManyHeaders => (Outcome::Malformed, "too many headers"),
            Fault::HugeLength | Fault::EndlessBody => (
                Outcome::Malformed,
                "response body larger than the limit of 65536 bytes",
            ),
            Fault::ShortBody => (
                Outcome::Reset,
                "connection closed in the middle of the body",
            ),
            Fault::EndlessChunked => (
                Outcome::Malformed,
                "chunked body larger than the limit of 65536 bytes",
            ),
            Fault::EndlessTrailers => (
                Outcome::Malformed,
                "chunk extensions and trailers longer than 64 KiB",
            ),
        }
    }

    /// Acts out the fault on `conn`, whose request line has been read up to the path.
    fn act(self, conn: &mut TcpStream) {
        if self != Fault::Reset {
            read_rest_of_head(conn);
        }
        let _ = match self {
            // Closing a socket with unread request bytes makes the kernel send a reset.
            Fault::Reset => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            }
            Fault::Hang => {
                // Hold the connection until the client gives up and closes it.
                let mut buf = [0u8; 256];
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
                Ok(())
            }
            Fault::Trickle => {
                let response = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
                for byte in response.iter().chain([b'x'; 1000].iter()) {
                    if conn.write_all(&[*byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            }
            Fault::BadStatus => conn.write_all(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
            Fault::BadHeader => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n")
            }
            Fault::HugeHead => {
                let big = "a".repeat(100 << 10);
                conn.write_all(format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\n\r\n").as_bytes())
            }
            Fault::ManyHeaders => {
                let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
                conn.write_all(
                    format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 0\r\n\r\n").as_bytes(),
                )
            }
            Fault::HugeLength => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
            }
            Fault::EndlessBody => endless(
                conn,
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                &[b'x'; 4096],
            ),
            Fault::ShortBody => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            }
            Fault::EndlessChunked => {
                let chunk = [b"1000\r\n".as_slice(), &[b'x'; 4096], b"\r\n"].concat();
                endless(
                    conn,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    &chunk,
                )
            }
            Fault::EndlessTrailers => endless(
                conn,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
                &b"X-Trailer: more\r\n".repeat(256),
            ),
            Fault::EndlessInterim => endless(conn, b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
        };
    }
}

/// Writes `first`, then `repeat` until the client goes away.
fn endless(conn: &mut TcpStream, first: &[u8], repeat: &[u8]) -> std::io::Result<()> {
    conn.write_all(first)?;
    loop {
        conn.write_all(repeat)?;
    }
}

/// Reads up to and including the blank line that ends a request head (requests here have no body).
fn read_rest_of_head(conn: &mut TcpStream) {
    let mut tail = [0u8; 4];
    let mut byte = [0u8; 1];
    for _ in 0..(64 << 10) {
        if !conn.read(&mut byte).is_ok_and(|n| n > 0) {
            return;
        }
        tail.rotate_left(1);
        tail[3] = byte[0];
        if &tail == b"\r\n\r\n" {
            return;
        }
    }
}

/// Starts a server on a free loopback port that acts out the fault each request's path names, one
/// thread per connection. Faults that leave the connection usable keep answering on it.
fn fault_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                // Byte by byte up to the path, so that a reset can leave the rest unread.
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while line.iter().filter(|&&b| b == b' ').count() < 2 && line.len() < 256 {
                    match conn.read(&mut byte) {
                        Ok(1) => line.push(byte[0]),
                        _ => return,
                    }
                }
                let line = String::from_utf8_lossy(&line);
                let path = line.split(' ').nth(1).unwrap_or("");
                if let Some(fault) = Fault::ALL.iter().find(|f| f.path() == path) {
                    fault.act(&mut conn);
                }
            });
        }
    });
    addr
}

/// Runs `cmd` to the end, watching its peak resident set (`VmHWM`, which only grows) every 20 ms;
/// returns the output and the last peak seen, in KiB.
fn output_and_peak_rss(cmd: &mut Command) -> (std::process::Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Ok(text) = std::fs::read_to_string(&status) else {
            break;
        };
        // A zombie has no memory left to report; stop at the first status without VmHWM.
        let Some(kib) = text
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        else {
            break;
        };
        peak = kib;
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak)
}

/// Whether every problem in a log is where a writer that stopped abruptly leaves one: a torn last
/// block and no end-of-log block, or (when the final blocks fitted where a failed write had torn
/// one) the torn remainder after the end block.
fn only_a_torn_tail(problems: &[formats::DecodeError]) -> bool {
    problems.iter().all(|p| {
        matches!(
            p.kind,
            formats::DecodeErrorKind::TruncatedTail { .. }
                | formats::DecodeErrorKind::MissingEnd
                | formats::DecodeErrorKind::DataAfterEnd { .. }
        )
    })
}

#[test]
fn hostile_targets_become_classified_failures_on_schedule_epoll() {
    let _serial = one_at_a_time();
    hostile_targets_become_classified_failures_on_schedule("epoll");
}

#[test]
fn hostile_targets_become_classified_failures_on_schedule_uring() {
    let _serial = one_at_a_time();
    hostile_targets_become_classified_failures_on_schedule("uring");
}

fn hostile_targets_become_classified_failures_on_schedule(io: &str) {
    let addr = fault_server();
    let tmp = tempfile::tempdir().unwrap();
    let tasks: String = Fault::ALL
        .iter()
        .map(|f| format!(r#"(requests: [(path: "{}", name: "{f:?}")]),"#, f.path()))
        .collect();
    let profile = profile(
        tmp.path(),
        &format!(
            r#"(
                name: "hostile",
                host: "http://{addr}",
                http: (request_timeout: "300ms", max_body: "64KiB"),
                load: Closed(users: 13, duration: "2s"),
                users: [(wait: Constant("5ms"), cookies: false, tasks: [{tasks}])],
            )"#
        ),
    );
    let started = Instant::now();
    let (out, peak_kib) = output_and_peak_rss(
        engine()
            .arg("run")
            .arg(&profile)
            // Every request fails here by design; the flag keeps exit status 0 (else 4).
            .args([
                "--cores",
                "1",
                "--io",
                io,
                "--quiet",
                "--failures-are-data",
                "--out",
            ])
            .arg(tmp.path()),
    );
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    // The planned 2 s, the grace period (the 300 ms request timeout) and start-up: a hostile target
    // must not hold the run past its end.
    assert!(took < Duration::from_secs(6), "the run took {took:?}");
    // Bodies stream through a fixed buffer and are capped at max_body: nothing a target sends makes
    // the engine grow. (A debug build against a well-behaved target peaks at a few tens of MiB.)
    let peak_mib = peak_kib / 1024;
    assert!(
        (1..96).contains(&peak_mib),
        "the engine peaked at {peak_mib} MiB"
    );

    let r = read_run(&run_dir(&out));
    assert_eq!(r.manifest.state, RunState::Completed);
    for fault in Fault::ALL {
        let rows = r.named(&format!("{fault:?}"));
        let (outcome, fragment) = fault.expected();
        let finished: Vec<_> = rows
            .iter()
            .filter(|s| s.outcome != Outcome::Cancelled.code())
            .collect();
        assert!(!finished.is_empty(), "{fault:?}: no finished sample");
        for s in &finished {
            assert_eq!(
                s.outcome,
                outcome.code(),
                "{fault:?}: {:?} (status {})",
                s.message,
                s.status
            );
            let message = s.message.as_deref().unwrap_or("");
            assert!(message.contains(fragment), "{fault:?}: {message:?}");
        }
        if outcome == Outcome::Timeout {
            // Timed out at the request timeout (plus the watchdog's 50 ms tick and scheduling), not
            // at the end of the run.
            assert!(
                finished
                    .iter()
                    .all(|s| (300_000..1_000_000).contains(&s.latency_us)),
                "{fault:?}: {:?}",
                finished.iter().map(|s| s.latency_us).collect::<Vec<_>>()
            );
        }
    }
    // The schedule went on to the end: users kept starting requests in the last half second.
    let last_start = r.rows().iter().map(|s| s.intended_us).max().unwrap();
    assert!(
        last_start > 1_500_000,
        "the last request started at {last_start} µs of 2 s"
    );
}

/// Reads a log that may still be being written: complete blocks only.
fn intervals_in(path: &Path) -> usize {
    std::fs::read(path)
        .ok()
        .and_then(|data| formats::read_log(&data).ok())
        .map_or(0, |log| log.intervals.len())
}

fn sigkill_mid_run_loses_at_most_the_last_second_per_core() {
    let _serial = one_at_a_time();
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
            "--quiet",
            "--out",
        ])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (with a deadline, polling) until both cores have written three one-second intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dir = loop {
        assert!(Instant::now() < deadline, "no intervals within 30 s");
        let dir = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.is_dir());
        if let Some(dir) = dir
            && (0..2).all(|c| intervals_in(&dir.join(format!("core-{c}.log"))) >= 3)
        {
            break dir;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen: usize = (0..2)
        .map(|c| {
            let data = std::fs::read(dir.join(format!("core-{c}.log"))).unwrap();
            formats::read_log(&data).unwrap().samples.len()
        })
        .sum();
    child.kill().unwrap();
    let killed_at = std::time::SystemTime::now();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let served = server.served();

    let run = formats::Run::open(&dir).unwrap();
    let manifest = run.manifest.as_ref().unwrap();
    assert_eq!(manifest.state, RunState::Running, "never finalized");
    let killed_us = killed_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        / 1000
        - u64::try_from(manifest.started_unix_ns / 1000).unwrap();
    let mut read = 0;
    for (core, log) in run.read_logs() {
        let log = log.unwrap_or_else(|e| panic!("core {core}: {e}"));
        assert!(log.end.is_none(), "a killed engine writes no end block");
        // Damage, if any, is only the block being written when the engine died.
        assert!(
            only_a_torn_tail(&log.problems),
            "core {core}: {:?}",
            log.problems
        );
        let last = log.intervals.last().expect("intervals were written");
        let covered_us = last.start_us + u64::from(last.duration_us);
        // Each core flushes a block every second and writes it within 250 ms; allow as much again
        // for a loaded machine.
        assert!(
            killed_us.saturating_sub(covered_us) < 2_500_000,
            "core {core}: the log covers {covered_us} µs of {killed_us} µs"
        );
        read += log.samples.len();
    }
    assert!(read >= seen, "{read} samples now, {seen} before the kill");
    assert!(read as u64 <= served, "{read} samples of {served} requests");
    // The samples lost are those of the last unflushed second or so, at the run's own rate.
    let rate = read as f64 / (killed_us as f64 / 1e6);
    let lost = (served - read as u64) as f64;
    assert!(
        lost <= rate * 2.5 + 100.0,
        "lost {lost} samples at {rate:.0}/s"
    );
}

/// A run against the embedded target with the given extra command wrapper (`prlimit ...`) and out dir.
fn run_wrapped(wrapper: &[&str], out: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(wrapper[0]);
    if let Some(io) = io() {
        cmd.env("STAMPEDE_IO", io);
    }
    cmd.args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out);
    cmd.output().expect("the engine runs")
}

/// What a run that could not write its log must look like: exit 1, an error naming the log file,
/// a prompt stop, and everything written before the failure readable.
fn assert_stopped_cleanly_on_a_write_error(out: &std::process::Output, took: Duration) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("cannot write ") && err.contains("core-0.log"),
        "the error names the file: {err}"
    );
    assert!(
        took < Duration::from_secs(20),
        "stopped at the failure, not at the planned 60 s: {took:?}"
    );
}

/// Reads the run written into `parent`: every complete block before the failure decodes.
fn assert_written_part_readable(parent: &Path) {
    let dir = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a run directory");
    let run = formats::Run::open(&dir).unwrap();
    let log = formats::read_log_file(&dir.join("core-0.log")).unwrap();
    assert!(!log.samples.is_empty(), "samples before the failure");
    assert!(only_a_torn_tail(&log.problems), "{:?}", log.problems);
    match &run.manifest {
        // Finalized as failed, with the reason, when the manifest could still be written...
        Ok(m) if m.state != RunState::Running => {
            assert_eq!(m.state, RunState::Failed);
            assert!(
                m.error.as_deref().unwrap_or("").contains("core-0.log"),
                "{m:?}"
            );
        }
        // ... else left "running", which the analyzer reports as never finalized.
        Ok(_) => {}
        Err(e) => panic!("the manifest written at the start is intact: {e}"),
    }
}

fn a_file_size_limit_stops_the_run_naming_the_log() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    let started = Instant::now();
    // 256 KiB: the manifest fits, the log passes it within a second or two.
    let out = run_wrapped(
        &["prlimit", "--fsize=262144", "--"],
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "4",
            "--duration",
            "60s",
            "--cores",
            "1",
            "--quiet",
        ],
    );
    assert_stopped_cleanly_on_a_write_error(&out, started.elapsed());
    assert!(stderr(&out).contains("File too large"), "{}", stderr(&out));
    assert_written_part_readable(tmp.path());
}

/// Unmounts a tmpfs when the test ends, whatever happens.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn a_full_disk_stops_the_run_naming_the_log() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(tmp.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // Mounting needs root; the file-size-limit test covers the same path without it.
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    }
    let _unmount = Mounted(tmp.path().to_owned());
    let server = server();
    let url = format!("http://{}/", server.addr());
    let started = Instant::now();
    let out = run(
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "4",
            "--duration",
            "60s",
            "--cores",
            "1",
        ],
    );
    assert_stopped_cleanly_on_a_write_error(&out, started.elapsed());
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert_written_part_readable(tmp.path());
}

fn running_out_of_file_descriptors_fails_requests_as_local_resource_and_says_why() {
    let _serial = one_at_a_time();
    let server = server();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.addr());
    // 64 descriptors, hard limit included (the engine raises its soft limit to the hard one), and
    // 200 users: most connects fail with EMFILE.
    let out = run_wrapped(
        &["prlimit", "--nofile=64:64", "--"],
        tmp.path(),
        &[
            "--url",
            &url,
            "--users",
            "200",
            "--duration",
            "1s",
            "--cores",
            "1",
        ],
    );
    let err = stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        stdout.contains("ran out of file descriptors or ports")
            && stdout.contains("Too many open files")
            && stdout.contains("ulimit -n"),
        "the summary says why: {stdout}"
    );
    let r = read_run(&run_dir(&out));
    let rows = r.rows();
    let local: Vec<_> = rows
        .iter()
        .filter(|s| s.outcome == Outcome::LocalResource.code())
        .collect();
    assert!(!local.is_empty(), "{:?}", r.messages().first());
    assert!(
        local.iter().all(|s| s
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Too many open files"))),
        "{:?}",
        local.first()
    );
    // The users that did get a descriptor still measured the target.
    assert!(rows.iter().any(|s| s.outcome == Outcome::Ok.code()));
}

for_each_backend!(
    sigkill_mid_run_loses_at_most_the_last_second_per_core,
    a_file_size_limit_stops_the_run_naming_the_log,
    a_full_disk_stops_the_run_naming_the_log,
    running_out_of_file_descriptors_fails_requests_as_local_resource_and_says_why,
);
