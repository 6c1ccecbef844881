//! The embedded target's runtime: monoio on io_uring (tuned, as measured in docs/io-drivers.md) or
//! on epoll. Only `engine serve` and the embedded target run on monoio; load generation runs on the
//! engine's own loop (`event_loop`).

use std::future::Future;
use std::io;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::cli::IoChoice;

/// The runtime a server thread runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// io_uring, with the setup flags in `UringSetup`.
    Uring(UringSetup),
    /// epoll, through monoio's legacy driver.
    Epoll,
}

/// How the io_uring instance is set up. The variants are the configurations measured in
/// docs/io-drivers.md; `STAMPEDE_URING_SETUP=plain|coop|defer` picks one for experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UringSetup {
    /// No setup flags: completions run as task work that interrupts the thread (an IPI per completion
    /// burst when the peer runs on another CPU).
    Plain,
    /// `IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG`: task work waits for the next transition to the kernel.
    Coop,
    /// `IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN`: task work runs only when the thread waits for
    /// completions, in one batch (kernel 6.1+).
    Defer,
}

/// Entries in each core's submission queue: enough for every user's send and receive in one batch at
/// the user counts a core typically runs, without an io_uring_enter per full queue.
const URING_ENTRIES: u32 = 4096;

impl Runtime {
    /// Resolves `--io` for the server. `auto`
    /// tries io_uring with DEFER_TASKRUN, then with COOP_TASKRUN, then epoll: io_uring without either
    /// flag measured slower than epoll (docs/io-drivers.md), so `auto` never picks it. `uring` also
    /// accepts the flagless setup and fails only when io_uring is unavailable (old kernel, Docker's
    /// default seccomp profile, gVisor). `direct` means io_uring here. `STAMPEDE_URING_SETUP=plain|
    /// coop|defer` pins the io_uring setup for experiments.
    pub fn select(choice: IoChoice) -> Result<Runtime, io::Error> {
        let forced = UringSetup::from_env();
        let candidates: &[UringSetup] = match (choice, &forced) {
            (IoChoice::Epoll, _) => return Ok(Runtime::Epoll),
            (_, Some(setup)) => std::slice::from_ref(setup),
            (IoChoice::Auto, None) => &[UringSetup::Defer, UringSetup::Coop],
            (IoChoice::Uring | IoChoice::Direct, None) => {
                &[UringSetup::Defer, UringSetup::Coop, UringSetup::Plain]
            }
        };
        // Building a runtime is the honest probe: it calls io_uring_setup with the very flags the
        // cores will use.
        let mut last_error = None;
        for &setup in candidates {
            match Runtime::Uring(setup).block_on(async {}) {
                Ok(()) => return Ok(Runtime::Uring(setup)),
                Err(e) => last_error = Some(e),
            }
        }
        match choice {
            IoChoice::Auto => Ok(Runtime::Epoll),
            _ => Err(last_error.unwrap_or_else(|| io::Error::other("no io_uring setup to try"))),
        }
    }

    /// Builds a runtime on the calling thread and runs `future` to completion on it.
    pub fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        match self {
            Runtime::Uring(setup) => {
                let mut urb = io_uring::IoUring::builder();
                match setup {
                    UringSetup::Plain => {}
                    UringSetup::Coop => {
                        urb.setup_coop_taskrun().setup_taskrun_flag();
                    }
                    UringSetup::Defer => {
                        urb.setup_single_issuer().setup_defer_taskrun();
                    }
                }
                let mut rt = RuntimeBuilder::<IoUringDriver>::new()
                    .with_entries(URING_ENTRIES)
                    .uring_builder(urb)
                    .enable_timer()
                    .build()?;
                Ok(rt.block_on(future))
            }
            Runtime::Epoll => {
                let mut rt = RuntimeBuilder::<LegacyDriver>::new()
                    .enable_timer()
                    .build()?;
                Ok(rt.block_on(future))
            }
        }
    }
}

impl UringSetup {
    fn from_env() -> Option<UringSetup> {
        match std::env::var("STAMPEDE_URING_SETUP").ok()?.as_str() {
            "plain" => Some(UringSetup::Plain),
            "coop" => Some(UringSetup::Coop),
            "defer" => Some(UringSetup::Defer),
            _ => None,
        }
    }
}
