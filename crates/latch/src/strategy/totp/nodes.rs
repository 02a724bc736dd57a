//! Authenticator-app form nodes (group `totp`). Kratos: `selfservice/strategy/totp/nodes.go`.

use crate::text;
use crate::ui::{Group, InputType, Node};

/// The QR image of a new key (256×256, label 1050005).
pub fn qr(src: String) -> Node {
    Node::image("totp_qr", src, 256, 256, Group::Totp).label(text::settings_totp_qr())
}

/// The secret of a new key as text (1050006), for typing into an app (label 1050017).
pub fn secret(base32: &str) -> Node {
    Node::text("totp_secret_key", text::settings_totp_secret(base32), Group::Totp)
        .label(text::settings_totp_secret_label())
}

/// The code confirming a new key in settings (label 1070006 "Verify code").
pub fn verify_code() -> Node {
    Node::input("totp_code", InputType::Text, Group::Totp)
        .required()
        .label(text::label_verify_code())
}

/// The button removing the app (label 1050004).
pub fn unlink() -> Node {
    Node::input("totp_unlink", InputType::Submit, Group::Totp)
        .value("true")
        .required()
        .label(text::settings_unlink_totp())
}

/// The code input of an `aal2` login (label 1010006).
pub fn login_code() -> Node {
    Node::input("totp_code", InputType::Text, Group::Totp)
        .value("")
        .required()
        .label(text::login_totp_label())
}

/// The submit button `method=totp` with `label`.
pub fn submit(label: text::UiText) -> Node {
    Node::input("method", InputType::Submit, Group::Totp)
        .value("totp")
        .label(label)
}
