//! Steering as a core applies it ([`crate::steer`]): at each tick the loop reads its channel (a
//! `try_recv`, nothing when no change came), records each change in its log, and moves its copy of
//! the load. Closed-model users are looked at one by one against the new target curve: a user not
//! spawned yet gets the new spawn time (or none), a running one a new end for its span (it finishes
//! its iteration, or cuts its think time short, and runs its on_stop), and a stopped one, when the
//! target rises above it again, starts again as a new user in its slot. Open-model arrivals follow the new rate from the loop's own
//! timer heap.

use std::time::Duration;

use super::backend::Backend;
use super::timers::Owner;
use super::{Core, Flight};
use crate::load::Load;
use crate::scenario::program::{Input, Life, Program};
use crate::scenario::user::UserState;
use crate::schedule::{Nanos, Population, UserCurve};
use crate::steer::{Change, Knob};

impl<B: Backend> Core<B> {
    /// Applies the changes that came since the last tick, and starts again the users that stopped
    /// since then but are wanted. Costs one `try_recv` per tick when the run is steerable and nothing
    /// changed.
    pub(super) fn steer_tick(&mut self, now: u64) {
        if self.steer.is_none() {
            return;
        }
        while let Some(change) = self.steer.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.apply_change(change, now);
        }
        if self.stopping || self.revive.is_empty() {
            return;
        }
        // Users that stopped since the last tick: wanted again by a change that came while they ran
        // their on_stop, they start again now. Users this pass stops wait for the next tick.
        let n = self.revive.len();
        for i in 0..n {
            let u = self.revive[i] as usize;
            self.restage(u, now);
        }
        self.revive.drain(..n);
    }

    fn apply_change(&mut self, change: Change, now: u64) {
        self.rec.load_change(change.record());
        if self.stopping {
            return;
        }
        match (&mut self.load, change.knob) {
            (Load::Open(open), Knob::Rate) => {
                open.arrivals.steer(
                    Duration::from_micros(change.at_us),
                    change.to,
                    Duration::from_micros(change.ramp_us),
                );
                self.arrivals_dirty = true;
            }
            (Load::Closed(closed), Knob::Users) => {
                let mut curve = match &closed.population {
                    Population::Steered(c) => c.clone(),
                    Population::Spawn(s) => UserCurve::from_spawn(s),
                    // Refused by the coordinator: the plan owns a staged population.
                    Population::Stages(_) => return,
                };
                curve.steer(
                    change.at_us as f64 / 1e6,
                    change.to,
                    change.ramp_us as f64 / 1e6,
                );
                closed.population = Population::Steered(curve);
                for u in 0..self.users.len() {
                    self.restage(u, now);
                }
            }
            // The coordinator never sends a change of the other model's kind.
            _ => {}
        }
    }

    /// Brings closed-model user `u` in line with the population's curve at `now`.
    fn restage(&mut self, u: usize, now: u64) {
        let Load::Closed(closed) = &mut self.load else {
            return;
        };
        let end = Nanos(self.end_us.saturating_mul(1000));
        let now_ns = Nanos(now.saturating_mul(1000));
        let prog = &self.users[u].prog;
        let span = closed.population.next_span(prog.global, now_ns, end);
        match prog.life() {
            Life::Pending => {
                // Its spawn time was the old curve's: it starts at the new one's, or never.
                let spawn_us = span.map_or(u64::MAX, |(start, _)| start.as_micros());
                self.replace_user(u, spawn_us, false);
            }
            Life::Running => {
                let stop = match span {
                    Some((start, stop)) if start <= now_ns => stop,
                    _ => now_ns,
                };
                let stop = stop.min(end);
                let user = &mut self.users[u];
                user.prog.set_span_end(stop, self.end_us);
                // A user thinking past its new end stops then, not when its think time is over.
                let wake = stop.as_micros().max(now);
                if user.wake_at > wake && user.prog.cut_think(wake) {
                    user.wake_at = wake;
                    self.timers.push(wake, Owner::User(u as u32));
                }
            }
            Life::Gone { finished: false } => {
                if let Some((start, _)) = span {
                    closed.users_left += 1;
                    self.replace_user(u, start.as_micros(), true);
                }
            }
            Life::Ending | Life::Gone { finished: true } | Life::Pooled => {}
        }
    }

    /// Puts a new closed-model user in `u`'s slot, spawned at `spawn_us`, with fresh state when the old
    /// one had run.
    fn replace_user(&mut self, u: usize, spawn_us: u64, fresh: bool) {
        let user = &mut self.users[u];
        let (local, global, kind) = (u as u32, user.prog.global, usize::from(user.prog.kind));
        user.prog = Program::respawn(local, global, kind, spawn_us);
        if fresh {
            user.state = UserState::new(&self.sc);
            user.flight = Flight::default();
        }
        // A sleep it was in belongs to the old user: its timer entry no longer matches.
        user.wake_at = u64::MAX;
        user.done = false;
        self.drive(u, Input::Start);
    }
}
