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

mod args;
pub mod bundle;
pub mod capacity;
pub mod objects;
pub mod render;
mod timing;
pub mod yaml;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::RunArgs;
use crate::plan::{ENV_HOST, ENV_SELECT, LoadPlan, Plan, PlanEnv, PlanError, Target};
use crate::profile::spec::{LoadSpec, ProfileSpec};
use crate::profile::{self, ProfileError};
use crate::protocol::Protocols;
use crate::scenario::vars::ENV_VAR_PREFIX;

pub use args::KubeArgs;
pub use render::Seccomp;
pub use timing::deadline_seconds;

use args::{check_args, engine_run_args, parse_size_mib};
use timing::{default_run_id, start_instant};

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
        now_unix_ns: crate::clock::wall_now_ns(),
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
            LoadSpec::Closed { .. } | LoadSpec::Stages { .. } | LoadSpec::Unset => None,
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

#[cfg(test)]
mod tests {
    use super::*;

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
