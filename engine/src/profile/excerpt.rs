//! Showing where a profile error is, as rustc and elm do: the line of the profile with a caret under
//! the column, and, where the parser only says what it expected, what it found there instead.

use std::fmt;

/// Lines longer than this many characters are shown as a window around the column.
const MAX_WIDTH: usize = 100;
/// How many characters before the column a window keeps, so that the caret has context.
const BEFORE: usize = 40;
/// How much of a string or an unquoted word a "found" description quotes.
const MAX_QUOTED: usize = 32;

/// The line of a profile an error points into, kept so that the error can show it under its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    /// The 1-based line number.
    pub line: usize,
    /// The 1-based column, in characters, that the caret goes under.
    pub col: usize,
    /// How many characters from `col` on are underlined (at least 1).
    pub width: usize,
    /// The line as written, without its line break.
    pub text: String,
}

impl Excerpt {
    /// The excerpt of `text` at `position`, underlining `width` characters; `None` when `text` has no
    /// such line.
    pub(crate) fn new(text: &str, position: (usize, usize), width: usize) -> Option<Excerpt> {
        let (line, col) = position;
        let source = text.split('\n').nth(line.checked_sub(1)?)?;
        Some(Excerpt {
            line,
            col: col.max(1),
            width: width.max(1),
            text: source.strip_suffix('\r').unwrap_or(source).to_owned(),
        })
    }
}

impl fmt::Display for Excerpt {
    /// Three lines: an empty gutter, the numbered line and the caret line, e.g.
    ///
    /// ```text
    ///   |
    /// 7 |     users: [(tasks: [(requests: [(path: "items/1")])])],
    ///   |                                   ^^^^^^^^^^^^^^^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.text.chars().collect();
        let at = (self.col - 1).min(chars.len());
        // A long line is cut to a window that keeps some text before the column.
        let (start, end) = if chars.len() > MAX_WIDTH {
            let start = at.saturating_sub(BEFORE);
            (start, (start + MAX_WIDTH).min(chars.len()))
        } else {
            (0, chars.len())
        };
        let mut shown = String::new();
        let mut marks = String::new();
        if start > 0 {
            shown.push_str("...");
            marks.push_str("   ");
        }
        for (i, c) in chars[start..end].iter().enumerate() {
            // Tabs become one space and control characters a `?`, so that every character shown takes
            // one column and the caret stays under the right one.
            let shown_c = match c {
                '\t' => ' ',
                c if c.is_control() => '?',
                c => *c,
            };
            shown.push(shown_c);
            if start + i < at {
                marks.extend(std::iter::repeat_n(' ', columns(shown_c)));
            }
        }
        if end < chars.len() {
            shown.push_str("...");
        }
        let width = self.width.min(end.saturating_sub(at)).max(1);
        marks.extend(std::iter::repeat_n('^', width));
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        let numbered = format!("{gutter} | {shown}");
        write!(f, "{pad} |\n{}\n{pad} | {marks}", numbered.trim_end())
    }
}

/// How many terminal columns `c` takes (2 for East Asian wide characters and emoji, 0 for combining
/// marks), so that the caret stays under the column after such text.
fn columns(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// What the text holds at a position: a description for a message, and how many characters from
/// the position to underline to cover it (when it ends on the same line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// E.g. `the string "ten"`, `the number 5`, `` the identifier `ten` ``, `` `[`, a list ``.
    pub what: String,
    /// Characters from the position to the end of what was found, when on the position's line.
    pub width: Option<usize>,
    /// When a string was found, what it holds (as written, escapes and all).
    pub string: Option<String>,
}

/// What is written at `position` (1-based line and column, in characters) of `text`, after any
/// white space and comments: the token a parser that wanted something else found there.
pub(crate) fn found_at(text: &str, position: (usize, usize)) -> Option<Found> {
    let (line, col) = position;
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2)?.0 + 1
    };
    let line_text = &text[line_start..];
    let line_len = line_text.find('\n').unwrap_or(line_text.len());
    let from = line_start
        + line_text[..line_len]
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(line_len, |(i, _)| i);
    let start = skip_blank(text, from);
    let rest = &text[start..];
    let (what, len) = describe(rest);
    // Underline from the position through the token when both are on one line.
    let width = (!text[from..start].contains('\n'))
        .then(|| text[from..start].chars().count() + rest[..len].chars().count())
        .filter(|_| !rest[..len].contains('\n'));
    let string = rest
        .starts_with('"')
        .then(|| string_end(rest, 0).map(|end| rest[1..end - 1].to_owned()))
        .flatten();
    Some(Found {
        what,
        width,
        string,
    })
}

/// The position (1-based line and column, in characters) of the first character at or after
/// `position` that is not white space or a comment, on the same line or a later one; `position`
/// itself when nothing but blank follows it.
pub(crate) fn token_start(text: &str, position: (usize, usize)) -> (usize, usize) {
    let (line, col) = position;
    let line_start = match line {
        0 => return position,
        1 => 0,
        _ => match text.match_indices('\n').nth(line - 2) {
            Some((i, _)) => i + 1,
            None => return position,
        },
    };
    let line_text = &text[line_start..];
    let line_len = line_text.find('\n').unwrap_or(line_text.len());
    // Just inside a string's opening quote is where ron places the errors of values read from
    // strings (durations, sizes); the string's own blank is part of what is wrong.
    if col >= 2 && line_text[..line_len].chars().nth(col - 2) == Some('"') {
        return position;
    }
    let Some((from, _)) = line_text[..line_len]
        .char_indices()
        .nth(col.saturating_sub(1))
    else {
        // Past the line's end (ron places some errors just after a line's last character).
        return next_token(text, line_start + line_len).unwrap_or(position);
    };
    next_token(text, line_start + from).unwrap_or(position)
}

/// The line and column of the first token at or after byte `at`; `None` at the end of the text.
fn next_token(text: &str, at: usize) -> Option<(usize, usize)> {
    let start = skip_blank(text, at);
    if start >= text.len() {
        return None;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    Some((line, col))
}

/// The byte offset of the first character at or after `at` that is not white space or a comment.
pub(super) fn skip_blank(text: &str, mut at: usize) -> usize {
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("//") {
            at += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if trimmed.starts_with("/*") {
            // RON's block comments nest.
            let mut depth = 0usize;
            let mut i = 0;
            let bytes = trimmed.as_bytes();
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            at += i;
        } else {
            return at;
        }
    }
}

/// A description of the token `rest` starts with, and its length in bytes.
fn describe(rest: &str) -> (String, usize) {
    let Some(first) = rest.chars().next() else {
        return ("the end of the file".into(), 0);
    };
    let quoted = |s: &str| -> String {
        let mut shown: String = s.chars().take(MAX_QUOTED).collect();
        if s.chars().count() > MAX_QUOTED {
            shown.push_str("...");
        }
        shown
    };
    if first == '"' {
        return match string_end(rest, 0) {
            Some(end) => (format!("the string \"{}\"", quoted(&rest[1..end - 1])), end),
            None => (
                "a string that is never closed (a `\"` is missing)".into(),
                1,
            ),
        };
    }
    if let Some(hashes) = rest
        .strip_prefix('r')
        .map(|r| r.len() - r.trim_start_matches('#').len())
        && rest[1 + hashes..].starts_with('"')
    {
        let close = format!("\"{}", "#".repeat(hashes));
        let body = 2 + hashes;
        return match rest[body..].find(&close) {
            Some(i) => (
                format!("the string \"{}\"", quoted(&rest[body..body + i])),
                body + i + close.len(),
            ),
            None => ("a raw string that is never closed".into(), 1),
        };
    }
    if first == '\'' {
        let len = rest[1..]
            .find('\'')
            .map_or(1, |i| i + 2)
            .min(rest.find('\n').unwrap_or(rest.len()));
        return (format!("the character {}", &rest[..len]), len);
    }
    let word_len = |s: &str| {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(s.len())
    };
    let signed = (first == '-' || first == '+')
        && rest[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if first.is_ascii_digit()
        || signed
        || (first == '.' && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        let sign = usize::from(signed);
        let mut len = sign + word_len(&rest[sign..]);
        // An exponent's sign (`1e-3`) belongs to the number.
        if rest[..len].ends_with(['e', 'E'])
            && !rest[..len].starts_with("0x")
            && rest[len..].starts_with(['-', '+'])
        {
            len += 1 + word_len(&rest[len + 1..]);
        }
        let token = &rest[..len];
        return if is_number(&token[sign..]) {
            (format!("the number {token}"), len)
        } else {
            (
                format!("`{}`, which is neither a number nor quoted", quoted(token)),
                len,
            )
        };
    }
    if first.is_alphabetic() || first == '_' {
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let what = match word {
            "true" | "false" => format!("`{word}`"),
            _ if rest[len..].trim_start().starts_with('(') => format!("`{word}(...)`"),
            _ => format!("the identifier `{}`", quoted(word)),
        };
        return (what, len);
    }
    let what = match first {
        '(' => "`(`".to_owned(),
        '[' => "`[`, a list".to_owned(),
        '{' => "`{`, a map".to_owned(),
        c if c.is_control() => format!("the control character {c:?}"),
        c => format!("`{c}`"),
    };
    (what, first.len_utf8())
}

/// The byte offset just past the string that starts (with `"`) at `open` in `text`, escapes honoured.
pub(super) fn string_end(text: &str, open: usize) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text[open + 1..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(open + 1 + i + 1),
            _ => {}
        }
    }
    None
}

/// Whether `token` (without a sign) is written as a RON number: digits with `_`, a fraction, an
/// exponent, or `0x`/`0o`/`0b` digits.
fn is_number(token: &str) -> bool {
    let digits = token.replace('_', "");
    if let Some(radix) = ["0x", "0o", "0b"].iter().find(|p| digits.starts_with(**p)) {
        let base = match *radix {
            "0x" => 16,
            "0o" => 8,
            _ => 2,
        };
        return digits.len() > 2 && digits[2..].chars().all(|c| c.is_digit(base));
    }
    digits.parse::<f64>().is_ok() && !digits.contains(['i', 'n', 'I', 'N'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, col: usize) -> String {
        found_at(text, (1, col)).unwrap().what
    }

    #[test]
    fn what_is_found_is_read_from_the_source() {
        let table: &[(&str, &str)] = &[
            (r#" "ten", duration"#, r#"the string "ten""#),
            (r#" "a \" quote""#, r#"the string "a \" quote""#),
            (" 12.5)", "the number 12.5"),
            (" -5,", "the number -5"),
            (" 1e-3,", "the number 1e-3"),
            (" 0x1F,", "the number 0x1F"),
            (" 1_000,", "the number 1_000"),
            (" 30s,", "`30s`, which is neither a number nor quoted"),
            (" ten,", "the identifier `ten`"),
            (" true,", "`true`"),
            (" Closed(users: 1)", "`Closed(...)`"),
            (" (x: 1)", "`(`"),
            (" [1, 2]", "`[`, a list"),
            (" {\"a\": 1}", "`{`, a map"),
            (" )", "`)`"),
            (" 'x'", "the character 'x'"),
            (r##" r#"raw"#"##, r#"the string "raw""#),
            (
                " \"never closed",
                "a string that is never closed (a `\"` is missing)",
            ),
            ("   ", "the end of the file"),
            (
                " // a comment\n /* and /* nested */ one */ 7",
                "the number 7",
            ),
        ];
        for (text, want) in table {
            assert_eq!(found(text, 1), *want, "{text:?}");
        }
        let long = format!(" \"{}\"", "x".repeat(40));
        assert_eq!(
            found(&long, 1),
            format!("the string \"{}...\"", "x".repeat(32))
        );
    }

    #[test]
    fn found_underlines_through_the_token_on_its_line() {
        let text = "(\n  users: \"ten\",\n  x: // c\n  5)";
        // From the space before `"ten"` (2:9) through its closing quote.
        let f = found_at(text, (2, 9)).unwrap();
        assert_eq!(f.what, "the string \"ten\"");
        assert_eq!(f.width, Some(6));
        // The token is on a later line: no underline to extend.
        assert_eq!(found_at(text, (3, 5)).unwrap().width, None);
        assert_eq!(found_at(text, (9, 1)), None);
        // A column past the line's end reads on from the line break.
        assert_eq!(found_at(text, (2, 99)).unwrap().what, "the identifier `x`");
    }

    #[test]
    fn token_start_skips_the_blank_before_a_value() {
        let text = "(\n  users:  \"ten\",\n  x: // c\n  5)\n";
        assert_eq!(token_start(text, (2, 9)), (2, 11));
        // Already on the value: unchanged.
        assert_eq!(token_start(text, (2, 11)), (2, 11));
        // The value on a later line, after a comment, or after the line's end.
        assert_eq!(token_start(text, (3, 5)), (4, 3));
        assert_eq!(token_start(text, (3, 99)), (4, 3));
        // Inside a string, where a duration's or size's error is placed: unchanged.
        assert_eq!(token_start("(d: \" 10s\")", (1, 6)), (1, 6));
        // Nothing but blank to the end, or no such line: unchanged.
        assert_eq!(token_start(text, (4, 5)), (4, 5));
        assert_eq!(token_start(text, (9, 1)), (9, 1));
    }

    #[test]
    fn excerpt_puts_the_caret_under_the_column() {
        let text = "(\n\tusers: \"ten\",\n)";
        let e = Excerpt::new(text, (2, 8), 6).unwrap();
        assert_eq!(
            e.to_string(),
            "  |\n2 |  users: \"ten\",\n  |        ^^^^^^"
        );
        let wide = Excerpt::new(&"\n".repeat(11), (10, 1), 1).unwrap();
        assert_eq!(wide.to_string(), "   |\n10 |\n   | ^");
        assert_eq!(Excerpt::new(text, (4, 1), 1), None);
    }

    /// Wide characters before the column take two columns of the caret line, as on a terminal.
    #[test]
    fn wide_characters_keep_the_caret_under_the_column() {
        let text = r#"(name: "負荷", users: "ten")"#;
        let e = Excerpt::new(text, (1, 21), 1).unwrap().to_string();
        let rows: Vec<&str> = e.lines().collect();
        // Under `"ten"`: 20 characters before it, two of them two columns wide.
        assert_eq!(rows[2], format!("  | {}^", " ".repeat(22)), "{e}");
        assert_eq!(&rows[1][4..], text);
    }

    #[test]
    fn long_lines_show_a_window_around_the_column() {
        let line = format!("{}users: \"ten\"{}", "a".repeat(150), "b".repeat(150));
        let e = Excerpt::new(&line, (1, 151), 5).unwrap();
        let shown = e.to_string();
        let rows: Vec<&str> = shown.lines().collect();
        assert!(
            rows[1].starts_with("1 | ...") && rows[1].ends_with("..."),
            "{shown}"
        );
        assert!(rows[1].chars().count() < 120, "{shown}");
        let caret = rows[2].find('^').unwrap();
        assert_eq!(&rows[1][caret..caret + 5], "users", "{shown}");
        assert_eq!(rows[2].matches('^').count(), 5);
        // A caret at the end of a long line stays within the window.
        let end = Excerpt::new(&line, (1, 313), 9).unwrap().to_string();
        assert_eq!(end.lines().nth(2).unwrap().matches('^').count(), 1, "{end}");
    }
}
