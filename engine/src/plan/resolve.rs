//! [`Plan::resolve`]: the profile, flags and environment made into a plan.

use std::path::Path;

use super::deal::deal;
use super::error::{PlanError, err, located};
use super::load::resolve_load;
use super::manifest::manifest_profile;
use super::overrides::Overrides;
use super::sharding::{Sharding, resolve_sharding};
use super::tls::resolve_tls;
use super::{HttpSettings, MAX_USERS, Origin, Plan, PlanEnv, ShardPlan};
use crate::cli::RunArgs;
use crate::profile::spec::{HttpSpec, ProfileSpec};
use crate::scenario::compile::{self, CompileError};
use crate::shard::Shard;

impl Plan {
    /// Applies flags and the environment to a profile. `spec` is the profile as read; flags win over
    /// the environment, which wins over the profile's top level.
    pub fn resolve(spec: ProfileSpec, args: &RunArgs, env: &PlanEnv) -> Result<Plan, PlanError> {
        Plan::resolve_with(spec, args, env, &crate::protocol::Protocols::default())
    }

    /// [`Plan::resolve`], with custom protocols that `Custom(protocol: ...)` steps may name.
    pub fn resolve_with(
        spec: ProfileSpec,
        args: &RunArgs,
        env: &PlanEnv,
        protocols: &crate::protocol::Protocols,
    ) -> Result<Plan, PlanError> {
        // An error about a profile field that names no place is located by the field's path.
        let sources = spec.sources.clone();
        Plan::resolve_spec(spec, args, env, protocols).map_err(|e| e.located_by_field(&sources))
    }

    fn resolve_spec(
        mut spec: ProfileSpec,
        args: &RunArgs,
        env: &PlanEnv,
        protocols: &crate::protocol::Protocols,
    ) -> Result<Plan, PlanError> {
        let process_env = |k: &str| env.vars.get(k).cloned();
        let Overrides {
            env_name,
            headers,
            mut vars,
            host,
            target,
            target_origin,
            base_path,
            tls_spec,
            tls_field,
        } = Overrides::apply(&spec, args, env)?;

        let resolved = resolve_load(&mut spec.load, args)?;
        let duration = resolved.duration;
        let users = resolved.load_users();
        let spawn_rate = resolved.spawn_rate;
        if users > MAX_USERS {
            return Err(err(
                resolved.users_field,
                format!(
                    "{users} users is more than this engine supports ({MAX_USERS}); every user holds a connection"
                ),
            ));
        }

        let core_count = match args.cores {
            Some(0) => return Err(err("--cores", "must be at least 1")),
            Some(n) => n,
            None => (env.cpus.len() as u32).max(1),
        };
        if core_count > 1024 {
            return Err(err(
                "--cores",
                format!("{core_count} is more engine threads than makes sense (at most 1024)"),
            ));
        }
        let Sharding {
            shard,
            start_at,
            run_name,
        } = resolve_sharding(args, env)?;
        let this = shard.unwrap_or(Shard { index: 0, count: 1 });

        let base_dir = args
            .profile
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""))
            .to_owned();
        // Tag selection removes what does not run before anything is compiled or dealt by weight.
        let tags = crate::scenario::tags::select(&mut spec, &args.tags, &args.exclude_tags)
            .map_err(|e| err(e.field, e.message))?;
        let scenario = compile::compile(compile::Inputs {
            spec: &spec,
            vars: &mut vars,
            process_env: &process_env,
            headers: &headers,
            base_path: &base_path,
            base_dir: &base_dir,
            protocols,
        })
        .map_err(|e: CompileError| located(&spec, e.field, e.snippet.as_deref(), e.message))?;

        let channel_origins = scenario
            .channels
            .iter()
            .map(|c| match &c.target {
                Some(text) => Origin::of(&spec, &c.field, text),
                None => target_origin.clone(),
            })
            .collect();

        let weights: Vec<u32> = spec.users.iter().map(|u| u.weight).collect();
        let (cores, shares) = deal(
            &resolved,
            &weights,
            this,
            core_count,
            &env.cpus,
            args.live.max_users,
        );

        let HttpSpec {
            connect_timeout,
            request_timeout,
            max_body,
        } = spec.http.clone();
        let http = HttpSettings {
            connect_timeout: connect_timeout.0,
            request_timeout: request_timeout.0,
            max_body: max_body.0,
        };

        let tls = resolve_tls(
            &spec,
            tls_spec.as_ref(),
            &tls_field,
            &target,
            &base_dir,
            &mut vars,
            &process_env,
        )?;
        // The manifest shows the TLS settings that applied (an environment's included), so that a
        // report can say that certificates were not verified.
        spec.tls = tls_spec;
        let profile_ron = manifest_profile(&spec, &host, env_name.as_deref(), &headers, &vars);
        // What the manifest shows as `***`, as values: secret variables, and the process environment
        // variables the profile read.
        let secrets = vars
            .secret
            .iter()
            .filter_map(|k| vars.values.get(k).cloned())
            .chain(vars.from_env.iter().filter_map(|k| process_env(k)))
            .filter(|v| !v.is_empty())
            .collect();

        Ok(Plan {
            name: spec.name.clone(),
            environment: env_name,
            target,
            target_origin,
            users,
            spawn_rate,
            duration,
            load: resolved.load,
            iterations: resolved.iterations,
            embedded: spec.embedded.clone().unwrap_or_default(),
            cores,
            scenario,
            http,
            tls,
            io: args.io,
            linger_us: args
                .linger
                .map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX)),
            out_dir: args.out.clone(),
            quiet: args.quiet,
            profile_ron,
            shard: shard.map(|shard| ShardPlan { shard, shares }),
            start_at,
            run_name,
            tags,
            secrets,
            preflight: !args.no_preflight,
            channel_origins,
        })
    }
}
