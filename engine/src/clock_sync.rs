//! How well this machine's clock is synchronised, as the kernel's clock discipline reports it
//! (`adjtimex(2)`), for the manifest: shards on different machines share one start instant only as
//! well as their clocks agree, and the analyzer says how well they line up from these figures.

use formats::ClockSync;

/// The kernel's view of the clock now; `None` when `adjtimex` fails (a sandbox may forbid it).
pub(crate) fn read() -> Option<ClockSync> {
    let (state, status, esterror, maxerror) = adjtimex()?;
    Some(ClockSync {
        // The kernel clears STA_UNSYNC while NTP, PTP or chrony disciplines the clock, and reports
        // TIME_ERROR while it does not (or the error bound grew past 16 s).
        synchronised: status & nix::libc::STA_UNSYNC == 0 && state != nix::libc::TIME_ERROR,
        estimated_error_us: u64::try_from(esterror).unwrap_or(0),
        max_error_us: u64::try_from(maxerror).unwrap_or(0),
        source: "adjtimex".into(),
    })
}

/// `adjtimex` with `modes = 0`, which only reads (no privilege needed): (clock state, status flags,
/// estimated error µs, maximum error µs).
#[allow(unsafe_code)]
fn adjtimex() -> Option<(
    nix::libc::c_int,
    nix::libc::c_int,
    nix::libc::c_long,
    nix::libc::c_long,
)> {
    // SAFETY: `timex` is plain old data, so all zeroes is a valid value, and `modes == 0` asks the
    // kernel only to fill it in. The pointer is to a live, exclusively borrowed local for the call.
    let mut tx: nix::libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: see above; the kernel writes within the struct only.
    let state = unsafe { nix::libc::adjtimex(&mut tx) };
    (state >= 0).then_some((state, tx.status, tx.esterror, tx.maxerror))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_kernels_clock_discipline() {
        // Every Linux kernel answers a read-only adjtimex; the figures depend on the machine.
        let sync = super::read().expect("adjtimex answers");
        assert_eq!(sync.source, "adjtimex");
        // The kernel caps its error bound at 16 s (NTP_PHASE_LIMIT) and calls a clock at the cap
        // unsynchronised.
        assert!(sync.max_error_us <= 16_000_000, "{sync:?}");
        if sync.max_error_us == 16_000_000 {
            assert!(!sync.synchronised, "{sync:?}");
        }
    }
}
