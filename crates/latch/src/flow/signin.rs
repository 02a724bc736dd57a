//! Signing in at the end of a login flow, checking the session's AAL: shared by login
//! and by a registration that turned into a login (social sign-in with a known account).

use super::Flow;
use super::Service;
use super::common::Submission;
use super::respond::Answer;
use crate::identity::Identity;
use crate::strategy::FlowError;

/// Signs `identity` in on `flow` and answers (also used by a registration that became a login).
pub(super) async fn success(
    deps: &Service,
    flow: &mut Flow,
    sub: &Submission<'_>,
    identity: &Identity,
    method: &str,
    aal: crate::model::Aal,
) -> Result<Answer, FlowError> {
    let hooks = super::hooks::login_hooks(deps, method);
    if let Some(stop) = super::hooks::require_verified_address(deps, flow, sub, identity, method, hooks).await? {
        return Ok(stop);
    }
    // A login on an account-linking flow links the credential waiting on it first; the session
    // carries both methods.
    let linked = super::linking::complete(deps, flow, identity, aal).await?;
    let identity = linked.as_ref().map(|(i, _)| i).unwrap_or(identity);
    let mut pending = super::success::prepare_sign_in(deps, flow, sub, identity, method, aal)?;
    if let Some((_, am)) = &linked {
        let s = &mut pending.issued.session;
        s.methods.push(am.clone());
        s.aal = crate::session::compute_aal(&s.methods);
    }
    // Kratos runs the after-login `web_hook`s with the session before it is written: one that
    // fails or interrupts leaves no session behind. `response.ignore` ones are queued in the
    // transaction that writes the session.
    let subject = super::web_hook::Subject {
        flow,
        req: sub.req,
        body: Some(&sub.body),
        session: Some((&pending.issued.session, identity)),
    };
    super::web_hook::run(
        deps,
        hooks,
        super::web_hook::Stage::After,
        &subject,
        super::web_hook::Who::Shown(identity),
    )
    .await?;
    let event = super::web_hook::event(super::FlowKind::Login, "after");
    let outbox = super::web_hook::queue(deps, hooks, &event, &subject, Some(identity)).await;
    // The flow is completed in the transaction that writes the session.
    let (issued, flow_saved) = super::success::commit_sign_in_completing(deps, pending, &outbox, flow).await?;
    let next = super::hooks::after_login(deps, flow, sub, identity, issued.session.id, hooks).await?;
    // Kratos' `PostLoginHook` checks the new session against `session.whoami.required_aal`:
    // a first factor of an identity that has a second one must go on to the `aal2` login.
    let satisfied =
        super::common::session_satisfies(deps, &issued.session, identity, deps.config.session.whoami.required_aal);
    let done = super::success::Done {
        identity,
        method,
        issued: Some(issued),
        continue_with: next.continue_with,
        browser_to: next.browser_to,
        csrf_cookie: next.csrf_cookie,
        flow_saved,
    };
    if satisfied {
        return super::success::answer(deps, flow, sub, done).await;
    }
    // As Kratos (`PassReturnToAndLoginChallengeParameters`), the flow's `return_to` goes along.
    let e = super::common::aal2_required(deps, flow.return_to.as_deref());
    let to = e
        .extra
        .get("redirect_browser_to")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    super::success::answer_needing_aal2(deps, flow, sub, done, &to).await
}
