//! User kinds, their tasks, and the control flow inside a task (`If`, `While`, `Repeat`, ...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AuthSpec, DurationSpec, RequestSpec, StepSpec};

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

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}
