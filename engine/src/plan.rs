//! The resolved plan: the profile after `--env`, `--var` and flag overrides, with typed durations and
//! users split across cores. Nothing after [`Plan::resolve`] looks at the profile spec.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{IoChoice, RunArgs};
use crate::profile::spec::{
    BodySpec, DurationSpec, EmbeddedSpec, HttpSpec, LoadSpec, Method, ProfileSpec, WaitSpec,
};
use crate::profile::{self, suggest};
use crate::schedule::{self, CoreArrivals, Nanos, Population, RateCurve, Spawn, UserStages};

/// Flags or profile values that do not make a runnable plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", match file { Some(f) => format!("{}: in `{field}`", f.display()), None => field.clone() })]
pub struct PlanError {
    /// The profile, when the fault is in a profile field rather than a flag.
    pub file: Option<PathBuf>,
    /// The flag (`--users`) or profile field (`environments.staging.host`) at fault.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        file: None,
        field: field.into(),
        message: message.into(),
    }
}

/// What the machine offers, passed in so that resolving is a pure function.
#[derive(Debug, Clone)]
pub struct PlanEnv {
    /// CPUs this process may run on, in order.
    pub cpus: Vec<u32>,
}

/// The most users a run may have: each holds a socket and a few KiB, and the plan lists them all.
pub const MAX_USERS: u32 = 10_000_000;

/// An open model's pool limit when the profile sets none (k6 asks for one; 1000 keeps a stalled
/// target from costing the generator more sockets than a default file limit allows).
pub const DEFAULT_MAX_USERS: u32 = 1000;

/// Everything a run needs, typed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The profile name.
    pub name: String,
    /// The selected environment.
    pub environment: Option<String>,
    /// Where requests go.
    pub target: Target,
    /// Total users: the closed population at its largest, or the open model's pool limit.
    pub users: u32,
    /// Users started per second in total; `None` starts all at once.
    pub spawn_rate: Option<f64>,
    /// Planned length, spawning included.
    pub duration: Duration,
    /// The load model.
    pub load: LoadPlan,
    /// Stop after this many iterations in total (closed) or arrivals (open).
    pub iterations: Option<u64>,
    /// The embedded target's stall mode and latency mix.
    pub embedded: EmbeddedSpec,
    /// One entry per engine thread.
    pub cores: Vec<CorePlan>,
    /// The kinds of user.
    pub kinds: Vec<UserKind>,
    /// Every request of every task, referred to by index.
    pub requests: Vec<RequestTemplate>,
    /// Client settings.
    pub http: HttpSettings,
    /// Which I/O driver to try.
    pub io: IoChoice,
    /// Parent directory of run directories.
    pub out_dir: PathBuf,
    /// No live console lines.
    pub quiet: bool,
    /// The resolved profile as RON, secrets redacted, for the manifest.
    pub profile_ron: String,
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The in-process embedded server, started by the runner.
    Embedded,
    /// A plain-HTTP server.
    Http {
        /// Host name or address literal, as written.
        host: String,
        /// TCP port.
        port: u16,
        /// A path prefix from the base URL, without a trailing `/` (often empty).
        base_path: String,
    },
}

impl Target {
    /// Parses `embedded` or `http://host[:port][/base]`.
    pub fn parse(text: &str, field: &str) -> Result<Target, PlanError> {
        if text == "embedded" {
            return Ok(Target::Embedded);
        }
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(err(
                    field,
                    format!("{text:?}: https is not supported yet; use an http:// URL"),
                ));
            }
            Some((scheme, _)) => {
                return Err(err(
                    field,
                    format!("{text:?}: unsupported scheme {scheme:?}; use http://"),
                ));
            }
            None => {
                return Err(err(
                    field,
                    format!(
                        "{text:?} is not a URL; write e.g. \"http://127.0.0.1:8080\" or \"embedded\""
                    ),
                ));
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| err(field, format!("{text:?}: unclosed `[` in the host")))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(err(field, format!("{text:?} has no host")));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse()
                .map_err(|_| err(field, format!("{text:?}: {p:?} is not a port number")))?,
        };
        let path = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        Ok(Target::Http {
            host,
            port,
            base_path: path,
        })
    }
}

/// The resolved load model.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadPlan {
    /// Users that loop: `Closed` or `Stages`.
    Closed {
        /// When each user runs.
        population: Population,
        /// Each user stops after this many iterations.
        iterations_per_user: Option<u64>,
    },
    /// Iterations that arrive on a schedule: `Open`, `RampingRate` or `--rate`.
    Open {
        /// Run-wide arrivals per second over time.
        curve: RateCurve,
        /// The most users busy at once, in total.
        max_users: u32,
        /// Arrivals that may wait for a free user, in total.
        queue: u32,
    },
}

/// One engine thread's share.
#[derive(Debug, Clone)]
pub struct CorePlan {
    /// Engine thread index, from 0.
    pub index: u32,
    /// The CPU to pin to.
    pub cpu: Option<u32>,
    /// This core's users, in spawn order (closed models).
    pub users: Vec<UserPlan>,
    /// This core's share of the iteration limit (closed models; open ones count arrivals run-wide).
    pub iterations: Option<u64>,
    /// This core's arrivals and pool (open models).
    pub open: Option<OpenCore>,
}

/// One core's part of an open model.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCore {
    /// When this core's arrivals are due.
    pub arrivals: CoreArrivals,
    /// The most users of each kind (by index in [`Plan::kinds`]) this core may have.
    pub pool: Vec<u32>,
    /// Each kind's weight: an arrival picks its kind by weight.
    pub weights: Vec<u32>,
    /// Arrivals that may wait for a free user on this core.
    pub queue: u32,
}

/// One virtual user.
#[derive(Debug, Clone, Copy)]
pub struct UserPlan {
    /// Index across the whole run (users are dealt to cores round-robin).
    pub global: u32,
    /// Index of its kind in [`Plan::kinds`].
    pub kind: usize,
    /// When it starts, from the run's time zero.
    pub spawn_at: Duration,
}

/// `n` dealt over `parts`: part `i` gets `n / parts`, plus one for the first `n % parts` parts.
pub fn share(n: u64, parts: u32, i: u32) -> u64 {
    let parts = u64::from(parts.max(1));
    n / parts + u64::from(u64::from(i) < n % parts)
}

/// A kind of user.
#[derive(Debug, Clone)]
pub struct UserKind {
    /// Shown in reports.
    pub name: String,
    /// Think time after each task.
    pub wait: Wait,
    /// Tasks with their weights.
    pub tasks: Vec<Task>,
    /// Sum of task weights.
    pub total_task_weight: u32,
}

/// Think time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// None.
    None,
    /// Always this long.
    Constant(Duration),
    /// Uniform between the two.
    Between(Duration, Duration),
    /// Each iteration due this long after the previous one was due.
    Pacing(Duration),
}

/// A task.
#[derive(Debug, Clone)]
pub struct Task {
    /// Relative weight.
    pub weight: u32,
    /// Indexes into [`Plan::requests`].
    pub requests: Vec<usize>,
}

/// A request with every variable substituted; rendered to bytes once the target is known.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    /// The name samples are grouped under.
    pub name: String,
    /// The method.
    pub method: Method,
    /// Path and query (base path included).
    pub path: String,
    /// Headers, profile-wide ones first.
    pub headers: Vec<(String, String)>,
    /// The body and its content type.
    pub body: Option<(String, Vec<u8>)>,
    /// Status codes counted as success.
    pub expect: StatusSet,
}

/// Which statuses count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSet {
    /// 200 to 399.
    Success,
    /// Exactly these.
    Only(Vec<u16>),
}

impl StatusSet {
    /// Whether `status` counts as success.
    pub fn contains(&self, status: u16) -> bool {
        match self {
            StatusSet::Success => (200..400).contains(&status),
            StatusSet::Only(codes) => codes.contains(&status),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Request timeout, actual start to last byte.
    pub request_timeout: Duration,
    /// Largest accepted body.
    pub max_body: u64,
}

impl Plan {
    /// Applies flags and the environment to a profile. `spec` is the profile as read; flags win over
    /// the environment, which wins over the profile's top level.
    pub fn resolve(
        mut spec: ProfileSpec,
        args: &RunArgs,
        env: &PlanEnv,
    ) -> Result<Plan, PlanError> {
        let env_name = args
            .env
            .clone()
            .or_else(|| spec.default_environment.clone());
        let mut host = spec.host.clone();
        let mut headers = spec.headers.clone();
        let mut vars = spec.variables.clone();
        if let Some(name) = &env_name {
            let Some(e) = spec.environments.get(name) else {
                return Err(err("--env", profile_unknown_env(name, &spec)));
            };
            if e.host.is_some() {
                host.clone_from(&e.host);
            }
            headers.extend(e.headers.clone());
            vars.extend(e.variables.clone());
        }
        for (k, v) in &args.vars {
            vars.insert(k.clone(), v.clone());
        }
        let host_field = match (&args.host, &env_name) {
            (Some(_), _) => "--host".to_owned(),
            (None, Some(e)) if spec.environments[e].host.is_some() => {
                format!("environments.{e}.host")
            }
            _ => "host".to_owned(),
        };
        if let Some(h) = &args.host {
            host = Some(h.clone());
        }
        let host = host.ok_or_else(|| {
            err("host", "the profile sets no host: add `host: \"http://...\"` (or \"embedded\"), or pass --host")
        })?;
        let target = Target::parse(&host, &host_field)?;
        let base_path = match &target {
            Target::Http { base_path, .. } => base_path.clone(),
            Target::Embedded => String::new(),
        };

        let resolved = resolve_load(&mut spec.load, args)?;
        let duration = resolved.duration;
        let users = resolved.load_users();
        let spawn_rate = resolved.spawn_rate;
        if users > MAX_USERS {
            return Err(err(
                resolved.users_field,
                format!(
                    "{users} users is more than this engine supports ({MAX_USERS}); every user holds a connection"
                ),
            ));
        }

        let core_count = match args.cores {
            Some(0) => return Err(err("--cores", "must be at least 1")),
            Some(n) => n,
            None => (env.cpus.len() as u32).max(1),
        };
        if core_count > 1024 {
            return Err(err(
                "--cores",
                format!("{core_count} is more engine threads than makes sense (at most 1024)"),
            ));
        }

        let mut requests = Vec::new();
        let mut kinds = Vec::new();
        for (u, user) in spec.users.iter().enumerate() {
            let mut tasks = Vec::new();
            for (t, task) in user.tasks.iter().enumerate() {
                let mut ids = Vec::new();
                for (r, req) in task.requests.iter().enumerate() {
                    let at = format!("users[{u}].tasks[{t}].requests[{r}]");
                    let path = format!(
                        "{base_path}{}",
                        substitute(&req.path, &vars, &format!("{at}.path"))?
                    );
                    let mut hs: BTreeMap<String, String> = headers.clone();
                    hs.extend(req.headers.clone());
                    let hs = hs
                        .into_iter()
                        .map(|(k, v)| {
                            Ok((
                                k.clone(),
                                substitute(&v, &vars, &format!("{at}.headers.{k}"))?,
                            ))
                        })
                        .collect::<Result<Vec<_>, PlanError>>()?;
                    let body = match &req.body {
                        None => None,
                        Some(BodySpec::Text(t)) => Some((
                            "text/plain".to_owned(),
                            substitute(t, &vars, &format!("{at}.body"))?.into_bytes(),
                        )),
                        Some(BodySpec::Json(v)) => {
                            let mut json = String::new();
                            write_json(v, &mut json);
                            let json = substitute(&json, &vars, &format!("{at}.body"))?;
                            Some(("application/json".to_owned(), json.into_bytes()))
                        }
                    };
                    let name = req
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{} {}", req.method.as_str(), req.path));
                    let expect = req
                        .expect_status
                        .clone()
                        .map_or(StatusSet::Success, StatusSet::Only);
                    ids.push(requests.len());
                    requests.push(RequestTemplate {
                        name,
                        method: req.method,
                        path,
                        headers: hs,
                        body,
                        expect,
                    });
                }
                tasks.push(Task {
                    weight: task.weight,
                    requests: ids,
                });
            }
            let wait = match user.wait {
                WaitSpec::None => Wait::None,
                WaitSpec::Constant(d) => Wait::Constant(d.0),
                WaitSpec::Between(a, b) => Wait::Between(a.0, b.0),
                WaitSpec::Pacing(d) => Wait::Pacing(d.0),
            };
            let total_task_weight = tasks.iter().map(|t| t.weight).sum();
            let name = user.name.clone().unwrap_or_else(|| format!("user{u}"));
            kinds.push(UserKind {
                name,
                wait,
                tasks,
                total_task_weight,
            });
        }

        let weights: Vec<u32> = spec.users.iter().map(|u| u.weight).collect();
        let mut cores: Vec<CorePlan> = (0..core_count)
            .map(|i| CorePlan {
                index: i,
                cpu: (!env.cpus.is_empty()).then(|| env.cpus[i as usize % env.cpus.len()]),
                users: Vec::new(),
                iterations: None,
                open: None,
            })
            .collect();
        match &resolved.load {
            LoadPlan::Closed { population, .. } => {
                let assignment = schedule::assign_kinds(&weights, users);
                let end = Nanos::from_duration(duration);
                for g in 0..users {
                    // Users the schedule never wants (a spawn time past the end) are not planned.
                    let Some((start, _)) = population.next_span(g, Nanos(0), end) else {
                        continue;
                    };
                    cores[(g % core_count) as usize].users.push(UserPlan {
                        global: g,
                        kind: assignment[g as usize],
                        spawn_at: Duration::from_nanos(start.0),
                    });
                }
                // The iteration limit is shared by the cores that have users.
                if let Some(total) = resolved.iterations {
                    let busy: Vec<usize> = (0..cores.len())
                        .filter(|&c| !cores[c].users.is_empty())
                        .collect();
                    for (i, &c) in busy.iter().enumerate() {
                        cores[c].iterations = Some(share(total, busy.len() as u32, i as u32));
                    }
                }
            }
            LoadPlan::Open {
                curve,
                max_users,
                queue,
            } => {
                for core in &mut cores {
                    // Every core gets at least one user, or its share of arrivals could never start.
                    let mine = share(u64::from(*max_users), core_count, core.index).max(1) as u32;
                    let mut pool = vec![0u32; weights.len()];
                    for kind in schedule::assign_kinds(&weights, mine) {
                        pool[kind] += 1;
                    }
                    // A kind with weight gets at least one user, so its arrivals are never all dropped.
                    for (kind, &w) in weights.iter().enumerate() {
                        if w > 0 && pool[kind] == 0 {
                            pool[kind] = 1;
                        }
                    }
                    core.open = Some(OpenCore {
                        arrivals: CoreArrivals {
                            curve: curve.clone(),
                            cores: core_count,
                            core: core.index,
                            limit: resolved.iterations,
                        },
                        pool,
                        weights: weights.clone(),
                        queue: share(u64::from(*queue), core_count, core.index) as u32,
                    });
                }
            }
        }

        let HttpSpec {
            connect_timeout,
            request_timeout,
            max_body,
        } = spec.http.clone();
        let http = HttpSettings {
            connect_timeout: connect_timeout.0,
            request_timeout: request_timeout.0,
            max_body: max_body.0,
        };

        // The manifest keeps the profile as it was resolved, minus anything that looks like a secret.
        let mut shown = spec.clone();
        shown.host = Some(host.clone());
        shown.default_environment = env_name.clone();
        shown.headers = redact(&headers);
        shown.variables = vars
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if looks_secret(k) {
                        "<redacted>".into()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        shown.environments.clear();
        for user in &mut shown.users {
            for task in &mut user.tasks {
                for req in &mut task.requests {
                    req.headers = redact(&req.headers);
                }
            }
        }
        let profile_ron = ron::ser::to_string_pretty(
            &shown,
            ron::ser::PrettyConfig::default()
                .extensions(ron::extensions::Extensions::IMPLICIT_SOME),
        )
        .unwrap_or_else(|e| format!("(could not render the profile: {e})"));

        Ok(Plan {
            name: spec.name.clone(),
            environment: env_name,
            target,
            users,
            spawn_rate,
            duration,
            load: resolved.load,
            iterations: resolved.iterations,
            embedded: spec.embedded.clone().unwrap_or_default(),
            cores,
            kinds,
            requests,
            http,
            io: args.io,
            out_dir: args.out.clone(),
            quiet: args.quiet,
            profile_ron,
        })
    }
}

/// The load model after flags, with the field to blame for a user count that is too large.
struct ResolvedLoad {
    load: LoadPlan,
    duration: Duration,
    spawn_rate: Option<f64>,
    iterations: Option<u64>,
    users_field: &'static str,
}

impl ResolvedLoad {
    fn load_users(&self) -> u32 {
        match &self.load {
            LoadPlan::Closed { population, .. } => population.users(),
            LoadPlan::Open { max_users, .. } => *max_users,
        }
    }
}

/// Applies `--rate`, `--users`, `--spawn-rate`, `--duration` and `--iterations` to the profile's load
/// model (rewriting `load` so the manifest shows what ran), checks it, and types it.
fn resolve_load(load: &mut LoadSpec, args: &RunArgs) -> Result<ResolvedLoad, PlanError> {
    if let Some(d) = args.duration
        && d.is_zero()
    {
        return Err(err("--duration", "must be longer than zero"));
    }
    if args.users == Some(0) {
        return Err(err("--users", "must be at least 1"));
    }
    if args.iterations == Some(0) {
        return Err(err("--iterations", "must be at least 1"));
    }
    if let Some(r) = args.spawn_rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(err(
            "--spawn-rate",
            format!("must be a positive number of users per second, got {r}"),
        ));
    }
    let model_duration = |load: &LoadSpec| match load {
        LoadSpec::Closed { duration, .. } | LoadSpec::Open { duration, .. } => duration.0,
        LoadSpec::Stages { stages, .. } => stages.iter().map(|s| s.over.0).sum(),
        LoadSpec::RampingRate { stages, .. } => stages.iter().map(|s| s.over.0).sum(),
    };
    let is_open =
        |load: &LoadSpec| matches!(load, LoadSpec::Open { .. } | LoadSpec::RampingRate { .. });
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(err(
                "--rate",
                format!("must be a positive number of iterations per second, got {rate}"),
            ));
        }
        if args.spawn_rate.is_some() {
            return Err(err(
                "--spawn-rate",
                "an open model (--rate) starts users as arrivals need them; drop --spawn-rate",
            ));
        }
        // --rate switches any model to a constant open one, keeping its pool settings if it had any.
        let (max_users, queue, iterations) = match load {
            LoadSpec::Open {
                max_users,
                queue,
                iterations,
                ..
            }
            | LoadSpec::RampingRate {
                max_users,
                queue,
                iterations,
                ..
            } => (*max_users, *queue, *iterations),
            LoadSpec::Closed { iterations, .. } | LoadSpec::Stages { iterations, .. } => {
                (None, None, *iterations)
            }
        };
        *load = LoadSpec::Open {
            rate,
            duration: DurationSpec(args.duration.unwrap_or_else(|| model_duration(load))),
            max_users: args.users.or(max_users),
            queue,
            iterations: args.iterations.or(iterations),
        };
    } else {
        let fixed_by_stages = |flag: &str, what: &str| {
            err(
                flag,
                format!(
                    "the profile's stages set the {what}; edit them, or use --rate for a constant open model"
                ),
            )
        };
        match load {
            LoadSpec::Closed {
                users,
                spawn_rate,
                duration,
                iterations,
                ..
            } => {
                if let Some(u) = args.users {
                    *users = u;
                }
                if let Some(r) = args.spawn_rate {
                    *spawn_rate = Some(r);
                }
                if let Some(d) = args.duration {
                    duration.0 = d;
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            LoadSpec::Stages { iterations, .. } => {
                if args.users.is_some() {
                    return Err(fixed_by_stages("--users", "users"));
                }
                if args.duration.is_some() {
                    return Err(fixed_by_stages("--duration", "duration"));
                }
                if args.spawn_rate.is_some() {
                    return Err(fixed_by_stages("--spawn-rate", "ramp"));
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            LoadSpec::Open {
                duration,
                max_users,
                iterations,
                ..
            } => {
                if args.spawn_rate.is_some() {
                    return Err(err(
                        "--spawn-rate",
                        "an open model starts users as arrivals need them; drop --spawn-rate",
                    ));
                }
                if let Some(d) = args.duration {
                    duration.0 = d;
                }
                if let Some(u) = args.users {
                    *max_users = Some(u);
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            LoadSpec::RampingRate {
                max_users,
                iterations,
                ..
            } => {
                if args.duration.is_some() {
                    return Err(fixed_by_stages("--duration", "duration"));
                }
                if args.spawn_rate.is_some() {
                    return Err(err(
                        "--spawn-rate",
                        "an open model starts users as arrivals need them; drop --spawn-rate",
                    ));
                }
                if let Some(u) = args.users {
                    *max_users = Some(u);
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
        }
    }
    profile::check_load(load).map_err(|(field, message)| err(field, message))?;
    let users_field = if args.users.is_some() {
        "--users"
    } else if is_open(load) {
        "load.max_users"
    } else {
        "load.users"
    };
    let duration = model_duration(load);
    let resolved = match load {
        LoadSpec::Closed {
            users,
            spawn_rate,
            iterations,
            iterations_per_user,
            ..
        } => ResolvedLoad {
            load: LoadPlan::Closed {
                population: Population::Spawn(Spawn {
                    users: *users,
                    rate: *spawn_rate,
                }),
                iterations_per_user: *iterations_per_user,
            },
            duration,
            spawn_rate: *spawn_rate,
            iterations: *iterations,
            users_field,
        },
        LoadSpec::Stages {
            stages,
            iterations,
            iterations_per_user,
        } => ResolvedLoad {
            load: LoadPlan::Closed {
                population: Population::Stages(UserStages {
                    stages: stages.iter().map(|s| (s.users, s.over.0)).collect(),
                }),
                iterations_per_user: *iterations_per_user,
            },
            duration,
            spawn_rate: None,
            iterations: *iterations,
            users_field,
        },
        LoadSpec::Open {
            rate,
            max_users,
            queue,
            iterations,
            ..
        } => ResolvedLoad {
            load: LoadPlan::Open {
                curve: RateCurve::constant(*rate, duration),
                max_users: max_users.unwrap_or(DEFAULT_MAX_USERS),
                queue: queue.unwrap_or(0),
            },
            duration,
            spawn_rate: None,
            iterations: *iterations,
            users_field,
        },
        LoadSpec::RampingRate {
            start_rate,
            stages,
            max_users,
            queue,
            iterations,
        } => ResolvedLoad {
            load: LoadPlan::Open {
                curve: RateCurve::ramps(
                    *start_rate,
                    &stages.iter().map(|s| (s.to, s.over.0)).collect::<Vec<_>>(),
                ),
                max_users: max_users.unwrap_or(DEFAULT_MAX_USERS),
                queue: queue.unwrap_or(0),
            },
            duration,
            spawn_rate: None,
            iterations: *iterations,
            users_field,
        },
    };
    Ok(resolved)
}

/// The spec behind `engine run --url URL`: one GET in a loop, no think time, every user at once.
pub fn adhoc_spec(url: &str) -> Result<ProfileSpec, PlanError> {
    let target = Target::parse(url, "--url")?;
    let (host, path, name) = match &target {
        Target::Embedded => ("embedded".to_owned(), "/".to_owned(), "embedded".to_owned()),
        Target::Http { host, port, .. } => {
            let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
            let path = after_scheme
                .find('/')
                .map_or("/", |i| &after_scheme[i..])
                .to_owned();
            (
                format!("http://{host}:{port}"),
                path,
                format!("url-{host}-{port}"),
            )
        }
    };
    let text = format!(
        r#"(name: {name:?}, host: {host:?}, load: Closed(users: 10, duration: "10s"),
            users: [(name: "adhoc", tasks: [(requests: [(path: {path:?}, name: {path:?})])])])"#
    );
    profile::load_str(&text, std::path::Path::new("--url")).map_err(|e| {
        err(
            "--url",
            format!("{url:?} does not make a request: {}", e.message),
        )
    })
}

fn profile_unknown_env(name: &str, spec: &ProfileSpec) -> String {
    let known: Vec<&str> = spec.environments.keys().map(String::as_str).collect();
    if known.is_empty() {
        return format!("there is no environment {name:?}: the profile defines none");
    }
    let hint = suggest(name, known.iter().copied())
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default();
    format!(
        "there is no environment {name:?}{hint} (defined: {})",
        known.join(", ")
    )
}

fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|s| n.contains(s))
}

fn redact(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if looks_secret(k) {
                    "<redacted>".into()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

/// Replaces `${name}` with the variable's value. `$$` writes a literal `$`.
pub fn substitute(
    text: &str,
    vars: &BTreeMap<String, String>,
    field: &str,
) -> Result<String, PlanError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| err(field, format!("unclosed `${{` in {text:?}")))?;
            let key = &inner[..end];
            let value = vars.get(key).ok_or_else(|| {
                let hint = suggest(key, vars.keys().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                err(field, format!("unknown variable `{key}`{hint}: define it in `variables` or pass --var {key}=VALUE"))
            })?;
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes a RON value as JSON. Maps with non-string keys use the key's JSON text as the key.
fn write_json(v: &ron::Value, out: &mut String) {
    use ron::Value as V;
    use std::fmt::Write;
    match v {
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Char(c) => write_json_str(&c.to_string(), out),
        V::String(s) => write_json_str(s, out),
        V::Bytes(b) => write_json_str(&String::from_utf8_lossy(b), out),
        V::Number(n) => {
            let f = n.into_f64();
            if f.fract() == 0.0 && f.abs() < 9e15 {
                let _ = write!(out, "{}", f as i64);
            } else if f.is_finite() {
                let _ = write!(out, "{f}");
            } else {
                out.push_str("null");
            }
        }
        V::Option(None) | V::Unit => out.push_str("null"),
        V::Option(Some(inner)) => write_json(inner, out),
        V::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        V::Map(map) => {
            out.push('{');
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    V::String(s) => write_json_str(s, out),
                    other => {
                        let mut key = String::new();
                        write_json(other, &mut key);
                        write_json_str(&key, out);
                    }
                }
                out.push(':');
                write_json(val, out);
            }
            out.push('}');
        }
    }
}

fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> PlanEnv {
        PlanEnv { cpus: vec![0, 1] }
    }

    const PROFILE: &str = r#"(
        name: "t",
        host: "http://127.0.0.1:9/api/",
        variables: {"id": "7"},
        environments: {"stage": (host: "http://stage.invalid:8080", variables: {"id": "8"})},
        load: Closed(users: 5, spawn_rate: 10.0, duration: "3s"),
        users: [(weight: 1, wait: Between("1s", "2s"), tasks: [(requests: [
            (path: "/items/${id}", name: "item"),
            (method: POST, path: "/login", body: Json({"user": "a", "n": 1})),
        ])])],
    )"#;

    fn spec() -> ProfileSpec {
        profile::load_str(PROFILE, std::path::Path::new("t.ron")).unwrap()
    }

    #[test]
    fn users_are_dealt_round_robin_with_spawn_times() {
        let plan = Plan::resolve(spec(), &RunArgs::default(), &env()).unwrap();
        assert_eq!(plan.cores.len(), 2);
        let core0: Vec<u32> = plan.cores[0].users.iter().map(|u| u.global).collect();
        assert_eq!(core0, [0, 2, 4]);
        assert_eq!(plan.cores[1].users[0].spawn_at, Duration::from_millis(100));
        assert_eq!(plan.requests[0].path, "/api/items/7");
        assert_eq!(
            plan.requests[1].body.as_ref().unwrap().1,
            br#"{"user":"a","n":1}"#
        );
        assert_eq!(plan.requests[1].name, "POST /login");
    }

    #[test]
    fn flags_override_environment_which_overrides_profile() {
        let args = RunArgs {
            env: Some("stage".into()),
            users: Some(1),
            cores: Some(1),
            vars: vec![("id".into(), "9".into())],
            ..RunArgs::default()
        };
        let plan = Plan::resolve(spec(), &args, &env()).unwrap();
        assert_eq!(plan.users, 1);
        assert_eq!(
            plan.target,
            Target::Http {
                host: "stage.invalid".into(),
                port: 8080,
                base_path: String::new()
            }
        );
        assert_eq!(plan.requests[0].path, "/items/9");
    }

    #[test]
    fn unknown_environment_and_variable_are_explained() {
        let args = RunArgs {
            env: Some("stag".into()),
            ..RunArgs::default()
        };
        let e = Plan::resolve(spec(), &args, &env()).unwrap_err();
        assert!(e.message.contains("did you mean \"stage\""), "{e}");
        let vars = BTreeMap::from([("item".to_owned(), "1".to_owned())]);
        let e = substitute("/x/${iten}", &vars, "path").unwrap_err();
        assert!(e.message.contains("did you mean `item`"), "{e}");
        assert_eq!(substitute("$$5 ${item}", &vars, "p").unwrap(), "$5 1");
    }

    #[test]
    fn the_manifest_profile_reads_back_as_a_profile() {
        let plan = Plan::resolve(spec(), &RunArgs::default(), &env()).unwrap();
        let again = profile::load_str(&plan.profile_ron, std::path::Path::new("manifest")).unwrap();
        assert_eq!(again.name, "t");
        assert!(!plan.profile_ron.contains("Some("), "{}", plan.profile_ron);
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("embedded", "host").unwrap(), Target::Embedded);
        assert_eq!(
            Target::parse("http://[::1]:81/", "host").unwrap(),
            Target::Http {
                host: "[::1]".into(),
                port: 81,
                base_path: String::new()
            }
        );
        assert!(
            Target::parse("https://x", "host")
                .unwrap_err()
                .message
                .contains("https")
        );
        assert!(Target::parse("localhost:80", "host").is_err());
        assert!(Target::parse("http://h:99999", "host").is_err());
    }
}
