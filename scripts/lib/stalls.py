#!/usr/bin/env python3
"""Measures how often, and for how long, a busy CPU stops running its thread.

    python3 scripts/lib/stalls.py [SECONDS] [CPU ...]     # default: 3 s on CPUs 0 and 1 at once
    python3 -m doctest scripts/lib/stalls.py              # its tests

One process per CPU, pinned to it, reads the monotonic clock in a tight loop; any gap over 1 ms is a
stall. A stall in which the process's own run-queue delay (/proc/thread-self/schedstat) grew by at
least half the gap was the guest's scheduler running something else: another process (on the project's
VM, the agent's worker thread at nice -10, ~7 ms about once a second) or kernel work that could not be
preempted. The rest are invisible to the guest's scheduler: the hypervisor took the virtual CPU, or the
CPU was in a long interrupt. Steal time does not always show those.

Why the benchmarks print this: an open-model run at R arrivals/s against a target whose CPU stops for
S ms puts R x S requests in flight at once, and a pool smaller than that drops arrivals however fast the
generator is (docs/performance.md, "Stalls of the CPUs"). All CPUs probe at the same time,
because a process that wakes on an idle CPU stops nobody, and during a benchmark no CPU is idle.
"""

import multiprocessing
import os
import statistics
import sys
import time

GAP_NS = 1_000_000
# The share of a CPU other tasks may take before the machine counts as busy: on a quiet VM the agent's
# worker takes about 0.7 % (7 ms a second); a build beside the benchmark takes tens of percent.
BUSY_SHARE = 2.0


def probe(cpu, seconds, out):
    os.sched_setaffinity(0, {cpu})
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        fd = None

    # The time this thread has waited runnable for a CPU, read beside every clock reading, so that a
    # gap is attributed by what happened within it alone.
    def run_delay():
        if fd is None:
            return 0
        return int(os.pread(fd, 128, 0).split()[1])

    clock = time.perf_counter_ns
    start = last = clock()
    end = start + int(seconds * 1e9)
    delay = run_delay()
    stalls = []  # (at_ns, gap_ns, seen_by_guest)
    while last < end:
        now = clock()
        d = run_delay()
        if now - last > GAP_NS:
            stalls.append((last - start, now - last, fd is not None and (d - delay) * 2 >= now - last))
        last, delay = now, d
    out.put((cpu, stalls))


def describe(cpu, stalls, seconds):
    """One line for one CPU's stalls: how many, how long, and who took the CPU.

    >>> describe(0, [], 3.0)
    'CPU 0: no stall over 1 ms in 3 s'
    >>> ms = 1_000_000
    >>> print(describe(1, [(0, 7 * ms, True), (1_000 * ms, 4 * ms, False),
    ...                    (2_000 * ms, 5 * ms, False), (2_500 * ms, 4 * ms, False)], 3.0))
    CPU 1: 4 stalls over 1 ms in 3 s, longest 7.0 ms, 20.0 ms in all; 1 while another task ran, 3 unseen by the scheduler (hypervisor or interrupts; those over 3 ms came about one every 0.75 s)
    """
    if not stalls:
        return f"CPU {cpu}: no stall over 1 ms in {seconds:g} s"
    host = [s for s in stalls if not s[2]]
    longest = max(g for _, g, _ in stalls) / 1e6
    total = sum(g for _, g, _ in stalls) / 1e6
    line = (
        f"CPU {cpu}: {len(stalls)} stalls over 1 ms in {seconds:g} s, longest {longest:.1f} ms, "
        f"{total:.1f} ms in all; {len(stalls) - len(host)} while another task ran, {len(host)} unseen by the scheduler"
    )
    long_host = [at for at, g, _ in host if g > 3 * GAP_NS]
    if host:
        line += " (hypervisor or interrupts"
        if len(long_host) >= 3:
            spacing = statistics.median(b - a for a, b in zip(long_host, long_host[1:]))
            line += f"; those over 3 ms came about one every {spacing / 1e9:.2f} s"
        line += ")"
    return line


def reading(results, seconds):
    """What the lines above mean for a benchmark: the pool the longest stall needs, and whether the
    machine was busy enough that rates measured now are noise.

    >>> ms = 1_000_000
    >>> print(reading({0: [(0, 7 * ms, True)], 1: []}, 3.0))
    reading: at R arrivals/s, a stall of S ms leaves R x S arrivals waiting for a free user, so an open-model pool (--users) needs at least that many, more when the target runs near its capacity: the longest stall here, 7.0 ms, is 700 arrivals per 100,000/s. Other tasks took at most 0.2 % of a CPU: the machine is quiet enough to measure on.
    >>> print(reading({0: [(0, 400 * ms, True)], 1: []}, 2.0).split(". ")[1])
    Other tasks took up to 20.0 % of a CPU: the machine is busy, so rates measured now are noisy; compare them only with runs measured alike, or run again when nothing else does.
    """
    every = [s for stalls in results.values() for s in stalls]
    if not every:
        return "reading: no CPU stopped for over 1 ms: nothing here limits an open-model run."
    longest = max(g for _, g, _ in every) / 1e6
    taken = max(sum(g for _, g, seen in stalls if seen) for stalls in results.values())
    share = taken / (seconds * 1e9) * 100
    line = (
        "reading: at R arrivals/s, a stall of S ms leaves R x S arrivals waiting for a free user, so an "
        "open-model pool (--users) needs at least that many, more when the target runs near its "
        "capacity: the longest stall here, "
        f"{longest:.1f} ms, is {round(longest * 100):,} arrivals per 100,000/s. "
    )
    if share > BUSY_SHARE:
        line += (
            f"Other tasks took up to {share:.1f} % of a CPU: the machine is busy, so rates measured now "
            "are noisy; compare them only with runs measured alike, or run again when nothing else does."
        )
    else:
        line += (
            f"Other tasks took at most {share:.1f} % of a CPU: the machine is quiet enough to measure on."
        )
    return line


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    allowed = sorted(os.sched_getaffinity(0))
    cpus = [int(c) for c in sys.argv[2:]] or allowed[:2]
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=probe, args=(c, seconds, out)) for c in cpus]
    for p in procs:
        p.start()
    results = dict(out.get() for _ in procs)
    for p in procs:
        p.join()
    for cpu in cpus:
        print(describe(cpu, results[cpu], seconds))
    print(reading(results, seconds))


if __name__ == "__main__":
    main()
