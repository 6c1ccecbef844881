//! `engine kube`: renders the Kubernetes manifests that run a profile as N shards, one pod each.
//!
//! ```text
//! profile.ron ──profile::load──▶ Plan::resolve (as each pod will) ──▶ bundle (profile + files)
//!     ──▶ render::Settings ──▶ objects (ConfigMap, Job, collector Job, PVC) ──▶ yaml ──▶ stdout
//! ```
//!
//! The profile is checked exactly as `engine run` checks it, with the flags given after `--`, so a
//! bad profile fails here (exit 2) rather than in N pods. The shards are an `Indexed` Job: pod `I`
//! runs `engine run --shards N --run-id ID --start-at T` with `JOB_COMPLETION_INDEX=I`, and writes
//! `/results/ID/shard-I/` on a shared claim as it goes, so results outlive the pods.
//! docs/distributed.md is the user's guide; `render` holds the reasons for each Job setting.

pub mod bundle;
pub mod capacity;
pub mod objects;
pub mod render;
pub mod yaml;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{Cli, Command, RunArgs};
use crate::plan::{ENV_HOST, ENV_SELECT, LoadPlan, Plan, PlanEnv, PlanError, Target};
use crate::profile::spec::{LoadSpec, ProfileSpec};
use crate::profile::{self, ProfileError};
use crate::protocol::Protocols;
use crate::scenario::vars::ENV_VAR_PREFIX;

pub use render::Seccomp;

const EXAMPLES: &str = "\
Examples:
  engine kube profiles/shop.ron --shards 8 --image IMG | kubectl apply -f -
  engine kube shop.ron --shards 4 --cores 2 --image IMG -n load -- --env staging
  engine kube shop.ron --shards 4 --image IMG --create-pvc 20Gi --out run.yaml

Flags after `--` go to `engine run` in every pod (and are checked here first).
Then: kubectl logs -l app.kubernetes.io/instance=<run-id> --prefix -f
      kubectl exec job/stampede-<run-id>-collect -- tar -C /results -cf - <run-id>
        | tar -C runs -xf -
      analyzer report runs/<run-id>/
engine kube prints these commands for the run; docs/distributed.md walks through it.";

/// `engine kube`.
#[derive(Debug, Clone, Args)]
#[command(after_help = EXAMPLES)]
pub struct KubeArgs {
    /// The profile (RON). It and every file it names (fragments, feeders, CA and key files) go into
    /// a ConfigMap.
    pub profile: PathBuf,
    /// Pods, one shard of the test each (an Indexed Job: completions = parallelism = N).
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// The engine's container image; its entrypoint must be the engine (see the Dockerfile).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// Namespace for every object; default: kubectl's current namespace.
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Whole CPUs per pod (requests = limits, so the static CPU manager can pin them) and engine
    /// threads per pod.
    #[arg(long, value_name = "C", default_value_t = 1)]
    pub cores: u32,
    /// Memory per pod, e.g. `2Gi` (requests = limits); default: 256Mi plus 64Ki per user plus twice
    /// the profile's files.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Start every shard's schedule this long after now (the instant is written into the manifests,
    /// so apply them at once).
    #[arg(long, value_name = "D", default_value = "2m", value_parser = parse_duration_arg, conflicts_with = "start_at")]
    pub start_in: Duration,
    /// Start every shard's schedule at this instant instead (RFC 3339, e.g. `2026-11-27T10:00:00Z`).
    #[arg(long, value_name = "INSTANT")]
    pub start_at: Option<String>,
    /// The run id (lowercase letters, digits and `-`, at most 40): names the objects and the results
    /// directory. Default: the UTC time and the profile's name.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Where shards write their run directories: `pvc:NAME`, a ReadWriteMany claim mounted at
    /// /results in every pod.
    #[arg(long, value_name = "pvc:NAME", default_value = "pvc:stampede-results")]
    pub results: String,
    /// Also create the results claim (ReadWriteMany) with this size, e.g. `20Gi`.
    #[arg(long, value_name = "SIZE")]
    pub create_pvc: Option<String>,
    /// The storage class of the claim --create-pvc makes (one that offers ReadWriteMany: NFS,
    /// CephFS, EFS, Azure Files, Filestore); default: the cluster's default class.
    #[arg(long, value_name = "CLASS", requires = "create_pvc")]
    pub storage_class: Option<String>,
    /// The pods' seccomp profile: `runtime-default` (allowed by every Pod Security level; containerd
    /// 2.0 and Docker 25 block io_uring in it, so the engine uses epoll), `unconfined` (io_uring
    /// works) or `localhost:PATH`.
    #[arg(long, value_name = "PROFILE", default_value = "runtime-default", value_parser = parse_seccomp)]
    pub seccomp: Seccomp,
    /// At most one pod per node (required anti-affinity) instead of an even spread (topology spread,
    /// max skew 1).
    #[arg(long)]
    pub one_per_node: bool,
    /// Run only on nodes with this label (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub node_selector: Vec<(String, String)>,
    /// Tolerate a taint (repeatable): `KEY[=VALUE][:EFFECT]`.
    #[arg(long, value_name = "TAINT", value_parser = parse_toleration)]
    pub toleration: Vec<objects::Toleration>,
    /// A Secret whose keys become the pods' environment variables, for `${NAME}` in the profile
    /// (repeatable).
    #[arg(long, value_name = "NAME")]
    pub secret: Vec<String>,
    /// Files the image holds (a file or a directory, absolute): profile files named by an absolute
    /// path under it are not put in the ConfigMap (repeatable; docs/distributed.md#large-data-files).
    #[arg(long, value_name = "PATH")]
    pub in_image: Vec<PathBuf>,
    /// Keep the finished Job (and its pods' logs) and the collector this long.
    #[arg(long, value_name = "D", default_value = "24h", value_parser = parse_duration_arg)]
    pub ttl: Duration,
    /// The collector's image (it needs `sleep` and `tar`); default: --image.
    #[arg(long, value_name = "IMAGE")]
    pub collector_image: Option<String>,
    /// No collector pod.
    #[arg(long, conflicts_with = "collector_image")]
    pub no_collector: bool,
    /// Write the manifests to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Flags for `engine run` in every pod, after `--` (e.g. `-- --env staging --rate 5000`).
    #[arg(last = true, value_name = "ENGINE RUN FLAGS")]
    pub engine_args: Vec<String>,
}

/// Why `engine kube` rendered nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// The profile is unusable; exit code 2.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The profile and flags do not make a plan; exit code 2.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A flag is wrong; exit code 2.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag.
        flag: String,
        /// What is wrong and what would do.
        message: String,
    },
    /// A file the profile names cannot go into the pods; exit code 2.
    #[error("{0}")]
    Bundle(String),
    /// The output could not be written; exit code 1.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl KubeError {
    /// 2 for bad input, 1 when the output could not be written.
    pub fn exit_code(&self) -> u8 {
        match self {
            KubeError::Write { .. } => 1,
            _ => 2,
        }
    }
}

fn flag(flag: &str, message: impl Into<String>) -> KubeError {
    KubeError::Flag {
        flag: flag.into(),
        message: message.into(),
    }
}

/// The rendered run.
#[derive(Debug)]
pub struct Rendered {
    /// The manifests, as YAML documents.
    pub yaml: String,
    /// The objects.
    pub objects: Vec<objects::Object>,
    /// What they were rendered from.
    pub settings: render::Settings,
    /// The test looks too big for the pods: each says what would fit.
    pub warnings: Vec<String>,
    /// Things to know (absolute paths, variables the pods will not see).
    pub notes: Vec<String>,
}

/// Runs `engine kube`: renders, writes the manifests, and prints warnings and next steps to stderr.
pub fn command(args: &KubeArgs) -> Result<(), KubeError> {
    command_with(args, &Protocols::default())
}

/// [`command`] for an engine binary with custom protocols, which profiles may use.
pub fn command_with(args: &KubeArgs, protocols: &Protocols) -> Result<(), KubeError> {
    let cwd = std::env::current_dir()
        .map_err(|e| KubeError::Bundle(format!("cannot tell the current directory: {e}")))?;
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let rendered = render_run(args, protocols, &env, &cwd, OffsetDateTime::now_utc())?;
    match &args.out {
        Some(path) => std::fs::write(path, &rendered.yaml).map_err(|source| KubeError::Write {
            path: path.clone(),
            source,
        })?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(rendered.yaml.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|source| KubeError::Write {
                    path: "standard output".into(),
                    source,
                })?;
        }
    }
    eprint!("{}", summary(&rendered, args.out.as_deref()));
    Ok(())
}

/// Renders the manifests for `args` as of `now`, resolving the profile with the process
/// environment `env` (less the `STAMPEDE_*` variables, which the pods will not have).
pub fn render_run(
    args: &KubeArgs,
    protocols: &Protocols,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    now: OffsetDateTime,
) -> Result<Rendered, KubeError> {
    check_args(args)?;
    let run_args = engine_run_args(args)?;
    let spec = profile::load_file(&args.profile)?;

    let mut notes = Vec::new();
    let mut pod_env = env.clone();
    let local_only: Vec<String> = env
        .keys()
        .filter(|k| *k == ENV_SELECT || *k == ENV_HOST || k.starts_with(ENV_VAR_PREFIX))
        .cloned()
        .collect();
    for k in &local_only {
        pod_env.remove(k);
    }
    if !local_only.is_empty() {
        notes.push(format!(
            "{} set here, but the pods will not see it: the manifests were checked without it; pass \
             --env, --host or --var after `--`, or put it in a Secret given with --secret",
            local_only.join(", ")
        ));
    }
    let plan_env = PlanEnv {
        cpus: (0..args.cores).collect(),
        vars: pod_env,
    };
    let plan =
        Plan::resolve_with(spec.clone(), &run_args, &plan_env, protocols).map_err(|mut e| {
            if e.file.is_none() && !e.field.starts_with("--") && !e.field.starts_with("STAMPEDE_") {
                e.file = Some(args.profile.clone());
            }
            e
        })?;
    if let Some(host) = loopback_target(&plan.target) {
        notes.push(format!(
            "the target is {host}: inside a pod that is the pod itself; give the target's address in the cluster (--host after `--`)"
        ));
    }

    let bundle = bundle::collect(&args.profile, &spec, &plan, cwd, &args.in_image)?;
    notes.extend(bundle.notes.iter().cloned());

    let demand = demand(&spec, &run_args, &plan);
    let shape = capacity::Shape {
        shards: args.shards,
        cores: args.cores,
    };
    let warnings = capacity::warnings(demand, shape);
    let memory_mib = match &args.memory {
        Some(m) => parse_size_mib(m, "--memory")?,
        None => capacity::default_memory_mib(
            demand.users.div_ceil(u64::from(args.shards)),
            bundle.size() as u64,
        ),
    };

    let (start, lead) = start_instant(args, now)?;
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => default_run_id(now, &spec.name),
    };
    let claim = args
        .results
        .strip_prefix("pvc:")
        .expect("checked by check_args")
        .to_owned();
    let settings = render::Settings {
        run_id,
        profile_name: spec.name.clone(),
        namespace: args.namespace.clone(),
        shards: args.shards,
        cores: args.cores,
        memory_mib,
        image: args.image.clone(),
        collector_image: (!args.no_collector)
            .then(|| args.collector_image.clone().unwrap_or(args.image.clone())),
        start_at: start
            .format(&Rfc3339)
            .expect("a UTC instant in range formats"),
        deadline_s: deadline_seconds(lead, plan.duration, plan.http.request_timeout),
        ttl_s: args.ttl.as_secs(),
        claim,
        create_claim: args
            .create_pvc
            .clone()
            .map(|size| (size, args.storage_class.clone())),
        engine_args: args.engine_args.clone(),
        seccomp: args.seccomp.clone(),
        one_per_node: args.one_per_node,
        node_selector: args.node_selector.iter().cloned().collect(),
        tolerations: args.toleration.clone(),
        secrets: args.secret.clone(),
    };
    let objects = render::render(&settings, &bundle);
    let yaml = to_yaml(&settings, &objects);
    Ok(Rendered {
        yaml,
        objects,
        settings,
        warnings,
        notes,
    })
}

/// The documents, each after `---`, under a comment that says what they are.
fn to_yaml(s: &render::Settings, objects: &[objects::Object]) -> String {
    let mut out = format!(
        "# Rendered by `engine kube` (engine {}): run {}, {}, starting at {}.\n\
         # Apply at once: the start instant is fixed. docs/distributed.md\n",
        env!("CARGO_PKG_VERSION"),
        s.run_id,
        shape(s),
        s.start_at
    );
    for object in objects {
        out.push_str("---\n");
        out.push_str(&yaml::document(&yaml::to_node(object)));
    }
    out
}

/// "4 shards of 2 cores".
fn shape(s: &render::Settings) -> String {
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} of {}",
        plural(s.shards, "shard", "shards"),
        plural(s.cores, "core", "cores")
    )
}

/// What to do next, and anything to know first.
fn summary(r: &Rendered, out: Option<&Path>) -> String {
    let s = &r.settings;
    let ns = s
        .namespace
        .as_deref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    let mut text = String::new();
    for n in &r.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    for w in &r.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    let apply = match out {
        Some(p) => format!("kubectl apply -f {}", p.display()),
        None => "pipe this output to `kubectl apply -f -`".to_owned(),
    };
    let label = format!("{}={}", render::INSTANCE_LABEL, s.run_id);
    text.push_str(&format!(
        "run {id}: {shape}, {mem}Mi each, start at {start}; results in pvc/{claim} at {dir}/{id}/\n\
         \x20 apply now:  {apply}   (the start instant is fixed)\n\
         \x20 watch:      kubectl{ns} logs -f -l {label},app.kubernetes.io/component=load-generator --prefix --max-log-requests {n}\n\
         \x20 wait:       kubectl{ns} wait --for=condition=Complete --timeout={deadline}s job/{job}\n",
        id = s.run_id,
        n = s.shards,
        shape = shape(s),
        mem = s.memory_mib,
        start = s.start_at,
        claim = s.claim,
        dir = render::RESULTS_DIR,
        deadline = s.deadline_s,
        job = render::job_name(&s.run_id),
    ));
    if s.collector_image.is_some() {
        text.push_str(&format!(
            "\x20 collect:    mkdir -p runs && kubectl{ns} exec job/{collector} -- tar -C {dir} -cf - {id} | tar -C runs -xf -\n",
            collector = render::collector_name(&s.run_id),
            dir = render::RESULTS_DIR,
            id = s.run_id,
        ));
    }
    text.push_str(&format!(
        "\x20 report:     analyzer report runs/{id}/\n\
         \x20 clean up:   kubectl{ns} delete job,configmap -l {label}\n",
        id = s.run_id,
    ));
    text
}

/// Checks the flags that need no profile.
fn check_args(args: &KubeArgs) -> Result<(), KubeError> {
    if args.shards == 0 {
        return Err(flag("--shards", "must be at least 1"));
    }
    if args.shards > 1000 {
        return Err(flag(
            "--shards",
            format!(
                "{} pods is more than engine kube renders (at most 1000)",
                args.shards
            ),
        ));
    }
    if args.cores == 0 || args.cores > 1024 {
        return Err(flag(
            "--cores",
            "must be a whole number of CPUs from 1 to 1024",
        ));
    }
    if args.image.trim().is_empty() || args.image.chars().any(char::is_whitespace) {
        return Err(flag(
            "--image",
            format!("{:?} is not an image reference", args.image),
        ));
    }
    if let Some(ns) = &args.namespace {
        dns_label("--namespace", ns, 63)?;
    }
    if let Some(id) = &args.run_id {
        dns_label("--run-id", id, 40)?;
    }
    match args.results.strip_prefix("pvc:") {
        Some(name) => dns_label("--results", name, 253)?,
        None => {
            return Err(flag(
                "--results",
                format!(
                    "{:?}: give `pvc:NAME`, a ReadWriteMany claim (docs/distributed.md#collecting-the-results)",
                    args.results
                ),
            ));
        }
    }
    if let Some(size) = &args.create_pvc {
        parse_size_mib(size, "--create-pvc")?;
    }
    for name in &args.secret {
        dns_label("--secret", name, 253)?;
    }
    if let Some(p) = args.in_image.iter().find(|p| !p.is_absolute()) {
        return Err(flag(
            "--in-image",
            format!(
                "{} is not an absolute path: give where the image holds the files, e.g. /data",
                p.display()
            ),
        ));
    }
    if args.ttl.is_zero() {
        return Err(flag(
            "--ttl",
            "must be longer than zero: the collector needs the time to copy results",
        ));
    }
    Ok(())
}

/// Lowercase letters, digits and `-` (`.` too for names that allow it), starting and ending with a
/// letter or digit.
fn dns_label(name: &str, value: &str, max: usize) -> Result<(), KubeError> {
    let dots = max > 63;
    let ok = !value.is_empty()
        && value.len() <= max
        && value.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.')
        })
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(flag(
            name,
            format!(
                "{value:?} is not a valid name: use at most {max} lowercase letters, digits and `-`{}, starting and ending with a letter or digit",
                if dots { " or `.`" } else { "" }
            ),
        ))
    }
}

/// Flags that `engine kube` sets in every pod itself, and what to use instead.
const RESERVED: [(&str, &str); 8] = [
    ("--out", "the shards write to the claim given by --results"),
    (
        "--cores",
        "give engine kube's --cores: it also sets the pods' CPUs",
    ),
    (
        "-c",
        "give engine kube's --cores: it also sets the pods' CPUs",
    ),
    ("--shards", "give engine kube's --shards"),
    ("--shard", "each pod's index comes from the Indexed Job"),
    ("--run-id", "give engine kube's --run-id"),
    ("--start-at", "give engine kube's --start-at or --start-in"),
    ("--url", "engine kube runs a profile"),
];

/// The flags after `--`, checked as `engine run` will check them in the pods.
fn engine_run_args(args: &KubeArgs) -> Result<RunArgs, KubeError> {
    for token in &args.engine_args {
        for (name, instead) in RESERVED {
            let matches = token == name
                || token.starts_with(&format!("{name}="))
                || (name == "-c" && token.starts_with("-c") && !token.starts_with("--"));
            if matches {
                return Err(flag(
                    "-- (flags for engine run)",
                    format!("{token}: engine kube sets {name} in every pod; {instead}"),
                ));
            }
        }
    }
    let argv = [
        "engine".into(),
        "run".into(),
        args.profile.clone().into_os_string(),
    ]
    .into_iter()
    .chain(args.engine_args.iter().map(Into::into));
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        flag(
            "-- (flags for engine run)",
            format!("{first}; see `engine run --help`"),
        )
    })?;
    let Command::Run(run) = cli.command else {
        unreachable!("parsed as `engine run`")
    };
    Ok(run)
}

/// The highest arrival rate (open models) and the user count, as the pods will run them.
fn demand(spec: &ProfileSpec, run: &RunArgs, plan: &Plan) -> capacity::Demand {
    let peak_rate = match (&plan.load, run.rate) {
        (LoadPlan::Closed { .. }, _) => None,
        (LoadPlan::Open { .. }, Some(rate)) => Some(rate),
        (LoadPlan::Open { .. }, None) => match &spec.load {
            LoadSpec::Open { rate, .. } => Some(*rate),
            LoadSpec::RampingRate {
                start_rate, stages, ..
            } => Some(stages.iter().map(|s| s.to).fold(*start_rate, f64::max)),
            LoadSpec::Closed { .. } | LoadSpec::Stages { .. } => None,
        },
    };
    capacity::Demand {
        peak_rate,
        users: u64::from(plan.users),
        closed: matches!(plan.load, LoadPlan::Closed { .. }),
    }
}

/// The loopback host a target names, if it does.
fn loopback_target(target: &Target) -> Option<&str> {
    let host = match target {
        Target::Http { host, .. } | Target::Other { host, .. } => host.as_str(),
        Target::Embedded => return None,
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then_some(host)
}

/// The common start instant (whole seconds, UTC) and how far ahead of `now` it is.
fn start_instant(
    args: &KubeArgs,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, Duration), KubeError> {
    let start = match &args.start_at {
        Some(text) => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
                let relative = text.starts_with('+');
                flag(
                    "--start-at",
                    if relative {
                        format!(
                            "{text:?}: a relative instant would be relative to each pod's own start; use --start-in {}",
                            text.trim_start_matches('+')
                        )
                    } else {
                        format!(
                            "{text:?} is not an RFC 3339 instant ({e}); write e.g. 2026-11-27T10:00:00Z"
                        )
                    },
                )
            })?;
            let t = t.to_offset(time::UtcOffset::UTC);
            if t <= now {
                return Err(flag(
                    "--start-at",
                    format!(
                        "{text} is not in the future (it is now {}); pods would all start late",
                        now.replace_nanosecond(0)
                            .unwrap_or(now)
                            .format(&Rfc3339)
                            .unwrap_or_default()
                    ),
                ));
            }
            t
        }
        None => now + args.start_in,
    };
    // Whole seconds, rounded up, so the instant reads cleanly and is never before the lead asked.
    let whole = match start.replace_nanosecond(0) {
        Ok(t) if t < start => t + Duration::from_secs(1),
        Ok(t) => t,
        Err(_) => start,
    };
    let lead = (whole - now).try_into().unwrap_or(Duration::ZERO);
    Ok((whole, lead))
}

/// The Job's `activeDeadlineSeconds`: the time until the start, the run, the request timeout for
/// requests still in flight, and a margin of a tenth of the run (at least a minute) for start-up and
/// writing the manifests. A pod that never gets scheduled, or hangs, ends there; nothing waits
/// forever.
pub fn deadline_seconds(lead: Duration, run: Duration, request_timeout: Duration) -> u64 {
    let margin = (run / 10).max(Duration::from_secs(60));
    (lead + run + request_timeout + margin).as_secs_f64().ceil() as u64
}

/// `YYYYMMDD-HHMMSS-name`: the UTC time first, as run directories are named, and the profile's name
/// in the characters an object name allows.
fn default_run_id(now: OffsetDateTime, profile_name: &str) -> String {
    let stamp = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut name = String::new();
    for c in profile_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
    }
    name.truncate(24);
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        stamp
    } else {
        format!("{stamp}-{name}")
    }
}

/// `512Mi`, `2Gi` or `1Ti` as MiB.
fn parse_size_mib(text: &str, flag_name: &str) -> Result<u64, KubeError> {
    let bad = || {
        flag(
            flag_name,
            format!("{text:?} is not a size; write e.g. 512Mi, 2Gi or 1Ti"),
        )
    };
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mib = match unit {
        "Mi" => n,
        "Gi" => n.checked_mul(1024).ok_or_else(bad)?,
        "Ti" => n.checked_mul(1024 * 1024).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if mib == 0 {
        return Err(flag(flag_name, "must be more than zero"));
    }
    Ok(mib)
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    profile::parse_duration(s)
}

fn parse_seccomp(s: &str) -> Result<Seccomp, String> {
    match s {
        "runtime-default" => Ok(Seccomp::RuntimeDefault),
        "unconfined" => Ok(Seccomp::Unconfined),
        _ => match s.strip_prefix("localhost:") {
            Some(path) if !path.is_empty() => Ok(Seccomp::Localhost(path.to_owned())),
            _ => Err(format!(
                "{s:?}: use runtime-default, unconfined or localhost:PATH"
            )),
        },
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn parse_toleration(s: &str) -> Result<objects::Toleration, String> {
    let (taint, effect) = match s.rsplit_once(':') {
        Some((t, e)) => (t, Some(e)),
        None => (s, None),
    };
    if let Some(e) = effect
        && !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
    {
        return Err(format!(
            "{s:?}: the effect {e:?} is not NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = match taint.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (taint, None),
    };
    if key.is_empty() {
        return Err(format!("{s:?}: expected KEY[=VALUE][:EFFECT]"));
    }
    Ok(objects::Toleration {
        key: key.to_owned(),
        operator: if value.is_some() { "Equal" } else { "Exists" },
        value,
        effect: effect.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn args(extra: &[&str]) -> KubeArgs {
        let argv = ["engine", "kube", "p.ron", "--shards", "2", "--image", "img"]
            .iter()
            .chain(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Kube(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_start_instant_is_whole_seconds_in_utc_and_in_the_future() {
        let now = datetime!(2026-11-27 10:15:00.250 UTC);
        let (t, lead) = start_instant(&args(&[]), now).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2026-11-27T10:17:01Z");
        assert_eq!(lead, Duration::from_millis(120_750));
        let (t, _) = start_instant(&args(&["--start-in", "30s"]), now).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2026-11-27T10:15:31Z");
        let (t, lead) =
            start_instant(&args(&["--start-at", "2026-11-27T12:30:00+02:00"]), now).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2026-11-27T10:30:00Z");
        assert_eq!(lead, Duration::from_millis(899_750));
        let past = start_instant(&args(&["--start-at", "2026-11-27T10:00:00Z"]), now).unwrap_err();
        assert!(past.to_string().contains("not in the future"), "{past}");
        let relative = start_instant(&args(&["--start-at", "+30s"]), now).unwrap_err();
        assert!(
            relative.to_string().contains("use --start-in 30s"),
            "{relative}"
        );
        let garbage = start_instant(&args(&["--start-at", "tomorrow"]), now).unwrap_err();
        assert!(garbage.to_string().contains("RFC 3339"), "{garbage}");
    }

    #[test]
    fn the_deadline_covers_the_lead_the_run_and_a_margin() {
        let s = Duration::from_secs;
        // 2 min lead + 10 min run + 30 s timeout + 1 min margin.
        assert_eq!(deadline_seconds(s(120), s(600), s(30)), 810);
        // A long run's margin is a tenth of it.
        assert_eq!(
            deadline_seconds(s(60), s(7200), s(30)),
            60 + 7200 + 30 + 720
        );
    }

    #[test]
    fn run_ids_are_object_name_safe() {
        let now = datetime!(2026-11-27 10:15:03 UTC);
        assert_eq!(default_run_id(now, "shop"), "20261127-101503-shop");
        assert_eq!(
            default_run_id(now, "My Shop: checkout (EU)!"),
            "20261127-101503-my-shop-checkout-eu"
        );
        assert_eq!(default_run_id(now, "???"), "20261127-101503");
        let long = default_run_id(now, &"x".repeat(100));
        assert!(long.len() <= 40, "{long}");
        assert!(dns_label("--run-id", &long, 40).is_ok());
    }

    #[test]
    fn names_and_sizes_are_checked() {
        assert!(dns_label("--namespace", "load-tests", 63).is_ok());
        for bad in ["", "Load", "-x", "x-", "a_b", "a.b"] {
            assert!(dns_label("--namespace", bad, 63).is_err(), "{bad:?}");
        }
        assert!(dns_label("--secret", "api.keys", 253).is_ok());
        assert_eq!(parse_size_mib("512Mi", "--memory").unwrap(), 512);
        assert_eq!(parse_size_mib("2Gi", "--memory").unwrap(), 2048);
        for bad in ["2G", "2", "Gi", "0Mi", "-1Gi", "1.5Gi"] {
            assert!(parse_size_mib(bad, "--memory").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tolerations_and_seccomp_parse() {
        let t = parse_toleration("dedicated=load:NoSchedule").unwrap();
        assert_eq!(
            (
                t.key.as_str(),
                t.operator,
                t.value.as_deref(),
                t.effect.as_deref()
            ),
            ("dedicated", "Equal", Some("load"), Some("NoSchedule"))
        );
        let t = parse_toleration("loadgen").unwrap();
        assert_eq!((t.operator, t.value, t.effect), ("Exists", None, None));
        assert!(parse_toleration("x:Sometimes").is_err());
        assert_eq!(
            parse_seccomp("localhost:profiles/io-uring.json").unwrap(),
            Seccomp::Localhost("profiles/io-uring.json".into())
        );
        assert!(parse_seccomp("off").is_err());
    }

    #[test]
    fn flags_the_pods_get_from_engine_kube_are_refused_after_the_double_dash() {
        for (token, needle) in [
            ("--out=/tmp", "--out"),
            ("--cores", "--cores"),
            ("-c4", "-c"),
            ("--shards", "--shards"),
            ("--start-at", "--start-at"),
            ("--url", "--url"),
        ] {
            let e = engine_run_args(&args(&["--", token, "1"])).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("engine kube sets {needle}")),
                "{e}"
            );
        }
        let e = engine_run_args(&args(&["--", "--rate", "fast"])).unwrap_err();
        assert!(e.to_string().contains("--rate"), "{e}");
        let run = engine_run_args(&args(&["--", "--env", "staging", "--rate", "500"])).unwrap();
        assert_eq!(
            (run.env.as_deref(), run.rate),
            (Some("staging"), Some(500.0))
        );
    }

    #[test]
    fn loopback_targets_are_noticed() {
        let t = |s: &str| Target::parse(s, "host").unwrap();
        assert_eq!(
            loopback_target(&t("http://localhost:8080")),
            Some("localhost")
        );
        assert_eq!(loopback_target(&t("http://127.0.0.2")), Some("127.0.0.2"));
        assert_eq!(loopback_target(&t("http://[::1]:80")), Some("[::1]"));
        assert_eq!(loopback_target(&t("http://shop.internal")), None);
        assert_eq!(loopback_target(&t("embedded")), None);
    }
}
