//! Helpers shared by the integration tests: synthetic and hand-made runs, and an independent
//! percentile computation to check the analyzer against.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use analyzer::synth::{SynthParams, synth};
use formats::manifest::MANIFEST_SCHEMA;
use formats::{
    HostInfo, IntervalStats, LogFile, LogHeader, LogWriter, Manifest, Outcome, RunId, RunState,
    Sample,
};

/// A synthetic run in `parent`, under the deterministic name a real run of the same start would get.
pub fn synth_run(parent: &Path, samples: u64, cores: u32, seed: u64) -> PathBuf {
    let dir = parent.join(formats::run::run_dir_name(
        1_772_442_000_000_000_000,
        &format!("synthetic-shop-{seed}"),
    ));
    let params = SynthParams {
        samples,
        cores,
        seed,
        duration_s: 60,
        ..SynthParams::default()
    };
    synth(&params, &dir).expect("synth writes a run")
}

/// Every sample of a run, read with the formats crate alone: (name, corrected µs, uncorrected µs, ok,
/// intended µs).
pub fn raw_samples(dir: &Path) -> Vec<(String, u64, u64, bool, u64)> {
    let run = formats::Run::open(dir).unwrap();
    let mut out = Vec::new();
    for (_, path) in &run.logs {
        let log = formats::read_log_file(path).unwrap();
        for i in 0..log.samples.len() {
            let s = log.samples.get(i).unwrap();
            out.push((
                log.names.display(s.name.0),
                s.corrected_latency_us(),
                u64::from(s.latency_us),
                s.outcome == Outcome::Ok,
                s.intended_us,
            ));
        }
    }
    out
}

/// The nearest-rank percentile, in integer arithmetic: the ⌈permille·n/1000⌉-th smallest value.
pub fn nearest_rank(sorted: &[u64], permille: u64) -> u64 {
    let n = sorted.len() as u64;
    let rank = (permille * n).div_ceil(1000).max(1);
    sorted[(rank - 1) as usize]
}

/// Replaces the log of a [`handmade_run`] (named "GET /") by `seconds` whole seconds of 100 requests
/// each, 10 ms apart and started `lag_us` late, every second closed by the interval `interval(second)`
/// makes (its start and duration set here), then the intervals of `tail` as they are.
pub fn paced_log(
    dir: &Path,
    seconds: u64,
    lag_us: u64,
    interval: impl Fn(u64) -> IntervalStats,
    tail: &[IntervalStats],
) {
    let header = LogHeader::new(RunId([3; 16]), 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = LogWriter::new(&header, Vec::new()).unwrap();
    let name = log.intern_name("GET /");
    for second in 0..seconds {
        for i in 0..100u64 {
            let t = second * 1_000_000 + i * 10_000;
            log.push(Sample {
                name,
                intended_us: t,
                actual_us: t + lag_us,
                latency_us: 1_000,
                outcome: Outcome::Ok,
                status: 200,
                ..Sample::default()
            })
            .unwrap();
        }
        log.push_interval(IntervalStats {
            start_us: second * 1_000_000,
            duration_us: 1_000_000,
            ..interval(second)
        });
    }
    for t in tail {
        log.push_interval(*t);
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
}

/// Writes a small run by hand: one core, the given (name, latency µs, outcome, status, message)
/// requests one millisecond apart, and a manifest in `state`.
pub fn handmade_run(
    parent: &Path,
    requests: &[(&str, u32, Outcome, u16, Option<&str>)],
    state: RunState,
) -> PathBuf {
    let dir = parent.join("2026-03-02T09-00-00Z-handmade");
    std::fs::create_dir_all(&dir).unwrap();
    let run_id = RunId([3; 16]);
    let header = LogHeader::new(run_id, 0, 1_000, 1_772_442_000_000_000_000);
    let mut log = LogWriter::new(&header, Vec::new()).unwrap();
    for (i, (name, latency, outcome, status, message)) in requests.iter().enumerate() {
        let name = log.intern_name(name);
        let message = message.map(|m| log.intern_message(m));
        let t = 1_000 * i as u64;
        log.push(Sample {
            name,
            intended_us: t,
            actual_us: t,
            latency_us: *latency,
            outcome: *outcome,
            status: *status,
            message,
            ..Sample::default()
        })
        .unwrap();
    }
    std::fs::write(dir.join("core-0.log"), log.finish().unwrap()).unwrap();
    Manifest {
        schema: MANIFEST_SCHEMA,
        log_format: "1.0".into(),
        run_id,
        profile_name: "handmade".into(),
        profile: "()".into(),
        environment: None,
        target: Some("http://127.0.0.1:1".into()),
        engine_version: "test".into(),
        host: HostInfo::default(),
        io_driver: "epoll".into(),
        io_setup: None,
        started_at: formats::run::format_utc(1_772_442_000_000_000_000),
        started_unix_ns: 1_772_442_000_000_000_000,
        monotonic_base_ns: 1_000,
        planned_duration_s: None,
        ended_at: None,
        ended_unix_ns: None,
        state,
        error: None,
        logs: vec![LogFile {
            core: 0,
            cpu: None,
            file: "core-0.log".into(),
        }],
        shard: None,
        clock_sync: None,
        tags: None,
        extra: Default::default(),
    }
    .write_to(&dir)
    .unwrap();
    dir
}

/// A synthetic sharded run in `parent/<name>`: `shards` shard directories of two cores each, with the
/// given synth parameters on top of the defaults (60 s, the seed's run id).
pub fn sharded_run(
    parent: &Path,
    name: &str,
    samples: u64,
    shards: u32,
    seed: u64,
    tweak: impl FnOnce(&mut SynthParams),
) -> PathBuf {
    let dir = parent.join(name);
    let mut params = SynthParams {
        samples,
        cores: 2,
        seed,
        duration_s: 60,
        shards,
        ..SynthParams::default()
    };
    tweak(&mut params);
    synth(&params, &dir).expect("synth writes a sharded run")
}

/// The shard directories of a sharded run, by index.
pub fn shard_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("shard-")
        })
        .collect();
    out.sort();
    out
}

/// Every sample of every shard, read with the formats crate alone, with its intended start moved onto
/// the common clock (its shard's time zero minus the earliest shard's).
pub fn raw_sharded_samples(dir: &Path) -> Vec<(String, u64, u64, bool, u64)> {
    let shards = shard_dirs(dir);
    let zero = |d: &Path| {
        formats::Run::open(d)
            .unwrap()
            .manifest
            .unwrap()
            .started_unix_ns
    };
    let base = shards.iter().map(|d| zero(d)).min().unwrap();
    let mut out = Vec::new();
    for d in &shards {
        let offset = ((zero(d) - base) / 1000) as u64;
        out.extend(raw_samples(d).into_iter().map(|mut s| {
            s.4 += offset;
            s
        }));
    }
    out
}

/// Makes a run directory look like its engine was killed mid-run: the manifest back to "running", and
/// each log cut at `keep` of its length (inside a block), without its end-of-log block.
pub fn kill_the_engine(dir: &Path, keep: f64) {
    let run = formats::Run::open(dir).unwrap();
    let mut manifest = run.manifest.unwrap();
    manifest.state = RunState::Running;
    manifest.ended_at = None;
    manifest.ended_unix_ns = None;
    manifest.write_to(dir).unwrap();
    for (_, path) in &run.logs {
        let data = std::fs::read(path).unwrap();
        std::fs::write(path, &data[..(data.len() as f64 * keep) as usize]).unwrap();
    }
}

/// The engine binary, beside the analyzer's (the analyzer does not depend on the engine; the tests
/// that run both find it there). `cargo test --workspace` has built it; a narrower run builds it here.
pub fn engine_binary() -> PathBuf {
    let analyzer = PathBuf::from(env!("CARGO_BIN_EXE_analyzer"));
    let engine = analyzer.with_file_name(format!("engine{}", std::env::consts::EXE_SUFFIX));
    if !engine.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "engine", "--bin", "engine"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the engine failed");
    }
    assert!(engine.exists(), "no engine binary at {}", engine.display());
    engine
}
