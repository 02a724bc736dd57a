//! Running `web_hook` hooks inside flows (Kratos: `selfservice/hook/web_hook.go` and the
//! executors of `selfservice/flow/*/hook.go`). The delivery itself is [`crate::webhook`]; this
//! file decides which configured hooks run at which point, builds their `ctx`, and turns their
//! outcome into the flow's answer:
//!
//! - **before** a flow is created (every kind): an error or an interruption refuses the flow;
//! - **after** login (with the session about to be issued), recovery and verification;
//! - registration and settings split their after hooks as Kratos does: hooks with
//!   `response.parse` or `can_interrupt` run **pre-persist** (they may change the identity or
//!   refuse it, nothing is written), the others **post-persist**.
//!
//! A `>= 400` answer with messages becomes form messages (`#/traits/email` → node
//! `traits.email`) and the usual validation answer; a timeout (504), an error status (502) or
//! an unreachable receiver (500) becomes Kratos' upstream error.
//!
//! Hooks with `response.ignore: true` never block and are never sent from the request: [`queue`]
//! renders them (with the same `ctx`) into outbox rows ([`enqueue_async_web_hook`]), which the
//! flow writes in the transaction of its event (the identity of a registration or a settings
//! change, the session of a login or recovery) or, where the event has no transaction to share
//! (flow creation, verification, a deferred settings change applied), right after it commits
//! with [`crate::store::Store::enqueue_web_hooks`]. The worker of [`crate::webhook::dispatcher`]
//! delivers them with retries.

use http::StatusCode;
use serde_json::Value;

use super::Service;
use super::request::Request as Req;
use super::{Flow, FlowKind};
use crate::config::Hook;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::session::Session;
use crate::strategy::FlowError;
use crate::text::UiText;
use crate::webhook::outbox::NewDelivery;
use crate::webhook::{self, Context, FieldMessages, IdentityPatch, Outcome, RequestInfo, WebHookConfig, WebHookError};

/// The hook's name in the hook lists.
pub const HOOK: &str = "web_hook";

/// Where in a flow hooks run; decides which `web_hook`s of a list run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `before`: the flow is being created.
    Before,
    /// After login, recovery or verification: every `web_hook` of the list.
    After,
    /// Registration or settings, before the identity is written: only hooks that parse the
    /// answer (`response.parse`, `can_interrupt`).
    PrePersist,
    /// Registration or settings, after the identity is written: only hooks that do not parse.
    PostPersist,
}

impl Stage {
    fn runs(self, cfg: &WebHookConfig) -> bool {
        match self {
            Stage::Before | Stage::After => true,
            Stage::PrePersist => cfg.parses_response(),
            Stage::PostPersist => !cfg.parses_response(),
        }
    }
}

/// What a hook's `ctx` is built from.
pub struct Subject<'a> {
    /// The flow (its API JSON goes to `ctx.flow`, without the CSRF token).
    pub flow: &'a Flow,
    /// The request that triggered the hook.
    pub req: &'a Req,
    /// The submitted body: its `transient_payload` reaches `ctx.flow.transient_payload`.
    pub body: Option<&'a Value>,
    /// `ctx.session` and the identity it belongs to (after login, settings).
    pub session: Option<(&'a Session, &'a Identity)>,
}

/// The delivery settings from `latch.web_hooks` (Kratos' client by default).
pub fn transport(deps: &Service) -> webhook::Transport {
    let c = &deps.config.latch.web_hooks;
    webhook::Transport {
        attempt_timeout: c.timeout,
        max_retries: c.max_retries,
        ..webhook::Transport::KRATOS
    }
}

/// Whether `hooks` hold a `web_hook` that runs at `stage` (a cheap check before building a
/// context).
pub fn any_at(hooks: &[Hook], stage: Stage) -> bool {
    hooks
        .iter()
        .filter(|h| h.hook == HOOK)
        .any(|h| WebHookConfig::from_value(&h.config).map_or(true, |c| stage.runs(&c)))
}

/// The `before` hooks of `kind`.
pub fn before_hooks(deps: &Service, kind: FlowKind) -> &[Hook] {
    let f = &deps.config.selfservice.flows;
    match kind {
        FlowKind::Login => &f.login.before.hooks,
        FlowKind::Registration => &f.registration.before.hooks,
        FlowKind::Settings => &f.settings.before.hooks,
        FlowKind::Recovery => &f.recovery.before.hooks,
        FlowKind::Verification => &f.verification.before.hooks,
    }
}

/// Builds a hook's `ctx`.
fn context(deps: &Service, subject: &Subject<'_>, identity: Option<&Identity>) -> Context {
    let info = RequestInfo {
        method: subject.req.hook.method.clone(),
        url: deps.public_url(subject.req.path_and_query.trim_start_matches('/')),
        headers: subject.req.hook.headers.clone(),
    };
    let mut ctx = Context::new(subject.flow.to_json(), &info);
    if let Some(payload) = subject
        .body
        .and_then(|b| b.get("transient_payload"))
        .filter(|p| p.is_object())
    {
        ctx = ctx.with_transient_payload(payload.clone());
    }
    if let Some(identity) = identity {
        let render = crate::identity::Render {
            admin: true,
            include_credential: &[],
        };
        ctx = ctx.with_identity(identity.to_json(&deps.schema_url(&identity.schema_id), &render));
    }
    if let Some((session, owner)) = subject.session {
        // The identity as the hook sees it (changed by earlier hooks) when it is the owner's.
        let owner = identity.filter(|i| i.id == owner.id).unwrap_or(owner);
        let schema_url = deps.schema_url(&owner.schema_id);
        ctx = ctx.with_session(session.to_json(deps.clock.now(), Some(owner), &schema_url, false));
    }
    ctx
}

/// The identity a hook sees as `ctx.identity`.
pub enum Who<'a> {
    /// No identity (before hooks).
    Nobody,
    /// Shown; an identity in the answer is ignored (login, post-persist, recovery,
    /// verification), as in Kratos.
    Shown(&'a Identity),
    /// Shown and changed by a `200 {"identity": …}` answer before the next hook runs and
    /// before it is written (registration and settings pre-persist): traits are validated
    /// again and the addresses derived from them.
    Changed(&'a mut Identity),
}

/// Runs the blocking `web_hook`s of `hooks` that run at `stage`, in order. Hooks with
/// `response.ignore: true` are left to [`queue`].
pub async fn run(
    deps: &Service,
    hooks: &[Hook],
    stage: Stage,
    subject: &Subject<'_>,
    mut who: Who<'_>,
) -> Result<(), FlowError> {
    for (i, hook) in hooks.iter().enumerate().filter(|(_, h)| h.hook == HOOK) {
        let cfg = WebHookConfig::from_value(&hook.config).map_err(|e| misconfigured(&e.to_string()))?;
        if cfg.response_ignore || !stage.runs(&cfg) {
            continue;
        }
        let shown = match &who {
            Who::Nobody => None,
            Who::Shown(i) => Some(&**i),
            Who::Changed(i) => Some(&**i),
        };
        let ctx = context(deps, subject, shown);
        let outcome = webhook::deliver_with(&cfg, &ctx, &transport(deps), uuid::Uuid::new_v4())
            .await
            .map_err(upstream_error)?;
        match outcome {
            Outcome::Cancelled | Outcome::Delivered => {}
            Outcome::Interrupted(fields) => return Err(interrupted(fields)),
            Outcome::Identity(patch) => match &mut who {
                Who::Changed(target) => apply_patch(deps, target, &patch)?,
                _ => tracing::info!(
                    hook = i,
                    flow = subject.flow.kind.as_str(),
                    "a web hook answered with an identity where identities are not changed; ignored (as Kratos)"
                ),
            },
        }
    }
    Ok(())
}

/// The outbox event of hooks run `position` (`before`, `after`) a flow of `kind`
/// (`webhook_deliveries.event`: `registration.after`, `login.before`, …).
pub fn event(kind: FlowKind, position: &str) -> String {
    format!("{}.{position}", kind.as_str())
}

/// Renders every `response.ignore: true` `web_hook` of `hooks` for the outbox, in order, with
/// the `ctx` a blocking hook would get (`identity` as `ctx.identity`). Whether such a hook
/// parses its answer does not matter (the answer is never read): each is queued once per event,
/// with the identity as written. The caller writes the rows with the event
/// ([`crate::store::Store::insert_identity_with`], `update_identity_with`,
/// `insert_session_with`, `update_session_auth_with`) or right after it
/// ([`crate::store::Store::enqueue_web_hooks`]). Call it **before** any transaction: rendering
/// runs the body program, which must not hold a database lock.
pub async fn queue(
    deps: &Service,
    hooks: &[Hook],
    event: &str,
    subject: &Subject<'_>,
    identity: Option<&Identity>,
) -> Vec<NewDelivery> {
    let mut outbox = Vec::new();
    let mut ctx = None;
    for hook in hooks.iter().filter(|h| h.hook == HOOK) {
        let cfg = match WebHookConfig::from_value(&hook.config) {
            Ok(c) if c.response_ignore => c,
            Ok(_) => continue,
            Err(e) => {
                // Refused at startup; kept for configs built in tests.
                tracing::warn!(event, error = %e, "web hook skipped: invalid configuration");
                continue;
            }
        };
        let ctx = ctx.get_or_insert_with(|| context(deps, subject, identity));
        enqueue_async_web_hook(deps, &cfg, event, ctx, identity.map(|i| i.id), &mut outbox).await;
    }
    outbox
}

/// **The one place `response.ignore: true` hooks start**: renders one hook for `ctx` and adds
/// it to `outbox`, the deliveries that the event's own transaction writes (or that are queued
/// right after it commits): the hook is queued if and only if the event happened, and a worker
/// on some node delivers it with retries ([`crate::webhook::dispatcher`]).
///
/// A body program that cancels (`error "cancel"`) queues nothing. A body that cannot be
/// rendered queues nothing and is logged: as in Kratos, an ignored hook never fails the flow.
pub async fn enqueue_async_web_hook(
    deps: &Service,
    cfg: &WebHookConfig,
    event: &str,
    ctx: &Context,
    identity_id: Option<uuid::Uuid>,
    outbox: &mut Vec<NewDelivery>,
) {
    match webhook::render(cfg, ctx).await {
        Ok(webhook::Rendered::Ready(body)) => {
            outbox.push(NewDelivery::new(cfg, body, event, identity_id, deps.clock.now()));
        }
        Ok(webhook::Rendered::Cancelled) => {
            tracing::info!(
                hook = cfg.id.as_deref().unwrap_or(""),
                event,
                "web hook cancelled by its body program"
            );
        }
        Err(e) => {
            tracing::warn!(hook = cfg.id.as_deref().unwrap_or(""), event, error = %e, "web hook not queued: its body could not be rendered");
        }
    }
}

/// Queues `outbox` in its own transaction, for events that have none to share (flow creation,
/// verification, a deferred settings change applied): called right after the event committed.
/// A failure is logged, never answered: the event happened.
pub async fn enqueue_after_commit(deps: &Service, event: &str, outbox: &[NewDelivery]) {
    if let Err(e) = deps.store.enqueue_web_hooks(outbox).await {
        tracing::error!(event, error = %e, lost = outbox.len(), "response.ignore web hooks could not be queued");
    }
}

/// The `before` hooks of a flow being created: `Err` refuses the flow. An interruption is
/// answered `400` with the receiver's messages in `error.details.messages` (Kratos has no
/// form to show them on yet and answers `500`). `Ok` holds the `response.ignore` hooks,
/// rendered, for the caller to queue once the flow is stored ([`enqueue_after_commit`]).
pub async fn run_before(
    deps: &Service,
    flow: &Flow,
    req: &Req,
    session: Option<(&Session, &Identity)>,
) -> Result<Vec<NewDelivery>, ApiError> {
    let hooks = before_hooks(deps, flow.kind);
    if !hooks.iter().any(|h| h.hook == HOOK) {
        return Ok(vec![]);
    }
    // Kratos gives settings' before hooks the session; the other kinds have none.
    let subject = Subject {
        flow,
        req,
        body: None,
        session: session.filter(|_| flow.kind == FlowKind::Settings),
    };
    match run(deps, hooks, Stage::Before, &subject, Who::Nobody).await {
        Ok(()) => Ok(queue(deps, hooks, &event(flow.kind, "before"), &subject, None).await),
        Err(FlowError::Api(e)) => Err(e),
        Err(FlowError::Invalid {
            messages,
            node_messages,
        }) => {
            let all: Vec<&UiText> = messages.iter().chain(node_messages.iter().map(|(_, m)| m)).collect();
            let reason = all.iter().map(|m| m.text.as_str()).collect::<Vec<_>>().join(" ");
            Err(ApiError::bad_request(if reason.is_empty() {
                "A web hook refused to create the flow.".to_owned()
            } else {
                reason
            })
            .details(serde_json::json!({"messages": all})))
        }
        Err(FlowError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = ?e, "a before web hook failed");
            Err(ApiError::internal())
        }
    }
}

/// The receiver's messages on the form: `instance_ptr` → node name, messages without a
/// node (`#/`, empty) above the form.
fn interrupted(fields: Vec<FieldMessages>) -> FlowError {
    let mut messages = vec![];
    let mut node_messages = vec![];
    for f in fields {
        let node = pointer_to_node(&f.instance_ptr);
        for m in f.messages {
            if node.is_empty() {
                messages.push(m);
            } else {
                node_messages.push((node.clone(), m));
            }
        }
    }
    FlowError::Invalid {
        messages,
        node_messages,
    }
}

/// Kratos' `jsonschemax.JSONPointerToDotNotation`: `#/traits/email` → `traits.email`,
/// `#/traits/a~1b` → `traits.a/b`, `#/` and `` → `` (the whole form).
pub fn pointer_to_node(ptr: &str) -> String {
    let fragment = ptr.strip_prefix('#').unwrap_or(ptr);
    let decoded = percent_decode(fragment);
    decoded
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Applies a receiver's identity to the identity about to be written, then validates its
/// traits again (a failure is shown on the form, as Kratos' validation after the hooks).
fn apply_patch(deps: &Service, identity: &mut Identity, patch: &IdentityPatch) -> Result<(), FlowError> {
    if let Some(t) = &patch.traits {
        identity.traits = t.clone();
    }
    if let Some(s) = &patch.schema_id {
        identity.schema_id = s.clone();
    }
    if let Some(s) = &patch.state {
        identity.state = crate::identity::State::parse(s)
            .ok_or_else(|| FlowError::Api(bad_answer(&format!("the identity state {s:?} is not known"))))?;
    }
    if let Some(m) = &patch.metadata_public {
        identity.metadata_public = Some(m.clone());
    }
    if let Some(m) = &patch.metadata_admin {
        identity.metadata_admin = Some(m.clone());
    }
    if let Some(e) = &patch.external_id {
        identity.external_id = e.clone();
    }
    let now = deps.clock.now();
    // Addresses the receiver marked verified stay verified when the traits still hold them.
    if let Some(list) = &patch.verifiable_addresses {
        for a in list {
            let value = a.get("value").and_then(Value::as_str).unwrap_or_default();
            let via = a.get("via").and_then(Value::as_str).unwrap_or("email");
            if value.is_empty() {
                continue;
            }
            let verified = a.get("verified").and_then(Value::as_bool).unwrap_or(false);
            match identity
                .verifiable_addresses
                .iter_mut()
                .find(|x| x.value == value && x.via == via)
            {
                Some(x) => {
                    x.verified = verified;
                    x.verified_at = verified.then_some(now);
                    x.status = if verified { "completed" } else { "pending" }.into();
                }
                None => identity.verifiable_addresses.push(crate::identity::VerifiableAddress {
                    id: uuid::Uuid::new_v4(),
                    via: via.to_owned(),
                    value: value.to_owned(),
                    verified,
                    verified_at: verified.then_some(now),
                    status: if verified { "completed" } else { "pending" }.into(),
                    created_at: now,
                    updated_at: now,
                }),
            }
        }
    }
    match crate::identity::manager::apply_traits(identity, &deps.schemas, deps.clock.as_ref()) {
        Ok(_) => Ok(()),
        Err(crate::identity::manager::TraitsError::Invalid(errs)) => Err(FlowError::Invalid {
            messages: vec![],
            node_messages: errs
                .into_iter()
                .map(|e| (crate::identity::manager::pointer_to_path(&e.instance_ptr), e.message))
                .collect(),
        }),
        Err(e) => Err(FlowError::Api(bad_answer(&e.summary()))),
    }
}

/// A hook that cannot run as configured: Kratos' `500 invalid_configuration`-like answer.
fn misconfigured(reason: &str) -> FlowError {
    tracing::error!(error = %reason, "a web_hook is misconfigured");
    FlowError::Api(ApiError::internal().reason(reason.to_owned()))
}

fn bad_answer(reason: &str) -> ApiError {
    tracing::warn!(error = %reason, "a web hook answer could not be applied");
    ApiError::new(StatusCode::BAD_GATEWAY)
        .reason("A third-party upstream service responded improperly. Please try again later.")
        .message("the web hook's answer could not be used")
}

/// Kratos' answers for a failed blocking hook: `504` for a timeout, `502` for an error status,
/// `500` otherwise; the reason names no URL, secret or answer (the log has the details).
fn upstream_error(e: WebHookError) -> FlowError {
    let status = StatusCode::from_u16(e.flow_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let api = match &e {
        WebHookError::Timeout { .. } => ApiError::new(status)
            .reason("A third-party upstream service could not be reached. Please try again later.")
            .message("the web hook did not answer in time"),
        WebHookError::Unreachable { .. } => ApiError::new(status)
            .reason("A third-party upstream service could not be reached. Please try again later.")
            .message("the web hook could not be reached"),
        WebHookError::Status { status: code, .. } => ApiError::new(status)
            .reason("A third-party upstream service responded improperly. Please try again later.")
            .message(format!("webhook failed with status code {code}")),
        WebHookError::BadResponse { .. } => ApiError::new(status)
            .reason("A third-party upstream service responded improperly. Please try again later.")
            .message("the web hook's answer could not be used"),
        WebHookError::Config { .. } | WebHookError::Body { .. } => ApiError::internal(),
    };
    FlowError::Api(api)
}

#[cfg(test)]
mod tests {
    use super::pointer_to_node;

    #[test]
    fn pointers_become_node_names() {
        assert_eq!(pointer_to_node("#/traits/email"), "traits.email");
        assert_eq!(pointer_to_node("#/traits/name/first"), "traits.name.first");
        assert_eq!(pointer_to_node("#/password"), "password");
        assert_eq!(pointer_to_node("#/traits/a~1b"), "traits.a/b");
        assert_eq!(pointer_to_node("#/"), "");
        assert_eq!(pointer_to_node(""), "");
    }
}
