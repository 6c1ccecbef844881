//! `engine try` (and `engine run --debug`): one user of each kind runs a few iterations, and every
//! request and response is printed with what its rules made of it and how long each phase took.
//!
//! It is a run, not a second implementation: the profile is resolved into the same [`Plan`], the
//! plan is cut down to one core with one user per kind and an iteration limit, and the same event
//! loop runs it. The loop calls a `Tracer` after each exchange only when the plan carries one
//! (`SharedPlan::trace`); a normal run carries none, so the request path pays one branch on an
//! `Option` that is always `None`. With a tracer the loop also keeps every response's head and body
//! and evaluates every rule (not only up to the first failure), so that all of them can be shown.

pub(crate) mod print;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use formats::Outcome;

use crate::cli::{DebugArgs, RunArgs, TryArgs};
use crate::error::Error;
use crate::plan::{self, LoadPlan, Plan, PlanEnv, UserPlan};
use crate::profile;
use crate::scenario::rules::RuleTrace;
use crate::schedule::{Population, Spawn};

pub(crate) use print::{Phases, Traced};

/// How much of a body is shown when `--body-limit` is not given.
pub const DEFAULT_BODY_LIMIT: u64 = 2048;
/// How long `engine try` may take when `--duration` is not given.
pub const DEFAULT_TRY_DURATION: Duration = Duration::from_secs(60);

/// The exit status of `engine try` when a request failed (a transport failure, an unexpected
/// status, a failed check or extraction) or none ran, and of `engine run` when every request failed.
pub const EXIT_REQUESTS_FAILED: u8 = 4;

/// What a trace shows and how, shared by the command and the core that traces.
#[derive(Debug)]
pub(crate) struct TraceOptions {
    pub style: print::Style,
    pub json: bool,
    /// Each user kind's name, by index.
    pub kind_names: Vec<String>,
    /// The iterations each user runs.
    pub iterations: u64,
    pub tally: Mutex<Tally>,
}

/// What the traced exchanges came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Requests and steps.
    pub exchanges: u64,
    pub failed: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub extracted: u64,
    pub not_extracted: u64,
}

/// A core's tracer: the options, and the rule trace the loop fills for each response.
#[derive(Debug)]
pub(crate) struct Tracer {
    pub opts: Arc<TraceOptions>,
    pub rules: RuleTrace,
    /// Values extracted into variables whose names look secret so far: hidden from then on wherever
    /// they appear (the body they came from, a later URL), as the profile's secrets are.
    learned: std::cell::RefCell<Vec<String>>,
}

impl Tracer {
    pub fn new(opts: Arc<TraceOptions>) -> Tracer {
        Tracer {
            opts,
            rules: RuleTrace::default(),
            learned: std::cell::RefCell::default(),
        }
    }

    /// The kind's name for a user of kind `kind`.
    pub fn kind_name(&self, kind: usize) -> &str {
        self.opts
            .kind_names
            .get(kind)
            .map_or("user", String::as_str)
    }

    /// Prints one exchange and counts it.
    pub fn exchange(&self, ex: &Traced<'_>) {
        {
            let mut t = self.opts.tally.lock().unwrap_or_else(|e| e.into_inner());
            t.exchanges += 1;
            t.failed += u64::from(ex.outcome != Outcome::Ok);
            for line in ex.rules {
                match (line.check, line.passed) {
                    (true, Some(true)) => t.checks_passed += 1,
                    (true, Some(false)) => t.checks_failed += 1,
                    (false, Some(true)) => t.extracted += 1,
                    (false, Some(false)) => t.not_extracted += 1,
                    (_, None) => {}
                }
            }
        }
        let mut learned = self.learned.borrow_mut();
        for value in ex.rules.iter().filter_map(|l| l.hidden_value.as_ref()) {
            if !learned.contains(value) {
                learned.push(value.clone());
            }
        }
        let mut style = std::borrow::Cow::Borrowed(&self.opts.style);
        if !learned.is_empty() {
            style.to_mut().secrets.extend(learned.iter().cloned());
        }
        let text = if self.opts.json {
            print::json(ex, &style) + "\n"
        } else {
            print::text(ex, &style) + "\n"
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// How `engine try` ended.
#[derive(Debug)]
pub struct TryOutcome {
    /// The run as the engine ran it.
    pub run: crate::RunOutcome,
    /// What the traced exchanges came to.
    pub tally: Tally,
}

impl TryOutcome {
    /// 0 when every request succeeded and every check passed; [`EXIT_REQUESTS_FAILED`] when one
    /// failed or none ran; otherwise the run's own status (130 interrupted, 1 engine failure).
    pub fn exit_code(&self) -> u8 {
        // The run's own counts as well as the trace's: a failure logged before a request went out
        // (a JWT that cannot be minted) or in a custom protocol's step is not traced.
        let failed = self.tally.failed > 0 || self.run.failed > 0;
        let none = self.tally.exchanges == 0 && self.run.requests == 0;
        match self.run.exit_code() {
            0 | EXIT_REQUESTS_FAILED if failed || none => EXIT_REQUESTS_FAILED,
            code => code,
        }
    }
}

/// `engine run --debug`: the same as `engine try` with the run's flags. A run directory is written
/// only when `--out` was given.
pub fn run_debug(
    args: &RunArgs,
    protocols: &crate::protocol::Protocols,
) -> Result<TryOutcome, Error> {
    let t = TryArgs {
        profile: args.profile.clone(),
        url: args.url.clone(),
        env: args.env.clone(),
        host: args.host.clone(),
        vars: args.vars.clone(),
        iterations: args.iterations.unwrap_or(1),
        duration: args.duration,
        out: args.out_given.then(|| args.out.clone()),
        io: args.io,
        show: args.show.clone(),
        no_preflight: args.no_preflight,
    };
    try_with(&t, protocols)
}

/// Runs `engine try`.
pub fn try_with(
    args: &TryArgs,
    protocols: &crate::protocol::Protocols,
) -> Result<TryOutcome, Error> {
    let flag_error = |field: &str, message: String| -> Error {
        plan::PlanError {
            file: None,
            position: None,
            field: field.into(),
            message,
        }
        .into()
    };
    if args.iterations == 0 {
        return Err(flag_error("--iterations", "must be at least 1".into()));
    }
    let mut spec = match (&args.profile, &args.url) {
        (Some(path), _) => profile::load_file(path)?,
        (None, Some(url)) => plan::adhoc_spec(url)?,
        (None, None) => {
            return Err(flag_error("PROFILE", "give a profile file or --url".into()));
        }
    };
    let kind_names: Vec<String> = spec
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| u.name.clone().unwrap_or_else(|| format!("user kind {i}")))
        .collect();
    let kinds = kind_names.len().max(1) as u32;
    let duration = args.duration.unwrap_or(DEFAULT_TRY_DURATION);
    // The profile's load model does not matter: one user of each kind, all at once.
    spec.load = profile::spec::LoadSpec::Closed {
        users: kinds,
        spawn_rate: None,
        duration: profile::spec::DurationSpec(duration),
        iterations: None,
        iterations_per_user: Some(args.iterations),
    };
    let (out_dir, temporary) = match &args.out {
        Some(dir) => (dir.clone(), false),
        None => (temp_dir()?, true),
    };
    let run_args = RunArgs {
        profile: args.profile.clone(),
        url: args.url.clone(),
        env: args.env.clone(),
        host: args.host.clone(),
        cores: Some(1),
        out: out_dir.clone(),
        io: args.io,
        vars: args.vars.clone(),
        quiet: true,
        no_preflight: args.no_preflight,
        ..RunArgs::default()
    };
    let env = PlanEnv::from_process(crate::sys::allowed_cpus());
    let result: Result<TryOutcome, Error> = (|| {
        let mut plan = Plan::resolve_with(spec, &run_args, &env, protocols).map_err(|mut e| {
            if e.file.is_none() && !e.field.starts_with("--") && !e.field.starts_with("STAMPEDE_") {
                e.file.clone_from(&args.profile);
            }
            e
        })?;
        one_user_per_kind(&mut plan, kinds);
        let opts = Arc::new(TraceOptions {
            style: print::Style {
                body_limit: usize::try_from(args.show.body_limit.unwrap_or(DEFAULT_BODY_LIMIT))
                    .unwrap_or(usize::MAX),
                color: !args.show.json
                    && std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none(),
                secrets: plan.secrets.clone(),
            },
            json: args.show.json,
            kind_names: kind_names.clone(),
            iterations: args.iterations,
            tally: Mutex::new(Tally::default()),
        });
        if !args.show.json {
            eprintln!(
                "stampede try: {} ({}), {} iteration{} each, at most {}",
                match kinds {
                    1 => "1 user".to_owned(),
                    n => format!("{n} users, one of each kind"),
                },
                kind_names.join(", "),
                args.iterations,
                if args.iterations == 1 { "" } else { "s" },
                profile::spec::HumanDuration(duration),
            );
        }
        let run = crate::runner::execute_traced(plan, Arc::clone(&opts))?;
        let tally = *opts.tally.lock().unwrap_or_else(|e| e.into_inner());
        Ok(TryOutcome { run, tally })
    })();
    if temporary {
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    let outcome = result?;
    if !args.show.json {
        print_verdict(&outcome, args.out.is_some());
    }
    Ok(outcome)
}

/// The plan cut down to one core with one user of each kind, starting at once.
fn one_user_per_kind(plan: &mut Plan, kinds: u32) {
    plan.cores.truncate(1);
    let core = &mut plan.cores[0];
    core.users = (0..kinds)
        .map(|k| UserPlan {
            global: k,
            kind: k as usize,
            spawn_at: Duration::ZERO,
        })
        .collect();
    core.iterations = None;
    core.open = None;
    if let LoadPlan::Closed {
        iterations_per_user,
        ..
    } = &plan.load
    {
        plan.load = LoadPlan::Closed {
            population: Population::Spawn(Spawn {
                users: kinds,
                rate: None,
            }),
            iterations_per_user: *iterations_per_user,
        };
    }
    plan.users = kinds;
    plan.iterations = None;
    plan.shard = None;
    plan.start_at = None;
    plan.run_name = None;
}

/// The last lines of `engine try`: what passed and failed, and what the exit status says.
fn print_verdict(outcome: &TryOutcome, kept: bool) {
    let t = &outcome.tally;
    let ok = outcome.exit_code() == 0;
    let mut line = format!(
        "{} request{}, {} failed; checks: {} passed, {} failed; extractions: {} found, {} missing",
        t.exchanges,
        if t.exchanges == 1 { "" } else { "s" },
        t.failed,
        t.checks_passed,
        t.checks_failed,
        t.extracted,
        t.not_extracted
    );
    if t.exchanges == 0 {
        line.push_str(" (no request ran: does every user kind have a task?)");
    }
    let verdict = if ok {
        "PASSED: every request succeeded and every check passed (exit 0)".to_owned()
    } else {
        format!(
            "FAILED: exit {} ({})",
            outcome.exit_code(),
            match outcome.exit_code() {
                EXIT_REQUESTS_FAILED => "a request or check failed",
                130 => "interrupted",
                _ => "the engine failed",
            }
        )
    };
    // Written, not printed: `engine try ... | head` closes stdout early, which is no reason to panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}\n{verdict}");
    if kept {
        let _ = writeln!(out, "{}", outcome.run.dir.display());
    }
}

/// A fresh directory for a run nobody asked to keep.
fn temp_dir() -> Result<PathBuf, Error> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("stampede-try-{}-{nanos:09}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Checks flags that only mean something with `--debug`.
pub(crate) fn check_debug_flags(args: &RunArgs) -> Result<(), Error> {
    let DebugArgs { body_limit, json } = &args.show;
    let flag = if *json {
        "--json"
    } else if body_limit.is_some() {
        "--body-limit"
    } else {
        return Ok(());
    };
    if args.debug {
        return Ok(());
    }
    Err(plan::PlanError {
        file: None,
        position: None,
        field: flag.into(),
        message: "shows traced requests: use it with --debug (or `engine try`)".into(),
    }
    .into())
}
