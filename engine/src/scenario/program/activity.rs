//! Running an activity (on_start, on_stop or a task): what ended, what is pending, and asking for a
//! request whose credential may have to be fetched or waited for first.

use super::{Act, Cx, Input, Next, Pending, Program, Run};
use crate::scenario::UserKind;
use crate::scenario::exec::Flow;
use crate::scenario::user::{AuthStep, UserState};

impl Program {
    /// Runs the current activity with `input` until it must wait or ends.
    pub(super) fn run(
        &mut self,
        user: &mut UserState,
        cx: &mut Cx<'_>,
        kind: &UserKind,
        input: Option<Input>,
    ) -> Run {
        match (input, self.pending) {
            (Some(Input::Done { flow, end_us }), pending) => {
                self.ready_us = end_us;
                self.pending = Pending::None;
                if let Pending::Fetching { r, auth } = pending {
                    let flow = user.token_fetched(cx.sc, cx.clock, auth, flow, cx.wake);
                    if flow == Flow::Continue {
                        // The token is there: now the request that needed it.
                        self.pending = Pending::Plain;
                        return Run::Wait(Next::Request(r));
                    }
                    return Run::Finished(flow);
                }
                if flow != Flow::Continue {
                    return Run::Finished(flow);
                }
            }
            (Some(Input::Wake), Pending::Waiting { r }) => {
                self.pending = Pending::None;
                match self.issue(user, cx, r) {
                    Ok(next) => return Run::Wait(next),
                    Err(Flow::Continue) => {}
                    Err(flow) => return Run::Finished(flow),
                }
            }
            (Some(Input::Wake), Pending::Thinking) => self.pending = Pending::None,
            // Anything else (a stop notice while busy) changes nothing: the activity sees
            // `stopping` at its next request.
            (_, Pending::None) => {}
            (_, _) => return Run::Wait(self.waiting_for()),
        }
        match self.act {
            Act::List { stop, .. } => {
                let list = if stop { &kind.on_stop } else { &kind.on_start };
                loop {
                    let Act::List { pos, .. } = &mut self.act else {
                        unreachable!("the activity is a list");
                    };
                    let Some(&r) = list.get(usize::from(*pos)) else {
                        return Run::Finished(Flow::Continue);
                    };
                    // on_stop runs while the core stops; on_start does not start then.
                    if cx.stopping && !stop {
                        return Run::Finished(Flow::Stop);
                    }
                    *pos += 1;
                    match self.issue(user, cx, r) {
                        Ok(next) => return Run::Wait(next),
                        Err(Flow::Continue) => {}
                        Err(flow) => return Run::Finished(flow),
                    }
                }
            }
            Act::Task => self.walk(user, cx),
        }
    }

    /// What the user waits for while something is pending.
    fn waiting_for(&self) -> Next {
        match self.pending {
            Pending::Waiting { .. } => Next::WaitToken,
            Pending::Thinking => Next::Sleep(self.ready_us),
            // A request or step is on the wire; its completion is the next input.
            _ => Next::Busy,
        }
    }

    /// Asks for request `r`, its credential first if it needs one made. `Err` when the request ended
    /// without going out (its credential could not be made; the failure is logged).
    pub(super) fn issue(
        &mut self,
        user: &mut UserState,
        cx: &mut Cx<'_>,
        r: usize,
    ) -> Result<Next, Flow> {
        if let Some(i) = cx.sc.requests[r].wire.dynamic_auth() {
            match user.ensure_auth(
                cx.sc,
                cx.rng,
                cx.clock,
                cx.rec,
                self.local,
                self.global,
                r,
                i,
                self.ready_us,
                self.mark,
            ) {
                AuthStep::Ready => {}
                AuthStep::Fetch(token) => {
                    self.pending = Pending::Fetching { r, auth: i };
                    return Ok(Next::Request(token));
                }
                AuthStep::Wait => {
                    self.pending = Pending::Waiting { r };
                    return Ok(Next::WaitToken);
                }
                AuthStep::Failed(flow) => {
                    // The failure was logged as this request's sample, flag included.
                    self.mark.iteration_start = false;
                    return Err(flow);
                }
            }
        }
        self.pending = Pending::Plain;
        Ok(Next::Request(r))
    }
}
