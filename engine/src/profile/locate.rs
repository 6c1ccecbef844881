//! Finding where something is written in a profile's text: a snippet, or a field path such as
//! `users[0].tasks[1].flow[2].Request.path` (the path validation errors name).
//!
//! Field paths are followed through RON's structure (structs, lists, maps), not by searching for
//! names, so that `tasks[1]` is the second task however the first is written.

use super::excerpt::{skip_blank, string_end};

/// Spans longer than this many characters are underlined only at their start.
const MAX_UNDERLINE: usize = 80;

/// The 1-based line and column where `needle` first occurs in `text` outside comments.
pub(crate) fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let toks = tokens(text);
    // What lies between tokens is white space or a comment.
    let in_token = |at: usize| {
        let i = toks.partition_point(|t| t.start <= at);
        i > 0 && at < toks[i - 1].end
    };
    text.match_indices(needle)
        .map(|(at, _)| at)
        .find(|&at| in_token(at))
        .map(|at| position(text, at))
}

/// Where field `path` (`load.users`, `users[0].tasks[1].weight`) is written in `text`: the 1-based
/// line and column of its name (or, for a list element, of the element), and how many characters
/// to underline there: the field and its value when they fit on the line. A field the file does not spell out (a default, a missing field) is
/// located at the nearest enclosing field or element that it does; a list index past the end
/// (an element that came from a fragment) gives `None`, as does a path none of which is written.
fn locate_field_span(text: &str, path: &str) -> Option<((usize, usize), usize)> {
    span(text, locate_field_range(text, path)?)
}

/// The byte range of what [`locate_field_span`] locates: the field's name through its value, or a
/// list element.
fn locate_field_range(text: &str, path: &str) -> Option<(usize, usize)> {
    let toks = tokens(text);
    let mut i = 0;
    // `#![enable(...)]` attributes come before the value.
    while toks.get(i).is_some_and(|t| t.kind == Kind::Other(b'#')) {
        i += 1;
        if toks.get(i).is_some_and(|t| t.kind == Kind::Other(b'!')) {
            i += 1;
        }
        if toks.get(i).is_some_and(|t| t.kind == Kind::Open(b'[')) {
            i = close_of(&toks, i) + 1;
        }
    }
    let mut value = (i, toks.len());
    let mut found: Option<(usize, usize)> = None;
    for segment in path.split('.') {
        let (name, indices) = segment.split_once('[').unwrap_or((segment, ""));
        if !name.is_empty() {
            let Some(open) = container(&toks, value) else {
                break;
            };
            let map = toks[open].kind == Kind::Open(b'{');
            // Variant names in serde paths (`load.Closed.users`) are not keys; in a map they are.
            if !map && name.starts_with(|c: char| c.is_ascii_uppercase()) {
                continue;
            }
            let Some((key, v)) = field(text, &toks, open, name) else {
                break;
            };
            found = Some((toks[key].start, toks[v.1 - 1].end.max(toks[key].end)));
            value = v;
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            let open = container(&toks, value).filter(|&o| toks[o].kind == Kind::Open(b'['));
            let Some(open) = open else {
                return found;
            };
            let element = elements(&toks, open).into_iter().nth(index)?;
            found = Some((toks[element.0].start, toks[element.1 - 1].end));
            value = element;
        }
    }
    found
}

/// Where field `path` is written among `sources`: the profile first, then its fragments in the
/// order they were read, which is the order their users were appended in. A path into `users[N]`
/// is followed into the file that holds the Nth user kind; any other path into the profile itself.
/// Gives the file's index in `sources`, the position and how many characters to underline.
pub(crate) fn locate_in_sources(
    sources: &[(std::path::PathBuf, String)],
    path: &str,
) -> Option<(usize, (usize, usize), usize)> {
    let (i, local) = source_of(sources, path)?;
    let (at, width) = locate_field_span(&sources[i].1, &local)?;
    Some((i, at, width))
}

/// Where `snippet` (a template, a regex, a file name) is written within field `path`, among
/// `sources` as for [`locate_in_sources`]: the source's index, the position and the snippet's
/// length in characters. Searching within the field finds the right one of several identical
/// snippets (`{{token}}` in two user kinds, only one of which defines `token`).
pub(crate) fn locate_snippet_in_field(
    sources: &[(std::path::PathBuf, String)],
    path: &str,
    snippet: &str,
) -> Option<(usize, (usize, usize), usize)> {
    if snippet.is_empty() {
        return None;
    }
    let (i, local) = source_of(sources, path)?;
    let text = &sources[i].1;
    let (start, end) = locate_field_range(text, &local)?;
    let at = start + text[start..end].find(snippet)?;
    Some((i, position(text, at), snippet.chars().count()))
}

/// Which of `sources` holds field `path`, and the path within that file: `users[N]` counts the
/// user kinds of each file in turn; any other path is the profile's own.
fn source_of(sources: &[(std::path::PathBuf, String)], path: &str) -> Option<(usize, String)> {
    let user = path
        .strip_prefix("users[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
    let Some((mut n, rest)) = user else {
        return (!sources.is_empty()).then(|| (0, path.to_owned()));
    };
    for (i, (_, text)) in sources.iter().enumerate() {
        let count = list_len(text, "users");
        if n < count {
            return Some((i, format!("users[{n}]{rest}")));
        }
        n -= count;
    }
    None
}

/// How many elements the top-level list field `name` of `text` has (0 when it is not written).
fn list_len(text: &str, name: &str) -> usize {
    let toks = tokens(text);
    let start = toks
        .iter()
        .position(|t| !matches!(t.kind, Kind::Other(b'#') | Kind::Other(b'!')))
        .unwrap_or(0);
    let list = container(&toks, (start, toks.len()))
        .and_then(|open| field(text, &toks, open, name))
        .and_then(|(_, value)| container(&toks, value))
        .filter(|&open| toks[open].kind == Kind::Open(b'['));
    list.map_or(0, |open| elements(&toks, open).len())
}

/// The position of byte range `range`, and how much of it to underline.
fn span(text: &str, (start, end): (usize, usize)) -> Option<((usize, usize), usize)> {
    let written = &text[start..end];
    let chars = written.chars().count();
    let width = if written.contains('\n') || chars > MAX_UNDERLINE {
        written
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(chars, |n| n.max(1))
    } else {
        chars
    };
    Some((position(text, start), width))
}

/// The 1-based line and column (in characters) of byte offset `at`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Open(u8),
    Close,
    Comma,
    Colon,
    Str,
    Ident,
    Other(u8),
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

/// RON text as the tokens its structure is made of; strings, characters and comments are one
/// token or none, so that brackets inside them do not count.
fn tokens(text: &str) -> Vec<Tok> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = skip_blank(text, 0);
    while at < text.len() {
        let c = bytes[at];
        let raw_hashes = (c == b'r')
            .then(|| bytes[at + 1..].iter().take_while(|b| **b == b'#').count())
            .filter(|h| bytes.get(at + 1 + h) == Some(&b'"'));
        let (kind, end) = if let Some(h) = raw_hashes {
            let close = format!("\"{}", "#".repeat(h));
            let body = at + 2 + h;
            let end = text[body..]
                .find(&close)
                .map_or(text.len(), |i| body + i + close.len());
            (Kind::Str, end)
        } else {
            match c {
                b'"' => (Kind::Str, string_end(text, at).unwrap_or(text.len())),
                b'\'' => {
                    let from = at + 1 + usize::from(bytes.get(at + 1) == Some(&b'\\')) + 1;
                    let end = text
                        .get(from..)
                        .and_then(|r| r.find('\''))
                        .map_or(text.len(), |i| from + i + 1);
                    (Kind::Other(c), end)
                }
                b'(' | b'[' | b'{' => (Kind::Open(c), at + 1),
                b')' | b']' | b'}' => (Kind::Close, at + 1),
                b',' => (Kind::Comma, at + 1),
                b':' => (Kind::Colon, at + 1),
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let len = bytes[at..]
                        .iter()
                        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                        .count();
                    (Kind::Ident, at + len)
                }
                _ => {
                    let len = text[at..].chars().next().map_or(1, char::len_utf8);
                    (Kind::Other(c), at + len)
                }
            }
        };
        out.push(Tok {
            kind,
            start: at,
            end,
        });
        at = skip_blank(text, end);
    }
    out
}

/// The index of the token that closes the bracket opened at `open` (or the last token).
fn close_of(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Open(_) => depth += 1,
            Kind::Close => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    toks.len().saturating_sub(1)
}

/// The token ranges of the elements of the bracket opened at `open`, split at its own commas.
fn elements(toks: &[Tok], open: usize) -> Vec<(usize, usize)> {
    let close = close_of(toks, open);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    for (i, tok) in toks.iter().enumerate().take(close).skip(open + 1) {
        match tok.kind {
            Kind::Open(_) => depth += 1,
            Kind::Close => depth = depth.saturating_sub(1),
            Kind::Comma if depth == 0 => {
                if i > start {
                    out.push((start, i));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if close > start {
        out.push((start, close));
    }
    out
}

/// The bracket a value opens: `(`, `Name(`, `[` or `{`.
fn container(toks: &[Tok], (start, end): (usize, usize)) -> Option<usize> {
    let first = toks.get(start)?;
    match first.kind {
        Kind::Open(_) => Some(start),
        Kind::Ident if start + 1 < end && matches!(toks[start + 1].kind, Kind::Open(_)) => {
            Some(start + 1)
        }
        _ => None,
    }
}

/// The key token and value range of field (or map key) `name` in the bracket opened at `open`.
/// A bracket holding one unnamed value (`Some((...))`, a newtype variant) is looked into.
fn field(text: &str, toks: &[Tok], open: usize, name: &str) -> Option<(usize, (usize, usize))> {
    let elements = elements(toks, open);
    for &(a, b) in &elements {
        if b > a + 1 && toks[a + 1].kind == Kind::Colon {
            let key = &text[toks[a].start..toks[a].end];
            let key = match toks[a].kind {
                Kind::Str => key.trim_matches('"'),
                _ => key,
            };
            if key == name && b > a + 2 {
                return Some((a, (a + 2, b)));
            }
        }
    }
    match elements.as_slice() {
        [(a, b)] if !(b > &(a + 1) && toks[a + 1].kind == Kind::Colon) => {
            field(text, toks, container(toks, (*a, *b))?, name)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate_field(text: &str, path: &str) -> Option<(usize, usize)> {
        locate_field_span(text, path).map(|(at, _)| at)
    }

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

    /// Elements past the first are found by structure, whatever the earlier ones hold.
    #[test]
    fn any_list_element_is_located() {
        let text = r#"#![enable(implicit_some)]
Profile(
  users: [
    (tasks: [(requests: [(path: "/a", name: "x, [y]"), (path: "b")])]),
    (weight: 2, tasks: [
      (weight: 0, requests: [(path: "/c")]),
      (flow: [Request(path: "/d"), Request(path: "e")]),
    ]),
  ],
  feeders: {"accounts": (file: "a.csv"), "X-Y": (file: "")},
)"#;
        let at = |path| locate_field_span(text, path);
        assert_eq!(at("users[0].tasks[0].requests[1].path"), Some(((4, 57), 9)));
        assert_eq!(at("users[1].weight"), Some(((5, 6), 9)));
        assert_eq!(
            at("users[1].tasks[1].flow[1].Request.path"),
            Some(((7, 44), 9))
        );
        assert_eq!(at("feeders.accounts.file"), Some(((10, 26), 13)));
        assert_eq!(at("feeders.X-Y.file"), Some(((10, 50), 8)));
        // A list element: the whole element when it fits on its line.
        assert_eq!(at("users[1].tasks[0]"), Some(((6, 7), 37)));
        // A field that is not written (a default, a missing field): the nearest enclosing one.
        assert_eq!(at("users[1].tasks[0].repeat"), Some(((6, 7), 37)));
        // A multi-line value: only its name is underlined.
        assert_eq!(at("users[1].tasks"), Some(((5, 17), 5)));
        // An element that is not in this file (from a fragment) is not guessed at.
        assert_eq!(at("users[2].tasks"), None);
        assert_eq!(at("nothing.here"), None);
    }

    /// A fragment's users come after the profile's own, in the order the files were read.
    #[test]
    fn users_from_fragments_are_located_in_their_file() {
        let sources: Vec<(std::path::PathBuf, String)> = [
            ("main.ron", "(name: \"m\", users: [(tasks: []), (tasks: [])])"),
            ("empty.ron", "(headers: {\"users\": \"x\"})"),
            ("a.ron", "(users: [\n  (weight: 1, tasks: []),\n  (tasks: [(requests: [(path: \"x\")])]),\n])"),
        ]
        .into_iter()
        .map(|(f, t)| (f.into(), t.to_owned()))
        .collect();
        assert_eq!(
            locate_in_sources(&sources, "users[1].tasks"),
            Some((0, (1, 35), 9))
        );
        assert_eq!(
            locate_in_sources(&sources, "users[2].weight"),
            Some((2, (2, 4), 9))
        );
        assert_eq!(
            locate_in_sources(&sources, "users[3].tasks[0].requests[0].path"),
            Some((2, (3, 25), 9))
        );
        assert_eq!(locate_in_sources(&sources, "users[4].tasks"), None);
        assert_eq!(locate_in_sources(&sources, "name"), Some((0, (1, 2), 9)));
    }

    #[test]
    fn snippets_in_comments_are_not_found() {
        let text = "// see {{x}}\n(path: \"/{{x}}\") // {{y}}";
        assert_eq!(locate(text, "{{x}}"), Some((2, 10)));
        assert_eq!(locate(text, "{{y}}"), None);
        // `//` in a string is no comment.
        let text = "(host: \"http://h\", path: \"/{{x}}\") /* {{x}} */";
        assert_eq!(locate(text, "{{x}}"), Some((1, 28)));
    }

    /// Of two identical snippets, the one in the field named is found.
    #[test]
    fn snippets_are_found_within_their_field() {
        let text = "(users: [\n  (tasks: [(requests: [(path: \"/{{token}}\")])]),\n  (tasks: [(requests: [(path: \"/{{token}}\")])]),\n])";
        let sources = vec![(std::path::PathBuf::from("p.ron"), text.to_owned())];
        let field = "users[1].tasks[0].requests[0].path";
        assert_eq!(
            locate_snippet_in_field(&sources, field, "{{token}}"),
            Some((0, (3, 33), 9))
        );
        assert_eq!(locate_snippet_in_field(&sources, field, "{{other}}"), None);
        assert_eq!(
            locate_snippet_in_field(&sources, "users[2].tasks", "{{token}}"),
            None
        );
    }

    #[test]
    fn newtypes_and_some_are_looked_into() {
        let text = "(flow: [Request((path: \"x\"))], auth: Some((secret: \"s\")))";
        assert_eq!(locate_field(text, "flow[0].Request.path"), Some((1, 18)));
        assert_eq!(locate_field(text, "auth.secret"), Some((1, 44)));
    }
}
