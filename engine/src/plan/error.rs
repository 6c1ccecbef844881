//! Why a profile and flags do not make a plan, and where: the flag, or the profile file, line and
//! field.

use std::fmt;
use std::path::PathBuf;

use crate::profile::{self, spec::ProfileSpec};

/// Flags or profile values that do not make a runnable plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    /// The profile (or fragment), when the fault is in a profile field rather than a flag.
    pub file: Option<PathBuf>,
    /// Where in the file (1-based line and column), when known.
    pub position: Option<(usize, usize)>,
    /// The flag (`--users`) or profile field (`environments.staging.host`) at fault.
    pub field: String,
    /// What is wrong and how to fix it; for a located profile field, followed by the line of the
    /// profile with a caret under the column (see [`profile::Excerpt`]).
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => {
                write!(f, "{}", file.display())?;
                if let Some((line, col)) = self.position {
                    write!(f, ":{line}:{col}")?;
                }
                write!(f, ": in `{}`: {}", self.field, self.message)
            }
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

impl PlanError {
    /// This error, located among the profile's `sources` (the profile, then its fragments) by its
    /// field path when it has no position yet and names a profile field rather than a flag or an
    /// environment variable.
    pub(super) fn located_by_field(mut self, sources: &[(PathBuf, String)]) -> PlanError {
        if self.position.is_some() || super::origin::outside_profile(&self.field) {
            return self;
        }
        if let Some((i, position, width)) = profile::locate_in_sources(sources, &self.field) {
            let (file, text) = &sources[i];
            if self.file.as_ref().is_some_and(|f| f != file && i == 0) {
                return self;
            }
            self.file = Some(file.clone());
            self.position = Some(position);
            if let Some(excerpt) = profile::Excerpt::new(text, position, width) {
                self.message = format!("{}\n{excerpt}", self.message);
            }
        }
        self
    }
}

pub(super) fn err(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        file: None,
        position: None,
        field: field.into(),
        message: message.into(),
    }
}

/// A profile-field error, with the file and line of `snippet` when it can be found in the profile
/// or one of its fragments.
pub(super) fn located(
    spec: &ProfileSpec,
    field: impl Into<String>,
    snippet: Option<&str>,
    message: impl Into<String>,
) -> PlanError {
    let mut e = err(field, message);
    if let Some(snippet) = snippet {
        // As written in RON, a string's backslashes and quotes are escaped.
        let escaped = format!("{snippet:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        // Within the field first, so that of several identical snippets the one at fault is shown;
        // else the first anywhere (a field the path does not lead to, such as a default).
        let within = [snippet, escaped]
            .into_iter()
            .find_map(|needle| profile::locate_snippet_in_field(&spec.sources, &e.field, needle));
        if let Some((i, position, width)) = within {
            let (file, text) = &spec.sources[i];
            e.file = Some(file.clone());
            e.position = Some(position);
            // The error has no field of its own for the excerpt: the files that build a
            // PlanError by hand would all have to name it.
            if let Some(excerpt) = profile::Excerpt::new(text, position, width) {
                e.message = format!("{}\n{excerpt}", e.message);
            }
            return e;
        }
        'files: for (file, text) in &spec.sources {
            for needle in [snippet, escaped] {
                if let Some(position) = profile::locate(text, needle) {
                    e.file = Some(file.clone());
                    e.position = Some(position);
                    if let Some(excerpt) =
                        profile::Excerpt::new(text, position, needle.chars().count())
                    {
                        e.message = format!("{}\n{excerpt}", e.message);
                    }
                    break 'files;
                }
            }
        }
    }
    if e.file.is_none() {
        e.file = spec.sources.first().map(|(f, _)| f.clone());
    }
    e
}
