//! Recovery by link. Kratos: `selfservice/strategy/link/strategy_recovery.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Link, Purpose, Redeemed, address_nodes, issue, redeem, submitted};
use crate::deps::Env;
use crate::identity::State;
use crate::model::flow::{Flow, FlowState};
use crate::strategy::{Cx, FlowError, RecoveryOutcome, RecoveryStrategy};
use crate::text;

#[async_trait]
impl RecoveryStrategy for Link {
    fn id(&self) -> &'static str {
        "link"
    }

    fn populate(&self, _env: &Env, flow: &mut Flow) {
        address_nodes(flow, "");
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<RecoveryOutcome, FlowError> {
        let env = cx.env;
        if let Some(token) = submitted(body, "token") {
            // The link from the email (or from `POST /admin/recovery/link`).
            let row = match redeem(env, flow, Purpose::Recovery, token).await? {
                Redeemed::Valid(row) => row,
                Redeemed::Invalid => return Err(FlowError::message(text::recovery_token_invalid())),
                Redeemed::Expired(at) => {
                    return Err(FlowError::message(text::recovery_flow_expired(at, env.clock.now())));
                }
            };
            let identity = match row.identity_id {
                Some(id) => env.store.get_identity(id).await?,
                None => None,
            };
            let Some(identity) = identity.filter(|i| i.state == State::Active) else {
                return Err(FlowError::message(text::recovery_token_invalid()));
            };
            return Ok(RecoveryOutcome::Recovered {
                identity: Box::new(identity),
                address: row.address,
                method: "link_recovery",
            });
        }
        let email = submitted(body, "email").unwrap_or("");
        if email.is_empty() {
            address_nodes(flow, "");
            return Err(FlowError::on_node("email", text::required("email")));
        }
        if !email.contains('@') {
            address_nodes(flow, email);
            return Err(FlowError::on_node("email", text::invalid_email(email)));
        }
        let address = crate::identity::schema::normalize_identifier(email);
        let notify = env.config.selfservice.flows.recovery.notify_unknown_recipients;
        match env.store.find_identity_by_address(false, "email", &address).await? {
            Some(i) if i.state == State::Active => {
                issue(env, flow, Purpose::Recovery, Some(&i), &address, notify).await?;
            }
            _ => issue(env, flow, Purpose::Recovery, None, &address, notify).await?,
        }
        flow.internal_set("link_address", json!(address));
        address_nodes(flow, email);
        flow.ui.add_message(text::recovery_link_sent());
        flow.state = FlowState::SentEmail;
        flow.active = Some("link".into());
        Ok(RecoveryOutcome::Continue)
    }
}
