//! Rendering: expressions evaluated into the request's buffer, and run-time values escaped for
//! where they land, with no parsing and no allocation.

use std::cell::Cell;
use std::sync::Arc;

use base64::Engine as _;

use super::{Escape, Expr, Seg, Template};
use crate::clock::Clock;
use crate::rng::Rng;
use crate::scenario::feeder::Feeder;

impl Template {
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
    pub(super) fn feeders(&self, out: &mut Vec<u16>) {
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
pub(super) fn escape_tail(out: &mut Vec<u8>, start: usize, escape: Escape, scratch: &mut Vec<u8>) {
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
