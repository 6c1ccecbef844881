//! Finding values in a JSON response without building a tree: the scanner walks the bytes,
//! skipping what the selectors do not need, and returns each matched value's byte range. Nothing is
//! allocated; a document is only as well-formed as the part that was read needs to be.
//!
//! Selectors are a JSON pointer (RFC 6901: `/items/0/id`, `""` for the whole document) or a small
//! JSONPath subset: `$`, `.name`, `['name']`, `[3]`, `[-1]`, `[*]`, `.*`, and `..name` (the first
//! `name` at any depth, in document order). A selector that matches several values yields the first.
//!
//! [`Selector::find`] (in `scan`) looks one selector up; a request's checks and extractions share
//! one walk over the response for all of their selectors ([`SelectorSet`], [`BodyJson`], in `set`),
//! which gives each the same answer.

mod scan;
mod set;

pub(crate) use set::{BodyJson, Found, Pick, SelectorSet};

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A JSON pointer token: an object key, or an array index when it is a number.
    Token(Box<[u8]>),
    /// An object key (JSONPath).
    Key(Box<[u8]>),
    /// An array index; negative counts from the end (JSONPath).
    Index(i64),
    /// Every child.
    Wildcard,
    /// `..name`: the key at any depth below.
    Descend(Box<[u8]>),
}

/// The kind of the value a selector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Bool,
    Null,
    Object,
    Array,
}

/// Why a response could not be searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON where the scanner had to read.
    Invalid,
    /// Nested deeper than the scanner follows.
    TooDeep,
}

impl Selector {
    /// Parses a JSON pointer (`/a/0`, `""`) or a JSONPath (`$.a[0]`).
    pub fn parse(text: &str) -> Result<Selector, String> {
        if text.is_empty() {
            return Ok(Selector { steps: Vec::new() });
        }
        if text.starts_with('/') {
            return parse_pointer(text);
        }
        if text.starts_with('$') {
            return parse_path(text);
        }
        Err(format!(
            "{text:?} is neither a JSON pointer (starts with `/`, e.g. \"/items/0/id\") nor a JSONPath (starts with `$`, e.g. \"$.items[0].id\")"
        ))
    }
}

fn parse_pointer(text: &str) -> Result<Selector, String> {
    let mut steps = Vec::new();
    for token in text[1..].split('/') {
        let mut out = Vec::with_capacity(token.len());
        let mut chars = token.bytes();
        while let Some(c) = chars.next() {
            if c == b'~' {
                match chars.next() {
                    Some(b'0') => out.push(b'~'),
                    Some(b'1') => out.push(b'/'),
                    _ => {
                        return Err(format!(
                            "{text:?} is not a valid JSON pointer: `~` must be followed by 0 (for `~`) or 1 (for `/`)"
                        ));
                    }
                }
            } else {
                out.push(c);
            }
        }
        steps.push(Step::Token(out.into()));
    }
    Ok(Selector { steps })
}

fn parse_path(text: &str) -> Result<Selector, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a supported JSONPath ({why}); supported: $, .name, ['name'], [0], [-1], [*], .*, ..name"
        )
    };
    let b = text.as_bytes();
    let mut i = 1;
    let mut steps = Vec::new();
    let name_end = |from: usize| {
        let mut j = from;
        while j < b.len() && !matches!(b[j], b'.' | b'[') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'.') => {
                let end = name_end(i + 2);
                let name = &text[i + 2..end];
                if name.is_empty() || name == "*" {
                    return Err(bad("`..` needs a key name after it"));
                }
                steps.push(Step::Descend(name.as_bytes().into()));
                i = end;
            }
            b'.' => {
                let end = name_end(i + 1);
                let name = &text[i + 1..end];
                match name {
                    "" => return Err(bad("a `.` with no name after it")),
                    "*" => steps.push(Step::Wildcard),
                    _ => steps.push(Step::Key(name.as_bytes().into())),
                }
                i = end;
            }
            b'[' => {
                let close = text[i..]
                    .find(']')
                    .map(|j| i + j)
                    .ok_or_else(|| bad("`[` is not closed"))?;
                let inner = text[i + 1..close].trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|r| r.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
                {
                    steps.push(Step::Key(q.as_bytes().into()));
                } else if let Ok(n) = inner.parse::<i64>() {
                    steps.push(Step::Index(n));
                } else if inner.starts_with('?') {
                    return Err(bad(
                        "filters are not supported; extract with a regex instead",
                    ));
                } else if inner.contains(':') {
                    return Err(bad("slices are not supported"));
                } else {
                    return Err(bad(&format!(
                        "`[{inner}]` is not an index, a quoted key or *"
                    )));
                }
                i = close + 1;
            }
            _ => return Err(bad("expected `.` or `[` after `$`")),
        }
    }
    Ok(Selector { steps })
}

/// The array index a JSON pointer token spells, if any (`0`, `12`; never a leading zero).
fn token_index(t: &[u8]) -> Option<usize> {
    std::str::from_utf8(t)
        .ok()
        .filter(|t| t == &"0" || !t.starts_with('0'))
        .and_then(|t| t.parse::<usize>().ok())
}

/// Whether a raw JSON key (escapes and all) equals `want`.
fn key_eq(raw: &[u8], want: &[u8]) -> bool {
    if !raw.contains(&b'\\') {
        return raw == want;
    }
    let mut pos = 0;
    let mut ok = true;
    for_each_unescaped(raw, &mut |chunk| {
        if ok && want.len() >= pos + chunk.len() && &want[pos..pos + chunk.len()] == chunk {
            pos += chunk.len();
        } else {
            ok = false;
        }
    });
    ok && pos == want.len()
}

/// Calls `f` with the unescaped pieces of a JSON string's contents (without its quotes).
fn for_each_unescaped(raw: &[u8], f: &mut dyn FnMut(&[u8])) {
    let mut i = 0;
    let mut start = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            i += 1;
            continue;
        }
        f(&raw[start..i]);
        let esc = raw.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        match esc {
            b'n' => f(b"\n"),
            b't' => f(b"\t"),
            b'r' => f(b"\r"),
            b'b' => f(b"\x08"),
            b'f' => f(b"\x0c"),
            b'u' => {
                let hex = |at: usize| {
                    raw.get(at..at + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let mut code = hex(i);
                i += 4;
                // A surrogate pair spells one character beyond the Basic Multilingual Plane.
                if let Some(hi @ 0xD800..=0xDBFF) = code
                    && raw.get(i..i + 2) == Some(b"\\u")
                    && let Some(lo @ 0xDC00..=0xDFFF) = hex(i + 2)
                {
                    code = Some(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                    i += 6;
                }
                let c = code.and_then(char::from_u32).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                f(c.encode_utf8(&mut buf).as_bytes());
            }
            other => f(&[other]),
        }
        start = i.min(raw.len());
    }
    f(&raw[start.min(raw.len())..]);
}

/// Appends the value in `doc[start..end]` as text: a string unescaped, anything else as written.
#[inline(always)]
pub(crate) fn value_text(doc: &[u8], kind: Kind, start: usize, end: usize, out: &mut Vec<u8>) {
    if kind == Kind::String && end >= start + 2 {
        for_each_unescaped(&doc[start + 1..end - 1], &mut |chunk| {
            out.extend_from_slice(chunk);
        });
    } else {
        out.extend_from_slice(&doc[start..end]);
    }
}

/// A value a check compares with (strings are compared with [`string_equals`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expected {
    Number(f64),
    Bool(bool),
    Null,
}

/// Whether the value found is the string `want` (compared unescaped, without allocating).
pub(crate) fn string_equals(doc: &[u8], kind: Kind, start: usize, end: usize, want: &[u8]) -> bool {
    kind == Kind::String && end >= start + 2 && key_eq(&doc[start + 1..end - 1], want)
}

/// The number `text` spells, as Rust reads an `f64` (`1e3`, `-0.5`, `inf`). Integers of up to 15
/// digits, by far the most common in responses, are read directly: exactly, as every such integer
/// is an `f64`.
#[inline]
pub(crate) fn number(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        // `n` is below 10^15 < 2^53: exact.
        let v = n as f64;
        return Some(if negative { -v } else { v });
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
}

impl Expected {
    /// Whether the value found equals this one (numbers compare by value: `1.0` equals `1`).
    pub fn matches(&self, doc: &[u8], kind: Kind, start: usize, end: usize) -> bool {
        let text = &doc[start..end];
        match (self, kind) {
            (Expected::Number(want), Kind::Number) => number(text).is_some_and(|v| v == *want),
            (Expected::Bool(want), Kind::Bool) => {
                text == if *want { &b"true"[..] } else { b"false" }
            }
            (Expected::Null, Kind::Null) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document the tables here and in `scan` read.
    pub(super) const DOC: &str = r#" {"id": 7, "name": "caf\u00e9 \"x\"", "a/b": 1, "m~n": 2, "":3,
        "items": [{"id": 10, "tags": ["x"]}, {"id": 11, "deep": {"code": "k"}}, {"id": 12}],
        "nested": {"deep": {"code": "j"}}, "ok": true, "none": null, "e\u0073c": "esc key"} "#;

    fn find(sel: &str) -> Option<String> {
        let s = Selector::parse(sel).unwrap();
        s.find(DOC.as_bytes()).unwrap().map(|(k, a, b)| {
            let mut out = Vec::new();
            value_text(DOC.as_bytes(), k, a, b, &mut out);
            String::from_utf8(out).unwrap()
        })
    }

    #[test]
    fn selectors_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("/id", Some("7")),
            ("/name", Some("café \"x\"")),
            ("/a~1b", Some("1")),
            ("/m~0n", Some("2")),
            ("/", Some("3")),
            ("/items/1/id", Some("11")),
            ("/items/3/id", None),
            // A pointer index never has a leading zero.
            ("/items/01/id", None),
            ("/items/0/tags/0", Some("x")),
            ("/ok", Some("true")),
            ("/none", Some("null")),
            ("/missing", None),
            ("/id/x", None),
            ("/esc", Some("esc key")),
            ("$.items[0].id", Some("10")),
            ("$['items'][-1].id", Some("12")),
            ("$.items[-4].id", None),
            ("$.items[*].id", Some("10")),
            ("$.items[*].deep.code", Some("k")),
            ("$..code", Some("k")),
            ("$.nested..code", Some("j")),
            ("$.*", Some("7")),
            ("$", None),
        ];
        for (sel, want) in table {
            if *sel == "$" {
                assert!(find(sel).unwrap().starts_with('{'));
                continue;
            }
            assert_eq!(find(sel).as_deref(), *want, "{sel}");
        }
        assert!(find("").unwrap().starts_with('{'));
    }

    #[test]
    fn bad_selectors_are_explained() {
        for (sel, fragment) in [
            ("id", "neither a JSON pointer"),
            ("/a~2", "`~` must be followed"),
            ("$.items[?(@.id==1)]", "filters are not supported"),
            ("$.items[0:2]", "slices"),
            ("$.items[", "not closed"),
            ("$x", "expected `.` or `[`"),
            ("$..", "needs a key name"),
        ] {
            let e = Selector::parse(sel).unwrap_err();
            assert!(e.contains(fragment), "{sel}: {e}");
        }
    }

    /// The integer shortcut reads what Rust's `f64` parser reads.
    #[test]
    fn numbers_read_as_rust_reads_them() {
        for text in [
            "0",
            "-0",
            "7",
            "-12",
            "007",
            "999999999999999",
            "-999999999999999",
            "1000000000000000",
            "12345678901234567890",
            "1.5",
            "1e3",
            "-2E-2",
            "",
            "-",
            "--1",
            "1-2",
            "+5",
            "inf",
            "NaN",
            "1_000",
            " 1",
            "١",
        ] {
            let want = text.parse::<f64>().ok();
            let got = number(text.as_bytes());
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "{text:?}: {got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn expected_values_compare_by_json_meaning() {
        let doc = br#"{"n": 1.0, "s": "a\u0062", "t": true, "z": null}"#;
        let at = |p: &str| Selector::parse(p).unwrap().find(doc).unwrap().unwrap();
        let check = |e: Expected, p: &str| {
            let (k, a, b) = at(p);
            e.matches(doc, k, a, b)
        };
        assert!(check(Expected::Number(1.0), "/n"));
        let (k, a, b) = at("/n");
        assert!(!string_equals(doc, k, a, b, b"1"));
        let (k, a, b) = at("/s");
        assert!(string_equals(doc, k, a, b, b"ab"));
        assert!(check(Expected::Bool(true), "/t"));
        assert!(!check(Expected::Bool(false), "/t"));
        assert!(check(Expected::Null, "/z"));
    }
}
