//! RON text to [`ProfileSpec`], turning every parse error into a located [`ProfileError`].

use std::path::Path;

use ron::extensions::Extensions;

use super::spec::ProfileSpec;
use super::{ProfileError, suggest, validate};

/// Reads and checks a profile file.
pub fn load_file(path: &Path) -> Result<ProfileSpec, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: path.to_owned(),
        position: None,
        field: String::new(),
        message: format!("cannot read the profile: {e}"),
    })?;
    load_str(&text, path)
}

/// Parses and checks profile text; `file` is only used in error messages.
pub fn load_str(text: &str, file: &Path) -> Result<ProfileSpec, ProfileError> {
    let spec = parse(text, file)?;
    validate::check(&spec).map_err(|(field, message)| ProfileError {
        file: file.to_owned(),
        position: None,
        field,
        message,
    })?;
    Ok(spec)
}

fn parse(text: &str, file: &Path) -> Result<ProfileSpec, ProfileError> {
    // `implicit_some` lets a profile write `spawn_rate: 10.0` rather than `spawn_rate: Some(10.0)`.
    let options = ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME);
    let located = |e: ron::error::SpannedError, field: String| ProfileError {
        file: file.to_owned(),
        position: Some((e.span.start.line, e.span.start.col)),
        field,
        message: explain(&e.code),
    };
    let mut de = ron::Deserializer::from_str_with_options(text, &options)
        .map_err(|e| located(e, String::new()))?;
    let result = serde_path_to_error::deserialize(&mut de);
    match result {
        Ok(spec) => {
            de.end()
                .map_err(|e| located(de.span_error(e), String::new()))?;
            Ok(spec)
        }
        Err(e) => {
            let field = tidy_path(&e.path().to_string());
            let inner = e.into_inner();
            let mut error = located(de.span_error(inner), field);
            if let Some(form) = load_form(&error.field) {
                error.message = format!("{}; the form is `{form}`", error.message);
            }
            Err(error)
        }
    }
}

/// How a load model is written, for errors at the level of the model itself (such as
/// `Stages([...])` without the `stages:` field name).
fn load_form(field: &str) -> Option<&'static str> {
    Some(match field {
        "load.Closed" => r#"Closed(users: 10, spawn_rate: 5.0, duration: "1m")"#,
        "load.Stages" => r#"Stages(stages: [(users: 10, over: "30s"), (users: 10, over: "1m")])"#,
        "load.Open" => r#"Open(rate: 100.0, duration: "1m", max_users: 1000)"#,
        "load.RampingRate" => r#"RampingRate(start_rate: 0, stages: [(to: 100.0, over: "1m")])"#,
        _ => return None,
    })
}

/// serde_path_to_error writes `?` for positions it cannot name and `.` at the root; neither helps.
fn tidy_path(path: &str) -> String {
    if path == "." || path == "?" {
        String::new()
    } else {
        path.replace(".?", "")
    }
}

/// A message for a RON error that says what would have been valid.
fn explain(code: &ron::Error) -> String {
    use ron::Error as E;
    let list = |expected: &[&str]| {
        expected
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match code {
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => {
            let place = outer
                .as_deref()
                .map(|o| format!(" in `{o}`"))
                .unwrap_or_default();
            let hint = match suggest(found, expected.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => String::new(),
            };
            format!(
                "unknown field `{found}`{place}{hint} (valid fields: {})",
                list(expected)
            )
        }
        E::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => {
            let place = outer
                .as_deref()
                .map(|o| format!(" for `{o}`"))
                .unwrap_or_default();
            let hint = match suggest(found, expected.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => String::new(),
            };
            format!(
                "unknown variant `{found}`{place}{hint} (valid: {})",
                list(expected)
            )
        }
        E::MissingStructField { field, outer } => {
            let place = outer
                .as_deref()
                .map(|o| format!(" in `{o}`"))
                .unwrap_or_default();
            format!("missing field `{field}`{place}: add it")
        }
        E::DuplicateStructField { field, .. } => {
            format!("field `{field}` is given twice: keep one")
        }
        other => other.to_string(),
    }
}
