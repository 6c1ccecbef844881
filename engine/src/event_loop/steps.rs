//! Steps of the built-in protocols as sans-I/O machines on a connection: raw TCP (send, then read
//! until a delimiter, a byte count or a pattern), UDP (one datagram, and perhaps one in reply), and
//! WebSocket (the opening handshake, then per step a message or a ping, what it waits for, and an
//! optional close). Like the HTTP reader they are fed bytes and say what the bytes amount to; what
//! they want sent goes into the connection's outgoing buffer. The loop connects, sends, times out and
//! logs one sample per step.

use std::borrow::Cow;

use formats::Outcome;

use super::conn::Fed;
use crate::http::Failure;
use crate::protocol::Endpoint;
use crate::scenario::{ReadUntil, Receive, StepKind};

/// A WebSocket handshake answer larger than this is refused.
const MAX_UPGRADE: usize = 64 << 10;

/// What a connection keeps for the steps run on it.
#[derive(Debug, Default)]
pub(super) struct StepIo {
    /// The current step's reply (a TCP reply, a datagram, the last WebSocket message).
    pub input: Vec<u8>,
    /// TCP bytes that arrived between steps, for the next step to read.
    pub stash: Vec<u8>,
    /// A step is waiting for bytes.
    pub waiting: bool,
    /// A WebSocket's state.
    pub ws: Option<Box<Ws>>,
}

/// What a step does once its bytes are handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Begin {
    /// It is complete once what it sends is sent.
    WhenSent,
    /// It waits for an answer.
    Reply,
    /// Its answer is already here.
    Complete,
}

/// Where a WebSocket step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No step is running; frames are kept for the next.
    Idle,
    /// The opening handshake's answer is awaited.
    Upgrading,
    /// A ping was sent; its pong is awaited.
    AwaitPong,
    /// Messages are awaited (this many so far).
    Receiving(u32),
    /// A close frame was sent; the server's is awaited.
    Closing,
}

/// An upgraded (or upgrading) WebSocket connection.
#[derive(Debug)]
pub(super) struct Ws {
    stage: Stage,
    /// Bytes received and not yet parsed into frames.
    buf: Vec<u8>,
    /// State of the masking-key generator (xorshift; masks need not be secret from a load test).
    mask_state: u64,
    /// The handshake's key.
    key: String,
    /// The next data frame starts a new message (its payload replaces the input).
    fresh: bool,
}

impl Ws {
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        (x as u32).to_le_bytes()
    }

    fn frame(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8]) -> u32 {
        let mask = self.next_mask();
        let before = out.len();
        crate::ws::write_frame(out, opcode, payload, Some(mask));
        (out.len() - before) as u32
    }
}

/// Starts a WebSocket connection: the upgrade request goes into `out`.
pub(super) fn ws_upgrade(io: &mut StepIo, endpoint: &Endpoint, seed: u64, out: &mut Vec<u8>) {
    let mut ws = Box::new(Ws {
        stage: Stage::Upgrading,
        buf: Vec::with_capacity(4096),
        mask_state: seed | 1,
        key: String::new(),
        fresh: true,
    });
    let mut key_seed = [0u8; 16];
    for chunk in key_seed.chunks_mut(4) {
        chunk.copy_from_slice(&ws.next_mask());
    }
    ws.key = crate::ws::client_key(key_seed);
    let path = if endpoint.path.is_empty() {
        "/"
    } else {
        &endpoint.path
    };
    use std::io::Write as _;
    let _ = write!(
        out,
        "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: stampede/{}\r\n\r\n",
        endpoint.host,
        endpoint.port,
        ws.key,
        env!("CARGO_PKG_VERSION")
    );
    io.ws = Some(ws);
}

/// Whether `input` completes a TCP reply.
fn tcp_complete(read: &ReadUntil, input: &[u8]) -> bool {
    match read {
        ReadUntil::Delimiter(d) => input.windows(d.len()).any(|w| w == d.as_slice()),
        ReadUntil::Bytes(n) => input.len() >= *n,
        ReadUntil::Match(re) => re.is_match(input),
    }
}

/// Begins a step on a ready connection with its rendered `payload`; what it sends goes into `out`,
/// its frames' bytes are added to `sent`.
pub(super) fn begin(
    kind: &StepKind,
    payload: &[u8],
    io: &mut StepIo,
    out: &mut Vec<u8>,
    sent: &mut u32,
) -> Begin {
    io.input.clear();
    match kind {
        StepKind::Tcp { send, read, .. } => {
            if send.is_some() {
                out.extend_from_slice(payload);
                *sent = payload.len() as u32;
            }
            io.input.append(&mut io.stash);
            match read {
                None => Begin::WhenSent,
                Some(r) if send.is_none() && tcp_complete(r, &io.input) => Begin::Complete,
                Some(_) => {
                    io.waiting = true;
                    Begin::Reply
                }
            }
        }
        StepKind::Udp { reply_within, .. } => {
            out.extend_from_slice(payload);
            *sent = payload.len() as u32;
            if reply_within.is_some() {
                io.waiting = true;
                Begin::Reply
            } else {
                Begin::WhenSent
            }
        }
        StepKind::WebSocket {
            send,
            binary,
            receive,
            ping,
            close,
            ..
        } => {
            let Some(ws) = io.ws.as_mut() else {
                return Begin::WhenSent;
            };
            ws.fresh = true;
            if *ping {
                *sent += ws.frame(out, crate::ws::op::PING, payload);
                ws.stage = Stage::AwaitPong;
            } else {
                if send.is_some() {
                    let opcode = if *binary {
                        crate::ws::op::BINARY
                    } else {
                        crate::ws::op::TEXT
                    };
                    *sent += ws.frame(out, opcode, payload);
                }
                if receive.is_some() {
                    ws.stage = Stage::Receiving(0);
                } else if *close {
                    *sent += ws.frame(out, crate::ws::op::CLOSE, &1000u16.to_be_bytes());
                    ws.stage = Stage::Closing;
                } else {
                    ws.stage = Stage::Idle;
                    return Begin::WhenSent;
                }
            }
            io.waiting = true;
            Begin::Reply
        }
        StepKind::Custom { .. } => Begin::WhenSent,
    }
}

/// Plaintext for a step's connection.
pub(super) struct StepSink<'a> {
    pub kind: &'a StepKind,
    pub max: u64,
    pub tally: Tally<'a>,
}

impl super::conn::Sink for StepSink<'_> {
    fn expecting(&self) -> bool {
        // Whether bytes between steps are kept or make the connection unusable is `on_bytes`'s call.
        true
    }

    fn on_bytes(&mut self, p: &mut super::conn::Proto, bytes: &[u8]) -> Fed {
        on_bytes(
            self.kind,
            &mut p.step,
            &mut p.pending,
            bytes,
            self.max,
            &mut self.tally,
        )
    }
}

/// Counters of the step in progress.
pub(super) struct Tally<'a> {
    pub sent: &'a mut u32,
    pub received: &'a mut u32,
    pub status: &'a mut u16,
}

/// Takes bytes (plaintext) that arrived on a step's connection.
pub(super) fn on_bytes(
    kind: &StepKind,
    io: &mut StepIo,
    out: &mut Vec<u8>,
    bytes: &[u8],
    max: u64,
    tally: &mut Tally<'_>,
) -> Fed {
    if let Some(ws) = io.ws.as_mut() {
        if io.waiting || ws.stage == Stage::Upgrading {
            *tally.received = tally.received.saturating_add(bytes.len() as u32);
        }
        ws.buf.extend_from_slice(bytes);
        return ws_progress(kind, io, out, max, tally);
    }
    if !io.waiting {
        if matches!(kind, StepKind::Tcp { .. }) && io.stash.len() < max as usize {
            io.stash.extend_from_slice(bytes);
            return Fed::More;
        }
        return Fed::Unwanted;
    }
    *tally.received = tally.received.saturating_add(bytes.len() as u32);
    match kind {
        StepKind::Tcp { read, close, .. } => {
            io.input.extend_from_slice(bytes);
            if read.as_ref().is_some_and(|r| tcp_complete(r, &io.input)) {
                io.waiting = false;
                return Fed::Done { close: *close };
            }
            if io.input.len() as u64 >= max {
                return Fed::Fail(Failure::new(
                    Outcome::Malformed,
                    "the reply is larger than http.max_body without completing",
                ));
            }
            Fed::More
        }
        StepKind::Udp { .. } => {
            io.input.clear();
            io.input.extend_from_slice(bytes);
            io.waiting = false;
            Fed::Done { close: false }
        }
        _ => Fed::More,
    }
}

/// What ended the exchange when the peer closed the connection.
pub(super) fn on_eof(io: &StepIo) -> Failure {
    match &io.ws {
        Some(ws) if ws.stage == Stage::Upgrading => Failure::new(
            Outcome::Reset,
            "connection closed during the WebSocket upgrade",
        ),
        Some(_) => Failure::new(
            Outcome::Reset,
            "the WebSocket connection closed without a close frame",
        ),
        None => Failure::new(
            Outcome::Reset,
            "connection closed before the reply was complete",
        ),
    }
}

/// What a WebSocket step's timer means when it fires.
pub(crate) const WS_TIMEOUT: &str = "the awaited WebSocket message did not come in time";
/// What a UDP step's reply window means when it closes.
pub(crate) const UDP_TIMEOUT: &str = "no reply datagram in time (lost?)";

fn malformed(message: impl Into<Cow<'static, str>>) -> Fed {
    Fed::Fail(Failure {
        outcome: Outcome::Malformed,
        message: message.into(),
    })
}

fn closed_by_server(code: u16, status: &mut u16) -> Fed {
    *status = code;
    Fed::Fail(Failure::new(
        Outcome::Reset,
        "the server closed the WebSocket in the middle of the exchange",
    ))
}

/// Parses what a WebSocket received, answering pings, until it needs more or the step is decided.
fn ws_progress(
    kind: &StepKind,
    io: &mut StepIo,
    out: &mut Vec<u8>,
    max: u64,
    tally: &mut Tally<'_>,
) -> Fed {
    let StepIo {
        input, waiting, ws, ..
    } = io;
    let ws = ws.as_mut().expect("called for WebSocket connections");
    if ws.stage == Stage::Upgrading {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&ws.buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                *tally.status = status;
                if status != 101 {
                    return Fed::Fail(Failure::new(
                        Outcome::Status,
                        "the server refused the WebSocket upgrade",
                    ));
                }
                let accept = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                    .map(|h| h.value);
                if accept != Some(crate::ws::accept_key(ws.key.as_bytes()).as_bytes()) {
                    return malformed(
                        "the WebSocket upgrade answer has a wrong Sec-WebSocket-Accept",
                    );
                }
                ws.buf.drain(..n);
                ws.stage = Stage::Idle;
                *tally.status = 0;
                return Fed::Upgraded;
            }
            Ok(httparse::Status::Partial) if ws.buf.len() > MAX_UPGRADE => {
                return malformed("the WebSocket upgrade answer is larger than 64 KiB");
            }
            Ok(httparse::Status::Partial) => return Fed::More,
            Err(_) => return malformed("the WebSocket upgrade answer is not HTTP"),
        }
    }
    let StepKind::WebSocket { receive, close, .. } = kind else {
        return Fed::More;
    };
    loop {
        if ws.stage == Stage::Idle {
            // Frames between steps wait for the next one.
            return Fed::More;
        }
        let head = match crate::ws::parse_head(&ws.buf) {
            Err(e) => return malformed(e.0),
            Ok(None) => return Fed::More,
            Ok(Some(h)) => h,
        };
        if ws.fresh {
            input.clear();
        }
        if head.len.saturating_add(input.len() as u64) > max {
            return malformed("a WebSocket message is larger than http.max_body");
        }
        let total = head.header_len + head.len as usize;
        if ws.buf.len() < total {
            return Fed::More;
        }
        let start = input.len();
        input.extend_from_slice(&ws.buf[head.header_len..total]);
        if let Some(key) = head.mask {
            crate::ws::apply_mask(&mut input[start..], key);
        }
        ws.buf.drain(..total);
        ws.fresh = false;
        enum Incoming {
            Message,
            Pong,
            Close(u16),
        }
        let incoming = match head.opcode {
            crate::ws::op::PING => {
                let mask = ws.next_mask();
                crate::ws::write_frame(out, crate::ws::op::PONG, &input[start..], Some(mask));
                input.truncate(start);
                ws.fresh = start == 0;
                continue;
            }
            crate::ws::op::PONG => {
                input.truncate(start);
                Incoming::Pong
            }
            crate::ws::op::CLOSE => {
                let code = if input.len() >= start + 2 {
                    u16::from_be_bytes([input[start], input[start + 1]])
                } else {
                    1005
                };
                input.truncate(start);
                Incoming::Close(code)
            }
            _ if head.fin => Incoming::Message,
            _ => continue,
        };
        ws.fresh = true;
        match (ws.stage, incoming) {
            (Stage::Closing, Incoming::Close(_)) => {
                ws.stage = Stage::Idle;
                *waiting = false;
                return Fed::Done { close: true };
            }
            (Stage::Closing, _) => {}
            (_, Incoming::Close(code)) => return closed_by_server(code, tally.status),
            (Stage::AwaitPong, Incoming::Pong) => match receive {
                Some(_) => ws.stage = Stage::Receiving(0),
                None if *close => {
                    *tally.sent += ws.frame(out, crate::ws::op::CLOSE, &1000u16.to_be_bytes());
                    ws.stage = Stage::Closing;
                }
                None => {
                    ws.stage = Stage::Idle;
                    *waiting = false;
                    return Fed::Done { close: false };
                }
            },
            (Stage::Receiving(n), Incoming::Message) => {
                let count = n + 1;
                let done = match receive {
                    Some(Receive::Messages(want)) => count >= *want,
                    Some(Receive::Match(re)) => re.is_match(input),
                    None => true,
                };
                if !done {
                    ws.stage = Stage::Receiving(count);
                } else if *close {
                    *tally.sent += ws.frame(out, crate::ws::op::CLOSE, &1000u16.to_be_bytes());
                    ws.stage = Stage::Closing;
                } else {
                    ws.stage = Stage::Idle;
                    *waiting = false;
                    return Fed::Done { close: false };
                }
            }
            // Pongs while receiving, messages while awaiting a pong: skipped.
            _ => {}
        }
    }
}
