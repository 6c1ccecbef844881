//! `engine run`: from flags to a finalized run directory.
//!
//! Order of events: read the profile and resolve the plan (bad input stops here, before any file is
//! written); pick the I/O driver; start the embedded target if asked; resolve the host once (a shard,
//! or a run with `--start-at`, also connects to it once); create the run directory and write the
//! manifest as `running`; with `--start-at`, wait for the start instant; start one thread per core;
//! act as the coordinator (console, signals) until every core is done; finalize the manifest.
//!
//! Everything that can go wrong before the load starts happens before `--start-at`, so an orchestrator
//! sees a shard that cannot start as a non-zero exit, not as a shard that never reports.

mod run_dir;
mod signals;
mod start;
mod targets;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use formats::{LogHeader, RunState};

use crate::cli::RunArgs;
use crate::clock;
use crate::console::{self, Console};
use crate::core::{self, CoreDone, CoreSetup, Report, SharedPlan};
use crate::driver::IoDriver;
use crate::error::Error;
use crate::http::Limits;
use crate::plan::{Plan, PlanEnv, Target};
use crate::scenario::wire::Wire;
use crate::serve::Server;
use crate::{plan, profile, sys};
use run_dir::new_manifest;
use start::check_not_late;
use targets::{channel_endpoints, check_targets, resolve, tls_client};

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The state written to the manifest.
    pub state: RunState,
    /// Requests (and steps) logged, and how many of them failed.
    pub requests: u64,
    pub failed: u64,
    /// `--failures-are-data`: a run in which every request failed still exits 0.
    pub failures_are_data: bool,
}

impl RunOutcome {
    /// 0 for a completed run, 4 ([`crate::debug::EXIT_REQUESTS_FAILED`]) for a completed run in
    /// which every request failed (unless `--failures-are-data`), 130 for an interrupted one, 1 when
    /// the engine failed on its own (for example a full disk). Some failed requests are data, not an
    /// error; a run that never got one response through measured nothing of the target.
    pub fn exit_code(&self) -> u8 {
        match self.state {
            RunState::Completed if self.all_failed() && !self.failures_are_data => {
                crate::debug::EXIT_REQUESTS_FAILED
            }
            RunState::Completed => 0,
            RunState::Interrupted => 130,
            RunState::Failed | RunState::Running => 1,
        }
    }

    /// Whether requests ran and every one of them failed.
    pub fn all_failed(&self) -> bool {
        self.requests > 0 && self.failed == self.requests
    }
}

/// Runs `engine run` with these flags. Prints the console to stderr, then the summary and (last) the
/// run directory to stdout.
pub fn run(args: &RunArgs) -> Result<RunOutcome, Error> {
    run_with(args, &crate::protocol::Protocols::default())
}

/// [`run`], with custom protocols that profiles may select by name.
pub fn run_with(
    args: &RunArgs,
    protocols: &crate::protocol::Protocols,
) -> Result<RunOutcome, Error> {
    crate::debug::check_debug_flags(args)?;
    let spec = match (&args.profile, &args.url) {
        (Some(path), _) => profile::load_file(path)?,
        (None, Some(url)) => plan::adhoc_spec(url)?,
        (None, None) => {
            let message = "give a profile file or --url".into();
            return Err(plan::PlanError {
                file: None,
                position: None,
                field: "PROFILE".into(),
                message,
            }
            .into());
        }
    };
    let mut plan_env = PlanEnv::from_process(sys::allowed_cpus());
    let mut server_cpu = None;
    // The embedded target gets a CPU of its own when there is one to spare and --cores leaves it free.
    if spec_uses_embedded(&spec, args, &plan_env) && args.cores.is_none() && plan_env.cpus.len() > 1
    {
        server_cpu = plan_env.cpus.pop();
    }
    let plan = Plan::resolve_with(spec, args, &plan_env, protocols).map_err(|mut e| {
        // Faults in profile fields (not flags or environment variables) name the file, like the
        // parser's errors do.
        if e.file.is_none()
            && !e.field.starts_with("--")
            && !e.field.starts_with("STAMPEDE_")
            && e.field != crate::shard::ENV_INDEX
        {
            e.file.clone_from(&args.profile);
        }
        e
    })?;
    if let Some(start) = plan.start_at {
        check_not_late(&plan, start.unix_ns, "")?;
    }
    let mut outcome = execute(plan, server_cpu, &args.live, None)?;
    outcome.failures_are_data = args.failures_are_data;
    if outcome.all_failed() {
        eprintln!(
            "{}",
            all_failed_message(outcome.requests, args.failures_are_data)
        );
    }
    Ok(outcome)
}

/// What the engine says when every request of a run failed.
fn all_failed_message(requests: u64, failures_are_data: bool) -> String {
    let exit = if failures_are_data {
        "exit status 0 (--failures-are-data)".to_owned()
    } else {
        format!(
            "exit status {} (--failures-are-data makes it 0)",
            crate::debug::EXIT_REQUESTS_FAILED
        )
    };
    format!(
        "ERROR: every one of the {} requests failed, so this run measured nothing of the target (the reasons are above); check the host and that the target is up, and try one user with `engine try`; {exit}",
        console::thousands(requests)
    )
}

/// Runs a plan with a tracer on its one core (`engine try`): no live lines, no summary table, no run
/// directory printed; the tracer prints the exchanges.
pub(crate) fn execute_traced(
    plan: Plan,
    trace: Arc<crate::debug::TraceOptions>,
) -> Result<RunOutcome, Error> {
    execute(plan, None, &crate::cli::LiveArgs::default(), Some(trace))
}

/// The load model in a few words, for the console's first line.
fn describe_load(plan: &Plan) -> String {
    let limit = plan
        .iterations
        .map(|n| format!(", at most {n} iterations"))
        .unwrap_or_default();
    // A shard says its part of the whole.
    let (shard, of) = match &plan.shard {
        Some(s) => (format!("shard {}: ", s.shard), " in all shards"),
        None => (String::new(), ""),
    };
    let mine: usize = plan.cores.iter().map(|c| c.users.len()).sum();
    let users = |total: u32| match &plan.shard {
        Some(_) => format!("{mine} of {total}"),
        None => total.to_string(),
    };
    let load = match &plan.load {
        plan::LoadPlan::Closed { population, .. } => match population {
            // A plan never holds a steered population; it comes about during the run.
            crate::schedule::Population::Spawn(_) | crate::schedule::Population::Steered(_) => {
                format!("{} users (closed){limit}", users(plan.users))
            }
            crate::schedule::Population::Stages(s) => {
                format!(
                    "up to {} users in {} stages (closed){limit}",
                    users(plan.users),
                    s.stages.len()
                )
            }
        },
        plan::LoadPlan::Open {
            curve, max_users, ..
        } => {
            let arrivals = plan
                .iterations
                .map_or(curve.arrivals(), |n| n.min(curve.arrivals()));
            let arrivals = match &plan.shard {
                Some(s) => plan::share(arrivals, s.shard.count, s.shard.index),
                None => arrivals,
            };
            format!(
                "{arrivals} arrivals, {:.1}/s on average (open, at most {max_users} users busy{of})",
                arrivals as f64 / plan.duration.as_secs_f64().max(1e-9)
            )
        }
    };
    format!("{shard}{load}")
}

fn spec_uses_embedded(spec: &profile::ProfileSpec, args: &RunArgs, env: &PlanEnv) -> bool {
    let process = |k: &str| env.vars.get(k).filter(|v| !v.is_empty());
    let env_host = args
        .env
        .as_ref()
        .or(process(plan::ENV_SELECT))
        .or(spec.default_environment.as_ref())
        .and_then(|e| spec.environments.get(e))
        .and_then(|e| e.host.clone());
    args.host
        .clone()
        .or(process(plan::ENV_HOST).cloned())
        .or(env_host)
        .or_else(|| spec.host.clone())
        .as_deref()
        == Some("embedded")
}

fn execute(
    plan: Plan,
    server_cpu: Option<u32>,
    live_args: &crate::cli::LiveArgs,
    trace: Option<Arc<crate::debug::TraceOptions>>,
) -> Result<RunOutcome, Error> {
    let driver = IoDriver::select(plan.io).map_err(|source| Error::Driver {
        driver: "io_uring",
        source,
    })?;
    sys::raise_nofile_limit();
    // A taken --web or --metrics port stops the run here, before anything is written.
    let listeners = crate::live::Listeners::bind(live_args)?;

    let mut server = None;
    let (addrs, host_header, target_url) = match &plan.target {
        Target::Embedded => {
            let behaviour = crate::serve::Behaviour::from_spec(&plan.embedded);
            let s = Server::start_with(&crate::serve::ServerConfig {
                addr: "127.0.0.1:0".into(),
                threads: 1,
                io: plan.io,
                cpu: server_cpu,
                record: false,
                behaviour,
            })
            .map_err(|source| Error::System {
                context: "starting the embedded target",
                source,
            })?;
            let addr = s.addr();
            server = Some(s);
            (vec![addr], addr.to_string(), format!("http://{addr}"))
        }
        Target::Http {
            host, port, tls, ..
        } => {
            let addrs = resolve(host, *port)?;
            let default_port = if *tls { 443 } else { 80 };
            let header = if *port == default_port {
                host.clone()
            } else {
                format!("{host}:{port}")
            };
            let scheme = if *tls { "https" } else { "http" };
            (addrs, header, format!("{scheme}://{host}:{port}"))
        }
        Target::Other {
            scheme,
            host,
            port,
            path,
        } => (
            resolve(host, *port)?,
            format!("{host}:{port}"),
            format!("{scheme}://{host}:{port}{path}"),
        ),
    };
    let tls = match &plan.target {
        Target::Http {
            host, tls: true, ..
        } => Some(tls_client(&plan, host, &[b"http/1.1"])?),
        _ => None,
    };
    let endpoints = channel_endpoints(&plan, &addrs)?;
    if plan.shard.is_some() || plan.start_at.is_some() {
        check_targets(&plan, &addrs, &endpoints, &target_url)?;
    }
    let mut channel_tls = Vec::new();
    for e in &endpoints {
        channel_tls.push(if e.scheme == "wss" {
            Some(tls_client(&plan, &e.host, &[b"http/1.1"])?)
        } else {
            None
        });
    }
    if plan.tls.insecure && tls.is_none() && channel_tls.iter().any(Option::is_some) {
        eprintln!(
            "warning: TLS certificate verification is off (`insecure: true`): any certificate is accepted; the manifest records this"
        );
    }
    if tls.is_some() && plan.tls.insecure {
        eprintln!(
            "warning: TLS certificate verification is off (`insecure: true`): any certificate is accepted; the manifest records this"
        );
    }

    let shared = Arc::new(SharedPlan {
        wires: plan
            .scenario
            .requests
            .iter()
            .map(|r| Wire::build(r, &host_header))
            .collect(),
        scenario: plan.scenario.clone(),
        limits: Limits {
            connect_timeout: plan.http.connect_timeout,
            request_timeout: plan.http.request_timeout,
            max_body: plan.http.max_body,
        },
        addrs,
        tls,
        endpoints,
        live: listeners.is_some(),
        channel_tls,
        duration: plan.duration,
        load: plan.load.clone(),
        secrets: plan.secrets.clone(),
        trace: trace.clone(),
        linger_us: plan.linger_us,
    });
    if let Some(t) = &trace
        && !t.json
    {
        eprintln!(
            "stampede try: against {target_url}, {} I/O",
            driver.manifest_name()
        );
    }

    // Ctrl-C / SIGTERM: the first asks every core to stop (they look every 50 ms); the second exits at once.
    let (stop, signal_count, signal_handle) = signals::install()?;

    // With --start-at, this waits for the start instant.
    let (clock, dir, run_id) = start::start(&plan, &target_url, driver, &stop)?;
    let mut manifest = new_manifest(&plan, run_id, clock, &target_url, driver);
    if plan.shard.is_some()
        && let Some(sync) = &manifest.clock_sync
        && !sync.synchronised
    {
        eprintln!(
            "warning: this machine's clock is not synchronised (adjtimex says so): its shard's schedule lines up with the others' only as well as the clocks agree; run NTP, chrony or PTP on every load generator"
        );
    }
    if let Some(s) = &plan.shard
        && plan.cores.iter().all(|c| c.users.is_empty())
        && matches!(plan.load, plan::LoadPlan::Closed { .. })
    {
        eprintln!(
            "warning: shard {} has no users: the test's {} users are dealt over {} shards; use fewer shards",
            s.shard, plan.users, s.shard.count
        );
    }
    manifest.write_to(&dir).map_err(|source| Error::Write {
        path: dir.join("manifest.json"),
        source,
    })?;

    if !plan.quiet {
        eprintln!(
            "stampede: {} on {} core(s), {} I/O ({}), {} against {}",
            describe_load(&plan),
            plan.cores.len(),
            driver.manifest_name(),
            driver.setup_name(),
            profile::spec::HumanDuration(plan.duration),
            target_url
        );
    }

    // Steering comes with the dashboard: its control channel to each core exists only then.
    let (steering, mut steer_rx) = match &listeners {
        Some(l) if l.serves_web() => {
            let (s, rx) = crate::steer::Steering::new(&plan, clock, Arc::clone(&stop));
            (Some(s), rx)
        }
        _ => (None, Vec::new()),
    };
    if live_args.max_users.is_some() && !plan.quiet {
        match (steering.as_ref().and_then(|s| s.refused()), &plan.load) {
            (Some(reason), _) => {
                eprintln!(
                    "warning: --max-users has no effect: this run cannot be steered ({reason})"
                );
            }
            (None, plan::LoadPlan::Open { .. }) => eprintln!(
                "warning: --max-users has no effect on an open model: steering changes its arrival rate, and its pool stays the profile's max_users"
            ),
            (None, _) if live_args.max_users < Some(plan.users) => eprintln!(
                "warning: --max-users is below the profile's {} users: steering may ask for up to {0}",
                plan.users
            ),
            _ => {}
        }
    }
    let mut live = match listeners {
        Some(listeners) => Some(crate::live::Live::start(
            listeners,
            crate::live::RunInfo {
                profile: plan.name.clone(),
                run_id: run_id.to_string(),
                environment: plan.environment.clone(),
                target: target_url.clone(),
                load: describe_load(&plan),
                open_model: matches!(plan.load, plan::LoadPlan::Open { .. }),
                planned_s: plan.duration.as_secs_f64(),
                cores: plan.cores.len() as u32,
                io: driver.manifest_name().to_owned(),
                started_at: manifest.started_at.clone(),
                dir: dir.display().to_string(),
                engine_version: manifest.engine_version.clone(),
                shard: manifest.shard.as_ref().map(|s| (s.index, s.count)),
                can_stop: true,
            },
            plan.load.clone(),
            crate::live::StopHandle {
                stop: Arc::clone(&stop),
                interrupts: Arc::clone(&signal_count),
            },
            steering,
        )?),
        None => None,
    };

    let (tx, rx) = mpsc::channel::<Report>();
    let mut threads = Vec::new();
    for core in &plan.cores {
        let setup = CoreSetup {
            index: core.index,
            cpu: core.cpu,
            users: core.users.clone(),
            iterations: core.iterations,
            open: core.open.clone(),
            seat: core.seat,
            plan: Arc::clone(&shared),
            driver,
            clock,
            header: LogHeader::new(run_id, core.index, clock.monotonic_ns, clock.wall_ns),
            log_path: dir.join(formats::run::log_file_name(core.index)),
            stop: Arc::clone(&stop),
            reports: tx.clone(),
            steer: steer_rx.get_mut(core.index as usize).and_then(Option::take),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("stampede-core-{}", core.index))
            .spawn(move || core::run_core(setup));
        match spawned {
            Ok(t) => threads.push(t),
            Err(source) => {
                stop.store(true, Ordering::SeqCst);
                let _ = tx.send(Report::Done(CoreDone::failed(
                    core.index,
                    false,
                    format!("cannot start core {}: {source}", core.index),
                )));
            }
        }
    }
    drop(tx);

    // The coordinator: console lines as seconds complete, until every core is done.
    let mut console = Console::new(plan.cores.len() as u32, plan.duration, plan.quiet);
    let mut done: Vec<CoreDone> = Vec::new();
    while done.len() < plan.cores.len() {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Report::Second(s)) => {
                if let Some(live) = &mut live {
                    live.on_second(&s);
                }
                console.on_second(s);
            }
            Ok(Report::Done(d)) => {
                if let Some(live) = &mut live {
                    live.on_done(d.core);
                }
                done.push(d);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let health = console.finish();
    let elapsed = Duration::from_micros(clock.now_us());
    if let Some(s) = server.take() {
        s.stop();
    }

    let errors: Vec<String> = done.iter().filter_map(|d| d.error.clone()).collect();
    manifest.state = if !errors.is_empty() {
        RunState::Failed
    } else if stop.load(Ordering::SeqCst) {
        RunState::Interrupted
    } else {
        RunState::Completed
    };
    manifest.error = (!errors.is_empty()).then(|| errors.join("; "));
    for log in &mut manifest.logs {
        if done.iter().any(|d| d.core == log.core && !d.pinned) {
            log.cpu = None;
        }
    }
    let ended = clock::wall_now_ns();
    manifest.ended_at = Some(formats::run::format_utc(ended));
    manifest.ended_unix_ns = Some(ended);
    if let Err(source) = manifest.write_to(&dir) {
        // The cores' errors (a full disk, say) explain this one; say them before giving up.
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Err(Error::Write {
            path: dir.join("manifest.json"),
            source,
        });
    }
    if let Some(live) = &mut live {
        live.ended(manifest.state, manifest.error.clone());
    }
    signal_handle.close();

    done.sort_by_key(|d| d.core);
    let samples: u64 = done.iter().map(|d| d.samples).sum();
    let (requests, failed) = done
        .iter()
        .flat_map(|d| d.names.iter())
        .fold((0, 0), |(n, f), (_, _, ok, failed)| {
            (n + ok + failed, f + failed)
        });
    if trace.is_none() {
        print!("{}", console::summary(&done, elapsed, &health));
        print!("{}", console.failure_summary(samples));
        println!(
            "{} samples, {} ({})",
            samples,
            manifest.state.describe(),
            driver.manifest_name()
        );
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    for d in done.iter().filter(|d| d.unsettled > 0) {
        // The log is whole (what was left is written directly), but the run ended up to 2 s late
        // and the core's ring memory was leaked: worth a report, not a failed run.
        let (what, were) = if d.unsettled == 1 {
            ("operation", "was")
        } else {
            ("operations", "were")
        };
        eprintln!(
            "warning: core {}: {} I/O {what} {were} still unfinished 2 s after the run ended, so the run ended late; the log is complete. This is an engine bug: please report it with the profile.",
            d.core, d.unsettled
        );
    }
    if trace.is_none() {
        println!("{}", dir.display());
    }
    if let Some(live) = live {
        live.close();
    }
    Ok(RunOutcome {
        dir,
        state: manifest.state,
        requests,
        failed,
        failures_are_data: false,
    })
}
