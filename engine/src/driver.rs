//! Choosing the I/O driver: the engine's own loop (`event_loop`) on io_uring or epoll, or, for plans
//! the loop does not run yet and for `engine serve`, monoio on io_uring (tuned) or epoll.
//!
//! docs/io-drivers.md has the measurements behind [`IoDriver::select`] and the setup flags.

use std::future::Future;
use std::io;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::cli::IoChoice;
use crate::event_loop::LoopBackend;

/// The I/O driver a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring, with the setup flags in `UringSetup`.
    Uring(UringSetup),
    /// epoll, through monoio's legacy driver.
    Epoll,
    /// The engine's own loop (`event_loop`) on one of its backends.
    Loop(LoopBackend),
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

impl IoDriver {
    /// The name the manifest records.
    pub fn manifest_name(self) -> &'static str {
        match self {
            IoDriver::Uring(_) | IoDriver::Loop(LoopBackend::Uring) => "io_uring",
            IoDriver::Epoll | IoDriver::Loop(LoopBackend::Epoll) => "epoll",
        }
    }

    /// How the driver was set up, for the manifest and the console.
    pub fn setup_name(self) -> &'static str {
        match self {
            IoDriver::Uring(UringSetup::Plain) => "no setup flags",
            IoDriver::Uring(UringSetup::Coop) => "COOP_TASKRUN",
            IoDriver::Uring(UringSetup::Defer) => "SINGLE_ISSUER|DEFER_TASKRUN",
            IoDriver::Epoll => "edge-triggered epoll",
            IoDriver::Loop(LoopBackend::Uring) => {
                "event loop: SINGLE_ISSUER|DEFER_TASKRUN, multishot receive, provided buffers, registered files"
            }
            IoDriver::Loop(LoopBackend::Epoll) => {
                "event loop: level-triggered epoll, sends at submission, timerfd deadlines"
            }
        }
    }

    /// Resolves `--io` for a run whose plan the loop can (`loop_ok`) or cannot run. `auto` picks the
    /// loop on io_uring when the kernel allows it, else the loop on epoll; `uring` (and its old name
    /// `direct`) insists on io_uring, `epoll` picks epoll. Plans the loop cannot run yet go to monoio
    /// as [`IoDriver::select`] says. `STAMPEDE_URING_SETUP` pins monoio's io_uring setup for
    /// measurements (and keeps `auto` on monoio).
    pub fn select_for_run(choice: IoChoice, loop_ok: bool) -> Result<IoDriver, io::Error> {
        if !loop_ok || (choice == IoChoice::Auto && UringSetup::from_env().is_some()) {
            return IoDriver::select(choice);
        }
        match choice {
            IoChoice::Epoll => Ok(IoDriver::Loop(LoopBackend::Epoll)),
            IoChoice::Uring | IoChoice::Direct => {
                crate::event_loop::probe_uring().map(|()| IoDriver::Loop(LoopBackend::Uring))
            }
            IoChoice::Auto => Ok(IoDriver::Loop(
                if crate::event_loop::probe_uring().is_ok() {
                    LoopBackend::Uring
                } else {
                    LoopBackend::Epoll
                },
            )),
        }
    }

    /// Resolves `--io` for monoio (`engine serve`, and runs the direct loop cannot take). `auto`
    /// tries io_uring with DEFER_TASKRUN, then with COOP_TASKRUN, then epoll: io_uring without either
    /// flag measured slower than epoll (docs/io-drivers.md), so `auto` never picks it. `uring` also
    /// accepts the flagless setup and fails only when io_uring is unavailable (old kernel, Docker's
    /// default seccomp profile, gVisor). `direct` means io_uring here. `STAMPEDE_URING_SETUP=plain|
    /// coop|defer` pins the io_uring setup for experiments (and keeps `auto` off the direct loop).
    pub fn select(choice: IoChoice) -> Result<IoDriver, io::Error> {
        let forced = UringSetup::from_env();
        let candidates: &[UringSetup] = match (choice, &forced) {
            (IoChoice::Epoll, _) => return Ok(IoDriver::Epoll),
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
            match IoDriver::Uring(setup).block_on(async {}) {
                Ok(()) => return Ok(IoDriver::Uring(setup)),
                Err(e) => last_error = Some(e),
            }
        }
        match choice {
            IoChoice::Auto => Ok(IoDriver::Epoll),
            _ => Err(last_error.unwrap_or_else(|| io::Error::other("no io_uring setup to try"))),
        }
    }

    /// Builds a runtime on the calling thread and runs `future` to completion on it.
    pub fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        match self {
            IoDriver::Uring(setup) => {
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
            // The loop is not a monoio runtime: `core::run_core` runs it without one.
            IoDriver::Loop(_) => Err(io::Error::other(
                "the event loop runs without a monoio runtime",
            )),
            IoDriver::Epoll => {
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
