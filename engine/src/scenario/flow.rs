//! Control flow inside a task (`flow: [...]`): conditions, compiled once with the profile and
//! evaluated per user into its reused buffers, and the loop and branch nodes the user's program
//! walks (`program/walk.rs`).
//!
//! A condition reads the user's variables through templates (so an unknown name is a load-time error
//! with its line and column, like anywhere else), the outcome of the user's last request, or a
//! random draw. Nothing here allocates once a user's buffers have grown to their size.

use regex::bytes::Regex;

use super::template::{Env, Template};
use crate::plan::Wait;

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// Two templates compared as text.
    Text(TextOp, Template, Template),
    /// A template against a regex.
    Matches(Template, Regex),
    /// A template read as a number, against a number.
    Number(NumOp, Template, f64),
    /// The template renders to nothing.
    Empty(Template),
    /// The last response's status is one of these.
    LastStatus(Box<[u16]>),
    /// The last request or step succeeded (`true`) or failed (`false`).
    LastOk(bool),
    /// True with this probability.
    Chance(f64),
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
}

/// Text comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Eq,
    Ne,
    Contains,
}

/// Number comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumOp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// What a user remembers of its last request or step, for `LastStatus`, `LastOk` and `LastFailed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Last {
    /// Its status (0 when none arrived).
    pub status: u16,
    /// It succeeded: expected status, extractions and checks passed.
    pub ok: bool,
}

/// Buffers a condition renders its templates into; one pair per user, reused.
#[derive(Debug, Default)]
pub(crate) struct CondBuffers {
    a: Vec<u8>,
    b: Vec<u8>,
}

impl Cond {
    /// Whether the condition holds for a user (its variables and rows in `env`, its last outcome in
    /// `last`).
    pub fn holds(&self, env: &mut Env<'_>, last: Last, bufs: &mut CondBuffers) -> bool {
        match self {
            Cond::Text(op, a, b) => {
                render(a, env, &mut bufs.a);
                render(b, env, &mut bufs.b);
                match op {
                    TextOp::Eq => bufs.a == bufs.b,
                    TextOp::Ne => bufs.a != bufs.b,
                    TextOp::Contains => contains(&bufs.a, &bufs.b),
                }
            }
            Cond::Matches(t, re) => {
                render(t, env, &mut bufs.a);
                re.is_match(&bufs.a)
            }
            Cond::Number(op, t, n) => {
                render(t, env, &mut bufs.a);
                match number(&bufs.a) {
                    Some(v) => match op {
                        NumOp::Lt => v < *n,
                        NumOp::Le => v <= *n,
                        NumOp::Gt => v > *n,
                        NumOp::Ge => v >= *n,
                    },
                    None => false,
                }
            }
            Cond::Empty(t) => {
                render(t, env, &mut bufs.a);
                bufs.a.is_empty()
            }
            Cond::LastStatus(codes) => codes.contains(&last.status),
            Cond::LastOk(ok) => last.ok == *ok,
            Cond::Chance(p) => env.rng.unit() < *p,
            Cond::All(all) => all.iter().all(|c| c.holds(env, last, bufs)),
            Cond::Any(any) => any.iter().any(|c| c.holds(env, last, bufs)),
            Cond::Not(inner) => !inner.holds(env, last, bufs),
        }
    }
}

fn render(t: &Template, env: &mut Env<'_>, out: &mut Vec<u8>) {
    out.clear();
    t.render(out, env);
}

/// The text as a number (surrounding spaces and JSON quotes allowed), if it is one.
pub(crate) fn number(text: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(text).ok()?.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A `While` or `Repeat` loop, compiled.
#[derive(Debug, Clone)]
pub(crate) struct LoopPlan {
    /// The body, a node.
    pub body: usize,
    /// `While`: checked before each pass.
    pub before: Option<usize>,
    /// `Repeat`: checked after each pass.
    pub until: Option<usize>,
    /// The most passes.
    pub max: u32,
    /// `Repeat`: give up when the next pass would begin this long after the loop began, µs.
    pub timeout_us: Option<u64>,
    /// Think time between passes.
    pub wait: Wait,
    /// `Repeat`: its label in [`super::Scenario::labels`], the name its samples go under.
    pub label: Option<usize>,
    /// A named loop logs a sample for its whole run when it ends normally.
    pub timed: bool,
    /// Running out of passes or time is a failure (`Repeat`), not a quiet end (`While`).
    pub gives_up: bool,
}

/// The name a loop's samples go under, and the message of its give-up.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub name: String,
    pub give_up: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_leniently_but_never_guessed() {
        assert_eq!(number(b"3"), Some(3.0));
        assert_eq!(number(b" 2.5 "), Some(2.5));
        assert_eq!(number(b"\"7\""), Some(7.0));
        assert_eq!(number(b"-1e3"), Some(-1000.0));
        assert_eq!(number(b""), None);
        assert_eq!(number(b"done"), None);
        assert_eq!(number(b"NaN"), None);
        assert_eq!(number(b"inf"), None);
    }

    #[test]
    fn contains_finds_a_needle_anywhere() {
        assert!(contains(b"pending,done", b"done"));
        assert!(contains(b"x", b""));
        assert!(!contains(b"do", b"done"));
    }
}
