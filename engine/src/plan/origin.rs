//! Where a setting of the plan was given, so that a message about it (a target that does not accept
//! connections) can send the user to the line to change.

use std::fmt;
use std::path::PathBuf;

use super::error::located;
use crate::profile::spec::ProfileSpec;

/// Where a setting was given: a profile field (with its file and line when they are found), a flag
/// (`--host`, `--url`) or a process environment variable (`STAMPEDE_HOST`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The flag, the environment variable, or the profile field (`environments.staging.host`).
    pub field: String,
    /// The profile (or fragment) that holds the field, when it is a profile field.
    pub file: Option<PathBuf>,
    /// The field's line in `file`, when found.
    pub line: Option<usize>,
}

impl Origin {
    /// The origin of `field`: for a profile field, the file and line where `snippet` (its value as
    /// written) is found; flags and environment variables have neither.
    pub(super) fn of(spec: &ProfileSpec, field: &str, snippet: &str) -> Origin {
        if outside_profile(field) {
            return Origin {
                field: field.to_owned(),
                file: None,
                line: None,
            };
        }
        let at = located(spec, field, Some(snippet), "");
        Origin {
            field: field.to_owned(),
            file: at.file,
            line: at.position.map(|(line, _)| line),
        }
    }
}

/// Whether `field` names a flag (`--host`) or a process environment variable rather than a profile
/// field, so that no file or line is looked for.
pub(super) fn outside_profile(field: &str) -> bool {
    field.starts_with('-') || is_env_var(field)
}

/// `STAMPEDE_HOST`, `JOB_COMPLETION_INDEX`, `PROFILE`: upper-case names are process environment
/// variables, never profile fields (which are lower case).
fn is_env_var(field: &str) -> bool {
    !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl fmt::Display for Origin {
    /// `` `host` in profiles/shop.ron:3 ``, `--url`, `$STAMPEDE_HOST`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.starts_with("--") {
            return f.write_str(&self.field);
        }
        if is_env_var(&self.field) {
            return write!(f, "${}", self.field);
        }
        write!(f, "`{}`", self.field)?;
        if let Some(file) = &self.file {
            write!(f, " in {}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{env, env_with, spec};
    use super::super::{Plan, adhoc_spec};
    use crate::cli::RunArgs;

    #[test]
    fn the_target_names_the_field_and_line_or_the_flag_that_set_it() {
        let origin = |args: &RunArgs, vars: &[(&str, &str)]| {
            let plan = Plan::resolve(spec(), args, &env_with(vars)).unwrap();
            plan.target_origin.to_string()
        };
        let args = RunArgs::default();
        assert_eq!(origin(&args, &[]), "`host` in t.ron:3");
        let staging = RunArgs {
            env: Some("stage".into()),
            ..RunArgs::default()
        };
        assert_eq!(
            origin(&staging, &[]),
            "`environments.stage.host` in t.ron:6"
        );
        assert_eq!(
            origin(&args, &[("STAMPEDE_HOST", "http://127.0.0.1:1")]),
            "$STAMPEDE_HOST"
        );
        let host = RunArgs {
            host: Some("http://127.0.0.1:1".into()),
            ..RunArgs::default()
        };
        assert_eq!(origin(&host, &[]), "--host");
        let url = RunArgs {
            url: Some("http://127.0.0.1:1/".into()),
            ..RunArgs::default()
        };
        let plan = Plan::resolve(adhoc_spec("http://127.0.0.1:1/").unwrap(), &url, &env()).unwrap();
        assert_eq!(plan.target_origin.to_string(), "--url");
        // A value the file does not spell out (built from variables) still names the file.
        let mut templated = spec();
        templated.host = Some("http://{{who}}:9".into());
        let e = super::Origin::of(&templated, "host", "http://elsewhere:9");
        assert_eq!(e.to_string(), "`host` in t.ron");
    }
}
