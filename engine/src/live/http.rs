//! A small blocking HTTP/1.1 server on `std::net` for the live view: one accepting thread and one
//! thread per connection, with a hard cap on connections and on what one request may send.
//!
//! It runs beside the coordinator, never on an engine core, and shares nothing with the cores: a
//! handler reads a snapshot the coordinator publishes (see [`super::Shared`]). Everything a client
//! controls is bounded: the request head ([`Limits::max_head`]), the body ([`Limits::max_body`]), how
//! long a request may take to arrive ([`Limits::request_timeout`]), how long a keep-alive connection may
//! stay idle ([`Limits::idle_timeout`]) and how many connections are open at once
//! ([`Limits::max_connections`]; the next one is answered `503` and closed). Bodies are only read with a
//! `Content-Length`; chunked uploads are refused.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one client may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections open at once; one more is answered `503 Service Unavailable` and closed.
    pub max_connections: usize,
    /// Bytes of request line and headers.
    pub max_head: usize,
    /// Headers per request.
    pub max_headers: usize,
    /// Bytes of request body (control requests are a few bytes of JSON).
    pub max_body: usize,
    /// From the first byte of a request to its last.
    pub request_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long writing a response may block on a client that does not read.
    pub write_timeout: Duration,
}

pub(crate) const LIMITS: Limits = Limits {
    max_connections: 16,
    max_head: 8 * 1024,
    max_headers: 48,
    max_body: 4 * 1024,
    request_timeout: Duration::from_secs(5),
    idle_timeout: Duration::from_secs(15),
    write_timeout: Duration::from_secs(5),
};

/// A request as handlers see it.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query, without `?` (empty when there is none).
    pub query: &'a str,
    pub headers: Vec<(&'a str, &'a [u8])>,
    pub body: &'a [u8],
    /// The client's address.
    pub peer: SocketAddr,
}

impl Request<'_> {
    /// The first header named `name` (case-insensitively), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// The value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// A response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// A body that is either static (the page's files) or made for this request.
#[derive(Debug)]
pub(crate) enum Body {
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Static(b) => b,
            Body::Owned(b) => b,
        }
    }
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Body) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// A plain-text response, for errors and short answers.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        let mut body = text.into().into_bytes();
        body.push(b'\n');
        Response::new(status, "text/plain; charset=utf-8", Body::Owned(body))
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What serves requests on a listener.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request<'_>) -> Response;
}

/// A listening socket, bound before the run starts so that a taken port is an error then.
#[derive(Debug)]
pub(crate) struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub fn bind(addr: SocketAddr) -> io::Result<Bound> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(Bound { listener, addr })
    }

    /// The bound address (with the port the system picked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    closing: Arc<AtomicBool>,
    open: Arc<Connections>,
    acceptor: Option<JoinHandle<()>>,
}

/// The open connections, so that stopping the server can close them. Only server threads take the
/// lock, for the time of a push or a removal.
#[derive(Debug, Default)]
struct Connections {
    count: AtomicUsize,
    streams: Mutex<Vec<(u64, TcpStream)>>,
    /// Signalled when a connection ends, for a stopping server waiting for responses in flight.
    ended: Condvar,
}

/// How long a stopping server lets responses already being written finish.
const DRAIN: Duration = Duration::from_secs(2);

impl Server {
    /// Serves `bound` with `handler` on threads of its own until stopped.
    pub fn start(bound: Bound, handler: Arc<dyn Handler>, limits: Limits) -> io::Result<Server> {
        let closing = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Connections::default());
        let addr = bound.addr;
        let acceptor = {
            let (closing, open) = (Arc::clone(&closing), Arc::clone(&open));
            std::thread::Builder::new()
                .name("stampede-live".into())
                .stack_size(256 * 1024)
                .spawn(move || accept_loop(bound.listener, handler, limits, &closing, &open))?
        };
        Ok(Server {
            addr,
            closing,
            open,
            acceptor: Some(acceptor),
        })
    }

    #[cfg(test)]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets responses being written finish (at most [`DRAIN`]), then closes every
    /// connection still open.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.closing.store(true, Ordering::SeqCst);
        // `accept` blocks; a connection of our own wakes it.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = acceptor.join();
        // Closing only the reading side ends idle keep-alive connections at once (their read returns
        // end of file) but lets a connection that is writing a response finish it: the final
        // snapshot a viewer fetched must not be cut off by the end of the run it describes.
        let mut streams = self
            .open
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, s) in streams.iter() {
            let _ = s.shutdown(Shutdown::Read);
        }
        let deadline = Instant::now() + DRAIN;
        while self.open.count.load(Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            streams = self
                .open
                .ended
                .wait_timeout(streams, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        for (_, s) in streams.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
    closing: &Arc<AtomicBool>,
    open: &Arc<Connections>,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of descriptors, or the peer left before accept: nothing to answer.
            continue;
        };
        if open.count.load(Ordering::SeqCst) >= limits.max_connections {
            refuse(stream);
            continue;
        }
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            open.streams
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((id, clone));
        }
        open.count.fetch_add(1, Ordering::SeqCst);
        let (handler, open2) = (Arc::clone(&handler), Arc::clone(open));
        let spawned = std::thread::Builder::new()
            .name("stampede-live-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve_connection(stream, &*handler, limits);
                open2.remove(id);
            });
        if spawned.is_err() {
            open.remove(id);
        }
    }
}

impl Connections {
    fn remove(&self, id: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = streams.iter().position(|(i, _)| *i == id) {
            let (_, s) = streams.swap_remove(i);
            let _ = s.shutdown(Shutdown::Both);
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
        drop(streams);
        self.ended.notify_all();
    }
}

/// Answers a connection over the limit, without reading from it.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let body = "too many connections to the live view; try again\n";
    let _ = write!(
        stream,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// Why a request could not be read.
#[derive(Debug)]
enum ReadError {
    /// The client closed the connection, went quiet or timed out: nothing to answer.
    Gone,
    /// The request is unacceptable: answer this and close.
    Reply(Response),
}

/// Serves requests on one connection until the client closes it, goes idle, or sends something that
/// ends the connection.
fn serve_connection(mut stream: TcpStream, handler: &dyn Handler, limits: Limits) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(limits.write_timeout));
    // The head buffer is also where pipelined bytes wait for their turn.
    let mut buf = vec![0u8; limits.max_head];
    let mut filled = 0usize;
    let mut body = Vec::new();
    loop {
        match read_request(&mut stream, &mut buf, &mut filled, &mut body, limits) {
            Ok((head_len, keep_alive)) => {
                let response = {
                    let Ok(head) = parse_head(&buf[..head_len], limits) else {
                        return;
                    };
                    let request = Request {
                        method: head.method,
                        path: head.path,
                        query: head.query,
                        headers: head.headers,
                        body: &body,
                        peer,
                    };
                    let mut response = handler.handle(&request);
                    if request.method == "HEAD" {
                        response.body = Body::Static(b"");
                    }
                    response
                };
                if write_response(&mut stream, &response, keep_alive).is_err() || !keep_alive {
                    return;
                }
                // Keep whatever followed the request (pipelining) for the next round.
                buf.copy_within(head_len..filled, 0);
                filled -= head_len;
                body.clear();
            }
            Err(ReadError::Gone) => return,
            Err(ReadError::Reply(response)) => {
                let _ = write_response(&mut stream, &response, false);
                return;
            }
        }
    }
}

/// The parsed request line and headers.
struct Head<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    content_length: usize,
    keep_alive: bool,
}

fn parse_head(bytes: &[u8], limits: Limits) -> Result<Head<'_>, Response> {
    let mut raw = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut raw);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Response::text(400, "incomplete request head"));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::text(
                431,
                format!("more than {} headers", limits.max_headers),
            ));
        }
        Err(e) => return Err(Response::text(400, format!("malformed request: {e}"))),
    }
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    if find("transfer-encoding").is_some() {
        return Err(Response::text(
            411,
            "request bodies need a Content-Length (chunked uploads are not accepted)",
        ));
    }
    let content_length = match find("content-length") {
        None => 0,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .ok_or_else(|| Response::text(400, "Content-Length is not a number"))?,
    };
    let connection = find("connection").map(|v| v.to_ascii_lowercase());
    let keep_alive = match req.version {
        Some(1) => connection.as_deref() != Some(b"close".as_slice()),
        _ => connection.as_deref() == Some(b"keep-alive".as_slice()),
    };
    Ok(Head {
        method,
        path,
        query,
        headers,
        content_length,
        keep_alive,
    })
}

/// Reads one request: its head into `buf[..head_len]` and its body into `body`. Returns the head's
/// length and whether the connection may stay open.
fn read_request(
    stream: &mut TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
    body: &mut Vec<u8>,
    limits: Limits,
) -> Result<(usize, bool), ReadError> {
    // Waiting for the first byte of a request is idleness; from then on, the request has a deadline.
    let mut deadline = (*filled > 0).then(|| Instant::now() + limits.request_timeout);
    let head_len = loop {
        if let Some(end) = find_head_end(&buf[..*filled]) {
            break end;
        }
        if *filled == buf.len() {
            return Err(ReadError::Reply(Response::text(
                431,
                format!("request head over {} bytes", limits.max_head),
            )));
        }
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => limits.idle_timeout,
        };
        if wait.is_zero() {
            return Err(ReadError::Reply(Response::text(
                408,
                "the request took too long to arrive",
            )));
        }
        let _ = stream.set_read_timeout(Some(wait));
        match stream.read(&mut buf[*filled..]) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => {
                *filled += n;
                deadline.get_or_insert_with(|| Instant::now() + limits.request_timeout);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && deadline.is_some() =>
            {
                return Err(ReadError::Reply(Response::text(
                    408,
                    "the request took too long to arrive",
                )));
            }
            Err(_) => return Err(ReadError::Gone),
        }
    };
    let head = parse_head(&buf[..head_len], limits).map_err(ReadError::Reply)?;
    let (length, keep_alive) = (head.content_length, head.keep_alive);
    if length > limits.max_body {
        return Err(ReadError::Reply(Response::text(
            413,
            format!("request body over {} bytes", limits.max_body),
        )));
    }
    // The body: first what already arrived after the head, then the rest from the socket.
    let deadline = deadline.unwrap_or_else(|| Instant::now() + limits.request_timeout);
    let have = (*filled - head_len).min(length);
    body.extend_from_slice(&buf[head_len..head_len + have]);
    // The body's bytes leave the buffer; pipelined bytes after it stay.
    buf.copy_within(head_len + have..*filled, head_len);
    *filled -= have;
    while body.len() < length {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Err(ReadError::Reply(Response::text(
                408,
                "the request body took too long to arrive",
            )));
        }
        let _ = stream.set_read_timeout(Some(wait));
        let mut chunk = [0u8; 1024];
        let want = (length - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ReadError::Gone),
        }
    }
    Ok((head_len, keep_alive))
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(stream: &mut TcpStream, r: &Response, keep_alive: bool) -> io::Result<()> {
    let body = r.body.bytes();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        body.len()
    );
    for (name, value) in &r.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, r: &Request<'_>) -> Response {
            Response::text(
                200,
                format!(
                    "{} {} q={} body={}",
                    r.method,
                    r.path,
                    r.param("x").unwrap_or("-"),
                    String::from_utf8_lossy(r.body)
                ),
            )
        }
    }

    fn server(limits: Limits) -> Server {
        let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        Server::start(bound, Arc::new(Echo), limits).unwrap()
    }

    /// Sends `bytes`, then reads until the server closes or `responses` responses arrived.
    fn exchange(addr: SocketAddr, bytes: &[u8], responses: usize) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while String::from_utf8_lossy(&out).matches("HTTP/1.1 ").count() < responses
            || !complete(&out, responses)
        {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether `out` holds `n` whole responses (each with its Content-Length of body).
    fn complete(out: &[u8], n: usize) -> bool {
        let text = String::from_utf8_lossy(out);
        let mut rest = &text[..];
        for _ in 0..n {
            let Some(end) = rest.find("\r\n\r\n") else {
                return false;
            };
            let len: usize = rest[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rest.len() < end + 4 + len {
                return false;
            }
            rest = &rest[end + 4 + len..];
        }
        true
    }

    #[test]
    fn keep_alive_pipelining_query_and_body() {
        let s = server(LIMITS);
        let out = exchange(
            s.addr(),
            b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
            3,
        );
        assert!(out.contains("GET /a q=1 body="), "{out}");
        assert!(out.contains("POST /b q=- body=hello"), "{out}");
        assert!(out.contains("GET /c q=- body="), "{out}");
        assert_eq!(out.matches("Connection: keep-alive").count(), 2, "{out}");
        assert!(out.contains("Connection: close"), "{out}");
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused_and_the_server_goes_on() {
        let s = server(LIMITS);
        let big = format!(
            "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(LIMITS.max_head)
        );
        let out = exchange(s.addr(), big.as_bytes(), 1);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let out = exchange(
            s.addr(),
            format!(
                "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                LIMITS.max_body + 1
            )
            .as_bytes(),
            1,
        );
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        let many: String = (0..LIMITS.max_headers + 1)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        let out = exchange(
            s.addr(),
            format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(),
            1,
        );
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let out = exchange(
            s.addr(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            1,
        );
        assert!(out.starts_with("HTTP/1.1 411 "), "{out}");
        let out = exchange(s.addr(), b"\x16\x03\x01 garbage\r\n\r\n", 1);
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        let out = exchange(s.addr(), b"GET /ok HTTP/1.1\r\n\r\n", 1);
        assert!(out.contains("GET /ok"), "{out}");
    }

    #[test]
    fn a_slow_request_times_out_with_408() {
        let limits = Limits {
            request_timeout: Duration::from_millis(200),
            ..LIMITS
        };
        let s = server(limits);
        let out = exchange(s.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n", 1);
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    }

    #[test]
    fn connections_over_the_limit_get_503_and_freed_slots_are_reused() {
        let limits = Limits {
            max_connections: 2,
            ..LIMITS
        };
        let s = server(limits);
        let held: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut c = TcpStream::connect(s.addr()).unwrap();
                // A full exchange proves the server has taken the connection.
                c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
                let mut b = [0u8; 256];
                let _ = c.read(&mut b).unwrap();
                c
            })
            .collect();
        let out = exchange(s.addr(), b"GET / HTTP/1.1\r\n\r\n", 1);
        assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
        drop(held);
        // The slots free up when the server sees the clients leave; bounded wait.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = exchange(s.addr(), b"GET /again HTTP/1.1\r\n\r\n", 1);
            if out.contains("GET /again") {
                break;
            }
            assert!(Instant::now() < deadline, "slots never freed: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A handler with one large response, so that writing it blocks until the client reads.
    struct Large;

    const LARGE: usize = 32 << 20;

    impl Handler for Large {
        fn handle(&self, _: &Request<'_>) -> Response {
            Response::new(
                200,
                "application/octet-stream",
                Body::Owned(vec![b'x'; LARGE]),
            )
        }
    }

    #[test]
    fn stopping_lets_a_response_being_written_finish() {
        let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let s = Server::start(bound, Arc::new(Large), LIMITS).unwrap();
        let addr = s.addr();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        // The first bytes say the server is writing; the rest cannot fit the sockets' buffers, so it
        // is still writing when the server stops.
        let mut got = vec![0u8; 4096];
        let mut n = c.read(&mut got).unwrap();
        let stopper = std::thread::spawn(move || s.stop());
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_ok() {
            assert!(Instant::now() < deadline, "the listener never closed");
            std::thread::yield_now();
        }
        got.truncate(n);
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        n += rest.len();
        got.extend_from_slice(&rest);
        let head_len = find_head_end(&got).expect("a response head");
        assert_eq!(n - head_len, LARGE, "the response was cut off");
        stopper.join().unwrap();
    }

    #[test]
    fn stopping_closes_open_connections() {
        let s = server(LIMITS);
        let addr = s.addr();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut b = [0u8; 256];
        let _ = c.read(&mut b).unwrap();
        s.stop();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The first read may have got only part of the response; whatever is left is fine, but the
        // stream must then end (a connection left open would time out here instead).
        let mut rest = Vec::new();
        assert!(
            c.read_to_end(&mut rest).is_ok(),
            "the connection was not closed"
        );
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }
}
