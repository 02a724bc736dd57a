//! The UI container (`flow.ui`): form action, method, nodes and global
//! messages, plus the node operations and sort orders Kratos applies.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::node::{Attributes, CSRF_TOKEN_NAME, Group, InputType, Node};
use crate::text::UiText;

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A flow's form. Kratos: `container.Container` (`uiContainer` in the API spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Form action URL (`<public>/self-service/<flow>?flow=<id>`).
    pub action: String,
    /// Form method, always `POST`.
    pub method: String,
    /// The form's nodes, in display order.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nodes: Vec<Node>,
    /// Global messages; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub messages: Vec<UiText>,
}

/// How to order nodes: by group, then by node-name prefix, with `method`
/// last in its group and the value as final tie-breaker.
/// Kratos: the `node.SortOption`s passed to `Nodes.SortBySchema`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortSpec {
    /// Group order; groups not listed sort before all listed ones (as in Kratos).
    pub groups: Vec<Group>,
    /// Name prefixes in order; a node takes the position of the first prefix
    /// its name starts with, unmatched nodes come after all matched ones.
    pub keys: Vec<String>,
    /// Groups whose nodes keep their relative order on equal key positions
    /// instead of being ordered by value. Kratos: `node.SortStableGroups`.
    pub stable_groups: Vec<Group>,
}

impl SortSpec {
    /// The login form order. Kratos: `login.sortNodes`.
    pub fn login() -> Self {
        Self {
            groups: vec![
                Group::Oidc,
                Group::Default,
                Group::Webauthn,
                Group::Passkey,
                Group::Code,
                Group::Password,
                Group::Totp,
                Group::LookupSecret,
            ],
            keys: ["csrf_token", "identifier", "password"].map(str::to_owned).to_vec(),
            stable_groups: Vec::new(),
        }
    }

    /// The registration form order for an identity schema whose properties,
    /// in document order, are `schema_keys` (see
    /// [`crate::ui::traits::property_order`]). Kratos: `registration.SortNodes`.
    pub fn registration(schema_keys: &[String]) -> Self {
        let mut keys = password_login_order(schema_keys);
        keys.extend(["webauthn_remove", "webauthn_register_displayname", "webauthn_register"].map(str::to_owned));
        Self {
            groups: vec![
                Group::Oidc,
                Group::Saml,
                Group::Default,
                Group::Webauthn,
                Group::Passkey,
                Group::Code,
                Group::Password,
                Group::Captcha,
                Group::Profile,
            ],
            keys,
            stable_groups: Vec::new(),
        }
    }
}

/// `csrf_token`, the first schema key, `password`, then the other keys.
/// Kratos: `node.PasswordLoginOrder`.
fn password_login_order(keys: &[String]) -> Vec<String> {
    let mut out = vec![CSRF_TOKEN_NAME.to_owned()];
    if let Some((first, rest)) = keys.split_first() {
        out.push(first.clone());
        out.push("password".to_owned());
        out.extend(rest.iter().cloned());
    } else {
        out.push("password".to_owned());
    }
    out
}

impl Container {
    /// An empty `POST` form. Kratos: `container.New`.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            method: "POST".to_owned(),
            nodes: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// Replaces the first node with the same id (input name, or id), or
    /// appends the node. Kratos: `Nodes.Upsert`.
    pub fn upsert(&mut self, node: Node) {
        match self.nodes.iter_mut().find(|n| n.id() == node.id()) {
            Some(slot) => *slot = node,
            None => self.nodes.push(node),
        }
    }

    /// Appends a node even if one with the same id exists (Kratos lists a
    /// hidden and a submit `method` input side by side). Kratos: `Nodes.Append`.
    pub fn append(&mut self, node: Node) {
        self.nodes.push(node);
    }

    /// Sets (adds or replaces) the `csrf_token` node. Kratos: `Container.SetCSRF`.
    pub fn set_csrf(&mut self, token: impl Into<String>) {
        self.upsert(Node::csrf(token));
    }

    /// First node with this id. Kratos: `Nodes.Find`.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id() == name)
    }

    /// First node with this id, mutably. Kratos: `Nodes.Find`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id() == name)
    }

    /// First node with this id in this group.
    pub fn get_in_group(&self, name: &str, group: Group) -> Option<&Node> {
        self.nodes.iter().find(|n| n.group == group && n.id() == name)
    }

    /// Sets the value of the first node with this id; false if there is
    /// none. Kratos: `Nodes.SetValueAttribute`.
    pub fn set_value(&mut self, name: &str, value: impl Into<Value>) -> bool {
        match self.get_mut(name) {
            Some(node) => {
                node.set_value(value.into());
                true
            }
            None => false,
        }
    }

    /// Removes every node with one of these ids. Kratos: `Nodes.Remove`.
    pub fn remove(&mut self, names: &[&str]) {
        self.nodes.retain(|n| !names.contains(&n.id()));
    }

    /// Removes the nodes with these ids in one group. Kratos: `Nodes.RemoveInGroup`.
    pub fn remove_in_group(&mut self, group: Group, names: &[&str]) {
        self.nodes.retain(|n| !(n.group == group && names.contains(&n.id())));
    }

    /// Removes all nodes of a group. Kratos: `Nodes.RemoveGroup`.
    pub fn remove_group(&mut self, group: Group) {
        self.nodes.retain(|n| n.group != group);
    }

    /// Adds a global message. Kratos: `Container.AddMessage(group, msg)`.
    pub fn add_message(&mut self, message: UiText) {
        self.messages.push(message);
    }

    /// Adds a message to the first node with this name; if there is none, a
    /// `text` input with that name is appended to the default group to carry
    /// it. A blank name makes it a global message.
    /// Kratos: `Container.AddMessage(group, msg, name)`.
    pub fn add_node_message(&mut self, name: &str, message: UiText) {
        if name.trim().is_empty() {
            self.messages.push(message);
            return;
        }
        match self.get_mut(name) {
            Some(node) => node.messages.push(message),
            None => self
                .nodes
                .push(Node::input(name, InputType::Text, Group::Default).message(message)),
        }
    }

    /// Clears global and per-node messages. Kratos: `Container.ResetMessages`.
    pub fn reset_messages(&mut self) {
        self.reset_messages_except(&[]);
    }

    /// Clears global messages and the messages of all nodes whose id is not
    /// in `keep`. Kratos: `Container.ResetMessages(exclude...)`.
    pub fn reset_messages_except(&mut self, keep: &[&str]) {
        self.messages.clear();
        for node in &mut self.nodes {
            if !keep.contains(&node.id()) {
                node.messages.clear();
            }
        }
    }

    /// Clears all messages and the values of inputs whose name is not in
    /// `keep`. Kratos: `Container.Reset(exclude...)`.
    pub fn reset(&mut self, keep: &[&str]) {
        self.messages.clear();
        for node in &mut self.nodes {
            node.messages.clear();
            if keep.contains(&node.id()) {
                continue;
            }
            if let Some(a) = node.input_attributes_mut() {
                a.value = None;
            }
        }
    }

    /// Prepares the form for API (native) flows: drops script nodes and the
    /// deprecated inline `onclick`/`onload` handlers, keeping the
    /// `onclickTrigger`/`onloadTrigger` names.
    /// Kratos: per-strategy `if f.Type == flow.TypeAPI` branches.
    pub fn strip_js(&mut self) {
        self.nodes.retain(|n| !matches!(n.attributes, Attributes::Script(_)));
        for node in &mut self.nodes {
            if let Some(a) = node.input_attributes_mut() {
                a.onclick.clear();
                a.onload.clear();
            }
        }
    }

    /// Sorts the nodes in the login order. Kratos: `login.sortNodes`.
    pub fn sort_login(&mut self) {
        self.sort_by(&SortSpec::login());
    }

    /// Sorts the nodes in the registration order; `schema_property_order`
    /// comes from [`crate::ui::traits::property_order`].
    /// Kratos: `registration.SortNodes`.
    pub fn sort_registration(&mut self, schema_property_order: &[String]) {
        self.sort_by(&SortSpec::registration(schema_property_order));
    }

    /// Sorts the nodes as Kratos' `Nodes.SortBySchema` does, including its
    /// quirks (two stable passes whose second comparator only orders nodes
    /// of the same group or of the default/password pair), using the same
    /// stable algorithm as Go's `sort.SliceStable` so results match exactly.
    pub fn sort_by(&mut self, spec: &SortSpec) {
        let total = self.nodes.len();
        let method_position = total + spec.keys.len() + 1;
        let mut decorated: Vec<(SortKey, Node)> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(|node| {
                let key = SortKey::new(&node, spec, method_position);
                (key, node)
            })
            .collect();

        if !spec.groups.is_empty() {
            go_stable_sort(&mut decorated, &|a, b| a.0.group_rank < b.0.group_rank);
        }
        go_stable_sort(&mut decorated, &|a, b| {
            let (a, b) = (&a.0, &b.0);
            let comparable = a.group == b.group
                || matches!(
                    (a.group, b.group),
                    (Group::Default, Group::Password) | (Group::Password, Group::Default)
                );
            if !comparable {
                return false;
            }
            if a.position != b.position {
                return a.position < b.position;
            }
            if a.group == b.group && spec.stable_groups.contains(&a.group) {
                return false;
            }
            a.value < b.value
        });

        self.nodes = decorated.into_iter().map(|(_, node)| node).collect();
    }
}

struct SortKey {
    group: Group,
    /// Index in the group order; -1 when unlisted (sorts first, as in Go).
    group_rank: isize,
    position: usize,
    value: String,
}

impl SortKey {
    fn new(node: &Node, spec: &SortSpec, method_position: usize) -> Self {
        let id = node.id();
        let position = if id == "method" {
            method_position
        } else {
            spec.keys
                .iter()
                .position(|k| id.starts_with(k.as_str()))
                .unwrap_or(spec.keys.len())
        };
        let group_rank = spec
            .groups
            .iter()
            .position(|g| *g == node.group)
            .and_then(|i| isize::try_from(i).ok())
            .unwrap_or(-1);
        Self {
            group: node.group,
            group_rank,
            position,
            value: node.go_value_string(),
        }
    }
}

/// Stable in-place sort with Go's `sort.SliceStable` algorithm (insertion
/// sort on blocks of 20, then SymMerge rounds). Unlike `slice::sort_by`, it
/// never panics on a comparator that is not a total order, and it produces
/// the very order Go produces for such comparators.
fn go_stable_sort<T>(v: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    const BLOCK: usize = 20;
    let n = v.len();
    let mut block = BLOCK;
    let mut start = 0;
    while start + block <= n {
        insertion_sort(v, start, start + block, less);
        start += block;
    }
    insertion_sort(v, start, n, less);

    while block < n {
        let mut a = 0;
        while a + 2 * block <= n {
            sym_merge(v, a, a + block, a + 2 * block, less);
            a += 2 * block;
        }
        if a + block < n {
            sym_merge(v, a, a + block, n, less);
        }
        block *= 2;
    }
}

/// `less(v[i], v[j])`, false for out-of-range indices (never happens).
fn lt<T>(v: &[T], i: usize, j: usize, less: &dyn Fn(&T, &T) -> bool) -> bool {
    match (v.get(i), v.get(j)) {
        (Some(a), Some(b)) => less(a, b),
        _ => false,
    }
}

fn insertion_sort<T>(v: &mut [T], a: usize, b: usize, less: &dyn Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && lt(v, j, j - 1, less) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Merges the sorted runs `v[a..m]` and `v[m..b]` in place (Kim & Kutzner's
/// SymMerge, as used by Go).
fn sym_merge<T>(v: &mut [T], a: usize, m: usize, b: usize, less: &dyn Fn(&T, &T) -> bool) {
    if m - a == 1 {
        // Binary-search the insertion point of v[a] in v[m..b], then bubble it there.
        let (mut lo, mut hi) = (m, b);
        while lo < hi {
            let h = lo + (hi - lo) / 2;
            if lt(v, h, a, less) {
                lo = h + 1;
            } else {
                hi = h;
            }
        }
        for k in a..lo - 1 {
            v.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        // Binary-search the insertion point of v[m] in v[a..m], then bubble it there.
        let (mut lo, mut hi) = (a, m);
        while lo < hi {
            let h = lo + (hi - lo) / 2;
            if !lt(v, m, h, less) {
                lo = h + 1;
            } else {
                hi = h;
            }
        }
        let mut k = m;
        while k > lo {
            v.swap(k, k - 1);
            k -= 1;
        }
        return;
    }

    let mid = a + (b - a) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = start + (r - start) / 2;
        if !lt(v, p - c, c, less) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(v, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(v, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(v, mid, end, b, less);
    }
}

/// Swaps the adjacent blocks `v[a..m]` and `v[m..b]` with block swaps, as
/// Go does (the number of `swap` calls matters for equal elements only
/// through positions, which this reproduces).
fn rotate<T>(v: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(v, m - i, m, j);
            i -= j;
        } else {
            swap_range(v, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(v, m - i, m, i);
}

fn swap_range<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::text;
    use crate::ui::node::{Autocomplete, Trigger};
    use serde_json::json;

    fn ids(c: &Container) -> Vec<String> {
        c.nodes
            .iter()
            .map(|n| format!("{}:{}", n.group.as_str(), n.id()))
            .collect()
    }

    #[test]
    fn go_stable_matches_std_on_total_orders() {
        // Pseudo-random data, deterministic; compare against std's stable sort.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in [0usize, 1, 2, 19, 20, 21, 39, 40, 41, 77, 160, 333] {
            let mut v: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 7) as u8, i)
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_by_key(|x| x.0);
            go_stable_sort(&mut v, &|a, b| a.0 < b.0);
            assert_eq!(v, expected, "len {len}");
        }
    }

    #[test]
    fn go_stable_tolerates_inconsistent_comparator() {
        let mut v: Vec<u32> = (0..100).rev().collect();
        go_stable_sort(&mut v, &|a, b| (a % 3 == 0) && (b % 5 == 0));
        assert_eq!(v.len(), 100);
    }

    #[test]
    fn default_and_password_interleave_like_kratos() {
        // Mirrors Kratos' registration sort behaviour: default/password nodes
        // are ordered among each other by key position across the groups.
        let mut c = Container::new("https://x/self-service/registration?flow=1");
        c.append(Node::input("traits.foobar", InputType::Text, Group::Default));
        c.append(Node::input("traits.username", InputType::Text, Group::Default));
        c.append(Node::csrf("tok"));
        c.append(Node::input("password", InputType::Password, Group::Password));
        c.append(Node::input("method", InputType::Submit, Group::Password).value("password"));
        c.sort_registration(&["traits.username".into(), "traits.foobar".into()]);
        assert_eq!(
            ids(&c),
            [
                "default:csrf_token",
                "default:traits.username",
                "password:password",
                "default:traits.foobar",
                "password:method"
            ]
        );
    }

    #[test]
    fn login_sort() {
        let mut c = Container::new("a");
        c.append(
            Node::input("method", InputType::Submit, Group::Code)
                .value("code")
                .label(text::login_send_code()),
        );
        c.append(
            Node::input("passkey_login_trigger", InputType::Button, Group::Passkey)
                .value("")
                .onclick_trigger(Trigger::PasskeyLogin),
        );
        c.append(Node::script("s", "i", "n"));
        c.append(
            Node::input("identifier", InputType::Text, Group::Default)
                .value("")
                .required()
                .autocomplete(Autocomplete::UsernameWebauthn),
        );
        c.append(Node::input("passkey_challenge", InputType::Hidden, Group::Passkey).value("{}"));
        c.set_csrf("tok");
        c.append(Node::input("passkey_login", InputType::Hidden, Group::Passkey));
        c.sort_login();
        // Within a group at the same key position, Go's %v of the value
        // decides: "" < "<nil>" < "{}".
        assert_eq!(
            ids(&c),
            [
                "default:csrf_token",
                "default:identifier",
                "webauthn:webauthn_script",
                "passkey:passkey_login_trigger",
                "passkey:passkey_login",
                "passkey:passkey_challenge",
                "code:method",
            ]
        );
    }

    #[test]
    fn unlisted_groups_sort_first() {
        let mut c = Container::new("a");
        c.append(Node::csrf("t"));
        c.append(Node::input("x", InputType::Text, Group::Profile));
        c.sort_login();
        assert_eq!(ids(&c), ["profile:x", "default:csrf_token"]);
    }

    #[test]
    fn upsert_get_set_value() {
        let mut c = Container::new("a");
        c.upsert(Node::input("code", InputType::Text, Group::Code));
        c.upsert(Node::input("code", InputType::Text, Group::Code).required());
        assert_eq!(c.nodes.len(), 1);
        assert!(c.get("code").unwrap().input_attributes().unwrap().required);
        assert!(c.set_value("code", "123"));
        assert!(!c.set_value("nope", "1"));
        assert_eq!(c.get("code").unwrap().value_ref(), Some(&json!("123")));
        c.remove(&["code"]);
        assert!(c.get("code").is_none());
    }

    #[test]
    fn node_messages_and_reset() {
        let mut c = Container::new("a");
        c.append(Node::input("traits.email", InputType::Email, Group::Default).value("x"));
        c.add_node_message("traits.email", text::invalid_email("x"));
        c.add_node_message("traits.missing", text::required("missing"));
        c.add_node_message(" ", text::validation_generic("oops"));
        c.add_message(text::login_code_sent());
        assert_eq!(c.get("traits.email").unwrap().messages.len(), 1);
        let added = c.get("traits.missing").unwrap();
        assert_eq!(added.group, Group::Default);
        assert_eq!(
            serde_json::to_value(added).unwrap()["attributes"],
            json!({"name":"traits.missing","type":"text","disabled":false,"node_type":"input"})
        );
        assert_eq!(c.messages.len(), 2);
        c.reset_messages();
        assert!(c.messages.is_empty());
        assert!(c.nodes.iter().all(|n| n.messages.is_empty()));
        c.reset(&[]);
        assert_eq!(c.get("traits.email").unwrap().value_ref(), None);
    }

    #[test]
    fn strip_js_for_api_flows() {
        let mut c = Container::new("a");
        c.append(Node::script("s", "i", "n"));
        c.append(
            Node::input("passkey_login_trigger", InputType::Button, Group::Passkey)
                .onclick_trigger(Trigger::PasskeyLogin),
        );
        c.append(
            Node::input("passkey_login", InputType::Hidden, Group::Passkey)
                .onload_trigger(Trigger::PasskeyLoginAutocompleteInit),
        );
        c.strip_js();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["nodes"][0]["attributes"],
            json!({"name":"passkey_login_trigger","type":"button","disabled":false,
                   "onclickTrigger":"oryPasskeyLogin","node_type":"input"})
        );
        assert_eq!(
            v["nodes"][1]["attributes"]["onloadTrigger"],
            "oryPasskeyLoginAutocompleteInit"
        );
        assert!(v["nodes"][1]["attributes"].get("onload").is_none());
    }

    #[test]
    fn container_json_round_trip() {
        let mut c = Container::new("https://auth/self-service/login?flow=1");
        let empty = serde_json::to_value(&c).unwrap();
        assert_eq!(
            empty,
            json!({"action":"https://auth/self-service/login?flow=1","method":"POST","nodes":[]})
        );
        c.set_csrf("tok");
        c.append(
            Node::input("identifier", InputType::Text, Group::Default)
                .value("")
                .label(text::label_id()),
        );
        c.add_message(text::login_code_sent());
        let s = serde_json::to_string(&c).unwrap();
        let back: Container = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["messages"][0]["id"], 1_010_014);
        let nulls: Container =
            serde_json::from_str(r#"{"action":"a","method":"POST","nodes":null,"messages":null}"#).unwrap();
        assert!(nulls.nodes.is_empty() && nulls.messages.is_empty());
    }
}
