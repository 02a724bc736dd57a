//! Settings flows: change the profile (traits) or a method's credentials (passkeys, …) with
//! a privileged session. Kratos: `selfservice/flow/settings`; the parts (`profile`, credential
//! methods) implement [`crate::strategy::SettingsStrategy`].

use super::respond::Answer;
use http::StatusCode;
use serde_json::json;

use super::Flow;
use super::Service;
use super::common::Submission;
use super::respond::{self, Style};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::session::manager::Current;
use crate::store::StoreError;
use crate::strategy::{Cx, FlowError};
use crate::text;

/// The settings form: each settings part (the profile, credential methods) for `identity`.
pub fn populate(deps: &Service, flow: &mut Flow, identity: &Identity) {
    flow.ui.nodes.clear();
    flow.ui.set_csrf(String::new());
    for s in deps.strategies.settings() {
        s.populate(deps, flow, identity);
    }
    // The state is not touched: `show_form` from creation, `success` once saved, and (as in
    // Kratos) a failed submission after a save leaves `success` in place.
}

/// 403 `session_refresh_required` (JSON) pointing at a refresh login that returns to this
/// flow's submit URL (as Kratos), where a paused browser change resumes (`flow::continuity`).
pub fn refresh_required(deps: &Service, flow: &Flow) -> ApiError {
    let back = deps.public_url(&format!("self-service/settings?flow={}", flow.id));
    let to = format!(
        "{}?refresh=true&return_to={}",
        deps.public_url("self-service/login/browser"),
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    ApiError::new(StatusCode::FORBIDDEN)
        .id("session_refresh_required")
        .reason("The login session is too old and thus not allowed to update these fields. Please re-authenticate.")
        .message("The requested action was forbidden")
        .details(json!({"redirect_browser_to": to}))
        .extra("redirect_browser_to", json!(to))
}

/// Whether the session authenticated recently enough for sensitive changes.
pub fn privileged(deps: &Service, cur: &Current) -> bool {
    let max = deps.config.selfservice.flows.settings.privileged_session_max_age;
    cur.session.authenticated_at + max > deps.clock.now()
}

/// What a settings `web_hook` sees (built per run: the form changes in between).
fn hook_subject<'a>(flow: &'a Flow, sub: &'a Submission<'_>, cur: &'a Current) -> super::web_hook::Subject<'a> {
    super::web_hook::Subject {
        flow,
        req: sub.req,
        body: Some(&sub.body),
        session: Some((&cur.session, &cur.identity)),
    }
}

/// Handles `POST /self-service/settings?flow=` (the session is checked by the engine):
/// picks the method (`profile`, or a settings strategy such as `passkey`), requires a
/// privileged session, stores the changed identity and shows the flow with its success.
pub async fn submit(deps: &Service, flow: &mut Flow, sub: &Submission<'_>, cur: &Current) -> Result<Answer, FlowError> {
    let method = crate::strategy::method_of(&sub.body);
    let found = if method.is_empty() {
        deps.strategies.settings().find(|s| s.claims(&sub.body))
    } else {
        deps.strategies.settings().find(|s| s.id() == method)
    };
    let Some(strategy) = found else {
        return Err(FlowError::message(text::settings_no_strategy()));
    };
    strategy.check(&sub.body)?;
    if !privileged(deps, cur) {
        return Err(FlowError::RefreshRequired);
    }
    let cx = Cx {
        env: deps,
        client: &sub.client,
    };
    if let Some(to) = strategy.leaves_for(&cx, flow, &sub.body, &cur.identity).await? {
        flow.updated_at = deps.clock.now();
        deps.store.update_flow(flow).await?;
        return Ok(respond::external(&to, sub.style));
    }
    let mut identity = strategy.submit(&cx, flow, &sub.body, &cur.identity).await?;
    let hooks = deps
        .config
        .selfservice
        .flows
        .settings
        .after
        .hooks_running(method, super::hooks::SETTINGS_AFTER);
    // `web_hook`s that parse their answer see the changed identity before it is written and may
    // change or refuse it; the others run once it is written (Kratos' pre-/post-persist split).
    // They run before `verify_new_address`, so a change it defers has passed them.
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::PrePersist,
        &hook_subject(flow, sub, cur),
        super::web_hook::Who::Changed(&mut identity),
    )
    .await?;
    if super::address_change::defers(deps, strategy.id())
        && super::address_change::adds_address(&cur.identity, &identity)
    {
        // The form shows what was submitted (Kratos hydrates it before its hooks run).
        populate(deps, flow, &identity);
        if let Some(answer) = super::address_change::verify_new_address(deps, flow, sub, cur, &identity).await? {
            return Ok(answer);
        }
    }
    // `response.ignore` web hooks are queued in the transaction that writes the identity.
    let event = super::web_hook::event(super::FlowKind::Settings, "after");
    let outbox = super::web_hook::queue(deps, hooks, &event, &hook_subject(flow, sub, cur), Some(&identity)).await;
    match deps.store.update_identity_with(&identity, &outbox).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            populate(deps, flow, &identity);
            return Err(FlowError::message(text::duplicate_credentials()));
        }
        Err(e) => return Err(e.into()),
    }
    // Enrolling a second factor proves it: the session that did it gains it at `aal2`, as in
    // Kratos (`SessionAddAuthenticationMethods` in its TOTP and lookup strategies).
    let kind = strategy.id();
    let enrolled_second_factor = deps
        .credentials
        .get(kind)
        .is_some_and(|c| c.factor() == crate::model::credential::Factor::Second)
        && !cur.identity.credentials.contains_key(kind)
        && identity.credentials.contains_key(kind);
    if enrolled_second_factor {
        let now = deps.clock.now();
        let mut session = cur.session.clone();
        session.methods.push(crate::session::AuthMethod {
            method: kind.to_string(),
            aal: crate::model::Aal::Aal2,
            completed_at: now,
            provider: None,
        });
        session.aal = crate::session::compute_aal(&session.methods);
        deps.store.update_session_auth(&session, now).await?;
    }
    super::revoke::revoke_active_sessions(deps, hooks, identity.id, cur.session.id).await?;
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::PostPersist,
        &hook_subject(flow, sub, cur),
        super::web_hook::Who::Shown(&identity),
    )
    .await?;
    let next = super::hooks::after_settings(deps, flow, sub, &identity, hooks).await;
    super::after_settings::notify_previous_addresses(deps, hooks, &cur.identity, &identity).await;
    populate(deps, flow, &identity);
    if flow.flow_type == super::FlowType::Api {
        flow.ui.strip_js();
    }
    flow.ui.add_message(text::settings_saved());
    // Kratos never sets `active` on settings flows (only the OIDC strategy does, which Latch
    // does not have): the method saved is not recorded on the flow.
    flow.state = crate::model::flow::FlowState::Success;
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    let identity_json = identity.to_json(&deps.schema_url(&identity.schema_id), &Default::default());
    flow.rendered_identity = Some(identity_json.clone());
    // Kratos (`settings/hook.go`): the flow's return_to, else the method's or the flow's
    // `after.default_browser_return_url`, else the settings UI showing this flow.
    let to = flow.return_to.clone().unwrap_or_else(|| {
        deps.config
            .selfservice
            .flows
            .settings
            .after
            .return_url_for(method)
            .map(|u| u.to_string())
            .unwrap_or_else(|| respond::ui_url_for(deps, flow))
    });
    Ok(match sub.style {
        Style::Browser => respond::redirect(&to, StatusCode::SEE_OTHER),
        style => {
            let mut body = respond::flow_json(flow, sub.csrf.as_ref());
            if let Some(i) = body.as_object_mut() {
                i.insert("identity".into(), identity_json);
                // Browser flows answered as JSON (SPAs) are told where to go, as in Kratos;
                // UI kits (Ory Elements) follow it. Native apps get the flow alone.
                let mut items = vec![];
                if style == Style::Spa {
                    items.push(json!({"action": "redirect_browser_to", "redirect_browser_to": to}));
                }
                items.extend(next.continue_with);
                if !items.is_empty() {
                    i.insert("continue_with".into(), json!(items));
                }
            }
            respond::json(StatusCode::OK, body)
        }
    })
}
