//! The loop's side of `engine try`: after an exchange has been logged, and only when the core has a
//! tracer, hand the exchange's bytes, rule results and timings to it. A normal run has no tracer and
//! never enters this file.

use formats::Outcome;

use super::backend::Backend;
use super::{Core, Flight};
use crate::debug::{Phases, Traced};
use crate::http::Failure;
use crate::scenario::response::Response;
use crate::scenario::user::Rendered;

impl Flight {
    fn phases(&self, t: u64) -> Phases {
        Phases {
            opened: self.connected,
            connect_us: self.connect_us,
            tls_us: self.tls_us,
            ttfb_us: self.ttfb_us,
            total_us: t.saturating_sub(self.actual_us),
        }
    }
}

impl<B: Backend> Core<B> {
    /// The bytes user `u`'s request went out as: the run's fixed bytes, or the user's rendering.
    fn request_bytes(&self, u: usize) -> &[u8] {
        let user = &self.users[u];
        let f = &user.flight;
        match f.step {
            Some(_) => &user.state.step_out,
            None => match f.rendered {
                Rendered::Fixed => self.sc.requests[f.r].wire.fixed_bytes().unwrap_or_default(),
                Rendered::Wire => &user.state.wire,
            },
        }
    }

    /// Where user `u`'s exchange went: `http`/`https` for a request, the step's endpoint otherwise.
    fn trace_scheme(&self, u: usize, c: u32) -> String {
        let channel = (c % self.per_user) as usize;
        match (self.users[u].flight.step, channel) {
            (None, _) | (_, 0) => if self.tls.is_some() { "https" } else { "http" }.to_owned(),
            (Some(_), ch) => {
                let e = &self.endpoints[ch - 1];
                format!("{}://{}:{}{}", e.scheme, e.host, e.port, e.path)
            }
        }
    }

    /// Traces user `u`'s request that ended with a complete response on `c` at `t`.
    pub(super) fn trace_response(&mut self, u: usize, c: u32, outcome: Outcome, t: u64) {
        let Some(tracer) = &self.trace else { return };
        let user = &self.users[u];
        let f = user.flight;
        let reader = &self.conns[c as usize].p.reader;
        let mut decoded = Vec::new();
        let kept = reader.kept();
        let head = kept.map(|k| k.head);
        let body = Response::new(reader.status, kept, &mut decoded).body;
        let message = match outcome {
            Outcome::Ok => None,
            Outcome::Status => Some(format!("unexpected status {}", reader.status)),
            _ if !user.state.detail.is_empty() => Some(user.state.detail.clone()),
            _ => tracer
                .rules
                .lines
                .iter()
                .find(|l| l.passed == Some(false) && !l.check)
                .map(|l| format!("{}: {}", l.label, l.detail)),
        };
        let scheme = self.trace_scheme(u, c);
        tracer.exchange(&Traced {
            kind: tracer.kind_name(usize::from(user.prog.kind)),
            user: user.prog.global,
            iteration: user.state.iteration,
            last_iteration: Some(tracer.opts.iterations),
            name: &self.sc.plan.requests[f.r].name,
            scheme: &scheme,
            step: false,
            request: self.request_bytes(u),
            response: head.map(|h| (h, body)),
            received: &[],
            status: reader.status,
            outcome,
            message: message.as_deref(),
            rules: &tracer.rules.lines,
            phases: f.phases(t),
        });
    }

    /// Traces user `u`'s step that ended on `c` at `t`.
    pub(super) fn trace_step(
        &mut self,
        u: usize,
        c: u32,
        outcome: Outcome,
        message: Option<&str>,
        t: u64,
    ) {
        let Some(tracer) = &self.trace else { return };
        let user = &self.users[u];
        let f = user.flight;
        let Some(s) = f.step else { return };
        let scheme = self.trace_scheme(u, c);
        tracer.exchange(&Traced {
            kind: tracer.kind_name(usize::from(user.prog.kind)),
            user: user.prog.global,
            iteration: user.state.iteration,
            last_iteration: Some(tracer.opts.iterations),
            name: &self.sc.plan.steps[s].name,
            scheme: &scheme,
            step: true,
            request: self.request_bytes(u),
            response: None,
            received: &self.conns[c as usize].p.step.input,
            status: f.status,
            outcome,
            message,
            rules: &[],
            phases: f.phases(t),
        });
    }

    /// Traces user `u`'s exchange that failed on `c` at `t` with `failure`.
    pub(super) fn trace_failure(
        &mut self,
        u: usize,
        c: u32,
        failure: &Failure,
        status: u16,
        t: u64,
    ) {
        let Some(tracer) = &self.trace else { return };
        let user = &self.users[u];
        let f = user.flight;
        let name = match f.step {
            Some(s) => &self.sc.plan.steps[s].name,
            None => &self.sc.plan.requests[f.r].name,
        };
        let scheme = self.trace_scheme(u, c);
        // A request that failed before it went out (a refused connect) still shows what it would
        // have sent.
        tracer.exchange(&Traced {
            kind: tracer.kind_name(usize::from(user.prog.kind)),
            user: user.prog.global,
            iteration: user.state.iteration,
            last_iteration: Some(tracer.opts.iterations),
            name,
            scheme: &scheme,
            step: f.step.is_some(),
            request: self.request_bytes(u),
            response: None,
            received: &[],
            status,
            outcome: failure.outcome,
            message: Some(failure.message.as_ref()),
            rules: &[],
            phases: f.phases(t),
        });
    }
}
