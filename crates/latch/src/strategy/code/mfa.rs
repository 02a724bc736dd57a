//! Codes as a second factor (`selfservice.methods.code.mfa_enabled`): an `aal=aal2` login
//! offers one "Send code to {address}" button per code address of the signed-in identity;
//! the code mailed there steps the session up to `aal2`. Kratos:
//! `selfservice/strategy/code/{strategy.go,strategy_login.go,strategy_mfa.go}`.
//!
//! The identity is the session's, so there is nothing to enumerate: an address that is not
//! one of its code addresses is refused plainly. Codes are the login codes of the passwordless
//! mode (hashed, single use, budgeted per flow and per address, resend cooldown).

use serde_json::{Value, json};

use super::{Purpose, issue, verify};
use crate::deps::Env;
use crate::identity::{Identity, State};
use crate::model::Aal;
use crate::model::flow::Flow;
use crate::strategy::{FlowError, LoginOutcome, field};
use crate::text;
use crate::ui::{Group, InputType, Node};

/// Whether codes are a second factor under this configuration.
pub fn enabled(config: &crate::config::Config) -> bool {
    let c = &config.selfservice.methods.code;
    c.enabled && c.mfa_enabled
}

/// An address a second-factor code can go to: `(channel, address)`.
pub type Address = (String, String);

/// The email addresses of the identity's `code` credential (the traits marked
/// `"code": {"identifier": true}`). Latch has no SMS courier, so `sms` addresses (which Kratos
/// would text) are left out: they are neither offered nor counted as a second factor.
fn credential_addresses(identity: &Identity) -> Vec<Address> {
    identity
        .credentials
        .get("code")
        .and_then(|c| c.config.get("addresses"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    let to = a.get("address").and_then(Value::as_str).filter(|s| !s.is_empty())?;
                    let via = a.get("channel").and_then(Value::as_str).unwrap_or("email");
                    (via == "email").then(|| (via.to_string(), to.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The addresses a second-factor code can go to: the `code` credential's, sorted. Without
/// such a credential (or with no address in it), `missing_credential_fallback_enabled` falls
/// back to the identity's verifiable (email) addresses, as Kratos' `FindCodeAddressCandidates`.
pub fn addresses(config: &crate::config::Config, identity: &Identity) -> Vec<Address> {
    let from_credential = credential_addresses(identity);
    let mut out = if !from_credential.is_empty() {
        from_credential
    } else if config
        .selfservice
        .methods
        .code
        .config
        .missing_credential_fallback_enabled
    {
        identity
            .verifiable_addresses
            .iter()
            .filter(|a| a.via == "email" && !a.value.is_empty())
            .map(|a| (a.via.clone(), a.value.clone()))
            .collect()
    } else {
        vec![]
    };
    out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out.dedup();
    out
}

/// Kratos' `CountActiveMultiFactorCredentials` of the code strategy: with `mfa_enabled`, an
/// identity whose `code` credential holds an (email) address has a second factor, whether or
/// not the address was verified; the fallback does not count.
pub fn is_second_factor(config: &crate::config::Config, identity: &Identity) -> bool {
    enabled(config) && !credential_addresses(identity).is_empty()
}

/// The `aal2` form: one submit button named `address` per address (no `method` field: Kratos
/// recognises the button by its name).
pub fn populate(env: &Env, flow: &mut Flow, signed_in: Option<&Identity>) {
    let Some(identity) = signed_in else {
        return;
    };
    for (via, to) in addresses(&env.config, identity) {
        flow.ui.append(
            Node::input("address", InputType::Submit, Group::Code)
                .value(to.as_str())
                .label(text::login_send_code_to(&via, &to)),
        );
    }
}

/// The form once a code was sent: the address kept as a hidden `identifier` (so a resend
/// knows where to), the code input, continue and resend. Kratos: `populateEmailSentFlow`.
fn sent_nodes(flow: &mut Flow, address: &str) {
    flow.ui.nodes.retain(|n| n.group == Group::Default);
    flow.ui
        .append(Node::input("identifier", InputType::Hidden, Group::Code).value(address));
    super::append_code_inputs(flow, text::label_login_code());
}

/// Kratos' `FastLogin2FA`: when an `aal2` flow is created for an identity whose only second
/// factor is a code to exactly one address (no app, security key or backup codes), the code
/// is mailed at once and the flow starts in `sent_email`. Returns whether it was sent.
pub async fn fast_send(env: &Env, flow: &mut Flow, identity: &Identity) -> Result<bool, FlowError> {
    if !enabled(&env.config) || flow.requested_aal != Aal::Aal2 || flow.state != "choose_method" {
        return Ok(false);
    }
    let known = addresses(&env.config, identity);
    let [(_, address)] = known.as_slice() else {
        return Ok(false);
    };
    let counts = is_second_factor(&env.config, identity)
        || env
            .config
            .selfservice
            .methods
            .code
            .config
            .missing_credential_fallback_enabled;
    let others = env.credentials.second_factors_besides(&env.config, identity, "code");
    if !counts || others {
        return Ok(false);
    }
    send(env, flow, identity, address).await?;
    Ok(true)
}

/// Mails a code to `address` (one of the identity's) and shows the code form.
async fn send(env: &Env, flow: &mut Flow, identity: &Identity, address: &str) -> Result<(), FlowError> {
    let data = json!({"identity": {"id": identity.id, "traits": identity.traits}, "request_url": flow.request_url});
    issue(env, flow, Purpose::Login, Some(identity.id), address, true, data, None).await?;
    flow.internal_set("code_address", json!(address));
    sent_nodes(flow, address);
    flow.ui.add_message(text::login_code_sent_to_known_address());
    flow.state = crate::model::flow::FlowState::SentEmail;
    flow.active = Some("code".into());
    Ok(())
}

/// Sends a code (first submission, or `resend=code`) or checks one (`code`).
pub async fn submit(env: &Env, flow: &mut Flow, body: &Value) -> Result<LoginOutcome, FlowError> {
    if !enabled(&env.config) || flow.requested_aal != Aal::Aal2 {
        return Err(FlowError::message(text::login_no_strategy()));
    }
    // The engine has checked that the request carries the session the flow was made for.
    let identity = match flow.identity_id {
        Some(id) => env.store.get_identity(id).await?,
        None => None,
    };
    let Some(identity) = identity else {
        return Err(FlowError::message(text::no_code_user()));
    };
    let known = addresses(&env.config, &identity);
    if known.is_empty() {
        return Err(FlowError::message(text::no_code_user()));
    }
    let resend = field(body, "resend") == Some("code");
    let code = field(body, "code").filter(|c| !c.trim().is_empty());
    let stored = flow
        .internal_get("code_address")
        .and_then(Value::as_str)
        .map(str::to_string);
    if code.is_none() || resend {
        if flow.state == "sent_email" && !resend && field(body, "address").is_none() {
            return Err(FlowError::on_node("code", text::required("code")));
        }
        let wanted = field(body, "address")
            .or_else(|| field(body, "identifier"))
            .map(super::login::normalize)
            .filter(|a| !a.is_empty())
            .or(stored);
        let address = match wanted {
            Some(w) => known.iter().find(|(_, to)| *to == w).map(|(_, to)| to.clone()),
            None if known.len() == 1 => Some(known[0].1.clone()),
            None => return Err(FlowError::on_node("address", text::required("address"))),
        };
        let Some(address) = address else {
            return Err(FlowError::message(text::no_code_user()));
        };
        send(env, flow, &identity, &address).await?;
        return Ok(LoginOutcome::Continue);
    }
    let Some(address) = stored else {
        return Err(FlowError::message(text::login_code_invalid()));
    };
    let row = verify(env, flow, Purpose::Login, &address, code.unwrap_or("")).await?;
    if row.identity_id != Some(identity.id) {
        return Err(FlowError::message(text::login_code_invalid()));
    }
    // Read again: the identity may have changed while the code was on its way.
    let Some(mut identity) = env.store.get_identity(identity.id).await? else {
        return Err(FlowError::message(text::login_code_invalid()));
    };
    if identity.state != State::Active {
        return Err(FlowError::message(text::identity_disabled()));
    }
    // Receiving the code proves control of the address (Kratos verifies it too).
    if identity.mark_address_verified(&row.address, env.clock.now()) {
        env.store.update_identity(&identity).await?;
    }
    flow.active = Some("code".into());
    Ok(LoginOutcome::Authenticated {
        identity: Box::new(identity),
        method: "code",
        aal: Aal::Aal2,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::{Credential, CredentialsType, VerifiableAddress};

    fn config(extra: Value) -> crate::config::Config {
        let mut doc = json!({"selfservice": {"methods": {"code": {"mfa_enabled": true}}}});
        if let (Some(code), Some(more)) = (doc.pointer_mut("/selfservice/methods/code"), extra.as_object()) {
            for (k, v) in more {
                code[k] = v.clone();
            }
        }
        crate::config::Config::from_value(doc, true).unwrap()
    }

    fn identity(addresses: Value) -> Identity {
        let mut i = crate::identity::manager::new_identity("default", json!({}), &crate::clock::SystemClock);
        let now = i.created_at;
        i.credentials.insert(
            CredentialsType::new("code"),
            Credential {
                id: uuid::Uuid::new_v4(),
                kind: CredentialsType::new("code"),
                identifiers: vec![],
                config: json!({"addresses": addresses}),
                version: 1,
                created_at: now,
                updated_at: now,
            },
        );
        i
    }

    #[test]
    fn email_addresses_of_the_code_credential_are_a_second_factor_only_with_mfa() {
        let i = identity(json!([
            {"channel": "email", "address": "b@example.com"},
            {"channel": "sms", "address": "+15551234567"},
            {"channel": "email", "address": "a@example.com"}
        ]));
        let on = config(json!({}));
        assert!(is_second_factor(&on, &i));
        assert_eq!(
            addresses(&on, &i),
            vec![
                ("email".to_string(), "a@example.com".to_string()),
                ("email".to_string(), "b@example.com".to_string())
            ]
        );
        let off = config(json!({"mfa_enabled": false}));
        assert!(!is_second_factor(&off, &i));
        let texts_only = identity(json!([{"channel": "sms", "address": "+15551234567"}]));
        assert!(!is_second_factor(&on, &texts_only), "Latch cannot text a code");
    }

    #[test]
    fn the_fallback_offers_verifiable_addresses_but_does_not_count() {
        let mut i = identity(json!([]));
        let now = i.created_at;
        i.verifiable_addresses.push(VerifiableAddress {
            id: uuid::Uuid::new_v4(),
            via: "email".into(),
            value: "v@example.com".into(),
            verified: false,
            verified_at: None,
            status: "pending".into(),
            created_at: now,
            updated_at: now,
        });
        let strict = config(json!({}));
        assert!(addresses(&strict, &i).is_empty());
        let fallback = config(json!({"config": {"missing_credential_fallback_enabled": true}}));
        assert_eq!(
            addresses(&fallback, &i),
            vec![("email".to_string(), "v@example.com".to_string())]
        );
        assert!(!is_second_factor(&fallback, &i));
    }
}
