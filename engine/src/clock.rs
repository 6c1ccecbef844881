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

    /// A clock whose time zero is the wall-clock instant `wall_ns` (ns since the Unix epoch), shortly
    /// ahead or just past: the sharded start, where every shard's time zero is the same `--start-at`
    /// instant, so that intended starts are on the common clock. The instant is mapped to the
    /// monotonic clock now, so it should be near (a clock stepped or slewed between now and the
    /// instant would move it); cores wait for a zero ahead with [`Clock::wait_for_zero`], and a
    /// late wake-up shows as schedule lag instead of a shifted schedule.
    pub fn at_wall(wall_ns: i64) -> Clock {
        let now = Clock::start();
        let offset = wall_ns.saturating_sub(now.wall_ns);
        let by = Duration::from_nanos(offset.unsigned_abs());
        let (zero, monotonic_ns) = if offset >= 0 {
            (
                now.zero.checked_add(by).unwrap_or(now.zero),
                now.monotonic_ns.saturating_add(by.as_nanos() as u64),
            )
        } else {
            (
                now.zero.checked_sub(by).unwrap_or(now.zero),
                now.monotonic_ns.saturating_sub(by.as_nanos() as u64),
            )
        };
        Clock {
            zero,
            monotonic_ns,
            wall_ns,
        }
    }

    /// Blocks the calling thread until time zero and returns how late it got there, µs (0 when it
    /// was early). The thread sleeps (an absolute sleep on the monotonic clock, so a long wait for a
    /// `--start-at` instant ends on it within the timer slack) until shortly before zero and spins the
    /// rest of the way, so that the schedule starts within microseconds of zero rather than a
    /// scheduler wake-up after it.
    pub fn wait_for_zero(&self) -> u64 {
        use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};
        /// Spinning this long costs little once per core and run, and covers a typical wake-up delay.
        const SPIN: Duration = Duration::from_micros(300);
        let wake_ns = self.monotonic_ns.saturating_sub(SPIN.as_nanos() as u64);
        let at = nix::sys::time::TimeSpec::new(
            (wake_ns / 1_000_000_000) as i64,
            (wake_ns % 1_000_000_000) as i64,
        );
        loop {
            let left = self.zero.saturating_duration_since(Instant::now());
            if left <= SPIN {
                break;
            }
            // An interrupted sleep comes round again; a failing one sleeps the rest.
            if clock_nanosleep(
                ClockId::CLOCK_MONOTONIC,
                ClockNanosleepFlags::TIMER_ABSTIME,
                &at,
            )
            .is_err_and(|e| e != nix::errno::Errno::EINTR)
            {
                std::thread::sleep(left - SPIN);
            }
        }
        while Instant::now() < self.zero {
            std::hint::spin_loop();
        }
        self.now_us()
    }

    /// How long until time zero (zero once it has passed).
    pub fn until_zero(&self) -> Duration {
        self.zero.saturating_duration_since(Instant::now())
    }

    /// Microseconds since time zero (0 before it).
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

/// Sleeps until the wall clock reaches `wall_ns` (ns since the Unix epoch), or `stop` is set (checked
/// every 50 ms). Returns whether the instant was reached. The last stretch is one absolute sleep on
/// `CLOCK_REALTIME`, so the wake-up is within the kernel's timer slack of the instant, and follows the
/// wall clock if NTP steps it meanwhile.
pub(crate) fn wait_until_wall(wall_ns: i64, stop: &std::sync::atomic::AtomicBool) -> bool {
    use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};
    const POLL: Duration = Duration::from_millis(50);
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let left = wall_ns.saturating_sub(wall_now_ns());
        if left <= 0 {
            return true;
        }
        let left = Duration::from_nanos(left as u64);
        if left > POLL + POLL {
            std::thread::sleep(POLL);
            continue;
        }
        let at = nix::sys::time::TimeSpec::new(
            wall_ns.div_euclid(1_000_000_000),
            wall_ns.rem_euclid(1_000_000_000),
        );
        // An interrupted sleep (a signal) comes round the loop again; a failing one falls back to a
        // relative sleep.
        if clock_nanosleep(
            ClockId::CLOCK_REALTIME,
            ClockNanosleepFlags::TIMER_ABSTIME,
            &at,
        )
        .is_err_and(|e| e != nix::errno::Errno::EINTR)
        {
            std::thread::sleep(left);
        }
    }
}
