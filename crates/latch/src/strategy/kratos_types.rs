//! Credential types Kratos defines that Latch has no method for yet (`totp`, `lookup_secret`,
//! `saml`): the admin API stores their configs as given, so identities move between
//! Kratos and Latch unchanged, and second factors among them count for the available AAL.
//! A method that implements one registers its own type after these, which replaces the entry.

use async_trait::async_trait;
use serde_json::Value;

use super::{CredentialType, Factor, ImportCx, ImportError, Imported, Registry};
use crate::identity::Identity;

/// `totp` and `lookup_secret`: second factors identified by the identity id.
#[derive(Debug)]
struct SecondFactor(&'static str);

#[async_trait]
impl CredentialType for SecondFactor {
    fn id(&self) -> &'static str {
        self.0
    }
    fn factor(&self) -> Factor {
        Factor::Second
    }
    fn is_second_factor(&self, _config: &crate::config::Config, identity: &Identity) -> bool {
        identity.credentials.contains_key(self.0)
    }
    async fn import(
        &self,
        _cx: &ImportCx<'_>,
        identity: &Identity,
        config: Value,
    ) -> Result<Option<Imported>, ImportError> {
        if config.is_null() {
            return Ok(None);
        }
        Ok(Some(Imported {
            identifiers: vec![identity.id.to_string()],
            config,
            version: 1,
        }))
    }
}

/// `saml`: identified by `provider:subject` for each linked provider.
#[derive(Debug)]
struct Federated(&'static str);

#[async_trait]
impl CredentialType for Federated {
    fn id(&self) -> &'static str {
        self.0
    }
    async fn import(
        &self,
        _cx: &ImportCx<'_>,
        _identity: &Identity,
        config: Value,
    ) -> Result<Option<Imported>, ImportError> {
        if config.is_null() {
            return Ok(None);
        }
        let identifiers = config
            .get("providers")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let provider = p.get("provider")?.as_str()?;
                        let subject = p.get("subject")?.as_str()?;
                        Some(format!("{provider}:{subject}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Imported {
            identifiers,
            config,
            version: 1,
        }))
    }
}

static TOTP: SecondFactor = SecondFactor("totp");
static LOOKUP_SECRET: SecondFactor = SecondFactor("lookup_secret");
static SAML: Federated = Federated("saml");

/// Registers the stored-only types.
pub fn register(r: &mut Registry<'_>) {
    r.credential(&TOTP);
    r.credential(&LOOKUP_SECRET);
    r.credential(&SAML);
}
