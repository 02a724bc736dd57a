//! Backup-code form nodes (group `lookup_secret`). Kratos: `selfservice/strategy/lookup/nodes.go`.

use crate::text::{self, UiText};
use crate::ui::{Group, InputType, Node};

fn button(name: &str, label: UiText) -> Node {
    Node::input(name, InputType::Submit, Group::LookupSecret)
        .value("true")
        .label(label)
}

/// "Generate new backup recovery codes" (1050008).
pub fn regenerate() -> Node {
    button("lookup_secret_regenerate", text::settings_regenerate_lookup())
}

/// "Reveal backup recovery codes" (1050007).
pub fn reveal() -> Node {
    button("lookup_secret_reveal", text::settings_reveal_lookup())
}

/// "Confirm backup recovery codes" (1050011).
pub fn confirm() -> Node {
    button("lookup_secret_confirm", text::settings_lookup_confirm())
}

/// "Disable this method" (1050016).
pub fn disable() -> Node {
    button("lookup_secret_disable", text::settings_disable_lookup())
}

/// The codes as text (1050015, label 1050010): one entry per code.
pub fn codes(secrets: &[UiText]) -> Node {
    Node::text(
        "lookup_secret_codes",
        text::settings_lookup_secret_list(secrets),
        Group::LookupSecret,
    )
    .label(text::settings_lookup_secrets_label())
}

/// The code input of an `aal2` login (label 1010007).
pub fn login_code() -> Node {
    Node::input("lookup_secret", InputType::Text, Group::LookupSecret)
        .value("")
        .required()
        .label(text::login_lookup_label())
}

/// The submit button `method=lookup_secret` (1010010).
pub fn submit() -> Node {
    Node::input("method", InputType::Submit, Group::LookupSecret)
        .value("lookup_secret")
        .label(text::login_lookup())
}
