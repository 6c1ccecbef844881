//! How the console writes things: failure reasons shortened, counts with separators, durations in
//! the unit that reads best, names clipped to a column.

/// A failure message as the console shows it: without the OS's error number, and `Connection
/// refused` as `connection refused` after a colon (`connect: connection refused`).
pub(crate) fn short_reason(message: &str) -> String {
    let mut text = message.trim();
    if let Some(i) = text.rfind(" (os error ")
        && text.ends_with(')')
    {
        text = &text[..i];
    }
    let mut out = String::with_capacity(text.len());
    let mut after_colon = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if after_colon
            && c.is_ascii_uppercase()
            && chars.peek().is_some_and(char::is_ascii_lowercase)
        {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        after_colon = c == ' ' && out.ends_with(": ");
    }
    out
}

/// `1,880`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `text` cut to `width` characters with `…`.
pub(super) fn clip(text: &str, width: usize) -> String {
    truncate(text, width)
}

pub(super) fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        s.chars().take(width - 1).chain(['…']).collect()
    }
}

/// `850µs`, `12.3ms`, `4.20s`.
pub(super) fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}
