//! `engine kube`: the manifests it prints, read back as YAML and checked field by field; the profile
//! bundle, materialized as Kubernetes would mount it and run; and bad input, which exits 2 and prints
//! nothing to apply.
//!
//! CI also checks the output against the Kubernetes API schemas (`scripts/validate-kube.sh`).
//!
//! One test binary with a module per concern: the manifests (`manifests`), the profile bundle
//! (`bundle`) and bad input (`bad_input`); the helpers that run `engine kube` and read its YAML are
//! here.

#[path = "../util.rs"]
mod util;

mod bad_input;
mod bundle;
mod manifests;

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

/// Writes `files` (path, contents) under `root`.
fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}
