//! Running a user's requests: render, send, keep what the rules need, take cookies, extract, check,
//! log one sample. Task trees are walked with an explicit stack owned by the user (no recursion, no
//! boxed futures), so a user in steady state allocates nothing.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::{MessageId, NameId, Outcome};
use regex::bytes::CaptureLocations;

use super::auth::{self, AuthPlan, Credential, SharedToken};
use super::cookies::{self, CookieJar};
use super::feeder::{Cursor, Draw};
use super::response::Response;
use super::rules::Source;
use super::template::Env;
use super::wire::Wire;
use super::{Node, Scenario, UserKind};
use crate::clock::micros;
use crate::core::{CoreCtx, InFlight, Message};
use crate::http::{Connection, Exchange, Failure, Keep, RequestRef};
use crate::plan::{UserPlan, Wait};
use crate::profile::spec::{Method, TokenCache};
use crate::schedule;

/// After a failed connect a user pauses this long before its next attempt, so that a refused port
/// cannot spin a core at 100 % (a refused loopback connect can fail without ever yielding).
pub(crate) const CONNECT_FAILURE_PAUSE: Duration = Duration::from_millis(1);

/// Interns names and messages in a core's log.
pub(crate) trait Interner {
    fn name(&mut self, name: &str) -> NameId;
    fn message(&mut self, message: &str) -> MessageId;
}

/// A request as one core runs it.
#[derive(Debug)]
pub(crate) struct CoreRequest {
    pub name: NameId,
    /// A HEAD request (its response has no body).
    pub head: bool,
    pub keep: Keep,
    pub wire: Wire,
    /// Per extraction: "not found" and "not JSON".
    pub extract_messages: Vec<[MessageId; 2]>,
    pub check_messages: Vec<MessageId>,
}

/// A core's scenario state: its own copy of the compiled scenario, and its feeder cursors, counters
/// and shared tokens. Single-threaded.
#[derive(Debug)]
pub(crate) struct CoreScenario {
    pub plan: Scenario,
    pub requests: Vec<CoreRequest>,
    /// Each step's interned name.
    pub step_names: Vec<NameId>,
    pub(crate) cursors: Vec<Cursor>,
    pub(crate) seq: Cell<u64>,
    /// Per auth plan; used by per-core OAuth2 tokens.
    pub(crate) tokens: Vec<SharedToken>,
    pub(crate) regex_locs: Vec<RefCell<CaptureLocations>>,
    pub(crate) core: u32,
    pub(crate) cores: u32,
    pub(crate) this_year: u32,
}

impl CoreScenario {
    /// This core's copy of `plan`, with names and messages interned in its log.
    pub fn new(
        plan: &Scenario,
        wires: &[Wire],
        core: u32,
        cores: u32,
        wall_secs: u64,
        interner: &mut dyn Interner,
    ) -> CoreScenario {
        let plan = plan.clone();
        let mut locs: Vec<Option<RefCell<CaptureLocations>>> = Vec::new();
        let requests = plan
            .requests
            .iter()
            .zip(wires)
            .map(|(r, wire)| {
                let mut keep = Keep {
                    cookies: r.cookies,
                    ..Keep::default()
                };
                for k in r
                    .extract
                    .iter()
                    .map(|e| e.keep())
                    .chain(r.checks.iter().map(|c| c.keep()))
                {
                    keep.head |= k.head;
                    keep.body |= k.body;
                }
                for e in &r.extract {
                    if let Source::Regex(re, slot) = &e.source {
                        let slot = usize::from(*slot);
                        if locs.len() <= slot {
                            locs.resize_with(slot + 1, || None);
                        }
                        locs[slot] = Some(RefCell::new(re.capture_locations()));
                    }
                }
                CoreRequest {
                    name: interner.name(&r.name),
                    head: r.method == Method::HEAD,
                    keep,
                    wire: wire.clone(),
                    extract_messages: r
                        .extract
                        .iter()
                        .map(|e| {
                            [
                                interner.message(&e.messages[0]),
                                interner.message(&e.messages[1]),
                            ]
                        })
                        .collect(),
                    check_messages: r
                        .checks
                        .iter()
                        .map(|c| interner.message(&c.message))
                        .collect(),
                }
            })
            .collect();
        let step_names = plan.steps.iter().map(|s| interner.name(&s.name)).collect();
        CoreScenario {
            step_names,
            cursors: plan.feeders.iter().map(|_| Cursor::default()).collect(),
            tokens: plan.auths.iter().map(|_| SharedToken::default()).collect(),
            regex_locs: locs
                .into_iter()
                .map(|l| l.expect("every extraction regex has its slot"))
                .collect(),
            requests,
            plan,
            seq: Cell::new(0),
            core,
            cores: cores.max(1),
            this_year: cookies::current_year(wall_secs),
        }
    }

    /// A kind of user.
    pub fn kind(&self, kind: usize) -> &UserKind {
        &self.plan.kinds[kind]
    }
}

/// One level of a user's walk through a task tree.
#[derive(Debug, Clone, Copy)]
struct Frame {
    node: usize,
    /// The next child of a sequence, or whether a picked group has picked (1).
    next: usize,
    /// Repeats left, this one included.
    left: u32,
}

/// A user's state: connection, variables, rows, cookies, credentials, and reused buffers.
#[derive(Debug)]
pub(crate) struct UserState {
    pub conn: Connection,
    /// Connections of other protocols, one per channel of the scenario.
    pub(crate) channels: Vec<super::steps::ChannelConn>,
    /// Buffers for steps: bytes to send, bytes received, rendered arguments.
    pub(crate) step_out: Vec<u8>,
    pub(crate) step_in: Vec<u8>,
    pub(crate) step_args: Vec<Vec<u8>>,
    pub(crate) vars: Vec<Vec<u8>>,
    /// The current row of each feeder (`u32::MAX`: none).
    pub(crate) rows: Vec<u32>,
    jar: CookieJar,
    /// Iterations completed.
    pub iteration: u64,
    credentials: Vec<Credential>,
    stack: Vec<Frame>,
    wire: Vec<u8>,
    body: Vec<u8>,
    cookie_line: Vec<u8>,
    pub(crate) scratch: Vec<u8>,
    want: Vec<u8>,
    decoded: Vec<u8>,
}

/// What the user does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on.
    Continue,
    /// Abandon the rest of this iteration (a request failed, or a value it needed is missing), and
    /// pause at least this long.
    EndIteration(Duration),
    /// The core is stopping.
    Stop,
    /// The run ends before the user's next step is due.
    RunOver,
}

impl UserState {
    /// A user of `kind`, before it starts.
    pub fn new(ctx: &CoreCtx, kind: &UserKind) -> UserState {
        let plan = &ctx.scenario.plan;
        UserState {
            conn: Connection::default(),
            channels: plan
                .channels
                .iter()
                .map(|_| super::steps::ChannelConn::Closed)
                .collect(),
            step_out: Vec::new(),
            step_in: Vec::new(),
            step_args: Vec::new(),
            vars: vec![Vec::new(); plan.variables.len()],
            rows: vec![u32::MAX; plan.feeders.len()],
            jar: CookieJar::default(),
            iteration: 0,
            credentials: plan.auths.iter().map(|_| Credential::default()).collect(),
            stack: Vec::with_capacity(kind.depth + 1),
            wire: Vec::new(),
            body: Vec::new(),
            cookie_line: Vec::new(),
            scratch: Vec::new(),
            want: Vec::new(),
            decoded: Vec::new(),
        }
    }

    /// Draws the user's first rows and sets its initial variables. `false` when a feeder has no row
    /// for it: the user does not start.
    pub fn start(&mut self, ctx: &CoreCtx, plan: &UserPlan, kind: &UserKind) -> bool {
        if !self.draw_rows(ctx, plan, kind, true) {
            return false;
        }
        let sc = &ctx.scenario;
        for (slot, template) in &kind.initial {
            let mut value = std::mem::take(&mut self.vars[usize::from(*slot)]);
            value.clear();
            {
                let mut rng = ctx.rng.borrow_mut();
                let mut env = Env {
                    vars: &self.vars,
                    feeders: &sc.plan.feeders,
                    rows: &self.rows,
                    rng: &mut rng,
                    user: plan.global,
                    core: sc.core,
                    iteration: self.iteration,
                    seq: &sc.seq,
                    seq_stride: u64::from(sc.cores),
                    clock: &ctx.clock,
                    scratch: &mut self.scratch,
                };
                template.render(&mut value, &mut env);
            }
            self.vars[usize::from(*slot)] = value;
        }
        true
    }

    /// Draws rows for the next iteration (the first uses the rows drawn at start). `false` when a
    /// feeder is exhausted: the user stops.
    pub fn next_rows(&mut self, ctx: &CoreCtx, plan: &UserPlan, kind: &UserKind) -> bool {
        self.iteration == 0 || self.draw_rows(ctx, plan, kind, false)
    }

    fn draw_rows(&mut self, ctx: &CoreCtx, plan: &UserPlan, kind: &UserKind, first: bool) -> bool {
        let sc = &ctx.scenario;
        for &f in &kind.feeders {
            let feeder: &Arc<_> = &sc.plan.feeders[usize::from(f)];
            // A unique row is the user's for life.
            if !first && feeder.order == crate::profile::spec::FeederOrder::Unique {
                continue;
            }
            let at = Draw {
                core: sc.core,
                cores: sc.cores,
                user: plan.global,
            };
            match feeder.draw(&sc.cursors[usize::from(f)], at, &mut ctx.rng.borrow_mut()) {
                Some(row) => self.rows[usize::from(f)] = row,
                None => return false,
            }
        }
        true
    }
}

/// Runs `requests` in order (on_start, on_stop). `while_stopping` lets them run after the core
/// started stopping (on_stop at the planned end).
pub(crate) async fn requests(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    requests: &[usize],
    ready_us: &mut u64,
    while_stopping: bool,
) -> Flow {
    for &r in requests {
        if ctx.stopping.get() && !while_stopping {
            return Flow::Stop;
        }
        let flow = request(ctx, local, plan, user, r, ready_us).await;
        if flow != Flow::Continue {
            return flow;
        }
    }
    Flow::Continue
}

/// Runs the task tree at `root`.
pub(crate) async fn task(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    root: usize,
    ready_us: &mut u64,
) -> Flow {
    let nodes = &ctx.scenario.plan.nodes;
    let repeat = |n: usize| match &nodes[n] {
        Node::Group { repeat, .. } => *repeat,
        Node::Request(_) | Node::Step(_) => 1,
    };
    user.stack.clear();
    user.stack.push(Frame {
        node: root,
        next: 0,
        left: repeat(root),
    });
    while let Some(&top) = user.stack.last() {
        match &nodes[top.node] {
            Node::Request(r) => {
                user.stack.pop();
                if ctx.stopping.get() {
                    return Flow::Stop;
                }
                let flow = request(ctx, local, plan, user, *r, ready_us).await;
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Node::Step(s) => {
                user.stack.pop();
                if ctx.stopping.get() {
                    return Flow::Stop;
                }
                let flow = super::steps::step(ctx, local, plan, user, *s, ready_us).await;
                if flow != Flow::Continue {
                    return flow;
                }
            }
            Node::Group {
                children,
                pick,
                total_weight,
                wait,
                ..
            } => {
                let child = if *pick {
                    (top.next == 0).then(|| {
                        let r = ctx.rng.borrow_mut().below(*total_weight);
                        children[schedule::pick_weighted(children.iter().map(|c| c.0), r)].1
                    })
                } else {
                    children.get(top.next).map(|c| c.1)
                };
                let frame = user.stack.last_mut().expect("the top frame exists");
                let pause = match child {
                    Some(c) => {
                        frame.next += 1;
                        user.stack.push(Frame {
                            node: c,
                            next: 0,
                            left: repeat(c),
                        });
                        // Think between the children of a sequence, not before the first.
                        !*pick && top.next > 0
                    }
                    None if top.left > 1 => {
                        frame.left -= 1;
                        frame.next = 0;
                        true
                    }
                    None => {
                        user.stack.pop();
                        false
                    }
                };
                if pause && let Err(flow) = think(ctx, *wait, ready_us).await {
                    return flow;
                }
            }
        }
    }
    Flow::Continue
}

/// Think time inside a task; `Err` when the run ends first.
async fn think(ctx: &CoreCtx, wait: Wait, ready_us: &mut u64) -> Result<(), Flow> {
    let d = schedule::think(wait, ctx.rng.borrow_mut().unit());
    if d.is_zero() {
        return Ok(());
    }
    *ready_us = ready_us.saturating_add(micros(d));
    if *ready_us >= ctx.end_us {
        return Err(Flow::RunOver);
    }
    sleep_until(ctx, *ready_us, 0).await;
    Ok(())
}

/// Sleeps until `ready_us` (less the timer slack, but not before `floor_us`).
pub(crate) async fn sleep_until(ctx: &CoreCtx, ready_us: u64, floor_us: u64) {
    let wake = ready_us
        .saturating_sub(micros(crate::users::TIMER_SLACK))
        .max(floor_us);
    if wake > ctx.clock.now_us() {
        monoio::time::sleep_until(ctx.clock.at_us(wake).into()).await;
    }
}

/// Makes request `r`: its auth first if it needs one made, then the exchange.
pub(crate) async fn request(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    r: usize,
    ready_us: &mut u64,
) -> Flow {
    if let Some(i) = ctx.scenario.requests[r].wire.dynamic_auth()
        && let Err(flow) = ensure_auth(ctx, local, plan, user, r, i, ready_us).await
    {
        return flow;
    }
    exchange(ctx, local, plan, user, r, ready_us).await
}

/// Mints or fetches the credential of auth plan `i` if it is missing or due for renewal.
async fn ensure_auth(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    r: usize,
    i: usize,
    ready_us: &mut u64,
) -> Result<(), Flow> {
    let sc = &ctx.scenario;
    match &sc.plan.auths[i] {
        AuthPlan::Jwt {
            algorithm,
            key,
            claims,
            ttl,
        } => {
            let now = ctx.clock.now_us();
            if !user.credentials[i].stale(now) {
                return Ok(());
            }
            let unix_secs =
                u64::try_from(ctx.clock.wall_ns / 1_000_000_000).unwrap_or(0) + now / 1_000_000;
            let minted = {
                let mut value = std::mem::take(&mut user.credentials[i].value);
                let mut rng = ctx.rng.borrow_mut();
                let mut env = Env {
                    vars: &user.vars,
                    feeders: &sc.plan.feeders,
                    rows: &user.rows,
                    rng: &mut rng,
                    user: plan.global,
                    core: sc.core,
                    iteration: user.iteration,
                    seq: &sc.seq,
                    seq_stride: u64::from(sc.cores),
                    clock: &ctx.clock,
                    scratch: &mut user.scratch,
                };
                let result = auth::mint_jwt(
                    *algorithm, key, claims, *ttl, unix_secs, &mut env, &mut value,
                );
                user.credentials[i].value = value;
                result
            };
            match minted {
                Ok(()) => {
                    user.credentials[i].renew_at_us = match ttl {
                        Some(t) => auth::renew_at(now, *t, *t / 10),
                        None => u64::MAX,
                    };
                    Ok(())
                }
                Err(e) => {
                    user.credentials[i].value.clear();
                    local_failure(ctx, local, plan, r, *ready_us, &e.0);
                    // Nothing was awaited: the pause makes the user yield instead of spinning.
                    Err(Flow::EndIteration(CONNECT_FAILURE_PAUSE))
                }
            }
        }
        AuthPlan::OAuth2 {
            request,
            cache,
            refresh_before,
            token_var,
            expires_var,
        } => {
            let fetch =
                async |user: &mut UserState, ready_us: &mut u64| -> Result<Credential, Flow> {
                    user.vars[usize::from(*expires_var)].clear();
                    // Boxed: a token fetch is rare, and a second exchange held inline would make every
                    // user's future (its memory while idle) that much larger.
                    let flow = Box::pin(exchange(ctx, local, plan, user, *request, ready_us)).await;
                    if flow != Flow::Continue {
                        return Err(flow);
                    }
                    let lifetime = std::str::from_utf8(&user.vars[usize::from(*expires_var)])
                        .ok()
                        .and_then(|t| t.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map_or(auth::DEFAULT_TOKEN_LIFETIME, Duration::from_secs_f64);
                    let mut value = b"Bearer ".to_vec();
                    value.extend_from_slice(&user.vars[usize::from(*token_var)]);
                    Ok(Credential {
                        value,
                        renew_at_us: auth::renew_at(ctx.clock.now_us(), lifetime, *refresh_before),
                    })
                };
            match cache {
                TokenCache::PerUser => {
                    if user.credentials[i].stale(ctx.clock.now_us()) {
                        user.credentials[i] = fetch(user, ready_us).await?;
                    }
                    Ok(())
                }
                TokenCache::PerCore => {
                    let shared = &sc.tokens[i];
                    loop {
                        if !shared.credential.borrow().stale(ctx.clock.now_us()) {
                            return Ok(());
                        }
                        if shared.fetching.get() {
                            shared.until_idle().await;
                            continue;
                        }
                        shared.fetching.set(true);
                        let result = fetch(user, ready_us).await;
                        if let Ok(c) = &result {
                            *shared.credential.borrow_mut() = Credential {
                                value: c.value.clone(),
                                renew_at_us: c.renew_at_us,
                            };
                        }
                        shared.done();
                        return result.map(|_| ());
                    }
                }
            }
        }
    }
}

/// Logs a failure that happened before request `r` could be sent (a JWT that cannot be minted).
fn local_failure(ctx: &CoreCtx, local: usize, plan: &UserPlan, r: usize, ready_us: u64, why: &str) {
    let now = ctx.clock.now_us();
    let mut rec = ctx.rec.borrow_mut();
    rec.begin(
        local,
        InFlight {
            name: ctx.scenario.requests[r].name,
            intended_us: ready_us.min(now),
            actual_us: now,
            user: plan.global,
            deadline_us: u64::MAX,
        },
    );
    rec.finish(
        local,
        &Exchange::default(),
        Outcome::Other,
        Message::Text(why),
        now,
        false,
        false,
    );
}

/// Sends request `r`, reads the answer, applies cookies, extraction and checks, and logs the sample.
async fn exchange(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    r: usize,
    ready_us: &mut u64,
) -> Flow {
    let sc = &ctx.scenario;
    let rp = &sc.plan.requests[r];
    let cr = &sc.requests[r];
    let UserState {
        conn,
        vars,
        rows,
        jar,
        iteration,
        credentials,
        wire,
        body,
        cookie_line,
        scratch,
        want,
        decoded,
        ..
    } = user;
    let bytes: &[u8] = match cr.wire.fixed(jar) {
        Some(fixed) => fixed,
        None => {
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
                    _ => Some(&credentials[i].value),
                },
            };
            let mut rng = ctx.rng.borrow_mut();
            let mut env = Env {
                vars,
                feeders: &sc.plan.feeders,
                rows,
                rng: &mut rng,
                user: plan.global,
                core: sc.core,
                iteration: *iteration,
                seq: &sc.seq,
                seq_stride: u64::from(sc.cores),
                clock: &ctx.clock,
                scratch,
            };
            cr.wire.render(wire, body, cookie_line, jar, auth, &mut env);
            wire
        }
    };
    let start = Instant::now();
    let actual_us = ctx.clock.us_at(start);
    let was_open = conn.is_open();
    ctx.rec.borrow_mut().begin(
        local,
        InFlight {
            name: cr.name,
            // A timer that fired early (see TIMER_SLACK) starts the request early; the user was
            // ready then, so that is its intended start.
            intended_us: (*ready_us).min(actual_us),
            actual_us,
            user: plan.global,
            deadline_us: actual_us.saturating_add(micros(ctx.limits.request_timeout)),
        },
    );
    let request = RequestRef {
        bytes,
        head: cr.head,
        keep: cr.keep,
    };
    let finished = {
        let exchange = std::pin::pin!(conn.exchange(
            ctx.next_addr(),
            ctx.tls.as_ref(),
            request,
            ctx.limits,
            start,
        ));
        crate::users::until_timed_out(&ctx.slots[local], exchange).await
    };
    let ex = match finished {
        Some(ex) => ex,
        None => {
            // The watchdog gave up on this request; the connection may be mid-response.
            let connecting = !conn.is_open();
            conn.abandon();
            let (outcome, message) = if connecting {
                (
                    Outcome::ConnectTimeout,
                    "connect timed out (request timeout)",
                )
            } else {
                (Outcome::Timeout, "request timed out")
            };
            Exchange {
                failure: Some(Failure::new(outcome, message)),
                ..Exchange::default()
            }
        }
    };
    let end_us = match (&ex.failure, ex.last_read_at) {
        (None, Some(at)) => ctx.clock.us_at(at),
        _ => ctx.clock.now_us(),
    };
    let mut flow = Flow::Continue;
    let mut outcome = Outcome::Ok;
    let mut message = Message::Default;
    match &ex.failure {
        Some(f) => {
            outcome = f.outcome;
            message = Message::Text(f.message.as_ref());
            let pause = if matches!(
                f.outcome,
                Outcome::ConnectError | Outcome::ConnectTimeout | Outcome::LocalResource
            ) {
                CONNECT_FAILURE_PAUSE
            } else {
                Duration::ZERO
            };
            // The rest of the task depends on this request having worked.
            flow = Flow::EndIteration(pause);
        }
        None => {
            let resp = Response::new(ex.status, conn.kept(), decoded);
            if rp.cookies && resp.sets_cookies {
                let path = request_path(bytes);
                for (name, value) in resp.headers() {
                    if name.eq_ignore_ascii_case(b"set-cookie") {
                        jar.store(value, path, sc.this_year);
                    }
                }
            }
            if !rp.expect.contains(ex.status) {
                outcome = Outcome::Status;
                // Later requests would use values this one did not provide.
                if rp.extract.iter().any(|e| !e.optional) {
                    flow = Flow::EndIteration(Duration::ZERO);
                }
            } else {
                for (i, e) in rp.extract.iter().enumerate() {
                    if let Err(missing) = e.apply(&resp, vars, &sc.regex_locs)
                        && !e.optional
                    {
                        outcome = Outcome::Check;
                        message = Message::Id(cr.extract_messages[i][missing as usize]);
                        flow = Flow::EndIteration(Duration::ZERO);
                        break;
                    }
                }
                if outcome == Outcome::Ok && !rp.checks.is_empty() {
                    let latency = end_us.saturating_sub(actual_us);
                    let mut rng = ctx.rng.borrow_mut();
                    let mut env = Env {
                        vars,
                        feeders: &sc.plan.feeders,
                        rows,
                        rng: &mut rng,
                        user: plan.global,
                        core: sc.core,
                        iteration: *iteration,
                        seq: &sc.seq,
                        seq_stride: u64::from(sc.cores),
                        clock: &ctx.clock,
                        scratch,
                    };
                    for (i, c) in rp.checks.iter().enumerate() {
                        if !c.passes(&resp, latency, &mut env, want) {
                            outcome = Outcome::Check;
                            message = Message::Id(cr.check_messages[i]);
                            break;
                        }
                    }
                }
            }
        }
    }
    ctx.rec.borrow_mut().finish(
        local,
        &ex,
        outcome,
        message,
        end_us,
        was_open,
        conn.is_open(),
    );
    *ready_us = end_us;
    flow
}

/// The path of a rendered request (between the method and ` HTTP/1.1`).
fn request_path(request: &[u8]) -> &[u8] {
    let mut parts = request.splitn(3, |&b| b == b' ');
    parts.next();
    parts.next().unwrap_or(b"/")
}

/// When the next iteration is due. `iteration_start_us` is when this one was due, `end_us` when it
/// ended, `unit` a random number in [0, 1), `pause` a floor after failures. `Pacing` keeps iteration
/// starts `interval` apart (an iteration that overran is followed at once); the others think after
/// the iteration's end.
pub(crate) fn next_ready(
    wait: Wait,
    iteration_start_us: u64,
    end_us: u64,
    unit: f64,
    pause: Duration,
) -> u64 {
    let floor = end_us.saturating_add(micros(pause));
    match wait {
        Wait::Pacing(interval) => iteration_start_us
            .saturating_add(micros(interval))
            .max(floor),
        other => end_us
            .saturating_add(micros(schedule::think(other, unit)))
            .max(floor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ready_table() {
        let ms = Duration::from_millis;
        let rows: &[(Wait, u64, u64, f64, Duration, u64)] = &[
            // No think time: at once.
            (Wait::None, 0, 5_000, 0.5, ms(0), 5_000),
            // Think after the end.
            (Wait::Constant(ms(100)), 0, 5_000, 0.5, ms(0), 105_000),
            (
                Wait::Between(ms(100), ms(300)),
                0,
                5_000,
                0.5,
                ms(0),
                205_000,
            ),
            // Pacing: 500 ms after the iteration's start, whatever it took.
            (
                Wait::Pacing(ms(500)),
                1_000_000,
                1_200_000,
                0.5,
                ms(0),
                1_500_000,
            ),
            // An iteration that overran its pacing interval: the next starts at once.
            (
                Wait::Pacing(ms(500)),
                1_000_000,
                1_700_000,
                0.5,
                ms(0),
                1_700_000,
            ),
            // A connect failure's pause is a floor.
            (Wait::None, 0, 5_000, 0.5, ms(1), 6_000),
            (Wait::Pacing(ms(500)), 0, 499_500, 0.5, ms(1), 500_500),
            // Saturates instead of overflowing.
            (Wait::Constant(ms(1)), 0, u64::MAX, 0.5, ms(0), u64::MAX),
        ];
        for (i, &(wait, start, end, unit, pause, want)) in rows.iter().enumerate() {
            assert_eq!(next_ready(wait, start, end, unit, pause), want, "row {i}");
        }
    }

    #[test]
    fn request_paths() {
        assert_eq!(request_path(b"GET /a/b?c HTTP/1.1\r\n"), b"/a/b?c");
        assert_eq!(request_path(b"garbage"), b"/");
    }
}
