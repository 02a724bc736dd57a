//! Reading a receiver's answer (Kratos: `parseWebhookResponse`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Outcome, WebHookConfig, WebHookError};
use crate::text::{TextType, UiText};

/// The messages a receiver attached to one form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMessages {
    /// A JSON pointer into the submitted form, as the receiver sent it: `#/traits/email`
    /// (the node `traits.email`), `#/` or empty for the whole form.
    pub instance_ptr: String,
    /// The messages; `type` other than `error` becomes `info`, as in Kratos.
    pub messages: Vec<UiText>,
}

/// Identity fields a receiver replaced with a `200 {"identity": {…}}`. Each present (non-empty,
/// non-null) field replaces the identity's field **wholesale**: returning `traits` without
/// `email` removes the email. `external_id` is replaced whenever the key is present (`null`
/// clears it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityPatch {
    pub traits: Option<Value>,
    pub schema_id: Option<String>,
    pub state: Option<String>,
    pub verifiable_addresses: Option<Vec<Value>>,
    pub recovery_addresses: Option<Vec<Value>>,
    pub metadata_public: Option<Value>,
    pub metadata_admin: Option<Value>,
    /// `Some(None)`: the receiver sent `"external_id": null`.
    pub external_id: Option<Option<String>>,
}

impl IdentityPatch {
    /// Applies the patch to an identity in its API JSON shape (an object; anything else is left
    /// alone).
    pub fn apply_to(&self, identity: &mut Value) {
        let Some(obj) = identity.as_object_mut() else {
            return;
        };
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                obj.insert(key.to_owned(), v);
            }
        };
        set("traits", self.traits.clone());
        set("schema_id", self.schema_id.clone().map(Value::String));
        set("state", self.state.clone().map(Value::String));
        set(
            "verifiable_addresses",
            self.verifiable_addresses.clone().map(Value::Array),
        );
        set("recovery_addresses", self.recovery_addresses.clone().map(Value::Array));
        set("metadata_public", self.metadata_public.clone());
        set("metadata_admin", self.metadata_admin.clone());
        if let Some(ext) = &self.external_id {
            obj.insert("external_id".to_owned(), ext.clone().map_or(Value::Null, Value::String));
        }
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Turns a final (non-retried) answer into an [`Outcome`] or an error.
pub(super) fn interpret(
    cfg: &WebHookConfig,
    status: u16,
    attempts: u32,
    answer: &[u8],
    url: &str,
) -> Result<Outcome, WebHookError> {
    let bad = |reason: String| WebHookError::BadResponse {
        url: url.to_owned(),
        status,
        reason,
    };
    if status >= 400 {
        if cfg.parses_response() {
            return interrupted(answer).map(Outcome::Interrupted).map_err(bad);
        }
        return Err(WebHookError::Status {
            url: url.to_owned(),
            status,
            attempts,
        });
    }
    if cfg.response_parse && status == 200 {
        return identity(answer).map_err(bad).map(|patch| match patch {
            Some(p) => Outcome::Identity(Box::new(p)),
            None => Outcome::Delivered,
        });
    }
    Ok(Outcome::Delivered)
}

/// The first JSON value of `answer` (Go's `json.Decoder.Decode` reads one value and ignores the rest).
fn first_json(answer: &[u8]) -> Result<Value, String> {
    serde_json::Deserializer::from_slice(answer)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| Err(serde::de::Error::custom("the answer is empty")))
        .map_err(|e| format!("the answer is not JSON: {e}"))
}

fn interrupted(answer: &[u8]) -> Result<Vec<FieldMessages>, String> {
    let value = first_json(answer)?;
    let entries = match value.get("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err("`messages` must be a list".to_owned()),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(entry) = entry.as_object() else {
            return Err("each entry of `messages` must be an object".to_owned());
        };
        let instance_ptr = match entry.get("instance_ptr") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("`instance_ptr` must be a string".to_owned()),
        };
        let details = match entry.get("messages") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err("`messages[].messages` must be a list".to_owned()),
        };
        let mut messages = Vec::with_capacity(details.len());
        for d in details {
            let Some(d) = d.as_object() else {
                return Err("each message must be an object".to_owned());
            };
            let id = match d.get("id") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| "a message `id` must be a non-negative integer".to_owned())?,
            };
            let text = match d.get("text") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err("a message `text` must be a string".to_owned()),
            };
            let kind = if d.get("type").and_then(Value::as_str) == Some("error") {
                TextType::Error
            } else {
                TextType::Info
            };
            let mut msg = UiText::new(id, kind, text);
            msg.context = d
                .get("context")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_else(Map::new);
            messages.push(msg);
        }
        out.push(FieldMessages { instance_ptr, messages });
    }
    if out.is_empty() {
        return Err("the answer holds no messages".to_owned());
    }
    Ok(out)
}

fn identity(answer: &[u8]) -> Result<Option<IdentityPatch>, String> {
    let value = first_json(answer)?;
    let Some(id) = value.get("identity").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(id) = id.as_object() else {
        return Err("`identity` must be an object".to_owned());
    };
    let present = |k: &str| id.get(k).filter(|v| !v.is_null());
    let string = |k: &str| -> Result<Option<String>, String> {
        match present(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`identity.{k}` must be a string")),
        }
    };
    let list = |k: &str| -> Result<Option<Vec<Value>>, String> {
        match present(k) {
            None => Ok(None),
            Some(Value::Array(a)) if a.is_empty() => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(format!("`identity.{k}` must be a list")),
        }
    };
    let external_id = match id.get("external_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(_) => return Err("`identity.external_id` must be a string".to_owned()),
    };
    Ok(Some(IdentityPatch {
        traits: present("traits").cloned(),
        schema_id: string("schema_id")?,
        state: string("state")?,
        verifiable_addresses: list("verifiable_addresses")?,
        recovery_addresses: list("recovery_addresses")?,
        metadata_public: present("metadata_public").cloned(),
        metadata_admin: present("metadata_admin").cloned(),
        external_id,
    }))
}
