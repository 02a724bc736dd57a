//! Helpers several strategies share: the login `identifier` input, the registration style and
//! the traits of a submission.

use serde_json::{Value, json};

use super::FlowError;
use crate::deps::Env;
use crate::model::flow::Flow;
use crate::text;
use crate::ui::{Group, InputType, Node};

/// The `identifier` input: labelled with the trait's title when exactly one trait is a
/// login identifier and has a title, else "ID". Kratos: `extension_identifier_label.go`.
pub fn identifier_node(env: &Env) -> Node {
    let mut titles: Vec<(String, String)> = vec![];
    let identified_by = env.credentials.trait_identified();
    if let Some(schema) = env.schemas.default_schema()
        && let Some(props) = schema
            .raw
            .pointer("/properties/traits/properties")
            .and_then(Value::as_object)
    {
        for (name, p) in props {
            let creds = p.pointer("/ory.sh~1kratos/credentials");
            let is_identifier = creds.is_some_and(|c| {
                identified_by
                    .iter()
                    .any(|k| c.pointer(&format!("/{k}/identifier")) == Some(&json!(true)))
            });
            if is_identifier {
                titles.push((
                    format!("traits.{name}"),
                    p.get("title").and_then(Value::as_str).unwrap_or("").to_string(),
                ));
            }
        }
    }
    let label = match titles.as_slice() {
        [(name, title)] if !title.is_empty() => text::label_generated(title, name),
        _ => text::label_id(),
    };
    // No `autocomplete` here: Kratos v26.2.0 sets none on this node, and its SDKs' enum has no
    // `username`, so a flow carrying it fails to deserialise in ory-kratos-client 26.2.0.
    Node::input("identifier", InputType::Text, Group::Default)
        .value("")
        .required()
        .label(label)
}

/// Whether registration shows traits and methods on one screen.
pub fn is_unified(env: &Env) -> bool {
    let r = &env.config.selfservice.flows.registration;
    r.enable_legacy_one_step || r.style == crate::config::RegistrationStyle::Unified
}

/// Submitted traits with surrounding whitespace removed from every string, so that
/// `" jane@example.com "` (a trailing space from a phone keyboard's autocomplete) registers
/// as `jane@example.com` instead of failing `format: email`. Kratos validates the padded value
/// and refuses it; Latch's README promises trimmed identifiers.
pub fn trim_traits(v: Value) -> Value {
    match v {
        Value::String(s) if s.trim().len() != s.len() => Value::String(s.trim().to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(trim_traits).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, trim_traits(v))).collect()),
        other => other,
    }
}

/// The traits of a submission: the body's, which must equal those accepted in the profile
/// step if there was one (Kratos: 4000036).
pub fn traits_from(flow: &Flow, body: &Value) -> Result<Value, FlowError> {
    let stored = flow.internal_get("traits").cloned();
    match (
        body.get("traits").filter(|t| t.is_object()).cloned().map(trim_traits),
        stored,
    ) {
        (Some(t), Some(s)) if t != s => Err(FlowError::message(text::traits_mismatch())),
        (Some(t), _) => Ok(t),
        (None, Some(s)) => Ok(s),
        (None, None) => Err(FlowError::on_node("traits", text::required("traits"))),
    }
}

/// `{"a": {"b": 1}}` under `traits` → `[("traits.a.b", 1)]`: node names of nested values.
pub fn flatten(prefix: &str, v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| flatten(&format!("{prefix}.{k}"), v))
            .collect(),
        other => vec![(prefix.to_string(), other.clone())],
    }
}

/// The identity of a second-factor (`aal2`) login that holds a `kind` credential: the flow's
/// own identity (the engine has checked the request carries its session). `missing` is the
/// message when it holds none (Kratos: "no TOTP device", "no backup codes").
pub async fn second_factor_identity(
    env: &Env,
    flow: &Flow,
    kind: &str,
    missing: crate::text::UiText,
) -> Result<crate::identity::Identity, FlowError> {
    if flow.requested_aal != crate::model::Aal::Aal2 {
        return Err(FlowError::message(text::login_no_strategy()));
    }
    let identity = match flow.identity_id {
        Some(id) => env.store.get_identity(id).await?,
        None => None,
    };
    identity
        .filter(|i| i.credentials.contains_key(kind))
        .ok_or_else(|| FlowError::message(missing))
}

/// A required text input of a submission, trimmed (Kratos' "required" on the node).
pub fn required_input<'a>(body: &'a Value, name: &str) -> Result<&'a str, FlowError> {
    match super::field(body, name).map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(FlowError::on_node(name, text::required(name))),
    }
}
