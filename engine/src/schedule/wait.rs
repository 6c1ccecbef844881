//! Time between iterations: think time, and the fixed grid of a paced user.

use std::time::Duration;

use super::Nanos;
use crate::plan::Wait;

/// The intended start of a paced user's `k`-th iteration (from 0): on a fixed grid from its first
/// start, whatever the iterations took (Gatling's `pace`, LoadRunner's pacing). A user that overran
/// starts the next iteration at once, and its lateness is schedule lag that counts in corrected
/// latency, as wrk2 counts a late request.
pub fn paced(first: Nanos, pace: Duration, k: u64) -> Nanos {
    let step = Nanos::from_duration(pace).0;
    Nanos(first.0.saturating_add(step.saturating_mul(k)))
}

/// Think time for a random `unit` in [0, 1).
pub fn think(wait: Wait, unit: f64) -> Duration {
    match wait {
        Wait::None => Duration::ZERO,
        Wait::Constant(d) => d,
        // Paced users compute their next start with `paced` (on a grid from their start); between
        // iterations they do not think.
        Wait::Pacing(_) => Duration::ZERO,
        Wait::Between(min, max) => {
            let span = max.saturating_sub(min);
            min + span.mul_f64(unit.clamp(0.0, 1.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::ms;

    #[test]
    fn paced_table() {
        let rows: &[(Nanos, Duration, u64, Nanos)] = &[
            // The first iteration at the user's start, then one every pace.
            (ms(100), Duration::from_millis(250), 0, ms(100)),
            (ms(100), Duration::from_millis(250), 4, ms(1100)),
            // A pace of zero degenerates to "as fast as possible": every iteration is due at once.
            (ms(5), Duration::ZERO, 1000, ms(5)),
            // Overflow saturates instead of wrapping to the past.
            (ms(1), Duration::from_secs(u64::MAX / 2), 3, Nanos(u64::MAX)),
        ];
        for (i, &(first, pace, k, want)) in rows.iter().enumerate() {
            assert_eq!(paced(first, pace, k), want, "row {i}");
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
}
