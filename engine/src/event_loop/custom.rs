//! Custom protocols' steps on the loop: each step runs as a task of the hosted executor
//! (`hosted.rs`), which owns the user's connection object while it runs and hands it back with the
//! step's result. The loop keeps the rules every protocol shares: the step's intended and actual
//! start, the connect and request timeouts (the watchdog drops a late task, and its connection with
//! it), extraction into the user's variables, and one sample.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::backend::Backend;
use super::conn::Link;
use super::hosted;
use super::{Core, GENERATION_MASK};
use crate::core::Message;
use crate::protocol::{Args, StepResult};
use crate::scenario::StepKind;
use crate::scenario::exec::Flow;
use crate::scenario::user::failure_flow;

/// A custom step's task, done.
pub(super) struct CustomDone {
    c: u32,
    generation: u32,
    result: StepResult,
    conn: Option<Box<dyn Any>>,
    values: Vec<Vec<u8>>,
    connect_us: u32,
}

/// Where finished custom steps wait for the loop.
pub(super) type Finished = Rc<RefCell<Vec<CustomDone>>>;

impl<B: Backend> Core<B> {
    /// Starts custom step `s` of user `u` on connection slot `c` as a task.
    pub(super) fn start_custom(&mut self, u: usize, c: u32, s: usize) {
        let StepKind::Custom { protocol, step, .. } = &self.sc.plan.steps[s].kind else {
            unreachable!("called for custom steps only");
        };
        let Some(hosted) = &self.hosted else {
            unreachable!("a core whose scenario has custom steps hosts an executor");
        };
        let protocol = Arc::clone(protocol);
        let step = Arc::clone(step);
        let names = Arc::clone(&self.custom_names[s]);
        let endpoint = Arc::clone(&self.endpoints[self.sc.plan.steps[s].channel]);
        let values = std::mem::take(&mut self.users[u].state.step_args);
        let conn = self.custom[c as usize].take();
        let slot = &mut self.conns[c as usize];
        if conn.is_none() {
            // A fresh connection: a new generation, so that a late result of an older one is ignored.
            slot.generation = (slot.generation + 1) & GENERATION_MASK;
        }
        slot.link = if conn.is_some() {
            Link::Open
        } else {
            Link::Connecting
        };
        let generation = slot.generation;
        let finished = Rc::clone(&self.finished);
        let clock = self.clock;
        let connect_timeout = self.limits.connect_timeout;
        let task = async move {
            let start = clock.now_us();
            let mut connect_us = 0;
            let mut conn = conn;
            if conn.is_none() {
                let opened = hosted::timeout(connect_timeout, protocol.connect(&endpoint)).await;
                let failure = match opened {
                    Some(Ok(c)) => {
                        conn = Some(c);
                        connect_us = clock.now_us().saturating_sub(start).max(1) as u32;
                        None
                    }
                    Some(Err(failure)) => Some(failure),
                    None => Some(StepResult::fail(
                        formats::Outcome::ConnectTimeout,
                        "connect timed out",
                    )),
                };
                if let Some(result) = failure {
                    finished.borrow_mut().push(CustomDone {
                        c,
                        generation,
                        result,
                        conn: None,
                        values,
                        connect_us: 0,
                    });
                    return;
                }
            }
            let result = match conn.as_deref_mut() {
                Some(live) => {
                    let args = Args {
                        names: &names,
                        values: &values,
                    };
                    protocol.execute(live, step.as_ref(), &args).await
                }
                None => unreachable!("connected above"),
            };
            finished.borrow_mut().push(CustomDone {
                c,
                generation,
                result,
                conn,
                values,
                connect_us,
            });
        };
        self.users[u].flight.task = Some(hosted.spawn(task));
    }

    /// Drops a custom step's task (and the connection it holds).
    pub(super) fn cancel_task(&mut self, task: usize) {
        if let Some(hosted) = &self.hosted {
            hosted.cancel(task);
        }
    }

    /// Runs the hosted executor if it has work, and ends the custom steps that finished.
    pub(super) fn turn_hosted(&mut self) {
        let Some(hosted) = &self.hosted else { return };
        if !(self.hosted_dirty || hosted.has_ready()) {
            return;
        }
        self.hosted_dirty = false;
        hosted.turn();
        if let Some(at) = hosted.next_deadline()
            && at != self.hosted_at
        {
            self.hosted_at = at;
            self.timers.push(at, super::timers::Owner::Hosted);
        }
        let t = self.clock.now_us();
        let done = std::mem::take(&mut *self.finished.borrow_mut());
        for d in done {
            self.end_custom(d, t);
        }
    }

    /// Ends a custom step with its task's result.
    fn end_custom(&mut self, d: CustomDone, t: u64) {
        let c = d.c;
        let u = self.owner(c);
        let f = self.users[u].flight;
        if !(f.active
            && f.c == c
            && f.task.is_some()
            && self.conns[c as usize].generation == d.generation)
        {
            // The watchdog already ended this step.
            return;
        }
        self.users[u].flight.task = None;
        self.users[u].state.step_args = d.values;
        let Some(s) = f.step else { return };
        let result = d.result;
        if result.outcome == formats::Outcome::Ok
            && let StepKind::Custom { extract, .. } = &self.sc.plan.steps[s].kind
        {
            for (name, value) in &result.extracted {
                if let Some((_, slot)) = extract.iter().find(|(n, _)| n == name) {
                    let var = &mut self.users[u].state.vars[usize::from(*slot)];
                    var.clear();
                    var.extend_from_slice(value);
                }
            }
        }
        if result.breaks_connection() || d.conn.is_none() {
            self.close(c);
        } else {
            self.custom[c as usize] = d.conn;
            self.conns[c as usize].link = Link::Open;
        }
        let ex = crate::http::Exchange {
            status: result.status,
            connect_us: d.connect_us,
            bytes_sent: result.bytes_sent,
            bytes_received: result.bytes_received,
            connected: d.connect_us > 0,
            ..crate::http::Exchange::default()
        };
        let message = match &result.message {
            Some(m) if result.outcome != formats::Outcome::Ok && !m.is_empty() => {
                Message::Text(m.as_ref())
            }
            _ => Message::Default,
        };
        self.rec
            .finish(u, &ex, result.outcome, message, t, false, false);
        self.users[u].state.last = crate::scenario::flow::Last {
            status: result.status,
            ok: result.outcome == formats::Outcome::Ok,
        };
        let flow = match result.outcome {
            formats::Outcome::Ok => Flow::Continue,
            other => failure_flow(other),
        };
        self.end_exchange(u, flow, t);
    }
}
