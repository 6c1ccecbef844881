//! The run's clock: microseconds since time zero, read from `Instant` (CLOCK_MONOTONIC on Linux).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time zero of a run, shared (by copy) with every core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    zero: Instant,
    /// CLOCK_MONOTONIC in ns at time zero (the logs' clock base).
    pub monotonic_ns: u64,
    /// Wall clock in ns since the Unix epoch at time zero.
    pub wall_ns: i64,
}

impl Clock {
    /// Reads the three clocks as close together as possible.
    pub fn start() -> Clock {
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok();
        let zero = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let monotonic_ns = mono.map_or(0, |t| {
            t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
        });
        Clock {
            zero,
            monotonic_ns,
            wall_ns: i64::try_from(wall.as_nanos()).unwrap_or(i64::MAX),
        }
    }

    /// Microseconds since time zero.
    #[inline]
    pub fn now_us(&self) -> u64 {
        self.zero.elapsed().as_micros() as u64
    }

    /// The `CLOCK_MONOTONIC` reading `ns` nanoseconds after time zero, for absolute timers. It was
    /// read just before time zero's `Instant`, so it may be a few tens of nanoseconds early: callers
    /// check [`Clock::now_us`] after waking.
    pub fn monotonic_at(&self, ns: u64) -> u64 {
        self.monotonic_ns.saturating_add(ns)
    }
}

/// Whole microseconds in `d`, saturating (a spawn time from an absurdly low rate can be `Duration::MAX`).
#[inline]
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Wall-clock now, ns since the Unix epoch.
pub(crate) fn wall_now_ns() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
