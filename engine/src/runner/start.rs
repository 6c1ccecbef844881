//! When a run starts: its time zero a little ahead, or with `--start-at` the instant itself, waited
//! for with the directory and a `running` manifest already written, refused when it has passed.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use formats::RunId;

use super::run_dir::{create_dir, new_manifest, remove_unstarted};
use crate::clock::{self, Clock};
use crate::core;
use crate::driver::IoDriver;
use crate::error::Error;
use crate::plan::Plan;

/// Creates the run directory and fixes the run's time zero. With `--start-at`, the directory and the
/// `running` manifest are written before the start instant (a name taken by another run is an error
/// the orchestrator sees before the start), and the run's time zero is the instant itself, not
/// whenever this process woke up; a directory nothing ran in is removed when the start fails.
pub(super) fn start(
    plan: &Plan,
    target_url: &str,
    driver: IoDriver,
    stop: &AtomicBool,
) -> Result<(Clock, PathBuf, RunId), Error> {
    let started = match plan.start_at {
        None => {
            // Time zero lies a little ahead, so that every core has set up and waits for it: the
            // first requests start on time rather than after the engine's own start-up.
            let clock = Clock::start_in(core::STARTUP_LEAD);
            let (dir, run_id) = create_dir(plan, clock.wall_ns)?;
            (clock, dir, run_id)
        }
        Some(start) => {
            let (dir, run_id) = create_dir(plan, start.unix_ns)?;
            let waiting = Clock::at_wall(start.unix_ns);
            let mut manifest = new_manifest(plan, run_id, waiting, target_url, driver);
            // Until the start, the manifest lists no logs: none exist yet.
            manifest.logs.clear();
            if let Err(source) = manifest.write_to(&dir) {
                remove_unstarted(&dir);
                return Err(Error::Write {
                    path: dir.join("manifest.json"),
                    source,
                });
            }
            if let Err(e) = check_not_late(plan, start.unix_ns, ", when it was ready") {
                remove_unstarted(&dir);
                return Err(e);
            }
            if !plan.quiet {
                let left = start.unix_ns - clock::wall_now_ns();
                eprintln!(
                    "stampede: {}ready; starting at {} (in {})",
                    plan.shard
                        .as_ref()
                        .map(|s| format!("shard {} ", s.shard))
                        .unwrap_or_default(),
                    formats::run::format_utc(start.unix_ns),
                    crate::shard::human(Duration::from_nanos(left.max(0) as u64))
                );
            }
            // The cores are started a little ahead and wait for the instant themselves, so their
            // set-up (runtime, log file, users) does not delay the first requests. The instant is
            // mapped to the monotonic clock only then, so that a clock adjusted during a long wait
            // cannot move it.
            let set_up_by = start.unix_ns.saturating_sub(PRESTART.as_nanos() as i64);
            if !clock::wait_until_wall(set_up_by, stop) {
                remove_unstarted(&dir);
                return Err(Error::InterruptedBeforeStart {
                    start_at: formats::run::format_utc(start.unix_ns),
                });
            }
            (Clock::at_wall(start.unix_ns), dir, run_id)
        }
    };
    Ok(started)
}

/// How long before a `--start-at` instant the cores are started, to be set up and waiting when it
/// comes: enough for the manifest's write and a core's set-up on a busy machine.
const PRESTART: Duration = Duration::from_millis(250);

/// Refuses to start when the start instant has passed: `ready` says at which point it was noticed.
pub(super) fn check_not_late(plan: &Plan, start_ns: i64, ready: &'static str) -> Result<(), Error> {
    let now = clock::wall_now_ns();
    if now < start_ns {
        return Ok(());
    }
    Err(Error::TooLate {
        start_at: formats::run::format_utc(start_ns),
        late: crate::shard::human(Duration::from_nanos((now - start_ns) as u64)),
        ready,
        which: plan
            .shard
            .as_ref()
            .map(|s| format!(" - shard {}", s.shard))
            .unwrap_or_default(),
    })
}
