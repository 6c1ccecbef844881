//! Which plans the direct loop runs, and their scenario in the loop's terms: per kind of user, tasks
//! by weight as flat sequences of requests, each request as bytes rendered once.

use formats::NameId;

use crate::plan::{LoadPlan, Plan, StatusSet, Target as PlanTarget, Wait};
use crate::scenario::wire::Wire;
use crate::scenario::{Node, Scenario};
use crate::schedule::Population;

use super::ring::ReqBytes;

/// Why a plan cannot run on the direct loop, or `Ok` when it can.
pub(crate) fn eligible(plan: &Plan) -> Result<(), String> {
    match &plan.target {
        PlanTarget::Embedded | PlanTarget::Http { tls: false, .. } => {}
        PlanTarget::Http { tls: true, .. } => return Err("the target is https://".into()),
        PlanTarget::Other { scheme, .. } => {
            return Err(format!("the target is {scheme}://, not http://"));
        }
    }
    match &plan.load {
        LoadPlan::Closed {
            population: Population::Spawn(_),
            iterations_per_user: None,
        } => {}
        LoadPlan::Closed { .. } => {
            return Err("the closed model has stages or an iteration limit".into());
        }
        LoadPlan::Open { .. } => return Err("the load model is open (arrival rates)".into()),
    }
    if plan.iterations.is_some() {
        return Err("the run has an iteration limit".into());
    }
    static_scenario(&plan.scenario).map(drop)
}

/// What a kind of user does: tasks by weight, each a sequence of requests (by index).
#[derive(Debug)]
pub(super) struct Kind {
    pub tasks: Vec<(u32, Vec<usize>)>,
    pub total_weight: u32,
    /// Think time after each task.
    pub wait: Wait,
}

/// The scenario as the direct loop runs it, or why it cannot.
pub(super) fn static_scenario(sc: &Scenario) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for kind in &sc.kinds {
        if matches!(kind.wait, Wait::Pacing(_)) {
            return Err("a user kind has pacing".into());
        }
        if kind.iterations.is_some() {
            return Err("a user kind has an iteration limit".into());
        }
        if !kind.on_start.is_empty() || !kind.on_stop.is_empty() {
            return Err("a user kind has on_start or on_stop requests".into());
        }
        if !kind.initial.is_empty() || !kind.feeders.is_empty() {
            return Err("a user kind has variables or a feeder".into());
        }
        let mut tasks = Vec::new();
        for task in &kind.tasks {
            let mut requests = Vec::new();
            match &sc.nodes[task.root] {
                Node::Request(r) => requests.push(*r),
                Node::Group {
                    children,
                    pick: false,
                    repeat: 1,
                    wait: Wait::None,
                    ..
                } => {
                    for &(_, child) in children {
                        match &sc.nodes[child] {
                            Node::Request(r) => requests.push(*r),
                            _ => return Err("a task has nested groups or steps".into()),
                        }
                    }
                }
                _ => return Err("a task has steps of another protocol or a picked group".into()),
            }
            for &r in &requests {
                let rp = &sc.requests[r];
                if rp.cookies {
                    return Err(format!(
                        "request {:?} keeps a cookie jar (set `cookies: false` on the user kind)",
                        rp.name
                    ));
                }
                if !rp.extract.is_empty() || !rp.checks.is_empty() {
                    return Err(format!("request {:?} extracts or checks", rp.name));
                }
                if !Wire::build(rp, "h").is_fixed() {
                    return Err(format!(
                        "request {:?} has templates or credentials made per request",
                        rp.name
                    ));
                }
            }
            tasks.push((task.weight, requests));
        }
        kinds.push(Kind {
            total_weight: kind.total_task_weight,
            tasks,
            wait: kind.wait,
        });
    }
    Ok(kinds)
}

/// A request as the loop sends it.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub bytes: ReqBytes,
    pub len: u32,
    pub head: bool,
    pub expect: StatusSet,
    pub name: NameId,
}
