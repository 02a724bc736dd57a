//! Verification by link. Kratos: `selfservice/strategy/link/strategy_verification.go`.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Link, Purpose, Redeemed, address_nodes, issue, redeem, submitted};
use crate::deps::Env;
use crate::model::flow::{Flow, FlowState};
use crate::strategy::{Cx, FlowError, VerificationOutcome, VerificationStrategy, address_change};
use crate::text;

#[async_trait]
impl VerificationStrategy for Link {
    fn id(&self) -> &'static str {
        "link"
    }

    fn populate(&self, _env: &Env, flow: &mut Flow) {
        address_nodes(flow, "");
    }

    async fn send(&self, env: &Env, flow: &mut Flow, address: &str) -> Result<(), FlowError> {
        let normalized = crate::identity::schema::normalize_identifier(address);
        let (resolved, owner) = address_change::recipient(env, flow.id, &normalized).await?;
        // A pending change sends to its own address, whatever was typed.
        let shown = if resolved == normalized {
            address.to_string()
        } else {
            resolved.clone()
        };
        let address = resolved;
        let notify = env.config.selfservice.flows.verification.notify_unknown_recipients;
        issue(env, flow, Purpose::Verification, owner.as_ref(), &address, notify).await?;
        flow.internal_set("link_address", json!(address));
        address_nodes(flow, &shown);
        flow.ui.add_message(text::verification_link_sent());
        flow.state = FlowState::SentEmail;
        flow.active = Some("link".into());
        Ok(())
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Value) -> Result<VerificationOutcome, FlowError> {
        let env = cx.env;
        if let Some(token) = submitted(body, "token") {
            let row = match redeem(env, flow, Purpose::Verification, token).await? {
                Redeemed::Valid(row) => row,
                Redeemed::Invalid => return Err(FlowError::message(text::verification_token_invalid())),
                Redeemed::Expired(at) => {
                    return Err(FlowError::message(text::verification_flow_expired(at, env.clock.now())));
                }
            };
            if let Some(change) = address_change::for_flow(env, flow.id).await? {
                let invalid = text::verification_token_invalid();
                return address_change::outcome(env, &change, row.identity_id, &row.address, invalid).await;
            }
            if let Some(id) = row.identity_id
                && let Some(mut identity) = env.store.get_identity(id).await?
            {
                if !identity.verifiable_addresses.iter().any(|a| a.value == row.address) {
                    // The address left the identity (or was a change that is gone now): nothing
                    // to verify (Kratos: "invalid or already used").
                    return Ok(VerificationOutcome::Refused(text::verification_token_invalid()));
                }
                if identity.mark_address_verified(&row.address, env.clock.now()) {
                    env.store.update_identity(&identity).await?;
                }
            }
            if let Some(id) = row.identity_id {
                flow.internal_set(crate::model::flow::VERIFIED_IDENTITY, json!(id));
            }
            return Ok(VerificationOutcome::Verified);
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
        self.send(env, flow, email).await?;
        Ok(VerificationOutcome::Continue)
    }
}
