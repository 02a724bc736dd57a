//! The settings hooks about address changes: `verify_new_address` (Kratos:
//! `hook.VerifyNewAddress`, a pre-persist hook of `selfservice.flows.settings.after.profile`)
//! and `notify_previous_addresses` (Kratos: `hook.NotifyPreviousAddresses`, post-persist).
//!
//! `verify_new_address`: a profile change that adds or replaces a verifiable address is not
//! stored. A verification flow for the new address is started (the code or link is mailed to
//! it) and the proposed traits wait in `identity_pending_address_changes` (one per identity: a
//! newer change replaces an older one). The settings flow answers like Kratos: browsers are
//! sent to the verification UI (303), SPAs and native apps get the settings flow (200, state
//! unchanged) with a `show_verification_ui` item in `continue_with`. When the code or link is
//! redeemed, the traits are stored with the new address verified, in one transaction that also
//! checks that the session which asked is still active and that the identity did not change
//! meanwhile (`strategy::address_change`); then the settings hooks that follow a profile change
//! run (`after_settings::after_applied`). Two addresses changed at once are refused with 4050002; an address
//! another identity holds with 4000007.
//!
//! `notify_previous_addresses` and the hooks that run once a deferred change is applied live
//! in `after_settings.rs`.

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::common::Submission;
use super::hooks::has;
use super::respond::{self, Answer, Style};
use super::{Flow, FlowType, Service};
use crate::identity::Identity;
use crate::session::manager::Current;
use crate::store::pending::{PendingChange, traits_hash};
use crate::strategy::FlowError;
use crate::text;

/// The method whose list holds `verify_new_address` (Kratos' `settingsTypePendingTraitsChange`).
pub const PROFILE: &str = "profile";

/// Whether `verify_new_address` applies to a submission of `method`: it runs from the profile
/// method's own list only (Kratos reads pre-persist hooks from the method's list, never the
/// flow-wide one).
pub fn defers(deps: &Service, method: &str) -> bool {
    method == PROFILE
        && deps
            .config
            .selfservice
            .flows
            .settings
            .after
            .per_method
            .get(PROFILE)
            .is_some_and(|m| has(&m.hooks, "verify_new_address"))
}

/// Whether `proposed` has an address `original` does not (what `verify_new_address` defers).
pub fn adds_address(original: &Identity, proposed: &Identity) -> bool {
    !new_addresses(original, proposed).is_empty()
}

/// `(via, value)` of the addresses of `proposed` that `original` does not have.
fn new_addresses(original: &Identity, proposed: &Identity) -> Vec<(String, String)> {
    proposed
        .verifiable_addresses
        .iter()
        .filter(|p| {
            !original
                .verifiable_addresses
                .iter()
                .any(|o| o.via == p.via && o.value == p.value)
        })
        .map(|p| (p.via.clone(), p.value.clone()))
        .collect()
}

/// `verify_new_address`, before a profile change is stored; the caller has shown `proposed`
/// on the form already (Kratos hydrates it before its hooks run). `None`: nothing to defer,
/// store the change as usual. `Some(answer)`: the change waits for verification and this ends
/// the submission.
pub async fn verify_new_address(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    cur: &Current,
    proposed: &Identity,
) -> Result<Option<Answer>, FlowError> {
    let changed = new_addresses(&cur.identity, proposed);
    let Some((via, address)) = changed.first().cloned() else {
        return Ok(None);
    };
    if changed.len() > 1 {
        // Kratos answers JSON clients 200 with the flow here (not 400).
        flow.ui.add_message(text::settings_too_many_address_changes());
        flow.updated_at = deps.clock.now();
        deps.store.update_flow(flow).await?;
        return Ok(Some(answer(deps, flow, sub, None)));
    }
    if let Some(other) = deps.store.find_identity_by_address(true, &via, &address).await?
        && other.id != cur.identity.id
    {
        return Err(FlowError::message(text::duplicate_credentials()));
    }
    if !deps.config.selfservice.flows.verification.enabled {
        tracing::error!(
            "verify_new_address needs selfservice.flows.verification.enabled: the address change is refused"
        );
        return Err(FlowError::Internal(
            "verify_new_address without an enabled verification flow".into(),
        ));
    }
    let csrf = sub.csrf.or(sub.req.csrf_cookie);
    let path = format!("self-service/verification/{}", flow.flow_type.as_str());
    let mut vf =
        super::verification::create_for_address(deps, flow.flow_type, &path, flow.return_to.clone(), sub.req, csrf)
            .await?;
    let change = PendingChange {
        id: Uuid::new_v4(),
        identity_id: cur.identity.id,
        session_id: cur.session.id,
        settings_flow_id: flow.id,
        verification_flow_id: vf.id,
        via,
        address: address.clone(),
        original_traits_hash: traits_hash(&cur.identity.traits),
        proposed_traits: proposed.traits.clone(),
        created_at: deps.clock.now(),
    };
    deps.store.replace_pending_change(&change).await?;
    super::verification::send_proof(deps, &mut vf, &address).await?;

    let mut item = json!({"action": "show_verification_ui", "flow": {"id": vf.id, "verifiable_address": address}});
    let url = (vf.flow_type == FlowType::Browser).then(|| respond::ui_url_for(deps, &vf));
    if let Some(url) = &url {
        item["flow"]["url"] = json!(url);
    }
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    let mut res = answer(deps, flow, sub, Some(item));
    if sub.style == Style::Browser
        && let Some(url) = url
    {
        res = respond::redirect(&url, StatusCode::SEE_OTHER);
    }
    Ok(Some(res))
}

/// The settings flow as Kratos writes it from a pre-persist hook: 200 + flow (with
/// `continue_with`) for JSON clients, the settings UI for browsers.
fn answer(deps: &Service, flow: &Flow, sub: &Submission<'_>, item: Option<Value>) -> Answer {
    if sub.style == Style::Browser {
        return respond::redirect(&respond::ui_url_for(deps, flow), StatusCode::SEE_OTHER);
    }
    let mut f = flow.clone();
    if f.flow_type == FlowType::Api {
        f.ui.strip_js();
    }
    let mut body = respond::flow_json(&f, sub.csrf.as_ref());
    if let (Some(item), Some(o)) = (item, body.as_object_mut()) {
        o.insert("continue_with".into(), json!([item]));
    }
    respond::json(StatusCode::OK, body)
}
