//! Registration flows: the `profile_first` (two steps) and `unified` styles, the profile
//! step, persistence and the after-registration hooks. Kratos: `selfservice/flow/registration`.

use super::respond::Answer;
use serde_json::{Value, json};

use super::Flow;
use super::Service;
use super::common::Submission;
use super::respond::{self};
use crate::identity::Identity;
use crate::store::StoreError;
use crate::strategy::shared::is_unified;
use crate::strategy::{Cx, FlowError, RegistrationOutcome, RegistrationStep};
use crate::text;
use crate::ui::{Group, InputType, trait_nodes};

fn schema_order(deps: &Service) -> Vec<String> {
    deps.schemas
        .default_schema()
        .map(|s| s.property_order.clone())
        .unwrap_or_default()
}

/// The first screen: traits (with `values` filled in) and the methods of that step — every
/// method in the unified style, the profile method's button in `profile_first`.
pub fn populate_initial(deps: &Service, flow: &mut Flow, values: Option<&Value>) {
    flow.ui.nodes.clear();
    flow.ui.set_csrf(String::new());
    if let Some(schema) = deps.schemas.default_schema() {
        for n in trait_nodes(&schema.raw, Group::Default, "traits", values) {
            flow.ui.upsert(n);
        }
    }
    let step = if is_unified(deps) {
        RegistrationStep::Unified
    } else {
        RegistrationStep::Profile
    };
    for s in deps.strategies.registration().filter(|s| s.shows_on(step)) {
        s.populate(deps, flow, step);
    }
    flow.ui.sort_registration(&schema_order(deps));
}

/// The second `profile_first` screen: traits fixed (hidden) and the credential methods.
fn populate_credential_selection(deps: &Service, flow: &mut Flow, traits: &Value) {
    flow.ui.nodes.clear();
    flow.ui.set_csrf(String::new());
    if let Some(schema) = deps.schemas.default_schema() {
        for mut n in trait_nodes(&schema.raw, Group::Default, "traits", Some(traits)) {
            if let Some(a) = n.input_attributes_mut() {
                a.r#type = InputType::Hidden;
            }
            flow.ui.upsert(n);
        }
    }
    let step = RegistrationStep::CredentialSelection;
    for s in deps.strategies.registration().filter(|s| s.shows_on(step)) {
        s.populate(deps, flow, step);
    }
    flow.ui.sort_registration(&schema_order(deps));
}

/// Handles `POST /self-service/registration?flow=`.
pub async fn submit(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    if flow.internal_get("completed") == Some(&json!(true)) {
        return Err(FlowError::message(text::validation_generic(
            "The registration flow was already completed successfully and can not be retried.",
        )));
    }
    if sub.current.is_some() {
        return Err(FlowError::SessionAlreadyAvailable);
    }
    let method = crate::strategy::method_of(&sub.body);
    let Some(strategy) = deps.strategies.registration().find(|s| s.id() == method) else {
        return Err(FlowError::message(text::registration_no_strategy()));
    };
    // Keep what the person typed if the submission fails.
    if let Some(t) = sub.body.get("traits") {
        for (k, v) in crate::strategy::shared::flatten("traits", t) {
            flow.ui.set_value(&k, v);
        }
    }
    let cx = Cx {
        env: deps,
        client: &sub.client,
    };
    match strategy.submit(&cx, flow, &sub.body).await? {
        RegistrationOutcome::Continue => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(respond::rerender_step(deps, flow, sub.style, sub.csrf.as_ref()))
        }
        RegistrationOutcome::Show(step) => {
            match step {
                RegistrationStep::CredentialSelection => {
                    let traits = flow.internal_get("traits").cloned().unwrap_or_else(|| json!({}));
                    populate_credential_selection(deps, flow, &traits);
                }
                RegistrationStep::Profile | RegistrationStep::Unified => {
                    let values = flow.internal.as_object_mut().and_then(|o| o.remove("traits"));
                    populate_initial(deps, flow, values.as_ref());
                }
            }
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(respond::rerender_step(deps, flow, sub.style, sub.csrf.as_ref()))
        }
        RegistrationOutcome::RedirectExternal(to) => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(respond::external(&to, sub.style))
        }
        RegistrationOutcome::Create { identity, method } => create(deps, flow, sub, *identity, method).await,
        RegistrationOutcome::SignIn { identity, method } => {
            let mut login = super::common::switched(deps, flow, super::FlowKind::Login, sub).await?;
            super::signin::success(deps, &mut login, sub, &identity, method, crate::model::Aal::Aal1).await
        }
        RegistrationOutcome::LinkExisting(link) => super::linking::start(deps, flow, sub, &link).await,
    }
}

/// Stores `identity`, runs the after-registration hooks and answers (also used by a login
/// that became a registration).
pub(super) async fn create(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    mut identity: Identity,
    method: &str,
) -> Result<Answer, FlowError> {
    let hooks = deps
        .config
        .selfservice
        .flows
        .registration
        .after
        .hooks_running(method, super::hooks::REGISTRATION_AFTER);
    // `web_hook`s that parse their answer run before the identity is written (they may change
    // or refuse it); the others after (Kratos' pre-/post-persist split).
    let subject = super::web_hook::Subject {
        flow,
        req: sub.req,
        body: Some(&sub.body),
        session: None,
    };
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::PrePersist,
        &subject,
        super::web_hook::Who::Changed(&mut identity),
    )
    .await?;
    // `response.ignore` web hooks are queued in the transaction that writes the identity
    // (rendered before it, with the identity as written).
    let event = super::web_hook::event(super::FlowKind::Registration, "after");
    let outbox = super::web_hook::queue(deps, hooks, &event, &subject, Some(&identity)).await;
    match deps.store.insert_identity_with(&identity, &outbox).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(FlowError::message(text::duplicate_credentials())),
        Err(e) => return Err(e.into()),
    }
    // Without the `session` hook the identity is created and nobody is signed in (Kratos
    // answers `{identity, continue_with}`, browsers go to the return URL).
    let with_session = super::hooks::has(hooks, "session");
    let issued = if with_session {
        Some(super::success::sign_in(deps, flow, sub, &identity, method, crate::model::Aal::Aal1).await?)
    } else {
        None
    };
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::PostPersist,
        &subject,
        super::web_hook::Who::Shown(&identity),
    )
    .await?;
    let next = super::hooks::after_registration(deps, flow, sub, &identity, hooks).await;
    let done = super::success::Done {
        identity: &identity,
        method,
        issued,
        continue_with: next.continue_with,
        browser_to: next.browser_to,
        csrf_cookie: next.csrf_cookie,
        flow_saved: false,
    };
    super::success::answer(deps, flow, sub, done).await
}
