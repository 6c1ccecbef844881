//! Profile variables: the `${name}` layer, resolved once at load time.
//!
//! Precedence, highest first: `--var name=value` > the process environment variable
//! `STAMPEDE_VAR_name` > the selected environment's `variables`/`secrets` > the profile's top-level
//! `variables`/`secrets`. A variable's value may itself use `${...}`; `${NAME}` that is no profile
//! variable reads the process environment variable `NAME` (for secrets kept out of the file), and
//! `${NAME:-default}` gives a default when neither exists.
//!
//! Secret values never leave the process: a variable is secret when it is declared under `secrets`,
//! when its name looks secret (password, token, …), or when its value came from the process
//! environment. The manifest shows secrets as `***`.

use std::collections::{BTreeMap, BTreeSet};

use crate::profile::suggest;

/// The prefix of process environment variables that set profile variables.
pub const ENV_VAR_PREFIX: &str = "STAMPEDE_VAR_";

/// Where a variable's value came from, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// `--var name=value`.
    Flag,
    /// `STAMPEDE_VAR_name`.
    ProcessEnv,
    /// The selected environment.
    Environment,
    /// The profile's top level.
    Profile,
}

/// One variable before `${}` inside it is resolved.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub value: String,
    pub layer: Layer,
    pub secret: bool,
}

/// Resolved profile variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars {
    pub values: BTreeMap<String, String>,
    pub secret: BTreeSet<String>,
    /// Process environment variables read through `${NAME}`; their values are secret too.
    pub from_env: BTreeSet<String>,
}

/// Why the variables do not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarError {
    pub variable: String,
    pub message: String,
}

/// Names that look like they hold secrets, whatever the profile says.
pub(crate) fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "passwd",
        "api-key",
        "apikey",
        "api_key",
        "private",
        "credential",
    ]
    .iter()
    .any(|s| n.contains(s))
}

impl Vars {
    /// Resolves layered raw variables; `process_env` looks up process environment variables.
    pub fn resolve(
        raw: &BTreeMap<String, Raw>,
        process_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vars, VarError> {
        let mut out = Vars::default();
        for name in raw.keys() {
            let mut stack = Vec::new();
            resolve_one(name, raw, process_env, &mut out, &mut stack)?;
        }
        for (name, r) in raw {
            if r.secret || looks_secret(name) {
                out.secret.insert(name.clone());
            }
        }
        Ok(out)
    }

    /// Substitutes `${...}` in `text` with these variables (and the process environment). Process
    /// environment variables read here are remembered in `from_env`: text that used them is secret.
    pub fn substitute(
        &mut self,
        text: &str,
        process_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        let read = std::cell::RefCell::new(Vec::new());
        let values = &self.values;
        let result = substitute(text, &|key| {
            values.get(key).cloned().or_else(|| {
                let v = process_env(key);
                if v.is_some() {
                    read.borrow_mut().push(key.to_owned());
                }
                v
            })
        });
        self.from_env.extend(read.into_inner());
        result.map_err(|e| {
            let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            add_hint(e, &known)
        })
    }

    /// Whether `text` (as written, with `${...}`) refers to a secret variable or the process
    /// environment, so that what it becomes must not be shown.
    pub fn mentions_secret(&self, text: &str) -> bool {
        collect_refs(text)
            .iter()
            .any(|k| self.secret.contains(k) || !self.values.contains_key(k))
    }
}

fn add_hint(message: String, known: &[&str]) -> String {
    if let Some(key) = message
        .strip_prefix("unknown variable `")
        .and_then(|r| r.split('`').next())
        && let Some(s) = suggest(key, known.iter().copied())
    {
        return message.replacen(
            &format!("unknown variable `{key}`"),
            &format!("unknown variable `{key}` (did you mean `{s}`?)"),
            1,
        );
    }
    message
}

fn resolve_one(
    name: &str,
    raw: &BTreeMap<String, Raw>,
    process_env: &dyn Fn(&str) -> Option<String>,
    out: &mut Vars,
    stack: &mut Vec<String>,
) -> Result<String, VarError> {
    if let Some(v) = out.values.get(name) {
        return Ok(v.clone());
    }
    if stack.iter().any(|s| s == name) {
        stack.push(name.to_owned());
        return Err(VarError {
            variable: name.to_owned(),
            message: format!(
                "variables refer to each other in a cycle: {}; give one of them a plain value",
                stack.join(" -> ")
            ),
        });
    }
    let Some(r) = raw.get(name) else {
        return Err(VarError {
            variable: name.to_owned(),
            message: format!("unknown variable `{name}`"),
        });
    };
    stack.push(name.to_owned());
    // Resolve what the value refers to first (recursively), then substitute.
    let refs = collect_refs(&r.value);
    let mut secret = r.secret || looks_secret(name);
    let mut resolved: BTreeMap<String, String> = BTreeMap::new();
    for key in &refs {
        if raw.contains_key(key) {
            let v = resolve_one(key, raw, process_env, out, stack)?;
            secret |= out.secret.contains(key);
            resolved.insert(key.clone(), v);
        } else if let Some(v) = process_env(key) {
            // Values taken from the process environment are treated as secrets.
            secret = true;
            out.from_env.insert(key.clone());
            resolved.insert(key.clone(), v);
        }
    }
    let value = substitute(&r.value, &|k| resolved.get(k).cloned()).map_err(|message| {
        let known: Vec<&str> = raw.keys().map(String::as_str).collect();
        VarError {
            variable: name.to_owned(),
            message: add_hint(message, &known),
        }
    })?;
    stack.pop();
    if secret {
        out.secret.insert(name.to_owned());
    }
    out.values.insert(name.to_owned(), value.clone());
    Ok(value)
}

/// The names referred to by `${...}` in `text` (defaults stripped).
pub(crate) fn collect_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else { break };
            let key = inner[..end].split(":-").next().unwrap_or("").trim();
            out.push(key.to_owned());
            rest = &inner[end + 1..];
        } else {
            rest = after;
        }
    }
    out
}

/// Replaces `${name}` with `lookup(name)`, `${name:-default}` with the default when the lookup finds
/// nothing; `$$` writes a literal `$`.
pub(crate) fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').ok_or_else(|| {
                format!("unclosed `${{` in {text:?}; write `$$` for a literal `$`")
            })?;
            let body = &inner[..end];
            let (key, default) = match body.split_once(":-") {
                Some((k, d)) => (k.trim(), Some(d)),
                None => (body.trim(), None),
            };
            match (lookup(key), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "unknown variable `{key}`: define it in `variables`, pass --var {key}=VALUE, set {ENV_VAR_PREFIX}{key} or the environment variable {key}, or write ${{{key}:-default}}"
                    ));
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(entries: &[(&str, &str, Layer, bool)]) -> BTreeMap<String, Raw> {
        entries
            .iter()
            .map(|(k, v, layer, secret)| {
                (
                    (*k).to_owned(),
                    Raw {
                        value: (*v).to_owned(),
                        layer: *layer,
                        secret: *secret,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn references_environment_variables_and_defaults() {
        let env = |k: &str| (k == "SHOP_PASSWORD").then(|| "hunter2".to_owned());
        let vars = Vars::resolve(
            &raw(&[
                ("pw", "${SHOP_PASSWORD}", Layer::Profile, false),
                ("base", "/api/${version}", Layer::Profile, false),
                ("version", "v2", Layer::Profile, false),
                ("port", "${PORT:-8080}", Layer::Profile, false),
                ("plain", "$$5", Layer::Profile, false),
            ]),
            &env,
        )
        .unwrap();
        assert_eq!(vars.values["pw"], "hunter2");
        assert_eq!(vars.values["base"], "/api/v2");
        assert_eq!(vars.values["port"], "8080");
        assert_eq!(vars.values["plain"], "$5");
        // Read from the process environment: secret, though its name does not say so.
        assert!(vars.secret.contains("pw"));
        assert!(!vars.secret.contains("base"));
    }

    #[test]
    fn secrets_spread_to_variables_built_from_them() {
        let vars = Vars::resolve(
            &raw(&[
                ("key", "abc", Layer::Profile, true),
                ("header", "Bearer ${key}", Layer::Profile, false),
                ("user_password", "x", Layer::Profile, false),
            ]),
            &|_| None,
        )
        .unwrap();
        assert!(vars.secret.contains("key"));
        assert!(vars.secret.contains("header"));
        assert!(vars.secret.contains("user_password"), "by its name");
    }

    #[test]
    fn cycles_and_unknown_names_are_errors() {
        let e = Vars::resolve(
            &raw(&[
                ("a", "${b}", Layer::Profile, false),
                ("b", "${a}", Layer::Profile, false),
            ]),
            &|_| None,
        )
        .unwrap_err();
        assert!(e.message.contains("cycle"), "{}", e.message);
        let e = Vars::resolve(
            &raw(&[
                ("item", "1", Layer::Profile, false),
                ("x", "${iten}", Layer::Profile, false),
            ]),
            &|_| None,
        )
        .unwrap_err();
        assert!(e.message.contains("did you mean `item`"), "{}", e.message);
    }
}
