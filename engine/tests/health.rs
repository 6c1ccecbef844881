//! Truth tests for the generator-health causes: when the engine is made to lag on purpose, the
//! evidence it records names the reason it was made to lag. They assert the classification the shared
//! rule (`formats::health`) gives the engine's own interval records, and the console's summary, never
//! timings; each run lasts 3 s.
//!
//! - Starved: a busy thread pinned to the engine's CPU, the engine at `nice 19`, a light load. The
//!   engine lags because it cannot get its CPU: *preempted*, not capacity.
//! - Saturated: more work than one core can do (1000 users retrying a refused port after a 1 ms
//!   pause), under `chrt -f 1` where the system allows it so that other processes on a loaded machine
//!   cannot take the CPU. The engine lags because its core is busy: *capacity*.

mod util;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use formats::health::{self, Cause};

/// The engine binary behind `wrapper` (e.g. `nice -n 19`), with `engine run <args> --out --quiet`.
fn run_wrapped(wrapper: &[&str], out: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        // Whether the requests succeed is not what these tests look at.
        .arg("--failures-are-data");
    let output = cmd.output().expect("the engine runs");
    assert!(
        output.status.success(),
        "engine failed: {}",
        util::stderr(&output)
    );
    output
}

/// Each lagging whole second of core 0: (second from 1, cause, core 0's CPU %, evidence).
fn lagging_seconds(dir: &Path) -> Vec<(u64, Cause, f64, String)> {
    let run = util::read_run(dir);
    assert_eq!(run.logs.len(), 1, "one core");
    run.logs[0]
        .intervals
        .iter()
        .filter(|s| health::is_whole(s))
        .filter_map(|s| {
            let j = health::judge_second([(0, s)]);
            let (cause, _, evidence) = j.cause.filter(|_| j.lagging)?;
            Some((
                s.start_us / 1_000_000 + 1,
                cause,
                health::cpu_pct(s),
                evidence,
            ))
        })
        .collect()
}

/// The first CPU this process may use: `--cores 1` pins the engine's core there.
fn first_cpu() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    (0..nix::sched::CpuSet::count())
        .find(|&c| set.is_set(c).unwrap_or(false))
        .expect("some CPU")
}

/// A thread spinning on `cpu` until the returned flag is set.
fn hog(cpu: usize) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
        while !flag.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    (stop, thread)
}

fn starved_engine_is_reported_as_preempted(io: &str) {
    let _serial = util::one_at_a_time();
    let server = util::server();
    let tmp = tempfile::tempdir().unwrap();
    let profile = util::profile(
        tmp.path(),
        &format!(
            r#"(name: "starved", host: "http://{}", load: Closed(users: 20, duration: "3s"),
                users: [(cookies: false, wait: Constant("5ms"), tasks: [(requests: [(path: "/")])])])"#,
            server.addr()
        ),
    );
    let (stop, thread) = hog(first_cpu());
    let output = run_wrapped(
        &["nice", "-n", "19"],
        tmp.path(),
        &[profile.to_str().unwrap(), "--cores", "1", "--io", io],
    );
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    let seconds = lagging_seconds(&util::run_dir(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        seconds.iter().any(|s| s.1 == Cause::Preempted),
        "no second was reported as preempted: {seconds:?}\n{summary}"
    );
    for (second, cause, cpu, evidence) in &seconds {
        // The only other honest reading is the start-up: the starved core may be ready late.
        assert!(
            *cause == Cause::Preempted || (*cause == Cause::Startup && *second == 1),
            "second {second} ({cpu:.0} % CPU) reported as {cause:?}: {evidence}"
        );
    }
    assert!(summary.contains("preempted in"), "{summary}");
    assert!(summary.contains("for a CPU while runnable"), "{summary}");
}

#[test]
fn starved_loop_on_io_uring_is_reported_as_preempted() {
    starved_engine_is_reported_as_preempted("uring");
}

#[test]
fn starved_loop_on_epoll_is_reported_as_preempted() {
    starved_engine_is_reported_as_preempted("epoll");
}

#[test]
fn saturated_engine_is_reported_as_capacity() {
    let _serial = util::one_at_a_time();
    // A port nobody listens on: every connect is refused at once, by the kernel, on the engine's own
    // CPU, and each user tries again after the 1 ms connect-failure pause.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--url",
        &url,
        "--no-preflight",
        "--users",
        "1000",
        "--cores",
        "1",
        "--duration",
        "3s",
    ];
    // Real-time priority keeps a loaded machine's other processes off the engine's CPU (the kernel
    // still leaves them 5 %), so that its core is busy with its own work.
    let realtime = Command::new("chrt")
        .args(["-f", "1", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let output = if realtime {
        run_wrapped(&["chrt", "-f", "1"], tmp.path(), &args)
    } else {
        run_wrapped(&["env"], tmp.path(), &args)
    };
    let seconds = lagging_seconds(&util::run_dir(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        !seconds.is_empty(),
        "an overloaded engine did not lag\n{summary}"
    );
    for (second, cause, cpu, evidence) in &seconds {
        if *cpu >= health::CPU_LIMIT_PCT {
            assert_eq!(
                *cause,
                Cause::Capacity,
                "second {second} at {cpu:.0} % CPU: {evidence}"
            );
        } else {
            // Without real-time priority a loaded machine takes part of the CPU: that is preemption,
            // and the record says so.
            assert!(
                !realtime || (*cause == Cause::Startup && *second == 1),
                "second {second} only at {cpu:.0} % CPU under chrt: {cause:?}: {evidence}"
            );
            assert!(
                matches!(cause, Cause::Preempted | Cause::Startup),
                "second {second} at {cpu:.0} % CPU reported as {cause:?}: {evidence}"
            );
        }
    }
    if realtime {
        assert!(
            seconds.iter().any(|s| s.1 == Cause::Capacity),
            "{seconds:?}\n{summary}"
        );
        assert!(summary.contains("capacity in"), "{summary}");
        assert!(summary.contains("--cores"), "{summary}");
    }
}
