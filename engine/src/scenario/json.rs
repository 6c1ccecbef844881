//! Finding one value in a JSON response without building a tree: the scanner walks the bytes,
//! skipping what the selector does not need, and returns the matched value's byte range. Nothing is
//! allocated; a document is only as well-formed as the part that was read needs to be.
//!
//! Selectors are a JSON pointer (RFC 6901: `/items/0/id`, `""` for the whole document) or a small
//! JSONPath subset: `$`, `.name`, `['name']`, `[3]`, `[-1]`, `[*]`, `.*`, and `..name` (the first
//! `name` at any depth, in document order). A selector that matches several values yields the first.

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

const MAX_DEPTH: usize = 128;

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

    /// The first value the selector matches in `doc`: its kind and byte range.
    pub fn find(&self, doc: &[u8]) -> Result<Option<(Kind, usize, usize)>, JsonError> {
        self.find_nth(doc, 0)
    }

    /// The value after the first `n` that the selector matches, in document order.
    pub fn find_nth(
        &self,
        doc: &[u8],
        n: usize,
    ) -> Result<Option<(Kind, usize, usize)>, JsonError> {
        let mut s = Scanner {
            b: doc,
            depth: 0,
            passes: n,
        };
        let start = s.ws(0);
        let found = s.matches(start, &self.steps)?;
        Ok(found.map(|(a, b)| (kind_at(doc, a), a, b)))
    }

    /// How many values the selector matches in `doc`.
    pub fn count(&self, doc: &[u8]) -> Result<usize, JsonError> {
        let mut s = Scanner {
            b: doc,
            depth: 0,
            passes: usize::MAX,
        };
        let start = s.ws(0);
        s.matches(start, &self.steps)?;
        Ok(usize::MAX - s.passes)
    }
}

fn kind_at(doc: &[u8], at: usize) -> Kind {
    match doc.get(at) {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
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

/// What `Scanner::members` calls for each member: (scanner, raw key, value start).
type MemberFn<'f, 's, T> =
    dyn FnMut(&mut Scanner<'s>, &[u8], usize) -> Result<Option<T>, JsonError> + 'f;
/// What `Scanner::elements` calls for each element: (scanner, index, value start).
type ElementFn<'f, 's, T> =
    dyn FnMut(&mut Scanner<'s>, usize, usize) -> Result<Option<T>, JsonError> + 'f;

struct Scanner<'a> {
    b: &'a [u8],
    depth: usize,
    /// Matches still to pass over before one is returned.
    passes: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&self, mut i: usize) -> usize {
        while i < self.b.len() && matches!(self.b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    fn expect(&self, i: usize, c: u8) -> Result<usize, JsonError> {
        if self.b.get(i) == Some(&c) {
            Ok(i + 1)
        } else {
            Err(JsonError::Invalid)
        }
    }

    /// The end of the string starting at `i` (which is `"`), past the closing quote.
    fn string_end(&self, i: usize) -> Result<usize, JsonError> {
        let mut j = i + 1;
        while j < self.b.len() {
            match self.b[j] {
                b'"' => return Ok(j + 1),
                b'\\' => j += 2,
                c if c < 0x20 => return Err(JsonError::Invalid),
                _ => j += 1,
            }
        }
        Err(JsonError::Invalid)
    }

    /// The end of the value starting at `i`.
    fn skip(&mut self, i: usize) -> Result<usize, JsonError> {
        match self.b.get(i) {
            Some(b'"') => self.string_end(i),
            Some(b'{') => {
                self.enter()?;
                let mut j = self.ws(i + 1);
                if self.b.get(j) == Some(&b'}') {
                    self.depth -= 1;
                    return Ok(j + 1);
                }
                loop {
                    if self.b.get(j) != Some(&b'"') {
                        return Err(JsonError::Invalid);
                    }
                    j = self.ws(self.string_end(j)?);
                    j = self.ws(self.expect(j, b':')?);
                    j = self.skip(j)?;
                    j = self.ws(j);
                    match self.b.get(j) {
                        Some(b',') => j = self.ws(j + 1),
                        Some(b'}') => {
                            self.depth -= 1;
                            return Ok(j + 1);
                        }
                        _ => return Err(JsonError::Invalid),
                    }
                }
            }
            Some(b'[') => {
                self.enter()?;
                let mut j = self.ws(i + 1);
                if self.b.get(j) == Some(&b']') {
                    self.depth -= 1;
                    return Ok(j + 1);
                }
                loop {
                    j = self.skip(j)?;
                    j = self.ws(j);
                    match self.b.get(j) {
                        Some(b',') => j = self.ws(j + 1),
                        Some(b']') => {
                            self.depth -= 1;
                            return Ok(j + 1);
                        }
                        _ => return Err(JsonError::Invalid),
                    }
                }
            }
            Some(b't') => self.literal(i, b"true"),
            Some(b'f') => self.literal(i, b"false"),
            Some(b'n') => self.literal(i, b"null"),
            Some(b'-' | b'0'..=b'9') => {
                let mut j = i + 1;
                while j < self.b.len()
                    && matches!(self.b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    j += 1;
                }
                Ok(j)
            }
            _ => Err(JsonError::Invalid),
        }
    }

    fn literal(&self, i: usize, word: &[u8]) -> Result<usize, JsonError> {
        if self.b[i..].starts_with(word) {
            Ok(i + word.len())
        } else {
            Err(JsonError::Invalid)
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(JsonError::TooDeep)
        } else {
            Ok(())
        }
    }

    /// Calls `f(key range (quotes excluded), value start)` for each member of the object at `i`
    /// until it returns `Some`; returns that, or `None`.
    fn members<T>(
        &mut self,
        i: usize,
        f: &mut MemberFn<'_, 'a, T>,
    ) -> Result<Option<T>, JsonError> {
        self.enter()?;
        let mut j = self.ws(i + 1);
        if self.b.get(j) == Some(&b'}') {
            self.depth -= 1;
            return Ok(None);
        }
        loop {
            if self.b.get(j) != Some(&b'"') {
                return Err(JsonError::Invalid);
            }
            let key_end = self.string_end(j)?;
            let b = self.b;
            let key = &b[j + 1..key_end - 1];
            j = self.ws(self.expect(self.ws(key_end), b':')?);
            if let Some(found) = f(self, key, j)? {
                self.depth -= 1;
                return Ok(Some(found));
            }
            j = self.skip(j)?;
            j = self.ws(j);
            match self.b.get(j) {
                Some(b',') => j = self.ws(j + 1),
                Some(b'}') => {
                    self.depth -= 1;
                    return Ok(None);
                }
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    /// Like `members`, for the elements of the array at `i` (with their index).
    fn elements<T>(
        &mut self,
        i: usize,
        f: &mut ElementFn<'_, 'a, T>,
    ) -> Result<Option<T>, JsonError> {
        self.enter()?;
        let mut j = self.ws(i + 1);
        if self.b.get(j) == Some(&b']') {
            self.depth -= 1;
            return Ok(None);
        }
        let mut n = 0;
        loop {
            if let Some(found) = f(self, n, j)? {
                self.depth -= 1;
                return Ok(Some(found));
            }
            n += 1;
            j = self.skip(j)?;
            j = self.ws(j);
            match self.b.get(j) {
                Some(b',') => j = self.ws(j + 1),
                Some(b']') => {
                    self.depth -= 1;
                    return Ok(None);
                }
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    /// The first match of `steps` applied to the value at `i`: its byte range.
    fn matches(&mut self, i: usize, steps: &[Step]) -> Result<Option<(usize, usize)>, JsonError> {
        let Some((step, rest)) = steps.split_first() else {
            let end = self.skip(i)?;
            if self.passes > 0 {
                self.passes -= 1;
                return Ok(None);
            }
            return Ok(Some((i, end)));
        };
        match (step, self.b.get(i)) {
            (Step::Token(k) | Step::Key(k), Some(b'{')) => self.members(i, &mut |s, key, v| {
                if key_eq(key, k) {
                    s.matches(v, rest)
                } else {
                    Ok(None)
                }
            }),
            (Step::Token(t), Some(b'[')) => {
                let Some(want) = std::str::from_utf8(t)
                    .ok()
                    .filter(|t| t == &"0" || !t.starts_with('0'))
                    .and_then(|t| t.parse::<usize>().ok())
                else {
                    return Ok(None);
                };
                self.nth(i, want, rest)
            }
            (Step::Index(n), Some(b'[')) => {
                let want = if *n >= 0 {
                    *n as usize
                } else {
                    let len = self.len(i)?;
                    match len.checked_sub(n.unsigned_abs() as usize) {
                        Some(w) => w,
                        None => return Ok(None),
                    }
                };
                self.nth(i, want, rest)
            }
            (Step::Wildcard, Some(b'{')) => self.members(i, &mut |s, _, v| s.matches(v, rest)),
            (Step::Wildcard, Some(b'[')) => self.elements(i, &mut |s, _, v| s.matches(v, rest)),
            (Step::Descend(k), Some(b'{')) => self.members(i, &mut |s, key, v| {
                if key_eq(key, k)
                    && let Some(found) = s.matches(v, rest)?
                {
                    return Ok(Some(found));
                }
                s.matches(v, steps)
            }),
            (Step::Descend(_), Some(b'[')) => self.elements(i, &mut |s, _, v| s.matches(v, steps)),
            // Any other value, or a step that does not apply to it: no match here. The value is still
            // read, so that a document that is not JSON at all is an error rather than "not found".
            _ => {
                self.skip(i)?;
                Ok(None)
            }
        }
    }

    fn nth(
        &mut self,
        i: usize,
        want: usize,
        rest: &[Step],
    ) -> Result<Option<(usize, usize)>, JsonError> {
        let mut inner = Ok(None);
        let hit = self.elements(i, &mut |s, n, v| {
            if n == want {
                inner = s.matches(v, rest);
                Ok(Some(()))
            } else {
                Ok(None)
            }
        })?;
        if hit.is_some() { inner } else { Ok(None) }
    }

    fn len(&mut self, i: usize) -> Result<usize, JsonError> {
        let mut count = 0;
        self.elements::<()>(i, &mut |_, _, _| {
            count += 1;
            Ok(None)
        })?;
        Ok(count)
    }
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

impl Expected {
    /// Whether the value found equals this one (numbers compare by value: `1.0` equals `1`).
    pub fn matches(&self, doc: &[u8], kind: Kind, start: usize, end: usize) -> bool {
        let text = &doc[start..end];
        match (self, kind) {
            (Expected::Number(want), Kind::Number) => std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|v| v == *want),
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

    const DOC: &str = r#" {"id": 7, "name": "caf\u00e9 \"x\"", "a/b": 1, "m~n": 2, "":3,
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
    fn counting_and_the_nth_match_follow_document_order() {
        let doc = br#"{"a": [{"id": 1}, {"x": 0}, {"id": 2, "sub": {"id": 3}}], "id": 4}"#;
        let cases: &[(&str, usize, &[&str])] = &[
            ("$.a[*].id", 2, &["1", "2"]),
            ("$..id", 4, &["1", "2", "3", "4"]),
            ("/a/0/id", 1, &["1"]),
            ("$.a[-1].sub.id", 1, &["3"]),
            ("$.nope[*]", 0, &[]),
            ("", 1, &[]),
        ];
        for (sel, n, values) in cases {
            let s = Selector::parse(sel).unwrap();
            assert_eq!(s.count(doc), Ok(*n), "{sel}");
            for (i, want) in values.iter().enumerate() {
                let (kind, a, b) = s.find_nth(doc, i).unwrap().unwrap();
                let mut out = Vec::new();
                value_text(doc, kind, a, b, &mut out);
                assert_eq!(out, want.as_bytes(), "{sel} #{i}");
            }
            assert_eq!(s.find_nth(doc, *n), Ok(None), "{sel}: past the last");
        }
        assert_eq!(
            Selector::parse("$.a[*]").unwrap().count(b"{\"a\": [1, }"),
            Err(JsonError::Invalid)
        );
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

    #[test]
    fn broken_documents_are_errors_not_panics() {
        let sel = Selector::parse("$..zzz").unwrap();
        for doc in [
            "",
            "{",
            "[",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1,",
            "[1,",
            "\"abc",
            "{\"a\" 1}",
            "tru",
            "{\"a\":[1,2}",
            "nul",
            "{]",
            "\u{1}",
        ] {
            assert!(sel.find(doc.as_bytes()).is_err(), "{doc:?}");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(sel.find(deep.as_bytes()), Err(JsonError::TooDeep));
        // Found before the damage: the rest is not read.
        let early = Selector::parse("/a").unwrap();
        assert!(early.find(b"{\"a\": 1, \"b\": ]").unwrap().is_some());
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

    /// Mangled documents are errors or answers, never panics or endless loops.
    #[test]
    fn mangled_documents_never_panic() {
        let doc = DOC.as_bytes();
        let selectors: Vec<Selector> = ["/items/1/id", "$..code", "$.items[-1].id", "$.*", "/name"]
            .iter()
            .map(|s| Selector::parse(s).unwrap())
            .collect();
        for i in 0..doc.len() {
            for b in [b'"', b'{', b'}', b'[', b']', b',', b':', b'\\', b'x', b'1'] {
                let mut m = doc.to_vec();
                m[i] = b;
                for s in &selectors {
                    for part in [&m[..], &m[..i]] {
                        if let Ok(Some((k, a, b))) = s.find(part) {
                            value_text(part, k, a, b, &mut Vec::new());
                        }
                    }
                }
            }
        }
    }

    /// Agrees with serde_json's pointer on generated documents.
    #[test]
    fn agrees_with_serde_json() {
        use crate::rng::Rng;
        fn generate(rng: &mut Rng, depth: u32) -> serde_json::Value {
            use serde_json::Value as V;
            match rng.below(if depth > 3 { 4 } else { 6 }) {
                0 => V::from(rng.below(100)),
                1 => V::from(format!("s{}\"\\\n", rng.below(5))),
                2 => V::Bool(rng.below(2) == 1),
                3 => V::Null,
                4 => V::Array(
                    (0..rng.below(4))
                        .map(|_| generate(rng, depth + 1))
                        .collect(),
                ),
                _ => V::Object(
                    (0..rng.below(4))
                        .map(|_| (format!("k{}", rng.below(4)), generate(rng, depth + 1)))
                        .collect(),
                ),
            }
        }
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            let v = generate(&mut rng, 0);
            let text = serde_json::to_string_pretty(&v).unwrap();
            let mut pointer = String::new();
            for _ in 0..rng.below(4) {
                pointer.push_str(&format!(
                    "/{}",
                    ["k0", "k1", "k2", "0", "1"][rng.below(5) as usize]
                ));
            }
            let want = v.pointer(&pointer).map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => serde_json::to_string(other).unwrap(),
            });
            let got = Selector::parse(&pointer)
                .unwrap()
                .find(text.as_bytes())
                .unwrap()
                .map(|(k, a, b)| {
                    let mut out = Vec::new();
                    value_text(text.as_bytes(), k, a, b, &mut out);
                    String::from_utf8(out).unwrap()
                });
            match (&want, &got) {
                // Objects and arrays come back as written (pretty), not re-serialised.
                (Some(w), Some(g)) if w.starts_with(['{', '[']) => {
                    let a: serde_json::Value = serde_json::from_str(w).unwrap();
                    let b: serde_json::Value = serde_json::from_str(g).unwrap();
                    assert_eq!(a, b, "{pointer} in {text}");
                }
                _ => assert_eq!(want, got, "{pointer} in {text}"),
            }
        }
    }
}
