//! The timing-phases table and the "where the time goes" chart of a single run.

use std::fmt::Write as _;

use super::{
    CellView, ChartView, LegendView, TableView, UNSUPPORTED_NOTE, header, latency_cell, num,
};
use crate::analysis::RunAnalysis;
use crate::charts::palette_hex;
use crate::format;
use crate::phases::{DNS_NOTE, NamePhases, PHASE_PERCENTILES, PHASES, PhaseStat};

/// Palette index of each phase in the chart and its legend.
const PHASE_COLORS: [usize; 4] = [4, 5, 0, 3];

/// The table: one row per (request name, phase), with the sample count each row rests on.
pub(super) fn phase_table(r: &RunAnalysis) -> Option<TableView> {
    let p = &r.phases;
    if p.total.phases.iter().all(|s| s.count == 0) {
        return None;
    }
    let mut headers = vec![
        header("Request", false),
        header("Phase", false),
        header("n", true),
        header("Mean", true),
    ];
    headers.extend(PHASE_PERCENTILES.iter().map(|q| header(q.0, true)));
    headers.push(header("Max", true));
    let mut rows = Vec::new();
    for (np, total) in p
        .endpoints
        .iter()
        .map(|e| (e, false))
        .chain([(&p.total, true)])
    {
        // The TLS row only where some request did a handshake; every other phase always, so each
        // name's rows line up.
        let shown = (0..PHASES.len()).filter(|&i| i != 1 || p.any_tls);
        for (k, i) in shown.enumerate() {
            let s = &np.phases[i];
            let label = PHASES[i].0;
            let mut cells = vec![
                CellView {
                    text: if k == 0 {
                        np.name.clone()
                    } else {
                        String::new()
                    },
                    class: "name".into(),
                    sort: np.name.clone(),
                    ..CellView::default()
                },
                CellView {
                    text: label.into(),
                    ..CellView::default()
                },
                num(format::int(s.count), s.count as f64),
                latency_cell(s.mean, s.count, None),
            ];
            cells.extend(
                PHASE_PERCENTILES
                    .iter()
                    .zip(s.percentiles)
                    .map(|(q, v)| latency_cell(v, s.count, Some(q.2))),
            );
            cells.push(latency_cell(s.max, s.count, None));
            if total {
                for c in &mut cells {
                    c.class.push_str(" total");
                }
            }
            rows.push(cells);
        }
    }
    let weak = rows.iter().flatten().any(|c| c.class.contains("weak"));
    let mut footnotes = vec![DNS_NOTE.to_owned()];
    if !p.any_tls {
        footnotes.push(
            "No request recorded a TLS handshake: the target was plain http://, every connection was \
             reused, or the logs predate sample-log format 1.1 (then Connect includes any handshake)."
                .into(),
        );
    }
    if !p.exact {
        footnotes.push(
            "These percentiles come from per-name HdrHistograms with three significant digits (within \
             0.1%), because the run has more samples than fit in memory for exact ones; counts, means \
             and maxima are exact."
                .into(),
        );
    }
    if weak {
        footnotes.push(UNSUPPORTED_NOTE.into());
    }
    Some(TableView {
        id: "phases".into(),
        title: "Timing phases".into(),
        caption: "Where each request's time went, from its actual start. Connect is the TCP connect and \
                  TLS the handshake, over the requests that opened a connection; Waiting is the time to \
                  the first response byte after the connection was ready; Receiving is the rest of the \
                  response (the body download). For a request with a response the four add up to its \
                  uncorrected latency. n is the number of requests each row rests on; percentiles are \
                  nearest rank."
            .into(),
        headers,
        rows,
        footnotes,
        class: "wide".into(),
    })
}

/// Each phase's share of a name's time: the mean per request (over all its requests, so that rarely
/// paid phases like the handshake count at their true weight) and each phase's own P99.
fn bars(np: &NamePhases, requests: u64) -> [[f64; 4]; 2] {
    let per_request = |s: &PhaseStat| {
        if requests == 0 {
            0.0
        } else {
            s.mean * s.count as f64 / requests as f64
        }
    };
    [
        std::array::from_fn(|i| per_request(&np.phases[i])),
        std::array::from_fn(|i| np.phases[i].percentiles[2]),
    ]
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn shorten(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_owned();
    }
    let mut s: String = name.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// The most characters of a request name the chart shows (longer ones end in `…`).
const NAME_CHARS: usize = 24;

/// The chart: per request name, a stacked bar of each phase's mean time per request and one of each
/// phase's P99, on a shared linear axis in ms.
pub(super) fn phase_chart(r: &RunAnalysis) -> Option<ChartView> {
    let p = &r.phases;
    let requests_of = |name: &str| {
        r.endpoints
            .iter()
            .find(|e| e.name == name)
            .map_or(0, |e| e.requests)
    };
    let groups: Vec<(&NamePhases, [[f64; 4]; 2])> = p
        .endpoints
        .iter()
        .map(|np| (np, bars(np, requests_of(&np.name))))
        .chain([(&p.total, bars(&p.total, r.total.requests))])
        .collect();
    let widest = groups
        .iter()
        .flat_map(|(_, b)| b.iter().map(|row| row.iter().sum::<f64>()))
        .fold(0.0f64, f64::max);
    if widest <= 0.0 {
        return None;
    }
    // Names are drawn right-aligned 40 px left of the bars (the mean/P99 labels sit between): the
    // margin takes the longest shown name at 7 px a character (12 px Helvetica averages about 6.6),
    // so that a name like "GET /status/503 (fails)" is not cut at the chart's left edge.
    let longest = groups
        .iter()
        .map(|(np, _)| shorten(&np.name, NAME_CHARS).chars().count())
        .max()
        .unwrap_or(0);
    let left = name_margin(longest);
    let (w, right, top, bar, gap) = (640.0, 24.0, 10.0, 13.0, 12.0);
    let axis_h = 40.0;
    let height = top + groups.len() as f64 * (2.0 * bar + 4.0 + gap) + axis_h;
    let plot_w = w - left - right;
    let (step, ticks) = ticks_ms(widest / 1000.0);
    let scale_max = step * ticks as f64;
    let x = |us: f64| left + plot_w * (us / 1000.0) / scale_max;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {w} {height}\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-family=\"Helvetica, Arial, sans-serif\">\
         <rect width=\"{w}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    let plot_bottom = height - axis_h;
    for t in 0..=ticks {
        let v = step * t as f64;
        let xv = left + plot_w * v / scale_max;
        let _ = write!(
            svg,
            "<line x1=\"{xv:.1}\" y1=\"{top}\" x2=\"{xv:.1}\" y2=\"{plot_bottom}\" stroke=\"#e6e8ec\"/>\
             <text x=\"{xv:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#555b66\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 16.0,
            escape(&format_ms(v))
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" fill=\"#555b66\" text-anchor=\"middle\">ms</text>",
        left + plot_w / 2.0,
        plot_bottom + 34.0
    );
    let mut y = top;
    for (np, rows) in &groups {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#222\" text-anchor=\"end\">{}</text>",
            left - 40.0,
            y + bar + 5.0,
            escape(&shorten(&np.name, NAME_CHARS))
        );
        for (k, (label, row)) in ["mean", "P99"].iter().zip(rows).enumerate() {
            let by = y + k as f64 * (bar + 4.0);
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555b66\" text-anchor=\"end\">{label}</text>",
                left - 4.0,
                by + bar - 3.0
            );
            let mut at = 0.0;
            for (i, &v) in row.iter().enumerate() {
                if v <= 0.0 {
                    continue;
                }
                let (x0, x1) = (x(at), x(at + v));
                let _ = write!(
                    svg,
                    "<rect x=\"{x0:.2}\" y=\"{by:.1}\" width=\"{:.2}\" height=\"{bar}\" fill=\"{}\"><title>{} {label} {}: {}</title></rect>",
                    (x1 - x0).max(0.5),
                    palette_hex(PHASE_COLORS[i]),
                    escape(&np.name),
                    PHASES[i].0,
                    format::latency_us(v)
                );
                at += v;
            }
        }
        y += 2.0 * bar + 4.0 + gap;
    }
    svg.push_str("</svg>");
    Some(ChartView {
        id: "chart-phases".into(),
        title: "Where the time goes".into(),
        caption: "Per request name: the mean time per request spent in each phase (connect and TLS \
                  spread over all requests, so a rare handshake counts at its true weight; the segments \
                  add up to the mean uncorrected latency), and each phase's own P99 stacked (those come \
                  from different requests, so their sum is not any one request's latency)."
            .into(),
        svg,
        legend: PHASES
            .iter()
            .zip(PHASE_COLORS)
            .map(|((label, _), c)| LegendView {
                label: (*label).into(),
                color: palette_hex(c),
                style: String::new(),
            })
            .collect(),
    })
}

/// The space left of the bars for names of `chars` characters: each name ends 40 px left of the bars.
fn name_margin(chars: usize) -> f64 {
    (chars as f64 * 7.0 + 48.0).max(120.0)
}

/// A round tick step (1-2-5 × 10^k ms) and the number of steps that cover `max_ms`.
fn ticks_ms(max_ms: f64) -> (f64, usize) {
    let raw = (max_ms / 5.0).max(1e-3);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (max_ms / step).ceil().max(1.0) as usize)
}

fn format_ms(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_in_round_steps() {
        assert_eq!(ticks_ms(9.3), (2.0, 5));
        assert_eq!(ticks_ms(0.42), (0.1, 5));
        assert_eq!(ticks_ms(100.0), (20.0, 5));
    }

    #[test]
    fn the_longest_name_fits_left_of_the_bars() {
        // 12 px Helvetica is at most about 6.6 px a character on average (wide capitals aside).
        for chars in [0, 5, 23, NAME_CHARS] {
            let room = name_margin(chars) - 40.0;
            assert!(
                room >= chars as f64 * 6.6 + 4.0,
                "{chars} characters, {room} px"
            );
        }
    }

    #[test]
    fn names_are_escaped_and_shortened() {
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(shorten("GET /a/very/long/path/indeed", 10), "GET /a/ve…");
    }

    #[test]
    fn mean_bars_spread_rare_phases_over_all_requests() {
        let stat = |count, mean| PhaseStat {
            count,
            mean,
            percentiles: [mean; 3],
            max: mean,
        };
        let np = NamePhases {
            name: "x".into(),
            phases: [
                stat(10, 400.0),
                stat(10, 600.0),
                stat(1000, 5000.0),
                stat(1000, 100.0),
            ],
        };
        let [mean, p99] = bars(&np, 1000);
        assert_eq!(mean, [4.0, 6.0, 5000.0, 100.0]);
        assert_eq!(p99, [400.0, 600.0, 5000.0, 100.0]);
    }
}
