//! Virtual users: each is a task on its core making one request at a time on its own keep-alive
//! connection; what a request does (templates, extraction, checks, cookies, auth) is
//! `scenario::exec`'s. A closed-model user ([`run_user`]) runs its on_start requests, loops over
//! weighted tasks with think time during each span the population wants it, and runs its on_stop
//! requests at the end of its life. An open-model user ([`run_pooled_user`]) runs one iteration per
//! arrival the scheduler hands it (its on_start before the first).
//!
//! Timing: an iteration's intended start is when the user became ready (spawn time, the end of the
//! previous iteration plus think time, its slot on a pacing grid, or the arrival's scheduled time in
//! an open model). Each later request in a task is intended to start when the previous one ended
//! (plus think time inside a group). Any delay between "ready" and the actual send is lag, and counts
//! in the sample's corrected latency.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use crate::clock::micros;
use crate::core::{CoreCtx, UserSlot};
use crate::plan::{UserPlan, Wait};
use crate::scenario::UserKind;
use crate::scenario::exec::{self, Flow, UserState};
use crate::schedule::{self, Nanos};
use crate::timer::PreciseTimer;

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
    /// Its iterations, its feeder rows or the run's iteration limit ran out: on_stop now.
    Finished,
    /// The population no longer wants it, or the run is ending: on_stop when its last span ends,
    /// unless the run was interrupted.
    Left,
}

/// Runs one closed-model user: during each span the population wants it, it loops over its tasks with
/// think time (or pacing) until the span ends, the run stops or an iteration limit is reached; its
/// on_start runs once, before its first task, and its on_stop once, at the end of its life.
pub(crate) async fn run_user(ctx: Rc<CoreCtx>, local: usize, plan: UserPlan) {
    let kind = ctx.scenario.kind(plan.kind);
    let closed = ctx.closed.as_ref().expect("a closed core has a population");
    let run_end = Nanos(ctx.end_us.saturating_mul(1000));
    let mut user = UserState::new(&ctx, kind);
    if !user.start(&ctx, &plan, kind) {
        // A feeder has no row for this user: it never starts.
        ctx.user_finished();
        return;
    }
    let mut started = kind.on_start.is_empty();
    // Paced users wait on a timer of their own (created on first use).
    let mut precise: Option<PreciseTimer> = None;
    let mut done = 0u64;
    let mut after = Nanos(0);
    let mut active = false;
    let mut ready_us = 0;
    let mut left_at_us = ctx.end_us;
    let end = 'spans: loop {
        let Some((start, stop)) = closed.population.next_span(plan.global, after, run_end) else {
            break End::Left;
        };
        if active {
            // Between spans the user is not running: its connection closes (as a stopped Locust
            // user's would), and the next span reconnects.
            ctx.rec.borrow_mut().user_stopped(user.conn.is_open());
            user.conn.abandon();
            active = false;
        }
        after = stop;
        let stop_us = stop.as_micros();
        left_at_us = stop_us.min(ctx.end_us);
        let start_us = start.as_micros();
        // Early by the timer slack, like think time, so the first request is not "late" by timer
        // rounding; the user then starts at once and its intended start is the actual one.
        exec::sleep_until(&ctx, start_us, 0).await;
        if ctx.stopping.get() {
            break End::Left;
        }
        ctx.rec.borrow_mut().user_started();
        active = true;
        ready_us = start_us;
        let mut in_span = 0u64;
        loop {
            if ctx.stopping.get() || ready_us >= stop_us {
                break;
            }
            let iteration_start = ready_us;
            let flow = if started {
                if closed.per_user.is_some_and(|limit| done >= limit)
                    || kind.iterations.is_some_and(|n| user.iteration >= n)
                    || !user.next_rows(&ctx, &plan, kind)
                    || !ctx.take_iteration()
                {
                    break 'spans End::Finished;
                }
                done += 1;
                in_span += 1;
                let flow = iteration(&ctx, local, &plan, &mut user, kind, &mut ready_us).await;
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
                Flow::Stop | Flow::RunOver => break 'spans End::Left,
            };
            let last_end_us = ready_us;
            let floor_us = last_end_us.saturating_add(micros(pause));
            let paced = match kind.wait {
                // On the grid from the span's start, however long the iteration took. A late user
                // starts its next iteration at once, and the lateness is lag.
                Wait::Pacing(pace) if started && in_span > 0 => {
                    Some(schedule::paced(start, pace, in_span))
                }
                _ => None,
            };
            ready_us = match paced {
                // Its slot, even if already past (the lateness is lag); after a failed connect,
                // not before the pause is over.
                Some(due) if pause.is_zero() => due.as_micros(),
                Some(due) => due.as_micros().max(floor_us),
                None => exec::next_ready(
                    kind.wait,
                    iteration_start,
                    last_end_us,
                    ctx.rng.borrow_mut().unit(),
                    pause,
                ),
            };
            if ready_us > last_end_us {
                if ready_us >= stop_us {
                    // The span ends before this user would wake: it is done for now.
                    break;
                }
                match paced {
                    // A paced iteration's intended start is its slot on the grid, exactly: wait for
                    // it on a precise timer rather than start early by the timer slack.
                    Some(due) => {
                        sleep_precisely(&ctx, &mut precise, due.0.max(ready_us * 1000)).await;
                    }
                    // The connect-failure pause is a floor that timer slack must not eat into.
                    None => exec::sleep_until(&ctx, ready_us, floor_us).await,
                }
            }
        }
    };
    if started && !kind.on_stop.is_empty() && (end == End::Finished || !interrupted(&ctx)) {
        if !active {
            ctx.rec.borrow_mut().user_started();
            active = true;
        }
        let not_before_us = if end == End::Left { left_at_us } else { 0 };
        on_stop(
            &ctx,
            local,
            &plan,
            &mut user,
            kind,
            &mut ready_us,
            not_before_us,
        )
        .await;
    }
    if active {
        ctx.rec.borrow_mut().user_stopped(user.conn.is_open());
    }
    ctx.user_finished();
}

/// Whether the run was cut short (Ctrl-C) rather than reaching its planned end. The run then
/// finalizes at once, and on_stop does not run.
fn interrupted(ctx: &CoreCtx) -> bool {
    ctx.stopping.get() && ctx.clock.now_us() < ctx.end_us
}

/// Runs the user's on_stop requests, the first not before `not_before_us`. The end of the run waits
/// for them (within its grace period) while they linger.
async fn on_stop(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    kind: &UserKind,
    ready_us: &mut u64,
    not_before_us: u64,
) {
    ctx.lingering.set(ctx.lingering.get() + 1);
    exec::sleep_until(ctx, not_before_us, not_before_us).await;
    *ready_us = (*ready_us).max(not_before_us);
    exec::requests(ctx, local, plan, user, &kind.on_stop, ready_us, true).await;
    ctx.lingering.set(ctx.lingering.get() - 1);
}

/// One iteration: a task picked by weight, its requests from `ready_us`.
async fn iteration(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    kind: &UserKind,
    ready_us: &mut u64,
) -> Flow {
    let task = {
        let r = ctx.rng.borrow_mut().below(kind.total_task_weight);
        &kind.tasks[schedule::pick_weighted(kind.tasks.iter().map(|t| t.weight), r)]
    };
    ctx.rec.borrow_mut().iteration_started();
    exec::task(ctx, local, plan, user, task.root, ready_us).await
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
/// iteration from the arrival's intended start (its on_start first, the first time), and goes back
/// to the pool, until the core stops. An arrival it cannot serve (its feeder rows or iterations ran
/// out) is counted as dropped, never skipped silently.
pub(crate) async fn run_pooled_user(ctx: Rc<CoreCtx>, local: usize, kind_index: usize) {
    let pool = ctx.pool.as_ref().expect("an open core has a pool");
    let kind = ctx.scenario.kind(kind_index);
    // Pool users are numbered like closed users: this core's `local`-th is its seat's `local`-th item
    // of the run-wide deal, so `user_id()` and unique rows never repeat across cores or shards.
    let global = ctx.scenario.seat.item(local as u64).unwrap_or(u64::MAX);
    let plan = UserPlan {
        global: u32::try_from(global).unwrap_or(u32::MAX),
        kind: kind_index,
        spawn_at: Duration::ZERO,
    };
    let mut user = UserState::new(&ctx, kind);
    let mut can_serve = user.start(&ctx, &plan, kind);
    let mut started = kind.on_start.is_empty();
    let mut ready_us = 0;
    ctx.rec.borrow_mut().user_started();
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
        can_serve = can_serve
            && kind.iterations.is_none_or(|n| user.iteration < n)
            && user.next_rows(&ctx, &plan, kind);
        if !can_serve {
            ctx.rec.borrow_mut().iteration_dropped();
            pool.release(kind_index, local);
            continue;
        }
        ready_us = due.as_micros();
        let mut flow = Flow::Continue;
        if !started {
            flow = exec::requests(
                &ctx,
                local,
                &plan,
                &mut user,
                &kind.on_start,
                &mut ready_us,
                false,
            )
            .await;
            started = flow == Flow::Continue;
        }
        if started {
            flow = iteration(&ctx, local, &plan, &mut user, kind, &mut ready_us).await;
            user.iteration += 1;
        }
        pool.release(kind_index, local);
        if matches!(flow, Flow::Stop | Flow::RunOver) {
            break;
        }
    }
    if started && !kind.on_stop.is_empty() && !interrupted(&ctx) {
        let now_us = ctx.clock.now_us();
        on_stop(&ctx, local, &plan, &mut user, kind, &mut ready_us, now_us).await;
    }
    ctx.rec.borrow_mut().user_stopped(user.conn.is_open());
}

/// Runs `exchange` until it finishes (`Some`) or the core's watchdog marks this user's request as
/// timed out (`None`, and the exchange is dropped). Request timeouts are enforced this way, by a scan
/// every core tick, rather than by arming a timer per request: the request path stays free of timer
/// wheel work, at the price of timeouts firing up to one tick (50 ms) late.
///
/// The caller pins the exchange (`pin!`) in its own state: taking it by value would store it twice in
/// this future (as the argument and as the pinned local), and every user's task holds this future
/// inline, so that doubled the memory of an idle user.
pub(crate) async fn until_timed_out<T, F: Future<Output = T>>(
    slot: &UserSlot,
    mut exchange: Pin<&mut F>,
) -> Option<T> {
    slot.timed_out.set(false);
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
