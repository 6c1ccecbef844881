//! Signals during a run: the first Ctrl-C or SIGTERM asks every core to stop, the second exits at
//! once; a file-size limit fails the log write instead of killing the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::error::Error;

/// Installs the handlers. Ctrl-C / SIGTERM: the first asks every core to stop (they look every 50 ms);
/// the second exits at once. Returns the stop flag, the count of interrupts so far, and the handle
/// that ends the signal thread's wait.
pub(super) fn install() -> Result<
    (
        Arc<AtomicBool>,
        Arc<AtomicU32>,
        signal_hook::iterator::Handle,
    ),
    Error,
> {
    let stop = Arc::new(AtomicBool::new(false));
    let signal_count = Arc::new(AtomicU32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|source| Error::System {
        context: "installing signal handlers",
        source,
    })?;
    let signal_handle = signals.handle();
    // A file-size limit (`ulimit -f`) must fail the log write, naming the file, like a full disk
    // does; by default SIGXFSZ would kill the engine without a word. Handled signals stay handled
    // in this process only, so the registration is harmless.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(AtomicBool::new(false)),
    )
    .map_err(|source| Error::System {
        context: "installing signal handlers",
        source,
    })?;
    {
        let (stop, count) = (Arc::clone(&stop), Arc::clone(&signal_count));
        std::thread::Builder::new()
            .name("stampede-signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if count.fetch_add(1, Ordering::SeqCst) >= 1 {
                        eprintln!("\nsecond interrupt: exiting now; the logs end where they were");
                        std::process::exit(130);
                    }
                    stop.store(true, Ordering::SeqCst);
                }
            })
            .map_err(|source| Error::System {
                context: "starting the signal thread",
                source,
            })?;
    }
    Ok((stop, signal_count, signal_handle))
}
