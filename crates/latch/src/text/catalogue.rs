//! English message templates keyed by Kratos message id.
//!
//! Placeholders are written `{name}` and name the message's `context` key that
//! carries the value (for example `{property}` for 4000002). The flow-expiry
//! and recovery-success messages use `{minutes}`, a number derived from the
//! timestamps in their context. A few messages are assembled from several
//! sentences (4000028); their template is the always-present first sentence.

/// Returns the English template of the message with the given id, or `None`
/// for an id Kratos does not define.
///
/// Exists so that a UI which translates can fall back to (or key its own
/// catalogue on) the canonical English text. Kratos: the texts in
/// `text/message_*.go`.
pub fn lookup(id: u32) -> Option<&'static str> {
    let text = match id {
        // ---- login (info) ----
        1_010_001 => "Sign in",
        1_010_002 => "Sign in with {provider}",
        1_010_003 => "Please confirm this action by verifying that it is you.",
        1_010_004 => "Please complete the second authentication challenge.",
        1_010_005 => "Verify",
        1_010_006 => "Authentication code",
        1_010_007 => "Backup recovery code",
        1_010_008 => "Sign in with a hardware key",
        1_010_009 => "Use Authenticator",
        1_010_010 => "Use backup recovery code",
        1_010_011 => "Sign in with a hardware key",
        1_010_012 => "Prepare your WebAuthn device (e.g. security key, biometrics scanner, ...) and press continue.",
        1_010_013 => "Continue",
        1_010_014 => {
            "A code was sent to the address you provided. If you didn't receive it, please check the spelling of the address and try again."
        }
        1_010_015 => "Send sign in code",
        1_010_016 => {
            "You tried to sign in with \"{duplicate_identifier}\", but that email is already used by another account. Sign in to your account with one of the options below to add your account \"{duplicate_identifier}\" at \"{provider}\" as another way to sign in."
        }
        1_010_017 => "Sign in and link",
        1_010_018 => "Confirm with {provider}",
        1_010_019 => "Request code to continue",
        1_010_021 => "Sign in with passkey",
        1_010_022 => "Sign in with password",
        1_010_023 => "Send code to {address}",
        1_010_024 => "Sign in with a hardware key",
        1_010_025 => "A code was sent to your address. If you didn't receive it, please try again.",

        // ---- registration (info) ----
        1_040_001 => "Sign up",
        1_040_002 => "Sign up with {provider}",
        1_040_003 => "Continue",
        1_040_004 => "Sign up with security key",
        1_040_005 => {
            "A code has been sent to the address(es) you provided. If you have not received a message, check the spelling of the address and retry the registration."
        }
        1_040_006 => "Send sign up code",
        1_040_007 => "Sign up with passkey",
        1_040_008 => "Back",
        1_040_009 => "Please choose a credential to authenticate yourself with.",

        // ---- settings (info) ----
        1_050_001 => "Your changes have been saved!",
        1_050_002 => "Link {provider}",
        1_050_003 => "Unlink {provider}",
        1_050_004 => "Unlink TOTP Authenticator App",
        1_050_005 => "Authenticator app QR code",
        1_050_006 => "{secret}",
        1_050_007 => "Reveal backup recovery codes",
        1_050_008 => "Generate new backup recovery codes",
        1_050_009 => "{secret}",
        1_050_010 => "These are your back up recovery codes. Please keep them in a safe place!",
        1_050_011 => "Confirm backup recovery codes",
        1_050_012 => "Add security key",
        1_050_013 => "Name of the security key",
        1_050_014 => "Secret was used at {used_at}",
        1_050_015 => "{secrets}",
        1_050_016 => "Disable this method",
        1_050_017 => "This is your authenticator app secret. Use it if you can not scan the QR code.",
        1_050_018 => "Remove security key \"{display_name}\"",
        1_050_019 => "Add passkey",
        1_050_020 => "Remove passkey \"{display_name}\"",
        1_050_023 => {
            "Your account is managed by your organization. To change these settings, contact your organization administrator."
        }

        // ---- recovery (info) ----
        1_060_001 => {
            "You successfully recovered your account. Please change your password or set up an alternative login method (e.g. social sign in) within the next {minutes} minutes."
        }
        1_060_002 => {
            "An email containing a recovery link has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with."
        }
        1_060_003 => {
            "An email containing a recovery code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with."
        }
        1_060_004 => {
            "A recovery code has been sent to {masked_address}. If you have not received it, check the spelling of the address and make sure to use the address you registered with."
        }
        1_060_005 => "Recover access to your account by providing your recovery address in full.",
        1_060_006 => "How do you want to recover your account?",
        1_060_007 => "Back",

        // ---- node labels ----
        1_070_001 => "Password",
        1_070_002 => "{title}",
        1_070_003 => "Save",
        1_070_004 => "ID",
        1_070_005 => "Submit",
        1_070_006 => "Verify code",
        1_070_007 => "Email",
        1_070_008 => "Resend code",
        1_070_009 => "Continue",
        1_070_010 => "Recovery code",
        1_070_011 => "Verification code",
        1_070_012 => "Registration code",
        1_070_013 => "Login code",
        1_070_014 => "Login and link credential",
        1_070_015 => "Please complete the captcha challenge to continue.",
        1_070_016 => "Recovery address",
        1_070_017 => "Phone number",
        1_070_018 => "Email or phone number",

        // ---- verification (info) ----
        1_080_001 => {
            "An email containing a verification link has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with."
        }
        1_080_002 => "You successfully verified your email address.",
        1_080_003 => {
            "An email containing a verification code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with."
        }
        1_080_004 => {
            "A text message containing a verification code has been sent to the phone number you provided. If you have not received a text message, check the spelling of the number and make sure to use the number you registered with."
        }
        1_080_005 => "You successfully verified your phone number.",

        // ---- validation errors ----
        4_000_001 => "{reason}",
        4_000_002 => "Property {property} is missing.",
        4_000_003 => "length must be >= {min_length}, but got {actual_length}",
        4_000_004 => "does not match pattern \"{pattern}\"",
        4_000_005 => "The password can not be used because {reason}.",
        4_000_006 => {
            "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number."
        }
        4_000_007 => "An account with the same identifier (email, phone, username, ...) exists already.",
        4_000_008 => "The provided authentication code is invalid, please try again.",
        4_000_009 => {
            "Could not find any login identifiers. Did you forget to set them? This could also be caused by a server misconfiguration."
        }
        4_000_010 => "Account not active yet. Did you forget to verify your email address?",
        4_000_011 => "You have no TOTP device set up.",
        4_000_012 => "This backup recovery code has already been used.",
        4_000_013 => "You have no WebAuthn device set up.",
        4_000_014 => "You have no backup recovery codes set up.",
        4_000_015 => "This account does not exist or has no security key set up.",
        4_000_016 => "The backup recovery code is not valid.",
        4_000_017 => "length must be <= {max_length}, but got {actual_length}",
        4_000_018 => "must be >= {minimum} but found {actual}",
        4_000_019 => "must be > {minimum} but found {actual}",
        4_000_020 => "must be <= {maximum} but found {actual}",
        4_000_021 => "must be < {maximum} but found {actual}",
        4_000_022 => "{actual} not multipleOf {base}",
        4_000_023 => "maximum {max_items} items allowed, but found {actual_items} items",
        4_000_024 => "minimum {min_items} items allowed, but found {actual_items} items",
        4_000_025 => "items at index {index_a} and {index_b} are equal",
        4_000_026 => "expected {allowed_types}, but got {actual_type}",
        4_000_027 => {
            "An account with the same identifier (email, phone, username, ...) exists already. Please sign in to your existing account to link your social profile."
        }
        4_000_028 => {
            "You tried signing in with {credential_identifier_hint} which is already in use by another account."
        }
        4_000_029 => "must be equal to constant {expected}",
        4_000_030 => "const failed",
        4_000_031 => "The password can not be used because it is too similar to the identifier.",
        4_000_032 => "The password must be at least {min_length} characters long, but got {actual_length}.",
        4_000_033 => "The password must be at most {max_length} characters long, but got {actual_length}.",
        4_000_034 => "The password has been found in data breaches and must no longer be used.",
        4_000_035 => "This account does not exist or has not setup sign in with code.",
        4_000_036 => "The provided traits do not match the traits previously associated with this flow.",
        4_000_037 => "This account does not exist or has no login method configured.",
        4_000_038 => "Captcha verification failed, please try again.",
        4_000_039 => "The new password must be different from the old password.",
        4_000_040 => "Enter a valid email address",
        4_000_041 => "Enter a valid phone number",
        4_000_042 => "You have no DeviceAuthn device set up.",
        4_000_043 => "The provided web authn login is invalid, please try again.",
        4_000_044 => "The provided DeviceAuthn signature is invalid.",
        4_000_045 => {
            "This DeviceAuthn key can no longer be used because relaxed attestation is expired or disabled. Please enroll your device again."
        }
        4_000_046 => {
            "This DeviceAuthn key was enrolled before user verification was introduced and can no longer be used. Please enroll your device again."
        }

        // ---- login / generic flow errors ----
        4_010_001 => "The login flow expired {minutes} minutes ago, please try again.",
        4_010_002 => "Could not find a strategy to log you in with. Did you fill out the form correctly?",
        4_010_003 => "Could not find a strategy to sign you up with. Did you fill out the form correctly?",
        4_010_004 => "Could not find a strategy to update your settings. Did you fill out the form correctly?",
        4_010_005 => "Could not find a strategy to recover your account with. Did you fill out the form correctly?",
        4_010_006 => "Could not find a strategy to verify your account with. Did you fill out the form correctly?",
        4_010_007 => "The request was already completed successfully and can not be retried.",
        4_010_008 => "The login code is invalid or has already been used. Please try again.",
        4_010_009 => "Linked credentials do not match.",
        4_010_010 => "The address you entered does not match any known addresses in the current account.",
        4_010_011 => "This account has been disabled. Please contact support for assistance.",

        // ---- registration errors ----
        4_040_001 => "The registration flow expired {minutes} minutes ago, please try again.",
        4_040_002 => "The request was already completed successfully and can not be retried.",
        4_040_003 => "The registration code is invalid or has already been used. Please try again.",

        // ---- settings errors ----
        4_050_001 => "The settings flow expired {minutes} minutes ago, please try again.",
        4_050_002 => "You can only change one address at a time. Please update each address separately.",

        // ---- recovery errors ----
        4_060_001 => "The request was already completed successfully and can not be retried.",
        4_060_002 => "The recovery flow reached a failure state and must be retried.",
        4_060_004 => "The recovery token is invalid or has already been used. Please retry the flow.",
        4_060_005 => "The recovery flow expired {minutes} minutes ago, please try again.",
        4_060_006 => "The recovery code is invalid or has already been used. Please try again.",

        // ---- verification errors ----
        4_070_001 => "The verification token is invalid or has already been used. Please retry the flow.",
        4_070_002 => "The request was already completed successfully and can not be retried.",
        4_070_003 => "The verification flow reached a failure state and must be retried.",
        4_070_005 => "The verification flow expired {minutes} minutes ago, please try again.",
        4_070_006 => "The verification code is invalid or has already been used. Please try again.",

        // ---- system errors ----
        5_000_001 => "{reason}",
        5_000_002 => "No authentication methods are available. Please contact the system administrator.",
        5_000_003 => {
            "Your organization requires SSO authentication, but no SSO provider is configured. Please contact the system administrator."
        }
        _ => return None,
    };
    Some(text)
}

/// Substitutes `{name}` placeholders in `template` in a single pass, so that a
/// substituted value containing braces is never expanded again. Unknown
/// placeholders are left as they are.
pub(crate) fn render(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(rest.get(..open).unwrap_or_default());
        let after = rest.get(open + 1..).unwrap_or_default();
        let replaced = after.find('}').and_then(|close| {
            let key = after.get(..close)?;
            let (_, value) = args.iter().find(|(k, _)| *k == key)?;
            Some((*value, close))
        });
        match replaced {
            Some((value, close)) => {
                out.push_str(value);
                rest = after.get(close + 1..).unwrap_or_default();
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn render_single_pass() {
        assert_eq!(
            render("Property {property} is missing.", &[("property", "{x}")]),
            "Property {x} is missing."
        );
        assert_eq!(render("{a}{b}{", &[("a", "1")]), "1{b}{");
    }

    #[test]
    fn unknown_ids() {
        assert_eq!(lookup(0), None);
        assert_eq!(lookup(1_010_020), None);
        assert_eq!(lookup(4_060_003), None);
    }
}
