//! Registration flows: the `profile_first` (two steps) and `unified` styles, the profile
//! step, persistence and the after-registration hooks. Kratos: `selfservice/flow/registration`.

use super::respond::Answer;
use serde_json::{Value, json};

use super::Flow;
use super::Service;
use super::common::Submission;
use super::respond::{self};
use crate::identity::Identity;
use crate::identity::manager::{apply_traits, new_identity};
use crate::store::StoreError;
use crate::strategy::shared::{is_unified, trim_traits};
use crate::strategy::{Cx, FlowError, RegistrationOutcome, RegistrationStep, traits_invalid};
use crate::text;
use crate::ui::{Group, InputType, Node, trait_nodes};

fn schema_order(deps: &Service) -> Vec<String> {
    deps.schemas
        .default_schema()
        .map(|s| s.property_order.clone())
        .unwrap_or_default()
}

/// The first screen: traits (with `values` filled in) and, in the unified style, every method.
pub fn populate_initial(deps: &Service, flow: &mut Flow, values: Option<&Value>) {
    flow.ui.nodes.clear();
    flow.ui.set_csrf(String::new());
    if let Some(schema) = deps.schemas.default_schema() {
        for n in trait_nodes(&schema.raw, Group::Default, "traits", values) {
            flow.ui.upsert(n);
        }
    }
    if is_unified(deps) {
        for s in deps.strategies.registration() {
            s.populate(deps, flow, RegistrationStep::Unified);
        }
    } else {
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Profile)
                .value("profile")
                .label(text::registration()),
        );
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
    for s in deps.strategies.registration() {
        s.populate(deps, flow, RegistrationStep::CredentialSelection);
    }
    flow.ui.append(
        Node::input("screen", InputType::Submit, Group::Profile)
            .value("previous")
            .label(text::registration_back()),
    );
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
    let screen = sub.body.get("screen").and_then(Value::as_str);
    if method == "profile" || matches!(screen, Some("previous" | "credential-selection")) {
        return profile_step(deps, flow, sub).await;
    }
    let Some(strategy) = deps.strategies.registration().find(|s| s.id() == method) else {
        return Err(FlowError::message(text::registration_no_strategy()));
    };
    // Keep what the person typed if the submission fails.
    if let Some(t) = sub.body.get("traits") {
        for (k, v) in flatten("traits", t) {
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
        RegistrationOutcome::RedirectExternal(to) => {
            flow.updated_at = deps.clock.now();
            deps.store.update_flow(flow).await?;
            Ok(respond::external(&to, sub.style))
        }
        RegistrationOutcome::Create { identity, method } => success(deps, flow, sub, *identity, method).await,
    }
}

fn flatten(prefix: &str, v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| flatten(&format!("{prefix}.{k}"), v))
            .collect(),
        other => vec![(prefix.to_string(), other.clone())],
    }
}

async fn profile_step(deps: &Service, flow: &mut Flow, sub: &Submission<'_>) -> Result<Answer, FlowError> {
    let screen = sub.body.get("screen").and_then(Value::as_str);
    let stored = flow.internal_get("traits").cloned();
    let traits = match (screen, stored) {
        (Some("credential-selection"), Some(s)) => s,
        _ => trim_traits(sub.body.get("traits").cloned().unwrap_or_else(|| json!({}))),
    };
    let back = screen == Some("previous");
    if back || is_unified(deps) {
        let values = flow.internal_get("traits").cloned();
        if let Some(o) = flow.internal.as_object_mut() {
            o.remove("traits");
        }
        populate_initial(deps, flow, values.as_ref());
    } else {
        let mut probe = new_identity(deps.schemas.default_id(), traits.clone(), deps.clock.as_ref());
        for (k, v) in flatten("traits", &traits) {
            flow.ui.set_value(&k, v);
        }
        match apply_traits(&mut probe, &deps.schemas, deps.clock.as_ref()) {
            Ok(_) => {}
            Err(crate::identity::manager::TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        }
        flow.internal_set("traits", traits.clone());
        // Kratos (`profile/registration.go` showCredentialsSelection) resets the flow here:
        // no method is in use yet, so `active` is cleared (absent), never "profile".
        flow.state = crate::model::flow::FlowState::ChooseMethod;
        flow.active = None;
        populate_credential_selection(deps, flow, &traits);
        flow.ui.add_message(text::registration_choose_credentials());
    }
    flow.updated_at = deps.clock.now();
    deps.store.update_flow(flow).await?;
    Ok(respond::rerender_step(deps, flow, sub.style, sub.csrf.as_ref()))
}

async fn success(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    identity: Identity,
    method: &str,
) -> Result<Answer, FlowError> {
    match deps.store.insert_identity(&identity).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(FlowError::message(text::duplicate_credentials())),
        Err(e) => return Err(e.into()),
    }
    let hooks = deps.config.selfservice.flows.registration.after.hooks_for(method);
    let with_session = hooks.iter().any(|h| h.hook == "session");
    let issued = if with_session {
        Some(super::success::sign_in(deps, flow, sub, &identity, method, crate::model::Aal::Aal1).await?)
    } else {
        None
    };
    // Unverified addresses get a verification code when verification is on.
    let mut verification_continue = vec![];
    let mut verification_url = None;
    if deps.config.selfservice.flows.verification.enabled {
        let show_ui = hooks.iter().any(|h| h.hook == "show_verification_ui");
        for a in identity
            .verifiable_addresses
            .iter()
            .filter(|a| !a.verified && a.via == "email")
        {
            let path = format!("self-service/verification/{}", flow.flow_type.as_str());
            match super::verification::start_for_address(
                deps,
                flow.flow_type,
                &path,
                flow.return_to.clone(),
                &a.value,
                sub.req,
            )
            .await
            {
                Ok(vf) => {
                    if show_ui {
                        let mut item = json!({"action": "show_verification_ui", "flow": {"id": vf.id, "verifiable_address": a.value}});
                        if vf.flow_type == super::FlowType::Browser {
                            let url = respond::ui_url_for(deps, &vf);
                            item["flow"]["url"] = json!(url);
                            verification_url.get_or_insert(url);
                        }
                        verification_continue.push(item);
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "could not start verification after registration"),
            }
        }
    }
    let done = super::success::Done {
        identity: &identity,
        method,
        issued,
        continue_with: verification_continue,
        browser_to: verification_url,
    };
    super::success::answer(deps, flow, sub, done).await
}
