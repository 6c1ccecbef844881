//! HTTP requests: path and query, headers, bodies (text, JSON templates, forms), auth and the
//! request's rules, into a [`RequestPlan`](crate::scenario::RequestPlan).

use super::{CompileError, Compiler, KindCtx, error};
use crate::plan::StatusSet;
use crate::profile::spec::{BodySpec, RequestSpec};
use crate::scenario::RequestPlan;
use crate::scenario::auth::AuthUse;
use crate::scenario::rules;
use crate::scenario::template::{Escape, Expr, Seg, Template};

impl Compiler<'_> {
    pub(super) fn request(
        &mut self,
        kind: &KindCtx,
        kind_auth: &AuthUse,
        req: &RequestSpec,
        at: &str,
    ) -> Result<usize, CompileError> {
        let name = match &req.name {
            Some(n) if n.contains("{{") => {
                return Err(error(
                    format!("{at}.name"),
                    Some(n),
                    "a request name groups samples and cannot change per request: leave templates out of it (the default name is the path as written)",
                ));
            }
            Some(n) => self.constant(n, &format!("{at}.name"))?,
            None => format!("{} {}", req.method.as_str(), req.path),
        };
        let mut path = Template::literal(self.base_path.as_bytes());
        path.append(&self.tpl(kind, &req.path, Escape::Path, &format!("{at}.path"))?);
        let mut separator = if req.path.contains('?') { b'&' } else { b'?' };
        for (k, v) in &req.query {
            path.push_lit(&[separator]);
            separator = b'&';
            path.append(&self.tpl(kind, k, Escape::Component, &format!("{at}.query"))?);
            path.push_lit(b"=");
            path.append(&self.tpl(kind, v, Escape::Component, &format!("{at}.query.{k}"))?);
        }
        let mut merged = kind.headers.clone();
        merged.extend(req.headers.clone());
        let mut headers = Vec::new();
        for (k, v) in &merged {
            let t = self.tpl(kind, v, Escape::Header, &format!("{at}.headers.{k}"))?;
            headers.push((k.clone(), t));
        }
        let body = match &req.body {
            None => None,
            Some(BodySpec::Text(t)) => Some((
                "text/plain".to_owned(),
                self.tpl(kind, t, Escape::None, &format!("{at}.body"))?,
            )),
            Some(BodySpec::Json(v)) => {
                let mut t = Template::default();
                self.json(kind, v, &mut t, &format!("{at}.body"))?;
                Some(("application/json".to_owned(), t))
            }
            Some(BodySpec::Form(fields)) => {
                let mut t = Template::default();
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        t.push_lit(b"&");
                    }
                    t.append(&self.tpl(kind, k, Escape::Component, &format!("{at}.body"))?);
                    t.push_lit(b"=");
                    t.append(&self.tpl(kind, v, Escape::Component, &format!("{at}.body.{k}"))?);
                }
                Some(("application/x-www-form-urlencoded".to_owned(), t))
            }
        };
        let has_authorization = merged
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        let auth = match (&req.auth, has_authorization) {
            // An explicit Authorization header wins over any auth helper.
            (_, true) => AuthUse::None,
            (Some(a), false) => self.auth(kind, a, &format!("{at}.auth"))?,
            (None, false) => kind_auth.clone(),
        };
        let mut extract = Vec::new();
        for (var, source) in &req.extract {
            extract.push(self.extraction(var, source, &format!("{at}.extract.{var}"))?);
        }
        let mut checks = Vec::new();
        for (i, check) in req.checks.iter().enumerate() {
            checks.push(self.check(kind, check, &format!("{at}.checks[{i}]"))?);
        }
        let json = rules::share_selectors(&mut extract, &mut checks);
        self.out.requests.push(RequestPlan {
            name,
            method: req.method,
            path,
            headers,
            body,
            expect: req
                .expect_status
                .clone()
                .map_or(StatusSet::Success, StatusSet::Only),
            extract,
            checks,
            json,
            auth,
            cookies: kind.cookies,
        });
        Ok(self.out.requests.len() - 1)
    }

    /// Appends a RON value as a JSON template: string values (and keys) are templates escaped for
    /// JSON; a string that is exactly `{{raw(...)}}` becomes an unquoted value.
    pub(super) fn json(
        &mut self,
        kind: &KindCtx,
        v: &ron::Value,
        out: &mut Template,
        field: &str,
    ) -> Result<(), CompileError> {
        use ron::Value as V;
        match v {
            V::String(s) => {
                let t = self.tpl(kind, s, Escape::Json, field)?;
                let raws = t
                    .segments()
                    .iter()
                    .filter(|s| matches!(s, Seg::Dyn(Expr::Raw(_), _)))
                    .count();
                match (raws, t.segments()) {
                    (0, _) => {
                        out.push_lit(b"\"");
                        out.append(&t);
                        out.push_lit(b"\"");
                    }
                    (1, [Seg::Dyn(Expr::Raw(inner), _)]) => {
                        out.push_expr((**inner).clone(), Escape::None);
                    }
                    _ => {
                        return Err(error(
                            field,
                            Some(s),
                            "raw(...) must be the whole string, e.g. \"qty\": \"{{raw(random_int(1, 5))}}\"",
                        ));
                    }
                }
            }
            V::Char(c) => self.json(kind, &V::String(c.to_string()), out, field)?,
            V::Map(map) => {
                out.push_lit(b"{");
                for (i, (k, val)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_lit(b",");
                    }
                    match k {
                        V::String(_) => self.json(kind, k, out, field)?,
                        other => {
                            let mut key = String::new();
                            write_json(other, &mut key);
                            self.json(kind, &V::String(key), out, field)?;
                        }
                    }
                    out.push_lit(b":");
                    self.json(kind, val, out, field)?;
                }
                out.push_lit(b"}");
            }
            V::Seq(items) => {
                out.push_lit(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_lit(b",");
                    }
                    self.json(kind, item, out, field)?;
                }
                out.push_lit(b"]");
            }
            V::Option(Some(inner)) => self.json(kind, inner, out, field)?,
            other => {
                let mut text = String::new();
                write_json(other, &mut text);
                out.push_lit(text.as_bytes());
            }
        }
        Ok(())
    }
}

/// Writes a RON value as JSON. Maps with non-string keys use the key's JSON text as the key.
pub(crate) fn write_json(v: &ron::Value, out: &mut String) {
    use ron::Value as V;
    use std::fmt::Write;
    match v {
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Char(c) => write_json_str(&c.to_string(), out),
        V::String(s) => write_json_str(s, out),
        V::Bytes(b) => write_json_str(&String::from_utf8_lossy(b), out),
        V::Number(n) => {
            let f = n.into_f64();
            if f.fract() == 0.0 && f.abs() < 9e15 {
                let _ = write!(out, "{}", f as i64);
            } else if f.is_finite() {
                let _ = write!(out, "{f}");
            } else {
                out.push_str("null");
            }
        }
        V::Option(None) | V::Unit => out.push_str("null"),
        V::Option(Some(inner)) => write_json(inner, out),
        V::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        V::Map(map) => {
            out.push('{');
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    V::String(s) => write_json_str(s, out),
                    other => {
                        let mut key = String::new();
                        write_json(other, &mut key);
                        write_json_str(&key, out);
                    }
                }
                out.push(':');
                write_json(val, out);
            }
            out.push('}');
        }
    }
}

fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
