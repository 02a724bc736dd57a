//! Words on the built-in pages. Flow messages and labels come with Kratos message ids; a
//! page shows them through [`Locale::text`], which looks the id up in the locale's catalogue
//! and fills in the message's `context`, falling back to the English text the server sent.
//! Adding a language means adding a [`Locale`] variant, its [`Locale::template`] table (ids
//! as in [`crate::text::lookup`]) and its [`Locale::phrase`] table.

use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::text::UiText;

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// American English (the texts Kratos' message ids carry).
    En,
}

/// Page texts that are not flow messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phrase {
    SkipToContent,
    Footer,
    SignIn,
    SignUp,
    Settings,
    Verification,
    Recovery,
    Welcome,
    Error,
    Or,
    NoAccount,
    CreateAccount,
    HaveAccount,
    ForgotPassword,
    RecoverAccount,
    BackToSignIn,
    BackToWelcome,
    SignOut,
    SignedInAs,
    NotSignedIn,
    NotSignedInHelp,
    YourProfile,
    YourSession,
    AuthenticatedAt,
    ExpiresAt,
    Methods,
    AssuranceLevel,
    IdentityId,
    Addresses,
    Verified,
    NotVerified,
    VerifyNow,
    AccountSettings,
    ErrorIntro,
    CsrfTitle,
    CsrfIntro,
    CsrfWhatToDo,
    CsrfDeveloper,
    WhatHappened,
    Hint,
    TechnicalDetails,
    StartOver,
    ErrorNotFound,
    ErrorId,
    ErrorCode,
    Message,
    Reason,
    NeedsJavascript,
    SectionProfile,
    SectionPassword,
    SectionTotp,
    SectionLookupSecret,
    SectionPasskey,
    SectionWebauthn,
    SectionOidc,
    SectionCode,
    SectionOther,
    SecondFactorTitle,
    SecondFactorIntro,
    SecondFactorMissing,
}

impl Locale {
    /// The language the browser prefers among the ones the pages have.
    pub fn negotiate(headers: &HeaderMap) -> Locale {
        let _accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Locale::En
    }

    /// BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
        }
    }

    /// The template of message `id` in this language (`{name}` placeholders name context
    /// keys). `None` means "use the server's text", which is English.
    pub fn template(self, id: u32) -> Option<&'static str> {
        match self {
            Locale::En => {
                let _ = id;
                None
            }
        }
    }

    /// A flow message in this language.
    pub fn text(self, t: &UiText) -> String {
        let Some(template) = self.template(t.id) else {
            return t.text.clone();
        };
        fill(template, t).unwrap_or_else(|| t.text.clone())
    }

    /// A page text in this language.
    pub fn phrase(self, p: Phrase) -> &'static str {
        match self {
            Locale::En => english(p),
        }
    }
}

/// Fills `{key}` placeholders from the message context; `None` when one is missing.
fn fill(template: &str, t: &UiText) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(rest.get(..open)?);
        let after = rest.get(open + 1..)?;
        let close = after.find('}')?;
        let key = after.get(..close)?;
        match t.context.get(key)? {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = after.get(close + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

fn english(p: Phrase) -> &'static str {
    use Phrase::*;
    match p {
        SkipToContent => "Skip to content",
        Footer => "Secured by Latch. Your data is only sent to this server.",
        SignIn => "Sign in",
        SignUp => "Create your account",
        Settings => "Account settings",
        Verification => "Verify your email address",
        Recovery => "Recover your account",
        Welcome => "Welcome",
        Error => "Something went wrong",
        Or => "or",
        NoAccount => "New here?",
        CreateAccount => "Create an account",
        HaveAccount => "Already have an account?",
        ForgotPassword => "Forgot your password?",
        RecoverAccount => "Recover your account",
        BackToSignIn => "Back to sign in",
        BackToWelcome => "Back to your account",
        SignOut => "Sign out",
        SignedInAs => "You are signed in as",
        NotSignedIn => "You are not signed in",
        NotSignedInHelp => "Sign in to your account, or create one.",
        YourProfile => "Your profile",
        YourSession => "This session",
        AuthenticatedAt => "Signed in at",
        ExpiresAt => "Expires at",
        Methods => "Signed in with",
        AssuranceLevel => "Assurance level",
        IdentityId => "Account ID",
        Addresses => "Email addresses",
        Verified => "verified",
        NotVerified => "not verified",
        VerifyNow => "Verify your email address",
        AccountSettings => "Account settings",
        ErrorIntro => "The request could not be completed.",
        CsrfTitle => "This form expired or was opened in another browser",
        CsrfIntro => {
            "For your protection the form was not accepted: the security cookie that was set when the form was opened \
             did not come back with it (or did not match). This happens when cookies are blocked or deleted, when the form \
             was opened in another browser or tab that has since signed in or out, or when the site is reached under a \
             different address than the one it was opened with."
        }
        CsrfWhatToDo => "Start again from a fresh form. If it keeps happening, allow cookies for this site.",
        CsrfDeveloper => "For developers",
        WhatHappened => "What happened",
        Hint => "Hint",
        TechnicalDetails => "Technical details",
        StartOver => "Start again",
        ErrorNotFound => "This error report does not exist or has expired.",
        ErrorId => "Error",
        ErrorCode => "Status",
        Message => "Message",
        Reason => "Reason",
        NeedsJavascript => "Passkeys need JavaScript: enable it to use this option.",
        SectionProfile => "Profile",
        SectionPassword => "Password",
        SectionTotp => "Authenticator app",
        SectionLookupSecret => "Recovery codes",
        SectionPasskey => "Passkeys",
        SectionWebauthn => "Security keys",
        SectionOidc => "Connected accounts",
        SectionCode => "Sign-in codes",
        SectionOther => "Other",
        SecondFactorTitle => "Confirm it's you",
        SecondFactorIntro => "Your account is protected by a second factor. Use it to finish signing in.",
        SecondFactorMissing => "Don't have it at hand?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TextType;

    #[test]
    fn fills_context_or_falls_back() {
        let t = UiText::new(4_000_002, TextType::Error, "Property email is missing.").with("property", "email");
        assert_eq!(
            fill("Eigenschaft {property} fehlt.", &t).unwrap(),
            "Eigenschaft email fehlt."
        );
        assert_eq!(fill("{nope}", &t), None);
        assert_eq!(Locale::En.text(&t), "Property email is missing.");
    }
}
