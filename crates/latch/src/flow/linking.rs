//! Account linking (Kratos' "confirm with existing credential"): a social sign-up whose
//! email belongs to another identity becomes a login flow asking that identity's owner to
//! sign in (message 1010016). The pending credential waits in the login flow's internal
//! context; it is linked only after a login on that flow proves an existing credential of
//! the identity holding the colliding identifier. Kratos: `oidc/strategy.go HandleError`,
//! `populateAccountLinkingUI`, `login/hook.go maybeLinkCredentials`.

use http::StatusCode;
use serde_json::{Value, json};

use super::common::{Submission, new_flow};
use super::respond::{self, Answer, Style};
use super::{Flow, FlowKind, Service};
use crate::identity::Identity;
use crate::model::Aal;
use crate::session::AuthMethod;
use crate::store::StoreError;
use crate::strategy::{FlowError, LinkExisting};
use crate::text;
use crate::ui::{Group, InputType};

/// The internal-context key (Kratos' `registration_duplicate_credentials`).
const KEY: &str = "registration_duplicate_credentials";

/// What waits on the linking login flow, in Kratos' shape (`DuplicateCredentialsData`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Pending {
    #[serde(rename = "CredentialsType")]
    credentials_type: String,
    #[serde(rename = "CredentialsConfig")]
    credentials_config: Value,
    #[serde(rename = "DuplicateIdentifier")]
    duplicate_identifier: String,
}

/// Starts the linking login flow for a registration or login flow `from` whose sign-up hit
/// `link.duplicate_identifier`, and answers: browsers go to the login UI (303, with Kratos'
/// `no_org_ui=true`), JSON clients get the new login flow with 400.
pub(super) async fn start(
    deps: &Service,
    from: &Flow,
    sub: &Submission<'_>,
    link: &LinkExisting,
) -> Result<Answer, FlowError> {
    let mut lf = new_flow(deps, FlowKind::Login, from.flow_type, sub.req, from.return_to.clone());
    lf.csrf_hash = from.csrf_hash.clone();
    // Kratos keeps the URL the sign-up started from, and marks the flow as the method's.
    lf.request_url = from.request_url.clone();
    lf.active = Some(link.credentials_type.to_string());
    // A new login flow's nodes (`login::populate` for a flow without session).
    lf.ui.set_csrf(String::new());
    for s in deps.strategies.login() {
        s.populate(deps, &mut lf, None);
    }
    lf.ui.sort_login();
    let pending = Pending {
        credentials_type: link.credentials_type.to_string(),
        credentials_config: link.credentials_config.clone(),
        duplicate_identifier: link.duplicate_identifier.clone(),
    };
    lf.internal_set(KEY, json!(pending));
    linking_ui(deps, &mut lf, link);
    deps.store.insert_flow(&lf).await?;
    Ok(match sub.style {
        Style::Browser => {
            let to = format!("{}&no_org_ui=true", respond::ui_url_for(deps, &lf));
            respond::redirect(&to, StatusCode::SEE_OTHER)
        }
        _ => respond::json(StatusCode::BAD_REQUEST, respond::flow_json(&lf, sub.csrf.as_ref())),
    })
}

/// Kratos' `populateAccountLinkingUI`: the provider just used is hidden (and, with
/// `login_hints`, every way in the account does not have), buttons say "Sign in and link" /
/// "Confirm with …", the identifier is fixed to the colliding one, and 1010016 explains.
fn linking_ui(deps: &Service, lf: &mut Flow, link: &LinkExisting) {
    let hints = deps.config.selfservice.flows.registration.login_hints;
    let nodes = std::mem::take(&mut lf.ui.nodes);
    for mut n in nodes {
        let Some(label) = n.meta.label.as_ref() else {
            lf.ui.nodes.push(n);
            continue;
        };
        if n.group == Group::Default {
            lf.ui.nodes.push(n);
            continue;
        }
        if n.group == Group::Oidc {
            let pid = label.context.get("provider_id").and_then(Value::as_str).unwrap_or("");
            if pid == link.provider_id || (hints && !link.available_providers.iter().any(|p| p == pid)) {
                continue;
            }
        }
        match label.id {
            1_010_001 => n.meta.label = Some(text::login_and_link()),
            1_010_002 => {
                let p = label
                    .context
                    .get("provider")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                n.meta.label = Some(text::login_with_and_link(&p));
            }
            _ => {}
        }
        if !hints || link.available_credential_types.iter().any(|t| t == n.group.as_str()) {
            lf.ui.nodes.push(n);
        }
    }
    if let Some(n) = lf.ui.get_mut("identifier")
        && let Some(a) = n.input_attributes_mut()
    {
        a.r#type = InputType::Hidden;
    }
    lf.ui.set_value("identifier", json!(link.duplicate_identifier));
    lf.ui.reset_messages();
    lf.ui.add_message(text::login_link_existing(
        &link.duplicate_identifier,
        &link.provider_label,
        deps.config.flow_ui_url("login").as_str(),
        &link.available_credential_types,
        &link.available_providers,
    ));
}

/// After a login on `flow` proved `identity` at `aal`: links the credential waiting on the
/// flow, if any. Returns the updated (stored) identity and the session method entry the
/// linked credential adds (Kratos' `CompletedLogin`). Nothing is linked while the session
/// would still need a second factor, or when `identity` does not hold the colliding
/// identifier (4010009).
pub(super) async fn complete(
    deps: &Service,
    flow: &mut Flow,
    identity: &Identity,
    aal: Aal,
) -> Result<Option<(Identity, AuthMethod)>, FlowError> {
    let Some(raw) = flow.internal_get(KEY).filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let pending: Pending = serde_json::from_value(raw.clone())
        .map_err(|e| FlowError::Internal(format!("the pending credential to link is unreadable: {e}")))?;
    let satisfied = deps.config.session.whoami.required_aal == crate::config::RequiredAal::Aal1
        || aal == Aal::Aal2
        || deps.credentials.available_aal(&deps.config, identity) != Aal::Aal2;
    if !satisfied {
        return Ok(None);
    }
    let holds = identity
        .credentials
        .values()
        .any(|c| c.identifiers.contains(&pending.duplicate_identifier));
    if !holds {
        return Err(FlowError::message(text::login_linked_credentials_mismatch()));
    }
    let strategy = deps
        .strategies
        .login()
        .find(|s| s.id() == pending.credentials_type)
        .ok_or_else(|| FlowError::Internal(format!("no enabled {} method to link with", pending.credentials_type)))?;
    let mut updated = identity.clone();
    let provider = strategy.link(deps, &mut updated, &pending.credentials_config)?;
    match deps.store.update_identity(&updated).await {
        Ok(()) => {}
        // The provider account was linked to someone else meanwhile.
        Err(StoreError::Conflict(_)) => return Err(FlowError::message(text::duplicate_credentials())),
        Err(e) => return Err(e.into()),
    }
    if let Some(o) = flow.internal.as_object_mut() {
        o.remove(KEY);
    }
    let method = AuthMethod {
        method: pending.credentials_type,
        aal: Aal::Aal1,
        completed_at: deps.clock.now(),
        provider,
    };
    Ok(Some((updated, method)))
}
