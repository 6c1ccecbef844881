//! Helpers shared by the schedule's table tests.

use std::time::Duration;

use super::Nanos;

pub(super) fn ms(n: u64) -> Nanos {
    Nanos(n * 1_000_000)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
