//! Reading runs: run directories → compact columns → polars frames, plus everything else a report
//! needs (manifest facts, interval counters, data-quality notes).
//!
//! Each core's log is streamed one samples block at a time with [`formats::LogReader::next_samples`],
//! and only the columns the analysis needs are kept, as `u32`: the start second, the request name,
//! the corrected and uncorrected latency, the time to first byte (for the timing phases, with the few
//! per-connection figures in short lists beside it), and whether the request succeeded. Failed requests also go
//! to a second, much smaller frame with their kind, status and message. Byte counts are summed per
//! name while streaming, so they never take a column. Logs are read in parallel by a pool of at most
//! one thread per CPU, each thread taking the next log when it is done with one (a sharded run has
//! many more logs than CPUs), and only as many side by side as fit in memory ([`MemoryPlan`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use formats::{IntervalStats, LogReader, Manifest, Run, SampleColumns};
use polars::prelude::*;

use crate::approx::Aggregates;
use crate::error::{Error, Result};

/// Options that change what is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Samples whose intended start is earlier than this (µs from the run's time zero) are dropped:
    /// the warm-up.
    pub skip_us: u64,
    /// The most samples kept exactly (16 bytes each). Past it the loader switches to HdrHistogram
    /// aggregates ([`crate::approx`]); `None` picks a limit from the memory available
    /// ([`MemoryPlan`]).
    pub exact_limit: Option<u64>,
}

/// Bytes of memory an exactly kept sample costs at the peak of the analysis: 24 in the columns (16 for
/// the latency columns, 4 for the timing phases' `ttfb_us`, 4 for its task's latencies,
/// [`crate::tasks`]) plus headroom for the selection's
/// collections and the failures frame (the 100M-sample benchmark peaked at about 25 bytes a sample
/// including the log buffers before the phase column; see docs/performance.md). Each new connection's
/// phase entries count as one more sample ([`crate::phases`]).
pub const BYTES_PER_EXACT_SAMPLE: u64 = 32;

/// Memory available now (MemAvailable in /proc/meminfo), in bytes; `None` where it cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    kib.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// How to read a run's logs within the memory available.
///
/// A log is read into memory whole (the `formats` reader decodes from a byte slice), so reading
/// several large logs at once costs their total size. Logs are read in parallel only while their
/// files fit in a quarter of the available memory; the exact columns then get half of what the
/// file buffers leave, and samples beyond that go to histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Logs read at the same time.
    pub readers: usize,
    /// Samples kept exactly.
    pub exact_limit: u64,
}

impl MemoryPlan {
    /// The plan for logs of these sizes, with `available` bytes of memory and `cpus` CPUs.
    pub fn new(log_bytes: &[u64], available: u64, cpus: usize) -> Self {
        let largest = log_bytes.iter().copied().max().unwrap_or(0);
        let mut readers = cpus.min(log_bytes.len()).max(1);
        while readers > 1 && readers as u64 * largest > available / 4 {
            readers -= 1;
        }
        let buffers = readers as u64 * largest;
        let exact_limit =
            (available.saturating_sub(buffers) / 2 / BYTES_PER_EXACT_SAMPLE).max(10_000_000);
        MemoryPlan {
            readers,
            exact_limit,
        }
    }
}

/// Facts about a run that do not come from its samples.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The run directory as given.
    pub dir: PathBuf,
    /// The directory's name (`2026-03-02T09-00-00Z-checkout`), used as the run's label.
    pub label: String,
    /// The run id, 32 hex digits (empty when neither manifest nor log header could be read).
    pub id: String,
    /// The profile's name.
    pub profile: String,
    /// The environment selected from the profile.
    pub environment: Option<String>,
    /// The target base URL.
    pub target: Option<String>,
    /// The load generator's host name.
    pub host: String,
    /// Its kernel release.
    pub kernel: String,
    /// Its CPU count.
    pub cpu_count: u32,
    /// The run's start, RFC 3339 UTC.
    pub started_at: String,
    /// The run's length in seconds: from the manifest when the run was finalized, else from the samples.
    pub duration_s: f64,
    /// The engine's version.
    pub engine_version: String,
    /// The I/O driver.
    pub io_driver: String,
    /// Core logs in the run.
    pub cores: usize,
    /// How the run ended, in words.
    pub state: String,
    /// Whether the manifest says the run ended (completed, interrupted or failed).
    pub finalized: bool,
    /// The load model and user kinds, from the manifest's profile; `None` when it cannot be read.
    pub load_model: Option<crate::load_model::LoadModel>,
    /// The profile's tags and the run's tag selection (`--tags`, `--exclude-tags`).
    pub tags: Option<formats::TagSelection>,
    /// The run's start, ns since the Unix epoch (0 when unknown).
    pub started_unix_ns: i64,
}

/// How bad a data-quality note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the numbers are complete.
    Info,
    /// Some data is missing or suspect; the numbers cover what could be read.
    Warning,
}

/// Something about the input that a reader of the report should know.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QualityNote {
    /// How bad it is.
    pub severity: Severity,
    /// The file concerned, relative to the run directory (or the directory itself).
    pub file: String,
    /// What happened and what it means for the numbers.
    pub message: String,
}

/// A run loaded for analysis.
#[derive(Debug)]
pub struct LoadedRun {
    /// Manifest facts.
    pub info: RunInfo,
    /// Request names, indexed by the `name` column.
    pub names: Vec<String>,
    /// Failure messages, indexed by the `message` column of `failures`; index 0 is "no message".
    pub messages: Vec<String>,
    /// One row per kept sample: `t_s`, `name`, `latency_us` (corrected), `latency_uncorrected_us` and
    /// `ttfb_us` (time to first byte, bit 31 set when the request opened a connection; see
    /// [`crate::phases`]), all `u32`, one chunk per core log. Empty when `approx` is used.
    pub samples: DataFrame,
    /// One row per failed sample: `t_s`, `name`, `kind` (outcome code), `status`, `message` (all `u32`).
    pub failures: DataFrame,
    /// Bytes sent and received, per name index.
    pub bytes: Vec<(u64, u64)>,
    /// Interval counters of every core: (core, record).
    pub intervals: Vec<(u32, IntervalStats)>,
    /// Changes of the load made while the run went (format v1.2), one per change (every core records
    /// every change), in time order, on the run's clock.
    pub load_changes: Vec<formats::LoadChange>,
    /// For runs too large for exact percentiles: per-name and per-second aggregates, in which case
    /// `samples` is empty. See [`crate::approx`].
    pub approx: Option<Aggregates>,
    /// Timing-phase data besides the `ttfb_us` column: per-connection lists, or aggregates.
    pub phases: crate::phases::PhaseColumns,
    /// Samples analyzed (after the warm-up was dropped).
    pub rows: u64,
    /// The limit that decided between exact and approximate percentiles.
    pub exact_limit: u64,
    /// The measured window: from the first kept intended start (or the end of the warm-up) to the last
    /// completion, µs from the run's time zero. `None` when no sample was kept.
    pub window_us: Option<(u64, u64)>,
    /// Samples dropped as warm-up.
    pub skipped: u64,
    /// What went wrong while reading, in file order.
    pub notes: Vec<QualityNote>,
    /// The shards of a run made by several engines ([`crate::shards`]); `None` for one engine's run.
    pub shards: Option<crate::shards::ShardSet>,
    /// Per-task tallies (log format 1.2), merged across logs.
    pub tasks: crate::tasks::RunTasks,
}

impl LoadedRun {
    /// A run holding only interval records (no samples): what the per-second health series and the
    /// health verdict are computed from, e.g. for one shard of a sharded run.
    pub(crate) fn intervals_only(intervals: Vec<(u32, IntervalStats)>) -> Result<LoadedRun> {
        Ok(LoadedRun {
            info: RunInfo::default(),
            names: Vec::new(),
            messages: vec![String::new()],
            samples: frame::<5>(
                Vec::new(),
                [
                    "t_s",
                    "name",
                    "latency_us",
                    "latency_uncorrected_us",
                    "ttfb_us",
                ],
            )?,
            failures: frame::<5>(Vec::new(), ["t_s", "name", "kind", "status", "message"])?,
            bytes: Vec::new(),
            intervals,
            load_changes: Vec::new(),
            approx: None,
            phases: crate::phases::PhaseColumns::default(),
            rows: 0,
            exact_limit: 0,
            window_us: None,
            skipped: 0,
            notes: Vec::new(),
            shards: None,
            tasks: crate::tasks::RunTasks::default(),
        })
    }
}

/// What one core's log yielded, before names are merged across cores.
#[derive(Debug, Default)]
pub(crate) struct CoreColumns {
    core: u32,
    t_s: Vec<u32>,
    name: Vec<u32>,
    latency: Vec<u32>,
    latency_uncorrected: Vec<u32>,
    ttfb: Vec<u32>,
    phases: crate::phases::PhaseColumns,
    f_t_s: Vec<u32>,
    f_name: Vec<u32>,
    f_kind: Vec<u32>,
    f_status: Vec<u32>,
    f_message: Vec<u32>,
    bytes: Vec<(u64, u64)>,
    names: Vec<String>,
    messages: Vec<String>,
    intervals: Vec<IntervalStats>,
    load_changes: Vec<formats::LoadChange>,
    approx: Option<Aggregates>,
    rows: u64,
    first_us: u64,
    last_end_us: u64,
    skipped: u64,
    header: Option<formats::LogHeader>,
    notes: Vec<QualityNote>,
    /// Per-task tallies while reading, then with the log's task table attached.
    tasks: crate::tasks::CoreTasks,
    task_tallies: Vec<crate::tasks::TaskAcc>,
}

/// Loads one run directory: an ordinary run, or a sharded run's directory (its `shard-*`
/// subdirectories are merged into one run, [`crate::shards`]). Fails only when the directory is not a
/// run, nothing in it is readable, or its shards cannot be merged; every lesser problem becomes a
/// [`QualityNote`].
pub fn load_run(dir: &Path, options: LoadOptions) -> Result<LoadedRun> {
    let inputs = crate::shards::resolve(&[dir.to_owned()])?;
    match inputs.into_iter().next() {
        Some(input) => load_input(&input, options),
        None => load_single(dir, options),
    }
}

/// Loads one run as [`crate::shards::resolve`] found it.
pub fn load_input(input: &crate::shards::RunInput, options: LoadOptions) -> Result<LoadedRun> {
    match input {
        crate::shards::RunInput::Single(dir) => load_single(dir, options),
        crate::shards::RunInput::Sharded(sharded) => crate::shards::load(sharded, options),
    }
}

fn load_single(dir: &Path, options: LoadOptions) -> Result<LoadedRun> {
    let run = Run::open(dir).map_err(|e| Error::NothingReadable {
        paths: vec![dir.display().to_string()],
        reasons: vec![e.to_string()],
    })?;
    let mut notes = Vec::new();
    let label = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let manifest = match &run.manifest {
        Ok(m) => Some(m),
        Err(e) => {
            notes.push(QualityNote {
                severity: Severity::Warning,
                file: formats::manifest::MANIFEST_FILE.into(),
                message: format!(
                    "{}; the run header below is incomplete, but the logs were read",
                    e.kind
                ),
            });
            None
        }
    };
    if let Some(m) = manifest
        && m.state == formats::RunState::Running
    {
        notes.push(QualityNote {
            severity: Severity::Warning,
            file: formats::manifest::MANIFEST_FILE.into(),
            message: "the run was never finalized (the manifest still says \"running\"): the engine was killed, \
                      crashed or is still running, so the logs end wherever it stopped"
                .into(),
        });
    }
    if let Some(m) = manifest
        && tls_verification_off(&m.profile)
    {
        notes.push(QualityNote {
            severity: Severity::Warning,
            file: formats::manifest::MANIFEST_FILE.into(),
            message:
                "TLS certificate verification was switched off for this run (`insecure: true` in \
                      the profile's `tls`): the target's identity was not checked"
                    .into(),
        });
    }
    if run.logs.is_empty() {
        return Err(Error::NothingReadable {
            paths: vec![dir.display().to_string()],
            reasons: vec!["the run has no core-N.log files".into()],
        });
    }

    let specs: Vec<LogSpec> = run
        .logs
        .iter()
        .map(|(core, path)| LogSpec {
            core: *core,
            header_core: *core,
            path: path.clone(),
            label: file_label(path),
            offset_us: 0,
        })
        .collect();
    let (cores, limit) = read_logs(&specs, options);
    let readable = cores.iter().filter(|c| c.header.is_some()).count();
    if readable == 0 {
        return Err(Error::NothingReadable {
            paths: vec![dir.display().to_string()],
            reasons: cores
                .iter()
                .flat_map(|c| c.notes.iter().map(|n| format!("{}: {}", n.file, n.message)))
                .collect(),
        });
    }
    let mut info = run_info(dir, label, manifest, &cores);
    info.cores = run.logs.len();
    let clock = crate::timing::Clock::start();
    let mut loaded = merge(cores, info)?;
    clock.lap("merge cores");
    loaded.exact_limit = limit;
    if loaded.info.duration_s <= 0.0
        && let Some((start, end)) = loaded.window_us
    {
        loaded.info.duration_s = end as f64 / 1e6 - start.min(options.skip_us) as f64 / 1e6;
    }
    notes.append(&mut loaded.notes);
    loaded.notes = notes;
    Ok(loaded)
}

/// Whether the run's resolved profile (RON, as the manifest keeps it) switched TLS verification off
/// anywhere: `insecure: true` in a `tls` setting of the profile or of an environment. The profile is
/// read generically, so the analyzer does not depend on the engine's profile types.
pub fn tls_verification_off(profile: &str) -> bool {
    fn walk(v: &ron::Value) -> bool {
        match v {
            ron::Value::Map(map) => map.iter().any(|(k, v)| {
                (matches!(k, ron::Value::String(s) if s == "insecure") && is_true(v)) || walk(v)
            }),
            ron::Value::Seq(items) => items.iter().any(walk),
            ron::Value::Option(Some(inner)) => walk(inner),
            _ => false,
        }
    }
    fn is_true(v: &ron::Value) -> bool {
        match v {
            ron::Value::Bool(b) => *b,
            ron::Value::Option(Some(inner)) => is_true(inner),
            _ => false,
        }
    }
    ron::Options::default()
        .from_str::<ron::Value>(profile)
        .is_ok_and(|v| walk(&v))
}

fn run_info(
    dir: &Path,
    label: String,
    manifest: Option<&Manifest>,
    cores: &[CoreColumns],
) -> RunInfo {
    let header = cores.iter().find_map(|c| c.header);
    let mut info = RunInfo {
        dir: dir.to_owned(),
        label,
        ..RunInfo::default()
    };
    if let Some(m) = manifest {
        info.id = m.run_id.to_string();
        info.profile = m.profile_name.clone();
        info.environment = m.environment.clone();
        info.target = m.target.clone();
        info.host = m.host.name.clone();
        info.kernel = m.host.kernel.clone();
        info.cpu_count = m.host.cpu_count;
        info.started_at = m.started_at.clone();
        info.engine_version = m.engine_version.clone();
        info.io_driver = m.io_driver.clone();
        info.state = m.state.describe().to_owned();
        info.finalized = m.state != formats::RunState::Running;
        info.load_model = crate::load_model::parse(&m.profile, m.planned_duration_s);
        info.tags.clone_from(&m.tags);
        info.started_unix_ns = m.started_unix_ns;
        if let Some(end) = m.ended_unix_ns {
            info.duration_s = (end - m.started_unix_ns) as f64 / 1e9;
        }
    } else {
        info.state = "unknown (no readable manifest)".into();
        if let Some(h) = header {
            info.id = h.run_id.to_string();
            info.started_at = formats::run::format_utc(h.wall_start_unix_ns);
            info.started_unix_ns = h.wall_start_unix_ns;
        }
    }
    info
}

/// One log to read, and where its samples go in the run.
#[derive(Debug, Clone)]
pub(crate) struct LogSpec {
    /// The log's core in the run: unique within it (a sharded run numbers its shards' cores on).
    pub core: u32,
    /// The core its header should name (its core within its own run directory).
    pub header_core: u32,
    /// The file.
    pub path: PathBuf,
    /// How data-quality notes name it (`core-0.log`, or `shard-03/core-0.log` in a sharded run).
    pub label: String,
    /// Added to every time in the log (µs): where its time zero lies on the run's common clock.
    pub offset_us: u64,
}

/// What one log contributed, for per-shard figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogTally {
    /// Samples kept (after the warm-up).
    pub rows: u64,
    /// Failed samples among them.
    pub failures: u64,
    /// The first kept intended start and the last completion, µs on the run's clock.
    pub window_us: Option<(u64, u64)>,
}

/// Reads every log within the memory plan; returns each log's columns (in core order) and the exact
/// limit that applied.
pub(crate) fn read_logs(logs: &[LogSpec], options: LoadOptions) -> (Vec<CoreColumns>, u64) {
    let sizes: Vec<u64> = logs
        .iter()
        .map(|l| std::fs::metadata(&l.path).map_or(0, |m| m.len()))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = MemoryPlan::new(&sizes, available_memory().unwrap_or(8 << 30), cpus);
    let limit = options.exact_limit.unwrap_or(plan.exact_limit);
    let clock = crate::timing::Clock::start();
    let cores = read_cores(logs, options.skip_us, limit, plan.readers);
    clock.lap("read logs");
    (cores, limit)
}

/// Reads every log, `readers` at a time (a pool, not a thread per log), each into its own columns.
fn read_cores(logs: &[LogSpec], skip_us: u64, limit: u64, readers: usize) -> Vec<CoreColumns> {
    let kept = AtomicU64::new(0);
    let workers = readers.min(logs.len()).max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<CoreColumns>> = Mutex::new(Vec::with_capacity(logs.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = logs.get(i) else {
                        break;
                    };
                    let columns = read_core(spec, skip_us, &kept, limit);
                    results
                        .lock()
                        .expect("a reader thread panicked")
                        .push(columns);
                }
            });
        }
    });
    let mut cores = results.into_inner().expect("a reader thread panicked");
    cores.sort_by_key(|c| c.core);
    cores
}

impl CoreColumns {
    /// What the log contributed.
    pub(crate) fn tally(&self) -> LogTally {
        LogTally {
            rows: self.rows,
            failures: self.f_t_s.len() as u64,
            window_us: (self.rows > 0).then_some((self.first_us, self.last_end_us)),
        }
    }

    /// Its data-quality notes as `file: message`.
    pub(crate) fn note_texts(&self) -> Vec<String> {
        self.notes
            .iter()
            .map(|n| format!("{}: {}", n.file, n.message))
            .collect()
    }

    /// The log's core in the run.
    pub(crate) fn core(&self) -> u32 {
        self.core
    }

    /// The header's wall-clock start, ns since the Unix epoch, when the header was readable.
    pub(crate) fn wall_start_unix_ns(&self) -> Option<i64> {
        self.header.map(|h| h.wall_start_unix_ns)
    }

    /// Moves the exact columns into aggregates and frees them.
    fn switch_to_approx(&mut self) {
        let mut agg = Aggregates::default();
        for i in 0..self.t_s.len() {
            agg.record(
                self.name[i],
                self.t_s[i],
                self.latency[i],
                self.latency_uncorrected[i],
            );
        }
        self.phases
            .switch_to_approx(&self.name, &self.latency_uncorrected, &self.ttfb);
        self.tasks.switch_to_approx();
        for t in &mut self.task_tallies {
            t.switch_to_approx();
        }
        self.t_s = Vec::new();
        self.name = Vec::new();
        self.latency = Vec::new();
        self.latency_uncorrected = Vec::new();
        self.ttfb = Vec::new();
        self.approx = Some(agg);
    }
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads one log. Samples go to the exact columns while the run-wide count `kept` stays within
/// `limit`, and to aggregates after that. Times are moved onto the run's clock by `spec.offset_us`.
fn read_core(spec: &LogSpec, skip_us: u64, kept: &AtomicU64, limit: u64) -> CoreColumns {
    let (core, path, offset) = (spec.header_core, spec.path.as_path(), spec.offset_us);
    let mut out = CoreColumns {
        core: spec.core,
        first_us: u64::MAX,
        ..CoreColumns::default()
    };
    let file = spec.label.clone();
    let warn = |out: &mut CoreColumns, message: String| {
        out.notes.push(QualityNote {
            severity: Severity::Warning,
            file: file.clone(),
            message,
        });
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            warn(
                &mut out,
                format!("cannot be read ({e}); its samples are missing from this report"),
            );
            return out;
        }
    };
    let mut reader = match LogReader::new(&data) {
        Ok(r) => r,
        Err(e) => {
            warn(
                &mut out,
                format!("unreadable: {e}; its samples are missing from this report"),
            );
            return out;
        }
    };
    out.header = Some(*reader.header());
    if reader.header().core != core {
        warn(
            &mut out,
            format!(
                "its header says core {}, but the run lists it as core {core}",
                reader.header().core
            ),
        );
    }
    // A guess at the sample count from the file size (about 9 bytes a sample) avoids most regrowth of
    // the columns, which would otherwise briefly need twice their memory.
    let guess = (data.len() / 9).min(usize::try_from(limit).unwrap_or(usize::MAX));
    out.t_s.reserve(guess);
    out.name.reserve(guess);
    out.latency.reserve(guess);
    out.latency_uncorrected.reserve(guess);
    out.ttfb.reserve(guess);
    let mut block = SampleColumns::default();
    let mut counts_by_name: Vec<(u64, u64)> = Vec::new();
    let mut used_names: Vec<bool> = Vec::new();
    while let Some(n) = reader.next_samples(&mut block) {
        if out.approx.is_none() {
            // A new connection's phase entries cost about what a sample does.
            let n = n as u64 + block.connect_us.iter().filter(|&&c| c > 0).count() as u64;
            if kept.load(Ordering::Relaxed) + n > limit {
                out.switch_to_approx();
            } else {
                kept.fetch_add(n, Ordering::Relaxed);
            }
        }
        for i in 0..block.len() {
            let intended = block.intended_us[i].saturating_add(offset);
            if intended < skip_us {
                out.skipped += 1;
                continue;
            }
            let actual = block.actual_us[i].saturating_add(offset);
            let latency_u = block.latency_us[i];
            let corrected = actual
                .saturating_sub(intended)
                .saturating_add(u64::from(latency_u));
            let corrected = u32::try_from(corrected).unwrap_or(u32::MAX);
            let t = u32::try_from(intended / 1_000_000).unwrap_or(u32::MAX);
            let name = block.name[i];
            let ok = block.outcome[i] == 0;
            out.rows += 1;
            out.tasks
                .record(block.task[i], block.iteration_start[i] != 0, ok, corrected);
            let phases = crate::phases::SamplePhases {
                latency: latency_u,
                connect: block.connect_us[i],
                tls: block.tls_us[i],
                ttfb: block.ttfb_us[i],
            };
            if let Some(agg) = &mut out.approx {
                agg.record(name, t, corrected, latency_u);
                out.phases.record_approx(name, phases);
            } else {
                out.t_s.push(t);
                out.name.push(name);
                out.latency.push(corrected);
                out.latency_uncorrected.push(latency_u);
                out.ttfb.push(out.phases.record_exact(name, phases));
            }
            out.first_us = out.first_us.min(intended);
            out.last_end_us = out
                .last_end_us
                .max(actual.saturating_add(u64::from(latency_u)));
            let n = name as usize;
            if n >= counts_by_name.len() {
                counts_by_name.resize(n + 1, (0, 0));
                used_names.resize(n + 1, false);
            }
            used_names[n] = true;
            counts_by_name[n].0 += u64::from(block.bytes_sent[i]);
            counts_by_name[n].1 += u64::from(block.bytes_received[i]);
            if !ok {
                out.f_t_s.push(t);
                out.f_name.push(name);
                out.f_kind.push(u32::from(block.outcome[i]));
                out.f_status.push(u32::from(block.status[i]));
                out.f_message.push(block.message[i]);
            }
        }
        block.clear();
    }
    out.bytes = counts_by_name;
    out.task_tallies = std::mem::take(&mut out.tasks).finish(reader.tasks());
    let undefined: Vec<String> = (0..used_names.len() as u32)
        .filter(|&id| used_names[id as usize] && reader.names().get(id).is_none())
        .map(|id| format!("#{id}"))
        .collect();
    if !undefined.is_empty() {
        warn(
            &mut out,
            format!(
                "samples use request names that no table block defines (it was damaged); they are shown as {}",
                undefined.join(", ")
            ),
        );
    }
    out.intervals = reader
        .intervals()
        .iter()
        .map(|r| IntervalStats {
            start_us: r.start_us.saturating_add(offset),
            ..*r
        })
        .collect();
    out.load_changes = reader
        .load_changes()
        .iter()
        .map(|c| formats::LoadChange {
            at_us: c.at_us.saturating_add(offset),
            ..c.clone()
        })
        .collect();
    let bound = |t: &formats::Table| t.id_bound();
    out.names = (0..bound(reader.names()) as u32)
        .map(|id| reader.names().display(id))
        .collect();
    out.messages = (0..bound(reader.messages()) as u32)
        .map(|id| reader.messages().get(id).unwrap_or("").to_owned())
        .collect();
    for problem in reader.problems() {
        let severity = if problem.is_tail_only() {
            Severity::Info
        } else {
            Severity::Warning
        };
        let message = match problem.kind {
            formats::DecodeErrorKind::MissingEnd if reader.end().is_none() => {
                "has no end-of-file block: the engine did not finish this log (killed, crashed, or still \
                 running); every complete block up to where it stopped was read"
                    .to_owned()
            }
            _ => problem.to_string(),
        };
        out.notes.push(QualityNote {
            severity,
            file: file.clone(),
            message,
        });
    }
    if let Some(end) = reader.end()
        && end.samples > reader.samples_read()
    {
        let lost = end.samples - reader.samples_read();
        warn(
            &mut out,
            format!(
                "{lost} of its {} samples were in damaged blocks and are missing from every figure",
                end.samples
            ),
        );
    }
    out
}

/// Merges the cores' columns: request names and messages are per log, so ids are mapped to run-wide
/// indices by their text before the columns become polars frames (without copying the data).
pub(crate) fn merge(cores: Vec<CoreColumns>, info: RunInfo) -> Result<LoadedRun> {
    let mut names: Vec<String> = Vec::new();
    let mut name_index: HashMap<String, u32> = HashMap::new();
    let mut messages: Vec<String> = vec![String::new()];
    let mut message_index: HashMap<String, u32> = HashMap::new();
    let mut bytes: Vec<(u64, u64)> = Vec::new();
    let mut intervals = Vec::new();
    let mut load_changes: Vec<formats::LoadChange> = Vec::new();
    let mut notes = Vec::new();
    let mut skipped = 0;
    let mut rows = 0;
    let (mut first, mut last) = (u64::MAX, 0u64);
    // One log past the limit makes the whole run approximate, so that all of it is computed one way.
    let mut cores = cores;
    let mut approx = if cores.iter().any(|c| c.approx.is_some()) {
        for c in cores.iter_mut().filter(|c| c.approx.is_none()) {
            c.switch_to_approx();
        }
        Some(Aggregates::default())
    } else {
        None
    };
    let mut sample_cols: Vec<[Series; 5]> = Vec::new();
    let mut phases = crate::phases::PhaseColumns::default();
    let mut failure_cols: Vec<[Series; 5]> = Vec::new();
    let mut tasks = crate::tasks::RunTasks::default();
    for mut c in cores {
        notes.append(&mut c.notes);
        tasks.merge(std::mem::take(&mut c.task_tallies));
        skipped += c.skipped;
        if c.header.is_none() {
            continue;
        }
        // Ids used by samples but missing from the table (its block was damaged) show as "#id".
        let used_max = c
            .name
            .iter()
            .chain(&c.f_name)
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1)
            .max(c.approx.as_ref().map_or(0, |a| a.names.len()));
        while c.names.len() < used_max {
            c.names.push(format!("#{}", c.names.len()));
        }
        let map_name: Vec<u32> = c
            .names
            .iter()
            .map(|n| {
                *name_index.entry(n.clone()).or_insert_with(|| {
                    names.push(n.clone());
                    (names.len() - 1) as u32
                })
            })
            .collect();
        let used_max = c
            .f_message
            .iter()
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1);
        while c.messages.len() < used_max {
            let id = c.messages.len();
            c.messages
                .push(format!("#{id} (message lost with a damaged block)"));
        }
        let map_message: Vec<u32> = c
            .messages
            .iter()
            .enumerate()
            .map(|(id, m)| {
                if id == 0 {
                    return 0;
                }
                *message_index.entry(m.clone()).or_insert_with(|| {
                    messages.push(m.clone());
                    (messages.len() - 1) as u32
                })
            })
            .collect();
        for n in c.name.iter_mut().chain(c.f_name.iter_mut()) {
            *n = map_name[*n as usize];
        }
        for m in &mut c.f_message {
            *m = map_message[*m as usize];
        }
        for (local, (sent, received)) in c.bytes.iter().enumerate() {
            let g = map_name.get(local).copied().unwrap_or(0) as usize;
            if g >= bytes.len() {
                bytes.resize(g + 1, (0, 0));
            }
            bytes[g].0 += sent;
            bytes[g].1 += received;
        }
        if let (Some(all), Some(mine)) = (&mut approx, &c.approx) {
            all.merge(mine, &map_name);
        }
        phases.merge(std::mem::take(&mut c.phases), &map_name);
        rows += c.rows;
        if c.rows > 0 {
            first = first.min(c.first_us);
            last = last.max(c.last_end_us);
        }
        intervals.extend(c.intervals.iter().map(|r| (c.core, *r)));
        load_changes.append(&mut c.load_changes);
        sample_cols.push([
            Series::from_vec("t_s".into(), c.t_s),
            Series::from_vec("name".into(), c.name),
            Series::from_vec("latency_us".into(), c.latency),
            Series::from_vec("latency_uncorrected_us".into(), c.latency_uncorrected),
            Series::from_vec("ttfb_us".into(), c.ttfb),
        ]);
        failure_cols.push([
            Series::from_vec("t_s".into(), c.f_t_s),
            Series::from_vec("name".into(), c.f_name),
            Series::from_vec("kind".into(), c.f_kind),
            Series::from_vec("status".into(), c.f_status),
            Series::from_vec("message".into(), c.f_message),
        ]);
    }
    let samples = frame(
        sample_cols,
        [
            "t_s",
            "name",
            "latency_us",
            "latency_uncorrected_us",
            "ttfb_us",
        ],
    )?;
    let failures = frame(failure_cols, ["t_s", "name", "kind", "status", "message"])?;
    bytes.resize(names.len(), (0, 0));
    let window_us = (first != u64::MAX).then(|| (first, last.max(first + 1)));
    let load_changes = merge_load_changes(load_changes);
    Ok(LoadedRun {
        info,
        names,
        messages,
        samples,
        failures,
        approx,
        phases,
        rows,
        exact_limit: 0,
        bytes,
        intervals,
        load_changes,
        window_us,
        skipped,
        notes,
        shards: None,
        tasks,
    })
}

/// Every core records every change: one of each (same start, kind and target) is kept, in time
/// order. Changes whose figures are not finite (which no engine writes) are left out.
pub(crate) fn merge_load_changes(
    mut changes: Vec<formats::LoadChange>,
) -> Vec<formats::LoadChange> {
    changes.retain(|c| c.from.is_finite() && c.to.is_finite());
    changes.sort_by(|a, b| {
        (a.at_us, a.what)
            .cmp(&(b.at_us, b.what))
            .then(a.to.total_cmp(&b.to))
    });
    changes.dedup_by(|a, b| a.at_us == b.at_us && a.what == b.what && a.to == b.to);
    changes
}

/// Appends each core's columns as chunks of one frame: no sample is copied.
fn frame<const N: usize>(parts: Vec<[Series; N]>, names: [&str; N]) -> Result<DataFrame> {
    let mut columns: Vec<Option<Series>> = vec![None; N];
    for part in parts {
        for (slot, s) in columns.iter_mut().zip(part) {
            match slot {
                Some(acc) => {
                    acc.append_owned(s)?;
                }
                None => *slot = Some(s),
            }
        }
    }
    let columns: Vec<Column> = columns
        .into_iter()
        .zip(names)
        .map(|(s, name)| {
            s.unwrap_or_else(|| Series::new_empty(name.into(), &DataType::UInt32))
                .into_column()
        })
        .collect();
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Parses a duration such as `10s`, `500ms`, `2m` or `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        Error::Usage(format!(
            "not a duration: {text:?} (use for example 30s, 500ms, 2m)"
        ))
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_verification_off_is_found_wherever_the_profile_switched_it_off() {
        let rows = [
            ("(name: \"a\", tls: (insecure: true))", true),
            (
                "#![enable(implicit_some)]\n(name: \"a\", tls: (ca_file: \"ca.pem\", insecure: false))",
                false,
            ),
            (
                "(name: \"a\", environments: {\"dev\": (tls: (insecure: true))})",
                true,
            ),
            ("(name: \"a\", tls: Some((insecure: Some(true))))", true),
            // A request path that merely mentions it is not the setting.
            (
                "(name: \"a\", users: [(tasks: [(requests: [(path: \"/insecure: true\")])])])",
                false,
            ),
            ("not ron at all {", false),
            ("", false),
        ];
        for (profile, want) in rows {
            assert_eq!(tls_verification_off(profile), want, "{profile}");
        }
    }

    #[test]
    fn memory_plan_reads_big_logs_one_at_a_time() {
        const GIB: u64 = 1 << 30;
        // 100M samples on 2 cores: two 600 MB logs fit side by side, every sample stays exact.
        let plan = MemoryPlan::new(&[600 << 20, 600 << 20], 20 * GIB, 2);
        assert_eq!(plan.readers, 2);
        assert!(plan.exact_limit > 100_000_000, "{plan:?}");
        // 1B samples: two 6 GB logs are read one after the other and most samples go to histograms.
        let plan = MemoryPlan::new(&[6 * GIB, 6 * GIB], 20 * GIB, 2);
        assert_eq!(plan.readers, 1);
        assert!(plan.exact_limit < 400_000_000, "{plan:?}");
        assert!(MemoryPlan::new(&[], 0, 8).exact_limit >= 10_000_000);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("10").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("1.5h").unwrap().as_secs(), 5400);
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
