//! `analyzer synth`: a realistic synthetic run written through the `formats` writer.
//!
//! Tests, benchmarks and people trying the analyzer need runs without a load generator and a target.
//! The run is a small shop under an open-model load: six request names with log-normal latencies and
//! a slow tail, a load ramp over the first quarter, a generator stall (the schedule falls behind for
//! half a percent of the run, so corrected and uncorrected latency differ), a degraded period with
//! slower responses and more 503s, and a handful of failure kinds with their messages.
//!
//! With `shards`, the same test is written as the shards of a sharded run (`shard-00/` … under the
//! output directory, as `engine run --shard I/N` lays them out): every shard its share of the samples,
//! its own time zero (`shard_offsets_ms` after the common start) and clock figures, and optionally one
//! shard whose generator falls behind its schedule.
//!
//! Everything is a pure function of [`SynthParams`]: the same parameters give byte-identical logs.

mod log;
mod manifest;
mod shards;
mod shop;

use std::path::{Path, PathBuf};

use formats::RunId;

use crate::error::{Error, Result};
use crate::rng::Rng;

use self::log::write_core;
use self::manifest::manifest;
use self::shards::{ShardPlan, shard_plans};

/// What to generate. Later options (latency scale, error rate) are fields here, so callers build the
/// struct with `..SynthParams::default()` and keep compiling when fields are added.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Samples over all cores.
    pub samples: u64,
    /// Sample logs (engine cores) to write.
    pub cores: u32,
    /// The random seed; the same seed gives the same run.
    pub seed: u64,
    /// The run's length in seconds.
    pub duration_s: u32,
    /// Multiplies every latency (1.0 = the built-in shop).
    pub latency_scale: f64,
    /// The baseline fraction of requests that fail, before the degraded period adds more.
    pub error_rate: f64,
    /// Whether the run has its generator stall and degraded period. Without them the run is
    /// stationary after the ramp, which calibration tests of `compare` want.
    pub incidents: bool,
    /// Shards to write the run as (0: one engine's run). Each shard has `cores` logs.
    pub shards: u32,
    /// Each shard's share of the load, by index; empty means equal shares. Scaled to sum to 1.
    pub shard_shares: Vec<f64>,
    /// How late each shard's time zero is after the common start, ms; empty means all on time.
    pub shard_offsets_ms: Vec<f64>,
    /// Each shard's clock error as its kernel estimated it, µs; empty means 200 µs each.
    pub clock_errors_us: Vec<u64>,
    /// A shard whose generator falls behind its schedule (and saturates its CPU) for a tenth of the run.
    pub lagging_shard: Option<u32>,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            samples: 100_000,
            cores: 2,
            seed: 1,
            duration_s: 120,
            latency_scale: 1.0,
            error_rate: 0.01,
            incidents: true,
            shards: 0,
            shard_shares: Vec::new(),
            shard_offsets_ms: Vec::new(),
            clock_errors_us: Vec::new(),
            lagging_shard: None,
        }
    }
}

/// The synthetic run starts at 2026-03-02T09:00:00Z.
pub(super) const STARTED_UNIX_NS: i64 = 1_772_442_000_000_000_000;
/// An arbitrary CLOCK_MONOTONIC reading for the run's time zero.
pub(super) const MONOTONIC_BASE_NS: u64 = 86_400_000_000_000;

/// Writes a synthetic run into `dir` (created if missing) and returns the directory. With
/// `params.shards`, `dir` is the sharded run's directory and the shards go into `dir/shard-<I>`.
pub fn synth(params: &SynthParams, dir: &Path) -> Result<PathBuf> {
    if params.cores == 0 {
        return Err(Error::Usage("--cores must be at least 1".into()));
    }
    if params.duration_s == 0 {
        return Err(Error::Usage(
            "the synthetic run needs a duration of at least 1 s".into(),
        ));
    }
    if !(0.0..=1.0).contains(&params.error_rate) {
        return Err(Error::Usage(format!(
            "--error-rate must be between 0 and 1, got {}",
            params.error_rate
        )));
    }
    if !(params.latency_scale > 0.0 && params.latency_scale.is_finite()) {
        return Err(Error::Usage(format!(
            "--latency-scale must be positive, got {}",
            params.latency_scale
        )));
    }
    let plans = shard_plans(params)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let run_id = RunId(
        Rng::new(params.seed, u64::MAX)
            .next_u64()
            .to_le_bytes()
            .repeat(2)
            .try_into()
            .expect("16"),
    );
    if plans.is_empty() {
        write_run(params, run_id, dir, params.samples, None)?;
        return Ok(dir.to_owned());
    }
    let width = (params.shards - 1).to_string().len().max(2);
    let mut written = 0u64;
    let mut cumulative = 0.0;
    for plan in &plans {
        // Rounding the cumulative share gives every shard its share and the shards the exact total.
        cumulative += plan.shares[plan.index as usize];
        let upto = if plan.index + 1 == params.shards {
            params.samples
        } else {
            ((params.samples as f64 * cumulative).round() as u64).min(params.samples)
        };
        let samples = upto.saturating_sub(written);
        written += samples;
        let shard_dir = dir.join(format!("shard-{:0width$}", plan.index));
        std::fs::create_dir_all(&shard_dir).map_err(|e| Error::io(&shard_dir, e))?;
        write_run(params, run_id, &shard_dir, samples, Some(plan))?;
    }
    Ok(dir.to_owned())
}

/// Writes one run directory: `samples` over `params.cores` logs, and the manifest.
fn write_run(
    params: &SynthParams,
    run_id: RunId,
    dir: &Path,
    samples: u64,
    shard: Option<&ShardPlan>,
) -> Result<()> {
    let per_core = |core: u32| {
        samples / u64::from(params.cores)
            + u64::from(u64::from(core) < samples % u64::from(params.cores))
    };
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..params.cores)
            .map(|core| {
                let path = dir.join(formats::run::log_file_name(core));
                scope.spawn(move || write_core(params, run_id, core, per_core(core), &path, shard))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a synth thread panicked"))
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    manifest(params, run_id, shard)
        .write_to(dir)
        .map_err(|e| Error::io(dir.join(formats::manifest::MANIFEST_FILE), e))
}
