//! RON text to [`ProfileSpec`], turning every parse error into a located [`ProfileError`].

use std::path::{Path, PathBuf};

use ron::extensions::Extensions;
use serde::de::DeserializeOwned;

use super::excerpt::{Excerpt, Found, found_at, token_start};
use super::spec::{FragmentSpec, ProfileSpec};
use super::{ProfileError, hints, locate, locate_in_sources, suggest, validate};

/// How deeply fragments may include fragments.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Reads and checks a profile file.
pub fn load_file(path: &Path) -> Result<ProfileSpec, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: path.to_owned(),
        position: None,
        field: String::new(),
        message: format!("cannot read the profile: {e}"),
        excerpt: None,
    })?;
    load_str(&text, path)
}

/// Parses and checks profile text; `file` names it in error messages, and fragments it includes are
/// found relative to it.
pub fn load_str(text: &str, file: &Path) -> Result<ProfileSpec, ProfileError> {
    let mut spec: ProfileSpec = parse(text, file)?;
    spec.sources.push((file.to_owned(), text.to_owned()));
    let includes = std::mem::take(&mut spec.include);
    let mut chain = vec![file.to_owned()];
    for inc in &includes {
        let fragment = load_fragment(inc, file, text, &mut chain, &mut spec.sources)?;
        merge(&mut spec, fragment);
    }
    validate::check(&spec).map_err(|(field, message)| {
        // A user kind from a fragment is shown in the fragment.
        let located = locate_in_sources(&spec.sources, &field);
        let (source, text) = located.map_or((file, text), |(i, ..)| {
            (spec.sources[i].0.as_path(), spec.sources[i].1.as_str())
        });
        ProfileError {
            file: source.to_owned(),
            position: located.map(|(_, at, _)| at),
            excerpt: located.and_then(|(_, at, width)| Excerpt::new(text, at, width).map(Box::new)),
            field,
            message,
        }
    })?;
    Ok(spec)
}

/// Reads fragment `name` (relative to `from`), with the fragments it includes merged into it.
fn load_fragment(
    name: &str,
    from: &Path,
    from_text: &str,
    chain: &mut Vec<PathBuf>,
    sources: &mut Vec<(PathBuf, String)>,
) -> Result<FragmentSpec, ProfileError> {
    let path = from.parent().unwrap_or(Path::new("")).join(name);
    let quoted = format!("{name:?}");
    let position = locate(from_text, &quoted);
    let at = |message: String| ProfileError {
        file: from.to_owned(),
        position,
        field: "include".into(),
        message,
        excerpt: position
            .and_then(|p| Excerpt::new(from_text, p, quoted.chars().count()))
            .map(Box::new),
    };
    let key = path.canonicalize().unwrap_or_else(|_| path.clone());
    if chain
        .iter()
        .any(|p| p.canonicalize().unwrap_or_else(|_| p.clone()) == key)
    {
        return Err(at(format!(
            "{} includes itself (through {}); remove one of the includes",
            path.display(),
            chain
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" -> ")
        )));
    }
    if chain.len() > MAX_INCLUDE_DEPTH {
        return Err(at(format!(
            "fragments nest more than {MAX_INCLUDE_DEPTH} deep; flatten them"
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| at(format!("cannot read the fragment {}: {e}", path.display())))?;
    let mut fragment: FragmentSpec = parse(&text, &path)?;
    sources.push((path.clone(), text.clone()));
    chain.push(path.clone());
    for inc in std::mem::take(&mut fragment.include) {
        let inner = load_fragment(&inc, &path, &text, chain, sources)?;
        merge_fragment(&mut fragment, inner);
    }
    chain.pop();
    Ok(fragment)
}

/// Adds `fragment` under `spec`: the profile's own entries win; users are appended.
fn merge(spec: &mut ProfileSpec, fragment: FragmentSpec) {
    under(&mut spec.headers, fragment.headers);
    under(&mut spec.variables, fragment.variables);
    under(&mut spec.secrets, fragment.secrets);
    under(&mut spec.feeders, fragment.feeders);
    for (name, env) in fragment.environments {
        match spec.environments.get_mut(&name) {
            Some(mine) => {
                if mine.host.is_none() {
                    mine.host = env.host;
                }
                under(&mut mine.headers, env.headers);
                under(&mut mine.variables, env.variables);
                under(&mut mine.secrets, env.secrets);
            }
            None => {
                spec.environments.insert(name, env);
            }
        }
    }
    if spec.auth.is_none() {
        spec.auth = fragment.auth;
    }
    spec.users.extend(fragment.users);
}

fn merge_fragment(outer: &mut FragmentSpec, inner: FragmentSpec) {
    under(&mut outer.headers, inner.headers);
    under(&mut outer.variables, inner.variables);
    under(&mut outer.secrets, inner.secrets);
    under(&mut outer.feeders, inner.feeders);
    for (name, env) in inner.environments {
        outer.environments.entry(name).or_insert(env);
    }
    if outer.auth.is_none() {
        outer.auth = inner.auth;
    }
    outer.users.extend(inner.users);
}

fn under<V>(
    mine: &mut std::collections::BTreeMap<String, V>,
    theirs: std::collections::BTreeMap<String, V>,
) {
    for (k, v) in theirs {
        mine.entry(k).or_insert(v);
    }
}

fn parse<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, ProfileError> {
    // `implicit_some` lets a profile write `spawn_rate: 10.0` rather than `spawn_rate: Some(10.0)`;
    // `unwrap_variant_newtypes` lets a flow write `Request(path: "/")` rather than
    // `Request((path: "/"))`.
    let options = ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES);
    let located = |e: ron::error::SpannedError, field: String| {
        // ron places some errors (a value of the wrong type) just after the `:`, before the blank
        // that precedes the value; the column and the caret belong to the value itself.
        let position = token_start(text, (e.span.start.line, e.span.start.col));
        // What was written there: underlined in every case, and named in the message where ron's
        // says only what it expected.
        let found = found_at(text, position);
        let width = string_from(text, position)
            .or_else(|| found.as_ref().and_then(|f| f.width))
            .unwrap_or(1);
        let path = field.clone();
        ProfileError {
            file: file.to_owned(),
            position: Some(position),
            field,
            message: explain(&e.code, found.as_ref().filter(|_| expects(&e.code)), &path),
            excerpt: Excerpt::new(text, position, width).map(Box::new),
        }
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
            if let Some(form) = written_form(&error.field) {
                error.message = format!("{}; the form is `{form}`", error.message);
            }
            Err(error)
        }
    }
}

/// How many characters of a string's text follow `position` when the position is just inside the
/// string's opening quote, where ron places the errors of values read from strings (durations,
/// sizes); `None` elsewhere.
fn string_from(text: &str, (line, col): (usize, usize)) -> Option<usize> {
    let before = text.split('\n').nth(line.checked_sub(1)?)?;
    if before.chars().nth(col.checked_sub(2)?)? != '"' {
        return None;
    }
    let string = found_at(text, (line, col - 1))?.string?;
    Some(string.chars().count().max(1))
}

/// How a load model (or a wait) is written, for errors at the level of the model itself (such as
/// `Stages([...])` without the `stages:` field name, or `Between("1s")` with one duration).
fn written_form(field: &str) -> Option<&'static str> {
    Some(match field {
        "load.Closed" => r#"Closed(users: 10, spawn_rate: 5.0, duration: "1m")"#,
        "load.Stages" => r#"Stages(stages: [(users: 10, over: "30s"), (users: 10, over: "1m")])"#,
        "load.Open" => r#"Open(rate: 100.0, duration: "1m", max_users: 1000)"#,
        "load.RampingRate" => r#"RampingRate(start_rate: 0, stages: [(to: 100.0, over: "1m")])"#,
        f if f.ends_with("wait.Between") => r#"Between("1s", "3s")"#,
        f if f.ends_with("wait.Constant") => r#"Constant("1s")"#,
        f if f.ends_with("wait.Pacing") => r#"Pacing("2s")"#,
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

/// What ron expected, for the errors whose own message says only that; `None` for the others.
fn expected(code: &ron::Error) -> Option<String> {
    use ron::Error as E;
    Some(match code {
        E::ExpectedArray => "expected a list `[...]`".into(),
        E::ExpectedArrayEnd => "expected `,` or the `]` that ends the list".into(),
        E::ExpectedMapEnd => "expected `,` or the `}` that ends the map".into(),
        E::ExpectedStructLikeEnd => "expected `,` or the `)` that ends the fields".into(),
        E::ExpectedOptionEnd => "expected the `)` that ends `Some(...)`".into(),
        E::ExpectedBoolean => "expected `true` or `false`".into(),
        E::ExpectedComma => "expected `,`".into(),
        E::ExpectedChar => "expected a character in single quotes, e.g. 'a'".into(),
        E::ExpectedFloat => "expected a number, e.g. 10.0".into(),
        E::ExpectedInteger => "expected an integer".into(),
        E::ExpectedOption => "expected a value, or `None`".into(),
        E::ExpectedMap => r#"expected a map `{"key": value}`"#.into(),
        E::ExpectedMapColon => "expected `:` after the map key".into(),
        E::ExpectedStructLike => "expected opening `(`".into(),
        E::ExpectedNamedStructLike("") => "expected opening `(`".into(),
        E::ExpectedNamedStructLike(name) => format!("expected opening `(` for struct `{name}`"),
        E::ExpectedStructName(name) => format!("expected the struct name `{name}`"),
        E::ExpectedUnit => "expected `()`".into(),
        E::ExpectedString => "expected a string in double quotes".into(),
        E::ExpectedByteString => "expected a byte string, e.g. b\"abc\"".into(),
        E::ExpectedStringEnd => "expected the `\"` that ends the string".into(),
        E::ExpectedIdentifier => "expected a name".into(),
        E::TrailingCharacters => "expected nothing more after the profile's closing `)`".into(),
        _ => return None,
    })
}

/// Whether ron's message for `code` says what was expected and not what was found.
fn expects(code: &ron::Error) -> bool {
    expected(code).is_some()
}

/// A message for a RON error that says what would have been valid, and, where ron's own says only
/// what it expected, what `found` was written there.
fn explain(code: &ron::Error, found: Option<&Found>, field: &str) -> String {
    use ron::Error as E;
    if let Some(expected) = expected(code) {
        let Some(found) = found else {
            return expected;
        };
        let hint = match code {
            // `users: 10.5` reads as the integer 10 followed by `.5` where a `,` should be.
            E::ExpectedComma if found.what.starts_with("the number .") => Some(
                ": the number before it is a count, which is a whole number (no decimal point)"
                    .into(),
            ),
            E::ExpectedString => hints::expected_string(field, &found.what),
            E::ExpectedIdentifier => hints::expected_name(field, found.string.as_deref()),
            _ => None,
        };
        return format!(
            "{expected}, found {}{}",
            found.what,
            hint.unwrap_or_default()
        );
    }
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
                None => hints::unknown_field(found, expected).unwrap_or_default(),
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
                None => hints::unknown_variant(found, expected).unwrap_or_default(),
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
            let example = hints::missing_field(field, outer.as_deref());
            format!("missing field `{field}`{place}: add it{example}")
        }
        E::DuplicateStructField { field, .. } => {
            format!("field `{field}` is given twice: keep one")
        }
        E::IntegerOutOfBounds => {
            "this number is out of range for the field: counts and sizes are whole numbers, zero or \
             more (no minus sign), small enough for the field"
                .into()
        }
        E::InvalidValueForType { expected, found } => format!("expected {expected}, found {found}"),
        E::ExpectedDifferentLength { expected, found } => {
            let found = match found {
                0 => "none".to_owned(),
                1 => "one".to_owned(),
                n => n.to_string(),
            };
            // ron names the Rust type (`WaitSpec::Between`); the profile calls it `Between`.
            let expected = expected
                .split(' ')
                .map(|w| w.rsplit("::").next().unwrap_or(w))
                .collect::<Vec<_>>()
                .join(" ");
            format!("expected {expected}, found {found}")
        }
        E::Eof => "the file ends too early: a closing `)`, `]` or `}`, or a value, is missing".into(),
        other => other.to_string(),
    }
}
