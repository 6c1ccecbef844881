//! A core's copy of the scenario (requests with their interned names and messages, feeder cursors,
//! shared tokens), what a user does after each request ([`Flow`]), and when its next iteration is
//! due ([`next_ready`]). What happens around one request is `user/`; a user's life is
//! `program/`.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use formats::{MessageId, NameId};
use regex::bytes::CaptureLocations;

use super::Scenario;
use super::auth::SharedToken;
use super::cookies;
use super::feeder::Cursor;
use super::json::Found;
use super::rules::Source;
use super::script::ScriptHost;
use super::wire::Wire;
use crate::clock::micros;
use crate::http::Keep;
use crate::plan::Wait;
use crate::profile::spec::Method;
use crate::schedule::{self, Seat};

/// After a failed connect a user pauses this long before its next attempt, so that a refused port
/// cannot spin a core at 100 % (a refused loopback connect can fail without ever yielding).
pub(crate) const CONNECT_FAILURE_PAUSE: Duration = Duration::from_millis(1);

/// Interns names and messages in a core's log.
pub(crate) trait Interner {
    fn name(&mut self, name: &str) -> NameId;
    fn message(&mut self, message: &str) -> MessageId;
}

/// A request as one core runs it.
#[derive(Debug)]
pub(crate) struct CoreRequest {
    pub name: NameId,
    /// A HEAD request (its response has no body).
    pub head: bool,
    pub keep: Keep,
    pub wire: Wire,
    /// Per extraction: "not found" and "not JSON".
    pub extract_messages: Vec<[MessageId; 2]>,
    pub check_messages: Vec<MessageId>,
}

/// A core's scenario state: its own copy of the compiled scenario, and its feeder cursors, counters
/// and shared tokens. Single-threaded.
#[derive(Debug)]
pub(crate) struct CoreScenario {
    pub plan: Scenario,
    pub requests: Vec<CoreRequest>,
    /// Each step's interned name.
    pub step_names: Vec<NameId>,
    /// Each loop label's interned name and give-up message.
    pub label_names: Vec<NameId>,
    pub label_messages: Vec<MessageId>,
    /// This core's script interpreter (or why it did not start), and each called function's
    /// interned sample name.
    pub(crate) script: Option<Result<RefCell<ScriptHost>, String>>,
    pub script_names: Vec<NameId>,
    pub(crate) cursors: Vec<Cursor>,
    pub(crate) seq: Cell<u64>,
    /// Per auth plan; used by per-core OAuth2 tokens.
    pub(crate) tokens: Vec<SharedToken>,
    pub(crate) regex_locs: Vec<RefCell<CaptureLocations>>,
    /// The answers of a response's one JSON walk, a slot for every selector of the largest set.
    pub(crate) json_hits: RefCell<Vec<Found>>,
    /// This core's shard and index.
    pub(crate) seat: Seat,
    pub(crate) this_year: u32,
    /// The values of the profile's secrets, hidden wherever a response's text is quoted (failure
    /// messages, traces).
    pub(crate) secrets: Vec<String>,
}

impl CoreScenario {
    /// This core's copy of `plan`, with names and messages interned in its log.
    pub fn new(
        plan: &Scenario,
        wires: &[Wire],
        seat: Seat,
        wall_secs: u64,
        interner: &mut dyn Interner,
    ) -> CoreScenario {
        let plan = plan.clone();
        let mut locs: Vec<Option<RefCell<CaptureLocations>>> = Vec::new();
        let requests = plan
            .requests
            .iter()
            .zip(wires)
            .map(|(r, wire)| {
                let mut keep = Keep {
                    cookies: r.cookies,
                    ..Keep::default()
                };
                for k in r
                    .extract
                    .iter()
                    .map(|e| e.keep())
                    .chain(r.checks.iter().map(|c| c.keep()))
                {
                    keep.head |= k.head;
                    keep.body |= k.body;
                }
                for e in &r.extract {
                    if let Source::Regex(re, slot) = &e.source {
                        let slot = usize::from(*slot);
                        if locs.len() <= slot {
                            locs.resize_with(slot + 1, || None);
                        }
                        locs[slot] = Some(RefCell::new(re.capture_locations()));
                    }
                }
                CoreRequest {
                    name: interner.name(&r.name),
                    head: r.method == Method::HEAD,
                    keep,
                    wire: wire.clone(),
                    extract_messages: r
                        .extract
                        .iter()
                        .map(|e| {
                            [
                                interner.message(&e.messages[0]),
                                interner.message(&e.messages[1]),
                            ]
                        })
                        .collect(),
                    check_messages: r
                        .checks
                        .iter()
                        .map(|c| interner.message(&c.message))
                        .collect(),
                }
            })
            .collect();
        let step_names = plan.steps.iter().map(|s| interner.name(&s.name)).collect();
        let label_names = plan.labels.iter().map(|l| interner.name(&l.name)).collect();
        let label_messages = plan
            .labels
            .iter()
            .map(|l| interner.message(&l.give_up))
            .collect();
        let script = plan
            .script
            .as_ref()
            .map(|s| ScriptHost::new(s, &plan.script_calls).map(RefCell::new));
        let script_names = plan
            .script_calls
            .iter()
            .map(|f| interner.name(&format!("script {f}")))
            .collect();
        CoreScenario {
            step_names,
            label_names,
            label_messages,
            script,
            script_names,
            cursors: plan.feeders.iter().map(|_| Cursor::default()).collect(),
            tokens: plan.auths.iter().map(|_| SharedToken::default()).collect(),
            regex_locs: locs
                .into_iter()
                .map(|l| l.expect("every extraction regex has its slot"))
                .collect(),
            json_hits: RefCell::new(vec![
                Ok(None);
                plan.requests
                    .iter()
                    .map(|r| r.json.len())
                    .max()
                    .unwrap_or(0)
            ]),
            requests,
            plan,
            seq: Cell::new(0),
            seat,
            this_year: cookies::current_year(wall_secs),
            secrets: Vec::new(),
        }
    }

    /// Replaces every secret value in `text` with `***`. Values shorter than four characters are
    /// left alone: hiding every `1` would hide nothing and garble everything.
    pub fn redact(&self, text: &mut String) {
        for s in self.secrets.iter().filter(|s| s.len() >= 4) {
            if text.contains(s.as_str()) {
                *text = text.replace(s.as_str(), crate::plan::REDACTED);
            }
        }
    }
}

/// What the user does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on.
    Continue,
    /// Abandon the rest of this iteration (a request failed, or a value it needed is missing), and
    /// pause at least this long.
    EndIteration(Duration),
    /// The core is stopping.
    Stop,
    /// The run ends before the user's next step is due.
    RunOver,
}

/// When the next iteration is due. `iteration_start_us` is when this one was due, `end_us` when it
/// ended, `unit` a random number in [0, 1), `pause` a floor after failures. `Pacing` keeps iteration
/// starts `interval` apart (an iteration that overran is followed at once); the others think after
/// the iteration's end.
pub(crate) fn next_ready(
    wait: Wait,
    iteration_start_us: u64,
    end_us: u64,
    unit: f64,
    pause: Duration,
) -> u64 {
    let floor = end_us.saturating_add(micros(pause));
    match wait {
        Wait::Pacing(interval) => iteration_start_us
            .saturating_add(micros(interval))
            .max(floor),
        other => end_us
            .saturating_add(micros(schedule::think(other, unit)))
            .max(floor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ready_table() {
        let ms = Duration::from_millis;
        let rows: &[(Wait, u64, u64, f64, Duration, u64)] = &[
            // No think time: at once.
            (Wait::None, 0, 5_000, 0.5, ms(0), 5_000),
            // Think after the end.
            (Wait::Constant(ms(100)), 0, 5_000, 0.5, ms(0), 105_000),
            (
                Wait::Between(ms(100), ms(300)),
                0,
                5_000,
                0.5,
                ms(0),
                205_000,
            ),
            // Pacing: 500 ms after the iteration's start, whatever it took.
            (
                Wait::Pacing(ms(500)),
                1_000_000,
                1_200_000,
                0.5,
                ms(0),
                1_500_000,
            ),
            // An iteration that overran its pacing interval: the next starts at once.
            (
                Wait::Pacing(ms(500)),
                1_000_000,
                1_700_000,
                0.5,
                ms(0),
                1_700_000,
            ),
            // A connect failure's pause is a floor.
            (Wait::None, 0, 5_000, 0.5, ms(1), 6_000),
            (Wait::Pacing(ms(500)), 0, 499_500, 0.5, ms(1), 500_500),
            // Saturates instead of overflowing.
            (Wait::Constant(ms(1)), 0, u64::MAX, 0.5, ms(0), u64::MAX),
        ];
        for (i, &(wait, start, end, unit, pause, want)) in rows.iter().enumerate() {
            assert_eq!(next_ready(wait, start, end, unit, pause), want, "row {i}");
        }
    }
}
