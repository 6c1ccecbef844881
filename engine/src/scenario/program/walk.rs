//! Walking a task tree with the user's stack: groups and their picks, `If`, loops and `Break`, `Set`,
//! `Pause` and `Script`, think time inside a task, and the samples a timed loop or a failed script
//! logs.

use std::time::Duration;

use formats::Outcome;

use super::{Cx, Next, Pending, Program, Run};
use crate::clock::micros;
use crate::core::{InFlight, Message, TaskMark};
use crate::http::Exchange;
use crate::plan::Wait;
use crate::scenario::Node;
use crate::scenario::exec::{CoreScenario, Flow};
use crate::scenario::flow::LoopPlan;
use crate::scenario::user::{Frame, UserState};
use crate::schedule;

impl Program {
    /// Walks the task tree from where it stands until a request, a step or a think time.
    pub(super) fn walk(&mut self, user: &mut UserState, cx: &mut Cx<'_>) -> Run {
        let nodes = &cx.sc.plan.nodes;
        while let Some(&top) = user.stack.last() {
            match &nodes[top.node] {
                Node::Request(r) => {
                    user.stack.pop();
                    if cx.stopping {
                        return Run::Finished(Flow::Stop);
                    }
                    match self.issue(user, cx, *r) {
                        Ok(next) => return Run::Wait(next),
                        Err(Flow::Continue) => {}
                        Err(flow) => return Run::Finished(flow),
                    }
                }
                Node::Step(s) => {
                    user.stack.pop();
                    if cx.stopping {
                        return Run::Finished(Flow::Stop);
                    }
                    self.pending = Pending::Plain;
                    return Run::Wait(Next::Step(*s));
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
                            let r = cx.rng.below(*total_weight);
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
                                left: repeat(cx.sc, c),
                                since_us: 0,
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
                    if pause && let Some(run) = self.think(cx, *wait) {
                        return run;
                    }
                }
                Node::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    if top.next > 0 {
                        user.stack.pop();
                        continue;
                    }
                    let holds = user.holds(cx.sc, cx.rng, cx.clock, self.global, *cond);
                    user.stack.last_mut().expect("the top frame exists").next = 1;
                    if let Some(branch) = if holds { then } else { otherwise } {
                        user.stack.push(Frame {
                            node: *branch,
                            next: 0,
                            left: repeat(cx.sc, *branch),
                            since_us: 0,
                        });
                    }
                }
                Node::Loop(lp) => {
                    if let Some(run) = self.step_loop(user, cx, lp) {
                        return run;
                    }
                }
                Node::Break => {
                    user.stack.pop();
                    // Out to the innermost loop, which ends as if its condition said so.
                    while let Some(frame) = user.stack.pop() {
                        if let Node::Loop(lp) = &nodes[frame.node] {
                            if lp.timed {
                                self.log_loop(cx, lp, frame.since_us, true);
                            }
                            break;
                        }
                    }
                }
                Node::Set { var, value } => {
                    user.stack.pop();
                    user.set_var(cx.sc, cx.rng, cx.clock, self.global, *var, value);
                }
                Node::Pause(wait) => {
                    user.stack.pop();
                    if let Some(run) = self.think(cx, *wait) {
                        return run;
                    }
                }
                Node::Script { func, args, into } => {
                    user.stack.pop();
                    let called = user.call_script(
                        cx.sc,
                        cx.rng,
                        cx.clock,
                        self.global,
                        self.local,
                        *func,
                        args,
                        *into,
                    );
                    if let Err(why) = called {
                        self.log_script_failure(cx, *func, &why);
                        // What follows would use what the script did not compute.
                        return Run::Finished(Flow::EndIteration(Duration::ZERO));
                    }
                }
            }
        }
        Run::Finished(Flow::Continue)
    }

    /// Thinks inside a task: `Some` when the user must sleep (or the run ends first).
    fn think(&mut self, cx: &mut Cx<'_>, wait: Wait) -> Option<Run> {
        let d = schedule::think(wait, cx.rng.unit());
        if d.is_zero() {
            return None;
        }
        self.ready_us = self.ready_us.saturating_add(micros(d));
        if self.ready_us >= cx.end_us {
            return Some(Run::Finished(Flow::RunOver));
        }
        self.pending = Pending::Thinking;
        Some(Run::Wait(Next::Sleep(self.ready_us)))
    }

    /// Steps the loop on top of the user's stack: decides whether it ends, gives up, thinks, or
    /// starts its next pass. `Some` when the walk must stop.
    ///
    /// The frame counts passes started in `next`; `left` is 1 once the decision for the next pass
    /// is made (and its think time, if any, is being slept), so that waking does not decide again.
    fn step_loop(&mut self, user: &mut UserState, cx: &mut Cx<'_>, lp: &LoopPlan) -> Option<Run> {
        let top = *user.stack.last().expect("the loop's frame exists");
        if top.left == 0 {
            if top.next == 0 {
                user.stack
                    .last_mut()
                    .expect("the loop's frame exists")
                    .since_us = self.ready_us;
            }
            let since = user.stack.last().expect("the loop's frame exists").since_us;
            let done = (top.next > 0
                && lp
                    .until
                    .is_some_and(|c| user.holds(cx.sc, cx.rng, cx.clock, self.global, c)))
                || lp
                    .before
                    .is_some_and(|c| !user.holds(cx.sc, cx.rng, cx.clock, self.global, c));
            if done {
                user.stack.pop();
                if lp.timed {
                    self.log_loop(cx, lp, since, true);
                }
                return None;
            }
            let pause = if top.next > 0 {
                schedule::think(lp.wait, cx.rng.unit())
            } else {
                Duration::ZERO
            };
            let next_start = self.ready_us.saturating_add(micros(pause));
            let out_of_time = lp
                .timeout_us
                .is_some_and(|t| top.next > 0 && next_start >= since.saturating_add(t));
            if top.next >= lp.max as usize || out_of_time {
                user.stack.pop();
                if !lp.gives_up {
                    return None;
                }
                self.log_loop(cx, lp, since, false);
                return Some(Run::Finished(Flow::EndIteration(Duration::ZERO)));
            }
            user.stack.last_mut().expect("the loop's frame exists").left = 1;
            if !pause.is_zero() {
                self.ready_us = next_start;
                if self.ready_us >= cx.end_us {
                    return Some(Run::Finished(Flow::RunOver));
                }
                self.pending = Pending::Thinking;
                return Some(Run::Wait(Next::Sleep(self.ready_us)));
            }
        }
        let frame = user.stack.last_mut().expect("the loop's frame exists");
        frame.left = 0;
        frame.next += 1;
        user.stack.push(Frame {
            node: lp.body,
            next: 0,
            left: repeat(cx.sc, lp.body),
            since_us: 0,
        });
        None
    }

    /// Logs a failed sample named after script function `func`, with the script's message.
    fn log_script_failure(&self, cx: &mut Cx<'_>, func: usize, why: &str) {
        let local = self.local as usize;
        let now = cx.clock.now_us();
        cx.rec.begin(
            local,
            InFlight {
                name: cx.sc.script_names[func],
                intended_us: self.ready_us.min(now),
                actual_us: now,
                user: self.global,
                // The task's, but never an iteration's start: the requests around it carry that.
                mark: TaskMark {
                    iteration_start: false,
                    ..self.mark
                },
            },
        );
        cx.rec.finish(
            local,
            &Exchange::default(),
            Outcome::Other,
            Message::Text(why),
            now,
            false,
            false,
        );
    }

    /// Logs one sample for a loop that ran from `since_us` to now (its last pass's end): a timed
    /// loop that ended (`ok`), or one that gave up, with its message.
    fn log_loop(&self, cx: &mut Cx<'_>, lp: &LoopPlan, since_us: u64, ok: bool) {
        let Some(label) = lp.label else { return };
        let local = self.local as usize;
        cx.rec.begin(
            local,
            InFlight {
                name: cx.sc.label_names[label],
                intended_us: since_us,
                actual_us: since_us,
                user: self.global,
                // The task's, but never an iteration's start: the requests around it carry that.
                mark: TaskMark {
                    iteration_start: false,
                    ..self.mark
                },
            },
        );
        let (outcome, message) = if ok {
            (Outcome::Ok, Message::Default)
        } else {
            (Outcome::Check, Message::Id(cx.sc.label_messages[label]))
        };
        cx.rec.finish(
            local,
            &Exchange::default(),
            outcome,
            message,
            self.ready_us.max(since_us),
            false,
            false,
        );
    }
}

/// How many times node `n` runs (a loop decides for itself, from 0).
pub(super) fn repeat(sc: &CoreScenario, n: usize) -> u32 {
    match &sc.plan.nodes[n] {
        Node::Group { repeat, .. } => *repeat,
        Node::Loop(_) => 0,
        Node::Request(_)
        | Node::Step(_)
        | Node::If { .. }
        | Node::Break
        | Node::Set { .. }
        | Node::Pause(_)
        | Node::Script { .. } => 1,
    }
}
