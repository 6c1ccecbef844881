//! A user's life as a state machine the core's loop steps (STYLE.md item 13): given what just
//! happened ([`Input`]: started, woken, handed an arrival, a request or step done), it says what the
//! loop must do next ([`Next`]: make a request, run a step, wake it at a time, wait, or nothing more).
//! It never performs I/O and never reads the clock itself; the same machine runs under either backend.
//!
//! **Closed model.** A user is spawned at its spawn time; it then runs during each span the
//! population wants it (a `Closed` user from its spawn time to the end, a `Stages` user while the
//! target is above its index), looping over its weighted tasks with think time or pacing until the
//! span ends, the run stops or an iteration limit is reached. Between spans its connections close. Its
//! on_start runs once, before its first task (and again after its think time if it fails); the first
//! task follows at once. Its on_stop runs once at the end of its life: when it finished (its
//! iterations, feeder rows or the run's iteration limit ran out), or when its last span or the run
//! ended, not before that end, unless the run was interrupted.
//!
//! **Open model.** A pooled user runs one iteration per arrival handed to it (its on_start before the
//! first) and goes back to the pool; an arrival it cannot serve is counted as dropped.
//!
//! **Timing.** An iteration's intended start is when the user became ready: its span's start, the end
//! of the previous iteration plus think time, its slot on a pacing grid, or the arrival's intended
//! start. Each later request of the iteration is intended to start when the previous one ended (plus
//! think time inside a group). The loop wakes the user at that time exactly, so any delay before the
//! request goes out is lateness of the generator, which the sample records as lag.

use std::time::Duration;

use formats::Outcome;

use super::exec::{CoreScenario, Flow, next_ready};
use super::flow::LoopPlan;
use super::user::{AuthStep, Frame, UserState};
use super::{Node, UserKind};
use crate::clock::{Clock, micros};
use crate::core::{InFlight, Message, Recorder, TaskMark};
use crate::http::Exchange;
use crate::load::{Closed, Load};
use crate::plan::Wait;
use crate::rng::Rng;
use crate::schedule::{self, Nanos};

/// What the loop must do for a user next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Make request `r`, intended to start at [`Program::ready_us`].
    Request(usize),
    /// Run step `s` of another protocol, intended to start at [`Program::ready_us`].
    Step(usize),
    /// Wake the user (with [`Input::Wake`]) at this time, µs since time zero.
    Sleep(u64),
    /// Wait for another user's fetch of a per-core token; the loop wakes the user when it ends.
    WaitToken,
    /// A pooled user waits for an arrival ([`Input::Assigned`]).
    Idle,
    /// Nothing to do: the request or step in progress ends with [`Input::Done`].
    Busy,
    /// Nothing more, ever.
    Done,
}

/// What happened to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// The loop starts the user.
    Start,
    /// Its wake time came, the token it waited for arrived, or (a pooled user) the run is stopping.
    Wake,
    /// A pooled user is handed an arrival intended to start at this time, µs.
    Assigned(u64),
    /// The request or step it asked for ended at `end_us` (sample logged), with `flow` next.
    Done { flow: Flow, end_us: u64 },
}

/// The loop's state a user's program reads and changes.
pub(crate) struct Cx<'a> {
    pub sc: &'a CoreScenario,
    pub rng: &'a mut Rng,
    pub clock: &'a Clock,
    pub rec: &'a mut Recorder,
    pub load: &'a mut Load,
    /// When the run is planned to end, µs.
    pub end_us: u64,
    /// The core is stopping: no new iteration starts.
    pub stopping: bool,
    /// Users running on_stop; the end of the run waits for them, within its grace period.
    pub lingering: &'a mut u32,
    /// Users to wake (their per-core token arrived).
    pub wake: &'a mut Vec<u32>,
    /// Set by the program when the user stops running (between spans, or for good): the loop closes
    /// its connections and counts it out of the active users.
    pub left: bool,
    /// Set when a pooled user went back to the pool (the loop releases waiting arrivals).
    pub freed: bool,
}

impl Cx<'_> {
    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// Whether the run was cut short (Ctrl-C) rather than reaching its planned end.
    fn interrupted(&self) -> bool {
        self.stopping && self.now_us() < self.end_us
    }

    fn closed(&mut self) -> &mut Closed {
        match self.load {
            Load::Closed(c) => c,
            Load::Open(_) => unreachable!("closed-model users run only in a closed model"),
        }
    }
}

/// Where the user's life is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pc {
    /// Closed: created, not started.
    Unborn,
    /// Closed: waiting for its spawn time.
    Spawning,
    /// Closed: looking for its next span.
    NextSpan,
    /// Closed: waiting for its span to start.
    SpanStart,
    /// Closed: at the top of the iteration loop.
    Top,
    /// Running an activity (on_start or a task).
    Running,
    /// Closed: the activity ended with this flow.
    After(Flow),
    /// Closed: thinking until its next iteration.
    Think,
    /// Closed: its life ended; on_stop next, perhaps.
    End,
    /// Waiting for on_stop's not-before time.
    StopWait,
    /// Running on_stop.
    Stopping,
    /// Pooled: never handed an arrival yet.
    PoolNew,
    /// Pooled: waiting for an arrival.
    PoolIdle,
    /// Pooled: its life ended; on_stop next, perhaps.
    PoolEnd,
    /// Done for good.
    Gone,
}

/// What the user runs inside `Running` and `Stopping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    /// Requests in order: on_start (`stop` false) or on_stop, from position `pos`.
    List { stop: bool, pos: u16 },
    /// A task tree, walked with the user's stack.
    Task,
}

/// The request or step in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// A request or step of the activity.
    Plain,
    /// The token request of auth plan `auth`, needed by request `r`.
    Fetching {
        r: usize,
        auth: usize,
    },
    /// Waiting for another user's fetch of auth plan `auth`, needed by request `r`.
    Waiting {
        r: usize,
    },
    /// Thinking inside a task.
    Thinking,
}

/// How an activity went on.
enum Run {
    /// The loop must do this first.
    Wait(Next),
    /// The activity ended with this flow.
    Finished(Flow),
}

/// One user's life.
#[derive(Debug)]
pub(crate) struct Program {
    pc: Pc,
    act: Act,
    pending: Pending,
    /// When the user became ready for its next request, µs: its intended start.
    pub ready_us: u64,
    /// Local index on the core, index across the run, and kind.
    local: u32,
    pub global: u32,
    pub kind: u16,
    /// An open model's pooled user.
    pool: bool,
    /// Closed: when the user is spawned, µs.
    spawn_us: u64,
    /// on_start has succeeded (or there is none).
    started: bool,
    /// Counted among the active users.
    active: bool,
    /// Pooled: its feeders and iteration limit still allow an iteration.
    can_serve: bool,
    /// Closed: its life ended because it finished (not because its span or the run ended).
    finished: bool,
    /// Closed: the end of its last span, ns, and its current span's start (ns) and stop (µs).
    after_ns: u64,
    span_start_ns: u64,
    stop_us: u64,
    /// When the user stopped being wanted (on_stop not before then), µs.
    left_at_us: u64,
    /// Iterations in the current span, and in all.
    in_span: u64,
    done: u64,
    /// When the current iteration was ready.
    iteration_start_us: u64,
    /// The task the user's requests are for, and whether the next one starts an iteration.
    pub mark: TaskMark,
}

/// Where a closed-model user's life is, as steering sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    /// Not spawned yet: waiting for its spawn time, or never to be spawned.
    Pending,
    /// Spawned, in a span or between spans: when its span ends can move.
    Running,
    /// Its life is ending: its on_stop is next or running.
    Ending,
    /// Done. `finished` when it ran out of iterations or data rather than being stopped.
    Gone { finished: bool },
    /// An open model's pooled user.
    Pooled,
}

impl Program {
    /// A closed-model user spawned at `spawn_us`.
    pub fn closed(local: u32, global: u32, kind: usize, spawn_us: u64) -> Program {
        Program::new(Pc::Unborn, false, local, global, kind, spawn_us)
    }

    /// A closed-model user started again by steering at `spawn_us`: a new user in the same slot, whose
    /// spans are looked for from its spawn time on (not from the run's start).
    pub fn respawn(local: u32, global: u32, kind: usize, spawn_us: u64) -> Program {
        let mut p = Program::closed(local, global, kind, spawn_us);
        p.after_ns = spawn_us.saturating_mul(1000);
        p
    }

    /// Where the user's life is.
    pub fn life(&self) -> Life {
        if self.pool {
            return Life::Pooled;
        }
        match self.pc {
            Pc::Unborn | Pc::Spawning => Life::Pending,
            Pc::NextSpan | Pc::SpanStart | Pc::Top | Pc::Running | Pc::After(_) | Pc::Think => {
                Life::Running
            }
            Pc::End | Pc::StopWait | Pc::Stopping => Life::Ending,
            Pc::Gone => Life::Gone {
                finished: self.finished,
            },
            Pc::PoolNew | Pc::PoolIdle | Pc::PoolEnd => Life::Pooled,
        }
    }

    /// Steering moved the end of the user's current span to `stop` (no later than the run's end
    /// `end_us`): it finishes the iteration it is in and leaves at its next start at or after `stop`,
    /// running its on_stop then.
    pub fn set_span_end(&mut self, stop: Nanos, end_us: u64) {
        self.after_ns = stop.0;
        self.stop_us = stop.as_micros().min(end_us);
        self.left_at_us = self.stop_us;
    }

    /// A user thinking until after `at_us` wakes at `at_us` instead (its span now ends before its think
    /// time would): its next start is then, where it finds its span over. Returns whether it was so.
    pub fn cut_think(&mut self, at_us: u64) -> bool {
        if self.pc == Pc::Think && self.ready_us > at_us {
            self.ready_us = at_us;
            return true;
        }
        false
    }

    /// An open-model pool user (its global index is its local one, as in the samples before).
    pub fn pooled(local: u32, global: u32, kind: usize) -> Program {
        Program::new(Pc::PoolNew, true, local, global, kind, 0)
    }

    fn new(pc: Pc, pool: bool, local: u32, global: u32, kind: usize, spawn_us: u64) -> Program {
        Program {
            pc,
            pool,
            act: Act::Task,
            pending: Pending::None,
            ready_us: 0,
            local,
            global,
            kind: kind as u16,
            spawn_us,
            started: false,
            active: false,
            can_serve: true,
            finished: false,
            after_ns: 0,
            span_start_ns: 0,
            stop_us: 0,
            left_at_us: 0,
            in_span: 0,
            done: 0,
            iteration_start_us: 0,
            mark: TaskMark::default(),
        }
    }

    /// Whether the user is counted among the active users.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether the user is waiting for its next request's wake time or an arrival, with nothing on
    /// the wire.
    pub fn is_idle(&self) -> bool {
        matches!(self.pc, Pc::PoolIdle | Pc::PoolNew)
    }

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
                    if self.started {
                        let limit = cx.closed().per_user;
                        if limit.is_some_and(|l| self.done >= l)
                            || kind.iterations.is_some_and(|n| user.iteration >= n)
                            || !user.next_rows(cx.sc, cx.rng, self.global, kind)
                            || !cx.closed().take_iteration()
                        {
                            self.finished = true;
                            self.pc = Pc::End;
                            continue;
                        }
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

    /// Runs the current activity with `input` until it must wait or ends.
    fn run(
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

    /// Walks the task tree from where it stands until a request, a step or a think time.
    fn walk(&mut self, user: &mut UserState, cx: &mut Cx<'_>) -> Run {
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

    /// Asks for request `r`, its credential first if it needs one made. `Err` when the request ended
    /// without going out (its credential could not be made; the failure is logged).
    fn issue(&mut self, user: &mut UserState, cx: &mut Cx<'_>, r: usize) -> Result<Next, Flow> {
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

/// How many times node `n` runs (a loop decides for itself, from 0).
fn repeat(sc: &CoreScenario, n: usize) -> u32 {
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
