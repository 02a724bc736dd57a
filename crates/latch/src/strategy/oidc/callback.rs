//! `GET|POST /self-service/methods/oidc/callback/{provider}` and the shared
//! `/self-service/methods/oidc/callback` (the redirect URI of providers with `pkce: force`,
//! whose provider the state names): the provider sends the browser back here. The `state`
//! names the flow; the flow's submission checks the rest (the secret half of the state,
//! single use, the provider). A `POST` (Apple's `response_mode=form_post`) is cross-site, so
//! the browser sends no `SameSite=Lax` cookies with it: as Kratos, it is redirected to a `GET`
//! of the same callback with the form fields in the query, which carries them.
//! Kratos: `Strategy.HandleCallback`, `redirectToGET`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::super::{FlowError, RouteHandler, RouteInput, RouteOutcome};
use crate::deps::Env;
use crate::text;

/// The callback routes' handler; `shared` for the route without the provider.
#[derive(Debug)]
pub struct Callback {
    /// Serves `/self-service/methods/oidc/callback` (the provider comes from the state).
    pub shared: bool,
}

/// Longest query a form-POSTed callback is turned into.
const MAX_REDIRECT_QUERY: usize = 16 * 1024;

impl Callback {
    /// The same callback as a `GET` on the public URL, the form fields added to the query.
    fn as_get(&self, env: &Env, input: &RouteInput) -> Result<RouteOutcome, FlowError> {
        let path = if self.shared {
            super::SHARED_CALLBACK.to_string()
        } else {
            super::CALLBACK.replace(
                "{provider}",
                input.params.get("provider").map(String::as_str).unwrap_or(""),
            )
        };
        let mut fields = input.query.clone();
        if let Value::Object(m) = &input.body {
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                fields.insert(k.clone(), v);
            }
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        if query.len() > MAX_REDIRECT_QUERY {
            return Err(FlowError::message(text::validation_generic(
                "The OpenID Provider's answer is too large.",
            )));
        }
        let mut to = env.public_url(&path);
        if !query.is_empty() {
            to.push('?');
            to.push_str(&query);
        }
        Ok(RouteOutcome::Redirect(to))
    }
}

fn param<'a>(input: &'a RouteInput, name: &str) -> Option<&'a str> {
    input
        .query
        .get(name)
        .map(String::as_str)
        .or_else(|| input.body.get(name).and_then(Value::as_str))
}

#[async_trait]
impl RouteHandler for Callback {
    async fn handle(&self, env: &Env, input: &RouteInput) -> Result<RouteOutcome, FlowError> {
        if input.post {
            return self.as_get(env, input);
        }
        let state = param(input, "state").filter(|s| !s.is_empty()).ok_or_else(|| {
            FlowError::message(text::validation_generic(
                "Unable to complete OpenID Connect flow because the OpenID Provider did not return the state query parameter.",
            ))
        })?;
        let flow_id = state
            .split_once('.')
            .and_then(|(id, _)| uuid::Uuid::parse_str(id).ok())
            .ok_or_else(|| {
                FlowError::message(text::validation_generic(
                    "Unable to complete OpenID Connect flow because the state parameter is invalid.",
                ))
            })?;
        // Apple answers with `authCode` in some modes (Kratos accepts both names).
        let code = param(input, "code").or_else(|| param(input, "authCode")).unwrap_or("");
        let mut body = json!({
            "method": super::ID,
            "state": state,
            "code": code,
            "error": param(input, "error").unwrap_or(""),
            "error_description": param(input, "error_description").unwrap_or(""),
            // Apple's name fields, posted on the first sign-in only.
            "user": param(input, "user").unwrap_or(""),
        });
        // The shared route names no provider: the flow's state does.
        if !self.shared {
            body["provider"] = json!(input.params.get("provider").cloned().unwrap_or_default());
        }
        Ok(RouteOutcome::Submit { flow_id, body })
    }
}
