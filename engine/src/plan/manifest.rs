//! The resolved profile as the manifest shows it, with every secret redacted.

use std::collections::BTreeMap;

use super::REDACTED;
use crate::profile::{self, spec::AuthSpec, spec::ProfileSpec};
use crate::scenario::vars::{self, Vars};

/// (declared, secret-looking, or read from the process environment), headers whose names look
/// secret, and the passwords, keys and client secrets of auth helpers.
pub(super) fn manifest_profile(
    spec: &ProfileSpec,
    host: &str,
    env_name: Option<&str>,
    headers: &BTreeMap<String, String>,
    vars: &Vars,
) -> String {
    let mut shown = spec.clone();
    shown.host = Some(
        if vars.mentions_secret(spec.host.as_deref().unwrap_or_default()) {
            REDACTED.to_owned()
        } else {
            host.to_owned()
        },
    );
    shown.default_environment = env_name.map(str::to_owned);
    shown.headers = redact_headers(headers);
    shown.variables = vars
        .values
        .iter()
        .filter(|(k, _)| !spec.secrets.contains_key(*k))
        .map(|(k, v)| {
            let v = if vars.secret.contains(k) {
                REDACTED.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    shown.secrets = spec
        .secrets
        .keys()
        .map(|k| (k.clone(), REDACTED.to_owned()))
        .collect();
    shown.environments.clear();
    shown.include.clear();
    if let Some(a) = &mut shown.auth {
        redact_auth(a);
    }
    for user in &mut shown.users {
        user.headers = redact_headers(&user.headers);
        user.variables = user
            .variables
            .iter()
            .map(|(k, v)| {
                let v = if vars::looks_secret(k) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        if let Some(a) = &mut user.auth {
            redact_auth(a);
        }
        for req in user.on_start.iter_mut().chain(user.on_stop.iter_mut()) {
            redact_request(req);
        }
        for task in &mut user.tasks {
            redact_task(task);
        }
    }
    ron::ser::to_string_pretty(
        &shown,
        ron::ser::PrettyConfig::default().extensions(
            ron::extensions::Extensions::IMPLICIT_SOME
                | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        ),
    )
    .unwrap_or_else(|e| format!("(could not render the profile: {e})"))
}

fn redact_task(task: &mut profile::spec::TaskSpec) {
    for req in &mut task.requests {
        redact_request(req);
    }
    for child in task.sequence.iter_mut().chain(task.tasks.iter_mut()) {
        redact_task(child);
    }
    redact_flow(&mut task.flow);
}

fn redact_flow(flow: &mut [profile::spec::FlowSpec]) {
    use profile::spec::FlowSpec as F;
    for item in flow {
        match item {
            F::Request(req) => redact_request(req),
            F::Task(task) => redact_task(task),
            F::If {
                then, otherwise, ..
            } => {
                redact_flow(then);
                redact_flow(otherwise);
            }
            F::While { body, .. } | F::Repeat { body, .. } => redact_flow(body),
            F::Step(_) | F::Break | F::Set(..) | F::Pause(_) | F::Script { .. } => {}
        }
    }
}

fn redact_request(req: &mut profile::spec::RequestSpec) {
    req.headers = redact_headers(&req.headers);
    if let Some(a) = &mut req.auth {
        redact_auth(a);
    }
}

/// Hides credentials written into an auth helper; references (`${NAME}`, `{{token}}`) stay, since
/// they show where the value comes from without showing it.
fn redact_auth(auth: &mut AuthSpec) {
    let hide = |text: &mut String| {
        if !is_reference(text) {
            *text = REDACTED.to_owned();
        }
    };
    match auth {
        AuthSpec::Basic { password, .. } => hide(password),
        AuthSpec::Jwt { secret, .. } => {
            if let Some(s) = secret {
                hide(s);
            }
        }
        AuthSpec::OAuth2 { client_secret, .. } => hide(client_secret),
        AuthSpec::Bearer(token) => hide(token),
        AuthSpec::Off => {}
    }
}

/// Whether `text` is nothing but `${...}` and `{{...}}` references.
fn is_reference(text: &str) -> bool {
    let mut rest = text.trim();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let close = if rest.starts_with("${") {
            "}"
        } else if rest.starts_with("{{") {
            "}}"
        } else {
            return false;
        };
        match rest.find(close) {
            Some(i) => rest = rest[i + close.len()..].trim_start(),
            None => return false,
        }
    }
    true
}

fn redact_headers(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if vars::looks_secret(k) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Plan, REDACTED};
    use super::is_reference;
    use crate::cli::RunArgs;
    use crate::profile;
    use std::path::Path;

    #[test]
    fn secrets_are_redacted_in_the_manifest_profile() {
        let text = PROFILE.replace(
            r#"variables: {"id": "7", "who": "profile"},"#,
            r#"variables: {"id": "7", "who": "profile", "password": "pw-1", "from_env": "${SHOP_TOKEN}"},
               auth: Basic(user: "u", password: "literal-pw"),"#,
        );
        let spec = profile::load_str(&text, Path::new("t.ron")).unwrap();
        let args = RunArgs {
            vars: vec![("api_key".into(), "flag-key".into())],
            ..RunArgs::default()
        };
        let plan = Plan::resolve(spec, &args, &env_with(&[("SHOP_TOKEN", "tok-9")])).unwrap();
        let ron = &plan.profile_ron;
        for secret in ["k-123", "flag-key", "pw-1", "tok-9", "literal-pw"] {
            assert!(!ron.contains(secret), "{secret} leaked into {ron}");
        }
        assert!(ron.contains(r#""who": "profile""#), "{ron}");
        assert!(ron.contains(REDACTED));
        // The request still sends the real values.
        assert_eq!(header(&plan, 0, "X-Key"), "flag-key");
        // And the manifest profile is still a profile.
        profile::load_str(ron, Path::new("manifest")).unwrap();
    }

    #[test]
    fn the_manifest_profile_reads_back_as_a_profile() {
        let plan = Plan::resolve(spec(), &RunArgs::default(), &env()).unwrap();
        let again = profile::load_str(&plan.profile_ron, Path::new("manifest")).unwrap();
        assert_eq!(again.name, "t");
        assert!(!plan.profile_ron.contains("Some("), "{}", plan.profile_ron);
    }

    #[test]
    fn references_are_not_redacted_but_values_are() {
        assert!(is_reference("${CLIENT_SECRET}"));
        assert!(is_reference("{{token}} ${x}"));
        assert!(!is_reference("abc${x}"));
        assert!(!is_reference(""));
        assert!(!is_reference("${unclosed"));
    }
}
