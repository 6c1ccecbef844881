//! From the profile as written to a [`Scenario`]: every template, selector, regex, feeder column and
//! key is checked here, so that a mistake is a load-time error naming the field (and the text, which
//! the plan turns into a line and column), never a run-time surprise.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::auth::{AuthPlan, AuthUse, SigningKey};
use super::feeder::Feeder;
use super::json::{Expected, Selector};
use super::rules::{self, Check, CheckKind, Extraction, Source, Want};
use super::template::{Escape, Expr, Resolved, Scope, Seg, Template};
use super::vars::Vars;
use super::{
    Channel, Node, ReadUntil, Receive, RequestPlan, Scenario, StepKind, StepPlan, Task, UserKind,
};
use crate::plan::{StatusSet, Wait};
use crate::profile::spec::{
    AuthSpec, BodySpec, CheckSpec, ExtractSpec, FeederOrder, FlowSpec, JwtAlgorithm, Method,
    OnExhausted, ProfileSpec, ReadSpec, ReceiveSpec, RequestSpec, StepSpec, TaskSpec, UserSpec,
    WaitSpec,
};
use crate::profile::suggest;

mod flow;

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

/// Resolves template names for one user kind.
struct KindScope<'s> {
    vars: &'s mut Vars,
    process_env: &'s dyn Fn(&str) -> Option<String>,
    slots: &'s BTreeMap<String, u16>,
    feeders: &'s [Arc<Feeder>],
    feeder_index: &'s BTreeMap<String, u16>,
    row: Option<u16>,
}

impl Scope for KindScope<'_> {
    fn resolve(&mut self, name: &str) -> Result<Resolved, String> {
        if let Some(&slot) = self.slots.get(name) {
            return Ok(Resolved::Var(slot));
        }
        if let Some((head, column)) = name.split_once('.') {
            let feeder = if head == "row" {
                self.row.ok_or_else(|| {
                    if self.feeders.is_empty() {
                        "`row` reads the user's feeder, but the profile defines no `feeders`".to_owned()
                    } else {
                        format!(
                            "`row` is ambiguous with several feeders: add `feeder: \"...\"` to the user kind, or write `{{{{{}.{column}}}}}`",
                            self.feeder_index.keys().next().map_or("name", String::as_str)
                        )
                    }
                })?
            } else {
                *self.feeder_index.get(head).ok_or_else(|| {
                    let hint = suggest(
                        head,
                        self.feeder_index.keys().map(String::as_str).chain(["row"]),
                    )
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                    format!("`{head}` in `{name}` is not a feeder{hint}")
                })?
            };
            let f = &self.feeders[usize::from(feeder)];
            let col = f.column(column).ok_or_else(|| {
                let hint = suggest(column, f.columns.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                format!(
                    "{} has no column `{column}`{hint} (columns: {})",
                    f.file.display(),
                    f.columns.join(", ")
                )
            })?;
            if let Some(line) = f.first_missing(col) {
                return Err(format!(
                    "line {line} of {} has no `{column}`: give every line that key",
                    f.file.display()
                ));
            }
            return Ok(Resolved::Row {
                feeder,
                column: col,
            });
        }
        if let Some(v) = self.vars.values.get(name) {
            return Ok(Resolved::Const(v.clone()));
        }
        let known = self
            .slots
            .keys()
            .chain(self.vars.values.keys())
            .map(String::as_str);
        let hint = suggest(name, known)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(format!(
            "unknown variable `{name}`{hint}: define it in `variables` (profile or user kind), extract it from a response, or read a feeder column as `row.column`"
        ))
    }

    fn substitute(&mut self, text: &str) -> Result<String, String> {
        self.vars.substitute(text, self.process_env)
    }
}

impl Compiler<'_> {
    fn slot(&mut self, name: &str) -> u16 {
        let next = self.slots.len() as u16;
        *self.slots.entry(name.to_owned()).or_insert(next)
    }

    /// Compiles a template in the kind's scope.
    fn tpl(
        &mut self,
        kind: &KindCtx,
        text: &str,
        escape: Escape,
        field: &str,
    ) -> Result<Template, CompileError> {
        let mut scope = KindScope {
            vars: self.vars,
            process_env: self.process_env,
            slots: &self.slots,
            feeders: &self.out.feeders,
            feeder_index: &self.feeder_index,
            row: kind.row,
        };
        let mut t = Template::compile(text, escape, &mut scope)
            .map_err(|e| error(field, Some(&e.snippet), e.message))?;
        // Constant text lands in the same places as run-time values and gets the same escaping.
        t.escape_literals(escape);
        t.feeders(&mut self.used_feeders);
        Ok(t)
    }

    /// Substitutes `${...}` (no templates), for values that must be known at load time.
    fn constant(&mut self, text: &str, field: &str) -> Result<String, CompileError> {
        self.vars
            .substitute(text, self.process_env)
            .map_err(|m| error(field, Some(text), m))
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

    fn request(
        &mut self,
        kind: &KindCtx,
        kind_auth: &AuthUse,
        req: &RequestSpec,
        at: &str,
    ) -> Result<usize, CompileError> {
        let name = match &req.name {
            Some(n) if n.contains("{{") => {
                return Err(error(
                    format!("{at}.name"),
                    Some(n),
                    "a request name groups samples and cannot change per request: leave templates out of it (the default name is the path as written)",
                ));
            }
            Some(n) => self.constant(n, &format!("{at}.name"))?,
            None => format!("{} {}", req.method.as_str(), req.path),
        };
        let mut path = Template::literal(self.base_path.as_bytes());
        path.append(&self.tpl(kind, &req.path, Escape::Path, &format!("{at}.path"))?);
        let mut separator = if req.path.contains('?') { b'&' } else { b'?' };
        for (k, v) in &req.query {
            path.push_lit(&[separator]);
            separator = b'&';
            path.append(&self.tpl(kind, k, Escape::Component, &format!("{at}.query"))?);
            path.push_lit(b"=");
            path.append(&self.tpl(kind, v, Escape::Component, &format!("{at}.query.{k}"))?);
        }
        let mut merged = kind.headers.clone();
        merged.extend(req.headers.clone());
        let mut headers = Vec::new();
        for (k, v) in &merged {
            let t = self.tpl(kind, v, Escape::Header, &format!("{at}.headers.{k}"))?;
            headers.push((k.clone(), t));
        }
        let body = match &req.body {
            None => None,
            Some(BodySpec::Text(t)) => Some((
                "text/plain".to_owned(),
                self.tpl(kind, t, Escape::None, &format!("{at}.body"))?,
            )),
            Some(BodySpec::Json(v)) => {
                let mut t = Template::default();
                self.json(kind, v, &mut t, &format!("{at}.body"))?;
                Some(("application/json".to_owned(), t))
            }
            Some(BodySpec::Form(fields)) => {
                let mut t = Template::default();
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        t.push_lit(b"&");
                    }
                    t.append(&self.tpl(kind, k, Escape::Component, &format!("{at}.body"))?);
                    t.push_lit(b"=");
                    t.append(&self.tpl(kind, v, Escape::Component, &format!("{at}.body.{k}"))?);
                }
                Some(("application/x-www-form-urlencoded".to_owned(), t))
            }
        };
        let has_authorization = merged
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        let auth = match (&req.auth, has_authorization) {
            // An explicit Authorization header wins over any auth helper.
            (_, true) => AuthUse::None,
            (Some(a), false) => self.auth(kind, a, &format!("{at}.auth"))?,
            (None, false) => kind_auth.clone(),
        };
        let mut extract = Vec::new();
        for (var, source) in &req.extract {
            extract.push(self.extraction(var, source, &format!("{at}.extract.{var}"))?);
        }
        let mut checks = Vec::new();
        for (i, check) in req.checks.iter().enumerate() {
            checks.push(self.check(kind, check, &format!("{at}.checks[{i}]"))?);
        }
        let json = rules::share_selectors(&mut extract, &mut checks);
        self.out.requests.push(RequestPlan {
            name,
            method: req.method,
            path,
            headers,
            body,
            expect: req
                .expect_status
                .clone()
                .map_or(StatusSet::Success, StatusSet::Only),
            extract,
            checks,
            json,
            auth,
            cookies: kind.cookies,
        });
        Ok(self.out.requests.len() - 1)
    }

    /// Appends a RON value as a JSON template: string values (and keys) are templates escaped for
    /// JSON; a string that is exactly `{{raw(...)}}` becomes an unquoted value.
    fn json(
        &mut self,
        kind: &KindCtx,
        v: &ron::Value,
        out: &mut Template,
        field: &str,
    ) -> Result<(), CompileError> {
        use ron::Value as V;
        match v {
            V::String(s) => {
                let t = self.tpl(kind, s, Escape::Json, field)?;
                let raws = t
                    .segments()
                    .iter()
                    .filter(|s| matches!(s, Seg::Dyn(Expr::Raw(_), _)))
                    .count();
                match (raws, t.segments()) {
                    (0, _) => {
                        out.push_lit(b"\"");
                        out.append(&t);
                        out.push_lit(b"\"");
                    }
                    (1, [Seg::Dyn(Expr::Raw(inner), _)]) => {
                        out.push_expr((**inner).clone(), Escape::None);
                    }
                    _ => {
                        return Err(error(
                            field,
                            Some(s),
                            "raw(...) must be the whole string, e.g. \"qty\": \"{{raw(random_int(1, 5))}}\"",
                        ));
                    }
                }
            }
            V::Char(c) => self.json(kind, &V::String(c.to_string()), out, field)?,
            V::Map(map) => {
                out.push_lit(b"{");
                for (i, (k, val)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_lit(b",");
                    }
                    match k {
                        V::String(_) => self.json(kind, k, out, field)?,
                        other => {
                            let mut key = String::new();
                            write_json(other, &mut key);
                            self.json(kind, &V::String(key), out, field)?;
                        }
                    }
                    out.push_lit(b":");
                    self.json(kind, val, out, field)?;
                }
                out.push_lit(b"}");
            }
            V::Seq(items) => {
                out.push_lit(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_lit(b",");
                    }
                    self.json(kind, item, out, field)?;
                }
                out.push_lit(b"]");
            }
            V::Option(Some(inner)) => self.json(kind, inner, out, field)?,
            other => {
                let mut text = String::new();
                write_json(other, &mut text);
                out.push_lit(text.as_bytes());
            }
        }
        Ok(())
    }

    fn extraction(
        &mut self,
        var: &str,
        source: &ExtractSpec,
        field: &str,
    ) -> Result<Extraction, CompileError> {
        let mut optional = false;
        let mut random = false;
        let mut source = source;
        loop {
            source = match source {
                ExtractSpec::Optional(inner) => {
                    optional = true;
                    inner
                }
                ExtractSpec::Random(inner) => {
                    random = true;
                    inner
                }
                _ => break,
            };
        }
        if random && !matches!(source, ExtractSpec::Json(_)) {
            return Err(error(
                field,
                None,
                "Random(...) draws one of the values a JSON selector matches: write Random(Json(\"$.items[*].id\"))",
            ));
        }
        let mut rule = ron::ser::to_string(source).unwrap_or_default();
        if random {
            rule = format!("Random({rule})");
        }
        let compiled = match source {
            ExtractSpec::Json(sel) => {
                let sel =
                    Selector::parse(sel).map_err(|m| error(field, Some(&format!("{sel:?}")), m))?;
                if random {
                    Source::JsonRandom(sel)
                } else {
                    Source::Json(sel.into())
                }
            }
            ExtractSpec::Regex(re) => {
                let re = self.regex(re, field)?;
                self.regexes += 1;
                Source::Regex(re, self.regexes - 1)
            }
            ExtractSpec::Header(name) => Source::Header(name.as_bytes().into()),
            ExtractSpec::Cookie(name) => Source::Cookie(name.as_bytes().into()),
            ExtractSpec::Status => Source::Status,
            ExtractSpec::Optional(_) | ExtractSpec::Random(_) => {
                unreachable!("Optional and Random were unwrapped above")
            }
        };
        let where_ = match source {
            ExtractSpec::Header(_) => "not in the response headers",
            ExtractSpec::Cookie(_) => "no Set-Cookie for it in the response",
            ExtractSpec::Regex(_) => "no match in the response body",
            _ => "not found in the response",
        };
        Ok(Extraction {
            var: self.slots[var],
            source: compiled,
            optional,
            messages: [
                format!("extract {var} = {rule}: {where_}"),
                format!("extract {var} = {rule}: the response body is not JSON"),
            ],
        })
    }

    /// A step of another protocol.
    fn step(&mut self, kind: &KindCtx, step: &StepSpec, at: &str) -> Result<usize, CompileError> {
        let (channel_kind, target, name) = match step {
            StepSpec::Tcp { target, name, .. } => ("tcp".to_owned(), target, name),
            StepSpec::Udp { target, name, .. } => ("udp".to_owned(), target, name),
            StepSpec::WebSocket { target, name, .. } => ("ws".to_owned(), target, name),
            StepSpec::Custom {
                protocol,
                target,
                name,
                ..
            } => (format!("custom:{protocol}"), target, name),
        };
        let target = match target {
            Some(t) => {
                let t = self.constant(t, &format!("{at}.target"))?;
                crate::plan::Target::parse(&t, &format!("{at}.target"))
                    .map_err(|e| error(e.field, Some(&t), e.message))?;
                Some(t)
            }
            None => None,
        };
        let name = match name {
            Some(n) if n.contains("{{") => {
                return Err(error(
                    format!("{at}.name"),
                    Some(n),
                    "a step name groups samples and cannot change per step: leave templates out of it",
                ));
            }
            Some(n) => self.constant(n, &format!("{at}.name"))?,
            None => {
                let upper = match step {
                    StepSpec::Tcp { .. } => "TCP".to_owned(),
                    StepSpec::Udp { .. } => "UDP".to_owned(),
                    StepSpec::WebSocket { .. } => "WS".to_owned(),
                    StepSpec::Custom { protocol, .. } => protocol.clone(),
                };
                match &target {
                    Some(t) => format!("{upper} {t}"),
                    None => upper,
                }
            }
        };
        let channel = Channel {
            kind: channel_kind,
            target,
            field: format!("{at}.target"),
        };
        let channel = match self
            .out
            .channels
            .iter()
            .position(|c| c.kind == channel.kind && c.target == channel.target)
        {
            Some(i) => i,
            None => {
                self.out.channels.push(channel);
                self.out.channels.len() - 1
            }
        };
        let mut expect_message = String::new();
        let mut expect_regex = |this: &mut Self, expect: &Option<String>| match expect {
            Some(re) => {
                expect_message = format!("reply did not match `{re}`");
                this.regex(re, &format!("{at}.expect")).map(Some)
            }
            None => Ok(None),
        };
        let compiled = match step {
            StepSpec::Tcp {
                send,
                read,
                expect,
                close,
                ..
            } => {
                let send = match send {
                    Some(t) => Some(self.tpl(kind, t, Escape::None, &format!("{at}.send"))?),
                    None => None,
                };
                let read = match read {
                    None => None,
                    Some(ReadSpec::Until(d)) if d.is_empty() => {
                        return Err(error(
                            format!("{at}.read"),
                            None,
                            "Until needs a delimiter, e.g. Until(\"\\r\\n\")",
                        ));
                    }
                    Some(ReadSpec::Until(d)) => Some(ReadUntil::Delimiter(d.as_bytes().to_vec())),
                    Some(ReadSpec::Bytes(0)) => {
                        return Err(error(
                            format!("{at}.read"),
                            None,
                            "Bytes(0) reads nothing: leave `read` out to only send",
                        ));
                    }
                    Some(ReadSpec::Bytes(n)) => Some(ReadUntil::Bytes(*n as usize)),
                    Some(ReadSpec::Match(re)) => {
                        Some(ReadUntil::Match(self.regex(re, &format!("{at}.read"))?))
                    }
                };
                if send.is_none() && read.is_none() {
                    return Err(error(
                        at,
                        None,
                        "a Tcp step with neither `send` nor `read` does nothing: give one",
                    ));
                }
                let expect = expect_regex(self, expect)?;
                if expect.is_some() && read.is_none() {
                    return Err(error(
                        format!("{at}.expect"),
                        expect.as_ref().map(regex::bytes::Regex::as_str),
                        "`expect` checks the reply, but the step reads none: add `read: Until(\"\\n\")` (or Bytes(n), Match(regex))",
                    ));
                }
                StepKind::Tcp {
                    send,
                    read,
                    expect,
                    close: *close,
                }
            }
            StepSpec::Udp {
                send,
                reply_within,
                expect,
                ..
            } => {
                let send = self.tpl(kind, send, Escape::None, &format!("{at}.send"))?;
                let expect = expect_regex(self, expect)?;
                if expect.is_some() && reply_within.is_none() {
                    return Err(error(
                        format!("{at}.expect"),
                        None,
                        "`expect` checks the reply: say how long to wait for it with `reply_within: \"500ms\"`",
                    ));
                }
                StepKind::Udp {
                    send,
                    reply_within: reply_within.map(|d| d.0),
                    expect,
                }
            }
            StepSpec::WebSocket {
                send,
                binary,
                receive,
                expect,
                within,
                ping,
                close,
                ..
            } => {
                let send = match send {
                    Some(t) => Some(self.tpl(kind, t, Escape::None, &format!("{at}.send"))?),
                    None => None,
                };
                let receive = match receive {
                    None => None,
                    Some(ReceiveSpec::Reply) => Some(Receive::Messages(1)),
                    Some(ReceiveSpec::Messages(0)) => {
                        return Err(error(
                            format!("{at}.receive"),
                            None,
                            "Messages(0) waits for nothing: leave `receive` out",
                        ));
                    }
                    Some(ReceiveSpec::Messages(n)) => Some(Receive::Messages(*n)),
                    Some(ReceiveSpec::Match(re)) => {
                        Some(Receive::Match(self.regex(re, &format!("{at}.receive"))?))
                    }
                };
                if send.is_none() && receive.is_none() && !*ping && !*close {
                    return Err(error(
                        at,
                        None,
                        "a WebSocket step with no `send`, `receive`, `ping` or `close` does nothing: give one",
                    ));
                }
                if *ping && receive.is_some() {
                    return Err(error(
                        format!("{at}.receive"),
                        None,
                        "a ping step waits for its pong: put `receive` in a step of its own",
                    ));
                }
                let expect = expect_regex(self, expect)?;
                if expect.is_some() && receive.is_none() {
                    return Err(error(
                        format!("{at}.expect"),
                        None,
                        "`expect` checks a received message: add `receive: Reply` (or Messages(n), Match(regex))",
                    ));
                }
                StepKind::WebSocket {
                    send,
                    binary: *binary,
                    receive,
                    expect,
                    within: within.map(|d| d.0),
                    ping: *ping,
                    close: *close,
                }
            }
            StepSpec::Custom {
                protocol,
                step,
                args,
                extract,
                ..
            } => {
                let Some(p) = self.protocols.get(protocol) else {
                    let known: Vec<&str> = self.protocols.names().collect();
                    let hint = suggest(protocol, known.iter().copied())
                        .map(|s| format!("did you mean {s:?}? "))
                        .unwrap_or_default();
                    let listed = if known.is_empty() {
                        "this engine binary registers none: custom protocols run from a binary that links the engine library and registers them (docs/extending.md)".to_owned()
                    } else {
                        format!("registered: {}", known.join(", "))
                    };
                    return Err(error(
                        format!("{at}.protocol"),
                        Some(&format!("{protocol:?}")),
                        format!("no protocol {protocol:?}; {hint}{listed}"),
                    ));
                };
                let p = Arc::clone(p);
                let compiled_step = p.compile(step).map_err(|m| {
                    error(
                        format!("{at}.step"),
                        Some(&format!("{protocol:?}")),
                        format!("protocol {protocol:?}: {m}"),
                    )
                })?;
                let mut arg_names = Vec::new();
                let mut templates = Vec::new();
                for (k, v) in args {
                    arg_names.push(k.clone());
                    templates.push(self.tpl(kind, v, Escape::None, &format!("{at}.args.{k}"))?);
                }
                let extract = extract
                    .iter()
                    .map(|name| (name.clone(), self.slot(name)))
                    .collect();
                StepKind::Custom {
                    protocol: p,
                    step: compiled_step,
                    arg_names,
                    args: templates,
                    extract,
                }
            }
        };
        self.out.steps.push(StepPlan {
            name,
            channel,
            kind: compiled,
            expect_message,
        });
        Ok(self.out.steps.len() - 1)
    }

    fn regex(&mut self, pattern: &str, field: &str) -> Result<regex::bytes::Regex, CompileError> {
        let re = regex::bytes::Regex::new(pattern).map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or("syntax error");
            error(
                field,
                Some(pattern),
                format!(
                    "invalid regex {pattern:?}: {}",
                    why.strip_prefix("error: ").unwrap_or(why)
                ),
            )
        })?;
        Ok(re)
    }

    fn check(
        &mut self,
        kind: &KindCtx,
        check: &CheckSpec,
        field: &str,
    ) -> Result<Check, CompileError> {
        let mut negate = false;
        let mut inner = check;
        while let CheckSpec::Not(c) = inner {
            negate = !negate;
            inner = c;
        }
        let selector = |sel: &str| {
            Selector::parse(sel).map_err(|m| error(field, Some(&format!("{sel:?}")), m))
        };
        let compiled = match inner {
            CheckSpec::Status(codes) => CheckKind::Status(codes.clone()),
            CheckSpec::BodyContains(t) => {
                CheckKind::BodyContains(self.tpl(kind, t, Escape::None, field)?)
            }
            CheckSpec::BodyMatches(re) => CheckKind::BodyMatches(self.regex(re, field)?),
            CheckSpec::JsonEquals(sel, value) => {
                let want = match value {
                    // `{{raw(x)}}`: compare with x's text read as JSON (a number, true, false, null),
                    // for values extracted earlier, which are kept as text.
                    ron::Value::String(s)
                        if s.trim_start().starts_with("{{") && s.contains("raw(") =>
                    {
                        let t = self.tpl(kind, s, Escape::Json, field)?;
                        match t.segments() {
                            [Seg::Dyn(Expr::Raw(inner), _)] => {
                                let mut inner_t = Template::default();
                                inner_t.push_expr((**inner).clone(), Escape::None);
                                Want::Json(inner_t)
                            }
                            _ => {
                                return Err(error(
                                    field,
                                    Some(s),
                                    "raw(...) must be the whole expected value, e.g. JsonEquals(\"/id\", \"{{raw(id)}}\")",
                                ));
                            }
                        }
                    }
                    ron::Value::String(s) => {
                        Want::String(self.tpl(kind, s, Escape::None, field)?)
                    }
                    ron::Value::Number(n) => Want::Other(Expected::Number(n.into_f64())),
                    ron::Value::Bool(b) => Want::Other(Expected::Bool(*b)),
                    ron::Value::Unit | ron::Value::Option(None) => Want::Other(Expected::Null),
                    _ => {
                        return Err(error(
                            field,
                            None,
                            "JsonEquals compares with one string, number, boolean or () for null; select a single value",
                        ));
                    }
                };
                CheckKind::JsonEquals(selector(sel)?.into(), want)
            }
            CheckSpec::JsonExists(sel) => CheckKind::JsonExists(selector(sel)?.into()),
            CheckSpec::HeaderPresent(name) => CheckKind::HeaderPresent(name.as_bytes().into()),
            CheckSpec::HeaderEquals(name, v) => CheckKind::HeaderEquals(
                name.as_bytes().into(),
                self.tpl(kind, v, Escape::None, field)?,
            ),
            CheckSpec::HeaderContains(name, v) => CheckKind::HeaderContains(
                name.as_bytes().into(),
                self.tpl(kind, v, Escape::None, field)?,
            ),
            CheckSpec::LatencyUnder(d) => CheckKind::LatencyUnder(crate::clock::micros(d.0)),
            CheckSpec::Not(_) => unreachable!("Not was unwrapped above"),
        };
        Ok(Check {
            kind: compiled,
            negate,
            message: format!(
                "check {} failed",
                ron::ser::to_string(check).unwrap_or_default()
            ),
        })
    }

    fn auth(
        &mut self,
        kind: &KindCtx,
        auth: &AuthSpec,
        field: &str,
    ) -> Result<AuthUse, CompileError> {
        match auth {
            AuthSpec::Off => Ok(AuthUse::None),
            AuthSpec::Basic { user, password } => {
                let u = self.tpl(kind, user, Escape::None, &format!("{field}.user"))?;
                let p = self.tpl(kind, password, Escape::None, &format!("{field}.password"))?;
                let mut t = Template::literal("Basic ");
                match (u.static_bytes(), p.static_bytes()) {
                    (Some(u), Some(p)) => {
                        let joined = [u, b":", p].concat();
                        t.push_lit(
                            base64::engine::general_purpose::STANDARD
                                .encode(joined)
                                .as_bytes(),
                        );
                    }
                    _ => {
                        let mut args = u.to_exprs();
                        args.push(Expr::Text((*b":").into()));
                        args.extend(p.to_exprs());
                        t.push_expr(
                            Expr::Base64 {
                                url: false,
                                args: args.into(),
                            },
                            Escape::Header,
                        );
                    }
                }
                Ok(AuthUse::Header(t))
            }
            AuthSpec::Bearer(token) => {
                let mut t = Template::literal("Bearer ");
                t.append(&self.tpl(kind, token, Escape::Header, field)?);
                Ok(AuthUse::Header(t))
            }
            AuthSpec::Jwt {
                algorithm,
                secret,
                key_file,
                claims,
                ttl,
            } => {
                let (alg, key) = match algorithm {
                    JwtAlgorithm::HS256 => {
                        let text = secret.as_deref().unwrap_or_default();
                        let secret = self.constant(text, &format!("{field}.secret"))?;
                        (
                            jsonwebtoken::Algorithm::HS256,
                            jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                        )
                    }
                    JwtAlgorithm::RS256 => {
                        let file = key_file.as_deref().unwrap_or_default();
                        let name = self.constant(file, &format!("{field}.key_file"))?;
                        let path = self.base_dir.join(&name);
                        let pem = std::fs::read(&path).map_err(|e| {
                            error(
                                format!("{field}.key_file"),
                                Some(&format!("{file:?}")),
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                            error(
                                format!("{field}.key_file"),
                                Some(&format!("{file:?}")),
                                format!(
                                    "{} is not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}",
                                    path.display()
                                ),
                            )
                        })?;
                        (jsonwebtoken::Algorithm::RS256, key)
                    }
                };
                // Sign once now, so that a key the algorithm cannot use is a load-time error.
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(alg),
                    &serde_json::json!({"probe": true}),
                    &key,
                )
                .map_err(|e| {
                    let (f, snippet) = match algorithm {
                        JwtAlgorithm::HS256 => ("secret", secret.as_deref()),
                        JwtAlgorithm::RS256 => ("key_file", key_file.as_deref()),
                    };
                    error(
                        format!("{field}.{f}"),
                        snippet,
                        format!("cannot sign a JWT with this key: {e}"),
                    )
                })?;
                let mut t = Template::default();
                self.json(kind, claims, &mut t, &format!("{field}.claims"))?;
                self.out.auths.push(AuthPlan::Jwt {
                    algorithm: alg,
                    key: SigningKey(key),
                    claims: t,
                    ttl: ttl.map(|d| d.0),
                });
                Ok(AuthUse::Dynamic(self.out.auths.len() - 1))
            }
            AuthSpec::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
                cache,
                refresh_before,
            } => {
                let url = self.constant(token_url, &format!("{field}.token_url"))?;
                let path = match url.strip_prefix("http://") {
                    Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
                    None => url.clone(),
                };
                let index = self.out.auths.len();
                let token_var = self.slot(&format!("oauth2#{index}.access_token"));
                let expires_var = self.slot(&format!("oauth2#{index}.expires_in"));
                let mut body = Template::literal("grant_type=client_credentials&client_id=");
                body.append(&self.tpl(
                    kind,
                    client_id,
                    Escape::Component,
                    &format!("{field}.client_id"),
                )?);
                body.push_lit(b"&client_secret=");
                body.append(&self.tpl(
                    kind,
                    client_secret,
                    Escape::Component,
                    &format!("{field}.client_secret"),
                )?);
                if let Some(scope) = scope {
                    body.push_lit(b"&scope=");
                    body.append(&self.tpl(
                        kind,
                        scope,
                        Escape::Component,
                        &format!("{field}.scope"),
                    )?);
                }
                let mut full_path = Template::literal(self.base_path.as_bytes());
                full_path.append(&self.tpl(
                    kind,
                    &path,
                    Escape::Path,
                    &format!("{field}.token_url"),
                )?);
                let json = |p: &str| Selector::parse(p).expect("a valid pointer").into();
                let mut extract = vec![
                    Extraction {
                        var: token_var,
                        source: Source::Json(json("/access_token")),
                        optional: false,
                        messages: [
                            "OAuth2 token response has no access_token".into(),
                            "OAuth2 token response is not JSON".into(),
                        ],
                    },
                    Extraction {
                        var: expires_var,
                        source: Source::Json(json("/expires_in")),
                        optional: true,
                        messages: [String::new(), String::new()],
                    },
                ];
                let json = rules::share_selectors(&mut extract, &mut []);
                self.out.requests.push(RequestPlan {
                    name: format!(
                        "POST {} (OAuth2 token)",
                        path.split('?').next().unwrap_or_default()
                    ),
                    method: Method::POST,
                    path: full_path,
                    headers: vec![("Accept".into(), Template::literal("application/json"))],
                    body: Some(("application/x-www-form-urlencoded".into(), body)),
                    expect: StatusSet::Success,
                    extract,
                    checks: Vec::new(),
                    json,
                    auth: AuthUse::None,
                    cookies: kind.cookies,
                });
                self.out.auths.push(AuthPlan::OAuth2 {
                    request: self.out.requests.len() - 1,
                    cache: *cache,
                    refresh_before: refresh_before.map_or(Duration::from_secs(30), |d| d.0),
                    token_var,
                    expires_var,
                });
                Ok(AuthUse::Dynamic(index))
            }
        }
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

/// Writes a RON value as JSON. Maps with non-string keys use the key's JSON text as the key.
pub(crate) fn write_json(v: &ron::Value, out: &mut String) {
    use ron::Value as V;
    use std::fmt::Write;
    match v {
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Char(c) => write_json_str(&c.to_string(), out),
        V::String(s) => write_json_str(s, out),
        V::Bytes(b) => write_json_str(&String::from_utf8_lossy(b), out),
        V::Number(n) => {
            let f = n.into_f64();
            if f.fract() == 0.0 && f.abs() < 9e15 {
                let _ = write!(out, "{}", f as i64);
            } else if f.is_finite() {
                let _ = write!(out, "{f}");
            } else {
                out.push_str("null");
            }
        }
        V::Option(None) | V::Unit => out.push_str("null"),
        V::Option(Some(inner)) => write_json(inner, out),
        V::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        V::Map(map) => {
            out.push('{');
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    V::String(s) => write_json_str(s, out),
                    other => {
                        let mut key = String::new();
                        write_json(other, &mut key);
                        write_json_str(&key, out);
                    }
                }
                out.push(':');
                write_json(val, out);
            }
            out.push('}');
        }
    }
}

fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
