//! Running steps of other protocols: raw TCP and UDP (matched statically) and custom protocols
//! (through [`crate::protocol::DynProtocol`]). Like an HTTP request, a step renders its templates,
//! is bounded by the request timeout (the core's watchdog), and logs exactly one sample.

use std::any::Any;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use formats::Outcome;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
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
    Custom(Box<dyn Any>),
}

impl std::fmt::Debug for ChannelConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelConn::Closed => "Closed",
            ChannelConn::Tcp(_) => "Tcp",
            ChannelConn::Udp(_) => "Udp",
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
            core: sc.core,
            iteration: *iteration,
            seq: &sc.seq,
            seq_stride: u64::from(sc.cores),
            clock: &ctx.clock,
            scratch,
        };
        step_out.clear();
        match &sp.kind {
            StepKind::Tcp {
                send: Some(send), ..
            }
            | StepKind::Udp { send, .. } => send.render(step_out, &mut env),
            StepKind::Tcp { send: None, .. } => {}
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
    let run = run_step(
        conn, &sp.kind, endpoint, ctx.limits, step_out, step_in, step_args, start,
    );
    let (result, connect_us) = match crate::users::until_timed_out(&ctx.slots[local], run).await {
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
            (result, 0)
        }
    };
    let end_us = ctx.clock.now_us();
    let mut outcome = result.outcome;
    let mut message: Cow<'_, str> = result.message.clone().unwrap_or(Cow::Borrowed(""));
    if outcome == Outcome::Ok {
        let expect = match &sp.kind {
            StepKind::Tcp { expect, .. } | StepKind::Udp { expect, .. } => expect.as_ref(),
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

/// Connects if needed and runs the step; returns its result and the connect time (0 if it reused a
/// connection).
#[allow(clippy::too_many_arguments)]
async fn run_step(
    conn: &mut ChannelConn,
    kind: &StepKind,
    endpoint: &Endpoint,
    limits: Limits,
    out: &mut Vec<u8>,
    input: &mut Vec<u8>,
    args: &[Vec<u8>],
    start: Instant,
) -> (StepResult, u32) {
    let mut connect_us = 0;
    if matches!(conn, ChannelConn::Closed) {
        let opened = monoio::time::timeout(limits.connect_timeout, open(kind, endpoint)).await;
        match opened {
            Err(_) => {
                return (
                    StepResult::fail(Outcome::ConnectTimeout, "connect timed out"),
                    0,
                );
            }
            Ok(Err(failure)) => return (failure, 0),
            Ok(Ok(c)) => {
                *conn = c;
                connect_us = (start.elapsed().as_micros() as u32).max(1);
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
    (result, connect_us)
}

async fn open(kind: &StepKind, endpoint: &Endpoint) -> Result<ChannelConn, StepResult> {
    match kind {
        StepKind::Tcp { .. } => {
            let stream = TcpStream::connect_addr(endpoint.addr)
                .await
                .map_err(|e| StepResult::from_io("connect", &e))?;
            let _ = stream.set_nodelay(true);
            Ok(ChannelConn::Tcp(stream))
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
            Ok(ChannelConn::Udp(socket))
        }
        StepKind::Custom { protocol, .. } => {
            protocol.connect(endpoint).await.map(ChannelConn::Custom)
        }
    }
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
