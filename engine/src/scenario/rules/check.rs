//! Checks (response → pass or fail): what each kind tests, and what a failed one says it saw.

use regex::bytes::Regex;

use super::trace::quote;
use crate::http::Keep;
use crate::scenario::json::{BodyJson, Expected, Pick, number, string_equals, value_text};
use crate::scenario::response::Response;
use crate::scenario::template::{Env, Template};
use crate::scenario::vars;

/// A check on a response.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub kind: CheckKind,
    /// `Not(...)`: passes when the inner check fails.
    pub negate: bool,
    /// The failure message, naming the check.
    pub message: String,
}

/// What a check tests.
#[derive(Debug, Clone)]
pub(crate) enum CheckKind {
    Status(Vec<u16>),
    BodyContains(Template),
    BodyMatches(Regex),
    JsonEquals(Pick, Want),
    JsonExists(Pick),
    HeaderPresent(Box<[u8]>),
    HeaderEquals(Box<[u8]>, Template),
    HeaderContains(Box<[u8]>, Template),
    /// Microseconds.
    LatencyUnder(u64),
}

/// The value `JsonEquals` wants.
#[derive(Debug, Clone)]
pub(crate) enum Want {
    /// A string, possibly a template.
    String(Template),
    /// `{{raw(x)}}`: x's text read as a JSON value (a number, `true`, `false`, `null`), or as a
    /// string when it is none of those.
    Json(Template),
    /// A number, boolean or null.
    Other(Expected),
}

impl Check {
    /// The rule as written (`Status([201])`), for traces.
    pub fn label(&self) -> &str {
        self.message
            .strip_prefix("check ")
            .and_then(|m| m.strip_suffix(" failed"))
            .unwrap_or(&self.message)
    }

    /// Appends what the response showed this check, in a few words: `expected status 201, got 409`,
    /// `got "x"`, `no such header`, `took 12.3ms`. Quoted values are cut at
    /// [`GOT_LIMIT`](super::trace::GOT_LIMIT) characters; the values of headers and JSON fields
    /// whose names look secret are not shown. Called only when a check failed (or a trace asks), so
    /// it may format freely.
    pub fn describe_got(&self, resp: &Response<'_>, latency_us: u64, out: &mut String) {
        use std::fmt::Write as _;
        let secret = vars::looks_secret(self.label());
        match &self.kind {
            CheckKind::Status(codes) => {
                if !self.negate {
                    out.push_str("expected status ");
                    for (i, c) in codes.iter().enumerate() {
                        if i > 0 {
                            out.push_str(if i + 1 == codes.len() { " or " } else { ", " });
                        }
                        let _ = write!(out, "{c}");
                    }
                    out.push_str(", ");
                }
                let _ = write!(out, "got {}", resp.status);
            }
            CheckKind::BodyContains(_) | CheckKind::BodyMatches(_) => {
                let _ = write!(out, "got a body of {} bytes: ", resp.body.len());
                quote(resp.body, false, out);
            }
            CheckKind::JsonEquals(pick, _) | CheckKind::JsonExists(pick) => {
                match pick.selector.find(resp.body) {
                    Ok(Some((kind, a, b))) => {
                        out.push_str("got ");
                        let mut text = Vec::new();
                        value_text(resp.body, kind, a, b, &mut text);
                        quote(&text, secret, out);
                    }
                    Ok(None) => {
                        let _ = write!(out, "got nothing there (status {})", resp.status);
                    }
                    Err(_) => {
                        let _ = write!(
                            out,
                            "the body is not JSON (status {}, {} bytes): ",
                            resp.status,
                            resp.body.len()
                        );
                        quote(resp.body, false, out);
                    }
                }
            }
            CheckKind::HeaderPresent(name)
            | CheckKind::HeaderEquals(name, _)
            | CheckKind::HeaderContains(name, _) => match resp.header(name) {
                Some(v) => {
                    out.push_str("got ");
                    let hidden = secret || vars::looks_secret(&String::from_utf8_lossy(name));
                    quote(v, hidden, out);
                }
                None => out.push_str("no such header"),
            },
            CheckKind::LatencyUnder(_) => {
                let _ = write!(out, "took {:.1}ms", latency_us as f64 / 1e3);
            }
        }
    }
}

impl Check {
    /// What of the response this check reads.
    pub fn keep(&self) -> Keep {
        match self.kind {
            CheckKind::BodyContains(_)
            | CheckKind::BodyMatches(_)
            | CheckKind::JsonEquals(..)
            | CheckKind::JsonExists(_) => Keep {
                body: true,
                ..Keep::default()
            },
            CheckKind::HeaderPresent(_)
            | CheckKind::HeaderEquals(..)
            | CheckKind::HeaderContains(..) => Keep {
                head: true,
                ..Keep::default()
            },
            CheckKind::Status(_) | CheckKind::LatencyUnder(_) => Keep::default(),
        }
    }

    /// Whether the response passes. `want` is a reused buffer for rendered expectations; `json`
    /// answers the request's selectors. Inlined like [`Extraction::apply`].
    #[inline(always)]
    pub fn passes(
        &self,
        resp: &Response<'_>,
        latency_us: u64,
        env: &mut Env<'_>,
        want: &mut Vec<u8>,
        json: &mut BodyJson<'_>,
    ) -> bool {
        let mut render = |t: &Template, env: &mut Env<'_>| -> usize {
            want.clear();
            t.render(want, env);
            want.len()
        };
        let ok = match &self.kind {
            CheckKind::Status(codes) => codes.contains(&resp.status),
            CheckKind::BodyContains(t) => {
                render(t, env);
                contains(resp.body, want)
            }
            CheckKind::BodyMatches(re) => re.is_match(resp.body),
            CheckKind::JsonEquals(pick, expected) => match json.find(pick) {
                Ok(Some((kind, a, b))) => match expected {
                    Want::Other(e) => e.matches(resp.body, kind, a, b),
                    Want::String(t) => {
                        render(t, env);
                        string_equals(resp.body, kind, a, b, want)
                    }
                    Want::Json(t) => {
                        render(t, env);
                        let text = std::str::from_utf8(want).unwrap_or("").trim();
                        let expected = match text {
                            "true" => Some(Expected::Bool(true)),
                            "false" => Some(Expected::Bool(false)),
                            "null" => Some(Expected::Null),
                            _ => number(text.as_bytes()).map(Expected::Number),
                        };
                        match expected {
                            Some(e) => e.matches(resp.body, kind, a, b),
                            None => string_equals(resp.body, kind, a, b, want),
                        }
                    }
                },
                _ => false,
            },
            CheckKind::JsonExists(pick) => matches!(json.find(pick), Ok(Some(_))),
            CheckKind::HeaderPresent(name) => resp.header(name).is_some(),
            CheckKind::HeaderEquals(name, t) => {
                render(t, env);
                resp.header(name).is_some_and(|v| v == want.as_slice())
            }
            CheckKind::HeaderContains(name, t) => {
                render(t, env);
                resp.header(name).is_some_and(|v| contains(v, want))
            }
            CheckKind::LatencyUnder(limit) => latency_us < *limit,
        };
        ok != self.negate
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || memchr_find(hay, needle)
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return true;
                }
                i += 1;
            }
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::super::testing::*;
    use super::super::trace::GOT_LIMIT;
    use super::super::{Source, share_selectors};
    use super::*;
    use crate::rng::Rng;
    use crate::scenario::json::SelectorSet;
    use crate::scenario::template::tests::render_with;

    #[test]
    fn checks_pass_and_fail() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\r\n";
        let body = br#"{"user": "tok en", "n": 3, "ok": true}"#;
        let mut s = Vec::new();
        let r = response(200, head, body, &mut s);
        let t = |text: &str| {
            Template::compile(
                text,
                crate::scenario::template::Escape::None,
                &mut crate::scenario::template::tests::TestScope,
            )
            .unwrap()
        };
        let sel = json;
        let table: Vec<(CheckKind, bool)> = vec![
            (CheckKind::Status(vec![200, 201]), true),
            (CheckKind::Status(vec![404]), false),
            (CheckKind::BodyContains(t("\"n\": 3")), true),
            (CheckKind::BodyContains(t("{{token}}")), true),
            (CheckKind::BodyContains(t("absent")), false),
            (
                CheckKind::BodyMatches(Regex::new(r#""n": \d"#).unwrap()),
                true,
            ),
            (
                CheckKind::JsonEquals(sel("/user"), Want::String(t("{{token}}"))),
                true,
            ),
            (
                CheckKind::JsonEquals(sel("/n"), Want::Other(Expected::Number(3.0))),
                true,
            ),
            (
                CheckKind::JsonEquals(sel("/n"), Want::String(t("3"))),
                false,
            ),
            (
                CheckKind::JsonEquals(sel("/n"), Want::Json(t("{{id}}"))),
                true,
            ),
            (
                CheckKind::JsonEquals(sel("/ok"), Want::Json(t("true"))),
                true,
            ),
            (
                CheckKind::JsonEquals(sel("/user"), Want::Json(t("{{token}}"))),
                true,
            ),
            (
                CheckKind::JsonEquals(sel("/ok"), Want::Other(Expected::Bool(true))),
                true,
            ),
            (CheckKind::JsonExists(sel("/n")), true),
            (CheckKind::JsonExists(sel("/zz")), false),
            (CheckKind::HeaderPresent((*b"content-type").into()), true),
            (
                CheckKind::HeaderEquals((*b"Content-Type").into(), t("application/json")),
                false,
            ),
            (
                CheckKind::HeaderContains((*b"Content-Type").into(), t("json")),
                true,
            ),
            (CheckKind::LatencyUnder(1000), true),
            (CheckKind::LatencyUnder(10), false),
        ];
        let vars = vec![b"tok en".to_vec(), b"3".to_vec()];
        // The render helper builds an Env over these variables.
        assert_eq!(render_with(&t("{{token}}"), &vars, 1), "tok en");
        // Every check's selector in one set, as if they were one request's.
        let mut checks: Vec<Check> = table
            .iter()
            .map(|(kind, _)| Check {
                kind: kind.clone(),
                negate: false,
                message: String::new(),
            })
            .collect();
        let set = share_selectors(&mut [], &mut checks);
        assert_eq!(set.len(), 4, "/user, /n, /ok and /zz, each once");
        let empty = SelectorSet::default();
        let hits = RefCell::new(Vec::new());
        for (shared, (kind, want)) in checks.iter().zip(table) {
            for (negate, set) in [(false, &set), (true, &set), (false, &empty)] {
                let mut check = shared.clone();
                check.negate = negate;
                let mut rng = Rng::new(1);
                let seq = std::cell::Cell::new(0);
                let clock = crate::clock::Clock::start();
                let mut scratch = Vec::new();
                let mut env = Env {
                    vars: &vars,
                    feeders: &[],
                    rows: &[],
                    rng: &mut rng,
                    user: 0,
                    seat: crate::schedule::Seat::single(0, 1),
                    iteration: 0,
                    seq: &seq,
                    clock: &clock,
                    scratch: &mut scratch,
                };
                let mut buf = Vec::new();
                assert_eq!(
                    check.passes(
                        &r,
                        500,
                        &mut env,
                        &mut buf,
                        &mut BodyJson::new(set, r.body, &hits)
                    ),
                    want != negate,
                    "{kind:?} negate {negate}"
                );
            }
        }
        assert!(contains(b"abcabd", b"abd"));
        assert!(!contains(b"ab", b"abc"));
    }

    /// What a failed check says it saw: bounded, quoted, secrets hidden.
    #[test]
    fn checks_describe_what_they_got() {
        let head =
            b"HTTP/1.1 409 Conflict\r\nContent-Type: text/html\r\nX-Auth-Token: t0k3n\r\n\r\n";
        let long = format!(
            r#"{{"name": "x", "token": "abc", "n": 3, "text": "{}"}}"#,
            "é".repeat(100)
        );
        let mut s = Vec::new();
        let r = response(409, head, long.as_bytes(), &mut s);
        let t = |text: &str| {
            Template::compile(
                text,
                crate::scenario::template::Escape::None,
                &mut crate::scenario::template::tests::TestScope,
            )
            .unwrap()
        };
        let sel = json;
        let table: Vec<(CheckKind, &str, String)> = vec![
            (
                CheckKind::Status(vec![201]),
                "Status([201])",
                "expected status 201, got 409".into(),
            ),
            (
                CheckKind::Status(vec![200, 201, 204]),
                "Status([200,201,204])",
                "expected status 200, 201 or 204, got 409".into(),
            ),
            (
                CheckKind::JsonEquals(sel("/name"), Want::String(t("y"))),
                "JsonEquals(\"/name\",\"y\")",
                "got \"x\"".into(),
            ),
            (
                CheckKind::JsonEquals(sel("/token"), Want::String(t("y"))),
                "JsonEquals(\"/token\",\"y\")",
                "got ***".into(),
            ),
            (
                CheckKind::JsonExists(sel("/nope")),
                "JsonExists(\"/nope\")",
                "got nothing there (status 409)".into(),
            ),
            (
                CheckKind::JsonEquals(sel("/text"), Want::String(t("y"))),
                "JsonEquals(\"/text\",\"y\")",
                format!("got \"{}…\"", "é".repeat(GOT_LIMIT)),
            ),
            (
                CheckKind::HeaderEquals((*b"content-type").into(), t("application/json")),
                "HeaderEquals(\"Content-Type\",\"application/json\")",
                "got \"text/html\"".into(),
            ),
            (
                CheckKind::HeaderPresent((*b"x-auth-token").into()),
                "HeaderPresent(\"X-Auth-Token\")",
                "got ***".into(),
            ),
            (
                CheckKind::HeaderPresent((*b"etag").into()),
                "HeaderPresent(\"ETag\")",
                "no such header".into(),
            ),
            (
                CheckKind::LatencyUnder(1000),
                "LatencyUnder(\"1ms\")",
                "took 12.3ms".into(),
            ),
        ];
        for (kind, rule, want) in table {
            let check = Check {
                kind,
                negate: false,
                message: format!("check {rule} failed"),
            };
            assert_eq!(check.label(), rule);
            let mut got = String::new();
            check.describe_got(&r, 12_345, &mut got);
            assert_eq!(got, want, "{rule}");
        }
        let mut html = Vec::new();
        let r = response(200, head, b"<html>", &mut html);
        let check = Check {
            kind: CheckKind::JsonExists(json("/id")),
            negate: false,
            message: "check JsonExists(\"/id\") failed".into(),
        };
        let mut got = String::new();
        check.describe_got(&r, 1, &mut got);
        assert_eq!(
            got,
            "the body is not JSON (status 200, 6 bytes): \"<html>\""
        );
        let mut e = ex(Source::Status, false);
        e.messages[0] = "extract id = Json(\"/a: b\"): not found in the response".into();
        assert_eq!(e.label(), "extract id = Json(\"/a: b\")");
    }
}
