//! What a core sends the coordinator: a report every second, and its totals when it is done.

use formats::IntervalStats;
use hdrhistogram::Histogram;

use crate::live::tally::LiveSecond;

/// What a core tells the coordinator.
#[derive(Debug)]
pub(crate) enum Report {
    /// One second of this core's activity.
    Second(SecondReport),
    /// The core has finished and its log is closed.
    Done(CoreDone),
}

#[derive(Debug)]
pub(crate) struct SecondReport {
    pub core: u32,
    /// Which second of the run this closes (1 for the first; the last may be partial).
    pub second: u64,
    pub active_users: u32,
    pub requests: u32,
    pub failures: u32,
    /// Corrected latency (from the intended start) of the requests completed this second, µs.
    pub latency: Histogram<u64>,
    /// Schedule lag (actual minus intended start) of the requests completed this second, µs.
    pub lag: Histogram<u64>,
    pub lag_max_us: u32,
    pub iterations_dropped: u32,
    /// What the live view needs besides the console's figures; `None` without a live view.
    pub live: Option<Box<LiveSecond>>,
    /// The interval record this core logged for the second: the evidence the console judges the
    /// second by, with the same rule as the analyzer (`formats::health`).
    pub stats: IntervalStats,
    /// The second's failures by reason (the sample's message, else its outcome), for the console's
    /// failure reasons; empty in a second without failures.
    pub failure_reasons: Vec<(String, u32)>,
}

#[derive(Debug)]
pub(crate) struct CoreDone {
    pub core: u32,
    /// Per request name: name, corrected-latency histogram, successes, failures.
    pub names: Vec<(String, Histogram<u64>, u64, u64)>,
    pub samples: u64,
    /// Schedule lag (actual minus intended start) of every request, µs.
    pub lag: Option<Histogram<u64>>,
    pub iterations_started: u64,
    pub iterations_dropped: u64,
    pub pinned: bool,
    /// Set when the core could not write its log.
    pub error: Option<String>,
    /// Requests that failed because this generator ran out of something (file descriptors, ports,
    /// memory), and the first such message: the console says so, since they are not the target's fault.
    pub local_resource: (u64, Option<String>),
    /// I/O operations the kernel had not finished when the core stopped waiting for them at its end
    /// (0 unless something was left armed: an engine bug, which the runner names).
    pub unsettled: usize,
}

impl CoreDone {
    /// A core that could not run: no samples, and why.
    pub(crate) fn failed(core: u32, pinned: bool, error: String) -> CoreDone {
        CoreDone {
            core,
            names: Vec::new(),
            samples: 0,
            lag: None,
            iterations_started: 0,
            iterations_dropped: 0,
            pinned,
            error: Some(error),
            local_resource: (0, None),
            unsettled: 0,
        }
    }
}
