//! Sharded runs: one test spread over several engines ("shards"), each running its deterministic
//! share and writing its own run directory, merged later by the analyzer.
//!
//! Nothing here talks to the other shards. Every shard computes the same things from the same inputs:
//! the deal of users, arrivals and rows ([`crate::schedule::Seat`], applied by
//! [`crate::plan::Plan::resolve`]), the run name and the run id derived from it ([`run_id_of`]), the
//! directory layout ([`Shard::dir_name`]) and the start instant (`--start-at`, an absolute instant that
//! every shard is given). Which shard this is comes from `--shard I/N`, or from Kubernetes'
//! `JOB_COMPLETION_INDEX` with `--shards N` or `STAMPEDE_SHARDS` ([`resolve`]).
//!
//! ```text
//! <out>/<run-name>/shard-0/manifest.json, core-0.log, ...
//! <out>/<run-name>/shard-1/...
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use formats::RunId;

use crate::error::Error;
use crate::plan::PlanError;

/// The process environment variable Kubernetes sets to a pod's index in an Indexed Job.
pub const ENV_INDEX: &str = "JOB_COMPLETION_INDEX";
/// The process environment variable that gives the shard count (like `--shards`).
pub const ENV_SHARDS: &str = "STAMPEDE_SHARDS";
/// The most shards a test may have.
pub const MAX_SHARDS: u32 = 10_000;
/// How far ahead `--start-at` may be: a waiting shard holds its machine, and an instant a year ahead is
/// a typo, not a plan.
pub const MAX_START_AHEAD: Duration = Duration::from_secs(24 * 3600);
/// The longest `--run-id`.
const MAX_RUN_ID: usize = 100;

/// One shard of a test: this engine runs share `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// From 0.
    pub index: u32,
    /// At least 1.
    pub count: u32,
}

impl Shard {
    /// The shard's directory under the run's directory: `shard-<index>`, the index zero-padded to the
    /// width of `count - 1` so that directory listings sort in shard order (`shard-03` of 12).
    pub fn dir_name(self) -> String {
        let width = (self.count.max(1) - 1).to_string().len();
        format!("shard-{:0width$}", self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`: shard `I` (from 0) of `N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| {
            format!("expected I/N (this shard's index from 0, then the shard count), e.g. 0/4; got {s:?}")
        })?;
        let number = |text: &str, what: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what} {text:?} is not a whole number; write I/N, e.g. 0/4"))
        };
        let (index, count) = (number(i, "the index")?, number(n, "the count")?);
        check(Shard { index, count }).map_err(|e| e.to_string())
    }
}

/// Why a shard's identity is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ShardError {
    #[error("the shard count must be at least 1 (a test run by one engine is 0/1)")]
    NoShards,
    #[error("{0} shards is more than this engine supports ({MAX_SHARDS})")]
    TooMany(u32),
    #[error(
        "shard {index} of {count} does not exist: shards are numbered from 0 to {last}",
        last = count - 1
    )]
    Index { index: u32, count: u32 },
}

fn check(shard: Shard) -> Result<Shard, ShardError> {
    match shard {
        Shard { count: 0, .. } => Err(ShardError::NoShards),
        Shard { count, .. } if count > MAX_SHARDS => Err(ShardError::TooMany(count)),
        Shard { index, count } if index >= count => Err(ShardError::Index { index, count }),
        ok => Ok(ok),
    }
}

fn err(field: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        file: None,
        position: None,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Which shard this engine is, from `--shard I/N`, `--shards N`, `JOB_COMPLETION_INDEX` and
/// `STAMPEDE_SHARDS`; `None` when the test is not sharded.
///
/// Every source that is given must agree with the others: two pods that both think they are shard 0
/// would run one share twice and another not at all, so a conflict is an error, never a precedence.
/// `JOB_COMPLETION_INDEX` without a shard count is an error too: every pod of an Indexed Job would
/// otherwise run the whole test.
pub fn resolve(
    shard: Option<Shard>,
    shards: Option<u32>,
    vars: &BTreeMap<String, String>,
) -> Result<Option<Shard>, PlanError> {
    let env = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let env_index = env(ENV_INDEX)
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                err(
                    ENV_INDEX,
                    format!("{v:?} is not a shard index (a whole number from 0)"),
                )
            })
        })
        .transpose()?;
    let env_count = env(ENV_SHARDS)
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                err(
                    ENV_SHARDS,
                    format!("{v:?} is not a shard count (a whole number from 1)"),
                )
            })
        })
        .transpose()?;

    let mut counts: Vec<(String, u32)> = Vec::new();
    if let Some(s) = shard {
        counts.push((format!("--shard {s}"), s.count));
    }
    if let Some(n) = shards {
        counts.push((format!("--shards {n}"), n));
    }
    if let Some(n) = env_count {
        counts.push((format!("{ENV_SHARDS}={n}"), n));
    }
    if let Some(((a, n), (b, m))) = counts
        .iter()
        .find_map(|first| counts.iter().find(|o| o.1 != first.1).map(|o| (first, o)))
    {
        return Err(err(
            counts[0].0.split([' ', '=']).next().unwrap_or("--shards"),
            format!(
                "{a} and {b} disagree on the shard count ({n} and {m}): every shard of a test must be given the same count; give it once"
            ),
        ));
    }
    let Some((count_source, count)) = counts.first().cloned() else {
        if let Some(i) = env_index {
            return Err(err(
                ENV_INDEX,
                format!(
                    "{ENV_INDEX}={i} is set (a Kubernetes Indexed Job) but no shard count is: every pod would run the whole test; add --shards N (or set {ENV_SHARDS}=N) with N the Job's completions, or unset {ENV_INDEX} to run the whole test here"
                ),
            ));
        }
        return Ok(None);
    };
    let count_field = count_source
        .split(['=', ' '])
        .next()
        .unwrap_or("--shards")
        .to_owned();
    let index = match (shard.map(|s| s.index), env_index) {
        (Some(i), Some(j)) if i != j => {
            return Err(err(
                "--shard",
                format!(
                    "--shard {i}/{count} and {ENV_INDEX}={j} disagree on this shard's index: give one of them (in an Indexed Job, drop --shard and pass --shards {count})"
                ),
            ));
        }
        (Some(i), _) | (None, Some(i)) => i,
        (None, None) => {
            return Err(err(
                &count_field,
                format!(
                    "{count_source} says how many shards there are, but not which one this is: give --shard I/{count}, or run it as a Kubernetes Indexed Job (which sets {ENV_INDEX})"
                ),
            ));
        }
    };
    let index_field = if shard.is_some() {
        "--shard"
    } else {
        ENV_INDEX
    };
    check(Shard { index, count })
        .map(Some)
        .map_err(|e| match e {
            ShardError::Index { .. } if index_field == ENV_INDEX => err(
                ENV_INDEX,
                format!("{e}; the Job's completions must equal the shard count ({count_source})"),
            ),
            ShardError::Index { .. } => err(index_field, e.to_string()),
            ShardError::NoShards | ShardError::TooMany(_) => err(&count_field, e.to_string()),
        })
}

/// The run's start instant (`--start-at`): its time zero on the wall clock, shared by every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt {
    /// Nanoseconds since the Unix epoch.
    pub unix_ns: i64,
    /// Whether it was given relative to this machine's clock (`+30s`).
    pub relative: bool,
}

/// Parses `--start-at`: an RFC 3339 instant (`2026-12-05T14:00:00Z`, `2026-12-05T15:00:00.250+01:00`)
/// or an offset from `now_ns` (`+30s`, `+2m`). An instant more than [`MAX_START_AHEAD`] ahead is an
/// error; one in the past is not refused here but by the runner, as a start it cannot make.
pub fn parse_start_at(text: &str, now_ns: i64) -> Result<StartAt, PlanError> {
    let text = text.trim();
    let start = if let Some(offset) = text.strip_prefix('+') {
        let d = crate::profile::parse_duration(offset).map_err(|e| {
            err(
                "--start-at",
                format!("{text:?}: {e}; write an offset from now such as +30s, or an instant such as 2026-12-05T14:00:00Z"),
            )
        })?;
        StartAt {
            unix_ns: now_ns.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            relative: true,
        }
    } else {
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                err(
                    "--start-at",
                    format!(
                        "{text:?} is not an instant ({e}): write RFC 3339 with a time zone, e.g. 2026-12-05T14:00:00Z, or an offset from now such as +30s"
                    ),
                )
            })?;
        StartAt {
            unix_ns: i64::try_from(at.unix_timestamp_nanos())
                .map_err(|_| err("--start-at", format!("{text:?} is out of range")))?,
            relative: false,
        }
    };
    let ahead = start.unix_ns.saturating_sub(now_ns);
    if ahead > i64::try_from(MAX_START_AHEAD.as_nanos()).unwrap_or(i64::MAX) {
        return Err(err(
            "--start-at",
            format!(
                "{text} is {} from now (by this machine's clock, {}); a shard waits at most {} for its start: check the date and the time zone",
                human(Duration::from_nanos(ahead as u64)),
                formats::run::format_utc(now_ns),
                human(MAX_START_AHEAD),
            ),
        ));
    }
    Ok(start)
}

/// A duration for messages: `350 ms`, `4.2 s`, `3 min 20 s`, `26 h`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Checks `--run-id`: it names a directory on every shard's machine, so it is a plain file name of
/// letters, digits, `.`, `_` and `-` (a Kubernetes Job name qualifies).
pub fn check_run_id(text: &str) -> Result<String, PlanError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_RUN_ID
        && !text.starts_with(['.', '-'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(err(
            "--run-id",
            format!(
                "{text:?} cannot name a run directory: use 1 to {MAX_RUN_ID} letters, digits, `.`, `_` and `-`, not starting with `.` or `-` (e.g. checkout-2026-12-05)"
            ),
        ))
    }
}

/// The run id of the run named `run_name`: the first 16 bytes of SHA-1 over a fixed prefix and the
/// name, so that every shard derives the same id without talking to the others.
pub fn run_id_of(run_name: &str) -> RunId {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(b"stampede run id\0");
    sha.update(run_name.as_bytes());
    let digest = sha.digest().bytes();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    RunId(id)
}

/// Creates `<out>/<run_name>/<shard dir>` for this shard, refusing one that exists: a second run with
/// the same name must not mix its logs into another's, and two engines given the same shard must not
/// both run it.
pub(crate) fn create_shard_dir(out: &Path, run_name: &str, shard: Shard) -> Result<PathBuf, Error> {
    let run_dir = out.join(run_name);
    std::fs::create_dir_all(&run_dir).map_err(|source| Error::OutDir {
        path: out.to_owned(),
        source,
    })?;
    if run_dir.join(formats::manifest::MANIFEST_FILE).exists() {
        return Err(Error::RunExists {
            path: run_dir,
            what: "a run of one engine (it has a manifest.json), not a sharded run".into(),
        });
    }
    create_new_dir(
        &run_dir.join(shard.dir_name()),
        &format!("shard {shard} of the run {run_name:?} has already run here (or is running)"),
    )
}

/// Creates `<out>/<run_name>` for a run of one engine given `--run-id`, refusing one that exists.
pub(crate) fn create_named_dir(out: &Path, run_name: &str) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(out).map_err(|source| Error::OutDir {
        path: out.to_owned(),
        source,
    })?;
    create_new_dir(
        &out.join(run_name),
        &format!("a run named {run_name:?} has already run here (or is running)"),
    )
}

fn create_new_dir(path: &Path, what: &str) -> Result<PathBuf, Error> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(path.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::RunExists {
            path: path.to_owned(),
            what: what.to_owned(),
        }),
        Err(source) => Err(Error::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn shard_flags_parse_with_the_fix_in_the_error() {
        assert_eq!("3/8".parse(), Ok(Shard { index: 3, count: 8 }));
        assert_eq!("0/1".parse(), Ok(Shard { index: 0, count: 1 }));
        let rows: &[(&str, &str)] = &[
            ("9/8", "shards are numbered from 0 to 7"),
            ("8/8", "shards are numbered from 0 to 7"),
            ("0/0", "at least 1"),
            ("3", "expected I/N"),
            ("a/4", "the index \"a\" is not a whole number"),
            ("1/-4", "the count \"-4\""),
            ("0/20000", "more than this engine supports"),
        ];
        for (text, fragment) in rows {
            let e = text.parse::<Shard>().unwrap_err();
            assert!(e.contains(fragment), "{text}: {e}");
        }
    }

    #[test]
    fn shard_directories_sort_in_shard_order() {
        let name = |index, count| Shard { index, count }.dir_name();
        assert_eq!(name(0, 1), "shard-0");
        assert_eq!(name(7, 10), "shard-7");
        assert_eq!(name(3, 11), "shard-03");
        assert_eq!(name(10, 11), "shard-10");
        assert_eq!(name(42, 101), "shard-042");
        assert_eq!(name(99, 100), "shard-99");
    }

    /// Rows: (--shard, --shards, environment, Ok(shard) or the error's field and a fragment).
    #[test]
    fn shard_sources_agree_or_fail_naming_both() {
        let s = |index, count| Some(Shard { index, count });
        type Row<'a> = (
            Option<Shard>,
            Option<u32>,
            &'a [(&'a str, &'a str)],
            Result<Option<Shard>, (&'a str, &'a str)>,
        );
        #[rustfmt::skip]
        let rows: &[Row<'_>] = &[
            // Not sharded.
            (None, None, &[], Ok(None)),
            (None, None, &[("JOB_COMPLETION_INDEX", "")], Ok(None)),
            // Each way of saying it.
            (s(1, 4), None, &[], Ok(s(1, 4))),
            (None, Some(4), &[("JOB_COMPLETION_INDEX", "2")], Ok(s(2, 4))),
            (None, None, &[("JOB_COMPLETION_INDEX", "3"), ("STAMPEDE_SHARDS", "4")], Ok(s(3, 4))),
            // Agreeing sources are fine.
            (s(2, 4), Some(4), &[("JOB_COMPLETION_INDEX", "2"), ("STAMPEDE_SHARDS", "4")], Ok(s(2, 4))),
            // Conflicts.
            (s(1, 4), None, &[("JOB_COMPLETION_INDEX", "2")], Err(("--shard", "disagree on this shard's index"))),
            (s(1, 4), Some(3), &[], Err(("--shard", "--shard 1/4 and --shards 3 disagree"))),
            (None, Some(4), &[("STAMPEDE_SHARDS", "5"), ("JOB_COMPLETION_INDEX", "0")], Err(("--shards", "STAMPEDE_SHARDS=5"))),
            // Half the information.
            (None, Some(4), &[], Err(("--shards", "not which one this is: give --shard I/4"))),
            (None, None, &[("STAMPEDE_SHARDS", "4")], Err(("STAMPEDE_SHARDS", "JOB_COMPLETION_INDEX"))),
            (None, None, &[("JOB_COMPLETION_INDEX", "1")], Err(("JOB_COMPLETION_INDEX", "every pod would run the whole test"))),
            // Out of range, or not numbers.
            (None, Some(4), &[("JOB_COMPLETION_INDEX", "4")], Err(("JOB_COMPLETION_INDEX", "completions must equal the shard count"))),
            (None, Some(0), &[("JOB_COMPLETION_INDEX", "0")], Err(("--shards", "at least 1"))),
            (None, Some(4), &[("JOB_COMPLETION_INDEX", "x")], Err(("JOB_COMPLETION_INDEX", "not a shard index"))),
            (None, None, &[("STAMPEDE_SHARDS", "-1"), ("JOB_COMPLETION_INDEX", "0")], Err(("STAMPEDE_SHARDS", "not a shard count"))),
        ];
        for (i, (shard, shards, env, want)) in rows.iter().enumerate() {
            let got = resolve(*shard, *shards, &vars(env));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "row {i}"),
                (Err(e), Err((field, fragment))) => {
                    assert_eq!(e.field, *field, "row {i}: {e}");
                    assert!(e.message.contains(fragment), "row {i}: {e}");
                }
                (got, want) => panic!("row {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn start_instants_are_absolute_or_offsets_from_now() {
        let now = 1_796_396_000_000_000_000; // 2026-12-04T14:53:20Z
        let at = parse_start_at("2026-12-04T14:54:00Z", now).unwrap();
        assert_eq!(at.unix_ns, now + 40_000_000_000);
        assert!(!at.relative);
        let at = parse_start_at("2026-12-04T15:54:00.25+01:00", now).unwrap();
        assert_eq!(at.unix_ns, now + 40_250_000_000);
        let at = parse_start_at("+30s", now).unwrap();
        assert_eq!((at.unix_ns, at.relative), (now + 30_000_000_000, true));
        // In the past parses: the runner refuses it as a start it cannot make (exit 3).
        assert!(parse_start_at("2026-12-04T14:00:00Z", now).is_ok());
        for (text, fragment) in [
            ("2026-12-04 14:54", "is not an instant"),
            ("2026-12-04T14:54:00", "is not an instant"),
            ("tomorrow", "e.g. 2026-12-05T14:00:00Z"),
            ("+30", "+30s"),
            ("+", "+30s"),
            ("2027-12-04T14:54:00Z", "check the date and the time zone"),
            ("+25h", "at most 24.0 h"),
        ] {
            let e = parse_start_at(text, now).unwrap_err();
            assert_eq!(e.field, "--start-at");
            assert!(e.message.contains(fragment), "{text}: {e}");
        }
    }

    #[test]
    fn run_ids_name_directories_and_hash_to_the_same_id_everywhere() {
        for ok in ["checkout-7", "a", "Run_2026.12.05"] {
            assert_eq!(check_run_id(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "with space",
            &"x".repeat(101),
        ] {
            let e = check_run_id(bad).unwrap_err();
            assert_eq!(e.field, "--run-id");
        }
        assert_eq!(run_id_of("checkout-7"), run_id_of("checkout-7"));
        assert_ne!(run_id_of("checkout-7"), run_id_of("checkout-8"));
        // A fixed function (SHA-1 of a prefix and the name), so that engines of different versions
        // and other tools agree on it: python3 -c "import hashlib; print(hashlib.sha1(b'stampede run
        // id\0checkout-7').hexdigest()[:32])".
        assert_eq!(
            run_id_of("checkout-7").to_string(),
            "3b84c22f1ef1a2753cdfaa68776fa75a"
        );
    }

    #[test]
    fn a_shard_directory_is_never_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let shard = Shard { index: 1, count: 3 };
        let dir = create_shard_dir(tmp.path(), "r", shard).unwrap();
        assert_eq!(dir, tmp.path().join("r").join("shard-1"));
        // The other shards of the run may come.
        create_shard_dir(tmp.path(), "r", Shard { index: 0, count: 3 }).unwrap();
        let e = create_shard_dir(tmp.path(), "r", shard).unwrap_err();
        assert!(
            e.to_string()
                .contains("shard 1/3 of the run \"r\" has already run here"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        // A one-engine run's directory does not take shards.
        create_named_dir(tmp.path(), "single").unwrap();
        std::fs::write(tmp.path().join("single/manifest.json"), "{}").unwrap();
        let e = create_shard_dir(tmp.path(), "single", shard).unwrap_err();
        assert!(e.to_string().contains("not a sharded run"), "{e}");
        let e = create_named_dir(tmp.path(), "single").unwrap_err();
        assert!(e.to_string().contains("already run"), "{e}");
    }
}
