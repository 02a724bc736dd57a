//! Methods (password, profile, code, passkey, …). Each strategy fills its nodes into flows
//! and judges submissions; the flow engine owns HTTP, CSRF, sessions and responses.
//! Adding a method touches its folder and [`all`].

pub mod code;
pub mod passkey;
pub mod password;
pub mod webauthn;

use async_trait::async_trait;
use serde_json::Value;

use crate::deps::Deps;
use crate::flow::Flow;
use crate::http::error::ApiError;
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

/// A failed submission. `Invalid` is data that the engine renders into the flow; `Api`
/// is a real error (404 for a disabled method, 5xx).
#[derive(Debug)]
pub enum FlowError {
    /// Messages for the form: global ones and per-node ones (`traits.email`, `password`).
    Invalid {
        /// Messages shown above the form.
        messages: Vec<UiText>,
        /// Messages attached to the node with that name.
        node_messages: Vec<(String, UiText)>,
    },
    /// An error answered as error JSON (or the error page for browsers).
    Api(ApiError),
    /// A rate limit or attempt budget refused the submission: a form message for browsers,
    /// `429` + `Retry-After` for JSON clients.
    Limited(crate::limits::Limited),
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

impl From<ApiError> for FlowError {
    fn from(e: ApiError) -> FlowError {
        FlowError::Api(e)
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
        FlowError::Api(e.into())
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

/// The enabled strategies, in Kratos' order.
#[derive(Debug, Default)]
pub struct Strategies {
    /// Login methods.
    pub login: Vec<Box<dyn LoginStrategy>>,
    /// Registration methods (excluding `profile`, which the engine handles as a step).
    pub registration: Vec<Box<dyn RegistrationStrategy>>,
    /// Settings methods (excluding `profile`).
    pub settings: Vec<Box<dyn SettingsStrategy>>,
    /// The passkey relying party, when passkeys are on (for `/.well-known/webauthn`).
    pub passkey_rp: Option<passkey::config::RelyingParty>,
}

/// Every method named in the configuration and enabled, in one list.
pub fn all(config: &crate::config::Config) -> Strategies {
    let mut s = Strategies::default();
    let code = &config.selfservice.methods.code;
    if code.enabled && code.passwordless_enabled {
        s.login.push(Box::new(code::Code));
        s.registration.push(Box::new(code::Code));
    }
    if config.selfservice.methods.password.enabled {
        s.login.push(Box::new(password::Password));
        s.registration.push(Box::new(password::Password));
    }
    if config.selfservice.methods.passkey.enabled {
        match passkey::Passkey::new(config) {
            Ok(p) => {
                s.passkey_rp = Some(p.relying_party().clone());
                s.login.push(Box::new(p.clone()));
                s.registration.push(Box::new(p.clone()));
                s.settings.push(Box::new(p));
            }
            Err(e) => tracing::warn!(error = %e, "passkeys are not offered"),
        }
    }
    if config.selfservice.methods.webauthn.enabled {
        match webauthn::SecurityKeys::new(config) {
            Ok(w) => {
                s.login.push(Box::new(w.clone()));
                s.registration.push(Box::new(w.clone()));
                s.settings.push(Box::new(w));
            }
            Err(e) => tracing::warn!(error = %e, "security keys (webauthn) are not offered"),
        }
    }
    s
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

/// Whether the identity could still sign in without its `except` credentials (`passkey` or
/// `webauthn`): a password, an address for passwordless codes (while those are on), a passkey,
/// or a passwordless security key. Settings refuse removals that would lock people out.
pub fn has_first_factor_besides(deps: &Deps, identity: &Identity, except: &str) -> bool {
    let methods = &deps.config.selfservice.methods;
    let creds = |kind: &str| identity.credentials.get(kind);
    let list = |kind: &str| {
        creds(kind)
            .and_then(|c| c.config.get("credentials"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let password = methods.password.enabled
        && creds("password")
            .and_then(|c| c.config.get("hashed_password"))
            .and_then(Value::as_str)
            .is_some_and(|h| !h.is_empty());
    let code = methods.code.enabled
        && methods.code.passwordless_enabled
        && creds("code").is_some_and(|c| !c.identifiers.is_empty());
    let passkey = except != "passkey" && !list("passkey").is_empty();
    let security_key = except != "webauthn"
        && list("webauthn")
            .iter()
            .any(|k| k.get("is_passwordless") == Some(&Value::Bool(true)));
    password || code || passkey || security_key
}
