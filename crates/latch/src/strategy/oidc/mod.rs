//! Social sign-in: Kratos' `oidc` method. A `provider` button sends the browser to the
//! OpenID provider with `state`, `nonce` and PKCE bound to the flow; the provider sends it
//! back to `/self-service/methods/oidc/callback/{provider}`, where the code is exchanged, the
//! ID token validated and the flow finished: sign-in for a known `provider:subject`,
//! sign-up (traits from the Jsonnet mapper) for a new one. Kratos:
//! `selfservice/strategy/oidc`.

mod callback;
mod claims;
mod client;
mod id_token;
mod link;
mod login;
mod oauth2;
mod presets;
mod registration;
mod settings;
mod update;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{
    CredentialType, Cx, FlowError, ImportCx, ImportError, Imported, LoginStrategy, RegistrationStrategy, Registry,
    Strategy, StrategyRoute, field,
};
use crate::config::OidcProvider;
use crate::crypto::{ct_eq, sha256_hex};
use crate::deps::Env;
use crate::identity::Identity;
use crate::model::flow::Flow;
use crate::text;

/// The method and credential type.
pub const ID: &str = "oidc";
/// Where a started sign-in is kept on the flow (internal context, never shown).
const STATE_KEY: &str = "oidc";
/// Callback path, with the provider id.
const CALLBACK: &str = "/self-service/methods/oidc/callback/{provider}";
/// The callback path of providers with `pkce: force` (Kratos' `RouteCallbackGeneric`).
const SHARED_CALLBACK: &str = "/self-service/methods/oidc/callback";

/// The enabled method: its providers and the shared provider client.
#[derive(Debug)]
pub struct Oidc {
    providers: Vec<OidcProvider>,
    client: client::Client,
}

#[derive(Debug)]
struct OidcCredential;

static CREDENTIAL: OidcCredential = OidcCredential;

/// Registers the `oidc` credential type, and the method when
/// `selfservice.methods.oidc.enabled` is on.
pub fn register(r: &mut Registry<'_>) {
    r.credential(&CREDENTIAL);
    let cfg = &r.config().selfservice.methods.oidc;
    if !cfg.enabled {
        return;
    }
    for p in &cfg.config.providers {
        if !p.provider.is_empty() && !presets::SUPPORTED.contains(&p.provider.as_str()) {
            tracing::warn!(provider = %p.id, kind = %p.provider, "this oidc provider type is not supported; its button fails");
        }
    }
    match client::Client::new() {
        Ok(client) => r.strategy(Arc::new(Oidc {
            providers: cfg.config.providers.clone(),
            client,
        })),
        Err(e) => tracing::error!(error = %e, "the oidc method could not build its HTTP client and is off"),
    }
}

/// `provider:subject` pairs of an `oidc` credential config (`{"providers": [...]}`).
fn linked(config: &Value) -> Vec<String> {
    config
        .get("providers")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let provider = p.get("provider")?.as_str()?;
                    let subject = p.get("subject")?.as_str()?;
                    Some(unique_id(provider, subject))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where a provider's button sends the browser (see [`presets::authorization_urls`]).
pub fn authorization_urls(p: &OidcProvider) -> Vec<String> {
    presets::authorization_urls(p)
}

/// The credential identifier of a subject at a provider. Kratos: `OIDCUniqueID`.
pub fn unique_id(provider: &str, subject: &str) -> String {
    format!("{provider}:{subject}")
}

#[async_trait]
impl CredentialType for OidcCredential {
    fn id(&self) -> &'static str {
        ID
    }
    fn signs_in_alone(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        identity
            .credentials
            .get(ID)
            .is_some_and(|c| !linked(&c.config).is_empty())
    }
    async fn import(
        &self,
        _cx: &ImportCx<'_>,
        _identity: &Identity,
        config: Value,
    ) -> Result<Option<Imported>, ImportError> {
        if config.is_null() {
            return Ok(None);
        }
        Ok(Some(Imported {
            identifiers: linked(&config),
            config,
            version: 1,
        }))
    }
}

impl Strategy for Oidc {
    fn id(&self) -> &'static str {
        ID
    }
    fn login(&self) -> Option<&dyn LoginStrategy> {
        Some(self)
    }
    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        Some(self)
    }
    fn settings(&self) -> Option<&dyn super::SettingsStrategy> {
        Some(self)
    }
    fn routes(&self) -> Vec<StrategyRoute> {
        vec![
            StrategyRoute {
                path: CALLBACK,
                handler: Arc::new(callback::Callback { shared: false }),
            },
            StrategyRoute {
                path: SHARED_CALLBACK,
                handler: Arc::new(callback::Callback { shared: true }),
            },
        ]
    }
}

/// The sign-in a flow started: kept in the flow's internal context until the callback.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Started {
    /// The provider id.
    provider: String,
    /// SHA-256 of the secret half of `state`.
    state_hash: String,
    /// The `nonce` the ID token must carry.
    nonce: String,
    /// The PKCE verifier, if PKCE is used.
    pkce_verifier: Option<String>,
}

impl Oidc {
    fn provider(&self, id: &str) -> Option<&OidcProvider> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The callback URL given to providers: `base_redirect_uri` (or the public base URL)
    /// plus the callback path (the shared one with `pkce: force`, as Kratos' `Redir`).
    fn redirect_uri(env: &Env, p: &OidcProvider) -> String {
        let path = if p.pkce == crate::config::Pkce::Force {
            SHARED_CALLBACK.to_string()
        } else {
            CALLBACK.replace("{provider}", &p.id)
        };
        match env
            .config
            .selfservice
            .methods
            .oidc
            .config
            .base_redirect_uri
            .as_deref()
            .filter(|b| !b.is_empty())
        {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => env.public_url(&path),
        }
    }

    /// A `provider` button was pressed: remember state, nonce and PKCE on the flow and
    /// return the provider's authorization URL.
    async fn start(&self, env: &Env, flow: &mut Flow, body: &Value) -> Result<String, FlowError> {
        let id = field(body, "provider").unwrap_or("");
        let p = self.provider(id).ok_or_else(|| {
            FlowError::message(text::validation_generic(&format!(
                "Provider {id:?} is unknown or has not been configured."
            )))
        })?;
        let secret = crate::crypto::b64url(&crate::crypto::random_bytes(32));
        // The state names its flow, so the callback finds it; the secret half binds it.
        let state = format!("{}.{secret}", flow.id.simple());
        let nonce = crate::crypto::b64url(&crate::crypto::random_bytes(32));
        let upstream = upstream_parameters(body);
        let redirect = Self::redirect_uri(env, p);
        let (url, pkce_verifier) = match presets::route(p, env.clock.now()).map_err(|e| provider_failed(p, &e))? {
            presets::Route::Discovery { provider, mut params } => {
                params.retain(|(k, _)| !upstream.iter().any(|(u, _)| u == k));
                params.extend(upstream);
                let auth = self
                    .client
                    .authorize(&provider, &redirect, &state, &nonce, &params)
                    .await
                    .map_err(|e| provider_failed(p, &e))?;
                (auth.url, auth.pkce_verifier)
            }
            presets::Route::OAuth2(plan) => {
                oauth2::authorize(&plan, p, &redirect, &state, &nonce, &upstream).map_err(|e| provider_failed(p, &e))?
            }
        };
        let started = Started {
            provider: p.id.clone(),
            state_hash: sha256_hex(secret.as_bytes()),
            nonce,
            pkce_verifier,
        };
        flow.internal_set(STATE_KEY, json!(started));
        Ok(url)
    }

    /// The callback's submission: checks and consumes the state, exchanges the code and
    /// validates the ID token. Returns the provider and the claims in Kratos' shape.
    async fn finish(&self, env: &Env, flow: &mut Flow, body: &Value) -> Result<(OidcProvider, Value), FlowError> {
        let started: Option<Started> = flow
            .internal_get(STATE_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let state = field(body, "state").unwrap_or("");
        let secret = state.split_once('.').map(|(_, s)| s).unwrap_or("");
        let Some(started) = started
            .filter(|s| !secret.is_empty() && ct_eq(s.state_hash.as_bytes(), sha256_hex(secret.as_bytes()).as_bytes()))
        else {
            return Err(FlowError::message(text::validation_generic(
                "Unable to complete OpenID Connect flow because the state parameter is invalid.",
            )));
        };
        // Single use, even when two callbacks race.
        flow.internal_set(STATE_KEY, Value::Null);
        if !crate::limits::consume_once(env, "oidc_state", secret.as_bytes(), flow.expires_at).await? {
            return Err(FlowError::message(text::validation_generic(
                "Unable to complete OpenID Connect flow because the state parameter is invalid.",
            )));
        }
        // The shared callback leaves the provider out: the state names it.
        if field(body, "provider").is_some_and(|p| p != started.provider) {
            return Err(FlowError::message(text::validation_generic(
                "Unable to complete OpenID Connect flow: provider mismatch between internal state and URL.",
            )));
        }
        let p = self
            .provider(&started.provider)
            .ok_or_else(|| FlowError::message(text::validation_generic("The provider is no longer configured.")))?;
        if let Some(err) = field(body, "error").filter(|e| !e.is_empty()) {
            let desc = field(body, "error_description").unwrap_or("");
            return Err(FlowError::message(text::validation_generic(&format!(
                "Unable to complete OpenID Connect flow because the OpenID Provider returned error {err:?}: {desc}"
            ))));
        }
        let code = field(body, "code").filter(|c| !c.is_empty()).ok_or_else(|| {
            FlowError::message(text::validation_generic(
                "Unable to complete OpenID Connect flow because the OpenID Provider did not return the code query parameter.",
            ))
        })?;
        let redirect = Self::redirect_uri(env, p);
        let now = env.clock.now();
        let raw = match presets::route(p, now).map_err(|e| provider_failed(p, &e))? {
            presets::Route::Discovery { provider, .. } => {
                self.client
                    .finish(
                        &provider,
                        &redirect,
                        code,
                        started.pkce_verifier.as_deref(),
                        &started.nonce,
                        now,
                    )
                    .await
                    .map_err(|e| provider_failed(p, &e))?
                    .raw_claims
            }
            presets::Route::OAuth2(plan) => {
                let f = oauth2::Finish {
                    redirect_uri: &redirect,
                    code,
                    pkce_verifier: started.pkce_verifier.as_deref(),
                    nonce: &started.nonce,
                    apple_user: field(body, "user").filter(|u| !u.is_empty()),
                    now,
                };
                oauth2::finish(&self.client, &plan, p, f)
                    .await
                    .map_err(|e| provider_failed(p, &e))?
            }
        };
        flow.internal_set(crate::model::flow::AMR_PROVIDER, json!(p.id));
        let claims =
            claims::kratos_claims(raw).map_err(|reason| FlowError::message(text::validation_generic(&reason)))?;
        Ok((p.clone(), claims))
    }

    /// The identity already holding `provider:subject`, if any.
    async fn find(env: &Env, p: &OidcProvider, claims: &Value) -> Result<Option<Identity>, FlowError> {
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        Ok(env
            .store
            .find_identity_by_identifier(ID, &unique_id(&p.id, subject))
            .await?)
    }
}

/// Whether a submission comes back from the provider (the callback) rather than a button.
fn is_callback(body: &Value) -> bool {
    field(body, "state").is_some()
}

/// `upstream_parameters` Kratos forwards (`login_hint` is deliberately not one of them).
fn upstream_parameters(body: &Value) -> Vec<(String, String)> {
    let Some(Value::Object(m)) = body.get("upstream_parameters") else {
        return vec![];
    };
    ["hd", "prompt", "auth_type", "acr_values"]
        .iter()
        .filter_map(|k| {
            m.get(*k)
                .and_then(Value::as_str)
                .map(|v| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A provider failure: logged with its cause, shown as a generic message naming the provider.
fn provider_failed(p: &OidcProvider, e: &client::ProviderError) -> FlowError {
    tracing::warn!(provider = %p.id, error = %e, "an OpenID Connect step failed");
    let reason = match e {
        client::ProviderError::Unreachable(_) => {
            format!("The provider {:?} could not be reached. Please try again later.", p.id)
        }
        client::ProviderError::Config(_) => format!("The provider {:?} is not configured correctly.", p.id),
        client::ProviderError::Refused(_) => format!(
            "Unable to complete OpenID Connect flow because the answer of the provider {:?} could not be verified.",
            p.id
        ),
        client::ProviderError::Denied(text) => text.clone(),
    };
    FlowError::message(text::validation_generic(&reason))
}

/// Runs a submission's first half (a button: off to the provider) or its second half (the
/// callback, or an ID token the app got itself).
async fn submit_common(
    s: &Oidc,
    cx: &Cx<'_>,
    flow: &mut Flow,
    body: &Value,
) -> Result<Result<(OidcProvider, Value), String>, FlowError> {
    if id_token::submitted(body) {
        s.with_id_token(cx.env, flow, body).await.map(Ok)
    } else if is_callback(body) {
        s.finish(cx.env, flow, body).await.map(Ok)
    } else {
        s.start(cx.env, flow, body).await.map(Err)
    }
}
