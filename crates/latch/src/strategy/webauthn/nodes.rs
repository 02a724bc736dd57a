//! Security-key form nodes (group `webauthn`). Kratos: `selfservice/strategy/webauthn/nodes.go`.

use serde_json::Value;

use crate::text::UiText;
use crate::ui::{Group, InputType, Node, Trigger};

/// A button running `trigger` with the ceremony options as its value and, as Kratos does,
/// the options as the argument of the deprecated inline `onclick`.
pub fn trigger_button(name: &str, trigger: Trigger, options: &Value, label: UiText) -> Node {
    let json = options.to_string();
    Node::input(name, InputType::Button, Group::Webauthn)
        .value(json.clone())
        .onclick_trigger(trigger)
        .onclick(format!("window.{}({json})", trigger.as_str()))
        .label(label)
}

/// A hidden input of the group.
pub fn hidden(name: &str) -> Node {
    Node::input(name, InputType::Hidden, Group::Webauthn)
}
