//! Once a response is read: its cookies, the expected statuses, extractions and checks, into the
//! sample's outcome and what the user does next (traced rule by rule for `engine try`), and what it
//! does after a transport failure.

use std::time::Duration;

use formats::{MessageId, Outcome};

use super::{Rendered, UserState};
use crate::clock::Clock;
use crate::http::KeptResponse;
use crate::rng::Rng;
use crate::scenario::RequestPlan;
use crate::scenario::exec::{CONNECT_FAILURE_PAUSE, CoreRequest, CoreScenario, Flow};
use crate::scenario::flow::Last;
use crate::scenario::json::BodyJson;
use crate::scenario::response::Response;
use crate::scenario::rules::{self, RuleLine, RuleTrace};
use crate::scenario::template::Env;
use crate::scenario::vars;

impl UserState {
    /// Applies request `r`'s rules to its complete response (`status`, and what was `kept`), which
    /// ended `latency_us` after it was sent: cookies, the expected statuses, extractions, checks.
    /// Returns the sample's outcome, its interned message if a rule failed, and what the user does
    /// next; a failed check also leaves its message with what it saw in [`UserState::detail`]. With
    /// `trace` (`engine try`), every rule is evaluated and described there; the outcome is the
    /// same as without it.
    #[allow(clippy::too_many_arguments)]
    pub fn on_response(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        global: u32,
        r: usize,
        rendered: Rendered,
        status: u16,
        kept: Option<KeptResponse<'_>>,
        latency_us: u64,
        trace: Option<&mut RuleTrace>,
    ) -> (Outcome, Option<MessageId>, Flow) {
        let rp = &sc.plan.requests[r];
        let cr = &sc.requests[r];
        let UserState {
            vars,
            rows,
            jar,
            iteration,
            wire,
            scratch,
            want,
            decoded,
            detail,
            detail_base,
            last,
            ..
        } = self;
        detail.clear();
        // Failed until every rule below has passed.
        *last = Last { status, ok: false };
        let resp = Response::new(status, kept, decoded);
        if let Some(trace) = trace {
            let failed = (detail, detail_base);
            let out = traced(
                sc, rp, cr, &resp, vars, rows, rng, clock, global, *iteration, scratch, want,
                latency_us, trace, failed,
            );
            last.ok = out.0 == Outcome::Ok;
            return out;
        }
        if rp.cookies && resp.sets_cookies {
            let bytes: &[u8] = match rendered {
                Rendered::Fixed => cr.wire.fixed_bytes().unwrap_or_default(),
                Rendered::Wire => wire,
            };
            let path = request_path(bytes);
            for (name, value) in resp.headers() {
                if name.eq_ignore_ascii_case(b"set-cookie") {
                    jar.store(value, path, sc.this_year);
                }
            }
        }
        if !rp.expect.contains(status) {
            // Later requests would use values this one did not provide.
            let flow = if rp.extract.iter().any(|e| !e.optional) {
                Flow::EndIteration(Duration::ZERO)
            } else {
                Flow::Continue
            };
            return (Outcome::Status, None, flow);
        }
        let mut json = BodyJson::new(&rp.json, resp.body, &sc.json_hits);
        for (i, e) in rp.extract.iter().enumerate() {
            if let Err(missing) = e.apply(&resp, vars, &sc.regex_locs, rng, &mut json)
                && !e.optional
            {
                return (
                    Outcome::Check,
                    Some(cr.extract_messages[i][missing as usize]),
                    Flow::EndIteration(Duration::ZERO),
                );
            }
        }
        if !rp.checks.is_empty() {
            let mut env = env!(sc, vars, rows, rng, global, *iteration, clock, scratch);
            for (i, c) in rp.checks.iter().enumerate() {
                if !c.passes(&resp, latency_us, &mut env, want, &mut json) {
                    describe_failure(c, &resp, latency_us, sc, detail, detail_base);
                    return (Outcome::Check, Some(cr.check_messages[i]), Flow::Continue);
                }
            }
        }
        last.ok = true;
        (Outcome::Ok, None, Flow::Continue)
    }
}

/// Writes a failed check's message with what it saw into `detail`, known secrets replaced.
// Cold and out of line, like `traced`: the checks' code stays inlined into `on_response`.
#[cold]
#[inline(never)]
fn describe_failure(
    c: &rules::Check,
    resp: &Response<'_>,
    latency_us: u64,
    sc: &CoreScenario,
    detail: &mut String,
    detail_base: &mut usize,
) {
    detail.clear();
    detail.push_str(&c.message);
    *detail_base = detail.len();
    detail.push_str(": ");
    c.describe_got(resp, latency_us, detail);
    sc.redact(detail);
}

/// [`UserState::on_response`] past the cookies, for a trace: the same rules in the same order with
/// the same outcome, but every rule is evaluated and described.
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn traced(
    sc: &CoreScenario,
    rp: &RequestPlan,
    cr: &CoreRequest,
    resp: &Response<'_>,
    vars: &mut [Vec<u8>],
    rows: &[u32],
    rng: &mut Rng,
    clock: &Clock,
    global: u32,
    iteration: u64,
    scratch: &mut Vec<u8>,
    want: &mut Vec<u8>,
    latency_us: u64,
    trace: &mut RuleTrace,
    (detail, detail_base): (&mut String, &mut usize),
) -> (Outcome, Option<MessageId>, Flow) {
    trace.lines.clear();
    let mut result = (Outcome::Ok, None, Flow::Continue);
    let mut ended = false;
    let mut json = BodyJson::new(&rp.json, resp.body, &sc.json_hits);
    if !rp.expect.contains(resp.status) {
        let flow = if rp.extract.iter().any(|e| !e.optional) {
            Flow::EndIteration(Duration::ZERO)
        } else {
            Flow::Continue
        };
        result = (Outcome::Status, None, flow);
        ended = true;
    }
    for (i, e) in rp.extract.iter().enumerate() {
        let name = sc.plan.variables.get(usize::from(e.var));
        let mut line = RuleLine {
            check: false,
            label: e.label().to_owned(),
            passed: None,
            detail: String::new(),
            hidden_value: None,
        };
        if !ended {
            match e.apply(resp, vars, &sc.regex_locs, rng, &mut json) {
                Ok(()) => {
                    line.passed = Some(true);
                    let hidden = name.is_some_and(|n| vars::looks_secret(n));
                    let value = &vars[usize::from(e.var)];
                    rules::quote(value, hidden, &mut line.detail);
                    if hidden {
                        line.hidden_value = Some(String::from_utf8_lossy(value).into_owned());
                    }
                }
                Err(missing) => {
                    line.passed = Some(false);
                    line.detail = e.messages[missing as usize]
                        .rsplit_once(": ")
                        .map_or_else(String::new, |(_, why)| why.to_owned());
                    if e.optional {
                        line.detail
                            .push_str(" (optional: the variable keeps its value)");
                    } else {
                        result = (
                            Outcome::Check,
                            Some(cr.extract_messages[i][missing as usize]),
                            Flow::EndIteration(Duration::ZERO),
                        );
                        ended = true;
                    }
                }
            }
        }
        sc.redact(&mut line.detail);
        trace.lines.push(line);
    }
    let mut env = Env {
        vars,
        feeders: &sc.plan.feeders,
        rows,
        rng,
        user: global,
        seat: sc.seat,
        iteration,
        seq: &sc.seq,
        clock,
        scratch,
    };
    for (i, c) in rp.checks.iter().enumerate() {
        let mut line = RuleLine {
            check: true,
            label: c.label().to_owned(),
            passed: None,
            detail: String::new(),
            hidden_value: None,
        };
        if !ended {
            let passed = c.passes(resp, latency_us, &mut env, want, &mut json);
            line.passed = Some(passed);
            c.describe_got(resp, latency_us, &mut line.detail);
            sc.redact(&mut line.detail);
            if !passed && result.0 == Outcome::Ok {
                describe_failure(c, resp, latency_us, sc, detail, detail_base);
                result = (Outcome::Check, Some(cr.check_messages[i]), Flow::Continue);
            }
        }
        trace.lines.push(line);
    }
    result
}

/// What a user does after a request or step failed at the transport level: the rest of the task
/// depends on it having worked, and a failed connect pauses the user so that a refused port cannot
/// spin the core.
pub(crate) fn failure_flow(outcome: Outcome) -> Flow {
    match outcome {
        Outcome::ConnectError | Outcome::ConnectTimeout | Outcome::LocalResource => {
            Flow::EndIteration(CONNECT_FAILURE_PAUSE)
        }
        _ => Flow::EndIteration(Duration::ZERO),
    }
}

/// The path of a rendered request (between the method and ` HTTP/1.1`).
pub(crate) fn request_path(request: &[u8]) -> &[u8] {
    let mut parts = request.splitn(3, |&b| b == b' ');
    parts.next();
    parts.next().unwrap_or(b"/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths() {
        assert_eq!(request_path(b"GET /a/b?c HTTP/1.1\r\n"), b"/a/b?c");
        assert_eq!(request_path(b"garbage"), b"/");
    }
}
