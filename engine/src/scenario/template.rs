//! `{{ ... }}` templates: parsed, name-resolved and checked once when the plan is resolved, then
//! rendered per request into a reused buffer with no parsing and no allocation.
//!
//! A template is a list of segments: literal bytes, and expressions with the escaping their place
//! needs (a path, a header value, a JSON string). Profile variables (`${name}` or `{{name}}` for a
//! variable that no request changes) are folded into literals at compile time, so a template without
//! run-time parts renders as one copy.
//!
//! Grammar of what goes between `{{` and `}}`:
//!
//! ```text
//! expr   := call | name | string | number
//! call   := ident "(" [ expr ("," expr)* ] ")"
//! name   := ident ("." ident)*         user variable, profile variable, row.column, feeder.column
//! string := '"' ... '"' | "'" ... "'"  with \" \' \\ escapes; `${...}` is substituted inside
//! ```

use std::cell::Cell;
use std::sync::Arc;

use base64::Engine as _;

use super::feeder::Feeder;
use crate::clock::Clock;
use crate::rng::Rng;

/// How an expression's output is made safe for where it lands. Literals are checked at load time
/// instead; only run-time values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Escape {
    /// As is (text bodies).
    #[default]
    None,
    /// A request path: spaces, control and non-ASCII bytes are percent-encoded so the request line
    /// stays valid.
    Path,
    /// A query or form value: everything but unreserved characters is percent-encoded.
    Component,
    /// A header value: line breaks and NUL become spaces, so a value cannot inject a header.
    Header,
    /// Inside a JSON string: quotes, backslashes and control characters are escaped.
    Json,
}

/// What an expression computes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A string or number literal.
    Text(Box<[u8]>),
    /// A user variable, by slot.
    Var(u16),
    /// A column of the current row of a feeder.
    Row { feeder: u16, column: u16 },
    /// `random_int(min, max)`, both inclusive.
    RandomInt { min: i64, max: i64 },
    /// `random_float(min, max[, decimals])`.
    RandomFloat { min: f64, max: f64, decimals: u8 },
    /// `random_string(len[, alphabet])`.
    RandomString { len: u16, alphabet: Box<[u8]> },
    /// `random_choice(a, b, ...)`.
    Choice(Box<[Box<[u8]>]>),
    /// `uuid()`: a random version-4 UUID.
    Uuid,
    /// `seq()`: a number unique across the run (over every shard), increasing on each core.
    Seq,
    /// `user_id()`: the user's index across the run (over every shard), from 0.
    UserId,
    /// `core_id()`: the engine thread's index within its engine, from 0.
    CoreId,
    /// `shard_id()`: the engine's shard index in a sharded test (`--shard`), else 0.
    ShardId,
    /// `iteration()`: the user's iteration count, from 0 (on_start sees 0).
    Iteration,
    /// `timestamp_ms()`: Unix time in milliseconds.
    TimestampMs,
    /// `timestamp_rfc3339()`: UTC, millisecond precision, e.g. `2026-11-25T20:29:00.123Z`.
    TimestampRfc3339,
    /// `base64(a, b, ...)` / `base64url(...)` of the concatenated arguments (url: no padding).
    Base64 { url: bool, args: Box<[Expr]> },
    /// `urlencode(a, b, ...)` of the concatenated arguments.
    UrlEncode(Box<[Expr]>),
    /// `raw(x)`: only as a whole JSON string value, which it replaces unquoted (numbers, booleans).
    Raw(Box<Expr>),
    /// `hmac_sha256(key, a, b, ...)`: HMAC-SHA256 of the concatenated arguments under `key`, in
    /// lowercase hex (`base64`: `hmac_sha256_base64`, standard Base64).
    Hmac {
        key: Box<Expr>,
        args: Box<[Expr]>,
        base64: bool,
    },
    /// `sha256(a, b, ...)`: SHA-256 of the concatenated arguments, lowercase hex.
    Sha256(Box<[Expr]>),
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    /// Bytes copied as they are.
    Lit(Box<[u8]>),
    /// An expression evaluated per render.
    Dyn(Expr, Escape),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Template {
    segs: Vec<Seg>,
}

/// What a name in a template refers to, as the plan resolves it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    /// A profile variable: folded in as text.
    Const(String),
    /// A user variable slot.
    Var(u16),
    /// A feeder column.
    Row { feeder: u16, column: u16 },
}

/// Resolves names while compiling; the plan implements it over its variables and feeders.
pub(crate) trait Scope {
    /// What `name` (possibly dotted) means, or why it means nothing.
    fn resolve(&mut self, name: &str) -> Result<Resolved, String>;
    /// Substitutes `${...}` in literal text.
    fn substitute(&mut self, text: &str) -> Result<String, String>;
}

/// A template that does not compile: where in the text (byte offset) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    /// The part of the text at fault (e.g. `{{ iten }}`), for locating it in the file.
    pub snippet: String,
    pub message: String,
}

/// The names of the functions, for suggestions.
pub(crate) const FUNCTIONS: &[&str] = &[
    "random_int",
    "random_float",
    "random_string",
    "random_choice",
    "uuid",
    "seq",
    "user_id",
    "core_id",
    "shard_id",
    "iteration",
    "timestamp_ms",
    "timestamp_rfc3339",
    "base64",
    "base64url",
    "urlencode",
    "raw",
    "hmac_sha256",
    "hmac_sha256_base64",
    "sha256",
];

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl Template {
    /// A template of fixed bytes.
    pub fn literal(bytes: impl Into<Vec<u8>>) -> Template {
        let mut t = Template::default();
        t.push_lit(&bytes.into());
        t
    }

    /// Compiles `text`, escaping run-time values with `escape`.
    pub fn compile(
        text: &str,
        escape: Escape,
        scope: &mut dyn Scope,
    ) -> Result<Template, TemplateError> {
        let mut t = Template::default();
        t.append_compiled(text, escape, scope)?;
        Ok(t)
    }

    /// Compiles `text` and appends it.
    pub fn append_compiled(
        &mut self,
        text: &str,
        escape: Escape,
        scope: &mut dyn Scope,
    ) -> Result<(), TemplateError> {
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let literal = scope
                .substitute(&rest[..open])
                .map_err(|message| substitution_error(&rest[..open], message))?;
            self.push_lit(literal.as_bytes());
            let after = &rest[open + 2..];
            let Some(close) = find_close(after) else {
                return Err(TemplateError {
                    snippet: rest[open..].chars().take(40).collect(),
                    message: "`{{` is not closed by `}}`; to send a literal `{{`, write {{\"{{\"}}"
                        .into(),
                });
            };
            let inner = &after[..close];
            let snippet = format!("{{{{{inner}}}}}");
            let expr = Parser::new(inner, scope)
                .parse_all()
                .map_err(|message| TemplateError {
                    snippet: snippet.clone(),
                    message,
                })?;
            match expr {
                Parsed::Const(text) => self.push_lit(text.as_bytes()),
                Parsed::Expr(Expr::Raw(_)) if escape != Escape::Json => {
                    return Err(TemplateError {
                        snippet,
                        message: "raw(...) only works as a whole JSON string value in a Json body, e.g. \"qty\": \"{{raw(random_int(1, 5))}}\"".into(),
                    });
                }
                Parsed::Expr(e) => self.segs.push(Seg::Dyn(e, escape)),
            }
            rest = &after[close + 2..];
        }
        let literal = scope
            .substitute(rest)
            .map_err(|message| substitution_error(rest, message))?;
        self.push_lit(literal.as_bytes());
        Ok(())
    }

    /// Appends literal bytes, merging with a literal before them.
    pub fn push_lit(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Seg::Lit(prev)) = self.segs.last_mut() {
            let mut v = std::mem::take(prev).into_vec();
            v.extend_from_slice(bytes);
            *prev = v.into_boxed_slice();
        } else {
            self.segs.push(Seg::Lit(bytes.into()));
        }
    }

    /// Appends an expression segment.
    pub fn push_expr(&mut self, expr: Expr, escape: Escape) {
        self.segs.push(Seg::Dyn(expr, escape));
    }

    /// Appends another template.
    pub fn append(&mut self, other: &Template) {
        for seg in &other.segs {
            match seg {
                Seg::Lit(b) => self.push_lit(b),
                Seg::Dyn(e, esc) => self.segs.push(Seg::Dyn(e.clone(), *esc)),
            }
        }
    }

    /// Applies `escape` to the literal segments too (they come from the profile, and `${...}` values
    /// in them may need it as much as run-time values do).
    pub fn escape_literals(&mut self, escape: Escape) {
        let mut scratch = Vec::new();
        for seg in &mut self.segs {
            if let Seg::Lit(b) = seg {
                let mut v = std::mem::take(b).into_vec();
                escape_tail(&mut v, 0, escape, &mut scratch);
                *b = v.into_boxed_slice();
            }
        }
    }

    /// The template as expressions (literals become text), to pass as function arguments.
    pub fn to_exprs(&self) -> Vec<Expr> {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Lit(b) => Expr::Text(b.clone()),
                Seg::Dyn(e, _) => e.clone(),
            })
            .collect()
    }

    /// The bytes, when nothing is computed at run time.
    pub fn static_bytes(&self) -> Option<&[u8]> {
        match self.segs.as_slice() {
            [] => Some(&[]),
            [Seg::Lit(b)] => Some(b),
            _ => None,
        }
    }

    /// The segments, for callers that treat some expressions specially (`raw` in JSON).
    pub fn segments(&self) -> &[Seg] {
        &self.segs
    }

    /// Feeders whose rows this template reads.
    pub fn feeders(&self, out: &mut Vec<u16>) {
        for s in &self.segs {
            if let Seg::Dyn(e, _) = s {
                e.feeders(out);
            }
        }
    }

    /// Renders into `out` (appending).
    pub fn render(&self, out: &mut Vec<u8>, env: &mut Env<'_>) {
        for seg in &self.segs {
            match seg {
                Seg::Lit(b) => out.extend_from_slice(b),
                Seg::Dyn(e, escape) => {
                    let start = out.len();
                    e.eval(out, env);
                    escape_tail(out, start, *escape, env.scratch);
                }
            }
        }
    }
}

impl Expr {
    fn feeders(&self, out: &mut Vec<u16>) {
        match self {
            Expr::Row { feeder, .. } if !out.contains(feeder) => {
                out.push(*feeder);
            }
            Expr::Base64 { args, .. } | Expr::UrlEncode(args) | Expr::Sha256(args) => {
                for a in args {
                    a.feeders(out);
                }
            }
            Expr::Hmac { key, args, .. } => {
                key.feeders(out);
                for a in args {
                    a.feeders(out);
                }
            }
            Expr::Raw(e) => e.feeders(out),
            _ => {}
        }
    }

    /// Appends the value to `out`.
    pub fn eval(&self, out: &mut Vec<u8>, env: &mut Env<'_>) {
        use std::io::Write as _;
        match self {
            Expr::Text(b) => out.extend_from_slice(b),
            Expr::Var(slot) => {
                if let Some(v) = env.vars.get(usize::from(*slot)) {
                    out.extend_from_slice(v);
                }
            }
            Expr::Row { feeder, column } => {
                let f = usize::from(*feeder);
                if let (Some(data), Some(&row)) = (env.feeders.get(f), env.rows.get(f)) {
                    out.extend_from_slice(data.cell(row, *column));
                }
            }
            Expr::RandomInt { min, max } => {
                let span = max.abs_diff(*min);
                let offset = if span == u64::MAX {
                    env.rng.next_u64()
                } else {
                    below_u64(env.rng, span + 1)
                };
                let _ = write!(out, "{}", min.wrapping_add_unsigned(offset));
            }
            Expr::RandomFloat { min, max, decimals } => {
                let x = min + (max - min) * env.rng.unit();
                let _ = write!(out, "{:.*}", usize::from(*decimals), x);
            }
            Expr::RandomString { len, alphabet } => {
                for _ in 0..*len {
                    let i = env.rng.below(alphabet.len() as u32) as usize;
                    out.push(alphabet[i]);
                }
            }
            Expr::Choice(options) => {
                let i = env.rng.below(options.len() as u32) as usize;
                out.extend_from_slice(&options[i]);
            }
            Expr::Uuid => {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&env.rng.next_u64().to_le_bytes());
                b[8..].copy_from_slice(&env.rng.next_u64().to_le_bytes());
                b[6] = (b[6] & 0x0f) | 0x40;
                b[8] = (b[8] & 0x3f) | 0x80;
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        out.push(b'-');
                    }
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 15)]);
                }
            }
            Expr::Seq => {
                let n = env.seq.get();
                env.seq.set(n + 1);
                // The core's n-th number is its seat's n-th item of the run-wide deal, so numbers are
                // unique over every core of every shard.
                let _ = write!(out, "{}", env.seat.item(n).unwrap_or(u64::MAX));
            }
            Expr::UserId => {
                let _ = write!(out, "{}", env.user);
            }
            Expr::CoreId => {
                let _ = write!(out, "{}", env.seat.core);
            }
            Expr::ShardId => {
                let _ = write!(out, "{}", env.seat.shard);
            }
            Expr::Iteration => {
                let _ = write!(out, "{}", env.iteration);
            }
            Expr::TimestampMs => {
                let _ = write!(out, "{}", env.wall_ms());
            }
            Expr::TimestampRfc3339 => write_rfc3339(out, env.wall_ms()),
            Expr::Base64 { url, args } => {
                let start = out.len();
                for a in args {
                    a.eval(out, env);
                }
                env.scratch.clear();
                env.scratch.extend_from_slice(&out[start..]);
                out.truncate(start);
                let engine = if *url {
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD
                } else {
                    &base64::engine::general_purpose::STANDARD
                };
                let len = base64::encoded_len(env.scratch.len(), !*url).unwrap_or(0);
                out.resize(start + len, 0);
                let n = engine
                    .encode_slice(&*env.scratch, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + n);
            }
            Expr::UrlEncode(args) => {
                let start = out.len();
                for a in args {
                    a.eval(out, env);
                }
                escape_tail(out, start, Escape::Component, env.scratch);
            }
            Expr::Raw(inner) => inner.eval(out, env),
            Expr::Hmac { key, args, base64 } => {
                use hmac::Mac as _;
                // Key and message are rendered side by side into `out`, then replaced by the tag.
                let start = out.len();
                key.eval(out, env);
                let mid = out.len();
                for a in args {
                    a.eval(out, env);
                }
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&out[start..mid])
                    .expect("HMAC takes a key of any length");
                mac.update(&out[mid..]);
                let tag = mac.finalize().into_bytes();
                out.truncate(start);
                if *base64 {
                    let mut text = [0u8; 44];
                    let n = base64::engine::general_purpose::STANDARD
                        .encode_slice(tag, &mut text)
                        .unwrap_or(0);
                    out.extend_from_slice(&text[..n]);
                } else {
                    write_hex(out, &tag);
                }
            }
            Expr::Sha256(args) => {
                use sha2::Digest as _;
                let start = out.len();
                for a in args {
                    a.eval(out, env);
                }
                let digest = sha2::Sha256::digest(&out[start..]);
                out.truncate(start);
                write_hex(out, &digest);
            }
        }
    }
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    }
}

/// What rendering reads: the user's state and the core's.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    /// The user's variables, by slot.
    pub vars: &'a [Vec<u8>],
    /// Every feeder of the plan.
    pub feeders: &'a [Arc<Feeder>],
    /// The user's current row of each feeder.
    pub rows: &'a [u32],
    pub rng: &'a mut Rng,
    pub user: u32,
    /// The core's shard and index (`core_id()`, `shard_id()`, `seq()`).
    pub seat: crate::schedule::Seat,
    pub iteration: u64,
    /// The core's `seq()` counter; the `n`-th value is the seat's `n`-th item, unique across cores.
    pub seq: &'a Cell<u64>,
    pub clock: &'a Clock,
    /// Room for encoders; reused.
    pub scratch: &'a mut Vec<u8>,
}

impl Env<'_> {
    fn wall_ms(&self) -> u64 {
        let zero_ms = u64::try_from(self.clock.wall_ns / 1_000_000).unwrap_or(0);
        zero_ms + self.clock.now_us() / 1000
    }
}

/// Uniform in `0..n` for `n > 0`.
fn below_u64(rng: &mut Rng, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// Applies `escape` to `out[start..]`, in place when nothing needs escaping (the usual case).
fn escape_tail(out: &mut Vec<u8>, start: usize, escape: Escape, scratch: &mut Vec<u8>) {
    let needs = |b: u8| match escape {
        Escape::None => false,
        Escape::Path => b <= b' ' || b >= 0x7f,
        Escape::Component => !(b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
        Escape::Header => matches!(b, b'\r' | b'\n' | 0),
        Escape::Json => b < 0x20 || b == b'"' || b == b'\\',
    };
    if !out[start..].iter().any(|&b| needs(b)) {
        return;
    }
    scratch.clear();
    scratch.extend_from_slice(&out[start..]);
    out.truncate(start);
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in scratch.iter() {
        if !needs(b) {
            out.push(b);
            continue;
        }
        match escape {
            Escape::None => out.push(b),
            Escape::Path | Escape::Component => {
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            Escape::Header => out.push(b' '),
            Escape::Json => match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]),
            },
        }
    }
}

/// `2026-11-25T20:29:00.123Z` for Unix milliseconds.
pub(crate) fn write_rfc3339(out: &mut Vec<u8>, unix_ms: u64) {
    use std::io::Write as _;
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        unix_ms % 1000
    );
}

/// A `${...}` error, pointing at the reference the message names (or the whole text).
fn substitution_error(text: &str, message: String) -> TemplateError {
    let snippet = super::vars::collect_refs(text)
        .into_iter()
        .find(|k| message.contains(&format!("`{k}`")))
        .and_then(|k| {
            let at = text.find(&format!("${{{k}"))?;
            Some(
                text[at..]
                    .split_inclusive('}')
                    .next()
                    .unwrap_or(&text[at..])
                    .to_owned(),
            )
        })
        .unwrap_or_else(|| text.to_owned());
    TemplateError { snippet, message }
}

/// The `}}` closing an expression, skipping string literals (which may contain `}}`).
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'\'' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

enum Parsed {
    Const(String),
    Expr(Expr),
}

struct Parser<'a, 's> {
    text: &'a str,
    pos: usize,
    scope: &'s mut dyn Scope,
}

impl<'a, 's> Parser<'a, 's> {
    fn new(text: &'a str, scope: &'s mut dyn Scope) -> Self {
        Parser {
            text,
            pos: 0,
            scope,
        }
    }

    fn parse_all(mut self) -> Result<Parsed, String> {
        self.ws();
        if self.pos == self.text.len() {
            return Err("empty `{{ }}`: put a variable or a function call inside".into());
        }
        let e = self.expr()?;
        self.ws();
        if self.pos != self.text.len() {
            return Err(format!(
                "unexpected `{}` after the expression",
                &self.text[self.pos..]
            ));
        }
        Ok(e)
    }

    fn ws(&mut self) {
        while self.text[self.pos..].starts_with(|c: char| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn expr(&mut self) -> Result<Parsed, String> {
        self.ws();
        match self.peek() {
            Some(b'"' | b'\'') => self.string().map(Parsed::Const),
            Some(b'-' | b'0'..=b'9') => self.number().map(|(t, _)| Parsed::Const(t)),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self.peek().is_some_and(|c| {
                    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-'
                }) {
                    self.pos += 1;
                }
                let name = &self.text[start..self.pos];
                self.ws();
                if self.peek() == Some(b'(') {
                    self.pos += 1;
                    self.call(name)
                } else {
                    if FUNCTIONS.contains(&name) {
                        return Err(format!(
                            "`{name}` is a function: write `{name}()` (with arguments if it takes any)"
                        ));
                    }
                    match self.scope.resolve(name)? {
                        Resolved::Const(v) => Ok(Parsed::Const(v)),
                        Resolved::Var(slot) => Ok(Parsed::Expr(Expr::Var(slot))),
                        Resolved::Row { feeder, column } => {
                            Ok(Parsed::Expr(Expr::Row { feeder, column }))
                        }
                    }
                }
            }
            Some(c) => Err(format!(
                "unexpected `{}`: expected a variable, a function call, a string or a number",
                c as char
            )),
            None => Err("the expression ends too early".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("expected a string")?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err("a string is not closed".into());
            };
            self.pos += c.len_utf8();
            if c == quote as char {
                break;
            }
            if c == '\\' {
                let Some(n) = self.text[self.pos..].chars().next() else {
                    return Err("a string is not closed".into());
                };
                self.pos += n.len_utf8();
                out.push(match n {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
        self.scope.substitute(&out)
    }

    /// A number literal: its text, and its value.
    fn number(&mut self) -> Result<(String, f64), String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'E')
        {
            self.pos += 1;
        }
        let text = &self.text[start..self.pos];
        let value: f64 = text
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        Ok((text.to_owned(), value))
    }

    /// The arguments of a call, as expressions (constants become text).
    fn args(&mut self) -> Result<Vec<Parsed>, String> {
        let mut args = Vec::new();
        self.ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err("expected `,` or `)` in the argument list".into()),
            }
        }
    }

    fn call(&mut self, name: &str) -> Result<Parsed, String> {
        let args_start = self.pos;
        let args = self.args()?;
        let arg_text = &self.text[args_start..self.pos.saturating_sub(1)];
        let arity = |n: usize, usage: &str| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{name} takes {n} argument(s), got {}: write {usage}",
                    args.len()
                ))
            }
        };
        let num = |i: usize, usage: &str| -> Result<f64, String> {
            match args.get(i) {
                Some(Parsed::Const(t)) => t.trim().parse::<f64>().map_err(|_| {
                    format!(
                        "argument {} of {name} must be a number: write {usage}",
                        i + 1
                    )
                }),
                _ => Err(format!(
                    "argument {} of {name} must be a number literal: write {usage}",
                    i + 1
                )),
            }
        };
        let expr = match name {
            "random_int" => {
                let usage = "random_int(1, 100)";
                arity(2, usage)?;
                let (a, b) = (num(0, usage)?, num(1, usage)?);
                if a.fract() != 0.0 || b.fract() != 0.0 || a.abs() > 9e18 || b.abs() > 9e18 {
                    return Err(format!("random_int needs whole numbers: write {usage}"));
                }
                if a > b {
                    return Err(format!(
                        "random_int({arg_text}): the minimum is above the maximum"
                    ));
                }
                Expr::RandomInt {
                    min: a as i64,
                    max: b as i64,
                }
            }
            "random_float" => {
                let usage = "random_float(0.5, 9.5) or random_float(0, 1, 3) for 3 decimals";
                if !(2..=3).contains(&args.len()) {
                    return Err(format!(
                        "random_float takes 2 or 3 arguments: write {usage}"
                    ));
                }
                let (a, b) = (num(0, usage)?, num(1, usage)?);
                let decimals = if args.len() == 3 { num(2, usage)? } else { 2.0 };
                if !(a.is_finite() && b.is_finite()) || a > b {
                    return Err(format!("random_float({arg_text}): need finite min <= max"));
                }
                if !(0.0..=17.0).contains(&decimals) || decimals.fract() != 0.0 {
                    return Err("random_float: decimals must be a whole number from 0 to 17".into());
                }
                Expr::RandomFloat {
                    min: a,
                    max: b,
                    decimals: decimals as u8,
                }
            }
            "random_string" => {
                let usage = "random_string(12) or random_string(6, \"0123456789\")";
                if !(1..=2).contains(&args.len()) {
                    return Err(format!(
                        "random_string takes 1 or 2 arguments: write {usage}"
                    ));
                }
                let len = num(0, usage)?;
                if !(1.0..=4096.0).contains(&len) || len.fract() != 0.0 {
                    return Err(
                        "random_string: the length must be a whole number from 1 to 4096".into(),
                    );
                }
                let alphabet: Box<[u8]> = match args.get(1) {
                    None => ALNUM.into(),
                    Some(Parsed::Const(a)) if !a.is_empty() && a.len() < 1 << 16 => {
                        a.as_bytes().into()
                    }
                    _ => {
                        return Err(format!(
                            "random_string: the alphabet must be a non-empty string literal: write {usage}"
                        ));
                    }
                };
                Expr::RandomString {
                    len: len as u16,
                    alphabet,
                }
            }
            "random_choice" => {
                let usage = "random_choice(\"red\", \"green\", \"blue\")";
                if args.is_empty() {
                    return Err(format!(
                        "random_choice needs at least one option: write {usage}"
                    ));
                }
                let options = args
                    .into_iter()
                    .map(|a| match a {
                        Parsed::Const(t) => Ok(t.into_bytes().into_boxed_slice()),
                        Parsed::Expr(_) => Err(format!(
                            "random_choice takes literal options (strings or numbers): write {usage}"
                        )),
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Expr::Choice(options.into())
            }
            "uuid" | "seq" | "user_id" | "core_id" | "shard_id" | "iteration" | "timestamp_ms"
            | "timestamp_rfc3339" => {
                arity(0, &format!("{name}()"))?;
                match name {
                    "uuid" => Expr::Uuid,
                    "seq" => Expr::Seq,
                    "user_id" => Expr::UserId,
                    "core_id" => Expr::CoreId,
                    "shard_id" => Expr::ShardId,
                    "iteration" => Expr::Iteration,
                    "timestamp_ms" => Expr::TimestampMs,
                    _ => Expr::TimestampRfc3339,
                }
            }
            "base64" | "base64url" | "urlencode" => {
                if args.is_empty() {
                    return Err(format!(
                        "{name} needs something to encode: write {name}(user, \":\", password)"
                    ));
                }
                let exprs: Box<[Expr]> = args.into_iter().map(into_expr).collect();
                // Encoding constants is done now, once.
                if exprs.iter().all(|e| matches!(e, Expr::Text(_))) {
                    let mut joined = Vec::new();
                    for e in exprs.iter() {
                        if let Expr::Text(t) = e {
                            joined.extend_from_slice(t);
                        }
                    }
                    let text = match name {
                        "base64" => base64::engine::general_purpose::STANDARD.encode(&joined),
                        "base64url" => {
                            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&joined)
                        }
                        _ => {
                            let mut out = joined.clone();
                            escape_tail(&mut out, 0, Escape::Component, &mut Vec::new());
                            String::from_utf8_lossy(&out).into_owned()
                        }
                    };
                    return Ok(Parsed::Const(text));
                }
                match name {
                    "urlencode" => Expr::UrlEncode(exprs),
                    _ => Expr::Base64 {
                        url: name == "base64url",
                        args: exprs,
                    },
                }
            }
            "hmac_sha256" | "hmac_sha256_base64" => {
                if args.len() < 2 {
                    return Err(format!(
                        "{name} needs a key and a message: write {name}(\"${{secret}}\", payload)"
                    ));
                }
                let mut exprs = args.into_iter().map(into_expr);
                let key = Box::new(exprs.next().expect("a key"));
                Expr::Hmac {
                    key,
                    args: exprs.collect(),
                    base64: name == "hmac_sha256_base64",
                }
            }
            "sha256" => {
                if args.is_empty() {
                    return Err("sha256 needs something to hash: write sha256(payload)".into());
                }
                Expr::Sha256(args.into_iter().map(into_expr).collect())
            }
            "raw" => {
                arity(1, "raw(random_int(1, 5))")?;
                let inner = args
                    .into_iter()
                    .next()
                    .map(into_expr)
                    .expect("one argument");
                Expr::Raw(Box::new(inner))
            }
            other => {
                let hint = crate::profile::suggest(other, FUNCTIONS.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown function `{other}`{hint} (functions: {})",
                    FUNCTIONS.join(", ")
                ));
            }
        };
        Ok(Parsed::Expr(expr))
    }
}

fn into_expr(p: Parsed) -> Expr {
    match p {
        Parsed::Const(t) => Expr::Text(t.into_bytes().into()),
        Parsed::Expr(e) => e,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A scope with constants `host`, `item`, user variables `token` (slot 0) and `id` (slot 1).
    pub(crate) struct TestScope;

    impl Scope for TestScope {
        fn resolve(&mut self, name: &str) -> Result<Resolved, String> {
            match name {
                "host" => Ok(Resolved::Const("example".into())),
                "item" => Ok(Resolved::Const("42".into())),
                "token" => Ok(Resolved::Var(0)),
                "id" => Ok(Resolved::Var(1)),
                other => Err(format!("unknown variable `{other}`")),
            }
        }
        fn substitute(&mut self, text: &str) -> Result<String, String> {
            let vars = BTreeMap::from([("v".to_owned(), "V".to_owned())]);
            super::super::vars::substitute(text, &|k| vars.get(k).cloned())
        }
    }

    pub(crate) fn render_with(t: &Template, vars: &[Vec<u8>], seed: u64) -> String {
        let mut rng = Rng::new(seed);
        let seq = Cell::new(5);
        let clock = Clock::start();
        let mut scratch = Vec::new();
        let mut env = Env {
            vars,
            feeders: &[],
            rows: &[],
            rng: &mut rng,
            user: 7,
            seat: crate::schedule::Seat {
                shard: 0,
                shards: 1,
                core: 1,
                cores: 2,
            },
            iteration: 3,
            seq: &seq,
            clock: &clock,
            scratch: &mut scratch,
        };
        let mut out = Vec::new();
        t.render(&mut out, &mut env);
        String::from_utf8(out).unwrap()
    }

    fn compile(text: &str, escape: Escape) -> Result<Template, TemplateError> {
        Template::compile(text, escape, &mut TestScope)
    }

    #[test]
    fn constants_fold_into_one_literal() {
        let t = compile("/items/{{item}}/${v}?h={{ host }}", Escape::Path).unwrap();
        assert_eq!(t.static_bytes(), Some(&b"/items/42/V?h=example"[..]));
        let t = compile("{{base64('user', \":\", 'pw')}}", Escape::None).unwrap();
        assert_eq!(t.static_bytes(), Some(&b"dXNlcjpwdw=="[..]));
    }

    #[test]
    fn functions_render() {
        let vars = vec![b"tok en".to_vec(), b"9".to_vec()];
        let table: &[(&str, Escape, &str)] = &[
            ("/x/{{id}}", Escape::Path, "/x/9"),
            // A run-time value with a space stays a valid request target.
            ("/x/{{token}}", Escape::Path, "/x/tok%20en"),
            ("{{token}}", Escape::Component, "tok%20en"),
            (
                "a{{user_id()}}b{{core_id()}}c{{iteration()}}",
                Escape::None,
                "a7b1c3",
            ),
            // seq() = counter × cores + core: 5 × 2 + 1.
            ("{{seq()}},{{seq()}}", Escape::None, "11,13"),
            ("{{shard_id()}}", Escape::None, "0"),
            ("{{base64(token, ':', id)}}", Escape::None, "dG9rIGVuOjk="),
            ("{{base64url(token)}}", Escape::None, "dG9rIGVu"),
            (
                "{{urlencode('a&b=', token)}}",
                Escape::None,
                "a%26b%3Dtok%20en",
            ),
            ("\"{{token}}\"", Escape::Json, "\"tok en\""),
        ];
        for (text, escape, want) in table {
            let t = compile(text, *escape).unwrap();
            assert_eq!(render_with(&t, &vars, 1), *want, "{text}");
        }
        let quoted = compile("{{id}}", Escape::Json).unwrap();
        assert_eq!(
            render_with(&quoted, &[b"a\"b\\\n".to_vec(), b"x\"\n".to_vec()], 1),
            "x\\\"\\n"
        );
        let header = compile("{{id}}", Escape::Header).unwrap();
        assert_eq!(
            render_with(&header, &[vec![], b"a\r\nX-Evil: 1".to_vec()], 1),
            "a  X-Evil: 1"
        );
    }

    #[test]
    fn random_functions_stay_in_range() {
        let vars: Vec<Vec<u8>> = vec![];
        let int = compile("{{random_int(-3, 3)}}", Escape::None).unwrap();
        let float = compile("{{random_float(1, 2, 3)}}", Escape::None).unwrap();
        let string = compile("{{random_string(8, 'ab')}}", Escape::None).unwrap();
        let choice = compile("{{random_choice('x', 'y', 7)}}", Escape::None).unwrap();
        let uuid = compile("{{uuid()}}", Escape::None).unwrap();
        let mut ints = std::collections::BTreeSet::new();
        for seed in 0..500 {
            let i: i64 = render_with(&int, &vars, seed).parse().unwrap();
            assert!((-3..=3).contains(&i));
            ints.insert(i);
            let f = render_with(&float, &vars, seed);
            assert_eq!(f.len(), 5, "{f}");
            assert!((1.0..=2.0).contains(&f.parse::<f64>().unwrap()));
            let s = render_with(&string, &vars, seed);
            assert!(s.len() == 8 && s.bytes().all(|b| b == b'a' || b == b'b'));
            assert!(["x", "y", "7"].contains(&render_with(&choice, &vars, seed).as_str()));
            let u = render_with(&uuid, &vars, seed);
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4", "version 4: {u}");
            assert!("89ab".contains(&u[19..20]), "RFC 4122 variant: {u}");
        }
        assert_eq!(ints.len(), 7, "every value from -3 to 3 comes up");
        assert_ne!(render_with(&uuid, &vars, 1), render_with(&uuid, &vars, 2));
    }

    #[test]
    fn timestamps() {
        let mut out = Vec::new();
        write_rfc3339(&mut out, 1_795_638_540_123);
        assert_eq!(String::from_utf8(out).unwrap(), "2026-11-25T20:29:00.123Z");
        let mut out = Vec::new();
        write_rfc3339(&mut out, 951_782_400_000);
        assert_eq!(String::from_utf8(out).unwrap(), "2000-02-29T00:00:00.000Z");
        let t = compile("{{timestamp_ms()}}", Escape::None).unwrap();
        let ms: u64 = render_with(&t, &[], 1).parse().unwrap();
        assert!(ms > 1_700_000_000_000);
    }

    /// Arbitrary text made of the grammar's pieces compiles or errs, and what compiles renders,
    /// without panicking.
    #[test]
    fn arbitrary_templates_never_panic() {
        const PIECES: &[&str] = &[
            "{{",
            "}}",
            "(",
            ")",
            ",",
            "'",
            "\"",
            "\\",
            "${",
            "}",
            "$$",
            "token",
            "id",
            "item",
            ".",
            "-1",
            "3",
            "1e999",
            "random_int",
            "random_string",
            "base64",
            "urlencode",
            "raw",
            "uuid",
            " ",
            "é",
            "random_choice",
            "random_float",
            "row.x",
            "0.5",
            "\u{0}",
        ];
        let mut rng = Rng::new(11);
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..rng.below(12) {
                text.push_str(PIECES[rng.below(PIECES.len() as u32) as usize]);
            }
            for escape in [Escape::None, Escape::Path, Escape::Json] {
                if let Ok(t) = Template::compile(&text, escape, &mut TestScope) {
                    render_with(&t, &[b"v".to_vec(), b"\"x".to_vec()], 3);
                }
            }
        }
    }

    #[test]
    fn errors_explain_the_fix() {
        let table: &[(&str, &str)] = &[
            ("/{{iten", "not closed"),
            ("/{{ }}", "empty"),
            ("{{uuid}}", "write `uuid()`"),
            ("{{randon_int(1, 2)}}", "did you mean `random_int`"),
            ("{{random_int(5, 1)}}", "minimum is above the maximum"),
            ("{{random_int(1)}}", "takes 2 argument"),
            ("{{random_int(a, 2)}}", "unknown variable `a`"),
            ("{{nope}}", "unknown variable `nope`"),
            ("{{raw(1)}}", "only works as a whole JSON string"),
            ("{{id id}}", "unexpected"),
            ("{{'open}}", "not closed"),
        ];
        for (text, fragment) in table {
            let e = compile(text, Escape::None).unwrap_err();
            assert!(e.message.contains(fragment), "{text}: {}", e.message);
        }
        // A string literal may contain `}}`.
        let t = compile("{{'}}'}}", Escape::None).unwrap();
        assert_eq!(t.static_bytes(), Some(&b"}}"[..]));
    }
}
