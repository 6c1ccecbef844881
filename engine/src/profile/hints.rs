//! Hints for the mistakes new users make, added to the parser's messages: other tools' words for a
//! field, a field written at the wrong level, an example for a missing field, and the quoted form
//! of durations, sizes and names.

/// Other load-testing tools' words (Locust, k6, Gatling, JMeter, vegeta) for a field, and the field
/// meant. A word may mean different fields in different places; the one valid where it was written
/// is taken.
const SYNONYMS: &[(&str, &str)] = &[
    ("scenarios", "users"),
    ("scenario", "users"),
    ("user_kinds", "users"),
    ("vus", "users"),
    ("virtual_users", "users"),
    ("threads", "users"),
    ("concurrency", "users"),
    ("hatch_rate", "spawn_rate"),
    ("run_time", "duration"),
    ("runtime", "duration"),
    ("time", "duration"),
    ("rps", "rate"),
    ("qps", "rate"),
    ("arrival_rate", "rate"),
    ("requests_per_second", "rate"),
    ("think_time", "wait"),
    ("wait_time", "wait"),
    ("sleep", "wait"),
    ("pause", "wait"),
    ("url", "path"),
    ("uri", "path"),
    ("endpoint", "path"),
    ("url", "host"),
    ("base_url", "host"),
    ("baseurl", "host"),
    ("target", "host"),
    ("verb", "method"),
    ("status", "expect_status"),
    ("expected_status", "expect_status"),
    ("data", "body"),
    ("payload", "body"),
    ("json", "body"),
];

/// Other tools' names for a variant (k6's executors, Gatling's injection profiles, Locust's wait
/// functions), case and `-`/`_` aside, and the variant meant.
const VARIANT_SYNONYMS: &[(&str, &str)] = &[
    ("constantvus", "Closed"),
    ("constantusers", "Closed"),
    ("rampingvus", "Stages"),
    ("rampusers", "Stages"),
    ("constantarrivalrate", "Open"),
    ("constantuserspersec", "Open"),
    ("arrivalrate", "Open"),
    ("rampingarrivalrate", "RampingRate"),
    ("rampuserspersec", "RampingRate"),
    ("constantpacing", "Pacing"),
    ("constantthroughput", "Pacing"),
];

/// A hint for an unknown variant `found` whose valid variants are `expected`: the variant another
/// tool's word means.
pub(super) fn unknown_variant(found: &str, expected: &[&str]) -> Option<String> {
    let key: String = found
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    VARIANT_SYNONYMS
        .iter()
        .find(|(word, meant)| *word == key && expected.contains(meant))
        .map(|(_, meant)| format!("; did you mean `{meant}`, Stampede's name for `{found}`?"))
}

/// Fields that are valid elsewhere in a profile, and where they go.
const HOMES: &[(&str, &str)] = &[
    (
        "feeder",
        r#"a user kind: `users: [(feeder: "accounts", tasks: [...])]`"#,
    ),
    (
        "on_start",
        "a user kind: `users: [(on_start: [...], tasks: [...])]`",
    ),
    (
        "on_stop",
        "a user kind: `users: [(on_stop: [...], tasks: [...])]`",
    ),
    (
        "cookies",
        "a user kind: `users: [(cookies: false, tasks: [...])]`",
    ),
    ("variables", "the profile or a user kind"),
    ("iterations", "the load model or a user kind"),
    (
        "rate",
        r#"an open load model: `load: Open(rate: 100.0, duration: "1m")`"#,
    ),
    (
        "duration",
        r#"a `Closed` or `Open` load model: `load: Closed(users: 10, duration: "1m")`"#,
    ),
    (
        "spawn_rate",
        r#"a closed load model: `load: Closed(users: 10, spawn_rate: 5.0, duration: "1m")`"#,
    ),
    ("stages", "the load model: `load: Stages(stages: [...])`"),
    ("path", r#"a request: `requests: [(path: "/")]`"#),
    (
        "method",
        r#"a request: `requests: [(method: POST, path: "/")]`"#,
    ),
    (
        "body",
        r#"a request: `requests: [(method: POST, path: "/", body: ...)]`"#,
    ),
    (
        "checks",
        r#"a request: `requests: [(path: "/", checks: [...])]`"#,
    ),
    (
        "extract",
        r#"a request: `requests: [(path: "/", extract: {...})]`"#,
    ),
    (
        "expect_status",
        r#"a request: `requests: [(path: "/", expect_status: [200])]`"#,
    ),
    (
        "connect_timeout",
        r#"`http`: `http: (connect_timeout: "5s")`"#,
    ),
    (
        "request_timeout",
        r#"`http`: `http: (request_timeout: "30s")`"#,
    ),
    ("max_body", r#"`http`: `http: (max_body: "1MiB")`"#),
    ("host", "the profile, or an environment"),
];

/// What to write for a field that is missing, by the field's name (and the struct it is in, where
/// the same name means different things).
fn example(field: &str, outer: Option<&str>) -> Option<&'static str> {
    Some(match (field, outer) {
        ("name", Some("Profile")) => r#"name: "checkout""#,
        ("users", Some("Profile")) => r#"users: [(tasks: [(requests: [(path: "/")])])]"#,
        ("users", _) => "users: 10",
        ("tasks", _) => r#"tasks: [(requests: [(path: "/")])]"#,
        ("path", _) => r#"path: "/""#,
        ("duration", _) => r#"duration: "1m""#,
        ("rate", _) => "rate: 100.0",
        ("over", _) => r#"over: "30s""#,
        ("to", _) => "to: 100.0",
        ("file", _) => r#"file: "data/users.csv""#,
        ("send", _) => r#"send: "ping\n""#,
        _ => return None,
    })
}

/// A hint for an unknown field `found` in `outer`, whose valid fields are `expected`: the field
/// another tool's word means, or where a field valid elsewhere belongs.
pub(super) fn unknown_field(found: &str, expected: &[&str]) -> Option<String> {
    let lower = found.to_ascii_lowercase();
    if let Some((_, meant)) = SYNONYMS
        .iter()
        .find(|(word, meant)| *word == lower && expected.contains(meant))
    {
        return Some(format!(
            "; did you mean `{meant}`, Stampede's name for `{found}`?"
        ));
    }
    HOMES
        .iter()
        .find(|(field, _)| *field == found && !expected.contains(field))
        .map(|(_, home)| format!(": `{found}` belongs in {home}"))
}

/// An example to add for a missing field, e.g. `` , e.g. `path: "/"` ``.
pub(super) fn missing_field(field: &str, outer: Option<&str>) -> String {
    example(field, outer)
        .map(|e| format!(", e.g. `{e}`"))
        .unwrap_or_default()
}

/// Fields whose values are durations, by the last name in their path.
const DURATIONS: &[&str] = &[
    "duration",
    "over",
    "timeout",
    "connect_timeout",
    "request_timeout",
    "every",
    "hold",
    "within",
    "reply_within",
    "ttl",
    "refresh_before",
    "Constant",
    "Between",
    "Pacing",
    "Pause",
    "latency_mix",
];

/// A hint for a string that was expected where `found` was written, at field path `field`: the
/// quoted form of a duration or a size.
pub(super) fn expected_string(field: &str, found: &str) -> Option<String> {
    if !found.starts_with("the number") {
        return None;
    }
    let last = field
        .rsplit('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .find(|s| !s.is_empty())?;
    if DURATIONS.contains(&last) {
        Some(r#"; a duration is quoted, with its unit: e.g. "10s" or "250ms""#.into())
    } else if last == "max_body" {
        Some(r#"; a size is quoted, with its unit: e.g. "1MiB" or "512KiB""#.into())
    } else if in_string_map(field) {
        // Query parameters, headers and variables are text on the wire; a number is written as
        // text too (k6 and Locust take numbers there).
        let number = found.strip_prefix("the number ")?;
        Some(format!(r#"; write it in quotes, "{number}""#))
    } else {
        None
    }
}

/// Whether `field` is an entry of a map whose values are strings: `query.page`, `headers.X-Id`,
/// `variables.item`, `Form.qty`.
fn in_string_map(field: &str) -> bool {
    let mut segments = field.rsplit('.');
    segments.next();
    segments.next().is_some_and(|parent| {
        matches!(
            parent.split('[').next(),
            Some("query" | "headers" | "variables" | "secrets" | "Form")
        )
    })
}

/// The names (enum variants) a field takes, by the last name in its path, what one of its values
/// is called, and how its values are written, for a string written where a name was expected. `{}`
/// in a form is replaced by the string that was written.
const NAMES: &[(&str, &[&str], &str, &str)] = &[
    (
        "method",
        &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
        "",
        "",
    ),
    (
        "wait",
        &["None", "Constant", "Between", "Pacing"],
        "a think time",
        r#"`Constant("{}")`, `Between("1s", "3s")`, `Pacing("2s")` or `None`"#,
    ),
    (
        "load",
        &["Closed", "Stages", "Open", "RampingRate"],
        "a load model",
        r#"`Closed(users: 10, duration: "1m")` or `Open(rate: 100.0, duration: "1m")`"#,
    ),
    (
        "body",
        &["Text", "Json", "Form"],
        "a body",
        r#"`Text("{}")`, `Json({"key": "value"})` or `Form({"key": "value"})`"#,
    ),
    (
        "checks",
        &[
            "Status",
            "BodyContains",
            "BodyMatches",
            "JsonEquals",
            "JsonExists",
            "HeaderPresent",
            "HeaderEquals",
            "HeaderContains",
            "LatencyUnder",
            "Not",
        ],
        "a check",
        r#"`BodyContains("{}")`, `Status([200])`, `JsonExists("/id")`, …"#,
    ),
    (
        "extract",
        &["Json", "Regex", "Header", "Cookie", "Status", "Optional"],
        "an extraction",
        r#"`Json("/id")`, `Regex("id=(\\d+)")`, `Header("X-Id")`, `Cookie("session")` or `Status`"#,
    ),
    (
        "auth",
        &["Off", "Basic", "Bearer", "Jwt", "OAuth2"],
        "an `auth`",
        r#"`Bearer("{}")`, `Basic(user: "u", password: "p")` or `Off`"#,
    ),
    (
        "read",
        &["Until", "Bytes", "Match"],
        "a `read`",
        r#"`Until("{}")`, `Bytes(4)` or `Match("...")`"#,
    ),
    (
        "receive",
        &["Reply", "Messages", "Match"],
        "a `receive`",
        r#"`Reply`, `Messages(2)` or `Match("{}")`"#,
    ),
    (
        "order",
        &["Sequential", "Circular", "Random", "Unique"],
        "",
        "",
    ),
    ("on_exhausted", &["Stop", "Recycle"], "", ""),
    ("format", &["Csv", "JsonLines"], "", ""),
];

/// A hint for a string written where a name (an enum variant such as `POST` or `Closed`) was
/// expected, at field path `field`: the name without quotes when the string is one (in any case),
/// else how the field's values are written. Telling a user to unquote a string that is not a name
/// (`wait: "1s"`, `body: "hello"`) would lead to a second error, so that hint is kept for names.
pub(super) fn expected_name(field: &str, string: Option<&str>) -> Option<String> {
    let s = string?;
    let segments: Vec<&str> = field
        .split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .filter(|s| !s.is_empty())
        .collect();
    // An extraction's value sits under the variable it extracts into: `extract.token`.
    let last = match segments.as_slice() {
        [.., "extract", _] => "extract",
        [.., last] => last,
        [] => "",
    };
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let Some((_, names, what, form)) = NAMES.iter().find(|(name, ..)| *name == last) else {
        // A field this table does not know: a name looks like one (`Closed`, `POST`).
        let name = plain && s.starts_with(|c: char| c.is_ascii_uppercase());
        return name.then(|| format!(": write it without quotes, `{s}`"));
    };
    if let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(s)) {
        return Some(format!(": write it without quotes, `{name}`"));
    }
    if form.is_empty() {
        let names = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Some(format!("; it is one of {names}, without quotes"));
    }
    // The string is put into the example only where it fits on a line.
    let shown = if s.chars().count() <= 30 { s } else { "..." };
    Some(format!("; {what} is written {}", form.replace("{}", shown)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_tools_words_name_the_field_valid_here() {
        let profile = ["name", "host", "load", "users"];
        let request = ["method", "path", "body"];
        assert_eq!(
            unknown_field("scenarios", &profile).as_deref(),
            Some("; did you mean `users`, Stampede's name for `scenarios`?")
        );
        // `url` is the path in a request and the host at the top.
        assert!(unknown_field("url", &request).unwrap().contains("`path`"));
        assert!(unknown_field("URL", &profile).unwrap().contains("`host`"));
        assert_eq!(unknown_field("zzz", &profile), None);
    }

    #[test]
    fn other_tools_load_models_name_the_variant() {
        let load = ["Closed", "Stages", "Open", "RampingRate"];
        assert_eq!(
            unknown_variant("ConstantArrivalRate", &load).as_deref(),
            Some("; did you mean `Open`, Stampede's name for `ConstantArrivalRate`?")
        );
        assert!(
            unknown_variant("ramping_vus", &load)
                .unwrap()
                .contains("`Stages`")
        );
        // A word is only a hint where the variant it means is valid.
        assert_eq!(
            unknown_variant("ConstantArrivalRate", &["None", "Between"]),
            None
        );
        assert_eq!(unknown_variant("Soak", &load), None);
    }

    #[test]
    fn fields_valid_elsewhere_say_where_they_go() {
        let task = ["name", "weight", "requests", "tasks"];
        assert_eq!(
            unknown_field("feeder", &task).as_deref(),
            Some(
                r#": `feeder` belongs in a user kind: `users: [(feeder: "accounts", tasks: [...])]`"#
            )
        );
        // A field that is valid where it was written is no hint (its error is another).
        assert_eq!(unknown_field("name", &task), None);
    }

    #[test]
    fn quoted_forms() {
        assert!(
            expected_string("load.Closed.duration", "the number 10")
                .unwrap()
                .contains(r#""10s""#)
        );
        assert!(expected_string("users[0].wait.Between[0]", "the number 50").is_some());
        assert!(
            expected_string("http.max_body", "the number 1024")
                .unwrap()
                .contains("1MiB")
        );
        assert_eq!(expected_string("name", "the number 5"), None);
        assert_eq!(
            expected_string("users[0].tasks[0].requests[0].query.page", "the number 2").as_deref(),
            Some(r#"; write it in quotes, "2""#)
        );
        assert!(expected_string("headers.X-Id", "the number 7").is_some());
        assert_eq!(expected_string("headers.X-Id", "`true`"), None);
        assert_eq!(
            expected_string("load.Closed.duration", "the identifier `x`"),
            None
        );
        assert_eq!(
            expected_name("users[0].tasks[0].requests[0].method", Some("post")).as_deref(),
            Some(": write it without quotes, `POST`")
        );
        assert_eq!(expected_name("somewhere", Some("A b")), None);
        assert!(expected_name("somewhere", Some("Closed")).is_some());
        assert_eq!(expected_name("somewhere", Some("hello")), None);
    }

    /// A string that is not one of the field's names is not to be unquoted: the hint shows how the
    /// field is written instead, with the string in it where it belongs.
    #[test]
    fn strings_that_are_not_names_get_the_written_form() {
        assert_eq!(
            expected_name("users[0].wait", Some("1s")).as_deref(),
            Some(
                r#"; a think time is written `Constant("1s")`, `Between("1s", "3s")`, `Pacing("2s")` or `None`"#
            )
        );
        assert_eq!(
            expected_name("users[0].wait", Some("none")).as_deref(),
            Some(": write it without quotes, `None`")
        );
        assert!(
            expected_name("users[0].tasks[0].requests[0].body", Some("hello"))
                .unwrap()
                .contains(r#"`Text("hello")`"#)
        );
        assert!(
            expected_name(
                "users[0].tasks[0].requests[0].extract.token",
                Some("/token")
            )
            .unwrap()
            .contains(r#"`Json("/id")`"#)
        );
        assert!(
            expected_name("feeders.accounts.order", Some("shuffle"))
                .unwrap()
                .contains("`Random`")
        );
        let long = "x".repeat(31);
        assert!(
            expected_name("users[0].tasks[0].requests[0].body", Some(&long))
                .unwrap()
                .contains(r#"`Text("...")`"#)
        );
        assert_eq!(
            missing_field("path", Some("Request")),
            r#", e.g. `path: "/"`"#
        );
        assert_eq!(missing_field("weight", Some("Task")), "");
    }
}
