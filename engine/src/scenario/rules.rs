//! Extraction (response → user variable) and checks (response → pass or fail), compiled at load time.
//!
//! Each rule carries the failure message that names it, written once from the rule as the profile
//! wrote it (so `${secret}` stays unexpanded); cores intern the messages when they start, and a
//! failing request only copies an id. A failed check also says what it saw ([`Check::describe_got`]:
//! `expected status 201, got 409`), written into a buffer the user reuses, only when it fails.

use std::cell::RefCell;

use regex::bytes::{CaptureLocations, Regex};

use super::json::{
    BodyJson, Expected, JsonError, Pick, Selector, SelectorSet, number, string_equals, value_text,
};
use super::response::Response;
use super::template::{Env, Template};
use crate::http::Keep;
use crate::rng::Rng;

/// A value taken from the response into a user variable.
#[derive(Debug, Clone)]
pub(crate) struct Extraction {
    /// The user variable slot.
    pub var: u16,
    pub source: Source,
    /// A missing value leaves the variable as it was instead of failing the request.
    pub optional: bool,
    /// Messages for "not found" and "the response is not JSON".
    pub messages: [String; 2],
}

/// Where an extracted value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A selector, answered from the request's one walk over the body.
    Json(Pick),
    /// One of the selector's matches, drawn at random.
    JsonRandom(Selector),
    /// The regex and its slot in the core's capture-location table.
    Regex(Regex, u16),
    Header(Box<[u8]>),
    Cookie(Box<[u8]>),
    Status,
}

/// Why an extraction found nothing; indexes [`Extraction::messages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    NotFound = 0,
    NotJson = 1,
}

impl Extraction {
    /// The rule as written (`extract token = Json("/token")`), for traces.
    pub fn label(&self) -> &str {
        self.messages[0]
            .rsplit_once(": ")
            .map_or(self.messages[0].as_str(), |(rule, _)| rule)
    }

    /// What of the response this rule reads.
    pub fn keep(&self) -> Keep {
        match self.source {
            Source::Json(_) | Source::JsonRandom(_) | Source::Regex(..) => Keep {
                body: true,
                ..Keep::default()
            },
            Source::Header(_) | Source::Cookie(_) => Keep {
                head: true,
                ..Keep::default()
            },
            Source::Status => Keep::default(),
        }
    }

    /// Sets the variable from `resp`, reusing its buffer (`rng` draws for `Random`; `json` answers
    /// the request's selectors over `resp`'s body). Inlined into the request path, whose only other
    /// caller is a trace's (callgrind: out of line, the path cost about 2 % more instructions).
    #[inline(always)]
    pub fn apply(
        &self,
        resp: &Response<'_>,
        vars: &mut [Vec<u8>],
        locs: &[RefCell<CaptureLocations>],
        rng: &mut Rng,
        json: &mut BodyJson<'_>,
    ) -> Result<(), Missing> {
        let Some(var) = vars.get_mut(usize::from(self.var)) else {
            return Err(Missing::NotFound);
        };
        match &self.source {
            Source::Json(pick) => match json.find(pick) {
                Ok(Some((kind, a, b))) => {
                    var.clear();
                    value_text(resp.body, kind, a, b, var);
                }
                Ok(None) => return Err(Missing::NotFound),
                Err(JsonError::Invalid | JsonError::TooDeep) => return Err(Missing::NotJson),
            },
            Source::JsonRandom(sel) => {
                let n = sel.count(resp.body).map_err(|_| Missing::NotJson)?;
                if n == 0 {
                    return Err(Missing::NotFound);
                }
                let pick = rng.below(u32::try_from(n).unwrap_or(u32::MAX)) as usize;
                match sel.find_nth(resp.body, pick) {
                    Ok(Some((kind, a, b))) => {
                        var.clear();
                        value_text(resp.body, kind, a, b, var);
                    }
                    Ok(None) => return Err(Missing::NotFound),
                    Err(_) => return Err(Missing::NotJson),
                }
            }
            Source::Regex(re, slot) => {
                let Some(cell) = locs.get(usize::from(*slot)) else {
                    return Err(Missing::NotFound);
                };
                let mut locs = cell.borrow_mut();
                re.captures_read(&mut locs, resp.body)
                    .ok_or(Missing::NotFound)?;
                let group = if locs.len() > 1 { 1 } else { 0 };
                let (a, b) = locs.get(group).ok_or(Missing::NotFound)?;
                var.clear();
                var.extend_from_slice(&resp.body[a..b]);
            }
            Source::Header(name) => {
                let v = resp.header(name).ok_or(Missing::NotFound)?;
                var.clear();
                var.extend_from_slice(v);
            }
            Source::Cookie(name) => {
                let v = resp.set_cookie(name).ok_or(Missing::NotFound)?;
                var.clear();
                var.extend_from_slice(v);
            }
            Source::Status => {
                use std::io::Write as _;
                var.clear();
                let _ = write!(var, "{}", resp.status);
            }
        }
        Ok(())
    }
}

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

/// What a trace (`engine try`) shows of a response's rules, filled only when a trace asks: each
/// extraction with the value it set, each check with its outcome and what it saw.
#[derive(Debug, Default)]
pub(crate) struct RuleTrace {
    pub lines: Vec<RuleLine>,
}

/// One rule's line in a [`RuleTrace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleLine {
    /// A check (else an extraction).
    pub check: bool,
    /// The rule as written.
    pub label: String,
    /// Whether it passed (an extraction: found its value); `None` when it did not run because an
    /// earlier rule ended the request.
    pub passed: Option<bool>,
    /// The value extracted, or what the check saw.
    pub detail: String,
}

/// How many characters of a value a failure message or a trace quotes.
pub(crate) const GOT_LIMIT: usize = 80;

impl Check {
    /// The rule as written (`Status([201])`), for traces.
    pub fn label(&self) -> &str {
        self.message
            .strip_prefix("check ")
            .and_then(|m| m.strip_suffix(" failed"))
            .unwrap_or(&self.message)
    }

    /// Appends what the response showed this check, in a few words: `expected status 201, got 409`,
    /// `got "x"`, `no such header`, `took 12.3ms`. Quoted values are cut at [`GOT_LIMIT`]
    /// characters; the values of headers and JSON fields whose names look secret are not shown.
    /// Called only when a check failed (or a trace asks), so it may format freely.
    pub fn describe_got(&self, resp: &Response<'_>, latency_us: u64, out: &mut String) {
        use std::fmt::Write as _;
        let secret = super::vars::looks_secret(self.label());
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
                    let hidden =
                        secret || super::vars::looks_secret(&String::from_utf8_lossy(name));
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

/// Appends `bytes` as a quoted, escaped string of at most [`GOT_LIMIT`] characters (`"…"` marks a
/// cut), or `***` when `hidden`.
pub(crate) fn quote(bytes: &[u8], hidden: bool, out: &mut String) {
    if hidden {
        out.push_str(crate::plan::REDACTED);
        return;
    }
    out.push('"');
    // Enough bytes for GOT_LIMIT characters of any width: a large body is not converted whole.
    let cut = &bytes[..bytes.len().min(GOT_LIMIT * 4 + 4)];
    let text = String::from_utf8_lossy(cut);
    for (i, ch) in text.chars().enumerate() {
        if i == GOT_LIMIT {
            out.push('…');
            break;
        }
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
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

/// Gathers the JSON selectors of a request's extractions and checks into the set its responses are
/// walked for, giving each rule its slot (`Random(Json(...))` draws count every match, and is
/// looked up on its own).
pub(crate) fn share_selectors(extract: &mut [Extraction], checks: &mut [Check]) -> SelectorSet {
    let mut set = SelectorSet::default();
    for e in extract {
        if let Source::Json(pick) = &mut e.source {
            set.add(pick);
        }
    }
    for c in checks {
        if let CheckKind::JsonEquals(pick, _) | CheckKind::JsonExists(pick) = &mut c.kind {
            set.add(pick);
        }
    }
    set
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
    use super::*;
    use crate::http::KeptResponse;
    use crate::scenario::template::tests::render_with;

    fn json(p: &str) -> Pick {
        Selector::parse(p).unwrap().into()
    }

    fn response<'a>(
        status: u16,
        head: &'a [u8],
        body: &'a [u8],
        s: &'a mut Vec<u8>,
    ) -> Response<'a> {
        Response::new(
            status,
            Some(KeptResponse {
                head,
                body,
                chunked: false,
                set_cookie: true,
            }),
            s,
        )
    }

    /// Applies `e` as a run does, its selector answered by its request's one walk, and checks that
    /// the rule looked up on its own gives the same.
    fn apply(
        e: &Extraction,
        r: &Response<'_>,
        vars: &mut [Vec<u8>],
        locs: &[RefCell<CaptureLocations>],
        rng: &mut Rng,
    ) -> Result<(), Missing> {
        let mut alone = vars.to_vec();
        let mut shared = e.clone();
        let set = share_selectors(std::slice::from_mut(&mut shared), &mut []);
        let hits = RefCell::new(Vec::new());
        let got = shared.apply(r, vars, locs, rng, &mut BodyJson::new(&set, r.body, &hits));
        if !matches!(e.source, Source::JsonRandom(_)) {
            let empty = SelectorSet::default();
            let by_itself = e.apply(
                r,
                &mut alone,
                locs,
                rng,
                &mut BodyJson::new(&empty, r.body, &hits),
            );
            assert_eq!((got, &*vars), (by_itself, &alone[..]), "{:?}", e.source);
        }
        got
    }

    fn ex(source: Source, optional: bool) -> Extraction {
        Extraction {
            var: 0,
            source,
            optional,
            messages: ["not found".into(), "not json".into()],
        }
    }

    #[test]
    fn extraction_sources() {
        let head =
            b"HTTP/1.1 201 Created\r\nLocation: /items/9\r\nSet-Cookie: sid=s1; Path=/\r\n\r\n";
        let body = br#"{"token": "t\"1", "items": [{"id": 4}]}"#;
        let mut s = Vec::new();
        let r = response(201, head, body, &mut s);
        let locs = vec![RefCell::new(
            Regex::new(r#""id": (\d+)"#).unwrap().capture_locations(),
        )];
        let table: Vec<(Source, Result<&str, Missing>)> = vec![
            (Source::Json(json("/token")), Ok("t\"1")),
            (Source::Json(json("$.items[0].id")), Ok("4")),
            (Source::Json(json("$..id")), Ok("4")),
            (Source::Json(json("/nope")), Err(Missing::NotFound)),
            (
                Source::Regex(Regex::new(r#""id": (\d+)"#).unwrap(), 0),
                Ok("4"),
            ),
            (Source::Header((*b"location").into()), Ok("/items/9")),
            (Source::Header((*b"x-nope").into()), Err(Missing::NotFound)),
            (Source::Cookie((*b"sid").into()), Ok("s1")),
            (Source::Status, Ok("201")),
        ];
        for (source, want) in table {
            let mut vars = vec![b"old".to_vec()];
            let got = apply(
                &ex(source.clone(), false),
                &r,
                &mut vars,
                &locs,
                &mut Rng::new(1),
            );
            match want {
                Ok(v) => {
                    assert_eq!(got, Ok(()), "{source:?}");
                    assert_eq!(vars[0], v.as_bytes(), "{source:?}");
                }
                Err(m) => {
                    assert_eq!(got, Err(m), "{source:?}");
                    assert_eq!(vars[0], b"old", "a failed extraction leaves the variable");
                }
            }
        }
        let mut s = Vec::new();
        let html = response(200, head, b"<html>", &mut s);
        let mut vars = vec![Vec::new()];
        assert_eq!(
            apply(
                &ex(Source::Json(json("/token")), false),
                &html,
                &mut vars,
                &locs,
                &mut Rng::new(1)
            ),
            Err(Missing::NotJson)
        );
    }

    #[test]
    fn a_random_extraction_draws_every_match_and_only_matches() {
        let body = br#"{"results": [{"id": 11}, {"id": 22}, {"name": "no id"}, {"id": 33}]}"#;
        let mut s = Vec::new();
        let r = response(200, b"HTTP/1.1 200 OK\r\n\r\n", body, &mut s);
        let rule = ex(
            Source::JsonRandom(Selector::parse("$.results[*].id").unwrap()),
            false,
        );
        let mut rng = Rng::new(7);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..300 {
            let mut vars = vec![Vec::new()];
            assert_eq!(apply(&rule, &r, &mut vars, &[], &mut rng), Ok(()));
            *seen
                .entry(String::from_utf8(vars[0].clone()).unwrap())
                .or_insert(0) += 1;
        }
        assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), ["11", "22", "33"]);
        assert!(seen.values().all(|&n| n > 60), "roughly uniform: {seen:?}");
        let none = ex(
            Source::JsonRandom(Selector::parse("$.nope[*]").unwrap()),
            false,
        );
        let mut vars = vec![b"old".to_vec()];
        assert_eq!(
            apply(&none, &r, &mut vars, &[], &mut rng),
            Err(Missing::NotFound)
        );
        assert_eq!(vars[0], b"old");
    }

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
