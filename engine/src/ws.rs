//! WebSocket framing (RFC 6455 §5) and the opening handshake's key, shared by the loop's WebSocket
//! steps (`event_loop/steps.rs`) and the embedded target's `/ws` echo endpoint. Hand-written rather
//! than taken from tungstenite: the engine needs only the frame header and the key, in its own reused
//! buffers (tungstenite owns the stream and allocates a `Bytes` per frame).

use base64::Engine as _;

/// The GUID the accept key is derived with (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Frame opcodes.
pub(crate) mod op {
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// Header length in bytes.
    pub header_len: usize,
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameError(pub &'static str);

/// Parses the frame header at the start of `buf`; `Ok(None)` when more bytes are needed.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(FrameError(
            "a WebSocket frame sets reserved bits (no extension was agreed)",
        ));
    }
    let opcode = b0 & 0x0F;
    if !matches!(opcode, 0x0..=0x2 | 0x8..=0xA) {
        return Err(FrameError("a WebSocket frame has an unknown opcode"));
    }
    let fin = b0 & 0x80 != 0;
    if opcode >= 0x8 && (!fin || b1 & 0x7F > 125) {
        return Err(FrameError(
            "a WebSocket control frame is fragmented or too long",
        ));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Head {
        fin,
        opcode,
        mask,
        len,
        header_len: at,
    }))
}

/// Appends a final frame with `payload`, masked with `mask` when given (a client must mask).
pub(crate) fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key);
        }
        None => out.extend_from_slice(payload),
    }
}

/// XORs `buf` with the masking key (masking and unmasking are the same).
pub(crate) fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// A fresh `Sec-WebSocket-Key` from 16 bytes of `seed`.
pub(crate) fn client_key(seed: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_accept_key() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_round_trip_at_every_length_format() {
        for (len, mask) in [
            (0, None),
            (5, Some([1, 2, 3, 4])),
            (300, None),
            (70_000, Some([9, 8, 7, 6])),
        ] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            write_frame(&mut out, op::BINARY, &payload, mask);
            let head = parse_head(&out).unwrap().unwrap();
            assert_eq!(
                (head.fin, head.opcode, head.len, head.mask),
                (true, op::BINARY, len as u64, mask)
            );
            let mut body = out[head.header_len..].to_vec();
            if let Some(k) = head.mask {
                apply_mask(&mut body, k);
            }
            assert_eq!(body, payload);
            // Every proper prefix of the header is "incomplete", never an error.
            for cut in 0..head.header_len {
                assert_eq!(parse_head(&out[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(parse_head(&[0xC1, 0x00]).is_err()); // RSV1 without an extension
        assert!(parse_head(&[0x83, 0x00]).is_err()); // opcode 3
        assert!(parse_head(&[0x09, 0x00]).is_err()); // fragmented ping
        assert!(parse_head(&[0x89, 126, 0, 200]).is_err()); // ping of 200 bytes
    }
}
