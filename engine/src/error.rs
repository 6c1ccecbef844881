//! The library's error: what went wrong before or around a run (request failures are data, not errors).

use std::path::PathBuf;

use crate::plan::PlanError;
use crate::profile::ProfileError;

/// Why `engine run` could not run (or finish) a test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The profile file is unusable; exit code 2.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Flags or profile values do not make a plan; exit code 2.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The target's host name did not resolve; exit code 2.
    #[error("cannot resolve {host}: {reason}; check the host in the profile or --host")]
    Resolve {
        /// The host as written.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The requested I/O driver cannot run here.
    #[error("the {driver} I/O driver is unavailable here: {source}; try --io epoll")]
    Driver {
        /// The driver asked for.
        driver: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The run directory or a file in it could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up (unreadable CA file, no system roots); exit code 2.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// Something else in the environment failed (threads, signals, the embedded server).
    #[error("{context}: {source}")]
    System {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error: 2 for bad input (profile, flags, host), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Profile(_) | Error::Plan(_) | Error::Resolve { .. } | Error::Tls(_) => 2,
            _ => 1,
        }
    }
}
