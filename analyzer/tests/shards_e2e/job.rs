//! The Job `engine kube` renders, read back from its YAML and laid out on this machine as its pods
//! would see it, and its pods started as Kubernetes would start them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use super::process::{Bounded, clean, now_ns, stderr};
use super::util::engine_binary;
use super::{LIMIT, SHARDS};

/// The YAML documents `engine kube` printed, as JSON values.
fn parse_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{e}:\n{text}")))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, component: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind && d["metadata"]["labels"]["app.kubernetes.io/component"] == component
        })
        .unwrap_or_else(|| panic!("no {kind} {component} in {docs:#?}"))
}

/// One rendered Job, laid out on this machine as its pods would see it.
pub(crate) struct Job {
    /// The engine container's args, with each volume's mount path replaced by its local directory.
    args: Vec<String>,
    /// The container's literal environment variables.
    env: Vec<(String, String)>,
    /// Where the results volume is (the ReadWriteMany claim every pod writes to).
    results: PathBuf,
    /// The run id the Job gives every pod.
    run_id: String,
    /// The common start instant, ns since the epoch.
    pub(crate) start_ns: i64,
}

impl Job {
    /// Renders `engine kube PROFILE --shards 3 --image x --run-id ID --start-in LEAD -- EXTRA` in
    /// `suite` and lays out the pods' volumes under `suite/pod`: the ConfigMap's files where the
    /// profile volume is mounted (its `items` give each file's path), an empty results directory.
    pub(crate) fn render(
        suite: &Path,
        profile: &Path,
        run_id: &str,
        lead: &str,
        extra: &[&str],
    ) -> Job {
        let mut cmd = clean(engine_binary());
        cmd.current_dir(suite)
            .arg("kube")
            .arg(profile.strip_prefix(suite).unwrap())
            .args(["--shards", &SHARDS.to_string(), "--image", "x"])
            .args(["--run-id", run_id, "--start-in", lead, "--no-collector"])
            .arg("--")
            .args(extra);
        let out = Bounded::spawn(cmd, "engine kube").wait(Instant::now() + LIMIT);
        assert_eq!(out.status.code(), Some(0), "engine kube: {}", stderr(&out));
        let docs = parse_documents(&String::from_utf8(out.stdout).unwrap());
        let job = find(&docs, "Job", "load-generator");
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], SHARDS);
        let pod = &job["spec"]["template"]["spec"];
        let container = &pod["containers"][0];

        // The volumes, as the kubelet would mount them.
        let root = suite.join("pod");
        let cm = find(&docs, "ConfigMap", "profile");
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        let mut results = None;
        for m in container["volumeMounts"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let mount_path = m["mountPath"].as_str().unwrap().to_owned();
            let local = root.join(name);
            std::fs::create_dir_all(&local).unwrap();
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .unwrap();
            if let Some(items) = volume["configMap"]["items"].as_array() {
                for item in items {
                    let path = item["path"].as_str().unwrap();
                    assert!(!path.starts_with('/') && !path.contains(".."), "{path}");
                    let dest = local.join(path);
                    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    let key = item["key"].as_str().unwrap();
                    std::fs::write(dest, cm["data"][key].as_str().unwrap()).unwrap();
                }
            } else if !volume["persistentVolumeClaim"].is_null() {
                results = Some(local.clone());
            }
            mounts.push((mount_path, local));
        }
        let results = results.expect("a results volume");
        let args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_str().unwrap();
                for (mount, local) in &mounts {
                    if a == mount {
                        return local.display().to_string();
                    }
                    if let Some(rest) = a.strip_prefix(&format!("{mount}/")) {
                        return local.join(rest).display().to_string();
                    }
                }
                a.to_owned()
            })
            .collect();
        let env: Vec<(String, String)> = container["env"]
            .as_array()
            .map(|vars| {
                vars.iter()
                    .filter_map(|v| {
                        Some((
                            v["name"].as_str()?.to_owned(),
                            v["value"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        let start = after("--start-at");
        let start_ns = parse_utc(&start);
        assert_eq!(after("--run-id"), run_id);
        assert_eq!(after("--shards"), SHARDS.to_string());
        Job {
            args,
            env,
            results,
            run_id: run_id.to_owned(),
            start_ns,
        }
    }

    /// Starts pod `index`'s engine: the container's args, its environment and the index Kubernetes
    /// gives an Indexed Job's pod.
    pub(crate) fn start_pod(&self, index: u32) -> Bounded {
        assert!(
            now_ns() < self.start_ns,
            "the pods start after the Job's start instant: the machine is too slow for this lead"
        );
        let mut cmd = clean(engine_binary());
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("JOB_COMPLETION_INDEX", index.to_string());
        Bounded::spawn(cmd, format!("pod {index}"))
    }

    /// The sharded run's directory on the results volume.
    pub(crate) fn run_dir(&self) -> PathBuf {
        self.results.join(&self.run_id)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (as `engine kube` writes the start instant), ns since the epoch.
fn parse_utc(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 {
        text.get(r)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{text:?} is not YYYY-MM-DDTHH:MM:SSZ"))
    };
    assert_eq!(text.len(), 20, "{text:?}");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) * 1_000_000_000
}
