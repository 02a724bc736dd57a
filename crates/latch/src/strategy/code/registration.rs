//! Passwordless registration by code. Kratos: `selfservice/strategy/code/strategy_registration.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Code, Purpose, issue, verify};
use crate::deps::Env;
use crate::identity::manager::{TraitsError, apply_traits, new_identity};
use crate::model::flow::Flow;
use crate::strategy::shared::{is_unified, traits_from};
use crate::strategy::{
    Cx, FlowError, RegistrationOutcome, RegistrationStep, RegistrationStrategy, field, traits_invalid,
};
use crate::text;
use crate::ui::{Group, InputType, Node};

fn enabled(env: &Env) -> bool {
    let c = &env.config.selfservice.methods.code;
    c.enabled && c.passwordless_enabled
}

fn sent_nodes(env: &Env, flow: &mut Flow) {
    flow.ui.nodes.retain(|n| n.group == Group::Default);
    for n in flow.ui.nodes.iter_mut() {
        let has_messages = !n.messages.is_empty();
        if let Some(a) = n.input_attributes_mut()
            && a.name != "csrf_token"
            && !has_messages
        {
            a.r#type = InputType::Hidden;
        }
    }
    super::append_code_inputs(flow, text::label_registration_code());
    if !is_unified(env) {
        flow.ui.append(
            Node::input("screen", InputType::Submit, Group::Profile)
                .value("credential-selection")
                .label(text::registration_back()),
        );
    }
}

#[async_trait]
impl RegistrationStrategy for Code {
    fn id(&self) -> &'static str {
        "code"
    }

    fn populate(&self, env: &Env, flow: &mut Flow, _step: RegistrationStep) {
        if !enabled(env) {
            return;
        }
        flow.ui.append(
            Node::input("method", InputType::Submit, Group::Code)
                .value("code")
                .label(text::registration_send_code()),
        );
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RegistrationOutcome, FlowError> {
        let env = cx.env;
        if !enabled(env) {
            return Err(FlowError::message(text::registration_no_strategy()));
        }
        let traits = traits_from(flow, body)?;
        let resend = field(body, "resend") == Some("code");
        let code = field(body, "code").filter(|c| !c.trim().is_empty());
        let mut identity = new_identity(env.schemas.default_id(), traits.clone(), env.clock.as_ref());
        let extracted = match apply_traits(&mut identity, &env.schemas, env.clock.as_ref()) {
            Ok(x) => x,
            Err(TraitsError::Invalid(errs)) => return Err(traits_invalid(&errs)),
            Err(e) => return Err(FlowError::message(text::system_generic(&e.to_string()))),
        };
        let Some(address) = extracted.code_addresses.first().map(|a| a.value.clone()) else {
            return Err(FlowError::message(text::identifier_missing()));
        };
        if code.is_none() || resend {
            if flow.state == "sent_email" && !resend {
                return Err(FlowError::on_node("code", text::required("code")));
            }
            flow.internal_set("traits", traits.clone());
            flow.internal_set("code_address", json!(address));
            let data = json!({"traits": traits, "request_url": flow.request_url});
            // No uniqueness check here: whether the address is taken is only revealed after
            // the code proves the person controls it.
            issue(env, flow, Purpose::Registration, None, &address, true, data, None).await?;
            sent_nodes(env, flow);
            flow.ui.add_message(text::registration_code_sent());
            flow.state = crate::model::flow::FlowState::SentEmail;
            flow.active = Some("code".into());
            return Ok(RegistrationOutcome::Continue);
        }
        let stored = flow
            .internal_get("code_address")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if stored != address {
            return Err(FlowError::message(text::traits_mismatch()));
        }
        verify(env, flow, Purpose::Registration, &address, code.unwrap_or("")).await?;
        let now = env.clock.now();
        identity.mark_address_verified(&address, now);
        flow.active = Some("code".into());
        Ok(RegistrationOutcome::Create {
            identity: Box::new(identity),
            method: "code",
        })
    }
}
