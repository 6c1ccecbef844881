//! Profiles: reading a RON file into a [`ProfileSpec`], with every error located.
//!
//! A [`ProfileError`] names the file, line and column, the field path (`users[0].tasks[1].weight`), what
//! was wrong and what would be valid: unknown fields and variants come with a "did you mean" suggestion.
//! Reading a profile never panics, whatever the input.

mod load;
pub mod spec;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{load_file, load_str};
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
        write!(f, ": {}", self.message)
    }
}

/// The 1-based line and column where `needle` first occurs in `text`.
pub(crate) fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let at = text.find(needle)?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Where field `path` (`load.users`, `users[0].tasks[0].weight`) is written in `text`: each name is
/// looked for (as `name:`, outside comments) after the previous one. Only paths whose list indices are
/// all 0 are located, since the first match after a list's start is then the element meant; any
/// other path, or a field the file does not spell out (a default, a fragment's), gives `None`.
pub(crate) fn locate_field(text: &str, path: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    let mut found = None;
    for segment in path.split('.') {
        let (name, indices) = segment.split_once('[').unwrap_or((segment, ""));
        if indices.split('[').any(|i| !i.is_empty() && i != "0]") {
            return None;
        }
        // Variant names in serde paths (`load.Closed.users`) are not `name:` keys.
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let at = text[from..].match_indices(name).find_map(|(i, _)| {
            let at = from + i;
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let key = text[at + name.len()..].trim_start().starts_with(':')
                && !text[line_start..at].contains("//")
                && !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
            key.then_some(at)
        })?;
        from = at + name.len();
        found = Some(at);
    }
    let at = found?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Parses a duration: `30s`, `2m`, `1h30m`, `250ms`, `1.5s`, `100us`. A bare number is refused, since
/// its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a duration ({why}); write e.g. \"30s\", \"2m\", \"1h30m\" or \"250ms\""
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad("it is empty"));
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
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
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
    fn fields_are_located_by_path() {
        let text = "// users: not here\n(\n  load: Closed(users: 0),\n  users: [(tasks: [(weight: 0)])],\n)";
        assert_eq!(locate_field(text, "load.users"), Some((3, 16)));
        assert_eq!(locate_field(text, "load.Closed.users"), Some((3, 16)));
        assert_eq!(
            locate_field(text, "users[0].tasks[0].weight"),
            Some((4, 21))
        );
        assert_eq!(locate_field(text, "users[1].tasks[0].weight"), None);
        assert_eq!(locate_field(text, "http.max_body"), None);
    }

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
            let _ = load_str(&text[..i], file);
        }
        let bytes = text.as_bytes();
        for i in (0..bytes.len()).step_by(step) {
            for b in [b'(', b')', b'"', b'0', b'x', b'\\', b',', b':', b'{', b'}'] {
                let mut m = bytes.to_vec();
                m[i] = b;
                // What parses must also resolve (or fail) without panicking.
                if let Ok(Ok(spec)) = std::str::from_utf8(&m).map(|s| load_str(s, file)) {
                    let env = crate::plan::PlanEnv {
                        cpus: vec![0, 1],
                        ..crate::plan::PlanEnv::default()
                    };
                    let _ = crate::plan::Plan::resolve(spec, &crate::cli::RunArgs::default(), &env);
                }
            }
        }
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
