//! The resolved plan: the profile after `--env`, `--var`, environment-variable and flag overrides,
//! with typed durations, users split across cores (and, in a sharded test, this shard's share of
//! them), and the scenario compiled. Nothing after [`Plan::resolve`] looks at the profile spec.
//!
//! Precedence, highest first: command-line flags > process environment variables (`STAMPEDE_ENV`,
//! `STAMPEDE_HOST`, `STAMPEDE_VAR_<name>`) > the selected environment > the profile's top level.

mod deal;
mod error;
mod load;
mod manifest;
mod origin;
mod overrides;
mod resolve;
mod sharding;
mod target;
#[cfg(test)]
mod testing;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::IoChoice;
use crate::profile::spec::EmbeddedSpec;
use crate::scenario::Scenario;
use crate::schedule::{CoreArrivals, Population, RateCurve, Seat};
use crate::shard::{Shard, StartAt};

pub use deal::share;
pub use error::PlanError;
pub use origin::Origin;
pub use target::{Target, adhoc_spec};

/// The process environment variable that selects the profile environment (like `--env`).
pub const ENV_SELECT: &str = "STAMPEDE_ENV";
/// The process environment variable that sets the target (like `--host`).
pub const ENV_HOST: &str = "STAMPEDE_HOST";
/// What secrets are shown as.
pub const REDACTED: &str = "***";

/// What the machine offers, passed in so that resolving is a pure function.
#[derive(Debug, Clone, Default)]
pub struct PlanEnv {
    /// CPUs this process may run on, in order.
    pub cpus: Vec<u32>,
    /// The process environment (for `STAMPEDE_*` overrides and `${NAME}` in profiles).
    pub vars: BTreeMap<String, String>,
    /// The wall clock when the engine started, ns since the Unix epoch (for `--start-at +30s`).
    pub now_unix_ns: i64,
}

impl PlanEnv {
    /// This process's CPUs and environment.
    pub fn from_process(cpus: Vec<u32>) -> PlanEnv {
        PlanEnv {
            cpus,
            vars: std::env::vars().collect(),
            now_unix_ns: crate::clock::wall_now_ns(),
        }
    }
}

/// The most users a run may have: each holds a socket and a few KiB, and the plan lists them all.
pub const MAX_USERS: u32 = 10_000_000;

/// An open model's pool limit when the profile sets none (k6 asks for one; 1000 keeps a stalled
/// target from costing the generator more sockets than a default file limit allows).
pub const DEFAULT_MAX_USERS: u32 = 1000;

/// Everything a run needs, typed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The profile name.
    pub name: String,
    /// The selected environment.
    pub environment: Option<String>,
    /// Where requests go.
    pub target: Target,
    /// Where the target was given (`host`, an environment's `host`, `--host`, `--url`), for messages.
    pub target_origin: Origin,
    /// Total users: the closed population at its largest, or the open model's pool limit.
    pub users: u32,
    /// Users started per second in total; `None` starts all at once.
    pub spawn_rate: Option<f64>,
    /// Planned length, spawning included.
    pub duration: Duration,
    /// The load model.
    pub load: LoadPlan,
    /// Stop after this many iterations in total (closed) or arrivals (open).
    pub iterations: Option<u64>,
    /// The embedded target's stall mode and latency mix.
    pub embedded: EmbeddedSpec,
    /// One entry per engine thread.
    pub cores: Vec<CorePlan>,
    /// What users do: kinds, tasks, requests, feeders, auth.
    pub scenario: Scenario,
    /// Client settings.
    pub http: HttpSettings,
    /// TLS settings for `https://` and `wss://`.
    pub tls: crate::tls::TlsSettings,
    /// Which I/O driver to try.
    pub io: IoChoice,
    /// How long an io_uring wait may linger for more completions, µs (`--linger`; 0: never).
    pub linger_us: u32,
    /// Parent directory of run directories.
    pub out_dir: PathBuf,
    /// No live console lines.
    pub quiet: bool,
    /// The resolved profile as RON, secrets redacted, for the manifest.
    pub profile_ron: String,
    /// Which shard of a test spread over several engines this engine runs; `None` when it runs the
    /// whole test.
    pub shard: Option<ShardPlan>,
    /// The run's time zero on the wall clock (`--start-at`), when given.
    pub start_at: Option<StartAt>,
    /// The run's name (`--run-id`), when given: it names the run directory and derives the run id.
    pub run_name: Option<String>,
    /// The profile's tags and the `--tags` / `--exclude-tags` selection, for the manifest; `None`
    /// when the profile has no tags.
    pub tags: Option<formats::TagSelection>,
    /// The values the manifest shows as `***`, so that failure messages and traces that quote a
    /// response can hide them too.
    pub(crate) secrets: Vec<String>,
    /// Whether the runner connects once to every TCP target before anything is written (off with
    /// `--no-preflight`).
    pub preflight: bool,
    /// Where each channel's target was given, by index in the scenario's channels (its step's
    /// `target`, else the profile's host).
    pub(crate) channel_origins: Vec<Origin>,
}

/// This engine's part of a sharded test.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardPlan {
    /// Which shard.
    pub shard: Shard,
    /// Every shard's share of the load, by index (summing to 1): of the users in a closed model, of
    /// the arrival rate in an open one.
    pub shares: Vec<f64>,
}

/// The resolved load model.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadPlan {
    /// Users that loop: `Closed` or `Stages`.
    Closed {
        /// When each user runs.
        population: Population,
        /// Each user stops after this many iterations.
        iterations_per_user: Option<u64>,
    },
    /// Iterations that arrive on a schedule: `Open`, `RampingRate` or `--rate`.
    Open {
        /// Run-wide arrivals per second over time.
        curve: RateCurve,
        /// The most users busy at once, in total.
        max_users: u32,
        /// Arrivals that may wait for a free user, in total.
        queue: u32,
    },
}

/// One engine thread's share.
#[derive(Debug, Clone)]
pub struct CorePlan {
    /// Engine thread index, from 0.
    pub index: u32,
    /// The CPU to pin to.
    pub cpu: Option<u32>,
    /// This core's users, in spawn order (closed models).
    pub users: Vec<UserPlan>,
    /// This core's share of the iteration limit (closed models; open ones count arrivals run-wide).
    pub iterations: Option<u64>,
    /// Where this core sits in the deal of users, arrivals and data rows.
    pub seat: Seat,
    /// This core's arrivals and pool (open models).
    pub open: Option<OpenCore>,
}

/// One core's part of an open model.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCore {
    /// When this core's arrivals are due.
    pub arrivals: CoreArrivals,
    /// The most users of each kind (by index in the scenario's user kinds) this core may have.
    pub pool: Vec<u32>,
    /// Each kind's weight: an arrival picks its kind by weight.
    pub weights: Vec<u32>,
    /// Arrivals that may wait for a free user on this core.
    pub queue: u32,
}

/// One virtual user.
#[derive(Debug, Clone, Copy)]
pub struct UserPlan {
    /// Index across the whole run, over every shard (users are dealt round-robin to shards, then to
    /// cores: [`Seat`]).
    pub global: u32,
    /// Index of its kind among the scenario's user kinds.
    pub kind: usize,
    /// When it starts, from the run's time zero.
    pub spawn_at: Duration,
}

/// Think time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// None.
    None,
    /// Always this long.
    Constant(Duration),
    /// Uniform between the two.
    Between(Duration, Duration),
    /// No think time: each iteration is due this long after the previous one was due (a grid from
    /// the user's start, Gatling's `pace`, Locust's `constant_pacing`); lateness counts as lag.
    Pacing(Duration),
}

/// Which statuses count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSet {
    /// 200 to 399.
    Success,
    /// Exactly these.
    Only(Vec<u16>),
}

impl StatusSet {
    /// Whether `status` counts as success.
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusSet::Success => (200..400).contains(&status),
            StatusSet::Only(codes) => codes.contains(&status),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Request timeout, actual start to last byte.
    pub request_timeout: Duration,
    /// Largest accepted body.
    pub max_body: u64,
}
