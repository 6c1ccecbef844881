//! The load model: closed populations, stages, open and ramping arrival rates.

use serde::{Deserialize, Serialize};

use super::DurationSpec;

/// How load is applied: closed models (a population of users that loop) or open models (iterations
/// that arrive at a rate, whatever the server does). docs/load-models.md explains when to use which.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Load")]
pub enum LoadSpec {
    /// A fixed population of users, each looping over its tasks (Locust semantics).
    Closed {
        /// Users in total, across all cores.
        users: u32,
        /// Users started per second; absent means all at once.
        #[serde(default)]
        spawn_rate: Option<f64>,
        /// How long the run lasts, spawning included.
        duration: DurationSpec,
        /// Stop after this many iterations in total (the run may end earlier, at its duration).
        #[serde(default)]
        iterations: Option<u64>,
        /// Each user stops after this many iterations.
        #[serde(default)]
        iterations_per_user: Option<u64>,
    },
    /// A closed population that follows a target over time (Locust's LoadTestShape, k6's
    /// ramping-vus): from zero, each stage moves the target linearly to `users` over `over`.
    Stages {
        /// The stages, in order; the run lasts their total.
        stages: Vec<UserStageSpec>,
        /// Stop after this many iterations in total.
        #[serde(default)]
        iterations: Option<u64>,
        /// Each user stops after this many iterations.
        #[serde(default)]
        iterations_per_user: Option<u64>,
    },
    /// Iterations start at a fixed rate, whatever the server does (k6's constant-arrival-rate,
    /// Gatling's constantUsersPerSec, wrk2 and vegeta).
    Open {
        /// Iterations started per second, in total across cores.
        rate: f64,
        /// How long arrivals go on.
        duration: DurationSpec,
        /// The most users busy at once, in total (k6's maxVUs); default 1000. An arrival that finds
        /// none free (and no room in `queue`) is dropped and counted.
        #[serde(default)]
        max_users: Option<u32>,
        /// Arrivals that may wait for a free user, in total; default 0 (drop at once, as k6 does).
        /// A waiting arrival keeps its intended start, so its wait counts in corrected latency.
        #[serde(default)]
        queue: Option<u32>,
        /// Stop after this many arrivals in total.
        #[serde(default)]
        iterations: Option<u64>,
    },
    /// Like `Open`, with the rate changing linearly stage by stage (k6's ramping-arrival-rate).
    RampingRate {
        /// The rate at time zero, per second; default 0.
        #[serde(default)]
        start_rate: f64,
        /// The stages, in order; the run lasts their total.
        stages: Vec<RateStageSpec>,
        /// As for `Open`.
        #[serde(default)]
        max_users: Option<u32>,
        /// As for `Open`.
        #[serde(default)]
        queue: Option<u32>,
        /// Stop after this many arrivals in total.
        #[serde(default)]
        iterations: Option<u64>,
    },
    /// No `load` in the profile: the command line must give one. Not written in profiles.
    #[serde(skip)]
    #[default]
    Unset,
}

/// One stage of `Stages`: move the target population to `users` over `over`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Stage")]
pub struct UserStageSpec {
    /// The target at the end of the stage, in total across cores.
    pub users: u32,
    /// How long the stage lasts; `"0s"` jumps.
    pub over: DurationSpec,
}

/// One stage of `RampingRate`: move the arrival rate to `to` per second over `over`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "RateStage")]
pub struct RateStageSpec {
    /// The rate at the end of the stage, iterations per second in total.
    pub to: f64,
    /// How long the stage lasts; `"0s"` jumps.
    pub over: DurationSpec,
}
