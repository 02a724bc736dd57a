//! A self-service flow (login, registration, …): the object a client creates, fetches and
//! submits, as stored and rendered. Kratos: `selfservice/flow/*`.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::ui::Container;

/// Which flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Sign in.
    Login,
    /// Sign up.
    Registration,
    /// Change profile and credentials.
    Settings,
    /// Regain access.
    Recovery,
    /// Prove control of an address.
    Verification,
}

impl FlowKind {
    /// Path segment and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Login => "login",
            FlowKind::Registration => "registration",
            FlowKind::Settings => "settings",
            FlowKind::Recovery => "recovery",
            FlowKind::Verification => "verification",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<FlowKind> {
        Some(match s {
            "login" => FlowKind::Login,
            "registration" => FlowKind::Registration,
            "settings" => FlowKind::Settings,
            "recovery" => FlowKind::Recovery,
            "verification" => FlowKind::Verification,
            _ => return None,
        })
    }
}

/// Browser (cookies + CSRF) or API (native apps, session tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowType {
    /// Browser flow: server-rendered pages and SPAs.
    Browser,
    /// API flow: native apps.
    Api,
}

impl FlowType {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowType::Browser => "browser",
            FlowType::Api => "api",
        }
    }

    /// Parses the wire value.
    pub fn parse(s: &str) -> Option<FlowType> {
        match s {
            "browser" => Some(FlowType::Browser),
            "api" => Some(FlowType::Api),
            _ => None,
        }
    }
}

/// A flow as stored and rendered.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Flow id.
    pub id: Uuid,
    /// Which flow.
    pub kind: FlowKind,
    /// Browser or API.
    pub flow_type: FlowType,
    /// Where the flow stands.
    pub state: FlowState,
    /// The URL that created the flow (under the public base URL).
    pub request_url: String,
    /// Validated return URL, if one was requested.
    pub return_to: Option<String>,
    /// SHA-256 of the browser's CSRF cookie token the flow is bound to (browser flows).
    pub csrf_hash: Option<String>,
    /// The method last used (`password`, `code`, …).
    pub active: Option<String>,
    /// The form.
    pub ui: Container,
    /// Strategy state that never leaves the server (code hashes, WebAuthn sessions, …).
    pub internal: Value,
    /// The identity the flow is about (settings, refresh logins).
    pub identity_id: Option<Uuid>,
    /// The session the flow belongs to (settings).
    pub session_id: Option<Uuid>,
    /// Login: re-authenticate although a session exists.
    pub refresh: bool,
    /// Login: the requested authenticator assurance level.
    pub requested_aal: crate::model::Aal,
    /// When the flow was issued.
    pub issued_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Settings flows render their identity (set when loaded; not stored).
    pub rendered_identity: Option<Value>,
    /// The submission's `transient_payload`, echoed in the answer to that submission as
    /// Kratos does for the strategies that take one (not stored).
    pub transient_payload: Option<Value>,
}

impl Flow {
    /// The flow JSON as Kratos renders it for this kind.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if matches!(self.kind, FlowKind::Login | FlowKind::Registration) {
            m.insert("organization_id".into(), Value::Null);
        }
        m.insert("type".into(), json!(self.flow_type.as_str()));
        m.insert("expires_at".into(), json!(rfc3339(self.expires_at)));
        m.insert("issued_at".into(), json!(rfc3339(self.issued_at)));
        m.insert("request_url".into(), json!(self.request_url));
        if let Some(r) = &self.return_to {
            m.insert("return_to".into(), json!(r));
        }
        if let Some(a) = &self.active {
            m.insert("active".into(), json!(a));
        }
        m.insert("ui".into(), serde_json::to_value(&self.ui).unwrap_or(Value::Null));
        if let Some(i) = &self.rendered_identity {
            m.insert("identity".into(), i.clone());
        }
        if let Some(t) = self
            .transient_payload
            .as_ref()
            .filter(|t| t.as_object().is_some_and(|o| !o.is_empty()))
        {
            m.insert("transient_payload".into(), t.clone());
        }
        if let Some(c) = self.internal.get("continue_with") {
            m.insert("continue_with".into(), c.clone());
        }
        if self.kind == FlowKind::Login {
            m.insert("created_at".into(), json!(rfc3339(self.created_at)));
            m.insert("updated_at".into(), json!(rfc3339(self.updated_at)));
            m.insert("refresh".into(), json!(self.refresh));
            m.insert("requested_aal".into(), json!(self.requested_aal));
        }
        m.insert("state".into(), json!(self.state));
        Value::Object(m)
    }

    /// Whether the flow has expired at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// A value from the internal state.
    pub fn internal_get(&self, key: &str) -> Option<&Value> {
        self.internal.get(key)
    }

    /// Sets a value in the internal state.
    pub fn internal_set(&mut self, key: &str, value: Value) {
        if !self.internal.is_object() {
            self.internal = Value::Object(Map::new());
        }
        if let Some(o) = self.internal.as_object_mut() {
            o.insert(key.to_string(), value);
        }
    }
}

/// Internal-context key a strategy sets to name the identity provider in the session's
/// authentication method entry (Kratos' `provider` on `oidc` entries).
pub const AMR_PROVIDER: &str = "amr_provider";

/// `internal` key of a verification flow: the identity whose address it verified (for the
/// after-verification hooks).
pub const VERIFIED_IDENTITY: &str = "verified_identity";

/// Where a flow stands. Kratos: `flow.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Choosing a method (login, registration, recovery, verification).
    ChooseMethod,
    /// A code or link was sent.
    SentEmail,
    /// The challenge was passed: the flow is done.
    PassedChallenge,
    /// Settings: the form is shown.
    ShowForm,
    /// Settings: a change was saved.
    Success,
}

impl FlowState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::ChooseMethod => "choose_method",
            FlowState::SentEmail => "sent_email",
            FlowState::PassedChallenge => "passed_challenge",
            FlowState::ShowForm => "show_form",
            FlowState::Success => "success",
        }
    }

    /// Parses the wire value.
    pub fn parse(s: &str) -> Option<FlowState> {
        Some(match s {
            "choose_method" => FlowState::ChooseMethod,
            "sent_email" => FlowState::SentEmail,
            "passed_challenge" => FlowState::PassedChallenge,
            "show_form" => FlowState::ShowForm,
            "success" => FlowState::Success,
            _ => return None,
        })
    }
}

impl PartialEq<&str> for FlowState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
