//! Helpers shared by the integration tests: synthetic and hand-made runs, and an independent
//! percentile computation to check the analyzer against.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use analyzer::synth::{SynthParams, synth};
use formats::manifest::MANIFEST_SCHEMA;
use formats::{
    HostInfo, LogFile, LogHeader, LogWriter, Manifest, Outcome, RunId, RunState, Sample,
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
        extra: Default::default(),
    }
    .write_to(&dir)
    .unwrap();
    dir
}
