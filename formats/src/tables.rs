//! Name and message tables: strings interned as they first appear, so samples carry small ids.
//!
//! ```text
//! count  varint
//! count × (id varint, length varint, UTF-8 bytes)
//! ```
//!
//! Each entry carries its id, so losing one table block to damage loses only its own entries. Names
//! count from 0; messages from 1 (0 in the message column means "no message").

use crate::error::PayloadError;
use crate::varint::{self, Cursor};

/// The longest name or message the writer stores; longer ones are cut at a character boundary.
pub const MAX_STRING_LEN: usize = 1024;

/// Appends a table payload with `entries` to `out`.
pub(crate) fn encode(entries: &[(u32, String)], out: &mut Vec<u8>) {
    varint::put(out, entries.len() as u64);
    for (id, text) in entries {
        varint::put(out, u64::from(*id));
        varint::put(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
}

/// Decodes a table payload, calling `add` for each entry; ids above `max_id` are rejected.
pub(crate) fn decode(
    payload: &[u8],
    max_id: u32,
    mut add: impl FnMut(u32, &str),
) -> Result<(), PayloadError> {
    let mut cur = Cursor::new(payload);
    let count = cur.length(payload.len())?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let id = cur.length(max_id as usize)? as u32;
        let len = cur.length(MAX_STRING_LEN * 4)?;
        let text = std::str::from_utf8(cur.take(len)?).map_err(|_| PayloadError::Utf8)?;
        entries.push((id, text));
    }
    if cur.remaining() != 0 {
        return Err(PayloadError::TrailingBytes {
            bytes: cur.remaining() as u64,
        });
    }
    for (id, text) in entries {
        add(id, text);
    }
    Ok(())
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The strings of one table, indexed by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    entries: Vec<Option<String>>,
}

impl Table {
    /// The string for `id`, if a table block defined it.
    pub fn get(&self, id: u32) -> Option<&str> {
        self.entries.get(id as usize)?.as_deref()
    }

    /// The string for `id`, or `#id` when no table block defined it (for example, it was damaged).
    pub fn display(&self, id: u32) -> String {
        self.get(id).map_or_else(|| format!("#{id}"), str::to_owned)
    }

    /// Every defined (id, string) pair in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.as_deref()?)))
    }

    /// One more than the largest id defined, so a vector of this length can be indexed by any id.
    pub fn id_bound(&self) -> usize {
        self.entries.len()
    }

    /// Defines `id` (a later definition of the same id replaces the earlier one).
    pub fn insert(&mut self, id: u32, text: &str) {
        let i = id as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, None);
        }
        self.entries[i] = Some(text.to_owned());
    }
}
