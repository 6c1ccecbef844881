//! The failure breakdown: by kind, by status code, by (name, kind, status, message), and per second
//! by kind.

use polars::prelude::*;

use crate::error::Result;
use crate::load::LoadedRun;

/// One distinct failure message and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureMessage {
    /// The request name.
    pub name: String,
    /// The failure kind (`timeout`, `status`, …).
    pub kind: String,
    /// The status code, 0 when there was no response.
    pub status: u16,
    /// The message as the engine recorded it: text from the target, never markup.
    pub message: String,
    /// Occurrences.
    pub count: u64,
}

/// Every failure count of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    /// (kind, count), most frequent first.
    pub by_kind: Vec<(String, u64)>,
    /// (status code, count), most frequent first; 0 is "no response".
    pub by_status: Vec<(u16, u64)>,
    /// Distinct messages, most frequent first.
    pub messages: Vec<FailureMessage>,
    /// Failures per second by kind, aligned with the time series' seconds: (kind, counts).
    pub over_time: Vec<(String, Vec<u64>)>,
}

fn u32s(df: &DataFrame, name: &str) -> Result<Vec<u32>> {
    Ok(df
        .column(name)?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

fn counts(df: &DataFrame) -> Result<Vec<u64>> {
    let c = df.column("count")?.cast(&DataType::UInt64)?;
    Ok(c.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

fn count_by(df: &DataFrame, keys: &[&str]) -> Result<DataFrame> {
    let by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let mut sort_by: Vec<PlSmallStr> = vec!["count".into()];
    sort_by.extend(keys.iter().map(|k| PlSmallStr::from(*k)));
    let mut descending = vec![true];
    descending.extend(keys.iter().map(|_| false));
    Ok(df
        .clone()
        .lazy()
        .group_by(by)
        .agg([len().alias("count")])
        .sort(
            sort_by,
            SortMultipleOptions::default().with_order_descending_multi(descending),
        )
        .collect()?)
}

/// Computes the breakdown; `seconds` are the time series' seconds, to align `over_time` with them.
pub fn failures(run: &LoadedRun, seconds: &[u32]) -> Result<Failures> {
    let f = &run.failures;
    let kind_name =
        |code: u32| formats::Outcome::name_of_code(u8::try_from(code).unwrap_or(u8::MAX));
    let by_kind_df = count_by(f, &["kind"])?;
    let kinds = u32s(&by_kind_df, "kind")?;
    let by_kind = kinds
        .iter()
        .map(|&k| kind_name(k))
        .zip(counts(&by_kind_df)?)
        .collect();

    let by_status_df = count_by(f, &["status"])?;
    let by_status = u32s(&by_status_df, "status")?
        .into_iter()
        .map(|s| s as u16)
        .zip(counts(&by_status_df)?)
        .collect();

    let m = count_by(f, &["name", "kind", "status", "message"])?;
    let (names, mkinds, statuses, messages) = (
        u32s(&m, "name")?,
        u32s(&m, "kind")?,
        u32s(&m, "status")?,
        u32s(&m, "message")?,
    );
    let messages = counts(&m)?
        .into_iter()
        .enumerate()
        .map(|(i, count)| FailureMessage {
            name: run
                .names
                .get(names[i] as usize)
                .cloned()
                .unwrap_or_else(|| format!("#{}", names[i])),
            kind: kind_name(mkinds[i]),
            status: statuses[i] as u16,
            message: run
                .messages
                .get(messages[i] as usize)
                .cloned()
                .unwrap_or_default(),
            count,
        })
        .collect();

    let t = count_by(f, &["t_s", "kind"])?;
    let first = seconds.first().copied().unwrap_or(0);
    let mut over_time: Vec<(String, Vec<u64>)> = Vec::new();
    for &k in &kinds {
        over_time.push((kind_name(k), vec![0; seconds.len()]));
    }
    for ((sec, k), count) in u32s(&t, "t_s")?
        .iter()
        .zip(u32s(&t, "kind")?)
        .zip(counts(&t)?)
    {
        let Some(series) = kinds.iter().position(|&x| x == k) else {
            continue;
        };
        if let Some(slot) = sec
            .checked_sub(first)
            .and_then(|i| over_time[series].1.get_mut(i as usize))
        {
            *slot += count;
        }
    }
    Ok(Failures {
        by_kind,
        by_status,
        messages,
        over_time,
    })
}
