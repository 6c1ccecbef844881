//! Running steps of other protocols: raw TCP and UDP (matched statically) and custom protocols
//! (through [`crate::protocol::DynProtocol`]). Like an HTTP request, a step renders its templates,
//! is bounded by the request timeout (the core's watchdog), and logs exactly one sample.

use std::any::Any;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Receive;
use formats::Outcome;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::net::udp::UdpSocket;

use super::exec::{CONNECT_FAILURE_PAUSE, Flow, UserState};
use super::template::Env;
use super::{ReadUntil, StepKind, StepPlan};
use crate::clock::micros;
use crate::core::{CoreCtx, InFlight, Message};
use crate::http::{Exchange, Limits};
use crate::plan::UserPlan;
use crate::protocol::{Args, Endpoint, StepResult};

/// A user's connection on one channel.
pub(crate) enum ChannelConn {
    /// Not connected: the next step connects first.
    Closed,
    Tcp(TcpStream),
    Udp(UdpSocket),
    Ws(Box<WsConn>),
    Custom(Box<dyn Any>),
}

/// An upgraded WebSocket connection.
pub(crate) struct WsConn {
    stream: WsStream,
    /// Bytes received and not yet parsed into frames.
    buf: Vec<u8>,
    /// Frames to write (masked).
    out: Vec<u8>,
    /// State of the masking-key generator (xorshift; masks need not be secret from a load test).
    mask_state: u64,
}

enum WsStream {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl WsStream {
    async fn write_all(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            WsStream::Plain(s) => write_all(s, out).await,
            WsStream::Tls(s) => write_all(&mut **s, out).await,
        }
    }

    async fn read_more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            WsStream::Plain(s) => read_more(s, buf).await,
            WsStream::Tls(s) => read_more(&mut **s, buf).await,
        }
    }
}

async fn write_all<S: AsyncWriteRent>(s: &mut S, out: &mut Vec<u8>) -> std::io::Result<()> {
    let buf = std::mem::take(out);
    let (res, buf) = s.write_all(buf).await;
    *out = buf;
    res.map(|_| ())
}

async fn read_more<S: AsyncReadRent>(s: &mut S, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 512 {
        buf.reserve(READ_BUF.max(buf.capacity()));
    }
    let b = std::mem::take(buf);
    let (len, cap) = (b.len(), b.capacity());
    let (res, slice) = s.read(b.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

impl std::fmt::Debug for ChannelConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelConn::Closed => "Closed",
            ChannelConn::Tcp(_) => "Tcp",
            ChannelConn::Udp(_) => "Udp",
            ChannelConn::Ws(_) => "Ws",
            ChannelConn::Custom(_) => "Custom",
        })
    }
}

/// Initial size of a step's receive buffer.
const READ_BUF: usize = 4096;

/// Runs step `s` for the user and logs its sample.
pub(crate) async fn step(
    ctx: &CoreCtx,
    local: usize,
    plan: &UserPlan,
    user: &mut UserState,
    s: usize,
    ready_us: &mut u64,
) -> Flow {
    let sc = &ctx.scenario;
    let sp: &StepPlan = &sc.plan.steps[s];
    let UserState {
        channels,
        step_out,
        step_in,
        step_args,
        vars,
        rows,
        iteration,
        scratch,
        ..
    } = user;
    // Render what the step sends (and a custom step's arguments) before the clock starts.
    {
        let mut rng = ctx.rng.borrow_mut();
        let mut env = Env {
            vars,
            feeders: &sc.plan.feeders,
            rows,
            rng: &mut rng,
            user: plan.global,
            seat: sc.seat,
            iteration: *iteration,
            seq: &sc.seq,
            clock: &ctx.clock,
            scratch,
        };
        step_out.clear();
        match &sp.kind {
            StepKind::Tcp {
                send: Some(send), ..
            }
            | StepKind::Udp { send, .. }
            | StepKind::WebSocket {
                send: Some(send), ..
            } => send.render(step_out, &mut env),
            StepKind::Tcp { send: None, .. } | StepKind::WebSocket { send: None, .. } => {}
            StepKind::Custom { args, .. } => {
                step_args.resize_with(args.len(), Vec::new);
                for (out, t) in step_args.iter_mut().zip(args) {
                    out.clear();
                    t.render(out, &mut env);
                }
            }
        }
    }
    let endpoint = &ctx.endpoints[sp.channel];
    let tls = ctx.channel_tls[sp.channel].as_ref();
    let conn = &mut channels[sp.channel];
    let start = Instant::now();
    let actual_us = ctx.clock.us_at(start);
    ctx.rec.borrow_mut().begin(
        local,
        InFlight {
            name: sc.step_names[s],
            intended_us: (*ready_us).min(actual_us),
            actual_us,
            user: plan.global,
            deadline_us: actual_us.saturating_add(micros(ctx.limits.request_timeout)),
        },
    );
    let finished = {
        let run = std::pin::pin!(run_step(
            conn, &sp.kind, endpoint, tls, ctx.limits, step_out, step_in, step_args, start,
        ));
        crate::users::until_timed_out(&ctx.slots[local], run).await
    };
    let (result, (connect_us, tls_us)) = match finished {
        Some(done) => done,
        None => {
            let connecting = matches!(conn, ChannelConn::Closed);
            *conn = ChannelConn::Closed;
            let result = if connecting {
                StepResult::fail(
                    Outcome::ConnectTimeout,
                    "connect timed out (request timeout)",
                )
            } else {
                StepResult::fail(Outcome::Timeout, "request timed out")
            };
            (result, (0, 0))
        }
    };
    let end_us = ctx.clock.now_us();
    let mut outcome = result.outcome;
    let mut message: Cow<'_, str> = result.message.clone().unwrap_or(Cow::Borrowed(""));
    if outcome == Outcome::Ok {
        let expect = match &sp.kind {
            StepKind::Tcp { expect, .. }
            | StepKind::Udp { expect, .. }
            | StepKind::WebSocket { expect, .. } => expect.as_ref(),
            StepKind::Custom { .. } => None,
        };
        if let Some(re) = expect
            && !re.is_match(step_in)
        {
            outcome = Outcome::Check;
            message = Cow::Borrowed(sp.expect_message.as_str());
        }
        if let StepKind::Custom { extract, .. } = &sp.kind {
            for (name, value) in &result.extracted {
                if let Some((_, slot)) = extract.iter().find(|(n, _)| n == name) {
                    let var = &mut vars[usize::from(*slot)];
                    var.clear();
                    var.extend_from_slice(value);
                }
            }
        }
    }
    if result.breaks_connection() {
        *conn = ChannelConn::Closed;
    }
    let ex = Exchange {
        status: result.status,
        connect_us,
        tls_us: tls_us.min(connect_us),
        bytes_sent: result.bytes_sent,
        bytes_received: result.bytes_received,
        connected: connect_us > 0,
        ..Exchange::default()
    };
    let msg = if outcome == Outcome::Ok || message.is_empty() {
        Message::Default
    } else {
        Message::Text(&message)
    };
    ctx.rec
        .borrow_mut()
        .finish(local, &ex, outcome, msg, end_us, false, false);
    *ready_us = end_us;
    match outcome {
        Outcome::Ok => Flow::Continue,
        Outcome::ConnectError | Outcome::ConnectTimeout | Outcome::LocalResource => {
            Flow::EndIteration(CONNECT_FAILURE_PAUSE)
        }
        // The rest of the task depends on this step having worked.
        _ => Flow::EndIteration(Duration::ZERO),
    }
}

/// Connects if needed and runs the step; returns its result, the connect time and the TLS handshake's
/// part of it (0 and 0 if it reused a connection).
#[allow(clippy::too_many_arguments)]
async fn run_step(
    conn: &mut ChannelConn,
    kind: &StepKind,
    endpoint: &Endpoint,
    tls: Option<&crate::tls::TlsClient>,
    limits: Limits,
    out: &mut Vec<u8>,
    input: &mut Vec<u8>,
    args: &[Vec<u8>],
    start: Instant,
) -> (StepResult, (u32, u32)) {
    let mut connect_us = 0;
    let mut tls_us = 0;
    if matches!(conn, ChannelConn::Closed) {
        let opened =
            monoio::time::timeout(limits.connect_timeout, open(kind, endpoint, tls, start)).await;
        match opened {
            Err(_) => {
                return (
                    StepResult::fail(Outcome::ConnectTimeout, "connect timed out"),
                    (0, 0),
                );
            }
            Ok(Err(failure)) => return (failure, (0, 0)),
            Ok(Ok((c, handshake_us))) => {
                *conn = c;
                connect_us = (start.elapsed().as_micros() as u32).max(1);
                tls_us = handshake_us;
            }
        }
    }
    input.clear();
    let result = match (kind, conn) {
        (
            StepKind::Tcp {
                send, read, close, ..
            },
            ChannelConn::Tcp(stream),
        ) => {
            let mut r = tcp(stream, send.is_some(), read.as_ref(), out, input, limits).await;
            r.close |= *close;
            r
        }
        (StepKind::Udp { reply_within, .. }, ChannelConn::Udp(socket)) => {
            udp(socket, *reply_within, out, input).await
        }
        (ws @ StepKind::WebSocket { .. }, ChannelConn::Ws(c)) => {
            websocket(c, ws, out, input, limits).await
        }
        (
            StepKind::Custom {
                protocol,
                step,
                arg_names,
                ..
            },
            ChannelConn::Custom(c),
        ) => {
            let a = Args {
                names: arg_names,
                values: args,
            };
            protocol.execute(c.as_mut(), step.as_ref(), &a).await
        }
        _ => StepResult::fail(
            Outcome::Other,
            "internal error: a step ran on another kind of connection",
        ),
    };
    (result, (connect_us, tls_us))
}

async fn open(
    kind: &StepKind,
    endpoint: &Endpoint,
    tls: Option<&crate::tls::TlsClient>,
    start: Instant,
) -> Result<(ChannelConn, u32), StepResult> {
    match kind {
        StepKind::Tcp { .. } => {
            let stream = TcpStream::connect_addr(endpoint.addr)
                .await
                .map_err(|e| StepResult::from_io("connect", &e))?;
            let _ = stream.set_nodelay(true);
            Ok((ChannelConn::Tcp(stream), 0))
        }
        StepKind::Udp { .. } => {
            let local: SocketAddr = if endpoint.addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).map_err(|e| StepResult::from_io("connect", &e))?;
            socket
                .connect(endpoint.addr)
                .await
                .map_err(|e| StepResult::from_io("connect", &e))?;
            Ok((ChannelConn::Udp(socket), 0))
        }
        StepKind::WebSocket { .. } => {
            let stream = TcpStream::connect_addr(endpoint.addr)
                .await
                .map_err(|e| StepResult::from_io("connect", &e))?;
            let _ = stream.set_nodelay(true);
            // The connect time of a WebSocket step also covers the upgrade; the TLS time is the
            // handshake alone.
            let (stream, tls_us) = match tls {
                None => (WsStream::Plain(stream), 0),
                Some(tls) => {
                    let handshake = Instant::now();
                    match tls.connector.connect(tls.server_name.clone(), stream).await {
                        Ok(s) => (
                            WsStream::Tls(Box::new(s)),
                            crate::http::micros_since(handshake),
                        ),
                        Err(e) => {
                            return Err(match crate::tls::handshake_failure(&e) {
                                Ok(message) => StepResult::fail(Outcome::Tls, message),
                                Err(io) => StepResult::from_io("TLS handshake", io),
                            });
                        }
                    }
                }
            };
            let seed = start.elapsed().as_nanos() as u64
                ^ u64::from(endpoint.addr.port()).rotate_left(32)
                ^ crate::rng::random_id()[..8]
                    .iter()
                    .fold(0u64, |a, &b| a << 8 | u64::from(b));
            let mut conn = WsConn {
                stream,
                buf: Vec::with_capacity(READ_BUF),
                out: Vec::with_capacity(256),
                mask_state: seed | 1,
            };
            upgrade(&mut conn, endpoint).await?;
            Ok((ChannelConn::Ws(Box::new(conn)), tls_us))
        }
        StepKind::Custom { protocol, .. } => protocol
            .connect(endpoint)
            .await
            .map(|c| (ChannelConn::Custom(c), 0)),
    }
}

impl WsConn {
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state = x;
        (x as u32).to_le_bytes()
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<u32, StepResult> {
        let mask = self.next_mask();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        crate::ws::write_frame(&mut out, opcode, payload, Some(mask));
        let n = out.len() as u32;
        let res = self.stream.write_all(&mut out).await;
        self.out = out;
        res.map_err(|e| StepResult::from_io("send", &e))?;
        Ok(n)
    }
}

/// The opening handshake: the HTTP/1.1 upgrade request, and a 101 answer with the right accept key.
async fn upgrade(conn: &mut WsConn, endpoint: &Endpoint) -> Result<(), StepResult> {
    let mut seed = [0u8; 16];
    for chunk in seed.chunks_mut(4) {
        chunk.copy_from_slice(&conn.next_mask());
    }
    let key = crate::ws::client_key(seed);
    let path = if endpoint.path.is_empty() {
        "/"
    } else {
        &endpoint.path
    };
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: stampede/{}\r\n\r\n",
        endpoint.host,
        endpoint.port,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    conn.stream
        .write_all(&mut out)
        .await
        .map_err(|e| StepResult::from_io("send", &e))?;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&conn.buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                if status != 101 {
                    return Err(StepResult::fail(
                        Outcome::Status,
                        "the server refused the WebSocket upgrade",
                    )
                    .status(status));
                }
                let accept = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                    .map(|h| h.value);
                if accept != Some(crate::ws::accept_key(key.as_bytes()).as_bytes()) {
                    return Err(StepResult::fail(
                        Outcome::Malformed,
                        "the WebSocket upgrade answer has a wrong Sec-WebSocket-Accept",
                    )
                    .status(status));
                }
                conn.buf.drain(..n);
                return Ok(());
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => {
                return Err(StepResult::fail(
                    Outcome::Malformed,
                    "the WebSocket upgrade answer is not HTTP",
                ));
            }
        }
        if conn.buf.len() > 64 << 10 {
            return Err(StepResult::fail(
                Outcome::Malformed,
                "the WebSocket upgrade answer is larger than 64 KiB",
            ));
        }
        match conn.stream.read_more(&mut conn.buf).await {
            Ok(0) => {
                return Err(StepResult::fail(
                    Outcome::Reset,
                    "connection closed during the WebSocket upgrade",
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(StepResult::from_io("receive", &e)),
        }
    }
}

/// What arrived on a WebSocket.
enum Incoming {
    /// A whole data message (its payload is in `input`).
    Message,
    Pong,
    /// The server's close frame, with its status code (1005 when it gave none).
    Close(u16),
}

/// Reads frames until a whole message, a pong or a close arrives; answers pings on the way.
async fn next_incoming(
    conn: &mut WsConn,
    input: &mut Vec<u8>,
    received: &mut u32,
    max: u64,
) -> Result<Incoming, StepResult> {
    input.clear();
    loop {
        let head = crate::ws::parse_head(&conn.buf)
            .map_err(|e| StepResult::fail(Outcome::Malformed, e.0))?;
        if let Some(h) = head {
            if h.len.saturating_add(input.len() as u64) > max {
                return Err(StepResult::fail(
                    Outcome::Malformed,
                    "a WebSocket message is larger than http.max_body",
                ));
            }
            let total = h.header_len + h.len as usize;
            if conn.buf.len() >= total {
                let start = input.len();
                input.extend_from_slice(&conn.buf[h.header_len..total]);
                if let Some(key) = h.mask {
                    crate::ws::apply_mask(&mut input[start..], key);
                }
                conn.buf.drain(..total);
                match h.opcode {
                    crate::ws::op::PING => {
                        let payload: Vec<u8> = input.drain(start..).collect();
                        conn.send_frame(crate::ws::op::PONG, &payload).await?;
                    }
                    crate::ws::op::PONG => {
                        input.truncate(start);
                        return Ok(Incoming::Pong);
                    }
                    crate::ws::op::CLOSE => {
                        let code = if input.len() >= start + 2 {
                            u16::from_be_bytes([input[start], input[start + 1]])
                        } else {
                            1005
                        };
                        input.truncate(start);
                        return Ok(Incoming::Close(code));
                    }
                    _ if h.fin => return Ok(Incoming::Message),
                    _ => {}
                }
                continue;
            }
        }
        match conn.stream.read_more(&mut conn.buf).await {
            Ok(0) => {
                return Err(StepResult::fail(
                    Outcome::Reset,
                    "the WebSocket connection closed without a close frame",
                ));
            }
            Ok(n) => *received = received.saturating_add(n as u32),
            Err(e) => return Err(StepResult::from_io("receive", &e)),
        }
    }
}

/// One WebSocket step: send (or ping), then wait for what it asks, or close.
async fn websocket(
    conn: &mut WsConn,
    kind: &StepKind,
    out: &[u8],
    input: &mut Vec<u8>,
    limits: Limits,
) -> StepResult {
    let StepKind::WebSocket {
        send,
        binary,
        receive,
        within,
        ping,
        close,
        ..
    } = kind
    else {
        unreachable!("called for WebSocket steps only");
    };
    let mut sent = 0u32;
    let mut received = 0u32;
    let exchange = async {
        if *ping {
            sent += conn.send_frame(crate::ws::op::PING, out).await?;
            loop {
                match next_incoming(conn, input, &mut received, limits.max_body).await? {
                    Incoming::Pong => break,
                    Incoming::Message => {}
                    Incoming::Close(code) => return Err(closed_by_server(code)),
                }
            }
        } else if send.is_some() {
            let opcode = if *binary {
                crate::ws::op::BINARY
            } else {
                crate::ws::op::TEXT
            };
            sent += conn.send_frame(opcode, out).await?;
        }
        if let Some(want) = receive {
            let mut count = 0u32;
            loop {
                match next_incoming(conn, input, &mut received, limits.max_body).await? {
                    Incoming::Message => count += 1,
                    Incoming::Pong => continue,
                    Incoming::Close(code) => return Err(closed_by_server(code)),
                }
                let done = match want {
                    Receive::Messages(n) => count >= *n,
                    Receive::Match(re) => re.is_match(input),
                };
                if done {
                    break;
                }
            }
        }
        if *close {
            sent += conn
                .send_frame(crate::ws::op::CLOSE, &1000u16.to_be_bytes())
                .await?;
            while !matches!(
                next_incoming(conn, input, &mut received, limits.max_body).await?,
                Incoming::Close(_)
            ) {}
        }
        Ok(())
    };
    let result = match within {
        Some(d) => monoio::time::timeout(*d, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(StepResult::fail(
                    Outcome::Timeout,
                    "the awaited WebSocket message did not come in time",
                ))
            }),
        None => exchange.await,
    };
    let mut r = result.err().unwrap_or_default();
    r.bytes_sent = sent;
    r.bytes_received = received;
    r.close |= *close;
    r
}

fn closed_by_server(code: u16) -> StepResult {
    StepResult::fail(
        Outcome::Reset,
        "the server closed the WebSocket in the middle of the exchange",
    )
    .status(code)
}

/// Sends `out` (if `send`) and reads until `read` is satisfied.
async fn tcp(
    stream: &mut TcpStream,
    send: bool,
    read: Option<&ReadUntil>,
    out: &mut Vec<u8>,
    input: &mut Vec<u8>,
    limits: Limits,
) -> StepResult {
    let mut result = StepResult::ok();
    if send {
        let buf = std::mem::take(out);
        let len = buf.len();
        let (res, buf) = stream.write_all(buf).await;
        *out = buf;
        if let Err(e) = res {
            return StepResult::from_io("send", &e);
        }
        result.bytes_sent = len as u32;
    }
    let Some(read) = read else {
        return result;
    };
    loop {
        let complete = match read {
            ReadUntil::Delimiter(d) => input.windows(d.len()).any(|w| w == d.as_slice()),
            ReadUntil::Bytes(n) => input.len() >= *n,
            ReadUntil::Match(re) => re.is_match(input),
        };
        if complete {
            return result;
        }
        if input.len() as u64 >= limits.max_body {
            return StepResult::fail(
                Outcome::Malformed,
                "the reply is larger than http.max_body without completing",
            )
            .sent(result.bytes_sent)
            .received(result.bytes_received);
        }
        if input.capacity() - input.len() < 512 {
            input.reserve(READ_BUF.max(input.capacity()));
        }
        let buf = std::mem::take(input);
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        *input = slice.into_inner();
        match res {
            Ok(0) => {
                return StepResult::fail(
                    Outcome::Reset,
                    "connection closed before the reply was complete",
                )
                .sent(result.bytes_sent)
                .received(result.bytes_received);
            }
            Ok(n) => result.bytes_received += n as u32,
            Err(e) => {
                return StepResult::from_io("receive", &e)
                    .sent(result.bytes_sent)
                    .received(result.bytes_received);
            }
        }
    }
}

/// Sends one datagram and, if asked, waits for one in reply.
async fn udp(
    socket: &mut UdpSocket,
    reply_within: Option<Duration>,
    out: &mut Vec<u8>,
    input: &mut Vec<u8>,
) -> StepResult {
    let buf = std::mem::take(out);
    let len = buf.len();
    let (res, buf) = socket.send(buf).await;
    *out = buf;
    if let Err(e) = res {
        return StepResult::from_io("send", &e);
    }
    let sent = StepResult::ok().sent(len as u32);
    let Some(within) = reply_within else {
        return sent;
    };
    // A datagram is at most 64 KiB; the buffer is kept for the user's next step.
    if input.capacity() < 65_536 {
        input.reserve(65_536);
    }
    let buf = std::mem::take(input);
    let cap = buf.capacity();
    match monoio::time::timeout(within, socket.recv(buf.slice_mut(0..cap))).await {
        Err(_) => {
            // The receive was cancelled with the buffer; the next step allocates a new one.
            StepResult::fail(Outcome::Timeout, "no reply datagram in time (lost?)").sent(len as u32)
        }
        Ok((res, slice)) => {
            *input = slice.into_inner();
            match res {
                Ok(n) => sent.received(n as u32),
                // A refused port answers with ICMP, which a connected socket reports here.
                Err(e) => StepResult::from_io("receive", &e).sent(len as u32),
            }
        }
    }
}
