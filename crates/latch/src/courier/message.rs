//! Outbox messages: what is enqueued, what is stored, and the Kratos JSON the admin API shows.
//! Kratos: `courier/message.go`, `courier/message_dispatch.go`.

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::templates::Rendered;
use crate::clock::rfc3339;

/// Which template a message was rendered from; stored as `template_type`.
/// Kratos: `template.TemplateType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateType {
    /// The code that finishes a registration.
    RegistrationCodeValid,
    /// The code that signs in.
    LoginCodeValid,
    /// The code that verifies an address.
    VerificationCodeValid,
    /// The code that recovers an account.
    RecoveryCodeValid,
    /// The link that recovers an account (`link` method).
    RecoveryValid,
    /// Recovery was asked for an unknown address (`link` method).
    RecoveryInvalid,
    /// The link that verifies an address (`link` method).
    VerificationValid,
    /// Verification was asked for an unknown address (`link` method).
    VerificationInvalid,
    /// A notice to a previous address that the account's addresses changed
    /// (`notify_previous_addresses` settings hook).
    VerifiableAddressChanged,
}

impl TemplateType {
    /// Every template type Latch renders.
    pub const ALL: [TemplateType; 9] = [
        TemplateType::RegistrationCodeValid,
        TemplateType::LoginCodeValid,
        TemplateType::VerificationCodeValid,
        TemplateType::RecoveryCodeValid,
        TemplateType::RecoveryValid,
        TemplateType::RecoveryInvalid,
        TemplateType::VerificationValid,
        TemplateType::VerificationInvalid,
        TemplateType::VerifiableAddressChanged,
    ];

    /// The wire name (`login_code_valid`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateType::RegistrationCodeValid => "registration_code_valid",
            TemplateType::LoginCodeValid => "login_code_valid",
            TemplateType::VerificationCodeValid => "verification_code_valid",
            TemplateType::RecoveryCodeValid => "recovery_code_valid",
            TemplateType::RecoveryValid => "recovery_valid",
            TemplateType::RecoveryInvalid => "recovery_invalid",
            TemplateType::VerificationValid => "verification_valid",
            TemplateType::VerificationInvalid => "verification_invalid",
            TemplateType::VerifiableAddressChanged => "verifiable_address_changed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<TemplateType> {
        TemplateType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The key under `courier.templates` and the folder under `courier.template_override_path`
    /// (`login_code`, `recovery`, …); the state below it is [`TemplateType::state`].
    pub fn config_key(self) -> &'static str {
        match self {
            TemplateType::RegistrationCodeValid => "registration_code",
            TemplateType::LoginCodeValid => "login_code",
            TemplateType::VerificationCodeValid => "verification_code",
            TemplateType::RecoveryCodeValid => "recovery_code",
            TemplateType::RecoveryValid | TemplateType::RecoveryInvalid => "recovery",
            TemplateType::VerificationValid | TemplateType::VerificationInvalid => "verification",
            TemplateType::VerifiableAddressChanged => "verifiable_address_changed",
        }
    }

    /// `valid` or `invalid`: the key below [`TemplateType::config_key`] (Kratos'
    /// `courier.templates.recovery.invalid.email`); empty for notices, which Kratos keys
    /// directly (`courier.templates.verifiable_address_changed.email`).
    pub fn state(self) -> &'static str {
        match self {
            TemplateType::RecoveryInvalid | TemplateType::VerificationInvalid => "invalid",
            TemplateType::VerifiableAddressChanged => "",
            _ => "valid",
        }
    }

    /// The name Kratos' template model gives the code (`login_code`, …), aliased in templates.
    pub fn code_field(self) -> &'static str {
        self.config_key()
    }
}

/// Delivery state of a message. Kratos: `courierMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// Waiting for its next attempt.
    Queued,
    /// Claimed by a worker that is sending it.
    Processing,
    /// Accepted by the SMTP server.
    Sent,
    /// Given up after `courier.message_retries` failed attempts.
    Abandoned,
}

impl MessageStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Processing => "processing",
            MessageStatus::Sent => "sent",
            MessageStatus::Abandoned => "abandoned",
        }
    }

    /// Parses a wire name (exact, as Kratos).
    pub fn parse(s: &str) -> Option<MessageStatus> {
        [
            MessageStatus::Queued,
            MessageStatus::Processing,
            MessageStatus::Sent,
            MessageStatus::Abandoned,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// A message ready to be stored: rendered already, so the outbox holds its final subject and
/// bodies (as Kratos stores them). Build it with [`NewMessage::new`].
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Message id (also used in the `Message-ID` header).
    pub id: Uuid,
    /// The email address it goes to.
    pub recipient: String,
    /// The template it was rendered from.
    pub template_type: TemplateType,
    /// Rendered subject.
    pub subject: String,
    /// Rendered plain-text body (Kratos' `body`).
    pub body: String,
    /// Rendered HTML alternative, if any.
    pub body_html: Option<String>,
    /// The data the templates saw (Kratos keeps it as `template_data`; never shown by the API).
    pub template_data: Value,
    /// Enqueue time from the injected clock; also the first attempt time.
    pub created_at: OffsetDateTime,
}

impl NewMessage {
    /// A message with a fresh id from rendered templates.
    pub fn new(
        recipient: impl Into<String>,
        template_type: TemplateType,
        rendered: Rendered,
        template_data: Value,
        now: OffsetDateTime,
    ) -> NewMessage {
        NewMessage {
            id: Uuid::new_v4(),
            recipient: recipient.into(),
            template_type,
            subject: rendered.subject,
            body: rendered.body,
            body_html: Some(rendered.body_html),
            template_data,
            created_at: now,
        }
    }
}

/// One delivery attempt. Kratos: `messageDispatch`.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Attempt id.
    pub id: Uuid,
    /// The message.
    pub message_id: Uuid,
    /// `success` or `failed`.
    pub status: String,
    /// What went wrong (herodot-shaped), for failed attempts.
    pub error: Option<Value>,
    /// When the attempt ended.
    pub created_at: OffsetDateTime,
    /// Same as `created_at` (attempts are never changed).
    pub updated_at: OffsetDateTime,
}

/// A stored message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Message id.
    pub id: Uuid,
    /// Delivery state.
    pub status: MessageStatus,
    /// Recipient address.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML alternative.
    pub body_html: Option<String>,
    /// Wire name of the template (kept as text so rows from newer versions still load).
    pub template_type: String,
    /// Template data.
    pub template_data: Value,
    /// Attempts made so far.
    pub send_count: i32,
    /// Not to be attempted before this time.
    pub next_attempt_at: OffsetDateTime,
    /// Enqueue time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Attempts, newest first; loaded only for the single-message view.
    pub dispatches: Vec<Dispatch>,
}

/// What non-dev servers show instead of subjects and bodies (they carry codes), as Kratos.
pub const REDACTED: &str = "<redacted-unless-dev-mode>";

impl Message {
    /// Kratos' message JSON. `dispatches` appears only when loaded and non-empty (Kratos:
    /// `omitempty`, filled only by `getCourierMessage`); `redact` hides subject and body.
    pub fn to_json(&self, redact: bool) -> Value {
        let (subject, body) = if redact {
            (REDACTED, REDACTED)
        } else {
            (self.subject.as_str(), self.body.as_str())
        };
        let mut v = json!({
            "id": self.id,
            "status": self.status.as_str(),
            "type": "email",
            "recipient": self.recipient,
            "body": body,
            "subject": subject,
            "template_type": self.template_type,
            "channel": "email",
            "send_count": self.send_count,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        });
        if !self.dispatches.is_empty()
            && let Some(obj) = v.as_object_mut()
        {
            let list: Vec<Value> = self.dispatches.iter().map(Dispatch::to_json).collect();
            obj.insert("dispatches".into(), Value::Array(list));
        }
        v
    }
}

impl Dispatch {
    /// Kratos' dispatch JSON (`error` omitted when empty).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "message_id": self.message_id,
            "status": self.status,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        });
        if let (Some(e), Some(obj)) = (&self.error, v.as_object_mut()) {
            obj.insert("error".into(), e.clone());
        }
        v
    }
}

/// `j***@example.com`: enough to correlate log lines, not enough to identify anyone.
pub fn redact_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_types_round_trip() {
        for t in TemplateType::ALL {
            assert_eq!(TemplateType::parse(t.as_str()), Some(t));
            assert!(t.as_str().starts_with(t.config_key()));
        }
        assert_eq!(MessageStatus::parse("sent"), Some(MessageStatus::Sent));
        assert_eq!(MessageStatus::parse("Sent"), None);
    }

    #[test]
    fn outside_dev_subject_and_body_are_redacted() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let m = Message {
            id: Uuid::nil(),
            status: MessageStatus::Queued,
            recipient: "jane@example.com".into(),
            subject: "123456 is your code".into(),
            body: "123456".into(),
            body_html: Some("<p>123456</p>".into()),
            template_type: "login_code_valid".into(),
            template_data: json!({"code": "123456"}),
            send_count: 0,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            dispatches: vec![],
        };
        let shown = m.to_json(false);
        assert_eq!(shown["body"], "123456");
        let hidden = m.to_json(true);
        assert_eq!(hidden["body"], REDACTED);
        assert_eq!(hidden["subject"], REDACTED);
        assert!(!hidden.to_string().contains("123456"));
        assert_eq!(hidden["recipient"], "jane@example.com");
    }

    #[test]
    fn addresses_are_redacted() {
        assert_eq!(redact_address("jane@example.com"), "j***@example.com");
        assert_eq!(redact_address("nope"), "***");
    }
}
