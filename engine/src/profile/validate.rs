//! Checks that span several fields, run after parsing. Errors name the field path; the parser has no
//! position for them.

use super::spec::{EmbeddedSpec, LoadSpec, ProfileSpec, WaitSpec};
use super::suggest;

type Problem = (String, String);

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
        if let WaitSpec::Between(min, max) = &user.wait
            && min.0 > max.0
        {
            return Err((
                format!("users[{u}].wait"),
                format!(
                    "Between(min, max) needs min <= max, got {:?} > {:?}",
                    min.0, max.0
                ),
            ));
        }
        if let WaitSpec::Pacing(pace) = &user.wait
            && pace.0.is_zero()
        {
            return Err((
                format!("users[{u}].wait"),
                "Pacing needs a period longer than zero; use None for no think time".into(),
            ));
        }
        if user.tasks.is_empty() {
            return Err((
                format!("users[{u}].tasks"),
                "no tasks: add at least one `(requests: [...])`".into(),
            ));
        }
        if user.tasks.iter().all(|t| t.weight == 0) {
            return Err((
                format!("users[{u}].tasks"),
                "every task has weight 0: give at least one a positive weight".into(),
            ));
        }
        for (t, task) in user.tasks.iter().enumerate() {
            if task.requests.is_empty() {
                return Err((
                    format!("users[{u}].tasks[{t}].requests"),
                    "no requests: add at least one `(path: \"/\")`".into(),
                ));
            }
            for (r, req) in task.requests.iter().enumerate() {
                let at = |f: &str| format!("users[{u}].tasks[{t}].requests[{r}].{f}");
                if !req.path.starts_with('/') {
                    return Err((
                        at("path"),
                        format!(
                            "a path starts with `/`, got {:?}; the host goes in `host`",
                            req.path
                        ),
                    ));
                }
                if req
                    .path
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
            }
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
        Err((
            field.into(),
            format!("a rate is {what} iterations per second, got {rate}"),
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
