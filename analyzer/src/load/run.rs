//! Opening a run directory: its manifest facts, its data-quality notes, and its logs read and merged.

use std::path::Path;

use formats::{Manifest, Run};

use super::merge::merge_run;
use super::read::{CoreColumns, LogSpec, file_label, read_logs};
use super::{LoadOptions, LoadedRun, QualityNote, RunInfo, Severity};
use crate::error::{Error, Result};

/// Loads one run directory: an ordinary run, or a sharded run's directory (its `shard-*`
/// subdirectories are merged into one run, [`crate::shards`]). Fails only when the directory is not a
/// run, nothing in it is readable, or its shards cannot be merged; every lesser problem becomes a
/// [`QualityNote`].
pub fn load_run(dir: &Path, options: LoadOptions) -> Result<LoadedRun> {
    let inputs = crate::shards::resolve(&[dir.to_owned()])?;
    match inputs.into_iter().next() {
        Some(input) => load_input(&input, options),
        None => load_single(dir, options),
    }
}

/// Loads one run as [`crate::shards::resolve`] found it.
pub fn load_input(input: &crate::shards::RunInput, options: LoadOptions) -> Result<LoadedRun> {
    match input {
        crate::shards::RunInput::Single(dir) => load_single(dir, options),
        crate::shards::RunInput::Sharded(sharded) => crate::shards::load(sharded, options),
    }
}

fn load_single(dir: &Path, options: LoadOptions) -> Result<LoadedRun> {
    let run = Run::open(dir).map_err(|e| Error::NothingReadable {
        paths: vec![dir.display().to_string()],
        reasons: vec![open_failure(dir, &e)],
    })?;
    let mut notes = Vec::new();
    let label = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let manifest = match &run.manifest {
        Ok(m) => Some(m),
        Err(e) => {
            notes.push(QualityNote {
                severity: Severity::Warning,
                file: formats::manifest::MANIFEST_FILE.into(),
                message: format!(
                    "{}; the run header below is incomplete, but the logs were read",
                    e.kind
                ),
            });
            None
        }
    };
    if let Some(m) = manifest
        && m.state == formats::RunState::Running
    {
        notes.push(QualityNote {
            severity: Severity::Warning,
            file: formats::manifest::MANIFEST_FILE.into(),
            message: "the run was never finalized (the manifest still says \"running\"): the engine was killed, \
                      crashed or is still running, so the logs end wherever it stopped"
                .into(),
        });
    }
    if let Some(m) = manifest
        && tls_verification_off(&m.profile)
    {
        notes.push(QualityNote {
            severity: Severity::Warning,
            file: formats::manifest::MANIFEST_FILE.into(),
            message:
                "TLS certificate verification was switched off for this run (`insecure: true` in \
                      the profile's `tls`): the target's identity was not checked"
                    .into(),
        });
    }
    if run.logs.is_empty() {
        return Err(Error::NothingReadable {
            paths: vec![dir.display().to_string()],
            reasons: vec!["the run has no core-N.log files".into()],
        });
    }

    let specs: Vec<LogSpec> = run
        .logs
        .iter()
        .map(|(core, path)| LogSpec {
            core: *core,
            header_core: *core,
            path: path.clone(),
            label: file_label(path),
            offset_us: 0,
        })
        .collect();
    let (mut cores, limit) = read_logs(&specs, options);
    if let Some(m) = manifest {
        warn_of_logs_cut_after_the_run(m.state, &specs, &mut cores);
    }
    let readable = cores.iter().filter(|c| c.header.is_some()).count();
    if readable == 0 {
        return Err(Error::NothingReadable {
            paths: vec![dir.display().to_string()],
            reasons: cores
                .iter()
                .flat_map(|c| c.notes.iter().map(|n| format!("{}: {}", n.file, n.message)))
                .collect(),
        });
    }
    let mut info = run_info(dir, label, manifest, &cores);
    info.cores = run.logs.len();
    merge_run(cores, info, limit, options.skip_us, notes)
}

/// Why a run directory could not be opened, in words that say what to do. A path that does not
/// exist is the common mistake (a typo, or a run directory from another machine), and the
/// operating system's "No such file or directory" does not say what the analyzer wants instead.
/// Every command that opens a run directory words its failure with this.
pub fn open_failure(dir: &Path, e: &formats::ReadError) -> String {
    match &e.kind {
        formats::ReadErrorKind::Io(io)
            if io.kind() == std::io::ErrorKind::NotFound && e.path == dir =>
        {
            "there is no such directory; give a run directory made by `engine run` (it prints the \
             directory as its last line; runs go under runs/ unless --out says otherwise)"
                .to_owned()
        }
        _ => e.to_string(),
    }
}

/// A log without its end-of-file block is what a killed engine leaves, and then the manifest says
/// "running". When the manifest says the engine finished (completed, or interrupted and flushed), the
/// engine did write that block, so a log that lacks it was cut short afterwards: a copy that stopped
/// early, or a file truncated on disk. The report then covers only part of the run although the
/// manifest calls it whole, which deserves a warning on the console, not only an info line.
fn warn_of_logs_cut_after_the_run(
    state: formats::RunState,
    specs: &[LogSpec],
    cores: &mut [CoreColumns],
) {
    let finished = match state {
        formats::RunState::Completed => "completed",
        formats::RunState::Interrupted => "was interrupted and flushed",
        formats::RunState::Running | formats::RunState::Failed => return,
    };
    for core in cores
        .iter_mut()
        .filter(|c| c.header.is_some() && !c.finished)
    {
        let file = specs
            .iter()
            .find(|s| s.core == core.core())
            .map_or_else(|| format!("core-{}.log", core.core()), |s| s.label.clone());
        core.notes.push(QualityNote {
            severity: Severity::Warning,
            file,
            message: format!(
                "the manifest says the run {finished}, but this log has no end-of-file block: the \
                 file was cut short after the run (an incomplete copy, or a truncated file), so the \
                 report covers only its samples up to the cut; copy the run directory again from where \
                 the engine wrote it"
            ),
        });
    }
}

/// Whether the run's resolved profile (RON, as the manifest keeps it) switched TLS verification off
/// anywhere: `insecure: true` in a `tls` setting of the profile or of an environment. The profile is
/// read generically, so the analyzer does not depend on the engine's profile types.
pub fn tls_verification_off(profile: &str) -> bool {
    fn walk(v: &ron::Value) -> bool {
        match v {
            ron::Value::Map(map) => map.iter().any(|(k, v)| {
                (matches!(k, ron::Value::String(s) if s == "insecure") && is_true(v)) || walk(v)
            }),
            ron::Value::Seq(items) => items.iter().any(walk),
            ron::Value::Option(Some(inner)) => walk(inner),
            _ => false,
        }
    }
    fn is_true(v: &ron::Value) -> bool {
        match v {
            ron::Value::Bool(b) => *b,
            ron::Value::Option(Some(inner)) => is_true(inner),
            _ => false,
        }
    }
    ron::Options::default()
        .from_str::<ron::Value>(profile)
        .is_ok_and(|v| walk(&v))
}

fn run_info(
    dir: &Path,
    label: String,
    manifest: Option<&Manifest>,
    cores: &[CoreColumns],
) -> RunInfo {
    let header = cores.iter().find_map(|c| c.header);
    let mut info = RunInfo {
        dir: dir.to_owned(),
        label,
        ..RunInfo::default()
    };
    if let Some(m) = manifest {
        info.id = m.run_id.to_string();
        info.profile = m.profile_name.clone();
        info.environment = m.environment.clone();
        info.target = m.target.clone();
        info.host = m.host.name.clone();
        info.kernel = m.host.kernel.clone();
        info.cpu_count = m.host.cpu_count;
        info.started_at = m.started_at.clone();
        info.engine_version = m.engine_version.clone();
        info.io_driver = m.io_driver.clone();
        info.state = m.state.describe().to_owned();
        info.finalized = m.state != formats::RunState::Running;
        info.load_model = crate::load_model::parse(&m.profile, m.planned_duration_s);
        info.tags.clone_from(&m.tags);
        info.started_unix_ns = m.started_unix_ns;
        if let Some(end) = m.ended_unix_ns {
            info.duration_s = (end - m.started_unix_ns) as f64 / 1e9;
        }
    } else {
        info.state = "unknown (no readable manifest)".into();
        if let Some(h) = header {
            info.id = h.run_id.to_string();
            info.started_at = formats::run::format_utc(h.wall_start_unix_ns);
            info.started_unix_ns = h.wall_start_unix_ns;
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_verification_off_is_found_wherever_the_profile_switched_it_off() {
        let rows = [
            ("(name: \"a\", tls: (insecure: true))", true),
            (
                "#![enable(implicit_some)]\n(name: \"a\", tls: (ca_file: \"ca.pem\", insecure: false))",
                false,
            ),
            (
                "(name: \"a\", environments: {\"dev\": (tls: (insecure: true))})",
                true,
            ),
            ("(name: \"a\", tls: Some((insecure: Some(true))))", true),
            // A request path that merely mentions it is not the setting.
            (
                "(name: \"a\", users: [(tasks: [(requests: [(path: \"/insecure: true\")])])])",
                false,
            ),
            ("not ron at all {", false),
            ("", false),
        ];
        for (profile, want) in rows {
            assert_eq!(tls_verification_off(profile), want, "{profile}");
        }
    }
}
