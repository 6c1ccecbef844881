//! The load model: the profile's `load` with `--rate`, `--users`, `--spawn-rate`, `--duration` and
//! `--iterations` applied, checked and typed.

use std::time::Duration;

use super::error::{PlanError, err};
use super::{DEFAULT_MAX_USERS, LoadPlan};
use crate::cli::RunArgs;
use crate::profile::{
    self,
    spec::{DurationSpec, LoadSpec},
};
use crate::schedule::{Population, RateCurve, Spawn, UserStages};

/// The load model after flags, with the field to blame for a user count that is too large.
pub(super) struct ResolvedLoad {
    pub load: LoadPlan,
    pub duration: Duration,
    pub spawn_rate: Option<f64>,
    pub iterations: Option<u64>,
    pub users_field: &'static str,
}

impl ResolvedLoad {
    pub(super) fn load_users(&self) -> u32 {
        match &self.load {
            LoadPlan::Closed { population, .. } => population.users(),
            LoadPlan::Open { max_users, .. } => *max_users,
        }
    }
}

/// The load model of a profile without `load`, from the command line: a closed model of `--users`
/// (or, with `--rate`, an open one) for `--duration`. Which flag is missing is named.
fn load_from_flags(args: &RunArgs) -> Result<LoadSpec, PlanError> {
    let missing = match (args.users.is_some() || args.rate.is_some(), args.duration) {
        (true, Some(duration)) => {
            return Ok(LoadSpec::Closed {
                users: args.users.unwrap_or(1),
                spawn_rate: None,
                duration: DurationSpec(duration),
                iterations: None,
                iterations_per_user: None,
            });
        }
        (true, None) => "--duration (e.g. `--duration 1m`)",
        (false, Some(_)) => "--users (e.g. `-u 10`) or --rate",
        (false, None) => "--users and --duration (e.g. `-u 10 -t 1m`)",
    };
    Err(err(
        "load",
        format!(
            "the profile has no `load`, and the command line does not give one: add {missing}, or add `load: Closed(users: 10, duration: \"1m\")` to the profile"
        ),
    ))
}

/// Applies `--rate`, `--users`, `--spawn-rate`, `--duration` and `--iterations` to the profile's load
/// model (rewriting `load` so the manifest shows what ran), checks it, and types it.
pub(super) fn resolve_load(load: &mut LoadSpec, args: &RunArgs) -> Result<ResolvedLoad, PlanError> {
    if let Some(d) = args.duration
        && d.is_zero()
    {
        return Err(err("--duration", "must be longer than zero"));
    }
    if args.users == Some(0) {
        return Err(err("--users", "must be at least 1"));
    }
    if args.iterations == Some(0) {
        return Err(err("--iterations", "must be at least 1"));
    }
    if let Some(r) = args.spawn_rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err(err(
            "--spawn-rate",
            format!("must be a positive number of users per second, got {r}"),
        ));
    }
    if matches!(load, LoadSpec::Unset) {
        *load = load_from_flags(args)?;
    }
    let model_duration = |load: &LoadSpec| match load {
        LoadSpec::Closed { duration, .. } | LoadSpec::Open { duration, .. } => duration.0,
        LoadSpec::Stages { stages, .. } => stages.iter().map(|s| s.over.0).sum(),
        LoadSpec::RampingRate { stages, .. } => stages.iter().map(|s| s.over.0).sum(),
        LoadSpec::Unset => Duration::ZERO,
    };
    let is_open =
        |load: &LoadSpec| matches!(load, LoadSpec::Open { .. } | LoadSpec::RampingRate { .. });
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(err(
                "--rate",
                format!("must be a positive number of iterations per second, got {rate}"),
            ));
        }
        if args.spawn_rate.is_some() {
            return Err(err(
                "--spawn-rate",
                "an open model (--rate) starts users as arrivals need them; drop --spawn-rate",
            ));
        }
        // --rate switches any model to a constant open one, keeping its pool settings if it had any.
        let (max_users, queue, iterations) = match load {
            LoadSpec::Open {
                max_users,
                queue,
                iterations,
                ..
            }
            | LoadSpec::RampingRate {
                max_users,
                queue,
                iterations,
                ..
            } => (*max_users, *queue, *iterations),
            LoadSpec::Closed { iterations, .. } | LoadSpec::Stages { iterations, .. } => {
                (None, None, *iterations)
            }
            LoadSpec::Unset => (None, None, None),
        };
        *load = LoadSpec::Open {
            rate,
            duration: DurationSpec(args.duration.unwrap_or_else(|| model_duration(load))),
            max_users: args.users.or(max_users),
            queue,
            iterations: args.iterations.or(iterations),
        };
    } else {
        let fixed_by_stages = |flag: &str, what: &str| {
            err(
                flag,
                format!(
                    "the profile's stages set the {what}; edit them, or use --rate for a constant open model"
                ),
            )
        };
        match load {
            LoadSpec::Closed {
                users,
                spawn_rate,
                duration,
                iterations,
                ..
            } => {
                if let Some(u) = args.users {
                    *users = u;
                }
                if let Some(r) = args.spawn_rate {
                    *spawn_rate = Some(r);
                }
                if let Some(d) = args.duration {
                    duration.0 = d;
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            LoadSpec::Stages { iterations, .. } => {
                if args.users.is_some() {
                    return Err(fixed_by_stages("--users", "users"));
                }
                if args.duration.is_some() {
                    return Err(fixed_by_stages("--duration", "duration"));
                }
                if args.spawn_rate.is_some() {
                    return Err(fixed_by_stages("--spawn-rate", "ramp"));
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            LoadSpec::Open {
                duration,
                max_users,
                iterations,
                ..
            } => {
                if args.spawn_rate.is_some() {
                    return Err(err(
                        "--spawn-rate",
                        "an open model starts users as arrivals need them; drop --spawn-rate",
                    ));
                }
                if let Some(d) = args.duration {
                    duration.0 = d;
                }
                if let Some(u) = args.users {
                    *max_users = Some(u);
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            LoadSpec::RampingRate {
                max_users,
                iterations,
                ..
            } => {
                if args.duration.is_some() {
                    return Err(fixed_by_stages("--duration", "duration"));
                }
                if args.spawn_rate.is_some() {
                    return Err(err(
                        "--spawn-rate",
                        "an open model starts users as arrivals need them; drop --spawn-rate",
                    ));
                }
                if let Some(u) = args.users {
                    *max_users = Some(u);
                }
                if let Some(n) = args.iterations {
                    *iterations = Some(n);
                }
            }
            // Replaced by `load_from_flags` above.
            LoadSpec::Unset => {}
        }
    }
    profile::check_load(load).map_err(|(field, message)| err(field, message))?;
    let users_field = if args.users.is_some() {
        "--users"
    } else if is_open(load) {
        "load.max_users"
    } else {
        "load.users"
    };
    let duration = model_duration(load);
    let resolved = match load {
        LoadSpec::Closed {
            users,
            spawn_rate,
            iterations,
            iterations_per_user,
            ..
        } => ResolvedLoad {
            load: LoadPlan::Closed {
                population: Population::Spawn(Spawn {
                    users: *users,
                    rate: *spawn_rate,
                }),
                iterations_per_user: *iterations_per_user,
            },
            duration,
            spawn_rate: *spawn_rate,
            iterations: *iterations,
            users_field,
        },
        LoadSpec::Stages {
            stages,
            iterations,
            iterations_per_user,
        } => ResolvedLoad {
            load: LoadPlan::Closed {
                population: Population::Stages(UserStages {
                    stages: stages.iter().map(|s| (s.users, s.over.0)).collect(),
                }),
                iterations_per_user: *iterations_per_user,
            },
            duration,
            spawn_rate: None,
            iterations: *iterations,
            users_field,
        },
        LoadSpec::Open {
            rate,
            max_users,
            queue,
            iterations,
            ..
        } => ResolvedLoad {
            load: LoadPlan::Open {
                curve: RateCurve::constant(*rate, duration),
                max_users: max_users.unwrap_or(DEFAULT_MAX_USERS),
                queue: queue.unwrap_or(0),
            },
            duration,
            spawn_rate: None,
            iterations: *iterations,
            users_field,
        },
        LoadSpec::RampingRate {
            start_rate,
            stages,
            max_users,
            queue,
            iterations,
        } => ResolvedLoad {
            load: LoadPlan::Open {
                curve: RateCurve::ramps(
                    *start_rate,
                    &stages.iter().map(|s| (s.to, s.over.0)).collect::<Vec<_>>(),
                ),
                max_users: max_users.unwrap_or(DEFAULT_MAX_USERS),
                queue: queue.unwrap_or(0),
            },
            duration,
            spawn_rate: None,
            iterations: *iterations,
            users_field,
        },
        // `load_from_flags` replaced it above; kept as an error rather than a panic.
        LoadSpec::Unset => {
            return Err(err(
                "load",
                "the profile has no `load`: add one, or give --users and --duration",
            ));
        }
    };
    Ok(resolved)
}
