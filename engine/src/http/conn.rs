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
//! Responses are read by the shared sans-I/O [`Reader`], which also keeps what a request asked to keep
//! ([`Keep`]) until the next exchange.

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

use super::reader::{Keep, KeptResponse, Reader, Step};
use crate::tls::TlsClient;

/// A TLS stream over TCP (client side).
type TlsStream = monoio_rustls::ClientTlsStream<TcpStream>;

/// Initial read buffer. Most response heads fit; bodies stream through it in pieces this size.
const READ_BUF: usize = 4096;

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
    /// Reads responses, and keeps the last one as far as its request asked.
    reader: Reader,
}

/// What the client sends and how it treats the answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestRef<'a> {
    pub bytes: &'a [u8],
    pub head: bool,
    pub keep: Keep,
}

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
    /// Connect time when this request opened the connection, else 0.
    pub connect_us: u32,
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
        self.reader.forget();
    }

    /// The last response as far as its request asked to keep it; `None` if nothing was kept.
    pub fn kept(&self) -> Option<KeptResponse<'_>> {
        self.reader.kept()
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
        self.reader.forget();
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
    /// sample's connect time includes the handshake.
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
                    Ok(Link::Idle(rx, tx))
                }
                Some(tls) => match tls.connector.connect(tls.server_name.clone(), stream).await {
                    Ok(s) => Ok(Link::Tls(Box::new(s))),
                    Err(e) => Err(match crate::tls::handshake_failure(&e) {
                        Ok(message) => Failure {
                            outcome: Outcome::Tls,
                            message: Cow::Owned(message),
                        },
                        Err(io) => Failure::io("TLS handshake", io),
                    }),
                },
            }
        };
        match monoio::time::timeout(limits.connect_timeout, opening).await {
            Err(_) if tls.is_some() => Err(Failure::new(
                Outcome::ConnectTimeout,
                "connect or TLS handshake timed out",
            )),
            Err(_) => Err(Failure::new(Outcome::ConnectTimeout, "connect timed out")),
            Ok(Err(f)) => Err(f),
            Ok(Ok(link)) => {
                ex.connect_us = (start.elapsed().as_micros() as u32).max(1);
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
        self.reader.start(req.head, max_body, req.keep);
        let (rx, tx) = match &mut self.link {
            Link::Idle(rx, tx) => (rx, tx),
            Link::Tls(stream) => {
                send(&mut **stream, &mut self.wbuf, req.bytes).await?;
                ex.bytes_sent = ex.bytes_sent.saturating_add(req.bytes.len() as u32);
                return receive(&mut **stream, &mut self.rbuf, &mut self.reader, start, ex).await;
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
                &mut self.reader,
                start,
                &mut *ex
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

/// Reads one response through the shared reader ([`Reader`]); returns whether the connection must be
/// closed afterwards.
async fn receive<R: AsyncReadRent>(
    stream: &mut R,
    rbuf: &mut Vec<u8>,
    reader: &mut Reader,
    start: Instant,
    ex: &mut Exchange,
) -> Result<bool, Failure> {
    loop {
        rbuf.clear();
        let got = read_more(stream, rbuf, ex, start).await;
        let step = match got {
            Ok(0) => reader.on_eof(),
            Ok(_) => reader.on_data(rbuf),
            Err(f) => {
                ex.status = reader.status;
                return Err(f);
            }
        };
        match step {
            Step::NeedMore => {}
            Step::Done { close } => {
                ex.status = reader.status;
                return Ok(close);
            }
            Step::Fail(f) => {
                ex.status = reader.status;
                return Err(f);
            }
        }
    }
}
