//! The self-contained HTML report: inline CSS, inline SVG charts, a few lines of inline JavaScript
//! for sorting tables, no external resource of any kind.

use crate::error::Result;
use crate::view::ReportView;

/// Renders the HTML report.
pub fn render(view: &ReportView) -> Result<String> {
    super::render("report.html.j2", view)
}
