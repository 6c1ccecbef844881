//! The server loop: accepting connections (and TLS handshakes), reading whole requests, delaying
//! responses as the [`Behaviour`](super::Behaviour) says, and writing them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpListener;

use super::behaviour::{Behaviour, MixCursor};
use super::routes::{respond, write_response};
use super::timer::{PreciseTimer, monotonic_now_ns};
use super::websocket::websocket;
use super::{MAX_RECORDED, MAX_REQUEST_BODY, MAX_REQUEST_HEAD, Recorded, api};

pub(super) struct State {
    pub(super) served: Arc<AtomicU64>,
    pub(super) tls_failures: Arc<AtomicU64>,
    pub(super) acceptor: Option<monoio_rustls::TlsAcceptor>,
    pub(super) api: Arc<api::Api>,
    pub(super) recorded: Option<Arc<Mutex<Vec<Recorded>>>>,
    pub(super) behaviour: Behaviour,
    pub(super) mix: std::cell::RefCell<MixCursor>,
}

pub(super) async fn accept_loop(listener: TcpListener, state: std::rc::Rc<State>) {
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
pub(super) struct Request {
    pub(super) head_len: usize,
    pub(super) method: String,
    pub(super) method_head: bool,
    pub(super) path: String,
    pub(super) content_length: usize,
    pub(super) content_type: Option<String>,
    pub(super) close: bool,
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
