//! Methods (password, profile, code, passkey, …). Each strategy fills its nodes into flows
//! and judges submissions; the flow engine owns HTTP, CSRF, sessions and responses.
//! Adding a method touches its folder and [`all`].

pub mod address_change;
pub mod code;
#[cfg(test)]
mod example;
mod kratos_types;
pub mod link;
pub mod lookup_secret;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod profile;
pub mod shared;
pub mod totp;
pub mod webauthn;

use async_trait::async_trait;
use serde_json::Value;

use crate::deps::Env;
use crate::identity::Identity;
use crate::model::flow::Flow;
use crate::session::manager::ClientInfo;
use crate::text::UiText;

/// What a strategy sees of the request besides the flow and the body.
#[derive(Debug)]
pub struct Cx<'a> {
    /// What a method may use: database, clock, configuration, schemas, hashing, public URLs
    /// (not the session sealer, the SMTP transport, metrics or the admin API).
    pub env: &'a Env,
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
    /// A second-factor (`aal2`) login was submitted without the session of the identity it
    /// was started for: Kratos' 401 `session_aal1_required`.
    Aal1Required,
    /// The database failed.
    Store(crate::store::StoreError),
    /// Something failed that is not the client's fault (logged, never shown).
    Internal(String),
    /// An error Kratos answers as an error rather than as a form message (its
    /// `WriteFlowError` forwards them): a hook's upstream failing (`502`), a misconfiguration
    /// (`500 invalid_configuration`), an unverified address (`403`). Sent as it is.
    Api(crate::error::ApiError),
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
        aal: crate::model::Aal,
    },
    /// The flow changed and is shown again (code sent, next step) — 400 for JSON clients.
    Continue,
    /// As [`LoginOutcome::Continue`], but the strategy already saved the flow, in the
    /// transaction of its own writes.
    Saved,
    /// The browser leaves for an external URL (an identity provider) and comes back on one of
    /// the strategy's routes: a redirect for forms, Kratos' 422
    /// `browser_location_change_required` for SPAs and native apps.
    RedirectExternal(String),
    /// Nobody holds the proven external account, so the login becomes a registration of
    /// this new identity (Kratos' OIDC login with an unknown subject): the engine creates a
    /// registration flow and finishes it with `identity`.
    Register {
        /// The new identity (not yet persisted).
        identity: Box<Identity>,
        /// Which method proved it.
        method: &'static str,
    },
    /// The proven external account is new, but an identifier it brings (its email) belongs
    /// to another identity: the engine starts a login flow that links it once that
    /// identity's owner signs in (Kratos' account linking, message 1010016).
    LinkExisting(Box<LinkExisting>),
}

/// A credential waiting to be linked to the identity that holds `duplicate_identifier`,
/// once its owner proves an existing credential in a login flow. Never linked by the
/// identifier alone. Kratos: `flow.DuplicateCredentialsData`, `populateAccountLinkingUI`.
#[derive(Debug, Clone)]
pub struct LinkExisting {
    /// The credential type to link (`oidc`); its login strategy does the linking.
    pub credentials_type: &'static str,
    /// The credential's config to link (`{"providers": [{"provider", "subject"}]}`).
    pub credentials_config: Value,
    /// The identifier (an email) another identity holds.
    pub duplicate_identifier: String,
    /// The provider id that was used, whose button is hidden on the linking login.
    pub provider_id: String,
    /// Its label, for the message.
    pub provider_label: String,
    /// First-factor credential types the existing identity has (login hints only).
    pub available_credential_types: Vec<String>,
    /// Providers the existing identity has linked (login hints only).
    pub available_providers: Vec<String>,
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
    /// The flow changed and is shown again (code sent) — 400 for JSON.
    Continue,
    /// The flow moves to another screen (the profile method's steps): the engine fills it
    /// with every method's nodes for that step — `Profile` with the traits from the flow's
    /// internal context as values (which it drops), `CredentialSelection` with those traits
    /// fixed.
    Show(RegistrationStep),
    /// The browser leaves for an external URL and comes back on a strategy route (see
    /// [`LoginOutcome::RedirectExternal`]).
    RedirectExternal(String),
    /// The proven external account already belongs to `identity`, so the registration
    /// becomes a login (Kratos' OIDC registration with a known subject): the engine creates
    /// a login flow and signs in on it.
    SignIn {
        /// Who.
        identity: Box<Identity>,
        /// Which method proved it.
        method: &'static str,
    },
    /// See [`LoginOutcome::LinkExisting`].
    LinkExisting(Box<LinkExisting>),
}

/// What a request to a strategy's own route carries.
#[derive(Debug, Clone, Default)]
pub struct RouteInput {
    /// Path parameters (`{provider}` → value).
    pub params: std::collections::BTreeMap<String, String>,
    /// Query parameters (first value of each).
    pub query: std::collections::BTreeMap<String, String>,
    /// The decoded body (form or JSON), or `Null`.
    pub body: Value,
    /// The request is a `POST`.
    pub post: bool,
}

/// What the engine does with a request to a strategy route.
#[derive(Debug)]
pub enum RouteOutcome {
    /// Submit `body` to the flow `flow_id` as if the browser had posted it; the strategy has
    /// authenticated the request itself (e.g. OAuth `state`), so no CSRF token is required,
    /// but a browser flow must still come back with the browser's CSRF cookie.
    Submit {
        /// The flow the request belongs to.
        flow_id: uuid::Uuid,
        /// The submission (with `method` set to the strategy).
        body: Value,
    },
    /// Send the browser elsewhere with `302 Found` (a form-POSTed callback goes on as a GET,
    /// which carries the browser's `SameSite=Lax` cookies).
    Redirect(String),
}

/// A handler for a route a strategy owns (an OAuth callback, …). It never writes HTTP.
#[async_trait]
pub trait RouteHandler: Send + Sync + std::fmt::Debug {
    /// Turns the request into an outcome for the engine.
    async fn handle(&self, env: &Env, input: &RouteInput) -> Result<RouteOutcome, FlowError>;
}

/// A route a strategy owns: served for `GET` and `POST` on the public port.
#[derive(Debug, Clone)]
pub struct StrategyRoute {
    /// The path, with `{name}` parameters (`/self-service/methods/oidc/callback/{provider}`).
    pub path: &'static str,
    /// What answers it.
    pub handler: std::sync::Arc<dyn RouteHandler>,
}

/// Which registration screen to populate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStep {
    /// A new flow in the `unified` style: traits and every method at once.
    Unified,
    /// A new flow in the `profile_first` style: traits only (the profile method adds its
    /// submit button).
    Profile,
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
    fn populate(&self, env: &Env, flow: &mut Flow, signed_in: Option<&Identity>);
    /// Handles a submission with `method` = [`LoginStrategy::id`].
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError>;
    /// Right after an `aal2` flow for `identity` was stored, a method may take its first step
    /// at once (Kratos' `FastLogin2FA`: the code method mails its code when it is the only
    /// way). Returns whether it changed the flow (the engine then stores it again).
    async fn on_aal2_created(&self, _env: &Env, _flow: &mut Flow, _identity: &Identity) -> Result<bool, FlowError> {
        Ok(false)
    }
    /// Account linking: adds the credential `config` (from [`LinkExisting`]) to `identity`,
    /// after its owner signed in on the linking login flow. Returns the provider to name in
    /// the session's method entry. Kratos: `LinkableStrategy.Link`.
    fn link(&self, _env: &Env, _identity: &mut Identity, _config: &Value) -> Result<Option<String>, FlowError> {
        Err(FlowError::Internal(format!(
            "the {} method cannot link credentials",
            self.id()
        )))
    }
}

/// A method that can sign people up. Kratos: `registration.Strategy`.
#[async_trait]
pub trait RegistrationStrategy: Send + Sync + std::fmt::Debug {
    /// The `method` value this strategy answers to.
    fn id(&self) -> &'static str;
    /// Whether this method takes part in a registration screen: by default in the unified
    /// one and in the credential selection, not on the `profile_first` traits screen.
    fn shows_on(&self, step: RegistrationStep) -> bool {
        step != RegistrationStep::Profile
    }
    /// Adds this method's nodes to a registration flow (only for steps it
    /// [shows on](RegistrationStrategy::shows_on)).
    fn populate(&self, env: &Env, flow: &mut Flow, step: RegistrationStep);
    /// Handles a submission with `method` = [`RegistrationStrategy::id`].
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError>;
}

/// A part of settings: the profile, or a method whose credentials are managed there.
/// Kratos: `settings.Strategy`.
#[async_trait]
pub trait SettingsStrategy: Send + Sync + std::fmt::Debug {
    /// The `method` value this strategy answers to.
    fn id(&self) -> &'static str;
    /// Adds this method's nodes for `identity` to a settings flow.
    fn populate(&self, env: &Env, flow: &mut Flow, identity: &Identity);
    /// Checks the submission's shape before the privileged-session check (Kratos decodes and
    /// validates the body first, so a malformed submission is answered as such even from an
    /// old session).
    fn check(&self, _body: &Value) -> Result<(), FlowError> {
        Ok(())
    }
    /// Whether a submission without `method` is this method's. Kratos' TOTP, lookup-secret
    /// and WebAuthn settings buttons post only their own field (`totp_unlink=true`,
    /// `lookup_secret_regenerate=true`, `webauthn_remove=<id>`), and the strategy takes them
    /// as its own; a form per method (Ory's reference UI, the built-in pages) sends no
    /// `method` with them.
    fn claims(&self, _body: &Value) -> bool {
        false
    }
    /// Handles a submission with `method` = [`SettingsStrategy::id`] from a privileged
    /// session; returns the changed identity, which the settings flow stores.
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Value,
        identity: &Identity,
    ) -> Result<Identity, FlowError>;
    /// Runs before [`SettingsStrategy::submit`] (after the privileged-session check): a
    /// change that first sends the browser elsewhere (the OIDC `link`) returns that URL; the
    /// engine stores the flow and answers with a redirect (Kratos' 422
    /// `browser_location_change_required` for JSON clients). The change completes on a
    /// strategy route that submits the flow again.
    async fn leaves_for(
        &self,
        _cx: &Cx<'_>,
        _flow: &mut Flow,
        _body: &Value,
        _identity: &Identity,
    ) -> Result<Option<String>, FlowError> {
        Ok(None)
    }
}

/// Result of a recovery submission.
#[derive(Debug)]
pub enum RecoveryOutcome {
    /// The flow changed and is shown again (a code was sent).
    Continue,
    /// The person proved control of `address`, a recovery address of `identity`.
    Recovered {
        /// Whose account.
        identity: Box<Identity>,
        /// The address that was proven (it becomes verified).
        address: String,
        /// The session's authentication method (`code_recovery`, `link_recovery`).
        method: &'static str,
    },
}

/// A method that lets people regain access. Kratos: `recovery.Strategy`.
#[async_trait]
pub trait RecoveryStrategy: Send + Sync + std::fmt::Debug {
    /// The strategy's name (`selfservice.flows.recovery.use`).
    fn id(&self) -> &'static str;
    /// The first screen of a recovery flow.
    fn populate(&self, env: &Env, flow: &mut Flow);
    /// Handles a submission.
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RecoveryOutcome, FlowError>;
}

/// Result of a verification submission.
#[derive(Debug)]
pub enum VerificationOutcome {
    /// The flow changed and is shown again (a code was sent).
    Continue,
    /// The address is verified.
    Verified,
    /// The address is verified and the settings change that waited for it (`verify_new_address`)
    /// is stored; the settings hooks that follow a change run next.
    AddressChanged(Box<address_change::Applied>),
    /// The proof was used up, but the change that waited for it was refused: the flow shows
    /// why.
    Refused(crate::text::UiText),
}

/// A method that proves control of an address. Kratos: `verification.Strategy`.
#[async_trait]
pub trait VerificationStrategy: Send + Sync + std::fmt::Debug {
    /// The strategy's name (`selfservice.flows.verification.use`).
    fn id(&self) -> &'static str;
    /// The first screen of a verification flow.
    fn populate(&self, env: &Env, flow: &mut Flow);
    /// Sends the proof (a code, a link) for `address` in `flow`; also used after registration.
    async fn send(&self, env: &Env, flow: &mut Flow, address: &str) -> Result<(), FlowError>;
    /// Handles a submission.
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<VerificationOutcome, FlowError>;
}

pub use crate::model::credential::{CredentialType, CredentialTypes, Factor, ImportCx, ImportError, Imported};

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
    /// Its recovery part.
    fn recovery(&self) -> Option<&dyn RecoveryStrategy> {
        None
    }
    /// Its verification part.
    fn verification(&self) -> Option<&dyn VerificationStrategy> {
        None
    }
    /// Routes it owns; the router mounts them (e.g. the OIDC callback).
    fn routes(&self) -> Vec<StrategyRoute> {
        vec![]
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
    strategies: Strategies,
    credentials: CredentialTypes,
}

impl<'c> Registry<'c> {
    /// The configuration methods decide on.
    pub fn config(&self) -> &'c crate::config::Config {
        self.config
    }

    /// Registers a credential type; a later registration of the same id replaces an earlier.
    pub fn credential(&mut self, c: &'static dyn CredentialType) {
        self.credentials.register(c);
    }

    /// Enables a method.
    pub fn strategy(&mut self, s: std::sync::Arc<dyn Strategy>) {
        self.credentials.enable(s.id());
        self.strategies.enabled.retain(|k| k.id() != s.id());
        self.strategies.enabled.push(s);
    }
}

/// The enabled methods, in Kratos' order: the flow engine dispatches to them.
#[derive(Debug, Default)]
pub struct Strategies {
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

    /// The recovery strategy named `name` (`selfservice.flows.recovery.use`), else the first
    /// one enabled.
    pub fn recovery(&self, name: &str) -> Option<&dyn RecoveryStrategy> {
        let all = || self.enabled.iter().filter_map(|s| s.recovery());
        all().find(|s| s.id() == name).or_else(|| all().next())
    }

    /// The verification strategy named `name`, else the first one enabled.
    pub fn verification(&self, name: &str) -> Option<&dyn VerificationStrategy> {
        let all = || self.enabled.iter().filter_map(|s| s.verification());
        all().find(|s| s.id() == name).or_else(|| all().next())
    }

    /// The routes of every enabled strategy.
    pub fn routes(&self) -> Vec<StrategyRoute> {
        self.enabled.iter().flat_map(|s| s.routes()).collect()
    }

    /// The WebAuthn relying party of the first enabled method that has one.
    pub fn webauthn_relying_party(&self) -> Option<&passkey::config::RelyingParty> {
        self.enabled.iter().find_map(|s| s.webauthn_relying_party())
    }
}

/// Every method Latch has, one line each, in Kratos' order. A method's `register` adds its
/// credential type and, when its configuration enables it, its strategy. Returns the enabled
/// strategies (for the engine) and every credential type (for identities and the admin API).
pub fn all(config: &crate::config::Config) -> (Strategies, CredentialTypes) {
    let mut r = Registry {
        config,
        strategies: Strategies::default(),
        credentials: CredentialTypes::default(),
    };
    kratos_types::register(&mut r);
    profile::register(&mut r);
    code::register(&mut r);
    link::register(&mut r);
    password::register(&mut r);
    passkey::register(&mut r);
    webauthn::register(&mut r);
    totp::register(&mut r);
    lookup_secret::register(&mut r);
    oidc::register(&mut r);
    #[cfg(test)]
    example::register(&mut r);
    (r.strategies, r.credentials)
}

/// The `method` of a submission. Like Kratos, a passkey credential in the body selects
/// the passkey method when `method` is missing; a registration `screen` button (back,
/// credential selection) belongs to the profile method.
pub fn method_of(body: &Value) -> &str {
    if matches!(field(body, "screen"), Some("previous" | "credential-selection")) {
        return "profile";
    }
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
            // Kratos' second-factor code form has `address` buttons and no `method` field.
            let address = field(body, "address").is_some_and(|v| !v.is_empty());
            if passkey {
                "passkey"
            } else if address {
                "code"
            } else if field(body, "provider").is_some_and(|v| !v.is_empty()) {
                // Kratos' social sign-in buttons post `provider=<id>` alone.
                "oidc"
            } else {
                ""
            }
        }
    }
}

/// Reads a string field from a submission (JSON or decoded form).
pub fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// Turns trait validation errors into node messages (`#/traits/email` → `traits.email`).
pub fn traits_invalid(errs: &[crate::identity::schema::TraitError]) -> FlowError {
    let mut messages = vec![];
    let mut node_messages = vec![];
    for e in errs {
        let path = crate::identity::manager::pointer_to_path(&e.instance_ptr);
        if path.is_empty() {
            messages.push(e.message.clone());
        } else {
            node_messages.push((path, e.message.clone()));
        }
    }
    FlowError::Invalid {
        messages,
        node_messages,
    }
}
