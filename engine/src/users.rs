//! Virtual users: each is a task on its core that runs its on_start requests, then loops over
//! weighted tasks with think time, making one request at a time on its own keep-alive connection,
//! and runs its on_stop requests at the end. What a request does is `scenario::exec`'s.
//!
//! Closed model timing: an iteration's intended start is when the user became ready (spawn time, or
//! the end of the previous iteration plus think time; with `Pacing`, the previous iteration's start
//! plus the interval). Each later request in a task is intended to start when the previous one ended
//! (plus think time inside a group). Any delay between "ready" and the actual send is lag, and counts
//! in the sample's corrected latency.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use crate::clock::micros;
use crate::core::{CoreCtx, UserSlot};
use crate::http::Exchange;
use crate::plan::UserPlan;
use crate::scenario::exec::{self, Flow, UserState};
use crate::schedule;

/// The runtime's timers fire on whole-millisecond ticks: a deadline is rounded up to a tick, and the
/// thread parks for whole ticks, so a timer fires 0-2 ms after its deadline. Sleeping until the ready
/// time itself would start every iteration after think time about a millisecond late, and that would
/// count as schedule lag in every corrected latency (a 70 µs endpoint showed a p50 near 1 ms). Users
/// therefore sleep until two ticks before they are ready, so the timer fires in the 2 ms before the
/// ready time: think times are honoured to within 2 ms, and lag measures real lateness (a busy core),
/// not timer rounding.
pub(crate) const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Why a user's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its iterations or its feeder rows ran out: on_stop now.
    Finished,
    /// The run is ending: on_stop at the planned end, unless the run was interrupted.
    RunEnd,
}

/// Runs one user until the core stops.
pub(crate) async fn run_user(ctx: Rc<CoreCtx>, local: usize, plan: UserPlan) {
    let kind = ctx.scenario.kind(plan.kind);
    let mut user = UserState::new(&ctx, kind);
    if !user.start(&ctx, &plan, kind) {
        // A feeder has no row for this user: it never starts.
        return;
    }
    ctx.rec.borrow_mut().user_started();
    let mut ready_us = micros(plan.spawn_at);
    let mut started = kind.on_start.is_empty();
    let end = 'life: loop {
        if ctx.stopping.get() {
            break End::RunEnd;
        }
        let iteration_start = ready_us;
        let flow = if started {
            if kind.iterations.is_some_and(|n| user.iteration >= n)
                || !user.next_rows(&ctx, &plan, kind)
            {
                break End::Finished;
            }
            let task = {
                let r = ctx.rng.borrow_mut().below(kind.total_task_weight);
                &kind.tasks[schedule::pick_weighted(kind.tasks.iter().map(|t| t.weight), r)]
            };
            ctx.rec.borrow_mut().iteration_started();
            let flow = exec::task(&ctx, local, &plan, &mut user, task.root, &mut ready_us).await;
            user.iteration += 1;
            flow
        } else {
            // A user whose on_start fails tries it again after its think time.
            let flow = exec::requests(
                &ctx,
                local,
                &plan,
                &mut user,
                &kind.on_start,
                &mut ready_us,
                false,
            )
            .await;
            if flow == Flow::Continue {
                // The first task follows on_start at once, as in Locust: think time comes after tasks.
                started = true;
                continue;
            }
            flow
        };
        let pause = match flow {
            Flow::Continue => Duration::ZERO,
            Flow::EndIteration(pause) => pause,
            Flow::Stop | Flow::RunOver => break 'life End::RunEnd,
        };
        let last_end_us = ready_us;
        ready_us = exec::next_ready(
            kind.wait,
            iteration_start,
            last_end_us,
            ctx.rng.borrow_mut().unit(),
            pause,
        );
        if ready_us > last_end_us {
            if ready_us >= ctx.end_us {
                // The run ends before this user would wake: it is done.
                break End::RunEnd;
            }
            // The connect-failure pause is a floor that timer slack must not eat into.
            exec::sleep_until(&ctx, ready_us, last_end_us + micros(pause)).await;
        }
    };
    if started && !kind.on_stop.is_empty() {
        // After Ctrl-C the run finalizes at once; on_stop runs only at a planned end.
        let interrupted = ctx.stopping.get() && ctx.clock.now_us() < ctx.end_us;
        if end == End::Finished || !interrupted {
            ctx.lingering.set(ctx.lingering.get() + 1);
            if end == End::RunEnd {
                exec::sleep_until(&ctx, ctx.end_us, ctx.end_us).await;
                ready_us = ready_us.max(ctx.end_us);
            }
            exec::requests(
                &ctx,
                local,
                &plan,
                &mut user,
                &kind.on_stop,
                &mut ready_us,
                true,
            )
            .await;
            ctx.lingering.set(ctx.lingering.get() - 1);
        }
    }
    ctx.rec.borrow_mut().user_stopped(user.conn.is_open());
}

/// Runs `exchange` until it finishes (`Some`) or the core's watchdog marks this user's request as
/// timed out (`None`, and the exchange is dropped). Request timeouts are enforced this way, by a scan
/// every core tick, rather than by arming a timer per request: the request path stays free of timer
/// wheel work, at the price of timeouts firing up to one tick (50 ms) late.
pub(crate) async fn until_timed_out<F: Future<Output = Exchange>>(
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
