//! The flags that place a run among others: its shard, its start instant and its name.

use super::PlanEnv;
use super::error::{PlanError, err};
use crate::cli::RunArgs;
use crate::shard::{Shard, StartAt};

/// The shard (`--shard`, `--shards`, `JOB_COMPLETION_INDEX`, `STAMPEDE_SHARDS`), the start instant
/// (`--start-at`) and the run name (`--run-id`), checked together: the shards of a test must start
/// at one instant that every one of them was given, so several shards need an absolute `--start-at`.
pub(super) fn resolve_sharding(args: &RunArgs, env: &PlanEnv) -> Result<Sharding, PlanError> {
    let shard = crate::shard::resolve(args.shard, args.shards, &env.vars)?;
    let start_at = args
        .start_at
        .as_deref()
        .map(|text| crate::shard::parse_start_at(text, env.now_unix_ns))
        .transpose()?;
    let run_name = args
        .run_id
        .as_deref()
        .map(crate::shard::check_run_id)
        .transpose()?;
    if let Some(shard) = shard
        && shard.count > 1
    {
        let field = if args.shard.is_some() {
            "--shard"
        } else {
            "--shards"
        };
        match start_at {
            None => {
                return Err(err(
                    field,
                    format!(
                        "shard {shard}: the {} shards of a test start together: give every one the same --start-at instant, e.g. --start-at $(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)",
                        shard.count
                    ),
                ));
            }
            Some(StartAt { relative: true, .. }) => {
                return Err(err(
                    "--start-at",
                    format!(
                        "{:?} is read from each machine's clock when its shard starts, so shards launched moments apart would not share an instant (nor a run name): give every shard the same absolute instant, e.g. --start-at $(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)",
                        args.start_at.as_deref().unwrap_or_default().trim()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Sharding {
        shard,
        start_at,
        run_name,
    })
}

/// The flags that place a run among others: [`resolve_sharding`]'s answer.
pub(super) struct Sharding {
    pub shard: Option<Shard>,
    pub start_at: Option<StartAt>,
    pub run_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Plan, PlanEnv};
    use crate::cli::RunArgs;
    use crate::profile;
    use crate::shard::Shard;
    use std::path::Path;

    #[test]
    fn several_shards_need_one_absolute_start() {
        let spec = || profile::load_str(PROFILE, Path::new("t.ron")).unwrap();
        let env = PlanEnv {
            now_unix_ns: NOW,
            ..env()
        };
        let shard = Some(Shard { index: 1, count: 3 });
        let rows: &[(RunArgs, &str, &str)] = &[
            (
                RunArgs {
                    shard,
                    ..RunArgs::default()
                },
                "--shard",
                "give every one the same --start-at",
            ),
            (
                RunArgs {
                    shard,
                    start_at: Some("+30s".into()),
                    ..RunArgs::default()
                },
                "--start-at",
                "the same absolute instant",
            ),
            (
                RunArgs {
                    shard,
                    start_at: Some(START.into()),
                    run_id: Some("a/b".into()),
                    ..RunArgs::default()
                },
                "--run-id",
                "cannot name a run directory",
            ),
        ];
        for (args, field, fragment) in rows {
            let e = Plan::resolve(spec(), args, &env).unwrap_err();
            assert_eq!(e.field, *field, "{e}");
            assert!(e.message.contains(fragment), "{e}");
        }
        // One shard, or one engine, may start relative to now.
        let args = RunArgs {
            shard: Some(Shard { index: 0, count: 1 }),
            start_at: Some("+30s".into()),
            ..RunArgs::default()
        };
        let plan = Plan::resolve(spec(), &args, &env).unwrap();
        assert_eq!(plan.start_at.unwrap().unix_ns, NOW + 30_000_000_000);
        assert_eq!(plan.shard.unwrap().shares, [1.0]);
    }
}
