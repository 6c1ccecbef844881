//! A request's credential: a JWT minted on the spot, or an OAuth2 token fetched per user or once per
//! core (other users of the core wait for it); a credential that cannot be made is a failed sample.

use std::time::Duration;

use formats::Outcome;

use super::{AuthStep, UserState};
use crate::clock::Clock;
use crate::core::{InFlight, Message, Recorder, TaskMark};
use crate::http::Exchange;
use crate::profile::spec::TokenCache;
use crate::rng::Rng;
use crate::scenario::auth::{self, AuthPlan, Credential};
use crate::scenario::exec::{CONNECT_FAILURE_PAUSE, CoreScenario, Flow};
use crate::scenario::template::Env;

impl UserState {
    /// Makes sure auth plan `i`'s credential is there for request `r` of user `local`, minting a JWT
    /// on the spot, or saying which token request to make or that the user must wait for another's.
    #[allow(clippy::too_many_arguments)]
    pub fn ensure_auth(
        &mut self,
        sc: &CoreScenario,
        rng: &mut Rng,
        clock: &Clock,
        rec: &mut Recorder,
        local: u32,
        global: u32,
        r: usize,
        i: usize,
        ready_us: u64,
        mark: TaskMark,
    ) -> AuthStep {
        let now = clock.now_us();
        match &sc.plan.auths[i] {
            AuthPlan::Jwt {
                algorithm,
                key,
                claims,
                ttl,
            } => {
                if !self.credentials[i].stale(now) {
                    return AuthStep::Ready;
                }
                let unix_secs =
                    u64::try_from(clock.wall_ns / 1_000_000_000).unwrap_or(0) + now / 1_000_000;
                let mut value = std::mem::take(&mut self.credentials[i].value);
                let minted = {
                    let mut env = env!(
                        sc,
                        &self.vars,
                        &self.rows,
                        rng,
                        global,
                        self.iteration,
                        clock,
                        &mut self.scratch
                    );
                    auth::mint_jwt(
                        *algorithm, key, claims, *ttl, unix_secs, &mut env, &mut value,
                    )
                };
                self.credentials[i].value = value;
                match minted {
                    Ok(()) => {
                        self.credentials[i].renew_at_us = match ttl {
                            Some(t) => auth::renew_at(now, *t, *t / 10),
                            None => u64::MAX,
                        };
                        AuthStep::Ready
                    }
                    Err(e) => {
                        self.credentials[i].value.clear();
                        local_failure(sc, rec, now, local, global, mark, r, ready_us, &e.0);
                        // Nothing went out: the pause keeps a user whose claims never render from
                        // spinning the core.
                        AuthStep::Failed(Flow::EndIteration(CONNECT_FAILURE_PAUSE))
                    }
                }
            }
            AuthPlan::OAuth2 {
                request,
                cache,
                expires_var,
                ..
            } => {
                let fetch = |user: &mut UserState| {
                    user.vars[usize::from(*expires_var)].clear();
                    AuthStep::Fetch(*request)
                };
                match cache {
                    TokenCache::PerUser if self.credentials[i].stale(now) => fetch(self),
                    TokenCache::PerUser => AuthStep::Ready,
                    TokenCache::PerCore => {
                        let shared = &sc.tokens[i];
                        if !shared.credential.borrow().stale(now) {
                            AuthStep::Ready
                        } else if shared.fetching.get() {
                            shared.wait_for_fetch(local);
                            AuthStep::Wait
                        } else {
                            shared.fetching.set(true);
                            fetch(self)
                        }
                    }
                }
            }
        }
    }

    /// The token request of auth plan `i` ended with `flow`: on success the credential is taken from
    /// the variables its extractions set. Users waiting for a per-core token go into `wake`. Returns
    /// the flow of the request that needed the token.
    pub fn token_fetched(
        &mut self,
        sc: &CoreScenario,
        clock: &Clock,
        i: usize,
        flow: Flow,
        wake: &mut Vec<u32>,
    ) -> Flow {
        let AuthPlan::OAuth2 {
            cache,
            refresh_before,
            token_var,
            expires_var,
            ..
        } = &sc.plan.auths[i]
        else {
            return flow;
        };
        let credential = (flow == Flow::Continue).then(|| {
            let lifetime = std::str::from_utf8(&self.vars[usize::from(*expires_var)])
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map_or(auth::DEFAULT_TOKEN_LIFETIME, Duration::from_secs_f64);
            let mut value = b"Bearer ".to_vec();
            value.extend_from_slice(&self.vars[usize::from(*token_var)]);
            Credential {
                value,
                renew_at_us: auth::renew_at(clock.now_us(), lifetime, *refresh_before),
            }
        });
        match cache {
            TokenCache::PerUser => {
                if let Some(c) = credential {
                    self.credentials[i] = c;
                }
            }
            TokenCache::PerCore => {
                let shared = &sc.tokens[i];
                if let Some(c) = credential {
                    *shared.credential.borrow_mut() = c;
                }
                shared.finish_fetch(wake);
            }
        }
        flow
    }
}

/// Logs a failure that happened before request `r` could be sent (a JWT that cannot be minted).
#[allow(clippy::too_many_arguments)]
fn local_failure(
    sc: &CoreScenario,
    rec: &mut Recorder,
    now: u64,
    local: u32,
    global: u32,
    mark: TaskMark,
    r: usize,
    ready_us: u64,
    why: &str,
) {
    rec.begin(
        local as usize,
        InFlight {
            name: sc.requests[r].name,
            intended_us: ready_us.min(now),
            actual_us: now,
            user: global,
            mark,
        },
    );
    rec.finish(
        local as usize,
        &Exchange::default(),
        Outcome::Other,
        Message::Text(why),
        now,
        false,
        false,
    );
}
