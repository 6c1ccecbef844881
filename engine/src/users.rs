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

use crate::core::{CoreCtx, InFlight};
use crate::http::{Connection, RequestRef};
use crate::plan::UserPlan;
use crate::schedule;

/// After a failed connect a user pauses this long before its next attempt, so that a refused port
/// cannot spin a core at 100 % (a refused loopback connect can fail without ever yielding).
const CONNECT_FAILURE_PAUSE: Duration = Duration::from_millis(1);

/// Runs one user until the core stops.
pub(crate) async fn run_user(ctx: Rc<CoreCtx>, local: usize, plan: UserPlan) {
    ctx.rec.borrow_mut().user_started();
    let kind = &ctx.kinds[plan.kind];
    let mut conn = Connection::default();
    let mut ready_us = plan.spawn_at.as_micros() as u64;
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
            let actual_us = ctx.clock.now_us();
            let was_open = conn.is_open();
            ctx.rec.borrow_mut().begin(
                local,
                InFlight {
                    name: req.name,
                    intended_us: ready_us,
                    actual_us,
                    user: plan.global,
                },
            );
            let ex = conn
                .exchange(
                    ctx.next_addr(),
                    RequestRef {
                        bytes: &req.bytes,
                        head: req.head,
                    },
                    ctx.limits,
                    start,
                )
                .await;
            let end_us = ctx.clock.now_us();
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
        ready_us += think.as_micros() as u64;
        if !think.is_zero() {
            if ready_us >= ctx.end_us {
                // The run ends before this user would wake: it is done.
                break;
            }
            monoio::time::sleep_until(ctx.clock.at_us(ready_us).into()).await;
        }
    }
    ctx.rec.borrow_mut().user_stopped(conn.is_open());
}
