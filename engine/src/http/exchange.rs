//! What one exchange (a request and its response, or a step) amounts to for its sample, and how a
//! transport failure is classified. The loop fills an [`Exchange`]; the recorder turns it into one
//! sample.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use formats::Outcome;

/// Limits that apply to every request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body: u64,
}

/// How one request went at the transport level. Status checks are the caller's.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// Status code; 0 when no head arrived.
    pub status: u16,
    /// Connect time (TCP connect plus TLS handshake, plus a WebSocket's opening handshake) when this
    /// request opened the connection, else 0.
    pub connect_us: u32,
    /// The TLS handshake's part of `connect_us` when this request did one, else 0.
    pub tls_us: u32,
    /// Time from the actual start to the first response byte, 0 when none arrived.
    pub ttfb_us: u32,
    pub bytes_sent: u32,
    pub bytes_received: u32,
    /// Whether a new connection was opened.
    pub connected: bool,
}

/// A transport failure: its kind and a message (allocated only for errors with details).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub outcome: Outcome,
    pub message: Cow<'static, str>,
}

impl Failure {
    pub(crate) fn new(outcome: Outcome, message: &'static str) -> Failure {
        Failure {
            outcome,
            message: Cow::Borrowed(message),
        }
    }

    pub(crate) fn io(what: &'static str, e: &io::Error) -> Failure {
        use io::ErrorKind as K;
        if let Some(message) = crate::tls::classify(e) {
            return Failure {
                outcome: Outcome::Tls,
                message: Cow::Owned(format!("{what}: {message}")),
            };
        }
        let outcome = match e.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                Outcome::Reset
            }
            K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
                if what == "connect" =>
            {
                if e.kind() == K::AddrNotAvailable {
                    Outcome::LocalResource
                } else {
                    Outcome::ConnectError
                }
            }
            K::TimedOut => Outcome::Timeout,
            K::OutOfMemory => Outcome::LocalResource,
            _ => match e.raw_os_error() {
                Some(
                    nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM,
                ) => Outcome::LocalResource,
                _ if what == "connect" => Outcome::ConnectError,
                _ => Outcome::Other,
            },
        };
        Failure {
            outcome,
            message: Cow::Owned(format!("{what}: {e}")),
        }
    }
}
