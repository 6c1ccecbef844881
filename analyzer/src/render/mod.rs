//! Output formats: the HTML and Markdown reports render a [`crate::view::ReportView`] through
//! minijinja templates; the JSON report serializes the analysis directly (its schema is documented in
//! `docs/report-json.md`).

pub mod html;
pub mod json;
pub mod markdown;

use minijinja::Environment;

use crate::error::{Error, Result};
use crate::view::ReportView;

/// The templates, compiled into the binary so a report never depends on files next to it.
const TEMPLATES: [(&str, &str); 2] = [
    (
        "report.html.j2",
        include_str!("../../templates/report.html.j2"),
    ),
    ("report.md.j2", include_str!("../../templates/report.md.j2")),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // The default callback escapes `.html.j2` (HTML) and leaves `.md.j2` alone; the Markdown template
    // escapes with the `md` filter instead.
    env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("md", markdown::escape);
    env.add_filter("mdcode", markdown::escape_code);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("the built-in templates parse (checked by tests)");
    }
    env
}

fn render(name: &'static str, view: &ReportView) -> Result<String> {
    let env = environment();
    let template = env
        .get_template(name)
        .map_err(|source| Error::Template { name, source })?;
    template
        .render(view)
        .map_err(|source| Error::Template { name, source })
}
