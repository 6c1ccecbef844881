//! The profile as written: serde types that mirror the RON file one to one.
//!
//! Unknown fields are rejected (`deny_unknown_fields`) so a typo never silently means "default". Values
//! that have a syntax of their own (durations, sizes, methods) parse while the file is read, so their
//! errors carry a line and column. Cross-field checks live in [`super::validate`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A whole profile file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Profile")]
pub struct ProfileSpec {
    /// Names the run directory and reports.
    pub name: String,
    /// Target base URL (`http://host:port`) or `"embedded"`; environments may override it.
    #[serde(default)]
    pub host: Option<String>,
    /// Headers sent with every request; environments add to them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Values for `${name}` placeholders; environments and `--var` override them.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Named environments, selected with `--env`.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// The environment used when `--env` is not given.
    #[serde(default)]
    pub default_environment: Option<String>,
    /// The load model.
    pub load: LoadSpec,
    /// Stall mode and latency mix of the embedded target, when `host` is `"embedded"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedSpec>,
    /// HTTP client settings.
    #[serde(default)]
    pub http: HttpSpec,
    /// The kinds of virtual user, chosen by weight.
    pub users: Vec<UserSpec>,
}

/// One environment: overrides for the top-level host, headers and variables.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Environment")]
pub struct EnvironmentSpec {
    /// Target base URL, or `"embedded"`.
    #[serde(default)]
    pub host: Option<String>,
    /// Headers added to (or replacing) the top-level ones.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Variables added to (or replacing) the top-level ones.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// How load is applied: closed models (a population of users that loop) or open models (iterations
/// that arrive at a rate, whatever the server does). docs/load-models.md explains when to use which.
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// Behaviour of the embedded target (`host: "embedded"`), for demonstrations and tests of
/// measurement: `engine serve` has the same settings as flags.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename = "Embedded")]
pub struct EmbeddedSpec {
    /// Hold every response for a while at a regular interval, like a garbage-collection pause.
    #[serde(default)]
    pub stall: Option<StallSpec>,
    /// Delay responses by fixed proportions: `[(90, "1ms"), (10, "20ms")]` makes 90 in every 100
    /// responses take 1 ms and 10 take 20 ms, interleaved evenly.
    #[serde(default)]
    pub latency_mix: Vec<(u32, DurationSpec)>,
}

/// Every `every` (on the monotonic clock, so windows are the same for every process on the machine),
/// hold all responses for `hold`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename = "Stall")]
pub struct StallSpec {
    /// The period.
    pub every: DurationSpec,
    /// How long responses are held at the start of each period.
    pub hold: DurationSpec,
}

/// HTTP client settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default, rename = "Http")]
pub struct HttpSpec {
    /// How long opening a connection may take.
    pub connect_timeout: DurationSpec,
    /// How long a request may take from its actual start to its last byte.
    pub request_timeout: DurationSpec,
    /// The largest response body accepted; a larger one fails the request as malformed.
    pub max_body: SizeSpec,
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            connect_timeout: DurationSpec(Duration::from_secs(5)),
            request_timeout: DurationSpec(Duration::from_secs(30)),
            max_body: SizeSpec(1 << 20),
        }
    }
}

/// A kind of virtual user.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "User")]
pub struct UserSpec {
    /// Shown in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Relative share of the users that are of this kind.
    #[serde(default = "one")]
    pub weight: u32,
    /// Think time after each task.
    #[serde(default)]
    pub wait: WaitSpec,
    /// What the user does, chosen by weight each iteration.
    pub tasks: Vec<TaskSpec>,
}

/// Think time between a user's tasks.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Wait")]
pub enum WaitSpec {
    /// No think time: the next task starts when the previous one ends.
    #[default]
    None,
    /// Always the same.
    Constant(DurationSpec),
    /// Uniformly distributed between the two.
    Between(DurationSpec, DurationSpec),
    /// No think time: each iteration starts this long after the previous one was due (Gatling's
    /// `pace`), so a slow response delays the user but not its schedule; lateness counts as lag.
    Pacing(DurationSpec),
}

/// A task: a sequence of requests made one after another.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Task")]
pub struct TaskSpec {
    /// Shown in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Relative chance that an iteration runs this task.
    #[serde(default = "one")]
    pub weight: u32,
    /// The requests, in order.
    pub requests: Vec<RequestSpec>,
}

/// One HTTP request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Request")]
pub struct RequestSpec {
    /// The method.
    #[serde(default)]
    pub method: Method,
    /// Path and query, starting with `/`; may use `${variable}`.
    pub path: String,
    /// The name samples are grouped under; defaults to `METHOD path`.
    #[serde(default)]
    pub name: Option<String>,
    /// Headers for this request only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: Option<BodySpec>,
    /// Status codes counted as success; absent means 200–399.
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum Method {
    #[default]
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
    HEAD,
}

impl Method {
    /// The method as it appears on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Body")]
pub enum BodySpec {
    /// Sent as written (`Content-Type: text/plain` unless a header says otherwise).
    Text(String),
    /// A RON value sent as JSON (`Content-Type: application/json`).
    Json(ron::Value),
}

fn one() -> u32 {
    1
}

/// A duration written as text: `30s`, `2m`, `1h30m`, `250ms`, `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .map(DurationSpec)
            .map_err(de::Error::custom)
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&HumanDuration(self.0))
    }
}

/// Formats a duration the way profiles write it.
#[derive(Debug, Clone, Copy)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) || ms == 0 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

/// A size written as text or a number: `1048576`, `64KiB`, `1MiB`, `10MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeSpec(pub u64);

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(SizeSpec(n)),
            Raw::Text(t) => parse_size(&t).map(SizeSpec).map_err(de::Error::custom),
        }
    }
}

impl Serialize for SizeSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// Parses `1048576`, `64KiB`, `1MiB`, `1GiB`, `10kB`, `10MB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. \"64KiB\" or \"1MiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}; use B, KiB, MiB, GiB, kB, MB or GB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
}
