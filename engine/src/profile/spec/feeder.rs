//! Data feeders: the files whose rows templates read, and how rows are handed out.

use serde::{Deserialize, Serialize};

/// A data feeder.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Feeder")]
pub struct FeederSpec {
    /// The data file, relative to the profile: `.csv` (with a header row) or `.jsonl` (an object per
    /// line).
    pub file: String,
    /// The format, when the extension does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FeederFormat>,
    /// How rows are handed out.
    #[serde(default)]
    pub order: FeederOrder,
    /// What happens when rows run out; default `Stop` for `Unique`, `Recycle` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exhausted: Option<OnExhausted>,
}

/// Data file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FeederFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// How a feeder hands out rows (see `scenario::feeder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum FeederOrder {
    /// In file order, each row once per run (rows are dealt to cores in stripes); a new row for
    /// every iteration.
    #[default]
    Sequential,
    /// In file order, wrapping around; a new row for every iteration.
    Circular,
    /// A random row for every iteration.
    Random,
    /// One row per user for its whole life, never shared with another user on any core.
    Unique,
}

/// What happens when a feeder runs out of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum OnExhausted {
    /// The user stops (one that never got a row does not start).
    Stop,
    /// Start again from the first row.
    Recycle,
}
