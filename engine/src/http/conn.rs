//! One virtual user's keep-alive connection: connect when needed, send the rendered request, read and
//! discard the response, and say how it went.
//!
//! monoio's I/O is completion-based: a buffer is *moved* into each read or write and handed back when
//! the operation completes. The connection therefore owns its two buffers between requests and lends
//! them out for the duration of one operation. If an operation is abandoned (request timeout), its
//! buffer stays with the kernel until the cancelled operation completes and the field is left empty;
//! the next request allocates a fresh one. That is the only allocation after warm-up, and it happens on
//! the failure path.
//!
//! A request may ask for the response to be kept ([`Keep`]): its head (for headers and cookies) and
//! body (for extraction and checks) are then copied into a per-connection buffer that lives until the
//! next exchange. Requests that keep nothing pay one branch per read.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use formats::Outcome;
use monoio::buf::IoBufMut;
use monoio::io::Splitable;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use std::pin::pin;
use std::task::Poll;

use super::chunked::Chunked;
use super::response::{BodyKind, Head, parse_head};
use crate::tls::TlsClient;

/// A TLS stream over TCP (client side).
type TlsStream = monoio_rustls::ClientTlsStream<TcpStream>;

/// Initial read buffer. Most response heads fit; bodies stream through it in pieces this size.
const READ_BUF: usize = 4096;
/// A response head larger than this is refused as malformed rather than buffered without bound.
const MAX_HEAD: usize = 64 << 10;

/// The connection's socket.
#[derive(Debug, Default)]
enum Link {
    /// No socket: the next request connects first. The connection owns both buffers.
    #[default]
    Closed,
    /// An open socket, split so that a request's send and its response's receive can be in flight
    /// at once (see [`Connection::send_and_receive`]). Between requests the connection owns both
    /// buffers; while a request is in flight, the buffer of each operation in progress belongs to that
    /// operation (the field holds an empty `Vec`).
    Idle(TcpOwnedReadHalf, TcpOwnedWriteHalf),
    /// An open TLS session (`https://`). Not split: a rustls session is one state machine, so the
    /// request is written before its response is read. Boxed: the session is large, and the plain
    /// variant should not pay for its size.
    Tls(Box<TlsStream>),
}

/// A keep-alive HTTP/1.1 connection (one per virtual user, as Locust does).
#[derive(Debug, Default)]
pub(crate) struct Connection {
    link: Link,
    /// Response bytes; lent to each read.
    rbuf: Vec<u8>,
    /// The request being sent; lent to each write.
    wbuf: Vec<u8>,
    /// The last response, as far as the request asked to keep it.
    kept: Kept,
}

/// What the client sends and how it treats the answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestRef<'a> {
    pub bytes: &'a [u8],
    pub head: bool,
    pub keep: Keep,
}

/// Which parts of the response to keep for the caller after the exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Keep {
    /// The head (status line and headers).
    pub head: bool,
    /// The head and the body.
    pub body: bool,
    /// The head, when it sets a cookie.
    pub cookies: bool,
}

/// A kept response: raw bytes as received (a chunked body still chunked), valid until the next
/// exchange on the connection.
#[derive(Debug, Default)]
struct Kept {
    buf: Vec<u8>,
    head_len: usize,
    chunked: bool,
    set_cookie: bool,
    valid: bool,
}

/// A view of the kept response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeptResponse<'a> {
    /// Status line and headers, final CRLF included.
    pub head: &'a [u8],
    /// The body as received (empty unless the body was kept).
    pub body: &'a [u8],
    /// Whether `body` is in chunked transfer coding.
    pub chunked: bool,
    /// Whether the head has a Set-Cookie header.
    pub set_cookie: bool,
}

/// A kept response larger than this is not held on to between requests.
const KEEP_RETAIN: usize = 64 << 10;

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
    /// Connect time (TCP connect plus TLS handshake) when this request opened the connection, else 0.
    pub connect_us: u32,
    /// The TLS handshake's part of `connect_us` when this request did one, else 0.
    pub tls_us: u32,
    /// Time from the actual start to the first response byte, 0 when none arrived.
    pub ttfb_us: u32,
    /// When the last read completed (the end of a complete response); `None` if nothing was read.
    /// Saves the caller a clock read per request.
    pub last_read_at: Option<Instant>,
    pub bytes_sent: u32,
    pub bytes_received: u32,
    /// Whether a new connection was opened.
    pub connected: bool,
    /// The failure, when the response did not arrive complete and well-formed.
    pub failure: Option<Failure>,
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

impl Connection {
    /// Whether a socket is open.
    pub fn is_open(&self) -> bool {
        !matches!(self.link, Link::Closed)
    }

    /// Closes the socket after an exchange was abandoned part-way (request timeout): the stream may
    /// be mid-response, so it cannot carry another request.
    pub fn abandon(&mut self) {
        self.link = Link::Closed;
        self.kept.valid = false;
    }

    /// The last response as far as its request asked to keep it; `None` if nothing was kept.
    pub fn kept(&self) -> Option<KeptResponse<'_>> {
        let k = &self.kept;
        k.valid.then(|| KeptResponse {
            head: &k.buf[..k.head_len],
            body: &k.buf[k.head_len..],
            chunked: k.chunked,
            set_cookie: k.set_cookie,
        })
    }

    /// Sends `req` to `addr` (connecting first if needed) and reads the whole response. `start` is the
    /// request's actual start; timings count from it.
    ///
    /// The connect phase has its own timeout; the request timeout is enforced by the caller dropping
    /// this future (the core's watchdog does it, so the request path arms no timer), after which the
    /// caller must call [`Connection::abandon`].
    pub async fn exchange(
        &mut self,
        addr: SocketAddr,
        tls: Option<&TlsClient>,
        req: RequestRef<'_>,
        limits: Limits,
        start: Instant,
    ) -> Exchange {
        let mut ex = Exchange::default();
        self.kept.valid = false;
        // One large response must not pin its buffer for the rest of the run.
        if self.kept.buf.capacity() > KEEP_RETAIN {
            self.kept.buf = Vec::new();
        }
        let reused = self.is_open();
        if !reused && let Err(f) = self.connect(addr, tls, limits, start, &mut ex).await {
            ex.failure = Some(f);
            return ex;
        }
        let mut result = self
            .send_and_receive(req, limits.max_body, start, &mut ex)
            .await;
        // A server may close an idle keep-alive connection just as we reuse it; the request never
        // reached it. Retry once on a fresh connection, as browsers do.
        if reused
            && ex.bytes_received == 0
            && matches!(&result, Err(f) if f.outcome == Outcome::Reset)
        {
            self.link = Link::Closed;
            ex.bytes_sent = 0;
            if let Err(f) = self.connect(addr, tls, limits, start, &mut ex).await {
                ex.failure = Some(f);
                return ex;
            }
            result = self
                .send_and_receive(req, limits.max_body, start, &mut ex)
                .await;
        }
        match result {
            Ok(close) => {
                if close {
                    self.link = Link::Closed;
                }
            }
            Err(f) => {
                self.link = Link::Closed;
                ex.failure = Some(f);
            }
        }
        ex
    }

    /// Opens the connection; for TLS, the handshake is part of it (and of its timeout), so the
    /// sample's connect time includes the handshake, and its TLS time says how much of it that was.
    async fn connect(
        &mut self,
        addr: SocketAddr,
        tls: Option<&TlsClient>,
        limits: Limits,
        start: Instant,
        ex: &mut Exchange,
    ) -> Result<(), Failure> {
        if self.is_open() {
            return Ok(());
        }
        let opening = async {
            let stream = TcpStream::connect_addr(addr)
                .await
                .map_err(|e| Failure::io("connect", &e))?;
            // Small requests must not wait for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let (rx, tx) = stream.into_split();
                    Ok((Link::Idle(rx, tx), 0))
                }
                Some(tls) => {
                    let handshake = Instant::now();
                    match tls.connector.connect(tls.server_name.clone(), stream).await {
                        Ok(s) => Ok((Link::Tls(Box::new(s)), micros_since(handshake))),
                        Err(e) => Err(match crate::tls::handshake_failure(&e) {
                            Ok(message) => Failure {
                                outcome: Outcome::Tls,
                                message: Cow::Owned(message),
                            },
                            Err(io) => Failure::io("TLS handshake", io),
                        }),
                    }
                }
            }
        };
        match monoio::time::timeout(limits.connect_timeout, opening).await {
            Err(_) if tls.is_some() => Err(Failure::new(
                Outcome::ConnectTimeout,
                "connect or TLS handshake timed out",
            )),
            Err(_) => Err(Failure::new(Outcome::ConnectTimeout, "connect timed out")),
            Ok(Err(f)) => Err(f),
            Ok(Ok((link, tls_us))) => {
                ex.connect_us = (start.elapsed().as_micros() as u32).max(1);
                ex.tls_us = tls_us.min(ex.connect_us);
                ex.connected = true;
                self.link = link;
                Ok(())
            }
        }
    }

    /// Returns whether the connection must be closed afterwards.
    async fn send_and_receive(
        &mut self,
        req: RequestRef<'_>,
        max_body: u64,
        start: Instant,
        ex: &mut Exchange,
    ) -> Result<bool, Failure> {
        let (rx, tx) = match &mut self.link {
            Link::Idle(rx, tx) => (rx, tx),
            Link::Tls(stream) => {
                send(&mut **stream, &mut self.wbuf, req.bytes).await?;
                ex.bytes_sent = ex.bytes_sent.saturating_add(req.bytes.len() as u32);
                return receive(
                    &mut **stream,
                    &mut self.rbuf,
                    req.head,
                    max_body,
                    start,
                    ex,
                    req.keep,
                    &mut self.kept,
                )
                .await;
            }
            Link::Closed => unreachable!("exchange connects before sending"),
        };
        // The receive is issued together with the send rather than after it completes: on io_uring
        // both operations go to the kernel in the same submission, which saves a task wake-up and a
        // trip round the event loop per request. A failed send ends the exchange at once (dropping
        // the receive cancels it); a response that arrives before the send completes (a server
        // answering early) still waits for the send, whose buffer it must get back.
        let mut sent = false;
        let result = {
            let mut sending = pin!(send(tx, &mut self.wbuf, req.bytes));
            let mut receiving = pin!(receive(
                rx,
                &mut self.rbuf,
                req.head,
                max_body,
                start,
                &mut *ex,
                req.keep,
                &mut self.kept,
            ));
            let mut received: Option<Result<bool, Failure>> = None;
            std::future::poll_fn(|cx| {
                if !sent {
                    match sending.as_mut().poll(cx) {
                        Poll::Ready(Ok(())) => sent = true,
                        Poll::Ready(Err(f)) => return Poll::Ready(Err(f)),
                        Poll::Pending => {}
                    }
                }
                if received.is_none()
                    && let Poll::Ready(result) = receiving.as_mut().poll(cx)
                {
                    received = Some(result);
                }
                match received.take() {
                    Some(Err(f)) => Poll::Ready(Err(f)),
                    Some(ok) if sent => Poll::Ready(ok),
                    other => {
                        received = other;
                        Poll::Pending
                    }
                }
            })
            .await
        };
        if sent {
            ex.bytes_sent = ex.bytes_sent.saturating_add(req.bytes.len() as u32);
        }
        result
    }
}

/// Whole microseconds since `t`, at least 1 (a time that happened is never stored as "none").
pub(crate) fn micros_since(t: Instant) -> u32 {
    (t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32).max(1)
}

async fn send<W: AsyncWriteRent>(
    stream: &mut W,
    wbuf: &mut Vec<u8>,
    bytes: &[u8],
) -> Result<(), Failure> {
    let mut buf = std::mem::take(wbuf);
    buf.clear();
    buf.extend_from_slice(bytes);
    let (res, buf) = stream.write_all(buf).await;
    *wbuf = buf;
    res.map(|_| ()).map_err(|e| Failure::io("send", &e))
}

/// Reads once into the free space of `rbuf`, growing it first if it is full. Returns the bytes read.
async fn read_more<R: AsyncReadRent>(
    stream: &mut R,
    rbuf: &mut Vec<u8>,
    ex: &mut Exchange,
    start: Instant,
) -> Result<usize, Failure> {
    if rbuf.capacity() == rbuf.len() {
        rbuf.reserve(READ_BUF.max(rbuf.capacity()));
    }
    let buf = std::mem::take(rbuf);
    let len = buf.len();
    let cap = buf.capacity();
    let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
    *rbuf = slice.into_inner();
    let n = res.map_err(|e| Failure::io("receive", &e))?;
    let now = Instant::now();
    ex.last_read_at = Some(now);
    if n > 0 && ex.ttfb_us == 0 {
        ex.ttfb_us = (now.saturating_duration_since(start).as_micros() as u32).max(1);
    }
    ex.bytes_received = ex.bytes_received.saturating_add(n as u32);
    Ok(n)
}

#[allow(clippy::too_many_arguments)]
async fn receive<R: AsyncReadRent>(
    stream: &mut R,
    rbuf: &mut Vec<u8>,
    head_request: bool,
    max_body: u64,
    start: Instant,
    ex: &mut Exchange,
    keep: Keep,
    kept: &mut Kept,
) -> Result<bool, Failure> {
    rbuf.clear();
    // Interim responses are bounded like a head: a target sending `100 Continue` without end, faster
    // than we parse, would otherwise keep every read ready and this task from ever yielding, so that
    // not even the request timeout could fire.
    let mut interim = 0usize;
    let head: Head = loop {
        let parsed = if rbuf.is_empty() {
            Ok(None)
        } else {
            parse_head(rbuf, head_request)
        };
        match parsed {
            // An interim response (100 Continue, 103 Early Hints) is followed by the real one, which
            // may already be in the buffer.
            Ok(Some(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                interim += h.len;
                if interim > MAX_HEAD {
                    return Err(Failure::new(
                        Outcome::Malformed,
                        "interim (1xx) responses longer than 64 KiB",
                    ));
                }
                rbuf.drain(..h.len);
                continue;
            }
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                return Err(Failure {
                    outcome: Outcome::Malformed,
                    message: Cow::Owned(e.to_string()),
                });
            }
        }
        if rbuf.len() >= MAX_HEAD {
            return Err(Failure::new(
                Outcome::Malformed,
                "response head larger than 64 KiB",
            ));
        }
        if read_more(stream, rbuf, ex, start).await? == 0 {
            return Err(Failure::new(
                Outcome::Reset,
                "connection closed before the response was complete",
            ));
        }
    };
    ex.status = head.status;
    let mut close = head.close;
    let already = rbuf.len() - head.len;
    let keep_body = keep.body && head.body != BodyKind::None;
    if keep.head || keep.body || (keep.cookies && head.set_cookie) {
        kept.buf.clear();
        kept.buf
            .extend_from_slice(&rbuf[..if keep_body { rbuf.len() } else { head.len }]);
        kept.head_len = head.len;
        kept.chunked = head.body == BodyKind::Chunked;
        kept.set_cookie = head.set_cookie;
        kept.valid = true;
    }
    // Called after each body read, when `rbuf` holds just the bytes read.
    let keep_more = |kept: &mut Kept, rbuf: &[u8]| {
        if keep_body {
            kept.buf.extend_from_slice(rbuf);
        }
    };
    match head.body {
        BodyKind::None => close |= already > 0,
        BodyKind::Length(n) => {
            if n > max_body {
                return Err(Failure {
                    outcome: Outcome::Malformed,
                    message: Cow::Owned(format!(
                        "response body larger than the limit of {max_body} bytes"
                    )),
                });
            }
            let mut left = n.saturating_sub(already as u64);
            // Bytes beyond the body mean the server and we disagree about framing: do not reuse.
            close |= already as u64 > n;
            while left > 0 {
                rbuf.clear();
                let got = read_more(stream, rbuf, ex, start).await?;
                if got == 0 {
                    return Err(Failure::new(
                        Outcome::Reset,
                        "connection closed in the middle of the body",
                    ));
                }
                keep_more(kept, rbuf);
                close |= got as u64 > left;
                left = left.saturating_sub(got as u64);
            }
            if keep_body {
                kept.buf.truncate(kept.head_len + n as usize);
            }
        }
        BodyKind::Chunked => {
            let mut decoder = Chunked::new(max_body);
            let mut fed = feed(&mut decoder, &rbuf[head.len..])?;
            while fed.is_none() {
                rbuf.clear();
                if read_more(stream, rbuf, ex, start).await? == 0 {
                    return Err(Failure::new(
                        Outcome::Reset,
                        "connection closed in the middle of a chunked body",
                    ));
                }
                keep_more(kept, rbuf);
                fed = feed(&mut decoder, rbuf)?;
                if let Some(used) = fed {
                    close |= used < rbuf.len();
                }
            }
        }
        BodyKind::UntilClose => {
            let mut total = already as u64;
            loop {
                if total > max_body {
                    return Err(Failure {
                        outcome: Outcome::Malformed,
                        message: Cow::Owned(format!(
                            "response body larger than the limit of {max_body} bytes"
                        )),
                    });
                }
                rbuf.clear();
                let got = read_more(stream, rbuf, ex, start).await?;
                if got == 0 {
                    break;
                }
                keep_more(kept, rbuf);
                total += got as u64;
            }
        }
    }
    // Return a buffer that grew for a large head to its usual size, so one odd response does not pin
    // memory for the rest of the run.
    if rbuf.capacity() > 4 * READ_BUF {
        *rbuf = Vec::with_capacity(READ_BUF);
    }
    Ok(close)
}

fn feed(decoder: &mut Chunked, bytes: &[u8]) -> Result<Option<usize>, Failure> {
    decoder.feed(bytes).map_err(|e| Failure {
        outcome: Outcome::Malformed,
        message: Cow::Owned(e.to_string()),
    })
}
