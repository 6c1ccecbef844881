//! A closed model's users over time: the spawn schedule of `Closed(users, spawn_rate)`, and the
//! population that says when each user is wanted.

use std::time::Duration;

use super::{Nanos, UserCurve, UserStages};

/// A closed model's users over time: each user is wanted during spans, and runs iterations in them.
#[derive(Debug, Clone, PartialEq)]
pub enum Population {
    /// `Closed(users, spawn_rate)`: user `n` from [`Spawn::spawn_at`] until the end.
    Spawn(Spawn),
    /// `Stages([...])`.
    Stages(UserStages),
    /// `Closed(users, spawn_rate)` after the run was steered: a target curve.
    Steered(UserCurve),
}

impl Population {
    /// The most users wanted at once: how many distinct users the run needs.
    pub fn users(&self) -> u32 {
        match self {
            Population::Spawn(s) => s.users,
            Population::Stages(s) => s.max_users(),
            Population::Steered(c) => c
                .stages
                .iter()
                .map(|&(u, _)| u.max(0.0).ceil().min(f64::from(u32::MAX)) as u32)
                .max()
                .unwrap_or(0),
        }
    }

    /// The first span of `user` that ends after `after`, clipped to start no earlier; a span that
    /// never stops on its own stops at `end`.
    pub fn next_span(&self, user: u32, after: Nanos, end: Nanos) -> Option<(Nanos, Nanos)> {
        let (start, stop) = match self {
            Population::Spawn(s) => (Nanos::from_duration(s.spawn_at(user)?), end),
            Population::Stages(s) => s.next_span(user, after)?,
            Population::Steered(c) => c.next_span(user, after)?,
        };
        let (start, stop) = (start.max(after), stop.min(end));
        (start < stop).then_some((start, stop))
    }
}

/// The closed model's spawn schedule: user `n` (counted across all cores) starts at `n / rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spawn {
    /// Users in total.
    pub users: u32,
    /// Users per second; `None` starts everyone at time zero.
    pub rate: Option<f64>,
}

impl Spawn {
    /// When user `n` starts, from the run's time zero; `None` past the last user.
    pub fn spawn_at(&self, n: u32) -> Option<Duration> {
        if n >= self.users {
            return None;
        }
        match self.rate {
            None => Some(Duration::ZERO),
            // Non-positive or non-finite rates never reach here (the plan refuses them); treat them as
            // "all at once" rather than dividing by zero.
            Some(r) if !(r.is_finite() && r > 0.0) => Some(Duration::ZERO),
            Some(r) => Some(Duration::try_from_secs_f64(f64::from(n) / r).unwrap_or(Duration::MAX)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_table() {
        let ms = Duration::from_millis;
        let rows: &[(Spawn, u32, Option<Duration>)] = &[
            // No rate: everyone at time zero.
            (
                Spawn {
                    users: 3,
                    rate: None,
                },
                2,
                Some(ms(0)),
            ),
            // 10 users/s: the n-th user at n × 100 ms, starting with user 0 at zero.
            (
                Spawn {
                    users: 3,
                    rate: Some(10.0),
                },
                0,
                Some(ms(0)),
            ),
            (
                Spawn {
                    users: 3,
                    rate: Some(10.0),
                },
                2,
                Some(ms(200)),
            ),
            // Past the last user: nobody.
            (
                Spawn {
                    users: 3,
                    rate: Some(10.0),
                },
                3,
                None,
            ),
            // A fractional rate: one user every 2 s.
            (
                Spawn {
                    users: 5,
                    rate: Some(0.5),
                },
                4,
                Some(ms(8000)),
            ),
            // A rate of zero cannot come from a valid plan; it must not divide by zero.
            (
                Spawn {
                    users: 2,
                    rate: Some(0.0),
                },
                1,
                Some(ms(0)),
            ),
            // A tiny rate overflows Duration: saturate rather than panic.
            (
                Spawn {
                    users: u32::MAX,
                    rate: Some(1e-300),
                },
                u32::MAX - 1,
                Some(Duration::MAX),
            ),
        ];
        for (i, (spawn, n, want)) in rows.iter().enumerate() {
            assert_eq!(spawn.spawn_at(*n), *want, "row {i}");
        }
    }
}
