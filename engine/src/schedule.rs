//! When things should happen, as pure functions of their inputs. No clock is read here: callers pass in
//! indexes and random numbers, so every rule is table-tested.
//!
//! Latency is measured from the intended start these functions give (see `users`): a user that
//! should have started at `t` but ran late still has its latency counted from `t`.

use std::time::Duration;

use crate::plan::Wait;

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

/// Think time for a random `unit` in [0, 1).
pub fn think(wait: Wait, unit: f64) -> Duration {
    match wait {
        Wait::None => Duration::ZERO,
        // Pacing counts from the iteration's start, not its end: `scenario::exec::next_ready`.
        Wait::Pacing(_) => Duration::ZERO,
        Wait::Constant(d) => d,
        Wait::Between(min, max) => {
            let span = max.saturating_sub(min);
            min + span.mul_f64(unit.clamp(0.0, 1.0))
        }
    }
}

/// Deals `users` users to kinds by weight so that every prefix is as close as possible to the weights
/// (smooth weighted round-robin, as nginx balances upstreams). Zero weights get no users.
pub fn assign_kinds(weights: &[u32], users: u32) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    if total == 0 {
        return vec![0; users as usize];
    }
    let mut current = vec![0i64; weights.len()];
    (0..users)
        .map(|_| {
            for (c, &w) in current.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let best = (0..weights.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            best
        })
        .collect()
}

/// Picks an index from `weights` for a random `r` in `0..sum(weights)`.
pub fn pick_weighted(weights: impl IntoIterator<Item = u32>, mut r: u32) -> usize {
    let mut last = 0;
    for (i, w) in weights.into_iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
        if w > 0 {
            last = i;
        }
    }
    last
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

    #[test]
    fn think_table() {
        let s = Duration::from_secs;
        let rows: &[(Wait, f64, Duration)] = &[
            (Wait::None, 0.7, s(0)),
            (Wait::Constant(s(2)), 0.7, s(2)),
            (Wait::Between(s(1), s(3)), 0.0, s(1)),
            (Wait::Between(s(1), s(3)), 0.5, s(2)),
            // Out-of-range randoms are clamped, never extrapolated.
            (Wait::Between(s(1), s(3)), 7.0, s(3)),
            // min > max cannot come from a valid profile; it yields min, not a panic.
            (Wait::Between(s(3), s(1)), 0.5, s(3)),
        ];
        for (i, (wait, unit, want)) in rows.iter().enumerate() {
            assert_eq!(think(*wait, *unit), *want, "row {i}");
        }
    }

    #[test]
    fn kinds_follow_weights_in_every_prefix() {
        assert_eq!(assign_kinds(&[3, 1], 8), [0, 0, 1, 0, 0, 0, 1, 0]);
        assert_eq!(assign_kinds(&[1, 0, 1], 4), [0, 2, 0, 2]);
        assert_eq!(assign_kinds(&[0, 0], 2), [0, 0]);
        assert!(assign_kinds(&[5], 0).is_empty());
    }

    #[test]
    fn weighted_pick() {
        assert_eq!(pick_weighted([1, 2, 1], 0), 0);
        assert_eq!(pick_weighted([1, 2, 1], 2), 1);
        assert_eq!(pick_weighted([1, 2, 1], 3), 2);
        // Zero-weight entries are never picked, even by an out-of-range random.
        assert_eq!(pick_weighted([0, 4, 0], 0), 1);
        assert_eq!(pick_weighted([0, 4, 0], 99), 1);
    }
}
