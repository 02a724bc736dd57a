//! UI nodes: the form fields, texts, images, links, scripts and divisions a
//! flow's `ui.nodes` carries, with Kratos' exact JSON shape.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::text::UiText;

/// Kind of a node; mirrored as `attributes.node_type`.
/// Kratos: `node.UiNodeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeType {
    /// A form input (`<input>`).
    #[serde(rename = "input")]
    Input,
    /// A text block.
    #[serde(rename = "text")]
    Text,
    /// An image.
    #[serde(rename = "img")]
    Img,
    /// A link.
    #[serde(rename = "a")]
    A,
    /// A script tag (browser flows only).
    #[serde(rename = "script")]
    Script,
    /// A division (`<div>`).
    #[serde(rename = "div")]
    Div,
}

impl NodeType {
    /// Wire name of the node type. Kratos: `node.UiNodeType.String`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Text => "text",
            Self::Img => "img",
            Self::A => "a",
            Self::Script => "script",
            Self::Div => "div",
        }
    }
}

/// Which method (strategy) a node belongs to; UIs render groups as sections.
/// Kratos: `node.UiNodeGroup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    /// Shared fields (csrf_token, identifier, traits). Kratos: `node.DefaultGroup`.
    #[serde(rename = "default")]
    Default,
    /// Password method. Kratos: `node.PasswordGroup`.
    #[serde(rename = "password")]
    Password,
    /// Social sign-in. Kratos: `node.OpenIDConnectGroup`.
    #[serde(rename = "oidc")]
    Oidc,
    /// Profile (traits) method. Kratos: `node.ProfileGroup`.
    #[serde(rename = "profile")]
    Profile,
    /// Link method (recovery/verification). Kratos: `node.LinkGroup`.
    #[serde(rename = "link")]
    Link,
    /// One-time code method. Kratos: `node.CodeGroup`.
    #[serde(rename = "code")]
    Code,
    /// TOTP method. Kratos: `node.TOTPGroup`.
    #[serde(rename = "totp")]
    Totp,
    /// Backup codes method. Kratos: `node.LookupGroup`.
    #[serde(rename = "lookup_secret")]
    LookupSecret,
    /// WebAuthn (security keys; also hosts the script node). Kratos: `node.WebAuthnGroup`.
    #[serde(rename = "webauthn")]
    Webauthn,
    /// Passkey method. Kratos: `node.PasskeyGroup`.
    #[serde(rename = "passkey")]
    Passkey,
    /// Identifier-first login step. Kratos: `node.IdentifierFirstGroup`.
    #[serde(rename = "identifier_first")]
    IdentifierFirst,
    /// Captcha. Kratos: `node.CaptchaGroup`.
    #[serde(rename = "captcha")]
    Captcha,
    /// SAML. Kratos: `node.SAMLGroup`.
    #[serde(rename = "saml")]
    Saml,
    /// DeviceAuthn (accepted when reading, for completeness). Kratos: `node.DeviceAuthnGroup`.
    #[serde(rename = "deviceauthn")]
    Deviceauthn,
}

impl Group {
    /// Wire name of the group. Kratos: `node.UiNodeGroup.String`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Password => "password",
            Self::Oidc => "oidc",
            Self::Profile => "profile",
            Self::Link => "link",
            Self::Code => "code",
            Self::Totp => "totp",
            Self::LookupSecret => "lookup_secret",
            Self::Webauthn => "webauthn",
            Self::Passkey => "passkey",
            Self::IdentifierFirst => "identifier_first",
            Self::Captcha => "captcha",
            Self::Saml => "saml",
            Self::Deviceauthn => "deviceauthn",
        }
    }
}

/// HTML input type of an input node. Kratos: `node.UiNodeInputAttributeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InputType {
    /// `text`
    #[serde(rename = "text")]
    Text,
    /// `password`
    #[serde(rename = "password")]
    Password,
    /// `number`
    #[serde(rename = "number")]
    Number,
    /// `checkbox`
    #[serde(rename = "checkbox")]
    Checkbox,
    /// `hidden`
    #[serde(rename = "hidden")]
    Hidden,
    /// `email`
    #[serde(rename = "email")]
    Email,
    /// `tel`
    #[serde(rename = "tel")]
    Tel,
    /// `submit`
    #[serde(rename = "submit")]
    Submit,
    /// `button`
    #[serde(rename = "button")]
    Button,
    /// `datetime-local`
    #[serde(rename = "datetime-local")]
    DatetimeLocal,
    /// `date`
    #[serde(rename = "date")]
    Date,
    /// `url`
    #[serde(rename = "url")]
    Url,
}

/// HTML `autocomplete` hint of an input node.
/// Kratos: `node.UiNodeInputAttributeAutocomplete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Autocomplete {
    /// `email`
    #[serde(rename = "email")]
    Email,
    /// `tel`
    #[serde(rename = "tel")]
    Tel,
    /// `url`
    #[serde(rename = "url")]
    Url,
    /// `current-password`
    #[serde(rename = "current-password")]
    CurrentPassword,
    /// `new-password`
    #[serde(rename = "new-password")]
    NewPassword,
    /// `one-time-code`
    #[serde(rename = "one-time-code")]
    OneTimeCode,
    /// `username`
    #[serde(rename = "username")]
    Username,
    /// `username webauthn` (conditional passkey UI).
    #[serde(rename = "username webauthn")]
    UsernameWebauthn,
}

/// Name of a JavaScript function (from `webauthn.js`) a UI calls on click or
/// on load. Kratos: `js.WebAuthnTriggers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Trigger {
    /// `oryWebAuthnRegistration`
    #[serde(rename = "oryWebAuthnRegistration")]
    WebAuthnRegistration,
    /// `oryWebAuthnLogin`
    #[serde(rename = "oryWebAuthnLogin")]
    WebAuthnLogin,
    /// `oryPasskeyLogin`
    #[serde(rename = "oryPasskeyLogin")]
    PasskeyLogin,
    /// `oryPasskeyLoginAutocompleteInit`
    #[serde(rename = "oryPasskeyLoginAutocompleteInit")]
    PasskeyLoginAutocompleteInit,
    /// `oryPasskeyRegistration`
    #[serde(rename = "oryPasskeyRegistration")]
    PasskeyRegistration,
    /// `oryPasskeySettingsRegistration`
    #[serde(rename = "oryPasskeySettingsRegistration")]
    PasskeySettingsRegistration,
}

impl Trigger {
    /// The function name. Kratos: the `js.WebAuthnTriggers` string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebAuthnRegistration => "oryWebAuthnRegistration",
            Self::WebAuthnLogin => "oryWebAuthnLogin",
            Self::PasskeyLogin => "oryPasskeyLogin",
            Self::PasskeyLoginAutocompleteInit => "oryPasskeyLoginAutocompleteInit",
            Self::PasskeyRegistration => "oryPasskeyRegistration",
            Self::PasskeySettingsRegistration => "oryPasskeySettingsRegistration",
        }
    }

    /// The deprecated inline handler, `window.<name>()`, Kratos still emits in
    /// `onclick`/`onload` for browser flows. Kratos: `WebAuthnTriggers.String() + "()"`.
    pub fn inline_js(self) -> String {
        format!("window.{}()", self.as_str())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn value_absent(v: &Option<Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// One allowed value of an input backed by a schema `enum`.
/// Kratos: `node.InputAttributesOption`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputOption {
    /// The value submitted when this option is chosen.
    pub value: Value,
}

/// Attributes of an input node. Kratos: `node.InputAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAttributes {
    /// Form field name; the node's identity.
    pub name: String,
    /// HTML input type.
    pub r#type: InputType,
    /// Current value; omitted when `None`/`null` (an empty string is kept,
    /// as Go keeps a non-nil interface holding `""`).
    #[serde(default, skip_serializing_if = "value_absent")]
    pub value: Option<Value>,
    /// Whether the field must be filled; omitted when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Autocomplete hint; omitted when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocomplete: Option<Autocomplete>,
    /// Legacy attribute-level label (Kratos puts labels in `meta`); omitted when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<UiText>,
    /// Validation regex; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pattern: String,
    /// Whether the field is disabled; always serialized.
    #[serde(default)]
    pub disabled: bool,
    /// Deprecated inline click handler; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub onclick: String,
    /// Function to call on click; omitted when unset.
    #[serde(default, rename = "onclickTrigger", skip_serializing_if = "Option::is_none")]
    pub onclick_trigger: Option<Trigger>,
    /// Deprecated inline load handler; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub onload: String,
    /// Function to call on load; omitted when unset.
    #[serde(default, rename = "onloadTrigger", skip_serializing_if = "Option::is_none")]
    pub onload_trigger: Option<Trigger>,
    /// Maximum length; omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub maxlength: u32,
    /// Allowed values (from a schema `enum`); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<InputOption>,
}

/// Attributes of a text node. Kratos: `node.TextAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextAttributes {
    /// The text to show.
    pub text: UiText,
    /// Node identity.
    pub id: String,
}

/// Attributes of an image node. Kratos: `node.ImageAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAttributes {
    /// Image URL (often a data: URL, e.g. a TOTP QR code).
    pub src: String,
    /// Node identity.
    pub id: String,
    /// Width in pixels.
    pub width: i64,
    /// Height in pixels.
    pub height: i64,
}

/// Attributes of a link node. Kratos: `node.AnchorAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorAttributes {
    /// Link target.
    pub href: String,
    /// Link text.
    pub title: UiText,
    /// Node identity.
    pub id: String,
}

/// Attributes of a script node. Kratos: `node.ScriptAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptAttributes {
    /// Script URL.
    pub src: String,
    /// Always true in Kratos.
    #[serde(rename = "async")]
    pub r#async: bool,
    /// Always `no-referrer` in Kratos.
    pub referrerpolicy: String,
    /// Always `anonymous` in Kratos.
    pub crossorigin: String,
    /// Subresource integrity hash (`sha512-…`).
    pub integrity: String,
    /// Always `text/javascript` in Kratos.
    pub r#type: String,
    /// Node identity.
    pub id: String,
    /// CSP nonce.
    pub nonce: String,
}

/// Attributes of a division node. Kratos: `node.DivisionAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivisionAttributes {
    /// CSS class; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub class: String,
    /// Node identity.
    pub id: String,
    /// `data-*` attributes; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
}

/// A node's attributes, one variant per node type; serialized as the inner
/// object followed by `"node_type"`. Kratos: `node.Attributes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// Input field.
    Input(InputAttributes),
    /// Text block.
    Text(TextAttributes),
    /// Image.
    Img(ImageAttributes),
    /// Link.
    A(AnchorAttributes),
    /// Script tag.
    Script(ScriptAttributes),
    /// Division.
    Div(DivisionAttributes),
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(flatten)]
    inner: &'a T,
    node_type: NodeType,
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let node_type = self.node_type();
        match self {
            Self::Input(inner) => Tagged { inner, node_type }.serialize(s),
            Self::Text(inner) => Tagged { inner, node_type }.serialize(s),
            Self::Img(inner) => Tagged { inner, node_type }.serialize(s),
            Self::A(inner) => Tagged { inner, node_type }.serialize(s),
            Self::Script(inner) => Tagged { inner, node_type }.serialize(s),
            Self::Div(inner) => Tagged { inner, node_type }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let kind = raw
            .get("node_type")
            .cloned()
            .ok_or_else(|| D::Error::missing_field("node_type"))?;
        let kind: NodeType = serde_json::from_value(kind).map_err(D::Error::custom)?;
        Self::from_value(kind, raw).map_err(D::Error::custom)
    }
}

impl Attributes {
    /// Node type these attributes belong to. Kratos: `Attributes.GetNodeType`.
    pub fn node_type(&self) -> NodeType {
        match self {
            Self::Input(_) => NodeType::Input,
            Self::Text(_) => NodeType::Text,
            Self::Img(_) => NodeType::Img,
            Self::A(_) => NodeType::A,
            Self::Script(_) => NodeType::Script,
            Self::Div(_) => NodeType::Div,
        }
    }

    /// Parses attributes of a known node type (the `node_type` key, if any,
    /// is ignored), as Kratos does keyed on the node's `type`.
    pub fn from_value(kind: NodeType, raw: Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            NodeType::Input => Self::Input(serde_json::from_value(raw)?),
            NodeType::Text => Self::Text(serde_json::from_value(raw)?),
            NodeType::Img => Self::Img(serde_json::from_value(raw)?),
            NodeType::A => Self::A(serde_json::from_value(raw)?),
            NodeType::Script => Self::Script(serde_json::from_value(raw)?),
            NodeType::Div => Self::Div(serde_json::from_value(raw)?),
        })
    }

    /// Identity of the node: `name` for inputs, `id` otherwise.
    /// Kratos: `Attributes.ID`.
    pub fn id(&self) -> &str {
        match self {
            Self::Input(a) => &a.name,
            Self::Text(a) => &a.id,
            Self::Img(a) => &a.id,
            Self::A(a) => &a.id,
            Self::Script(a) => &a.id,
            Self::Div(a) => &a.id,
        }
    }
}

/// Extra node information; serialized as `{}` when there is no label.
/// Kratos: `node.Meta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Label to render next to (or on) the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<UiText>,
}

/// One UI node. Kratos: `node.Node` (`uiNode` in the API spec).
///
/// On serialization `type` is taken from the attributes, so the two can
/// never disagree on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node type (kept in sync with `attributes` by the constructors).
    pub r#type: NodeType,
    /// Group (method) the node belongs to.
    pub group: Group,
    /// Type-specific attributes.
    pub attributes: Attributes,
    /// Messages attached to this node; always serialized (`[]` when empty).
    pub messages: Vec<UiText>,
    /// Label and other meta data; always serialized (`{}` when empty).
    pub meta: Meta,
}

#[derive(Serialize)]
struct NodeOut<'a> {
    r#type: NodeType,
    group: Group,
    attributes: &'a Attributes,
    messages: &'a [UiText],
    meta: &'a Meta,
}

#[derive(Deserialize)]
struct NodeIn {
    r#type: NodeType,
    group: Group,
    attributes: Value,
    #[serde(default)]
    messages: Option<Vec<UiText>>,
    #[serde(default)]
    meta: Option<Meta>,
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        NodeOut {
            r#type: self.attributes.node_type(),
            group: self.group,
            attributes: &self.attributes,
            messages: &self.messages,
            meta: &self.meta,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = NodeIn::deserialize(d)?;
        let attributes = Attributes::from_value(raw.r#type, raw.attributes)
            .map_err(|e| D::Error::custom(format!("node attributes: {e}")))?;
        Ok(Self {
            r#type: raw.r#type,
            group: raw.group,
            attributes,
            messages: raw.messages.unwrap_or_default(),
            meta: raw.meta.unwrap_or_default(),
        })
    }
}

/// Name of the CSRF input node. Kratos: `nosurfx.CSRFTokenName`.
pub const CSRF_TOKEN_NAME: &str = "csrf_token";

/// Id of the WebAuthn/passkey script node. Kratos: `node.WebAuthnScript`.
pub const WEBAUTHN_SCRIPT_ID: &str = "webauthn_script";

impl Node {
    fn with_attributes(group: Group, attributes: Attributes) -> Self {
        Self {
            r#type: attributes.node_type(),
            group,
            attributes,
            messages: Vec::new(),
            meta: Meta::default(),
        }
    }

    /// An input node without value; refine it with the builder methods.
    /// Kratos: `node.NewInputField(name, nil, group, type)`.
    pub fn input(name: impl Into<String>, r#type: InputType, group: Group) -> Self {
        Self::with_attributes(
            group,
            Attributes::Input(InputAttributes {
                name: name.into(),
                r#type,
                value: None,
                required: false,
                autocomplete: None,
                label: None,
                pattern: String::new(),
                disabled: false,
                onclick: String::new(),
                onclick_trigger: None,
                onload: String::new(),
                onload_trigger: None,
                maxlength: 0,
                options: Vec::new(),
            }),
        )
    }

    /// The hidden, required `csrf_token` input of the default group.
    /// Kratos: `node.NewCSRFNode`.
    pub fn csrf(token: impl Into<String>) -> Self {
        Self::input(CSRF_TOKEN_NAME, InputType::Hidden, Group::Default)
            .value(token.into())
            .required()
    }

    /// A text node. Kratos: `node.NewTextField`.
    pub fn text(id: impl Into<String>, text: UiText, group: Group) -> Self {
        Self::with_attributes(group, Attributes::Text(TextAttributes { text, id: id.into() }))
    }

    /// A link node. Kratos: `node.NewAnchorField`.
    pub fn anchor(id: impl Into<String>, href: impl Into<String>, title: UiText, group: Group) -> Self {
        Self::with_attributes(
            group,
            Attributes::A(AnchorAttributes {
                href: href.into(),
                title,
                id: id.into(),
            }),
        )
    }

    /// An image node. Kratos: `node.NewImageField` (+ width/height modifier).
    pub fn image(id: impl Into<String>, src: impl Into<String>, width: i64, height: i64, group: Group) -> Self {
        Self::with_attributes(
            group,
            Attributes::Img(ImageAttributes {
                src: src.into(),
                id: id.into(),
                width,
                height,
            }),
        )
    }

    /// A division node; add `class`/`data` with [`Node::class`]/[`Node::data`].
    /// Kratos: `node.NewDivisionField`.
    pub fn division(id: impl Into<String>, group: Group) -> Self {
        Self::with_attributes(
            group,
            Attributes::Div(DivisionAttributes {
                class: String::new(),
                id: id.into(),
                data: None,
            }),
        )
    }

    /// The `webauthn_script` node (group `webauthn`) that loads
    /// `/.well-known/ory/webauthn.js` in browser flows.
    /// Kratos: `webauthnx.NewWebAuthnScript`.
    pub fn script(src: impl Into<String>, integrity: impl Into<String>, nonce: impl Into<String>) -> Self {
        Self::script_with(WEBAUTHN_SCRIPT_ID, Group::Webauthn, src, integrity, nonce)
    }

    /// A script node with an explicit id and group. Kratos: `node.NewScriptField`.
    pub fn script_with(
        id: impl Into<String>,
        group: Group,
        src: impl Into<String>,
        integrity: impl Into<String>,
        nonce: impl Into<String>,
    ) -> Self {
        Self::with_attributes(
            group,
            Attributes::Script(ScriptAttributes {
                src: src.into(),
                r#async: true,
                referrerpolicy: "no-referrer".to_owned(),
                crossorigin: "anonymous".to_owned(),
                integrity: integrity.into(),
                r#type: "text/javascript".to_owned(),
                id: id.into(),
                nonce: nonce.into(),
            }),
        )
    }

    /// Identity used for lookups and upserts: `name` for inputs, `id`
    /// otherwise. Kratos: `Node.ID`.
    pub fn id(&self) -> &str {
        self.attributes.id()
    }

    /// Input attributes, if this is an input node.
    pub fn input_attributes(&self) -> Option<&InputAttributes> {
        match &self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }

    /// Mutable input attributes, if this is an input node.
    pub fn input_attributes_mut(&mut self) -> Option<&mut InputAttributes> {
        match &mut self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }

    /// The input's value (`None` for other node types or when unset).
    /// Kratos: `Node.GetValue` for inputs.
    pub fn value_ref(&self) -> Option<&Value> {
        self.input_attributes().and_then(|a| a.value.as_ref())
    }

    /// Sets the node's value the way Kratos does: an input's `value`, an
    /// image's or script's `src`, a link's `href` (strings only), a text
    /// node's text (if `value` is a uiText). Kratos: `Attributes.SetValue`.
    pub fn set_value(&mut self, value: Value) {
        match &mut self.attributes {
            Attributes::Input(a) => a.value = Some(value),
            Attributes::Img(a) => a.src = value.as_str().unwrap_or_default().to_owned(),
            Attributes::Script(a) => a.src = value.as_str().unwrap_or_default().to_owned(),
            Attributes::A(a) => a.href = value.as_str().unwrap_or_default().to_owned(),
            Attributes::Text(a) => {
                if let Ok(t) = serde_json::from_value::<UiText>(value) {
                    a.text = t;
                }
            }
            Attributes::Div(_) => {}
        }
    }

    fn map_input(mut self, f: impl FnOnce(&mut InputAttributes)) -> Self {
        if let Attributes::Input(a) = &mut self.attributes {
            f(a);
        }
        self
    }

    /// Sets the input's value (no-op on other node types).
    pub fn value(self, value: impl Into<Value>) -> Self {
        let value = value.into();
        self.map_input(|a| a.value = Some(value))
    }

    /// Marks the input required. Kratos: `node.WithRequiredInputAttribute`.
    pub fn required(self) -> Self {
        self.map_input(|a| a.required = true)
    }

    /// Sets the input's autocomplete hint.
    pub fn autocomplete(self, autocomplete: Autocomplete) -> Self {
        self.map_input(|a| a.autocomplete = Some(autocomplete))
    }

    /// Marks the input disabled.
    pub fn disabled(self) -> Self {
        self.map_input(|a| a.disabled = true)
    }

    /// Sets the input's validation pattern.
    pub fn pattern(self, pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        self.map_input(|a| a.pattern = pattern)
    }

    /// Sets the input's maximum length. Kratos: `node.WithMaxLengthInputAttribute`.
    pub fn maxlength(self, maxlength: u32) -> Self {
        self.map_input(|a| a.maxlength = maxlength)
    }

    /// Sets the input's allowed values.
    pub fn options(self, values: impl IntoIterator<Item = Value>) -> Self {
        let options = values.into_iter().map(|value| InputOption { value }).collect();
        self.map_input(|a| a.options = options)
    }

    /// Sets `onclickTrigger` and the deprecated `onclick` (`window.<name>()`).
    pub fn onclick_trigger(self, trigger: Trigger) -> Self {
        self.map_input(|a| {
            a.onclick_trigger = Some(trigger);
            a.onclick = trigger.inline_js();
        })
    }

    /// Overrides the deprecated inline `onclick` (e.g. WebAuthn registration
    /// passes the options JSON as argument).
    pub fn onclick(self, js: impl Into<String>) -> Self {
        let js = js.into();
        self.map_input(|a| a.onclick = js)
    }

    /// Sets `onloadTrigger` and the deprecated `onload` (`window.<name>()`).
    pub fn onload_trigger(self, trigger: Trigger) -> Self {
        self.map_input(|a| {
            a.onload_trigger = Some(trigger);
            a.onload = trigger.inline_js();
        })
    }

    /// Overrides the deprecated inline `onload`.
    pub fn onload(self, js: impl Into<String>) -> Self {
        let js = js.into();
        self.map_input(|a| a.onload = js)
    }

    /// Sets `meta.label`. Kratos: `Node.WithMetaLabel`.
    pub fn label(mut self, label: UiText) -> Self {
        self.meta.label = Some(label);
        self
    }

    /// Moves the node to another group.
    pub fn in_group(mut self, group: Group) -> Self {
        self.group = group;
        self
    }

    /// Adds a message to the node.
    pub fn message(mut self, message: UiText) -> Self {
        self.messages.push(message);
        self
    }

    /// Sets a division's CSS class (no-op on other node types).
    pub fn class(mut self, class: impl Into<String>) -> Self {
        if let Attributes::Div(a) = &mut self.attributes {
            a.class = class.into();
        }
        self
    }

    /// Adds a `data-*` entry to a division (no-op on other node types).
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Attributes::Div(a) = &mut self.attributes {
            a.data
                .get_or_insert_with(BTreeMap::new)
                .insert(key.into(), value.into());
        }
        self
    }

    /// Go's `fmt.Sprintf("%v", node.GetValue())`, used by Kratos' sort as
    /// the final tie-breaker.
    pub(crate) fn go_value_string(&self) -> String {
        match &self.attributes {
            Attributes::Input(a) => go_value(a.value.as_ref()),
            // *text.Message implements `error`, so %v prints its text.
            Attributes::Text(a) => a.text.text.clone(),
            Attributes::Img(a) => a.src.clone(),
            Attributes::A(a) => a.href.clone(),
            Attributes::Script(a) => a.src.clone(),
            Attributes::Div(_) => "<nil>".to_owned(),
        }
    }
}

fn go_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => crate::text::go_float(n.as_f64().unwrap_or_default()),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| go_value(Some(i))).collect();
            format!("[{}]", parts.join(" "))
        }
        Some(Value::Object(map)) => {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{}", go_value(Some(v)))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::text;
    use serde_json::json;

    #[test]
    fn csrf_node_json() {
        let n = Node::csrf("tok");
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({"type":"input","group":"default","attributes":{"name":"csrf_token","type":"hidden",
                "value":"tok","required":true,"disabled":false,"node_type":"input"},"messages":[],"meta":{}})
        );
    }

    #[test]
    fn node_type_is_last_and_empty_string_value_kept() {
        let n = Node::input("identifier", InputType::Text, Group::Default)
            .value("")
            .required()
            .autocomplete(Autocomplete::UsernameWebauthn)
            .label(text::label_id());
        let s = serde_json::to_string(&n).unwrap();
        assert_eq!(
            s,
            r#"{"type":"input","group":"default","attributes":{"name":"identifier","type":"text","value":"","required":true,"autocomplete":"username webauthn","disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070004,"text":"ID","type":"info"}}}"#
        );
        let none = Node::input("code", InputType::Text, Group::Code);
        let v = serde_json::to_value(&none).unwrap();
        assert!(v["attributes"].get("value").is_none());
        assert!(v["attributes"].get("required").is_none());
        assert_eq!(v["attributes"]["disabled"], false);
    }

    #[test]
    fn triggers() {
        let n = Node::input("passkey_login_trigger", InputType::Button, Group::Passkey)
            .value("")
            .onclick_trigger(Trigger::PasskeyLogin)
            .label(text::login_passkey());
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["attributes"]["onclick"], "window.oryPasskeyLogin()");
        assert_eq!(v["attributes"]["onclickTrigger"], "oryPasskeyLogin");
        let n = Node::input("passkey_login", InputType::Hidden, Group::Passkey)
            .onload_trigger(Trigger::PasskeyLoginAutocompleteInit);
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["attributes"]["onload"], "window.oryPasskeyLoginAutocompleteInit()");
        assert_eq!(v["attributes"]["onloadTrigger"], "oryPasskeyLoginAutocompleteInit");
    }

    #[test]
    fn other_node_types_json() {
        let s = Node::script("https://a/.well-known/ory/webauthn.js", "sha512-x", "n1");
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type":"script","group":"webauthn","attributes":{"src":"https://a/.well-known/ory/webauthn.js",
              "async":true,"referrerpolicy":"no-referrer","crossorigin":"anonymous","integrity":"sha512-x",
              "type":"text/javascript","id":"webauthn_script","nonce":"n1","node_type":"script"},"messages":[],"meta":{}})
        );
        let a = Node::anchor("continue", "https://app/", text::label_continue(), Group::Code);
        assert_eq!(
            serde_json::to_value(&a).unwrap()["attributes"],
            json!({"href":"https://app/","title":{"id":1070009,"text":"Continue","type":"info"},"id":"continue","node_type":"a"})
        );
        let t = Node::text("totp_secret_key", text::settings_totp_secret("ABC"), Group::Totp);
        assert_eq!(
            serde_json::to_value(&t).unwrap()["attributes"],
            json!({"text":{"id":1050006,"text":"ABC","type":"info","context":{"secret":"ABC"}},"id":"totp_secret_key","node_type":"text"})
        );
        let i = Node::image("totp_qr", "data:image/png;base64,AA", 256, 256, Group::Totp);
        assert_eq!(
            serde_json::to_value(&i).unwrap()["attributes"],
            json!({"src":"data:image/png;base64,AA","id":"totp_qr","width":256,"height":256,"node_type":"img"})
        );
        let d = Node::division("captcha", Group::Captcha);
        assert_eq!(
            serde_json::to_value(&d).unwrap()["attributes"],
            json!({"id":"captcha","node_type":"div"})
        );
        let d = d.class("c").data("sitekey", "k");
        assert_eq!(
            serde_json::to_value(&d).unwrap()["attributes"],
            json!({"class":"c","id":"captcha","data":{"sitekey":"k"},"node_type":"div"})
        );
    }

    #[test]
    fn round_trip_all_types() {
        let nodes = vec![
            Node::csrf("t"),
            Node::input("traits.age", InputType::Number, Group::Default)
                .value(json!(3))
                .options([json!(1), json!(3)])
                .maxlength(4)
                .pattern("^[0-9]+$")
                .disabled()
                .message(text::required("age")),
            Node::input("x", InputType::Submit, Group::Passkey).onclick_trigger(Trigger::PasskeyRegistration),
            Node::script("s", "i", "n"),
            Node::anchor("a", "h", text::label_continue(), Group::Link),
            Node::text("t", text::login_code_sent(), Group::Code),
            Node::image("q", "src", 1, 2, Group::Totp),
            Node::division("d", Group::Captcha).data("k", "v"),
        ];
        let s = serde_json::to_string(&nodes).unwrap();
        let back: Vec<Node> = serde_json::from_str(&s).unwrap();
        assert_eq!(back, nodes);
        assert_eq!(serde_json::to_string(&back).unwrap(), s);
    }

    #[test]
    fn lenient_read() {
        let n: Node = serde_json::from_str(
            r#"{"type":"input","group":"default","attributes":{"name":"a","type":"text","value":null,"node_type":"input"},"messages":null,"meta":null}"#,
        )
        .unwrap();
        assert_eq!(n.value_ref(), None);
        assert!(n.messages.is_empty());
        assert_eq!(n.meta, Meta::default());
        assert!(serde_json::from_str::<Node>(r#"{"type":"bogus","group":"default","attributes":{}}"#).is_err());
        let a: Attributes = serde_json::from_str(r#"{"id":"d","node_type":"div"}"#).unwrap();
        assert_eq!(a.node_type(), NodeType::Div);
    }

    #[test]
    fn go_value_strings() {
        let n = Node::input("a", InputType::Text, Group::Default);
        assert_eq!(n.go_value_string(), "<nil>");
        assert_eq!(n.clone().value("x").go_value_string(), "x");
        assert_eq!(n.clone().value(json!(2)).go_value_string(), "2");
        assert_eq!(n.clone().value(json!(true)).go_value_string(), "true");
        let t = Node::text("t", text::label_id(), Group::Default);
        assert_eq!(t.go_value_string(), "ID");
    }
}
