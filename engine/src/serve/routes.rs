//! The embedded target's built-in routes (`/`, `/items/{id}`, `/delay/{ms}`, `/status/{code}`,
//! `/bytes/{n}`, `/echo`, after the `api` module's), and the writing of a response.

use std::time::Duration;

use super::api;
use super::connection::{Request, State};

const MAX_BYTES: u64 = 16 << 20;

pub(super) async fn respond(
    req: &Request,
    head_bytes: &[u8],
    body: &[u8],
    state: &State,
    out: &mut Vec<u8>,
) {
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

pub(super) fn write_response(
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
