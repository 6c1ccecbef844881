//! Parsing the text between `{{` and `}}` into an expression, names resolved through the plan's
//! [`Scope`] and constants folded.

use super::functions::FUNCTIONS;
use super::{Expr, Resolved, Scope, TemplateError};

/// A `${...}` error, pointing at the reference the message names (or the whole text).
pub(super) fn substitution_error(text: &str, message: String) -> TemplateError {
    let snippet = crate::scenario::vars::collect_refs(text)
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
pub(super) fn find_close(s: &str) -> Option<usize> {
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

pub(super) enum Parsed {
    Const(String),
    Expr(Expr),
}

pub(super) struct Parser<'a, 's> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
    pub(super) scope: &'s mut dyn Scope,
}

impl<'a, 's> Parser<'a, 's> {
    pub(super) fn new(text: &'a str, scope: &'s mut dyn Scope) -> Self {
        Parser {
            text,
            pos: 0,
            scope,
        }
    }

    pub(super) fn parse_all(mut self) -> Result<Parsed, String> {
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
    pub(super) fn args(&mut self) -> Result<Vec<Parsed>, String> {
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
}

pub(super) fn into_expr(p: Parsed) -> Expr {
    match p {
        Parsed::Const(t) => Expr::Text(t.into_bytes().into()),
        Parsed::Expr(e) => e,
    }
}
