//! Judging a measured threshold: within, beyond or undecided, with the words that say why.

use super::measure::{Measured, share_inclusive};
use super::{Judged, Method, Share, WindowCounts};
use crate::significance::{self, Decision, Estimate, Interval, Length};
use crate::slo::{Measure, Threshold};

/// A value's answer against its threshold.
struct Answer {
    decision: Decision,
    low: Option<f64>,
    high: Option<f64>,
    share: Option<Share>,
    reason: String,
    decide_s: Option<f64>,
    decide: String,
}

/// Judges one value against the threshold: as a point without an estimate; else with an interval
/// `± z·se` on the statistics' scale, around the value itself (mean, error rate) or, for a
/// percentile, around the share of requests at or above its latency, against the share it allows.
/// For a `per` threshold, the window's length is what would have to grow.
fn answer(t: &Threshold, value: f64, estimate: Option<&Estimate>, z: f64) -> Answer {
    let mut out = Answer {
        decision: if t.op.holds(value, t.limit) {
            Decision::Within
        } else {
            Decision::Beyond
        },
        low: None,
        high: None,
        share: None,
        reason: String::new(),
        decide_s: None,
        decide: String::new(),
    };
    let (Some(e), Some(metric)) = (estimate, t.measure.metric()) else {
        return out;
    };
    let per_window = t.window_s.is_some();
    let (judged, bound) = match t.measure {
        Measure::Percentile(i) => {
            let allowed = 1.0 - crate::stats::PERCENTILES[i].2;
            out.share = Some(Share {
                value: e.value,
                low: None,
                high: None,
                allowed,
                inclusive: share_inclusive(t.op),
            });
            (e.value, allowed)
        }
        _ => (value, t.limit),
    };
    if let Some(s) = &e.shortfall {
        out.decision = Decision::Undecided;
        out.reason = s.text.clone();
        out.decide_s = s.seconds_needed;
        out.decide = significance::shortfall_words(s, per_window);
        return out;
    }
    if judged.is_nan() {
        return out;
    }
    let iv = Interval {
        estimate: significance::scale(metric, judged),
        se: e.se,
        resolution: e.resolution,
        z,
    };
    // A lower bound on a percentile ("p50 > 1ms") is a lower bound on the share above it.
    let (decision, length) = iv.against(
        significance::scale(metric, bound),
        t.op.is_upper_bound(),
        e.evidence.seconds,
    );
    let to_value = |v: f64| {
        let v = significance::unscale_value(metric, v);
        if metric.is_relative() {
            v
        } else {
            v.clamp(0.0, 1.0)
        }
    };
    let (low, high) = (to_value(iv.low()), to_value(iv.high()));
    match &mut out.share {
        Some(share) => {
            share.low = Some(low);
            share.high = Some(high);
        }
        None => {
            out.low = Some(low);
            out.high = Some(high);
        }
    }
    out.decision = decision;
    if decision == Decision::Undecided {
        out.reason = "the interval straddles the threshold".into();
        out.decide_s = match length {
            Some(Length::Seconds(s)) => Some(s),
            _ => None,
        };
        out.decide = significance::length_words(length, "the value", per_window);
    }
    out
}

/// The threshold's outcome, from its measurement and the family's z.
pub(super) fn judge(threshold: Threshold, measured: Measured, z: f64) -> Judged {
    let t = &threshold;
    let fmt = |v: f64| t.measure.format(v);
    let pct = |v: f64| format!("{:.2} %", v * 100.0);
    let describe = |value: f64, a: &Answer| -> String {
        match (&a.share, a.low, a.high) {
            (Some(share), _, _) => {
                let interval = match (share.low, share.high) {
                    (Some(l), Some(h)) => format!(" [{} … {}]", pct(l), pct(h)),
                    _ => String::new(),
                };
                format!(
                    "{}: {}{interval} of requests {} {}, {} allows {}",
                    fmt(value),
                    pct(share.value),
                    if share.inclusive {
                        "at or above"
                    } else {
                        "above"
                    },
                    fmt(t.limit),
                    t.measure.name().to_ascii_uppercase(),
                    pct(share.allowed)
                )
            }
            (None, Some(l), Some(h)) => format!("{} [{} … {}]", fmt(value), fmt(l), fmt(h)),
            _ => fmt(value),
        }
    };
    let limit_note = format!("; limit {} {}", t.op.as_str(), fmt(t.limit));
    let (value, context, a, method, windows) = match measured {
        Measured::Missing(why) => {
            return Judged {
                measured: None,
                low: None,
                high: None,
                share: None,
                method: if t.measure.metric().is_some() {
                    Method::Interval
                } else {
                    Method::Point
                },
                decision: Decision::NotMeasured,
                detail: format!("not measured: {why}"),
                reason: why,
                decide_s: None,
                decide: String::new(),
                windows: None,
                threshold,
            };
        }
        Measured::Whole {
            value,
            context,
            estimate,
        } => {
            let method = if estimate.is_some() {
                Method::Interval
            } else {
                Method::Point
            };
            let a = answer(t, value, estimate.as_ref(), z);
            (value, context, a, method, None)
        }
        Measured::Windows { figures, full } => {
            let answers: Vec<Answer> = figures
                .iter()
                .map(|f| answer(t, f.value, f.estimate.as_ref(), z))
                .collect();
            let beyond = answers
                .iter()
                .filter(|a| a.decision == Decision::Beyond)
                .count();
            let undecided = answers
                .iter()
                .filter(|a| a.decision == Decision::Undecided)
                .count();
            let decision = if beyond > 0 {
                Decision::Beyond
            } else if undecided > 0 {
                Decision::Undecided
            } else {
                Decision::Within
            };
            // Report the worst window among those with the overall answer: the highest value for
            // an upper bound, the lowest for a lower one.
            let upper = t.op.is_upper_bound();
            let (i, _) = figures
                .iter()
                .enumerate()
                .filter(|(i, _)| answers[*i].decision == decision)
                .max_by(|x, y| {
                    if upper {
                        x.1.value.total_cmp(&y.1.value)
                    } else {
                        y.1.value.total_cmp(&x.1.value)
                    }
                })
                .expect("the answer comes from some window");
            let f = &figures[i];
            let mut context = format!(
                "worst of {} windows: {}–{} s, n = {}",
                figures.len(),
                f.from_s,
                f.to_s,
                crate::format::int(f.requests)
            );
            if figures.len() < full {
                context.push_str(&format!(
                    "; {} of {full} windows had no samples",
                    full - figures.len()
                ));
            }
            if beyond > 0 {
                context.push_str(&format!("; {beyond} beyond"));
            }
            if undecided > 0 {
                context.push_str(&format!("; {undecided} undecided"));
            }
            let method = if f.estimate.is_some() {
                Method::Interval
            } else {
                Method::Point
            };
            let counts = WindowCounts {
                judged: figures.len(),
                beyond,
                undecided,
            };
            let a = answers.into_iter().nth(i).expect("one answer per window");
            (f.value, context, a, method, Some(counts))
        }
    };
    let mut detail = describe(value, &a);
    if !context.is_empty() {
        detail.push_str(&format!(" ({context})"));
    }
    if a.decision == Decision::Beyond {
        detail.push_str(&limit_note);
    }
    Judged {
        measured: Some(value),
        low: a.low,
        high: a.high,
        share: a.share,
        method,
        decision: a.decision,
        detail,
        reason: a.reason,
        decide_s: a.decide_s,
        decide: a.decide,
        windows,
        threshold,
    }
}
