//! How many logs to read side by side, and how many samples to keep exactly, within the memory
//! available.

/// Bytes of memory an exactly kept sample costs at the peak of the analysis: 24 in the columns (16 for
/// the latency columns, 4 for the timing phases' `ttfb_us`, 4 for its task's latencies,
/// [`crate::tasks`]) plus headroom for the selection's
/// collections and the failures frame (the 100M-sample benchmark peaked at about 25 bytes a sample
/// including the log buffers before the phase column; see docs/performance.md). Each new connection's
/// phase entries count as one more sample ([`crate::phases`]).
pub const BYTES_PER_EXACT_SAMPLE: u64 = 32;

/// Memory available now (MemAvailable in /proc/meminfo), in bytes; `None` where it cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    kib.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// How to read a run's logs within the memory available.
///
/// A log is read into memory whole (the `formats` reader decodes from a byte slice), so reading
/// several large logs at once costs their total size. Logs are read in parallel only while their
/// files fit in a quarter of the available memory; the exact columns then get half of what the
/// file buffers leave, and samples beyond that go to histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Logs read at the same time.
    pub readers: usize,
    /// Samples kept exactly.
    pub exact_limit: u64,
}

impl MemoryPlan {
    /// The plan for logs of these sizes, with `available` bytes of memory and `cpus` CPUs.
    pub fn new(log_bytes: &[u64], available: u64, cpus: usize) -> Self {
        let largest = log_bytes.iter().copied().max().unwrap_or(0);
        let mut readers = cpus.min(log_bytes.len()).max(1);
        while readers > 1 && readers as u64 * largest > available / 4 {
            readers -= 1;
        }
        let buffers = readers as u64 * largest;
        let exact_limit =
            (available.saturating_sub(buffers) / 2 / BYTES_PER_EXACT_SAMPLE).max(10_000_000);
        MemoryPlan {
            readers,
            exact_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_plan_reads_big_logs_one_at_a_time() {
        const GIB: u64 = 1 << 30;
        // 100M samples on 2 cores: two 600 MB logs fit side by side, every sample stays exact.
        let plan = MemoryPlan::new(&[600 << 20, 600 << 20], 20 * GIB, 2);
        assert_eq!(plan.readers, 2);
        assert!(plan.exact_limit > 100_000_000, "{plan:?}");
        // 1B samples: two 6 GB logs are read one after the other and most samples go to histograms.
        let plan = MemoryPlan::new(&[6 * GIB, 6 * GIB], 20 * GIB, 2);
        assert_eq!(plan.readers, 1);
        assert!(plan.exact_limit < 400_000_000, "{plan:?}");
        assert!(MemoryPlan::new(&[], 0, 8).exact_limit >= 10_000_000);
    }
}
