//! HTTP/1.1 client pieces: requests rendered once to bytes, responses parsed incrementally, and the
//! keep-alive connection that moves them.

mod chunked;
mod conn;
mod response;

pub use chunked::{ChunkError, Chunked};
pub(crate) use conn::{Connection, Exchange, Failure, Limits, RequestRef};
pub use response::{BodyKind, Head, HeadError, parse_head};

use crate::plan::RequestTemplate;
use crate::profile::spec::Method;

/// Renders a request to the exact bytes sent on the wire. Done once per request template per core,
/// so the request path only copies bytes.
pub fn render(req: &RequestTemplate, host_header: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + req.path.len());
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host_header.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_type = false;
    let mut has_agent = false;
    for (k, v) in &req.headers {
        has_type |= k.eq_ignore_ascii_case("content-type");
        has_agent |= k.eq_ignore_ascii_case("user-agent");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_agent {
        out.extend_from_slice(
            concat!("User-Agent: stampede/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes(),
        );
    }
    match &req.body {
        Some((content_type, body)) => {
            if !has_type {
                out.extend_from_slice(b"Content-Type: ");
                out.extend_from_slice(content_type.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        }
        None if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) => {
            out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        }
        None => out.extend_from_slice(b"\r\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StatusSet;

    #[test]
    fn renders_a_post_with_json() {
        let req = RequestTemplate {
            name: "login".into(),
            method: Method::POST,
            path: "/login".into(),
            headers: vec![("X-A".into(), "1".into())],
            body: Some(("application/json".into(), b"{}".to_vec())),
            expect: StatusSet::Success,
        };
        let text = String::from_utf8(render(&req, "127.0.0.1:80")).unwrap();
        assert!(
            text.starts_with("POST /login HTTP/1.1\r\nHost: 127.0.0.1:80\r\nX-A: 1\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
            "{text}"
        );
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Request::new(&mut headers);
        assert!(parsed.parse(text.as_bytes()).unwrap().is_complete());
    }
}
