//! The synthetic run's `manifest.json`: the shop's profile, a made-up host and, for a shard, its place
//! in the sharded run and its clock figures.

use formats::manifest::MANIFEST_SCHEMA;
use formats::{ClockSync, HostInfo, LogFile, Manifest, RunId, RunState, ShardInfo};

use super::shards::ShardPlan;
use super::shop::profile_users;
use super::{MONOTONIC_BASE_NS, STARTED_UNIX_NS, SynthParams};

pub(super) fn manifest(params: &SynthParams, run_id: RunId, shard: Option<&ShardPlan>) -> Manifest {
    let started = ShardPlan::started_unix_ns(shard);
    let ended = started + i64::from(params.duration_s) * 1_000_000_000;
    Manifest {
        schema: MANIFEST_SCHEMA,
        log_format: format!("{}.{}", formats::FORMAT_MAJOR, formats::FORMAT_MINOR),
        run_id,
        profile_name: "synthetic-shop".into(),
        profile: format!(
            "(name: \"synthetic-shop\", {}, synth: (samples: {}, cores: {}, seed: {}, duration_s: {}, latency_scale: {}, error_rate: {}{}{}))",
            profile_users(params.duration_s),
            params.samples,
            params.cores,
            params.seed,
            params.duration_s,
            params.latency_scale,
            params.error_rate,
            if params.incidents {
                ""
            } else {
                ", incidents: false"
            },
            if params.shards > 0 {
                format!(", shards: {}", params.shards)
            } else {
                String::new()
            }
        ),
        environment: Some("synthetic".into()),
        target: Some("https://shop.invalid".into()),
        engine_version: format!("analyzer synth {}", env!("CARGO_PKG_VERSION")),
        host: HostInfo {
            name: shard.map_or_else(|| "synth-host".into(), |p| format!("synth-pod-{}", p.index)),
            kernel: "synthetic".into(),
            cpu_count: params.cores,
            cpu_model: None,
        },
        io_driver: "synthetic".into(),
        io_setup: None,
        started_at: formats::run::format_utc(started),
        started_unix_ns: started,
        monotonic_base_ns: MONOTONIC_BASE_NS,
        planned_duration_s: Some(f64::from(params.duration_s)),
        ended_at: Some(formats::run::format_utc(ended)),
        ended_unix_ns: Some(ended),
        state: RunState::Completed,
        error: None,
        logs: (0..params.cores)
            .map(|core| LogFile {
                core,
                cpu: Some(core),
                file: formats::run::log_file_name(core),
            })
            .collect(),
        shard: shard.map(|p| ShardInfo {
            index: p.index,
            count: params.shards,
            shares: p.shares.clone(),
            start_at: Some(formats::run::format_utc(STARTED_UNIX_NS)),
        }),
        clock_sync: shard.map(|p| ClockSync {
            synchronised: true,
            estimated_error_us: p.clock_error_us,
            max_error_us: p.clock_error_us * 4 + 1_000,
            source: "synthetic".into(),
        }),
        tags: None,
        extra: Default::default(),
    }
}
