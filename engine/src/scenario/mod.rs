//! Scenarios: what virtual users do, compiled from the profile once and executed per request without
//! parsing or allocating.
//!
//! ```text
//! ProfileSpec ──compile──▶ Scenario (kinds, task trees, requests with templates, extraction and
//!                          │          check rules, feeders, auth)
//!                          └─ wire::Wire per request, once the target's Host header is known
//! core: exec::UserState per user ──run_request──▶ render ▶ send ▶ keep response ▶ cookies,
//!                                                 extract, check ▶ one sample
//! ```
//!
//! Module map: [`template`] (`{{ }}` expressions), [`vars`] (`${ }` profile variables and their
//! precedence), [`feeder`] (data files), [`json`] (selectors over response bodies), [`response`]
//! (headers and bodies of a kept response), [`cookies`] (the per-user jar), [`rules`] (extraction and
//! checks), [`auth`] (Basic, Bearer, JWT, OAuth2), [`wire`] (request bytes), [`flow`] (conditions
//! and loops of `flow: [...]`), [`script`] (the profile's Lua hooks), [`compile`] (spec to scenario),
//! [`exec`] (running a user's requests and task trees).

pub(crate) mod auth;
pub(crate) mod compile;
pub(crate) mod cookies;
pub(crate) mod exec;
pub(crate) mod feeder;
pub(crate) mod flow;
pub(crate) mod json;
pub(crate) mod program;
pub(crate) mod response;
pub(crate) mod rules;
pub(crate) mod script;
pub(crate) mod tags;
pub(crate) mod template;
pub(crate) mod user;
pub mod vars;
pub(crate) mod wire;

use std::sync::Arc;

use crate::plan::{StatusSet, Wait};
use crate::profile::spec::Method;

pub(crate) use feeder::Feeder;
use template::Template;

/// Everything users do, compiled. Built by `Plan::resolve`; every core works on its own clone (regexes
/// keep per-clone caches, so cores never share one), except the feeders' data, which is shared
/// read-only.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// The kinds of user.
    pub(crate) kinds: Vec<UserKind>,
    /// Every request, referred to by index.
    pub(crate) requests: Vec<RequestPlan>,
    /// Task trees, referred to by index.
    pub(crate) nodes: Vec<Node>,
    /// Data feeders.
    pub(crate) feeders: Vec<Arc<Feeder>>,
    /// User variable names, by slot.
    pub(crate) variables: Vec<String>,
    /// Authentication that needs per-user or per-core state (JWT, OAuth2).
    pub(crate) auths: Vec<auth::AuthPlan>,
    /// Steps of other protocols, referred to by index.
    pub(crate) steps: Vec<StepPlan>,
    /// The distinct (protocol, target) pairs steps use: a user has one connection per channel.
    pub(crate) channels: Vec<Channel>,
    /// The task table written to every log (formats v1.2): what each task id means.
    pub(crate) tasks: Vec<formats::TaskInfo>,
    /// Conditions of control flow, referred to by index.
    pub(crate) conds: Vec<flow::Cond>,
    /// Names of loops' samples, referred to by index.
    pub(crate) labels: Vec<flow::Label>,
    /// The profile's script, checked.
    pub(crate) script: Option<Arc<script::ScriptSource>>,
    /// The script functions `Script` elements call, referred to by index.
    pub(crate) script_calls: Vec<String>,
}

impl Scenario {
    /// The kinds of user.
    pub fn kind_count(&self) -> usize {
        self.kinds.len()
    }
}

/// A kind of user.
#[derive(Debug, Clone)]
pub(crate) struct UserKind {
    /// Think time after each task (iteration).
    pub wait: Wait,
    /// Stop after this many iterations.
    pub iterations: Option<u64>,
    /// Top-level tasks and their weights.
    pub tasks: Vec<Task>,
    pub total_task_weight: u32,
    /// Requests made when the user starts and stops.
    pub on_start: Vec<usize>,
    pub on_stop: Vec<usize>,
    /// The task ids samples of `on_start` and `on_stop` carry (0 when the list is empty).
    pub on_start_task: u32,
    pub on_stop_task: u32,
    /// Initial values of user variables (slot, template), evaluated when the user starts.
    pub initial: Vec<(u16, Template)>,
    /// Feeders this kind draws rows from.
    pub feeders: Vec<u16>,
    /// Deepest task nesting, for the executor's stack.
    pub depth: usize,
}

/// A top-level task.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub weight: u32,
    /// Its tree in [`Scenario::nodes`].
    pub root: usize,
    /// Its id in the task table, from 1 (`tags::number_tasks`).
    pub id: u32,
}

/// A node of a task tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// One request, by index.
    Request(usize),
    /// One step of another protocol, by index in [`Scenario::steps`].
    Step(usize),
    /// Children run in order (`pick` false) or one picked by weight (`pick` true), `repeat` times,
    /// with `wait` between children (in order) or between repeats (picked).
    Group {
        children: Vec<(u32, usize)>,
        pick: bool,
        total_weight: u32,
        repeat: u32,
        wait: Wait,
    },
    /// `If`: `then` when condition `cond` holds, else `otherwise`.
    If {
        cond: usize,
        then: Option<usize>,
        otherwise: Option<usize>,
    },
    /// `While` or `Repeat`.
    Loop(Box<flow::LoopPlan>),
    /// Leaves the innermost loop.
    Break,
    /// Sets a user variable.
    Set { var: u16, value: Template },
    /// Thinks.
    Pause(Wait),
    /// Calls script function `func` (in [`Scenario::script_calls`]) with rendered arguments.
    Script {
        func: usize,
        args: Vec<Template>,
        into: Option<u16>,
    },
}

/// A step of another protocol, compiled.
#[derive(Debug, Clone)]
pub(crate) struct StepPlan {
    /// The name samples are grouped under.
    pub name: String,
    /// Its connection, by index in [`Scenario::channels`].
    pub channel: usize,
    pub kind: StepKind,
    /// The message of a failed `expect`.
    pub expect_message: String,
}

/// What a step does.
#[derive(Clone)]
pub(crate) enum StepKind {
    Tcp {
        send: Option<Template>,
        read: Option<ReadUntil>,
        expect: Option<regex::bytes::Regex>,
        close: bool,
    },
    Udp {
        send: Template,
        reply_within: Option<std::time::Duration>,
        expect: Option<regex::bytes::Regex>,
    },
    WebSocket {
        send: Option<Template>,
        binary: bool,
        receive: Option<Receive>,
        expect: Option<regex::bytes::Regex>,
        within: Option<std::time::Duration>,
        ping: bool,
        close: bool,
    },
    Custom {
        protocol: Arc<dyn crate::protocol::DynProtocol>,
        step: Arc<dyn std::any::Any + Send + Sync>,
        /// Argument names (sorted) and their templates.
        arg_names: Vec<String>,
        args: Vec<Template>,
        /// Variable names the step may set, and their slots.
        extract: Vec<(String, u16)>,
    },
}

impl std::fmt::Debug for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepKind::Tcp { read, close, .. } => f
                .debug_struct("Tcp")
                .field("read", read)
                .field("close", close)
                .finish_non_exhaustive(),
            StepKind::Udp { reply_within, .. } => f
                .debug_struct("Udp")
                .field("reply_within", reply_within)
                .finish_non_exhaustive(),
            StepKind::WebSocket {
                receive,
                ping,
                close,
                ..
            } => f
                .debug_struct("WebSocket")
                .field("receive", receive)
                .field("ping", ping)
                .field("close", close)
                .finish_non_exhaustive(),
            StepKind::Custom { arg_names, .. } => f
                .debug_struct("Custom")
                .field("args", arg_names)
                .finish_non_exhaustive(),
        }
    }
}

/// What a WebSocket step waits for.
#[derive(Debug, Clone)]
pub(crate) enum Receive {
    Messages(u32),
    Match(regex::bytes::Regex),
}

/// When a TCP reply is complete.
#[derive(Debug, Clone)]
pub(crate) enum ReadUntil {
    Delimiter(Vec<u8>),
    Bytes(usize),
    Match(regex::bytes::Regex),
}

/// A connection kind and where it goes; each user has one connection per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Channel {
    /// `tcp`, `udp`, or `custom:<protocol>`.
    pub kind: String,
    /// The step's `target`, or `None` for the profile's host.
    pub target: Option<String>,
    /// The field that set the target (for errors).
    pub field: String,
}

/// A request, host-independent: the wire template is built from it once the target is known.
#[derive(Debug, Clone)]
pub(crate) struct RequestPlan {
    /// The name samples are grouped under.
    pub name: String,
    pub method: Method,
    /// Path and query, base path included.
    pub path: Template,
    /// Header lines, `Name: value`.
    pub headers: Vec<(String, Template)>,
    /// Content type and body.
    pub body: Option<(String, Template)>,
    pub expect: StatusSet,
    pub extract: Vec<rules::Extraction>,
    pub checks: Vec<rules::Check>,
    /// The JSON selectors of `extract` and `checks`, answered in one walk over a response.
    pub json: json::SelectorSet,
    pub auth: auth::AuthUse,
    /// Whether the user's cookie jar applies.
    pub cookies: bool,
}
