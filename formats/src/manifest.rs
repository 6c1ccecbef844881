//! The run manifest: `manifest.json` in every run directory.
//!
//! The engine writes it when a run starts, with `state: "running"`, and rewrites it (atomically, by
//! rename) when the run ends. A manifest still saying `running` after the engine has gone means the run
//! was never finalized: the engine was killed or crashed, and the logs end wherever it stopped.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::run_id::RunId;

/// The manifest's file name inside a run directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest schema this build writes. Fields may be added within a schema, never renamed.
pub const MANIFEST_SCHEMA: u32 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Written at the start. Read after the engine has gone, it means "never finalized".
    Running,
    /// The run reached its planned end.
    Completed,
    /// The run was stopped early by Ctrl-C or SIGTERM, and flushed cleanly.
    Interrupted,
    /// The engine stopped because of an error of its own (for example a full disk); see `error`.
    Failed,
}

impl RunState {
    /// How a report should describe the state, reading `Running` as an unfinished run.
    pub fn describe(self) -> &'static str {
        match self {
            RunState::Running => {
                "never finalized (the engine was killed, crashed, or is still running)"
            }
            RunState::Completed => "completed",
            RunState::Interrupted => "interrupted (stopped early and flushed)",
            RunState::Failed => "failed (the engine stopped on an error)",
        }
    }
}

/// The machine the engine ran on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host name.
    pub name: String,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// The CPU count the OS reports.
    pub cpu_count: u32,
    /// The CPU model (`model name` in /proc/cpuinfo), so benchmark runs can be compared.
    #[serde(default)]
    pub cpu_model: Option<String>,
}

/// One shard of a test that several engines run together, each its deterministic share.
///
/// Every shard of a test writes the same [`Manifest::run_id`] and the same `count` and `shares`; the
/// analyzer merges the shards of one run id into one run, and uses `shares` to say how much of the
/// load a missing shard carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards the test has (at least 1).
    pub count: u32,
    /// Each shard's share of the test's load, by shard index (`count` entries summing to 1): its share
    /// of the users in a closed model, of the arrival rate in an open one.
    pub shares: Vec<f64>,
    /// The wall-clock instant every shard waited for before starting its schedule (`--start-at`), RFC
    /// 3339 in UTC; the run's time zero. `None` when the shard started at once.
    #[serde(default)]
    pub start_at: Option<String>,
}

/// The state of the machine's clock discipline when a run started, as the kernel reports it
/// (`adjtimex(2)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSync {
    /// Whether the kernel considers the clock synchronised (NTP, PTP or chrony is disciplining it:
    /// `STA_UNSYNC` clear).
    pub synchronised: bool,
    /// The kernel's estimate of the clock's error, µs (`esterror`).
    pub estimated_error_us: u64,
    /// The kernel's bound on the clock's error, µs (`maxerror`).
    pub max_error_us: u64,
    /// Where the figures came from, e.g. `"adjtimex"`.
    pub source: String,
}

/// The tags of a profile and which of them selected the run's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagSelection {
    /// Every tag the profile gives a user kind, task or request, sorted.
    pub known: Vec<String>,
    /// `--tags`: only tasks and requests carrying one of these ran (empty: no such selection).
    #[serde(default)]
    pub selected: Vec<String>,
    /// `--exclude-tags`: tasks and requests carrying one of these did not run.
    #[serde(default)]
    pub excluded: Vec<String>,
}

/// One sample log of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// The engine thread that wrote it, from 0.
    pub core: u32,
    /// The CPU the thread was pinned to, if it was pinned.
    pub cpu: Option<u32>,
    /// The file name, relative to the run directory.
    pub file: String,
}

/// Everything known about a run besides its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest schema ([`MANIFEST_SCHEMA`]).
    pub schema: u32,
    /// The sample-log format version of the logs, as "major.minor".
    pub log_format: String,
    /// The run's id; every log's header carries the same.
    pub run_id: RunId,
    /// The profile's name.
    pub profile_name: String,
    /// The resolved profile (after command-line and environment overrides) as RON, secrets redacted.
    pub profile: String,
    /// The environment selected from the profile, if any.
    pub environment: Option<String>,
    /// The target base URL, if the load had a single target.
    pub target: Option<String>,
    /// The engine's version.
    pub engine_version: String,
    /// The load generator.
    pub host: HostInfo,
    /// The I/O driver that ran ("io_uring" or "epoll").
    pub io_driver: String,
    /// The driver's setup, e.g. "SINGLE_ISSUER|DEFER_TASKRUN" for io_uring, since it changes the numbers.
    #[serde(default)]
    pub io_setup: Option<String>,
    /// Wall-clock time at the run's time zero, RFC 3339 in UTC with nanoseconds.
    pub started_at: String,
    /// The same instant in ns since the Unix epoch.
    pub started_unix_ns: i64,
    /// CLOCK_MONOTONIC in ns at the run's time zero (the logs' clock base).
    pub monotonic_base_ns: u64,
    /// The planned duration in seconds, if the load model has one.
    pub planned_duration_s: Option<f64>,
    /// Wall-clock end, RFC 3339 in UTC with nanoseconds; `None` until the run is finalized.
    pub ended_at: Option<String>,
    /// The same instant in ns since the Unix epoch.
    pub ended_unix_ns: Option<i64>,
    /// How the run ended.
    pub state: RunState,
    /// The engine's error when `state` is `failed`.
    pub error: Option<String>,
    /// The sample logs, one per engine thread.
    pub logs: Vec<LogFile>,
    /// Which shard of a test spread over several engines this run is (`engine run --shard I/N`);
    /// `None` for a test run by one engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// How well this machine's clock was synchronised when the run started, so that the analyzer can
    /// say how well shards on different machines line up; `None` when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_sync: Option<ClockSync>,
    /// The tags the profile defines and the selection the run was made with (`--tags`,
    /// `--exclude-tags`); `None` when the profile uses no tags. Added with log format 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagSelection>,
    /// Fields written by newer versions, kept so that a rewrite does not drop them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Manifest {
    /// Parses a manifest; the error names line and column.
    pub fn from_json(text: &str) -> Result<Manifest, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The manifest as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serializes")
    }

    /// Writes `manifest.json` into `dir` atomically: a temporary file, flushed, then renamed over the old.
    ///
    /// When the disk has no room for the copy (the engine finalizing a run that filled it), an existing
    /// manifest is overwritten in place instead: its blocks are reused, so the final state still lands
    /// unless the new text outgrows them. A write that fails even then leaves a damaged manifest, which
    /// readers report while still reading the logs.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        let text = format!("{}\n", self.to_json());
        let tmp = dir.join(".manifest.json.tmp");
        let path = dir.join(MANIFEST_FILE);
        let copied = write_synced(&tmp, text.as_bytes(), true);
        let err = match copied.and_then(|()| std::fs::rename(&tmp, &path)) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let _ = std::fs::remove_file(&tmp);
        let full = matches!(
            err.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
        );
        if full && path.is_file() {
            write_synced(&path, text.as_bytes(), false)
        } else {
            Err(err)
        }
    }
}

/// Writes `bytes` as the whole of `path` and syncs it. `create` makes a fresh file; otherwise the
/// existing one is overwritten from the start and cut to length, reusing its blocks.
fn write_synced(path: &Path, bytes: &[u8], create: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_all()
}
