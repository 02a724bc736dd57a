//! Session data: who is signed in, how (authentication methods, AAL), until when, from where.
//! The store persists it and `session::manager` issues and checks it. Kratos:
//! `session/session.go`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::identity::{Identity, Render, State};

/// One way the session's owner proved who they are. Kratos: `session.AuthenticationMethod`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthMethod {
    /// Credential type (`password`, `code`, `passkey`, …).
    pub method: String,
    /// `aal1` or `aal2`.
    pub aal: crate::model::Aal,
    /// When it was completed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
    /// The identity provider of a social sign-in (`oidc`). Kratos: `AuthenticationMethod.Provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A device a session was used from. Kratos: `session.Device`.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Row id.
    pub id: Uuid,
    /// Client IP (forwarded headers honoured only from trusted proxies).
    pub ip_address: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Location hint (`Cf-Ipcity, Cf-Ipcountry`).
    pub location: Option<String>,
}

/// Longest `User-Agent` stored for a device, in bytes.
pub const MAX_USER_AGENT_BYTES: usize = 512;
/// Longest client IP stored for a device, in bytes (an IPv6 address with a zone fits).
pub const MAX_IP_BYTES: usize = 64;
/// Longest location hint stored for a device, in bytes.
pub const MAX_LOCATION_BYTES: usize = 256;

/// `s` cut to at most `max` bytes on a character boundary. Client-supplied strings (headers)
/// pass through this before they are stored, so a 500 KB `User-Agent` costs 512 bytes in the
/// database and the whoami cache.
pub fn truncate_utf8(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl Device {
    /// A device from client-supplied strings, each bounded in size.
    pub fn bounded(ip: Option<String>, user_agent: Option<String>, location: Option<String>) -> Device {
        Device {
            id: Uuid::new_v4(),
            ip_address: ip.map(|s| truncate_utf8(s, MAX_IP_BYTES)),
            user_agent: user_agent.map(|s| truncate_utf8(s, MAX_USER_AGENT_BYTES)),
            location: location.map(|s| truncate_utf8(s, MAX_LOCATION_BYTES)),
        }
    }
}

/// A session. The plain tokens exist only in responses; the store keeps their hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Session id.
    pub id: Uuid,
    /// Owner.
    pub identity_id: Uuid,
    /// False once revoked.
    pub active: bool,
    /// Authenticator assurance level reached.
    pub aal: crate::model::Aal,
    /// Methods used, in order.
    pub methods: Vec<AuthMethod>,
    /// When the owner last authenticated.
    pub authenticated_at: OffsetDateTime,
    /// When the session was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
    /// Devices seen.
    pub devices: Vec<Device>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// AAL from authentication methods: any aal2 method on top of an aal1 one → `aal2`.
pub fn compute_aal(methods: &[AuthMethod]) -> crate::model::Aal {
    let has1 = methods.iter().any(|m| m.aal == "aal1");
    let has2 = methods.iter().any(|m| m.aal == "aal2");
    match (has1, has2) {
        (_, true) if has1 => crate::model::Aal::Aal2,
        (true, _) | (false, true) => crate::model::Aal::Aal1,
        (false, false) => crate::model::Aal::Aal0,
    }
}

impl Session {
    /// Whether the session can be used now: not revoked, not expired, identity active.
    pub fn is_active(&self, now: OffsetDateTime, identity: Option<&Identity>) -> bool {
        self.active && self.expires_at > now && identity.is_none_or(|i| i.state == State::Active)
    }

    /// The session JSON as Kratos renders it (`identity` without credentials; the admin
    /// form adds `metadata_admin`).
    pub fn to_json(&self, now: OffsetDateTime, identity: Option<&Identity>, schema_url: &str, admin: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("active".into(), json!(self.is_active(now, identity)));
        m.insert("expires_at".into(), json!(rfc3339(self.expires_at)));
        m.insert("authenticated_at".into(), json!(rfc3339(self.authenticated_at)));
        m.insert("authenticator_assurance_level".into(), json!(self.aal));
        m.insert(
            "authentication_methods".into(),
            Value::Array(
                self.methods
                    .iter()
                    .map(|a| {
                        let mut j = json!({"method": a.method, "aal": a.aal, "completed_at": rfc3339(a.completed_at)});
                        if let Some(p) = &a.provider {
                            j["provider"] = json!(p);
                        }
                        j
                    })
                    .collect(),
            ),
        );
        m.insert("issued_at".into(), json!(rfc3339(self.issued_at)));
        if let Some(i) = identity {
            let mut ij = i.to_json(schema_url, &Render::default());
            if admin && let Some(o) = ij.as_object_mut() {
                o.insert("metadata_admin".into(), i.metadata_admin.clone().unwrap_or(Value::Null));
            }
            m.insert("identity".into(), ij);
        }
        m.insert(
            "devices".into(),
            Value::Array(
                self.devices
                    .iter()
                    .map(|d| {
                        json!({
                            "id": d.id,
                            "ip_address": d.ip_address.clone().unwrap_or_default(),
                            "user_agent": d.user_agent.clone().unwrap_or_default(),
                            "location": d.location.clone().unwrap_or_default(),
                        })
                    })
                    .collect(),
            ),
        );
        Value::Object(m)
    }
}

impl Session {
    /// `to_json(now, Some(identity), schema_url, false)` serialized, written straight to
    /// bytes (the same bytes; `whoami` renders every cache miss this way).
    pub fn to_json_bytes(&self, now: OffsetDateTime, identity: &Identity, schema_url: &str) -> Vec<u8> {
        let view = PublicJson {
            session: self,
            now,
            identity,
            schema_url,
        };
        serde_json::to_vec(&view).unwrap_or_default()
    }
}

/// What [`Session::to_json_bytes`] serializes.
struct PublicJson<'a> {
    session: &'a Session,
    now: OffsetDateTime,
    identity: &'a Identity,
    schema_url: &'a str,
}

impl Serialize for PublicJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::clock::Rfc3339Str as T;
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Methods<'a>(&'a [AuthMethod]);
        impl Serialize for Methods<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for a in self.0 {
                    struct One<'a>(&'a AuthMethod);
                    impl Serialize for One<'_> {
                        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                            let a = self.0;
                            let mut m = s.serialize_map(None)?;
                            m.serialize_entry("method", &a.method)?;
                            m.serialize_entry("aal", &a.aal)?;
                            m.serialize_entry("completed_at", &T(a.completed_at))?;
                            if let Some(p) = &a.provider {
                                m.serialize_entry("provider", p)?;
                            }
                            m.end()
                        }
                    }
                    seq.serialize_element(&One(a))?;
                }
                seq.end()
            }
        }
        struct Devices<'a>(&'a [Device]);
        impl Serialize for Devices<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for d in self.0 {
                    struct One<'a>(&'a Device);
                    impl Serialize for One<'_> {
                        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                            let d = self.0;
                            let mut m = s.serialize_map(None)?;
                            m.serialize_entry("id", &d.id)?;
                            m.serialize_entry("ip_address", d.ip_address.as_deref().unwrap_or_default())?;
                            m.serialize_entry("user_agent", d.user_agent.as_deref().unwrap_or_default())?;
                            m.serialize_entry("location", d.location.as_deref().unwrap_or_default())?;
                            m.end()
                        }
                    }
                    seq.serialize_element(&One(d))?;
                }
                seq.end()
            }
        }
        let x = self.session;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &x.id)?;
        m.serialize_entry("active", &x.is_active(self.now, Some(self.identity)))?;
        m.serialize_entry("expires_at", &T(x.expires_at))?;
        m.serialize_entry("authenticated_at", &T(x.authenticated_at))?;
        m.serialize_entry("authenticator_assurance_level", &x.aal)?;
        m.serialize_entry("authentication_methods", &Methods(&x.methods))?;
        m.serialize_entry("issued_at", &T(x.issued_at))?;
        m.serialize_entry("identity", &self.identity.public_json(self.schema_url))?;
        m.serialize_entry("devices", &Devices(&x.devices))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(aal: &str) -> AuthMethod {
        AuthMethod {
            method: "x".into(),
            aal: aal.into(),
            completed_at: OffsetDateTime::UNIX_EPOCH,
            provider: None,
        }
    }

    #[test]
    fn json_bytes_are_the_json_value_serialized() {
        use crate::identity::{RecoveryAddress, VerifiableAddress};
        let t = |s: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + s);
        let at = t(0) + time::Duration::microseconds(123_456);
        let identity = Identity {
            id: Uuid::from_u128(1),
            schema_id: "default".into(),
            traits: serde_json::json!({"email": "a@b.c", "name": {"first": "Zoë \"q\" \u{1}", "last": "<x>"}, "n": 1.5, "z": [1, null, true]}),
            state: State::Active,
            state_changed_at: Some(t(1)),
            metadata_public: Some(serde_json::json!({"k": "v"})),
            metadata_admin: Some(serde_json::json!({"secret": 1})),
            external_id: Some("ext-1".into()),
            organization_id: Some(Uuid::from_u128(9)),
            credentials: Default::default(),
            verifiable_addresses: vec![
                VerifiableAddress {
                    id: Uuid::from_u128(2),
                    via: "email".into(),
                    value: "a@b.c".into(),
                    verified: true,
                    verified_at: Some(at),
                    status: "completed".into(),
                    created_at: t(2),
                    updated_at: t(3),
                },
                VerifiableAddress {
                    id: Uuid::from_u128(3),
                    via: "sms".into(),
                    value: "+1555".into(),
                    verified: false,
                    verified_at: None,
                    status: "pending".into(),
                    created_at: t(2),
                    updated_at: t(3),
                },
            ],
            recovery_addresses: vec![RecoveryAddress {
                id: Uuid::from_u128(4),
                via: "email".into(),
                value: "a@b.c".into(),
                created_at: t(4),
                updated_at: t(5),
            }],
            created_at: t(6),
            updated_at: at,
        };
        let mut session = Session {
            id: Uuid::from_u128(5),
            identity_id: identity.id,
            active: true,
            aal: crate::model::Aal::Aal2,
            methods: vec![
                AuthMethod {
                    method: "oidc".into(),
                    aal: "aal1".into(),
                    completed_at: at,
                    provider: Some("google".into()),
                },
                AuthMethod {
                    method: "totp".into(),
                    aal: "aal2".into(),
                    completed_at: t(7),
                    provider: None,
                },
            ],
            authenticated_at: t(7),
            issued_at: t(0),
            expires_at: t(86_400),
            devices: vec![
                Device {
                    id: Uuid::from_u128(6),
                    ip_address: Some("127.0.0.1".into()),
                    user_agent: Some("curl/8 \u{7f} ü".into()),
                    location: None,
                },
                Device {
                    id: Uuid::from_u128(7),
                    ip_address: None,
                    user_agent: None,
                    location: Some("Berlin, DE".into()),
                },
            ],
            created_at: t(0),
            updated_at: t(1),
        };
        let url = "http://127.0.0.1:4433/schemas/ZGVmYXVsdA";
        let check = |session: &Session, identity: &Identity, now: OffsetDateTime| {
            let value = session.to_json(now, Some(identity), url, false);
            let expected = serde_json::to_vec(&value).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&session.to_json_bytes(now, identity, url)),
                String::from_utf8_lossy(&expected)
            );
        };
        check(&session, &identity, t(10));
        // Expired, and an identity with nothing optional.
        let mut bare = identity.clone();
        bare.state = State::Inactive;
        bare.state_changed_at = None;
        bare.metadata_public = None;
        bare.external_id = None;
        bare.organization_id = None;
        bare.verifiable_addresses.clear();
        bare.recovery_addresses.clear();
        session.methods.clear();
        session.devices.clear();
        check(&session, &bare, t(100_000));
    }

    #[test]
    fn aal_is_computed_from_methods() {
        assert_eq!(compute_aal(&[]), "aal0");
        assert_eq!(compute_aal(&[m("aal1")]), "aal1");
        assert_eq!(compute_aal(&[m("aal1"), m("aal2")]), "aal2");
        assert_eq!(compute_aal(&[m("aal2")]), "aal1");
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn client_strings_are_cut_on_char_boundaries() {
        let ua = "é".repeat(1000);
        let d = Device::bounded(Some("1".repeat(100)), Some(ua), Some("x".repeat(300)));
        let ua = d.user_agent.unwrap_or_default();
        assert!(ua.len() <= MAX_USER_AGENT_BYTES && ua.len() >= MAX_USER_AGENT_BYTES - 1);
        assert!(ua.chars().all(|c| c == 'é'));
        assert_eq!(d.ip_address.map(|s| s.len()), Some(MAX_IP_BYTES));
        assert_eq!(d.location.map(|s| s.len()), Some(MAX_LOCATION_BYTES));
        assert_eq!(truncate_utf8("short".into(), 512), "short");
    }
}
