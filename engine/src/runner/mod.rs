//! `engine run`: from flags to a finalized run directory.
//!
//! Order of events: read the profile and resolve the plan (bad input stops here, before any file is
//! written); pick the I/O driver; start the embedded target if asked; resolve the host once and
//! connect once to every TCP target (the pre-flight check, unless `--no-preflight`); create the run
//! directory and write the manifest as `running`; with `--start-at`, wait for the start instant;
//! start one thread per core; act as the coordinator (console, signals) until every core is done;
//! finalize the manifest.
//!
//! Everything that can go wrong before the load starts happens before `--start-at`, so an orchestrator
//! sees a shard that cannot start as a non-zero exit, not as a shard that never reports.

mod cores;
mod outcome;
mod preflight;
mod run_dir;
mod signals;
mod start;
mod targets;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use formats::LogHeader;

use crate::cli::RunArgs;
use crate::console::{self, Console};
use crate::core::{CoreSetup, SharedPlan};
use crate::driver::IoDriver;
use crate::error::Error;
use crate::http::Limits;
use crate::plan::{Plan, PlanEnv};
use crate::scenario::wire::Wire;
use crate::{plan, profile, sys};
pub use outcome::RunOutcome;
use outcome::all_failed_message;
use run_dir::new_manifest;
use start::check_not_late;
use targets::Reached;

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
    warn_shared_cpus(&plan, plan_env.cpus.len());
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

/// Runs a plan with a tracer on its one core (`engine try`): no live lines, no summary table, no run
/// directory printed; the tracer prints the exchanges.
pub(crate) fn execute_traced(
    plan: Plan,
    trace: Arc<crate::debug::TraceOptions>,
) -> Result<RunOutcome, Error> {
    execute(plan, None, &crate::cli::LiveArgs::default(), Some(trace))
}

/// More cores than CPUs: cores are pinned in turn, so some share a CPU and wait for each other, and
/// their requests start late. Allowed, since the health verdict then says what it cost; said first.
fn warn_shared_cpus(plan: &Plan, cpus: usize) {
    if cpus > 0 && plan.cores.len() > cpus {
        eprintln!(
            "warning: --cores {} is more than the {cpus} CPU(s) this process may use: cores share CPUs and wait for each other, so requests start late (the health verdict will say how late); give --cores {cpus} or fewer",
            plan.cores.len()
        );
    }
}

/// A shard's warnings before it starts: a clock not synchronised, or no users dealt to it.
fn warn_shard(plan: &Plan, manifest: &formats::Manifest) {
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
}

/// What `--max-users` cannot do in this run.
fn warn_max_users(
    plan: &Plan,
    live_args: &crate::cli::LiveArgs,
    steering: Option<&crate::steer::Steering>,
) {
    if live_args.max_users.is_some() && !plan.quiet {
        match (steering.and_then(|s| s.refused()), &plan.load) {
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
}

/// What the live view shows about the run.
fn run_info(
    plan: &Plan,
    manifest: &formats::Manifest,
    dir: &std::path::Path,
    target_url: &str,
    driver: IoDriver,
) -> crate::live::RunInfo {
    crate::live::RunInfo {
        profile: plan.name.clone(),
        run_id: manifest.run_id.to_string(),
        environment: plan.environment.clone(),
        target: target_url.to_owned(),
        load: describe_load(plan),
        open_model: matches!(plan.load, plan::LoadPlan::Open { .. }),
        planned_s: plan.duration.as_secs_f64(),
        cores: plan.cores.len() as u32,
        io: driver.manifest_name().to_owned(),
        started_at: manifest.started_at.clone(),
        dir: dir.display().to_string(),
        engine_version: manifest.engine_version.clone(),
        shard: manifest.shard.as_ref().map(|s| (s.index, s.count)),
        can_stop: true,
    }
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

    let Reached {
        mut server,
        addrs,
        host_header,
        target_url,
        tls,
        endpoints,
        channel_tls,
    } = targets::reach(&plan, server_cpu)?;

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
    warn_shard(&plan, &manifest);
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
    warn_max_users(&plan, live_args, steering.as_deref());
    let mut live = match listeners {
        Some(listeners) => Some(crate::live::Live::start(
            listeners,
            run_info(&plan, &manifest, &dir, &target_url, driver),
            plan.load.clone(),
            crate::live::StopHandle {
                stop: Arc::clone(&stop),
                interrupts: Arc::clone(&signal_count),
            },
            steering,
        )?),
        None => None,
    };

    let (threads, rx) = cores::spawn(
        &plan.cores,
        |core, reports| CoreSetup {
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
            reports,
            steer: steer_rx.get_mut(core.index as usize).and_then(Option::take),
        },
        &stop,
    );
    let mut console = Console::new(plan.cores.len() as u32, plan.duration, plan.quiet);
    let mut done = cores::coordinate(&rx, threads, plan.cores.len(), &mut console, &mut live);
    let health = console.finish();
    let elapsed = Duration::from_micros(clock.now_us());
    if let Some(s) = server.take() {
        s.stop();
    }

    let errors = run_dir::finish_manifest(&mut manifest, &done, stop.load(Ordering::SeqCst), &dir)?;
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
    cores::warn_unsettled(&done);
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
