//! Profiles: reading a RON file into a [`ProfileSpec`], with every error located.
//!
//! A [`ProfileError`] names the file, line and column, the field path (`users[0].tasks[1].weight`), what
//! was wrong and what would be valid: unknown fields and variants come with a "did you mean" suggestion.
//! Below the message it shows the line of the profile with a caret under the column, as rustc does.
//! Reading a profile never panics, whatever the input.

mod excerpt;
mod hints;
mod load;
mod locate;
pub mod spec;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use excerpt::Excerpt;
pub use load::{load_file, load_str};
pub(crate) use locate::{locate, locate_in_sources, locate_snippet_in_field};
pub use spec::ProfileSpec;
pub(crate) use validate::check_load;

/// A profile that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProfileError {
    /// The file, or `<profile>` for text not read from a file.
    pub file: PathBuf,
    /// Where in the file (1-based line and column), when known.
    pub position: Option<(usize, usize)>,
    /// The field path, e.g. `users[0].tasks[1].weight`; empty for the top level.
    pub field: String,
    /// What is wrong, and what would be valid.
    pub message: String,
    /// The line at `position`, shown under the message with a caret under the column (boxed: an
    /// error is passed around far more often than it is shown).
    pub excerpt: Option<Box<Excerpt>>,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": in `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(excerpt) = &self.excerpt {
            write!(f, "\n{excerpt}")?;
        }
        Ok(())
    }
}

/// Parses a duration: `30s`, `2m`, `1h30m`, `250ms`, `1.5s`, `100us`. A bare number is refused, since
/// its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a duration ({why}); write e.g. \"30s\", \"2m\", \"1h30m\" or \"250ms\""
        )
    };
    // When the fix is plain, the message gives it rather than examples.
    let fix =
        |why: &str, fixed: &str| format!("{text:?} is not a duration ({why}); write {fixed:?}");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    // A string that runs on over lines is most often one whose closing quote is missing.
    if let Some((first, _)) = t.split_once('\n') {
        return Err(format!(
            "the string \"{first}...\" runs over a line break, which a duration cannot: is its closing `\"` missing? Write e.g. \"30s\""
        ));
    }
    if t.contains(char::is_whitespace) {
        let joined: String = t.split_whitespace().collect();
        return Err(fix("it has a space", &joined));
    }
    if t.starts_with('-') {
        return Err(bad("it is negative"));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad("expected a number"));
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = num.parse().map_err(|_| bad("expected a number"))?;
        let secs = match unit {
            "h" => 3600.0,
            "m" | "min" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "" => return Err(bad("a unit is missing")),
            _ => {
                let why = format!("unknown unit {unit:?}");
                return Err(match unit_alias(unit) {
                    Some(alias) => {
                        let at = t.len() - after.len() - unit.len();
                        fix(&why, &format!("{}{alias}{after}", &t[..at]))
                    }
                    None => bad(&format!("{why}; the units are h, m, s, ms and us")),
                });
            }
        };
        let part = value * secs;
        if !part.is_finite() || part > 1e9 {
            return Err(bad("too long"));
        }
        total += Duration::from_secs_f64(part);
        rest = after;
    }
    Ok(total)
}

/// The unit meant by a spelling other tools or people use (`sec`, `hours`, `S`).
fn unit_alias(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "mins" | "minute" | "minutes" => "m",
        "hr" | "hrs" | "hour" | "hours" => "h",
        "ms" | "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => "ms",
        "us" | "micros" | "microsecond" | "microseconds" => "us",
        "h" => "h",
        _ => return None,
    })
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            (
                edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let table: &[(&str, Option<Duration>)] = &[
            ("30s", Some(Duration::from_secs(30))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("250ms", Some(Duration::from_millis(250))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("100us", Some(Duration::from_micros(100))),
            // A bare number has no unit: refused rather than guessed.
            ("30", None),
            ("", None),
            ("3x", None),
            ("s", None),
            // Absurdly long durations are refused instead of overflowing.
            ("99999999999h", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text).ok(), *want, "{text:?}");
        }
        // What a new user writes is refused with the form to use.
        for (text, says) in [
            (
                "10 s",
                r#""10 s" is not a duration (it has a space); write "10s""#,
            ),
            ("1h 30m", r#"(it has a space); write "1h30m""#),
            ("10sec", r#"(unknown unit "sec"); write "10s""#),
            ("1h30mins", r#"(unknown unit "mins"); write "1h30m""#),
            ("2Hours", r#"write "2h""#),
            (
                "5x",
                r#"unknown unit "x"; the units are h, m, s, ms and us); write e.g. "30s""#,
            ),
            ("-5s", r#"(it is negative); write e.g. "30s""#),
            (
                "1s),\n  users: [",
                r#"the string "1s),..." runs over a line break"#,
            ),
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    /// Every prefix of a valid profile, and many single-byte corruptions of it, give an error or a
    /// profile (and then a plan or an error): never a panic.
    #[test]
    fn mangled_profiles_never_panic() {
        mangle(include_str!("../../../profiles/api.ron"), 3);
        // Templates, extraction, checks and auth helpers: every mangling compiles or errs.
        mangle(include_str!("../../../profiles/rest-api.ron"), 7);
    }

    fn mangle(text: &str, step: usize) {
        let file = std::path::Path::new("api.ron");
        assert!(load_str(text, file).is_ok());
        for (i, _) in text.char_indices() {
            // Showing the error (its excerpt and what was found) must not panic either.
            if let Err(e) = load_str(&text[..i], file) {
                assert!(!e.to_string().is_empty());
            }
        }
        let bytes = text.as_bytes();
        for i in (0..bytes.len()).step_by(step) {
            for b in [b'(', b')', b'"', b'0', b'x', b'\\', b',', b':', b'{', b'}'] {
                let mut m = bytes.to_vec();
                m[i] = b;
                // What parses must also resolve (or fail) without panicking.
                let loaded = std::str::from_utf8(&m).map(|s| load_str(s, file));
                if let Ok(Err(e)) = &loaded {
                    assert!(!e.to_string().is_empty());
                }
                if let Ok(Ok(spec)) = loaded {
                    let env = crate::plan::PlanEnv {
                        cpus: vec![0, 1],
                        ..crate::plan::PlanEnv::default()
                    };
                    if let Err(e) =
                        crate::plan::Plan::resolve(spec, &crate::cli::RunArgs::default(), &env)
                    {
                        assert!(!e.to_string().is_empty());
                    }
                }
            }
        }
    }

    /// The whole message, as a new user sees it: place, field, what was expected and found, and the
    /// line with the place underlined.
    #[test]
    fn a_wrong_type_shows_what_was_found_and_where() {
        let text = r#"(name: "x", host: "http://127.0.0.1:1", load: Closed(users: "ten", duration: "1s"), scenarios: [])"#;
        let e = load_str(text, std::path::Path::new("/tmp/bad.ron")).unwrap_err();
        assert_eq!(e.position, Some((1, 61)));
        let caret = format!("  | {}^^^^^", " ".repeat(60));
        assert_eq!(
            e.to_string(),
            format!(
                "/tmp/bad.ron:1:61: in `load.Closed.users`: expected an integer, found the string \"ten\"\n  |\n1 | {text}\n{caret}"
            )
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("methd", ["method", "path", "name"]), Some("method"));
        assert_eq!(
            suggest("spawnrate", ["users", "spawn_rate", "duration"]),
            Some("spawn_rate")
        );
        assert_eq!(suggest("zzzzzz", ["method", "path"]), None);
    }
}
