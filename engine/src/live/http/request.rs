//! Reading a request from a connection: the head up to its limit and deadline, parsed with
//! `httparse`, then a body of `Content-Length` bytes. Pipelined bytes stay in the buffer for the next
//! request.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use super::{Limits, Response};

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

/// Why a request could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The client closed the connection, went quiet or timed out: nothing to answer.
    Gone,
    /// The request is unacceptable: answer this and close.
    Reply(Response),
}

/// The parsed request line and headers.
pub(super) struct Head<'a> {
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) query: &'a str,
    pub(super) headers: Vec<(&'a str, &'a [u8])>,
    content_length: usize,
    keep_alive: bool,
}

pub(super) fn parse_head(bytes: &[u8], limits: Limits) -> Result<Head<'_>, Response> {
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
pub(super) fn read_request(
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

pub(super) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}
