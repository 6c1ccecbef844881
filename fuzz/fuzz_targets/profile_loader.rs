//! Feeds arbitrary text to the profile loader and, when it loads, to the plan resolver. Bad profiles
//! must be errors (the engine exits 2 with a located message), never panics.
#![no_main]

use std::path::Path;

use engine::cli::RunArgs;
use engine::plan::{Plan, PlanEnv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: includes and feeders then fail to load instead of reading
    // whatever the fuzzer names.
    let file = Path::new("/nonexistent-stampede-fuzz/profile.ron");
    match engine::profile::load_str(text, file) {
        Ok(spec) => {
            let env = PlanEnv {
                cpus: vec![0, 1],
                vars: Default::default(),
            };
            let _ = Plan::resolve(spec, &RunArgs::default(), &env);
        }
        Err(e) => {
            // The message is what the user sees; rendering it must not panic either.
            let _ = e.to_string();
        }
    }
});
