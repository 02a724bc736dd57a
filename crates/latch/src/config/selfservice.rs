//! `selfservice`: flows, their post-flow pipelines and the authentication methods.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::duration::{de_duration, de_opt_url};
use super::methods::Methods;
use super::sections::RequiredAal;

const HOUR: Duration = Duration::from_secs(3600);

/// `selfservice`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SelfService {
    /// Where browsers go after a flow when nothing more specific is configured.
    #[serde(deserialize_with = "de_opt_url")]
    pub default_browser_return_url: Option<Url>,
    /// `return_to` allow-list (URLs or prefixes, as in Kratos).
    pub allowed_return_urls: Vec<String>,
    /// Per-flow settings.
    pub flows: Flows,
    /// Per-method settings.
    pub methods: Methods,
}

/// `selfservice.flows`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Flows {
    /// Login flow.
    pub login: LoginFlow,
    /// Registration flow.
    pub registration: RegistrationFlow,
    /// Settings flow.
    pub settings: SettingsFlow,
    /// Verification flow.
    pub verification: MessageFlow,
    /// Recovery flow.
    pub recovery: MessageFlow,
    /// Error page.
    pub error: ErrorFlow,
    /// Logout.
    pub logout: LogoutFlow,
}

/// `selfservice.flows.login.style`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginStyle {
    /// All methods on one screen (Kratos' default).
    #[default]
    Unified,
    /// Ask for the identifier first, then the method.
    IdentifierFirst,
}

/// `selfservice.flows.login`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginFlow {
    /// UI location; unset means Latch's built-in UI ([`super::Config::flow_ui_url`]).
    #[serde(deserialize_with = "de_opt_url")]
    pub ui_url: Option<Url>,
    /// Flow lifetime (default 1h).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// Screen layout.
    pub style: LoginStyle,
    /// Pre-flow hooks.
    pub before: Before,
    /// Post-login pipeline.
    pub after: After,
}

impl Default for LoginFlow {
    fn default() -> Self {
        LoginFlow {
            ui_url: None,
            lifespan: HOUR,
            style: LoginStyle::Unified,
            before: Before::default(),
            after: After::default(),
        }
    }
}

/// `selfservice.flows.registration.style`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStyle {
    /// Traits and credentials on one screen.
    Unified,
    /// Traits first, then the credential (Kratos' default).
    #[default]
    ProfileFirst,
}

/// `selfservice.flows.registration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RegistrationFlow {
    /// Whether self-service sign-up is open (default true).
    pub enabled: bool,
    /// UI location; unset means Latch's built-in UI.
    #[serde(deserialize_with = "de_opt_url")]
    pub ui_url: Option<Url>,
    /// Flow lifetime (default 1h).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// Two-step or one-step.
    pub style: RegistrationStyle,
    /// Deprecated Kratos switch: true means `style: unified`.
    pub enable_legacy_one_step: bool,
    /// Tell users which method an existing account uses (error 4000028 context).
    pub login_hints: bool,
    /// Pre-flow hooks.
    pub before: Before,
    /// Post-registration pipeline (`session` hook logs the user in).
    pub after: After,
}

impl Default for RegistrationFlow {
    fn default() -> Self {
        RegistrationFlow {
            enabled: true,
            ui_url: None,
            lifespan: HOUR,
            style: RegistrationStyle::ProfileFirst,
            enable_legacy_one_step: false,
            login_hints: false,
            before: Before::default(),
            after: After::default(),
        }
    }
}

/// `selfservice.flows.settings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SettingsFlow {
    /// UI location; unset means Latch's built-in UI.
    #[serde(deserialize_with = "de_opt_url")]
    pub ui_url: Option<Url>,
    /// Flow lifetime (default 1h).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// How recent a login must be for sensitive changes (Latch default 15m; Kratos 1h).
    #[serde(deserialize_with = "de_duration")]
    pub privileged_session_max_age: Duration,
    /// AAL demanded to use settings.
    pub required_aal: RequiredAal,
    /// Pre-flow hooks.
    pub before: Before,
    /// Post-settings pipeline.
    pub after: After,
}

impl Default for SettingsFlow {
    fn default() -> Self {
        SettingsFlow {
            ui_url: None,
            lifespan: HOUR,
            privileged_session_max_age: Duration::from_secs(15 * 60),
            required_aal: RequiredAal::HighestAvailable,
            before: Before::default(),
            after: After::default(),
        }
    }
}

/// `selfservice.flows.{verification,recovery}.use`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStrategy {
    /// Magic link.
    Link,
    /// One-time code (default).
    #[default]
    Code,
}

/// `selfservice.flows.verification` and `selfservice.flows.recovery` (same shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MessageFlow {
    /// Whether the flow is offered (default false).
    pub enabled: bool,
    /// UI location; unset means Latch's built-in UI.
    #[serde(deserialize_with = "de_opt_url")]
    pub ui_url: Option<Url>,
    /// Flow lifetime (default 1h).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// Link or code.
    #[serde(rename = "use")]
    pub use_: MessageStrategy,
    /// Send a "no account" message to unknown addresses.
    pub notify_unknown_recipients: bool,
    /// Pre-flow hooks.
    pub before: Before,
    /// Post-flow pipeline.
    pub after: After,
}

impl Default for MessageFlow {
    fn default() -> Self {
        MessageFlow {
            enabled: false,
            ui_url: None,
            lifespan: HOUR,
            use_: MessageStrategy::Code,
            notify_unknown_recipients: false,
            before: Before::default(),
            after: After::default(),
        }
    }
}

/// `selfservice.flows.error`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorFlow {
    /// Error UI location; unset means Latch's built-in UI.
    #[serde(deserialize_with = "de_opt_url")]
    pub ui_url: Option<Url>,
}

/// `selfservice.flows.logout`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogoutFlow {
    /// Send `Clear-Site-Data` on logout.
    pub clear_browser_data: bool,
    /// Where to go after logout.
    pub after: LogoutAfter,
}

/// `selfservice.flows.logout.after`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogoutAfter {
    /// Return URL after logout; unset falls back to `selfservice.default_browser_return_url`.
    #[serde(deserialize_with = "de_opt_url")]
    pub default_browser_return_url: Option<Url>,
}

/// One configured hook (`{hook: "session"}`, `{hook: "web_hook", config: {...}}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hook {
    /// Hook name: `session`, `web_hook`, `revoke_active_sessions`, `show_verification_ui`, …
    pub hook: String,
    /// Hook-specific settings, kept raw.
    #[serde(default)]
    pub config: Value,
}

/// `selfservice.flows.<flow>.before`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Before {
    /// Hooks run when a flow is created.
    pub hooks: Vec<Hook>,
}

/// `selfservice.flows.<flow>.after.<method>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AfterMethod {
    /// Return URL after this method completes the flow.
    #[serde(deserialize_with = "de_opt_url")]
    pub default_browser_return_url: Option<Url>,
    /// Hooks for this method; when non-empty they replace the flow-wide ones.
    pub hooks: Vec<Hook>,
}

/// `selfservice.flows.<flow>.after`: flow-wide settings plus per-method overrides keyed by
/// method name (`password`, `code`, `passkey`, `oidc`, `profile`, …).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct After {
    /// Return URL after the flow when the method sets none.
    #[serde(deserialize_with = "de_opt_url")]
    pub default_browser_return_url: Option<Url>,
    /// Flow-wide hooks.
    pub hooks: Vec<Hook>,
    /// Per-method overrides.
    #[serde(flatten)]
    pub per_method: BTreeMap<String, AfterMethod>,
}

impl After {
    /// Hooks to run after `method`: the method's own when it lists any, else the flow-wide
    /// ones (Kratos does not merge the two lists).
    pub fn hooks_for(&self, method: &str) -> &[Hook] {
        match self.per_method.get(method) {
            Some(m) if !m.hooks.is_empty() => &m.hooks,
            _ => &self.hooks,
        }
    }

    /// Kratos' precedence (`driver/registry_default_*.go` `Post*Hooks`): the method's list
    /// when at least one of its hooks is one that runs at this point of the flow (`runs`),
    /// else the flow-wide list. The two lists are never merged, so a method list silently
    /// replaces the generic one, and a method list holding only hooks that do not run here
    /// (an unknown name, `b2b_sso`) falls back to the generic one.
    pub fn hooks_running(&self, method: &str, runs: &[&str]) -> &[Hook] {
        match self.per_method.get(method) {
            Some(m) if m.hooks.iter().any(|h| runs.contains(&h.hook.as_str())) => &m.hooks,
            _ => &self.hooks,
        }
    }

    /// Return URL after `method`: the method's, else the flow's; `None` means the caller falls
    /// back to `selfservice.default_browser_return_url`.
    pub fn return_url_for(&self, method: &str) -> Option<&Url> {
        self.per_method
            .get(method)
            .and_then(|m| m.default_browser_return_url.as_ref())
            .or(self.default_browser_return_url.as_ref())
    }
}
