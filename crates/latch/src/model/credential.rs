//! Credential types: what Latch knows about each method's credentials, enabled or not, and
//! the lists derived from them (first and second factors, imports, trait identifiers). Each
//! method folder registers its type (`strategy::all`); nothing names methods by hand.

use async_trait::async_trait;
use serde_json::Value;

use crate::identity::Identity;

/// How a method counts towards the authenticator assurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// Signs in alone (`aal1`).
    First,
    /// Only after a first factor (`aal2`).
    Second,
    /// Either, depending on the credential (security keys).
    Both,
}

/// A credential imported through the admin API: what is stored for the identity.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Identifiers the credential is found by.
    pub identifiers: Vec<String>,
    /// The stored `config`.
    pub config: Value,
    /// The stored config's version.
    pub version: i32,
}

/// Why a credential could not be imported.
#[derive(Debug)]
pub enum ImportError {
    /// The config is not acceptable; the reason names the field.
    Invalid(String),
    /// Password hashing is saturated (answered `503`).
    Busy,
    /// Something failed that is not the caller's fault.
    Internal(String),
}

/// What Latch knows about a credential type, enabled or not: the admin API imports and
/// deletes credentials of disabled methods too, as Kratos does. Stateless; every method folder
/// has one and registers it in [`all`].
#[async_trait]
pub trait CredentialType: Send + Sync + std::fmt::Debug {
    /// The credential type (`password`, `code`, `passkey`, …), also the method name.
    fn id(&self) -> &'static str;
    /// First factor, second factor or either.
    fn factor(&self) -> Factor {
        Factor::First
    }
    /// Whether `identity` could sign in with this credential alone while the method is
    /// enabled (settings refuse removals that would leave none).
    fn signs_in_alone(&self, _config: &crate::config::Config, _identity: &Identity) -> bool {
        false
    }
    /// Whether `identity` holds this credential as a second factor (its available AAL) under
    /// `config` (a method may count as one only in some modes, as codes with `mfa_enabled`).
    fn is_second_factor(&self, _config: &crate::config::Config, _identity: &Identity) -> bool {
        false
    }
    /// Whether the identity schema's `ory.sh/kratos` extension marks traits as identifiers of
    /// this type (the login `identifier` input is labelled after them).
    fn identifiers_from_traits(&self) -> bool {
        false
    }
    /// Turns the `config` given to the admin API into what is stored (`None`: nothing to
    /// store). The default keeps a non-null config as given, with the identifiers the
    /// identity already has for this type.
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
            identifiers: identity
                .credentials
                .get(self.id())
                .map(|c| c.identifiers.clone())
                .unwrap_or_default(),
            config,
            version: 1,
        }))
    }
    /// `Err(reason)` when the admin API must not delete this credential type.
    fn deletable(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What a credential import may use.
#[derive(Debug)]
pub struct ImportCx<'a> {
    /// Hashes plain-text passwords.
    pub hasher: &'a crate::crypto::password::PasswordHasher,
    /// Validate only: skip expensive work such as hashing (nothing is stored).
    pub dry_run: bool,
}

/// Every registered credential type and which of them belong to enabled methods.
#[derive(Debug, Default)]
pub struct CredentialTypes {
    known: Vec<&'static dyn CredentialType>,
    enabled: Vec<&'static str>,
}

impl CredentialTypes {
    /// Registers a type; a later registration of the same id replaces an earlier.
    pub fn register(&mut self, c: &'static dyn CredentialType) {
        self.known.retain(|k| k.id() != c.id());
        self.known.push(c);
    }

    /// Marks a type's method as enabled.
    pub fn enable(&mut self, id: &'static str) {
        if !self.enabled.contains(&id) {
            self.enabled.push(id);
        }
    }

    /// The credential type `id`, enabled or not.
    pub fn get(&self, id: &str) -> Option<&'static dyn CredentialType> {
        self.known.iter().copied().find(|c| c.id() == id)
    }

    /// Whether a method is enabled.
    pub fn is_enabled(&self, id: &str) -> bool {
        self.enabled.contains(&id)
    }

    fn enabled_types(&self) -> impl Iterator<Item = &'static dyn CredentialType> + '_ {
        self.enabled.iter().filter_map(|id| self.get(id))
    }

    /// Whether `identity` could still sign in with an enabled method other than `except`.
    pub fn has_first_factor_besides(&self, config: &crate::config::Config, identity: &Identity, except: &str) -> bool {
        self.enabled_types()
            .filter(|c| c.id() != except)
            .any(|c| c.signs_in_alone(config, identity))
    }

    /// The AAL an identity could reach: `aal2` with any second factor, else `aal1`.
    pub fn available_aal(&self, config: &crate::config::Config, identity: &Identity) -> super::Aal {
        if self.known.iter().any(|c| c.is_second_factor(config, identity)) {
            super::Aal::Aal2
        } else {
            super::Aal::Aal1
        }
    }

    /// Whether `identity` holds a second factor other than `except` (Kratos' `FastLogin2FA`
    /// sends a code only when the code is the sole second factor).
    pub fn second_factors_besides(&self, config: &crate::config::Config, identity: &Identity, except: &str) -> bool {
        self.known
            .iter()
            .filter(|c| c.id() != except)
            .any(|c| c.is_second_factor(config, identity))
    }

    /// Enabled credential types whose identifiers come from traits.
    pub fn trait_identified(&self) -> Vec<&'static str> {
        self.enabled_types()
            .filter(|c| c.identifiers_from_traits())
            .map(|c| c.id())
            .collect()
    }
}
