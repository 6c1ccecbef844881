//! Extractions and checks: selectors, regexes and expected values, each with the message a sample
//! carries when it fails.

use super::{CompileError, Compiler, KindCtx, error};
use crate::profile::spec::{CheckSpec, ExtractSpec};
use crate::scenario::json::{Expected, Selector};
use crate::scenario::rules::{Check, CheckKind, Extraction, Source, Want};
use crate::scenario::template::{Escape, Expr, Seg, Template};

impl Compiler<'_> {
    pub(super) fn extraction(
        &mut self,
        var: &str,
        source: &ExtractSpec,
        field: &str,
    ) -> Result<Extraction, CompileError> {
        let mut optional = false;
        let mut random = false;
        let mut source = source;
        loop {
            source = match source {
                ExtractSpec::Optional(inner) => {
                    optional = true;
                    inner
                }
                ExtractSpec::Random(inner) => {
                    random = true;
                    inner
                }
                _ => break,
            };
        }
        if random && !matches!(source, ExtractSpec::Json(_)) {
            return Err(error(
                field,
                None,
                "Random(...) draws one of the values a JSON selector matches: write Random(Json(\"$.items[*].id\"))",
            ));
        }
        let mut rule = ron::ser::to_string(source).unwrap_or_default();
        if random {
            rule = format!("Random({rule})");
        }
        let compiled = match source {
            ExtractSpec::Json(sel) => {
                let sel =
                    Selector::parse(sel).map_err(|m| error(field, Some(&format!("{sel:?}")), m))?;
                if random {
                    Source::JsonRandom(sel)
                } else {
                    Source::Json(sel.into())
                }
            }
            ExtractSpec::Regex(re) => {
                let re = self.regex(re, field)?;
                self.regexes += 1;
                Source::Regex(re, self.regexes - 1)
            }
            ExtractSpec::Header(name) => Source::Header(name.as_bytes().into()),
            ExtractSpec::Cookie(name) => Source::Cookie(name.as_bytes().into()),
            ExtractSpec::Status => Source::Status,
            ExtractSpec::Optional(_) | ExtractSpec::Random(_) => {
                unreachable!("Optional and Random were unwrapped above")
            }
        };
        let where_ = match source {
            ExtractSpec::Header(_) => "not in the response headers",
            ExtractSpec::Cookie(_) => "no Set-Cookie for it in the response",
            ExtractSpec::Regex(_) => "no match in the response body",
            _ => "not found in the response",
        };
        Ok(Extraction {
            var: self.slots[var],
            source: compiled,
            optional,
            messages: [
                format!("extract {var} = {rule}: {where_}"),
                format!("extract {var} = {rule}: the response body is not JSON"),
            ],
        })
    }

    pub(super) fn regex(
        &mut self,
        pattern: &str,
        field: &str,
    ) -> Result<regex::bytes::Regex, CompileError> {
        let re = regex::bytes::Regex::new(pattern).map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or("syntax error");
            error(
                field,
                Some(pattern),
                format!(
                    "invalid regex {pattern:?}: {}",
                    why.strip_prefix("error: ").unwrap_or(why)
                ),
            )
        })?;
        Ok(re)
    }

    pub(super) fn check(
        &mut self,
        kind: &KindCtx,
        check: &CheckSpec,
        field: &str,
    ) -> Result<Check, CompileError> {
        let mut negate = false;
        let mut inner = check;
        while let CheckSpec::Not(c) = inner {
            negate = !negate;
            inner = c;
        }
        let selector = |sel: &str| {
            Selector::parse(sel).map_err(|m| error(field, Some(&format!("{sel:?}")), m))
        };
        let compiled = match inner {
            CheckSpec::Status(codes) => CheckKind::Status(codes.clone()),
            CheckSpec::BodyContains(t) => {
                CheckKind::BodyContains(self.tpl(kind, t, Escape::None, field)?)
            }
            CheckSpec::BodyMatches(re) => CheckKind::BodyMatches(self.regex(re, field)?),
            CheckSpec::JsonEquals(sel, value) => {
                let want = match value {
                    // `{{raw(x)}}`: compare with x's text read as JSON (a number, true, false, null),
                    // for values extracted earlier, which are kept as text.
                    ron::Value::String(s)
                        if s.trim_start().starts_with("{{") && s.contains("raw(") =>
                    {
                        let t = self.tpl(kind, s, Escape::Json, field)?;
                        match t.segments() {
                            [Seg::Dyn(Expr::Raw(inner), _)] => {
                                let mut inner_t = Template::default();
                                inner_t.push_expr((**inner).clone(), Escape::None);
                                Want::Json(inner_t)
                            }
                            _ => {
                                return Err(error(
                                    field,
                                    Some(s),
                                    "raw(...) must be the whole expected value, e.g. JsonEquals(\"/id\", \"{{raw(id)}}\")",
                                ));
                            }
                        }
                    }
                    ron::Value::String(s) => {
                        Want::String(self.tpl(kind, s, Escape::None, field)?)
                    }
                    ron::Value::Number(n) => Want::Other(Expected::Number(n.into_f64())),
                    ron::Value::Bool(b) => Want::Other(Expected::Bool(*b)),
                    ron::Value::Unit | ron::Value::Option(None) => Want::Other(Expected::Null),
                    _ => {
                        return Err(error(
                            field,
                            None,
                            "JsonEquals compares with one string, number, boolean or () for null; select a single value",
                        ));
                    }
                };
                CheckKind::JsonEquals(selector(sel)?.into(), want)
            }
            CheckSpec::JsonExists(sel) => CheckKind::JsonExists(selector(sel)?.into()),
            CheckSpec::HeaderPresent(name) => CheckKind::HeaderPresent(name.as_bytes().into()),
            CheckSpec::HeaderEquals(name, v) => CheckKind::HeaderEquals(
                name.as_bytes().into(),
                self.tpl(kind, v, Escape::None, field)?,
            ),
            CheckSpec::HeaderContains(name, v) => CheckKind::HeaderContains(
                name.as_bytes().into(),
                self.tpl(kind, v, Escape::None, field)?,
            ),
            CheckSpec::LatencyUnder(d) => CheckKind::LatencyUnder(crate::clock::micros(d.0)),
            CheckSpec::Not(_) => unreachable!("Not was unwrapped above"),
        };
        Ok(Check {
            kind: compiled,
            negate,
            message: format!(
                "check {} failed",
                ron::ser::to_string(check).unwrap_or_default()
            ),
        })
    }
}
