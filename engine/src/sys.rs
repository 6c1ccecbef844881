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

/// CPU time of the calling thread: (user, system).
pub(crate) fn thread_cpu_time() -> (Duration, Duration) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000)
            };
            (tv(u.user_time()), tv(u.system_time()))
        }
        Err(_) => (Duration::ZERO, Duration::ZERO),
    }
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
