//! A connection slot: its socket's state, its TLS session (rustls driven on buffers, with no I/O of
//! its own), its send buffers, and the protocol reading what arrives. Feeding it received bytes
//! ([`feed`]) never touches the backend: it says what the bytes amount to ([`Fed`]) and the loop acts.

use std::io::{Read, Write};

use formats::Outcome;

use crate::http::{Failure, Reader, Step};

use super::backend::Interned;
use super::steps::StepIo;

/// Where a connection's socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    /// No socket: the next exchange connects first.
    Closed,
    /// The TCP connect is in progress.
    Connecting,
    /// Connected; the TLS handshake is in progress.
    Handshaking,
    /// Connected (and TLS set up); the WebSocket opening handshake is in progress.
    Upgrading,
    /// Ready for exchanges.
    Open,
}

/// The send operation in flight on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendOp {
    /// Nothing is being sent.
    None,
    /// Interned bytes of this length, this many taken so far.
    Interned(Interned, u32, u32),
    /// The connection's buffer (lent to the backend), this many bytes taken so far.
    Owned(u32),
}

/// One connection slot.
#[derive(Debug)]
pub(super) struct Conn {
    /// Bumped (within the backend's generation bits) for every new socket.
    pub generation: u32,
    pub link: Link,
    /// A receive is armed on the current socket.
    pub armed: bool,
    pub tls: Option<Box<rustls::ClientConnection>>,
    /// The send buffer; it has no capacity while lent to the backend.
    pub out: Vec<u8>,
    pub lent: bool,
    pub op: SendOp,
    /// The socket already carried a complete exchange (for the one retry of a stale keep-alive).
    pub reused: bool,
    pub retried: bool,
    /// The socket counts in the open-connections gauge.
    pub counted: bool,
    /// What reads and writes the connection's plaintext.
    pub p: Proto,
}

/// The protocol side of a connection: what it reads with, and the plaintext it has to send.
#[derive(Debug, Default)]
pub(super) struct Proto {
    /// Reads HTTP responses.
    pub reader: Reader,
    /// Steps' replies and WebSocket state.
    pub step: StepIo,
    /// Plaintext to send (through TLS when there is a session) once the current send completes.
    pub pending: Vec<u8>,
}

impl Default for Conn {
    fn default() -> Conn {
        Conn {
            generation: 0,
            link: Link::Closed,
            armed: false,
            tls: None,
            out: Vec::new(),
            lent: false,
            op: SendOp::None,
            reused: false,
            retried: false,
            counted: false,
            p: Proto::default(),
        }
    }
}

impl Conn {
    /// The send buffer, for filling (a fresh one while the previous is still lent to the kernel, which
    /// happens only after a connection was closed in the middle of a send).
    pub fn take_out(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.lent = true;
        out
    }

    /// A send buffer came back from the backend.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        if self.out.capacity() == 0 {
            self.out = buf;
        }
        self.lent = false;
    }
}

/// What received bytes amount to.
#[derive(Debug)]
pub(super) enum Fed {
    /// Nothing complete yet.
    More,
    /// The TLS handshake just completed.
    Handshaken,
    /// The WebSocket opening handshake just completed.
    Upgraded,
    /// The exchange's answer is complete; `close` when the connection cannot carry another.
    Done { close: bool },
    /// The exchange failed; the connection must be closed.
    Fail(Failure),
    /// Bytes arrived with no exchange to take them: the connection is unusable.
    Unwanted,
    /// The peer ended the TLS session cleanly (close_notify).
    Closed,
}

/// Where plaintext goes.
pub(super) trait Sink {
    /// Whether an exchange is waiting for bytes.
    fn expecting(&self) -> bool;
    /// Takes plaintext bytes.
    fn on_bytes(&mut self, p: &mut Proto, bytes: &[u8]) -> Fed;
}

/// An HTTP response being read for an exchange.
pub(super) struct HttpSink<'a> {
    pub exchanging: bool,
    pub bytes_received: &'a mut u32,
}

impl Sink for HttpSink<'_> {
    fn expecting(&self) -> bool {
        self.exchanging
    }

    fn on_bytes(&mut self, p: &mut Proto, bytes: &[u8]) -> Fed {
        *self.bytes_received = self.bytes_received.saturating_add(bytes.len() as u32);
        match p.reader.on_data(bytes) {
            Step::NeedMore => Fed::More,
            Step::Done { close } => Fed::Done { close },
            Step::Fail(f) => Fed::Fail(f),
        }
    }
}

/// Feeds bytes received on `conn` to its TLS session (if any) and the plaintext to `sink`.
/// `plain` is the core's scratch buffer for decrypted bytes.
pub(super) fn feed(conn: &mut Conn, data: &[u8], sink: &mut impl Sink, plain: &mut [u8]) -> Fed {
    let Some(tls) = conn.tls.as_mut() else {
        if !sink.expecting() {
            return Fed::Unwanted;
        }
        return sink.on_bytes(&mut conn.p, data);
    };
    let mut rest = data;
    while !rest.is_empty() {
        match tls.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Fed::Fail(Failure::io("receive", &e)),
        }
        if let Err(e) = tls.process_new_packets() {
            return Fed::Fail(tls_failure(&e, conn.link == Link::Handshaking));
        }
    }
    if conn.link == Link::Handshaking {
        return if tls.is_handshaking() {
            Fed::More
        } else {
            Fed::Handshaken
        };
    }
    let mut result = Fed::More;
    loop {
        match tls.reader().read(plain) {
            Ok(0) => return Fed::Closed,
            Ok(n) => {
                if !matches!(result, Fed::More) {
                    // Bytes past the end of the answer: the connection cannot be reused.
                    if let Fed::Done { close } = &mut result {
                        *close = true;
                    }
                    continue;
                }
                if !sink.expecting() {
                    return Fed::Unwanted;
                }
                result = sink.on_bytes(&mut conn.p, &plain[..n]);
                if matches!(result, Fed::Fail(_)) {
                    return result;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return result,
            Err(e) => return Fed::Fail(Failure::io("receive", &e)),
        }
    }
}

/// Moves the TLS session's pending records into `out`.
pub(super) fn write_tls(tls: &mut rustls::ClientConnection, out: &mut Vec<u8>) {
    while tls.wants_write() {
        if tls.write_tls(out).is_err() {
            return;
        }
    }
}

/// Hands plaintext to the TLS session (it encrypts into records taken by [`write_tls`]).
pub(super) fn write_plain(tls: &mut rustls::ClientConnection, bytes: &[u8]) -> std::io::Result<()> {
    tls.writer().write_all(bytes)
}

/// A TLS error as a sample's failure.
pub(super) fn tls_failure(e: &rustls::Error, handshaking: bool) -> Failure {
    let message = if handshaking {
        format!("TLS handshake: {e}")
    } else {
        format!("TLS: {e}")
    };
    Failure {
        outcome: Outcome::Tls,
        message: message.into(),
    }
}
