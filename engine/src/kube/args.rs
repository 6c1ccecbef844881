//! `engine kube`'s flags, and the checks that need no profile.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use super::render::Seccomp;
use super::{KubeError, flag, objects};
use crate::cli::{Cli, Command, RunArgs};
use crate::profile;

const EXAMPLES: &str = "\
Examples:
  engine kube profiles/rest-api.ron --shards 8 --image IMG | kubectl apply -f -
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

/// Checks the flags that need no profile.
pub(super) fn check_args(args: &KubeArgs) -> Result<(), KubeError> {
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
pub(super) fn dns_label(name: &str, value: &str, max: usize) -> Result<(), KubeError> {
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
const RESERVED: [(&str, &str); 9] = [
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
    (
        "--debug",
        "pods run the load test; try the profile here with `engine try`",
    ),
];

/// The flags after `--`, checked as `engine run` will check them in the pods.
pub(super) fn engine_run_args(args: &KubeArgs) -> Result<RunArgs, KubeError> {
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
    Ok(*run)
}

/// `512Mi`, `2Gi` or `1Ti` as MiB.
pub(super) fn parse_size_mib(text: &str, flag_name: &str) -> Result<u64, KubeError> {
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
pub(super) mod tests {
    use super::*;

    pub(in crate::kube) fn args(extra: &[&str]) -> KubeArgs {
        let argv = ["engine", "kube", "p.ron", "--shards", "2", "--image", "img"]
            .iter()
            .chain(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Kube(a) => *a,
            other => panic!("{other:?}"),
        }
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
}
