//! Auth helpers: Basic and Bearer headers, JWTs signed per user (the key checked at load time) and
//! the OAuth2 client-credentials token request.

use std::time::Duration;

use base64::Engine as _;

use super::{CompileError, Compiler, KindCtx, error};
use crate::plan::StatusSet;
use crate::profile::spec::{AuthSpec, JwtAlgorithm, Method};
use crate::scenario::RequestPlan;
use crate::scenario::auth::{AuthPlan, AuthUse, SigningKey};
use crate::scenario::json::Selector;
use crate::scenario::rules::{self, Extraction, Source};
use crate::scenario::template::{Escape, Expr, Template};

impl Compiler<'_> {
    pub(super) fn auth(
        &mut self,
        kind: &KindCtx,
        auth: &AuthSpec,
        field: &str,
    ) -> Result<AuthUse, CompileError> {
        match auth {
            AuthSpec::Off => Ok(AuthUse::None),
            AuthSpec::Basic { user, password } => {
                let u = self.tpl(kind, user, Escape::None, &format!("{field}.user"))?;
                let p = self.tpl(kind, password, Escape::None, &format!("{field}.password"))?;
                let mut t = Template::literal("Basic ");
                match (u.static_bytes(), p.static_bytes()) {
                    (Some(u), Some(p)) => {
                        let joined = [u, b":", p].concat();
                        t.push_lit(
                            base64::engine::general_purpose::STANDARD
                                .encode(joined)
                                .as_bytes(),
                        );
                    }
                    _ => {
                        let mut args = u.to_exprs();
                        args.push(Expr::Text((*b":").into()));
                        args.extend(p.to_exprs());
                        t.push_expr(
                            Expr::Base64 {
                                url: false,
                                args: args.into(),
                            },
                            Escape::Header,
                        );
                    }
                }
                Ok(AuthUse::Header(t))
            }
            AuthSpec::Bearer(token) => {
                let mut t = Template::literal("Bearer ");
                t.append(&self.tpl(kind, token, Escape::Header, field)?);
                Ok(AuthUse::Header(t))
            }
            AuthSpec::Jwt {
                algorithm,
                secret,
                key_file,
                claims,
                ttl,
            } => {
                let (alg, key) = match algorithm {
                    JwtAlgorithm::HS256 => {
                        let text = secret.as_deref().unwrap_or_default();
                        let secret = self.constant(text, &format!("{field}.secret"))?;
                        (
                            jsonwebtoken::Algorithm::HS256,
                            jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                        )
                    }
                    JwtAlgorithm::RS256 => {
                        let file = key_file.as_deref().unwrap_or_default();
                        let name = self.constant(file, &format!("{field}.key_file"))?;
                        let path = self.base_dir.join(&name);
                        let pem = std::fs::read(&path).map_err(|e| {
                            error(
                                format!("{field}.key_file"),
                                Some(&format!("{file:?}")),
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                            error(
                                format!("{field}.key_file"),
                                Some(&format!("{file:?}")),
                                format!(
                                    "{} is not an RSA private key in PEM (PKCS#1 or PKCS#8): {e}",
                                    path.display()
                                ),
                            )
                        })?;
                        (jsonwebtoken::Algorithm::RS256, key)
                    }
                };
                // Sign once now, so that a key the algorithm cannot use is a load-time error.
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(alg),
                    &serde_json::json!({"probe": true}),
                    &key,
                )
                .map_err(|e| {
                    let (f, snippet) = match algorithm {
                        JwtAlgorithm::HS256 => ("secret", secret.as_deref()),
                        JwtAlgorithm::RS256 => ("key_file", key_file.as_deref()),
                    };
                    error(
                        format!("{field}.{f}"),
                        snippet,
                        format!("cannot sign a JWT with this key: {e}"),
                    )
                })?;
                let mut t = Template::default();
                self.json(kind, claims, &mut t, &format!("{field}.claims"))?;
                self.out.auths.push(AuthPlan::Jwt {
                    algorithm: alg,
                    key: SigningKey(key),
                    claims: t,
                    ttl: ttl.map(|d| d.0),
                });
                Ok(AuthUse::Dynamic(self.out.auths.len() - 1))
            }
            AuthSpec::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
                cache,
                refresh_before,
            } => {
                let url = self.constant(token_url, &format!("{field}.token_url"))?;
                let path = match url.strip_prefix("http://") {
                    Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
                    None => url.clone(),
                };
                let index = self.out.auths.len();
                let token_var = self.slot(&format!("oauth2#{index}.access_token"));
                let expires_var = self.slot(&format!("oauth2#{index}.expires_in"));
                let mut body = Template::literal("grant_type=client_credentials&client_id=");
                body.append(&self.tpl(
                    kind,
                    client_id,
                    Escape::Component,
                    &format!("{field}.client_id"),
                )?);
                body.push_lit(b"&client_secret=");
                body.append(&self.tpl(
                    kind,
                    client_secret,
                    Escape::Component,
                    &format!("{field}.client_secret"),
                )?);
                if let Some(scope) = scope {
                    body.push_lit(b"&scope=");
                    body.append(&self.tpl(
                        kind,
                        scope,
                        Escape::Component,
                        &format!("{field}.scope"),
                    )?);
                }
                let mut full_path = Template::literal(self.base_path.as_bytes());
                full_path.append(&self.tpl(
                    kind,
                    &path,
                    Escape::Path,
                    &format!("{field}.token_url"),
                )?);
                let json = |p: &str| Selector::parse(p).expect("a valid pointer").into();
                let mut extract = vec![
                    Extraction {
                        var: token_var,
                        source: Source::Json(json("/access_token")),
                        optional: false,
                        messages: [
                            "OAuth2 token response has no access_token".into(),
                            "OAuth2 token response is not JSON".into(),
                        ],
                    },
                    Extraction {
                        var: expires_var,
                        source: Source::Json(json("/expires_in")),
                        optional: true,
                        messages: [String::new(), String::new()],
                    },
                ];
                let json = rules::share_selectors(&mut extract, &mut []);
                self.out.requests.push(RequestPlan {
                    name: format!(
                        "POST {} (OAuth2 token)",
                        path.split('?').next().unwrap_or_default()
                    ),
                    method: Method::POST,
                    path: full_path,
                    headers: vec![("Accept".into(), Template::literal("application/json"))],
                    body: Some(("application/x-www-form-urlencoded".into(), body)),
                    expect: StatusSet::Success,
                    extract,
                    checks: Vec::new(),
                    json,
                    auth: AuthUse::None,
                    cookies: kind.cookies,
                });
                self.out.auths.push(AuthPlan::OAuth2 {
                    request: self.out.requests.len() - 1,
                    cache: *cache,
                    refresh_before: refresh_before.map_or(Duration::from_secs(30), |d| d.0),
                    token_var,
                    expires_var,
                });
                Ok(AuthUse::Dynamic(index))
            }
        }
    }
}
