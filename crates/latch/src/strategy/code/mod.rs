//! The `code` method: one-time codes by email for registration and login (passwordless),
//! and the code mechanics shared with verification and recovery.
//! Kratos: `selfservice/strategy/code`.
//!
//! Codes are 6 digits from the OS CSPRNG, stored and compared as keyed hashes (so the timing
//! of a comparison tells nothing about a code) and single-use; a new code replaces the flow's
//! old one. Wrong codes are bounded per flow
//! (`max_submissions`) and per address across flows (`latch.rate_limits`), so opening new
//! flows does not reset the budget; each attempt is counted atomically before the code is
//! compared ([`crate::limits`]). Resending has a cooldown; mails per address are limited.

mod login;
pub mod messages;
mod mfa;
mod registration;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use super::FlowError;
use crate::crypto::{hex, random_bytes};
use crate::deps::Env;
use crate::limits::CodeAttemptError;
use crate::model::flow::Flow;
use crate::store::code::CodeRow;
use crate::text::{self, UiText};

/// The code strategy. `passwordless`: it also signs people up and in; `mfa`: it is a second
/// factor of `aal2` logins (Kratos allows one of the two at most).
#[derive(Debug, Clone, Copy)]
pub struct Code {
    passwordless: bool,
    mfa: bool,
}

impl super::Strategy for Code {
    fn id(&self) -> &'static str {
        "code"
    }
    fn login(&self) -> Option<&dyn super::LoginStrategy> {
        (self.passwordless || self.mfa).then_some(self as &dyn super::LoginStrategy)
    }
    fn registration(&self) -> Option<&dyn super::RegistrationStrategy> {
        self.passwordless.then_some(self as &dyn super::RegistrationStrategy)
    }
    fn recovery(&self) -> Option<&dyn super::RecoveryStrategy> {
        Some(self)
    }
    fn verification(&self) -> Option<&dyn super::VerificationStrategy> {
        Some(self)
    }
}

/// The `code` credential: the addresses from the traits, derived, never imported.
#[derive(Debug)]
struct CodeCredential;

#[async_trait::async_trait]
impl super::CredentialType for CodeCredential {
    fn id(&self) -> &'static str {
        "code"
    }
    fn signs_in_alone(&self, config: &crate::config::Config, identity: &crate::identity::Identity) -> bool {
        let c = &config.selfservice.methods.code;
        c.enabled
            && c.passwordless_enabled
            && identity
                .credentials
                .get("code")
                .is_some_and(|c| !c.identifiers.is_empty())
    }
    fn is_second_factor(&self, config: &crate::config::Config, identity: &crate::identity::Identity) -> bool {
        mfa::is_second_factor(config, identity)
    }
    fn identifiers_from_traits(&self) -> bool {
        true
    }
    async fn import(
        &self,
        _cx: &super::ImportCx<'_>,
        _identity: &crate::identity::Identity,
        _config: Value,
    ) -> Result<Option<super::Imported>, super::ImportError> {
        Err(super::ImportError::Invalid(
            "Credentials of type \"code\" cannot be imported.".into(),
        ))
    }
    fn deletable(&self) -> Result<(), String> {
        Err("The code credential is derived from the identity's traits and cannot be deleted; change the traits instead.".into())
    }
}

static CODE: CodeCredential = CodeCredential;

/// Registers the code method: always its credential type; the strategy for recovery and
/// verification, for sign up and sign in when passwordless codes are on, and for `aal2`
/// sign in when MFA codes are on.
/// The code part of a form once a code was sent, as Kratos writes it in every flow: a hidden
/// `method=code`, the `code` input labelled `code_label`, and the continue and resend buttons.
pub fn append_code_inputs(flow: &mut crate::model::flow::Flow, code_label: UiText) {
    use crate::ui::{Autocomplete, Group, InputType, Node};
    flow.ui
        .append(Node::input("method", InputType::Hidden, Group::Code).value("code"));
    flow.ui.append(
        Node::input("code", InputType::Text, Group::Code)
            .required()
            .autocomplete(Autocomplete::OneTimeCode)
            .label(code_label),
    );
    flow.ui.append(
        Node::input("method", InputType::Submit, Group::Code)
            .value("code")
            .label(crate::text::label_continue()),
    );
    flow.ui.append(
        Node::input("resend", InputType::Submit, Group::Code)
            .value("code")
            .label(crate::text::label_resend_code()),
    );
}

pub fn register(r: &mut super::Registry<'_>) {
    r.credential(&CODE);
    let c = &r.config().selfservice.methods.code;
    let f = &r.config().selfservice.flows;
    let passwordless = c.enabled && c.passwordless_enabled;
    let mfa = mfa::enabled(r.config());
    if passwordless || mfa || f.recovery.enabled || f.verification.enabled {
        r.strategy(std::sync::Arc::new(Code { passwordless, mfa }));
    }
}

/// Minimum time between two codes of one flow.
pub const RESEND_COOLDOWN: Duration = Duration::from_secs(30);

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sign in.
    Login,
    /// Sign up.
    Registration,
    /// Prove an address.
    Verification,
    /// Regain access.
    Recovery,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Registration => "registration",
            Purpose::Verification => "verification",
            Purpose::Recovery => "recovery",
        }
    }

    /// The courier template for this purpose.
    pub fn template(self) -> &'static str {
        match self {
            Purpose::Login => "login_code_valid",
            Purpose::Registration => "registration_code_valid",
            Purpose::Verification => "verification_code_valid",
            Purpose::Recovery => "recovery_code_valid",
        }
    }

    /// The "invalid or already used" message of this purpose.
    pub fn invalid(self) -> UiText {
        match self {
            Purpose::Login => text::login_code_invalid(),
            Purpose::Registration => text::registration_code_invalid(),
            Purpose::Verification => text::verification_code_invalid(),
            Purpose::Recovery => text::recovery_code_invalid(),
        }
    }
}

/// A new 6-digit code (uniform, by rejection sampling).
pub fn generate() -> String {
    loop {
        let b = random_bytes(4);
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Keyed hash of a code, bound to its flow. Kratos: `persister_hmac.go`.
pub fn hash(env: &Env, flow_id: Uuid, code: &str) -> String {
    let secret = env.hash_key.expose();
    match Hmac::<Sha256>::new_from_slice(format!("latch one-time code\0{secret}").as_bytes()) {
        Ok(mut mac) => {
            mac.update(flow_id.as_bytes());
            mac.update(code.trim().as_bytes());
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn cooldown_message(seconds: i64) -> UiText {
    text::validation_generic(&format!(
        "A code was sent moments ago. Please wait {seconds} seconds before requesting another one."
    ))
}

/// Creates a code for `address` and queues its email in the same transaction. With
/// `send = false` (unknown address under enumeration protection) the mail is rendered and
/// written the same way but discarded before the commit, so both cases do the same work.
///
/// `save` is the flow as it is once the code is sent: it is written in the same transaction
/// (so a flow records every code issued for it). A flow saved this way that records no code
/// yet (`code_address`) has none to replace, and no cooldown to check beforehand: the insert
/// itself refuses a code within the cooldown of another.
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    env: &Env,
    flow: &Flow,
    purpose: Purpose,
    identity_id: Option<Uuid>,
    address: &str,
    send: bool,
    mut data: Value,
    save: Option<&Flow>,
) -> Result<(), FlowError> {
    let now = env.clock.now();
    let first = save.is_some() && flow.internal_get("code_address").is_none();
    // A resend checks the cooldown before the mail budget is counted, so a refused resend
    // costs the address nothing.
    if !first && let Some(last) = env.store.last_code_at(flow.id).await? {
        cooldown(now, last)?;
    }
    // Counted for unknown addresses too, so the answer does not tell them apart.
    crate::limits::code_mail(env, address).await?;
    let code = generate();
    let lifespan = env.config.selfservice.methods.code.config.lifespan;
    let row = CodeRow {
        id: Uuid::new_v4(),
        flow_id: flow.id,
        identity_id,
        purpose: purpose.as_str().into(),
        address: address.to_string(),
        address_type: "email".into(),
        code_hash: hash(env, flow.id, &code),
        expires_at: now + lifespan,
        used_at: None,
        created_at: now,
    };
    if let Some(o) = data.as_object_mut() {
        o.insert("code".into(), json!(code));
        o.insert("to".into(), json!(address));
        o.insert("expires_in_minutes".into(), json!(lifespan.as_secs() / 60));
        if let Some(base) = o
            .get("verification_url_base")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            o.insert("verification_url".into(), json!(format!("{base}&code={code}")));
        }
    }
    let mail = render_mail(env, purpose.template(), address, &data)?;
    let issued = env
        .store
        .issue_code(crate::store::code::Issue {
            code: &row,
            replaces: !first,
            cooldown_since: now - RESEND_COOLDOWN,
            mail: &mail,
            deliver: send,
            flow: save,
        })
        .await?;
    if !issued {
        // Another code of the flow was stored first (a concurrent request).
        let last = env.store.last_code_at(flow.id).await?.unwrap_or(now);
        cooldown(now, last)?;
        return Err(FlowError::message(cooldown_message(1)));
    }
    Ok(())
}

/// Refuses a code within [`RESEND_COOLDOWN`] of the flow's last one (issued at `last`).
fn cooldown(now: time::OffsetDateTime, last: time::OffsetDateTime) -> Result<(), FlowError> {
    let wait = (last + RESEND_COOLDOWN) - now;
    if wait.is_positive() {
        return Err(FlowError::message(cooldown_message(wait.whole_seconds().max(1))));
    }
    Ok(())
}

/// The mail of a code: `template` (a Kratos template type) rendered with `data`.
fn render_mail(
    env: &Env,
    template: &str,
    to: &str,
    data: &Value,
) -> Result<crate::courier::message::NewMessage, FlowError> {
    use crate::courier::message::{NewMessage, TemplateType};
    use crate::store::StoreError;
    let kind = TemplateType::parse(template)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown courier template {template:?}")))?;
    let rendered = crate::courier::templates::render(&env.config, kind, data).map_err(|e| {
        tracing::error!(template, error = %e, "rendering a courier template failed");
        StoreError::Corrupt(format!("courier template {template}: {e}"))
    })?;
    Ok(NewMessage::new(to, kind, rendered, data.clone(), env.clock.now()))
}

/// Counts a code attempt against the flow's budget and `cap_address`' budget across flows,
/// each in one atomic statement, BEFORE the code is compared, so concurrent submissions
/// cannot exceed them.
async fn reserve_attempt(env: &Env, flow: &Flow, cap_address: &str) -> Result<crate::limits::CodeAttempt, FlowError> {
    match crate::limits::code_attempt(env, flow.id, flow.expires_at, cap_address).await {
        Ok(a) => Ok(a),
        Err(CodeAttemptError::FlowExhausted) => Err(FlowError::message(text::validation_generic(
            "The request was submitted too often. Please request another code.",
        ))),
        Err(CodeAttemptError::Limited(l)) => Err(FlowError::Limited(l)),
        Err(CodeAttemptError::Store(e)) => Err(e.into()),
    }
}

/// Checks a submitted code for a flow and uses it up. `cap_address` is the address whose
/// cross-flow budget applies; the attempt is counted first ([`reserve_attempt`]).
///
/// The flow's unused, unexpired code is found and used up in one conditional statement
/// ([`crate::store::Store::use_code_by_hash`]), so of concurrent submissions of one code
/// exactly one gets it. What the database compares are keyed hashes (HMAC with the server's
/// secret, bound to the flow), so the comparison's timing tells nothing about the code.
/// Only codes of an identity are usable, but registration codes (which have none).
pub async fn verify(
    env: &Env,
    flow: &Flow,
    purpose: Purpose,
    cap_address: &str,
    submitted: &str,
) -> Result<CodeRow, FlowError> {
    let attempt = reserve_attempt(env, flow, cap_address).await?;
    let want = hash(env, flow.id, submitted);
    let any = purpose == Purpose::Registration;
    let Some(c) = env.store.use_code_by_hash(flow.id, &want, any, env.clock.now()).await? else {
        return Err(FlowError::message(purpose.invalid()));
    };
    attempt.succeeded(env).await;
    Ok(c)
}

/// [`verify`] for a code that signs its identity in: the identity comes back whole from the
/// statement that uses the code up.
pub async fn verify_signing_in(
    env: &Env,
    flow: &Flow,
    purpose: Purpose,
    cap_address: &str,
    submitted: &str,
) -> Result<(CodeRow, crate::identity::Identity), FlowError> {
    let attempt = reserve_attempt(env, flow, cap_address).await?;
    let want = hash(env, flow.id, submitted);
    let Some(used) = env
        .store
        .use_code_by_hash_with_identity(flow.id, &want, env.clock.now())
        .await?
    else {
        return Err(FlowError::message(purpose.invalid()));
    };
    attempt.succeeded(env).await;
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let a = generate();
        assert_eq!(a.len(), 6);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        let distinct: std::collections::HashSet<String> = (0..50).map(|_| generate()).collect();
        assert!(distinct.len() > 40);
    }
}
