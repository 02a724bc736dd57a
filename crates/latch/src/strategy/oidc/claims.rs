//! The claims a mapper sees (`std.extVar('claims')`), shaped as Kratos' `Claims`: the
//! standard fields at the top (empty ones left out) and every claim under `raw_claims`, and
//! the mapper's output. Kratos: `provider.go Claims`, `strategy_registration.go`.

use serde_json::{Map, Value, json};

use crate::config::OidcProvider;
use crate::strategy::FlowError;
use crate::text;

/// String claims copied to the top level.
const STRINGS: &[&str] = &[
    "iss",
    "sub",
    "oid",
    "name",
    "given_name",
    "family_name",
    "last_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "hd",
    "team",
    "nonce",
    "acr",
];

/// Kratos' claims object from the raw claims; refuses claims without `sub` or `iss`.
pub fn kratos_claims(raw: Map<String, Value>) -> Result<Value, String> {
    let mut out = Map::new();
    for k in STRINGS {
        if let Some(Value::String(s)) = raw.get(*k)
            && !s.is_empty()
        {
            out.insert((*k).to_string(), json!(s));
        }
    }
    for k in ["email_verified", "phone_number_verified"] {
        // Apple sends `"true"` as a string.
        let v = match raw.get(k) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        if v {
            out.insert(k.to_string(), json!(true));
        }
    }
    if let Some(n) = raw.get("updated_at").and_then(Value::as_i64).filter(|n| *n != 0) {
        out.insert("updated_at".into(), json!(n));
    }
    if let Some(Value::Array(a)) = raw.get("amr")
        && !a.is_empty()
    {
        out.insert("amr".into(), json!(a));
    }
    if raw.contains_key("nonce") {
        out.insert("nonce_supported".into(), json!(true));
    }
    if !out.contains_key("sub") {
        return Err("The OpenID Connect claims are missing the subject (sub).".into());
    }
    if !out.contains_key("iss") {
        return Err("The OpenID Connect claims are missing the issuer (iss).".into());
    }
    out.insert("raw_claims".into(), Value::Object(raw));
    Ok(Value::Object(out))
}

/// What a mapper produced.
#[derive(Debug, Default)]
pub struct Mapped {
    /// `identity.traits`.
    pub traits: Value,
    /// `identity.metadata_public`.
    pub metadata_public: Option<Value>,
    /// `identity.metadata_admin`.
    pub metadata_admin: Option<Value>,
    /// `identity.verified_addresses[]` emails, lower-cased and trimmed.
    pub verified_emails: Vec<String>,
}

/// Runs the provider's Jsonnet mapper on `claims`. Errors name the mapper and say why.
pub async fn map(p: &OidcProvider, claims: &Value) -> Result<Mapped, FlowError> {
    map_for(
        p,
        claims,
        json!({"traits": {}, "metadata_public": {}, "metadata_admin": {}}),
    )
    .await
}

/// [`map`] with `std.extVar('identity')` set to `identity` (`{traits, metadata_public,
/// metadata_admin}` of the stored identity when re-mapping at login).
pub async fn map_for(p: &OidcProvider, claims: &Value, identity: Value) -> Result<Mapped, FlowError> {
    let out = evaluate(&p.mapper_url, claims, identity).await.map_err(|reason| {
        FlowError::message(text::validation_generic(&format!(
            "The claims mapper of provider {:?} failed: {reason}",
            p.id
        )))
    })?;
    let traits = out.pointer("/identity/traits").cloned().unwrap_or(Value::Null);
    if !traits.is_object() {
        return Err(FlowError::message(text::validation_generic(&format!(
            "The claims mapper of provider {:?} did not return an object at identity.traits.",
            p.id
        ))));
    }
    let verified_emails = out
        .pointer("/identity/verified_addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| v.get("via").and_then(Value::as_str) == Some("email"))
                .filter_map(|v| v.get("value").and_then(Value::as_str))
                .map(|s| s.trim().to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    Ok(Mapped {
        traits,
        metadata_public: out
            .pointer("/identity/metadata_public")
            .cloned()
            .filter(|v| !v.is_null()),
        metadata_admin: out
            .pointer("/identity/metadata_admin")
            .cloned()
            .filter(|v| !v.is_null()),
        verified_emails,
    })
}

/// Evaluates the Jsonnet at `url` in the sandbox (no imports, time and size limits) with
/// `std.extVar('claims')` and `std.extVar('identity')`.
async fn evaluate(url: &str, claims: &Value, identity: Value) -> Result<Value, String> {
    let program = crate::jsonnet::load(url).await.map_err(|e| e.to_string())?;
    crate::jsonnet::evaluate_limited(
        &program,
        vec![("claims".into(), claims.clone()), ("identity".into(), identity)],
        crate::jsonnet::Limits::default(),
    )
    .await
    .map_err(|e| e.to_string())
}
