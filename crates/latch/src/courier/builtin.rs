//! Latch's own wording for the mails it sends, as minijinja templates. Variables: `code`,
//! `to`, `expires_in_minutes`, `traits`/`identity` when known, `verification_url` and
//! `recovery_url` when given (the links of the `link` method) (see `templates.rs` for the Kratos aliases).

use super::message::TemplateType;

/// Subject, plain-text body and HTML body of one template type.
pub(super) struct Builtin {
    pub subject: &'static str,
    pub plaintext: &'static str,
    pub html: &'static str,
}

const EXPIRY_TEXT: &str = "{% if expires_in_minutes %}The code expires in {{ expires_in_minutes }} minutes \
and works only once.{% else %}The code works only once.{% endif %}";

/// The built-in templates for `kind`.
pub(super) fn builtin(kind: TemplateType) -> Builtin {
    match kind {
        TemplateType::LoginCodeValid => Builtin {
            subject: "{{ code }} is your sign-in code",
            plaintext: LOGIN_TEXT,
            html: LOGIN_HTML,
        },
        TemplateType::RegistrationCodeValid => Builtin {
            subject: "{{ code }} is your code to finish signing up",
            plaintext: REGISTRATION_TEXT,
            html: REGISTRATION_HTML,
        },
        TemplateType::VerificationCodeValid => Builtin {
            subject: "{{ code }} is your code to confirm your email address",
            plaintext: VERIFICATION_TEXT,
            html: VERIFICATION_HTML,
        },
        TemplateType::RecoveryCodeValid => Builtin {
            subject: "{{ code }} is your account recovery code",
            plaintext: RECOVERY_TEXT,
            html: RECOVERY_HTML,
        },
        TemplateType::RecoveryValid => Builtin {
            subject: "Recover access to your account",
            plaintext: RECOVERY_LINK_TEXT,
            html: RECOVERY_LINK_HTML,
        },
        TemplateType::RecoveryInvalid => Builtin {
            subject: "Account recovery request",
            plaintext: RECOVERY_UNKNOWN_TEXT,
            html: RECOVERY_UNKNOWN_HTML,
        },
        TemplateType::VerificationValid => Builtin {
            subject: "Please confirm your email address",
            plaintext: VERIFICATION_LINK_TEXT,
            html: VERIFICATION_LINK_HTML,
        },
        TemplateType::VerificationInvalid => Builtin {
            subject: "Email address confirmation request",
            plaintext: VERIFICATION_UNKNOWN_TEXT,
            html: VERIFICATION_UNKNOWN_HTML,
        },
        TemplateType::VerifiableAddressChanged => Builtin {
            subject: "An address of your account was changed",
            plaintext: ADDRESS_CHANGED_TEXT,
            html: ADDRESS_CHANGED_HTML,
        },
    }
}

const LINK_EXPIRY_TEXT: &str = "{% if expires_in_minutes %}The link expires in {{ expires_in_minutes }} minutes \
and works only once.{% else %}The link works only once.{% endif %}";

/// The shared expiry sentence, spliced into every body below.
pub(super) fn expand(template: &str) -> String {
    template
        .replace("[[expiry]]", EXPIRY_TEXT)
        .replace("[[link_expiry]]", LINK_EXPIRY_TEXT)
}

const LOGIN_TEXT: &str = "Hello,

someone asked to sign in to your account with this email address. Enter this code to continue:

    {{ code }}

[[expiry]]

If that was not you, ignore this email: nobody can sign in without the code.
";

const REGISTRATION_TEXT: &str = "Hello,

enter this code to finish creating your account:

    {{ code }}

[[expiry]]

If you did not start signing up, ignore this email and no account will be created.
";

const VERIFICATION_TEXT: &str = "Hello,

please confirm that this email address belongs to you by entering this code:

    {{ code }}

{% if verification_url %}You can also open this link instead:

    {{ verification_url }}

{% endif %}[[expiry]]

If you did not ask for this, ignore this email.
";

const RECOVERY_TEXT: &str = "Hello,

someone asked to recover access to the account that uses this email address. Enter this code to continue:

    {{ code }}

{% if recovery_url %}You can also open this link instead:

    {{ recovery_url }}

{% endif %}[[expiry]]

If that was not you, ignore this email: your account stays as it is.
";

const LOGIN_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>someone asked to sign in to your account with this email address. Enter this code to continue:</p>
<p style="font-size: 1.6em; font-weight: bold; letter-spacing: 0.15em">{{ code }}</p>
<p>[[expiry]]</p>
<p>If that was not you, ignore this email: nobody can sign in without the code.</p>
</body></html>
"#;

const REGISTRATION_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>enter this code to finish creating your account:</p>
<p style="font-size: 1.6em; font-weight: bold; letter-spacing: 0.15em">{{ code }}</p>
<p>[[expiry]]</p>
<p>If you did not start signing up, ignore this email and no account will be created.</p>
</body></html>
"#;

const VERIFICATION_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>please confirm that this email address belongs to you by entering this code:</p>
<p style="font-size: 1.6em; font-weight: bold; letter-spacing: 0.15em">{{ code }}</p>
{% if verification_url %}<p>You can also <a href="{{ verification_url }}">confirm your address with this link</a>.</p>
{% endif %}<p>[[expiry]]</p>
<p>If you did not ask for this, ignore this email.</p>
</body></html>
"#;

const RECOVERY_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>someone asked to recover access to the account that uses this email address. Enter this code to continue:</p>
<p style="font-size: 1.6em; font-weight: bold; letter-spacing: 0.15em">{{ code }}</p>
{% if recovery_url %}<p>You can also <a href="{{ recovery_url }}">recover your account with this link</a>.</p>
{% endif %}<p>[[expiry]]</p>
<p>If that was not you, ignore this email: your account stays as it is.</p>
</body></html>
"#;

const RECOVERY_LINK_TEXT: &str = "Hello,

someone asked to recover access to the account that uses this email address. Open this link to continue:

    {{ recovery_url }}

[[link_expiry]]

If that was not you, ignore this email: your account stays as it is.
";

const RECOVERY_LINK_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>someone asked to recover access to the account that uses this email address.</p>
<p><a href="{{ recovery_url }}">Recover your account</a></p>
<p>[[link_expiry]]</p>
<p>If that was not you, ignore this email: your account stays as it is.</p>
</body></html>
"#;

const RECOVERY_UNKNOWN_TEXT: &str = "Hello,

someone asked to recover access to an account with this email address ({{ to }}), but no account uses it.

If that was you, you may have signed up with another address. Otherwise, ignore this email.
";

const RECOVERY_UNKNOWN_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>someone asked to recover access to an account with this email address ({{ to }}), but no account uses it.</p>
<p>If that was you, you may have signed up with another address. Otherwise, ignore this email.</p>
</body></html>
"#;

const VERIFICATION_LINK_TEXT: &str = "Hello,

please confirm that this email address belongs to you by opening this link:

    {{ verification_url }}

[[link_expiry]]

If you did not ask for this, ignore this email.
";

const VERIFICATION_LINK_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>please confirm that this email address belongs to you:</p>
<p><a href="{{ verification_url }}">Confirm your email address</a></p>
<p>[[link_expiry]]</p>
<p>If you did not ask for this, ignore this email.</p>
</body></html>
"#;

const VERIFICATION_UNKNOWN_TEXT: &str = "Hello,

someone asked to confirm this email address ({{ to }}), but no account uses it.

If that was not you, ignore this email.
";

const VERIFICATION_UNKNOWN_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>someone asked to confirm this email address ({{ to }}), but no account uses it.</p>
<p>If that was not you, ignore this email.</p>
</body></html>
"#;

const ADDRESS_CHANGED_TEXT: &str = "Hello,

an email address or phone number of your account was just changed{% if changed_at %} ({{ changed_at }}){% endif %}.
We are writing to {{ to }} because it was an address of the account before the change.

If you made this change, there is nothing to do.
If you did not, contact support right away: someone else may have access to your account.
{% if identity and identity.id %}
Account: {{ identity.id }}
{% endif %}";

const ADDRESS_CHANGED_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>Hello,</p>
<p>an email address or phone number of your account was just changed{% if changed_at %} ({{ changed_at }}){% endif %}.
We are writing to {{ to }} because it was an address of the account before the change.</p>
<p>If you made this change, there is nothing to do.<br>
If you did not, contact support right away: someone else may have access to your account.</p>
{% if identity and identity.id %}<p>Account: {{ identity.id }}</p>
{% endif %}</body></html>
"#;
