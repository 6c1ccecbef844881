//! Extraction (response → user variable) and checks (response → pass or fail), compiled at load time.
//!
//! Each rule carries the failure message that names it, written once from the rule as the profile
//! wrote it (so `${secret}` stays unexpanded); cores intern the messages when they start, and a
//! failing request only copies an id. A failed check also says what it saw ([`Check::describe_got`]:
//! `expected status 201, got 409`), written into a buffer the user reuses, only when it fails.

mod check;
mod extract;
#[cfg(test)]
mod testing;
mod trace;

pub(crate) use check::{Check, CheckKind, Want};
pub(crate) use extract::{Extraction, Source};
pub(crate) use trace::{RuleLine, RuleTrace, quote};

use super::json::SelectorSet;

/// Gathers the JSON selectors of a request's extractions and checks into the set its responses are
/// walked for, giving each rule its slot (`Random(Json(...))` draws count every match, and is
/// looked up on its own).
pub(crate) fn share_selectors(extract: &mut [Extraction], checks: &mut [Check]) -> SelectorSet {
    let mut set = SelectorSet::default();
    for e in extract {
        if let Source::Json(pick) = &mut e.source {
            set.add(pick);
        }
    }
    for c in checks {
        if let CheckKind::JsonEquals(pick, _) | CheckKind::JsonExists(pick) = &mut c.kind {
            set.add(pick);
        }
    }
    set
}
