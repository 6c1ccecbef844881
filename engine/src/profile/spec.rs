//! The profile as written: serde types that mirror the RON file one to one.
//!
//! Unknown fields are rejected (`deny_unknown_fields`) so a typo never silently means "default". Values
//! that have a syntax of their own (durations, sizes, methods) parse while the file is read, so their
//! errors carry a line and column. Cross-field checks live in `profile::validate`.

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
    /// Fragment files merged into this profile (paths relative to this file), see [`FragmentSpec`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Target base URL (`http://host:port`) or `"embedded"`; environments may override it.
    #[serde(default)]
    pub host: Option<String>,
    /// Headers sent with every request; environments add to them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Values for `${name}` placeholders; environments and `--var` override them.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Variables whose values are secret: used like `variables`, shown as `***` everywhere.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Named environments, selected with `--env`.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// The environment used when `--env` is not given.
    #[serde(default)]
    pub default_environment: Option<String>,
    /// The load model. It may be left out when the command line gives one (`--users` and
    /// `--duration`, or `--rate` and `--duration`); `engine try` needs none.
    #[serde(default)]
    pub load: LoadSpec,
    /// Stall mode and latency mix of the embedded target, when `host` is `"embedded"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedSpec>,
    /// HTTP client settings.
    #[serde(default)]
    pub http: HttpSpec,
    /// TLS settings for `https://` and `wss://` targets; an environment's `tls` replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Data files whose rows templates read as `{{row.column}}` or `{{feeder.column}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeders: BTreeMap<String, FeederSpec>,
    /// Authentication for every request, unless a user kind or request says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Pass/fail criteria that `analyzer check` applies to the run (docs/ci.md): a request name, or
    /// `"*"` for all requests together, to conditions such as `"p99 < 200ms"` or `"error_rate < 1%"`.
    /// The engine keeps them in the manifest; the analyzer parses and checks them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<String, Vec<String>>,
    /// A Lua file (relative to the profile) whose functions `Script(call: ...)` flow elements call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The kinds of virtual user, chosen by weight.
    pub users: Vec<UserSpec>,
    /// The text of this file and of its fragments, for locating errors found after parsing.
    #[serde(skip)]
    pub sources: Vec<(std::path::PathBuf, String)>,
}

/// A fragment: the parts of a profile that large suites share (`include: ["common.ron"]`). Its maps
/// are merged under the including profile's (the profile wins on equal keys); its users are added
/// after the profile's own; `auth` applies when the profile sets none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Fragment")]
pub struct FragmentSpec {
    /// Further fragments, relative to this file.
    #[serde(default)]
    pub include: Vec<String>,
    /// Headers for every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Profile variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Secret profile variables.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Environments.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// Data feeders.
    #[serde(default)]
    pub feeders: BTreeMap<String, FeederSpec>,
    /// Authentication.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// User kinds.
    #[serde(default)]
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
    /// Secret variables added to (or replacing) the top-level ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// TLS settings replacing the top-level ones (a staging server with its own CA, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// TLS client settings. Certificates are verified against the system's roots unless `ca_file` or
/// `insecure` says otherwise.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename = "Tls")]
pub struct TlsSpec {
    /// A PEM file of CA certificates to trust instead of the system's roots (relative to the
    /// profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Accept any certificate. Off by default; when on, the console warns and the manifest says so.
    #[serde(default)]
    pub insecure: bool,
    /// The name sent in SNI and checked against the certificate, when it differs from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

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
    /// Labels for selecting at load time (`--tags`, `--exclude-tags`): every task of the kind
    /// carries them. See `scenario::tags`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Think time after each task.
    #[serde(default)]
    pub wait: WaitSpec,
    /// Stop after this many iterations (tasks); absent means until the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    /// The feeder that `{{row.column}}` reads; absent means the only feeder, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feeder: Option<String>,
    /// Per-user variables and their initial values (templates, evaluated when the user starts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Headers for this kind's requests (over the profile's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Authentication for this kind (over the profile's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Keep a cookie jar (Set-Cookie honoured, Cookie sent), as a browser or Locust's client does.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub cookies: bool,
    /// Requests made once when the user starts (log in), before its first task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_start: Vec<RequestSpec>,
    /// What the user does, chosen by weight each iteration.
    pub tasks: Vec<TaskSpec>,
    /// Requests made once when the user stops (log out): after its last iteration, or at the
    /// planned end of the run (not after Ctrl-C).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_stop: Vec<RequestSpec>,
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
    /// No think time: each iteration is due this long after the previous one was due, on a grid
    /// from the user's start (Gatling's `pace`, Locust's `constant_pacing`), so a slow response delays
    /// the user but not its schedule; an iteration that overruns is followed by the next at once, and
    /// the lateness counts as lag.
    Pacing(DurationSpec),
}

/// A task: requests made one after another, or a group of tasks. Exactly one of `requests`,
/// `sequence` (Locust's SequentialTaskSet: every child in order) and `tasks` (a nested TaskSet: one
/// child by weight) is given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Task")]
pub struct TaskSpec {
    /// Shown in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Relative chance that an iteration (or the enclosing group) runs this task.
    #[serde(default = "one")]
    pub weight: u32,
    /// Labels for selecting at load time (`--tags`, `--exclude-tags`); a group's children carry
    /// them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The requests, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RequestSpec>,
    /// Steps of other protocols (raw TCP, UDP, WebSocket, custom), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSpec>,
    /// Child tasks run in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<TaskSpec>,
    /// Child tasks, one picked by weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskSpec>,
    /// Requests, steps and tasks with control flow (`If`, `While`, `Repeat`, `Break`, `Set`,
    /// `Pause`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow: Vec<FlowSpec>,
    /// Run the task this many times in a row (a group picks afresh each time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// Think time between this group's children (between repeats for `tasks` and `requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
}

/// One element of a task's `flow`: something the user does, or a decision about what it does next.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Flow")]
pub enum FlowSpec {
    /// An HTTP request: `Request(path: "/jobs", method: POST)`.
    Request(RequestSpec),
    /// A step of another protocol: `Step(Tcp(send: "PING\r\n", read: Until("\r\n")))`.
    Step(StepSpec),
    /// A nested task (a weighted pick with `tasks`, a sequence, a repeat).
    Task(TaskSpec),
    /// `then` when the condition holds, else `else`.
    If {
        /// The condition, evaluated when the user reaches it.
        cond: CondSpec,
        /// What runs when it holds.
        then: Vec<FlowSpec>,
        /// What runs when it does not.
        #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
        otherwise: Vec<FlowSpec>,
    },
    /// `do` as long as the condition holds (checked before each pass), at most `max` passes.
    While {
        /// Checked before each pass.
        cond: CondSpec,
        /// The most passes; the loop ends quietly when they are used up.
        max: u32,
        /// Think time between passes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait: Option<WaitSpec>,
        /// The loop's body.
        #[serde(rename = "do")]
        body: Vec<FlowSpec>,
    },
    /// `do` until the condition holds (checked after each pass): a poll. Giving up (after `max`
    /// passes or `timeout`) is a failed sample named after the loop, and ends the iteration.
    Repeat {
        /// Checked after each pass; the loop ends when it holds.
        until: CondSpec,
        /// The most passes (default 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
        /// Give up when a pass ends this long after the loop began.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<DurationSpec>,
        /// Think time between passes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait: Option<WaitSpec>,
        /// With a name, the whole loop is also one sample (from its start to the pass that
        /// succeeded); give-ups are logged under it too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The loop's body.
        #[serde(rename = "do")]
        body: Vec<FlowSpec>,
    },
    /// Leaves the innermost `While` or `Repeat`.
    Break,
    /// Sets a user variable to a template's value: `Set("state", "")`.
    Set(String, String),
    /// Think time at this point of the flow.
    Pause(WaitSpec),
    /// Calls a function of the profile's `script` with the user's own table and the rendered
    /// arguments; its result (a string, number or boolean) goes into the variable `into`.
    Script {
        /// The function's name.
        call: String,
        /// Templates rendered and passed as strings, after the user's table.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        /// The user variable that takes the result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
}

/// A condition of control flow, checked at load time (names, regexes, numbers) and evaluated per
/// user without allocating.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Cond")]
pub enum CondSpec {
    /// The two templates render to the same text: `Eq("{{state}}", "done")`.
    Eq(String, String),
    /// They render to different texts.
    Ne(String, String),
    /// The first contains the second.
    Contains(String, String),
    /// The template matches the regex.
    Matches(String, String),
    /// The template's value, read as a number, is less than the number (false when it is no number).
    Lt(String, f64),
    /// ... at most the number.
    Le(String, f64),
    /// ... greater than the number.
    Gt(String, f64),
    /// ... at least the number.
    Ge(String, f64),
    /// The template renders to nothing (an unset variable).
    Empty(String),
    /// The last response's status is one of these.
    LastStatus(Vec<u16>),
    /// The last request or step succeeded: expected status, extractions and checks passed.
    LastOk,
    /// The last request or step failed (for any reason).
    LastFailed,
    /// True with this probability (0 to 1), drawn afresh each time.
    Chance(f64),
    /// Every condition holds.
    All(Vec<CondSpec>),
    /// At least one holds.
    Any(Vec<CondSpec>),
    /// The condition does not hold.
    Not(Box<CondSpec>),
}

/// One HTTP request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Request")]
pub struct RequestSpec {
    /// The method.
    #[serde(default)]
    pub method: Method,
    /// Path and query, starting with `/`; may use `${variable}` and `{{template}}`.
    pub path: String,
    /// Query parameters added to the path, URL-encoded (Locust `params=`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The name samples are grouped under; defaults to `METHOD path` (Locust `name=`).
    #[serde(default)]
    pub name: Option<String>,
    /// Labels for selecting at load time (`--tags`, `--exclude-tags`), over its task's and kind's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Headers for this request only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: Option<BodySpec>,
    /// Status codes counted as success; absent means 200–399 (Locust `catch_response`).
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
    /// Values taken from the response into user variables: `{"token": Json("/token")}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extract: BTreeMap<String, ExtractSpec>,
    /// Checks on the response; a failed one fails the sample with outcome `check`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// Authentication for this request (`Off` for none), over the user kind's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
}

/// Where an extracted value comes from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Extract")]
pub enum ExtractSpec {
    /// A JSON pointer (`/token`) or JSONPath (`$.items[0].id`) into the body.
    Json(String),
    /// The first capture group (or the whole match) of a regex over the body.
    Regex(String),
    /// A response header.
    Header(String),
    /// A cookie the response sets.
    Cookie(String),
    /// The status code.
    Status,
    /// Not a failure when missing: the variable keeps its value.
    Optional(Box<ExtractSpec>),
    /// One of the values a JSON selector matches, drawn at random (Gatling's `findRandom`):
    /// `Random(Json("$.results[*].id"))`.
    Random(Box<ExtractSpec>),
}

/// A check on a response.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Check")]
pub enum CheckSpec {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The body contains this text (a template).
    BodyContains(String),
    /// The body matches this regex.
    BodyMatches(String),
    /// The JSON value at this selector equals this value (strings may be templates).
    JsonEquals(String, ron::Value),
    /// The JSON selector matches something.
    JsonExists(String),
    /// The response has this header.
    HeaderPresent(String),
    /// The header equals this value (a template; case-sensitive).
    HeaderEquals(String, String),
    /// The header contains this text.
    HeaderContains(String, String),
    /// The response took less than this, from the request's actual start.
    LatencyUnder(DurationSpec),
    /// The inner check fails.
    Not(Box<CheckSpec>),
}

/// How requests authenticate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Auth")]
pub enum AuthSpec {
    /// No authentication (to switch it off for one request or user kind).
    Off,
    /// HTTP Basic: `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name (a template).
        user: String,
        /// The password (a template).
        password: String,
    },
    /// A bearer token (a template, e.g. `"{{token}}"` after a login).
    Bearer(String),
    /// A JWT signed by the engine for each user, sent as a bearer token.
    Jwt {
        /// HS256 (shared secret) or RS256 (RSA private key).
        algorithm: JwtAlgorithm,
        /// The HS256 secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// The RS256 private key, PEM (PKCS#1 or PKCS#8), relative to the profile.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_file: Option<String>,
        /// The claims (a map; string values are templates, e.g. `"sub": "user-{{user_id()}}"`).
        claims: ron::Value,
        /// Lifetime: adds `iat` and `exp`, and the token is minted again before it expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<DurationSpec>,
    },
    /// OAuth2 client credentials: the token is fetched with a request (logged as a sample), cached,
    /// and fetched again before it expires.
    OAuth2 {
        /// The token endpoint: a path on the target, or an `http://` URL on the same host.
        token_url: String,
        /// The client id (a template).
        client_id: String,
        /// The client secret (a template).
        client_secret: String,
        /// Requested scope.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// Share one token among a core's users (`PerCore`, the default) or fetch one per user.
        #[serde(default)]
        cache: TokenCache,
        /// Fetch a new token this long before the old one expires (default 30s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_before: Option<DurationSpec>,
    },
}

/// A step of a protocol other than HTTP (docs/protocols.md). Each becomes one sample.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Step")]
pub enum StepSpec {
    /// Raw TCP on the user's connection to the target: send bytes, read a reply, check it.
    Tcp {
        /// The name samples are grouped under; default `TCP` and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `tcp://host:port`; default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Bytes to send (a template; RON escapes such as `\r\n` and `\u{0}` apply).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<String>,
        /// How to tell that the reply is complete; absent: do not read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read: Option<ReadSpec>,
        /// A regex the reply must match, else the sample fails with outcome `check`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
        /// Close the connection after this step (the next step connects again).
        #[serde(default, skip_serializing_if = "is_false")]
        close: bool,
    },
    /// A UDP datagram to the target, optionally awaiting one in reply.
    Udp {
        /// The name samples are grouped under; default `UDP` and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `udp://host:port`; default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The datagram (a template).
        send: String,
        /// Await a reply this long; absent: fire and forget. A reply that does not come in time is a
        /// `timeout` sample (a lost datagram).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_within: Option<DurationSpec>,
        /// A regex the reply must match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
    },
    /// A WebSocket exchange (`ws://`, `wss://`) on the user's upgraded connection: send a message
    /// (or a ping), then await a reply, several messages, or a message that matches; or close.
    WebSocket {
        /// The name samples are grouped under; default `WS` and the target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `ws://host:port/path` or `wss://...`; default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The message to send (a template); with `ping`, the ping's payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<String>,
        /// Send a binary message instead of text.
        #[serde(default, skip_serializing_if = "is_false")]
        binary: bool,
        /// What to wait for after sending; absent: nothing (with `ping`: the pong).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receive: Option<ReceiveSpec>,
        /// A regex the last message received must match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<String>,
        /// How long to wait for what `receive` asks; default the request timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<DurationSpec>,
        /// Send a ping and wait for its pong.
        #[serde(default, skip_serializing_if = "is_false")]
        ping: bool,
        /// Close the WebSocket (close frame, then wait for the server's) after the step.
        #[serde(default, skip_serializing_if = "is_false")]
        close: bool,
    },
    /// A step of a protocol that the engine binary registered (docs/extending.md).
    Custom {
        /// The protocol's registered name.
        protocol: String,
        /// The name samples are grouped under; default the protocol's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Where to connect (`tcp://host:port`); default the profile's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// What to do, in the protocol's own terms; handed to it as a RON value when the profile loads.
        #[serde(default = "unit_value")]
        step: ron::Value,
        /// Templates evaluated per step and handed to the protocol by name.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        args: BTreeMap<String, String>,
        /// User variables the step may set from its result.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        extract: Vec<String>,
    },
}

/// What a WebSocket step waits for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Receive")]
pub enum ReceiveSpec {
    /// One message.
    Reply,
    /// This many messages.
    Messages(u32),
    /// Messages until one matches this regex.
    Match(String),
}

/// When a TCP reply is complete.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Read")]
pub enum ReadSpec {
    /// Up to and including this delimiter (RON escapes apply: `Until("\r\n")`).
    Until(String),
    /// Exactly this many bytes.
    Bytes(u32),
    /// Until the bytes read so far match this regex.
    Match(String),
}

fn unit_value() -> ron::Value {
    ron::Value::Unit
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// JWT signing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
}

/// Who shares an OAuth2 token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum TokenCache {
    /// One token per core, shared by its users.
    #[default]
    PerCore,
    /// One token per user.
    PerUser,
}

/// A data feeder.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Feeder")]
pub struct FeederSpec {
    /// The data file, relative to the profile: `.csv` (with a header row) or `.jsonl` (an object per
    /// line).
    pub file: String,
    /// The format, when the extension does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FeederFormat>,
    /// How rows are handed out.
    #[serde(default)]
    pub order: FeederOrder,
    /// What happens when rows run out; default `Stop` for `Unique`, `Recycle` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exhausted: Option<OnExhausted>,
}

/// Data file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FeederFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// How a feeder hands out rows (see `scenario::feeder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum FeederOrder {
    /// In file order, each row once per run (rows are dealt to cores in stripes); a new row for
    /// every iteration.
    #[default]
    Sequential,
    /// In file order, wrapping around; a new row for every iteration.
    Circular,
    /// A random row for every iteration.
    Random,
    /// One row per user for its whole life, never shared with another user on any core.
    Unique,
}

/// What happens when a feeder runs out of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum OnExhausted {
    /// The user stops (one that never got a row does not start).
    Stop,
    /// Start again from the first row.
    Recycle,
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
    /// Form fields, URL-encoded (`Content-Type: application/x-www-form-urlencoded`).
    Form(BTreeMap<String, String>),
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
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
