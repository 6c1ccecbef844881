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
//!
//! `parse` reads the text between `{{` and `}}`, `functions` is the table of template functions and
//! their argument checks, and `render` evaluates expressions per request.

mod functions;
mod parse;
mod render;
#[cfg(test)]
pub(crate) mod tests;

use parse::{Parsed, Parser, find_close, substitution_error};
use render::escape_tail;

pub(crate) use render::Env;

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
}
