//! A change as asked for: the body of `POST /api/steer`, read strictly and checked for form.

use super::{Knob, MAX_RAMP_S, MAX_RATE};

/// How fast a change moves the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ramp {
    /// Over this many seconds (0: at once).
    Seconds(f64),
    /// Users per second, as Locust's spawn rate (closed models).
    PerSecond(f64),
}

/// A change as asked for, checked for form but not yet against the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ask {
    pub knob: Knob,
    pub to: f64,
    pub ramp: Ramp,
}

/// Reads a control request's body: `{"users": N}` or `{"rate": R}`, optionally with `"ramp_s"` or
/// (users only) `"spawn_rate"`. The error says what was wrong and what is accepted.
pub(crate) fn parse(fields: &serde_json::Map<String, serde_json::Value>) -> Result<Ask, String> {
    const KNOWN: [&str; 4] = ["users", "rate", "ramp_s", "spawn_rate"];
    if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?}: a change takes \"users\" (closed model) or \"rate\" (open model), and optionally \"ramp_s\" or \"spawn_rate\""
        ));
    }
    let number = |key: &str| -> Result<Option<f64>, String> {
        match fields.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(format!("\"{key}\" must be a number, got {v}")),
            },
        }
    };
    let (knob, to) = match (fields.get("users"), number("rate")?) {
        (Some(_), Some(_)) => {
            return Err("give \"users\" or \"rate\", not both".to_owned());
        }
        (None, None) => {
            return Err(
                "nothing to change: give \"users\" (closed model) or \"rate\" (open model), e.g. {\"users\": 50, \"ramp_s\": 10}"
                    .to_owned(),
            );
        }
        (Some(v), None) => match v.as_u64() {
            Some(n) if n <= u64::from(u32::MAX) => (Knob::Users, n as f64),
            _ => {
                return Err(format!(
                    "\"users\" must be a whole number from 0 up, got {v}"
                ));
            }
        },
        (None, Some(r)) => {
            if !(r > 0.0 && r <= MAX_RATE) {
                return Err(format!(
                    "\"rate\" must be above 0 and at most {MAX_RATE} arrivals per second, got {r}"
                ));
            }
            (Knob::Rate, r)
        }
    };
    let ramp = match (number("ramp_s")?, number("spawn_rate")?) {
        (Some(_), Some(_)) => {
            return Err("give \"ramp_s\" or \"spawn_rate\", not both".to_owned());
        }
        (Some(s), None) if (0.0..=MAX_RAMP_S).contains(&s) => Ramp::Seconds(s),
        (Some(s), None) => {
            return Err(format!(
                "\"ramp_s\" must be from 0 to {MAX_RAMP_S} seconds, got {s}"
            ));
        }
        (None, Some(_)) if knob == Knob::Rate => {
            return Err(
                "\"spawn_rate\" is users per second: a rate change ramps over \"ramp_s\" seconds"
                    .to_owned(),
            );
        }
        (None, Some(r)) if r > 0.0 => Ramp::PerSecond(r),
        (None, Some(r)) => {
            return Err(format!(
                "\"spawn_rate\" must be above 0 users per second, got {r}"
            ));
        }
        (None, None) => Ramp::Seconds(0.0),
    };
    Ok(Ask { knob, to, ramp })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(json).unwrap() {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn requests_are_read_strictly() {
        let ok = [
            (
                r#"{"users": 50}"#,
                Ask {
                    knob: Knob::Users,
                    to: 50.0,
                    ramp: Ramp::Seconds(0.0),
                },
            ),
            (
                r#"{"users": 0, "ramp_s": 2.5}"#,
                Ask {
                    knob: Knob::Users,
                    to: 0.0,
                    ramp: Ramp::Seconds(2.5),
                },
            ),
            (
                r#"{"users": 8, "spawn_rate": 4}"#,
                Ask {
                    knob: Knob::Users,
                    to: 8.0,
                    ramp: Ramp::PerSecond(4.0),
                },
            ),
            (
                r#"{"rate": 120.5, "ramp_s": 10}"#,
                Ask {
                    knob: Knob::Rate,
                    to: 120.5,
                    ramp: Ramp::Seconds(10.0),
                },
            ),
        ];
        for (json, want) in ok {
            assert_eq!(parse(&fields(json)), Ok(want), "{json}");
        }
        let bad = [
            ("{}", "nothing to change"),
            (r#"{"users": -1}"#, "whole number"),
            (r#"{"users": 2.5}"#, "whole number"),
            (r#"{"users": "10"}"#, "whole number"),
            (r#"{"users": 4294967296}"#, "whole number"),
            (r#"{"users": 1, "rate": 2}"#, "not both"),
            (r#"{"rate": 0}"#, "above 0"),
            (r#"{"rate": 1e9}"#, "at most"),
            (r#"{"rate": "x"}"#, "must be a number"),
            (r#"{"users": 5, "ramp_s": -1}"#, "from 0 to"),
            (r#"{"users": 5, "ramp_s": 1e6}"#, "from 0 to"),
            (r#"{"users": 5, "ramp_s": 1, "spawn_rate": 2}"#, "not both"),
            (r#"{"users": 5, "spawn_rate": 0}"#, "above 0"),
            (r#"{"rate": 5, "spawn_rate": 2}"#, "ramp_s"),
            (r#"{"users": 5, "userz": 1}"#, "unknown field \"userz\""),
        ];
        for (json, want) in bad {
            let err = parse(&fields(json)).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
