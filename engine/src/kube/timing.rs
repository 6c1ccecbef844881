//! When the shards start, how long the Job may live, and what the run is called.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::args::KubeArgs;
use super::{KubeError, flag};

/// The common start instant (whole seconds, UTC) and how far ahead of `now` it is.
pub(super) fn start_instant(
    args: &KubeArgs,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, Duration), KubeError> {
    let start = match &args.start_at {
        Some(text) => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
                let relative = text.starts_with('+');
                flag(
                    "--start-at",
                    if relative {
                        format!(
                            "{text:?}: a relative instant would be relative to each pod's own start; use --start-in {}",
                            text.trim_start_matches('+')
                        )
                    } else {
                        format!(
                            "{text:?} is not an RFC 3339 instant ({e}); write e.g. 2026-11-27T10:00:00Z"
                        )
                    },
                )
            })?;
            let t = t.to_offset(time::UtcOffset::UTC);
            if t <= now {
                return Err(flag(
                    "--start-at",
                    format!(
                        "{text} is not in the future (it is now {}); pods would all start late",
                        now.replace_nanosecond(0)
                            .unwrap_or(now)
                            .format(&Rfc3339)
                            .unwrap_or_default()
                    ),
                ));
            }
            t
        }
        None => now + args.start_in,
    };
    // Whole seconds, rounded up, so the instant reads cleanly and is never before the lead asked.
    let whole = match start.replace_nanosecond(0) {
        Ok(t) if t < start => t + Duration::from_secs(1),
        Ok(t) => t,
        Err(_) => start,
    };
    let lead = (whole - now).try_into().unwrap_or(Duration::ZERO);
    Ok((whole, lead))
}

/// The Job's `activeDeadlineSeconds`: the time until the start, the run, the request timeout for
/// requests still in flight, and a margin of a tenth of the run (at least a minute) for start-up and
/// writing the manifests. A pod that never gets scheduled, or hangs, ends there; nothing waits
/// forever.
pub fn deadline_seconds(lead: Duration, run: Duration, request_timeout: Duration) -> u64 {
    let margin = (run / 10).max(Duration::from_secs(60));
    (lead + run + request_timeout + margin).as_secs_f64().ceil() as u64
}

/// `YYYYMMDD-HHMMSS-name`: the UTC time first, as run directories are named, and the profile's name
/// in the characters an object name allows.
pub(super) fn default_run_id(now: OffsetDateTime, profile_name: &str) -> String {
    let stamp = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut name = String::new();
    for c in profile_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
    }
    name.truncate(24);
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        stamp
    } else {
        format!("{stamp}-{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::args::dns_label;
    use crate::kube::args::tests::args;
    use time::macros::datetime;

    #[test]
    fn the_start_instant_is_whole_seconds_in_utc_and_in_the_future() {
        let now = datetime!(2026-11-27 10:15:00.250 UTC);
        let (t, lead) = start_instant(&args(&[]), now).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2026-11-27T10:17:01Z");
        assert_eq!(lead, Duration::from_millis(120_750));
        let (t, _) = start_instant(&args(&["--start-in", "30s"]), now).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2026-11-27T10:15:31Z");
        let (t, lead) =
            start_instant(&args(&["--start-at", "2026-11-27T12:30:00+02:00"]), now).unwrap();
        assert_eq!(t.format(&Rfc3339).unwrap(), "2026-11-27T10:30:00Z");
        assert_eq!(lead, Duration::from_millis(899_750));
        let past = start_instant(&args(&["--start-at", "2026-11-27T10:00:00Z"]), now).unwrap_err();
        assert!(past.to_string().contains("not in the future"), "{past}");
        let relative = start_instant(&args(&["--start-at", "+30s"]), now).unwrap_err();
        assert!(
            relative.to_string().contains("use --start-in 30s"),
            "{relative}"
        );
        let garbage = start_instant(&args(&["--start-at", "tomorrow"]), now).unwrap_err();
        assert!(garbage.to_string().contains("RFC 3339"), "{garbage}");
    }

    #[test]
    fn the_deadline_covers_the_lead_the_run_and_a_margin() {
        let s = Duration::from_secs;
        // 2 min lead + 10 min run + 30 s timeout + 1 min margin.
        assert_eq!(deadline_seconds(s(120), s(600), s(30)), 810);
        // A long run's margin is a tenth of it.
        assert_eq!(
            deadline_seconds(s(60), s(7200), s(30)),
            60 + 7200 + 30 + 720
        );
    }

    #[test]
    fn run_ids_are_object_name_safe() {
        let now = datetime!(2026-11-27 10:15:03 UTC);
        assert_eq!(default_run_id(now, "shop"), "20261127-101503-shop");
        assert_eq!(
            default_run_id(now, "My Shop: checkout (EU)!"),
            "20261127-101503-my-shop-checkout-eu"
        );
        assert_eq!(default_run_id(now, "???"), "20261127-101503");
        let long = default_run_id(now, &"x".repeat(100));
        assert!(long.len() <= 40, "{long}");
        assert!(dns_label("--run-id", &long, 40).is_ok());
    }
}
