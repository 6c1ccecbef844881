//! What one user of the core's loop knows, and what happens around each of its requests, with no I/O
//! and no executor: draw feeder rows and set initial variables, render a request into the user's
//! buffer, make or fetch its credential, and, once the response is read, take its cookies, extract
//! and check. The loop moves the bytes; [`super::program`] decides what comes next.
//!
//! Nothing here allocates in steady state: every buffer belongs to the user and is reused.

use std::sync::Arc;
use std::time::Duration;

use formats::{MessageId, Outcome};

use super::auth::{self, AuthPlan, Credential};
use super::cookies::CookieJar;
use super::exec::{CONNECT_FAILURE_PAUSE, CoreScenario, Flow};
use super::feeder::Draw;
use super::flow::{CondBuffers, Last};
use super::json::BodyJson;
use super::response::Response;
use super::rules::{RuleLine, RuleTrace};
use super::template::Env;
use super::template::Template;
use super::{StepKind, UserKind};
use crate::clock::Clock;
use crate::core::{InFlight, Message, Recorder, TaskMark};
use crate::http::{Exchange, KeptResponse};
use crate::profile::spec::TokenCache;
use crate::rng::Rng;

/// One level of a user's walk through a task tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub node: usize,
    /// The next child of a sequence, or whether a picked group has picked (1).
    pub next: usize,
    /// Repeats left, this one included; for a loop, whether its next pass is due (1).
    pub left: u32,
    /// For a loop: when it began, µs.
    pub since_us: u64,
}

/// A user's state: variables, rows, cookies, credentials, its walk through a task, and reused
/// buffers. Its connections are the loop's.
#[derive(Debug, Default)]
pub(crate) struct UserState {
    pub(crate) vars: Vec<Vec<u8>>,
    /// The current row of each feeder (`u32::MAX`: none).
    pub(crate) rows: Vec<u32>,
    pub(crate) jar: CookieJar,
    /// Iterations completed.
    pub iteration: u64,
    credentials: Vec<Credential>,
    pub(crate) stack: Vec<Frame>,
    /// The last request rendered (valid until the next render).
    pub(crate) wire: Vec<u8>,
    body: Vec<u8>,
    cookie_line: Vec<u8>,
    pub(crate) scratch: Vec<u8>,
    want: Vec<u8>,
    decoded: Vec<u8>,
    /// A step's rendered payload and rendered arguments.
    pub(crate) step_out: Vec<u8>,
    pub(crate) step_args: Vec<Vec<u8>>,
    /// The failure message of the last failed check with what it saw (`check ... failed: got 409`),
    /// and the length of its rule's own message at its start; empty when the last request's rules
    /// passed. Written only on failure, into this reused buffer.
    pub(crate) detail: String,
    pub(crate) detail_base: usize,
    /// The outcome of the last request or step, for conditions.
    pub(crate) last: Last,
    cond_bufs: CondBuffers,
    /// A script call's rendered arguments.
    script_args: Vec<Vec<u8>>,
}

/// Builds the template environment of a user from its disjoint fields.
macro_rules! env {
    ($sc:expr, $vars:expr, $rows:expr, $rng:expr, $global:expr, $iteration:expr, $clock:expr, $scratch:expr) => {
        Env {
            vars: $vars,
            feeders: &$sc.plan.feeders,
            rows: $rows,
            rng: $rng,
            user: $global,
            seat: $sc.seat,
            iteration: $iteration,
            seq: &$sc.seq,
            clock: $clock,
            scratch: $scratch,
        }
    };
}

/// How a request's bytes were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rendered {
    /// The bytes rendered once for the run (the loop sends them without copying).
    Fixed,
    /// Rendered into [`UserState::wire`].
    Wire,
}

/// What a request's credential needs before the request can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthStep {
    /// It is there: send the request.
    Ready,
    /// Make this token request first, then call [`UserState::token_fetched`].
    Fetch(usize),
    /// Another user of the core is fetching the shared token; the user is woken when it is done.
    Wait,
    /// It could not be made (a failure sample was logged): the request fails with this flow.
    Failed(Flow),
}

impl UserState {
    /// A user of a scenario, before it starts. Nothing is allocated until it does.
    pub fn new(sc: &CoreScenario) -> UserState {
        let plan = &sc.plan;
        UserState {
            vars: vec![Vec::new(); plan.variables.len()],
            rows: vec![u32::MAX; plan.feeders.len()],
            credentials: plan.auths.iter().map(|_| Credential::default()).collect(),
            ..UserState::default()
        }
    }

    /// Draws the user's first rows and sets its initial variables. `false` when a feeder has no row
    /// for it: the user does not start.
    pub fn start(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        kind: &UserKind,
    ) -> bool {
        if !self.draw_rows(sc, rng, global, kind, true) {
            return false;
        }
        // The task walk's stack, at its deepest, once.
        self.stack.reserve(kind.depth + 1);
        for (slot, template) in &kind.initial {
            let mut value = std::mem::take(&mut self.vars[usize::from(*slot)]);
            value.clear();
            {
                let mut env = env!(
                    sc,
                    &self.vars,
                    &self.rows,
                    rng,
                    global,
                    self.iteration,
                    clock,
                    &mut self.scratch
                );
                template.render(&mut value, &mut env);
            }
            self.vars[usize::from(*slot)] = value;
        }
        true
    }

    /// Draws rows for the next iteration (the first uses the rows drawn at start). `false` when a
    /// feeder is exhausted: the user stops.
    pub fn next_rows(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        global: u32,
        kind: &UserKind,
    ) -> bool {
        self.iteration == 0 || self.draw_rows(sc, rng, global, kind, false)
    }

    fn draw_rows(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        global: u32,
        kind: &UserKind,
        first: bool,
    ) -> bool {
        for &f in &kind.feeders {
            let feeder: &Arc<_> = &sc.plan.feeders[usize::from(f)];
            // A unique row is the user's for life.
            if !first && feeder.order == crate::profile::spec::FeederOrder::Unique {
                continue;
            }
            let at = Draw {
                seat: sc.seat,
                user: global,
            };
            match feeder.draw(&sc.cursors[usize::from(f)], at, rng) {
                Some(row) => self.rows[usize::from(f)] = row,
                None => return false,
            }
        }
        true
    }

    /// Renders request `r` (its credential must be ready).
    pub fn render(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        r: usize,
    ) -> Rendered {
        let cr = &sc.requests[r];
        if cr.wire.fixed(&self.jar).is_some() {
            return Rendered::Fixed;
        }
        let shared;
        let auth: Option<&[u8]> = match cr.wire.dynamic_auth() {
            None => None,
            Some(i) => match &sc.plan.auths[i] {
                AuthPlan::OAuth2 {
                    cache: TokenCache::PerCore,
                    ..
                } => {
                    shared = sc.tokens[i].credential.borrow();
                    Some(&shared.value)
                }
                _ => Some(&self.credentials[i].value),
            },
        };
        let mut env = env!(
            sc,
            &self.vars,
            &self.rows,
            rng,
            global,
            self.iteration,
            clock,
            &mut self.scratch
        );
        cr.wire.render(
            &mut self.wire,
            &mut self.body,
            &mut self.cookie_line,
            &self.jar,
            auth,
            &mut env,
        );
        Rendered::Wire
    }

    /// Whether condition `c` of the scenario holds for this user now.
    pub fn holds(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        c: usize,
    ) -> bool {
        let mut env = env!(
            sc,
            &self.vars,
            &self.rows,
            rng,
            global,
            self.iteration,
            clock,
            &mut self.scratch
        );
        sc.plan.conds[c].holds(&mut env, self.last, &mut self.cond_bufs)
    }

    /// Sets user variable `var` to `value`, rendered.
    pub fn set_var(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        var: u16,
        value: &Template,
    ) {
        // Rendered aside first: the value may read the variable's old value.
        self.want.clear();
        {
            let mut env = env!(
                sc,
                &self.vars,
                &self.rows,
                rng,
                global,
                self.iteration,
                clock,
                &mut self.scratch
            );
            value.render(&mut self.want, &mut env);
        }
        let slot = &mut self.vars[usize::from(var)];
        slot.clear();
        slot.extend_from_slice(&self.want);
    }

    /// Calls script function `func` for this user (local index `local`) with `args` rendered, and
    /// sets variable `into` to its result. `Err` is the script's message.
    #[allow(clippy::too_many_arguments)]
    pub fn call_script(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        local: u32,
        func: usize,
        args: &[Template],
        into: Option<u16>,
    ) -> Result<(), String> {
        let host = match &sc.script {
            Some(Ok(host)) => host,
            Some(Err(why)) => return Err(why.clone()),
            None => return Err("the profile has no script".into()),
        };
        self.script_args.resize_with(args.len(), Vec::new);
        {
            let mut env = env!(
                sc,
                &self.vars,
                &self.rows,
                rng,
                global,
                self.iteration,
                clock,
                &mut self.scratch
            );
            for (out, t) in self.script_args.iter_mut().zip(args) {
                out.clear();
                t.render(out, &mut env);
            }
        }
        host.borrow_mut()
            .call(func, local as usize, &self.script_args, &mut self.want)?;
        if let Some(var) = into {
            let slot = &mut self.vars[usize::from(var)];
            slot.clear();
            slot.extend_from_slice(&self.want);
        }
        Ok(())
    }

    /// Renders step `s`'s payload into `step_out` (and a custom step's arguments into `step_args`).
    pub fn render_step(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        s: usize,
    ) {
        let mut env = env!(
            sc,
            &self.vars,
            &self.rows,
            rng,
            global,
            self.iteration,
            clock,
            &mut self.scratch
        );
        self.step_out.clear();
        match &sc.plan.steps[s].kind {
            StepKind::Tcp {
                send: Some(send), ..
            }
            | StepKind::Udp { send, .. }
            | StepKind::WebSocket {
                send: Some(send), ..
            } => send.render(&mut self.step_out, &mut env),
            StepKind::Tcp { send: None, .. } | StepKind::WebSocket { send: None, .. } => {}
            StepKind::Custom { args, .. } => {
                self.step_args.resize_with(args.len(), Vec::new);
                for (out, t) in self.step_args.iter_mut().zip(args) {
                    out.clear();
                    t.render(out, &mut env);
                }
            }
        }
    }

    /// Makes sure auth plan `i`'s credential is there for request `r` of user `local`, minting a JWT
    /// on the spot, or saying which token request to make or that the user must wait for another's.
    #[allow(clippy::too_many_arguments)]
    pub fn ensure_auth(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        rec: &mut Recorder,
        local: u32,
        global: u32,
        r: usize,
        i: usize,
        ready_us: u64,
        mark: TaskMark,
    ) -> AuthStep {
        let now = clock.now_us();
        match &sc.plan.auths[i] {
            AuthPlan::Jwt {
                algorithm,
                key,
                claims,
                ttl,
            } => {
                if !self.credentials[i].stale(now) {
                    return AuthStep::Ready;
                }
                let unix_secs =
                    u64::try_from(clock.wall_ns / 1_000_000_000).unwrap_or(0) + now / 1_000_000;
                let mut value = std::mem::take(&mut self.credentials[i].value);
                let minted = {
                    let mut env = env!(
                        sc,
                        &self.vars,
                        &self.rows,
                        rng,
                        global,
                        self.iteration,
                        clock,
                        &mut self.scratch
                    );
                    auth::mint_jwt(
                        *algorithm, key, claims, *ttl, unix_secs, &mut env, &mut value,
                    )
                };
                self.credentials[i].value = value;
                match minted {
                    Ok(()) => {
                        self.credentials[i].renew_at_us = match ttl {
                            Some(t) => auth::renew_at(now, *t, *t / 10),
                            None => u64::MAX,
                        };
                        AuthStep::Ready
                    }
                    Err(e) => {
                        self.credentials[i].value.clear();
                        local_failure(sc, rec, now, local, global, mark, r, ready_us, &e.0);
                        // Nothing went out: the pause keeps a user whose claims never render from
                        // spinning the core.
                        AuthStep::Failed(Flow::EndIteration(CONNECT_FAILURE_PAUSE))
                    }
                }
            }
            AuthPlan::OAuth2 {
                request,
                cache,
                expires_var,
                ..
            } => {
                let fetch = |user: &mut UserState| {
                    user.vars[usize::from(*expires_var)].clear();
                    AuthStep::Fetch(*request)
                };
                match cache {
                    TokenCache::PerUser if self.credentials[i].stale(now) => fetch(self),
                    TokenCache::PerUser => AuthStep::Ready,
                    TokenCache::PerCore => {
                        let shared = &sc.tokens[i];
                        if !shared.credential.borrow().stale(now) {
                            AuthStep::Ready
                        } else if shared.fetching.get() {
                            shared.wait_for_fetch(local);
                            AuthStep::Wait
                        } else {
                            shared.fetching.set(true);
                            fetch(self)
                        }
                    }
                }
            }
        }
    }

    /// The token request of auth plan `i` ended with `flow`: on success the credential is taken from
    /// the variables its extractions set. Users waiting for a per-core token go into `wake`. Returns
    /// the flow of the request that needed the token.
    pub fn token_fetched(
        &mut self,
        sc: &CoreScenario,
        clock: &Clock,
        i: usize,
        flow: Flow,
        wake: &mut Vec<u32>,
    ) -> Flow {
        let AuthPlan::OAuth2 {
            cache,
            refresh_before,
            token_var,
            expires_var,
            ..
        } = &sc.plan.auths[i]
        else {
            return flow;
        };
        let credential = (flow == Flow::Continue).then(|| {
            let lifetime = std::str::from_utf8(&self.vars[usize::from(*expires_var)])
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map_or(auth::DEFAULT_TOKEN_LIFETIME, Duration::from_secs_f64);
            let mut value = b"Bearer ".to_vec();
            value.extend_from_slice(&self.vars[usize::from(*token_var)]);
            Credential {
                value,
                renew_at_us: auth::renew_at(clock.now_us(), lifetime, *refresh_before),
            }
        });
        match cache {
            TokenCache::PerUser => {
                if let Some(c) = credential {
                    self.credentials[i] = c;
                }
            }
            TokenCache::PerCore => {
                let shared = &sc.tokens[i];
                if let Some(c) = credential {
                    *shared.credential.borrow_mut() = c;
                }
                shared.finish_fetch(wake);
            }
        }
        flow
    }

    /// Applies request `r`'s rules to its complete response (`status`, and what was `kept`), which
    /// ended `latency_us` after it was sent: cookies, the expected statuses, extractions, checks.
    /// Returns the sample's outcome, its interned message if a rule failed, and what the user does
    /// next; a failed check also leaves its message with what it saw in [`UserState::detail`]. With
    /// `trace` (`engine try`), every rule is evaluated and described there; the outcome is the
    /// same as without it.
    #[allow(clippy::too_many_arguments)]
    pub fn on_response(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        r: usize,
        rendered: Rendered,
        status: u16,
        kept: Option<KeptResponse<'_>>,
        latency_us: u64,
        trace: Option<&mut RuleTrace>,
    ) -> (Outcome, Option<MessageId>, Flow) {
        let rp = &sc.plan.requests[r];
        let cr = &sc.requests[r];
        let UserState {
            vars,
            rows,
            jar,
            iteration,
            wire,
            scratch,
            want,
            decoded,
            detail,
            detail_base,
            last,
            ..
        } = self;
        detail.clear();
        // Failed until every rule below has passed.
        *last = Last { status, ok: false };
        let resp = Response::new(status, kept, decoded);
        if let Some(trace) = trace {
            let failed = (detail, detail_base);
            let out = traced(
                sc, rp, cr, &resp, vars, rows, rng, clock, global, *iteration, scratch, want,
                latency_us, trace, failed,
            );
            last.ok = out.0 == Outcome::Ok;
            return out;
        }
        if rp.cookies && resp.sets_cookies {
            let bytes: &[u8] = match rendered {
                Rendered::Fixed => cr.wire.fixed_bytes().unwrap_or_default(),
                Rendered::Wire => wire,
            };
            let path = request_path(bytes);
            for (name, value) in resp.headers() {
                if name.eq_ignore_ascii_case(b"set-cookie") {
                    jar.store(value, path, sc.this_year);
                }
            }
        }
        if !rp.expect.contains(status) {
            // Later requests would use values this one did not provide.
            let flow = if rp.extract.iter().any(|e| !e.optional) {
                Flow::EndIteration(Duration::ZERO)
            } else {
                Flow::Continue
            };
            return (Outcome::Status, None, flow);
        }
        let mut json = BodyJson::new(&rp.json, resp.body, &sc.json_hits);
        for (i, e) in rp.extract.iter().enumerate() {
            if let Err(missing) = e.apply(&resp, vars, &sc.regex_locs, rng, &mut json)
                && !e.optional
            {
                return (
                    Outcome::Check,
                    Some(cr.extract_messages[i][missing as usize]),
                    Flow::EndIteration(Duration::ZERO),
                );
            }
        }
        if !rp.checks.is_empty() {
            let mut env = env!(sc, vars, rows, rng, global, *iteration, clock, scratch);
            for (i, c) in rp.checks.iter().enumerate() {
                if !c.passes(&resp, latency_us, &mut env, want, &mut json) {
                    describe_failure(c, &resp, latency_us, sc, detail, detail_base);
                    return (Outcome::Check, Some(cr.check_messages[i]), Flow::Continue);
                }
            }
        }
        last.ok = true;
        (Outcome::Ok, None, Flow::Continue)
    }
}

/// Writes a failed check's message with what it saw into `detail`, known secrets replaced.
// Cold and out of line, like `traced`: the checks' code stays inlined into `on_response`.
#[cold]
#[inline(never)]
fn describe_failure(
    c: &super::rules::Check,
    resp: &Response<'_>,
    latency_us: u64,
    sc: &CoreScenario,
    detail: &mut String,
    detail_base: &mut usize,
) {
    detail.clear();
    detail.push_str(&c.message);
    *detail_base = detail.len();
    detail.push_str(": ");
    c.describe_got(resp, latency_us, detail);
    sc.redact(detail);
}

/// [`UserState::on_response`] past the cookies, for a trace: the same rules in the same order with
/// the same outcome, but every rule is evaluated and described.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn traced(
    sc: &CoreScenario,
    rp: &super::RequestPlan,
    cr: &super::exec::CoreRequest,
    resp: &Response<'_>,
    vars: &mut [Vec<u8>],
    rows: &[u32],
    rng: &mut Rng,
    clock: &Clock,
    global: u32,
    iteration: u64,
    scratch: &mut Vec<u8>,
    want: &mut Vec<u8>,
    latency_us: u64,
    trace: &mut RuleTrace,
    (detail, detail_base): (&mut String, &mut usize),
) -> (Outcome, Option<MessageId>, Flow) {
    trace.lines.clear();
    let mut result = (Outcome::Ok, None, Flow::Continue);
    let mut ended = false;
    let mut json = BodyJson::new(&rp.json, resp.body, &sc.json_hits);
    if !rp.expect.contains(resp.status) {
        let flow = if rp.extract.iter().any(|e| !e.optional) {
            Flow::EndIteration(Duration::ZERO)
        } else {
            Flow::Continue
        };
        result = (Outcome::Status, None, flow);
        ended = true;
    }
    for (i, e) in rp.extract.iter().enumerate() {
        let name = sc.plan.variables.get(usize::from(e.var));
        let mut line = RuleLine {
            check: false,
            label: e.label().to_owned(),
            passed: None,
            detail: String::new(),
        };
        if !ended {
            match e.apply(resp, vars, &sc.regex_locs, rng, &mut json) {
                Ok(()) => {
                    line.passed = Some(true);
                    let hidden = name.is_some_and(|n| super::vars::looks_secret(n));
                    super::rules::quote(&vars[usize::from(e.var)], hidden, &mut line.detail);
                }
                Err(missing) => {
                    line.passed = Some(false);
                    line.detail = e.messages[missing as usize]
                        .rsplit_once(": ")
                        .map_or_else(String::new, |(_, why)| why.to_owned());
                    if e.optional {
                        line.detail
                            .push_str(" (optional: the variable keeps its value)");
                    } else {
                        result = (
                            Outcome::Check,
                            Some(cr.extract_messages[i][missing as usize]),
                            Flow::EndIteration(Duration::ZERO),
                        );
                        ended = true;
                    }
                }
            }
        }
        sc.redact(&mut line.detail);
        trace.lines.push(line);
    }
    let mut env = Env {
        vars,
        feeders: &sc.plan.feeders,
        rows,
        rng,
        user: global,
        seat: sc.seat,
        iteration,
        seq: &sc.seq,
        clock,
        scratch,
    };
    for (i, c) in rp.checks.iter().enumerate() {
        let mut line = RuleLine {
            check: true,
            label: c.label().to_owned(),
            passed: None,
            detail: String::new(),
        };
        if !ended {
            let passed = c.passes(resp, latency_us, &mut env, want, &mut json);
            line.passed = Some(passed);
            c.describe_got(resp, latency_us, &mut line.detail);
            sc.redact(&mut line.detail);
            if !passed && result.0 == Outcome::Ok {
                describe_failure(c, resp, latency_us, sc, detail, detail_base);
                result = (Outcome::Check, Some(cr.check_messages[i]), Flow::Continue);
            }
        }
        trace.lines.push(line);
    }
    result
}

/// What a user does after a request or step failed at the transport level: the rest of the task
/// depends on it having worked, and a failed connect pauses the user so that a refused port cannot
/// spin the core.
pub(crate) fn failure_flow(outcome: Outcome) -> Flow {
    match outcome {
        Outcome::ConnectError | Outcome::ConnectTimeout | Outcome::LocalResource => {
            Flow::EndIteration(CONNECT_FAILURE_PAUSE)
        }
        _ => Flow::EndIteration(Duration::ZERO),
    }
}

/// Logs a failure that happened before request `r` could be sent (a JWT that cannot be minted).
#[allow(clippy::too_many_arguments)]
fn local_failure(
    sc: &CoreScenario,
    rec: &mut Recorder,
    now: u64,
    local: u32,
    global: u32,
    mark: TaskMark,
    r: usize,
    ready_us: u64,
    why: &str,
) {
    rec.begin(
        local as usize,
        InFlight {
            name: sc.requests[r].name,
            intended_us: ready_us.min(now),
            actual_us: now,
            user: global,
            mark,
        },
    );
    rec.finish(
        local as usize,
        &Exchange::default(),
        Outcome::Other,
        Message::Text(why),
        now,
        false,
        false,
    );
}

/// The path of a rendered request (between the method and ` HTTP/1.1`).
pub(crate) fn request_path(request: &[u8]) -> &[u8] {
    let mut parts = request.splitn(3, |&b| b == b' ');
    parts.next();
    parts.next().unwrap_or(b"/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths() {
        assert_eq!(request_path(b"GET /a/b?c HTTP/1.1\r\n"), b"/a/b?c");
        assert_eq!(request_path(b"garbage"), b"/");
    }
}
