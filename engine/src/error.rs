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
    /// The `--out` directory cannot hold a run directory (a path through a file, no permission, a
    /// read-only file system); exit code 2, before anything runs.
    #[error(
        "--out {}: cannot create a run directory there: {source}; give --out a directory this user may write to (missing parents are created)",
        .path.display()
    )]
    OutDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up (unreadable CA file, no system roots); exit code 2.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// `--web` or `--metrics` cannot listen where asked (the port is taken, or the address is not
    /// this machine's); exit code 2, before the run starts.
    #[error(
        "{flag} {addr}: cannot listen there: {source}; pick another address or port (port 0 picks a free one)"
    )]
    Listen {
        /// The flag that named the address.
        flag: &'static str,
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The run directory (or this shard's directory in it) exists already; exit code 2.
    #[error(
        "{path} exists: {what}; give this run another --run-id (or, to run it again under the same name, move the old directory away first)"
    )]
    RunExists {
        /// The directory.
        path: PathBuf,
        /// What is there.
        what: String,
    },
    /// A target did not accept a TCP connection in the pre-flight check, before anything was written
    /// (and, with `--start-at`, before the start instant); exit code 2.
    #[error(
        "cannot connect to {target} ({addr}): {reason}; checked before the start, so nothing ran and no run directory was written. {fix}; or, to start the load before the target is up (a rolling restart, a target started with the test), pass --no-preflight"
    )]
    Unreachable {
        /// The target as the profile names it.
        target: String,
        /// The address tried.
        addr: std::net::SocketAddr,
        /// Why it failed, in words.
        reason: String,
        /// What to do: start the target, or check where it was given (`host` in the profile's line).
        fix: String,
    },
    /// The start instant passed before this engine was ready to start: it does not run, so that no
    /// shard joins a test midway with a schedule shifted from the others'; exit code 3.
    #[error(
        "--start-at {start_at} passed {late} ago (by this machine's clock{ready}){which}: not starting, since a late shard would either shift its schedule or burst to catch up; the other shards' run is partial without it (the analyzer says which share is missing). Give every shard a --start-at far enough ahead for all of them to be ready (image pull, profile and data loading, target check)"
    )]
    TooLate {
        /// The start instant, RFC 3339.
        start_at: String,
        /// How long ago it passed, for people.
        late: String,
        /// ", when it was ready" once the setup ran, else empty.
        ready: &'static str,
        /// " - shard I/N" for a shard, else empty.
        which: String,
    },
    /// Ctrl-C or SIGTERM came while waiting for `--start-at`; nothing ran, nothing is left; exit code 130.
    #[error(
        "interrupted while waiting for --start-at {start_at}: nothing ran, and no run directory is left"
    )]
    InterruptedBeforeStart {
        /// The start instant, RFC 3339.
        start_at: String,
    },
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
    /// The process exit code for this error: 2 for bad input (profile, flags, host, a run directory
    /// that exists or cannot be created under `--out`, an unreachable target), 3 for a start instant
    /// that passed before the engine was ready, 130 for an interrupt before the start, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Profile(_)
            | Error::Plan(_)
            | Error::Resolve { .. }
            | Error::Tls(_)
            | Error::Listen { .. }
            | Error::RunExists { .. }
            | Error::OutDir { .. }
            | Error::Unreachable { .. } => 2,
            Error::TooLate { .. } => 3,
            Error::InterruptedBeforeStart { .. } => 130,
            _ => 1,
        }
    }
}
