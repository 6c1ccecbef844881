//! Thresholds (service-level objectives) for `analyzer check`: where they come from and what they
//! mean.
//!
//! Thresholds are written as short strings, grouped by request name, in the same shape in an SLO file
//! and in a profile's `thresholds` field:
//!
//! ```text
//! (thresholds: {
//!     "*": ["p99 < 200ms", "error_rate < 1%", "rps > 1000", "lag_p99 < 1ms"],
//!     "GET /items": ["p95 < 150ms per 10s"],
//! })
//! ```
//!
//! `"*"` is all requests together; any other key is a request name. A threshold is
//! `METRIC OP VALUE [per DURATION]`; with `per`, every full window of that length must pass, and the
//! worst one is reported. The profile is stored in the run's manifest as RON text; it is parsed
//! generically (`ron::Value`), so that the analyzer reads only the `thresholds` field and does not
//! depend on the engine's profile structs. An SLO file's list for a key replaces the profile's list
//! for that key; keys only the profile has keep theirs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The key that stands for all requests together.
pub const ALL: &str = "*";

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// A corrected-latency percentile; the index into [`crate::stats::PERCENTILES`].
    Percentile(usize),
    /// The largest corrected latency.
    Max,
    /// The mean corrected latency.
    Mean,
    /// Failed requests over all requests.
    ErrorRate,
    /// Requests per second.
    Rps,
    /// The generator's schedule lag at P99 (worst core, worst second).
    LagP99,
}

/// The metric names a threshold may use, for error messages.
pub const METRICS: &str =
    "p50, p75, p90, p95, p99, p99.9, max, mean (latency), error_rate, rps, lag_p99";

impl Measure {
    fn parse(name: &str) -> Option<Measure> {
        let name = name.trim().to_ascii_lowercase();
        let percentile = |key: &str| {
            crate::stats::PERCENTILES
                .iter()
                .position(|p| p.1 == key)
                .map(Measure::Percentile)
        };
        match name.as_str() {
            "max" => Some(Measure::Max),
            "mean" | "avg" => Some(Measure::Mean),
            "error_rate" | "errors" => Some(Measure::ErrorRate),
            "rps" | "throughput" => Some(Measure::Rps),
            "lag_p99" => Some(Measure::LagP99),
            "p99.9" => percentile("p999"),
            other => percentile(other),
        }
    }

    /// Whether values are latencies in µs.
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Measure::Percentile(_) | Measure::Max | Measure::Mean | Measure::LagP99
        )
    }

    /// The measure's name as written in thresholds.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Percentile(i) => ["p50", "p75", "p90", "p95", "p99", "p99.9"][i],
            Measure::Max => "max",
            Measure::Mean => "mean",
            Measure::ErrorRate => "error_rate",
            Measure::Rps => "rps",
            Measure::LagP99 => "lag_p99",
        }
    }

    /// A value of this measure for people: `154 ms`, `0.42 %`, `1,234 /s`.
    pub fn format(self, v: f64) -> String {
        match self {
            Measure::ErrorRate => format!("{:.2} %", v * 100.0),
            Measure::Rps => format!("{} /s", crate::format::rate(v)),
            _ => crate::format::latency_us(v),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    /// Whether `value` satisfies `value OP limit`.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
        }
    }

    /// Whether a higher value is worse (an upper bound).
    pub fn is_upper_bound(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// One threshold, parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// `"*"` or a request name.
    pub key: String,
    /// The threshold as written.
    pub text: String,
    /// What is measured.
    pub measure: Measure,
    /// How it is compared.
    pub op: Op,
    /// The limit: µs for latencies, a fraction for the error rate, requests/s for rps.
    pub limit: f64,
    /// `per N s`: every full window of this many seconds must pass.
    pub window_s: Option<u32>,
    /// Where it was written: `slo.ron:3:12` or `profile (runs/x/manifest.json):5:9`.
    pub origin: String,
}

/// The file shape: `(thresholds: {"*": ["p99 < 200ms"]})`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SloFile {
    thresholds: indexmap_like::Map,
}

/// Thresholds by key in written order (a `Vec` of pairs, because RON maps may repeat a key and the
/// order is the order of the report).
mod indexmap_like {
    use serde::Deserialize;

    #[derive(Debug, Default)]
    pub(super) struct Map(pub(super) Vec<(String, Vec<String>)>);

    impl<'de> Deserialize<'de> for Map {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Map;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(
                        "a map from request names to lists of thresholds, e.g. {\"*\": [\"p99 < 200ms\"]}",
                    )
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut a: A,
                ) -> Result<Map, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = a.next_entry::<String, Vec<String>>()? {
                        out.push((k, v));
                    }
                    Ok(Map(out))
                }
            }
            d.deserialize_map(V)
        }
    }
}

/// Where a text came from, for error messages.
#[derive(Debug, Clone)]
struct Source<'a> {
    name: String,
    text: &'a str,
}

impl Source<'_> {
    /// `name:line:column` of the first occurrence of `needle` (1-based), or just the name.
    fn locate(&self, needle: &str) -> String {
        match self.text.find(needle) {
            Some(at) => {
                let before = &self.text[..at];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("{}:{line}:{col}", self.name)
            }
            None => self.name.clone(),
        }
    }

    fn error(&self, at: String, message: String) -> Error {
        Error::Slo { at, message }
    }

    fn thresholds(&self, map: indexmap_like::Map) -> Result<Vec<(String, Vec<Threshold>)>> {
        let mut out: Vec<(String, Vec<Threshold>)> = Vec::new();
        for (key, texts) in map.0 {
            let mut parsed = Vec::new();
            for text in texts {
                let at = self.locate(&format!("\"{text}\""));
                let t = parse_threshold(&key, &text)
                    .map_err(|message| self.error(at.clone(), message))?;
                parsed.push(Threshold { origin: at, ..t });
            }
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.extend(parsed),
                None => out.push((key, parsed)),
            }
        }
        Ok(out)
    }
}

fn ron_error(name: &str, e: &ron::error::SpannedError, fix: &str) -> Error {
    Error::Slo {
        at: format!("{name}:{}:{}", e.span.start.line, e.span.start.col),
        message: format!("{}; {fix}", e.code),
    }
}

const SHAPE: &str = "write e.g. (thresholds: {\"*\": [\"p99 < 200ms\", \"error_rate < 1%\"], \"GET /items\": [\"p95 < 150ms per 10s\"]})";

/// Reads an SLO file: thresholds by key, in file order.
pub fn read_file(path: &Path) -> Result<Vec<(String, Vec<Threshold>)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_file(&path.display().to_string(), &text)
}

/// Parses an SLO file's text; `name` is used in error messages.
pub fn parse_file(name: &str, text: &str) -> Result<Vec<(String, Vec<Threshold>)>> {
    let file: SloFile = ron::Options::default()
        .from_str(text)
        .map_err(|e| ron_error(name, &e, SHAPE))?;
    Source {
        name: name.to_owned(),
        text,
    }
    .thresholds(file.thresholds)
}

/// The `thresholds` field of a profile stored as RON text (a run manifest's `profile`), if it has
/// one. `name` describes the profile in error messages.
pub fn from_profile(name: &str, profile: &str) -> Result<Vec<(String, Vec<Threshold>)>> {
    if profile.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: ron::Value = ron::Options::default().from_str(profile).map_err(|e| {
        ron_error(
            name,
            &e,
            "the run's manifest holds a profile that is not RON",
        )
    })?;
    let ron::Value::Map(map) = value else {
        return Ok(Vec::new());
    };
    let Some(thresholds) = map
        .iter()
        .find(|(k, _)| matches!(k, ron::Value::String(s) if s == "thresholds"))
        .map(|(_, v)| v.clone())
    else {
        return Ok(Vec::new());
    };
    // Options around the field (`thresholds: Some({...})` with implicit_some) are unwrapped.
    let thresholds = match thresholds {
        ron::Value::Option(Some(inner)) => *inner,
        ron::Value::Option(None) | ron::Value::Unit => return Ok(Vec::new()),
        other => other,
    };
    let source = Source {
        name: name.to_owned(),
        text: profile,
    };
    let map: indexmap_like::Map = thresholds.into_rust().map_err(|e| {
        source.error(
            source.locate("thresholds"),
            format!("the profile's `thresholds` field: {e}; {SHAPE}"),
        )
    })?;
    source.thresholds(map)
}

/// The profile's thresholds with an SLO file's merged over them: for a key in both, the file's list
/// replaces the profile's; keys only in one keep theirs. Profile keys come first, in their order.
pub fn merge(
    profile: Vec<(String, Vec<Threshold>)>,
    file: Vec<(String, Vec<Threshold>)>,
) -> Vec<(String, Vec<Threshold>)> {
    let mut out = profile;
    for (key, list) in file {
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => *old = list,
            None => out.push((key, list)),
        }
    }
    out
}

/// Parses `METRIC OP VALUE [per DURATION]`. The error says what is wrong and how to write it.
pub fn parse_threshold(key: &str, text: &str) -> Result<Threshold, String> {
    let how = "write METRIC OP VALUE [per DURATION], e.g. \"p99 < 200ms\", \"error_rate < 1%\", \
               \"rps > 1000\", \"p95 < 150ms per 10s\"";
    let at = text
        .find(['<', '>'])
        .ok_or_else(|| format!("`{text}`: no comparison (<, <=, > or >=); {how}"))?;
    let metric = text[..at].trim();
    let rest = &text[at..];
    let (op, rest) = if let Some(r) = rest.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = rest.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = rest.strip_prefix('<') {
        (Op::Lt, r)
    } else {
        (Op::Gt, &rest[1..])
    };
    let measure = Measure::parse(metric)
        .ok_or_else(|| format!("`{text}`: unknown metric `{metric}`; the metrics are {METRICS}"))?;
    if measure == Measure::LagP99 && key != ALL {
        return Err(format!(
            "`{text}` under \"{key}\": schedule lag belongs to the load generator, not to a request \
             name; put lag_p99 under \"*\""
        ));
    }
    let (value, window) = match rest.split_once(" per ") {
        Some((v, w)) => (v.trim(), Some(w.trim())),
        None => (rest.trim(), None),
    };
    let window_s = window
        .map(|w| {
            let d = crate::load::parse_duration(w)
                .map_err(|_| format!("`{text}`: window `{w}` is not a duration; write e.g. `per 10s`"))?;
            let s = d.as_secs();
            if s == 0 || d.subsec_nanos() != 0 {
                return Err(format!(
                    "`{text}`: a window is a whole number of seconds (runs are measured per second); \
                     write e.g. `per 10s`"
                ));
            }
            u32::try_from(s).map_err(|_| format!("`{text}`: window `{w}` is too long"))
        })
        .transpose()?;
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(number_end);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("`{text}`: `{value}` is not a number with a unit; {how}"))?;
    let unit = unit.trim();
    let limit = if measure.is_latency() {
        number
            * match unit {
                "us" | "µs" => 1.0,
                "ms" => 1e3,
                "s" => 1e6,
                _ => {
                    return Err(format!(
                        "`{text}`: a latency needs a unit (us, ms or s), e.g. `{metric} < 200ms`"
                    ));
                }
            }
    } else if measure == Measure::ErrorRate {
        if unit != "%" {
            return Err(format!(
                "`{text}`: give the error rate in percent, e.g. `error_rate < 1%`"
            ));
        }
        number / 100.0
    } else {
        if !matches!(unit, "" | "/s" | "rps") {
            return Err(format!(
                "`{text}`: throughput is in requests per second, e.g. `rps > 1000`"
            ));
        }
        number
    };
    Ok(Threshold {
        key: key.to_owned(),
        text: text.to_owned(),
        measure,
        op,
        limit,
        window_s,
        origin: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_with_units_and_windows() {
        let t = parse_threshold("*", "p99 < 200ms").unwrap();
        assert_eq!(
            (t.measure, t.op, t.limit, t.window_s),
            (Measure::Percentile(4), Op::Lt, 200_000.0, None)
        );
        let t = parse_threshold("*", "error_rate<=1.5%").unwrap();
        assert_eq!((t.measure, t.op), (Measure::ErrorRate, Op::Le));
        assert!((t.limit - 0.015).abs() < 1e-12);
        let t = parse_threshold("*", "rps > 1000").unwrap();
        assert_eq!((t.measure, t.op, t.limit), (Measure::Rps, Op::Gt, 1000.0));
        let t = parse_threshold("GET /items", "p95 < 150ms per 10s").unwrap();
        assert_eq!(
            (t.measure, t.limit, t.window_s),
            (Measure::Percentile(3), 150_000.0, Some(10))
        );
        let t = parse_threshold("*", "p99.9 <= 1s").unwrap();
        assert_eq!((t.measure, t.limit), (Measure::Percentile(5), 1e6));
        let t = parse_threshold("*", "lag_p99 < 1ms").unwrap();
        assert_eq!((t.measure, t.limit), (Measure::LagP99, 1000.0));
        assert_eq!(parse_threshold("*", "mean >= 250us").unwrap().limit, 250.0);
    }

    #[test]
    fn bad_thresholds_say_how_to_write_them() {
        for (text, says) in [
            ("p98 < 200ms", "unknown metric `p98`"),
            ("p99 200ms", "no comparison"),
            ("p99 < 200", "needs a unit"),
            ("error_rate < 0.01", "in percent"),
            ("p99 < fast", "not a number"),
            ("p99 < 200ms per 1.5s", "whole number of seconds"),
            ("p99 < 200ms per soon", "not a duration"),
        ] {
            let e = parse_threshold("*", text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let e = parse_threshold("GET /", "lag_p99 < 1ms").unwrap_err();
        assert!(e.contains("under \"*\""), "{e}");
    }

    #[test]
    fn a_file_error_names_line_and_column() {
        let text = "(thresholds: {\n  \"*\": [\"p99 < 200ms\",\n         \"p99 < 200\"],\n})";
        let e = parse_file("slo.ron", text).unwrap_err().to_string();
        assert!(e.starts_with("slo.ron:3:10: "), "{e}");
        assert!(e.contains("needs a unit"), "{e}");
        let e = parse_file("slo.ron", "(thresholds: {\"*\": [\"p99 < 1s\"]")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("slo.ron:1:"), "{e}");
        let e = parse_file("slo.ron", "(treshold: {})")
            .unwrap_err()
            .to_string();
        assert!(e.contains("treshold") && e.contains("slo.ron:1:"), "{e}");
    }

    #[test]
    fn profile_thresholds_are_read_generically_and_the_file_wins_per_key() {
        let profile = r#"Profile(name: "shop", users: 10, scenario: (steps: [Get("/")]),
            thresholds: {"*": ["p99 < 200ms", "rps > 10"], "GET /": ["p50 < 5ms"]})"#;
        let from_profile = from_profile("profile", profile).unwrap();
        assert_eq!(from_profile.len(), 2);
        assert_eq!(from_profile[0].1.len(), 2);
        assert!(
            from_profile[0].1[0].origin.starts_with("profile:2:"),
            "{:?}",
            from_profile[0].1[0]
        );
        let file = parse_file(
            "slo.ron",
            r#"(thresholds: {"GET /": ["p50 < 9ms"], "POST /": ["max < 1s"]})"#,
        )
        .unwrap();
        let merged = merge(from_profile, file);
        let keys: Vec<&str> = merged.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["*", "GET /", "POST /"]);
        assert_eq!(merged[1].1[0].limit, 9_000.0);
        assert!(from_profile_is_empty(
            r#"(name: "no thresholds", users: 1)"#
        ));
        assert!(from_profile_is_empty(""));
    }

    fn from_profile_is_empty(text: &str) -> bool {
        from_profile("p", text).unwrap().is_empty()
    }
}
