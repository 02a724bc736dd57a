//! The OpenID Connect client side of the `oidc` method: discovery (cached), the authorization
//! URL with `state`, `nonce` and PKCE, the code exchange and ID-token validation (issuer,
//! audience, expiry, nonce, signature against the provider's JWKS), all through
//! `openidconnect` over Latch's reqwest. Kratos: `provider_generic_oidc.go`, `pkce.go`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::config::{OidcProvider, Pkce};

/// How long a provider's discovery document and keys are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);
/// Budget of one request to a provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest provider answer read (discovery, keys, tokens, user info).
const MAX_BODY: usize = 1 << 20;

/// Why talking to a provider failed (logged; people see a generic flow message).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or answered badly.
    #[error("the provider could not be reached or answered badly: {0}")]
    Unreachable(String),
    /// The configuration is unusable (no issuer, bad URL).
    #[error("the provider is misconfigured: {0}")]
    Config(String),
    /// The provider refused the code, or its tokens did not validate.
    #[error("the provider's answer was refused: {0}")]
    Refused(String),
    /// The person did not grant what is needed; the text is shown as is.
    #[error("{0}")]
    Denied(String),
}

/// `openidconnect`'s async HTTP client over reqwest 0.13 (redirects off, bounded bodies).
#[derive(Debug, Clone)]
pub struct Http(reqwest::Client);

impl Http {
    /// A client for provider requests: no redirects (the spec forbids following them on
    /// the token endpoint), a timeout, rustls.
    pub fn new() -> Result<Http, String> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map(Http)
            .map_err(|e| e.to_string())
    }

    /// The underlying client (the plain OAuth 2.0 presets call provider APIs with it).
    pub(super) fn reqwest(&self) -> &reqwest::Client {
        &self.0
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let mut req = self.0.request(parts.method, parts.uri.to_string()).body(body);
        for (name, value) in &parts.headers {
            req = req.header(name, value);
        }
        let res = req.send().await.map_err(|e| HttpError(e.to_string()))?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.map_err(|e| HttpError(e.to_string()))?;
        if bytes.len() > MAX_BODY {
            return Err(HttpError("the provider's answer is too large".into()));
        }
        let mut out = http::Response::builder().status(status);
        for (name, value) in &headers {
            out = out.header(name, value);
        }
        out.body(bytes.to_vec()).map_err(|e| HttpError(e.to_string()))
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, ProviderError> {
        let mut req = self.0.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let res = req
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))?;
        if !res.status().is_success() {
            return Err(ProviderError::Unreachable(format!("{url}: status {}", res.status())));
        }
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))?;
        if bytes.len() > MAX_BODY {
            return Err(ProviderError::Unreachable(format!("{url}: answer too large")));
        }
        serde_json::from_slice(&bytes).map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))
    }
}

/// A transport failure of [`Http`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// A provider's discovery document with its keys, and whether it supports PKCE S256.
#[derive(Debug)]
pub struct Discovered {
    metadata: CoreProviderMetadata,
    s256: bool,
    fetched: Instant,
}

/// What the browser is sent to, and what the callback needs to finish.
#[derive(Debug)]
pub struct Authorization {
    /// The provider's authorization URL.
    pub url: String,
    /// The PKCE verifier, when PKCE is used.
    pub pkce_verifier: Option<String>,
}

/// The verified result of a callback.
#[derive(Debug)]
pub struct Verified {
    /// Every claim of the ID token (or of the user-info answer with `claims_source: userinfo`).
    pub raw_claims: serde_json::Map<String, Value>,
}

/// Discovery cache and the HTTP client, shared by all providers.
#[derive(Debug)]
pub struct Client {
    http: Http,
    cache: tokio::sync::Mutex<HashMap<String, Arc<Discovered>>>,
}

impl Client {
    /// A client with an empty cache.
    pub fn new() -> Result<Client, String> {
        Ok(Client {
            http: Http::new()?,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client for provider requests.
    pub(super) fn http(&self) -> &Http {
        &self.http
    }

    /// Checks an ID token obtained outside discovery's token endpoint (Microsoft, Apple)
    /// against the keys of `issuer` (discovered, cached): signature, issuer, audience
    /// (`client_id` or `additional_id_token_audiences`), expiry at `now`, and `nonce` when
    /// given. Returns its claims.
    pub(super) async fn verify_id_token(
        &self,
        p: &OidcProvider,
        issuer: &str,
        redirect_uri: &str,
        raw: &str,
        nonce: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<serde_json::Map<String, Value>, ProviderError> {
        let mut at = p.clone();
        at.issuer_url = Some(issuer.to_string());
        let d = self.discover(&at, false).await?;
        let client = Self::oidc_client(&d, &at, redirect_uri)?;
        let token: openidconnect::core::CoreIdToken = raw
            .parse()
            .map_err(|e| ProviderError::Refused(format!("malformed id_token: {e}")))?;
        let extra: Vec<String> = p.additional_id_token_audiences.clone();
        let now_utc = chrono_free_now(now);
        let verifier = client
            .id_token_verifier()
            .set_other_audience_verifier_fn(move |aud| extra.iter().any(|a| a == aud.as_str()))
            .set_time_fn(move || now_utc);
        let checked = match nonce {
            Some(n) => token.claims(&verifier, &Nonce::new(n.to_string())).map(|_| ()),
            None => token
                .claims(&verifier, |_: Option<&Nonce>| Ok::<(), String>(()))
                .map(|_| ()),
        };
        checked.map_err(|e| ProviderError::Refused(format!("id_token: {e}")))?;
        payload_of(raw)
    }

    /// The discovery document and keys of `p` (cached for [`DISCOVERY_TTL`]).
    async fn discover(&self, p: &OidcProvider, fresh: bool) -> Result<Arc<Discovered>, ProviderError> {
        let issuer = p
            .issuer_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ProviderError::Config(format!("provider {:?} has no issuer_url", p.id)))?;
        self.discover_issuer(issuer, fresh).await
    }

    /// The signing keys of `issuer` (from its discovery document; cached like it, fetched
    /// again when `fresh`, e.g. after a key rotation).
    pub async fn issuer_keys(&self, issuer: &str, fresh: bool) -> Result<CoreJsonWebKeySet, ProviderError> {
        Ok(self.discover_issuer(issuer, fresh).await?.metadata.jwks().clone())
    }

    async fn discover_issuer(&self, issuer: &str, fresh: bool) -> Result<Arc<Discovered>, ProviderError> {
        if !fresh
            && let Some(d) = self.cache.lock().await.get(issuer)
            && d.fetched.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let well_known = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let doc = self.http.get_json(&well_known, None).await?;
        let s256 = doc
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|v| v == "S256"));
        let metadata: CoreProviderMetadata =
            serde_json::from_value(doc).map_err(|e| ProviderError::Unreachable(format!("{well_known}: {e}")))?;
        if metadata.issuer().as_str().trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ProviderError::Refused(format!(
                "the discovery document names issuer {:?}, configured is {issuer:?}",
                metadata.issuer().as_str()
            )));
        }
        let jwks: CoreJsonWebKeySet =
            serde_json::from_value(self.http.get_json(metadata.jwks_uri().url().as_str(), None).await?)
                .map_err(|e| ProviderError::Unreachable(format!("jwks: {e}")))?;
        let d = Arc::new(Discovered {
            metadata: metadata.set_jwks(jwks),
            s256,
            fetched: Instant::now(),
        });
        self.cache.lock().await.insert(issuer.to_string(), d.clone());
        Ok(d)
    }

    fn oidc_client(
        d: &Discovered,
        p: &OidcProvider,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ProviderError,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| ProviderError::Config(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(p.client_id.clone()),
            p.client_secret.clone().filter(|s| !s.is_empty()).map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// The URL that starts a sign-in at `p`, carrying `state` and `nonce`, with PKCE as
    /// `pkce` says (`auto`: when discovery lists S256).
    pub async fn authorize(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        upstream: &[(String, String)],
    ) -> Result<Authorization, ProviderError> {
        let d = self.discover(p, false).await?;
        let client = Self::oidc_client(&d, p, redirect_uri)?;
        let state = state.to_string();
        let nonce = nonce.to_string();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for s in scopes(p) {
            if s != "openid" {
                req = req.add_scope(Scope::new(s));
            }
        }
        let use_pkce = match p.pkce {
            Pkce::Force => true,
            Pkce::Never => false,
            Pkce::Auto => d.s256,
        };
        let mut verifier = None;
        if use_pkce {
            let (challenge, v) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            verifier = Some(v.secret().clone());
        }
        if let Some(claims) = &p.requested_claims {
            req = req.add_extra_param("claims", claims.to_string());
        }
        for (k, v) in upstream {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (url, _, _) = req.url();
        Ok(Authorization {
            url: url.to_string(),
            pkce_verifier: verifier,
        })
    }

    /// Exchanges `code` and validates the ID token against `nonce` at `now`; returns its
    /// claims (or the user-info claims with `claims_source: userinfo`, whose `sub` must match).
    pub async fn finish(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: Option<&str>,
        nonce: &str,
        now: time::OffsetDateTime,
    ) -> Result<Verified, ProviderError> {
        let d = self.discover(p, false).await?;
        let client = Self::oidc_client(&d, p, redirect_uri)?;
        let mut req = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| ProviderError::Config(e.to_string()))?;
        if let Some(v) = pkce_verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
        }
        let token = req
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Refused(format!("code exchange: {e}")))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| ProviderError::Refused("the token answer holds no id_token".into()))?;
        let extra: Vec<String> = p.additional_id_token_audiences.clone();
        let now_utc = chrono_free_now(now);
        let verifier = client
            .id_token_verifier()
            .set_other_audience_verifier_fn(move |aud| extra.iter().any(|a| a == aud.as_str()))
            .set_time_fn(move || now_utc);
        let verified = id_token.claims(&verifier, &Nonce::new(nonce.to_string()));
        if let Err(e) = verified {
            return Err(ProviderError::Refused(format!("id_token: {e}")));
        }
        let raw = payload_of(&id_token.to_string())?;
        let mut claims = raw;
        if p.claims_source == crate::config::ClaimsSource::Userinfo {
            let url = d
                .metadata
                .userinfo_endpoint()
                .ok_or_else(|| ProviderError::Config("the provider has no userinfo_endpoint".into()))?;
            let info = self
                .http
                .get_json(url.url().as_str(), Some(token.access_token().secret()))
                .await?;
            let Value::Object(info) = info else {
                return Err(ProviderError::Refused("the user-info answer is not an object".into()));
            };
            if info.get("sub") != claims.get("sub") {
                return Err(ProviderError::Refused(
                    "the user-info sub differs from the id_token's".into(),
                ));
            }
            let iss = claims.get("iss").cloned();
            claims = info;
            if let Some(iss) = iss {
                claims.entry("iss").or_insert(iss);
            }
        }
        Ok(Verified { raw_claims: claims })
    }
}

/// `openidconnect` checks expiry against `chrono` time: Latch's clock, converted by seconds.
fn chrono_free_now(now: time::OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(now.unix_timestamp(), 0).unwrap_or_default()
}

/// The payload of a compact JWS whose signature was already verified.
pub(super) fn payload_of(jwt: &str) -> Result<serde_json::Map<String, Value>, ProviderError> {
    use base64::Engine;
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| ProviderError::Refused("malformed id_token".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| ProviderError::Refused("malformed id_token".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| ProviderError::Refused("malformed id_token".into()))
}

/// The scopes asked for: the configured ones, with `openid` added when missing (Kratos).
pub fn scopes(p: &OidcProvider) -> Vec<String> {
    let mut s = p.scope.clone();
    if !s.iter().any(|x| x == "openid") {
        s.push("openid".into());
    }
    s
}
