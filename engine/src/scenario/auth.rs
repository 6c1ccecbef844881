//! Authentication. Basic and Bearer are header templates folded into each request's wire template
//! (a constant token costs nothing at run time). JWT and OAuth2 need state: a JWT is minted per user
//! from a claims template and minted again before it expires; an OAuth2 client-credentials token is
//! fetched with a real request (logged as a sample), cached per user or per core, and fetched again
//! before it expires. The login-then-use-token flow needs no helper: `on_start` logs in, `extract`
//! takes the token, and `Bearer("{{token}}")` sends it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};

use super::template::{Env, Template};
use crate::profile::spec::TokenCache;

/// How a request authenticates.
#[derive(Debug, Clone, Default)]
pub(crate) enum AuthUse {
    /// Not by auth (a header may still carry credentials).
    #[default]
    None,
    /// `Authorization: <value>`, with the value computed by a template (Basic, Bearer).
    Header(Template),
    /// `Authorization: <value>` from per-user or per-core state: `Scenario::auths[i]`.
    Dynamic(usize),
}

/// Authentication with state.
#[derive(Debug, Clone)]
pub(crate) enum AuthPlan {
    /// A JWT per user.
    Jwt {
        algorithm: jsonwebtoken::Algorithm,
        key: SigningKey,
        /// Renders the claims as a JSON object.
        claims: Template,
        ttl: Option<Duration>,
    },
    /// An OAuth2 client-credentials token.
    OAuth2 {
        /// The token request, by index.
        request: usize,
        cache: TokenCache,
        refresh_before: Duration,
        /// Where the token request's extractions put `access_token` and `expires_in`.
        token_var: u16,
        expires_var: u16,
    },
}

/// An encoding key that does not print itself.
#[derive(Clone)]
pub(crate) struct SigningKey(pub EncodingKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// How long an OAuth2 token lives when the server does not say (`expires_in` absent).
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A user's credential for one dynamic auth: the header value and when to renew it.
#[derive(Debug, Default)]
pub(crate) struct Credential {
    /// `Bearer ...`.
    pub value: Vec<u8>,
    /// Renew at or after this time (µs since time zero); 0 means there is none yet.
    pub renew_at_us: u64,
}

impl Credential {
    /// Whether the credential must be (re)made at `now_us`.
    pub fn stale(&self, now_us: u64) -> bool {
        self.value.is_empty() || now_us >= self.renew_at_us
    }
}

/// A core's shared OAuth2 token, with the users waiting for it to be fetched.
#[derive(Debug, Default)]
pub(crate) struct SharedToken {
    pub credential: RefCell<Credential>,
    /// A user is fetching a token; others wait instead of fetching too.
    pub fetching: Cell<bool>,
    /// Users (by local index) of the core's loop waiting for the fetch in progress.
    user_waiters: RefCell<Vec<u32>>,
}

impl SharedToken {
    /// User `local` waits for the fetch in progress; [`SharedToken::finish_fetch`] names it.
    pub fn wait_for_fetch(&self, local: u32) {
        self.user_waiters.borrow_mut().push(local);
    }

    /// Ends a fetch, moving the users that waited for it into `wake`.
    pub fn finish_fetch(&self, wake: &mut Vec<u32>) {
        self.fetching.set(false);
        wake.append(&mut self.user_waiters.borrow_mut());
    }
}

/// When to renew a credential that lives `lifetime` from `now_us`: `before` ahead of expiry, but
/// never later than half way through a short lifetime.
pub(crate) fn renew_at(now_us: u64, lifetime: Duration, before: Duration) -> u64 {
    let life = crate::clock::micros(lifetime);
    let margin = crate::clock::micros(before).min(life / 2);
    now_us.saturating_add(life - margin)
}

/// Why a JWT could not be minted (a bad claims template result or a key the algorithm refuses).
#[derive(Debug)]
pub(crate) struct MintError(pub String);

/// Mints a JWT for a user: renders the claims, adds `iat` and `exp` when there is a lifetime, signs,
/// and writes `Bearer <token>` into `out`.
pub(crate) fn mint_jwt(
    algorithm: jsonwebtoken::Algorithm,
    key: &SigningKey,
    claims: &Template,
    ttl: Option<Duration>,
    unix_secs: u64,
    env: &mut Env<'_>,
    out: &mut Vec<u8>,
) -> Result<(), MintError> {
    let mut json = Vec::new();
    claims.render(&mut json, env);
    let mut value: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| MintError(format!("JWT claims are not valid JSON: {e}")))?;
    if let (Some(ttl), Some(map)) = (ttl, value.as_object_mut()) {
        map.entry("iat").or_insert(unix_secs.into());
        map.entry("exp")
            .or_insert((unix_secs + ttl.as_secs().max(1)).into());
    }
    let token = jsonwebtoken::encode(&Header::new(algorithm), &value, &key.0)
        .map_err(|e| MintError(format!("cannot sign the JWT: {e}")))?;
    out.clear();
    out.extend_from_slice(b"Bearer ");
    out.extend_from_slice(token.as_bytes());
    Ok(())
}

/// Makes sure jsonwebtoken has its RustCrypto provider (it cannot infer one if another crate in the
/// build enables a second backend).
pub(crate) fn install_crypto() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_times() {
        let s = Duration::from_secs;
        // An hour-long token is renewed 30 s before it expires.
        assert_eq!(renew_at(0, s(3600), s(30)), 3_570_000_000);
        // A 10 s token with a 30 s margin: half way, not immediately.
        assert_eq!(renew_at(1_000_000, s(10), s(30)), 6_000_000);
    }
}
