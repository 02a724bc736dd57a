//! Methods (password, profile, code, passkey, …). Each strategy fills its nodes into flows
//! and judges submissions; the flow engine owns HTTP, CSRF, sessions and responses.
//! Adding a method touches its folder and [`all`].

pub mod code;
#[cfg(test)]
mod example;
mod kratos_types;
pub mod passkey;
pub mod password;
pub mod shared;
pub mod webauthn;

use async_trait::async_trait;
use serde_json::Value;

use crate::deps::Deps;
use crate::model::flow::Flow;
use crate::identity::Identity;
use crate::session::manager::ClientInfo;
use crate::text::UiText;

/// What a strategy sees of the request besides the flow and the body.
#[derive(Debug)]
pub struct Cx<'a> {
    /// Dependencies.
    pub deps: &'a Deps,
    /// The client (for devices and rate decisions).
    pub client: &'a ClientInfo,
}

/// A failed submission, as data: the engine alone decides how each is answered to browsers,
/// SPAs and native apps (`flow::engine`). Strategies never produce HTTP.
#[derive(Debug)]
pub enum FlowError {
    /// Messages for the form: global ones and per-node ones (`traits.email`, `password`).
    Invalid {
        /// Messages shown above the form.
        messages: Vec<UiText>,
        /// Messages attached to the node with that name.
        node_messages: Vec<(String, UiText)>,
    },
    /// A rate limit or attempt budget refused the submission: a form message for browsers,
    /// `429` + `Retry-After` for JSON clients.
    Limited(crate::limits::Limited),
    /// The browser has to run this flow on its UI page (e.g. a WebAuthn ceremony): Kratos'
    /// 422 `browser_location_change_required` for SPAs, a redirect for forms.
    BrowserLocationChange,
    /// The request carries a session, so this flow (login without `refresh`, registration)
    /// is not possible: Kratos' 400 `session_already_available`.
    SessionAlreadyAvailable,
    /// The session is too old for this change: re-authenticate (Kratos'
    /// `session_refresh_required`; browsers are sent to a refresh login).
    RefreshRequired,
    /// The database failed.
    Store(crate::store::StoreError),
    /// Something failed that is not the client's fault (logged, never shown).
    Internal(String),
}

impl FlowError {
    /// A single global form message.
    pub fn message(m: UiText) -> FlowError {
        FlowError::Invalid {
            messages: vec![m],
            node_messages: vec![],
        }
    }

    /// A single message on one node.
    pub fn on_node(name: &str, m: UiText) -> FlowError {
        FlowError::Invalid {
            messages: vec![],
            node_messages: vec![(name.to_string(), m)],
        }
    }
}

impl From<crate::limits::LimitError> for FlowError {
    fn from(e: crate::limits::LimitError) -> FlowError {
        match e {
            crate::limits::LimitError::Limited(l) => FlowError::Limited(l),
            crate::limits::LimitError::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for FlowError {
    fn from(e: crate::store::StoreError) -> FlowError {
        FlowError::Store(e)
    }
}

/// Result of a login submission.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The identity proved who it is with `method` at `aal`.
    Authenticated {
        /// Who.
        identity: Box<Identity>,
        /// Which method (`password`, `code`, …).
        method: &'static str,
        /// `aal1` or `aal2`.
        aal: &'static str,
    },
    /// The flow changed and is shown again (code sent, next step) — 400 for JSON clients.
    Continue,
}

/// Result of a registration submission.
#[derive(Debug)]
pub enum RegistrationOutcome {
    /// A new identity is ready to be stored.
    Create {
        /// The identity (not yet persisted).
        identity: Box<Identity>,
        /// Which method created it.
        method: &'static str,
    },
    /// The flow changed and is shown again (profile step done, code sent) — 400 for JSON.
    Continue,
}

/// Which registration screen to populate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStep {
    /// A new flow in the `unified` style: traits and every method at once.
    Unified,
    /// `profile_first`, after the traits were accepted: only credential inputs.
    CredentialSelection,
}

/// A method that can sign people in. Kratos: `login.Strategy`.
#[async_trait]
pub trait LoginStrategy: Send + Sync + std::fmt::Debug {
    /// The `method` value this strategy answers to.
    fn id(&self) -> &'static str;
    /// Adds this method's nodes to a new login flow; `signed_in` is the identity of the
    /// request's session (refresh and `aal2` flows), if any.
    fn populate(&self, deps: &Deps, flow: &mut Flow, signed_in: Option<&Identity>);
    /// Handles a submission with `method` = [`LoginStrategy::id`].
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError>;
}

/// A method that can sign people up. Kratos: `registration.Strategy`.
#[async_trait]
pub trait RegistrationStrategy: Send + Sync + std::fmt::Debug {
    /// The `method` value this strategy answers to.
    fn id(&self) -> &'static str;
    /// Adds this method's nodes to a registration flow.
    fn populate(&self, deps: &Deps, flow: &mut Flow, step: RegistrationStep);
    /// Handles a submission with `method` = [`RegistrationStrategy::id`].
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError>;
}

/// A method whose credentials can be managed in settings (the profile is handled by the
/// settings flow itself). Kratos: `settings.Strategy`.
#[async_trait]
pub trait SettingsStrategy: Send + Sync + std::fmt::Debug {
    /// The `method` value this strategy answers to.
    fn id(&self) -> &'static str;
    /// Adds this method's nodes for `identity` to a settings flow.
    fn populate(&self, deps: &Deps, flow: &mut Flow, identity: &Identity);
    /// Handles a submission with `method` = [`SettingsStrategy::id`] from a privileged
    /// session; returns the changed identity, which the settings flow stores.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError>;
}

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
    /// Whether `identity` holds this credential as a second factor (its available AAL).
    fn is_second_factor(&self, _identity: &Identity) -> bool {
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
}

/// An enabled method: which flows it takes part in. Every list that names methods (the
/// methods of a flow, first and second factors, credential imports) is derived from the
/// registered strategies and credential types, never written by hand.
pub trait Strategy: Send + Sync + std::fmt::Debug {
    /// The `method` value (and credential type).
    fn id(&self) -> &'static str;
    /// Its login part, if it signs people in.
    fn login(&self) -> Option<&dyn LoginStrategy> {
        None
    }
    /// Its registration part, if it signs people up.
    fn registration(&self) -> Option<&dyn RegistrationStrategy> {
        None
    }
    /// Its settings part, if people manage its credentials in settings.
    fn settings(&self) -> Option<&dyn SettingsStrategy> {
        None
    }
    /// The WebAuthn relying party it uses, for `/.well-known/webauthn`.
    fn webauthn_relying_party(&self) -> Option<&passkey::config::RelyingParty> {
        None
    }
}

/// Collects what each method folder registers (see [`all`]).
#[derive(Debug)]
pub struct Registry<'c> {
    config: &'c crate::config::Config,
    out: Strategies,
}

impl<'c> Registry<'c> {
    /// The configuration methods decide on.
    pub fn config(&self) -> &'c crate::config::Config {
        self.config
    }

    /// Registers a credential type; a later registration of the same id replaces an earlier.
    pub fn credential(&mut self, c: &'static dyn CredentialType) {
        self.out.credentials.retain(|k| k.id() != c.id());
        self.out.credentials.push(c);
    }

    /// Enables a method.
    pub fn strategy(&mut self, s: std::sync::Arc<dyn Strategy>) {
        self.out.enabled.retain(|k| k.id() != s.id());
        self.out.enabled.push(s);
    }
}

/// The registered credential types and the enabled methods, in Kratos' order.
#[derive(Debug, Default)]
pub struct Strategies {
    credentials: Vec<&'static dyn CredentialType>,
    enabled: Vec<std::sync::Arc<dyn Strategy>>,
}

impl Strategies {
    /// Enabled methods that sign people in.
    pub fn login(&self) -> impl Iterator<Item = &dyn LoginStrategy> {
        self.enabled.iter().filter_map(|s| s.login())
    }

    /// Enabled methods that sign people up.
    pub fn registration(&self) -> impl Iterator<Item = &dyn RegistrationStrategy> {
        self.enabled.iter().filter_map(|s| s.registration())
    }

    /// Enabled methods managed in settings.
    pub fn settings(&self) -> impl Iterator<Item = &dyn SettingsStrategy> {
        self.enabled.iter().filter_map(|s| s.settings())
    }

    /// Whether a method is enabled.
    pub fn is_enabled(&self, id: &str) -> bool {
        self.enabled.iter().any(|s| s.id() == id)
    }

    /// The credential type `id`, enabled or not.
    pub fn credential(&self, id: &str) -> Option<&'static dyn CredentialType> {
        self.credentials.iter().copied().find(|c| c.id() == id)
    }

    /// Every known credential type.
    pub fn credentials(&self) -> impl Iterator<Item = &'static dyn CredentialType> + '_ {
        self.credentials.iter().copied()
    }

    /// The WebAuthn relying party of the first enabled method that has one.
    pub fn webauthn_relying_party(&self) -> Option<&passkey::config::RelyingParty> {
        self.enabled.iter().find_map(|s| s.webauthn_relying_party())
    }

    /// Whether `identity` could still sign in with an enabled method other than `except`.
    pub fn has_first_factor_besides(&self, config: &crate::config::Config, identity: &Identity, except: &str) -> bool {
        self.enabled
            .iter()
            .filter(|s| s.id() != except)
            .filter_map(|s| self.credential(s.id()))
            .any(|c| c.signs_in_alone(config, identity))
    }

    /// The AAL an identity could reach: `aal2` with any second factor, else `aal1`.
    pub fn available_aal(&self, identity: &Identity) -> &'static str {
        if self.credentials().any(|c| c.is_second_factor(identity)) {
            "aal2"
        } else {
            "aal1"
        }
    }

    /// Enabled credential types whose identifiers come from traits.
    pub fn trait_identified(&self) -> Vec<&'static str> {
        self.enabled
            .iter()
            .filter_map(|s| self.credential(s.id()))
            .filter(|c| c.identifiers_from_traits())
            .map(|c| c.id())
            .collect()
    }
}

/// Every method Latch has, one line each, in Kratos' order. A method's `register` adds its
/// credential type and, when its configuration enables it, its strategy.
pub fn all(config: &crate::config::Config) -> Strategies {
    let mut r = Registry {
        config,
        out: Strategies::default(),
    };
    kratos_types::register(&mut r);
    code::register(&mut r);
    password::register(&mut r);
    passkey::register(&mut r);
    webauthn::register(&mut r);
    #[cfg(test)]
    example::register(&mut r);
    r.out
}

/// The `method` of a submission. Like Kratos, a passkey credential in the body selects
/// the passkey method when `method` is missing.
pub fn method_of(body: &Value) -> &str {
    match field(body, "method").filter(|m| !m.is_empty()) {
        Some(m) => m,
        None => {
            let passkey = [
                "passkey_login",
                "passkey_register",
                "passkey_settings_register",
                "passkey_remove",
            ]
            .iter()
            .any(|k| field(body, k).is_some_and(|v| !v.is_empty()));
            if passkey { "passkey" } else { "" }
        }
    }
}

/// Reads a string field from a submission (JSON or decoded form).
pub fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// Converts a schema validation message into a UI text.
pub fn schema_text(t: &crate::identity::schema::UiText) -> UiText {
    let ty = match t.r#type {
        "info" => crate::text::TextType::Info,
        "success" => crate::text::TextType::Success,
        _ => crate::text::TextType::Error,
    };
    let mut out = UiText::new(t.id, ty, t.text.clone());
    out.context = t.context.clone();
    out
}

/// Turns trait validation errors into node messages (`#/traits/email` → `traits.email`).
pub fn traits_invalid(errs: &[crate::identity::schema::TraitError]) -> FlowError {
    let mut messages = vec![];
    let mut node_messages = vec![];
    for e in errs {
        let path = crate::identity::manager::pointer_to_path(&e.instance_ptr);
        if path.is_empty() {
            messages.push(schema_text(&e.message));
        } else {
            node_messages.push((path, schema_text(&e.message)));
        }
    }
    FlowError::Invalid {
        messages,
        node_messages,
    }
}
