//! The tests' processes: commands without the caller's shard variables, children bounded in time
//! and killed if a test ends first, the analyzer run that way.

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::LIMIT;

/// A command without the caller's `STAMPEDE_*` and `JOB_COMPLETION_INDEX` variables.
pub(crate) fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars() {
        if k.starts_with("STAMPEDE_") || k == "JOB_COMPLETION_INDEX" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A child process that is killed if the test ends (or panics) before it does.
pub(crate) struct Bounded {
    child: Option<Child>,
    what: String,
}

impl Bounded {
    pub(crate) fn spawn(mut cmd: Command, what: impl Into<String>) -> Bounded {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        Bounded {
            child: Some(child),
            what: what.into(),
        }
    }

    /// Waits for the process until `deadline`; kills it and fails the test past that.
    pub(crate) fn wait(mut self, deadline: Instant) -> Output {
        let mut child = self.child.take().unwrap();
        // Drain the pipes on threads so a chatty process never blocks on a full pipe.
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        let status: ExitStatus = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} ran past its time limit and was killed", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// SIGKILL, as an OOM kill or a node loss would end a pod.
    pub(crate) fn kill(&mut self) {
        let child = self.child.as_mut().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the analyzer with `args`, bounded in time.
pub(crate) fn analyzer(args: &[&str]) -> Output {
    let mut cmd = clean(env!("CARGO_BIN_EXE_analyzer"));
    cmd.args(args);
    Bounded::spawn(cmd, format!("analyzer {args:?}")).wait(Instant::now() + LIMIT)
}

pub(crate) fn now_ns() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}
