//! The scanner behind [`Selector::find`]: one selector, one walk over the bytes from the start. The
//! one walk for all of a request's selectors ([`super::set`]) reads with the same primitives.

use super::{JsonError, Kind, Selector, Step, key_eq, token_index};

/// How deeply nested a document the scanner follows.
const MAX_DEPTH: usize = 128;

impl Selector {
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

/// The kind of the value starting at `at`.
pub(super) fn kind_at(doc: &[u8], at: usize) -> Kind {
    match doc.get(at) {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

/// What `Scanner::members` calls for each member: (scanner, raw key, value start).
type MemberFn<'f, 's, T> =
    dyn FnMut(&mut Scanner<'s>, &[u8], usize) -> Result<Option<T>, JsonError> + 'f;
/// What `Scanner::elements` calls for each element: (scanner, index, value start).
type ElementFn<'f, 's, T> =
    dyn FnMut(&mut Scanner<'s>, usize, usize) -> Result<Option<T>, JsonError> + 'f;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The first position from `j` on of a byte that ends a string's plain run: `"`, `\`, a control
/// character, or the end of `b`. Eight bytes at a time: a byte of `w ^ c` is zero where `w` has
/// `c`, and `x - 0x01..` borrows into the high bit of each zero byte, so the lowest flagged byte is
/// the first match (higher ones may be false, and are not looked at).
#[inline(always)]
fn plain_run_end(b: &[u8], mut j: usize) -> usize {
    while let Some(chunk) = b.get(j..j + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flagged = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let flagged = flagged & HIGHS;
        if flagged != 0 {
            return j + (flagged.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < b.len() && !matches!(b[j], b'"' | b'\\' | 0..=0x1f) {
        j += 1;
    }
    j
}

/// A read position's context: the document, and how many containers are open around it.
pub(super) struct Scanner<'a> {
    pub(super) b: &'a [u8],
    pub(super) depth: usize,
    /// Matches still to pass over before one is returned.
    passes: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `b`, outside any container.
    pub(super) fn new(b: &'a [u8]) -> Scanner<'a> {
        Scanner {
            b,
            depth: 0,
            passes: 0,
        }
    }

    /// The first position from `i` on that is not whitespace.
    #[inline(always)]
    pub(super) fn ws(&self, mut i: usize) -> usize {
        while i < self.b.len() && matches!(self.b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// Past the byte `c` at `i`, or not JSON.
    pub(super) fn expect(&self, i: usize, c: u8) -> Result<usize, JsonError> {
        if self.b.get(i) == Some(&c) {
            Ok(i + 1)
        } else {
            Err(JsonError::Invalid)
        }
    }

    /// The end of the string starting at `i` (which is `"`), past the closing quote.
    #[inline(always)]
    pub(super) fn string_end(&self, i: usize) -> Result<usize, JsonError> {
        self.string_end_escaped(i).map(|(end, _)| end)
    }

    /// Like [`Scanner::string_end`], and whether the string holds an escape.
    #[inline(always)]
    pub(super) fn string_end_escaped(&self, i: usize) -> Result<(usize, bool), JsonError> {
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            j = plain_run_end(self.b, j);
            match self.b.get(j) {
                Some(b'"') => return Ok((j + 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    j += 2;
                }
                _ => return Err(JsonError::Invalid),
            }
        }
    }

    /// The end of the value starting at `i`. Inlined for scalars; containers are read out of line.
    #[inline]
    pub(super) fn skip(&mut self, i: usize) -> Result<usize, JsonError> {
        match self.b.get(i) {
            Some(b'{' | b'[') => self.skip_container(i),
            _ => self.scalar_end(i),
        }
    }

    /// The end of the string, number or literal starting at `i`.
    #[inline(always)]
    pub(super) fn scalar_end(&self, i: usize) -> Result<usize, JsonError> {
        match self.b.get(i) {
            Some(b'"') => self.string_end(i),
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

    /// The end of the object or array starting at `i`.
    fn skip_container(&mut self, i: usize) -> Result<usize, JsonError> {
        match self.b.get(i) {
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
            _ => self.scalar_end(i),
        }
    }

    fn literal(&self, i: usize, word: &[u8]) -> Result<usize, JsonError> {
        if self.b[i..].starts_with(word) {
            Ok(i + word.len())
        } else {
            Err(JsonError::Invalid)
        }
    }

    /// Opens a container, or fails when that is one too many.
    pub(super) fn enter(&mut self) -> Result<(), JsonError> {
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
                let Some(want) = token_index(t) else {
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

    /// How many elements the array at `i` has (reading all of it).
    pub(super) fn len(&mut self, i: usize) -> Result<usize, JsonError> {
        let mut count = 0;
        self.elements::<()>(i, &mut |_, _, _| {
            count += 1;
            Ok(None)
        })?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::DOC;
    use super::super::value_text;
    use super::*;

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

    /// The word-at-a-time search for a string's end agrees with a byte-at-a-time one, from every
    /// start, over every byte value near each word position.
    #[test]
    fn plain_runs_end_where_a_byte_loop_says() {
        let naive = |b: &[u8], mut j: usize| {
            while j < b.len() && !matches!(b[j], b'"' | b'\\' | 0..=0x1f) {
                j += 1;
            }
            j
        };
        let mut doc: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        doc.extend_from_slice("é€😀".as_bytes());
        for at in 0..doc.len() {
            for byte in 0..=255u8 {
                let mut b = doc.clone();
                b[at] = byte;
                for start in [0, 1, 7, 8, 9, at.saturating_sub(3), at, at + 1, b.len()] {
                    assert_eq!(
                        plain_run_end(&b, start),
                        naive(&b, start),
                        "{byte} at {at}, from {start}"
                    );
                }
            }
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
