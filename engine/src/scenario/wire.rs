//! Request bytes. A request's wire template is built once per core, when the target's Host header is
//! known; a request with nothing that changes per request (no templates, no dynamic auth, and a user
//! with no cookies for it) is sent from bytes rendered once, as before scenarios existed.

use super::RequestPlan;
use super::auth::AuthUse;
use super::cookies::CookieJar;
use super::template::{Env, Template};
use crate::profile::spec::Method;

/// A request ready to render.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    /// The whole request, when nothing in it is computed per request.
    fixed: Option<Vec<u8>>,
    method: &'static str,
    path: Template,
    /// From ` HTTP/1.1` to the last header line (each ending in CRLF), without the blank line.
    rest: Template,
    body: Option<Template>,
    /// POST, PUT and PATCH without a body still say `Content-Length: 0`.
    empty_length: bool,
    /// The `Authorization` line comes from per-user or per-core state.
    dynamic_auth: Option<usize>,
    cookies: bool,
}

impl Wire {
    /// Builds the template for `req` sent with `host_header`.
    pub fn build(req: &RequestPlan, host_header: &str) -> Wire {
        let mut rest = Template::literal(format!(" HTTP/1.1\r\nHost: {host_header}\r\n"));
        let mut has_type = false;
        let mut has_agent = false;
        for (k, v) in &req.headers {
            has_type |= k.eq_ignore_ascii_case("content-type");
            has_agent |= k.eq_ignore_ascii_case("user-agent");
            rest.push_lit(k.as_bytes());
            rest.push_lit(b": ");
            rest.append(v);
            rest.push_lit(b"\r\n");
        }
        let mut dynamic_auth = None;
        match &req.auth {
            AuthUse::None => {}
            AuthUse::Header(t) => {
                rest.push_lit(b"Authorization: ");
                rest.append(t);
                rest.push_lit(b"\r\n");
            }
            AuthUse::Dynamic(i) => dynamic_auth = Some(*i),
        }
        if !has_agent {
            rest.push_lit(
                concat!("User-Agent: stampede/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes(),
            );
        }
        let body = req.body.as_ref().map(|(content_type, body)| {
            if !has_type {
                rest.push_lit(format!("Content-Type: {content_type}\r\n").as_bytes());
            }
            body.clone()
        });
        let mut wire = Wire {
            fixed: None,
            method: req.method.as_str(),
            path: req.path.clone(),
            rest,
            body,
            empty_length: matches!(req.method, Method::POST | Method::PUT | Method::PATCH),
            dynamic_auth,
            cookies: req.cookies,
        };
        let fully_static = wire.path.static_bytes().is_some()
            && wire.rest.static_bytes().is_some()
            && wire
                .body
                .as_ref()
                .is_none_or(|b| b.static_bytes().is_some())
            && wire.dynamic_auth.is_none();
        if fully_static {
            let mut out = Vec::new();
            out.extend_from_slice(wire.method.as_bytes());
            out.push(b' ');
            out.extend_from_slice(wire.path.static_bytes().unwrap_or_default());
            out.extend_from_slice(wire.rest.static_bytes().unwrap_or_default());
            wire.end(
                &mut out,
                wire.body.as_ref().and_then(Template::static_bytes),
            );
            wire.fixed = Some(out);
        }
        wire
    }

    /// The request rendered once at build time, whatever the user's cookie jar holds.
    pub fn fixed_bytes(&self) -> Option<&[u8]> {
        self.fixed.as_deref()
    }

    /// The dynamic auth this request needs made before it is rendered.
    pub fn dynamic_auth(&self) -> Option<usize> {
        self.dynamic_auth
    }

    /// The pre-rendered request, if it can be used for a user with this jar.
    pub fn fixed(&self, jar: &CookieJar) -> Option<&[u8]> {
        if self.cookies && !jar.is_empty() {
            return None;
        }
        self.fixed.as_deref()
    }

    /// Renders the request into `out`. `body` and `cookie_line` are reused buffers; `auth` is the
    /// `Authorization` value when the request has dynamic auth.
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        body: &mut Vec<u8>,
        cookie_line: &mut Vec<u8>,
        jar: &CookieJar,
        auth: Option<&[u8]>,
        env: &mut Env<'_>,
    ) {
        out.clear();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        let path_start = out.len();
        self.path.render(out, env);
        cookie_line.clear();
        if self.cookies && !jar.is_empty() {
            jar.write_header(&out[path_start..], cookie_line);
        }
        self.rest.render(out, env);
        if let Some(value) = auth {
            out.extend_from_slice(b"Authorization: ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(cookie_line);
        let body = match &self.body {
            Some(t) => {
                body.clear();
                t.render(body, env);
                Some(&body[..])
            }
            None => None,
        };
        self.end(out, body);
    }

    /// Ends the head (whose header lines are in `out`) and appends the body.
    fn end(&self, out: &mut Vec<u8>, body: Option<&[u8]>) {
        use std::io::Write as _;
        match body {
            Some(b) => {
                let _ = write!(out, "Content-Length: {}\r\n\r\n", b.len());
                out.extend_from_slice(b);
            }
            None if self.empty_length => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
            None => out.extend_from_slice(b"\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StatusSet;

    fn plan(method: Method, path: Template, body: Option<(String, Template)>) -> RequestPlan {
        RequestPlan {
            name: "x".into(),
            method,
            path,
            headers: vec![("X-A".into(), Template::literal("1"))],
            body,
            expect: StatusSet::Success,
            extract: Vec::new(),
            checks: Vec::new(),
            json: Default::default(),
            auth: AuthUse::None,
            cookies: true,
        }
    }

    #[test]
    fn a_static_post_with_json_is_rendered_once() {
        let req = plan(
            Method::POST,
            Template::literal("/login"),
            Some(("application/json".into(), Template::literal("{}"))),
        );
        let wire = Wire::build(&req, "127.0.0.1:80");
        let jar = CookieJar::default();
        let text = String::from_utf8(wire.fixed(&jar).unwrap().to_vec()).unwrap();
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
        // Once the user has cookies, the request is rendered with them.
        let mut jar = CookieJar::default();
        jar.store(b"sid=1; Path=/", b"/", 2026);
        assert!(wire.fixed(&jar).is_none());
        let empty = plan(Method::PUT, Template::literal("/x"), None);
        let no_cookies = CookieJar::default();
        let text = String::from_utf8(
            Wire::build(&empty, "h")
                .fixed(&no_cookies)
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
    }
}
