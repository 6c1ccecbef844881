//! What one user of the core's loop knows, and what happens around each of its requests, with no I/O
//! and no executor: draw feeder rows and set initial variables, render a request into the user's
//! buffer, make or fetch its credential, and, once the response is read, take its cookies, extract
//! and check. The loop moves the bytes; [`super::program`] decides what comes next.
//!
//! Nothing here allocates in steady state: every buffer belongs to the user and is reused.
//!
//! This file holds the user's state and what renders from it (rows, initial variables, requests,
//! conditions, `Set`, script calls, steps); `credentials` makes or fetches a request's credential,
//! and `outcome` applies a response's rules and says what the user does after a failure.

use std::sync::Arc;

use super::auth::{AuthPlan, Credential};
use super::cookies::CookieJar;
use super::exec::{CoreScenario, Flow};
use super::feeder::Draw;
use super::flow::{CondBuffers, Last};
use super::template::Env;
use super::template::Template;
use super::{StepKind, UserKind};
use crate::clock::Clock;
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

// After `env!`, which they use.
mod credentials;
mod outcome;

pub(crate) use outcome::failure_flow;

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
}
