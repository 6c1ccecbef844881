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
    /// Reads the three clocks as close together as possible; time zero is now.
    #[cfg(test)]
    pub fn start() -> Clock {
        Clock::start_in(Duration::ZERO)
    }

    /// Reads the three clocks as close together as possible; time zero is `lead` from now. The lead
    /// is the cores' time to set up (runtime, ring, log, users' memory) before their schedules start,
    /// so that the first requests are not late by the engine's own start-up; see [`Clock::wait_for_zero`].
    pub fn start_in(lead: Duration) -> Clock {
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok();
        let now = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let monotonic_ns = mono.map_or(0, |t| {
            t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
        });
        let lead_ns = u64::try_from(lead.as_nanos()).unwrap_or(u64::MAX);
        Clock {
            zero: now + lead,
            monotonic_ns: monotonic_ns.saturating_add(lead_ns),
            wall_ns: i64::try_from(wall.as_nanos().saturating_add(lead.as_nanos()))
                .unwrap_or(i64::MAX),
        }
    }

    /// Blocks the calling thread until time zero and returns how late it got there, µs (0 when it
    /// was early). The thread sleeps until shortly before zero and spins the rest of the way, so that
    /// the schedule starts within microseconds of zero rather than a scheduler wake-up after it.
    pub fn wait_for_zero(&self) -> u64 {
        /// Spinning this long costs little once per core and run, and covers a typical wake-up delay.
        const SPIN: Duration = Duration::from_micros(300);
        let now = Instant::now();
        if now >= self.zero {
            return self.now_us();
        }
        let left = self.zero - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        }
        while Instant::now() < self.zero {
            std::hint::spin_loop();
        }
        self.now_us()
    }

    /// Microseconds since time zero (0 before it).
    #[inline]
    pub fn now_us(&self) -> u64 {
        self.zero.elapsed().as_micros() as u64
    }

    /// Nanoseconds since time zero.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.zero.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The `CLOCK_MONOTONIC` reading `ns` nanoseconds after time zero, for absolute timers. It was
    /// read just before time zero's `Instant`, so it may be a few tens of nanoseconds early: callers
    /// check [`Clock::now_ns`] after waking.
    pub fn monotonic_at(&self, ns: u64) -> u64 {
        self.monotonic_ns.saturating_add(ns)
    }

    /// Microseconds from time zero to `at` (0 for instants before it).
    #[inline]
    pub fn us_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.zero).as_micros() as u64
    }

    /// The instant `offset` after time zero.
    pub fn at(&self, offset: Duration) -> Instant {
        self.zero
            .checked_add(offset)
            .unwrap_or_else(|| self.zero + Duration::from_secs(86_400 * 365))
    }

    /// The instant `us` microseconds after time zero.
    #[inline]
    pub fn at_us(&self, us: u64) -> Instant {
        self.at(Duration::from_micros(us))
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
