//! Extraction (response → user variable): where a value comes from, and why it was not found.

use std::cell::RefCell;

use regex::bytes::{CaptureLocations, Regex};

use crate::http::Keep;
use crate::rng::Rng;
use crate::scenario::json::{BodyJson, JsonError, Pick, Selector, value_text};
use crate::scenario::response::Response;

/// A value taken from the response into a user variable.
#[derive(Debug, Clone)]
pub(crate) struct Extraction {
    /// The user variable slot.
    pub var: u16,
    pub source: Source,
    /// A missing value leaves the variable as it was instead of failing the request.
    pub optional: bool,
    /// Messages for "not found" and "the response is not JSON".
    pub messages: [String; 2],
}

/// Where an extracted value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A selector, answered from the request's one walk over the body.
    Json(Pick),
    /// One of the selector's matches, drawn at random.
    JsonRandom(Selector),
    /// The regex and its slot in the core's capture-location table.
    Regex(Regex, u16),
    Header(Box<[u8]>),
    Cookie(Box<[u8]>),
    Status,
}

/// Why an extraction found nothing; indexes [`Extraction::messages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    NotFound = 0,
    NotJson = 1,
}

impl Extraction {
    /// The rule as written (`extract token = Json("/token")`), for traces.
    pub fn label(&self) -> &str {
        self.messages[0]
            .rsplit_once(": ")
            .map_or(self.messages[0].as_str(), |(rule, _)| rule)
    }

    /// What of the response this rule reads.
    pub fn keep(&self) -> Keep {
        match self.source {
            Source::Json(_) | Source::JsonRandom(_) | Source::Regex(..) => Keep {
                body: true,
                ..Keep::default()
            },
            Source::Header(_) | Source::Cookie(_) => Keep {
                head: true,
                ..Keep::default()
            },
            Source::Status => Keep::default(),
        }
    }

    /// Sets the variable from `resp`, reusing its buffer (`rng` draws for `Random`; `json` answers
    /// the request's selectors over `resp`'s body). Inlined into the request path, whose only other
    /// caller is a trace's (callgrind: out of line, the path cost about 2 % more instructions).
    #[inline(always)]
    pub fn apply(
        &self,
        resp: &Response<'_>,
        vars: &mut [Vec<u8>],
        locs: &[RefCell<CaptureLocations>],
        rng: &mut Rng,
        json: &mut BodyJson<'_>,
    ) -> Result<(), Missing> {
        let Some(var) = vars.get_mut(usize::from(self.var)) else {
            return Err(Missing::NotFound);
        };
        match &self.source {
            Source::Json(pick) => match json.find(pick) {
                Ok(Some((kind, a, b))) => {
                    var.clear();
                    value_text(resp.body, kind, a, b, var);
                }
                Ok(None) => return Err(Missing::NotFound),
                Err(JsonError::Invalid | JsonError::TooDeep) => return Err(Missing::NotJson),
            },
            Source::JsonRandom(sel) => {
                let n = sel.count(resp.body).map_err(|_| Missing::NotJson)?;
                if n == 0 {
                    return Err(Missing::NotFound);
                }
                let pick = rng.below(u32::try_from(n).unwrap_or(u32::MAX)) as usize;
                match sel.find_nth(resp.body, pick) {
                    Ok(Some((kind, a, b))) => {
                        var.clear();
                        value_text(resp.body, kind, a, b, var);
                    }
                    Ok(None) => return Err(Missing::NotFound),
                    Err(_) => return Err(Missing::NotJson),
                }
            }
            Source::Regex(re, slot) => {
                let Some(cell) = locs.get(usize::from(*slot)) else {
                    return Err(Missing::NotFound);
                };
                let mut locs = cell.borrow_mut();
                re.captures_read(&mut locs, resp.body)
                    .ok_or(Missing::NotFound)?;
                let group = if locs.len() > 1 { 1 } else { 0 };
                let (a, b) = locs.get(group).ok_or(Missing::NotFound)?;
                var.clear();
                var.extend_from_slice(&resp.body[a..b]);
            }
            Source::Header(name) => {
                let v = resp.header(name).ok_or(Missing::NotFound)?;
                var.clear();
                var.extend_from_slice(v);
            }
            Source::Cookie(name) => {
                let v = resp.set_cookie(name).ok_or(Missing::NotFound)?;
                var.clear();
                var.extend_from_slice(v);
            }
            Source::Status => {
                use std::io::Write as _;
                var.clear();
                let _ = write!(var, "{}", resp.status);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::share_selectors;
    use super::super::testing::*;
    use super::*;
    use crate::scenario::json::SelectorSet;

    /// Applies `e` as a run does, its selector answered by its request's one walk, and checks that
    /// the rule looked up on its own gives the same.
    fn apply(
        e: &Extraction,
        r: &Response<'_>,
        vars: &mut [Vec<u8>],
        locs: &[RefCell<CaptureLocations>],
        rng: &mut Rng,
    ) -> Result<(), Missing> {
        let mut alone = vars.to_vec();
        let mut shared = e.clone();
        let set = share_selectors(std::slice::from_mut(&mut shared), &mut []);
        let hits = RefCell::new(Vec::new());
        let got = shared.apply(r, vars, locs, rng, &mut BodyJson::new(&set, r.body, &hits));
        if !matches!(e.source, Source::JsonRandom(_)) {
            let empty = SelectorSet::default();
            let by_itself = e.apply(
                r,
                &mut alone,
                locs,
                rng,
                &mut BodyJson::new(&empty, r.body, &hits),
            );
            assert_eq!((got, &*vars), (by_itself, &alone[..]), "{:?}", e.source);
        }
        got
    }

    #[test]
    fn extraction_sources() {
        let head =
            b"HTTP/1.1 201 Created\r\nLocation: /items/9\r\nSet-Cookie: sid=s1; Path=/\r\n\r\n";
        let body = br#"{"token": "t\"1", "items": [{"id": 4}]}"#;
        let mut s = Vec::new();
        let r = response(201, head, body, &mut s);
        let locs = vec![RefCell::new(
            Regex::new(r#""id": (\d+)"#).unwrap().capture_locations(),
        )];
        let table: Vec<(Source, Result<&str, Missing>)> = vec![
            (Source::Json(json("/token")), Ok("t\"1")),
            (Source::Json(json("$.items[0].id")), Ok("4")),
            (Source::Json(json("$..id")), Ok("4")),
            (Source::Json(json("/nope")), Err(Missing::NotFound)),
            (
                Source::Regex(Regex::new(r#""id": (\d+)"#).unwrap(), 0),
                Ok("4"),
            ),
            (Source::Header((*b"location").into()), Ok("/items/9")),
            (Source::Header((*b"x-nope").into()), Err(Missing::NotFound)),
            (Source::Cookie((*b"sid").into()), Ok("s1")),
            (Source::Status, Ok("201")),
        ];
        for (source, want) in table {
            let mut vars = vec![b"old".to_vec()];
            let got = apply(
                &ex(source.clone(), false),
                &r,
                &mut vars,
                &locs,
                &mut Rng::new(1),
            );
            match want {
                Ok(v) => {
                    assert_eq!(got, Ok(()), "{source:?}");
                    assert_eq!(vars[0], v.as_bytes(), "{source:?}");
                }
                Err(m) => {
                    assert_eq!(got, Err(m), "{source:?}");
                    assert_eq!(vars[0], b"old", "a failed extraction leaves the variable");
                }
            }
        }
        let mut s = Vec::new();
        let html = response(200, head, b"<html>", &mut s);
        let mut vars = vec![Vec::new()];
        assert_eq!(
            apply(
                &ex(Source::Json(json("/token")), false),
                &html,
                &mut vars,
                &locs,
                &mut Rng::new(1)
            ),
            Err(Missing::NotJson)
        );
    }

    #[test]
    fn a_random_extraction_draws_every_match_and_only_matches() {
        let body = br#"{"results": [{"id": 11}, {"id": 22}, {"name": "no id"}, {"id": 33}]}"#;
        let mut s = Vec::new();
        let r = response(200, b"HTTP/1.1 200 OK\r\n\r\n", body, &mut s);
        let rule = ex(
            Source::JsonRandom(Selector::parse("$.results[*].id").unwrap()),
            false,
        );
        let mut rng = Rng::new(7);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..300 {
            let mut vars = vec![Vec::new()];
            assert_eq!(apply(&rule, &r, &mut vars, &[], &mut rng), Ok(()));
            *seen
                .entry(String::from_utf8(vars[0].clone()).unwrap())
                .or_insert(0) += 1;
        }
        assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), ["11", "22", "33"]);
        assert!(seen.values().all(|&n| n > 60), "roughly uniform: {seen:?}");
        let none = ex(
            Source::JsonRandom(Selector::parse("$.nope[*]").unwrap()),
            false,
        );
        let mut vars = vec![b"old".to_vec()];
        assert_eq!(
            apply(&none, &r, &mut vars, &[], &mut rng),
            Err(Missing::NotFound)
        );
        assert_eq!(vars[0], b"old");
    }
}
