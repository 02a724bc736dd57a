//! Builds and changes identities: validates traits against the identity schema and derives
//! credential identifiers and addresses from the `ory.sh/kratos` extension.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::schema::{Extracted, SchemaRegistry, TraitError};
use super::{Credential, Identity, RecoveryAddress, State, VerifiableAddress};
use crate::clock::Clock;

/// Why traits could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TraitsError {
    /// The identity names a schema that is not configured.
    #[error("identity schema {0:?} is not configured")]
    UnknownSchema(String),
    /// The traits do not satisfy the schema.
    #[error("the traits do not match the identity schema")]
    Invalid(Vec<TraitError>),
}

impl TraitsError {
    /// A one-line summary naming each failing trait (for API error reasons).
    pub fn summary(&self) -> String {
        match self {
            TraitsError::UnknownSchema(id) => format!("Identity schema {id:?} does not exist."),
            TraitsError::Invalid(errs) => {
                let parts: Vec<String> = errs
                    .iter()
                    .map(|e| format!("{}: {}", pointer_to_path(&e.instance_ptr), e.message.text))
                    .collect();
                format!("The traits are invalid: {}", parts.join("; "))
            }
        }
    }

    /// Structured details: `[{"instance_ptr": …, "messages": [ui text]}]`.
    pub fn details(&self) -> Value {
        match self {
            TraitsError::UnknownSchema(_) => Value::Null,
            TraitsError::Invalid(errs) => json!({
                "messages": errs.iter().map(|e| json!({
                    "instance_ptr": e.instance_ptr,
                    "messages": [serde_json::to_value(&e.message).unwrap_or(Value::Null)],
                })).collect::<Vec<_>>()
            }),
        }
    }
}

/// `#/traits/email` → `traits.email` (the form node name).
pub fn pointer_to_path(ptr: &str) -> String {
    ptr.trim_start_matches('#').trim_start_matches('/').replace('/', ".")
}

use crate::identity::CredentialsType;
use crate::identity::schema::IDENTIFIER_TYPES as TRAIT_IDENTIFIER_TYPES;

/// A new, empty identity with the given schema and traits (not yet validated).
pub fn new_identity(schema_id: &str, traits: Value, clock: &dyn Clock) -> Identity {
    let now = clock.now();
    Identity {
        id: Uuid::new_v4(),
        schema_id: schema_id.to_string(),
        traits,
        state: State::Active,
        state_changed_at: Some(now),
        metadata_public: None,
        metadata_admin: None,
        external_id: None,
        organization_id: None,
        credentials: BTreeMap::new(),
        verifiable_addresses: vec![],
        recovery_addresses: vec![],
        created_at: now,
        updated_at: now,
    }
}

/// Validates the identity's traits and brings credential identifiers and addresses in line
/// with them. Addresses that stay keep their verification state.
pub fn apply_traits(
    ident: &mut Identity,
    schemas: &SchemaRegistry,
    clock: &dyn Clock,
) -> Result<Extracted, TraitsError> {
    let schema = schemas
        .get(&ident.schema_id)
        .ok_or_else(|| TraitsError::UnknownSchema(ident.schema_id.clone()))?;
    let extracted = schema.validate_traits(&ident.traits).map_err(TraitsError::Invalid)?;
    let now = clock.now();

    for kind in TRAIT_IDENTIFIER_TYPES {
        let mut ids: Vec<String> = extracted.identifiers.get(*kind).cloned().unwrap_or_default();
        ids.sort();
        ids.dedup();
        match ident.credentials.get_mut(*kind) {
            Some(c) if c.identifiers != ids => {
                c.identifiers = ids;
                c.updated_at = now;
            }
            Some(_) => {}
            None if !ids.is_empty() => {
                ident.credentials.insert(
                    CredentialsType::new(kind),
                    Credential {
                        id: Uuid::new_v4(),
                        kind: CredentialsType::new(kind),
                        identifiers: ids,
                        config: json!({}),
                        version: 0,
                        created_at: now,
                        updated_at: now,
                    },
                );
            }
            None => {}
        }
    }
    if let Some(code) = ident.credentials.get_mut("code") {
        let addresses: Vec<Value> = extracted
            .code_addresses
            .iter()
            .map(|a| json!({"channel": a.via, "address": a.value}))
            .collect();
        code.config = json!({ "addresses": addresses });
        code.version = 1;
    }

    let mut verifiable = Vec::new();
    for a in &extracted.verifiable_addresses {
        match ident
            .verifiable_addresses
            .iter()
            .find(|v| v.via == a.via && v.value == a.value)
        {
            Some(existing) => verifiable.push(existing.clone()),
            None => verifiable.push(VerifiableAddress {
                id: Uuid::new_v4(),
                via: a.via.clone(),
                value: a.value.clone(),
                verified: false,
                verified_at: None,
                status: "pending".into(),
                created_at: now,
                updated_at: now,
            }),
        }
    }
    ident.verifiable_addresses = verifiable;

    let mut recovery = Vec::new();
    for a in &extracted.recovery_addresses {
        match ident
            .recovery_addresses
            .iter()
            .find(|v| v.via == a.via && v.value == a.value)
        {
            Some(existing) => recovery.push(existing.clone()),
            None => recovery.push(RecoveryAddress {
                id: Uuid::new_v4(),
                via: a.via.clone(),
                value: a.value.clone(),
                created_at: now,
                updated_at: now,
            }),
        }
    }
    ident.recovery_addresses = recovery;
    ident.updated_at = now;
    Ok(extracted)
}

/// Sets or replaces one credential, keeping its id and creation time when it exists.
pub fn set_credential(
    ident: &mut Identity,
    kind: impl Into<CredentialsType>,
    identifiers: Vec<String>,
    config: Value,
    version: i32,
    clock: &dyn Clock,
) {
    let kind = kind.into();
    let now = clock.now();
    let (id, created_at) = match ident.credentials.get(kind.as_str()) {
        Some(c) => (c.id, c.created_at),
        None => (Uuid::new_v4(), now),
    };
    ident.credentials.insert(
        kind.clone(),
        Credential {
            id,
            kind,
            identifiers,
            config,
            version,
            created_at,
            updated_at: now,
        },
    );
}
