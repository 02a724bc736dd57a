//! The durable outbox of `response.ignore: true` web hooks (Latch only; Kratos fires such hooks
//! from a goroutine and forgets them when the receiver is down or the process stops).
//!
//! A delivery is one `webhook_deliveries` row: the request rendered when the event happened (URL,
//! method, the configured headers, the body) plus its state. Rows are written by the transaction
//! that stores the event (`Store::insert_identity_with`, `update_identity_with`,
//! `insert_session_with`, `update_session_auth_with`), so a registration, settings change, login
//! or recovery and its hooks commit together or not at all; events without such a transaction
//! (flow creation, verification, a deferred settings change applied) queue theirs right after
//! (`Store::enqueue_web_hooks`). `crate::flow::web_hook` decides which. The worker
//! ([`super::dispatcher`]) delivers them.
//!
//! What is stored and what is not: the URL, the configured `headers` and the rendered body are
//! stored as they will be sent (the body is what the operator's Jsonnet picked from `ctx`, often
//! personal data). The `auth` credentials are **not** stored: the row keeps [`super::auth_ref`],
//! and the worker takes the current credentials of the hook with that fingerprint from the
//! configuration when it sends ([`AuthIndex`]).

use std::collections::HashMap;

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Auth, WebHookConfig};
use crate::clock::rfc3339;
use crate::config::{Config, Hook};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (`next_attempt_at`).
    Queued,
    /// Claimed by a worker until `claimed_until`.
    Processing,
    /// The receiver answered below 400.
    Delivered,
    /// The retry budget is spent (or the hook cannot be sent any more); retried only by an
    /// admin (`POST /admin/webhooks/deliveries/{id}/retry`).
    Dead,
}

impl DeliveryStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [DeliveryStatus; 4] = [Self::Queued, Self::Processing, Self::Delivered, Self::Dead];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Reads a stored or requested name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A delivery to write in the event's transaction.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Row id; also sent as `Ory-Webhook-Trigger-ID` on every attempt, so receivers can
    /// recognise a repeat.
    pub id: Uuid,
    /// What happened: `registration.after`, `login.after`, …
    pub event: String,
    /// The hook's `id`, if configured.
    pub hook_id: Option<String>,
    /// The identity the event is about.
    pub identity_id: Option<Uuid>,
    /// Target URL as configured.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// The configured headers (with the default `Content-Type`), never the `auth`.
    pub headers: Vec<(String, String)>,
    /// The rendered body (`None` for `TRACE`).
    pub body: Option<String>,
    /// [`super::auth_ref`] when the hook has `auth`.
    pub auth_ref: Option<String>,
    /// Send `Ory-Webhook-Trigger-ID` / `Ory-Webhook-Request-ID`.
    pub emit_analytics_event: bool,
    /// When the event happened.
    pub created_at: OffsetDateTime,
}

impl NewDelivery {
    /// A delivery of `cfg` with a rendered `body`.
    pub fn new(
        cfg: &WebHookConfig,
        body: Option<Vec<u8>>,
        event: &str,
        identity_id: Option<Uuid>,
        now: OffsetDateTime,
    ) -> NewDelivery {
        NewDelivery {
            id: Uuid::new_v4(),
            event: event.to_owned(),
            hook_id: cfg.id.clone(),
            identity_id,
            url: cfg.url.to_string(),
            method: cfg.method.to_string(),
            headers: cfg.headers.clone(),
            body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
            auth_ref: super::auth_ref(cfg),
            emit_analytics_event: cfg.emit_analytics_event,
            created_at: now,
        }
    }
}

/// A stored delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Row id (`Ory-Webhook-Trigger-ID`).
    pub id: Uuid,
    /// What happened.
    pub event: String,
    /// The hook's `id`.
    pub hook_id: Option<String>,
    /// The identity the event is about.
    pub identity_id: Option<Uuid>,
    /// Target URL as configured.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// The configured headers.
    pub headers: Vec<(String, String)>,
    /// The rendered body.
    pub body: Option<String>,
    /// Fingerprint of the hook's `auth`.
    pub auth_ref: Option<String>,
    /// Send the Ory analytics headers.
    pub emit_analytics_event: bool,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts started (a claim counts one).
    pub attempts: i32,
    /// When it is due next.
    pub next_attempt_at: OffsetDateTime,
    /// The claim of the worker holding it (processing only).
    pub claim_id: Option<Uuid>,
    /// The receiver's status on the last attempt that got an answer.
    pub last_status: Option<i32>,
    /// Why the last attempt failed (no secret, URL without credentials or query).
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub delivered_at: Option<OffsetDateTime>,
    /// When the event happened.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Delivery {
    /// The admin API's JSON: no body and no header values (they may hold personal data or
    /// keys); the URL without credentials, query or fragment.
    pub fn to_json(&self) -> Value {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        json!({
            "id": self.id,
            "event": self.event,
            "hook_id": self.hook_id,
            "identity_id": self.identity_id,
            "url": super::redacted_url(&self.url),
            "method": self.method,
            "header_names": header_names,
            "uses_auth": self.auth_ref.is_some(),
            "status": self.status.as_str(),
            "attempts": self.attempts,
            "next_attempt_at": rfc3339(self.next_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }

    /// The hook configuration to send this row with: the stored request plus `auth`.
    pub fn config(&self, auth: Option<Auth>) -> Result<WebHookConfig, String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("the stored URL is invalid: {e}"))?;
        let method =
            http::Method::from_bytes(self.method.as_bytes()).map_err(|_| "the stored method is invalid".to_owned())?;
        Ok(WebHookConfig {
            id: self.hook_id.clone(),
            url,
            method,
            body: None,
            headers: self.headers.clone(),
            auth,
            response_ignore: true,
            response_parse: false,
            can_interrupt: false,
            emit_analytics_event: self.emit_analytics_event,
        })
    }
}

/// Every configured `web_hook` list: `selfservice.flows.<flow>.{before,after}[.<method>].hooks`.
pub fn hook_lists(config: &Config) -> Vec<&[Hook]> {
    let f = &config.selfservice.flows;
    let mut out: Vec<&[Hook]> = Vec::new();
    for (before, after) in [
        (&f.login.before, &f.login.after),
        (&f.registration.before, &f.registration.after),
        (&f.settings.before, &f.settings.after),
        (&f.verification.before, &f.verification.after),
        (&f.recovery.before, &f.recovery.after),
    ] {
        out.push(&before.hooks);
        out.push(&after.hooks);
        out.extend(after.per_method.values().map(|m| m.hooks.as_slice()));
    }
    out
}

/// The credentials of every configured web hook with `auth`, by [`super::auth_ref`].
#[derive(Default)]
pub struct AuthIndex(HashMap<String, Auth>);

impl std::fmt::Debug for AuthIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthIndex").field("hooks", &self.0.len()).finish()
    }
}

impl AuthIndex {
    /// Reads every `web_hook` of the configuration (hooks that do not parse are left out: the
    /// startup check reports them).
    pub fn from_config(config: &Config) -> AuthIndex {
        let mut map = HashMap::new();
        for hook in hook_lists(config).into_iter().flatten() {
            if hook.hook != "web_hook" {
                continue;
            }
            let Ok(cfg) = WebHookConfig::from_value(&hook.config) else {
                continue;
            };
            if let (Some(r), Some(a)) = (super::auth_ref(&cfg), cfg.auth) {
                map.entry(r).or_insert(a);
            }
        }
        AuthIndex(map)
    }

    /// The current credentials for a stored fingerprint.
    pub fn get(&self, auth_ref: &str) -> Option<&Auth> {
        self.0.get(auth_ref)
    }
}

/// Checks every `response.ignore: true` web hook of the configuration at startup: a hook the
/// outbox could not render must not be skipped silently at the first event.
pub fn check_config(config: &Config) -> Result<(), String> {
    for hook in hook_lists(config).into_iter().flatten() {
        if hook.hook != "web_hook" {
            continue;
        }
        let ignore = hook
            .config
            .pointer("/response/ignore")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if ignore {
            WebHookConfig::from_value(&hook.config).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryStatus::parse("sent"), None);
    }

    #[test]
    fn a_new_delivery_stores_no_secret_and_the_index_finds_the_credentials() {
        let hook = json!({
            "url": "https://user:pw@hooks.example/in?token=abc",
            "method": "POST",
            "auth": {"type": "api_key", "config": {"name": "X-Key", "value": "s3cret", "in": "header"}},
            "response": {"ignore": true}
        });
        let cfg = WebHookConfig::from_value(&hook).unwrap();
        let d = NewDelivery::new(
            &cfg,
            Some(b"{}".to_vec()),
            "registration.after",
            None,
            OffsetDateTime::UNIX_EPOCH,
        );
        let stored = format!("{d:?}");
        assert!(!stored.contains("s3cret"), "{stored}");
        let r = d.auth_ref.clone().unwrap();
        assert_eq!(r.len(), 64);

        let config = Config::from_value(
            json!({"selfservice": {"flows": {"registration": {"after": {"password": {"hooks": [
                {"hook": "session"}, {"hook": "web_hook", "config": hook}
            ]}}}}}}),
            true,
        )
        .unwrap();
        let index = AuthIndex::from_config(&config);
        assert_eq!(index.get(&r), cfg.auth.as_ref());
        assert!(!format!("{index:?}").contains("s3cret"));

        // Another URL (or method, id, key name) is another hook: its key is never sent here.
        let mut other = hook.clone();
        other["url"] = json!("https://elsewhere.example/in");
        let other = WebHookConfig::from_value(&other).unwrap();
        assert_ne!(super::super::auth_ref(&other).unwrap(), r);
        assert_eq!(check_config(&config), Ok(()));
    }

    #[test]
    fn the_admin_json_shows_no_body_header_value_or_url_secret() {
        let cfg = WebHookConfig::from_value(&json!({
            "url": "https://user:pw@hooks.example/in?token=abc",
            "method": "POST",
            "headers": {"X-Api-Key": "hdr-secret"},
            "response": {"ignore": true}
        }))
        .unwrap();
        let n = NewDelivery::new(
            &cfg,
            Some(br#"{"email":"a@b.c"}"#.to_vec()),
            "login.after",
            None,
            OffsetDateTime::UNIX_EPOCH,
        );
        let d = Delivery {
            id: n.id,
            event: n.event,
            hook_id: n.hook_id,
            identity_id: n.identity_id,
            url: n.url,
            method: n.method,
            headers: n.headers,
            body: n.body,
            auth_ref: n.auth_ref,
            emit_analytics_event: true,
            status: DeliveryStatus::Queued,
            attempts: 0,
            next_attempt_at: OffsetDateTime::UNIX_EPOCH,
            claim_id: None,
            last_status: None,
            last_error: None,
            delivered_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        let shown = d.to_json().to_string();
        for secret in ["pw", "token", "hdr-secret", "a@b.c"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(d.to_json()["url"], "https://hooks.example/in");
        assert_eq!(d.to_json()["header_names"], json!(["Content-Type", "X-Api-Key"]));
        let back = d.config(None).unwrap();
        assert_eq!(back.url.as_str(), "https://user:pw@hooks.example/in?token=abc");
    }
}
