//! Response heads: httparse for the syntax, then the framing rules of RFC 9112 §6.

/// The most headers a response may have.
const MAX_HEADERS: usize = 64;

/// How the body that follows a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (HEAD request, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes the head took, final CRLF included.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub body: BodyKind,
    /// Whether the connection must be closed after this response.
    pub close: bool,
    /// Whether the response sets a cookie (so a user with a cookie jar keeps the head).
    pub set_cookie: bool,
}

/// Why a response head is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// httparse refused it.
    #[error("malformed response head: {0}")]
    Syntax(httparse::Error),
    /// A Content-Length that is not a number, or several that disagree.
    #[error("invalid Content-Length")]
    ContentLength,
    /// A transfer coding other than chunked.
    #[error("unsupported Transfer-Encoding")]
    TransferEncoding,
}

/// Parses the head at the start of `buf`. `Ok(None)` means it is incomplete.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, HeadError> {
    // Uninitialised header slots: zeroing 64 of them cost more than the parse itself on small responses.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    );
    let len = match parsed.map_err(HeadError::Syntax)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut close = http10;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut set_cookie = false;
    for h in resp.headers.iter() {
        set_cookie |= h.name.eq_ignore_ascii_case("set-cookie");
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)
                .map_err(|_| HeadError::ContentLength)?
                .trim();
            let n: u64 = text.parse().map_err(|_| HeadError::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::ContentLength);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            if last.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            } else if !last.eq_ignore_ascii_case(b"identity") {
                return Err(HeadError::TransferEncoding);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    close = false;
                }
            }
        }
    }
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        BodyKind::None
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        close = true;
        BodyKind::UntilClose
    };
    Ok(Some(Head {
        len,
        status,
        body,
        close,
        set_cookie,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, HeadError> {
        parse_head(text.as_bytes(), false)
    }

    #[test]
    fn framing_table() {
        type Row<'a> = (&'a str, Option<(u16, BodyKind, bool)>);
        let rows: &[Row<'_>] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                Some((200, BodyKind::Length(2), false)),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Some((200, BodyKind::Chunked, false)),
            ),
            // Chunked wins over a Content-Length (RFC 9112 §6.3).
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some((200, BodyKind::Chunked, false)),
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
                Some((204, BodyKind::None, false)),
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                Some((200, BodyKind::Length(0), true)),
            ),
            // No framing: the body runs to the close.
            (
                "HTTP/1.1 200 OK\r\n\r\nabc",
                Some((200, BodyKind::UntilClose, true)),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                Some((200, BodyKind::Length(0), true)),
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                Some((200, BodyKind::Length(0), false)),
            ),
            // Incomplete.
            ("HTTP/1.1 200 OK\r\nContent-Le", None),
        ];
        for (text, want) in rows {
            let got = head(text).unwrap().map(|h| (h.status, h.body, h.close));
            assert_eq!(got, *want, "{text:?}");
        }
        assert!(
            head("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap()
                .set_cookie
        );
        assert!(
            !head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap()
                .set_cookie
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true)
                .unwrap()
                .unwrap()
                .body,
            BodyKind::None
        );
    }

    #[test]
    fn hostile_heads_are_errors() {
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(HeadError::ContentLength)
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(HeadError::ContentLength)
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HeadError::TransferEncoding)
        );
        assert!(matches!(
            head("SMTP ready\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        assert!(matches!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
            Err(HeadError::Syntax(_))
        ));
    }
}
