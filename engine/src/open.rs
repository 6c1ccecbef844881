//! The open model on one core: an arrival scheduler hands each arrival to a free user of a pool.
//!
//! The scheduler walks this core's arrivals in order ([`CoreArrivals::intended_start`]), waits for each
//! to be due on a [`PreciseTimer`], picks a user kind by weight, and gives the arrival's intended start
//! to an idle user of that kind, starting a new user if the kind's pool is not full. When every user of
//! the kind is busy the arrival waits, if the queue allows, until a user is free or the queue
//! overflows; otherwise it is dropped and counted in the interval stats. Every arrival is therefore
//! either started, with its exact intended start, or counted as dropped: none is skipped silently.
//!
//! Users are tasks that wait for an assignment, run one iteration from the assigned intended start,
//! and go back to the idle list. Nothing here allocates after the pool has grown: idle lists have their
//! full capacity from the start, and assignments are a `Cell` per user.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::core::CoreCtx;
use crate::plan::OpenCore;
use crate::schedule::{self, Nanos};
use crate::timer::{PreciseTimer, yield_now};

/// Waits shorter than this are spent yielding to other tasks instead of arming the timer: a timer
/// costs three system calls and a sleep. It must stay short: while a task yields, monoio runs ready
/// tasks but reaps no I/O completions (it does that only when its run queue is empty), so spinning
/// longer delays every response on the core (60 µs starved a 20 000/s run completely).
const SPIN: Duration = Duration::from_micros(20);

/// Arrivals closer together than this are released on a grid of this step instead of one by one:
/// every sleep and wake-up of the core costs about 20 µs of CPU (measured: one context switch per
/// arrival made 20 000 arrivals a second cost 80 % of a core), so at high rates the scheduler wakes at
/// most once per step and releases every arrival that fell due, each up to one step late. That
/// lateness is recorded as schedule lag, like any other; it stays far below the 1 ms health limit.
/// Sparser arrivals are released at their exact time.
const GRID: Duration = Duration::from_micros(100);

/// After this many arrivals in a row without waiting (a burst, or a scheduler catching up), the
/// scheduler yields so that users can start what it handed out.
const BURST: u32 = 64;

/// One core's users for an open model. Local user indexes are laid out kind by kind: kind `k` owns
/// `first[k] .. first[k] + max[k]`.
#[derive(Debug)]
pub(crate) struct Pool {
    first: Vec<u32>,
    max: Vec<u32>,
    /// Users started so far, per kind.
    started: Vec<Cell<u32>>,
    /// Idle users per kind (local indexes), last in first out so warm connections are reused.
    idle: RefCell<Vec<Vec<u32>>>,
    /// Per local user: the intended start of the iteration handed to it, until it takes it.
    assigned: Vec<Cell<Option<Nanos>>>,
    /// Users running an iteration.
    busy: Cell<u32>,
    /// The scheduler, when it is waiting for a user to become free.
    waiting: RefCell<Option<Waker>>,
    /// Set when the scheduler has handed out (or dropped) its last arrival.
    pub done: Cell<bool>,
}

impl Pool {
    pub fn new(max: &[u32]) -> Pool {
        let mut first = Vec::with_capacity(max.len());
        let mut next = 0u32;
        for &m in max {
            first.push(next);
            next += m;
        }
        Pool {
            first,
            max: max.to_vec(),
            started: max.iter().map(|_| Cell::new(0)).collect(),
            idle: RefCell::new(
                max.iter()
                    .map(|&m| Vec::with_capacity(m as usize))
                    .collect(),
            ),
            assigned: (0..next).map(|_| Cell::new(None)).collect(),
            busy: Cell::new(0),
            waiting: RefCell::new(None),
            done: Cell::new(false),
        }
    }

    /// Users this pool may ever have.
    pub fn capacity(&self) -> usize {
        self.assigned.len()
    }

    /// Whether no user is running an iteration.
    pub fn all_idle(&self) -> bool {
        self.busy.get() == 0
    }

    /// Takes the iteration handed to `local`, if any.
    pub fn take_assignment(&self, local: usize) -> Option<Nanos> {
        self.assigned[local].take()
    }

    /// `local` (of `kind`) finished its iteration and waits for the next.
    pub fn release(&self, kind: usize, local: usize) {
        self.busy.set(self.busy.get().saturating_sub(1));
        self.idle.borrow_mut()[kind].push(local as u32);
        if let Some(w) = self.waiting.borrow_mut().take() {
            w.wake();
        }
    }

    /// Wakes the scheduler if it waits for a user (at the end of the run).
    pub fn wake_scheduler(&self) {
        if let Some(w) = self.waiting.borrow_mut().take() {
            w.wake();
        }
    }
}

/// What became of one arrival.
enum Handed {
    /// An idle user took it.
    Idle(usize),
    /// A new user must be started for it.
    New(usize),
    /// Every user of its kind is busy.
    Busy,
}

impl Pool {
    fn hand(&self, kind: usize, intended: Nanos) -> Handed {
        let local = if let Some(local) = self.idle.borrow_mut()[kind].pop() {
            self.assigned[local as usize].set(Some(intended));
            Handed::Idle(local as usize)
        } else if self.started[kind].get() < self.max[kind] {
            let local = self.first[kind] + self.started[kind].get();
            self.started[kind].set(self.started[kind].get() + 1);
            self.assigned[local as usize].set(Some(intended));
            Handed::New(local as usize)
        } else {
            return Handed::Busy;
        };
        self.busy.set(self.busy.get() + 1);
        local
    }
}

/// Hands this core's arrivals to users until the schedule ends or the core stops.
pub(crate) async fn scheduler(ctx: Rc<CoreCtx>, open: OpenCore) {
    let pool = ctx.pool.as_ref().expect("an open core has a pool");
    // Without a timer (descriptors exhausted) the runtime's millisecond timers still keep the
    // schedule; arrivals then start up to 2 ms late, and the lag says so.
    let timer = PreciseTimer::new().ok();
    let weights = &open.weights;
    let total_weight: u32 = weights.iter().sum();
    let mut seq = 0u64;
    let mut burst = 0u32;
    let grid = GRID.as_nanos() as u64;
    let mut previous = Nanos(0);
    'arrivals: while let Some(due) = open.arrivals.intended_start(seq) {
        if ctx.stopping.get() {
            break;
        }
        if ctx.clock.now_ns() < due.0 {
            burst = 0;
            let wake = if due.0 - previous.0 < grid {
                Nanos(due.0.div_ceil(grid).saturating_mul(grid))
            } else {
                due
            };
            wait_until(&ctx, timer.as_ref(), wake).await;
            if ctx.stopping.get() {
                break;
            }
        } else {
            burst += 1;
            if burst >= BURST {
                burst = 0;
                yield_now().await;
            }
        }
        previous = due;
        let kind = {
            let r = ctx.rng.borrow_mut().below(total_weight);
            schedule::pick_weighted(weights.iter().copied(), r)
        };
        let mut queued = false;
        loop {
            match pool.hand(kind, due) {
                Handed::Idle(local) => {
                    ctx.slots[local].wake();
                    break;
                }
                Handed::New(local) => {
                    monoio::spawn(crate::users::run_pooled_user(Rc::clone(&ctx), local, kind));
                    break;
                }
                Handed::Busy => {}
            }
            // Every user of this kind is busy. Wait for one while the arrivals that fell due (this one
            // included) fit in the queue: arrival `seq + queue` falling due would make one too many,
            // and the oldest waiting arrival is the one dropped.
            let overflow_at = seq
                .checked_add(u64::from(open.queue))
                .and_then(|s| open.arrivals.intended_start(s));
            let overflowed = match overflow_at {
                _ if open.queue == 0 => true,
                Some(at) => ctx.clock.now_ns() >= at.0,
                None => false,
            };
            if overflowed || ctx.stopping.get() {
                ctx.rec.borrow_mut().iteration_dropped();
                seq += 1;
                continue 'arrivals;
            }
            if !queued {
                queued = true;
                ctx.rec.borrow_mut().iteration_queued();
            }
            let until = overflow_at.map(|at| ctx.clock.at(Duration::from_nanos(at.0)));
            let free = std::future::poll_fn(|cx| {
                if !pool.idle.borrow()[kind].is_empty() || ctx.stopping.get() {
                    return Poll::Ready(());
                }
                *pool.waiting.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            });
            match until {
                Some(until) => {
                    monoio::select! {
                        () = free => {},
                        () = monoio::time::sleep_until(until.into()) => {},
                    }
                }
                None => free.await,
            }
        }
        seq += 1;
    }
    // The run stopped with arrivals due and not handed out: they were dropped, not skipped.
    let now = ctx.clock.now_ns();
    while ctx.stopping.get()
        && open
            .arrivals
            .intended_start(seq)
            .is_some_and(|due| due.0 <= now)
    {
        ctx.rec.borrow_mut().iteration_dropped();
        seq += 1;
    }
    pool.done.set(true);
}

/// Waits until the run's clock reaches `due`, never returning early.
async fn wait_until(ctx: &CoreCtx, timer: Option<&PreciseTimer>, due: Nanos) {
    loop {
        let now = ctx.clock.now_ns();
        if now >= due.0 || ctx.stopping.get() {
            return;
        }
        if due.0 - now <= SPIN.as_nanos() as u64 {
            yield_now().await;
            continue;
        }
        let slept = match timer {
            Some(t) => t.sleep_until(ctx.clock.monotonic_at(due.0)).await.is_ok(),
            None => false,
        };
        if slept {
            // The precise timer's lateness is the operating system's: evidence for a late wake-up.
            let late_ns = ctx.clock.now_ns().saturating_sub(due.0);
            ctx.rec.borrow_mut().woke(late_ns / 1000);
        } else {
            monoio::time::sleep_until(ctx.clock.at(Duration::from_nanos(due.0)).into()).await;
        }
    }
}
