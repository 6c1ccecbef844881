//! The embedded target: a small HTTP/1.1 server on monoio for demos and tests. It counts the requests
//! it answered, so tests can compare the count with the samples the engine logged.
//!
//! | route            | answer                                                          |
//! |------------------|-----------------------------------------------------------------|
//! | `/`              | 200 `ok`                                                        |
//! | `/items/{id}`    | 200 JSON describing item `id` (digits), else 404                |
//! | `/delay/{ms}`    | 200 after `ms` milliseconds (at most 60 000)                    |
//! | `/status/{code}` | that status (100-599)                                           |
//! | `/bytes/{n}`     | `n` bytes (at most 16 MiB)                                      |
//! | `/echo`          | the request body, with its content type                         |
//!
//! Two behaviours make it a test bench for measurement ([`Behaviour`], `engine serve --stall-every 2s
//! --stall-for 200ms --latency-mix 90:1ms,10:20ms`, or `embedded: (...)` in a profile):
//!
//! - **Stall mode**: every `every`, all responses are held for `hold`, like a stop-the-world garbage
//!   collection. Windows are aligned to `CLOCK_MONOTONIC` (a window starts whenever the clock is a
//!   multiple of `every`), so a test can tell from a sample's absolute time whether it met a stall.
//! - **Latency mix**: responses are delayed by fixed proportions, dealt by smooth weighted round-robin
//!   so that every 100 responses of a `90:1ms,10:20ms` mix have exactly 90 of 1 ms and 10 of 20 ms.
//!   Delays count from the moment the request was read, and are waited out on a precise timer, so the
//!   true latency distribution is known to well under a millisecond.
//!
//! Log in, tokens (login, OAuth2, JWT), cookies, a CRUD store, search and `/anything` are in
//! the `api` module's table. With [`ServerConfig::record`], the server also keeps every request it answered
//! (method, target, headers, body) for tests to inspect.

mod api;
mod jobs;
mod runtime;
mod timer;

pub use api::{CLIENT_SECRET, JWT_SECRET};
pub use jobs::SIGNING_SECRET;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpListener;

use crate::cli::{IoChoice, ServeArgs};
use crate::profile::spec::EmbeddedSpec;
use runtime::Runtime;
use timer::{PreciseTimer, monotonic_now_ns};

const MAX_REQUEST_HEAD: usize = 64 << 10;
const MAX_REQUEST_BODY: usize = 1 << 20;
const MAX_BYTES: u64 = 16 << 20;

/// A running embedded server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    tls_failures: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    recorded: Option<Arc<Mutex<Vec<Recorded>>>>,
}

/// How to run the embedded server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub addr: String,
    /// Server threads.
    pub threads: u32,
    /// The I/O driver.
    pub io: IoChoice,
    /// A CPU to pin the threads to.
    pub cpu: Option<u32>,
    /// Keep every request answered (for tests; at most [`MAX_RECORDED`]).
    pub record: bool,
    /// Stall mode and latency mix.
    pub behaviour: Behaviour,
}

/// The most requests a recording server keeps.
pub const MAX_RECORDED: usize = 1_000_000;

/// A request the server answered, as recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        api::form(q)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// How the embedded target delays its responses on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// `(every, hold)`: hold every response that falls in the first `hold` of each `every`.
    pub stall: Option<(Duration, Duration)>,
    /// `(weight, delay)`: delay responses in these proportions.
    pub latency_mix: Vec<(u32, Duration)>,
}

impl Behaviour {
    /// From a profile's `embedded` settings.
    pub fn from_spec(spec: &EmbeddedSpec) -> Behaviour {
        Behaviour {
            stall: spec.stall.map(|s| (s.every.0, s.hold.0)),
            latency_mix: spec.latency_mix.iter().map(|&(w, d)| (w, d.0)).collect(),
        }
    }

    fn is_plain(&self) -> bool {
        self.stall.is_none() && self.latency_mix.iter().all(|&(_, d)| d.is_zero())
    }

    /// When a response that is ready at `ready_ns` (`CLOCK_MONOTONIC`) may go out: at once, or at the
    /// end of the stall window it falls in.
    pub fn release_at(&self, ready_ns: u64) -> u64 {
        match self.stall {
            Some((every, hold)) if !every.is_zero() => {
                let every = every.as_nanos() as u64;
                let hold = (hold.as_nanos() as u64).min(every);
                let phase = ready_ns % every;
                if phase < hold {
                    ready_ns - phase + hold
                } else {
                    ready_ns
                }
            }
            _ => ready_ns,
        }
    }

    /// The stall windows `[start, end)` in `CLOCK_MONOTONIC` nanoseconds that overlap `[from, to)`.
    pub fn stalls_between(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let Some((every, hold)) = self.stall else {
            return Vec::new();
        };
        let (every, hold) = (every.as_nanos() as u64, hold.as_nanos() as u64);
        if every == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut start = from - from % every;
        while start < to {
            if start + hold > from {
                out.push((start, start + hold));
            }
            start += every;
        }
        out
    }
}

/// Deals the latency mix's delays in exact proportions (smooth weighted round-robin).
#[derive(Debug)]
struct MixCursor {
    current: Vec<i64>,
}

impl MixCursor {
    fn next(&mut self, mix: &[(u32, Duration)]) -> Duration {
        let total: i64 = mix.iter().map(|&(w, _)| i64::from(w)).sum();
        if total == 0 {
            return Duration::ZERO;
        }
        for (c, &(w, _)) in self.current.iter_mut().zip(mix) {
            *c += i64::from(w);
        }
        let best = (0..mix.len())
            .max_by_key(|&i| (self.current[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        self.current[best] -= total;
        mix[best].1
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves on `threads` threads, pinned to `cpu` if given.
    pub fn start(addr: &str, threads: u32, io: IoChoice, cpu: Option<u32>) -> io::Result<Server> {
        Server::start_with(&ServerConfig {
            addr: addr.to_owned(),
            threads,
            io,
            cpu,
            record: false,
            behaviour: Behaviour::default(),
        })
    }

    /// Starts a server as configured.
    pub fn start_with(config: &ServerConfig) -> io::Result<Server> {
        Server::start_tls(config, None)
    }

    /// Starts a server as configured, serving TLS when `tls` is given (every connection; ALPN
    /// `http/1.1`). A connection whose handshake fails is counted ([`Server::tls_failures`]) and
    /// closed.
    pub fn start_tls(
        config: &ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Server> {
        let ServerConfig {
            addr,
            threads,
            io,
            cpu,
            record,
            behaviour,
        } = config.clone();
        let listener = std::net::TcpListener::bind(&addr)?;
        // monoio's epoll driver expects a non-blocking socket; a blocking accept would stall the thread.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let driver = Runtime::select(io)?;
        let served = Arc::new(AtomicU64::new(0));
        let tls_failures = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let secret = u64::from_le_bytes(crate::rng::random_id()[..8].try_into().expect("8 bytes"));
        let api = Arc::new(api::Api {
            secret,
            items: Mutex::default(),
            jobs: Mutex::default(),
        });
        let recorded = record.then(|| Arc::new(Mutex::new(Vec::new())));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let listener = listener.try_clone()?;
            let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
            let tls_failures = Arc::clone(&tls_failures);
            let acceptor = tls.clone().map(monoio_rustls::TlsAcceptor::from);
            let behaviour = behaviour.clone();
            let (api, recorded) = (Arc::clone(&api), recorded.clone());
            let handle = std::thread::Builder::new()
                .name(format!("stampede-serve-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        crate::sys::pin_current_thread(cpu);
                    }
                    let result = driver.block_on(async move {
                        let listener = match TcpListener::from_std(listener) {
                            Ok(l) => l,
                            Err(e) => return eprintln!("embedded server: {e}"),
                        };
                        let mix = std::cell::RefCell::new(MixCursor {
                            current: vec![0; behaviour.latency_mix.len()],
                        });
                        let state = std::rc::Rc::new(State {
                            served,
                            tls_failures,
                            acceptor,
                            api,
                            recorded,
                            behaviour,
                            mix,
                        });
                        monoio::select! {
                            () = accept_loop(listener, state) => {},
                            () = wait_for(stop) => {},
                        }
                    });
                    if let Err(e) = result {
                        eprintln!("embedded server: cannot start the runtime: {e}");
                    }
                })?;
            handles.push(handle);
        }
        Ok(Server {
            addr,
            served,
            tls_failures,
            stop,
            threads: handles,
            recorded,
        })
    }

    /// The requests answered so far, when recording.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded
            .as_ref()
            .map(|r| {
                r.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed so far.
    pub fn tls_failures(&self) -> u64 {
        self.tls_failures.load(Ordering::Relaxed)
    }

    /// Stops serving and waits for the threads (within about 50 ms).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `engine serve`: serves until Ctrl-C or SIGTERM, printing the bound address first.
pub fn serve_command(args: &ServeArgs) -> io::Result<()> {
    // Handlers first: a signal that arrives once the address is printed must stop the server cleanly.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let behaviour = Behaviour {
        stall: args.stall_every.zip(args.stall_for),
        latency_mix: args
            .latency_mix
            .as_ref()
            .map(|m| m.0.clone())
            .unwrap_or_default(),
    };
    if let Some((every, hold)) = behaviour.stall
        && (every.is_zero() || hold >= every)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--stall-for must be shorter than --stall-every",
        ));
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::tls::server_config(cert, key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        ),
        _ => None,
    };
    let server = Server::start_tls(
        &ServerConfig {
            addr: args.addr.clone(),
            threads: args.threads,
            io: args.io,
            cpu: None,
            record: false,
            behaviour,
        },
        tls,
    )?;
    println!("{}", server.addr());
    let _ = signals.forever().next();
    eprintln!("served {} requests", server.served());
    server.stop();
    Ok(())
}

struct State {
    served: Arc<AtomicU64>,
    tls_failures: Arc<AtomicU64>,
    acceptor: Option<monoio_rustls::TlsAcceptor>,
    api: Arc<api::Api>,
    recorded: Option<Arc<Mutex<Vec<Recorded>>>>,
    behaviour: Behaviour,
    mix: std::cell::RefCell<MixCursor>,
}

async fn wait_for(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        monoio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn accept_loop(listener: TcpListener, state: std::rc::Rc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let state = std::rc::Rc::clone(&state);
                match state.acceptor.clone() {
                    None => {
                        monoio::spawn(serve_connection(stream, state));
                    }
                    Some(acceptor) => {
                        monoio::spawn(async move {
                            match acceptor.accept(stream).await {
                                Ok(tls) => serve_connection(tls, state).await,
                                Err(_) => {
                                    state.tls_failures.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    }
                }
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => monoio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A parsed request, as much as the routes need.
struct Request {
    head_len: usize,
    method: String,
    method_head: bool,
    path: String,
    content_length: usize,
    content_type: Option<String>,
    close: bool,
}

enum Parse {
    Incomplete,
    Bad(&'static str),
    Done(Request),
}

fn parse_request(buf: &[u8]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::Incomplete,
        Err(_) => return Parse::Bad("malformed request"),
    };
    let mut r = Request {
        head_len,
        method: req.method.unwrap_or("GET").to_owned(),
        method_head: req.method == Some("HEAD"),
        path: req.path.unwrap_or("/").to_owned(),
        content_length: 0,
        content_type: None,
        close: req.version == Some(0),
    };
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => r.content_length = n,
                Err(_) => return Parse::Bad("invalid Content-Length"),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Bad("chunked request bodies are not supported; send Content-Length");
        } else if h.name.eq_ignore_ascii_case("content-type") {
            r.content_type = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("connection") {
            r.close = value.eq_ignore_ascii_case("close")
                || (r.close && !value.eq_ignore_ascii_case("keep-alive"));
        }
    }
    Parse::Done(r)
}

async fn serve_connection<S: AsyncReadRent + AsyncWriteRent>(
    mut stream: S,
    state: std::rc::Rc<State>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    // Created on the first delayed response; falls back to the runtime's timers if it cannot be.
    let mut timer: Option<PreciseTimer> = None;
    loop {
        // Read until a whole request (head and body) is buffered.
        let req = loop {
            match parse_request(&buf) {
                Parse::Done(r) if buf.len() >= r.head_len + r.content_length => break Ok(r),
                Parse::Done(r) if r.content_length > MAX_REQUEST_BODY => {
                    break Err((413, "request body too large"));
                }
                Parse::Bad(why) => break Err((400, why)),
                _ if buf.len() > MAX_REQUEST_HEAD + MAX_REQUEST_BODY => {
                    break Err((431, "request too large"));
                }
                _ => {}
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(buf.capacity());
            }
            let len = buf.len();
            let cap = buf.capacity();
            let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        if let Ok(r) = &req
            && r.path.starts_with("/ws")
            && api::headers(&buf[..r.head_len]).iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket")
            })
        {
            let head_len = r.head_len;
            let path = r.path.clone();
            let key = api::headers(&buf[..head_len])
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key"))
                .map(|(_, v)| v);
            buf.drain(..head_len);
            websocket(stream, buf, key, &path, &state).await;
            return;
        }
        let read_at_ns = monotonic_now_ns();
        out.clear();
        let close = match req {
            Ok(req) => {
                let head = &buf[..req.head_len];
                let body = &buf[req.head_len..req.head_len + req.content_length];
                if let Some(rec) = &state.recorded {
                    let mut rec = rec
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if rec.len() < MAX_RECORDED {
                        rec.push(Recorded {
                            method: req.method.clone(),
                            target: req.path.clone(),
                            headers: api::headers(head),
                            body: body.to_vec(),
                        });
                    }
                }
                respond(&req, head, body, &state, &mut out).await;
                buf.drain(..req.head_len + req.content_length);
                req.close
            }
            Err((code, why)) => {
                write_response(&mut out, code, "text/plain", why.as_bytes(), true, false);
                true
            }
        };
        if !state.behaviour.is_plain() {
            let delay = state.mix.borrow_mut().next(&state.behaviour.latency_mix);
            let release = state
                .behaviour
                .release_at(read_at_ns + delay.as_nanos() as u64);
            if release > monotonic_now_ns() {
                if timer.is_none() {
                    timer = PreciseTimer::new().ok();
                }
                let precise = match &timer {
                    Some(t) => t.sleep_until(release).await.is_ok(),
                    None => false,
                };
                if !precise {
                    let left = release.saturating_sub(monotonic_now_ns());
                    monoio::time::sleep(Duration::from_nanos(left)).await;
                }
            }
        }
        let (res, o) = stream.write_all(out).await;
        out = o;
        if res.is_err() {
            return;
        }
        state.served.fetch_add(1, Ordering::Relaxed);
        if close {
            return;
        }
    }
}

/// The `/ws` routes: after the upgrade, `/ws` echoes every text and binary message and answers pings;
/// `/ws/close-after/{n}` echoes `n` messages and then closes (code 1011) instead of answering the next,
/// for tests of a server that closes mid-exchange; `/ws/silent` reads and never answers. Each message
/// echoed counts as a request served.
async fn websocket<S: AsyncReadRent + AsyncWriteRent>(
    mut stream: S,
    mut buf: Vec<u8>,
    key: Option<String>,
    path: &str,
    state: &State,
) {
    use crate::ws::{self, op};
    let Some(key) = key else {
        let mut out = Vec::new();
        write_response(
            &mut out,
            400,
            "text/plain",
            b"no Sec-WebSocket-Key",
            true,
            false,
        );
        let _ = stream.write_all(out).await;
        return;
    };
    let close_after: Option<u64> = path
        .strip_prefix("/ws/close-after/")
        .and_then(|n| n.parse().ok());
    let silent = path == "/ws/silent";
    let accept = ws::accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let (res, _) = stream.write_all(answer.into_bytes()).await;
    if res.is_err() {
        return;
    }
    let mut echoed = 0u64;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut payload: Vec<u8> = Vec::new();
    loop {
        let Ok(head) = ws::parse_head(&buf) else {
            return;
        };
        if let Some(h) = head
            && buf.len() as u64 >= h.header_len as u64 + h.len
        {
            if h.len > MAX_REQUEST_BODY as u64 {
                return;
            }
            let total = h.header_len + h.len as usize;
            payload.clear();
            payload.extend_from_slice(&buf[h.header_len..total]);
            if let Some(k) = h.mask {
                ws::apply_mask(&mut payload, k);
            }
            buf.drain(..total);
            out.clear();
            match h.opcode {
                op::PING => ws::write_frame(&mut out, op::PONG, &payload, None),
                op::CLOSE => {
                    ws::write_frame(&mut out, op::CLOSE, &payload, None);
                    let _ = stream.write_all(out).await;
                    return;
                }
                op::PONG => continue,
                _ if silent => continue,
                opcode => {
                    if close_after.is_some_and(|n| echoed >= n) {
                        ws::write_frame(&mut out, op::CLOSE, &1011u16.to_be_bytes(), None);
                        let _ = stream.write_all(out).await;
                        return;
                    }
                    ws::write_frame(&mut out, opcode, &payload, None);
                    echoed += 1;
                    state.served.fetch_add(1, Ordering::Relaxed);
                }
            }
            let (res, o) = stream.write_all(out).await;
            out = o;
            if res.is_err() {
                return;
            }
            continue;
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn respond(req: &Request, head_bytes: &[u8], body: &[u8], state: &State, out: &mut Vec<u8>) {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let call = api::Call {
        method: &req.method,
        path,
        query,
        head: head_bytes,
        body,
        now_ms: crate::clock::wall_now_ns() as u64 / 1_000_000,
    };
    if let Some(a) = state.api.route(&call) {
        write_full(
            out,
            a.status,
            a.content_type,
            &a.body,
            &a.headers,
            req.close,
            req.method_head,
        );
        return;
    }
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let first = segments.next().unwrap_or("");
    let rest = segments.next();
    let head = req.method_head;
    let close = req.close;
    match (first, rest) {
        ("", None) => write_response(out, 200, "text/plain", b"ok", close, head),
        ("items", Some(id))
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && id.len() < 19 =>
        {
            let n: u64 = id.parse().unwrap_or(0);
            let json = format!(
                r#"{{"id":{n},"name":"item {n}","price":{}.{:02}}}"#,
                n % 1000,
                n % 100
            );
            write_response(out, 200, "application/json", json.as_bytes(), close, head);
        }
        ("delay", Some(ms)) => match ms.parse::<u64>() {
            Ok(ms) if ms <= 60_000 => {
                monoio::time::sleep(Duration::from_millis(ms)).await;
                write_response(out, 200, "text/plain", b"ok", close, head);
            }
            _ => write_response(out, 400, "text/plain", b"delay is 0-60000 ms", close, head),
        },
        ("status", Some(code)) => match code.parse::<u16>() {
            Ok(code) if (200..=599).contains(&code) => {
                write_response(
                    out,
                    code,
                    "text/plain",
                    format!("status {code}").as_bytes(),
                    close,
                    head,
                );
            }
            _ => write_response(out, 400, "text/plain", b"status is 200-599", close, head),
        },
        ("bytes", Some(n)) => match n.parse::<u64>() {
            Ok(n) if n <= MAX_BYTES => {
                let data = vec![b'x'; n as usize];
                write_response(out, 200, "application/octet-stream", &data, close, head);
            }
            _ => write_response(out, 400, "text/plain", b"bytes is 0-16777216", close, head),
        },
        ("echo", None) => {
            let ct = req
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            write_response(out, 200, ct, body, close, head);
        }
        _ => write_response(out, 404, "text/plain", b"not found", close, head),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_response(
    out: &mut Vec<u8>,
    code: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
    head: bool,
) {
    write_full(out, code, content_type, body, &[], close, head);
}

fn write_full(
    out: &mut Vec<u8>,
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[String],
    close: bool,
    head: bool,
) {
    use std::io::Write;
    let no_body = code == 204 || code == 304;
    let _ = write!(
        out,
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\n",
        reason(code)
    );
    if !no_body {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    for line in extra {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head && !no_body {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_windows() {
        let ms = |n: u64| n * 1_000_000;
        let b = Behaviour {
            stall: Some((Duration::from_secs(2), Duration::from_millis(200))),
            latency_mix: Vec::new(),
        };
        // Inside a window: held until its end. Outside, or exactly at its end: at once.
        assert_eq!(b.release_at(ms(4_050)), ms(4_200));
        assert_eq!(b.release_at(ms(4_000)), ms(4_200));
        assert_eq!(b.release_at(ms(4_200)), ms(4_200));
        assert_eq!(b.release_at(ms(5_999)), ms(5_999));
        assert_eq!(
            b.stalls_between(ms(100), ms(4_100)),
            [(0, ms(200)), (ms(2_000), ms(2_200)), (ms(4_000), ms(4_200))]
        );
        assert_eq!(Behaviour::default().release_at(7), 7);
    }

    #[test]
    fn latency_mix_is_dealt_in_exact_proportions() {
        let mix = [
            (90, Duration::from_millis(1)),
            (9, Duration::from_millis(10)),
            (1, Duration::from_millis(100)),
        ];
        let mut cursor = MixCursor {
            current: vec![0; 3],
        };
        let dealt: Vec<Duration> = (0..100).map(|_| cursor.next(&mix)).collect();
        for (w, d) in mix {
            assert_eq!(
                dealt.iter().filter(|&&x| x == d).count(),
                w as usize,
                "{d:?}"
            );
        }
        // Interleaved, not in runs: the slow ones are spread out.
        let first_slow = dealt
            .iter()
            .position(|&d| d == Duration::from_millis(10))
            .unwrap();
        assert!(first_slow < 15, "{first_slow}");
    }
}
