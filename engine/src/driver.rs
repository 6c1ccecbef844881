//! Choosing the I/O backend of the engine's loop (`event_loop`): io_uring where the kernel allows it,
//! epoll everywhere else. docs/io-drivers.md has the measurements and the fallbacks.

use std::io;

use crate::cli::IoChoice;

/// The kernel interface a run's loop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring with `SINGLE_ISSUER | DEFER_TASKRUN` and provided-buffer rings (Linux 6.1+).
    Uring,
    /// epoll: non-blocking sockets and a timerfd, where io_uring is refused (Docker's default seccomp
    /// profile, gVisor, older kernels, `kernel.io_uring_disabled`).
    Epoll,
}

impl IoDriver {
    /// The name the manifest records.
    pub fn manifest_name(self) -> &'static str {
        match self {
            IoDriver::Uring => "io_uring",
            IoDriver::Epoll => "epoll",
        }
    }

    /// How the backend is set up, for the manifest and the console.
    pub fn setup_name(self) -> &'static str {
        match self {
            IoDriver::Uring => {
                "event loop: SINGLE_ISSUER|DEFER_TASKRUN, multishot receive, provided buffers, registered files"
            }
            IoDriver::Epoll => {
                "event loop: level-triggered epoll, sends at submission, timerfd deadlines"
            }
        }
    }

    /// Resolves `--io`: `auto` picks io_uring when the kernel has what the loop needs and falls back
    /// to epoll; `uring` (and its old name `direct`) insists on io_uring and fails where it is
    /// refused; `epoll` picks epoll.
    pub fn select(choice: IoChoice) -> Result<IoDriver, io::Error> {
        match choice {
            IoChoice::Epoll => Ok(IoDriver::Epoll),
            IoChoice::Uring | IoChoice::Direct => {
                crate::event_loop::probe_uring().map(|()| IoDriver::Uring)
            }
            IoChoice::Auto => Ok(if crate::event_loop::probe_uring().is_ok() {
                IoDriver::Uring
            } else {
                IoDriver::Epoll
            }),
        }
    }
}
