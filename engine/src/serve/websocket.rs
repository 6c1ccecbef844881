//! The embedded target's `/ws` routes, after the HTTP upgrade.

use std::sync::atomic::Ordering;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::MAX_REQUEST_BODY;
use super::connection::State;
use super::routes::write_response;

/// The `/ws` routes: after the upgrade, `/ws` echoes every text and binary message and answers pings;
/// `/ws/close-after/{n}` echoes `n` messages and then closes (code 1011) instead of answering the next,
/// for tests of a server that closes mid-exchange; `/ws/silent` reads and never answers. Each message
/// echoed counts as a request served.
pub(super) async fn websocket<S: AsyncReadRent + AsyncWriteRent>(
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
