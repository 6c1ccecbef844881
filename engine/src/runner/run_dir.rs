//! The run directory and its manifest: creating the directory (named for a shard or a named run),
//! the manifest as `running`, and removing a directory a shard never started in.

use std::path::{Path, PathBuf};

use formats::{LogFile, Manifest, RunId, RunState};

use crate::clock::{self, Clock};
use crate::core::CoreDone;
use crate::driver::IoDriver;
use crate::error::Error;
use crate::plan::Plan;
use crate::sys;

/// Creates the run directory: a shard's `<out>/<run name>/shard-<I>/`, a named run's `<out>/<run
/// name>/`, else the usual `<out>/<UTC start>-<profile name>/`. Returns it with the run id: derived
/// from the run name when there is one (so every shard has the same), else random.
pub(super) fn create_dir(plan: &Plan, start_ns: i64) -> Result<(PathBuf, RunId), Error> {
    let named = plan.shard.is_some() || plan.run_name.is_some();
    if !named {
        let dir = formats::run::create_run_dir(&plan.out_dir, start_ns, &plan.name).map_err(
            |source| Error::OutDir {
                path: plan.out_dir.clone(),
                source,
            },
        )?;
        return Ok((dir, RunId(crate::rng::random_id())));
    }
    let name = plan
        .run_name
        .clone()
        .unwrap_or_else(|| formats::run::run_dir_name(start_ns, &plan.name));
    let dir = match &plan.shard {
        Some(s) => crate::shard::create_shard_dir(&plan.out_dir, &name, s.shard)?,
        None => crate::shard::create_named_dir(&plan.out_dir, &name)?,
    };
    Ok((dir, crate::shard::run_id_of(&name)))
}

/// Removes a run directory this process created and nothing ran in (a shard that did not start), and
/// its parent when that is now empty (the run directory of a shard), so that the run can be retried
/// under the same name.
pub(super) fn remove_unstarted(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(formats::manifest::MANIFEST_FILE));
    let _ = std::fs::remove_dir(dir);
    if let Some(parent) = dir.parent()
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("shard-"))
    {
        let _ = std::fs::remove_dir(parent);
    }
}

/// The manifest of a run starting at `clock`'s time zero, as `running`.
pub(super) fn new_manifest(
    plan: &Plan,
    run_id: RunId,
    clock: Clock,
    target_url: &str,
    driver: IoDriver,
) -> Manifest {
    Manifest {
        schema: formats::manifest::MANIFEST_SCHEMA,
        log_format: format!("{}.{}", formats::FORMAT_MAJOR, formats::FORMAT_MINOR),
        run_id,
        profile_name: plan.name.clone(),
        profile: plan.profile_ron.clone(),
        environment: plan.environment.clone(),
        target: Some(target_url.to_owned()),
        engine_version: env!("CARGO_PKG_VERSION").to_owned(),
        host: sys::host_info(),
        io_driver: driver.manifest_name().to_owned(),
        // A linger changes both the load per core and the latencies' resolution: the manifest says so.
        io_setup: Some(if plan.linger_us > 0 {
            format!("{}, linger {} µs", driver.setup_name(), plan.linger_us)
        } else {
            driver.setup_name().to_owned()
        }),
        started_at: formats::run::format_utc(clock.wall_ns),
        started_unix_ns: clock.wall_ns,
        monotonic_base_ns: clock.monotonic_ns,
        planned_duration_s: Some(plan.duration.as_secs_f64()),
        ended_at: None,
        ended_unix_ns: None,
        state: RunState::Running,
        error: None,
        logs: plan
            .cores
            .iter()
            .map(|c| LogFile {
                core: c.index,
                cpu: c.cpu,
                file: formats::run::log_file_name(c.index),
            })
            .collect(),
        shard: plan.shard.as_ref().map(|s| formats::ShardInfo {
            index: s.shard.index,
            count: s.shard.count,
            shares: s.shares.clone(),
            start_at: plan
                .start_at
                .map(|start| formats::run::format_utc(start.unix_ns)),
        }),
        clock_sync: crate::clock_sync::read(),
        tags: plan.tags.clone(),
        extra: Default::default(),
    }
}

/// Completes the manifest when every core is done: its state (failed when a core reported an error,
/// interrupted when the run was stopped, else completed), the cores' errors, no CPU for a core that
/// was not pinned, and the end time; and writes it. Returns the cores' errors.
pub(super) fn finish_manifest(
    manifest: &mut Manifest,
    done: &[CoreDone],
    stopped: bool,
    dir: &Path,
) -> Result<Vec<String>, Error> {
    let errors: Vec<String> = done.iter().filter_map(|d| d.error.clone()).collect();
    manifest.state = if !errors.is_empty() {
        RunState::Failed
    } else if stopped {
        RunState::Interrupted
    } else {
        RunState::Completed
    };
    manifest.error = (!errors.is_empty()).then(|| errors.join("; "));
    for log in &mut manifest.logs {
        if done.iter().any(|d| d.core == log.core && !d.pinned) {
            log.cpu = None;
        }
    }
    let ended = clock::wall_now_ns();
    manifest.ended_at = Some(formats::run::format_utc(ended));
    manifest.ended_unix_ns = Some(ended);
    if let Err(source) = manifest.write_to(dir) {
        // The cores' errors (a full disk, say) explain this one; say them before giving up.
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Err(Error::Write {
            path: dir.join("manifest.json"),
            source,
        });
    }
    Ok(errors)
}
