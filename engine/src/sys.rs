//! Thin safe wrappers over the operating system: pinning, per-thread CPU time, file limits, host facts.

use std::time::Duration;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Vec<u32> {
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .map(|c| c as u32)
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get() as u32)).collect(),
    }
}

/// Pins the calling thread to `cpu`. Failure is not fatal (the manifest then records no CPU).
pub(crate) fn pin_current_thread(cpu: u32) -> bool {
    let mut set = CpuSet::new();
    if set.set(cpu as usize).is_err() {
        return false;
    }
    sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}

/// What `getrusage(RUSAGE_THREAD)` says about the calling thread, cumulative since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ThreadUsage {
    pub user: Duration,
    pub system: Duration,
    /// Voluntary context switches: the thread blocked (waited for I/O or a timer).
    pub voluntary: u64,
    /// Involuntary context switches: the kernel took the CPU from the thread while it could run.
    pub involuntary: u64,
}

/// CPU time and context switches of the calling thread (zeros if the kernel refuses).
pub(crate) fn thread_usage() -> ThreadUsage {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000)
            };
            ThreadUsage {
                user: tv(u.user_time()),
                system: tv(u.system_time()),
                voluntary: u.voluntary_context_switches() as u64,
                involuntary: u.involuntary_context_switches() as u64,
            }
        }
        Err(_) => ThreadUsage::default(),
    }
}

/// Reads, once a second, what the kernel knows about the CPU time a core's thread did not get: its
/// run-queue delay (`/proc/thread-self/schedstat`) and its CPU's steal time (`/proc/stat`). The files
/// stay open and are re-read from offset 0, into a buffer allocated once; a kernel without either
/// file or field gives `None`, never an error.
#[derive(Debug)]
pub(crate) struct SchedProbe {
    /// `/proc/thread-self/schedstat` as opened by the core's thread: the descriptor keeps naming that
    /// thread.
    schedstat: Option<std::fs::File>,
    /// `/proc/stat`, and the CPU whose line to read.
    stat: Option<(std::fs::File, u32)>,
    /// Microseconds per clock tick of `/proc/stat`.
    tick_us: u64,
    buf: Vec<u8>,
}

impl SchedProbe {
    /// A probe for the calling thread, pinned to `cpu` (steal is read only for a pinned thread: an
    /// unpinned one runs on whichever CPU is free).
    pub(crate) fn for_current_thread(cpu: Option<u32>) -> SchedProbe {
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|&hz| hz > 0)
            .unwrap_or(100) as u64;
        SchedProbe {
            schedstat: std::fs::File::open("/proc/thread-self/schedstat").ok(),
            stat: cpu.and_then(|c| Some((std::fs::File::open("/proc/stat").ok()?, c))),
            tick_us: 1_000_000 / hz,
            buf: Vec::new(),
        }
    }

    /// Total time the thread has waited runnable on a run queue, µs.
    pub(crate) fn run_delay_us(&mut self) -> Option<u64> {
        let text = read_start(self.schedstat.as_ref()?, &mut self.buf, 256)?;
        parse_schedstat_delay_ns(text).map(|ns| ns / 1000)
    }

    /// Total steal time of the pinned CPU, µs.
    pub(crate) fn steal_us(&mut self) -> Option<u64> {
        let (file, cpu) = self.stat.as_ref()?;
        let label = CpuLabel::new(*cpu);
        // The per-CPU lines come first, each well under 160 bytes.
        let want = 160 * (*cpu as usize + 2);
        let text = read_start(file, &mut self.buf, want)?;
        parse_stat_steal_ticks(text, label.as_str()).map(|ticks| ticks * self.tick_us)
    }
}

/// `cpu7 `: the label of a CPU's line in `/proc/stat`, formatted without allocating.
struct CpuLabel([u8; 16], usize);

impl CpuLabel {
    fn new(cpu: u32) -> CpuLabel {
        use std::io::Write as _;
        let mut bytes = [0u8; 16];
        let mut w = &mut bytes[..];
        let _ = write!(w, "cpu{cpu} ");
        let len = 16 - w.len();
        CpuLabel(bytes, len)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0[..self.1]).unwrap_or("cpu? ")
    }
}

/// The first `want` bytes (at least) of `file`, in one read from offset 0: `/proc` files are generated
/// whole on every read from the start, so one large read costs less than several small ones. The
/// result ends at the last complete line.
fn read_start<'a>(file: &std::fs::File, buf: &'a mut Vec<u8>, want: usize) -> Option<&'a str> {
    use std::os::unix::fs::FileExt;
    buf.resize(want.max(buf.len()), 0);
    let n = file.read_at(buf, 0).ok()?;
    let whole = buf[..n]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(n, |i| i + 1);
    std::str::from_utf8(&buf[..whole]).ok()
}

fn find_line<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(label))
}

/// The run-queue delay in `/proc/<pid>/task/<tid>/schedstat`: "on-CPU ns, waiting ns, timeslices".
fn parse_schedstat_delay_ns(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The steal column (the eighth number) of the `/proc/stat` line that starts with `label`; `None`
/// when the line is missing or too short (kernels before 2.6.11 have no steal column).
fn parse_stat_steal_ticks(text: &str, label: &str) -> Option<u64> {
    find_line(text, label)?
        .split_ascii_whitespace()
        .nth(7)?
        .parse()
        .ok()
}

/// Raises the soft open-file limit to the hard limit, since every virtual user holds a socket.
/// Returns the limit now in force.
pub(crate) fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// The machine, for the manifest.
pub(crate) fn host_info() -> formats::HostInfo {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let kernel = nix::sys::utsname::uname()
        .ok()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_owned())
            })
        });
    formats::HostInfo {
        name,
        kernel,
        cpu_count,
        cpu_model,
    }
}

/// Binds a TCP listener with the system's largest accept backlog (`net.core.somaxconn`) instead of
/// std's 128. A load test opens hundreds of connections at once (an open model's pool after a
/// stall); a SYN that finds the backlog full is dropped and retried only after the kernel's 1 s
/// retransmission timeout, which the test then records as a 1 s latency of the server.
pub(crate) fn bind_listener(addr: &str) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::MAXCONN)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_steal() {
        assert_eq!(parse_schedstat_delay_ns("3815093 43452 17\n"), Some(43452));
        assert_eq!(parse_schedstat_delay_ns("3815093\n"), None);
        let stat = "cpu  115356 0 17862 428942 15847 0 3414 100 0 0\n\
                    cpu0 56948 0 8516 213049 10317 0 2121 49 0 0\n\
                    cpu1 58407 0 9345 215893 5530 0 1293 51 0 0\n\
                    cpu10 1 0 1 1 1 0 1 7 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(parse_stat_steal_ticks(stat, "cpu1 "), Some(51));
        assert_eq!(parse_stat_steal_ticks(stat, "cpu10 "), Some(7));
        assert_eq!(parse_stat_steal_ticks(stat, "cpu2 "), None);
        // An old kernel's line without the steal column.
        assert_eq!(
            parse_stat_steal_ticks("cpu0 1 2 3 4 5 6 7\n", "cpu0 "),
            None
        );
        assert_eq!(CpuLabel::new(12).as_str(), "cpu12 ");
    }

    /// On this machine the probe reads real figures, and a second reading never goes backwards.
    #[test]
    fn the_probe_reads_this_thread() {
        let cpu = allowed_cpus()[0];
        let mut probe = SchedProbe::for_current_thread(Some(cpu));
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            let a = probe.run_delay_us().expect("schedstat is readable");
            let b = probe.run_delay_us().unwrap();
            assert!(b >= a);
        }
        if let (Some(a), Some(b)) = (probe.steal_us(), probe.steal_us()) {
            assert!(b >= a);
        }
        let u = thread_usage();
        assert!(u.voluntary + u.involuntary < u64::MAX);
    }

    /// Connections the kernel completes without the server accepting any: all of a burst of 600
    /// with `bind_listener` (where net.core.somaxconn allows), against 129 with std's own backlog.
    #[test]
    fn a_bound_listener_takes_a_burst_of_connections_without_accepting() {
        fn completed(listener: &std::net::TcpListener, n: usize) -> usize {
            let addr = listener.local_addr().unwrap();
            let timeout = Duration::from_millis(300);
            let mut open = Vec::new();
            for _ in 0..n {
                match std::net::TcpStream::connect_timeout(&addr, timeout) {
                    Ok(s) => open.push(s),
                    Err(_) => break,
                }
            }
            open.len()
        }
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let wide = bind_listener("127.0.0.1:0").unwrap();
        assert_eq!(completed(&wide, 600), 600.min(somaxconn + 1));
        if somaxconn > 200 {
            let narrow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            assert!(completed(&narrow, 600) < 200, "std's backlog is 128");
        }
    }
}
