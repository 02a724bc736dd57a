//! Latch's built-in self-service UI under `/ui/` on the public listener: one server-rendered
//! page per flow, the error page and a welcome page. Pages fetch flows and errors in-process
//! through the same code as the public API (forwarding the browser's cookies, so the CSRF
//! checks apply) and render the flow's nodes generically. Everything is embedded in the
//! binary; pages send a strict Content-Security-Policy.

pub mod html;
pub mod i18n;
pub mod render;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use self::html::{Page, esc};
use self::i18n::{Locale, Phrase};
use crate::deps::Deps;
use crate::flow::AppState;
use crate::flow::FlowKind;
use crate::flow::engine;
use crate::flow::respond::{self, Style};
use crate::http::extract::query_one;
use crate::session::manager;
use crate::ui::Container;

/// The `/ui/…` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/ui", get(root))
        .route("/ui/", get(root))
        .route("/ui/login", get(login))
        .route("/ui/registration", get(registration))
        .route("/ui/settings", get(settings))
        .route("/ui/verification", get(verification))
        .route("/ui/recovery", get(recovery))
        .route("/ui/error", get(error_page))
        .route("/ui/welcome", get(welcome))
        .route("/ui/dev/mailbox", get(dev_mailbox))
        .route("/ui/assets/latch.css", get(css))
        .route("/ui/assets/latch.js", get(js))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", html::CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", html::JS)
}

fn see_other(to: &str) -> Response {
    respond::redirect(to, StatusCode::SEE_OTHER).into_response()
}

/// `/` and `/ui/`: the welcome page when signed in, else sign-in.
async fn root(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = matches!(
        manager::current(&s, crate::http::client::presented_session(&s, &headers).as_ref()).await,
        Ok(Some(_))
    );
    let page = if signed_in { "ui/welcome" } else { "ui/login" };
    see_other(&s.public_url(page))
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// `/self-service/<kind>/browser` keeping the parameters a flow is created with.
fn init_url(s: &Deps, kind: FlowKind, q: Option<&str>) -> String {
    let mut url = s.public_url(&format!("self-service/{}/browser", kind.as_str()));
    let mut sep = '?';
    for key in ["return_to", "refresh", "aal", "via"] {
        if let Some(v) = query_one(q, key).filter(|v| !v.is_empty()) {
            url.push(sep);
            url.push_str(key);
            url.push('=');
            url.push_str(&enc(&v));
            sep = '&';
        }
    }
    url
}

macro_rules! flow_page {
    ($name:ident, $kind:expr) => {
        async fn $name(
            State(s): State<AppState>,
            ConnectInfo(peer): ConnectInfo<SocketAddr>,
            headers: HeaderMap,
            RawQuery(q): RawQuery,
        ) -> Response {
            flow_page(&s, $kind, headers, peer, q.as_deref()).await
        }
    };
}
flow_page!(login, FlowKind::Login);
flow_page!(registration, FlowKind::Registration);
flow_page!(settings, FlowKind::Settings);
flow_page!(verification, FlowKind::Verification);
flow_page!(recovery, FlowKind::Recovery);

fn title(kind: FlowKind, locale: Locale) -> &'static str {
    locale.phrase(match kind {
        FlowKind::Login => Phrase::SignIn,
        FlowKind::Registration => Phrase::SignUp,
        FlowKind::Settings => Phrase::Settings,
        FlowKind::Verification => Phrase::Verification,
        FlowKind::Recovery => Phrase::Recovery,
    })
}

async fn flow_page(
    s: &crate::flow::Service,
    kind: FlowKind,
    headers: HeaderMap,
    peer: SocketAddr,
    q: Option<&str>,
) -> Response {
    let Some(id) = query_one(q, "flow").filter(|v| !v.is_empty()) else {
        return see_other(&init_url(s, kind, q));
    };
    let locale = Locale::negotiate(&headers);
    let req = crate::http::client::flow_request(
        s,
        &headers,
        Some(peer),
        format!("self-service/{}/flows?id={}", kind.as_str(), enc(&id)),
        Some(format!("id={}", enc(&id))),
    );
    let flow = match engine::fetch_json(s, kind, &req).await {
        Ok(f) => f,
        Err(e) => {
            return match e.status.as_u16() {
                // Unknown, malformed or expired flow; or a settings flow without its
                // session: start a new flow (which sends the browser to sign in if needed).
                400 | 404 | 410 | 401 => {
                    let return_to = e
                        .details
                        .as_ref()
                        .and_then(|d| d.get("return_to"))
                        .and_then(Value::as_str)
                        .map(|r| format!("return_to={}", enc(r)));
                    see_other(&init_url(s, kind, return_to.as_deref().or(q)))
                }
                403 if e.id.as_deref() == Some("security_identity_mismatch") => see_other(&init_url(s, kind, q)),
                _ => respond::error(s, e, Style::Browser).await.into_response(),
            };
        }
    };
    let ui: Container = match flow.get("ui").cloned().map(serde_json::from_value) {
        Some(Ok(ui)) => ui,
        _ => {
            return respond::error(
                s,
                crate::http::error::ApiError::internal().reason("The flow has no readable form."),
                Style::Browser,
            )
            .await
            .into_response();
        }
    };
    let rendered = if kind == FlowKind::Settings {
        render::sections(&ui, locale)
    } else {
        render::form(&ui, locale)
    };
    let second_factor = kind == FlowKind::Login && flow.get("requested_aal").and_then(Value::as_str) == Some("aal2");
    let mut body = String::new();
    if second_factor {
        body.push_str(&format!(
            "<p class=\"lead\">{}</p>\n",
            esc(locale.phrase(Phrase::SecondFactorIntro))
        ));
    }
    body.push_str(&rendered.html);
    if second_factor {
        body.push_str(&second_factor_links(s, &headers, locale).await);
    } else {
        body.push_str(&links(s, kind, &flow, locale));
    }
    Page {
        title: if second_factor {
            locale.phrase(Phrase::SecondFactorTitle)
        } else {
            title(kind, locale)
        },
        body,
        nonces: rendered.nonces,
        locale,
        status: StatusCode::OK,
    }
    .respond(s)
}

/// Below the second-factor sign-in form: a way out for someone without their second
/// factor at hand (sign out of the first-factor session, as Ory's reference UI offers).
async fn second_factor_links(s: &Deps, headers: &HeaderMap, locale: Locale) -> String {
    let l = |p| esc(locale.phrase(p));
    let presented = crate::http::client::presented_session(s, headers);
    let mut out = String::from("<nav class=\"links\">\n");
    if let Ok(Some(cur)) = manager::current(s, presented.as_ref()).await {
        out.push_str(&format!(
            "<form class=\"signout\" action=\"{}\" method=\"get\"><p>{} \
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <button type=\"submit\" class=\"btn-link\">{}</button></p></form>\n",
            esc(&s.public_url("self-service/logout")),
            l(Phrase::SecondFactorMissing),
            esc(&manager::logout_token_for(&cur.token)),
            l(Phrase::SignOut)
        ));
    }
    out.push_str("</nav>\n");
    out
}

/// Links to the neighbouring pages, keeping the flow's `return_to`.
fn links(s: &Deps, kind: FlowKind, flow: &Value, locale: Locale) -> String {
    let keep = flow
        .get("return_to")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(|r| format!("?return_to={}", enc(r)))
        .unwrap_or_default();
    let link = |lead: Phrase, href: &str, text: Phrase| {
        format!(
            "<p>{} <a href=\"{}\">{}</a></p>",
            esc(locale.phrase(lead)),
            esc(href),
            esc(locale.phrase(text))
        )
    };
    let plain = |href: &str, text: Phrase| format!("<p><a href=\"{}\">{}</a></p>", esc(href), esc(locale.phrase(text)));
    let f = &s.config.selfservice.flows;
    let mut out = String::from("<nav class=\"links\">\n");
    match kind {
        FlowKind::Login => {
            if flow.get("refresh").and_then(Value::as_bool) != Some(true) {
                if f.registration.enabled {
                    out.push_str(&link(
                        Phrase::NoAccount,
                        &format!("registration{keep}"),
                        Phrase::CreateAccount,
                    ));
                }
                if f.recovery.enabled {
                    out.push_str(&link(
                        Phrase::ForgotPassword,
                        &format!("recovery{keep}"),
                        Phrase::RecoverAccount,
                    ));
                }
            } else {
                out.push_str(&plain("welcome", Phrase::BackToWelcome));
            }
        }
        FlowKind::Registration => {
            out.push_str(&link(Phrase::HaveAccount, &format!("login{keep}"), Phrase::SignIn));
        }
        FlowKind::Recovery => out.push_str(&plain(&format!("login{keep}"), Phrase::BackToSignIn)),
        FlowKind::Verification | FlowKind::Settings => out.push_str(&plain("welcome", Phrase::BackToWelcome)),
    }
    out.push_str("</nav>\n");
    out
}

/// `/ui/error?id=`: the stored error, explained.
async fn error_page(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let locale = Locale::negotiate(&headers);
    let id = query_one(q.as_deref(), "id").unwrap_or_default();
    let l = |p| esc(locale.phrase(p));
    let mut body = String::new();
    let mut status = StatusCode::OK;
    match crate::http::selfservice::load_error(&s, &id).await {
        Ok(doc) => {
            let err = doc.get("error").cloned().unwrap_or(Value::Null);
            let get = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let details = err.get("details").cloned().unwrap_or(Value::Null);
            let detail = |k: &str| details.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let error_id = get("id");
            let code = err.get("code").and_then(Value::as_u64).unwrap_or(500);
            if error_id == "security_csrf_violation" {
                body.push_str(&format!(
                    "<div class=\"messages\"><div class=\"msg msg-error\" role=\"alert\"><h2>{}</h2><p>{}</p></div></div>\n<p>{}</p>\n",
                    l(Phrase::CsrfTitle),
                    l(Phrase::CsrfIntro),
                    l(Phrase::CsrfWhatToDo)
                ));
                body.push_str(&format!("<h2>{}</h2>\n", l(Phrase::CsrfDeveloper)));
                body.push_str(&format!(
                    "<dl class=\"facts stacked\"><dt>{}</dt><dd data-testid=\"reject-reason\">{}</dd>",
                    l(Phrase::WhatHappened),
                    esc(&detail("reject_reason"))
                ));
                let hint = detail("hint");
                if !hint.is_empty() {
                    body.push_str(&format!("<dt>{}</dt><dd>{}</dd>", l(Phrase::Hint), esc(&hint)));
                }
                body.push_str("</dl>\n");
            } else {
                let reason = get("reason");
                let message = get("message");
                let main = if reason.is_empty() { message.clone() } else { reason };
                body.push_str(&format!(
                    "<div class=\"messages\"><div class=\"msg msg-error\" role=\"alert\"><p>{}</p><p>{}</p></div></div>\n",
                    l(Phrase::ErrorIntro),
                    esc(&main)
                ));
                let reject = detail("reject_reason");
                if !reject.is_empty() {
                    body.push_str(&format!(
                        "<dl class=\"facts stacked\"><dt>{}</dt><dd data-testid=\"reject-reason\">{}</dd></dl>\n",
                        l(Phrase::WhatHappened),
                        esc(&reject)
                    ));
                }
            }
            body.push_str(&format!(
                "<details><summary>{}</summary><dl class=\"facts\"><dt>{}</dt><dd><code>{}</code></dd><dt>{}</dt><dd>{code} {}</dd><dt>{}</dt><dd>{}</dd></dl></details>\n",
                l(Phrase::TechnicalDetails),
                l(Phrase::ErrorId),
                esc(&error_id),
                l(Phrase::ErrorCode),
                esc(&get("status")),
                l(Phrase::Message),
                esc(&get("message")),
            ));
        }
        Err(_) => {
            status = StatusCode::NOT_FOUND;
            body.push_str(&format!(
                "<div class=\"messages\"><p class=\"msg msg-error\" role=\"alert\">{}</p></div>\n",
                l(Phrase::ErrorNotFound)
            ));
        }
    }
    body.push_str(&format!(
        "<nav class=\"links\"><p><a class=\"btn btn-primary\" href=\"login\">{}</a></p></nav>\n",
        l(Phrase::StartOver)
    ));
    Page {
        title: locale.phrase(Phrase::Error),
        body,
        nonces: Vec::new(),
        locale,
        status,
    }
    .respond(&s)
}

/// Flattens traits into (path, value) rows.
fn trait_rows(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                trait_rows(&p, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The title a trait has in the identity schema, else its path.
fn trait_title(s: &Deps, schema_id: &str, path: &str) -> String {
    let schema = s
        .schemas
        .get(schema_id)
        .map(|sc| &sc.raw)
        .or_else(|| s.schemas.default_schema().map(|sc| &sc.raw));
    let mut node = schema.and_then(|sc| sc.pointer("/properties/traits"));
    for part in path.split('.') {
        node = node.and_then(|n| n.get("properties")).and_then(|p| p.get(part));
    }
    node.and_then(|n| n.get("title"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| path.to_string())
}

/// `/ui/welcome`: who is signed in, and a sign-out button (the logout flow).
async fn welcome(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let locale = Locale::negotiate(&headers);
    let l = |p| esc(locale.phrase(p));
    let cur = match manager::current(&s, crate::http::client::presented_session(&s, &headers).as_ref()).await {
        Ok(c) => c,
        Err(e) => return respond::error(&s, e.into(), Style::Browser).await.into_response(),
    };
    let mut body = String::new();
    let Some(cur) = cur else {
        body.push_str(&format!(
            "<p class=\"lead\" role=\"status\">{}</p>\n<p>{}</p>\n<div class=\"actions\"><a class=\"btn btn-primary\" href=\"login\">{}</a> <a class=\"btn btn-secondary\" href=\"registration\">{}</a></div>\n",
            l(Phrase::NotSignedIn),
            l(Phrase::NotSignedInHelp),
            l(Phrase::SignIn),
            l(Phrase::CreateAccount)
        ));
        return Page {
            title: locale.phrase(Phrase::Welcome),
            body,
            nonces: Vec::new(),
            locale,
            status: StatusCode::OK,
        }
        .respond(&s);
    };
    let now = s.clock.now();
    let session = cur
        .session
        .to_json(now, Some(&cur.identity), &s.schema_url(&cur.identity.schema_id), false);
    let identity = session.get("identity").cloned().unwrap_or(Value::Null);
    let traits = identity.get("traits").cloned().unwrap_or(Value::Null);
    let mut rows = Vec::new();
    trait_rows("", &traits, &mut rows);
    let who = traits
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| rows.first().map(|(_, v)| v.clone()))
        .unwrap_or_else(|| cur.identity.id.to_string());
    body.push_str(&format!(
        "<p class=\"lead\">{} <strong data-testid=\"who\">{}</strong></p>\n",
        l(Phrase::SignedInAs),
        esc(&who)
    ));
    body.push_str(&format!(
        "<h2>{}</h2>\n<dl class=\"facts\" data-testid=\"traits\">",
        l(Phrase::YourProfile)
    ));
    for (path, value) in &rows {
        body.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            esc(&trait_title(&s, &cur.identity.schema_id, path)),
            esc(value)
        ));
    }
    body.push_str("</dl>\n");
    let addresses = identity
        .get("verifiable_addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut unverified = false;
    if !addresses.is_empty() {
        body.push_str(&format!("<h2>{}</h2>\n<ul class=\"addresses\">", l(Phrase::Addresses)));
        for a in &addresses {
            let verified = a.get("verified").and_then(Value::as_bool).unwrap_or(false);
            unverified |= !verified;
            let state = if verified {
                format!("<span class=\"badge badge-ok\">{}</span>", l(Phrase::Verified))
            } else {
                format!("<span class=\"badge badge-warn\">{}</span>", l(Phrase::NotVerified))
            };
            body.push_str(&format!(
                "<li>{} {state}</li>",
                esc(a.get("value").and_then(Value::as_str).unwrap_or(""))
            ));
        }
        body.push_str("</ul>\n");
    }
    let methods: Vec<String> = session
        .get("authentication_methods")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("method").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let field = |k: &str| session.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    body.push_str(&format!(
        "<h2>{}</h2>\n<dl class=\"facts\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd><code>{}</code></dd></dl>\n",
        l(Phrase::YourSession),
        l(Phrase::Methods),
        esc(&methods.join(", ")),
        l(Phrase::AssuranceLevel),
        esc(&field("authenticator_assurance_level")),
        l(Phrase::AuthenticatedAt),
        esc(&field("authenticated_at")),
        l(Phrase::ExpiresAt),
        esc(&field("expires_at")),
        l(Phrase::IdentityId),
        esc(&cur.identity.id.to_string()),
    ));
    let token = manager::logout_token_for(&cur.token);
    body.push_str("<div class=\"actions\">");
    if unverified && s.config.selfservice.flows.verification.enabled {
        body.push_str(&format!(
            "<a class=\"btn btn-secondary\" href=\"verification\">{}</a> ",
            l(Phrase::VerifyNow)
        ));
    }
    body.push_str(&format!(
        "<a class=\"btn btn-secondary\" href=\"settings\">{}</a></div>\n",
        l(Phrase::AccountSettings)
    ));
    body.push_str(&format!(
        "<form class=\"signout\" action=\"{}\" method=\"get\"><input type=\"hidden\" name=\"token\" value=\"{}\"><button type=\"submit\" class=\"btn btn-primary\">{}</button></form>\n",
        esc(&s.public_url("self-service/logout")),
        esc(&token),
        l(Phrase::SignOut)
    ));
    Page {
        title: locale.phrase(Phrase::Welcome),
        body,
        nonces: Vec::new(),
        locale,
        status: StatusCode::OK,
    }
    .respond(&s)
}

/// `GET /ui/dev/mailbox` (only with `--dev`): the newest messages of the outbox, so codes can
/// be read without an SMTP server. Without `--dev` this page does not exist.
async fn dev_mailbox(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let locale = Locale::negotiate(&headers);
    if !s.config.dev {
        return crate::http::error::ApiError::not_found("The requested path does not exist on this server.")
            .into_response();
    }
    let filter = crate::store::courier::MessageFilter {
        limit: 50,
        ..Default::default()
    };
    let messages = match s.store.list_messages(&filter).await {
        Ok(m) => m,
        Err(e) => return respond::error(&s, e.into(), Style::Browser).await.into_response(),
    };
    let mut body = String::from(
        "<p class=\"lead\">Development mailbox: the newest messages Latch queued. Shown only with <code>--dev</code>.</p>\n",
    );
    if messages.is_empty() {
        body.push_str("<p role=\"status\">No messages yet.</p>\n");
    }
    body.push_str("<ol class=\"mailbox\">\n");
    for m in &messages {
        body.push_str(&format!(
            "<li class=\"mail\" data-testid=\"mail\"><p><strong>To:</strong> <span data-testid=\"mail-to\">{}</span><br><strong>Subject:</strong> {}<br><strong>Status:</strong> {} · {}</p><pre data-testid=\"mail-body\">{}</pre></li>\n",
            esc(&m.recipient),
            esc(&m.subject),
            esc(m.status.as_str()),
            esc(&crate::clock::rfc3339(m.created_at)),
            esc(&m.body),
        ));
    }
    body.push_str("</ol>\n");
    Page {
        title: "Mailbox",
        body,
        nonces: Vec::new(),
        locale,
        status: StatusCode::OK,
    }
    .respond(&s)
}
