//! The stored `passkey` credential in Kratos' JSON shape, and the conversions to and from
//! webauthn-rs. Kratos: `identity/credentials_webauthn.go` (bytes as standard base64).
//!
//! The public key is kept as the authenticator's COSE key bytes, as Kratos keeps it, so
//! identities imported from Kratos sign in unchanged and exports stay readable by Kratos.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use webauthn_rs::prelude::{
    AttestationFormat, AttestationMetadata, COSEKey, Credential, ParsedAttestation, ParsedAttestationData,
    RegisterPublicKeyCredential,
};
use webauthn_rs_proto::{RegisteredExtensions, UserVerificationPolicy};

use crate::clock::rfc3339;

/// Characters of a passkey user handle (Kratos: 64 random ASCII alphanumerics).
pub const USER_HANDLE_LEN: usize = 64;

/// `credentials.passkey.config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PasskeyConfig {
    /// The registered passkeys.
    #[serde(default)]
    pub credentials: Vec<StoredCredential>,
    /// The WebAuthn user handle shared by all of the identity's passkeys.
    #[serde(with = "b64_bytes", default)]
    pub user_handle: Vec<u8>,
    /// Fields Latch does not interpret, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One passkey. Kratos: `identity.CredentialWebAuthn`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCredential {
    /// Credential id.
    #[serde(with = "b64_bytes")]
    pub id: Vec<u8>,
    /// COSE public key.
    #[serde(with = "b64_bytes")]
    pub public_key: Vec<u8>,
    /// Attestation type (`none`).
    #[serde(default)]
    pub attestation_type: String,
    /// Authenticator model and counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator: Option<Authenticator>,
    /// Name shown in settings.
    #[serde(default)]
    pub display_name: String,
    /// When it was added (RFC 3339, seconds).
    #[serde(default)]
    pub added_at: String,
    /// Passkeys are always a first factor.
    #[serde(default)]
    pub is_passwordless: bool,
    /// Authenticator data flags from registration, updated on each sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Flags>,
    /// Transport hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transport: Vec<String>,
    /// Fields Latch does not interpret (e.g. Kratos' `attestation`), kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Kratos: `identity.AuthenticatorWebAuthn`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Authenticator {
    /// Authenticator model id.
    #[serde(with = "b64_bytes", default)]
    pub aaguid: Vec<u8>,
    /// Last signature counter seen.
    #[serde(default)]
    pub sign_count: u32,
    /// Set when a counter went backwards (a possibly cloned authenticator).
    #[serde(default)]
    pub clone_warning: bool,
}

/// Kratos: `identity.CredentialWebAuthnFlags`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Flags {
    /// UP.
    #[serde(default)]
    pub user_present: bool,
    /// UV.
    #[serde(default)]
    pub user_verified: bool,
    /// BE.
    #[serde(default)]
    pub backup_eligible: bool,
    /// BS.
    #[serde(default)]
    pub backup_state: bool,
}

/// Why a credential cannot be read or built.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The attestation object is not what WebAuthn specifies.
    #[error("malformed attestation object: {0}")]
    Attestation(&'static str),
    /// The stored public key is not a supported COSE key.
    #[error("unsupported public key")]
    PublicKey,
}

impl PasskeyConfig {
    /// Reads the config of an identity's `passkey` credential (empty when absent or unreadable).
    pub fn from_value(v: &Value) -> PasskeyConfig {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    /// The JSON stored in the credential.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The user handle as the identifier string (it is ASCII).
    pub fn handle_str(&self) -> Option<String> {
        String::from_utf8(self.user_handle.clone())
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// The credential with this id.
    pub fn find(&self, id: &[u8]) -> Option<&StoredCredential> {
        self.credentials.iter().find(|c| c.id == id)
    }

    /// The credential with this id, to change it.
    pub fn find_mut(&mut self, id: &[u8]) -> Option<&mut StoredCredential> {
        self.credentials.iter_mut().find(|c| c.id == id)
    }
}

impl StoredCredential {
    /// Builds the stored form of a freshly verified registration.
    pub fn from_registration(
        reg: &RegisterPublicKeyCredential,
        cred: &Credential,
        now: OffsetDateTime,
    ) -> Result<StoredCredential, CredentialError> {
        let parsed = parse_attestation(&reg.response.attestation_object)?;
        let transport = cred
            .transports
            .iter()
            .flatten()
            .filter_map(|t| serde_json::to_value(t).ok())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let added_at = now.replace_nanosecond(0).unwrap_or(now);
        Ok(StoredCredential {
            id: cred.cred_id.clone(),
            public_key: parsed.cose_key,
            attestation_type: "none".into(),
            display_name: aaguid_name(&parsed.aaguid).to_string(),
            authenticator: Some(Authenticator {
                aaguid: parsed.aaguid,
                sign_count: cred.counter,
                clone_warning: false,
            }),
            added_at: rfc3339(added_at),
            is_passwordless: true,
            flags: Some(Flags {
                user_present: parsed.user_present,
                user_verified: cred.user_verified,
                backup_eligible: cred.backup_eligible,
                backup_state: cred.backup_state,
            }),
            transport,
            extra: Map::new(),
        })
    }

    /// The webauthn-rs view of this passkey (registered with user verification required).
    pub fn to_webauthn(&self) -> Result<Credential, CredentialError> {
        self.to_webauthn_with(UserVerificationPolicy::Required)
    }

    /// The webauthn-rs view of this credential, for verifying an assertion; `policy` is the
    /// user verification asked for at registration.
    pub fn to_webauthn_with(&self, policy: UserVerificationPolicy) -> Result<Credential, CredentialError> {
        let value: serde_cbor_2::Value =
            serde_cbor_2::from_slice(&self.public_key).map_err(|_| CredentialError::PublicKey)?;
        let key = COSEKey::try_from(&value).map_err(|_| CredentialError::PublicKey)?;
        let flags = self.flags.unwrap_or_default();
        Ok(Credential {
            cred_id: self.id.clone(),
            cred: key,
            counter: self.authenticator.as_ref().map_or(0, |a| a.sign_count),
            transports: None,
            user_verified: flags.user_verified,
            backup_eligible: flags.backup_eligible,
            backup_state: flags.backup_state,
            registration_policy: policy,
            extensions: RegisteredExtensions::none(),
            attestation: ParsedAttestation {
                data: ParsedAttestationData::None,
                metadata: AttestationMetadata::None,
            },
            attestation_format: AttestationFormat::None,
        })
    }

    /// When it was added, if readable.
    pub fn added_at_time(&self) -> OffsetDateTime {
        OffsetDateTime::parse(&self.added_at, &time::format_description::well_known::Rfc3339)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The label name: the display name or `unnamed` (as Kratos).
    pub fn label_name(&self) -> &str {
        if self.display_name.is_empty() {
            "unnamed"
        } else {
            &self.display_name
        }
    }
}

struct AttestedKey {
    aaguid: Vec<u8>,
    cose_key: Vec<u8>,
    user_present: bool,
}

/// Pulls the AAGUID and the COSE key bytes out of `attestationObject.authData`
/// (WebAuthn §6.1: rpIdHash 32, flags 1, signCount 4, then attested credential data).
fn parse_attestation(object: &[u8]) -> Result<AttestedKey, CredentialError> {
    let v: serde_cbor_2::Value =
        serde_cbor_2::from_slice(object).map_err(|_| CredentialError::Attestation("not CBOR"))?;
    let serde_cbor_2::Value::Map(map) = v else {
        return Err(CredentialError::Attestation("not a map"));
    };
    let auth_data = map
        .iter()
        .find_map(|(k, v)| match (k, v) {
            (serde_cbor_2::Value::Text(t), serde_cbor_2::Value::Bytes(b)) if t == "authData" => Some(b),
            _ => None,
        })
        .ok_or(CredentialError::Attestation("no authData"))?;
    let flags = *auth_data
        .get(32)
        .ok_or(CredentialError::Attestation("short authData"))?;
    if flags & 0x40 == 0 {
        return Err(CredentialError::Attestation("no attested credential data"));
    }
    let aaguid = auth_data
        .get(37..53)
        .ok_or(CredentialError::Attestation("short authData"))?
        .to_vec();
    let len_bytes = auth_data
        .get(53..55)
        .ok_or(CredentialError::Attestation("short authData"))?;
    let id_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let rest = auth_data
        .get(55 + id_len..)
        .ok_or(CredentialError::Attestation("short authData"))?;
    // The COSE key is the first CBOR item; extensions may follow it.
    let mut de = serde_cbor_2::Deserializer::from_slice(rest);
    let key: serde_cbor_2::Value =
        serde::Deserialize::deserialize(&mut de).map_err(|_| CredentialError::Attestation("bad public key"))?;
    let cose_key = serde_cbor_2::to_vec(&key).map_err(|_| CredentialError::Attestation("bad public key"))?;
    Ok(AttestedKey {
        aaguid,
        cose_key,
        user_present: flags & 0x01 != 0,
    })
}

/// A friendly name for well-known passkey providers (Kratos looks the AAGUID up in a
/// table too); anything else is a plain "Passkey".
fn aaguid_name(aaguid: &[u8]) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("ea9b8d664d011d213ce4b6b48cb575d4", "Google Password Manager"),
        ("fbfc3007154e4ecc8c0b6e020557d7bd", "iCloud Keychain"),
        ("dd4ec289e01d41c9bb8970fa845d4bf2", "iCloud Keychain (Managed)"),
        ("adce000235bcc60a648b0b25f1f05503", "Chrome on Mac"),
        ("08987058cadc4b81b6e130de50dcbe96", "Windows Hello"),
        ("9ddd1817af5a4672a2b93e3dd95000a9", "Windows Hello"),
        ("6028b017b1d44c02b4b3afcdafc96bb2", "Windows Hello"),
        ("bada5566a7aa401fbd9645619a55120d", "1Password"),
        ("d548826e79b4db40a3d811116f7e8349", "Bitwarden"),
    ];
    let hex = crate::crypto::hex(aaguid);
    KNOWN
        .iter()
        .find(|(id, _)| *id == hex)
        .map_or("Passkey", |(_, name)| *name)
}

/// Bytes as standard base64 (Kratos/Go `[]byte`); reading also accepts unpadded and
/// URL-safe forms.
pub mod b64_bytes {
    use super::*;

    /// Serializes as standard base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Deserializes any base64 flavour (or `null` as empty).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        let s = s.unwrap_or_default();
        decode(&s).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }

    /// Decodes standard or URL-safe base64, padded or not.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(s).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kratos_credential_json_round_trips() {
        let raw = serde_json::json!({
            "credentials": [{
                "id": "HQ4LaIJ9NiqS1r0CQpWY+K0gMvhOq4yk",
                "public_key": "pQECAyYgASFYIA==",
                "attestation_type": "none",
                "authenticator": {"aaguid": "AAAAAAAAAAAAAAAAAAAAAA==", "sign_count": 4, "clone_warning": false},
                "display_name": "iCloud Keychain",
                "added_at": "2022-02-28T16:40:39Z",
                "is_passwordless": true,
                "flags": {"user_present": true, "user_verified": true, "backup_eligible": true, "backup_state": true},
                "transport": ["internal", "hybrid"],
                "attestation": {"object": "AA=="}
            }],
            "user_handle": "2gZaSs9fTEeGmsBlC4gfgg=="
        });
        let c: PasskeyConfig = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(c.credentials[0].authenticator.as_ref().unwrap().sign_count, 4);
        assert_eq!(c.user_handle.len(), 16);
        assert_eq!(c.to_value(), raw);
    }

    #[test]
    fn names_known_providers() {
        let google = [
            0xea, 0x9b, 0x8d, 0x66, 0x4d, 0x01, 0x1d, 0x21, 0x3c, 0xe4, 0xb6, 0xb4, 0x8c, 0xb5, 0x75, 0xd4,
        ];
        assert_eq!(aaguid_name(&google), "Google Password Manager");
        assert_eq!(aaguid_name(&[0; 16]), "Passkey");
    }
}
