//! Checks of `flow: [...]` that need no compiling: loop bounds, `Break` outside a loop, loops that
//! would hold the core, probabilities and status codes in conditions.

use super::{MAX_TASK_DEPTH, Problem, check_request, check_task, check_wait, is_identifier};
use crate::profile::spec::{CondSpec, FlowSpec, WaitSpec};

/// Checks a `flow` list at `at`, nested `depth` deep; `in_loop` when a `Break` has a loop to leave.
pub(super) fn check_flow(
    flow: &[FlowSpec],
    at: &str,
    depth: usize,
    in_loop: bool,
) -> Result<(), Problem> {
    if depth > MAX_TASK_DEPTH {
        return Err((
            at.into(),
            format!(
                "control flow and task groups nest more than {MAX_TASK_DEPTH} deep; flatten them"
            ),
        ));
    }
    for (i, item) in flow.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match item {
            FlowSpec::Request(req) => check_request(req, &format!("{at}.Request"))?,
            FlowSpec::Step(_) | FlowSpec::Set(..) => {}
            FlowSpec::Task(task) => check_task(task, &format!("{at}.Task"), depth + 1)?,
            FlowSpec::If {
                cond,
                then,
                otherwise,
            } => {
                check_cond(cond, &format!("{at}.If.cond"))?;
                if then.is_empty() && otherwise.is_empty() {
                    return Err((
                        format!("{at}.If.then"),
                        "an `If` with nothing in `then` or `else` does nothing: remove it".into(),
                    ));
                }
                check_flow(then, &format!("{at}.If.then"), depth + 1, in_loop)?;
                check_flow(otherwise, &format!("{at}.If.else"), depth + 1, in_loop)?;
            }
            FlowSpec::While {
                cond,
                max,
                wait,
                body,
            } => {
                check_cond(cond, &format!("{at}.While.cond"))?;
                if *max == 0 {
                    return Err((format!("{at}.While.max"), "max must be at least 1".into()));
                }
                check_loop_body(body, wait.as_ref(), &format!("{at}.While"), depth)?;
            }
            FlowSpec::Repeat {
                until,
                max,
                timeout,
                wait,
                body,
                ..
            } => {
                check_cond(until, &format!("{at}.Repeat.until"))?;
                if *max == Some(0) {
                    return Err((format!("{at}.Repeat.max"), "max must be at least 1".into()));
                }
                if timeout.is_some_and(|t| t.0.is_zero()) {
                    return Err((
                        format!("{at}.Repeat.timeout"),
                        "a timeout of zero gives up before the first pass ends; give e.g. \"30s\""
                            .into(),
                    ));
                }
                check_loop_body(body, wait.as_ref(), &format!("{at}.Repeat"), depth)?;
            }
            FlowSpec::Break if !in_loop => {
                return Err((
                    at,
                    "`Break` leaves a `While` or `Repeat`, and there is none around it".into(),
                ));
            }
            FlowSpec::Break => {}
            FlowSpec::Script { into, .. } => {
                if let Some(name) = into
                    && !is_identifier(name)
                {
                    return Err((
                        format!("{at}.Script.into"),
                        format!(
                            "{name:?} cannot name a variable: use letters, digits and `_`, starting with a letter or `_`"
                        ),
                    ));
                }
            }
            FlowSpec::Pause(w) => check_inner_wait(w, &format!("{at}.Pause"))?,
        }
        if let FlowSpec::Set(name, _) = item
            && !is_identifier(name)
        {
            return Err((
                format!("{at}.Set"),
                format!(
                    "{name:?} cannot name a variable: use letters, digits and `_`, starting with a letter or `_`"
                ),
            ));
        }
    }
    Ok(())
}

fn check_loop_body(
    body: &[FlowSpec],
    wait: Option<&WaitSpec>,
    at: &str,
    depth: usize,
) -> Result<(), Problem> {
    if let Some(w) = wait {
        check_inner_wait(w, &format!("{at}.wait"))?;
    }
    // A pass that neither sends nor waits would run every pass at once, holding the core.
    if !body.iter().any(yields) && wait.is_none_or(|w| matches!(w, WaitSpec::None)) {
        return Err((
            format!("{at}.do"),
            "the loop neither sends a request nor waits: put a `Request`, `Step` or `Task` in `do`, or give `wait`".into(),
        ));
    }
    check_flow(body, &format!("{at}.do"), depth + 1, true)
}

/// Whether a flow element may make a request, run a step or think.
fn yields(item: &FlowSpec) -> bool {
    match item {
        FlowSpec::Request(_) | FlowSpec::Step(_) | FlowSpec::Task(_) | FlowSpec::Pause(_) => true,
        FlowSpec::If {
            then, otherwise, ..
        } => then.iter().chain(otherwise).any(yields),
        FlowSpec::While { body, .. } | FlowSpec::Repeat { body, .. } => body.iter().any(yields),
        FlowSpec::Break | FlowSpec::Set(..) | FlowSpec::Script { .. } => false,
    }
}

fn check_inner_wait(wait: &WaitSpec, at: &str) -> Result<(), Problem> {
    if matches!(wait, WaitSpec::Pacing(_)) {
        return Err((
            at.into(),
            "Pacing spaces a user's iterations; inside a task use Constant or Between".into(),
        ));
    }
    check_wait(wait, at)
}

fn check_cond(cond: &CondSpec, at: &str) -> Result<(), Problem> {
    match cond {
        CondSpec::Chance(p) if !(0.0..=1.0).contains(p) => Err((
            at.into(),
            format!(
                "Chance({p}) is not a probability: give a number from 0 to 1, e.g. Chance(0.25)"
            ),
        )),
        CondSpec::Lt(_, n) | CondSpec::Le(_, n) | CondSpec::Gt(_, n) | CondSpec::Ge(_, n)
            if !n.is_finite() =>
        {
            Err((at.into(), format!("{n} is not a finite number")))
        }
        CondSpec::LastStatus(codes) => match codes.iter().find(|c| !(100..=599).contains(*c)) {
            _ if codes.is_empty() => Err((
                at.into(),
                "LastStatus([...]) needs at least one status code".into(),
            )),
            Some(bad) => Err((
                at.into(),
                format!("{bad} is not an HTTP status code (100-599)"),
            )),
            None => Ok(()),
        },
        CondSpec::All(all) | CondSpec::Any(all) => {
            if all.is_empty() {
                return Err((at.into(), "give at least one condition".into()));
            }
            all.iter().try_for_each(|c| check_cond(c, at))
        }
        CondSpec::Not(inner) => check_cond(inner, at),
        _ => Ok(()),
    }
}
