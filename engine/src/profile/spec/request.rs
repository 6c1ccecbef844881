//! One HTTP request: method, body, extraction, checks and authentication.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DurationSpec;

/// One HTTP request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Request")]
pub struct RequestSpec {
    /// The method.
    #[serde(default)]
    pub method: Method,
    /// Path and query, starting with `/`; may use `${variable}` and `{{template}}`.
    pub path: String,
    /// Query parameters added to the path, URL-encoded (Locust `params=`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The name samples are grouped under; defaults to `METHOD path` (Locust `name=`).
    #[serde(default)]
    pub name: Option<String>,
    /// Labels for selecting at load time (`--tags`, `--exclude-tags`), over its task's and kind's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Headers for this request only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: Option<BodySpec>,
    /// Status codes counted as success; absent means 200–399 (Locust `catch_response`).
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
    /// Values taken from the response into user variables: `{"token": Json("/token")}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extract: BTreeMap<String, ExtractSpec>,
    /// Checks on the response; a failed one fails the sample with outcome `check`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// Authentication for this request (`Off` for none), over the user kind's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
}

/// Where an extracted value comes from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Extract")]
pub enum ExtractSpec {
    /// A JSON pointer (`/token`) or JSONPath (`$.items[0].id`) into the body.
    Json(String),
    /// The first capture group (or the whole match) of a regex over the body.
    Regex(String),
    /// A response header.
    Header(String),
    /// A cookie the response sets.
    Cookie(String),
    /// The status code.
    Status,
    /// Not a failure when missing: the variable keeps its value.
    Optional(Box<ExtractSpec>),
    /// One of the values a JSON selector matches, drawn at random (Gatling's `findRandom`):
    /// `Random(Json("$.results[*].id"))`.
    Random(Box<ExtractSpec>),
}

/// A check on a response.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Check")]
pub enum CheckSpec {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The body contains this text (a template).
    BodyContains(String),
    /// The body matches this regex.
    BodyMatches(String),
    /// The JSON value at this selector equals this value (strings may be templates).
    JsonEquals(String, ron::Value),
    /// The JSON selector matches something.
    JsonExists(String),
    /// The response has this header.
    HeaderPresent(String),
    /// The header equals this value (a template; case-sensitive).
    HeaderEquals(String, String),
    /// The header contains this text.
    HeaderContains(String, String),
    /// The response took less than this, from the request's actual start.
    LatencyUnder(DurationSpec),
    /// The inner check fails.
    Not(Box<CheckSpec>),
}

/// How requests authenticate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Auth")]
pub enum AuthSpec {
    /// No authentication (to switch it off for one request or user kind).
    Off,
    /// HTTP Basic: `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user name (a template).
        user: String,
        /// The password (a template).
        password: String,
    },
    /// A bearer token (a template, e.g. `"{{token}}"` after a login).
    Bearer(String),
    /// A JWT signed by the engine for each user, sent as a bearer token.
    Jwt {
        /// HS256 (shared secret) or RS256 (RSA private key).
        algorithm: JwtAlgorithm,
        /// The HS256 secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// The RS256 private key, PEM (PKCS#1 or PKCS#8), relative to the profile.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_file: Option<String>,
        /// The claims (a map; string values are templates, e.g. `"sub": "user-{{user_id()}}"`).
        claims: ron::Value,
        /// Lifetime: adds `iat` and `exp`, and the token is minted again before it expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<DurationSpec>,
    },
    /// OAuth2 client credentials: the token is fetched with a request (logged as a sample), cached,
    /// and fetched again before it expires.
    OAuth2 {
        /// The token endpoint: a path on the target, or an `http://` URL on the same host.
        token_url: String,
        /// The client id (a template).
        client_id: String,
        /// The client secret (a template).
        client_secret: String,
        /// Requested scope.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// Share one token among a core's users (`PerCore`, the default) or fetch one per user.
        #[serde(default)]
        cache: TokenCache,
        /// Fetch a new token this long before the old one expires (default 30s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_before: Option<DurationSpec>,
    },
}

/// JWT signing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
}

/// Who shares an OAuth2 token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum TokenCache {
    /// One token per core, shared by its users.
    #[default]
    PerCore,
    /// One token per user.
    PerUser,
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[allow(missing_docs, clippy::upper_case_acronyms)]
pub enum Method {
    #[default]
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
    HEAD,
}

impl Method {
    /// The method as it appears on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Body")]
pub enum BodySpec {
    /// Sent as written (`Content-Type: text/plain` unless a header says otherwise).
    Text(String),
    /// A RON value sent as JSON (`Content-Type: application/json`).
    Json(ron::Value),
    /// Form fields, URL-encoded (`Content-Type: application/x-www-form-urlencoded`).
    Form(BTreeMap<String, String>),
}
