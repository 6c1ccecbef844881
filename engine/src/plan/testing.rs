//! Fixtures shared by the plan's unit tests: a profile with every override layer, and plans of it.

use std::path::Path;

use super::{Plan, PlanEnv};
use crate::cli::RunArgs;
use crate::profile::{self, spec::ProfileSpec};
use crate::shard::Shard;

pub(super) fn env() -> PlanEnv {
    PlanEnv {
        cpus: vec![0, 1],
        ..PlanEnv::default()
    }
}

pub(super) fn env_with(vars: &[(&str, &str)]) -> PlanEnv {
    PlanEnv {
        cpus: vec![0, 1],
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..PlanEnv::default()
    }
}

pub(super) const PROFILE: &str = r#"(
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

pub(super) fn spec() -> ProfileSpec {
    profile::load_str(PROFILE, Path::new("t.ron")).unwrap()
}

pub(super) fn path(plan: &Plan, r: usize) -> String {
    String::from_utf8(
        plan.scenario.requests[r]
            .path
            .static_bytes()
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

pub(super) fn header(plan: &Plan, r: usize, name: &str) -> String {
    let (_, t) = plan.scenario.requests[r]
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .unwrap();
    String::from_utf8(t.static_bytes().unwrap().to_vec()).unwrap()
}

pub(super) const START: &str = "2026-12-05T14:00:00Z";
/// A minute before `START`.
pub(super) const NOW: i64 = 1_796_479_140_000_000_000;

pub(super) fn sharded(
    load: &str,
    shard: Option<Shard>,
    cores: u32,
    iterations: Option<u64>,
) -> Plan {
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
