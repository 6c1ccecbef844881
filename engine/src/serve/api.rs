//! The embedded target's scenario routes: log in, tokens (login, OAuth2 client credentials, JWT),
//! cookies, a per-user CRUD store, search and an echo. Enough state to test correlation end to end:
//! a token or id that the engine failed to carry from one response to the next request is refused.
//!
//! | route                         | answer                                                           |
//! |-------------------------------|------------------------------------------------------------------|
//! | `POST /login`                 | `{"token","user"}` for `{"user": ...}` (any password but `wrong`), and a `session` cookie |
//! | `/private`                    | `{"secret","user"}` for a valid bearer token (login, OAuth2 or JWT), else 401 |
//! | `POST /logout`                | `{"user"}` for a valid bearer token, else 401                     |
//! | `POST /oauth/token[?ttl=s]`   | client credentials (`client_secret` must be `stampede-secret`): `{"access_token","token_type","expires_in"}` |
//! | `/session`                    | `{"user"}` for a valid `session` cookie, else 401                 |
//! | `/cookies/set?k=v[&path=/p]`  | sets cookies; `/cookies/delete?k` expires one; `/cookies` echoes them as JSON |
//! | `/api/items` (bearer)         | POST creates `{"id", ...}` (201, Location); GET lists the user's ids |
//! | `/api/items/{id}` (bearer)    | GET, PUT, DELETE the user's own item (404 for anyone else's)      |
//! | `/search?q=`                  | `{"query", "results": [{"id"}, ...]}`                             |
//! | `.../anything/...`            | the request as JSON: method, path, query, headers, body          |
//! | `/jobs`, `/jobs/{id}`, `/signed` | a job queue to poll and an HMAC-checked endpoint (`jobs.rs`)   |
//!
//! JWTs are accepted when signed HS256 with [`JWT_SECRET`] or RS256 with the demo key in
//! `profiles/keys/` (their `sub` is the user), with `exp` checked when present.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// The HS256 secret the embedded target accepts.
pub const JWT_SECRET: &str = "stampede-demo-jwt-secret";
/// The OAuth2 client secret the embedded target accepts (any client id).
pub const CLIENT_SECRET: &str = "stampede-secret";
/// The RS256 public key matching `profiles/keys/demo-rs256.pem`.
const RS256_PUBLIC: &str = include_str!("../../../profiles/keys/demo-rs256.pub.pem");

/// What a route needs from the request.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub head: &'a [u8],
    pub body: &'a [u8],
    /// Unix time, ms.
    pub now_ms: u64,
}

/// An answer: status, content type, body, extra header lines.
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<String>,
}

impl Answer {
    pub(crate) fn json(status: u16, v: &Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: v.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn text(status: u16, t: &str) -> Answer {
        Answer {
            status,
            content_type: "text/plain",
            body: t.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }

    fn header(mut self, line: String) -> Answer {
        self.headers.push(line);
        self
    }
}

/// Items by id: owner and JSON. Bounded: the store is cleared when it fills up, so a long demo
/// cannot exhaust memory.
#[derive(Debug, Default)]
pub(crate) struct Items {
    next: u64,
    by_id: HashMap<u64, (String, Value)>,
}

const MAX_ITEMS: usize = 100_000;

/// The routes' shared state.
pub(crate) struct Api {
    pub secret: u64,
    pub items: Mutex<Items>,
    pub jobs: Mutex<super::jobs::Jobs>,
}

impl Api {
    /// Answers `call` if it is one of these routes.
    pub fn route(&self, call: &Call<'_>) -> Option<Answer> {
        let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        let answer = match (call.method, segments.as_slice()) {
            ("POST", ["login"]) => self.login(call),
            (_, ["private"]) => match self.bearer_user(call) {
                Some(user) => Answer::json(200, &json!({"secret": "42", "user": user})),
                None => Answer::text(401, "missing or invalid bearer token; POST /login first"),
            },
            ("POST", ["logout"]) => match self.bearer_user(call) {
                Some(user) => Answer::json(200, &json!({"user": user})),
                None => Answer::text(401, "missing or invalid bearer token"),
            },
            ("POST", ["oauth", "token"]) => self.oauth_token(call),
            (_, ["session"]) => {
                match cookie(call.head, "session").and_then(|t| self.verify(&t, call.now_ms)) {
                    Some(user) => Answer::json(200, &json!({"user": user})),
                    None => Answer::text(401, "no valid session cookie; POST /login first"),
                }
            }
            (_, ["cookies"]) => {
                let all: serde_json::Map<String, Value> = cookies(call.head)
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect();
                Answer::json(200, &Value::Object(all))
            }
            (_, ["cookies", "set"]) => {
                let params = form(call.query);
                let path = params
                    .iter()
                    .find(|(k, _)| k == "path")
                    .map_or("/".to_owned(), |(_, v)| v.clone());
                let mut a = Answer::text(200, "ok");
                for (k, v) in params.iter().filter(|(k, _)| k != "path") {
                    a = a.header(format!("Set-Cookie: {k}={v}; Path={path}"));
                }
                a
            }
            (_, ["cookies", "delete"]) => {
                let mut a = Answer::text(200, "ok");
                for (k, _) in form(call.query) {
                    a = a.header(format!("Set-Cookie: {k}=; Path=/; Max-Age=0"));
                }
                a
            }
            (_, ["api", "items", ..]) => self.items(call, &segments[2..]),
            ("POST", ["jobs"]) => super::jobs::Jobs::submit(&self.jobs, call),
            ("GET", ["jobs", id]) => super::jobs::Jobs::poll(&self.jobs, id),
            ("POST", ["signed"]) => super::jobs::signed(call),
            ("GET", ["search"]) => {
                let q = form(call.query)
                    .into_iter()
                    .find(|(k, _)| k == "q")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let h = fnv(q.as_bytes());
                let results: Vec<Value> = (0..3)
                    .map(|i| json!({"id": (h >> (i * 10)) % 1000}))
                    .collect();
                Answer::json(200, &json!({"query": q, "results": results}))
            }
            // Under any prefix, so that a host's base path (`http://host/staging`) can be tested.
            (_, s) if s.contains(&"anything") => Answer::json(200, &echo(call)),
            _ => return None,
        };
        Some(answer)
    }

    fn login(&self, call: &Call<'_>) -> Answer {
        let v: Value = serde_json::from_slice(call.body).unwrap_or(Value::Null);
        let user = v
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("anonymous")
            .to_owned();
        if v.get("password").and_then(Value::as_str) == Some("wrong") {
            return Answer::text(401, "wrong password");
        }
        let token = self.token(&user, 0);
        Answer::json(200, &json!({"token": token, "user": user}))
            .header(format!("Set-Cookie: session={token}; Path=/; HttpOnly"))
    }

    fn oauth_token(&self, call: &Call<'_>) -> Answer {
        let params = form(&String::from_utf8_lossy(call.body));
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("grant_type") != Some("client_credentials") {
            return Answer::json(400, &json!({"error": "unsupported_grant_type"}));
        }
        let (Some(id), Some(secret)) = (get("client_id"), get("client_secret")) else {
            return Answer::json(400, &json!({"error": "invalid_request"}));
        };
        if secret != CLIENT_SECRET {
            return Answer::json(401, &json!({"error": "invalid_client"}));
        }
        let ttl: u64 = form(call.query)
            .into_iter()
            .find(|(k, _)| k == "ttl")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(3600);
        let token = self.token(id, call.now_ms + ttl * 1000);
        Answer::json(
            200,
            &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
        )
    }

    fn items(&self, call: &Call<'_>, rest: &[&str]) -> Answer {
        let Some(user) = self.bearer_user(call) else {
            return Answer::text(401, "missing or invalid bearer token; POST /login first");
        };
        let mut items = self
            .items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = rest.first().and_then(|s| s.parse::<u64>().ok());
        match (call.method, rest, id) {
            ("POST", [] | [""], _) => {
                let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(call.body)
                else {
                    return Answer::text(400, "send a JSON object");
                };
                if items.by_id.len() >= MAX_ITEMS {
                    items.by_id.clear();
                }
                items.next += 1;
                let id = items.next;
                fields.insert("id".into(), id.into());
                fields.insert("owner".into(), user.clone().into());
                let v = Value::Object(fields);
                items.by_id.insert(id, (user, v.clone()));
                Answer::json(201, &v).header(format!("Location: /api/items/{id}"))
            }
            ("GET", [] | [""], _) => {
                let mut ids: Vec<u64> = items
                    .by_id
                    .iter()
                    .filter(|(_, (owner, _))| *owner == user)
                    .map(|(id, _)| *id)
                    .collect();
                ids.sort_unstable();
                ids.truncate(50);
                Answer::json(200, &json!({"items": ids}))
            }
            (method, [_], Some(id)) => {
                let mine = items
                    .by_id
                    .get(&id)
                    .is_some_and(|(owner, _)| *owner == user);
                if !mine {
                    return Answer::text(404, "no such item of yours");
                }
                match method {
                    "GET" => Answer::json(200, &items.by_id[&id].1),
                    "PUT" | "PATCH" => {
                        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(call.body)
                        else {
                            return Answer::text(400, "send a JSON object");
                        };
                        let entry = items.by_id.get_mut(&id).expect("checked above");
                        if let Value::Object(stored) = &mut entry.1 {
                            for (k, v) in fields {
                                if k != "id" && k != "owner" {
                                    stored.insert(k, v);
                                }
                            }
                        }
                        Answer::json(200, &entry.1)
                    }
                    "DELETE" => {
                        items.by_id.remove(&id);
                        Answer {
                            status: 204,
                            content_type: "text/plain",
                            body: Vec::new(),
                            headers: Vec::new(),
                        }
                    }
                    _ => Answer::text(405, "GET, PUT, PATCH or DELETE"),
                }
            }
            _ => Answer::text(404, "not found"),
        }
    }

    /// The user of the request's bearer token.
    fn bearer_user(&self, call: &Call<'_>) -> Option<String> {
        let auth = header(call.head, "authorization")?;
        let token = auth.strip_prefix("Bearer ")?.trim();
        if token.matches('.').count() == 2 && token.starts_with("eyJ") {
            return verify_jwt(token);
        }
        self.verify(token, call.now_ms)
    }

    /// A token for `user`: `<user hex>.<expiry ms, 0 for none>.<mac>`.
    pub fn token(&self, user: &str, expires_ms: u64) -> String {
        let user_hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
        let mac = mix(fnv(format!("{user_hex}.{expires_ms}").as_bytes()) ^ self.secret);
        format!("{user_hex}.{expires_ms}.{mac:016x}")
    }

    /// The user of a valid, unexpired token.
    pub fn verify(&self, token: &str, now_ms: u64) -> Option<String> {
        let mut parts = token.split('.');
        let (user_hex, expires, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let expires_ms: u64 = expires.parse().ok()?;
        if parts.next().is_some() || self.token_with_hex(user_hex, expires_ms) != mac {
            return None;
        }
        if expires_ms != 0 && now_ms >= expires_ms {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..user_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(user_hex.get(i..i + 2)?, 16).ok())
            .collect();
        String::from_utf8(bytes?).ok()
    }

    fn token_with_hex(&self, user_hex: &str, expires_ms: u64) -> String {
        format!(
            "{:016x}",
            mix(fnv(format!("{user_hex}.{expires_ms}").as_bytes()) ^ self.secret)
        )
    }
}

fn verify_jwt(token: &str) -> Option<String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    crate::scenario::auth::install_crypto();
    let header = decode_header(token).ok()?;
    let key = match header.alg {
        Algorithm::HS256 => DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        Algorithm::RS256 => DecodingKey::from_rsa_pem(RS256_PUBLIC.as_bytes()).ok()?,
        _ => return None,
    };
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    let data = decode::<Value>(token, &key, &validation).ok()?;
    data.claims.get("sub")?.as_str().map(str::to_owned)
}

/// The request as JSON.
fn echo(call: &Call<'_>) -> Value {
    let query: serde_json::Map<String, Value> = form(call.query)
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let headers: serde_json::Map<String, Value> = headers(call.head)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::from(v)))
        .collect();
    json!({
        "method": call.method,
        "path": call.path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(call.body),
    })
}

/// Every header of a request head as (name, value).
pub(crate) fn headers(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    text.split("\r\n")
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

pub(crate) fn header(head: &[u8], name: &str) -> Option<String> {
    headers(head)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn cookies(head: &[u8]) -> Vec<(String, String)> {
    headers(head)
        .into_iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| {
            v.split(';')
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_owned(), v.trim().to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn cookie(head: &[u8], name: &str) -> Option<String> {
    cookies(head)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `a=1&b=x%20y` as decoded pairs.
pub(crate) fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', ..) => out.push(b' '),
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 2;
            }
            (c, ..) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_refuse_forgeries() {
        let api = Api {
            secret: 99,
            items: Mutex::default(),
            jobs: Mutex::default(),
        };
        let t = api.token("a@x.io", 0);
        assert_eq!(api.verify(&t, 5).as_deref(), Some("a@x.io"));
        let other = Api {
            secret: 98,
            items: Mutex::default(),
            jobs: Mutex::default(),
        };
        assert_eq!(other.verify(&t, 5), None);
        let expiring = api.token("svc", 1000);
        assert!(api.verify(&expiring, 999).is_some());
        assert!(api.verify(&expiring, 1000).is_none());
        assert!(api.verify("nonsense", 0).is_none());
        // Another user's name with this user's mac: refused.
        assert!(t.starts_with("61"));
        assert!(api.verify(&format!("62{}", &t[2..]), 0).is_none());
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            form("a=1&b=x%20y+z&c&d=%zz"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into())
            ]
        );
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("a%4"), "a%4");
    }
}
