//! What a trace (`engine try`) or a failure message shows of a rule: a line per rule, and values
//! quoted within a bound, secrets hidden.
/// What a trace (`engine try`) shows of a response's rules, filled only when a trace asks: each
/// extraction with the value it set, each check with its outcome and what it saw.
#[derive(Debug, Default)]
pub(crate) struct RuleTrace {
    pub lines: Vec<RuleLine>,
}

/// One rule's line in a [`RuleTrace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleLine {
    /// A check (else an extraction).
    pub check: bool,
    /// The rule as written.
    pub label: String,
    /// Whether it passed (an extraction: found its value); `None` when it did not run because an
    /// earlier rule ended the request.
    pub passed: Option<bool>,
    /// The value extracted, or what the check saw.
    pub detail: String,
    /// The value behind a `***` detail (an extraction into a variable whose name looks secret), so
    /// that the trace hides it wherever else it appears, such as the response body it came from.
    pub hidden_value: Option<String>,
}

/// How many characters of a value a failure message or a trace quotes.
pub(crate) const GOT_LIMIT: usize = 80;

/// Appends `bytes` as a quoted, escaped string of at most [`GOT_LIMIT`] characters (`"…"` marks a
/// cut), or `***` when `hidden`.
pub(crate) fn quote(bytes: &[u8], hidden: bool, out: &mut String) {
    if hidden {
        out.push_str(crate::plan::REDACTED);
        return;
    }
    out.push('"');
    // Enough bytes for GOT_LIMIT characters of any width: a large body is not converted whole.
    let cut = &bytes[..bytes.len().min(GOT_LIMIT * 4 + 4)];
    let text = String::from_utf8_lossy(cut);
    for (i, ch) in text.chars().enumerate() {
        if i == GOT_LIMIT {
            out.push('…');
            break;
        }
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}
