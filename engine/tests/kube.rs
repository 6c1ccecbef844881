//! `engine kube`: the manifests it prints, read back as YAML and checked field by field; the profile
//! bundle, materialized as Kubernetes would mount it and run; and bad input, which exits 2 and prints
//! nothing to apply.
//!
//! CI also checks the output against the Kubernetes API schemas (`scripts/validate-kube.sh`).

mod util;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;
use serde_json::Value;
use util::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `engine kube ARGS` in `cwd` without the caller's `STAMPEDE_*` variables.
fn kube_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = engine();
    cmd.current_dir(cwd).arg("kube").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("STAMPEDE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the engine binary runs")
}

fn kube(args: &[&str]) -> Output {
    kube_in(&repo(), args, &[])
}

/// The YAML documents on stdout, as JSON values; fails unless the command succeeded.
fn documents(out: &Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    parse_documents(&text)
}

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

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The value after `flag` in `args`.
fn arg_after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {args:?}"));
    &args[i + 1]
}

/// The engine container of the shards' Job.
fn engine_container(job: &Value) -> &Value {
    &job["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn a_closed_profile_becomes_an_indexed_job_of_guaranteed_pods() {
    let out = kube(&[
        "profiles/browsing.ron",
        "--shards",
        "4",
        "--cores",
        "2",
        "--image",
        "registry.example/stampede-engine:0.1",
        "--namespace",
        "load",
        "--run-id",
        "browse-1",
        "--start-in",
        "90s",
    ]);
    let docs = documents(&out);
    assert_eq!(docs.len(), 3, "ConfigMap, shards, collector: {docs:#?}");
    let job = find(&docs, "Job", "load-generator");
    let spec = &job["spec"];
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["metadata"]["name"], "stampede-browse-1");
    assert_eq!(job["metadata"]["namespace"], "load");
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 4);
    assert_eq!(spec["parallelism"], 4);
    // A failed shard is never run again (its load would count twice), and never holds up the rest.
    assert_eq!(spec["backoffLimitPerIndex"], 0);
    assert!(spec.get("backoffLimit").is_none(), "{spec}");
    let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
    assert!(
        rules.iter().all(|r| r["action"] == "FailIndex"),
        "{rules:?}"
    );
    assert_eq!(rules[0]["onPodConditions"][0]["type"], "DisruptionTarget");
    assert_eq!(rules[1]["onExitCodes"]["operator"], "NotIn");
    assert_eq!(rules[1]["onExitCodes"]["values"], serde_json::json!([0]));
    assert_eq!(rules[1]["onExitCodes"]["containerName"], "engine");
    // browsing.ron runs 10 s: a lead of 90 s (up to 91 s, as the instant is rounded up to a whole
    // second) + 10 s + 30 s request timeout + a 60 s margin.
    let deadline = spec["activeDeadlineSeconds"].as_u64().unwrap();
    assert!((190..=191).contains(&deadline), "{deadline}");
    assert_eq!(spec["ttlSecondsAfterFinished"], 86_400);

    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        spec["template"]["metadata"]["labels"]["app.kubernetes.io/instance"],
        "browse-1"
    );
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(spread["maxSkew"], 1);
    assert_eq!(
        spread["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "browse-1"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    let c = engine_container(job);
    assert_eq!(c["image"], "registry.example/stampede-engine:0.1");
    // Guaranteed QoS in whole CPUs: what the static CPU manager pins.
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
    assert_eq!(c["resources"]["limits"]["cpu"], "2");
    assert!(
        c["resources"]["limits"]["memory"]
            .as_str()
            .unwrap()
            .ends_with("Mi")
    );
    let args = strings(&c["args"]);
    assert_eq!(args[0], "run");
    assert_eq!(args[1], "/stampede/profile/browsing.ron");
    assert_eq!(arg_after(&args, "--shards"), "4");
    assert_eq!(arg_after(&args, "--cores"), "2");
    assert_eq!(arg_after(&args, "--run-id"), "browse-1");
    assert_eq!(arg_after(&args, "--out"), "/results");
    let start = arg_after(&args, "--start-at");
    let t = time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{start}: {e}"));
    let ahead = t - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::seconds(60) && ahead <= time::Duration::seconds(91),
        "{start} is {ahead} ahead"
    );
    assert!(start.ends_with('Z') && !start.contains('.'), "{start}");
    let mounts = &c["volumeMounts"];
    assert_eq!(mounts[0]["mountPath"], "/stampede/profile");
    assert_eq!(mounts[1]["mountPath"], "/results");
    assert_eq!(mounts[1]["readOnly"], false);
    let results = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "results")
        .unwrap();
    assert_eq!(
        results["persistentVolumeClaim"]["claimName"],
        "stampede-results"
    );

    let cm = find(&docs, "ConfigMap", "profile");
    assert_eq!(cm["metadata"]["name"], "stampede-browse-1-profile");
    assert_eq!(cm["immutable"], true);
    assert_eq!(
        cm["data"]["browsing.ron"].as_str().unwrap(),
        std::fs::read_to_string(repo().join("profiles/browsing.ron")).unwrap()
    );

    let collector = find(&docs, "Job", "collector");
    let cc = engine_container(collector);
    assert_eq!(cc["command"][0], "sleep");
    assert_eq!(cc["volumeMounts"][0]["readOnly"], true);
    assert_eq!(
        collector["metadata"]["labels"]["app.kubernetes.io/instance"],
        "browse-1"
    );

    let err = stderr(&out);
    assert!(
        err.contains("kubectl -n load logs -f -l app.kubernetes.io/instance=browse-1"),
        "{err}"
    );
    assert!(
        err.contains("kubectl -n load exec job/stampede-browse-1-collect -- tar -C /results -cf - browse-1 | tar -C runs -xf -"),
        "{err}"
    );
    assert!(err.contains("analyzer report runs/browse-1/"), "{err}");
}

#[test]
fn flags_after_the_double_dash_reach_every_pod_and_an_open_rate_past_a_core_warns() {
    let out = kube(&[
        "profiles/open.ron",
        "--shards",
        "2",
        "--image",
        "img",
        "--",
        "--rate",
        "100000",
        "--duration",
        "20s",
    ]);
    let docs = documents(&out);
    let args = strings(&engine_container(find(&docs, "Job", "load-generator"))["args"]);
    assert_eq!(
        &args[args.len() - 4..],
        ["--rate", "100000", "--duration", "20s"]
    );
    let err = stderr(&out);
    // 100 000/s over 2 cores is 50 000/s each; 6 one-core shards stay under 18 750/s.
    assert!(
        err.contains("warning: the open model peaks at 100000 arrivals/s, 50000/s"),
        "{err}"
    );
    assert!(err.contains("use --shards 6 or more at --cores 1"), "{err}");

    let quiet = kube(&["profiles/open.ron", "--shards", "2", "--image", "img"]);
    documents(&quiet);
    assert!(!stderr(&quiet).contains("warning"), "{}", stderr(&quiet));
}

/// Writes `files` (path, contents) under `root`.
fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Lays out the ConfigMap's files as the pod's `profile` volume would, under `root`.
fn materialize(docs: &[Value], root: &Path) {
    let cm = find(docs, "ConfigMap", "profile");
    let job = find(docs, "Job", "load-generator");
    let volume = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "profile")
        .unwrap();
    for item in volume["configMap"]["items"].as_array().unwrap() {
        let key = item["key"].as_str().unwrap();
        let path = item["path"].as_str().unwrap();
        assert!(
            !path.starts_with('/') && !path.split('/').any(|p| p == ".."),
            "{path}"
        );
        let dest = root.join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, cm["data"][key].as_str().unwrap()).unwrap();
    }
}

#[test]
fn every_file_the_profile_names_is_bundled_where_its_relative_name_finds_it_in_the_pod() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    let users: String = std::iter::once("email,password\n".to_owned())
        .chain((0..20).map(|i| format!("u{i}@example.com,pw-{i}\n")))
        .collect();
    let key = std::fs::read_to_string(repo().join("profiles/keys/demo-rs256.pem")).unwrap();
    write_tree(
        &suite,
        &[
            (
                "profiles/shop.ron",
                r#"(
    name: "shop",
    include: ["common/base.ron"],
    host: "embedded",
    feeders: {"accounts": (file: "../data/users.csv", order: Unique)},
    load: Closed(users: 4, duration: "1s"),
    users: [(feeder: "accounts", auth: Jwt(algorithm: RS256, key_file: "../keys/signing.pem",
             claims: {"sub": "{{row.email}}"}), wait: Constant("50ms"),
             tasks: [(requests: [(path: "/private", checks: [JsonEquals("/user", "{{row.email}}")])])])],
)"#,
            ),
            (
                "profiles/common/base.ron",
                r#"Fragment(headers: {"X-Suite": "shop"}, include: ["more.ron"])"#,
            ),
            (
                "profiles/common/more.ron",
                r#"Fragment(variables: {"tier": "gold"})"#,
            ),
            ("data/users.csv", &users),
            ("keys/signing.pem", &key),
            ("data/unrelated-big-file.bin", "not named by the profile"),
        ],
    );
    let out = kube_in(
        &suite,
        &["profiles/shop.ron", "--shards", "2", "--image", "img"],
        &[],
    );
    let docs = documents(&out);
    let cm = find(&docs, "ConfigMap", "profile");
    let data = cm["data"].as_object().unwrap();
    assert_eq!(data.len(), 5, "exactly the named files: {:?}", data.keys());
    let job = find(&docs, "Job", "load-generator");
    let items: Vec<(String, String)> =
        job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["path"].as_str().unwrap().to_owned(),
                    i["key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    let paths: Vec<&str> = items.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "profiles/shop.ron",
            "profiles/common/base.ron",
            "profiles/common/more.ron",
            "data/users.csv",
            "keys/signing.pem"
        ]
    );
    for (path, key) in &items {
        assert_eq!(
            data[key].as_str().unwrap(),
            std::fs::read_to_string(suite.join(path)).unwrap(),
            "{path} byte for byte"
        );
    }
    let args = strings(&engine_container(job)["args"]);
    assert_eq!(args[1], "/stampede/profile/profiles/shop.ron");

    // The files as the pod sees them run: every relative name resolves (feeder, key, fragments).
    let pod_root = tmp.path().join("pod");
    materialize(&docs, &pod_root);
    let _guard = one_at_a_time();
    let run_out = run(
        &tmp.path().join("runs"),
        &[
            pod_root.join("profiles/shop.ron").to_str().unwrap(),
            "--cores",
            "1",
        ],
    );
    assert_eq!(run_out.status.code(), Some(0), "{}", stderr(&run_out));
    let back = read_run(&run_dir(&run_out));
    assert!(!back.rows().is_empty());
    assert!(
        back.messages().is_empty(),
        "the JWT and the feeder worked: {:?}",
        back.messages()
    );
}

/// A CA certificate as PEM.
fn ca_pem() -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn a_ca_file_is_bundled_and_an_absolute_one_is_mounted_at_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let abs_ca = tmp.path().join("elsewhere/ca.pem");
    let ca = ca_pem();
    let profile = format!(
        r#"(
    name: "tls",
    host: "https://shop.internal:8443",
    tls: (ca_file: "certs/ca.pem"),
    environments: {{"staging": (tls: (ca_file: "{}"))}},
    load: Closed(users: 2, duration: "5s"),
    users: [(tasks: [(requests: [(path: "/")])])],
)"#,
        abs_ca.display()
    );
    write_tree(
        tmp.path(),
        &[
            ("p/tls.ron", &profile),
            ("p/certs/ca.pem", &ca),
            ("elsewhere/ca.pem", &ca),
        ],
    );
    let docs = documents(&kube_in(
        tmp.path(),
        &["p/tls.ron", "--shards", "2", "--image", "img"],
        &[],
    ));
    let cm = find(&docs, "ConfigMap", "profile");
    assert_eq!(cm["data"]["certs_ca.pem"].as_str().unwrap(), ca);
    let items = &find(&docs, "Job", "load-generator")["spec"]["template"]["spec"]["volumes"][0]["configMap"]
        ["items"];
    assert_eq!(items[1]["path"], "certs/ca.pem");

    let out = kube_in(
        tmp.path(),
        &[
            "p/tls.ron",
            "--shards",
            "2",
            "--image",
            "img",
            "--",
            "--env",
            "staging",
        ],
        &[],
    );
    let docs = documents(&out);
    let cm = find(&docs, "ConfigMap", "profile");
    let job = find(&docs, "Job", "load-generator");
    let pod = &job["spec"]["template"]["spec"];
    let abs = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "profile-absolute")
        .expect("a volume for absolute paths");
    let key = abs["configMap"]["items"][0]["key"].as_str().unwrap();
    assert_eq!(cm["data"][key].as_str().unwrap(), ca);
    let mount = engine_container(job)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "profile-absolute")
        .unwrap()
        .clone();
    assert_eq!(mount["mountPath"], abs_ca.to_str().unwrap());
    assert_eq!(mount["subPath"], key);
    assert!(
        stderr(&out).contains("by an absolute path: each pod gets it mounted at that path"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn options_shape_the_pods() {
    let out = kube(&[
        "profiles/smoke.ron",
        "--shards",
        "3",
        "--image",
        "img",
        "--one-per-node",
        "--seccomp",
        "unconfined",
        "--node-selector",
        "pool=load",
        "--toleration",
        "dedicated=load:NoSchedule",
        "--secret",
        "shop-api",
        "--memory",
        "2Gi",
        "--create-pvc",
        "20Gi",
        "--storage-class",
        "nfs-client",
        "--results",
        "pvc:shared-results",
        "--no-collector",
        "--ttl",
        "2h",
    ]);
    let docs = documents(&out);
    assert_eq!(docs.len(), 3, "claim, ConfigMap, shards: {docs:#?}");
    let pvc = &docs[0];
    assert_eq!(
        pvc["kind"], "PersistentVolumeClaim",
        "the claim comes first"
    );
    assert_eq!(pvc["metadata"]["name"], "shared-results");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(pvc["spec"]["storageClassName"], "nfs-client");
    assert!(
        pvc["metadata"]["labels"]
            .get("app.kubernetes.io/instance")
            .is_none(),
        "the claim outlives the run, so deleting the run by label keeps it"
    );
    let job = find(&docs, "Job", "load-generator");
    let pod = &job["spec"]["template"]["spec"];
    assert!(pod.get("topologySpreadConstraints").is_none());
    let term =
        &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "Unconfined"
    );
    assert_eq!(pod["nodeSelector"]["pool"], "load");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["tolerations"][0]["effect"], "NoSchedule");
    let c = engine_container(job);
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "shop-api");
    assert_eq!(c["resources"]["limits"]["memory"], "2048Mi");
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 7200);
    let results = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "results")
        .unwrap();
    assert_eq!(
        results["persistentVolumeClaim"]["claimName"],
        "shared-results"
    );
}

#[test]
fn the_manifests_can_go_to_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("run.yaml");
    let out = kube(&[
        "profiles/smoke.ron",
        "--shards",
        "1",
        "--image",
        "img",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let docs = parse_documents(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(docs.len(), 3);
    assert!(
        stderr(&out).contains(&format!("kubectl apply -f {}", file.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn local_stampede_variables_and_loopback_targets_are_pointed_out() {
    // The pods will not see STAMPEDE_ENV: the profile is checked without it (an unknown environment
    // would fail the check), and the user is told.
    let out = kube_in(
        &repo(),
        &["profiles/api.ron", "--shards", "1", "--image", "img"],
        &[("STAMPEDE_ENV", "no-such-environment")],
    );
    documents(&out);
    let err = stderr(&out);
    assert!(
        err.contains("note: STAMPEDE_ENV set here, but the pods will not see it"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[(
            "local.ron",
            r#"(name: "local", host: "http://127.0.0.1:8080", load: Closed(users: 1, duration: "1s"),
               users: [(tasks: [(requests: [(path: "/")])])])"#,
        )],
    );
    let out = kube_in(
        tmp.path(),
        &["local.ron", "--shards", "1", "--image", "img"],
        &[],
    );
    documents(&out);
    assert!(
        stderr(&out).contains("the target is 127.0.0.1: inside a pod that is the pod itself"),
        "{}",
        stderr(&out)
    );
}

/// Every profile in the bad-profile corpus fails `engine kube` as it fails `engine run`: exit 2, the
/// same located message, and nothing on stdout for `kubectl apply` to act on.
#[test]
fn bad_profiles_exit_2_with_located_messages_and_print_no_manifest() {
    let dir = repo().join("engine/tests/data/bad-profiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let out = kube(&[path.to_str().unwrap(), "--shards", "2", "--image", "img"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(
            out.stdout.is_empty(),
            "{}: printed a manifest",
            path.display()
        );
        assert!(!err.contains("panicked"), "{err}");
        for fragment in text.lines().filter_map(|l| l.strip_prefix("// expect: ")) {
            assert!(
                err.contains(fragment),
                "{}: expected {fragment:?} in {err}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_the_fix() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--shards", "0", "--image", "img"],
            "--shards: must be at least 1",
        ),
        (&["--image", "img"], "--shards <N>"),
        (&["--shards", "2"], "--image <IMAGE>"),
        (
            &["--shards", "2", "--image", "img", "--shard", "1/2"],
            "unexpected argument '--shard'",
        ),
        (
            &["--shards", "2", "--image", "img", "--cores", "0"],
            "--cores: must be a whole number",
        ),
        (
            &[
                "--shards",
                "2",
                "--image",
                "img",
                "--results",
                "s3://bucket",
            ],
            "give `pvc:NAME`",
        ),
        (
            &["--shards", "2", "--image", "img", "--memory", "2G"],
            "write e.g. 512Mi, 2Gi",
        ),
        (
            &["--shards", "2", "--image", "img", "--run-id", "Run_1"],
            "--run-id: \"Run_1\" is not a valid name",
        ),
        (
            &["--shards", "2", "--image", "img", "--namespace", "Load"],
            "--namespace",
        ),
        (
            &["--shards", "2", "--image", "img", "--seccomp", "off"],
            "runtime-default, unconfined or localhost:PATH",
        ),
        (
            &["--shards", "2", "--image", "img", "--start-at", "+30s"],
            "use --start-in 30s",
        ),
        (
            &[
                "--shards",
                "2",
                "--image",
                "img",
                "--start-at",
                "2020-01-01T00:00:00Z",
            ],
            "not in the future",
        ),
        (
            &[
                "--shards",
                "2",
                "--image",
                "img",
                "--start-in",
                "30s",
                "--start-at",
                "2099-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (
            &["--shards", "2", "--image", "img", "--storage-class", "nfs"],
            "--create-pvc",
        ),
        (
            &["--shards", "2", "--image", "img", "--", "--out", "/tmp"],
            "engine kube sets --out in every pod",
        ),
        (
            &["--shards", "2", "--image", "img", "--", "--rate", "fast"],
            "see `engine run --help`",
        ),
        (
            &["--shards", "2", "--image", "img", "--", "--env", "nope"],
            "nope",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["profiles/smoke.ron"];
        full.extend_from_slice(args);
        let out = kube(&full);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    }
}

#[test]
fn files_too_large_for_a_configmap_are_refused_with_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let rows: String = std::iter::once("id,payload\n".to_owned())
        .chain((0..12_000).map(|i| format!("{i},{}\n", "x".repeat(90))))
        .collect();
    write_tree(
        tmp.path(),
        &[
            (
                "big.ron",
                r#"(name: "big", host: "http://shop.internal", feeders: {"rows": (file: "rows.csv")},
                   load: Closed(users: 1, duration: "1s"),
                   users: [(feeder: "rows", tasks: [(requests: [(path: "/{{row.id}}")])])])"#,
            ),
            ("rows.csv", &rows),
        ],
    );
    let out = kube_in(
        tmp.path(),
        &["big.ron", "--shards", "2", "--image", "img"],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("more than the 1 MiB a ConfigMap holds"),
        "{err}"
    );
    assert!(err.contains("rows.csv"), "{err}");
    assert!(
        err.contains("docs/distributed.md#large-data-files"),
        "{err}"
    );
}

/// The Dockerfile builds what the docs say and runs as the user the manifests ask for.
#[test]
fn the_image_recipe_matches_the_manifests() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked -p engine"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/engine\"]"));
    let uid = engine::kube::render::RUN_AS;
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "{dockerfile}"
    );
    assert!(dockerfile.contains(&format!("--uid {uid} --gid {uid}")));
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "target"));
    for needed in ["engine", "formats", "analyzer", "Cargo.lock"] {
        assert!(
            !ignore.lines().any(|l| l == needed),
            "{needed} is in the build"
        );
    }
}
