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
//!
//! `run` opens a run directory and gathers its facts, `read` streams its logs into per-core columns
//! (`memory` decides how many at a time and how many samples stay exact), and `merge` makes the
//! cores' columns one run's frames.

mod duration;
mod memory;
mod merge;
mod read;
mod run;

use std::path::PathBuf;

use formats::IntervalStats;
use polars::prelude::*;

use crate::approx::Aggregates;
use crate::error::Result;

pub use duration::parse_duration;
pub use memory::{BYTES_PER_EXACT_SAMPLE, MemoryPlan, available_memory};
use merge::frame;
pub(crate) use merge::merge_run;
pub(crate) use read::{LogSpec, read_logs};
pub use run::{load_input, load_run, open_failure, tls_verification_off};

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
