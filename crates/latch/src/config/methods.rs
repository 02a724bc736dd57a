//! `selfservice.methods`: the authentication methods Latch implements and their settings.

use std::time::Duration;

use serde::Deserialize;

use super::duration::de_duration;

/// `selfservice.methods`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Methods {
    /// Password credentials.
    pub password: PasswordMethod,
    /// Profile (traits) step.
    pub profile: Toggle,
    /// One-time codes by email.
    pub code: CodeMethod,
    /// Passkeys (discoverable WebAuthn).
    pub passkey: PasskeyMethod,
    /// Security keys (WebAuthn).
    pub webauthn: WebauthnMethod,
    /// Authenticator apps (TOTP), a second factor.
    pub totp: TotpMethod,
    /// Backup codes (lookup secrets), a second factor; off by default.
    pub lookup_secret: LookupSecretMethod,
    /// Magic links for recovery and verification; off by default.
    pub link: LinkMethod,
    /// Sign-in with OpenID Connect / OAuth 2.0 providers; off by default.
    pub oidc: OidcMethod,
}

/// A method that is only switched on or off (`selfservice.methods.profile`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Toggle {
    /// Whether the method is offered (default true).
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// `selfservice.methods.password`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordMethod {
    /// Whether passwords are offered (default true; disable for passwordless-only).
    pub enabled: bool,
    /// Password policy.
    pub config: PasswordConfig,
}

impl Default for PasswordMethod {
    fn default() -> Self {
        PasswordMethod {
            enabled: true,
            config: PasswordConfig::default(),
        }
    }
}

/// `selfservice.methods.password.config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordConfig {
    /// Minimum length (default 8).
    pub min_password_length: u32,
    /// Reject passwords too similar to the identifier (default true).
    pub identifier_similarity_check_enabled: bool,
    /// Check the HIBP breach corpus (default true, as in Kratos' schema).
    pub haveibeenpwned_enabled: bool,
    /// HIBP range API host (asked as `https://<host>/range/<prefix>`); a value with a
    /// scheme (`http://127.0.0.1:8080`) is used as the base URL (a Latch extension).
    pub haveibeenpwned_host: String,
    /// Breaches tolerated before a password is rejected (default 0).
    pub max_breaches: u32,
    /// Accept passwords when HIBP cannot be reached (default true).
    pub ignore_network_errors: bool,
    /// Ask the old system whether a password matches at the first login of an imported
    /// credential without a hash (`use_password_migration_hook`). Kratos:
    /// `selfservice.methods.password.config.migrate_hook`.
    pub migrate_hook: MigrateHook,
}

/// `selfservice.methods.password.config.migrate_hook`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MigrateHook {
    /// Whether the hook runs (default false); a credential that asks for it while it is off
    /// fails the login with Kratos' 500 `invalid_configuration`.
    pub enabled: bool,
    /// Where and how to ask.
    pub config: MigrateHookConfig,
}

/// `selfservice.methods.password.config.migrate_hook.config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MigrateHookConfig {
    /// The old system's endpoint.
    pub url: String,
    /// Always `POST` (Kratos' schema allows nothing else).
    pub method: Option<String>,
    /// Extra request headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// `api_key` (header or cookie) or `basic_auth`.
    pub auth: Option<HookAuth>,
    /// Kratos emits a tracing event per call; accepted, Latch logs each call instead.
    pub emit_analytics_event: Option<bool>,
    /// A Jsonnet body program (`file://`, `base64://`, `https://`) called with `ctx`; without
    /// it the body is Kratos' default `{"identifier", "password"}`.
    pub body: Option<String>,
}

/// Web-hook authentication (Kratos' `webHookAuthApiKeyProperties` /
/// `webHookAuthBasicAuthProperties`). `Debug` leaves the secrets out.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", content = "config", rename_all = "snake_case")]
pub enum HookAuth {
    /// A named key in a header or a cookie.
    ApiKey {
        /// Header or cookie name.
        name: String,
        /// The key.
        value: String,
        /// `header` or `cookie`.
        #[serde(rename = "in")]
        in_: String,
    },
    /// HTTP basic authentication.
    BasicAuth {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for HookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookAuth::ApiKey { name, in_, .. } => {
                write!(f, "ApiKey {{ name: {name:?}, in: {in_:?}, value: <redacted> }}")
            }
            HookAuth::BasicAuth { user, .. } => write!(f, "BasicAuth {{ user: {user:?}, password: <redacted> }}"),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            min_password_length: 8,
            identifier_similarity_check_enabled: true,
            haveibeenpwned_enabled: true,
            haveibeenpwned_host: "api.pwnedpasswords.com".into(),
            max_breaches: 0,
            ignore_network_errors: true,
            migrate_hook: MigrateHook::default(),
        }
    }
}

/// `selfservice.methods.code`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CodeMethod {
    /// Whether codes are used for verification/recovery (default true).
    pub enabled: bool,
    /// Login and registration by code (Latch default true; Kratos false).
    pub passwordless_enabled: bool,
    /// Codes as a second factor (cannot be combined with passwordless).
    pub mfa_enabled: bool,
    /// Code lifetime and attempts.
    pub config: CodeConfig,
}

impl Default for CodeMethod {
    fn default() -> Self {
        CodeMethod {
            enabled: true,
            passwordless_enabled: true,
            mfa_enabled: false,
            config: CodeConfig::default(),
        }
    }
}

/// `selfservice.methods.code.config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CodeConfig {
    /// Code lifetime (Latch default 10m; Kratos 1h).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// Wrong submissions per flow before it is locked (default 5).
    pub max_submissions: u32,
    /// Offer a code to identities without a code credential.
    pub missing_credential_fallback_enabled: bool,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            lifespan: Duration::from_secs(600),
            max_submissions: 5,
            missing_credential_fallback_enabled: false,
        }
    }
}

/// `selfservice.methods.passkey`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasskeyMethod {
    /// Whether passkeys are offered (Latch default true; Kratos false).
    pub enabled: bool,
    /// Relying party settings.
    pub config: PasskeyConfig,
}

impl Default for PasskeyMethod {
    fn default() -> Self {
        PasskeyMethod {
            enabled: true,
            config: PasskeyConfig::default(),
        }
    }
}

/// `selfservice.methods.passkey.config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PasskeyConfig {
    /// Relying party; unset means derived from the public base URL (a Latch decision).
    pub rp: Option<RelyingParty>,
}

/// `selfservice.methods.{passkey,webauthn}.config.rp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RelyingParty {
    /// RP id (a registrable domain).
    pub id: String,
    /// Name shown by authenticators.
    pub display_name: String,
    /// Allowed origins.
    pub origins: Vec<String>,
    /// Single allowed origin (deprecated Kratos form of `origins`; webauthn only).
    pub origin: Option<String>,
}

impl RelyingParty {
    /// All allowed origins, merging the deprecated single `origin`.
    pub fn all_origins(&self) -> Vec<String> {
        let mut all = self.origins.clone();
        if let Some(origin) = &self.origin
            && !all.contains(origin)
        {
            all.push(origin.clone());
        }
        all
    }
}

/// `selfservice.methods.webauthn`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebauthnMethod {
    /// Whether security keys are offered (default false).
    pub enabled: bool,
    /// Relying party and passwordless switch.
    pub config: WebauthnConfig,
}

/// `selfservice.methods.webauthn.config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebauthnConfig {
    /// Security keys as a first factor instead of a second one.
    pub passwordless: bool,
    /// Relying party.
    pub rp: Option<RelyingParty>,
}

/// `selfservice.methods.totp`. Kratos: `methods.totp` in `embedx/config.schema.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TotpMethod {
    /// Whether authenticator apps are offered as a second factor (default false).
    pub enabled: bool,
    /// Issuer shown by authenticator apps.
    pub config: TotpConfig,
}

/// `selfservice.methods.lookup_secret`. Kratos: `methods.lookup_secret` in
/// `embedx/config.schema.json` (it has no other keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LookupSecretMethod {
    /// Whether backup codes are offered as a second factor (default false).
    pub enabled: bool,
}

/// `selfservice.methods.totp.config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TotpConfig {
    /// Issuer in the `otpauth://` URL; unset means the host of `serve.public.base_url`
    /// (Kratos: `TOTPIssuer`).
    pub issuer: Option<String>,
}

/// `selfservice.methods.link`. Kratos: `methods.link` in `embedx/config.schema.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LinkMethod {
    /// Whether recovery and verification links can be used (default false).
    pub enabled: bool,
    /// Link lifetime.
    pub config: LinkConfig,
}

/// `selfservice.methods.link.config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LinkConfig {
    /// How long a link works (default 1h, as Kratos).
    #[serde(deserialize_with = "de_duration")]
    pub lifespan: Duration,
    /// Accepted for Kratos compatibility and ignored, as in Kratos (deprecated there: links
    /// are built from the public base URL).
    pub base_url: Option<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            lifespan: Duration::from_secs(3600),
            base_url: None,
        }
    }
}

/// A recovery or verification flow that is enabled and `use`s `link` needs the link method:
/// Kratos loads such a file but then refuses every flow of that kind ("You attempted recovery
/// using link, which is not enabled"), so Latch refuses it at startup instead.
pub(super) fn check_link_use(s: &super::SelfService) -> Result<(), String> {
    if s.methods.link.enabled {
        return Ok(());
    }
    for (name, f) in [("recovery", &s.flows.recovery), ("verification", &s.flows.verification)] {
        if f.enabled && f.use_ == super::MessageStrategy::Link {
            return Err(format!(
                "selfservice.flows.{name}.use is \"link\" but selfservice.methods.link.enabled is not true: \
                 enable the link method or use \"code\" (Kratos would refuse every {name} flow)"
            ));
        }
    }
    Ok(())
}

/// `selfservice.methods.oidc`. Kratos: `methods.oidc` in `embedx/config.schema.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OidcMethod {
    /// Whether social sign-in is offered (default false).
    pub enabled: bool,
    /// Providers and the redirect base.
    pub config: OidcConfig,
}

/// `selfservice.methods.oidc.config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OidcConfig {
    /// Base of the callback URL given to providers
    /// (`<base>/self-service/methods/oidc/callback/<id>`); unset means
    /// `serve.public.base_url`.
    pub base_redirect_uri: Option<String>,
    /// The providers people can sign in with, in the order their buttons appear.
    pub providers: Vec<OidcProvider>,
}

/// `pkce` of a provider. Kratos: `pkce.go`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pkce {
    /// Used when the provider's discovery document lists `S256` (default).
    #[default]
    Auto,
    /// Never sent.
    Never,
    /// Always sent.
    Force,
}

/// `claims_source` of a provider: where the mapper's claims come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimsSource {
    /// The ID token's claims (default).
    #[default]
    #[serde(rename = "id_token")]
    IdToken,
    /// The user-info endpoint's answer (its `sub` must equal the ID token's).
    Userinfo,
}

/// `update_identity_on_login` of a provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateOnLogin {
    /// Traits are mapped at registration only (default).
    #[default]
    Never,
    /// The mapper runs again at every login and its traits replace the stored ones.
    Automatic,
}

/// One entry of `selfservice.methods.oidc.config.providers`. Kratos:
/// `definitions.selfServiceOIDCProvider` / `oidc.Configuration`. Keys Latch does not use
/// yet (Apple, Microsoft and Ory Network ones) are accepted so Kratos files load.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OidcProvider {
    /// The provider's id in URLs, nodes and credentials (`google`, `my-idp`).
    pub id: String,
    /// The provider kind (`generic`, `google`, `github`, …).
    pub provider: String,
    /// OAuth 2.0 client id.
    pub client_id: String,
    /// OAuth 2.0 client secret (never logged).
    pub client_secret: Option<String>,
    /// OpenID issuer; `<issuer>/.well-known/openid-configuration` is discovered.
    pub issuer_url: Option<String>,
    /// Authorization endpoint, for providers without discovery.
    pub auth_url: Option<String>,
    /// Token endpoint, for providers without discovery.
    pub token_url: Option<String>,
    /// The Jsonnet claims mapper (`file://`, `https://`, `base64://`).
    pub mapper_url: String,
    /// Scopes requested (`openid` is added when missing).
    pub scope: Vec<String>,
    /// An OpenID `claims` request object, sent as the `claims` parameter.
    pub requested_claims: Option<serde_json::Value>,
    /// Where claims come from: `id_token` (default) or `userinfo`.
    pub claims_source: ClaimsSource,
    /// PKCE: `auto` (default), `never` or `force`.
    pub pkce: Pkce,
    /// The button's provider name (defaults to `id`).
    pub label: Option<String>,
    /// Re-run the mapper at login: `never` (default) or `automatic`.
    pub update_identity_on_login: UpdateOnLogin,
    /// Further accepted `aud` values of ID tokens.
    pub additional_id_token_audiences: Vec<String>,
    /// Microsoft tenant (accepted; the `microsoft` preset is not built yet).
    pub microsoft_tenant: Option<String>,
    /// Microsoft subject source (accepted, not used yet).
    pub subject_source: Option<String>,
    /// Apple team id (accepted, not used yet).
    pub apple_team_id: Option<String>,
    /// Apple key id (accepted, not used yet).
    pub apple_private_key_id: Option<String>,
    /// Apple private key (accepted, not used yet; never logged).
    pub apple_private_key: Option<String>,
    /// Upstream `acr` values that make the session `aal2` (accepted, not used yet).
    pub aal2_acr_values: Vec<String>,
    /// Upstream `amr` values that make the session `aal2` (accepted, not used yet).
    pub aal2_amr_values: Vec<String>,
    /// Ory Network only.
    pub organization_id: Option<String>,
    /// Ory Network only.
    pub fedcm_config_url: Option<String>,
    /// Ory Network only.
    pub account_linking_mode: Option<String>,
}

impl OidcProvider {
    /// The name on buttons: `label`, else `id` (Kratos: `Configuration.Label`).
    pub fn label(&self) -> &str {
        self.label.as_deref().filter(|l| !l.is_empty()).unwrap_or(&self.id)
    }
}
