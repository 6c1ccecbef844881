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
//!
//! This file holds the machine's types and what the loop and steering ask of a user; `life` is
//! [`Program::advance`] (the life, input by input), `activity` runs on_start, on_stop or a task and
//! asks for requests, and `walk` walks a task tree.

use super::exec::{CoreScenario, Flow};
use crate::clock::Clock;
use crate::core::{Recorder, TaskMark};
use crate::load::{Closed, Load};
use crate::rng::Rng;
use crate::schedule::Nanos;

mod activity;
mod life;
mod walk;

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
}
