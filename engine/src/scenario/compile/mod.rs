//! From the profile as written to a [`Scenario`]: every template, selector, regex, feeder column and
//! key is checked here, so that a mistake is a load-time error naming the field (and the text, which
//! the plan turns into a line and column), never a run-time surprise.
//!
//! This file walks the profile: feeders, the variables users extract into, user kinds and their task
//! trees. What a tree holds is compiled next door: `request` (HTTP requests and JSON bodies), `checks`
//! (extractions and checks), `steps` (other protocols and their channels), `auth`, `flow` (`flow:`
//! elements, conditions and loops); `scope` resolves the names in a kind's templates.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::auth::AuthUse;
use super::feeder::Feeder;
use super::template::{Escape, Template};
use super::vars::Vars;
use super::{Node, Scenario, Task, UserKind};
use crate::plan::Wait;
use crate::profile::spec::{
    AuthSpec, FeederOrder, FlowSpec, OnExhausted, ProfileSpec, StepSpec, TaskSpec, UserSpec,
    WaitSpec,
};

mod auth;
mod checks;
mod flow;
mod request;
mod scope;
mod steps;

/// A profile that does not compile: the field, the text at fault (to locate it) and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompileError {
    pub field: String,
    pub snippet: Option<String>,
    pub message: String,
}

fn error(
    field: impl Into<String>,
    snippet: Option<&str>,
    message: impl Into<String>,
) -> CompileError {
    CompileError {
        field: field.into(),
        snippet: snippet.map(str::to_owned),
        message: message.into(),
    }
}

/// What compiling needs besides the spec.
pub(crate) struct Inputs<'a> {
    pub spec: &'a ProfileSpec,
    pub vars: &'a mut Vars,
    pub process_env: &'a dyn Fn(&str) -> Option<String>,
    /// Profile-wide headers, the selected environment's merged in.
    pub headers: &'a BTreeMap<String, String>,
    /// A path prefix from the host URL.
    pub base_path: &'a str,
    /// Where data and key files are found (the profile's directory).
    pub base_dir: &'a Path,
    /// Custom protocols, for `Custom(protocol: ...)` steps.
    pub protocols: &'a crate::protocol::Protocols,
}

/// Compiles the spec.
pub(crate) fn compile(inputs: Inputs<'_>) -> Result<Scenario, CompileError> {
    super::auth::install_crypto();
    let spec = inputs.spec;
    let mut c = Compiler {
        vars: inputs.vars,
        process_env: inputs.process_env,
        base_path: inputs.base_path,
        base_dir: inputs.base_dir,
        slots: BTreeMap::new(),
        feeder_index: BTreeMap::new(),
        out: Scenario::default(),
        regexes: 0,
        used_feeders: Vec::new(),
        protocols: inputs.protocols,
    };
    for (name, f) in &spec.feeders {
        let on_exhausted = f.on_exhausted.unwrap_or(match f.order {
            FeederOrder::Unique => OnExhausted::Stop,
            _ => OnExhausted::Recycle,
        });
        let feeder =
            Feeder::load(&f.file, f.format, f.order, on_exhausted, c.base_dir).map_err(|m| {
                error(
                    format!("feeders.{name}.file"),
                    Some(&format!("{:?}", f.file)),
                    m,
                )
            })?;
        c.feeder_index
            .insert(name.clone(), c.out.feeders.len() as u16);
        c.out.feeders.push(Arc::new(feeder));
    }
    if let Some(file) = &spec.script {
        let script = super::script::ScriptSource::load(file, c.base_dir)
            .map_err(|m| error("script", Some(&format!("{file:?}")), m))?;
        c.out.script = Some(Arc::new(script));
    }
    // Every name a request extracts into, or a user kind declares, is a user variable.
    for user in &spec.users {
        for name in user.variables.keys() {
            c.slot(name);
        }
        let mut names = Vec::new();
        for r in user.on_start.iter().chain(&user.on_stop) {
            names.extend(r.extract.keys().cloned());
        }
        for t in &user.tasks {
            task_extract_names(t, &mut names);
        }
        for name in names {
            c.slot(&name);
        }
    }
    for (u, user) in spec.users.iter().enumerate() {
        let kind = c.kind(spec, user, u, inputs.headers)?;
        c.out.kinds.push(kind);
    }
    super::tags::number_tasks(spec, &mut c.out);
    c.out.variables = vec![String::new(); c.slots.len()];
    for (name, &slot) in &c.slots {
        c.out.variables[usize::from(slot)] = name.clone();
    }
    Ok(c.out)
}

fn task_extract_names(t: &TaskSpec, out: &mut Vec<String>) {
    for r in &t.requests {
        out.extend(r.extract.keys().cloned());
    }
    for s in &t.steps {
        if let StepSpec::Custom { extract, .. } = s {
            out.extend(extract.iter().cloned());
        }
    }
    for child in t.sequence.iter().chain(&t.tasks) {
        task_extract_names(child, out);
    }
    flow_names(&t.flow, out);
}

/// The variables a flow extracts into or sets.
fn flow_names(flow: &[FlowSpec], out: &mut Vec<String>) {
    for item in flow {
        match item {
            FlowSpec::Request(r) => out.extend(r.extract.keys().cloned()),
            FlowSpec::Step(StepSpec::Custom { extract, .. }) => out.extend(extract.iter().cloned()),
            FlowSpec::Task(t) => task_extract_names(t, out),
            FlowSpec::If {
                then, otherwise, ..
            } => {
                flow_names(then, out);
                flow_names(otherwise, out);
            }
            FlowSpec::While { body, .. } | FlowSpec::Repeat { body, .. } => flow_names(body, out),
            FlowSpec::Set(name, _) => out.push(name.clone()),
            FlowSpec::Script { into, .. } => out.extend(into.iter().cloned()),
            FlowSpec::Step(_) | FlowSpec::Break | FlowSpec::Pause(_) => {}
        }
    }
}

struct Compiler<'a> {
    vars: &'a mut Vars,
    process_env: &'a dyn Fn(&str) -> Option<String>,
    base_path: &'a str,
    base_dir: &'a Path,
    slots: BTreeMap<String, u16>,
    feeder_index: BTreeMap<String, u16>,
    out: Scenario,
    /// Extraction regexes compiled so far (each gets a slot in a core's capture-location table).
    regexes: u16,
    /// Feeders read by the templates of the user kind being compiled.
    used_feeders: Vec<u16>,
    protocols: &'a crate::protocol::Protocols,
}

/// What the requests of one user kind share.
struct KindCtx {
    /// The feeder `row` means.
    row: Option<u16>,
    headers: BTreeMap<String, String>,
    /// The kind's auth (before a request's own).
    auth: Option<AuthSpec>,
    cookies: bool,
}

impl Compiler<'_> {
    fn slot(&mut self, name: &str) -> u16 {
        let next = self.slots.len() as u16;
        *self.slots.entry(name.to_owned()).or_insert(next)
    }

    fn kind(
        &mut self,
        spec: &ProfileSpec,
        user: &UserSpec,
        u: usize,
        headers: &BTreeMap<String, String>,
    ) -> Result<UserKind, CompileError> {
        let at = format!("users[{u}]");
        self.used_feeders.clear();
        let row = match &user.feeder {
            Some(name) => self.feeder_index.get(name).copied(),
            None if self.feeder_index.len() == 1 => Some(0),
            None => None,
        };
        let mut merged = headers.clone();
        merged.extend(user.headers.clone());
        let kind = KindCtx {
            row,
            headers: merged,
            auth: user.auth.clone().or_else(|| spec.auth.clone()),
            cookies: user.cookies,
        };
        let mut initial = Vec::new();
        for (name, &slot) in &self.slots.clone() {
            if let Some(text) = user.variables.get(name) {
                let t = self.tpl(&kind, text, Escape::None, &format!("{at}.variables.{name}"))?;
                initial.push((slot, t));
            } else if let Some(v) = self.vars.values.get(name) {
                initial.push((slot, Template::literal(v.as_bytes())));
            }
        }
        let kind_auth = match &kind.auth {
            Some(a) => {
                let field = if user.auth.is_some() {
                    format!("{at}.auth")
                } else {
                    "auth".to_owned()
                };
                self.auth(&kind, a, &field)?
            }
            None => AuthUse::None,
        };
        let mut on_start = Vec::new();
        for (r, req) in user.on_start.iter().enumerate() {
            on_start.push(self.request(&kind, &kind_auth, req, &format!("{at}.on_start[{r}]"))?);
        }
        let mut on_stop = Vec::new();
        for (r, req) in user.on_stop.iter().enumerate() {
            on_stop.push(self.request(&kind, &kind_auth, req, &format!("{at}.on_stop[{r}]"))?);
        }
        let mut tasks = Vec::new();
        let mut depth = 1;
        for (t, task) in user.tasks.iter().enumerate() {
            let (root, d) = self.task(&kind, &kind_auth, task, &format!("{at}.tasks[{t}]"))?;
            depth = depth.max(d);
            tasks.push(Task {
                weight: task.weight,
                root,
                id: 0,
            });
        }
        let total_task_weight = tasks.iter().map(|t| t.weight).sum();
        let mut feeders = std::mem::take(&mut self.used_feeders);
        feeders.sort_unstable();
        feeders.dedup();
        Ok(UserKind {
            wait: wait(&user.wait),
            iterations: user.iterations,
            tasks,
            total_task_weight,
            on_start,
            on_stop,
            on_start_task: 0,
            on_stop_task: 0,
            initial,
            feeders,
            depth,
        })
    }

    /// A task tree; returns its root node and depth.
    fn task(
        &mut self,
        kind: &KindCtx,
        kind_auth: &AuthUse,
        task: &TaskSpec,
        at: &str,
    ) -> Result<(usize, usize), CompileError> {
        let mut children = Vec::new();
        let mut depth = 1;
        let pick = !task.tasks.is_empty();
        for (r, req) in task.requests.iter().enumerate() {
            let index = self.request(kind, kind_auth, req, &format!("{at}.requests[{r}]"))?;
            self.out.nodes.push(Node::Request(index));
            children.push((1, self.out.nodes.len() - 1));
        }
        for (s, step) in task.steps.iter().enumerate() {
            let index = self.step(kind, step, &format!("{at}.steps[{s}]"))?;
            self.out.nodes.push(Node::Step(index));
            children.push((1, self.out.nodes.len() - 1));
        }
        for (c, child) in task.sequence.iter().enumerate() {
            let (node, d) = self.task(kind, kind_auth, child, &format!("{at}.sequence[{c}]"))?;
            depth = depth.max(d);
            children.push((child.weight, node));
        }
        for (c, child) in task.tasks.iter().enumerate() {
            let (node, d) = self.task(kind, kind_auth, child, &format!("{at}.tasks[{c}]"))?;
            depth = depth.max(d);
            children.push((child.weight, node));
        }
        for (i, item) in task.flow.iter().enumerate() {
            let (node, d) = self.flow_item(kind, kind_auth, item, &format!("{at}.flow[{i}]"))?;
            depth = depth.max(d);
            children.push((1, node));
        }
        let total_weight = if pick {
            children.iter().map(|(w, _)| *w).sum()
        } else {
            0
        };
        self.out.nodes.push(Node::Group {
            children,
            pick,
            total_weight,
            repeat: task.repeat.unwrap_or(1),
            wait: task.wait.as_ref().map_or(Wait::None, wait),
        });
        Ok((self.out.nodes.len() - 1, depth + 1))
    }
}

fn wait(w: &WaitSpec) -> Wait {
    match w {
        WaitSpec::None => Wait::None,
        WaitSpec::Constant(d) => Wait::Constant(d.0),
        WaitSpec::Between(a, b) => Wait::Between(a.0, b.0),
        WaitSpec::Pacing(d) => Wait::Pacing(d.0),
    }
}
