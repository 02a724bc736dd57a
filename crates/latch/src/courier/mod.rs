//! The courier: mail rendered from templates, kept in a database outbox, and delivered over
//! SMTP by a background worker with retries. Kratos: `courier/`.
//!
//! Sending a mail is two steps, so that a one-time code and its mail commit together:
//! 1. [`templates::render`] the subject and bodies, build a [`message::NewMessage`];
//! 2. insert it in the caller's transaction with `store::courier::insert_courier_message!`
//!    (then call `Store::wake_courier` after the commit), or on its own with
//!    `Store::enqueue_message`.
//!
//! The worker ([`dispatcher::Dispatcher`]) runs inside `latch serve` and `latch courier watch`.

mod builtin;
pub mod dispatcher;
pub mod message;
mod pool;
pub mod smtp;
pub mod templates;

use std::sync::Arc;

use crate::config::Config;
use smtp::{Mailer, SmtpConfigError};
use templates::TemplateError;

/// Why the courier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    /// `courier.smtp` is invalid.
    #[error(transparent)]
    Smtp(#[from] SmtpConfigError),
    /// A template override does not load or render.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Mail must be sent, but there is nothing to send it with.
    #[error(
        "no SMTP server is configured, but enabled flows send email ({0}): set courier.smtp.connection_uri \
         (for example smtps://user:password@mail.example.com:465/, or the COURIER_SMTP_CONNECTION_URI \
         environment variable), or run with --dev to keep mail in the outbox without sending it"
    )]
    NoSmtp(String),
}

/// The enabled features that send email; empty when none does. The one place that decides
/// whether a server without SMTP may start.
pub fn mail_senders(config: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if config.selfservice.methods.code.enabled {
        out.push("selfservice.methods.code");
    }
    if config.selfservice.flows.verification.enabled {
        out.push("selfservice.flows.verification");
    }
    if config.selfservice.flows.recovery.enabled {
        out.push("selfservice.flows.recovery");
    }
    out
}

/// Checks the courier configuration at startup (templates render, SMTP settings parse) and
/// builds the mailer. Without SMTP, startup fails when mail must be sent, unless in dev mode.
pub fn setup(config: &Config) -> Result<Option<Arc<Mailer>>, CourierError> {
    templates::check(config)?;
    let mailer = Mailer::from_config(&config.courier.smtp)?;
    let senders = mail_senders(config);
    if mailer.is_none() && !senders.is_empty() && !config.dev {
        return Err(CourierError::NoSmtp(senders.join(", ")));
    }
    Ok(mailer.map(Arc::new))
}

/// Stores a one-time code and queues the email that carries it in ONE transaction, then wakes
/// the worker: a code is never stored without its mail, nor a mail sent for a code that was
/// not stored. `template` is a Kratos template type (`login_code_valid`, …).
pub async fn send_with_code(
    deps: &crate::deps::Env,
    row: &crate::store::code::CodeRow,
    template: &str,
    to: &str,
    data: &serde_json::Value,
) -> Result<(), crate::store::StoreError> {
    write_with_code(deps, row, template, to, data, true).await
}

/// The unknown-address twin of [`send_with_code`]: renders the same template from the same
/// data and runs the same transaction (code row, outbox row), but removes the message again
/// before the commit, so it is never visible nor delivered. Requests for unknown addresses
/// (enumeration protection) thus do the same work as for known ones.
pub async fn discard_with_code(
    deps: &crate::deps::Env,
    row: &crate::store::code::CodeRow,
    template: &str,
    to: &str,
    data: &serde_json::Value,
) -> Result<(), crate::store::StoreError> {
    write_with_code(deps, row, template, to, data, false).await
}

async fn write_with_code(
    deps: &crate::deps::Env,
    row: &crate::store::code::CodeRow,
    template: &str,
    to: &str,
    data: &serde_json::Value,
    deliver: bool,
) -> Result<(), crate::store::StoreError> {
    use crate::store::StoreError;
    let kind = message::TemplateType::parse(template)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown courier template {template:?}")))?;
    let rendered = templates::render(&deps.config, kind, data).map_err(|e| {
        tracing::error!(template, error = %e, "rendering a courier template failed");
        StoreError::Corrupt(format!("courier template {template}: {e}"))
    })?;
    let msg = message::NewMessage::new(to, kind, rendered, data.clone(), deps.clock.now());
    let store = &deps.store;
    crate::with_tx!(store, tx => {
        crate::replace_code!(tx, row);
        crate::store::courier::insert_courier_message!(tx, &msg);
        if !deliver {
            sqlx::query("DELETE FROM courier_messages WHERE id = $1")
                .bind(msg.id)
                .execute(&mut *tx)
                .await?;
        }
        Ok::<(), StoreError>(())
    })?;
    if deliver {
        store.wake_courier();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn startup_needs_smtp_only_when_mail_is_sent_outside_dev() {
        let code_off = json!({"selfservice": {"methods": {"code": {"enabled": false}}}});
        let c = Config::from_value(code_off.clone(), false).unwrap();
        assert!(mail_senders(&c).is_empty());
        assert!(setup(&c).unwrap().is_none());

        let c = Config::from_value(json!({}), false).unwrap();
        let e = setup(&c).unwrap_err().to_string();
        assert!(e.contains("courier.smtp.connection_uri"), "{e}");
        assert!(e.contains("selfservice.methods.code"), "{e}");
        assert!(
            setup(&Config::from_value(json!({}), true).unwrap()).unwrap().is_none(),
            "--dev keeps mail queued"
        );

        let mut recovery = code_off;
        recovery["selfservice"]["flows"] = json!({"recovery": {"enabled": true}});
        let c = Config::from_value(recovery, false).unwrap();
        assert_eq!(mail_senders(&c), vec!["selfservice.flows.recovery"]);
    }
}
