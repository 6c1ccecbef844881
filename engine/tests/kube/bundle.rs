//! The profile bundle: every file the profile names, materialized where Kubernetes would mount it and
//! run from there; CA files, relative and absolute; files too large for a ConfigMap refused.

use std::path::Path;

use serde_json::Value;

use super::util::*;
use super::{documents, engine_container, find, kube_in, repo, strings, write_tree};

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
