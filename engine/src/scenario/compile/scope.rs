//! Names in a user kind's templates: user variables (slots), feeder columns (`row.column`,
//! `feeder.column`) and load-time constants, each unknown name an error with a suggestion.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{CompileError, Compiler, KindCtx, error};
use crate::profile::suggest;
use crate::scenario::feeder::Feeder;
use crate::scenario::template::{Escape, Resolved, Scope, Template};
use crate::scenario::vars::Vars;

/// Resolves template names for one user kind.
struct KindScope<'s> {
    vars: &'s mut Vars,
    process_env: &'s dyn Fn(&str) -> Option<String>,
    slots: &'s BTreeMap<String, u16>,
    feeders: &'s [Arc<Feeder>],
    feeder_index: &'s BTreeMap<String, u16>,
    row: Option<u16>,
}

impl Scope for KindScope<'_> {
    fn resolve(&mut self, name: &str) -> Result<Resolved, String> {
        if let Some(&slot) = self.slots.get(name) {
            return Ok(Resolved::Var(slot));
        }
        if let Some((head, column)) = name.split_once('.') {
            let feeder = if head == "row" {
                self.row.ok_or_else(|| {
                    if self.feeders.is_empty() {
                        "`row` reads the user's feeder, but the profile defines no `feeders`".to_owned()
                    } else {
                        format!(
                            "`row` is ambiguous with several feeders: add `feeder: \"...\"` to the user kind, or write `{{{{{}.{column}}}}}`",
                            self.feeder_index.keys().next().map_or("name", String::as_str)
                        )
                    }
                })?
            } else {
                *self.feeder_index.get(head).ok_or_else(|| {
                    let hint = suggest(
                        head,
                        self.feeder_index.keys().map(String::as_str).chain(["row"]),
                    )
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                    format!("`{head}` in `{name}` is not a feeder{hint}")
                })?
            };
            let f = &self.feeders[usize::from(feeder)];
            let col = f.column(column).ok_or_else(|| {
                let hint = suggest(column, f.columns.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                format!(
                    "{} has no column `{column}`{hint} (columns: {})",
                    f.file.display(),
                    f.columns.join(", ")
                )
            })?;
            if let Some(line) = f.first_missing(col) {
                return Err(format!(
                    "line {line} of {} has no `{column}`: give every line that key",
                    f.file.display()
                ));
            }
            return Ok(Resolved::Row {
                feeder,
                column: col,
            });
        }
        if let Some(v) = self.vars.values.get(name) {
            return Ok(Resolved::Const(v.clone()));
        }
        let known = self
            .slots
            .keys()
            .chain(self.vars.values.keys())
            .map(String::as_str);
        let hint = suggest(name, known)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(format!(
            "unknown variable `{name}`{hint}: define it in `variables` (profile or user kind), extract it from a response, or read a feeder column as `row.column`"
        ))
    }

    fn substitute(&mut self, text: &str) -> Result<String, String> {
        self.vars.substitute(text, self.process_env)
    }
}

impl Compiler<'_> {
    /// Compiles a template in the kind's scope.
    pub(super) fn tpl(
        &mut self,
        kind: &KindCtx,
        text: &str,
        escape: Escape,
        field: &str,
    ) -> Result<Template, CompileError> {
        let mut scope = KindScope {
            vars: self.vars,
            process_env: self.process_env,
            slots: &self.slots,
            feeders: &self.out.feeders,
            feeder_index: &self.feeder_index,
            row: kind.row,
        };
        let mut t = Template::compile(text, escape, &mut scope)
            .map_err(|e| error(field, Some(&e.snippet), e.message))?;
        // Constant text lands in the same places as run-time values and gets the same escaping.
        t.escape_literals(escape);
        t.feeders(&mut self.used_feeders);
        Ok(t)
    }

    /// Substitutes `${...}` (no templates), for values that must be known at load time.
    pub(super) fn constant(&mut self, text: &str, field: &str) -> Result<String, CompileError> {
        self.vars
            .substitute(text, self.process_env)
            .map_err(|m| error(field, Some(text), m))
    }
}
