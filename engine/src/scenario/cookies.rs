//! A user's cookie jar: what the target's Set-Cookie headers said, sent back in a Cookie header on
//! later requests whose path matches (RFC 6265 §5.1.4), as a browser or Locust's HttpSession does.
//!
//! The jar serves one target, so cookie domains are not compared, and `Secure` is not enforced (the
//! engine speaks plain HTTP to test environments). A cookie is removed by `Max-Age=0` (or negative) or
//! an `Expires` date in a past year; other expiry times are not tracked, since a test's users live
//! minutes, not days. Updating a cookie reuses its buffers, so a jar in steady state does not allocate.

/// One cookie.
#[derive(Debug, Default)]
struct Cookie {
    name: Vec<u8>,
    value: Vec<u8>,
    path: Vec<u8>,
}

/// A user's cookies.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Whether the jar is empty.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Stores what one Set-Cookie header says, for a response to a request for `request_path`.
    pub fn store(&mut self, set_cookie: &[u8], request_path: &[u8], this_year: u32) {
        let mut parts = set_cookie.split(|&b| b == b';');
        let Some(pair) = parts.next() else { return };
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return;
        };
        let name = pair[..eq].trim_ascii();
        let value = pair[eq + 1..].trim_ascii();
        if name.is_empty() {
            return;
        }
        let mut path: Option<&[u8]> = None;
        let mut delete = false;
        for attr in parts {
            let attr = attr.trim_ascii();
            let (key, val) = match attr.iter().position(|&b| b == b'=') {
                Some(i) => (attr[..i].trim_ascii(), attr[i + 1..].trim_ascii()),
                None => (attr, &b""[..]),
            };
            if key.eq_ignore_ascii_case(b"path") && val.starts_with(b"/") {
                path = Some(val);
            } else if key.eq_ignore_ascii_case(b"max-age") {
                delete |= val.starts_with(b"-") || val.iter().all(|&b| b == b'0');
            } else if key.eq_ignore_ascii_case(b"expires") {
                delete |= year_of(val).is_some_and(|y| y < this_year);
            }
        }
        let path = path.unwrap_or_else(|| default_path(request_path));
        let existing = self
            .cookies
            .iter()
            .position(|c| c.name == name && c.path == path);
        match (existing, delete) {
            (Some(i), true) => {
                self.cookies.swap_remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let c = &mut self.cookies[i];
                c.value.clear();
                c.value.extend_from_slice(value);
            }
            (None, false) => self.cookies.push(Cookie {
                name: name.to_vec(),
                value: value.to_vec(),
                path: path.to_vec(),
            }),
        }
    }

    /// Appends `Cookie: a=1; b=2\r\n` with the cookies for `request_path` (its query ignored);
    /// nothing when none match. Longer paths come first, as RFC 6265 asks.
    pub fn write_header(&self, request_path: &[u8], out: &mut Vec<u8>) {
        let path = request_path
            .split(|&b| b == b'?' || b == b'#')
            .next()
            .unwrap_or(b"/");
        let mut first = true;
        // Few cookies per user: ordering by repeated scans is cheaper than sorting a copy.
        let mut longest = usize::MAX;
        loop {
            let next_len = self
                .cookies
                .iter()
                .filter(|c| c.path.len() < longest && path_matches(&c.path, path))
                .map(|c| c.path.len())
                .max();
            let Some(len) = next_len else { break };
            for c in self
                .cookies
                .iter()
                .filter(|c| c.path.len() == len && path_matches(&c.path, path))
            {
                out.extend_from_slice(if first { b"Cookie: " } else { b"; " });
                first = false;
                out.extend_from_slice(&c.name);
                out.push(b'=');
                out.extend_from_slice(&c.value);
            }
            longest = len;
        }
        if !first {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// RFC 6265 §5.1.4 path matching.
fn path_matches(cookie_path: &[u8], request_path: &[u8]) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with(b"/") || request_path.get(cookie_path.len()) == Some(&b'/')))
}

/// RFC 6265 §5.1.4 default-path: the request path up to its last `/`.
fn default_path(request_path: &[u8]) -> &[u8] {
    let path = request_path
        .split(|&b| b == b'?' || b == b'#')
        .next()
        .unwrap_or(b"/");
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &path[..i],
    }
}

/// The four-digit year in an HTTP date such as `Thu, 01 Jan 1970 00:00:00 GMT`.
fn year_of(date: &[u8]) -> Option<u32> {
    date.split(|b| !b.is_ascii_digit())
        .find(|w| w.len() == 4)
        .and_then(|w| std::str::from_utf8(w).ok()?.parse().ok())
}

/// The current UTC year, for expiry checks.
pub(crate) fn current_year(unix_secs: u64) -> u32 {
    // 365.2425 days a year is exact enough to tell years apart away from New Year's Eve.
    1970 + (unix_secs as f64 / (365.2425 * 86_400.0)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(jar: &CookieJar, path: &str) -> String {
        let mut out = Vec::new();
        jar.write_header(path.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn set_cookie_then_cookie() {
        let mut jar = CookieJar::default();
        assert_eq!(header(&jar, "/"), "");
        jar.store(b"sid=abc; Path=/; HttpOnly", b"/login", 2026);
        jar.store(b"pref=dark", b"/account/settings?x=1", 2026);
        jar.store(b"cart=1; Path=/shop", b"/", 2026);
        assert_eq!(header(&jar, "/"), "Cookie: sid=abc\r\n");
        // Default path is the request's directory; longer paths first.
        assert_eq!(header(&jar, "/account/x"), "Cookie: pref=dark; sid=abc\r\n");
        assert_eq!(header(&jar, "/shop?q=1"), "Cookie: cart=1; sid=abc\r\n");
        assert_eq!(header(&jar, "/shopping"), "Cookie: sid=abc\r\n");
        // Replacing keeps one cookie; deleting removes it.
        jar.store(b"sid=def; Path=/", b"/", 2026);
        assert_eq!(header(&jar, "/"), "Cookie: sid=def\r\n");
        jar.store(b"sid=; Path=/; Max-Age=0", b"/", 2026);
        assert_eq!(header(&jar, "/"), "");
        jar.store(
            b"cart=; Path=/shop; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            b"/",
            2026,
        );
        assert_eq!(header(&jar, "/shop"), "");
        jar.store(b"garbage", b"/", 2026);
        jar.store(b"=nameless", b"/", 2026);
        assert_eq!(header(&jar, "/"), "");
    }

    #[test]
    fn years() {
        assert_eq!(current_year(1_795_638_540), 2026);
        assert_eq!(current_year(0), 1970);
        assert_eq!(year_of(b"Wed, 21 Oct 2015 07:28:00 GMT"), Some(2015));
    }
}
