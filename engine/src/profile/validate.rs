//! Checks that span several fields, run after parsing. Errors name the field path; the parser has no
//! position for them.

use super::spec::{
    AuthSpec, CheckSpec, EmbeddedSpec, JwtAlgorithm, LoadSpec, ProfileSpec, RequestSpec, TaskSpec,
    WaitSpec,
};
use super::suggest;

mod flow;

type Problem = (String, String);

/// How deeply task groups may nest.
pub(crate) const MAX_TASK_DEPTH: usize = 16;

fn check_wait(wait: &WaitSpec, field: &str) -> Result<(), Problem> {
    match wait {
        WaitSpec::Between(min, max) if min.0 > max.0 => Err((
            field.into(),
            format!(
                "Between(min, max) needs min <= max, got {:?} > {:?}",
                min.0, max.0
            ),
        )),
        WaitSpec::Pacing(d) if d.0.is_zero() => Err((
            field.into(),
            "Pacing needs an interval longer than zero, e.g. Pacing(\"2s\")".into(),
        )),
        _ => Ok(()),
    }
}

fn check_task(task: &TaskSpec, at: &str, depth: usize) -> Result<(), Problem> {
    if depth > MAX_TASK_DEPTH {
        return Err((
            at.into(),
            format!("task groups nest more than {MAX_TASK_DEPTH} deep; flatten them"),
        ));
    }
    let given = [
        !task.requests.is_empty(),
        !task.steps.is_empty(),
        !task.sequence.is_empty(),
        !task.tasks.is_empty(),
        !task.flow.is_empty(),
    ];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 => {
            return Err((
                format!("{at}.requests"),
                "no requests: add at least one `(path: \"/\")`, or give `steps: [...]` (other protocols), `sequence: [...]`, `tasks: [...]` or `flow: [...]`".into(),
            ));
        }
        _ => {
            return Err((
                at.into(),
                "give exactly one of `requests`, `steps` (other protocols), `sequence` (children in order), `tasks` (one child by weight) and `flow` (with control flow); nest tasks to combine them".into(),
            ));
        }
    }
    if task.repeat == Some(0) {
        return Err((format!("{at}.repeat"), "repeat must be at least 1".into()));
    }
    if let Some(w) = &task.wait {
        if matches!(w, WaitSpec::Pacing(_)) {
            return Err((
                format!("{at}.wait"),
                "Pacing spaces a user's iterations; inside a task use Constant or Between".into(),
            ));
        }
        check_wait(w, &format!("{at}.wait"))?;
    }
    for (r, req) in task.requests.iter().enumerate() {
        check_request(req, &format!("{at}.requests[{r}]"))?;
    }
    for (c, child) in task.sequence.iter().enumerate() {
        check_task(child, &format!("{at}.sequence[{c}]"), depth + 1)?;
    }
    if !task.tasks.is_empty() && task.tasks.iter().all(|t| t.weight == 0) {
        return Err((
            format!("{at}.tasks"),
            "every task has weight 0: give at least one a positive weight".into(),
        ));
    }
    for (c, child) in task.tasks.iter().enumerate() {
        check_task(child, &format!("{at}.tasks[{c}]"), depth + 1)?;
    }
    flow::check_flow(&task.flow, &format!("{at}.flow"), depth, false)?;
    Ok(())
}

/// `text` without its `{{ ... }}` expressions (which may contain spaces).
fn outside_templates(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        match rest[i..].find("}}") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn check_request(req: &RequestSpec, at: &str) -> Result<(), Problem> {
    let at = |f: &str| format!("{at}.{f}");
    // A path may also be a template that yields one (a Location header extracted earlier).
    if !(req.path.starts_with('/') || req.path.starts_with("{{")) {
        return Err((at("path"), relative_path(&req.path)));
    }
    if outside_templates(&req.path)
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err((
            at("path"),
            format!(
                "{:?} contains spaces or control characters: percent-encode them",
                req.path
            ),
        ));
    }
    check_headers(&req.headers, &at("headers"))?;
    if let Some(codes) = &req.expect_status
        && let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c))
    {
        return Err((
            at("expect_status"),
            format!("{bad} is not an HTTP status code (100-599)"),
        ));
    }
    for name in req.extract.keys() {
        if !is_identifier(name) {
            return Err((
                format!("{}.{name}", at("extract")),
                format!(
                    "{name:?} cannot name a variable: use letters, digits and `_`, starting with a letter or `_`"
                ),
            ));
        }
    }
    for (c, check) in req.checks.iter().enumerate() {
        check_check(check, &format!("{}[{c}]", at("checks")))?;
    }
    if let Some(auth) = &req.auth {
        check_auth(auth, &at("auth"))?;
    }
    Ok(())
}

/// The message for a request path without its leading `/`, with the path to write instead.
fn relative_path(path: &str) -> String {
    let url = ["http://", "https://"]
        .iter()
        .find_map(|scheme| path.strip_prefix(scheme).map(|rest| (scheme, rest)));
    match url {
        Some((scheme, rest)) => {
            let (host, local) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
            format!(
                "a path starts with `/`, got the URL {path:?}: put \"{scheme}{host}\" in `host` (or --host) and write {local:?} here"
            )
        }
        None => format!(
            "a path starts with `/`, got {path:?}: write {fixed:?} (the host goes in `host`)",
            fixed = format!("/{}", path.trim_start_matches("./")),
        ),
    }
}

fn check_check(check: &CheckSpec, at: &str) -> Result<(), Problem> {
    match check {
        CheckSpec::Status(codes) => {
            if codes.is_empty() {
                return Err((
                    at.into(),
                    "Status([...]) needs at least one status code".into(),
                ));
            }
            if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
                return Err((
                    at.into(),
                    format!("{bad} is not an HTTP status code (100-599)"),
                ));
            }
        }
        CheckSpec::Not(inner) => check_check(inner, at)?,
        _ => {}
    }
    Ok(())
}

fn check_auth(auth: &AuthSpec, at: &str) -> Result<(), Problem> {
    match auth {
        AuthSpec::Jwt {
            algorithm,
            secret,
            key_file,
            claims,
            ..
        } => {
            match (algorithm, secret, key_file) {
                (JwtAlgorithm::HS256, None, _) => {
                    return Err((
                        format!("{at}.secret"),
                        "HS256 signs with a shared secret: add `secret: \"${jwt_secret}\"`".into(),
                    ));
                }
                (JwtAlgorithm::RS256, _, None) => {
                    return Err((
                        format!("{at}.key_file"),
                        "RS256 signs with an RSA private key: add `key_file: \"keys/private.pem\"`"
                            .into(),
                    ));
                }
                _ => {}
            }
            if !matches!(claims, ron::Value::Map(_)) {
                return Err((
                    format!("{at}.claims"),
                    "claims are a map, e.g. {\"sub\": \"user-{{user_id()}}\"}".into(),
                ));
            }
        }
        AuthSpec::OAuth2 { token_url, .. }
            if !(token_url.starts_with('/') || token_url.starts_with("http://")) =>
        {
            return Err((
                format!("{at}.token_url"),
                format!(
                    "{token_url:?}: give a path on the target (\"/oauth/token\") or an http:// URL"
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unknown_feeder(name: &str, spec: &ProfileSpec) -> String {
    let known: Vec<&str> = spec.feeders.keys().map(String::as_str).collect();
    if known.is_empty() {
        return format!("there is no feeder {name:?}: the profile defines none under `feeders`");
    }
    let hint = suggest(name, known.iter().copied())
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default();
    format!(
        "there is no feeder {name:?}{hint} (defined: {})",
        known.join(", ")
    )
}

pub(super) fn check(spec: &ProfileSpec) -> Result<(), Problem> {
    if spec.name.trim().is_empty() {
        return Err((
            "name".into(),
            "the profile name is empty: give it a short name such as \"checkout\"".into(),
        ));
    }
    if let Some(default) = &spec.default_environment
        && !spec.environments.contains_key(default)
    {
        return Err((
            "default_environment".into(),
            unknown_environment(default, spec),
        ));
    }
    check_load(&spec.load)?;
    if let Some(embedded) = &spec.embedded {
        check_embedded(embedded, "embedded")?;
    }
    for (field, d) in [
        ("http.connect_timeout", spec.http.connect_timeout),
        ("http.request_timeout", spec.http.request_timeout),
    ] {
        if d.0.is_zero() {
            return Err((field.into(), "a timeout must be longer than zero".into()));
        }
    }
    if spec.users.is_empty() {
        return Err((
            "users".into(),
            "no user kinds: add at least one `(tasks: [...])`".into(),
        ));
    }
    if spec.users.iter().all(|u| u.weight == 0) {
        return Err((
            "users".into(),
            "every user kind has weight 0: give at least one a positive weight".into(),
        ));
    }
    for (u, user) in spec.users.iter().enumerate() {
        let at = format!("users[{u}]");
        check_wait(&user.wait, &format!("{at}.wait"))?;
        if user.iterations == Some(0) {
            return Err((
                format!("{at}.iterations"),
                "iterations must be at least 1; omit it to run until the end".into(),
            ));
        }
        if let Some(f) = &user.feeder
            && !spec.feeders.contains_key(f)
        {
            return Err((format!("{at}.feeder"), unknown_feeder(f, spec)));
        }
        check_headers(&user.headers, &format!("{at}.headers"))?;
        if let Some(auth) = &user.auth {
            check_auth(auth, &format!("{at}.auth"))?;
        }
        if user.tasks.is_empty() {
            return Err((
                format!("{at}.tasks"),
                "no tasks: add at least one `(requests: [...])`".into(),
            ));
        }
        if user.tasks.iter().all(|t| t.weight == 0) {
            return Err((
                format!("{at}.tasks"),
                "every task has weight 0: give at least one a positive weight".into(),
            ));
        }
        for (r, req) in user.on_start.iter().enumerate() {
            check_request(req, &format!("{at}.on_start[{r}]"))?;
        }
        for (r, req) in user.on_stop.iter().enumerate() {
            check_request(req, &format!("{at}.on_stop[{r}]"))?;
        }
        for (t, task) in user.tasks.iter().enumerate() {
            check_task(task, &format!("{at}.tasks[{t}]"), 1)?;
        }
    }
    if let Some(auth) = &spec.auth {
        check_auth(auth, "auth")?;
    }
    for (name, f) in &spec.feeders {
        if f.file.trim().is_empty() {
            return Err((
                format!("feeders.{name}.file"),
                "give the data file, e.g. \"data/users.csv\"".into(),
            ));
        }
        if !is_identifier(name) || name == "row" {
            return Err((
                format!("feeders.{name}"),
                format!(
                    "{name:?} cannot name a feeder: use letters, digits and `_` (and not `row`, which means the user's feeder)"
                ),
            ));
        }
    }
    check_headers(&spec.headers, "headers")?;
    for (name, env) in &spec.environments {
        check_headers(&env.headers, &format!("environments.{name}.headers"))?;
    }
    Ok(())
}

pub(crate) fn check_headers(
    headers: &std::collections::BTreeMap<String, String>,
    field: &str,
) -> Result<(), Problem> {
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err((
                field.into(),
                format!(
                    "{name:?} is not a valid header name (letters, digits and -, no spaces or colons)"
                ),
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err((
                format!("{field}.{name}"),
                "a header value may not contain line breaks or NUL".into(),
            ));
        }
        if matches!(
            name.to_ascii_lowercase().as_str(),
            "content-length" | "transfer-encoding" | "host" | "connection"
        ) {
            return Err((
                format!("{field}.{name}"),
                format!("`{name}` is set by the engine and may not be given"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn unknown_environment(name: &str, spec: &ProfileSpec) -> String {
    let known: Vec<&str> = spec.environments.keys().map(String::as_str).collect();
    if known.is_empty() {
        return format!("there is no environment {name:?}: the profile defines none");
    }
    let hint = suggest(name, known.iter().copied())
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default();
    format!(
        "there is no environment {name:?}{hint} (defined: {})",
        known.join(", ")
    )
}

fn positive_rate(field: &str, rate: f64, zero_ok: bool) -> Result<(), Problem> {
    if rate.is_finite() && (rate > 0.0 || (zero_ok && rate == 0.0)) {
        Ok(())
    } else {
        let what = if zero_ok {
            "zero or more"
        } else {
            "more than zero"
        };
        let name = field.rsplit('.').next().unwrap_or(field);
        Err((
            field.into(),
            format!(
                "a rate is {what} iterations per second, got {rate}; write e.g. `{name}: 100.0`"
            ),
        ))
    }
}

fn at_least_one<T: PartialEq + From<u8> + std::fmt::Display>(
    field: &str,
    value: Option<T>,
) -> Result<(), Problem> {
    match value {
        Some(v) if v == T::from(0) => Err((field.into(), format!("must be at least 1, got {v}"))),
        _ => Ok(()),
    }
}

/// The load model's own rules; each message names the field and what would be valid.
pub(crate) fn check_load(load: &LoadSpec) -> Result<(), Problem> {
    let zero_duration = |field: &str| {
        Err((
            field.to_owned(),
            "duration must be longer than zero, e.g. \"30s\"".to_owned(),
        ))
    };
    match load {
        LoadSpec::Closed {
            users,
            spawn_rate,
            duration,
            iterations,
            iterations_per_user,
        } => {
            if *users == 0 {
                return Err(("load.users".into(), "users must be at least 1".into()));
            }
            if let Some(rate) = spawn_rate
                && !(rate.is_finite() && *rate > 0.0)
            {
                return Err((
                    "load.spawn_rate".into(),
                    format!(
                        "spawn_rate must be a positive number of users per second, got {rate}; omit it to start every user at once"
                    ),
                ));
            }
            if duration.0.is_zero() {
                return zero_duration("load.duration");
            }
            at_least_one("load.iterations", *iterations)?;
            at_least_one("load.iterations_per_user", *iterations_per_user)?;
        }
        LoadSpec::Stages {
            stages,
            iterations,
            iterations_per_user,
        } => {
            if stages.is_empty() {
                return Err((
                    "load.stages".into(),
                    "no stages: add e.g. `(users: 10, over: \"30s\")`".into(),
                ));
            }
            if stages.iter().all(|s| s.users == 0) {
                return Err((
                    "load.stages".into(),
                    "every stage targets 0 users: nobody would run".into(),
                ));
            }
            if stages.iter().all(|s| s.over.0.is_zero()) {
                return zero_duration("load.stages");
            }
            at_least_one("load.iterations", *iterations)?;
            at_least_one("load.iterations_per_user", *iterations_per_user)?;
        }
        LoadSpec::Open {
            rate,
            duration,
            max_users,
            queue: _,
            iterations,
        } => {
            positive_rate("load.rate", *rate, false)?;
            if duration.0.is_zero() {
                return zero_duration("load.duration");
            }
            at_least_one("load.max_users", *max_users)?;
            at_least_one("load.iterations", *iterations)?;
        }
        LoadSpec::RampingRate {
            start_rate,
            stages,
            max_users,
            queue: _,
            iterations,
        } => {
            positive_rate("load.start_rate", *start_rate, true)?;
            if stages.is_empty() {
                return Err((
                    "load.stages".into(),
                    "no stages: add e.g. `(to: 100.0, over: \"1m\")`".into(),
                ));
            }
            for (i, stage) in stages.iter().enumerate() {
                positive_rate(&format!("load.stages[{i}].to"), stage.to, true)?;
            }
            if stages.iter().all(|s| s.over.0.is_zero()) {
                return zero_duration("load.stages");
            }
            if *start_rate == 0.0 && stages.iter().all(|s| s.to == 0.0) {
                return Err((
                    "load.stages".into(),
                    "every rate is 0: nothing would arrive".into(),
                ));
            }
            at_least_one("load.max_users", *max_users)?;
            at_least_one("load.iterations", *iterations)?;
        }
        // The command line gives the load (checked when the plan is resolved).
        LoadSpec::Unset => {}
    }
    Ok(())
}

/// The embedded target's settings.
pub(crate) fn check_embedded(e: &EmbeddedSpec, field: &str) -> Result<(), Problem> {
    if let Some(stall) = &e.stall {
        if stall.every.0.is_zero() {
            return Err((
                format!("{field}.stall.every"),
                "the stall period must be longer than zero".into(),
            ));
        }
        if stall.hold.0 >= stall.every.0 {
            return Err((
                format!("{field}.stall.hold"),
                format!(
                    "hold ({:?}) must be shorter than the period ({:?}), or nothing is ever answered",
                    stall.hold.0, stall.every.0
                ),
            ));
        }
    }
    if !e.latency_mix.is_empty() && e.latency_mix.iter().all(|(w, _)| *w == 0) {
        return Err((
            format!("{field}.latency_mix"),
            "every weight is 0: give at least one a positive weight".into(),
        ));
    }
    if let Some((_, d)) = e
        .latency_mix
        .iter()
        .find(|(_, d)| d.0 > std::time::Duration::from_secs(60))
    {
        return Err((
            format!("{field}.latency_mix"),
            format!(
                "{:?} is longer than the 60 s the target allows for a delay",
                d.0
            ),
        ));
    }
    Ok(())
}
