//! Provider presets (`provider: google`, `github`, …): each is a small table of endpoints,
//! scopes and claim rules on top of the generic path. `generic` and `google` use OpenID
//! discovery; the others use the plain OAuth 2.0 path in [`super::oauth2`]. `issuer_url`
//! replaces the base of a preset's endpoints (Kratos does this for `gitlab`; Latch for every
//! preset, e.g. GitHub Enterprise Server or a test server), and `auth_url`/`token_url`
//! replace single endpoints of the OAuth 2.0 presets. Kratos: `provider_config.go`,
//! `provider_*.go`.

use serde_json::json;

use super::client::ProviderError;
use super::oauth2::{ClaimsFrom, Plan};
use crate::config::OidcProvider;

/// The `provider` values Latch implements.
pub const SUPPORTED: &[&str] = &[
    "generic",
    "google",
    "github",
    "gitlab",
    "microsoft",
    "discord",
    "slack",
    "apple",
];

/// How a configured provider signs in.
#[derive(Debug, Clone)]
pub enum Route {
    /// OpenID discovery at the provider's `issuer_url` (as given, or the preset's), plus fixed
    /// authorization parameters.
    Discovery {
        /// The provider with the preset's issuer and scopes filled in.
        provider: Box<OidcProvider>,
        /// Extra authorization URL parameters.
        params: Vec<(String, String)>,
    },
    /// Plain OAuth 2.0 with the preset's endpoints and claims.
    OAuth2(Box<Plan>),
}

/// `issuer_url` without a trailing slash, or `default`.
fn base(p: &OidcProvider, default: &str) -> String {
    p.issuer_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_string()
}

fn with_openid(scope: &[String]) -> Vec<String> {
    let mut s = scope.to_vec();
    if !s.iter().any(|x| x == "openid") {
        s.push("openid".into());
    }
    s
}

fn set(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The route of `p` at `now` (Apple's client secret is signed with `now`).
pub fn route(p: &OidcProvider, now: time::OffsetDateTime) -> Result<Route, ProviderError> {
    route_with(p, Some(now))
}

/// The URLs a `provider` button sends the browser to (their origins must be allowed as form
/// targets by the built-in pages): the preset's authorization endpoint, or the issuer and
/// `auth_url` as configured.
pub fn authorization_urls(p: &OidcProvider) -> Vec<String> {
    let mut out: Vec<String> = [&p.issuer_url, &p.auth_url].into_iter().flatten().cloned().collect();
    match route_with(p, None) {
        Ok(Route::OAuth2(plan)) => out.push(plan.auth_url),
        Ok(Route::Discovery { provider, .. }) => out.extend(provider.issuer_url),
        Err(_) => {}
    }
    out
}

/// [`route`]; without `now` Apple's client secret is left unsigned.
fn route_with(p: &OidcProvider, now: Option<time::OffsetDateTime>) -> Result<Route, ProviderError> {
    let kind = p.provider.as_str();
    let plan = |auth_url: String, token_url: String, scopes: Vec<String>, claims: ClaimsFrom| Plan {
        auth_url: set(&p.auth_url).unwrap_or(auth_url),
        token_url: set(&p.token_url).unwrap_or(token_url),
        scopes,
        params: vec![],
        nonce: false,
        client_secret: p.client_secret.clone(),
        claims,
    };
    let requested_claims = || {
        p.requested_claims
            .as_ref()
            .filter(|c| !c.is_null())
            .map(|c| ("claims".to_string(), c.to_string()))
    };
    Ok(match kind {
        "generic" | "" => Route::Discovery {
            provider: Box::new(p.clone()),
            params: vec![],
        },
        "google" => {
            let mut g = p.clone();
            g.issuer_url = Some(base(p, "https://accounts.google.com"));
            // Google wants `access_type=offline` instead of the `offline_access` scope.
            let offline = g.scope.iter().any(|s| s == "offline_access");
            g.scope.retain(|s| s != "offline_access");
            let params = if offline {
                vec![("access_type".to_string(), "offline".to_string())]
            } else {
                vec![]
            };
            Route::Discovery {
                provider: Box::new(g),
                params,
            }
        }
        "github" => {
            // github.com, or GitHub Enterprise Server at `issuer_url` (API under /api/v3).
            let (web, api) = match set(&p.issuer_url) {
                Some(b) => {
                    let b = b.trim_end_matches('/').to_string();
                    (b.clone(), format!("{b}/api/v3"))
                }
                None => ("https://github.com".to_string(), "https://api.github.com".to_string()),
            };
            Route::OAuth2(Box::new(plan(
                format!("{web}/login/oauth/authorize"),
                format!("{web}/login/oauth/access_token"),
                p.scope.clone(),
                ClaimsFrom::GitHub { api },
            )))
        }
        "gitlab" => {
            let b = base(p, "https://gitlab.com");
            Route::OAuth2(Box::new(plan(
                format!("{b}/oauth/authorize"),
                format!("{b}/oauth/token"),
                p.scope.clone(),
                ClaimsFrom::GitLab {
                    userinfo: format!("{b}/oauth/userinfo"),
                    issuer: b.clone(),
                },
            )))
        }
        "discord" => {
            let api = base(p, "https://discord.com/api/v9");
            let mut plan = plan(
                format!("{api}/oauth2/authorize"),
                format!("{api}/oauth2/token"),
                p.scope.clone(),
                ClaimsFrom::Discord { api: api.clone() },
            );
            // Kratos: do not ask again when the user already agreed.
            plan.params.push(("prompt".into(), "none".into()));
            Route::OAuth2(Box::new(plan))
        }
        "slack" => {
            // Slack's first OAuth version (v2 names the scope parameter differently).
            let b = base(p, "https://slack.com");
            Route::OAuth2(Box::new(plan(
                format!("{b}/oauth/authorize"),
                format!("{b}/api/oauth.access"),
                p.scope.clone(),
                ClaimsFrom::Slack {
                    api: format!("{b}/api"),
                    issuer: format!("{b}/oauth/"),
                },
            )))
        }
        "microsoft" => {
            let tenant = set(&p.microsoft_tenant).ok_or_else(|| {
                ProviderError::Config(format!(
                    "no microsoft_tenant is set for the microsoft provider {:?}",
                    p.id
                ))
            })?;
            let login = base(p, "https://login.microsoftonline.com");
            let mut plan = plan(
                format!("{login}/{tenant}/oauth2/v2.0/authorize"),
                format!("{login}/{tenant}/oauth2/v2.0/token"),
                with_openid(&p.scope),
                ClaimsFrom::Microsoft {
                    login,
                    subject_source: set(&p.subject_source).unwrap_or_else(|| "userinfo".into()),
                },
            );
            plan.nonce = true;
            plan.params.extend(requested_claims());
            Route::OAuth2(Box::new(plan))
        }
        "apple" => {
            let issuer = base(p, "https://appleid.apple.com");
            let mut plan = plan(
                format!("{issuer}/auth/authorize"),
                format!("{issuer}/auth/token"),
                with_openid(&p.scope),
                ClaimsFrom::Apple { issuer: issuer.clone() },
            );
            plan.nonce = true;
            if let Some(now) = now {
                plan.client_secret = Some(apple_client_secret(p, &issuer, now)?);
            }
            plan.params.extend(requested_claims());
            // Apple posts the answer when names or the email are asked for.
            if p.scope.iter().any(|s| s == "email" || s == "name") {
                plan.params.push(("response_mode".into(), "form_post".into()));
            }
            Route::OAuth2(Box::new(plan))
        }
        other => {
            return Err(ProviderError::Config(format!(
                "provider type {other:?} is not supported, supported are: {}",
                SUPPORTED.join(", ")
            )));
        }
    })
}

/// Apple's client secret: an ES256 JWT signed with the team's private key, valid five
/// minutes (`iss` team id, `sub` client id, `aud` Apple, header `kid` the key id). Kratos:
/// `ProviderApple.newClientSecret`.
pub fn apple_client_secret(
    p: &OidcProvider,
    audience: &str,
    now: time::OffsetDateTime,
) -> Result<String, ProviderError> {
    use base64::Engine;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let missing = |k: &str| ProviderError::Config(format!("the apple provider {:?} has no {k}", p.id));
    let team = set(&p.apple_team_id).ok_or_else(|| missing("apple_team_id"))?;
    let key_id = set(&p.apple_private_key_id).ok_or_else(|| missing("apple_private_key_id"))?;
    let pem = set(&p.apple_private_key).ok_or_else(|| missing("apple_private_key"))?;
    let bad_key = || {
        ProviderError::Config(format!(
            "the apple_private_key of provider {:?} is not a PKCS#8 P-256 private key in PEM",
            p.id
        ))
    };
    let body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END PRIVATE KEY-----").next())
        .ok_or_else(bad_key)?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .map_err(|_| bad_key())?;
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng).map_err(|_| bad_key())?;
    let header = json!({"alg": "ES256", "kid": key_id, "typ": "JWT"});
    let iat = now.unix_timestamp();
    let claims = json!({"iss": team, "iat": iat, "exp": iat + 300, "aud": audience, "sub": p.client_id});
    let signing_input = format!(
        "{}.{}",
        crate::crypto::b64url(header.to_string().as_bytes()),
        crate::crypto::b64url(claims.to_string().as_bytes())
    );
    let sig = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|_| ProviderError::Config("signing the apple client secret failed".into()))?;
    Ok(format!("{signing_input}.{}", crate::crypto::b64url(sig.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn provider(kind: &str) -> OidcProvider {
        OidcProvider {
            id: kind.into(),
            provider: kind.into(),
            client_id: "cid".into(),
            client_secret: Some("sec".into()),
            scope: vec!["email".into()],
            ..Default::default()
        }
    }

    fn plan(p: &OidcProvider) -> Plan {
        match route(p, now()).unwrap() {
            Route::OAuth2(plan) => *plan,
            Route::Discovery { .. } => panic!("{} uses discovery", p.provider),
        }
    }

    #[test]
    fn default_endpoints_are_kratos() {
        let gh = plan(&provider("github"));
        assert_eq!(gh.auth_url, "https://github.com/login/oauth/authorize");
        assert_eq!(gh.token_url, "https://github.com/login/oauth/access_token");
        assert_eq!(
            gh.claims,
            ClaimsFrom::GitHub {
                api: "https://api.github.com".into()
            }
        );
        assert_eq!(gh.scopes, vec!["email".to_string()], "no openid for plain OAuth 2.0");
        let gl = plan(&provider("gitlab"));
        assert_eq!(gl.auth_url, "https://gitlab.com/oauth/authorize");
        let d = plan(&provider("discord"));
        assert_eq!(d.token_url, "https://discord.com/api/v9/oauth2/token");
        assert_eq!(d.params, vec![("prompt".to_string(), "none".to_string())]);
        let s = plan(&provider("slack"));
        assert_eq!(s.auth_url, "https://slack.com/oauth/authorize");
        assert_eq!(s.token_url, "https://slack.com/api/oauth.access");
        let mut m = provider("microsoft");
        assert!(matches!(route(&m, now()), Err(ProviderError::Config(_))));
        m.microsoft_tenant = Some("common".into());
        let m = plan(&m);
        assert_eq!(
            m.auth_url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
        );
        assert_eq!(m.scopes, vec!["email".to_string(), "openid".to_string()]);
        assert!(m.nonce);
        match route(&provider("google"), now()).unwrap() {
            Route::Discovery { provider, .. } => {
                assert_eq!(provider.issuer_url.as_deref(), Some("https://accounts.google.com"))
            }
            Route::OAuth2(_) => panic!("google uses discovery"),
        }
        assert!(matches!(
            route(&provider("facebook"), now()),
            Err(ProviderError::Config(_))
        ));
    }

    #[test]
    fn issuer_url_and_single_endpoints_override() {
        let mut gh = provider("github");
        gh.issuer_url = Some("http://127.0.0.1:9/".into());
        let plan_gh = plan(&gh);
        assert_eq!(plan_gh.auth_url, "http://127.0.0.1:9/login/oauth/authorize");
        assert_eq!(
            plan_gh.claims,
            ClaimsFrom::GitHub {
                api: "http://127.0.0.1:9/api/v3".into()
            }
        );
        gh.token_url = Some("http://127.0.0.1:10/token".into());
        assert_eq!(plan(&gh).token_url, "http://127.0.0.1:10/token");
        let mut gl = provider("gitlab");
        gl.issuer_url = Some("https://git.example.com".into());
        assert_eq!(
            plan(&gl).claims,
            ClaimsFrom::GitLab {
                userinfo: "https://git.example.com/oauth/userinfo".into(),
                issuer: "https://git.example.com".into()
            }
        );
    }

    #[test]
    fn authorization_urls_name_the_presets_defaults() {
        assert_eq!(
            authorization_urls(&provider("github")),
            vec!["https://github.com/login/oauth/authorize".to_string()]
        );
        assert_eq!(
            authorization_urls(&provider("google")),
            vec!["https://accounts.google.com".to_string()]
        );
        // Apple without its keys yet: still its authorization endpoint.
        assert_eq!(
            authorization_urls(&provider("apple")),
            vec!["https://appleid.apple.com/auth/authorize".to_string()]
        );
        let mut g = provider("generic");
        g.issuer_url = Some("https://idp.example".into());
        assert!(authorization_urls(&g).contains(&"https://idp.example".to_string()));
    }

    #[test]
    fn google_offline_access_becomes_access_type() {
        let mut g = provider("google");
        g.scope = vec!["email".into(), "offline_access".into()];
        match route(&g, now()).unwrap() {
            Route::Discovery { provider, params } => {
                assert_eq!(provider.scope, vec!["email".to_string()]);
                assert_eq!(params, vec![("access_type".to_string(), "offline".to_string())]);
            }
            Route::OAuth2(_) => panic!(),
        }
    }

    #[test]
    fn apple_client_secret_is_a_verifiable_es256_jwt() {
        use base64::Engine;
        use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let mut p = provider("apple");
        p.client_secret = None;
        p.apple_team_id = Some("TEAM123".into());
        p.apple_private_key_id = Some("KEY456".into());
        p.apple_private_key = Some(format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n",
            &b64[..64],
            &b64[64..]
        ));
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let plan = match route(&p, now).unwrap() {
            Route::OAuth2(plan) => plan,
            Route::Discovery { .. } => panic!(),
        };
        assert_eq!(plan.auth_url, "https://appleid.apple.com/auth/authorize");
        assert!(plan.params.contains(&("response_mode".into(), "form_post".into())));
        let jwt = plan.client_secret.unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": "KEY456", "typ": "JWT"}));
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(
            claims,
            json!({"iss": "TEAM123", "sub": "cid", "aud": "https://appleid.apple.com",
                   "iat": 1_800_000_000, "exp": 1_800_000_300})
        );
        let public = ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &dec(parts[2]))
            .expect("signature verifies with the team key");
        p.apple_private_key = Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into());
        assert!(matches!(route(&p, now), Err(ProviderError::Config(_))));
    }
}
