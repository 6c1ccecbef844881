//! CI verdicts: `analyzer compare` tells a regression from noise, and `analyzer check` judges
//! thresholds, with the exit codes pipelines rely on (0 pass, 1 fail, 2 bad input). Against each
//! limit the answer is within, beyond or undecided; `--undecided` picks the exit status of the last.
//!
//! One test binary with a module per command (`compare`, `check`); the helpers both use are here.

#[path = "../util/mod.rs"]
mod util;

mod check;
mod compare;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analyzer::synth::{SynthParams, synth};
use formats::{IntervalStats, LogHeader, LogWriter, Outcome, RunId, RunState, Sample};

/// Small enough that twenty pairs run in seconds in a debug build, long enough (40 one-second
/// windows, 1,000 requests a second) for the bootstrap to resolve a 20 % shift. Without the stall and
/// the degraded period: two seconds of 2.2x latency in a 40 s run make its P90 and P99 unresolvable
/// at 10 % (correctly: such a run cannot tell), and these tests are about calibration.
fn shop(dir: &Path, seed: u64, latency_scale: f64) -> PathBuf {
    let params = SynthParams {
        samples: 40_000,
        cores: 1,
        seed,
        duration_s: 40,
        latency_scale,
        incidents: false,
        ..SynthParams::default()
    };
    synth(&params, dir).expect("synth writes a run")
}

fn analyzer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .args(args)
        .output()
        .expect("the analyzer binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A run written by hand into its own directory under `parent`: `samples` are (name, intended start
/// µs, latency µs, ok), and every one of `seconds` seconds has an interval record, so the
/// generator's health is known and OK.
fn timed_run(parent: &Path, seconds: u64, samples: &mut [(&str, u64, u32, bool)]) -> PathBuf {
    std::fs::create_dir_all(parent).unwrap();
    let dir = util::handmade_run(
        parent,
        &[("GET /", 1_000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    samples.sort_by_key(|s| s.1);
    let header = LogHeader::new(RunId([3; 16]), 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = LogWriter::new(&header, Vec::new()).unwrap();
    let mut second = 0;
    let mut requests = 0;
    let interval = |log: &mut LogWriter<Vec<u8>>, second: u64, requests: u32| {
        log.push_interval(IntervalStats {
            start_us: second * 1_000_000,
            duration_us: 1_000_000,
            iterations_started: requests,
            requests,
            lag_p50_us: 20,
            lag_p99_us: 50,
            lag_max_us: 80,
            ..IntervalStats::default()
        });
    };
    for &(name, t, latency, ok) in samples.iter() {
        while t >= (second + 1) * 1_000_000 {
            interval(&mut log, second, requests);
            second += 1;
            requests = 0;
        }
        let name = log.intern_name(name);
        log.push(Sample {
            name,
            intended_us: t,
            actual_us: t,
            latency_us: latency,
            outcome: if ok { Outcome::Ok } else { Outcome::Status },
            status: if ok { 200 } else { 500 },
            ..Sample::default()
        })
        .unwrap();
        requests += 1;
    }
    while second < seconds {
        interval(&mut log, second, requests);
        second += 1;
        requests = 0;
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    dir
}

/// A run whose generator fell more than 1 ms behind its schedule in every second: INVALID.
fn lagging_run(parent: &Path) -> PathBuf {
    let dir = util::handmade_run(
        parent,
        &[("GET /", 1_000, Outcome::Ok, 200, None)],
        RunState::Completed,
    );
    util::paced_log(
        &dir,
        4,
        5_000,
        |_| IntervalStats {
            iterations_started: 100,
            requests: 100,
            lag_p50_us: 5_000,
            lag_p99_us: 5_000,
            lag_max_us: 5_000,
            ..IntervalStats::default()
        },
        &[],
    );
    dir
}
