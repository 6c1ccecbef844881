//! The manifests `engine kube` prints, read back as YAML and checked field by field: the Indexed Job
//! of guaranteed pods, flags passed on to every pod, the options that shape the pods, output to a
//! file, and the image recipe they point at.

use super::util::*;
use super::{arg_after, documents, engine_container, find, kube, parse_documents, repo, strings};

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
