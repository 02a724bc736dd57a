//! The `link` method: recovery and verification by a link sent by email.
//! Kratos: `selfservice/strategy/link`.
//!
//! A link carries the flow id and a token of 32 letters and digits from the OS CSPRNG
//! (~190 bits). Tokens are stored as keyed hashes bound to their flow, in the table that also
//! holds one-time codes (`selfservice_codes`, purpose `recovery_link` / `verification_link`);
//! they are single-use (consumed by one conditional `UPDATE`, so of two concurrent requests
//! with one token exactly one wins) and expire after `selfservice.methods.link.config.lifespan`.
//! A new link for a flow replaces the flow's unused one. Mails per address are limited as
//! for codes, and a flow sends at most one link per [`RESEND_COOLDOWN`].

mod recovery;
mod verification;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::FlowError;
use crate::crypto::{ct_eq, hex, random_bytes};
use crate::deps::Env;
use crate::model::flow::Flow;
use crate::store::code::CodeRow;
use crate::text;
use crate::ui::{Group, InputType, Node};

/// The link strategy (recovery and verification only; it signs nobody up or in).
#[derive(Debug, Clone, Copy)]
pub struct Link;

impl super::Strategy for Link {
    fn id(&self) -> &'static str {
        "link"
    }
    fn recovery(&self) -> Option<&dyn super::RecoveryStrategy> {
        Some(self)
    }
    fn verification(&self) -> Option<&dyn super::VerificationStrategy> {
        Some(self)
    }
}

/// Registers the link method when `selfservice.methods.link.enabled`. It has no credential
/// type: a recovered session records `link_recovery` as its method, as in Kratos.
pub fn register(r: &mut super::Registry<'_>) {
    if r.config().selfservice.methods.link.enabled {
        r.strategy(std::sync::Arc::new(Link));
    }
}

/// Minimum time between two links of one flow.
pub const RESEND_COOLDOWN: Duration = Duration::from_secs(30);

/// Length of a token (Kratos: 32 alphanumeric characters).
pub const TOKEN_LEN: usize = 32;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Regain access.
    Recovery,
    /// Prove an address.
    Verification,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Recovery => "recovery_link",
            Purpose::Verification => "verification_link",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Purpose::Recovery => "self-service/recovery",
            Purpose::Verification => "self-service/verification",
        }
    }
}

/// A new token: [`TOKEN_LEN`] characters of `[A-Za-z0-9]`, uniform (rejection sampling).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(TOKEN_LEN);
    while out.len() < TOKEN_LEN {
        for b in random_bytes(64) {
            // 248 = 4 × 62: bytes at or above it would bias the first characters.
            if b < 248 && out.len() < TOKEN_LEN {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// Keyed hash of a token, bound to its flow.
pub fn hash(env: &Env, flow_id: Uuid, token: &str) -> String {
    let secret = env.hash_key.expose();
    match Hmac::<Sha256>::new_from_slice(format!("latch link token\0{secret}").as_bytes()) {
        Ok(mut mac) => {
            mac.update(flow_id.as_bytes());
            mac.update(token.trim().as_bytes());
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The link for a token: `<public>/self-service/<recovery|verification>?flow=<id>&token=<token>`.
pub fn url(env: &Env, purpose: Purpose, flow_id: Uuid, token: &str) -> String {
    let mut u = url::Url::parse(&env.public_url(purpose.path())).unwrap_or_else(|_| env.public_base.clone());
    u.query_pairs_mut()
        .append_pair("flow", &flow_id.to_string())
        .append_pair("token", token);
    u.to_string()
}

/// The email input and the submit button of the first screen (Kratos'
/// `PopulateRecoveryMethod` / `PopulateVerificationMethod`).
pub fn address_nodes(flow: &mut Flow, email: &str) {
    flow.ui.set_csrf(String::new());
    let mut node = Node::input("email", InputType::Email, Group::Link)
        .required()
        .label(text::label_email());
    if !email.is_empty() {
        node = node.value(email);
    }
    flow.ui.upsert(node);
    if !flow
        .ui
        .nodes
        .iter()
        .any(|n| n.group == Group::Link && n.id() == "method")
    {
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Link)
                .value("link")
                .label(text::label_continue()),
        );
    }
}

fn cooldown_message(seconds: i64) -> text::UiText {
    text::validation_generic(&format!(
        "An email was sent moments ago. Please wait {seconds} seconds before requesting another one."
    ))
}

/// A row for a new token of `flow`.
fn row(
    env: &Env,
    flow_id: Uuid,
    purpose: Purpose,
    identity_id: Option<Uuid>,
    address: &str,
    token: &str,
    lifespan: Duration,
) -> CodeRow {
    let now = env.clock.now();
    CodeRow {
        id: Uuid::new_v4(),
        flow_id,
        identity_id,
        purpose: purpose.as_str().into(),
        address: address.to_string(),
        address_type: "email".into(),
        code_hash: hash(env, flow_id, token),
        expires_at: now + lifespan,
        used_at: None,
        created_at: now,
    }
}

/// Creates a link for `address` in `flow` and queues its email in the same transaction.
/// For an unknown address (`identity` is `None`) the same work is done, and the mail is the
/// "unknown address" one when `notify_unknown_recipients` is on (Kratos), else discarded
/// before the commit, as the code method does.
pub async fn issue(
    env: &Env,
    flow: &Flow,
    purpose: Purpose,
    identity: Option<&crate::identity::Identity>,
    address: &str,
    notify_unknown: bool,
) -> Result<(), FlowError> {
    let now = env.clock.now();
    if let Some(last) = env.store.last_code_at(flow.id).await? {
        let wait = (last + RESEND_COOLDOWN) - now;
        if wait.is_positive() {
            return Err(FlowError::message(cooldown_message(wait.whole_seconds().max(1))));
        }
    }
    // Counted for unknown addresses too, so the answer does not tell them apart.
    crate::limits::code_mail(env, address).await?;
    let token = generate();
    let lifespan = env.config.selfservice.methods.link.config.lifespan;
    let row = row(env, flow.id, purpose, identity.map(|i| i.id), address, &token, lifespan);
    let link = url(env, purpose, flow.id, &token);
    let mut data = json!({
        "to": address,
        "expires_in_minutes": lifespan.as_secs() / 60,
        "request_url": flow.request_url,
    });
    if let Some(t) = flow.transient_payload.clone() {
        data["transient_payload"] = t;
    }
    if let Some(i) = identity {
        data["identity"] = json!({"id": i.id, "traits": i.traits});
    }
    let (valid, invalid) = match purpose {
        Purpose::Recovery => ("recovery_valid", "recovery_invalid"),
        Purpose::Verification => ("verification_valid", "verification_invalid"),
    };
    let url_key = match purpose {
        Purpose::Recovery => "recovery_url",
        Purpose::Verification => "verification_url",
    };
    match identity {
        Some(_) => {
            data[url_key] = json!(link);
            crate::courier::send_with_code(env, &row, valid, address, &data).await?;
        }
        None if notify_unknown => {
            crate::courier::send_with_code(env, &row, invalid, address, &data).await?;
        }
        None => {
            data[url_key] = json!(link);
            crate::courier::discard_with_code(env, &row, valid, address, &data).await?;
        }
    }
    Ok(())
}

/// Stores a new recovery flow and the token of an administrator's recovery link for it in one
/// transaction (`POST /admin/recovery/link`; no mail). Returns the token.
pub async fn issue_admin(env: &Env, flow: &Flow, identity_id: Uuid, lifespan: Duration) -> Result<String, FlowError> {
    let token = generate();
    let row = row(env, flow.id, Purpose::Recovery, Some(identity_id), "", &token, lifespan);
    env.store.insert_flow_with_code(flow, &row).await?;
    Ok(token)
}

/// What a token turned out to be.
#[derive(Debug)]
pub enum Redeemed {
    /// Valid: consumed now, by this request alone.
    Valid(CodeRow),
    /// Unknown, of another flow, for an unknown address, or already used.
    Invalid,
    /// Known but past its lifespan (consumed all the same, as Kratos).
    Expired(OffsetDateTime),
}

/// Looks a token up among the flow's unused ones (comparing keyed hashes in constant time) and
/// uses it up. The `UPDATE … WHERE used_at IS NULL` decides between concurrent requests.
pub async fn redeem(env: &Env, flow: &Flow, purpose: Purpose, token: &str) -> Result<Redeemed, FlowError> {
    let token = token.trim();
    if token.len() != TOKEN_LEN {
        return Ok(Redeemed::Invalid);
    }
    let want = hash(env, flow.id, token);
    let found = env
        .store
        .unused_codes(flow.id)
        .await?
        .into_iter()
        .filter(|c| c.purpose == purpose.as_str())
        .find(|c| ct_eq(c.code_hash.as_bytes(), want.as_bytes()));
    let Some(c) = found.filter(|c| c.identity_id.is_some()) else {
        return Ok(Redeemed::Invalid);
    };
    let now = env.clock.now();
    if !env.store.use_code(c.id, now).await? {
        return Ok(Redeemed::Invalid);
    }
    if c.expires_at <= now {
        return Ok(Redeemed::Expired(c.expires_at));
    }
    Ok(Redeemed::Valid(c))
}

/// A non-blank string field of a submission.
pub(super) fn submitted<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    super::field(body, name).filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_alphanumerics_and_vary() {
        let a = generate();
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        let distinct: std::collections::HashSet<String> = (0..50).map(|_| generate()).collect();
        assert_eq!(distinct.len(), 50);
    }
}
