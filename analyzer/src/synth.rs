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

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use formats::manifest::MANIFEST_SCHEMA;
use formats::{
    ClockSync, HostInfo, IntervalStats, IoSink, LogFile, LogHeader, LogWriter, Manifest, MessageId,
    NameId, Outcome, RunId, RunState, Sample, ShardInfo,
};

use crate::error::{Error, Result};
use crate::rng::Rng;

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

/// Where one shard of a sharded synthetic run stands.
#[derive(Debug, Clone)]
struct ShardPlan {
    index: u32,
    shares: Vec<f64>,
    offset_ns: i64,
    clock_error_us: u64,
    lagging: bool,
}

impl ShardPlan {
    fn started_unix_ns(plan: Option<&ShardPlan>) -> i64 {
        STARTED_UNIX_NS + plan.map_or(0, |p| p.offset_ns)
    }
}

/// The synthetic shop's user kinds and tasks (log format 1.2's task table): (id, kind, kind weight,
/// task, task weight, tags), and each endpoint's task and whether it starts that task's iteration.
type TaskRow = (
    u32,
    &'static str,
    u32,
    &'static str,
    u32,
    &'static [&'static str],
);
const TASKS: [TaskRow; 3] = [
    (1, "browser", 3, "home", 3, &["web"]),
    (2, "browser", 3, "catalog", 2, &["api", "web"]),
    (3, "buyer", 1, "checkout", 1, &["api", "payment"]),
];

/// By endpoint index: (task id, first request of the task's iteration).
const ENDPOINT_TASKS: [(u32, bool); 6] = [
    (1, true),
    (2, true),
    (2, false),
    (3, true),
    (3, false),
    (1, false),
];

/// The user kinds and load model the synthetic profile describes, in the engine's profile syntax.
fn profile_users(duration_s: u32) -> String {
    format!(
        "load: Closed(users: 40, spawn_rate: 4.0, duration: \"{duration_s}s\"), users: [\
         (name: \"browser\", weight: 3, tags: [\"web\"], tasks: [\
           (name: \"home\", weight: 3, requests: [(path: \"/\"), (path: \"/static/app.js\")]), \
           (name: \"catalog\", weight: 2, tags: [\"api\"], requests: [(path: \"/api/products\"), (path: \"/api/products/{{{{id}}}}\", name: \"GET /api/products/{{id}}\")])]), \
         (name: \"buyer\", weight: 1, tasks: [(name: \"checkout\", tags: [\"api\", \"payment\"], requests: [\
           (method: POST, path: \"/api/cart\"), (method: POST, path: \"/api/checkout\")])])]"
    )
}

/// One request name of the synthetic shop.
struct Endpoint {
    name: &'static str,
    weight: f64,
    median_ms: f64,
    sigma: f64,
    bytes_sent: u32,
    bytes_received: u32,
    failure_factor: f64,
}

const ENDPOINTS: [Endpoint; 6] = [
    Endpoint {
        name: "GET /",
        weight: 0.30,
        median_ms: 12.0,
        sigma: 0.35,
        bytes_sent: 180,
        bytes_received: 14_200,
        failure_factor: 0.5,
    },
    Endpoint {
        name: "GET /api/products",
        weight: 0.25,
        median_ms: 35.0,
        sigma: 0.45,
        bytes_sent: 210,
        bytes_received: 48_000,
        failure_factor: 1.0,
    },
    Endpoint {
        name: "GET /api/products/{id}",
        weight: 0.20,
        median_ms: 18.0,
        sigma: 0.40,
        bytes_sent: 215,
        bytes_received: 3_900,
        failure_factor: 1.0,
    },
    Endpoint {
        name: "POST /api/cart",
        weight: 0.12,
        median_ms: 45.0,
        sigma: 0.50,
        bytes_sent: 820,
        bytes_received: 1_100,
        failure_factor: 1.5,
    },
    Endpoint {
        name: "POST /api/checkout",
        weight: 0.05,
        median_ms: 120.0,
        sigma: 0.60,
        bytes_sent: 1_450,
        bytes_received: 2_300,
        failure_factor: 3.0,
    },
    Endpoint {
        name: "GET /static/app.js",
        weight: 0.08,
        median_ms: 3.0,
        sigma: 0.30,
        bytes_sent: 190,
        bytes_received: 310_000,
        failure_factor: 0.2,
    },
];

/// Failure kinds: (outcome, status, message, share of failures).
const FAILURES: [(Outcome, u16, &str, f64); 5] = [
    (Outcome::Status, 503, "503 Service Unavailable", 0.40),
    (Outcome::Timeout, 0, "request timed out after 5 s", 0.04),
    (
        Outcome::ConnectError,
        0,
        "connect: connection refused (os error 111)",
        0.24,
    ),
    (
        Outcome::Check,
        200,
        "check failed: $.id missing in response body",
        0.20,
    ),
    (
        Outcome::Reset,
        0,
        "connection reset by peer (os error 104)",
        0.12,
    ),
];

/// The request timeout: a response slower than this is a timeout failure.
const TIMEOUT_US: u32 = 5_000_000;
/// Virtual users per core at full load.
const USERS_PER_CORE: f64 = 64.0;
/// The synthetic run starts at 2026-03-02T09:00:00Z.
const STARTED_UNIX_NS: i64 = 1_772_442_000_000_000_000;
/// An arbitrary CLOCK_MONOTONIC reading for the run's time zero.
const MONOTONIC_BASE_NS: u64 = 86_400_000_000_000;

/// The load profile: a ramp from 10 % to 100 % of the full rate over the first quarter, then flat.
#[derive(Debug, Clone, Copy)]
struct LoadShape {
    duration_s: f64,
}

impl LoadShape {
    const FLOOR: f64 = 0.1;

    fn ramp_s(self) -> f64 {
        self.duration_s * 0.25
    }

    /// The rate at `t` as a fraction of the full rate.
    fn level(self, t: f64) -> f64 {
        if t < self.ramp_s() {
            Self::FLOOR + (1.0 - Self::FLOOR) * t / self.ramp_s()
        } else {
            1.0
        }
    }

    /// The time by which a fraction `f` of all requests has been scheduled (the inverse of the
    /// cumulative rate).
    fn time_at(self, f: f64) -> f64 {
        let (a, tr) = (Self::FLOOR, self.ramp_s());
        let ramp_area = tr * (1.0 + a) / 2.0;
        let total = ramp_area + self.duration_s - tr;
        let c = f * total;
        if c < ramp_area {
            let k = (1.0 - a) / tr;
            (-a + (a * a + 2.0 * k * c).sqrt()) / k
        } else {
            tr + (c - ramp_area)
        }
    }
}

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

/// The shards' plans (none for a run of one engine), or what is wrong with the shard options.
fn shard_plans(params: &SynthParams) -> Result<Vec<ShardPlan>> {
    let n = params.shards as usize;
    if n == 0 {
        let stray = !params.shard_shares.is_empty()
            || !params.shard_offsets_ms.is_empty()
            || !params.clock_errors_us.is_empty()
            || params.lagging_shard.is_some();
        if stray {
            return Err(Error::Usage(
                "--shard-shares, --shard-offsets-ms, --clock-errors-us and --lagging-shard need --shards N"
                    .into(),
            ));
        }
        return Ok(Vec::new());
    }
    let per_shard = |name: &str, len: usize| -> Result<()> {
        if len == 0 || len == n {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "{name} gives {len} values for {n} shards: give one per shard, in shard order"
            )))
        }
    };
    per_shard("--shard-shares", params.shard_shares.len())?;
    per_shard("--shard-offsets-ms", params.shard_offsets_ms.len())?;
    per_shard("--clock-errors-us", params.clock_errors_us.len())?;
    let mut shares = if params.shard_shares.is_empty() {
        vec![1.0; n]
    } else {
        params.shard_shares.clone()
    };
    if shares.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(Error::Usage(format!(
            "--shard-shares must all be positive, got {:?}",
            params.shard_shares
        )));
    }
    let total: f64 = shares.iter().sum();
    for s in &mut shares {
        *s /= total;
    }
    if params
        .shard_offsets_ms
        .iter()
        .any(|o| !(o.is_finite() && *o >= 0.0))
    {
        return Err(Error::Usage(format!(
            "--shard-offsets-ms must be 0 or more, got {:?}",
            params.shard_offsets_ms
        )));
    }
    if let Some(l) = params.lagging_shard
        && l as usize >= n
    {
        return Err(Error::Usage(format!(
            "--lagging-shard {l} is not a shard of {n} (0 to {})",
            n - 1
        )));
    }
    Ok((0..params.shards)
        .map(|i| ShardPlan {
            index: i,
            shares: shares.clone(),
            offset_ns: (params
                .shard_offsets_ms
                .get(i as usize)
                .copied()
                .unwrap_or(0.0)
                * 1e6) as i64,
            clock_error_us: params
                .clock_errors_us
                .get(i as usize)
                .copied()
                .unwrap_or(200),
            lagging: params.lagging_shard == Some(i),
        })
        .collect())
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

fn manifest(params: &SynthParams, run_id: RunId, shard: Option<&ShardPlan>) -> Manifest {
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

/// Per-second counters for the interval blocks, accumulated while samples are generated.
#[derive(Debug, Default)]
struct SecondCounters {
    requests: u32,
    failures: u32,
    /// Schedule lag in log2 buckets of µs, enough for approximate p50/p99.
    lag_buckets: [u32; 32],
    lag_max_us: u32,
    /// Requests that started more than the lag limit late.
    late: u32,
}

impl SecondCounters {
    fn lag_quantile(&self, q: f64) -> u32 {
        let total: u32 = self.lag_buckets.iter().sum();
        let rank = ((f64::from(total) * q).ceil() as u32).max(1);
        let mut seen = 0;
        for (i, n) in self.lag_buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return ((1u64 << i) - 1).min(u64::from(self.lag_max_us)) as u32;
            }
        }
        self.lag_max_us
    }
}

fn write_core(
    params: &SynthParams,
    run_id: RunId,
    core: u32,
    samples: u64,
    path: &Path,
    shard: Option<&ShardPlan>,
) -> Result<()> {
    let io = |e| Error::io(path, e);
    let file = File::create(path).map_err(io)?;
    let header = LogHeader::new(
        run_id,
        core,
        MONOTONIC_BASE_NS,
        ShardPlan::started_unix_ns(shard),
    );
    let mut log =
        LogWriter::new(&header, IoSink(BufWriter::with_capacity(1 << 20, file))).map_err(io)?;
    let names: Vec<NameId> = ENDPOINTS.iter().map(|e| log.intern_name(e.name)).collect();
    for (id, kind, kind_weight, task, task_weight, tags) in TASKS {
        log.define_task(formats::TaskInfo {
            id,
            role: formats::TaskRole::Task,
            kind: u32::from(kind != "browser"),
            kind_weight,
            task_weight,
            kind_name: kind.into(),
            task_name: task.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        });
    }
    let messages: Vec<MessageId> = FAILURES.iter().map(|f| log.intern_message(f.2)).collect();
    // Shard 0 (and a run of one engine) keeps the streams runs had before shards existed.
    let stream = u64::from(core) + 1 + (u64::from(shard.map_or(0, |p| p.index)) << 32);
    let mut rng = Rng::new(params.seed, stream);
    let d = f64::from(params.duration_s);
    let shape = LoadShape { duration_s: d };
    let ((stall_from, stall_to), (degraded_from, degraded_to)) = if params.incidents {
        ((d * 0.55, d * 0.555), (d * 0.75, d * 0.80))
    } else {
        ((0.0, 0.0), (0.0, 0.0))
    };
    // A lagging shard's generator runs out of CPU for a tenth of the run: it starts every request
    // several milliseconds late.
    let (lag_from, lag_to) = if shard.is_some_and(|p| p.lagging) {
        (d * 0.30, d * 0.40)
    } else {
        (0.0, 0.0)
    };
    let busy_second = |second: u32| (lag_from..lag_to).contains(&(f64::from(second) + 0.5));
    let cumulative: Vec<f64> = ENDPOINTS
        .iter()
        .scan(0.0, |acc, e| {
            *acc += e.weight;
            Some(*acc)
        })
        .collect();
    let stall = (stall_from, stall_to);
    let mut second = 0u32;
    let mut counters = SecondCounters::default();
    for i in 0..samples {
        let f = (i as f64 + 0.5) / samples as f64;
        let t = shape.time_at(f);
        let intended_us = (t * 1e6) as u64;
        while intended_us >= (u64::from(second) + 1) * 1_000_000 {
            log.push_interval(interval(
                &shape,
                busy_second(second),
                second,
                &counters,
                stall,
                &mut rng,
            ));
            log.flush().map_err(io)?;
            counters = SecondCounters::default();
            second += 1;
        }
        // Outside the stall the generator keeps up within tens of µs; inside it, every request waits
        // until the stall ends, which is what latency correction is for.
        let mut lag_us = rng.exponential(25.0) as u64;
        if (stall_from..stall_to).contains(&t) {
            lag_us += ((stall_to - t) * 1e6) as u64;
        }
        if (lag_from..lag_to).contains(&t) {
            lag_us += 2_000 + rng.exponential(6_000.0) as u64;
        }
        let actual_us = intended_us + lag_us;
        let pick = rng.unit() * cumulative[cumulative.len() - 1];
        let e = cumulative
            .iter()
            .position(|&c| pick < c)
            .unwrap_or(ENDPOINTS.len() - 1);
        let ep = &ENDPOINTS[e];
        let degraded = (degraded_from..degraded_to).contains(&t);
        let mut latency_ms = ep.median_ms * (ep.sigma * rng.normal()).exp();
        if rng.unit() < 0.004 {
            // The slow tail: a few requests hit a cold cache, a lock or a GC pause.
            latency_ms *= 3.0 * 10f64.powf(rng.unit());
        }
        if degraded {
            latency_ms *= 2.2;
        }
        latency_ms *= params.latency_scale;
        let mut sample = Sample {
            name: names[e],
            intended_us,
            actual_us,
            latency_us: (latency_ms * 1000.0).clamp(1.0, f64::from(TIMEOUT_US)) as u32,
            connect_us: if rng.unit() < 0.02 {
                250 + rng.exponential(150.0) as u32
            } else {
                0
            },
            tls_us: 0,
            ttfb_us: 0,
            status: 200,
            outcome: Outcome::Ok,
            message: None,
            bytes_sent: ep.bytes_sent + (rng.unit() * 40.0) as u32,
            bytes_received: ep.bytes_received
                + (rng.unit() * f64::from(ep.bytes_received) * 0.1) as u32,
            user: (rng.unit() * USERS_PER_CORE * shape.level(t)) as u32,
            task: ENDPOINT_TASKS[e].0,
            iteration_start: ENDPOINT_TASKS[e].1,
        };
        let failure_rate = params.error_rate * ep.failure_factor * if degraded { 6.0 } else { 1.0 };
        if sample.latency_us >= TIMEOUT_US {
            sample.outcome = Outcome::Timeout;
            sample.status = 0;
            sample.message = Some(messages[1]);
            sample.bytes_received = 0;
        } else if rng.unit() < failure_rate.min(1.0) {
            let mut pick = rng.unit();
            let k = FAILURES.iter().position(|f| {
                pick -= f.3;
                pick < 0.0
            });
            let k = if degraded && rng.unit() < 0.6 {
                0
            } else {
                k.unwrap_or(0)
            };
            let (outcome, status, _, _) = FAILURES[k];
            sample.outcome = outcome;
            sample.status = status;
            sample.message = Some(messages[k]);
            match outcome {
                Outcome::Timeout => {
                    sample.latency_us = TIMEOUT_US;
                    sample.bytes_received = 0;
                }
                Outcome::ConnectError => {
                    sample.latency_us = 80 + rng.exponential(150.0) as u32;
                    sample.bytes_sent = 0;
                    sample.bytes_received = 0;
                }
                Outcome::Reset => {
                    sample.latency_us =
                        (f64::from(sample.latency_us) * rng.unit()).max(50.0) as u32;
                    sample.bytes_received = 0;
                }
                Outcome::Status => sample.bytes_received = 180,
                _ => {}
            }
        }
        // The target is https: a new connection's connect time is about 40 % TCP and 60 % TLS
        // handshake, and fits inside the request. The first byte comes after the connection and most
        // of the wait; nothing arrives for a timeout, a refused connection or a reset without data.
        if sample.outcome == Outcome::ConnectError {
            sample.connect_us = 0;
        }
        sample.connect_us = sample.connect_us.min(sample.latency_us / 2);
        sample.tls_us = sample.connect_us * 3 / 5;
        let no_response = matches!(sample.outcome, Outcome::Timeout | Outcome::ConnectError)
            || (sample.outcome == Outcome::Reset && sample.bytes_received == 0);
        sample.ttfb_us = if no_response {
            0
        } else {
            sample.connect_us + (f64::from(sample.latency_us - sample.connect_us) * 0.85) as u32
        };
        counters.requests += 1;
        counters.failures += u32::from(sample.outcome != Outcome::Ok);
        let lag = u32::try_from(lag_us).unwrap_or(u32::MAX);
        counters.lag_buckets[(32 - lag.leading_zeros()).min(31) as usize] += 1;
        counters.lag_max_us = counters.lag_max_us.max(lag);
        counters.late += u32::from(lag > formats::health::LAG_LIMIT_US);
        log.push(sample).map_err(io)?;
    }
    while second < params.duration_s {
        log.push_interval(interval(
            &shape,
            busy_second(second),
            second,
            &counters,
            stall,
            &mut rng,
        ));
        counters = SecondCounters::default();
        second += 1;
    }
    let mut sink = log.finish().map_err(io)?;
    std::io::Write::flush(&mut sink.0).map_err(io)?;
    Ok(())
}

fn interval(
    shape: &LoadShape,
    saturated: bool,
    second: u32,
    c: &SecondCounters,
    stall: (f64, f64),
    rng: &mut Rng,
) -> IntervalStats {
    let level = shape.level(f64::from(second) + 0.5);
    let users = |at: f64| (USERS_PER_CORE * shape.level(at)).round() as u32;
    // The stall is another process holding the generator's CPU: the thread waits runnable for the
    // part of the stall that falls in this second.
    let from = f64::from(second);
    let stalled = (stall.1.min(from + 1.0) - stall.0.max(from)).max(0.0);
    // About 70 µs of CPU a request plus a little housekeeping: a generator comfortably below saturation
    // (or, when saturated, one that used nearly all of its core).
    let mut busy =
        (f64::from(c.requests) * 70.0 + 30_000.0 * level + rng.unit() * 20_000.0).min(1e6);
    if saturated {
        busy = busy.max(970_000.0 + rng.unit() * 25_000.0);
    }
    IntervalStats {
        start_us: u64::from(second) * 1_000_000,
        duration_us: 1_000_000,
        active_users: (USERS_PER_CORE * level).round() as u32,
        iterations_started: c.requests,
        iterations_dropped: 0,
        requests: c.requests,
        failures: c.failures,
        lag_p50_us: c.lag_quantile(0.5),
        lag_p99_us: c.lag_quantile(0.99),
        lag_max_us: c.lag_max_us,
        cpu_user_us: (busy * 0.6) as u32,
        cpu_system_us: (busy * 0.4) as u32,
        connections_opened: c.requests / 50,
        open_connections: (USERS_PER_CORE * level).round() as u32,
        users_max: users(from + 1.0).max(users(from)),
        users_started: users(from + 1.0).saturating_sub(users(from)),
        late_requests: c.late,
        voluntary_switches: c.requests,
        involuntary_switches: u32::from(stalled > 0.0) * 3,
        run_delay_us: Some((stalled * 1e6) as u32 + c.requests / 10),
        steal_us: Some(0),
        wakeups: 20,
        wake_late_p99_us: 60,
        wake_late_max_us: 80,
        start_late_us: 0,
        iterations_queued: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_shape_inverts_its_cumulative_rate() {
        let shape = LoadShape { duration_s: 100.0 };
        assert!(shape.time_at(0.0).abs() < 1e-9);
        assert!((shape.time_at(1.0) - 100.0).abs() < 1e-9);
        // The ramp holds (0.1 + 1) / 2 * 25 = 13.75 of the 88.75 rate-seconds.
        assert!((shape.time_at(13.75 / 88.75) - 25.0).abs() < 1e-9);
        let mut last = 0.0;
        for i in 1..=100 {
            let t = shape.time_at(f64::from(i) / 100.0);
            assert!(t > last, "time_at must increase");
            last = t;
        }
    }

    #[test]
    fn rng_is_reproducible_and_uniform_enough() {
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 1);
        let xs: Vec<f64> = (0..10_000).map(|_| a.unit()).collect();
        assert!(
            xs.iter()
                .zip((0..10_000).map(|_| b.unit()))
                .all(|(x, y)| *x == y)
        );
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert_ne!(Rng::new(7, 2).next_u64(), Rng::new(7, 1).next_u64());
    }
}
