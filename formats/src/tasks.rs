//! The task table (v1.2, block kind 8): which user kind and task a sample's task id stands for.
//!
//! The engine numbers the top-level tasks of every user kind, and each kind's `on_start` and `on_stop`
//! lists, from 1; a sample's `task` column (in the sample-extras block) holds the number of the task
//! it was made for, 0 when it belongs to none (v1.0 and v1.1 logs read as 0 throughout). The table
//! says what each number means, so a log describes itself: a report can show per user kind and per
//! task figures, with the weights and tags the profile gave them, without the profile.
//!
//! ```text
//! count  varint
//! count × (length varint, entry)
//!
//! entry:
//!   id           varint    1..=65535
//!   role         u8        0 task, 1 on_start, 2 on_stop (other values: a later minor's roles)
//!   kind         varint    the user kind's index in the profile, from 0
//!   kind_weight  varint    the user kind's weight
//!   task_weight  varint    the task's weight among its kind's tasks (0 for on_start and on_stop)
//!   kind name    (length varint, UTF-8)
//!   task name    (length varint, UTF-8)
//!   tags         count varint, count × (length varint, UTF-8)
//! ```
//!
//! Every entry is prefixed with its length so that a later minor version can append fields to an
//! entry: a reader decodes the fields it knows and skips the rest of the entry.

use std::fmt;

use crate::error::PayloadError;
use crate::tables::{self, MAX_STRING_LEN};
use crate::varint::{self, Cursor};

/// The largest task id the format accepts (ids are dense, so this bounds decoder memory).
pub const MAX_TASK_ID: u32 = 65_535;

/// The most tags one entry may carry.
pub const MAX_TAGS: usize = 256;

/// What part of a user kind's life a task-table entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum TaskRole {
    /// A top-level task: one iteration runs one of them.
    #[default]
    Task,
    /// The requests a user makes once when it starts.
    OnStart,
    /// The requests a user makes once when it stops.
    OnStop,
    /// A role from a newer writer, kept as its code.
    Unknown(u8),
}

impl TaskRole {
    /// The stored byte.
    pub fn code(self) -> u8 {
        match self {
            TaskRole::Task => 0,
            TaskRole::OnStart => 1,
            TaskRole::OnStop => 2,
            TaskRole::Unknown(c) => c,
        }
    }

    /// The role for a stored byte.
    pub fn from_code(code: u8) -> TaskRole {
        match code {
            0 => TaskRole::Task,
            1 => TaskRole::OnStart,
            2 => TaskRole::OnStop,
            c => TaskRole::Unknown(c),
        }
    }

    /// A short, stable, lower-case name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskRole::Task => "task",
            TaskRole::OnStart => "on_start",
            TaskRole::OnStop => "on_stop",
            TaskRole::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for TaskRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the task table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInfo {
    /// The id samples carry in their `task` column, from 1.
    pub id: u32,
    /// A task, or a user kind's `on_start` or `on_stop` requests.
    pub role: TaskRole,
    /// The user kind's index in the profile (after tag selection), from 0.
    pub kind: u32,
    /// The user kind's weight.
    pub kind_weight: u32,
    /// The task's weight among its kind's tasks; 0 for `on_start` and `on_stop`.
    pub task_weight: u32,
    /// The user kind's name (the engine names unnamed kinds `user-<index>`).
    pub kind_name: String,
    /// The task's name (the engine names unnamed tasks `task-<index>`, and uses `on_start` and
    /// `on_stop` for those lists).
    pub task_name: String,
    /// The task's tags: its own, its user kind's and those of the requests it holds, sorted.
    pub tags: Vec<String>,
}

/// Appends a task-table payload with `entries` to `out`. Strings longer than the format's limit are
/// cut at a character boundary.
pub(crate) fn encode(entries: &[TaskInfo], out: &mut Vec<u8>) {
    varint::put(out, entries.len() as u64);
    let mut entry = Vec::new();
    for t in entries {
        entry.clear();
        varint::put(&mut entry, u64::from(t.id));
        entry.push(t.role.code());
        varint::put(&mut entry, u64::from(t.kind));
        varint::put(&mut entry, u64::from(t.kind_weight));
        varint::put(&mut entry, u64::from(t.task_weight));
        put_str(&mut entry, &t.kind_name);
        put_str(&mut entry, &t.task_name);
        let tags = &t.tags[..t.tags.len().min(MAX_TAGS)];
        varint::put(&mut entry, tags.len() as u64);
        for tag in tags {
            put_str(&mut entry, tag);
        }
        varint::put(out, entry.len() as u64);
        out.extend_from_slice(&entry);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = tables::truncate(s, MAX_STRING_LEN);
    varint::put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_str(cur: &mut Cursor<'_>) -> Result<String, PayloadError> {
    let len = cur.length(MAX_STRING_LEN * 4)?;
    let text = std::str::from_utf8(cur.take(len)?).map_err(|_| PayloadError::Utf8)?;
    Ok(text.to_owned())
}

fn get_u32(cur: &mut Cursor<'_>) -> Result<u32, PayloadError> {
    Ok(cur.length(u32::MAX as usize)? as u32)
}

/// Decodes a task-table payload into `table`. A damaged payload adds nothing.
pub(crate) fn decode(payload: &[u8], table: &mut TaskTable) -> Result<(), PayloadError> {
    let mut cur = Cursor::new(payload);
    let count = cur.length(payload.len())?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = cur.length(cur.remaining())?;
        let mut e = Cursor::new(cur.take(len)?);
        let id = e.length(MAX_TASK_ID as usize)? as u32;
        if id == 0 {
            return Err(PayloadError::ValueOutOfRange { column: "task id" });
        }
        let role = TaskRole::from_code(e.byte()?);
        let kind = get_u32(&mut e)?;
        let kind_weight = get_u32(&mut e)?;
        let task_weight = get_u32(&mut e)?;
        let kind_name = get_str(&mut e)?;
        let task_name = get_str(&mut e)?;
        let n = e.length(MAX_TAGS)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            tags.push(get_str(&mut e)?);
        }
        // Fields a later minor version appended to the entry are skipped with the rest of it.
        entries.push(TaskInfo {
            id,
            role,
            kind,
            kind_weight,
            task_weight,
            kind_name,
            task_name,
            tags,
        });
    }
    if cur.remaining() != 0 {
        return Err(PayloadError::TrailingBytes {
            bytes: cur.remaining() as u64,
        });
    }
    for e in entries {
        table.insert(e);
    }
    Ok(())
}

/// The task table of a log, indexed by task id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskTable {
    entries: Vec<Option<TaskInfo>>,
}

impl TaskTable {
    /// The entry for `id`, if a task-table block defined it (never for 0, "no task").
    pub fn get(&self, id: u32) -> Option<&TaskInfo> {
        self.entries.get(id as usize)?.as_ref()
    }

    /// Every defined entry, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &TaskInfo> {
        self.entries.iter().flatten()
    }

    /// Whether no entry is defined (a v1.0 or v1.1 log, or a writer that recorded no tasks).
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }

    /// One more than the largest id defined, so a vector of this length can be indexed by any id.
    pub fn id_bound(&self) -> usize {
        self.entries.len()
    }

    /// Defines an entry (a later definition of the same id replaces the earlier one).
    pub fn insert(&mut self, entry: TaskInfo) {
        let i = entry.id as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, None);
        }
        self.entries[i] = Some(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, role: TaskRole, tags: &[&str]) -> TaskInfo {
        TaskInfo {
            id,
            role,
            kind: 1,
            kind_weight: 3,
            task_weight: if role == TaskRole::Task { 2 } else { 0 },
            kind_name: "shopper".into(),
            task_name: format!("t{id}"),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn entries_round_trip() {
        let entries = vec![
            entry(1, TaskRole::OnStart, &[]),
            entry(2, TaskRole::Task, &["browse", "smoke"]),
            entry(3, TaskRole::OnStop, &["x"]),
        ];
        let mut out = Vec::new();
        encode(&entries, &mut out);
        let mut table = TaskTable::default();
        decode(&out, &mut table).unwrap();
        assert_eq!(table.iter().cloned().collect::<Vec<_>>(), entries);
        assert_eq!(table.get(0), None);
        assert_eq!(table.get(2).unwrap().tags, ["browse", "smoke"]);
        assert_eq!(table.id_bound(), 4);
    }

    #[test]
    fn fields_a_later_version_appends_are_skipped() {
        let mut out = Vec::new();
        encode(&[entry(5, TaskRole::Task, &["a"])], &mut out);
        // Rewrite the one entry with two more bytes at its end and a longer length prefix.
        let mut cur = Cursor::new(&out);
        let count = cur.length(10).unwrap();
        let len = cur.length(1000).unwrap();
        let body = cur.take(len).unwrap().to_vec();
        let mut longer = Vec::new();
        varint::put(&mut longer, count as u64);
        varint::put(&mut longer, (len + 2) as u64);
        longer.extend_from_slice(&body);
        longer.extend_from_slice(&[7, 9]);
        let mut table = TaskTable::default();
        decode(&longer, &mut table).unwrap();
        assert_eq!(table.get(5), Some(&entry(5, TaskRole::Task, &["a"])));
    }

    #[test]
    fn a_damaged_payload_adds_nothing() {
        let mut out = Vec::new();
        encode(
            &[entry(1, TaskRole::Task, &[]), entry(2, TaskRole::Task, &[])],
            &mut out,
        );
        let mut table = TaskTable::default();
        assert!(decode(&out[..out.len() - 1], &mut table).is_err());
        assert!(table.is_empty());
        // Id 0 means "no task" and cannot be defined.
        let mut zero = Vec::new();
        encode(&[entry(0, TaskRole::Task, &[])], &mut zero);
        assert!(decode(&zero, &mut table).is_err());
    }

    #[test]
    fn unknown_roles_keep_their_code() {
        assert_eq!(TaskRole::from_code(9), TaskRole::Unknown(9));
        assert_eq!(TaskRole::from_code(9).code(), 9);
        for r in [TaskRole::Task, TaskRole::OnStart, TaskRole::OnStop] {
            assert_eq!(TaskRole::from_code(r.code()), r);
        }
    }
}
