//! Waiting until an exact instant on the embedded target's monoio runtime, which monoio's own timers
//! cannot do: its timer wheel counts whole milliseconds, so a `sleep_until` fires 0–2 ms after its
//! deadline, which would blur the latencies the target is asked to add.
//!
//! [`PreciseTimer`] is a `timerfd` on `CLOCK_MONOTONIC` armed with an absolute deadline in nanoseconds
//! and awaited through the runtime as a readable file (a `PollAdd` under io_uring, an epoll
//! registration under the legacy driver), so the thread still parks in the runtime and serves its
//! connections while it waits. The kernel's high-resolution timer wakes it within microseconds of the
//! deadline. Each wait costs a `timerfd_settime`, a poll and a `read`; the arrival scheduler skips them
//! when the next arrival is already due or only a few microseconds away.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// A one-shot timer with nanosecond deadlines on `CLOCK_MONOTONIC`, for one task at a time.
pub(crate) struct PreciseTimer {
    fd: TimerFd,
    /// A second descriptor for the same timer, registered with the runtime to await readiness.
    readiness: monoio::net::UnixStream,
}

impl std::fmt::Debug for PreciseTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreciseTimer").finish_non_exhaustive()
    }
}

impl PreciseTimer {
    /// Creates the timer; must be called on a monoio runtime thread.
    pub fn new() -> io::Result<PreciseTimer> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let dup: OwnedFd = fd.as_fd().try_clone_to_owned()?;
        // monoio has no type for "any readable descriptor"; its Unix stream only needs a descriptor
        // it can poll, and this one is never read or written through it.
        let readiness =
            monoio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(dup))?;
        Ok(PreciseTimer { fd, readiness })
    }

    /// Waits until `CLOCK_MONOTONIC` reads at least `deadline_ns`. Returns at once for a deadline in
    /// the past.
    pub async fn sleep_until(&self, deadline_ns: u64) -> io::Result<()> {
        // An all-zero expiration would disarm the timer instead of firing it.
        let at = TimeSpec::from(Duration::from_nanos(deadline_ns.max(1)));
        self.fd.set(
            Expiration::OneShot(at),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )?;
        // Wait for readiness first: a read before it would almost always fail with EAGAIN, a wasted
        // system call per wait.
        let mut count = [0u8; 8];
        loop {
            self.readiness.readable(false).await?;
            match nix::unistd::read(self.fd.as_fd(), &mut count) {
                Ok(_) => return Ok(()),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (a vDSO call, no system call).
pub(crate) fn monotonic_now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}
