//! How a traced exchange is shown: as text for people (colour only on a terminal) or as one JSON
//! object per line. Secrets are hidden the way the manifest hides them: values of headers whose
//! names look secret, values of variables whose names do, and the values of the profile's secrets
//! wherever they appear.

use std::fmt::Write as _;

use formats::Outcome;

use crate::plan::REDACTED;
use crate::scenario::rules::RuleLine;
use crate::scenario::vars::looks_secret;

/// One exchange as a trace shows it.
#[derive(Debug)]
pub(crate) struct Traced<'a> {
    /// The user's kind (its name), run-wide number and iteration (from 0).
    pub kind: &'a str,
    pub user: u32,
    pub iteration: u64,
    /// The iterations each user runs: requests after them are its `on_stop` requests.
    pub last_iteration: Option<u64>,
    /// The request's (or step's) name, as samples are grouped.
    pub name: &'a str,
    /// `http` or `https` for a request; a step's endpoint URL otherwise.
    pub scheme: &'a str,
    /// A step (its bytes are a payload, not an HTTP request).
    pub step: bool,
    /// The request as sent (plaintext), or a step's payload.
    pub request: &'a [u8],
    /// The response's status line and headers, and its body (chunked coding removed).
    pub response: Option<(&'a [u8], &'a [u8])>,
    /// What a step received.
    pub received: &'a [u8],
    pub status: u16,
    pub outcome: Outcome,
    /// The failure message the sample was logged with.
    pub message: Option<&'a str>,
    pub rules: &'a [RuleLine],
    pub phases: Phases,
}

/// The time an exchange took, by phase, µs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Phases {
    /// It opened a connection (else it reused one).
    pub opened: bool,
    /// Connect including the TLS handshake, from the actual start; 0 on a reused connection.
    pub connect_us: u32,
    pub tls_us: u32,
    /// First byte, from the actual start; 0 when none arrived.
    pub ttfb_us: u32,
    pub total_us: u64,
}

impl Phases {
    /// (connect, TLS, waiting, receiving), µs, as the analyzer splits them (docs/reports.md).
    fn split(&self) -> (u64, u64, Option<u64>, Option<u64>) {
        let connect = u64::from(self.connect_us);
        let tls = u64::from(self.tls_us.min(self.connect_us));
        let responded = self.ttfb_us > 0;
        let ttfb = u64::from(self.ttfb_us);
        (
            connect - tls,
            tls,
            responded.then(|| ttfb.saturating_sub(connect)),
            responded.then(|| self.total_us.saturating_sub(ttfb)),
        )
    }
}

/// How to show exchanges.
#[derive(Debug, Clone)]
pub(crate) struct Style {
    /// The most body bytes shown of each request and response.
    pub body_limit: usize,
    pub color: bool,
    /// Values hidden wherever they appear.
    pub secrets: Vec<String>,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// `text` with every secret value replaced.
    fn hide(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.secrets.iter().filter(|s| s.len() >= 4) {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

/// A head (request or status line, then headers) and a body, split at the blank line.
fn split_message(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&bytes[..i], &bytes[i + 4..]),
        None => (bytes, &[]),
    }
}

/// The lines of a head, each header's value hidden when its name looks secret.
fn head_lines(head: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(head);
    // A kept response's head ends with its blank line.
    text.trim_end_matches(['\r', '\n'])
        .split("\r\n")
        .enumerate()
        .map(|(i, line)| match line.split_once(':') {
            Some((name, _)) if i > 0 && looks_secret(name) => format!("{name}: {REDACTED}"),
            _ => line.to_owned(),
        })
        .collect()
}

/// A body as text: up to `limit` bytes, then how many more; binary bodies by size only.
fn body_text(body: &[u8], limit: usize) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let shown = &body[..body.len().min(limit)];
    let text = match std::str::from_utf8(shown) {
        Ok(t) => t.to_owned(),
        // A cut in the middle of a character is not binary.
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&shown[..e.valid_up_to()]).into()
        }
        Err(_) => return Some(format!("({} bytes of binary data)", body.len())),
    };
    let mut text = text;
    if body.len() > limit {
        let _ = write!(
            text,
            "{}… ({} more bytes; --body-limit shows more)",
            if text.ends_with('\n') { "" } else { "\n" },
            body.len() - limit
        );
    }
    Some(text)
}

/// `12µs`, `1.2ms`, `1.20s`.
fn human_us(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// The URL a request went to: its scheme, its Host header and its request target.
fn request_url(scheme: &str, head: &[String]) -> (String, String) {
    let first = head.first().map(String::as_str).unwrap_or_default();
    let mut parts = first.splitn(3, ' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or("/");
    let host = head
        .iter()
        .skip(1)
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (method, format!("{scheme}://{host}{target}"))
}

/// The exchange as text for people.
pub(crate) fn text(ex: &Traced<'_>, style: &Style) -> String {
    let mut out = String::new();
    let when = match ex.last_iteration {
        Some(last) if ex.iteration >= last => "after the last iteration".to_owned(),
        _ => format!("iteration {}", ex.iteration + 1),
    };
    let title = format!("── {} #{} · {when} · {} ", ex.kind, ex.user, ex.name);
    let rule = "─".repeat(78usize.saturating_sub(title.chars().count()));
    let _ = writeln!(out, "{}", style.paint("1", &format!("{title}{rule}")));
    if ex.step {
        let _ = writeln!(out, "{}", style.paint("1", &format!("> {}", ex.scheme)));
        if let Some(t) = body_text(ex.request, style.body_limit) {
            for line in t.lines() {
                let _ = writeln!(out, "> {line}");
            }
        }
        if let Some(t) = body_text(ex.received, style.body_limit) {
            for line in t.lines() {
                let _ = writeln!(out, "< {line}");
            }
        }
    } else {
        let (head, body) = split_message(ex.request);
        let lines = head_lines(head);
        let (method, url) = request_url(ex.scheme, &lines);
        let _ = writeln!(out, "{}", style.paint("1", &format!("> {method} {url}")));
        for line in &lines {
            let _ = writeln!(out, "{}", style.paint("2", &format!("> {line}")));
        }
        if let Some(t) = body_text(body, style.body_limit) {
            let _ = writeln!(out, ">");
            for line in t.lines() {
                let _ = writeln!(out, "> {line}");
            }
        }
        if let Some((head, body)) = ex.response {
            let lines = head_lines(head);
            let status_code = if ex.status < 400 { "32;1" } else { "31;1" };
            for (i, line) in lines.iter().enumerate() {
                let painted = if i == 0 {
                    style.paint(status_code, &format!("< {line}"))
                } else {
                    style.paint("2", &format!("< {line}"))
                };
                let _ = writeln!(out, "{painted}");
            }
            if let Some(t) = body_text(body, style.body_limit) {
                let _ = writeln!(out, "<");
                for line in t.lines() {
                    let _ = writeln!(out, "< {line}");
                }
            }
        } else if ex.status > 0 {
            let _ = writeln!(out, "< status {}", ex.status);
        } else {
            let _ = writeln!(out, "< (no response)");
        }
    }
    let width = ex
        .rules
        .iter()
        .map(|l| rule_label(l).chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    for line in ex.rules {
        let (mark, code) = match line.passed {
            Some(true) => ("✓", "32"),
            Some(false) => ("✗", "31"),
            None => ("-", "2"),
        };
        let detail = match line.passed {
            None => "not run: an earlier rule ended the request".to_owned(),
            _ => line.detail.clone(),
        };
        let label = rule_label(line);
        let _ = writeln!(
            out,
            "  {} {label:<width$}  {detail}",
            style.paint(code, mark)
        );
    }
    let (connect, tls, waiting, receiving) = ex.phases.split();
    let mut time = String::new();
    if ex.phases.opened {
        let _ = write!(time, "connect {}", human_us(connect));
        if tls > 0 {
            let _ = write!(time, ", TLS {}", human_us(tls));
        }
    } else if ex.phases.ttfb_us > 0 || ex.outcome == Outcome::Ok {
        time.push_str("reused connection");
    }
    if let Some(w) = waiting {
        let _ = write!(time, ", waiting {}", human_us(w));
    }
    if let Some(r) = receiving {
        let _ = write!(time, ", receiving {}", human_us(r));
    }
    let total = format!("total {}", human_us(ex.phases.total_us));
    let time = if time.is_empty() {
        total
    } else {
        format!("{time}; {total}")
    };
    let _ = writeln!(out, "  time: {time}");
    let result = match (ex.outcome, ex.message) {
        (Outcome::Ok, _) => style.paint("32;1", "ok"),
        (o, Some(m)) => style.paint("31;1", &format!("FAILED ({}): {m}", o.as_str())),
        (o, None) => style.paint("31;1", &format!("FAILED ({})", o.as_str())),
    };
    let _ = writeln!(out, "  result: {result}");
    style.hide(&out)
}

fn rule_label(line: &RuleLine) -> String {
    if line.check {
        format!("check {}", line.label)
    } else {
        line.label.clone()
    }
}

/// The exchange as one JSON object (one line of `--json` output).
pub(crate) fn json(ex: &Traced<'_>, style: &Style) -> String {
    use serde_json::{Value, json};
    let text_or_null =
        |bytes: &[u8]| body_text(bytes, style.body_limit).map_or(Value::Null, Value::from);
    let headers = |head: &[u8]| -> Vec<Value> {
        head_lines(head)
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| json!([n, v.trim()]))
            .collect()
    };
    let (connect, tls, waiting, receiving) = ex.phases.split();
    let ms = |us: u64| us as f64 / 1e3;
    let request = if ex.step {
        json!({"target": ex.scheme, "payload": text_or_null(ex.request), "payload_bytes": ex.request.len()})
    } else {
        let (head, body) = split_message(ex.request);
        let lines = head_lines(head);
        let (method, url) = request_url(ex.scheme, &lines);
        json!({
            "method": method,
            "url": url,
            "headers": headers(head),
            "body": text_or_null(body),
            "body_bytes": body.len(),
        })
    };
    let response = match ex.response {
        Some((head, body)) => json!({
            "status": ex.status,
            "status_line": head_lines(head).first().cloned().unwrap_or_default(),
            "headers": headers(head),
            "body": text_or_null(body),
            "body_bytes": body.len(),
        }),
        None if ex.step => {
            json!({"received": text_or_null(ex.received), "received_bytes": ex.received.len()})
        }
        None if ex.status > 0 => json!({"status": ex.status}),
        None => Value::Null,
    };
    let rules: Vec<Value> = ex
        .rules
        .iter()
        .map(|l| {
            json!({
                "kind": if l.check { "check" } else { "extract" },
                "rule": l.label,
                "passed": l.passed,
                "detail": l.detail,
            })
        })
        .collect();
    let value = json!({
        "user_kind": ex.kind,
        "user": ex.user,
        "iteration": ex.iteration + 1,
        "name": ex.name,
        "request": request,
        "response": response,
        "rules": rules,
        "outcome": ex.outcome.as_str(),
        "message": ex.message,
        "new_connection": ex.phases.opened,
        "ms": {
            "connect": ms(connect),
            "tls": ms(tls),
            "waiting": waiting.map(ms),
            "receiving": receiving.map(ms),
            "total": ms(ex.phases.total_us),
        },
    });
    style.hide(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::rules::quote;

    fn detail_of(bytes: &[u8]) -> String {
        let mut s = String::new();
        quote(bytes, false, &mut s);
        s
    }

    fn exchange<'a>(request: &'a [u8], response: &'a [u8], rules: &'a [RuleLine]) -> Traced<'a> {
        let (head, body) = split_message(response);
        Traced {
            kind: "browser",
            user: 0,
            iteration: 0,
            last_iteration: Some(1),
            name: "login",
            scheme: "http",
            step: false,
            request,
            response: Some((head, body)),
            received: &[],
            status: 200,
            outcome: Outcome::Check,
            message: Some("check Status([201]) failed: expected status 201, got 200"),
            rules,
            phases: Phases {
                opened: true,
                connect_us: 300,
                tls_us: 0,
                ttfb_us: 1_300,
                total_us: 1_500,
            },
        }
    }

    #[test]
    fn text_shows_the_exchange_and_hides_secrets() {
        let rules = [
            RuleLine {
                check: false,
                label: "extract id = Json(\"/id\")".into(),
                passed: Some(true),
                detail: detail_of(b"42"),
                hidden_value: None,
            },
            RuleLine {
                check: true,
                label: "Status([201])".into(),
                passed: Some(false),
                detail: "expected status 201, got 200".into(),
                hidden_value: None,
            },
        ];
        let req = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer abc\r\nContent-Length: 21\r\n\r\n{\"password\":\"hunter22\"}";
        let resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=1\r\nContent-Length: 9\r\n\r\n{\"id\":42}";
        let style = Style {
            body_limit: 1024,
            color: false,
            secrets: vec!["hunter22".into()],
        };
        let out = text(&exchange(req, resp, &rules), &style);
        for want in [
            "> POST http://127.0.0.1:8080/login",
            "> Authorization: ***",
            "< HTTP/1.1 200 OK",
            "< Set-Cookie: ***",
            "< {\"id\":42}",
            "✓ extract id = Json(\"/id\")",
            "\"42\"",
            "✗ check Status([201])",
            "expected status 201, got 200",
            "connect 300µs, waiting 1.0ms, receiving 200µs; total 1.5ms",
            "FAILED (check)",
        ] {
            assert!(out.contains(want), "{want:?} missing from\n{out}");
        }
        assert!(!out.contains("hunter22"), "{out}");
        assert!(!out.contains("Bearer abc"), "{out}");
        assert!(!out.contains('\x1b'), "no colour unless asked");

        let line = json(&exchange(req, resp, &rules), &style);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request"]["method"], "POST");
        assert_eq!(v["request"]["url"], "http://127.0.0.1:8080/login");
        assert_eq!(v["response"]["status"], 200);
        assert_eq!(v["rules"][1]["passed"], false);
        assert_eq!(v["outcome"], "check");
        assert!(!line.contains("hunter22"));
    }

    #[test]
    fn bodies_are_cut_at_the_limit_and_binary_is_not_printed() {
        assert_eq!(body_text(b"", 10), None);
        let cut = body_text(b"0123456789abcdef", 10).unwrap();
        assert!(cut.starts_with("0123456789\n… (6 more bytes"), "{cut}");
        assert_eq!(
            body_text(&[0xff, 0xfe, 0, 1], 10).unwrap(),
            "(4 bytes of binary data)"
        );
        // A cut inside a multi-byte character is still text.
        let e = "é".repeat(10);
        assert!(body_text(e.as_bytes(), 5).unwrap().starts_with("éé\n…"));
    }
}
