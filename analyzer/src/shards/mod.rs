//! Sharded runs: one test run by several engines (`engine run --shard I/N`), each writing its own run
//! directory, merged into one run.
//!
//! ```text
//! runs/<run-name>/            the run's directory (no manifest of its own)
//!   shard-00/                 manifest.json (shard: index 0, count N, shares, start_at) + core-N.log
//!   shard-01/
//! ```
//!
//! - [`resolve`] turns the directories given on the command line into runs: a directory holding
//!   `shard-*` directories is one sharded run, shard directories given one by one are grouped by run
//!   id, and everything else is an ordinary run. What cannot be merged (shards of two runs in one
//!   directory, the same shard twice, different profiles, different shard counts) is refused with the
//!   directories and the difference named.
//! - [`load`] reads every shard's logs as the logs of one run: cores are numbered on through the
//!   shards, and each shard's times move onto the run's common clock (its time zero minus the
//!   earliest). Missing, unreadable and unfinished shards become data-quality warnings that name the
//!   shard and its share of the load.
//! - [`assess`] judges every shard's generator health with [`crate::health::assess`] and combines the
//!   verdicts (the worst wins, with each reason naming its shard), and says how well the shards' start
//!   instants and clocks line up.
//!
//! Percentiles of a sharded run are exact over the union of every shard's samples, because the merged
//! run is analyzed like any other: there is no per-shard percentile to average.

mod assess;
mod load;
mod resolve;

use std::path::PathBuf;

use serde::Serialize;

pub use assess::{Alignment, ShardRow, ShardsAnalysis, assess};
pub use load::load;
pub(crate) use load::time_zero;
pub(crate) use resolve::shard_subdirs;
pub use resolve::{FoundShard, RunInput, ShardedInput, profile_of, resolve};

/// The start spread or clock error above which the report warns that the shards may not line up: a
/// hundredth of the time series' one-second resolution.
pub const ALIGNMENT_WARN_US: u64 = 10_000;

/// How a shard ended, or why it has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardStatus {
    /// Its manifest says it reached its planned end.
    Completed,
    /// Stopped early by Ctrl-C or SIGTERM, and flushed.
    Interrupted,
    /// Its engine stopped on an error of its own.
    Failed,
    /// Its manifest still says `running`: the engine was killed or crashed, and its logs end wherever it
    /// stopped.
    Unfinished,
    /// Its manifest is unreadable; its logs were read.
    Unknown,
    /// Given, but nothing in it could be read.
    Unreadable,
    /// Not among the directories given.
    Missing,
}

impl ShardStatus {
    /// The status in a few words, for tables.
    pub fn describe(self) -> &'static str {
        match self {
            ShardStatus::Completed => "completed",
            ShardStatus::Interrupted => "interrupted",
            ShardStatus::Failed => "failed",
            ShardStatus::Unfinished => "never finalized",
            ShardStatus::Unknown => "unknown (manifest unreadable)",
            ShardStatus::Unreadable => "unreadable",
            ShardStatus::Missing => "missing",
        }
    }

    /// Whether the shard's samples are in the merged run.
    pub fn has_data(self) -> bool {
        !matches!(self, ShardStatus::Unreadable | ShardStatus::Missing)
    }

    fn from_state(state: formats::RunState) -> Self {
        match state {
            formats::RunState::Running => ShardStatus::Unfinished,
            formats::RunState::Completed => ShardStatus::Completed,
            formats::RunState::Interrupted => ShardStatus::Interrupted,
            formats::RunState::Failed => ShardStatus::Failed,
        }
    }
}

/// What the loader learnt about one shard.
#[derive(Debug, Clone)]
pub struct ShardFacts {
    /// The shard's index, when its manifest or its directory's name says it.
    pub index: Option<u32>,
    /// Its directory; `None` when missing.
    pub dir: Option<PathBuf>,
    /// How it ended.
    pub status: ShardStatus,
    /// Its share of the test's load (0 when unknown).
    pub share: f64,
    /// Its load generator's host name (the pod).
    pub host: String,
    /// Its time zero, ns since the Unix epoch, when known.
    pub started_unix_ns: Option<i64>,
    /// Where its time zero lies on the run's common clock, µs after the earliest shard's.
    pub offset_us: u64,
    /// Its planned duration, s.
    pub planned_duration_s: Option<f64>,
    /// Its clock's synchronisation at the start, when recorded.
    pub clock_sync: Option<formats::ClockSync>,
    /// Its cores' numbers in the merged run, and each one's core within the shard.
    pub cores: Vec<(u32, u32)>,
    /// Samples kept (after the warm-up).
    pub requests: u64,
    /// Failed samples among them.
    pub failures: u64,
    /// Its first kept intended start and last completion, µs on the common clock.
    pub window_us: Option<(u64, u64)>,
    /// For a missing shard: where it was looked for, or a hint on how to include it.
    pub detail: Option<String>,
}

impl ShardFacts {
    /// `shard 3 (pod-3)`, or `shard 3` when the host is unknown.
    pub fn name(&self) -> String {
        let index = self.index.map_or_else(
            || "a shard of unknown index".to_owned(),
            |i| format!("shard {i}"),
        );
        if self.host.is_empty() {
            index
        } else {
            format!("{index} ({})", self.host)
        }
    }

    /// The shard's directory name (`shard-03`), for data-quality notes.
    pub fn dir_label(&self) -> String {
        match (&self.dir, self.index) {
            (Some(d), _) => d.file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            (None, Some(i)) => format!("shard-{i:02}"),
            (None, None) => "(shard)".into(),
        }
    }
}

/// Everything known about a merged run's shards, kept with the loaded run.
#[derive(Debug, Clone)]
pub struct ShardSet {
    /// How many shards the test had.
    pub count: u32,
    /// The common start instant the shards waited for (`--start-at`), if any.
    pub start_at: Option<String>,
    /// The earliest shard's time zero: the run's, ns since the Unix epoch.
    pub base_unix_ns: Option<i64>,
    /// One entry per shard index (missing ones included), then any shard of unknown index.
    pub shards: Vec<ShardFacts>,
}

impl ShardSet {
    /// The share of the load whose samples are not in the run (missing and unreadable shards).
    pub fn missing_share(&self) -> f64 {
        self.shards
            .iter()
            .filter(|s| !s.status.has_data())
            .fold(0.0, |sum, s| sum + s.share)
    }
}

/// Refuses a run with missing or unreadable shards for a command that judges it (`check`,
/// `compare`): thresholds and regressions judged on part of a test describe a test that never ran.
/// `--allow-partial` (then `allow` is true) judges the shards present.
pub fn refuse_partial(
    run: &crate::load::LoadedRun,
    dir: &std::path::Path,
    allow: bool,
) -> crate::Result<()> {
    let Some(set) = &run.shards else {
        return Ok(());
    };
    let missing: Vec<String> = set
        .shards
        .iter()
        .filter(|f| !f.status.has_data())
        .map(|f| format!("{} {}", f.name(), f.status.describe()))
        .collect();
    if allow || missing.is_empty() {
        return Ok(());
    }
    Err(crate::Error::Shards(format!(
        "{}: {} of {} shards {} not there ({}), {} of the load: judging the rest would pass or fail a smaller \
         test than the one that ran. Give every shard's directory, or pass --allow-partial to judge the shards present",
        dir.display(),
        missing.len(),
        set.count,
        if missing.len() == 1 { "is" } else { "are" },
        missing.join(", "),
        share_pct(set.missing_share())
    )))
}

/// A share as a percentage for messages: `6.25%`, `33.3%`, `100%`.
pub(crate) fn share_pct(share: f64) -> String {
    let pct = share * 100.0;
    let text = if (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}")
    } else if (pct * 100.0 - (pct * 100.0).round()).abs() < 1e-6 {
        format!("{pct:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        format!("{pct:.1}")
    };
    format!("{text}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_print_without_noise() {
        assert_eq!(share_pct(0.0625), "6.25%");
        assert_eq!(share_pct(0.25), "25%");
        assert_eq!(share_pct(1.0 / 3.0), "33.3%");
        assert_eq!(share_pct(0.5), "50%");
        assert_eq!(share_pct(0.125), "12.5%");
    }
}
