//! The JSON report, schema 1 (documented in `docs/report-json.md`). Fields may be added within a
//! schema, never renamed or removed.

use serde::Serialize;

use crate::analysis::RunAnalysis;
use crate::load::QualityNote;
use crate::stats::{Latency, PERCENTILES, Summary, supports};

/// The schema version written in the `schema` field.
pub const SCHEMA: u32 = 1;

/// The whole document.
#[derive(Debug, Serialize)]
pub struct ReportJson {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// `analyzer <version>`.
    pub generator: String,
    /// The baseline run's id in a comparison, else `null`.
    pub baseline: Option<String>,
    /// One entry per run, in command-line order.
    pub runs: Vec<RunJson>,
}

/// One run.
#[derive(Debug, Serialize)]
pub struct RunJson {
    /// The run id (32 hex digits).
    pub id: String,
    /// The run directory's name.
    pub label: String,
    /// The profile name.
    pub profile: String,
    /// The environment, if any.
    pub environment: Option<String>,
    /// The target, if any.
    pub target: Option<String>,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// The run's length, s.
    pub duration_s: f64,
    /// The measured window that rates are computed over, s.
    pub window_s: f64,
    /// The warm-up left out with `--skip`, s.
    pub skip_s: f64,
    /// How the run ended.
    pub state: String,
    /// Whether the run was finalized.
    pub finalized: bool,
    /// The engine version.
    pub engine_version: String,
    /// The I/O driver.
    pub io_driver: String,
    /// Core logs.
    pub cores: usize,
    /// The load generator's host name.
    pub host: String,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Requests per second over the window.
    pub rps: f64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// `exact_nearest_rank`, or `hdr_histogram_3_digits` for runs too large to keep in memory.
    pub percentile_method: String,
    /// Corrected latency (from the intended start).
    pub latency_ms: LatencyJson,
    /// Uncorrected latency (from the actual start).
    pub latency_uncorrected_ms: LatencyJson,
    /// Per request name.
    pub endpoints: Vec<EndpointJson>,
    /// Failures by kind, most frequent first.
    pub failures_by_kind: Vec<KindCount>,
    /// Failures by status code (0 = no response), most frequent first.
    pub failures_by_status: Vec<StatusCount>,
    /// Distinct failures, most frequent first.
    pub failure_messages: Vec<MessageCount>,
    /// Per-second series.
    pub timeseries: TimeSeriesJson,
    /// The load generator's health and the verdict on the run.
    pub health: crate::health::Health,
    /// Data-quality notes.
    pub data_quality: Vec<QualityNote>,
    /// Timing phases: where each request's time went.
    pub phases: PhasesJson,
    /// A sharded run's shards: each one's figures and verdict, what is missing, and how well they line
    /// up. Absent for a run of one engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<crate::shards::ShardsAnalysis>,
    /// The load model and user kinds from the manifest's profile; `null` when it cannot be read.
    pub load_model: Option<crate::load_model::LoadModel>,
    /// The profile's tags and the run's selection (`--tags`, `--exclude-tags`); `null` without tags.
    pub tags: Option<formats::TagSelection>,
    /// Whether the logs said which task each request was for (log format 1.2).
    pub tasks_known: bool,
    /// `exact_nearest_rank` or `hdr_histogram_3_digits`, for the per-kind, per-task and per-tag
    /// percentiles.
    pub tasks_percentile_method: String,
    /// Per user kind, in profile order, with its tasks.
    pub user_kinds: Vec<UserKindJson>,
    /// Requests without a known task (all of them for logs before format 1.2); `null` when none.
    pub unknown_task: Option<TaskJson>,
    /// Per tag: the tasks that carry it, together.
    pub by_tag: Vec<TagJson>,
    /// Changes of the load made while the run went (steering from the live dashboard), in time
    /// order; empty for a run that was not steered.
    pub load_changes: Vec<LoadChangeJson>,
}

/// One user kind and its tasks.
#[derive(Debug, Serialize)]
pub struct UserKindJson {
    /// The kind's name.
    pub name: String,
    /// Its weight.
    pub weight: u32,
    /// Its tasks' tags.
    pub tags: Vec<String>,
    /// Iterations that made at least one request.
    pub iterations: u64,
    /// Requests (its tasks', on_start's and on_stop's).
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Corrected latency.
    pub latency_ms: LatencyJson,
    /// Its tasks: `on_start`, the tasks in profile order, `on_stop`.
    pub tasks: Vec<TaskJson>,
}

/// One task (or a kind's on_start or on_stop requests).
#[derive(Debug, Serialize)]
pub struct TaskJson {
    /// The task's name.
    pub name: String,
    /// `task`, `on_start`, `on_stop` or `unknown`.
    pub role: String,
    /// Its weight among its kind's tasks (0 for on_start and on_stop).
    pub weight: u32,
    /// Its tags (its own, its kind's and its requests').
    pub tags: Vec<String>,
    /// Iterations that made at least one request.
    pub iterations: u64,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Corrected latency.
    pub latency_ms: LatencyJson,
}

/// One tag's tasks together.
#[derive(Debug, Serialize)]
pub struct TagJson {
    /// The tag.
    pub tag: String,
    /// Iterations.
    pub iterations: u64,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Corrected latency.
    pub latency_ms: LatencyJson,
}

impl TaskJson {
    fn new(t: &crate::tasks::TaskRow) -> Self {
        TaskJson {
            name: t.task.clone(),
            role: t.role.clone(),
            weight: t.weight,
            tags: t.tags.clone(),
            iterations: t.iterations,
            requests: t.requests,
            failures: t.failures,
            latency_ms: LatencyJson::new(&t.latency),
        }
    }
}

/// One change of the load.
#[derive(Debug, Serialize)]
pub struct LoadChangeJson {
    /// When it began, s since the run's start.
    pub at_s: f64,
    /// The whole second it began in (where the report's charts mark it).
    pub second: u64,
    /// `users` (closed model), `rate` (open model, iterations per second) or `unknown`.
    pub what: String,
    /// The run-wide target when it began.
    pub from: f64,
    /// The target asked for.
    pub to: f64,
    /// How long the target took to move, s (0: at once).
    pub ramp_s: f64,
    /// Who asked (`dashboard`).
    pub who: String,
}

/// Latency statistics in ms.
#[derive(Debug, Serialize)]
pub struct LatencyJson {
    /// Samples summarized.
    pub count: u64,
    /// Minimum.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub stddev: f64,
    /// P50.
    pub p50: f64,
    /// P75.
    pub p75: f64,
    /// P90.
    pub p90: f64,
    /// P95.
    pub p95: f64,
    /// P99.
    pub p99: f64,
    /// P99.9.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
    /// Keys of percentiles with fewer than 10 samples above them (rough figures).
    pub unsupported: Vec<&'static str>,
}

impl LatencyJson {
    fn new(l: &Latency) -> Self {
        let ms = |us: f64| (us / 1000.0 * 1e6).round() / 1e6;
        let p = |i: usize| ms(l.percentiles[i]);
        LatencyJson {
            count: l.count,
            min: ms(l.min),
            mean: ms(l.mean),
            stddev: ms(l.stddev),
            p50: p(0),
            p75: p(1),
            p90: p(2),
            p95: p(3),
            p99: p(4),
            p999: p(5),
            max: ms(l.max),
            unsupported: PERCENTILES
                .iter()
                .filter(|q| !supports(l.count, q.2))
                .map(|q| q.1)
                .collect(),
        }
    }
}

/// One request name.
#[derive(Debug, Serialize)]
pub struct EndpointJson {
    /// The request name.
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Requests per second over the run's window.
    pub rps: f64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Corrected latency.
    pub latency_ms: LatencyJson,
    /// Uncorrected latency.
    pub latency_uncorrected_ms: LatencyJson,
}

impl EndpointJson {
    fn new(s: &Summary) -> Self {
        EndpointJson {
            name: s.name.clone(),
            requests: s.requests,
            failures: s.failures,
            rps: s.rps,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            latency_ms: LatencyJson::new(&s.latency),
            latency_uncorrected_ms: LatencyJson::new(&s.latency_uncorrected),
        }
    }
}

/// A failure kind and its count.
#[derive(Debug, Serialize)]
pub struct KindCount {
    /// The kind.
    pub kind: String,
    /// Failures.
    pub count: u64,
}

/// A status code and its failure count.
#[derive(Debug, Serialize)]
pub struct StatusCount {
    /// The status (0 = no response).
    pub status: u16,
    /// Failures.
    pub count: u64,
}

/// A distinct failure.
#[derive(Debug, Serialize)]
pub struct MessageCount {
    /// The request name.
    pub name: String,
    /// The failure kind.
    pub kind: String,
    /// The status code (0 = no response).
    pub status: u16,
    /// The message, as recorded.
    pub message: String,
    /// Occurrences.
    pub count: u64,
}

/// Equal-length per-second arrays.
#[derive(Debug, Serialize)]
pub struct TimeSeriesJson {
    /// Seconds since the run's time zero.
    pub t_s: Vec<u32>,
    /// Requests meant to start in the second.
    pub rps: Vec<u64>,
    /// Failures among them.
    pub failures: Vec<u64>,
    /// Corrected P50, ms (`null`: no request).
    pub p50_ms: Vec<Option<f64>>,
    /// Corrected P95, ms.
    pub p95_ms: Vec<Option<f64>>,
    /// Corrected P99, ms.
    pub p99_ms: Vec<Option<f64>>,
    /// Active users over all cores (`null`: no interval record).
    pub users: Vec<Option<u64>>,
    /// Worst core's P99 schedule lag, ms.
    pub lag_p99_ms: Vec<Option<f64>>,
    /// Mean CPU of the engine's threads, % of one core.
    pub cpu_pct: Vec<Option<f64>>,
    /// Worst core's largest schedule lag, ms.
    pub lag_max_ms: Vec<Option<f64>>,
    /// The busiest engine thread's CPU, % of one core.
    pub cpu_max_pct: Vec<Option<f64>>,
    /// Iterations dropped (no free user), summed over cores.
    pub dropped: Vec<Option<u64>>,
}

/// Builds the JSON document.
pub fn build(runs: &[RunAnalysis], baseline: Option<usize>) -> ReportJson {
    ReportJson {
        schema: SCHEMA,
        generator: format!("analyzer {}", env!("CARGO_PKG_VERSION")),
        baseline: baseline.map(|b| runs[b].info.id.clone()),
        runs: runs.iter().map(run).collect(),
    }
}

/// Renders the JSON document, pretty-printed.
pub fn render(runs: &[RunAnalysis], baseline: Option<usize>) -> String {
    serde_json::to_string_pretty(&build(runs, baseline)).expect("the report always serializes")
        + "\n"
}

fn run(r: &RunAnalysis) -> RunJson {
    let t = &r.total;
    let ts = &r.timeseries;
    let tasks = &r.tasks;
    RunJson {
        load_model: r.info.load_model.clone(),
        tags: r.info.tags.clone(),
        tasks_known: tasks.known,
        tasks_percentile_method: if tasks.exact {
            "exact_nearest_rank".into()
        } else {
            "hdr_histogram_3_digits".into()
        },
        user_kinds: tasks
            .kinds
            .iter()
            .map(|(k, rows)| UserKindJson {
                name: k.kind.clone(),
                weight: k.weight,
                tags: k.tags.clone(),
                iterations: k.iterations,
                requests: k.requests,
                failures: k.failures,
                latency_ms: LatencyJson::new(&k.latency),
                tasks: rows.iter().map(TaskJson::new).collect(),
            })
            .collect(),
        unknown_task: tasks.unknown.as_ref().map(TaskJson::new),
        by_tag: tasks
            .tags
            .iter()
            .map(|t| TagJson {
                tag: t.kind.clone(),
                iterations: t.iterations,
                requests: t.requests,
                failures: t.failures,
                latency_ms: LatencyJson::new(&t.latency),
            })
            .collect(),
        id: r.info.id.clone(),
        label: r.info.label.clone(),
        profile: r.info.profile.clone(),
        environment: r.info.environment.clone(),
        target: r.info.target.clone(),
        started_at: r.info.started_at.clone(),
        duration_s: r.info.duration_s,
        window_s: r.window_s,
        skip_s: r.skip_s,
        state: r.info.state.clone(),
        finalized: r.info.finalized,
        engine_version: r.info.engine_version.clone(),
        io_driver: r.info.io_driver.clone(),
        cores: r.info.cores,
        host: r.info.host.clone(),
        requests: t.requests,
        failures: t.failures,
        rps: t.rps,
        bytes_sent: t.bytes_sent,
        bytes_received: t.bytes_received,
        percentile_method: if r.method == crate::analysis::METHOD_EXACT {
            "exact_nearest_rank".into()
        } else {
            "hdr_histogram_3_digits".into()
        },
        latency_ms: LatencyJson::new(&t.latency),
        latency_uncorrected_ms: LatencyJson::new(&t.latency_uncorrected),
        endpoints: r.endpoints.iter().map(EndpointJson::new).collect(),
        failures_by_kind: r
            .failures
            .by_kind
            .iter()
            .map(|(kind, count)| KindCount {
                kind: kind.clone(),
                count: *count,
            })
            .collect(),
        failures_by_status: r
            .failures
            .by_status
            .iter()
            .map(|(status, count)| StatusCount {
                status: *status,
                count: *count,
            })
            .collect(),
        failure_messages: r
            .failures
            .messages
            .iter()
            .map(|m| MessageCount {
                name: m.name.clone(),
                kind: m.kind.clone(),
                status: m.status,
                message: m.message.clone(),
                count: m.count,
            })
            .collect(),
        timeseries: TimeSeriesJson {
            t_s: ts.t_s.clone(),
            rps: ts.requests.clone(),
            failures: ts.failures.clone(),
            p50_ms: ts.p50_ms.clone(),
            p95_ms: ts.p95_ms.clone(),
            p99_ms: ts.p99_ms.clone(),
            users: ts.users.clone(),
            lag_p99_ms: ts.lag_p99_ms.clone(),
            cpu_pct: ts.cpu_mean_pct.clone(),
            lag_max_ms: ts.lag_max_ms.clone(),
            cpu_max_pct: ts.cpu_max_pct.clone(),
            dropped: ts.dropped.clone(),
        },
        health: r.health.clone(),
        data_quality: r.notes.clone(),
        phases: PhasesJson::new(&r.phases),
        shards: r.shards.clone(),
        load_changes: r
            .load_changes
            .iter()
            .map(|c| LoadChangeJson {
                at_s: c.at_us as f64 / 1e6,
                second: c.at_us / 1_000_000,
                what: c.what_name().to_owned(),
                from: c.from,
                to: c.to,
                ramp_s: c.ramp_us as f64 / 1e6,
                who: c.who.clone(),
            })
            .collect(),
    }
}

/// The timing phases of a run (`docs/report-json.md`).
#[derive(Debug, Serialize)]
pub struct PhasesJson {
    /// `exact_nearest_rank`, or `hdr_histogram_3_digits` for runs too large to keep in memory.
    pub percentile_method: &'static str,
    /// What the engine does about DNS (once before the run, never per request).
    pub dns: &'static str,
    /// Whether any request recorded a TLS handshake time (sample-log format 1.1 and an https target).
    pub tls_recorded: bool,
    /// All requests together.
    pub total: NamePhasesJson,
    /// Per request name, sorted by name.
    pub endpoints: Vec<NamePhasesJson>,
}

impl PhasesJson {
    fn new(p: &crate::phases::Phases) -> Self {
        PhasesJson {
            percentile_method: if p.exact {
                "exact_nearest_rank"
            } else {
                "hdr_histogram_3_digits"
            },
            dns: "resolved_once_before_the_run",
            tls_recorded: p.any_tls,
            total: NamePhasesJson::new(&p.total),
            endpoints: p.endpoints.iter().map(NamePhasesJson::new).collect(),
        }
    }
}

/// The four phases of one request name (or of all requests).
#[derive(Debug, Serialize)]
pub struct NamePhasesJson {
    /// The request name (`All requests` for the total).
    pub name: String,
    /// TCP connect, over the requests that opened a connection.
    pub connect_ms: PhaseJson,
    /// TLS handshake, over the requests that did one.
    pub tls_ms: PhaseJson,
    /// From the connection being ready (the actual start, on a reused one) to the first response byte.
    pub waiting_ms: PhaseJson,
    /// From the first response byte to the last.
    pub receiving_ms: PhaseJson,
}

impl NamePhasesJson {
    fn new(n: &crate::phases::NamePhases) -> Self {
        NamePhasesJson {
            name: n.name.clone(),
            connect_ms: PhaseJson::new(&n.phases[0]),
            tls_ms: PhaseJson::new(&n.phases[1]),
            waiting_ms: PhaseJson::new(&n.phases[2]),
            receiving_ms: PhaseJson::new(&n.phases[3]),
        }
    }
}

/// One phase in ms; every figure 0 when `count` is 0.
#[derive(Debug, Serialize)]
pub struct PhaseJson {
    /// Requests that had the phase.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// P50.
    pub p50: f64,
    /// P90.
    pub p90: f64,
    /// P99.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Keys of percentiles with fewer than 10 samples above them (rough figures).
    pub unsupported: Vec<&'static str>,
}

impl PhaseJson {
    fn new(s: &crate::phases::PhaseStat) -> Self {
        let ms = |us: f64| (us / 1000.0 * 1e6).round() / 1e6;
        PhaseJson {
            count: s.count,
            mean: ms(s.mean),
            p50: ms(s.percentiles[0]),
            p90: ms(s.percentiles[1]),
            p99: ms(s.percentiles[2]),
            max: ms(s.max),
            unsupported: crate::phases::PHASE_PERCENTILES
                .iter()
                .filter(|q| s.count > 0 && !supports(s.count, q.2))
                .map(|q| q.1)
                .collect(),
        }
    }
}
