//! Phase timings on stderr when `STAMPEDE_ANALYZER_TIMINGS` is set: how the benchmark's seconds
//! split between loading, polars and rendering.

use std::time::Instant;

/// A stopwatch that prints each lap when timings are enabled.
#[derive(Debug)]
pub struct Clock {
    enabled: bool,
    last: std::cell::Cell<Instant>,
}

impl Clock {
    /// Starts the stopwatch.
    pub fn start() -> Self {
        Clock {
            enabled: std::env::var_os("STAMPEDE_ANALYZER_TIMINGS").is_some(),
            last: Instant::now().into(),
        }
    }

    /// Prints the time since the last lap (or the start) under `what`.
    pub fn lap(&self, what: &str) {
        if self.enabled {
            let now = Instant::now();
            eprintln!(
                "timing: {what}: {:.3} s",
                (now - self.last.get()).as_secs_f64()
            );
            self.last.set(now);
        }
    }
}
