//! User-facing messages (`uiText`) with Kratos' ids, English texts and
//! context keys.
//!
//! Every constructor renders its text from [`lookup`], so the catalogue and
//! the messages can never drift apart.

mod catalogue;

pub use catalogue::lookup;

use catalogue::render;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Severity of a [`UiText`], telling a UI how to style it.
/// Kratos: `text.UITextType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextType {
    /// Neutral information or a label.
    Info,
    /// A validation or flow error.
    Error,
    /// Confirmation that something worked.
    Success,
}

impl TextType {
    /// The wire value (`info`, `error`, `success`).
    pub fn as_str(self) -> &'static str {
        match self {
            TextType::Info => "info",
            TextType::Error => "error",
            TextType::Success => "success",
        }
    }
}

impl PartialEq<&str> for TextType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A message shown to the user, as found in `ui.messages`, node messages and
/// node labels. Kratos: `text.Message` (`uiText` in the API spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiText {
    /// Stable message id (see `text/id.go` in Kratos).
    pub id: u32,
    /// The message in American English.
    pub text: String,
    /// The message's severity.
    pub r#type: TextType,
    /// Values interpolated into the text, for UIs that translate; omitted
    /// from JSON when empty.
    #[serde(default, skip_serializing_if = "Map::is_empty", deserialize_with = "de_context")]
    pub context: Map<String, Value>,
}

fn de_context<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

impl UiText {
    /// Builds a message from raw parts; prefer the named constructors.
    /// Kratos: `&text.Message{…}` literals.
    pub fn new(id: u32, r#type: TextType, text: impl Into<String>) -> Self {
        Self {
            id,
            text: text.into(),
            r#type,
            context: Map::new(),
        }
    }

    /// Adds one context entry (builder style), for messages that carry data.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    fn catalogue(id: u32, r#type: TextType, args: &[(&str, &str)]) -> Self {
        Self::new(id, r#type, render(lookup(id).unwrap_or_default(), args))
    }
}

impl std::fmt::Display for UiText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

// ---------------------------------------------------------------------------
// helpers reproducing Go formatting where Kratos' texts depend on it

/// RFC 3339 with trimmed fractional seconds in UTC, as Go's `time.Time` JSON.
fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

/// `d.Minutes()` of Go's `time.Duration` for `later - earlier`, rendered `%.2f`.
fn minutes_between(earlier: OffsetDateTime, later: OffsetDateTime) -> String {
    const NANOS_PER_MINUTE: i128 = 60_000_000_000;
    let nanos = (later - earlier).whole_nanoseconds();
    let whole = nanos / NANOS_PER_MINUTE;
    let rest = nanos % NANOS_PER_MINUTE;
    let minutes = whole as f64 + rest as f64 / NANOS_PER_MINUTE as f64;
    format!("{minutes:.2}")
}

/// The inside of Go's `%q` (without the surrounding quotes).
fn go_quote_inner(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `%v` for a `float64`: shortest digits, `%e` style when the decimal
/// exponent is below -4 or at least 6 (so `1e+06`, `100000`, `0.0001`).
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{v}")
    }
}

/// Go's `cases.Title(language.English)` for simple provider ids.
fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if at_word_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            at_word_start = false;
        } else {
            out.push(c);
            at_word_start = true;
        }
    }
    out
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

macro_rules! fixed_messages {
    ($( $(#[doc = $doc:literal])+ $name:ident => $id:literal, $ty:ident; )+) => {
        $(
            $(#[doc = $doc])+
            pub fn $name() -> UiText {
                UiText::catalogue($id, TextType::$ty, &[])
            }
        )+
    };
}

fn expired(id: u32, expired_at: OffsetDateTime, now: OffsetDateTime) -> UiText {
    let minutes = minutes_between(expired_at, now);
    UiText::catalogue(id, TextType::Error, &[("minutes", &minutes)])
        .with("expired_at", rfc3339(expired_at))
        .with("expired_at_unix", expired_at.unix_timestamp())
}

// ---------------------------------------------------------------------------
// login (1010000+)

fixed_messages! {
    /// Login form title. Kratos: `text.NewInfoLogin` (1010001).
    login => 1_010_001, Info;
    /// Shown on refresh logins. Kratos: `text.NewInfoLoginReAuth` (1010003).
    login_reauth => 1_010_003, Info;
    /// Shown on second-factor logins. Kratos: `text.NewInfoLoginMFA` (1010004).
    login_mfa => 1_010_004, Info;
    /// Verify button. Kratos: `text.NewInfoLoginVerify` (1010005).
    login_verify => 1_010_005, Info;
    /// TOTP input label. Kratos: `text.NewInfoLoginTOTPLabel` (1010006).
    login_totp_label => 1_010_006, Info;
    /// Backup code input label. Kratos: `text.NewInfoLoginLookupLabel` (1010007).
    login_lookup_label => 1_010_007, Info;
    /// Security key login button. Kratos: `text.NewInfoSelfServiceLoginWebAuthn` (1010008).
    login_webauthn => 1_010_008, Info;
    /// TOTP method button. Kratos: `text.NewInfoLoginTOTP` (1010009).
    login_totp => 1_010_009, Info;
    /// Backup code method button. Kratos: `text.NewInfoLoginLookup` (1010010).
    login_lookup => 1_010_010, Info;
    /// Security key continue button. Kratos: `text.NewInfoSelfServiceContinueLoginWebAuthn` (1010011).
    login_continue_webauthn => 1_010_011, Info;
    /// Passwordless WebAuthn hint. Kratos: `text.NewInfoLoginWebAuthnPasswordless` (1010012).
    login_webauthn_passwordless => 1_010_012, Info;
    /// Continue button of the login form. Kratos: `text.NewInfoSelfServiceLoginContinue` (1010013).
    login_continue => 1_010_013, Info;
    /// Global message after a login code was sent. Kratos: `text.NewLoginCodeSent` (1010014).
    login_code_sent => 1_010_014, Info;
    /// "Send sign in code" button. Kratos: `text.NewInfoSelfServiceLoginCode` (1010015).
    login_send_code => 1_010_015, Info;
    /// "Sign in and link" button. Kratos: `text.NewInfoLoginAndLink` (1010017).
    login_and_link => 1_010_017, Info;
    /// Second-factor code request button. Kratos: `text.NewInfoSelfServiceLoginCodeMFA` (1010019).
    login_code_mfa => 1_010_019, Info;
    /// Passkey login button. Kratos: `text.NewInfoSelfServiceLoginPasskey` (1010021).
    login_passkey => 1_010_021, Info;
    /// Password login button. Kratos: `text.NewInfoLoginPassword` (1010022).
    login_password => 1_010_022, Info;
    /// DeviceAuthn login button. Kratos: `text.NewInfoSelfServiceLoginDeviceAuthn` (1010024).
    login_deviceauthn => 1_010_024, Info;
    /// Code-sent message for refresh/second-factor logins. Kratos: `text.NewLoginCodeSentForAuthenticatedUser` (1010025).
    login_code_sent_to_known_address => 1_010_025, Info;
}

/// Social sign-in button. Kratos: `text.NewInfoLoginWith` (1010002).
pub fn login_with(provider: &str, provider_id: &str) -> UiText {
    UiText::catalogue(1_010_002, TextType::Info, &[("provider", provider)])
        .with("provider", provider)
        .with("provider_id", provider_id)
}

/// Account-linking prompt when a social sign-in hits an existing identifier.
/// Kratos: `text.NewInfoLoginLinkMessage` (1010016).
pub fn login_link_existing(
    duplicate_identifier: &str,
    provider: &str,
    new_login_url: &str,
    available_credential_types: &[String],
    available_providers: &[String],
) -> UiText {
    let dup = go_quote_inner(duplicate_identifier);
    let prov = go_quote_inner(provider);
    UiText::catalogue(
        1_010_016,
        TextType::Info,
        &[("duplicate_identifier", &dup), ("provider", &prov)],
    )
    .with("duplicateIdentifier", duplicate_identifier)
    .with("provider", provider)
    .with("newLoginUrl", new_login_url)
    .with("duplicate_identifier", duplicate_identifier)
    .with("new_login_url", new_login_url)
    .with("available_credential_types", strings(available_credential_types))
    .with("available_providers", strings(available_providers))
}

/// "Confirm with {provider}" button. Kratos: `text.NewInfoLoginWithAndLink` (1010018).
pub fn login_with_and_link(provider: &str) -> UiText {
    UiText::catalogue(1_010_018, TextType::Info, &[("provider", provider)]).with("provider", provider)
}

/// Button sending a second-factor code to one address.
/// Kratos: `text.NewInfoSelfServiceLoginAAL2CodeAddress` (1010023).
pub fn login_send_code_to(channel: &str, address: &str) -> UiText {
    UiText::catalogue(1_010_023, TextType::Info, &[("address", address)])
        .with("address", address)
        .with("channel", channel)
}

// ---------------------------------------------------------------------------
// registration (1040000+)

fixed_messages! {
    /// Registration form title. Kratos: `text.NewInfoRegistration` (1040001).
    registration => 1_040_001, Info;
    /// Continue button of the registration form. Kratos: `text.NewInfoRegistrationContinue` (1040003).
    registration_continue => 1_040_003, Info;
    /// Security key sign-up button. Kratos: `text.NewInfoSelfServiceRegistrationRegisterWebAuthn` (1040004).
    registration_webauthn => 1_040_004, Info;
    /// Global message after a registration code was sent. Kratos: `text.NewRegistrationEmailWithCodeSent` (1040005).
    registration_code_sent => 1_040_005, Info;
    /// "Send sign up code" button. Kratos: `text.NewInfoSelfServiceRegistrationRegisterCode` (1040006).
    registration_send_code => 1_040_006, Info;
    /// Passkey sign-up button. Kratos: `text.NewInfoSelfServiceRegistrationRegisterPasskey` (1040007).
    registration_passkey => 1_040_007, Info;
    /// "Back" button of two-step registration. Kratos: `text.NewInfoRegistrationBack` (1040008).
    registration_back => 1_040_008, Info;
    /// Prompt on the credential-selection step. Kratos: `text.NewInfoSelfServiceChooseCredentials` (1040009).
    registration_choose_credentials => 1_040_009, Info;
}

/// Social sign-up button. Kratos: `text.NewInfoRegistrationWith` (1040002).
pub fn registration_with(provider: &str, provider_id: &str) -> UiText {
    UiText::catalogue(1_040_002, TextType::Info, &[("provider", provider)])
        .with("provider", provider)
        .with("provider_id", provider_id)
}

// ---------------------------------------------------------------------------
// settings (1050000+)

fixed_messages! {
    /// Success message after saving settings. Kratos: `text.NewInfoSelfServiceSettingsUpdateSuccess` (1050001).
    settings_saved => 1_050_001, Success;
    /// Button removing TOTP. Kratos: `text.NewInfoSelfServiceSettingsUpdateUnlinkTOTP` (1050004).
    settings_unlink_totp => 1_050_004, Info;
    /// TOTP QR code image label. Kratos: `text.NewInfoSelfServiceSettingsTOTPQRCode` (1050005).
    settings_totp_qr => 1_050_005, Info;
    /// Button revealing backup codes. Kratos: `text.NewInfoSelfServiceSettingsRevealLookup` (1050007).
    settings_reveal_lookup => 1_050_007, Info;
    /// Button regenerating backup codes. Kratos: `text.NewInfoSelfServiceSettingsRegenerateLookup` (1050008).
    settings_regenerate_lookup => 1_050_008, Info;
    /// Backup codes explanation. Kratos: `text.NewInfoSelfServiceSettingsLookupSecretsLabel` (1050010).
    settings_lookup_secrets_label => 1_050_010, Info;
    /// Button confirming backup codes. Kratos: `text.NewInfoSelfServiceSettingsLookupConfirm` (1050011).
    settings_lookup_confirm => 1_050_011, Info;
    /// "Add security key" button. Kratos: `text.NewInfoSelfServiceSettingsRegisterWebAuthn` (1050012).
    settings_add_webauthn => 1_050_012, Info;
    /// Security key name input label. Kratos: `text.NewInfoSelfServiceRegisterWebAuthnDisplayName` (1050013).
    settings_webauthn_display_name => 1_050_013, Info;
    /// Button disabling backup codes. Kratos: `text.NewInfoSelfServiceSettingsDisableLookup` (1050016).
    settings_disable_lookup => 1_050_016, Info;
    /// TOTP secret explanation. Kratos: `text.NewInfoSelfServiceSettingsTOTPSecretLabel` (1050017).
    settings_totp_secret_label => 1_050_017, Info;
    /// "Add passkey" button. Kratos: `text.NewInfoSelfServiceSettingsRegisterPasskey` (1050019).
    settings_add_passkey => 1_050_019, Info;
    /// Notice for organization-managed accounts. Kratos: `text.NewInfoSelfServiceSettingsManagedByOrganization` (1050023).
    settings_managed_by_organization => 1_050_023, Info;
}

/// "Link {provider}" button. Kratos: `text.NewInfoSelfServiceSettingsUpdateLinkOIDC` (1050002).
pub fn settings_link_oidc(provider: &str) -> UiText {
    UiText::catalogue(1_050_002, TextType::Info, &[("provider", provider)]).with("provider", provider)
}

/// "Unlink {provider}" button. Kratos: `text.NewInfoSelfServiceSettingsUpdateUnlinkOIDC` (1050003).
pub fn settings_unlink_oidc(provider: &str) -> UiText {
    UiText::catalogue(1_050_003, TextType::Info, &[("provider", provider)]).with("provider", provider)
}

/// The TOTP secret shown as text. Kratos: `text.NewInfoSelfServiceSettingsTOTPSecret` (1050006).
pub fn settings_totp_secret(secret: &str) -> UiText {
    UiText::catalogue(1_050_006, TextType::Info, &[("secret", secret)]).with("secret", secret)
}

/// One backup code shown as text. Kratos: `text.NewInfoSelfServiceSettingsLookupSecret` (1050009).
pub fn settings_lookup_secret(secret: &str) -> UiText {
    UiText::catalogue(1_050_009, TextType::Info, &[("secret", secret)]).with("secret", secret)
}

/// A used backup code when codes are shown. Kratos:
/// `text.NewInfoSelfServiceSettingsLookupSecretUsed` (1050014).
pub fn settings_lookup_secret_used(used_at: OffsetDateTime) -> UiText {
    let at = rfc3339(used_at);
    UiText::catalogue(1_050_014, TextType::Info, &[("used_at", at.as_str())])
        .with("used_at", at.clone())
        .with("used_at_unix", used_at.unix_timestamp())
}

/// The list of backup codes (each a 1050009 or 1050014 message), joined with `, `.
/// Kratos: `text.NewInfoSelfServiceSettingsLookupSecretList` (1050015).
pub fn settings_lookup_secret_list(secrets: &[UiText]) -> UiText {
    let joined = secrets.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(", ");
    let raw: Vec<Value> = secrets
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .collect();
    UiText::catalogue(1_050_015, TextType::Info, &[("secrets", joined.as_str())]).with("secrets", raw)
}

fn remove_key(id: u32, display_name: &str, added_at: OffsetDateTime) -> UiText {
    UiText::catalogue(id, TextType::Info, &[("display_name", display_name)])
        .with("display_name", display_name)
        .with("added_at", rfc3339(added_at))
        .with("added_at_unix", added_at.unix_timestamp())
}

/// Button removing a security key. Kratos: `text.NewInfoSelfServiceRemoveWebAuthn` (1050018).
pub fn settings_remove_webauthn(display_name: &str, added_at: OffsetDateTime) -> UiText {
    remove_key(1_050_018, display_name, added_at)
}

/// Button removing a passkey. Kratos: `text.NewInfoSelfServiceRemovePasskey` (1050020).
pub fn settings_remove_passkey(display_name: &str, added_at: OffsetDateTime) -> UiText {
    remove_key(1_050_020, display_name, added_at)
}

// ---------------------------------------------------------------------------
// recovery (1060000+)

fixed_messages! {
    /// Global message after a recovery link was sent. Kratos: `text.NewRecoveryEmailSent` (1060002).
    recovery_link_sent => 1_060_002, Info;
    /// Global message after a recovery code was sent. Kratos: `text.NewRecoveryEmailWithCodeSent` (1060003).
    recovery_code_sent => 1_060_003, Info;
    /// Prompt asking for the full recovery address. Kratos: `text.NewRecoveryAskForFullAddress` (1060005).
    recovery_ask_full_address => 1_060_005, Info;
    /// Prompt asking to choose a recovery address. Kratos: `text.NewRecoveryAskToChooseAddress` (1060006).
    recovery_choose_address => 1_060_006, Info;
    /// "Back" button of the recovery flow. Kratos: `text.NewRecoveryBack` (1060007).
    recovery_back => 1_060_007, Info;
}

/// Success message after recovery, with the time left in the privileged
/// session. Kratos: `text.NewRecoverySuccessful` (1060001).
pub fn recovery_successful(privileged_until: OffsetDateTime, now: OffsetDateTime) -> UiText {
    let minutes = minutes_between(now, privileged_until);
    let at = rfc3339(privileged_until);
    UiText::catalogue(1_060_001, TextType::Success, &[("minutes", &minutes)])
        .with("privilegedSessionExpiresAt", at.clone())
        .with("privileged_session_expires_at", at)
        .with("privileged_session_expires_at_unix", privileged_until.unix_timestamp())
}

/// Code-sent message naming a masked address.
/// Kratos: `text.NewRecoveryCodeRecoverySelectAddressSent` (1060004).
pub fn recovery_code_sent_to(masked_address: &str) -> UiText {
    UiText::catalogue(1_060_004, TextType::Info, &[("masked_address", masked_address)])
        .with("masked_address", masked_address)
}

// ---------------------------------------------------------------------------
// node labels (1070000+)

fixed_messages! {
    /// Password input label. Kratos: `text.NewInfoNodeInputPassword` (1070001).
    label_password => 1_070_001, Info;
    /// "Save" button. Kratos: `text.NewInfoNodeLabelSave` (1070003).
    label_save => 1_070_003, Info;
    /// Identifier input label. Kratos: `text.NewInfoNodeLabelID` (1070004).
    label_id => 1_070_004, Info;
    /// "Submit" button. Kratos: `text.NewInfoNodeLabelSubmit` (1070005).
    label_submit => 1_070_005, Info;
    /// "Verify code" button. Kratos: `text.NewInfoNodeLabelVerifyOTP` (1070006).
    label_verify_code => 1_070_006, Info;
    /// Email input label. Kratos: `text.NewInfoNodeInputEmail` (1070007).
    label_email => 1_070_007, Info;
    /// "Resend code" button. Kratos: `text.NewInfoNodeResendOTP` (1070008).
    label_resend_code => 1_070_008, Info;
    /// "Continue" button. Kratos: `text.NewInfoNodeLabelContinue` (1070009).
    label_continue => 1_070_009, Info;
    /// Recovery code input label. Kratos: `text.NewInfoNodeLabelRecoveryCode` (1070010).
    label_recovery_code => 1_070_010, Info;
    /// Verification code input label. Kratos: `text.NewInfoNodeLabelVerificationCode` (1070011).
    label_verification_code => 1_070_011, Info;
    /// Registration code input label. Kratos: `text.NewInfoNodeLabelRegistrationCode` (1070012).
    label_registration_code => 1_070_012, Info;
    /// Login code input label. Kratos: `text.NewInfoNodeLabelLoginCode` (1070013).
    label_login_code => 1_070_013, Info;
    /// "Login and link credential" button. Kratos: `text.NewInfoNodeLoginAndLinkCredential` (1070014).
    label_login_and_link => 1_070_014, Info;
    /// Captcha prompt. Kratos: `text.NewCaptchaContainerMessage` (1070015).
    captcha_required => 1_070_015, Info;
    /// Recovery address input label. Kratos: `text.NewRecoveryAskAnyRecoveryAddress` (1070016).
    label_recovery_address => 1_070_016, Info;
    /// Phone input label. Kratos: `text.NewInfoNodeInputPhoneNumber` (1070017).
    label_phone => 1_070_017, Info;
    /// Email-or-phone input label. Kratos: `text.NewInfoNodeInputEmailOrPhone` (1070018).
    label_email_or_phone => 1_070_018, Info;
}

/// Label generated from an identity schema `title`, naming the field.
/// Kratos: `text.NewInfoNodeLabelGenerated` (1070002).
pub fn label_generated(title: &str, name: &str) -> UiText {
    UiText::catalogue(1_070_002, TextType::Info, &[("title", title)])
        .with("title", title)
        .with("name", name)
}

// ---------------------------------------------------------------------------
// verification (1080000+)

fixed_messages! {
    /// Global message after a verification link was sent. Kratos: `text.NewVerificationEmailSent` (1080001).
    verification_link_sent => 1_080_001, Info;
    /// Success message after verifying an email. Kratos: `text.NewInfoSelfServiceVerificationSuccessful` (1080002).
    verification_successful => 1_080_002, Success;
    /// Global message after a verification code was emailed. Kratos: `text.NewVerificationEmailWithCodeSent` (1080003).
    verification_code_sent => 1_080_003, Info;
    /// Global message after a verification code was texted. Kratos: `text.NewVerificationPhoneWithCodeSent` (1080004).
    verification_sms_sent => 1_080_004, Info;
    /// Success message after verifying a phone. Kratos: `text.NewInfoSelfServiceVerificationPhoneSuccessful` (1080005).
    verification_phone_successful => 1_080_005, Success;
}

// ---------------------------------------------------------------------------
// validation errors (4000000+)

fixed_messages! {
    /// Wrong identifier or secret. Kratos: `text.NewErrorValidationInvalidCredentials` (4000006).
    invalid_credentials => 4_000_006, Error;
    /// Identifier already taken. Kratos: `text.NewErrorValidationDuplicateCredentials` (4000007).
    duplicate_credentials => 4_000_007, Error;
    /// Wrong TOTP code. Kratos: `text.NewErrorValidationTOTPVerifierWrong` (4000008).
    totp_code_invalid => 4_000_008, Error;
    /// Schema marks no trait as identifier. Kratos: `text.NewErrorValidationIdentifierMissing` (4000009).
    identifier_missing => 4_000_009, Error;
    /// Login refused until the address is verified. Kratos: `text.NewErrorValidationAddressNotVerified` (4000010).
    address_not_verified => 4_000_010, Error;
    /// No TOTP set up. Kratos: `text.NewErrorValidationNoTOTPDevice` (4000011).
    no_totp_device => 4_000_011, Error;
    /// Backup code reused. Kratos: `text.NewErrorValidationLookupAlreadyUsed` (4000012).
    lookup_already_used => 4_000_012, Error;
    /// No security key set up. Kratos: `text.NewErrorValidationNoWebAuthnDevice` (4000013).
    no_webauthn_device => 4_000_013, Error;
    /// No backup codes set up. Kratos: `text.NewErrorValidationNoLookup` (4000014).
    no_lookup => 4_000_014, Error;
    /// Unknown account or no security key. Kratos: `text.NewErrorValidationSuchNoWebAuthnUser` (4000015).
    no_webauthn_user => 4_000_015, Error;
    /// Invalid backup code. Kratos: `text.NewErrorValidationLookupInvalid` (4000016).
    lookup_invalid => 4_000_016, Error;
    /// Identifier taken while linking a social profile. Kratos: `text.NewErrorValidationDuplicateCredentialsOnOIDCLink` (4000027).
    duplicate_credentials_on_oidc_link => 4_000_027, Error;
    /// Schema `const` failed without a value. Kratos: `text.NewErrorValidationConstGeneric` (4000030).
    const_failed => 4_000_030, Error;
    /// Password too close to the identifier. Kratos: `text.NewErrorValidationPasswordIdentifierTooSimilar` (4000031).
    password_too_similar => 4_000_031, Error;
    /// Account unknown or without a code credential. Kratos: `text.NewErrorValidationNoCodeUser` (4000035).
    no_code_user => 4_000_035, Error;
    /// Traits changed between the steps of a flow. Kratos: `text.NewErrorValidationTraitsMismatch` (4000036).
    traits_mismatch => 4_000_036, Error;
    /// Account unknown or without login methods. Kratos: `text.NewErrorValidationAccountNotFound` (4000037).
    account_not_found => 4_000_037, Error;
    /// Captcha failed. Kratos: `text.NewErrorCaptchaFailed` (4000038).
    captcha_failed => 4_000_038, Error;
    /// New password equals old one. Kratos: `text.NewErrorValidationPasswordNewSameAsOld` (4000039).
    password_same_as_old => 4_000_039, Error;
    /// No DeviceAuthn key set up. Kratos: `text.NewErrorValidationNoDeviceAuthnDevice` (4000042).
    no_deviceauthn_device => 4_000_042, Error;
    /// WebAuthn/passkey assertion failed. Kratos: `text.NewErrorValidationWebAuthnVerifierWrong` (4000043).
    webauthn_invalid => 4_000_043, Error;
    /// DeviceAuthn signature failed. Kratos: `text.NewErrorValidationDeviceAuthnVerifierWrong` (4000044).
    deviceauthn_invalid => 4_000_044, Error;
}

/// Any 400 error surfaced as a flow message, its reason being the text.
/// Kratos: `text.NewValidationErrorGeneric` (4000001).
pub fn validation_generic(reason: &str) -> UiText {
    UiText::catalogue(4_000_001, TextType::Error, &[("reason", reason)]).with("reason", reason)
}

/// A required property is missing. Kratos: `text.NewValidationErrorRequired` (4000002).
pub fn required(property: &str) -> UiText {
    UiText::catalogue(4_000_002, TextType::Error, &[("property", property)]).with("property", property)
}

/// String shorter than `minLength`. Kratos: `text.NewErrorValidationMinLength` (4000003).
pub fn min_length(min_length: i64, actual_length: i64) -> UiText {
    let (a, b) = (min_length.to_string(), actual_length.to_string());
    UiText::catalogue(4_000_003, TextType::Error, &[("min_length", &a), ("actual_length", &b)])
        .with("actual_length", actual_length)
        .with("min_length", min_length)
}

/// String does not match `pattern`. Kratos: `text.NewErrorValidationInvalidFormat` (4000004).
pub fn invalid_format(pattern: &str) -> UiText {
    let quoted = go_quote_inner(pattern);
    UiText::catalogue(4_000_004, TextType::Error, &[("pattern", &quoted)]).with("pattern", pattern)
}

/// Password rejected by policy, with a reason clause.
/// Kratos: `text.NewErrorValidationPasswordPolicyViolationGeneric` (4000005).
pub fn password_policy_violation(reason: &str) -> UiText {
    UiText::catalogue(4_000_005, TextType::Error, &[("reason", reason)]).with("reason", reason)
}

/// String longer than `maxLength`. Kratos: `text.NewErrorValidationMaxLength` (4000017).
pub fn max_length(max_length: i64, actual_length: i64) -> UiText {
    let (a, b) = (max_length.to_string(), actual_length.to_string());
    UiText::catalogue(4_000_017, TextType::Error, &[("max_length", &a), ("actual_length", &b)])
        .with("actual_length", actual_length)
        .with("max_length", max_length)
}

fn bound(id: u32, key: &str, limit: f64, actual: f64) -> UiText {
    let (l, a) = (go_float(limit), go_float(actual));
    UiText::catalogue(id, TextType::Error, &[(key, &l), ("actual", &a)])
        .with(key, limit)
        .with("actual", actual)
}

/// Number below `minimum`. Kratos: `text.NewErrorValidationMinimum` (4000018).
pub fn minimum(minimum: f64, actual: f64) -> UiText {
    bound(4_000_018, "minimum", minimum, actual)
}

/// Number not above `exclusiveMinimum`. Kratos: `text.NewErrorValidationExclusiveMinimum` (4000019).
pub fn exclusive_minimum(minimum: f64, actual: f64) -> UiText {
    bound(4_000_019, "minimum", minimum, actual)
}

/// Number above `maximum`. Kratos: `text.NewErrorValidationMaximum` (4000020).
pub fn maximum(maximum: f64, actual: f64) -> UiText {
    bound(4_000_020, "maximum", maximum, actual)
}

/// Number not below `exclusiveMaximum`. Kratos: `text.NewErrorValidationExclusiveMaximum` (4000021).
pub fn exclusive_maximum(maximum: f64, actual: f64) -> UiText {
    bound(4_000_021, "maximum", maximum, actual)
}

/// Number not a multiple of `multipleOf`. Kratos: `text.NewErrorValidationMultipleOf` (4000022).
pub fn multiple_of(base: f64, actual: f64) -> UiText {
    bound(4_000_022, "base", base, actual)
}

fn items(id: u32, key: &str, limit: i64, actual: i64) -> UiText {
    let (l, a) = (limit.to_string(), actual.to_string());
    UiText::catalogue(id, TextType::Error, &[(key, &l), ("actual_items", &a)])
        .with(key, limit)
        .with("actual_items", actual)
}

/// Array longer than `maxItems`. Kratos: `text.NewErrorValidationMaxItems` (4000023).
pub fn max_items(max_items: i64, actual_items: i64) -> UiText {
    items(4_000_023, "max_items", max_items, actual_items)
}

/// Array shorter than `minItems`. Kratos: `text.NewErrorValidationMinItems` (4000024).
pub fn min_items(min_items: i64, actual_items: i64) -> UiText {
    items(4_000_024, "min_items", min_items, actual_items)
}

/// Duplicate array items. Kratos: `text.NewErrorValidationUniqueItems` (4000025).
pub fn unique_items(index_a: i64, index_b: i64) -> UiText {
    let (a, b) = (index_a.to_string(), index_b.to_string());
    UiText::catalogue(4_000_025, TextType::Error, &[("index_a", &a), ("index_b", &b)])
        .with("index_a", index_a)
        .with("index_b", index_b)
}

/// Value of the wrong JSON type. Kratos: `text.NewErrorValidationWrongType` (4000026).
pub fn wrong_type(allowed_types: &[String], actual_type: &str) -> UiText {
    let allowed = allowed_types.join(" or ");
    UiText::catalogue(
        4_000_026,
        TextType::Error,
        &[("allowed_types", &allowed), ("actual_type", actual_type)],
    )
    .with("allowed_types", strings(allowed_types))
    .with("actual_type", actual_type)
}

/// Identifier taken, with hints on how the existing account can sign in.
/// Kratos: `text.NewErrorValidationDuplicateCredentialsWithHints` (4000028).
pub fn duplicate_credentials_with_hints(
    available_credential_types: &[String],
    available_oidc_providers: &[String],
    credential_identifier_hint: &str,
) -> UiText {
    let identifier = if credential_identifier_hint.is_empty() {
        "an email, phone, or username"
    } else {
        credential_identifier_hint
    };
    let mut text = render(
        lookup(4_000_028).unwrap_or_default(),
        &[("credential_identifier_hint", identifier)],
    );

    if !available_credential_types.is_empty() {
        let mut readable: Vec<String> = Vec::new();
        for cred in available_credential_types {
            let hint = match cred.as_str() {
                "password" => "your password",
                "oidc" | "saml" => "social sign in",
                "webauthn" => "your passkey or a security key",
                "passkey" => "your passkey",
                _ => continue,
            };
            readable.push(hint.to_owned());
        }
        if readable.is_empty() {
            readable.extend(available_credential_types.iter().cloned());
        }
        let mut unique: Vec<String> = Vec::with_capacity(readable.len());
        for r in readable {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        if unique.len() > 1
            && let Some(last) = unique.last_mut()
        {
            *last = format!("or {last}");
        }
        if !unique.is_empty() {
            text.push_str(&format!(" You can sign in using {}.", unique.join(", ")));
        }
    }
    if !available_oidc_providers.is_empty() {
        let providers: Vec<String> = available_oidc_providers
            .iter()
            .map(|p| {
                if p.contains(['{', '}']) {
                    p.clone()
                } else {
                    title_case(p)
                }
            })
            .collect();
        text.push_str(&format!(
            " You can sign in using one of the following social sign in providers: {}.",
            providers.join(", ")
        ));
    }

    UiText::new(4_000_028, TextType::Error, text)
        .with("available_credential_types", strings(available_credential_types))
        .with("available_oidc_providers", strings(available_oidc_providers))
        .with("credential_identifier_hint", credential_identifier_hint)
}

/// Value differs from the schema `const`. Kratos: `text.NewErrorValidationConst` (4000029).
pub fn const_mismatch(expected: &str) -> UiText {
    UiText::catalogue(4_000_029, TextType::Error, &[("expected", expected)]).with("expected", expected)
}

/// Password shorter than the configured minimum. Kratos: `text.NewErrorValidationPasswordMinLength` (4000032).
pub fn password_min_length(min_length: i64, actual_length: i64) -> UiText {
    let (a, b) = (min_length.to_string(), actual_length.to_string());
    UiText::catalogue(4_000_032, TextType::Error, &[("min_length", &a), ("actual_length", &b)])
        .with("actual_length", actual_length)
        .with("min_length", min_length)
}

/// Password longer than the configured maximum. Kratos: `text.NewErrorValidationPasswordMaxLength` (4000033).
pub fn password_max_length(max_length: i64, actual_length: i64) -> UiText {
    let (a, b) = (max_length.to_string(), actual_length.to_string());
    UiText::catalogue(4_000_033, TextType::Error, &[("max_length", &a), ("actual_length", &b)])
        .with("actual_length", actual_length)
        .with("max_length", max_length)
}

/// Password found in breach corpora. Kratos: `text.NewErrorValidationPasswordTooManyBreaches` (4000034).
pub fn password_breached(breaches: i64) -> UiText {
    UiText::catalogue(4_000_034, TextType::Error, &[]).with("breaches", breaches)
}

/// Malformed email address. Kratos: `text.NewErrorValidationEmail` (4000040).
pub fn invalid_email(value: &str) -> UiText {
    UiText::catalogue(4_000_040, TextType::Error, &[]).with("value", value)
}

/// Malformed phone number. Kratos: `text.NewErrorValidationPhone` (4000041).
pub fn invalid_phone(value: &str) -> UiText {
    UiText::catalogue(4_000_041, TextType::Error, &[]).with("value", value)
}

// ---------------------------------------------------------------------------
// flow errors (4010000+, 4040000+, 4050000+, 4060000+, 4070000+)

/// Login submitted after the flow expired; `now` is the submission time.
/// Kratos: `text.NewErrorValidationLoginFlowExpired` (4010001).
pub fn login_flow_expired(expired_at: OffsetDateTime, now: OffsetDateTime) -> UiText {
    expired(4_010_001, expired_at, now)
}

/// Registration submitted after the flow expired.
/// Kratos: `text.NewErrorValidationRegistrationFlowExpired` (4040001).
pub fn registration_flow_expired(expired_at: OffsetDateTime, now: OffsetDateTime) -> UiText {
    expired(4_040_001, expired_at, now)
}

/// Settings submitted after the flow expired.
/// Kratos: `text.NewErrorValidationSettingsFlowExpired` (4050001).
pub fn settings_flow_expired(expired_at: OffsetDateTime, now: OffsetDateTime) -> UiText {
    expired(4_050_001, expired_at, now)
}

/// Recovery submitted after the flow expired.
/// Kratos: `text.NewErrorValidationRecoveryFlowExpired` (4060005).
pub fn recovery_flow_expired(expired_at: OffsetDateTime, now: OffsetDateTime) -> UiText {
    expired(4_060_005, expired_at, now)
}

/// Verification submitted after the flow expired.
/// Kratos: `text.NewErrorValidationVerificationFlowExpired` (4070005).
pub fn verification_flow_expired(expired_at: OffsetDateTime, now: OffsetDateTime) -> UiText {
    expired(4_070_005, expired_at, now)
}

fixed_messages! {
    /// No login strategy handled the submission. Kratos: `text.NewErrorValidationLoginNoStrategyFound` (4010002).
    login_no_strategy => 4_010_002, Error;
    /// No registration strategy handled the submission. Kratos: `text.NewErrorValidationRegistrationNoStrategyFound` (4010003).
    registration_no_strategy => 4_010_003, Error;
    /// No settings strategy handled the submission. Kratos: `text.NewErrorValidationSettingsNoStrategyFound` (4010004).
    settings_no_strategy => 4_010_004, Error;
    /// No recovery strategy handled the submission. Kratos: `text.NewErrorValidationRecoveryNoStrategyFound` (4010005).
    recovery_no_strategy => 4_010_005, Error;
    /// No verification strategy handled the submission. Kratos: `text.NewErrorValidationVerificationNoStrategyFound` (4010006).
    verification_no_strategy => 4_010_006, Error;
    /// Login flow already completed. Kratos: `text.NewErrorValidationLoginRetrySuccessful` (4010007).
    login_retry_success => 4_010_007, Error;
    /// Wrong or used login code. Kratos: `text.NewErrorValidationLoginCodeInvalidOrAlreadyUsed` (4010008).
    login_code_invalid => 4_010_008, Error;
    /// Linked credentials mismatch. Kratos: `text.NewErrorValidationLoginLinkedCredentialsDoNotMatch` (4010009).
    login_linked_credentials_mismatch => 4_010_009, Error;
    /// Second-factor address not on the account. Kratos: `text.NewErrorValidationAddressUnknown` (4010010).
    login_address_unknown => 4_010_010, Error;
    /// Identity is disabled. Kratos: `text.NewErrorValidationIdentityDisabled` (4010011).
    identity_disabled => 4_010_011, Error;
    /// Registration flow already completed. Kratos: `text.NewErrorValidationRegistrationRetrySuccessful` (4040002).
    registration_retry_success => 4_040_002, Error;
    /// Wrong or used registration code. Kratos: `text.NewErrorValidationRegistrationCodeInvalidOrAlreadyUsed` (4040003).
    registration_code_invalid => 4_040_003, Error;
    /// More than one address changed at once. Kratos: `text.NewErrorValidationSettingsTooManyAddressChanges` (4050002).
    settings_too_many_address_changes => 4_050_002, Error;
    /// Recovery flow already completed. Kratos: `text.NewErrorValidationRecoveryRetrySuccess` (4060001).
    recovery_retry_success => 4_060_001, Error;
    /// Recovery flow in failure state. Kratos: `text.NewErrorValidationRecoveryStateFailure` (4060002).
    recovery_state_failure => 4_060_002, Error;
    /// Wrong or used recovery link token. Kratos: `text.NewErrorValidationRecoveryTokenInvalidOrAlreadyUsed` (4060004).
    recovery_token_invalid => 4_060_004, Error;
    /// Wrong or used recovery code. Kratos: `text.NewErrorValidationRecoveryCodeInvalidOrAlreadyUsed` (4060006).
    recovery_code_invalid => 4_060_006, Error;
    /// Wrong or used verification link token. Kratos: `text.NewErrorValidationVerificationTokenInvalidOrAlreadyUsed` (4070001).
    verification_token_invalid => 4_070_001, Error;
    /// Verification flow already completed. Kratos: `text.NewErrorValidationVerificationRetrySuccess` (4070002).
    verification_retry_success => 4_070_002, Error;
    /// Verification flow in failure state. Kratos: `text.NewErrorValidationVerificationStateFailure` (4070003).
    verification_state_failure => 4_070_003, Error;
    /// Wrong or used verification code. Kratos: `text.NewErrorValidationVerificationCodeInvalidOrAlreadyUsed` (4070006).
    verification_code_invalid => 4_070_006, Error;
}

// ---------------------------------------------------------------------------
// system errors (5000000+)

/// Unexpected error surfaced as a flow message. Kratos: `text.NewErrorSystemGeneric` (5000001).
pub fn system_generic(reason: &str) -> UiText {
    UiText::catalogue(5_000_001, TextType::Error, &[("reason", reason)]).with("reason", reason)
}

fixed_messages! {
    /// No strategy enabled for the flow. Kratos: `text.NewErrorSystemNoAuthenticationMethodsAvailable` (5000002).
    no_authentication_methods => 5_000_002, Error;
    /// Organization requires SSO but has none. Kratos: `text.NewErrorSystemOrganizationNoSSOProvidersAvailable` (5000003).
    organization_no_sso_providers => 5_000_003, Error;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn pinned_ids_and_texts() {
        let cases: Vec<(UiText, u32, &str)> = vec![
            (login(), 1_010_001, "Sign in"),
            (login_send_code(), 1_010_015, "Send sign in code"),
            (login_passkey(), 1_010_021, "Sign in with passkey"),
            (
                registration_code_sent(),
                1_040_005,
                "A code has been sent to the address(es) you provided. If you have not received a message, check the spelling of the address and retry the registration.",
            ),
            (registration_back(), 1_040_008, "Back"),
            (settings_add_passkey(), 1_050_019, "Add passkey"),
            (label_password(), 1_070_001, "Password"),
            (label_id(), 1_070_004, "ID"),
            (label_email(), 1_070_007, "Email"),
            (label_continue(), 1_070_009, "Continue"),
            (label_registration_code(), 1_070_012, "Registration code"),
            (label_login_code(), 1_070_013, "Login code"),
            (
                verification_successful(),
                1_080_002,
                "You successfully verified your email address.",
            ),
            (
                webauthn_invalid(),
                4_000_043,
                "The provided web authn login is invalid, please try again.",
            ),
            (
                password_too_similar(),
                4_000_031,
                "The password can not be used because it is too similar to the identifier.",
            ),
            (
                identity_disabled(),
                4_010_011,
                "This account has been disabled. Please contact support for assistance.",
            ),
            (
                no_authentication_methods(),
                5_000_002,
                "No authentication methods are available. Please contact the system administrator.",
            ),
        ];
        for (msg, id, text) in cases {
            assert_eq!(msg.id, id);
            assert_eq!(msg.text, text);
            assert_eq!(lookup(id), Some(text));
        }
        assert_eq!(settings_saved().r#type, TextType::Success);
        assert_eq!(login().r#type, TextType::Info);
        assert_eq!(login_code_invalid().r#type, TextType::Error);
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(label_id()).unwrap();
        assert_eq!(v, json!({"id":1070004,"text":"ID","type":"info"}));
        let v = serde_json::to_value(label_generated("E-Mail", "traits.email")).unwrap();
        assert_eq!(
            v,
            json!({"id":1070002,"text":"E-Mail","type":"info",
                   "context":{"name":"traits.email","title":"E-Mail"}})
        );
        let back: UiText = serde_json::from_value(v).unwrap();
        assert_eq!(back, label_generated("E-Mail", "traits.email"));
        let nulled: UiText = serde_json::from_str(r#"{"id":1,"text":"x","type":"error","context":null}"#).unwrap();
        assert!(nulled.context.is_empty());
    }

    #[test]
    fn with_context() {
        let m = required("email");
        assert_eq!(m.text, "Property email is missing.");
        assert_eq!(m.context, json!({"property":"email"}).as_object().unwrap().clone());
        let g = validation_generic("code already used");
        assert_eq!((g.id, g.text.as_str()), (4_000_001, "code already used"));
        assert_eq!(g.context["reason"], "code already used");
        let p = password_policy_violation("it is too short");
        assert_eq!(p.text, "The password can not be used because it is too short.");
        let a = login_send_code_to("email", "j***@example.com");
        assert_eq!(a.text, "Send code to j***@example.com");
        assert_eq!(a.context["channel"], "email");
        let r = settings_remove_passkey("iCloud", at("2025-05-01T12:00:00Z"));
        assert_eq!(r.text, "Remove passkey \"iCloud\"");
        assert_eq!(r.context["added_at"], "2025-05-01T12:00:00Z");
        assert_eq!(r.context["added_at_unix"], 1_746_100_800);
        assert_eq!(invalid_format("^a\"b$").text, r#"does not match pattern "^a\"b$""#);
        assert_eq!(min_length(3, 1).text, "length must be >= 3, but got 1");
        assert_eq!(minimum(1e6, 0.5).text, "must be >= 1e+06 but found 0.5");
        assert_eq!(
            wrong_type(&["string".into(), "null".into()], "number").text,
            "expected string or null, but got number"
        );
    }

    #[test]
    fn expired_message() {
        let exp = at("2025-05-01T13:00:00.5Z");
        let now = at("2025-05-01T13:03:15.5Z");
        let m = login_flow_expired(exp, now);
        assert_eq!(m.id, 4_010_001);
        assert_eq!(m.text, "The login flow expired 3.25 minutes ago, please try again.");
        assert_eq!(m.context["expired_at"], "2025-05-01T13:00:00.5Z");
        assert_eq!(m.context["expired_at_unix"], 1_746_104_400);
        assert_eq!(registration_flow_expired(exp, now).id, 4_040_001);
        assert_eq!(settings_flow_expired(exp, now).id, 4_050_001);
        assert_eq!(recovery_flow_expired(exp, now).id, 4_060_005);
        assert_eq!(verification_flow_expired(exp, now).id, 4_070_005);
    }

    #[test]
    fn duplicate_hints() {
        let m = duplicate_credentials_with_hints(
            &["password".into(), "webauthn".into(), "oidc".into()],
            &["github".into(), "{custom}".into()],
            "jane@example.com",
        );
        assert_eq!(
            m.text,
            "You tried signing in with jane@example.com which is already in use by another account. You can sign in using your password, your passkey or a security key, or social sign in. You can sign in using one of the following social sign in providers: Github, {custom}."
        );
        let m = duplicate_credentials_with_hints(&["passkey".into()], &[], "");
        assert_eq!(
            m.text,
            "You tried signing in with an email, phone, or username which is already in use by another account. You can sign in using your passkey."
        );
        assert_eq!(m.context["credential_identifier_hint"], "");
    }

    #[test]
    fn link_message_quotes() {
        let m = login_link_existing("a\"b@x.io", "google", "https://x/login", &[], &[]);
        assert!(m.text.starts_with("You tried to sign in with \"a\\\"b@x.io\", but"));
        assert!(m.text.ends_with("at \"google\" as another way to sign in."));
    }

    #[test]
    fn every_constructor_text_is_in_catalogue() {
        for id in [1_010_001u32, 1_060_003, 1_070_018, 4_000_046, 4_070_006, 5_000_003] {
            assert!(lookup(id).is_some(), "{id}");
        }
    }
}
