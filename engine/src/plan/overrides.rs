//! The profile's top level, its selected environment, the process environment and the flags, layered
//! in that order of precedence into the variables, headers, host and TLS settings a run uses.

use std::collections::BTreeMap;

use super::error::{PlanError, err, located};
use super::{ENV_HOST, ENV_SELECT, PlanEnv, Target};
use crate::cli::RunArgs;
use crate::profile::spec::{ProfileSpec, TlsSpec};
use crate::profile::suggest;
use crate::scenario::vars::{ENV_VAR_PREFIX, Layer, Raw, Vars};

/// What the overrides decided, before the load model and the scenario are resolved.
pub(super) struct Overrides {
    /// The selected environment, if any.
    pub env_name: Option<String>,
    /// The default headers: the profile's, then the environment's.
    pub headers: BTreeMap<String, String>,
    /// The variables, every layer applied and references resolved.
    pub vars: Vars,
    /// The target as written, variables substituted.
    pub host: String,
    /// The target, typed.
    pub target: Target,
    /// Where the target was given.
    pub target_origin: super::Origin,
    /// The target's path prefix for HTTP requests (empty for other targets).
    pub base_path: String,
    /// The TLS settings that apply: the environment's, else the profile's.
    pub tls_spec: Option<TlsSpec>,
    /// Where those TLS settings were written, for errors.
    pub tls_field: String,
}

impl Overrides {
    /// Layers the selected environment, the process environment and the flags over the profile.
    pub(super) fn apply(
        spec: &ProfileSpec,
        args: &RunArgs,
        env: &PlanEnv,
    ) -> Result<Overrides, PlanError> {
        let process_env = |k: &str| env.vars.get(k).cloned();
        let (env_name, env_field) = match (&args.env, env.vars.get(ENV_SELECT)) {
            (Some(e), _) => (Some(e.clone()), "--env".to_owned()),
            (None, Some(e)) if !e.is_empty() => (Some(e.clone()), ENV_SELECT.to_owned()),
            _ => (
                spec.default_environment.clone(),
                "default_environment".to_owned(),
            ),
        };
        let mut headers = spec.headers.clone();
        let mut raw: BTreeMap<String, Raw> = BTreeMap::new();
        let mut layer =
            |vars: &BTreeMap<String, String>, secrets: &BTreeMap<String, String>, l: Layer| {
                for (k, v, secret) in vars
                    .iter()
                    .map(|(k, v)| (k, v, false))
                    .chain(secrets.iter().map(|(k, v)| (k, v, true)))
                {
                    let was_secret = raw.get(k).is_some_and(|r| r.secret);
                    raw.insert(
                        k.clone(),
                        Raw {
                            value: v.clone(),
                            layer: l,
                            secret: secret || was_secret,
                        },
                    );
                }
            };
        layer(&spec.variables, &spec.secrets, Layer::Profile);
        let mut host = spec.host.clone();
        let mut host_field = "host".to_owned();
        let mut tls_spec = spec.tls.clone();
        let mut tls_field = "tls".to_owned();
        if let Some(name) = &env_name {
            let Some(e) = spec.environments.get(name) else {
                return Err(err(env_field, profile_unknown_env(name, spec)));
            };
            if e.host.is_some() {
                host.clone_from(&e.host);
                host_field = format!("environments.{name}.host");
            }
            headers.extend(e.headers.clone());
            layer(&e.variables, &e.secrets, Layer::Environment);
            if e.tls.is_some() {
                tls_spec.clone_from(&e.tls);
                tls_field = format!("environments.{name}.tls");
            }
        }
        let from_process: BTreeMap<String, String> = env
            .vars
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ENV_VAR_PREFIX)?.to_owned(), v.clone())))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        layer(&from_process, &BTreeMap::new(), Layer::ProcessEnv);
        let flags: BTreeMap<String, String> = args.vars.iter().cloned().collect();
        layer(&flags, &BTreeMap::new(), Layer::Flag);
        if let Some(h) = env.vars.get(ENV_HOST).filter(|h| !h.is_empty()) {
            host = Some(h.clone());
            host_field = ENV_HOST.to_owned();
        }
        if let Some(h) = &args.host {
            host = Some(h.clone());
            host_field = "--host".to_owned();
        }
        let var_field = |name: &str, layer: Layer| match layer {
            Layer::Flag => "--var".to_owned(),
            Layer::ProcessEnv => format!("{ENV_VAR_PREFIX}{name}"),
            Layer::Environment => format!(
                "environments.{}.variables.{name}",
                env_name.as_deref().unwrap_or_default()
            ),
            Layer::Profile => format!("variables.{name}"),
        };
        if let Some((name, r)) = raw.iter().find(|(_, r)| r.value.contains("{{")) {
            return Err(located(
                spec,
                var_field(name, r.layer),
                Some(&r.value),
                format!(
                    "profile variables are fixed when the profile loads, and `{{{{...}}}}` is computed per request: declare `{name}` under a user kind's `variables` to give each user its own value, or write the template where it is used"
                ),
            ));
        }
        let mut vars = Vars::resolve(&raw, &process_env).map_err(|e| {
            let r = &raw[&e.variable];
            located(
                spec,
                var_field(&e.variable, r.layer),
                Some(&r.value),
                e.message,
            )
        })?;
        let host = host.ok_or_else(|| {
        err("host", "the profile sets no host: add `host: \"http://...\"` (or \"embedded\"), or pass --host")
    })?;
        let raw_host = host.clone();
        let host = vars
            .substitute(&host, &process_env)
            .map_err(|m| located(spec, host_field.clone(), Some(&host), m))?;
        let target = Target::parse(&host, &host_field)?;
        // `engine run --url` writes the profile's host itself: the URL is what the user gave.
        let origin_field = if host_field == "host" && args.profile.is_none() && args.url.is_some() {
            "--url"
        } else {
            &host_field
        };
        let target_origin = super::Origin::of(spec, origin_field, &raw_host);
        let base_path = match &target {
            Target::Http { base_path, .. } => base_path.clone(),
            Target::Embedded | Target::Other { .. } => String::new(),
        };
        Ok(Overrides {
            env_name,
            headers,
            vars,
            host,
            target,
            target_origin,
            base_path,
            tls_spec,
            tls_field,
        })
    }
}

fn profile_unknown_env(name: &str, spec: &ProfileSpec) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Plan, PlanEnv, Target};
    use crate::cli::RunArgs;
    use crate::profile;
    use std::path::Path;

    /// The documented precedence: flags > process environment > selected environment > profile.
    #[test]
    fn precedence_flags_then_process_environment_then_environment_then_profile() {
        let resolve = |args: &RunArgs, env: &PlanEnv| {
            let plan = Plan::resolve(spec(), args, env).unwrap();
            (path(&plan, 0), header(&plan, 0, "X-Who"), plan.target)
        };
        let stage = Target::Http {
            host: "stage.invalid".into(),
            port: 8080,
            base_path: String::new(),
            tls: false,
        };
        // Profile defaults.
        let (p, who, target) = resolve(&RunArgs::default(), &env());
        assert_eq!((p.as_str(), who.as_str()), ("/api/items/7", "profile"));
        assert!(matches!(target, Target::Http { port: 9, .. }));
        // The selected environment over the profile.
        let staging = RunArgs {
            env: Some("stage".into()),
            ..RunArgs::default()
        };
        let (p, who, target) = resolve(&staging, &env());
        assert_eq!(
            (p.as_str(), who.as_str(), &target),
            ("/items/8", "environment", &stage)
        );
        // STAMPEDE_ENV selects it too; STAMPEDE_VAR_* and STAMPEDE_HOST beat the environment.
        let process = env_with(&[
            ("STAMPEDE_ENV", "stage"),
            ("STAMPEDE_VAR_who", "process"),
            ("STAMPEDE_HOST", "http://127.0.0.3:81"),
        ]);
        let (p, who, target) = resolve(&RunArgs::default(), &process);
        assert_eq!((p.as_str(), who.as_str()), ("/items/8", "process"));
        assert!(matches!(target, Target::Http { port: 81, .. }));
        // Flags beat everything.
        let flags = RunArgs {
            env: Some("stage".into()),
            host: Some("http://127.0.0.2:82".into()),
            vars: vec![("who".into(), "flag".into()), ("id".into(), "9".into())],
            ..RunArgs::default()
        };
        let (p, who, target) = resolve(&flags, &process);
        assert_eq!((p.as_str(), who.as_str()), ("/items/9", "flag"));
        assert!(matches!(target, Target::Http { port: 82, .. }));
        // --env beats STAMPEDE_ENV.
        let e = Plan::resolve(
            spec(),
            &RunArgs {
                env: Some("nope".into()),
                ..RunArgs::default()
            },
            &process,
        )
        .unwrap_err();
        assert_eq!(e.field, "--env");
    }

    #[test]
    fn process_environment_variables_fill_in_references() {
        let text = PROFILE.replace(r#""k-123""#, r#""${SHOP_KEY:-none}""#);
        let spec = profile::load_str(&text, Path::new("t.ron")).unwrap();
        let plan = Plan::resolve(
            spec.clone(),
            &RunArgs::default(),
            &env_with(&[("SHOP_KEY", "from-env")]),
        )
        .unwrap();
        assert_eq!(header(&plan, 0, "X-Key"), "from-env");
        let plan = Plan::resolve(spec, &RunArgs::default(), &env()).unwrap();
        assert_eq!(header(&plan, 0, "X-Key"), "none");
    }

    #[test]
    fn unknown_environment_and_variable_are_explained_with_their_place() {
        let args = RunArgs {
            env: Some("stag".into()),
            ..RunArgs::default()
        };
        let e = Plan::resolve(spec(), &args, &env()).unwrap_err();
        assert!(e.message.contains("did you mean \"stage\""), "{e}");
        let text = PROFILE.replace("/items/${id}", "/items/${iid}");
        let e = Plan::resolve(
            profile::load_str(&text, Path::new("t.ron")).unwrap(),
            &RunArgs::default(),
            &env(),
        )
        .unwrap_err();
        assert!(e.message.contains("did you mean `id`"), "{e}");
        assert_eq!(e.field, "users[0].tasks[0].requests[0].path");
        // Line 9, at the `${` of the bad reference.
        assert_eq!(e.position, Some((9, 28)), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.ron:9:28: in `users[0].tasks[0].requests[0].path`"),
            "{e}"
        );
    }
}
