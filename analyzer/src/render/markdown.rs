//! The Markdown report, for pull-request comments and CI step summaries: the same tables as the HTML,
//! without charts.

use crate::error::Result;
use crate::view::ReportView;

/// Renders the Markdown report.
pub fn render(view: &ReportView) -> Result<String> {
    super::render("report.md.j2", view)
}

/// Escapes text for a Markdown table cell or paragraph: HTML is neutralised (GitHub renders some raw
/// HTML), Markdown punctuation is backslash-escaped, and line breaks become spaces so a table stays one
/// row per line.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Makes text safe inside a Markdown code span: no backticks, no line breaks.
pub fn escape_code(text: &str) -> String {
    text.chars()
        .map(|c| if c == '`' || c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping_neutralises_html_and_tables() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(escape("a|b\nc"), "a\\|b c");
        assert_eq!(escape("*bold* _x_"), "\\*bold\\* \\_x\\_");
        assert_eq!(escape_code("a`b"), "a b");
    }
}
