//! Virtual users: each is a task on its core making one request at a time on its own keep-alive
//! connection. A closed-model user ([`run_user`]) loops over weighted tasks with think time; an
//! open-model user ([`run_pooled_user`]) runs one iteration per arrival the scheduler hands it.
//!
//! Timing: an iteration's intended start is when the user became ready (spawn time, the end of the
//! previous iteration plus think time, its slot on a pacing grid, or the arrival's scheduled time in
//! an open model). Each later request in a task is intended to start when the previous one ended. Any
//! delay between "ready" and the actual send is lag, and counts in the sample's corrected latency.

use std::rc::Rc;
use std::time::Duration;

use formats::Outcome;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use crate::clock::micros;
use crate::core::{CoreCtx, InFlight, UserSlot};
use crate::http::{Connection, Exchange, Failure, RequestRef};
use crate::plan::{UserKind, UserPlan, Wait};
use crate::schedule::{self, Nanos};
use crate::timer::PreciseTimer;

/// After a failed connect a user pauses this long before its next attempt, so that a refused port
/// cannot spin a core at 100 % (a refused loopback connect can fail without ever yielding).
const CONNECT_FAILURE_PAUSE: Duration = Duration::from_millis(1);

/// The runtime's timers fire on whole-millisecond ticks: a deadline is rounded up to a tick, and the
/// thread parks for whole ticks, so a timer fires 0-2 ms after its deadline. Sleeping until the ready
/// time itself would start every iteration after think time about a millisecond late, and that would
/// count as schedule lag in every corrected latency (a 70 µs endpoint showed a p50 near 1 ms). Users
/// therefore sleep until two ticks before they are ready, so the timer fires in the 2 ms before the
/// ready time: think times are honoured to within 2 ms, and lag measures real lateness (a busy core),
/// not timer rounding.
pub(crate) const TIMER_SLACK: Duration = Duration::from_millis(2);

/// How an iteration ended.
struct IterationEnd {
    /// When its last request ended, µs since time zero.
    end_us: u64,
    /// A floor on the think time that follows (after a failed connect).
    pause: Duration,
}

/// Runs one closed-model user: during each span the population wants it, it loops over its tasks with
/// think time (or pacing) until the span ends, the run stops or an iteration limit is reached.
pub(crate) async fn run_user(ctx: Rc<CoreCtx>, local: usize, plan: UserPlan) {
    let kind = &ctx.kinds[plan.kind];
    let closed = ctx.closed.as_ref().expect("a closed core has a population");
    let end = Nanos(ctx.end_us.saturating_mul(1000));
    let mut done = 0u64;
    let mut after = Nanos(0);
    'spans: while let Some((start, stop)) = closed.population.next_span(plan.global, after, end) {
        after = stop;
        let stop_us = stop.as_micros();
        let start_us = start.as_micros();
        // Early by the timer slack, like think time, so the first request is not "late" by timer
        // rounding; the user then starts at once and its intended start is the actual one.
        let wake = start_us.saturating_sub(micros(TIMER_SLACK));
        if wake > ctx.clock.now_us() {
            monoio::time::sleep_until(ctx.clock.at_us(wake).into()).await;
        }
        if ctx.stopping.get() {
            break;
        }
        ctx.rec.borrow_mut().user_started();
        let mut conn = Connection::default();
        let mut ready_us = start_us;
        let mut in_span = 0u64;
        // Paced users wait on a timer of their own (created on first use).
        let mut precise: Option<PreciseTimer> = None;
        loop {
            if ctx.stopping.get() || ready_us >= stop_us {
                break;
            }
            if closed.per_user.is_some_and(|limit| done >= limit) || !ctx.take_iteration() {
                ctx.rec.borrow_mut().user_stopped(conn.is_open());
                break 'spans;
            }
            done += 1;
            in_span += 1;
            let Some(end) =
                run_iteration(&ctx, local, plan.global, kind, &mut conn, ready_us).await
            else {
                break;
            };
            let last_end_us = end.end_us;
            ready_us = match kind.wait {
                // On the grid from the span's start, however long the iteration took.
                // A late user starts its next iteration at once, and the lateness is lag.
                Wait::Pacing(pace) if end.pause.is_zero() => {
                    schedule::paced(start, pace, in_span).as_micros()
                }
                Wait::Pacing(pace) => schedule::paced(start, pace, in_span)
                    .as_micros()
                    .max(last_end_us + micros(end.pause)),
                wait => last_end_us.saturating_add(micros(
                    schedule::think(wait, ctx.rng.borrow_mut().unit()).max(end.pause),
                )),
            };
            if ready_us > last_end_us {
                if ready_us >= stop_us {
                    // The span ends before this user would wake: it is done for now.
                    break;
                }
                if let Wait::Pacing(pace) = kind.wait {
                    // A paced iteration's intended start is its slot on the grid, exactly: wait for it
                    // on a precise timer rather than start early by the timer slack.
                    let due = schedule::paced(start, pace, in_span).0.max(ready_us * 1000);
                    sleep_precisely(&ctx, &mut precise, due).await;
                } else {
                    // The connect-failure pause is a floor that timer slack must not eat into.
                    let wake = ready_us
                        .saturating_sub(TIMER_SLACK.as_micros() as u64)
                        .max(last_end_us + micros(end.pause));
                    monoio::time::sleep_until(ctx.clock.at_us(wake).into()).await;
                }
            }
        }
        ctx.rec.borrow_mut().user_stopped(conn.is_open());
    }
    ctx.user_finished();
}

/// Waits until the run's clock reaches `due_ns`, on `timer` (created on first use), never returning
/// early; falls back to the runtime's timers if no timer descriptor can be had.
async fn sleep_precisely(ctx: &CoreCtx, timer: &mut Option<PreciseTimer>, due_ns: u64) {
    while ctx.clock.now_ns() < due_ns && !ctx.stopping.get() {
        if timer.is_none() {
            *timer = PreciseTimer::new().ok();
        }
        let slept = match timer {
            Some(t) => t.sleep_until(ctx.clock.monotonic_at(due_ns)).await.is_ok(),
            None => false,
        };
        if !slept {
            monoio::time::sleep_until(ctx.clock.at(Duration::from_nanos(due_ns)).into()).await;
        }
    }
}

/// Runs one user of an open model's pool: waits for the scheduler to hand it an arrival, runs one
/// iteration from the arrival's intended start, and goes back to the pool, until the core stops.
pub(crate) async fn run_pooled_user(ctx: Rc<CoreCtx>, local: usize, kind_index: usize) {
    let pool = ctx.pool.as_ref().expect("an open core has a pool");
    let kind = &ctx.kinds[kind_index];
    ctx.rec.borrow_mut().user_started();
    let mut conn = Connection::default();
    loop {
        let slot = &ctx.slots[local];
        let assigned = std::future::poll_fn(|cx| {
            if let Some(due) = pool.take_assignment(local) {
                return Poll::Ready(Some(due));
            }
            if ctx.stopping.get() {
                return Poll::Ready(None);
            }
            slot.register(cx.waker());
            Poll::Pending
        })
        .await;
        let Some(due) = assigned else { break };
        let finished =
            run_iteration(&ctx, local, local as u32, kind, &mut conn, due.as_micros()).await;
        pool.release(kind_index, local);
        if finished.is_none() {
            break;
        }
    }
    ctx.rec.borrow_mut().user_stopped(conn.is_open());
}

/// Runs one iteration: picks a task by weight and makes its requests in order on `conn`, the first
/// intended to start at `ready_us`, each later one when the previous ended. `None` if the core began
/// stopping before the iteration finished.
async fn run_iteration(
    ctx: &CoreCtx,
    local: usize,
    user: u32,
    kind: &UserKind,
    conn: &mut Connection,
    mut ready_us: u64,
) -> Option<IterationEnd> {
    let task = {
        let r = ctx.rng.borrow_mut().below(kind.total_task_weight);
        &kind.tasks[schedule::pick_weighted(kind.tasks.iter().map(|t| t.weight), r)]
    };
    ctx.rec.borrow_mut().iteration_started();
    let mut pause = Duration::ZERO;
    for &r in &task.requests {
        if ctx.stopping.get() {
            return None;
        }
        let req = &ctx.requests[r];
        let start = std::time::Instant::now();
        let actual_us = ctx.clock.us_at(start);
        let was_open = conn.is_open();
        ctx.rec.borrow_mut().begin(
            local,
            InFlight {
                name: req.name,
                // A timer that fired early (see TIMER_SLACK) starts a closed user's request early; the
                // user was ready then, so that is its intended start. Open-model arrivals never start
                // early (the scheduler waits for their exact time), so theirs is kept exactly.
                intended_us: ready_us.min(actual_us),
                actual_us,
                user,
                deadline_us: actual_us.saturating_add(micros(ctx.limits.request_timeout)),
            },
        );
        let request = RequestRef {
            bytes: &req.bytes,
            head: req.head,
        };
        let ex = match until_timed_out(
            &ctx.slots[local],
            conn.exchange(ctx.next_addr(), request, ctx.limits, start),
        )
        .await
        {
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
        let (outcome, message) = match &ex.failure {
            Some(f) => (f.outcome, Some(f.message.as_ref())),
            None if !req.expect.contains(ex.status) => (Outcome::Status, None),
            None => (Outcome::Ok, None),
        };
        if matches!(
            outcome,
            Outcome::ConnectError | Outcome::ConnectTimeout | Outcome::LocalResource
        ) {
            pause = CONNECT_FAILURE_PAUSE;
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
        ready_us = end_us;
        if ex.failure.is_some() {
            // The rest of the task depends on this request having worked.
            break;
        }
    }
    Some(IterationEnd {
        end_us: ready_us,
        pause,
    })
}

/// Runs `exchange` until it finishes (`Some`) or the core's watchdog marks this user's request as
/// timed out (`None`, and the exchange is dropped). Request timeouts are enforced this way, by a scan
/// every core tick, rather than by arming a timer per request: the request path stays free of timer
/// wheel work, at the price of timeouts firing up to one tick (50 ms) late.
async fn until_timed_out<F: Future<Output = Exchange>>(
    slot: &UserSlot,
    exchange: F,
) -> Option<Exchange> {
    slot.timed_out.set(false);
    let mut exchange = pin!(exchange);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(ex) = exchange.as_mut().poll(cx) {
            return Poll::Ready(Some(ex));
        }
        if slot.timed_out.get() {
            return Poll::Ready(None);
        }
        slot.register(cx.waker());
        Poll::Pending
    })
    .await
}
