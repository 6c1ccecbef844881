//! The template functions: their names, and how a call's arguments are checked and compiled into an
//! [`Expr`].

use super::parse::{Parsed, Parser, into_expr};
use super::render::escape_tail;
use base64::Engine as _;

use super::{Escape, Expr};

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

impl Parser<'_, '_> {
    pub(super) fn call(&mut self, name: &str) -> Result<Parsed, String> {
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
