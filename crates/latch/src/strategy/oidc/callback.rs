//! `GET|POST /self-service/methods/oidc/callback/{provider}`: the provider sends the browser
//! back here. The `state` names the flow; the flow's submission checks the rest (the secret
//! half of the state, single use, the provider). Kratos: `Strategy.HandleCallback`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::super::{FlowError, RouteHandler, RouteInput, RouteOutcome};
use crate::deps::Env;
use crate::text;

/// The callback route's handler.
#[derive(Debug)]
pub struct Callback;

fn param<'a>(input: &'a RouteInput, name: &str) -> Option<&'a str> {
    input
        .query
        .get(name)
        .map(String::as_str)
        .or_else(|| input.body.get(name).and_then(Value::as_str))
}

#[async_trait]
impl RouteHandler for Callback {
    async fn handle(&self, _env: &Env, input: &RouteInput) -> Result<RouteOutcome, FlowError> {
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
        let provider = input.params.get("provider").cloned().unwrap_or_default();
        // Apple answers with `authCode` in some modes (Kratos accepts both names).
        let code = param(input, "code").or_else(|| param(input, "authCode")).unwrap_or("");
        Ok(RouteOutcome::Submit {
            flow_id,
            body: json!({
                "method": super::ID,
                "provider": provider,
                "state": state,
                "code": code,
                "error": param(input, "error").unwrap_or(""),
                "error_description": param(input, "error_description").unwrap_or(""),
                // Apple's name fields, posted on the first sign-in only.
                "user": param(input, "user").unwrap_or(""),
            }),
        })
    }
}
