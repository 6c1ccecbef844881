//! [`Program::advance`]: a user's life from spawn to gone, one [`Input`] at a time. Spans, the
//! iteration loop with its limits, think time and pacing between iterations, on_stop, and the open
//! model's pool.

use std::time::Duration;

use super::walk::repeat;
use super::{Act, Cx, Input, Next, Pc, Program, Run};
use crate::clock::micros;
use crate::core::TaskMark;
use crate::load::Load;
use crate::plan::Wait;
use crate::scenario::UserKind;
use crate::scenario::exec::{Flow, next_ready};
use crate::scenario::user::{Frame, UserState};
use crate::schedule::{self, Nanos};

impl Program {
    /// Steps the user's life with `input` until it must wait; returns what the loop must do.
    pub fn advance(&mut self, user: &mut UserState, cx: &mut Cx<'_>, input: Input) -> Next {
        let kind = &cx.sc.plan.kinds[usize::from(self.kind)];
        let mut input = Some(input);
        loop {
            match self.pc {
                Pc::Unborn => {
                    input = None;
                    if self.spawn_us >= cx.end_us {
                        // Never spawned within the run: it counts as finished.
                        cx.closed().users_left -= 1;
                        self.pc = Pc::Gone;
                        return Next::Done;
                    }
                    self.pc = Pc::Spawning;
                    if self.spawn_us > cx.now_us() {
                        return Next::Sleep(self.spawn_us);
                    }
                }
                Pc::Spawning => {
                    input = None;
                    if cx.stopping || !user.start(cx.sc, cx.rng, cx.clock, self.global, kind) {
                        // Stopped before its spawn time, or a feeder has no row for it.
                        cx.closed().users_left -= 1;
                        self.pc = Pc::Gone;
                        return Next::Done;
                    }
                    self.started = kind.on_start.is_empty();
                    self.left_at_us = cx.end_us;
                    self.pc = Pc::NextSpan;
                }
                Pc::NextSpan => {
                    input = None;
                    let run_end = Nanos(cx.end_us.saturating_mul(1000));
                    let span = cx.closed().population.next_span(
                        self.global,
                        Nanos(self.after_ns),
                        run_end,
                    );
                    let Some((start, stop)) = span else {
                        self.finished = false;
                        self.pc = Pc::End;
                        continue;
                    };
                    if self.active {
                        // Between spans the user is not running: its connections close (as a
                        // stopped Locust user's would), and the next span reconnects.
                        cx.left = true;
                        self.active = false;
                    }
                    self.after_ns = stop.0;
                    self.stop_us = stop.as_micros();
                    self.left_at_us = self.stop_us.min(cx.end_us);
                    self.span_start_ns = start.0;
                    self.pc = Pc::SpanStart;
                    if start.as_micros() > cx.now_us() {
                        return Next::Sleep(start.as_micros());
                    }
                }
                Pc::SpanStart => {
                    input = None;
                    if cx.stopping {
                        self.finished = false;
                        self.pc = Pc::End;
                        continue;
                    }
                    cx.rec.user_started();
                    self.active = true;
                    self.ready_us = Nanos(self.span_start_ns).as_micros();
                    self.in_span = 0;
                    self.pc = Pc::Top;
                }
                Pc::Top => {
                    if cx.stopping || self.ready_us >= self.stop_us {
                        self.pc = Pc::NextSpan;
                        continue;
                    }
                    self.iteration_start_us = self.ready_us;
                    // Every failed attempt at on_start was one of the user's iterations too.
                    let out_of_iterations = cx.closed().per_user.is_some_and(|l| self.done >= l);
                    if out_of_iterations
                        || (self.started
                            && (kind.iterations.is_some_and(|n| user.iteration >= n)
                                || !user.next_rows(cx.sc, cx.rng, self.global, kind)
                                || !cx.closed().take_iteration()))
                    {
                        self.finished = true;
                        self.pc = Pc::End;
                        continue;
                    }
                    if self.started {
                        self.done += 1;
                        self.in_span += 1;
                        self.begin_task(user, cx, kind);
                    } else {
                        self.act = Act::List {
                            stop: false,
                            pos: 0,
                        };
                        self.mark = TaskMark {
                            task: kind.on_start_task,
                            iteration_start: false,
                        };
                    }
                    self.pc = Pc::Running;
                }
                Pc::Running | Pc::Stopping => {
                    let run = self.run(user, cx, kind, input.take());
                    let flow = match run {
                        Run::Wait(next) => return next,
                        Run::Finished(flow) => flow,
                    };
                    if self.pc == Pc::Stopping {
                        *cx.lingering -= 1;
                        self.pc = Pc::Gone;
                        continue;
                    }
                    let was_on_start = matches!(self.act, Act::List { stop: false, .. });
                    if was_on_start {
                        if flow == Flow::Continue {
                            // The first task follows on_start at once, as in Locust: think time comes
                            // after tasks.
                            self.started = true;
                            if self.pool {
                                self.begin_task(user, cx, kind);
                                continue;
                            }
                            self.pc = Pc::Top;
                            continue;
                        }
                        // A failed on_start counts towards `iterations_per_user`: a user whose login
                        // keeps failing stops after that many attempts (`engine try`: after one).
                        self.done += 1;
                    } else {
                        user.iteration += 1;
                    }
                    if self.pool {
                        if let Load::Open(open) = cx.load {
                            open.pool.release(usize::from(self.kind), self.local);
                        }
                        cx.freed = true;
                        self.pc = if matches!(flow, Flow::Stop | Flow::RunOver) || cx.stopping {
                            Pc::PoolEnd
                        } else {
                            Pc::PoolIdle
                        };
                        if self.pc == Pc::PoolIdle {
                            return Next::Idle;
                        }
                        continue;
                    }
                    self.pc = Pc::After(flow);
                }
                Pc::After(flow) => {
                    let pause = match flow {
                        Flow::Continue => Duration::ZERO,
                        Flow::EndIteration(pause) => pause,
                        Flow::Stop | Flow::RunOver => {
                            self.finished = false;
                            self.pc = Pc::End;
                            continue;
                        }
                    };
                    let last_end_us = self.ready_us;
                    let floor_us = last_end_us.saturating_add(micros(pause));
                    let paced = match kind.wait {
                        // On the grid from the span's start, however long the iteration took. A late
                        // user starts its next iteration at once, and the lateness is lag.
                        Wait::Pacing(pace) if self.started && self.in_span > 0 => Some(
                            schedule::paced(Nanos(self.span_start_ns), pace, self.in_span),
                        ),
                        _ => None,
                    };
                    self.ready_us = match paced {
                        // Its slot, even if already past (the lateness is lag); after a failed
                        // connect, not before the pause is over.
                        Some(due) if pause.is_zero() => due.as_micros(),
                        Some(due) => due.as_micros().max(floor_us),
                        None => next_ready(
                            kind.wait,
                            self.iteration_start_us,
                            last_end_us,
                            cx.rng.unit(),
                            pause,
                        ),
                    };
                    self.pc = Pc::Top;
                    if self.ready_us > last_end_us {
                        if self.ready_us >= self.stop_us {
                            // The span ends before this user would wake: it is done for now.
                            self.pc = Pc::NextSpan;
                            continue;
                        }
                        self.pc = Pc::Think;
                        return Next::Sleep(self.ready_us);
                    }
                }
                Pc::Think => {
                    input = None;
                    self.pc = Pc::Top;
                }
                Pc::End | Pc::PoolEnd => {
                    input = None;
                    let pooled = self.pc == Pc::PoolEnd;
                    let wanted = if pooled {
                        !cx.interrupted()
                    } else {
                        self.finished || !cx.interrupted()
                    };
                    if !(self.started && !kind.on_stop.is_empty() && wanted) {
                        self.pc = Pc::Gone;
                        continue;
                    }
                    if !self.active {
                        cx.rec.user_started();
                        self.active = true;
                    }
                    let not_before = if pooled {
                        cx.now_us()
                    } else if self.finished {
                        0
                    } else {
                        self.left_at_us
                    };
                    self.left_at_us = not_before;
                    *cx.lingering += 1;
                    self.pc = Pc::StopWait;
                    if not_before > cx.now_us() {
                        return Next::Sleep(not_before);
                    }
                }
                Pc::StopWait => {
                    input = None;
                    self.ready_us = self.ready_us.max(self.left_at_us);
                    self.act = Act::List { stop: true, pos: 0 };
                    self.mark = TaskMark {
                        task: kind.on_stop_task,
                        iteration_start: false,
                    };
                    self.pc = Pc::Stopping;
                }
                Pc::PoolNew => {
                    self.can_serve = user.start(cx.sc, cx.rng, cx.clock, self.global, kind);
                    self.started = kind.on_start.is_empty();
                    cx.rec.user_started();
                    self.active = true;
                    self.pc = Pc::PoolIdle;
                }
                Pc::PoolIdle => match input.take() {
                    Some(Input::Assigned(due)) => {
                        self.can_serve = self.can_serve
                            && kind.iterations.is_none_or(|n| user.iteration < n)
                            && user.next_rows(cx.sc, cx.rng, self.global, kind);
                        if !self.can_serve {
                            cx.rec.iteration_dropped();
                            if let Load::Open(open) = cx.load {
                                open.pool.release(usize::from(self.kind), self.local);
                            }
                            cx.freed = true;
                            return Next::Idle;
                        }
                        self.ready_us = due;
                        if self.started {
                            self.begin_task(user, cx, kind);
                        } else {
                            self.act = Act::List {
                                stop: false,
                                pos: 0,
                            };
                            self.mark = TaskMark {
                                task: kind.on_start_task,
                                iteration_start: false,
                            };
                        }
                        self.pc = Pc::Running;
                    }
                    _ if cx.stopping => self.pc = Pc::PoolEnd,
                    _ => return Next::Idle,
                },
                Pc::Gone => {
                    if self.active {
                        cx.left = true;
                        self.active = false;
                    }
                    if !self.pool {
                        cx.closed().users_left -= 1;
                    }
                    return Next::Done;
                }
            }
        }
    }

    /// Starts an iteration: a task picked by weight.
    fn begin_task(&mut self, user: &mut UserState, cx: &mut Cx<'_>, kind: &UserKind) {
        let r = cx.rng.below(kind.total_task_weight);
        let task = &kind.tasks[schedule::pick_weighted(kind.tasks.iter().map(|t| t.weight), r)];
        cx.rec.iteration_started();
        self.mark = TaskMark {
            task: task.id,
            iteration_start: true,
        };
        let root = task.root;
        user.stack.clear();
        user.stack.push(Frame {
            node: root,
            next: 0,
            left: repeat(cx.sc, root),
            since_us: 0,
        });
        self.act = Act::Task;
    }
}
