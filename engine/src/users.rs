//! Virtual users: each is a task on its core that loops over weighted tasks with think time, making
//! one request at a time on its own keep-alive connection.
//!
//! Closed model timing: an iteration's intended start is when the user became ready (spawn time, or
//! the end of the previous iteration plus think time). Each later request in a task is intended to
//! start when the previous one ended. Any delay between "ready" and the actual send is lag, and counts
//! in the sample's corrected latency.

use std::rc::Rc;
use std::time::Duration;

use formats::Outcome;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use crate::clock::micros;
use crate::core::{CoreCtx, InFlight, UserSlot};
use crate::http::{Connection, Exchange, Failure, RequestRef};
use crate::plan::UserPlan;
use crate::schedule;

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

/// Runs one user until the core stops.
pub(crate) async fn run_user(ctx: Rc<CoreCtx>, local: usize, plan: UserPlan) {
    ctx.rec.borrow_mut().user_started();
    let kind = &ctx.kinds[plan.kind];
    let mut conn = Connection::default();
    let mut ready_us = micros(plan.spawn_at);
    'life: while !ctx.stopping.get() {
        let task = {
            let r = ctx.rng.borrow_mut().below(kind.total_task_weight);
            &kind.tasks[schedule::pick_weighted(kind.tasks.iter().map(|t| t.weight), r)]
        };
        ctx.rec.borrow_mut().iteration_started();
        let mut pause = Duration::ZERO;
        for &r in &task.requests {
            if ctx.stopping.get() {
                break 'life;
            }
            let req = &ctx.requests[r];
            let start = std::time::Instant::now();
            let actual_us = ctx.clock.us_at(start);
            let was_open = conn.is_open();
            ctx.rec.borrow_mut().begin(
                local,
                InFlight {
                    name: req.name,
                    // A timer that fired early (see TIMER_SLACK) starts the request early; the user was
                    // ready then, so that is its intended start.
                    intended_us: ready_us.min(actual_us),
                    actual_us,
                    user: plan.global,
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
        let think = schedule::think(kind.wait, ctx.rng.borrow_mut().unit()).max(pause);
        let last_end_us = ready_us;
        ready_us = ready_us.saturating_add(micros(think));
        if !think.is_zero() {
            if ready_us >= ctx.end_us {
                // The run ends before this user would wake: it is done.
                break;
            }
            // The connect-failure pause is a floor that timer slack must not eat into.
            let wake = ready_us
                .saturating_sub(TIMER_SLACK.as_micros() as u64)
                .max(last_end_us + micros(pause));
            monoio::time::sleep_until(ctx.clock.at_us(wake).into()).await;
        }
    }
    ctx.rec.borrow_mut().user_stopped(conn.is_open());
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
