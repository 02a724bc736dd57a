//! Resuming a settings change after re-authentication. Kratos: the continuity container
//! (`continuity.Manager`) that the settings strategies pause in `handleSettingsError` and
//! `settings.PrepareUpdate` continues.
//!
//! A browser settings submission refused with `session_refresh_required` is kept on the
//! flow, sealed with the cookie secret, for 15 minutes. The refresh login returns the
//! browser to `GET /self-service/settings?flow=…` (Kratos' `return_to`), which submits it
//! again, now with a privileged session. Kratos binds the paused action to the browser and
//! the identity with its continuity cookie; a settings flow already is bound to both (its
//! CSRF cookie and its identity), so the flow carries it instead.

use serde_json::{Value, json};

use super::request::Request as Req;
use super::{Flow, FlowKind, FlowType, Service};

const KEY: &str = "continuity";
/// How long a paused change can be resumed (Kratos: `settings.ContinuityOptions`).
const LIFESPAN: time::Duration = time::Duration::minutes(15);

/// Keeps a refused browser settings submission for [`resume`]; `true` when the flow
/// changed (and has to be stored). API flows cannot be resumed, as in Kratos.
pub fn pause(deps: &Service, flow: &mut Flow, body: &Value) -> bool {
    if flow.kind != FlowKind::Settings || flow.flow_type != FlowType::Browser {
        return false;
    }
    let sealed = deps.sealer.seal(body.to_string().as_bytes());
    let expires_at = (deps.clock.now() + LIFESPAN).unix_timestamp();
    flow.internal_set(KEY, json!({"sealed": sealed, "expires_at": expires_at}));
    true
}

/// The submission to run: the paused one when a browser comes back with a plain `GET`
/// (not JSON, as Kratos' `PrepareUpdate`), else `body`. Any submission drops what was
/// paused, so a change is resumed at most once and a newer submission wins.
pub fn resume(deps: &Service, flow: &mut Flow, req: &Req, body: Value) -> Value {
    let paused = flow.internal.as_object_mut().and_then(|o| o.remove(KEY));
    if !req.get_submission || req.json_request {
        return body;
    }
    let now = deps.clock.now().unix_timestamp();
    paused
        .filter(|p| p.get("expires_at").and_then(Value::as_i64).is_some_and(|t| t > now))
        .and_then(|p| deps.sealer.open(p.get("sealed")?.as_str()?))
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .unwrap_or(body)
}
