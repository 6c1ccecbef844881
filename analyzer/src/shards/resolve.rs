//! From the directories on the command line to runs: ordinary runs, and the shards of sharded runs
//! grouped by run id and checked for what would make a merge wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use formats::manifest::MANIFEST_FILE;
use formats::{LogHeader, Manifest};

use crate::error::{Error, Result};

/// One run to load.
#[derive(Debug, Clone)]
pub enum RunInput {
    /// An ordinary run directory (one engine), loaded as before sharding existed.
    Single(PathBuf),
    /// The shards of one sharded run.
    Sharded(ShardedInput),
}

impl RunInput {
    /// The directory reports are written to by default: the run directory, or the sharded run's
    /// directory (the shards' parent).
    pub fn dir(&self) -> &Path {
        match self {
            RunInput::Single(d) => d,
            RunInput::Sharded(s) => &s.dir,
        }
    }
}

/// The shards of one run, as found.
#[derive(Debug, Clone)]
pub struct ShardedInput {
    /// The run's directory: the directory holding the first shard.
    pub dir: PathBuf,
    /// Its name, the run's label in reports.
    pub label: String,
    /// The run id every shard carries (empty when no shard's manifest or log header was readable).
    pub run_id: String,
    /// How many shards the test had.
    pub count: u32,
    /// Each shard's share of the load, by index (empty when no manifest was readable).
    pub shares: Vec<f64>,
    /// The common start instant (`--start-at`), if the shards waited for one.
    pub start_at: Option<String>,
    /// The resolved profile every shard ran (empty when no manifest was readable).
    pub profile: String,
    /// The shard directories found, by index (those of unknown index last).
    pub shards: Vec<FoundShard>,
}

/// One shard directory and what its manifest (or, failing that, its first log's header) says.
#[derive(Debug, Clone)]
pub struct FoundShard {
    /// The directory.
    pub dir: PathBuf,
    /// The shard's index, from its manifest or else from the directory's name (`shard-03`).
    pub index: Option<u32>,
    /// The manifest, or why it could not be read.
    pub manifest: std::result::Result<Manifest, String>,
    /// The first readable log header, read only when the manifest is not readable (it carries the run
    /// id and the time zero).
    pub header: Option<LogHeader>,
    /// Whether the directory holds anything to read (a manifest or a log).
    pub is_run: bool,
}

impl FoundShard {
    fn run_id(&self) -> Option<String> {
        match &self.manifest {
            Ok(m) => Some(m.run_id.to_string()),
            Err(_) => self.header.map(|h| h.run_id.to_string()),
        }
    }
}

/// What one command-line path turned out to hold.
enum Item {
    Single(PathBuf),
    /// A shard, and the sharded run's directory it was found in when that directory was given.
    Shard(Box<FoundShard>, Option<PathBuf>),
}

/// The shard index in a directory name `shard-<digits>`.
pub(crate) fn index_from_name(dir: &Path) -> Option<u32> {
    dir.file_name()?
        .to_str()?
        .strip_prefix("shard-")?
        .parse()
        .ok()
}

/// The `shard-<I>` directories inside `dir`, by index.
pub(crate) fn shard_subdirs(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| index_from_name(&p).map(|i| (i, p)))
        .collect();
    out.sort();
    out
}

fn is_run_dir(dir: &Path) -> bool {
    if dir.join(MANIFEST_FILE).exists() {
        return true;
    }
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("core-") && n.ends_with(".log"))
        })
    })
}

/// Reads a directory's manifest and, when that fails, its first log's header.
fn peek(dir: &Path) -> FoundShard {
    let mut found = FoundShard {
        dir: dir.to_owned(),
        index: index_from_name(dir),
        manifest: Err(String::new()),
        header: None,
        is_run: false,
    };
    match formats::Run::open(dir) {
        Ok(run) => {
            found.is_run = true;
            match run.manifest {
                Ok(m) => {
                    if let Some(s) = &m.shard {
                        found.index = Some(s.index);
                    }
                    found.manifest = Ok(m);
                }
                Err(e) => {
                    found.manifest = Err(e.kind.to_string());
                    found.header = run.logs.iter().find_map(|(_, p)| read_header(p));
                }
            }
        }
        Err(e) => found.manifest = Err(e.kind.to_string()),
    }
    found
}

fn read_header(path: &Path) -> Option<LogHeader> {
    use std::io::Read;
    let mut buf = vec![0u8; formats::header::HEADER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut buf).ok()?;
    LogHeader::decode(&buf).ok().map(|(h, _)| h)
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_owned())
}

fn dir_name(p: &Path) -> String {
    canonical(p).file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Groups the directories given into runs, in command-line order (a sharded run where its first shard
/// was given).
///
/// A directory with a manifest or core logs is a run; a shard when its manifest has a `shard` field
/// (or, with an unreadable manifest, when it is named `shard-<I>` or was found inside a sharded run's
/// directory). A directory without either but with `shard-<I>` directories is a sharded run's
/// directory: its shards are those. Shards are merged by run id. Refused, naming the directories:
/// shards of different runs in one directory or among the shard directories given one by one, the
/// same shard twice, shards that disagree on the shard count, the shares or the profile, and a
/// shard index past the count.
pub fn resolve(paths: &[PathBuf]) -> Result<Vec<RunInput>> {
    let mut items = Vec::new();
    for path in paths {
        if !is_run_dir(path) {
            let subdirs = shard_subdirs(path);
            if !subdirs.is_empty() {
                for (_, sub) in subdirs {
                    items.push(Item::Shard(Box::new(peek(&sub)), Some(path.clone())));
                }
                continue;
            }
            items.push(Item::Single(path.clone()));
            continue;
        }
        let found = peek(path);
        let is_shard = match &found.manifest {
            Ok(m) => m.shard.is_some(),
            Err(_) => found.index.is_some(),
        };
        if is_shard {
            items.push(Item::Shard(Box::new(found), None));
        } else {
            items.push(Item::Single(path.clone()));
        }
    }
    refuse_strangers(&items)?;
    refuse_mixed_runs(&items)?;

    // Group by run id; a shard whose run id is unknown joins the one run of the directory it is in.
    let mut homes: BTreeMap<PathBuf, String> = BTreeMap::new();
    for item in &items {
        if let Item::Shard(s, parent) = item
            && let Some(id) = s.run_id()
        {
            homes.insert(home(s, parent.as_deref()), id);
        }
    }
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<(FoundShard, Option<PathBuf>)>> = BTreeMap::new();
    let mut out_slots: Vec<Result<PathBuf, String>> = Vec::new();
    for item in items {
        match item {
            Item::Single(p) => out_slots.push(Ok(p)),
            Item::Shard(s, parent) => {
                let key = s.run_id().unwrap_or_else(|| {
                    let h = home(&s, parent.as_deref());
                    homes
                        .get(&h)
                        .cloned()
                        .unwrap_or_else(|| format!("unknown run in {}", h.display()))
                });
                if !groups.contains_key(&key) {
                    order.push(key.clone());
                    out_slots.push(Err(key.clone()));
                }
                groups.entry(key).or_default().push((*s, parent));
            }
        }
    }
    let mut out = Vec::new();
    for slot in out_slots {
        match slot {
            Ok(p) => out.push(RunInput::Single(p)),
            Err(key) => {
                let shards = groups.remove(&key).expect("every key has its group");
                out.push(RunInput::Sharded(group(&key, shards)?));
            }
        }
    }
    Ok(out)
}

/// The directory a shard belongs to: the run directory it was found in, or its parent.
fn home(s: &FoundShard, parent: Option<&Path>) -> PathBuf {
    canonical(parent.unwrap_or_else(|| s.dir.parent().unwrap_or(Path::new("."))))
}

/// A directory named like a shard inside a sharded run's directory whose readable manifest is not a
/// shard's cannot be merged and must not be silently dropped.
fn refuse_strangers(items: &[Item]) -> Result<()> {
    for item in items {
        if let Item::Shard(s, Some(parent)) = item
            && let Ok(m) = &s.manifest
            && m.shard.is_none()
        {
            return Err(Error::Shards(format!(
                "{} is in the sharded run directory {} but its manifest says it is a run of one engine \
                 (no `shard` field), so it cannot be merged with the shards; move it out, or report it on its own",
                s.dir.display(),
                parent.display()
            )));
        }
    }
    Ok(())
}

/// Refuses shards of different runs in one run directory, or among the shard directories given one
/// by one: both mean directories were mixed up, and merging them would describe no real test.
fn refuse_mixed_runs(items: &[Item]) -> Result<()> {
    // Key: the run directory given (or "" for shard directories given one by one).
    let mut by_place: BTreeMap<Option<PathBuf>, BTreeMap<String, Vec<&Path>>> = BTreeMap::new();
    for item in items {
        if let Item::Shard(s, parent) = item
            && let Some(id) = s.run_id()
        {
            by_place
                .entry(parent.clone())
                .or_default()
                .entry(id)
                .or_default()
                .push(&s.dir);
        }
    }
    for (place, runs) in by_place {
        if runs.len() < 2 {
            continue;
        }
        let list = runs
            .iter()
            .map(|(id, dirs)| {
                format!(
                    "run {id} in {}",
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::Shards(match place {
            Some(dir) => format!(
                "{} holds shards of {} different runs, which cannot be merged into one: {list}. Each test \
                 writes its shards into a directory of its own: move the other run's shards out",
                dir.display(),
                runs.len()
            ),
            None => format!(
                "the shard directories given belong to {} different runs, which cannot be merged into one: \
                 {list}. Give the shards of one run, or give each run's directory to compare the runs",
                runs.len()
            ),
        }));
    }
    Ok(())
}

/// Builds one sharded run from its shards, refusing what cannot be merged.
fn group(key: &str, mut shards: Vec<(FoundShard, Option<PathBuf>)>) -> Result<ShardedInput> {
    shards.sort_by_key(|(s, _)| (s.index.is_none(), s.index));
    let first = &shards[0];
    let dir = first
        .1
        .clone()
        .or_else(|| first.0.dir.parent().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("."));
    let run_id = shards
        .iter()
        .find_map(|(s, _)| s.run_id())
        .unwrap_or_default();
    let run = if run_id.is_empty() {
        key.to_owned()
    } else {
        format!("run {run_id}")
    };
    // The same directory twice, or two directories claiming one index.
    let mut dirs: std::collections::HashMap<PathBuf, &Path> = std::collections::HashMap::new();
    let mut indices: std::collections::HashMap<u32, &Path> = std::collections::HashMap::new();
    for (s, _) in &shards {
        if dirs.insert(canonical(&s.dir), &s.dir).is_some() {
            return Err(Error::Shards(format!(
                "{} is given twice (directly, or also through its run directory); give each shard once",
                s.dir.display()
            )));
        }
        if let Some(i) = s.index
            && let Some(first) = indices.insert(i, &s.dir)
        {
            return Err(Error::Shards(format!(
                "shard {i} of {run} is given twice: {} and {}. A shard's samples would count twice; \
                 give one of them (a shard retried by its job leaves two directories: keep the complete one)",
                first.display(),
                s.dir.display()
            )));
        }
    }
    let with_info: Vec<(&FoundShard, &formats::ShardInfo, &Manifest)> = shards
        .iter()
        .filter_map(|(s, _)| {
            let m = s.manifest.as_ref().ok()?;
            Some((s, m.shard.as_ref()?, m))
        })
        .collect();
    if let Some((s0, info0, m0)) = with_info.first() {
        for (s, info, m) in &with_info[1..] {
            if info.count != info0.count {
                return Err(Error::Shards(format!(
                    "the shards of {run} disagree on how many shards the test has: {} says {}, {} says {}; \
                     they were started with different --shard counts and cannot be merged",
                    s0.dir.display(),
                    info0.count,
                    s.dir.display(),
                    info.count
                )));
            }
            let same_shares = info.shares.len() == info0.shares.len()
                && info
                    .shares
                    .iter()
                    .zip(&info0.shares)
                    .all(|(a, b)| (a - b).abs() < 1e-9);
            if !same_shares {
                return Err(Error::Shards(format!(
                    "the shards of {run} disagree on each shard's share of the load: {} says {:?}, {} says {:?}; \
                     they split different tests and cannot be merged",
                    s0.dir.display(),
                    info0.shares,
                    s.dir.display(),
                    info.shares
                )));
            }
            if m.profile != m0.profile {
                return Err(Error::Shards(profile_difference(
                    &run,
                    &s0.dir,
                    &m0.profile,
                    &s.dir,
                    &m.profile,
                )));
            }
        }
    }
    let (mut count, shares, start_at, profile) = match with_info.first() {
        Some((_, info, m)) => (
            info.count,
            info.shares.clone(),
            info.start_at.clone(),
            m.profile.clone(),
        ),
        None => (0, Vec::new(), None, String::new()),
    };
    if with_info.is_empty() {
        // No shard's manifest is readable: the count is at least what the directory names say.
        count = shards
            .iter()
            .filter_map(|(s, _)| s.index)
            .max()
            .map_or(0, |i| i + 1);
    }
    for (s, _) in &shards {
        if let Some(i) = s.index
            && i >= count
        {
            return Err(Error::Shards(format!(
                "{} is shard {i}, but {run} has {count} shards (0 to {}); it belongs to another test",
                s.dir.display(),
                count.saturating_sub(1)
            )));
        }
    }
    Ok(ShardedInput {
        label: dir_name(&dir),
        dir,
        run_id,
        count,
        shares,
        start_at,
        profile,
        shards: shards.into_iter().map(|(s, _)| s).collect(),
    })
}

/// The refusal for two different profiles: the first line where they differ, from both.
fn profile_difference(run: &str, a_dir: &Path, a: &str, b_dir: &Path, b: &str) -> String {
    let (a_lines, b_lines): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let line = (0..a_lines.len().max(b_lines.len()))
        .find(|&i| a_lines.get(i) != b_lines.get(i))
        .unwrap_or(0);
    let show = |lines: &[&str]| {
        lines.get(line).map_or_else(
            || "(the profile ends before this line)".to_owned(),
            |l| format!("{:?}", l.trim()),
        )
    };
    format!(
        "the shards of {run} ran different profiles, so they are not one test: they first differ at line {} \
         of the profile: {} has {}, {} has {}. Run every shard with the same profile, flags and variables",
        line + 1,
        a_dir.display(),
        show(&a_lines),
        b_dir.display(),
        show(&b_lines)
    )
}

/// The resolved profile of a run directory (a sharded run's is its shards' common one); empty when no
/// manifest is readable.
pub fn profile_of(dir: &Path) -> Result<String> {
    let inputs = resolve(&[dir.to_owned()])?;
    Ok(match inputs.first() {
        Some(RunInput::Sharded(s)) => s.profile.clone(),
        _ => match formats::Run::open(dir) {
            Ok(run) => run.manifest.map(|m| m.profile).unwrap_or_default(),
            Err(e) => {
                return Err(Error::NothingReadable {
                    paths: vec![dir.display().to_string()],
                    reasons: vec![crate::load::open_failure(dir, &e)],
                });
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_difference_names_the_first_differing_line_of_each() {
        let text = profile_difference(
            "run 01",
            Path::new("r/shard-00"),
            "(\n  name: \"a\",\n  rate: 100,\n)",
            Path::new("r/shard-01"),
            "(\n  name: \"a\",\n  rate: 200,\n)",
        );
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("r/shard-00 has \"rate: 100,\""), "{text}");
        assert!(text.contains("r/shard-01 has \"rate: 200,\""), "{text}");
        let shorter = profile_difference("run 01", Path::new("a"), "x\ny", Path::new("b"), "x");
        assert!(shorter.contains("line 2"), "{shorter}");
        assert!(shorter.contains("ends before"), "{shorter}");
    }

    #[test]
    fn shard_indices_come_from_directory_names() {
        assert_eq!(index_from_name(Path::new("runs/x/shard-03")), Some(3));
        assert_eq!(index_from_name(Path::new("runs/x/shard-12")), Some(12));
        assert_eq!(index_from_name(Path::new("runs/x/shard-")), None);
        assert_eq!(index_from_name(Path::new("runs/x/core-0.log")), None);
    }
}
