//! When things should happen, as pure functions of their inputs. No clock is read here: callers pass in
//! indexes and random numbers, so every rule is table-tested.
//!
//! Latency is measured from the intended start these functions give (see `users`): a user that
//! should have started at `t` but ran late still has its latency counted from `t`.
//!
//! | model | function | what it answers |
//! |---|---|---|
//! | closed, `Closed(users, spawn_rate)` | [`Spawn::spawn_at`] | when user `n` starts |
//! | closed, `Stages([...])` | [`UserStages::next_span`] | when user `n` is wanted, from when to when |
//! | closed, `wait: Pacing(d)` | [`paced`] | when a paced user's `k`-th iteration is due |
//! | open, `Open` / `RampingRate` | [`RateCurve::arrival`], [`CoreArrivals::intended_start`] | when the `n`-th arrival (run-wide, or of one core) is due |
//!
//! Arrivals are dealt to cores round-robin by their run-wide index (core `c` of `C` takes arrivals
//! `c, c + C, c + 2C, ...`), so the union of every core's arrivals is exactly the run's schedule,
//! whatever the rate and however it divides by the core count; the same rule deals closed users and
//! data rows. A test spread over several engines (shards) deals first to shards, then within each
//! shard to its cores ([`Seat`]), so N shards of C cores deal exactly as one engine of N × C cores.

mod arrivals;
mod population;
mod rate;
mod seat;
mod stages;
#[cfg(test)]
mod testing;
mod wait;
mod weights;

use std::time::Duration;

pub use arrivals::CoreArrivals;
pub use population::{Population, Spawn};
pub use rate::RateCurve;
pub use seat::{Seat, deal};
pub use stages::{UserCurve, UserStages};
pub use wait::{paced, think};
pub use weights::{assign_kinds, pick_weighted};

/// Nanoseconds since the run's time zero: the unit of every intended start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub u64);

impl Nanos {
    /// `d` in nanoseconds, saturating at `u64::MAX` (about 584 years).
    pub fn from_duration(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Whole microseconds, rounded down (the sample log's unit). Rounding both the intended and the
    /// actual start down keeps `intended <= actual` whenever it holds in nanoseconds.
    pub fn as_micros(self) -> u64 {
        self.0 / 1000
    }

    /// Seconds (with a fraction), converted from `f64` seconds: rounded to the nearest nanosecond and
    /// saturated, so that `0.003 s` is exactly 3 ms rather than 2 999 999 ns.
    fn from_secs_f64(secs: f64) -> Nanos {
        let ns = (secs * 1e9).round();
        if ns.is_nan() || ns <= 0.0 {
            Nanos(0)
        } else if ns >= u64::MAX as f64 {
            Nanos(u64::MAX)
        } else {
            Nanos(ns as u64)
        }
    }

    fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}
