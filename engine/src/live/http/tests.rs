//! The server end to end, over loopback sockets: keep-alive and pipelining, every limit, stopping.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::request::find_head_end;
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
