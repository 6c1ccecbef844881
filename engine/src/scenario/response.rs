//! A kept response as extraction and checks see it: status, headers found by scanning the head, and
//! the body with any chunked coding removed (into a reused buffer).

use crate::http::KeptResponse;

/// A response to look into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Response<'a> {
    pub status: u16,
    /// Whether a Set-Cookie header is among the headers.
    pub sets_cookies: bool,
    /// Status line and headers.
    head: &'a [u8],
    /// The decoded body (empty when the body was not kept).
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    /// A view of `kept`, decoding a chunked body into `scratch`.
    #[inline]
    pub fn new(status: u16, kept: Option<KeptResponse<'a>>, scratch: &'a mut Vec<u8>) -> Self {
        let Some(k) = kept else {
            return Response {
                status,
                sets_cookies: false,
                head: &[],
                body: &[],
            };
        };
        let body = if k.chunked {
            scratch.clear();
            dechunk(k.body, scratch);
            &scratch[..]
        } else {
            k.body
        };
        Response {
            status,
            sets_cookies: k.set_cookie,
            head: k.head,
            body,
        }
    }

    /// Every header as (name, value), value trimmed, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let head = self.head;
        head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of cookie `name` as a Set-Cookie header of this response sets it.
    pub fn set_cookie(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"))
            .find_map(|(_, v)| {
                let pair = v.split(|&b| b == b';').next()?;
                let eq = pair.iter().position(|&b| b == b'=')?;
                (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
            })
    }
}

/// Appends the data of a chunked body (already validated by the connection's decoder) to `out`.
fn dechunk(mut raw: &[u8], out: &mut Vec<u8>) {
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return;
        };
        let size_text = raw[..line_end]
            .split(|&b| b == b';' || b == b' ' || b == b'\t')
            .next()
            .unwrap_or(b"");
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t, 16).ok())
            .unwrap_or(0);
        let data = line_end + 2;
        if size == 0 || data + size > raw.len() {
            return;
        }
        out.extend_from_slice(&raw[data..data + size]);
        raw = &raw[(data + size + 2).min(raw.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_cookies_and_chunked_bodies() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: a=1; Path=/\r\nset-cookie: sid = xyz ; HttpOnly\r\nX-Empty:\r\n\r\n";
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        let kept = KeptResponse {
            head,
            body,
            chunked: true,
            set_cookie: true,
        };
        let mut scratch = Vec::new();
        let r = Response::new(200, Some(kept), &mut scratch);
        assert_eq!(r.header(b"content-type"), Some(&b"application/json"[..]));
        assert_eq!(r.header(b"x-empty"), Some(&b""[..]));
        assert_eq!(r.header(b"x-missing"), None);
        assert_eq!(r.set_cookie(b"sid"), Some(&b"xyz"[..]));
        assert_eq!(r.set_cookie(b"a"), Some(&b"1"[..]));
        assert_eq!(r.set_cookie(b"b"), None);
        assert_eq!(r.body, b"hello world");
        let mut scratch = Vec::new();
        let none = Response::new(204, None, &mut scratch);
        assert_eq!(none.header(b"content-type"), None);
        assert!(none.body.is_empty());
    }
}
