//! How a run ended, as `engine run` reports it: the exit status, and what it says when every request
//! failed.

use std::path::PathBuf;

use formats::RunState;

use crate::console;

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The state written to the manifest.
    pub state: RunState,
    /// Requests (and steps) logged, and how many of them failed.
    pub requests: u64,
    pub failed: u64,
    /// `--failures-are-data`: a run in which every request failed still exits 0.
    pub failures_are_data: bool,
}

impl RunOutcome {
    /// 0 for a completed run, 4 ([`crate::debug::EXIT_REQUESTS_FAILED`]) for a completed run in
    /// which every request failed (unless `--failures-are-data`), 130 for an interrupted one, 1 when
    /// the engine failed on its own (for example a full disk). Some failed requests are data, not an
    /// error; a run that never got one response through measured nothing of the target.
    pub fn exit_code(&self) -> u8 {
        match self.state {
            RunState::Completed if self.all_failed() && !self.failures_are_data => {
                crate::debug::EXIT_REQUESTS_FAILED
            }
            RunState::Completed => 0,
            RunState::Interrupted => 130,
            RunState::Failed | RunState::Running => 1,
        }
    }

    /// Whether requests ran and every one of them failed.
    pub fn all_failed(&self) -> bool {
        self.requests > 0 && self.failed == self.requests
    }
}

/// What the engine says when every request of a run failed.
pub(super) fn all_failed_message(requests: u64, failures_are_data: bool) -> String {
    let exit = if failures_are_data {
        "exit status 0 (--failures-are-data)".to_owned()
    } else {
        format!(
            "exit status {} (--failures-are-data makes it 0)",
            crate::debug::EXIT_REQUESTS_FAILED
        )
    };
    format!(
        "ERROR: every one of the {} requests failed, so this run measured nothing of the target (the reasons are above); check the host and that the target is up, and try one user with `engine try`; {exit}",
        console::thousands(requests)
    )
}
