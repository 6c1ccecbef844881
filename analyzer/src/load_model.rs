//! The load model a run was made with, read from the resolved profile the manifest keeps (RON).
//!
//! The analyzer does not depend on the engine, so the profile is read through small mirror types
//! that know only what a report shows: the model and its parameters, and the user kinds with their
//! weights. Fields they do not know are skipped, so profiles of newer engines still read; a model
//! they do not know (or a profile that does not parse) gives `None`, and the report says so.

use serde::{Deserialize, Serialize};

/// The load model of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadModel {
    /// `closed`, `stages`, `open` or `ramping_rate`.
    pub model: String,
    /// Users in total (closed); the most users busy at once (open models).
    pub users: Option<u32>,
    /// Users started per second (closed); `None` starts them all at once.
    pub spawn_rate: Option<f64>,
    /// Iterations started per second (open).
    pub rate: Option<f64>,
    /// The rate at time zero (ramping rate).
    pub start_rate: Option<f64>,
    /// The duration as the profile (or `--duration`) gave it, e.g. `30s`.
    pub duration: Option<String>,
    /// The planned duration in seconds, from the manifest.
    pub planned_duration_s: Option<f64>,
    /// Stages: the target (users, or iterations per second) at the end of each, and its length.
    pub stages: Vec<Stage>,
    /// Arrivals that may wait for a free user (open models).
    pub queue: Option<u32>,
    /// The run's iteration (or arrival) limit.
    pub iterations: Option<u64>,
    /// Each user's iteration limit.
    pub iterations_per_user: Option<u64>,
    /// The user kinds, in profile order.
    pub user_kinds: Vec<UserKindModel>,
    /// The HTTP method of each request name the profile defines (for Locust's `Type` column).
    #[serde(skip)]
    pub methods: std::collections::BTreeMap<String, String>,
}

/// One stage of a `Stages` or `RampingRate` model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// Users (stages) or iterations per second (ramping rate) at the end of the stage.
    pub target: f64,
    /// How long the stage lasts, as written (`"30s"`).
    pub over: String,
}

/// A user kind as the profile gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserKindModel {
    /// Its name (`users[i]` when unnamed).
    pub name: String,
    /// Its weight.
    pub weight: u32,
    /// Its top-level tasks.
    pub tasks: usize,
    /// Its own tags.
    pub tags: Vec<String>,
    /// Its iteration limit per user.
    pub iterations: Option<u64>,
}

#[derive(Deserialize)]
struct ProfileDoc {
    #[serde(default)]
    load: Option<LoadDoc>,
    #[serde(default)]
    users: Vec<UserDoc>,
}

#[derive(Deserialize)]
struct UserDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    iterations: Option<u64>,
    #[serde(default)]
    tasks: Vec<TaskDoc>,
    #[serde(default)]
    on_start: Vec<RequestDoc>,
    #[serde(default)]
    on_stop: Vec<RequestDoc>,
}

#[derive(Deserialize)]
struct TaskDoc {
    #[serde(default)]
    requests: Vec<RequestDoc>,
    #[serde(default)]
    sequence: Vec<TaskDoc>,
    #[serde(default)]
    tasks: Vec<TaskDoc>,
}

#[derive(Deserialize)]
struct RequestDoc {
    #[serde(default)]
    method: Option<MethodDoc>,
    path: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[allow(clippy::upper_case_acronyms)]
enum MethodDoc {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
    HEAD,
    OPTIONS,
}

impl RequestDoc {
    /// The request's name (as the engine names it) and method.
    fn name_and_method(&self) -> (String, String) {
        let method = format!("{:?}", self.method.unwrap_or(MethodDoc::GET));
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{method} {}", self.path));
        (name, method)
    }
}

fn task_methods(t: &TaskDoc, out: &mut std::collections::BTreeMap<String, String>) {
    for r in &t.requests {
        let (name, method) = r.name_and_method();
        out.entry(name).or_insert(method);
    }
    for c in t.sequence.iter().chain(&t.tasks) {
        task_methods(c, out);
    }
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct StageDoc {
    #[serde(default)]
    users: Option<f64>,
    #[serde(default)]
    to: Option<f64>,
    over: String,
}

#[derive(Deserialize)]
enum LoadDoc {
    Closed {
        users: u32,
        #[serde(default)]
        spawn_rate: Option<f64>,
        duration: String,
        #[serde(default)]
        iterations: Option<u64>,
        #[serde(default)]
        iterations_per_user: Option<u64>,
    },
    Stages {
        stages: Vec<StageDoc>,
        #[serde(default)]
        iterations: Option<u64>,
        #[serde(default)]
        iterations_per_user: Option<u64>,
    },
    Open {
        rate: f64,
        duration: String,
        #[serde(default)]
        max_users: Option<u32>,
        #[serde(default)]
        queue: Option<u32>,
        #[serde(default)]
        iterations: Option<u64>,
    },
    RampingRate {
        #[serde(default)]
        start_rate: f64,
        stages: Vec<StageDoc>,
        #[serde(default)]
        max_users: Option<u32>,
        #[serde(default)]
        queue: Option<u32>,
        #[serde(default)]
        iterations: Option<u64>,
    },
}

/// The load model of the resolved profile `profile` (RON, as the manifest keeps it), with the
/// manifest's planned duration; `None` when the profile cannot be read or its model is unknown.
pub fn parse(profile: &str, planned_duration_s: Option<f64>) -> Option<LoadModel> {
    let doc: ProfileDoc = ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .from_str(profile)
        .ok()?;
    let stages = |s: Vec<StageDoc>| {
        s.into_iter()
            .map(|s| Stage {
                target: s.users.or(s.to).unwrap_or(0.0),
                over: s.over,
            })
            .collect()
    };
    let mut m = LoadModel {
        planned_duration_s,
        ..LoadModel::default()
    };
    match doc.load? {
        LoadDoc::Closed {
            users,
            spawn_rate,
            duration,
            iterations,
            iterations_per_user,
        } => {
            m.model = "closed".into();
            m.users = Some(users);
            m.spawn_rate = spawn_rate;
            m.duration = Some(duration);
            m.iterations = iterations;
            m.iterations_per_user = iterations_per_user;
        }
        LoadDoc::Stages {
            stages: s,
            iterations,
            iterations_per_user,
        } => {
            m.model = "stages".into();
            m.stages = stages(s);
            m.users = m.stages.iter().map(|s| s.target as u32).max();
            m.iterations = iterations;
            m.iterations_per_user = iterations_per_user;
        }
        LoadDoc::Open {
            rate,
            duration,
            max_users,
            queue,
            iterations,
        } => {
            m.model = "open".into();
            m.rate = Some(rate);
            m.duration = Some(duration);
            m.users = max_users;
            m.queue = queue;
            m.iterations = iterations;
        }
        LoadDoc::RampingRate {
            start_rate,
            stages: s,
            max_users,
            queue,
            iterations,
        } => {
            m.model = "ramping_rate".into();
            m.start_rate = Some(start_rate);
            m.stages = stages(s);
            m.users = max_users;
            m.queue = queue;
            m.iterations = iterations;
        }
    }
    for u in &doc.users {
        for r in u.on_start.iter().chain(&u.on_stop) {
            let (name, method) = r.name_and_method();
            m.methods.entry(name).or_insert(method);
        }
        for t in &u.tasks {
            task_methods(t, &mut m.methods);
        }
    }
    m.user_kinds = doc
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| UserKindModel {
            name: u.name.unwrap_or_else(|| format!("users[{i}]")),
            weight: u.weight,
            tasks: u.tasks.len(),
            tags: u.tags,
            iterations: u.iterations,
        })
        .collect();
    Some(m)
}

impl LoadModel {
    /// The model in words, as the report's first line about it.
    pub fn describe(&self) -> String {
        let f = plain;
        match self.model.as_str() {
            "closed" => format!(
                "Closed: {} users{}, for {}",
                self.users.unwrap_or(0),
                match self.spawn_rate {
                    Some(r) => format!(" started at {}/s", f(r)),
                    None => " started at once".into(),
                },
                self.duration.as_deref().unwrap_or("?")
            ),
            "stages" => format!(
                "Stages: a closed population following {} stage{} (at most {} users)",
                self.stages.len(),
                if self.stages.len() == 1 { "" } else { "s" },
                self.users.unwrap_or(0)
            ),
            "open" => format!(
                "Open: {} iterations/s, for {}",
                f(self.rate.unwrap_or(0.0)),
                self.duration.as_deref().unwrap_or("?")
            ),
            "ramping_rate" => format!(
                "Ramping rate: from {} iterations/s through {} stage{}",
                f(self.start_rate.unwrap_or(0.0)),
                self.stages.len(),
                if self.stages.len() == 1 { "" } else { "s" }
            ),
            other => other.to_owned(),
        }
    }

    /// The stages as one line: `0 → 50 users over 30s, → 50 over 1m, …`.
    pub fn stages_text(&self) -> String {
        let unit = if self.model == "ramping_rate" {
            "/s"
        } else {
            " users"
        };
        self.stages
            .iter()
            .map(|s| format!("→ {}{unit} over {}", plain(s.target), s.over))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A number as the profile would write it: `5`, `0.5`, `12.25`.
pub fn plain(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_reads() {
        let closed = parse(
            r#"(name: "checkout", load: Closed(users: 10, spawn_rate: 5.0, duration: "30s"))"#,
            Some(30.0),
        )
        .unwrap();
        assert_eq!(closed.model, "closed");
        assert_eq!((closed.users, closed.spawn_rate), (Some(10), Some(5.0)));
        assert_eq!(
            closed.describe(),
            "Closed: 10 users started at 5/s, for 30s"
        );

        let stages = parse(
            r#"#![enable(implicit_some)]
            (name: "s", load: Stages(stages: [(users: 50, over: "30s"), (users: 0, over: "10s")], iterations_per_user: 3),
             users: [(name: "a", weight: 3, tags: ["web"], wait: Between("1s", "2s"), tasks: [(requests: [(path: "/")])]), (tasks: [])])"#,
            None,
        )
        .unwrap();
        assert_eq!(stages.model, "stages");
        assert_eq!(stages.users, Some(50));
        assert_eq!(stages.iterations_per_user, Some(3));
        assert_eq!(
            stages.stages_text(),
            "→ 50 users over 30s, → 0 users over 10s"
        );
        assert_eq!(stages.methods.get("GET /").map(String::as_str), Some("GET"));
        assert_eq!(
            stages.user_kinds,
            [
                UserKindModel {
                    name: "a".into(),
                    weight: 3,
                    tasks: 1,
                    tags: vec!["web".into()],
                    iterations: None
                },
                UserKindModel {
                    name: "users[1]".into(),
                    weight: 1,
                    tasks: 0,
                    tags: vec![],
                    iterations: None
                }
            ]
        );

        let open = parse(
            r#"(name: "o", load: Open(rate: 200.0, duration: "1m", max_users: 50, queue: 10))"#,
            Some(60.0),
        )
        .unwrap();
        assert_eq!(
            (open.model.as_str(), open.users, open.queue),
            ("open", Some(50), Some(10))
        );

        let ramp = parse(
            r#"(name: "r", load: RampingRate(start_rate: 10.0, stages: [(to: 100.0, over: "1m")]))"#,
            None,
        )
        .unwrap();
        assert_eq!(ramp.stages_text(), "→ 100/s over 1m");
    }

    #[test]
    fn unknown_models_and_bad_text_give_none() {
        assert_eq!(
            parse(r#"(name: "x", load: Teleport(users: 3))"#, None),
            None
        );
        assert_eq!(parse("not ron {", None), None);
        assert_eq!(parse(r#"(name: "x")"#, None), None);
    }
}
