//! The run's cores and the coordinator: one thread per core, and the loop that turns their reports
//! into console lines and the live view until every core is done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::console::Console;
use crate::core::{self, CoreDone, CoreSetup, Report};
use crate::live::Live;
use crate::plan::CorePlan;

/// Starts one thread per core, each with the setup `setup` makes for it (given the sender of the
/// coordinator's channel). A core whose thread cannot start is reported as a failed core and the
/// others are asked to stop, so the coordinator still gets one `Done` per core.
pub(super) fn spawn(
    cores: &[CorePlan],
    mut setup: impl FnMut(&CorePlan, Sender<Report>) -> CoreSetup,
    stop: &AtomicBool,
) -> (Vec<JoinHandle<()>>, Receiver<Report>) {
    let (tx, rx) = mpsc::channel::<Report>();
    let mut threads = Vec::new();
    for core in cores {
        let setup = setup(core, tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("stampede-core-{}", core.index))
            .spawn(move || core::run_core(setup));
        match spawned {
            Ok(t) => threads.push(t),
            Err(source) => {
                stop.store(true, Ordering::SeqCst);
                let _ = tx.send(Report::Done(CoreDone::failed(
                    core.index,
                    false,
                    format!("cannot start core {}: {source}", core.index),
                )));
            }
        }
    }
    (threads, rx)
}

/// The coordinator: console lines as seconds complete and the live view fed, until every one of
/// `cores` is done (or every core's sender is gone); then it joins the threads. Returns the cores'
/// reports, in the order they finished.
pub(super) fn coordinate(
    rx: &Receiver<Report>,
    threads: Vec<JoinHandle<()>>,
    cores: usize,
    console: &mut Console,
    live: &mut Option<Live>,
) -> Vec<CoreDone> {
    let mut done: Vec<CoreDone> = Vec::new();
    while done.len() < cores {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Report::Second(s)) => {
                if let Some(live) = live {
                    live.on_second(&s);
                }
                console.on_second(s);
            }
            Ok(Report::Done(d)) => {
                if let Some(live) = live {
                    live.on_done(d.core);
                }
                done.push(d);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for t in threads {
        let _ = t.join();
    }
    done
}

/// Says which cores still had I/O unfinished 2 s after the run ended.
pub(super) fn warn_unsettled(done: &[CoreDone]) {
    for d in done.iter().filter(|d| d.unsettled > 0) {
        // The log is whole (what was left is written directly), but the run ended up to 2 s late
        // and the core's ring memory was leaked: worth a report, not a failed run.
        let (what, were) = if d.unsettled == 1 {
            ("operation", "was")
        } else {
            ("operations", "were")
        };
        eprintln!(
            "warning: core {}: {} I/O {what} {were} still unfinished 2 s after the run ended, so the run ended late; the log is complete. This is an engine bug: please report it with the profile.",
            d.core, d.unsettled
        );
    }
}
