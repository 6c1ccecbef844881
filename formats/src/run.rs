//! Run directories: naming, and reading a run's manifest and logs.
//!
//! ```text
//! runs/2026-11-24T15-04-05Z-checkout/
//!   manifest.json     see crate::manifest
//!   core-0.log        one sample log per engine thread
//!   core-1.log
//! ```
//!
//! The directory name starts with the UTC start time, so `runs/2026-11-*` selects runs by date.

use std::path::{Path, PathBuf};

use crate::error::{ReadError, ReadErrorKind};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::reader::{LogContents, read_log};

/// The file name of core `core`'s log.
pub fn log_file_name(core: u32) -> String {
    format!("core-{core}.log")
}

/// `2026-11-24T15-04-05Z-<name>`: the UTC start to the second, then the profile name with every
/// character other than letters, digits, `.`, `_` and `-` replaced by `-`.
pub fn run_dir_name(started_unix_ns: i64, profile_name: &str) -> String {
    let stamp = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(started_unix_ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]Z");
    let stamp = stamp
        .format(&format)
        .expect("a fixed format always formats");
    let name: String = profile_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        stamp
    } else {
        format!("{stamp}-{name}")
    }
}

/// Creates a new run directory under `parent` (made if missing), adding `-2`, `-3`, … to the name when
/// a run with the same second and name already exists.
pub fn create_run_dir(
    parent: &Path,
    started_unix_ns: i64,
    profile_name: &str,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    let base = run_dir_name(started_unix_ns, profile_name);
    for n in 1u32.. {
        let path = if n == 1 {
            parent.join(&base)
        } else {
            parent.join(format!("{base}-{n}"))
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("some suffix is free before u32 runs out")
}

/// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-24T15:04:05.123456789Z`.
pub fn format_utc(unix_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formats every representable instant")
}

/// A run directory and its manifest.
#[derive(Debug)]
pub struct Run {
    /// The directory.
    pub dir: PathBuf,
    /// The manifest, or why it could not be read (the logs may still be readable).
    pub manifest: Result<Manifest, ReadError>,
    /// The logs, by core, in core order.
    pub logs: Vec<(u32, PathBuf)>,
}

impl Run {
    /// Opens a run directory. A damaged manifest is not fatal (its error is kept in `manifest`); a
    /// directory with neither a manifest nor any `core-N.log` is not a run.
    pub fn open(dir: &Path) -> Result<Run, ReadError> {
        let err = |kind| ReadError {
            path: dir.to_owned(),
            kind,
        };
        let meta = std::fs::metadata(dir).map_err(|e| err(ReadErrorKind::Io(e)))?;
        if !meta.is_dir() {
            return Err(err(ReadErrorKind::NotARun));
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest_err = |kind| ReadError {
            path: manifest_path.clone(),
            kind,
        };
        let manifest = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => Manifest::from_json(&text)
                .map_err(|e| manifest_err(ReadErrorKind::Manifest(e.to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(manifest_err(ReadErrorKind::NotARun))
            }
            Err(e) => Err(manifest_err(ReadErrorKind::Io(e))),
        };
        let mut logs = match &manifest {
            Ok(m) => m.logs.iter().map(|l| (l.core, dir.join(&l.file))).collect(),
            Err(_) => Vec::new(),
        };
        if logs.is_empty() {
            logs = discover_logs(dir).map_err(|e| err(ReadErrorKind::Io(e)))?;
        }
        if manifest.is_err() && logs.is_empty() {
            return Err(err(ReadErrorKind::NotARun));
        }
        logs.sort();
        Ok(Run {
            dir: dir.to_owned(),
            manifest,
            logs,
        })
    }

    /// Reads every log of the run into memory, one result per log.
    pub fn read_logs(&self) -> Vec<(u32, Result<LogContents, ReadError>)> {
        self.logs
            .iter()
            .map(|(core, path)| (*core, read_log_file(path)))
            .collect()
    }
}

/// Reads one log file. Damage inside is listed in the contents; only an unusable file is an error.
pub fn read_log_file(path: &Path) -> Result<LogContents, ReadError> {
    let err = |kind| ReadError {
        path: path.to_owned(),
        kind,
    };
    let data = std::fs::read(path).map_err(|e| err(ReadErrorKind::Io(e)))?;
    read_log(&data).map_err(|e| err(ReadErrorKind::Decode(e)))
}

fn discover_logs(dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(core) = name
            .strip_prefix("core-")
            .and_then(|s| s.strip_suffix(".log"))
            && let Ok(core) = core.parse()
        {
            logs.push((core, entry.path()));
        }
    }
    Ok(logs)
}
