//! Helpers for the engine's integration tests: run the real binary against a test server on
//! loopback (port 0), then read the run directory back through the `formats` crate.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use engine::cli::IoChoice;
use engine::serve::{Server, ServerConfig};
use formats::{LogContents, Manifest, Run, SampleColumns};

/// Runs tests that start an engine one at a time: each engine pins threads to CPUs, and a dozen of them
/// at once on a 2-core CI machine would turn timing assertions into coin flips.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The I/O drivers every behaviour is tested under.
pub const DRIVERS: [&str; 2] = ["uring", "epoll"];

thread_local! {
    /// The backend engines started by this test thread run on (`$STAMPEDE_IO`), set by
    /// `for_each_backend!`.
    static IO: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Makes engines started by this thread run on `io` unless their arguments say otherwise.
pub fn set_io(io: &'static str) {
    IO.set(Some(io));
}

/// The backend this thread's engines run on, if a test asked for one.
pub fn io() -> Option<&'static str> {
    IO.get()
}

/// Defines `mod uring { #[test] fn name() }` and `mod epoll { ... }`, each running `name()` with the
/// engines it starts on that backend of the event loop.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod uring { $( #[test] fn $name() { super::util::set_io("uring"); super::$name() } )* }
        mod epoll { $( #[test] fn $name() { super::util::set_io("epoll"); super::$name() } )* }
    };
}

/// Starts the embedded target on one thread on a free loopback port.
pub fn server() -> Server {
    Server::start("127.0.0.1:0", 1, IoChoice::Epoll, None).expect("the embedded server starts")
}

/// Starts the embedded target keeping every request it answers (see `Server::recorded`).
pub fn recording_server() -> Server {
    Server::start_with(&ServerConfig {
        addr: "127.0.0.1:0".into(),
        threads: 1,
        io: IoChoice::Epoll,
        cpu: None,
        record: true,
        behaviour: Default::default(),
    })
    .expect("the embedded server starts")
}

/// A command for the engine binary (on the backend `set_io` chose, if any).
pub fn engine() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engine"));
    if let Some(io) = io() {
        cmd.env("STAMPEDE_IO", io);
    }
    cmd
}

/// Runs `engine run` with `args` plus `--out <dir> --quiet --failures-are-data`; returns the output.
/// Many tests make every request fail on purpose (a closed port, a hostile server); the flag keeps
/// their exit status 0, so that it still says the run completed. `tests/debug.rs` tests the default
/// (exit 4).
pub fn run(out: &Path, args: &[&str]) -> Output {
    let mut cmd = engine();
    cmd.arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .arg("--failures-are-data");
    cmd.output().expect("the engine binary runs")
}

/// The run directory: the last line of stdout.
pub fn run_dir(output: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no stdout; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    PathBuf::from(last)
}

/// A finished run read back.
#[derive(Debug)]
pub struct ReadBack {
    pub manifest: Manifest,
    pub logs: Vec<LogContents>,
    pub samples: SampleColumns,
}

impl ReadBack {
    /// The name of sample `i`.
    pub fn name(&self, log: usize, i: usize) -> &str {
        self.logs[log]
            .names
            .get(self.logs[log].samples.name[i])
            .expect("a known name")
    }

    /// Every message of every failed sample.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for log in &self.logs {
            for &m in &log.samples.message {
                if m != 0 {
                    out.push(log.messages.get(m).expect("a known message").to_owned());
                }
            }
        }
        out
    }
}

/// One sample with its strings resolved.
#[derive(Debug, Clone)]
pub struct Row {
    pub core: usize,
    pub name: String,
    pub outcome: u8,
    pub status: u16,
    pub message: Option<String>,
    pub user: u32,
    pub intended_us: u64,
    pub actual_us: u64,
    pub latency_us: u32,
}

impl ReadBack {
    /// Every sample of every core, in log order per core.
    pub fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        for (core, log) in self.logs.iter().enumerate() {
            let s = &log.samples;
            for i in 0..s.len() {
                out.push(Row {
                    core,
                    name: log.names.get(s.name[i]).expect("a known name").to_owned(),
                    outcome: s.outcome[i],
                    status: s.status[i],
                    message: (s.message[i] != 0).then(|| {
                        log.messages
                            .get(s.message[i])
                            .expect("a known message")
                            .to_owned()
                    }),
                    user: s.user[i],
                    intended_us: s.intended_us[i],
                    actual_us: s.actual_us[i],
                    latency_us: s.latency_us[i],
                });
            }
        }
        out
    }

    /// Samples named `name`.
    pub fn named(&self, name: &str) -> Vec<Row> {
        self.rows().into_iter().filter(|r| r.name == name).collect()
    }

    /// Samples that failed, as (name, message) for messages in assertions.
    pub fn failures(&self) -> Vec<(String, Option<String>)> {
        self.rows()
            .into_iter()
            .filter(|r| r.outcome != 0)
            .map(|r| (r.name, r.message))
            .collect()
    }
}

/// Opens a run directory, requiring a readable manifest and undamaged logs.
pub fn read_run(dir: &Path) -> ReadBack {
    let run = Run::open(dir).expect("a run directory");
    let manifest = run.manifest.as_ref().expect("a readable manifest").clone();
    let mut logs = Vec::new();
    let mut samples = SampleColumns::default();
    for (core, log) in run.read_logs() {
        let log = log.unwrap_or_else(|e| panic!("core {core}'s log: {e}"));
        assert!(
            log.problems.is_empty(),
            "core {core}'s log has problems: {:?}",
            log.problems
        );
        assert!(log.end.is_some(), "core {core}'s log was not finished");
        samples.extend_from(&log.samples);
        logs.push(log);
    }
    ReadBack {
        manifest,
        logs,
        samples,
    }
}

/// Writes a profile into `dir` and returns its path.
pub fn profile(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("profile.ron");
    std::fs::write(&path, text).expect("write the profile");
    path
}

/// Runs `profiles/<file>` for 3 s (on the backend of the calling test) and requires a clean exit, no
/// failed request and a request of every name in `names`; returns the run read back.
pub fn example_runs_without_failures(file: &str, names: &[&str]) -> ReadBack {
    let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(file);
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &[profile.to_str().unwrap(), "--duration", "3s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_run(&run_dir(&out));
    assert!(r.failures().is_empty(), "{:?}", r.failures());
    let seen: std::collections::BTreeSet<String> =
        r.rows().into_iter().map(|row| row.name).collect();
    for name in names {
        assert!(seen.contains(*name), "no {name:?} in {seen:?}");
    }
    r
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
