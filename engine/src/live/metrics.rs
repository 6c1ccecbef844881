//! `/metrics`: the snapshot in the Prometheus text format (0.0.4), or in OpenMetrics 1.0 when the
//! scraper's `Accept` header asks for it (Prometheus does by default).
//!
//! Every series carries the run's labels: `profile`, `run_id` and, in a sharded run, `shard` (every
//! shard of a test has the same run id, so `sum by (run_id)` adds the shards up). docs/live.md lists
//! the metrics; [`FAMILIES`] is the list a test checks the Grafana dashboard against.

use std::fmt::Write as _;

use formats::Outcome;
use hdrhistogram::Histogram;

use super::snapshot::{NameRow, Snapshot};

/// Upper bounds of the latency histogram's buckets, µs: 100 µs to 60 s in 1-2.5-5 steps (and 30 s,
/// 60 s for timeouts), then `+Inf`.
pub(crate) const BUCKETS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// The metric families, as a scraper sees their sample names' stems.
#[cfg(test)]
pub(crate) const FAMILIES: [&str; 17] = [
    "stampede_requests_total",
    "stampede_failures_total",
    "stampede_request_duration_seconds",
    "stampede_sent_bytes_total",
    "stampede_received_bytes_total",
    "stampede_active_users",
    "stampede_target_users",
    "stampede_target_iterations_per_second",
    "stampede_iterations_started_total",
    "stampede_iterations_dropped_total",
    "stampede_schedule_lag_p50_seconds",
    "stampede_schedule_lag_p99_seconds",
    "stampede_schedule_lag_max_seconds",
    "stampede_open_connections",
    "stampede_cpu_seconds_total",
    "stampede_run_elapsed_seconds",
    "stampede_run_info",
];

pub(crate) const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics over the text format.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let q_of = |kind: &str| {
        accept
            .split(',')
            .filter(|part| part.trim().starts_with(kind))
            .map(|part| {
                part.split(';')
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .unwrap_or(1.0)
            })
            .fold(None, |best: Option<f64>, q| {
                Some(best.map_or(q, |b| b.max(q)))
            })
    };
    match (q_of("application/openmetrics-text"), q_of("text/plain")) {
        (Some(om), Some(text)) => om > 0.0 && om >= text,
        (Some(om), None) => om > 0.0,
        _ => false,
    }
}

/// Cumulative counts of a latency histogram in [`BUCKETS_US`] (then `+Inf`), and the sum of its
/// values in seconds. A value counts towards a bound when the lowest value of its histogram bucket
/// is within it: exact to the histogram's resolution (0.1 %).
pub(crate) fn buckets(h: &Histogram<u64>) -> (Vec<u64>, f64) {
    let mut counts = vec![0u64; BUCKETS_US.len() + 1];
    let mut sum_us = 0.0;
    for v in h.iter_recorded() {
        let value = v.value_iterated_to();
        let n = v.count_at_value();
        let low = h.lowest_equivalent(value);
        let i = BUCKETS_US
            .iter()
            .position(|&b| low <= b)
            .unwrap_or(BUCKETS_US.len());
        counts[i] += n;
        sum_us += h.median_equivalent(value) as f64 * n as f64;
    }
    let mut running = 0;
    for c in &mut counts {
        running += *c;
        *c = running;
    }
    (counts, sum_us / 1e6)
}

/// The snapshot as a scrape body.
pub(crate) fn render(s: &Snapshot, openmetrics: bool) -> String {
    let mut w = Writer {
        out: String::with_capacity(4096 + s.names.len() * 4096),
        om: openmetrics,
        base: base_labels(s),
    };
    let counter_help =
        "Requests completed, by request name and outcome (ok, or the kind of failure).";
    w.family("stampede_requests", "counter", "", counter_help);
    for n in &s.names {
        for (o, count) in Outcome::ALL.iter().zip(n.kinds.0) {
            w.sample(
                "stampede_requests_total",
                &[("name", &n.name), ("outcome", o.as_str())],
                count as f64,
            );
        }
    }
    w.family(
        "stampede_failures",
        "counter",
        "",
        "Failed requests by request name and kind (every outcome but ok).",
    );
    for n in &s.names {
        for (o, count) in Outcome::ALL.iter().zip(n.kinds.0) {
            if *o != Outcome::Ok {
                w.sample(
                    "stampede_failures_total",
                    &[("name", &n.name), ("kind", o.as_str())],
                    count as f64,
                );
            }
        }
    }
    w.family(
        "stampede_request_duration_seconds",
        "histogram",
        "seconds",
        "Latency from each request's intended start (corrected for coordinated omission), by request name.",
    );
    for n in &s.names {
        w.histogram(n);
    }
    w.family(
        "stampede_sent_bytes",
        "counter",
        "bytes",
        "Bytes written to connections (request heads and bodies), by request name.",
    );
    for n in &s.names {
        w.sample(
            "stampede_sent_bytes_total",
            &[("name", &n.name)],
            n.bytes_sent as f64,
        );
    }
    w.family(
        "stampede_received_bytes",
        "counter",
        "bytes",
        "Bytes read from connections (response heads and bodies), by request name.",
    );
    for n in &s.names {
        w.sample(
            "stampede_received_bytes_total",
            &[("name", &n.name)],
            n.bytes_received as f64,
        );
    }
    w.gauge(
        "stampede_active_users",
        "",
        "Virtual users running at the end of the last complete second.",
        f64::from(s.now.users),
    );
    if s.run.open_model {
        w.gauge(
            "stampede_target_iterations_per_second",
            "",
            "The arrival rate the load model asks for now.",
            s.now.target,
        );
    } else {
        w.gauge(
            "stampede_target_users",
            "",
            "The users the load model asks for now.",
            s.now.target,
        );
    }
    w.family(
        "stampede_iterations_started",
        "counter",
        "",
        "Iterations (one pass of a user's task) started.",
    );
    w.sample(
        "stampede_iterations_started_total",
        &[],
        s.totals.iterations_started as f64,
    );
    w.family(
        "stampede_iterations_dropped",
        "counter",
        "",
        "Arrivals of an open model that found no free user and no room to wait.",
    );
    w.sample(
        "stampede_iterations_dropped_total",
        &[],
        s.totals.iterations_dropped as f64,
    );
    for (name, value, what) in [
        ("stampede_schedule_lag_p50_seconds", s.now.lag_p50, "Median"),
        (
            "stampede_schedule_lag_p99_seconds",
            s.now.lag_p99,
            "99th percentile of the",
        ),
        (
            "stampede_schedule_lag_max_seconds",
            s.now.lag_max,
            "Largest",
        ),
    ] {
        w.gauge(
            name,
            "seconds",
            &format!(
                "{what} schedule lag (actual minus intended start) in the last complete second: above 1 ms, the generator is the bottleneck."
            ),
            value as f64 / 1e6,
        );
    }
    w.gauge(
        "stampede_open_connections",
        "",
        "Connections open at the end of the last complete second.",
        f64::from(s.now.connections),
    );
    w.family(
        "stampede_cpu_seconds",
        "counter",
        "seconds",
        "CPU time of the engine's load threads, by mode.",
    );
    w.sample(
        "stampede_cpu_seconds_total",
        &[("mode", "user")],
        s.totals.cpu_user_s,
    );
    w.sample(
        "stampede_cpu_seconds_total",
        &[("mode", "system")],
        s.totals.cpu_system_s,
    );
    w.gauge(
        "stampede_run_elapsed_seconds",
        "seconds",
        "Seconds since the run started.",
        s.elapsed_s,
    );
    w.run_info(s);
    if w.om {
        w.out.push_str("# EOF\n");
    }
    w.out
}

fn base_labels(s: &Snapshot) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        ("profile", s.run.profile.clone()),
        ("run_id", s.run.run_id.clone()),
    ];
    if let Some((index, _)) = s.run.shard {
        labels.push(("shard", index.to_string()));
    }
    labels
}

struct Writer {
    out: String,
    om: bool,
    base: Vec<(&'static str, String)>,
}

impl Writer {
    /// HELP and TYPE (and UNIT in OpenMetrics) of a family. `stem` is the family name: without
    /// `_total` for counters, which the text format puts back.
    fn family(&mut self, stem: &str, kind: &str, unit: &str, help: &str) {
        let name = if kind == "counter" && !self.om {
            format!("{stem}_total")
        } else {
            stem.to_owned()
        };
        let help = escape_help(help, self.om);
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        if self.om && !unit.is_empty() {
            let _ = writeln!(self.out, "# UNIT {name} {unit}");
        }
    }

    fn gauge(&mut self, name: &str, unit: &str, help: &str, value: f64) {
        self.family(name, "gauge", unit, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.out.push('{');
        let mut first = true;
        let base = std::mem::take(&mut self.base);
        for (k, v) in base
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(labels.iter().copied())
        {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"");
            escape_label(&mut self.out, v);
            self.out.push('"');
        }
        self.base = base;
        self.out.push_str("} ");
        self.out.push_str(&number(value));
        self.out.push('\n');
    }

    fn histogram(&mut self, n: &NameRow) {
        let name = "stampede_request_duration_seconds";
        for (i, &count) in n.buckets.iter().enumerate() {
            let le = BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |&b| bound(b));
            self.sample(
                &format!("{name}_bucket"),
                &[("name", &n.name), ("le", &le)],
                count as f64,
            );
        }
        let count = n.buckets.last().copied().unwrap_or(0);
        self.sample(&format!("{name}_sum"), &[("name", &n.name)], n.sum_s);
        self.sample(&format!("{name}_count"), &[("name", &n.name)], count as f64);
    }

    fn run_info(&mut self, s: &Snapshot) {
        let help = "The run: its target, environment and engine (always 1).";
        let (name, kind) = if self.om {
            ("stampede_run", "info")
        } else {
            ("stampede_run_info", "gauge")
        };
        self.family(name, kind, "", help);
        let shards = s.run.shard.map(|(_, n)| n.to_string());
        let mut labels: Vec<(&str, &str)> = vec![
            ("target", &s.run.target),
            ("environment", s.run.environment.as_deref().unwrap_or("")),
            ("engine_version", &s.run.engine_version),
            ("started_at", &s.run.started_at),
        ];
        if let Some(n) = &shards {
            labels.push(("shard_count", n));
        }
        self.sample("stampede_run_info", &labels, 1.0);
    }
}

/// A bucket bound in seconds, in the canonical form OpenMetrics recommends (`0.0001`, `1.0`, `60.0`).
fn bound(us: u64) -> String {
    let s = format!("{}", us as f64 / 1e6);
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str, om: bool) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if om => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::snapshot::{Kinds, Now, Percentiles, Phase, RunInfo, Series, Totals};
    use crate::live::tally::histogram;
    use std::sync::Arc;

    fn snapshot(names: Vec<NameRow>, shard: Option<(u32, u32)>) -> Snapshot {
        Snapshot {
            run: Arc::new(RunInfo {
                profile: "shop".into(),
                run_id: "abc".into(),
                environment: None,
                target: "http://t".into(),
                load: String::new(),
                open_model: false,
                planned_s: 1.0,
                cores: 1,
                io: String::new(),
                started_at: "2026-01-01T00:00:00Z".into(),
                dir: String::new(),
                engine_version: "0.1.0".into(),
                shard,
                can_stop: false,
            }),
            phase: Phase::Running,
            error: None,
            elapsed_s: 1.5,
            seconds: 1,
            now: Now::default(),
            totals: Totals::default(),
            all: names[0].clone(),
            names,
            series: Arc::new(Series::default()),
        }
    }

    fn name_row(name: &str, latencies: &[u64]) -> NameRow {
        let mut h = histogram(3);
        for &l in latencies {
            h.record(l).unwrap();
        }
        let (buckets, sum_s) = buckets(&h);
        let mut kinds = Kinds::default();
        kinds.0[0] = latencies.len() as u64 - 1;
        kinds.0[Outcome::Timeout.code() as usize] = 1;
        NameRow {
            name: name.into(),
            requests: latencies.len() as u64,
            failures: 1,
            kinds,
            latency: Percentiles::of(&h),
            bytes_sent: 7,
            bytes_received: 9,
            buckets,
            sum_s,
        }
    }

    #[test]
    fn buckets_are_cumulative_and_bounds_are_inclusive() {
        let mut h = histogram(3);
        for v in [50, 100, 101, 1_000, 2_000_000, 90_000_000] {
            h.record(v).unwrap();
        }
        let (b, sum) = buckets(&h);
        assert_eq!(b.len(), BUCKETS_US.len() + 1);
        assert_eq!(b[0], 2, "50 and 100 µs are within 100 µs");
        assert_eq!(b[1], 3);
        assert_eq!(b[3], 4, "1 ms is within 1 ms");
        assert_eq!(b[BUCKETS_US.len() - 1], 5);
        assert_eq!(*b.last().unwrap(), 6, "+Inf counts everything");
        assert!((sum - 92.003_251).abs() / 92.0 < 0.001, "{sum}");
    }

    #[test]
    fn text_format_names_labels_and_escaping() {
        let s = snapshot(
            vec![name_row("GET \"/a\\b\"\nx", &[1_000, 2_000, 3_000])],
            Some((2, 4)),
        );
        let text = render(&s, false);
        assert!(
            text.contains("# TYPE stampede_requests_total counter\n"),
            "{text}"
        );
        assert!(text.contains(
            "stampede_requests_total{profile=\"shop\",run_id=\"abc\",shard=\"2\",name=\"GET \\\"/a\\\\b\\\"\\nx\",outcome=\"ok\"} 2\n"
        ), "{text}");
        assert!(text.contains("outcome=\"timeout\"} 1\n"));
        assert!(text.contains("kind=\"timeout\"} 1\n"));
        assert!(text.contains("le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("le=\"1.0\"} 3\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 3\n"));
        assert!(text.contains("stampede_request_duration_seconds_count{"));
        assert!(text.contains("# TYPE stampede_run_info gauge\n"));
        assert!(text.contains("shard_count=\"4\""));
        assert!(text.contains(
            "stampede_run_elapsed_seconds{profile=\"shop\",run_id=\"abc\",shard=\"2\"} 1.5\n"
        ));
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("# UNIT"));
        for family in FAMILIES {
            if family == "stampede_target_iterations_per_second" {
                continue;
            }
            assert!(text.contains(&format!("\n{family}")), "{family} missing");
        }
    }

    #[test]
    fn openmetrics_has_units_info_and_eof() {
        let s = snapshot(vec![name_row("GET /", &[1_000])], None);
        let om = render(&s, true);
        assert!(om.contains("# TYPE stampede_requests counter\n"), "{om}");
        assert!(om.contains("\nstampede_requests_total{"));
        assert!(om.contains("# UNIT stampede_request_duration_seconds seconds\n"));
        assert!(om.contains("# TYPE stampede_run info\n"));
        assert!(om.ends_with("# EOF\n"));
        assert!(!om.contains("shard="));
    }

    /// Every string under a key named `key`, anywhere in `v`.
    fn strings_under<'a>(v: &'a serde_json::Value, key: &str, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s) if k == key => out.push(s),
                        _ => strings_under(v, key, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings_under(v, key, out)),
            _ => {}
        }
    }

    /// The labels a scrape's series can have: the engine's, and those Prometheus adds.
    const LABELS: [&str; 15] = [
        "profile",
        "run_id",
        "shard",
        "name",
        "outcome",
        "kind",
        "le",
        "mode",
        "target",
        "environment",
        "engine_version",
        "started_at",
        "shard_count",
        "instance",
        "job",
    ];

    /// docs/grafana/stampede.json is valid JSON, queries only metrics that exist (with the suffixes
    /// their types give them), uses only the labels the engine sets, and defines the variables it uses.
    #[test]
    fn the_grafana_dashboard_queries_metrics_that_exist() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana/stampede.json");
        let text = std::fs::read_to_string(path).expect("docs/grafana/stampede.json");
        let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
        let mut exprs = Vec::new();
        strings_under(&dash, "expr", &mut exprs);
        strings_under(&dash, "definition", &mut exprs);
        assert!(exprs.len() > 20, "{} queries", exprs.len());
        let mut used = std::collections::BTreeSet::new();
        for expr in &exprs {
            let mut rest = *expr;
            while let Some(i) = rest.find("stampede_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| *f == "stampede_request_duration_seconds")
                    .map_or(name.clone(), str::to_owned);
                assert!(
                    FAMILIES.contains(&family.as_str()),
                    "the dashboard queries {name}, which the engine does not export: {expr}"
                );
                used.insert(family);
            }
            // Labels in groupings and selectors are ones the engine (or Prometheus) sets.
            let grouped = expr
                .split("by (")
                .skip(1)
                .map(|g| g.split(')').next().unwrap());
            let selected = expr
                .split('{')
                .skip(1)
                .map(|g| g.split('}').next().unwrap());
            for list in grouped.chain(selected) {
                for label in list
                    .split(',')
                    .map(|l| l.split(['=', '!']).next().unwrap().trim())
                {
                    assert!(
                        LABELS.contains(&label),
                        "the dashboard uses a label {label:?} nobody sets: {expr}"
                    );
                }
            }
        }
        let unused: Vec<&&str> = FAMILIES
            .iter()
            .filter(|f| !used.contains(**f) && **f != "stampede_run_elapsed_seconds")
            .collect();
        assert!(unused.is_empty(), "no panel shows {unused:?}");
        let defined: Vec<&str> = dash["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for expr in exprs.iter().chain(std::iter::once(&text.as_str())) {
            for (i, _) in expr.match_indices('$') {
                let var: String = expr[i + 1..]
                    .trim_start_matches('{')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    var.starts_with("__") || defined.contains(&var.as_str()),
                    "${var} is not a dashboard variable"
                );
            }
        }
    }

    #[test]
    fn accept_negotiation() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some(
            "text/plain;q=1,application/openmetrics-text;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }
}
