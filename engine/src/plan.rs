//! The resolved plan: the profile after `--env`, `--var`, environment-variable and flag overrides,
//! with typed durations, users split across cores (and, in a sharded test, this shard's share of
//! them), and the scenario compiled. Nothing after [`Plan::resolve`] looks at the profile spec.
//!
//! Precedence, highest first: command-line flags > process environment variables (`STAMPEDE_ENV`,
//! `STAMPEDE_HOST`, `STAMPEDE_VAR_<name>`) > the selected environment > the profile's top level.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{IoChoice, RunArgs};
use crate::profile::spec::{
    AuthSpec, DurationSpec, EmbeddedSpec, HttpSpec, LoadSpec, ProfileSpec, TlsSpec,
};
use crate::profile::{self, suggest};
use crate::scenario::Scenario;
use crate::scenario::compile::{self, CompileError};
use crate::scenario::vars::{self, ENV_VAR_PREFIX, Layer, Raw, Vars};
use crate::schedule::{self, CoreArrivals, Nanos, Population, RateCurve, Seat, Spawn, UserStages};
use crate::shard::{Shard, StartAt};

/// The process environment variable that selects the profile environment (like `--env`).
pub const ENV_SELECT: &str = "STAMPEDE_ENV";
/// The process environment variable that sets the target (like `--host`).
pub const ENV_HOST: &str = "STAMPEDE_HOST";
/// What secrets are shown as.
pub const REDACTED: &str = "***";

/// Flags or profile values that do not make a runnable plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    /// The profile (or fragment), when the fault is in a profile field rather than a flag.
    pub file: Option<PathBuf>,
    /// Where in the file (1-based line and column), when known.
    pub position: Option<(usize, usize)>,
    /// The flag (`--users`) or profile field (`environments.staging.host`) at fault.
    pub field: String,
    /// What is wrong and how to fix it.
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

fn err(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        file: None,
        position: None,
        field: field.into(),
        message: message.into(),
    }
}

/// What the machine offers, passed in so that resolving is a pure function.
#[derive(Debug, Clone, Default)]
pub struct PlanEnv {
    /// CPUs this process may run on, in order.
    pub cpus: Vec<u32>,
    /// The process environment (for `STAMPEDE_*` overrides and `${NAME}` in profiles).
    pub vars: BTreeMap<String, String>,
    /// The wall clock when the engine started, ns since the Unix epoch (for `--start-at +30s`).
    pub now_unix_ns: i64,
}

impl PlanEnv {
    /// This process's CPUs and environment.
    pub fn from_process(cpus: Vec<u32>) -> PlanEnv {
        PlanEnv {
            cpus,
            vars: std::env::vars().collect(),
            now_unix_ns: crate::clock::wall_now_ns(),
        }
    }
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
    /// What users do: kinds, tasks, requests, feeders, auth.
    pub scenario: Scenario,
    /// Client settings.
    pub http: HttpSettings,
    /// TLS settings for `https://` and `wss://`.
    pub tls: crate::tls::TlsSettings,
    /// Which I/O driver to try.
    pub io: IoChoice,
    /// How long an io_uring wait may linger for more completions, µs (`--linger`; 0: never).
    pub linger_us: u32,
    /// Parent directory of run directories.
    pub out_dir: PathBuf,
    /// No live console lines.
    pub quiet: bool,
    /// The resolved profile as RON, secrets redacted, for the manifest.
    pub profile_ron: String,
    /// Which shard of a test spread over several engines this engine runs; `None` when it runs the
    /// whole test.
    pub shard: Option<ShardPlan>,
    /// The run's time zero on the wall clock (`--start-at`), when given.
    pub start_at: Option<StartAt>,
    /// The run's name (`--run-id`), when given: it names the run directory and derives the run id.
    pub run_name: Option<String>,
    /// The profile's tags and the `--tags` / `--exclude-tags` selection, for the manifest; `None`
    /// when the profile has no tags.
    pub tags: Option<formats::TagSelection>,
    /// The values the manifest shows as `***`, so that failure messages and traces that quote a
    /// response can hide them too.
    pub(crate) secrets: Vec<String>,
}

/// This engine's part of a sharded test.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardPlan {
    /// Which shard.
    pub shard: Shard,
    /// Every shard's share of the load, by index (summing to 1): of the users in a closed model, of
    /// the arrival rate in an open one.
    pub shares: Vec<f64>,
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The in-process embedded server, started by the runner.
    Embedded,
    /// An HTTP server (`http://`), or an HTTPS one (`https://`, `tls` set).
    Http {
        /// Host name or address literal, as written.
        host: String,
        /// TCP port.
        port: u16,
        /// A path prefix from the base URL, without a trailing `/` (often empty).
        base_path: String,
        /// Whether requests go over TLS.
        tls: bool,
    },
    /// A server for another protocol: `tcp://`, `udp://`, `ws://`, `wss://`, or the scheme of a
    /// custom protocol (`redis://`, `grpc://`, ...), whose steps say what to send.
    Other {
        /// The scheme, as written.
        scheme: String,
        /// Host name or address literal, as written.
        host: String,
        /// Port.
        port: u16,
        /// The path, if any (`ws://host/chat`), else empty.
        path: String,
    },
}

impl Target {
    /// Parses `embedded`, `http[s]://host[:port][/base]` or `scheme://host:port[/path]`.
    pub fn parse(text: &str, field: &str) -> Result<Target, PlanError> {
        if text == "embedded" {
            return Ok(Target::Embedded);
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme @ ("http" | "https" | "ws" | "wss" | "tcp" | "udp"), rest)) => {
                (scheme, rest)
            }
            Some((scheme, _)) => {
                return Err(err(
                    field,
                    format!(
                        "{text:?}: unsupported scheme {scheme:?}; use http://, https://, ws://, wss://, tcp:// or udp:// (a custom protocol takes its server's address as tcp://host:port)"
                    ),
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
        let default_port = match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        let port = match (port, default_port) {
            (None, Some(p)) => p,
            (None, None) => {
                return Err(err(
                    field,
                    format!("{text:?} has no port: write e.g. \"{scheme}://127.0.0.1:6379\""),
                ));
            }
            (Some(p), _) => p
                .parse()
                .map_err(|_| err(field, format!("{text:?}: {p:?} is not a port number")))?,
        };
        if !matches!(scheme, "http" | "https") {
            return Ok(Target::Other {
                scheme: scheme.to_owned(),
                host,
                port,
                path: path.split('#').next().unwrap_or("").to_owned(),
            });
        }
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
            tls: scheme == "https",
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
    /// Where this core sits in the deal of users, arrivals and data rows.
    pub seat: Seat,
    /// This core's arrivals and pool (open models).
    pub open: Option<OpenCore>,
}

/// One core's part of an open model.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCore {
    /// When this core's arrivals are due.
    pub arrivals: CoreArrivals,
    /// The most users of each kind (by index in the scenario's user kinds) this core may have.
    pub pool: Vec<u32>,
    /// Each kind's weight: an arrival picks its kind by weight.
    pub weights: Vec<u32>,
    /// Arrivals that may wait for a free user on this core.
    pub queue: u32,
}

/// One virtual user.
#[derive(Debug, Clone, Copy)]
pub struct UserPlan {
    /// Index across the whole run, over every shard (users are dealt round-robin to shards, then to
    /// cores: [`Seat`]).
    pub global: u32,
    /// Index of its kind among the scenario's user kinds.
    pub kind: usize,
    /// When it starts, from the run's time zero.
    pub spawn_at: Duration,
}

/// `n` dealt over `parts`: part `i` gets `n / parts`, plus one for the first `n % parts` parts.
pub fn share(n: u64, parts: u32, i: u32) -> u64 {
    let parts = u64::from(parts.max(1));
    n / parts + u64::from(u64::from(i) < n % parts)
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
    /// No think time: each iteration is due this long after the previous one was due (a grid from
    /// the user's start, Gatling's `pace`, Locust's `constant_pacing`); lateness counts as lag.
    Pacing(Duration),
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
    pub fn resolve(spec: ProfileSpec, args: &RunArgs, env: &PlanEnv) -> Result<Plan, PlanError> {
        Plan::resolve_with(spec, args, env, &crate::protocol::Protocols::default())
    }

    /// [`Plan::resolve`], with custom protocols that `Custom(protocol: ...)` steps may name.
    pub fn resolve_with(
        mut spec: ProfileSpec,
        args: &RunArgs,
        env: &PlanEnv,
        protocols: &crate::protocol::Protocols,
    ) -> Result<Plan, PlanError> {
        let process_env = |k: &str| env.vars.get(k).cloned();
        let (env_name, env_field) = match (&args.env, env.vars.get(ENV_SELECT)) {
            (Some(e), _) => (Some(e.clone()), "--env".to_owned()),
            (None, Some(e)) if !e.is_empty() => (Some(e.clone()), ENV_SELECT.to_owned()),
            _ => (
                spec.default_environment.clone(),
                "default_environment".to_owned(),
            ),
        };
        let mut headers = spec.headers.clone();
        let mut raw: BTreeMap<String, Raw> = BTreeMap::new();
        let mut layer =
            |vars: &BTreeMap<String, String>, secrets: &BTreeMap<String, String>, l: Layer| {
                for (k, v, secret) in vars
                    .iter()
                    .map(|(k, v)| (k, v, false))
                    .chain(secrets.iter().map(|(k, v)| (k, v, true)))
                {
                    let was_secret = raw.get(k).is_some_and(|r| r.secret);
                    raw.insert(
                        k.clone(),
                        Raw {
                            value: v.clone(),
                            layer: l,
                            secret: secret || was_secret,
                        },
                    );
                }
            };
        layer(&spec.variables, &spec.secrets, Layer::Profile);
        let mut host = spec.host.clone();
        let mut host_field = "host".to_owned();
        let mut tls_spec = spec.tls.clone();
        let mut tls_field = "tls".to_owned();
        if let Some(name) = &env_name {
            let Some(e) = spec.environments.get(name) else {
                return Err(err(env_field, profile_unknown_env(name, &spec)));
            };
            if e.host.is_some() {
                host.clone_from(&e.host);
                host_field = format!("environments.{name}.host");
            }
            headers.extend(e.headers.clone());
            layer(&e.variables, &e.secrets, Layer::Environment);
            if e.tls.is_some() {
                tls_spec.clone_from(&e.tls);
                tls_field = format!("environments.{name}.tls");
            }
        }
        let from_process: BTreeMap<String, String> = env
            .vars
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ENV_VAR_PREFIX)?.to_owned(), v.clone())))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        layer(&from_process, &BTreeMap::new(), Layer::ProcessEnv);
        let flags: BTreeMap<String, String> = args.vars.iter().cloned().collect();
        layer(&flags, &BTreeMap::new(), Layer::Flag);
        if let Some(h) = env.vars.get(ENV_HOST).filter(|h| !h.is_empty()) {
            host = Some(h.clone());
            host_field = ENV_HOST.to_owned();
        }
        if let Some(h) = &args.host {
            host = Some(h.clone());
            host_field = "--host".to_owned();
        }
        let var_field = |name: &str, layer: Layer| match layer {
            Layer::Flag => "--var".to_owned(),
            Layer::ProcessEnv => format!("{ENV_VAR_PREFIX}{name}"),
            Layer::Environment => format!(
                "environments.{}.variables.{name}",
                env_name.as_deref().unwrap_or_default()
            ),
            Layer::Profile => format!("variables.{name}"),
        };
        if let Some((name, r)) = raw.iter().find(|(_, r)| r.value.contains("{{")) {
            return Err(located(
                &spec,
                var_field(name, r.layer),
                Some(&r.value),
                format!(
                    "profile variables are fixed when the profile loads, and `{{{{...}}}}` is computed per request: declare `{name}` under a user kind's `variables` to give each user its own value, or write the template where it is used"
                ),
            ));
        }
        let mut vars = Vars::resolve(&raw, &process_env).map_err(|e| {
            let r = &raw[&e.variable];
            located(
                &spec,
                var_field(&e.variable, r.layer),
                Some(&r.value),
                e.message,
            )
        })?;
        let host = host.ok_or_else(|| {
            err("host", "the profile sets no host: add `host: \"http://...\"` (or \"embedded\"), or pass --host")
        })?;
        let host = vars
            .substitute(&host, &process_env)
            .map_err(|m| located(&spec, host_field.clone(), Some(&host), m))?;
        let target = Target::parse(&host, &host_field)?;
        let base_path = match &target {
            Target::Http { base_path, .. } => base_path.clone(),
            Target::Embedded | Target::Other { .. } => String::new(),
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
        let Sharding {
            shard,
            start_at,
            run_name,
        } = resolve_sharding(args, env)?;
        let this = shard.unwrap_or(Shard { index: 0, count: 1 });

        let base_dir = args
            .profile
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""))
            .to_owned();
        // Tag selection removes what does not run before anything is compiled or dealt by weight.
        let tags = crate::scenario::tags::select(&mut spec, &args.tags, &args.exclude_tags)
            .map_err(|e| err(e.field, e.message))?;
        let scenario = compile::compile(compile::Inputs {
            spec: &spec,
            vars: &mut vars,
            process_env: &process_env,
            headers: &headers,
            base_path: &base_path,
            base_dir: &base_dir,
            protocols,
        })
        .map_err(|e: CompileError| located(&spec, e.field, e.snippet.as_deref(), e.message))?;

        let weights: Vec<u32> = spec.users.iter().map(|u| u.weight).collect();
        let mut cores: Vec<CorePlan> = (0..core_count)
            .map(|i| CorePlan {
                index: i,
                cpu: (!env.cpus.is_empty()).then(|| env.cpus[i as usize % env.cpus.len()]),
                users: Vec::new(),
                iterations: None,
                seat: Seat {
                    shard: this.index,
                    shards: this.count,
                    core: i,
                    cores: core_count,
                },
                open: None,
            })
            .collect();
        let shares: Vec<f64> = match &resolved.load {
            LoadPlan::Closed { .. } if users > 0 => (0..this.count)
                .map(|s| share(u64::from(users), this.count, s) as f64 / f64::from(users))
                .collect(),
            _ => vec![1.0 / f64::from(this.count); this.count as usize],
        };
        match &resolved.load {
            LoadPlan::Closed { population, .. } => {
                // Users beyond the profile's that steering may start (`--max-users`): each core plans
                // their slots (connections, memory) now, and they start only when the target rises
                // above them. Kinds are dealt to them as to the profile's users (the deal's prefixes
                // do not depend on its length).
                // Only runs that can be steered (`steer::refusal`) plan any: not sharded, not staged,
                // and without a run-wide iteration limit (whose split over cores counts their users).
                let steerable = this.count == 1
                    && matches!(population, Population::Spawn(_))
                    && resolved.iterations.is_none();
                let reserve = match args.live.max_users {
                    Some(max) if steerable => max.max(users),
                    _ => users,
                };
                let assignment = schedule::assign_kinds(&weights, reserve);
                let end = Nanos::from_duration(duration);
                // Users are dealt over every shard's cores; this shard keeps its own. Which shards
                // have users at all decides how the iteration limit is split.
                let mut shard_has_users = vec![false; this.count as usize];
                for g in 0..users {
                    // Users the schedule never wants (a spawn time past the end) are not planned.
                    let Some((start, _)) = population.next_span(g, Nanos(0), end) else {
                        continue;
                    };
                    let (s, core, _) = schedule::deal(u64::from(g), this.count, core_count);
                    shard_has_users[s as usize] = true;
                    if s != this.index {
                        continue;
                    }
                    cores[core as usize].users.push(UserPlan {
                        global: g,
                        kind: assignment[g as usize],
                        spawn_at: Duration::from_nanos(start.0),
                    });
                }
                for g in users..reserve {
                    let (s, core, _) = schedule::deal(u64::from(g), this.count, core_count);
                    if s == this.index {
                        cores[core as usize].users.push(UserPlan {
                            global: g,
                            kind: assignment[g as usize],
                            spawn_at: Duration::MAX,
                        });
                    }
                }
                // The iteration limit is split over the shards that have users, then over the cores
                // of this shard that have users: the parts add up to the limit exactly.
                if let Some(total) = resolved.iterations {
                    let busy_shards = shard_has_users.iter().filter(|&&b| b).count() as u32;
                    let rank = shard_has_users[..this.index as usize]
                        .iter()
                        .filter(|&&b| b)
                        .count() as u32;
                    let mine = share(total, busy_shards, rank);
                    let busy: Vec<usize> = (0..cores.len())
                        .filter(|&c| !cores[c].users.is_empty())
                        .collect();
                    for (i, &c) in busy.iter().enumerate() {
                        cores[c].iterations = Some(share(mine, busy.len() as u32, i as u32));
                    }
                }
            }
            LoadPlan::Open {
                curve,
                max_users,
                queue,
            } => {
                // The pool and queue limits are totals over the test: this shard's part, then its
                // cores' parts.
                let shard_users = share(u64::from(*max_users), this.count, this.index);
                let shard_queue = share(u64::from(*queue), this.count, this.index);
                for core in &mut cores {
                    // Every core gets at least one user, or its share of arrivals could never start.
                    let mine = share(shard_users, core_count, core.index).max(1) as u32;
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
                            seat: core.seat,
                            limit: resolved.iterations,
                        },
                        pool,
                        weights: weights.clone(),
                        queue: share(shard_queue, core_count, core.index) as u32,
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

        let tls = resolve_tls(
            &spec,
            tls_spec.as_ref(),
            &tls_field,
            &target,
            &base_dir,
            &mut vars,
            &process_env,
        )?;
        // The manifest shows the TLS settings that applied (an environment's included), so that a
        // report can say that certificates were not verified.
        spec.tls = tls_spec;
        let profile_ron = manifest_profile(&spec, &host, env_name.as_deref(), &headers, &vars);
        // What the manifest shows as `***`, as values: secret variables, and the process environment
        // variables the profile read.
        let secrets = vars
            .secret
            .iter()
            .filter_map(|k| vars.values.get(k).cloned())
            .chain(vars.from_env.iter().filter_map(|k| process_env(k)))
            .filter(|v| !v.is_empty())
            .collect();

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
            scenario,
            http,
            tls,
            io: args.io,
            linger_us: args
                .linger
                .map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX)),
            out_dir: args.out.clone(),
            quiet: args.quiet,
            profile_ron,
            shard: shard.map(|shard| ShardPlan { shard, shares }),
            start_at,
            run_name,
            tags,
            secrets,
        })
    }
}

/// The shard (`--shard`, `--shards`, `JOB_COMPLETION_INDEX`, `STAMPEDE_SHARDS`), the start instant
/// (`--start-at`) and the run name (`--run-id`), checked together: the shards of a test must start
/// at one instant that every one of them was given, so several shards need an absolute `--start-at`.
fn resolve_sharding(args: &RunArgs, env: &PlanEnv) -> Result<Sharding, PlanError> {
    let shard = crate::shard::resolve(args.shard, args.shards, &env.vars)?;
    let start_at = args
        .start_at
        .as_deref()
        .map(|text| crate::shard::parse_start_at(text, env.now_unix_ns))
        .transpose()?;
    let run_name = args
        .run_id
        .as_deref()
        .map(crate::shard::check_run_id)
        .transpose()?;
    if let Some(shard) = shard
        && shard.count > 1
    {
        let field = if args.shard.is_some() {
            "--shard"
        } else {
            "--shards"
        };
        match start_at {
            None => {
                return Err(err(
                    field,
                    format!(
                        "shard {shard}: the {} shards of a test start together: give every one the same --start-at instant, e.g. --start-at $(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)",
                        shard.count
                    ),
                ));
            }
            Some(StartAt { relative: true, .. }) => {
                return Err(err(
                    "--start-at",
                    format!(
                        "{:?} is read from each machine's clock when its shard starts, so shards launched moments apart would not share an instant (nor a run name): give every shard the same absolute instant, e.g. --start-at $(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)",
                        args.start_at.as_deref().unwrap_or_default().trim()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Sharding {
        shard,
        start_at,
        run_name,
    })
}

/// The flags that place a run among others: [`resolve_sharding`]'s answer.
struct Sharding {
    shard: Option<Shard>,
    start_at: Option<StartAt>,
    run_name: Option<String>,
}

/// Checks the TLS settings that apply: the CA file must hold certificates, and the server name must
/// be one, so that neither is a surprise on the first connection.
fn resolve_tls(
    spec: &ProfileSpec,
    tls: Option<&TlsSpec>,
    field: &str,
    target: &Target,
    base_dir: &Path,
    vars: &mut Vars,
    process_env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::tls::TlsSettings, PlanError> {
    let Some(tls) = tls else {
        return Ok(crate::tls::TlsSettings::default());
    };
    let mut out = crate::tls::TlsSettings {
        ca_file: None,
        insecure: tls.insecure,
        server_name: None,
    };
    let uses_tls = match target {
        Target::Http { tls, .. } => *tls,
        Target::Other { scheme, .. } => scheme == "wss",
        Target::Embedded => false,
    };
    if let Some(ca) = &tls.ca_file {
        let at = format!("{field}.ca_file");
        let name = vars
            .substitute(ca, process_env)
            .map_err(|m| located(spec, at.clone(), Some(ca), m))?;
        let path = base_dir.join(name);
        if uses_tls {
            crate::tls::read_certificates(&path)
                .map_err(|e| located(spec, at.clone(), Some(ca), e.to_string()))?;
        }
        out.ca_file = Some(path);
    }
    if let Some(name) = &tls.server_name {
        let at = format!("{field}.server_name");
        crate::tls::server_name(name).map_err(|e| located(spec, at, Some(name), e.to_string()))?;
        out.server_name = Some(name.clone());
    }
    Ok(out)
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
/// The load model of a profile without `load`, from the command line: a closed model of `--users`
/// (or, with `--rate`, an open one) for `--duration`. Which flag is missing is named.
fn load_from_flags(args: &RunArgs) -> Result<LoadSpec, PlanError> {
    let missing = match (args.users.is_some() || args.rate.is_some(), args.duration) {
        (true, Some(duration)) => {
            return Ok(LoadSpec::Closed {
                users: args.users.unwrap_or(1),
                spawn_rate: None,
                duration: DurationSpec(duration),
                iterations: None,
                iterations_per_user: None,
            });
        }
        (true, None) => "--duration (e.g. `--duration 1m`)",
        (false, Some(_)) => "--users (e.g. `-u 10`) or --rate",
        (false, None) => "--users and --duration (e.g. `-u 10 -t 1m`)",
    };
    Err(err(
        "load",
        format!(
            "the profile has no `load`, and the command line does not give one: add {missing}, or add `load: Closed(users: 10, duration: \"1m\")` to the profile"
        ),
    ))
}

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
    if matches!(load, LoadSpec::Unset) {
        *load = load_from_flags(args)?;
    }
    let model_duration = |load: &LoadSpec| match load {
        LoadSpec::Closed { duration, .. } | LoadSpec::Open { duration, .. } => duration.0,
        LoadSpec::Stages { stages, .. } => stages.iter().map(|s| s.over.0).sum(),
        LoadSpec::RampingRate { stages, .. } => stages.iter().map(|s| s.over.0).sum(),
        LoadSpec::Unset => Duration::ZERO,
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
            LoadSpec::Unset => (None, None, None),
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
            // Replaced by `load_from_flags` above.
            LoadSpec::Unset => {}
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
        // `load_from_flags` replaced it above; kept as an error rather than a panic.
        LoadSpec::Unset => {
            return Err(err(
                "load",
                "the profile has no `load`: add one, or give --users and --duration",
            ));
        }
    };
    Ok(resolved)
}

/// The spec behind `engine run --url URL`: one GET in a loop, no think time, every user at once, and
/// no cookie jar (like wrk and oha: the same request every time).
pub fn adhoc_spec(url: &str) -> Result<ProfileSpec, PlanError> {
    let target = Target::parse(url, "--url")?;
    let (host, path, name) = match &target {
        Target::Embedded => ("embedded".to_owned(), "/".to_owned(), "embedded".to_owned()),
        Target::Other { .. } => {
            return Err(err(
                "--url",
                format!(
                    "{url:?}: --url makes HTTP GET requests; write a profile with steps for other protocols"
                ),
            ));
        }
        Target::Http {
            host, port, tls, ..
        } => {
            let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
            let path = after_scheme
                .find('/')
                .map_or("/", |i| &after_scheme[i..])
                .to_owned();
            (
                format!("{}://{host}:{port}", if *tls { "https" } else { "http" }),
                path,
                format!("url-{host}-{port}"),
            )
        }
    };
    let text = format!(
        r#"(name: {name:?}, host: {host:?}, load: Closed(users: 10, duration: "10s"),
            users: [(name: "adhoc", cookies: false, tasks: [(requests: [(path: {path:?}, name: {path:?})])])])"#
    );
    profile::load_str(&text, Path::new("--url")).map_err(|e| {
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

/// A profile-field error, with the file and line of `snippet` when it can be found in the profile
/// or one of its fragments.
fn located(
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
        'files: for (file, text) in &spec.sources {
            for needle in [snippet, escaped] {
                if let Some(position) = profile::locate(text, needle) {
                    e.file = Some(file.clone());
                    e.position = Some(position);
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

/// The resolved profile as RON for the manifest, with every secret shown as `***`: secret variables
/// (declared, secret-looking, or read from the process environment), headers whose names look
/// secret, and the passwords, keys and client secrets of auth helpers.
fn manifest_profile(
    spec: &ProfileSpec,
    host: &str,
    env_name: Option<&str>,
    headers: &BTreeMap<String, String>,
    vars: &Vars,
) -> String {
    let mut shown = spec.clone();
    shown.host = Some(
        if vars.mentions_secret(spec.host.as_deref().unwrap_or_default()) {
            REDACTED.to_owned()
        } else {
            host.to_owned()
        },
    );
    shown.default_environment = env_name.map(str::to_owned);
    shown.headers = redact_headers(headers);
    shown.variables = vars
        .values
        .iter()
        .filter(|(k, _)| !spec.secrets.contains_key(*k))
        .map(|(k, v)| {
            let v = if vars.secret.contains(k) {
                REDACTED.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    shown.secrets = spec
        .secrets
        .keys()
        .map(|k| (k.clone(), REDACTED.to_owned()))
        .collect();
    shown.environments.clear();
    shown.include.clear();
    if let Some(a) = &mut shown.auth {
        redact_auth(a);
    }
    for user in &mut shown.users {
        user.headers = redact_headers(&user.headers);
        user.variables = user
            .variables
            .iter()
            .map(|(k, v)| {
                let v = if vars::looks_secret(k) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        if let Some(a) = &mut user.auth {
            redact_auth(a);
        }
        for req in user.on_start.iter_mut().chain(user.on_stop.iter_mut()) {
            redact_request(req);
        }
        for task in &mut user.tasks {
            redact_task(task);
        }
    }
    ron::ser::to_string_pretty(
        &shown,
        ron::ser::PrettyConfig::default().extensions(
            ron::extensions::Extensions::IMPLICIT_SOME
                | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        ),
    )
    .unwrap_or_else(|e| format!("(could not render the profile: {e})"))
}

fn redact_task(task: &mut profile::spec::TaskSpec) {
    for req in &mut task.requests {
        redact_request(req);
    }
    for child in task.sequence.iter_mut().chain(task.tasks.iter_mut()) {
        redact_task(child);
    }
    redact_flow(&mut task.flow);
}

fn redact_flow(flow: &mut [profile::spec::FlowSpec]) {
    use profile::spec::FlowSpec as F;
    for item in flow {
        match item {
            F::Request(req) => redact_request(req),
            F::Task(task) => redact_task(task),
            F::If {
                then, otherwise, ..
            } => {
                redact_flow(then);
                redact_flow(otherwise);
            }
            F::While { body, .. } | F::Repeat { body, .. } => redact_flow(body),
            F::Step(_) | F::Break | F::Set(..) | F::Pause(_) | F::Script { .. } => {}
        }
    }
}

fn redact_request(req: &mut profile::spec::RequestSpec) {
    req.headers = redact_headers(&req.headers);
    if let Some(a) = &mut req.auth {
        redact_auth(a);
    }
}

/// Hides credentials written into an auth helper; references (`${NAME}`, `{{token}}`) stay, since
/// they show where the value comes from without showing it.
fn redact_auth(auth: &mut AuthSpec) {
    let hide = |text: &mut String| {
        if !is_reference(text) {
            *text = REDACTED.to_owned();
        }
    };
    match auth {
        AuthSpec::Basic { password, .. } => hide(password),
        AuthSpec::Jwt { secret, .. } => {
            if let Some(s) = secret {
                hide(s);
            }
        }
        AuthSpec::OAuth2 { client_secret, .. } => hide(client_secret),
        AuthSpec::Bearer(token) => hide(token),
        AuthSpec::Off => {}
    }
}

/// Whether `text` is nothing but `${...}` and `{{...}}` references.
fn is_reference(text: &str) -> bool {
    let mut rest = text.trim();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let close = if rest.starts_with("${") {
            "}"
        } else if rest.starts_with("{{") {
            "}}"
        } else {
            return false;
        };
        match rest.find(close) {
            Some(i) => rest = rest[i + close.len()..].trim_start(),
            None => return false,
        }
    }
    true
}

fn redact_headers(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if vars::looks_secret(k) {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> PlanEnv {
        PlanEnv {
            cpus: vec![0, 1],
            ..PlanEnv::default()
        }
    }

    fn env_with(vars: &[(&str, &str)]) -> PlanEnv {
        PlanEnv {
            cpus: vec![0, 1],
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..PlanEnv::default()
        }
    }

    const PROFILE: &str = r#"(
        name: "t",
        host: "http://127.0.0.1:9/api/",
        variables: {"id": "7", "who": "profile"},
        secrets: {"api_key": "k-123"},
        environments: {"stage": (host: "http://stage.invalid:8080", variables: {"id": "8", "who": "environment"})},
        load: Closed(users: 5, spawn_rate: 10.0, duration: "3s"),
        users: [(weight: 1, wait: Between("1s", "2s"), tasks: [(requests: [
            (path: "/items/${id}", name: "item", headers: {"X-Who": "{{who}}", "X-Key": "${api_key}"}),
            (method: POST, path: "/login", body: Json({"user": "a", "n": 1})),
        ])])],
    )"#;

    fn spec() -> ProfileSpec {
        profile::load_str(PROFILE, Path::new("t.ron")).unwrap()
    }

    fn path(plan: &Plan, r: usize) -> String {
        String::from_utf8(
            plan.scenario.requests[r]
                .path
                .static_bytes()
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    fn header(plan: &Plan, r: usize, name: &str) -> String {
        let (_, t) = plan.scenario.requests[r]
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .unwrap();
        String::from_utf8(t.static_bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn users_are_dealt_round_robin_with_spawn_times() {
        let plan = Plan::resolve(spec(), &RunArgs::default(), &env()).unwrap();
        assert_eq!(plan.cores.len(), 2);
        let core0: Vec<u32> = plan.cores[0].users.iter().map(|u| u.global).collect();
        assert_eq!(core0, [0, 2, 4]);
        assert_eq!(plan.cores[1].users[0].spawn_at, Duration::from_millis(100));
        assert_eq!(path(&plan, 0), "/api/items/7");
        assert_eq!(
            plan.scenario.requests[1]
                .body
                .as_ref()
                .unwrap()
                .1
                .static_bytes(),
            Some(&br#"{"user":"a","n":1}"#[..])
        );
        assert_eq!(plan.scenario.requests[1].name, "POST /login");
    }

    const START: &str = "2026-12-05T14:00:00Z";
    /// A minute before `START`.
    const NOW: i64 = 1_796_479_140_000_000_000;

    fn sharded(load: &str, shard: Option<Shard>, cores: u32, iterations: Option<u64>) -> Plan {
        let text = format!(
            r#"(name: "t", host: "http://127.0.0.1:9", load: {load},
                users: [(name: "a", weight: 2, tasks: [(requests: [(path: "/")])]),
                        (name: "b", weight: 1, tasks: [(requests: [(path: "/b")])])])"#
        );
        let spec = profile::load_str(&text, Path::new("t.ron")).unwrap();
        let args = RunArgs {
            shard,
            start_at: shard.map(|_| START.to_owned()),
            cores: Some(cores),
            iterations,
            ..RunArgs::default()
        };
        let env = PlanEnv {
            now_unix_ns: NOW,
            ..env()
        };
        Plan::resolve(spec, &args, &env).unwrap()
    }

    /// Every user of a core: (global index, kind, spawn time).
    fn dealt(core: &CorePlan) -> Vec<(u32, usize, Duration)> {
        core.users
            .iter()
            .map(|u| (u.global, u.kind, u.spawn_at))
            .collect()
    }

    /// For closed models (a spawn ramp, stages, users that do and do not divide by the seats, more
    /// seats than users): shard `s`'s core `c` of N shards x C cores gets exactly the users of core
    /// `s + N c` of one engine with N x C cores, with the same kinds and spawn times; the shares are
    /// the shards' parts of the users, summing to 1; and iteration limits split exactly.
    #[test]
    fn shards_deal_users_as_one_engine_with_every_core() {
        let loads = [
            r#"Closed(users: 7, spawn_rate: 10.0, duration: "10s")"#,
            r#"Closed(users: 24, duration: "10s")"#,
            r#"Closed(users: 2, duration: "10s")"#,
            r#"Stages(stages: [(users: 9, over: "3s"), (users: 4, over: "2s")])"#,
        ];
        for load in loads {
            for shards in 1..=4u32 {
                for cores in 1..=3u32 {
                    let one = sharded(load, None, shards * cores, Some(1001));
                    let mut iterations = 0;
                    let mut shares = Vec::new();
                    for index in 0..shards {
                        let shard = Shard {
                            index,
                            count: shards,
                        };
                        let plan = sharded(load, Some(shard), cores, Some(1001));
                        let part = plan.shard.as_ref().unwrap();
                        assert_eq!(part.shard, shard);
                        shares = part.shares.clone();
                        for core in &plan.cores {
                            assert_eq!(
                                dealt(core),
                                dealt(&one.cores[(index + shards * core.index) as usize]),
                                "{load}: {shards} shards x {cores} cores, shard {index} core {}",
                                core.index
                            );
                            iterations += core.iterations.unwrap_or(0);
                        }
                        assert_eq!(plan.profile_ron, one.profile_ron, "the same profile text");
                    }
                    assert_eq!(
                        iterations, 1001,
                        "{load}: {shards}x{cores}: the limit splits exactly"
                    );
                    assert_eq!(shares.len(), shards as usize);
                    assert!(
                        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                        "{shares:?}"
                    );
                    let users = one.users;
                    for (i, share) in shares.iter().enumerate() {
                        let mine = (i as u32..users).step_by(shards as usize).count();
                        assert!(
                            (share - mine as f64 / f64::from(users)).abs() < 1e-12,
                            "{load}: shard {i} has {mine} of {users} users, share {share}"
                        );
                    }
                }
            }
        }
    }

    /// Open models: every seat's arrivals, pool and queue; the pool and queue limits split so that
    /// they add up to the profile's (when every core can have one user), and each shard's share of
    /// the rate is 1/N.
    #[test]
    fn shards_split_the_arrival_rate_and_the_pool() {
        let load = r#"Open(rate: 100.0, duration: "2s", max_users: 50, queue: 9)"#;
        for shards in [1u32, 2, 3, 5] {
            for cores in [1u32, 2, 3] {
                let mut pool = 0;
                let mut queue = 0;
                let mut arrivals = Vec::new();
                for index in 0..shards {
                    let shard = Shard {
                        index,
                        count: shards,
                    };
                    let plan = sharded(load, Some(shard), cores, None);
                    let shares = &plan.shard.as_ref().unwrap().shares;
                    assert!(shares.iter().all(|&s| s == 1.0 / f64::from(shards)));
                    for core in &plan.cores {
                        let open = core.open.as_ref().unwrap();
                        assert_eq!(open.arrivals.seat, core.seat);
                        assert_eq!(
                            (core.seat.shard, core.seat.shards, core.seat.cores),
                            (index, shards, cores)
                        );
                        pool += open.pool.iter().sum::<u32>();
                        queue += open.queue;
                        arrivals.extend((0..).map_while(|k| open.arrivals.intended_start(k)));
                    }
                }
                assert_eq!(pool, 50, "{shards}x{cores}: the pool adds up to max_users");
                assert_eq!(queue, 9, "{shards}x{cores}: the queue adds up");
                assert_eq!(
                    arrivals.len(),
                    200,
                    "{shards}x{cores}: rate x duration arrivals"
                );
                arrivals.sort();
                arrivals.dedup();
                assert_eq!(arrivals.len(), 200, "no arrival twice");
            }
        }
    }

    #[test]
    fn several_shards_need_one_absolute_start() {
        let spec = || profile::load_str(PROFILE, Path::new("t.ron")).unwrap();
        let env = PlanEnv {
            now_unix_ns: NOW,
            ..env()
        };
        let shard = Some(Shard { index: 1, count: 3 });
        let rows: &[(RunArgs, &str, &str)] = &[
            (
                RunArgs {
                    shard,
                    ..RunArgs::default()
                },
                "--shard",
                "give every one the same --start-at",
            ),
            (
                RunArgs {
                    shard,
                    start_at: Some("+30s".into()),
                    ..RunArgs::default()
                },
                "--start-at",
                "the same absolute instant",
            ),
            (
                RunArgs {
                    shard,
                    start_at: Some(START.into()),
                    run_id: Some("a/b".into()),
                    ..RunArgs::default()
                },
                "--run-id",
                "cannot name a run directory",
            ),
        ];
        for (args, field, fragment) in rows {
            let e = Plan::resolve(spec(), args, &env).unwrap_err();
            assert_eq!(e.field, *field, "{e}");
            assert!(e.message.contains(fragment), "{e}");
        }
        // One shard, or one engine, may start relative to now.
        let args = RunArgs {
            shard: Some(Shard { index: 0, count: 1 }),
            start_at: Some("+30s".into()),
            ..RunArgs::default()
        };
        let plan = Plan::resolve(spec(), &args, &env).unwrap();
        assert_eq!(plan.start_at.unwrap().unix_ns, NOW + 30_000_000_000);
        assert_eq!(plan.shard.unwrap().shares, [1.0]);
    }

    /// The documented precedence: flags > process environment > selected environment > profile.
    #[test]
    fn precedence_flags_then_process_environment_then_environment_then_profile() {
        let resolve = |args: &RunArgs, env: &PlanEnv| {
            let plan = Plan::resolve(spec(), args, env).unwrap();
            (path(&plan, 0), header(&plan, 0, "X-Who"), plan.target)
        };
        let stage = Target::Http {
            host: "stage.invalid".into(),
            port: 8080,
            base_path: String::new(),
            tls: false,
        };
        // Profile defaults.
        let (p, who, target) = resolve(&RunArgs::default(), &env());
        assert_eq!((p.as_str(), who.as_str()), ("/api/items/7", "profile"));
        assert!(matches!(target, Target::Http { port: 9, .. }));
        // The selected environment over the profile.
        let staging = RunArgs {
            env: Some("stage".into()),
            ..RunArgs::default()
        };
        let (p, who, target) = resolve(&staging, &env());
        assert_eq!(
            (p.as_str(), who.as_str(), &target),
            ("/items/8", "environment", &stage)
        );
        // STAMPEDE_ENV selects it too; STAMPEDE_VAR_* and STAMPEDE_HOST beat the environment.
        let process = env_with(&[
            ("STAMPEDE_ENV", "stage"),
            ("STAMPEDE_VAR_who", "process"),
            ("STAMPEDE_HOST", "http://127.0.0.3:81"),
        ]);
        let (p, who, target) = resolve(&RunArgs::default(), &process);
        assert_eq!((p.as_str(), who.as_str()), ("/items/8", "process"));
        assert!(matches!(target, Target::Http { port: 81, .. }));
        // Flags beat everything.
        let flags = RunArgs {
            env: Some("stage".into()),
            host: Some("http://127.0.0.2:82".into()),
            vars: vec![("who".into(), "flag".into()), ("id".into(), "9".into())],
            ..RunArgs::default()
        };
        let (p, who, target) = resolve(&flags, &process);
        assert_eq!((p.as_str(), who.as_str()), ("/items/9", "flag"));
        assert!(matches!(target, Target::Http { port: 82, .. }));
        // --env beats STAMPEDE_ENV.
        let e = Plan::resolve(
            spec(),
            &RunArgs {
                env: Some("nope".into()),
                ..RunArgs::default()
            },
            &process,
        )
        .unwrap_err();
        assert_eq!(e.field, "--env");
    }

    #[test]
    fn process_environment_variables_fill_in_references() {
        let text = PROFILE.replace(r#""k-123""#, r#""${SHOP_KEY:-none}""#);
        let spec = profile::load_str(&text, Path::new("t.ron")).unwrap();
        let plan = Plan::resolve(
            spec.clone(),
            &RunArgs::default(),
            &env_with(&[("SHOP_KEY", "from-env")]),
        )
        .unwrap();
        assert_eq!(header(&plan, 0, "X-Key"), "from-env");
        let plan = Plan::resolve(spec, &RunArgs::default(), &env()).unwrap();
        assert_eq!(header(&plan, 0, "X-Key"), "none");
    }

    #[test]
    fn secrets_are_redacted_in_the_manifest_profile() {
        let text = PROFILE.replace(
            r#"variables: {"id": "7", "who": "profile"},"#,
            r#"variables: {"id": "7", "who": "profile", "password": "pw-1", "from_env": "${SHOP_TOKEN}"},
               auth: Basic(user: "u", password: "literal-pw"),"#,
        );
        let spec = profile::load_str(&text, Path::new("t.ron")).unwrap();
        let args = RunArgs {
            vars: vec![("api_key".into(), "flag-key".into())],
            ..RunArgs::default()
        };
        let plan = Plan::resolve(spec, &args, &env_with(&[("SHOP_TOKEN", "tok-9")])).unwrap();
        let ron = &plan.profile_ron;
        for secret in ["k-123", "flag-key", "pw-1", "tok-9", "literal-pw"] {
            assert!(!ron.contains(secret), "{secret} leaked into {ron}");
        }
        assert!(ron.contains(r#""who": "profile""#), "{ron}");
        assert!(ron.contains(REDACTED));
        // The request still sends the real values.
        assert_eq!(header(&plan, 0, "X-Key"), "flag-key");
        // And the manifest profile is still a profile.
        profile::load_str(ron, Path::new("manifest")).unwrap();
    }

    #[test]
    fn unknown_environment_and_variable_are_explained_with_their_place() {
        let args = RunArgs {
            env: Some("stag".into()),
            ..RunArgs::default()
        };
        let e = Plan::resolve(spec(), &args, &env()).unwrap_err();
        assert!(e.message.contains("did you mean \"stage\""), "{e}");
        let text = PROFILE.replace("/items/${id}", "/items/${iid}");
        let e = Plan::resolve(
            profile::load_str(&text, Path::new("t.ron")).unwrap(),
            &RunArgs::default(),
            &env(),
        )
        .unwrap_err();
        assert!(e.message.contains("did you mean `id`"), "{e}");
        assert_eq!(e.field, "users[0].tasks[0].requests[0].path");
        // Line 9, at the `${` of the bad reference.
        assert_eq!(e.position, Some((9, 28)), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.ron:9:28: in `users[0].tasks[0].requests[0].path`"),
            "{e}"
        );
    }

    #[test]
    fn the_manifest_profile_reads_back_as_a_profile() {
        let plan = Plan::resolve(spec(), &RunArgs::default(), &env()).unwrap();
        let again = profile::load_str(&plan.profile_ron, Path::new("manifest")).unwrap();
        assert_eq!(again.name, "t");
        assert!(!plan.profile_ron.contains("Some("), "{}", plan.profile_ron);
    }

    #[test]
    fn references_are_not_redacted_but_values_are() {
        assert!(is_reference("${CLIENT_SECRET}"));
        assert!(is_reference("{{token}} ${x}"));
        assert!(!is_reference("abc${x}"));
        assert!(!is_reference(""));
        assert!(!is_reference("${unclosed"));
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("embedded", "host").unwrap(), Target::Embedded);
        assert_eq!(
            Target::parse("http://[::1]:81/", "host").unwrap(),
            Target::Http {
                host: "[::1]".into(),
                port: 81,
                base_path: String::new(),
                tls: false,
            }
        );
        assert_eq!(
            Target::parse("https://x", "host").unwrap(),
            Target::Http {
                host: "x".into(),
                port: 443,
                base_path: String::new(),
                tls: true,
            }
        );
        assert_eq!(
            Target::parse("tcp://127.0.0.1:6379", "host").unwrap(),
            Target::Other {
                scheme: "tcp".into(),
                host: "127.0.0.1".into(),
                port: 6379,
                path: String::new(),
            }
        );
        assert!(
            Target::parse("udp://127.0.0.1", "host")
                .unwrap_err()
                .message
                .contains("no port")
        );
        assert!(Target::parse("localhost:80", "host").is_err());
        assert!(Target::parse("http://h:99999", "host").is_err());
    }
}
