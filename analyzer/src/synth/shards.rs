//! The shards of a sharded synthetic run: each shard's share, start offset, clock error and lag,
//! checked from the shard options.

use super::{STARTED_UNIX_NS, SynthParams};
use crate::error::{Error, Result};

/// Where one shard of a sharded synthetic run stands.
#[derive(Debug, Clone)]
pub(super) struct ShardPlan {
    pub(super) index: u32,
    pub(super) shares: Vec<f64>,
    pub(super) offset_ns: i64,
    pub(super) clock_error_us: u64,
    pub(super) lagging: bool,
}

impl ShardPlan {
    pub(super) fn started_unix_ns(plan: Option<&ShardPlan>) -> i64 {
        STARTED_UNIX_NS + plan.map_or(0, |p| p.offset_ns)
    }
}

/// The shards' plans (none for a run of one engine), or what is wrong with the shard options.
pub(super) fn shard_plans(params: &SynthParams) -> Result<Vec<ShardPlan>> {
    let n = params.shards as usize;
    if n == 0 {
        let stray = !params.shard_shares.is_empty()
            || !params.shard_offsets_ms.is_empty()
            || !params.clock_errors_us.is_empty()
            || params.lagging_shard.is_some();
        if stray {
            return Err(Error::Usage(
                "--shard-shares, --shard-offsets-ms, --clock-errors-us and --lagging-shard need --shards N"
                    .into(),
            ));
        }
        return Ok(Vec::new());
    }
    let per_shard = |name: &str, len: usize| -> Result<()> {
        if len == 0 || len == n {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "{name} gives {len} values for {n} shards: give one per shard, in shard order"
            )))
        }
    };
    per_shard("--shard-shares", params.shard_shares.len())?;
    per_shard("--shard-offsets-ms", params.shard_offsets_ms.len())?;
    per_shard("--clock-errors-us", params.clock_errors_us.len())?;
    let mut shares = if params.shard_shares.is_empty() {
        vec![1.0; n]
    } else {
        params.shard_shares.clone()
    };
    if shares.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(Error::Usage(format!(
            "--shard-shares must all be positive, got {:?}",
            params.shard_shares
        )));
    }
    let total: f64 = shares.iter().sum();
    for s in &mut shares {
        *s /= total;
    }
    if params
        .shard_offsets_ms
        .iter()
        .any(|o| !(o.is_finite() && *o >= 0.0))
    {
        return Err(Error::Usage(format!(
            "--shard-offsets-ms must be 0 or more, got {:?}",
            params.shard_offsets_ms
        )));
    }
    if let Some(l) = params.lagging_shard
        && l as usize >= n
    {
        return Err(Error::Usage(format!(
            "--lagging-shard {l} is not a shard of {n} (0 to {})",
            n - 1
        )));
    }
    Ok((0..params.shards)
        .map(|i| ShardPlan {
            index: i,
            shares: shares.clone(),
            offset_ns: (params
                .shard_offsets_ms
                .get(i as usize)
                .copied()
                .unwrap_or(0.0)
                * 1e6) as i64,
            clock_error_us: params
                .clock_errors_us
                .get(i as usize)
                .copied()
                .unwrap_or(200),
            lagging: params.lagging_shard == Some(i),
        })
        .collect())
}
