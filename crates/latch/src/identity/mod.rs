//! Identities: traits validated by an identity schema, credentials, addresses.
//!
//! Kratos: `identity/identity.go`. The JSON forms here are the wire contract: the public
//! form (in sessions and flows) and the admin form (with credentials and admin metadata).

pub mod manager;
pub mod schema;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::rfc3339;

/// Whether an identity may sign in. Kratos: `identity.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// May sign in.
    Active,
    /// Disabled by an administrator; its sessions stop working.
    Inactive,
}

impl State {
    /// The wire and column value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Inactive => "inactive",
        }
    }

    /// Parses the wire value; anything else is a client error.
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "active" => Some(State::Active),
            "inactive" => Some(State::Inactive),
            _ => None,
        }
    }
}

/// The type of a credential (`password`, `code`, `passkey`, `webauthn`, `totp`, …), also the
/// name of the method that uses it. Kratos: `identity.CredentialsType`. Parsed where it enters
/// (admin API, database); strategies name theirs with [`CredentialsType::new`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialsType(std::borrow::Cow<'static, str>);

impl CredentialsType {
    /// A type a method names in code.
    pub const fn new(name: &'static str) -> CredentialsType {
        CredentialsType(std::borrow::Cow::Borrowed(name))
    }

    /// Parses a type name from outside: 1 to 64 of `a-z`, `0-9` and `_`, starting with a letter.
    pub fn parse(s: &str) -> Option<CredentialsType> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| CredentialsType(std::borrow::Cow::Owned(s.to_string())))
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for CredentialsType {
    fn from(name: &'static str) -> CredentialsType {
        CredentialsType::new(name)
    }
}

impl std::borrow::Borrow<str> for CredentialsType {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for CredentialsType {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CredentialsType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for CredentialsType {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for CredentialsType {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for CredentialsType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// One credential of an identity (password, code, passkey, …). Kratos: `identity.Credentials`.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Row id.
    pub id: Uuid,
    /// The credential type.
    pub kind: CredentialsType,
    /// Normalised identifiers, unique per type across all identities.
    pub identifiers: Vec<String>,
    /// Type-specific configuration (hashed password, passkey credentials, …).
    pub config: Value,
    /// Config format version.
    pub version: i32,
    /// When the credential was created.
    pub created_at: OffsetDateTime,
    /// When the credential was last changed.
    pub updated_at: OffsetDateTime,
}

/// An address that can be verified (email, sms). Kratos: `identity.VerifiableAddress`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiableAddress {
    /// Row id.
    pub id: Uuid,
    /// `email` or `sms`.
    pub via: String,
    /// Normalised address.
    pub value: String,
    /// Whether the owner proved control of the address.
    pub verified: bool,
    /// When it was verified.
    pub verified_at: Option<OffsetDateTime>,
    /// `pending`, `sent` or `completed`.
    pub status: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An address that account recovery may use. Kratos: `identity.RecoveryAddress`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryAddress {
    /// Row id.
    pub id: Uuid,
    /// `email` or `sms`.
    pub via: String,
    /// Normalised address.
    pub value: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A person or machine that can sign in. Kratos: `identity.Identity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Stable id.
    pub id: Uuid,
    /// Which identity schema validates `traits`.
    pub schema_id: String,
    /// Schema-validated profile data.
    pub traits: Value,
    /// Active or disabled.
    pub state: State,
    /// When `state` last changed.
    pub state_changed_at: Option<OffsetDateTime>,
    /// Visible to the identity itself.
    pub metadata_public: Option<Value>,
    /// Visible only on the admin API.
    pub metadata_admin: Option<Value>,
    /// An id from another system, unique.
    pub external_id: Option<String>,
    /// Organization (B2B); Latch stores but does not interpret it.
    pub organization_id: Option<Uuid>,
    /// Credentials keyed by type.
    pub credentials: BTreeMap<CredentialsType, Credential>,
    /// Verifiable addresses from the schema's `verification` extension.
    pub verifiable_addresses: Vec<VerifiableAddress>,
    /// Recovery addresses from the schema's `recovery` extension.
    pub recovery_addresses: Vec<RecoveryAddress>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// How much of an identity a JSON rendering shows.
#[derive(Debug, Clone, Default)]
pub struct Render<'a> {
    /// Admin form: adds `credentials` (without config) and `metadata_admin`.
    pub admin: bool,
    /// Credential types whose `config` is included (admin `include_credential`).
    pub include_credential: &'a [String],
}

impl Identity {
    /// Marks the verifiable address `value` as verified (a code sent to it came back).
    /// Returns whether anything changed, so callers store the identity only when needed.
    pub fn mark_address_verified(&mut self, value: &str, now: OffsetDateTime) -> bool {
        let mut changed = false;
        for a in self
            .verifiable_addresses
            .iter_mut()
            .filter(|a| a.value == value && !a.verified)
        {
            a.verified = true;
            a.verified_at = Some(now);
            a.status = "completed".into();
            a.updated_at = now;
            changed = true;
        }
        changed
    }

    /// The identity's JSON as Kratos renders it. `schema_url` is
    /// `<public base_url>/schemas/<base64url(schema_id)>`.
    pub fn to_json(&self, schema_url: &str, render: &Render<'_>) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("schema_id".into(), json!(self.schema_id));
        m.insert("schema_url".into(), json!(schema_url));
        m.insert("state".into(), json!(self.state.as_str()));
        if let Some(t) = self.state_changed_at {
            m.insert("state_changed_at".into(), json!(rfc3339(t)));
        }
        m.insert("traits".into(), self.traits.clone());
        if !self.verifiable_addresses.is_empty() {
            let list: Vec<Value> = self.verifiable_addresses.iter().map(address_json).collect();
            m.insert("verifiable_addresses".into(), Value::Array(list));
        }
        if !self.recovery_addresses.is_empty() {
            let list: Vec<Value> = self.recovery_addresses.iter().map(recovery_json).collect();
            m.insert("recovery_addresses".into(), Value::Array(list));
        }
        m.insert(
            "metadata_public".into(),
            self.metadata_public.clone().unwrap_or(Value::Null),
        );
        if let Some(e) = &self.external_id {
            m.insert("external_id".into(), json!(e));
        }
        m.insert("created_at".into(), json!(rfc3339(self.created_at)));
        m.insert("updated_at".into(), json!(rfc3339(self.updated_at)));
        m.insert("organization_id".into(), json!(self.organization_id));
        if render.admin {
            let mut creds = Map::new();
            for (kind, c) in &self.credentials {
                let with_config = render.include_credential.iter().any(|k| k == kind.as_str());
                creds.insert(kind.to_string(), credential_json(c, with_config));
            }
            m.insert("credentials".into(), Value::Object(creds));
            m.insert(
                "metadata_admin".into(),
                self.metadata_admin.clone().unwrap_or(Value::Null),
            );
        }
        Value::Object(m)
    }
}

/// The public identity JSON of [`Identity::to_json`] (no admin fields) as a [`serde::Serialize`]
/// value: the same bytes when serialized, without building a [`Value`] first.
pub struct PublicJson<'a> {
    identity: &'a Identity,
    schema_url: &'a str,
}

impl Identity {
    /// [`Identity::to_json`] with the default [`Render`], ready to serialize.
    pub fn public_json<'a>(&'a self, schema_url: &'a str) -> PublicJson<'a> {
        PublicJson {
            identity: self,
            schema_url,
        }
    }
}

impl serde::Serialize for PublicJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::clock::Rfc3339Str as T;
        use serde::ser::SerializeMap;
        let i = self.identity;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &i.id)?;
        m.serialize_entry("schema_id", &i.schema_id)?;
        m.serialize_entry("schema_url", self.schema_url)?;
        m.serialize_entry("state", i.state.as_str())?;
        if let Some(t) = i.state_changed_at {
            m.serialize_entry("state_changed_at", &T(t))?;
        }
        m.serialize_entry("traits", &i.traits)?;
        if !i.verifiable_addresses.is_empty() {
            m.serialize_entry("verifiable_addresses", &Addresses(&i.verifiable_addresses))?;
        }
        if !i.recovery_addresses.is_empty() {
            m.serialize_entry("recovery_addresses", &Recoveries(&i.recovery_addresses))?;
        }
        m.serialize_entry("metadata_public", &i.metadata_public)?;
        if let Some(e) = &i.external_id {
            m.serialize_entry("external_id", e)?;
        }
        m.serialize_entry("created_at", &T(i.created_at))?;
        m.serialize_entry("updated_at", &T(i.updated_at))?;
        m.serialize_entry("organization_id", &i.organization_id)?;
        m.end()
    }
}

/// [`address_json`] of each address, serialized directly.
struct Addresses<'a>(&'a [VerifiableAddress]);

impl serde::Serialize for Addresses<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::clock::Rfc3339Str as T;
        use serde::ser::{SerializeMap, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            struct One<'a>(&'a VerifiableAddress);
            impl serde::Serialize for One<'_> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let a = self.0;
                    let mut m = s.serialize_map(None)?;
                    m.serialize_entry("id", &a.id)?;
                    m.serialize_entry("value", &a.value)?;
                    m.serialize_entry("verified", &a.verified)?;
                    m.serialize_entry("via", &a.via)?;
                    m.serialize_entry("status", &a.status)?;
                    m.serialize_entry("created_at", &T(a.created_at))?;
                    m.serialize_entry("updated_at", &T(a.updated_at))?;
                    if let Some(t) = a.verified_at {
                        m.serialize_entry("verified_at", &T(t))?;
                    }
                    m.end()
                }
            }
            seq.serialize_element(&One(a))?;
        }
        seq.end()
    }
}

/// [`recovery_json`] of each address, serialized directly.
struct Recoveries<'a>(&'a [RecoveryAddress]);

impl serde::Serialize for Recoveries<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::clock::Rfc3339Str as T;
        use serde::ser::{SerializeMap, SerializeSeq};
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            struct One<'a>(&'a RecoveryAddress);
            impl serde::Serialize for One<'_> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let a = self.0;
                    let mut m = s.serialize_map(None)?;
                    m.serialize_entry("id", &a.id)?;
                    m.serialize_entry("value", &a.value)?;
                    m.serialize_entry("via", &a.via)?;
                    m.serialize_entry("created_at", &T(a.created_at))?;
                    m.serialize_entry("updated_at", &T(a.updated_at))?;
                    m.end()
                }
            }
            seq.serialize_element(&One(a))?;
        }
        seq.end()
    }
}

fn address_json(a: &VerifiableAddress) -> Value {
    let mut v = json!({
        "id": a.id,
        "value": a.value,
        "verified": a.verified,
        "via": a.via,
        "status": a.status,
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.updated_at),
    });
    if let (Some(t), Some(obj)) = (a.verified_at, v.as_object_mut()) {
        obj.insert("verified_at".into(), json!(rfc3339(t)));
    }
    v
}

fn recovery_json(a: &RecoveryAddress) -> Value {
    json!({
        "id": a.id,
        "value": a.value,
        "via": a.via,
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.updated_at),
    })
}

fn credential_json(c: &Credential, with_config: bool) -> Value {
    let mut v = json!({
        "type": c.kind,
        "identifiers": c.identifiers,
        "version": c.version,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    });
    if with_config && let Some(obj) = v.as_object_mut() {
        obj.insert("config".into(), c.config.clone());
    }
    v
}
