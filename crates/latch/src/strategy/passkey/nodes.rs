//! The passkey form nodes and the `webauthn.js` script they load.
//! Kratos: `selfservice/strategy/passkey/nodes.go`, `x/webauthnx/nodes.go`.

use base64::Engine as _;
use sha2::{Digest, Sha512};

use crate::deps::Env;
use crate::model::flow::{Flow, FlowType};
use crate::text::UiText;
use crate::ui::{Group, InputType, Node, Trigger};

/// Latch's own browser script, served at `/.well-known/ory/webauthn.js`.
pub const SCRIPT: &str = include_str!("webauthn.js");

/// `sha512-` + base64 of the SHA-512 of the served bytes (subresource integrity).
pub fn script_integrity() -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(SCRIPT.as_bytes()))
    )
}

/// The `webauthn_script` node with a fresh nonce.
pub fn script(env: &Env) -> Node {
    Node::script(
        env.public_url(".well-known/ory/webauthn.js"),
        script_integrity(),
        uuid::Uuid::new_v4().to_string(),
    )
}

/// Adds the script node to browser flows (API flows get none).
pub fn add_script(env: &Env, flow: &mut Flow) {
    if flow.flow_type == FlowType::Browser {
        flow.ui.upsert(script(env));
    }
}

/// A hidden passkey input.
pub fn hidden(name: &str, value: Option<String>) -> Node {
    let n = Node::input(name, InputType::Hidden, Group::Passkey);
    match value {
        Some(v) => n.value(v),
        None => n,
    }
}

/// A button running `trigger`; API flows keep only the trigger name, not the inline JS.
pub fn trigger_button(flow: &Flow, name: &str, trigger: Trigger, label: UiText) -> Node {
    let n = Node::input(name, InputType::Button, Group::Passkey)
        .onclick_trigger(trigger)
        .label(label);
    without_inline_js(flow, n)
}

/// Removes the deprecated `onclick`/`onload` strings for API flows.
pub fn without_inline_js(flow: &Flow, mut n: Node) -> Node {
    if flow.flow_type == FlowType::Api
        && let Some(a) = n.input_attributes_mut()
    {
        a.onclick.clear();
        a.onload.clear();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_sha512_of_the_script() {
        let i = script_integrity();
        assert!(i.starts_with("sha512-"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(i.trim_start_matches("sha512-"))
            .unwrap();
        assert_eq!(raw.len(), 64);
    }

    /// Like Kratos' script, ours submits with the native `HTMLFormElement.submit()`: a
    /// `requestSubmit()` would run a React form's own handler with stale values (Ory Elements).
    /// The browser tests (e2e/tests/elements.test.js) show the effect; this keeps it visible.
    #[test]
    fn the_script_submits_natively() {
        assert!(SCRIPT.contains("HTMLFormElement.prototype.submit.call(form)"));
        assert!(!SCRIPT.contains("requestSubmit"));
        assert!(SCRIPT.contains("mediation: \"conditional\""), "conditional UI kept");
        assert!(SCRIPT.contains("AbortController"), "abort handling kept");
    }
}
