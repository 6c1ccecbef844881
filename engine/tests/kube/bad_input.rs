//! Bad input: local `STAMPEDE_*` variables and loopback targets pointed out, bad profiles and bad
//! flags exiting 2 with located messages and nothing to apply.

use super::util::*;
use super::{documents, kube, kube_in, repo, write_tree};

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
