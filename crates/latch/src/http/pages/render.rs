//! Renders any flow's `ui` container as a server-side HTML form: every group, every node
//! type, node and global messages. Works without JavaScript except for nodes that carry a
//! trigger (WebAuthn), which `latch.js` wires up through `data-*` attributes.

use std::collections::HashSet;

use serde_json::Value;

use super::html::{Attrs, esc, safe_href};
use super::i18n::{Locale, Phrase};
use crate::text::{TextType, UiText};
use crate::ui::{Attributes, Container, Group, InputAttributes, InputType, Node};

/// What rendering a form produced besides the HTML.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The markup.
    pub html: String,
    /// Nonces of the script nodes (for the page's Content-Security-Policy).
    pub nonces: Vec<String>,
}

/// Global messages (`ui.messages`): errors are alerts, the rest are status updates.
pub fn messages(list: &[UiText], locale: Locale) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut out = String::from("<div class=\"messages\">\n");
    for m in list {
        let (class, role) = match m.r#type {
            TextType::Error => ("msg msg-error", "alert"),
            TextType::Success => ("msg msg-success", "status"),
            TextType::Info => ("msg msg-info", "status"),
        };
        out.push_str(&format!(
            "<p class=\"{class}\" role=\"{role}\" data-message-id=\"{}\">{}</p>\n",
            m.id,
            esc(&locale.text(m))
        ));
    }
    out.push_str("</div>\n");
    out
}

fn is_visible(n: &Node) -> bool {
    match &n.attributes {
        Attributes::Input(a) => a.r#type != InputType::Hidden,
        Attributes::Script(_) => false,
        _ => true,
    }
}

fn value_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn input_type(t: InputType) -> &'static str {
    match t {
        InputType::Text => "text",
        InputType::Password => "password",
        InputType::Number => "number",
        InputType::Checkbox => "checkbox",
        InputType::Hidden => "hidden",
        InputType::Email => "email",
        InputType::Tel => "tel",
        InputType::Submit => "submit",
        InputType::Button => "button",
        InputType::DatetimeLocal => "datetime-local",
        InputType::Date => "date",
        InputType::Url => "url",
    }
}

fn autocomplete(a: &InputAttributes) -> Option<String> {
    a.autocomplete
        .and_then(|ac| serde_json::to_value(ac).ok())
        .and_then(|v| v.as_str().map(str::to_string))
}

/// A readable fallback label from a field name (`traits.name.first` → `Name first`).
fn humanize(name: &str) -> String {
    let tail = name.strip_prefix("traits.").unwrap_or(name);
    let words = tail.replace(['.', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Element ids derived from node names, unique within the page.
#[derive(Default)]
struct Ids(HashSet<String>);

impl Ids {
    fn make(&mut self, base: &str) -> String {
        let clean: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let mut id = format!("f-{clean}");
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("f-{clean}-{n}");
            n += 1;
        }
        id
    }
}

/// Renders node messages below a field; returns (html, id for aria-describedby, has errors).
fn node_messages(id: &str, msgs: &[UiText], locale: Locale) -> (String, Option<String>, bool) {
    if msgs.is_empty() {
        return (String::new(), None, false);
    }
    let has_error = msgs.iter().any(|m| m.r#type == TextType::Error);
    let desc = format!("{id}-messages");
    let role = if has_error { " role=\"alert\"" } else { "" };
    let mut out = format!("<div class=\"field-messages\" id=\"{desc}\"{role}>");
    for m in msgs {
        let class = match m.r#type {
            TextType::Error => "msg-error",
            TextType::Success => "msg-success",
            TextType::Info => "msg-info",
        };
        out.push_str(&format!(
            "<p class=\"{class}\" data-message-id=\"{}\">{}</p>",
            m.id,
            esc(&locale.text(m))
        ));
    }
    out.push_str("</div>\n");
    (out, Some(desc), has_error)
}

struct Ctx<'a> {
    locale: Locale,
    ids: Ids,
    /// Groups (other than `default`) that have required visible inputs.
    required_groups: HashSet<Group>,
    focused: bool,
    first_submit: bool,
    out: &'a mut Rendered,
}

/// Renders the whole container as one `<form>` posting to `ui.action`.
pub fn form(ui: &Container, locale: Locale) -> Rendered {
    let mut rendered = Rendered::default();
    let required_groups = ui
        .nodes
        .iter()
        .filter_map(|n| match &n.attributes {
            Attributes::Input(a) if a.required && n.group != Group::Default && a.r#type != InputType::Hidden => {
                Some(n.group)
            }
            _ => None,
        })
        .collect();
    rendered.html.push_str(&messages(&ui.messages, locale));
    let method = if ui.method.eq_ignore_ascii_case("get") {
        "get"
    } else {
        "post"
    };
    rendered.html.push_str(&format!(
        "<form class=\"flow\" action=\"{}\" method=\"{method}\">\n",
        esc(&safe_href(&ui.action))
    ));
    let mut cx = Ctx {
        locale,
        ids: Ids::default(),
        required_groups,
        focused: false,
        first_submit: true,
        out: &mut rendered,
    };
    let mut last_group: Option<Group> = None;
    for node in &ui.nodes {
        if is_visible(node) && node.group != Group::Default {
            // `profile` nodes after a method are navigation ("Back"), not another method.
            if let Some(prev) = last_group
                && prev != node.group
                && node.group != Group::Profile
            {
                let or = esc(locale.phrase(Phrase::Or));
                cx.out.html.push_str(&format!(
                    "<div class=\"divider\" role=\"separator\"><span>{or}</span></div>\n"
                ));
            }
            last_group = Some(node.group);
        }
        node_html(&mut cx, node);
    }
    rendered.html.push_str("</form>\n");
    rendered
}

/// The heading of a settings section.
fn section_title(g: Group) -> Phrase {
    match g {
        Group::Profile => Phrase::SectionProfile,
        Group::Password => Phrase::SectionPassword,
        Group::Totp => Phrase::SectionTotp,
        Group::LookupSecret => Phrase::SectionLookupSecret,
        Group::Passkey => Phrase::SectionPasskey,
        Group::Webauthn => Phrase::SectionWebauthn,
        Group::Oidc | Group::Saml => Phrase::SectionOidc,
        Group::Code => Phrase::SectionCode,
        _ => Phrase::SectionOther,
    }
}

/// Renders a settings flow as one titled section per method group, each its own `<form>`
/// posting to `ui.action` with the shared (`default` group) fields — the CSRF token —
/// repeated, as Ory's reference UI does. A method's save therefore posts only its own
/// fields, and a required field of one method never blocks another. Groups with nothing
/// to show (the WebAuthn script alone) are rendered after the sections, outside any form.
pub fn sections(ui: &Container, locale: Locale) -> Rendered {
    let mut rendered = Rendered::default();
    rendered.html.push_str(&messages(&ui.messages, locale));
    let method = if ui.method.eq_ignore_ascii_case("get") {
        "get"
    } else {
        "post"
    };
    let mut groups: Vec<Group> = Vec::new();
    for n in &ui.nodes {
        if n.group != Group::Default && !groups.contains(&n.group) {
            groups.push(n.group);
        }
    }
    let shared: Vec<&Node> = ui.nodes.iter().filter(|n| n.group == Group::Default).collect();
    let mut ids = Ids::default();
    let mut focused = false;
    let mut hidden_only: Vec<&Node> = Vec::new();
    for g in groups {
        let nodes: Vec<&Node> = ui.nodes.iter().filter(|n| n.group == g).collect();
        if !nodes.iter().any(|n| is_visible(n)) {
            hidden_only.extend(nodes);
            continue;
        }
        let heading = ids.make(&format!("section-{}", g.as_str()));
        rendered.html.push_str(&format!(
            "<section class=\"settings-section\" data-group=\"{}\" aria-labelledby=\"{heading}\">\n\
             <h2 id=\"{heading}\">{}</h2>\n<form class=\"flow\" action=\"{}\" method=\"{method}\">\n",
            g.as_str(),
            esc(locale.phrase(section_title(g))),
            esc(&safe_href(&ui.action))
        ));
        let mut cx = Ctx {
            locale,
            ids,
            required_groups: HashSet::new(),
            focused,
            first_submit: true,
            out: &mut rendered,
        };
        for n in shared.iter().copied().chain(nodes) {
            node_html(&mut cx, n);
        }
        ids = cx.ids;
        focused = cx.focused;
        rendered.html.push_str("</form>\n</section>\n");
    }
    let mut cx = Ctx {
        locale,
        ids,
        required_groups: HashSet::new(),
        focused,
        first_submit: false,
        out: &mut rendered,
    };
    for n in hidden_only {
        node_html(&mut cx, n);
    }
    rendered
}

fn node_html(cx: &mut Ctx<'_>, node: &Node) {
    let group = node.group.as_str();
    let label = node.meta.label.as_ref().map(|l| cx.locale.text(l));
    match &node.attributes {
        Attributes::Input(a) => input_html(cx, node, a, label),
        Attributes::Text(t) => {
            let id = cx.ids.make(&t.id);
            let mut html = format!("<div class=\"node node-text\" data-group=\"{group}\" id=\"{id}\">");
            if let Some(l) = label {
                html.push_str(&format!("<p class=\"text-label\">{}</p>", esc(&l)));
            }
            let secrets = t.text.context.get("secrets").and_then(Value::as_array);
            match secrets {
                Some(list) if !list.is_empty() => {
                    html.push_str("<ul class=\"secrets\">");
                    for s in list {
                        let shown = s
                            .get("text")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .or_else(|| s.as_str().map(str::to_string))
                            .unwrap_or_else(|| s.to_string());
                        html.push_str(&format!("<li><code>{}</code></li>", esc(&shown)));
                    }
                    html.push_str("</ul>");
                }
                _ => html.push_str(&format!(
                    "<p class=\"text\" data-message-id=\"{}\">{}</p>",
                    t.text.id,
                    esc(&cx.locale.text(&t.text))
                )),
            }
            html.push_str("</div>\n");
            cx.out.html.push_str(&html);
        }
        Attributes::Img(i) => {
            let alt = label.unwrap_or_default();
            let attrs = Attrs::new()
                .set("src", safe_img(&i.src))
                .set("alt", alt.clone())
                .opt("id", Some(&i.id))
                .opt("width", (i.width > 0).then(|| i.width.to_string()).as_deref())
                .opt("height", (i.height > 0).then(|| i.height.to_string()).as_deref());
            let caption = if alt.is_empty() {
                String::new()
            } else {
                format!("<figcaption>{}</figcaption>", esc(&alt))
            };
            cx.out.html.push_str(&format!(
                "<figure class=\"node node-img\" data-group=\"{group}\"><img{}>{caption}</figure>\n",
                attrs.render()
            ));
        }
        Attributes::A(a) => {
            let attrs = Attrs::new()
                .set("href", safe_href(&a.href))
                .opt("id", Some(&a.id))
                .set("class", "button-link")
                .set("data-group", group);
            cx.out.html.push_str(&format!(
                "<p class=\"node node-a\"><a{}>{}</a></p>\n",
                attrs.render(),
                esc(&cx.locale.text(&a.title))
            ));
        }
        Attributes::Script(s) => {
            if super::html::valid_nonce(&s.nonce) {
                cx.out.nonces.push(s.nonce.clone());
            }
            let attrs = Attrs::new()
                .set("src", safe_href(&s.src))
                .opt("type", Some(&s.r#type))
                .opt("id", Some(&s.id))
                .opt("integrity", Some(&s.integrity))
                .opt("crossorigin", Some(&s.crossorigin))
                .opt("referrerpolicy", Some(&s.referrerpolicy))
                .opt(
                    "nonce",
                    Some(&s.nonce)
                        .filter(|n| super::html::valid_nonce(n))
                        .map(|n| n.as_str()),
                )
                .flag("async", s.r#async);
            cx.out.html.push_str(&format!("<script{}></script>\n", attrs.render()));
        }
        Attributes::Div(d) => {
            let mut attrs = Attrs::new()
                .opt("id", Some(&d.id))
                .set("class", format!("node node-div {}", d.class).trim().to_string())
                .set("data-group", group);
            for (k, v) in d.data.iter().flatten() {
                let key: String = k
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect::<String>()
                    .to_ascii_lowercase();
                if !key.is_empty() {
                    attrs = attrs.set(&format!("data-{key}"), v.clone());
                }
            }
            cx.out.html.push_str(&format!("<div{}></div>\n", attrs.render()));
        }
    }
}

/// Images may be data: URLs (QR codes) or http(s).
fn safe_img(src: &str) -> String {
    let lower = src.trim().to_ascii_lowercase();
    if lower.starts_with("data:image/") {
        src.to_string()
    } else {
        safe_href(src)
    }
}

fn input_html(cx: &mut Ctx<'_>, node: &Node, a: &InputAttributes, label: Option<String>) {
    let group = node.group.as_str();
    let value = value_string(a.value.as_ref());
    let trigger = a.onclick_trigger.map(|t| t.as_str());
    let onload = a.onload_trigger.map(|t| t.as_str());
    match a.r#type {
        InputType::Hidden => {
            let attrs = Attrs::new()
                .set("type", "hidden")
                .set("name", a.name.clone())
                .set("value", value.unwrap_or_default())
                .opt("data-onload-trigger", onload);
            cx.out.html.push_str(&format!("<input{}>\n", attrs.render()));
        }
        InputType::Submit | InputType::Button => {
            let text = label
                .or_else(|| value.clone().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| humanize(&a.name));
            let primary = cx.first_submit && a.r#type == InputType::Submit;
            if a.r#type == InputType::Submit {
                cx.first_submit = false;
            }
            // Another method's required fields must not block this button; the server
            // validates what this method needs.
            // A social sign-in button needs nothing typed in: the provider supplies the traits.
            let skip_validation =
                matches!(node.group, Group::Oidc | Group::Saml) || cx.required_groups.iter().any(|g| *g != node.group);
            let kind = if a.r#type == InputType::Submit && trigger.is_none() {
                "submit"
            } else {
                "button"
            };
            let attrs = Attrs::new()
                .set("type", kind)
                .set("name", a.name.clone())
                .opt("value", value.as_deref())
                .set(
                    "class",
                    if primary {
                        "btn btn-primary"
                    } else {
                        "btn btn-secondary"
                    },
                )
                .set("data-group", group)
                .opt("data-trigger", trigger)
                .opt("data-onload-trigger", onload)
                .flag("formnovalidate", kind == "submit" && skip_validation)
                .flag("disabled", a.disabled);
            let needs_js = if trigger.is_some() {
                format!(
                    "<noscript><p class=\"msg-info\">{}</p></noscript>",
                    esc(cx.locale.phrase(Phrase::NeedsJavascript))
                )
            } else {
                String::new()
            };
            let (msgs, _, _) = node_messages(&cx.ids.make(&a.name), &node.messages, cx.locale);
            cx.out.html.push_str(&format!(
                "<div class=\"node node-button\"><button{}>{}</button>{needs_js}{msgs}</div>\n",
                attrs.render(),
                esc(&text)
            ));
        }
        _ => {
            let id = cx.ids.make(&a.name);
            let text = label.unwrap_or_else(|| humanize(&a.name));
            let (msgs, desc, has_error) = node_messages(&id, &node.messages, cx.locale);
            let focus = has_error && !cx.focused;
            if focus {
                cx.focused = true;
            }
            let mut attrs = Attrs::new().set("id", id.clone()).set("name", a.name.clone());
            let checkbox = a.r#type == InputType::Checkbox;
            if !a.options.is_empty() {
                attrs = attrs
                    .flag("required", a.required)
                    .flag("disabled", a.disabled)
                    .opt("aria-describedby", desc.as_deref())
                    .flag("autofocus", focus);
                if has_error {
                    attrs = attrs.set("aria-invalid", "true");
                }
                let mut opts = String::new();
                for o in &a.options {
                    let ov = value_string(Some(&o.value)).unwrap_or_default();
                    let sel = if value.as_deref() == Some(ov.as_str()) {
                        " selected"
                    } else {
                        ""
                    };
                    opts.push_str(&format!("<option value=\"{}\"{sel}>{}</option>", esc(&ov), esc(&ov)));
                }
                cx.out.html.push_str(&format!(
                    "<div class=\"node node-input\" data-group=\"{group}\"><label for=\"{id}\">{}</label>\
                     <select{}>{opts}</select>{msgs}</div>\n",
                    esc(&text),
                    attrs.render()
                ));
                return;
            }
            attrs = attrs.set("type", input_type(a.r#type));
            if checkbox {
                let checked = matches!(a.value, Some(Value::Bool(true)))
                    || matches!(&a.value, Some(Value::String(s)) if s == "true");
                attrs = attrs.set("value", "true").flag("checked", checked);
            } else if a.r#type != InputType::Password {
                attrs = attrs.opt("value", value.as_deref());
            }
            attrs = attrs
                .flag("required", a.required)
                .flag("disabled", a.disabled)
                .opt("autocomplete", autocomplete(a).as_deref())
                .opt("pattern", Some(a.pattern.as_str()))
                .opt(
                    "maxlength",
                    (a.maxlength > 0).then(|| a.maxlength.to_string()).as_deref(),
                )
                .opt("aria-describedby", desc.as_deref())
                .opt("data-trigger", trigger)
                .opt("data-onload-trigger", onload)
                .set("data-group", group)
                .flag("autofocus", focus);
            if has_error {
                attrs = attrs.set("aria-invalid", "true");
            }
            if a.name == "code" || autocomplete(a).as_deref() == Some("one-time-code") {
                attrs = attrs.set("inputmode", "numeric");
            }
            let req = if a.required {
                "<span class=\"req\" aria-hidden=\"true\"> *</span>"
            } else {
                ""
            };
            if checkbox {
                cx.out.html.push_str(&format!(
                    "<div class=\"node node-check\" data-group=\"{group}\"><input{}><label for=\"{id}\">{}{req}</label>{msgs}</div>\n",
                    attrs.render(),
                    esc(&text)
                ));
            } else {
                cx.out.html.push_str(&format!(
                    "<div class=\"node node-input\" data-group=\"{group}\"><label for=\"{id}\">{}{req}</label><input{}>{msgs}</div>\n",
                    esc(&text),
                    attrs.render()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TextType;
    use crate::ui::{Node, ScriptAttributes, Trigger};

    fn container() -> Container {
        let mut ui = Container::new("http://localhost:4433/self-service/login?flow=1");
        ui.append(Node::input("csrf_token", InputType::Hidden, Group::Default));
        ui.set_value("csrf_token", "tok\"en");
        let mut email = Node::input("identifier", InputType::Text, Group::Default);
        email.meta.label = Some(UiText::new(1_070_004, TextType::Info, "ID"));
        email.messages.push(UiText::new(
            4_000_002,
            TextType::Error,
            "Property identifier is missing.",
        ));
        ui.append(email);
        let mut pw = Node::input("password", InputType::Password, Group::Password);
        if let Attributes::Input(a) = &mut pw.attributes {
            a.required = true;
        }
        ui.append(pw);
        let mut submit = Node::input("method", InputType::Submit, Group::Password);
        if let Attributes::Input(a) = &mut submit.attributes {
            a.value = Some(Value::String("password".into()));
        }
        ui.append(submit);
        let mut code = Node::input("method", InputType::Submit, Group::Code);
        if let Attributes::Input(a) = &mut code.attributes {
            a.value = Some(Value::String("code".into()));
        }
        ui.append(code);
        let mut pk = Node::input("passkey_login_trigger", InputType::Button, Group::Passkey);
        if let Attributes::Input(a) = &mut pk.attributes {
            a.onclick_trigger = Some(Trigger::PasskeyLogin);
        }
        ui.append(pk);
        ui.append(Node {
            r#type: crate::ui::NodeType::Script,
            group: Group::Webauthn,
            attributes: Attributes::Script(ScriptAttributes {
                src: "http://localhost:4433/.well-known/ory/webauthn.js".into(),
                r#async: true,
                referrerpolicy: "no-referrer".into(),
                crossorigin: "anonymous".into(),
                integrity: "sha512-abc".into(),
                r#type: "text/javascript".into(),
                id: "webauthn_script".into(),
                nonce: "6f0e6a3c-8d51-4b8e-a3a4-2f7a9a0e1c11".into(),
            }),
            messages: vec![],
            meta: Default::default(),
        });
        ui
    }

    #[test]
    fn settings_render_one_form_per_method() {
        let mut ui = Container::new("http://localhost:4433/self-service/settings?flow=1");
        ui.append(Node::input("csrf_token", InputType::Hidden, Group::Default));
        ui.set_value("csrf_token", "tok");
        let mut pw = Node::input("password", InputType::Password, Group::Password);
        if let Attributes::Input(a) = &mut pw.attributes {
            a.required = true;
        }
        ui.append(pw);
        ui.append(Node::input("method", InputType::Submit, Group::Password));
        ui.append(Node::input("totp_code", InputType::Text, Group::Totp));
        ui.append(Node::input("method", InputType::Submit, Group::Totp));
        ui.append(Node::script_with(
            "webauthn_script",
            Group::Webauthn,
            "http://localhost:4433/.well-known/ory/webauthn.js",
            "",
            "",
        ));
        let h = sections(&ui, Locale::En).html;
        assert_eq!(h.matches("<form ").count(), 2, "{h}");
        assert_eq!(h.matches("name=\"csrf_token\" value=\"tok\"").count(), 2, "{h}");
        assert!(h.contains("<h2 id=\"f-section-password\">Password</h2>"), "{h}");
        assert!(h.contains("<h2 id=\"f-section-totp\">Authenticator app</h2>"), "{h}");
        assert!(!h.contains("formnovalidate"), "each form holds one method: {h}");
        let script = h.find("<script").expect("the script is rendered");
        assert!(script > h.rfind("</form>").unwrap(), "{h}");
        // Ids stay unique across the forms.
        assert_eq!(h.matches("id=\"f-password\"").count(), 1, "{h}");
    }

    #[test]
    fn renders_every_node_accessibly() {
        let r = form(&container(), Locale::En);
        let h = &r.html;
        assert!(h.contains("action=\"http://localhost:4433/self-service/login?flow=1\" method=\"post\""));
        assert!(h.contains("name=\"csrf_token\" value=\"tok&quot;en\""), "{h}");
        assert!(h.contains("<label for=\"f-identifier\">ID</label>"), "{h}");
        assert!(h.contains("aria-describedby=\"f-identifier-messages\""), "{h}");
        assert!(h.contains("id=\"f-identifier-messages\" role=\"alert\""), "{h}");
        assert!(h.contains("aria-invalid=\"true\""), "{h}");
        assert!(h.contains("autofocus"), "{h}");
        assert!(
            h.contains("value=\"code\" class=\"btn btn-secondary\" data-group=\"code\" formnovalidate"),
            "{h}"
        );
        assert!(h.contains("data-trigger=\"oryPasskeyLogin\""), "{h}");
        assert!(h.contains("nonce=\"6f0e6a3c-8d51-4b8e-a3a4-2f7a9a0e1c11\""), "{h}");
        assert!(h.contains("integrity=\"sha512-abc\""), "{h}");
        assert!(!h.contains("onclick"), "no inline JS: {h}");
        assert_eq!(r.nonces, vec!["6f0e6a3c-8d51-4b8e-a3a4-2f7a9a0e1c11".to_string()]);
    }
}
