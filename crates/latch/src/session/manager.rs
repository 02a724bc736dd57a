//! Issuing, finding and ending sessions; the session and CSRF cookies.
//! Kratos: `session/manager_http.go`, `x/nosurfx`.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AuthMethod, Device, Session, compute_aal};
use crate::config::SameSite;
use crate::crypto::{csrf, random_alnum, sha256_hex};
use crate::deps::Deps;
use crate::identity::Identity;
use crate::store::StoreError;

/// A freshly issued session with its plain token (returned once, never stored).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The session.
    pub session: Session,
    /// `ory_st_…`.
    pub token: String,
}

/// A session found on a request.
#[derive(Debug, Clone)]
pub struct Current {
    /// The session.
    pub session: Session,
    /// Its owner.
    pub identity: Identity,
    /// The token the request carried.
    pub token: String,
    /// Whether the token came from the cookie (browser) rather than a header.
    pub from_cookie: bool,
}

#[derive(Serialize, Deserialize)]
struct CookiePayload {
    t: String,
    e: i64,
}

/// Where a request came from, for the session's device list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client IP.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// `Cf-Ipcity, Cf-Ipcountry` when present.
    pub location: Option<String>,
}

/// A new `ory_st_` session token.
pub fn new_session_token() -> String {
    format!("ory_st_{}", random_alnum(32))
}

/// The logout token of a session, derived from its (random, secret) session token alone, so
/// that only hashes need to be stored, `logout/browser` can still return it, and it keeps
/// working when `secrets.cookie` rotates. Knowing it reveals nothing about the session token.
pub fn logout_token_for(session_token: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(b"latch logout token v2") {
        Ok(m) => m,
        Err(_) => return format!("ory_lo_{}", random_alnum(32)),
    };
    mac.update(session_token.as_bytes());
    let digest = mac.finalize().into_bytes();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let body: String = digest
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("ory_lo_{body}")
}

/// Creates and stores a session for an identity that just authenticated.
pub async fn issue(
    deps: &Deps,
    identity: &Identity,
    methods: Vec<AuthMethod>,
    client: &ClientInfo,
) -> Result<Issued, StoreError> {
    let issued = new_session(deps, identity, methods, client);
    store(deps, &issued, &[]).await?;
    Ok(issued)
}

/// A new session and its token for an identity that just authenticated, not stored yet (the
/// after-login `web_hook`s see it before it is written, as in Kratos).
pub fn new_session(deps: &Deps, identity: &Identity, methods: Vec<AuthMethod>, client: &ClientInfo) -> Issued {
    let now = deps.clock.now();
    let token = new_session_token();
    let aal = compute_aal(&methods);
    let session = Session {
        id: Uuid::new_v4(),
        identity_id: identity.id,
        active: true,
        aal,
        methods,
        authenticated_at: now,
        issued_at: now,
        expires_at: now + deps.config.session.lifespan,
        devices: vec![Device::bounded(
            client.ip.clone(),
            client.user_agent.clone(),
            client.location.clone(),
        )],
        created_at: now,
        updated_at: now,
    };
    Issued { session, token }
}

/// Stores a session made by [`new_session`], with web hook deliveries (the outbox rows of
/// `response.ignore` hooks) in the same transaction.
pub async fn store(
    deps: &Deps,
    issued: &Issued,
    deliveries: &[crate::webhook::outbox::NewDelivery],
) -> Result<(), StoreError> {
    let logout = logout_token_for(&issued.token);
    deps.store
        .insert_session_with(
            &issued.session,
            &sha256_hex(issued.token.as_bytes()),
            &sha256_hex(logout.as_bytes()),
            deliveries,
        )
        .await
}

/// The active session of the credentials a request presents, if any.
pub async fn current(deps: &Deps, presented: Option<&super::Presented>) -> Result<Option<Current>, StoreError> {
    let Some(p) = presented else {
        return Ok(None);
    };
    by_token(deps, &p.token, p.from_cookie).await
}

/// The active session for a plain session token.
pub async fn by_token(deps: &Deps, token: &str, from_cookie: bool) -> Result<Option<Current>, StoreError> {
    by_token_hash(deps, token, &sha256_hex(token.as_bytes()), from_cookie).await
}

/// [`by_token`] when the caller already has the token's hash ([`sha256_hex`]).
pub async fn by_token_hash(
    deps: &Deps,
    token: &str,
    token_hash: &str,
    from_cookie: bool,
) -> Result<Option<Current>, StoreError> {
    let Some((session, identity)) = deps.store.session_with_identity_by_token_hash(token_hash).await? else {
        return Ok(None);
    };
    if !session.is_active(deps.clock.now(), Some(&identity)) {
        return Ok(None);
    }
    Ok(Some(Current {
        session,
        identity,
        token: token.to_string(),
        from_cookie,
    }))
}

/// The token inside a sealed session cookie value.
pub fn open_cookie(deps: &Deps, value: &str) -> Option<String> {
    let raw = deps.sealer.open(value)?;
    let p: CookiePayload = serde_json::from_slice(&raw).ok()?;
    Some(p.t)
}

fn same_site_str(s: SameSite) -> &'static str {
    match s {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
        SameSite::None => "None",
    }
}

fn http_date(t: OffsetDateTime) -> String {
    const FMT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC).format(FMT).unwrap_or_default()
}

/// `Set-Cookie` for the session cookie (sealed token; persistent per config).
pub fn session_cookie(deps: &Deps, token: &str, expires_at: OffsetDateTime) -> String {
    let c = &deps.config;
    let payload = serde_json::to_vec(&CookiePayload {
        t: token.to_string(),
        e: expires_at.unix_timestamp(),
    })
    .unwrap_or_default();
    let value = deps.sealer.seal(&payload);
    let mut s = format!("{}={value}", c.session.cookie.name);
    let path = c.session.cookie.path.clone().unwrap_or_else(|| c.cookies.path.clone());
    s.push_str(&format!("; Path={path}"));
    if let Some(d) = c.session.cookie.domain.as_ref().or(c.cookies.domain.as_ref()) {
        s.push_str(&format!("; Domain={d}"));
    }
    if c.session.cookie.persistent {
        let secs = (expires_at - deps.clock.now()).whole_seconds().max(0);
        s.push_str(&format!("; Expires={}; Max-Age={secs}", http_date(expires_at)));
    }
    s.push_str("; HttpOnly");
    let secure = c.session.cookie.secure.unwrap_or(!c.dev);
    if secure {
        s.push_str("; Secure");
    }
    let same_site = c.session.cookie.same_site.unwrap_or(c.cookies.same_site);
    s.push_str(&format!("; SameSite={}", same_site_str(same_site)));
    s
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_session_cookie(deps: &Deps) -> String {
    let c = &deps.config;
    let path = c.session.cookie.path.clone().unwrap_or_else(|| c.cookies.path.clone());
    let mut s = format!(
        "{}=; Path={path}; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly",
        c.session.cookie.name
    );
    if let Some(d) = c.session.cookie.domain.as_ref().or(c.cookies.domain.as_ref()) {
        s.push_str(&format!("; Domain={d}"));
    }
    if c.session.cookie.secure.unwrap_or(!c.dev) {
        s.push_str("; Secure");
    }
    s
}

/// `Set-Cookie` for the CSRF cookie. SameSite is forced to Lax when the cookie is not Secure.
pub fn csrf_cookie(deps: &Deps, token: &[u8; 32]) -> String {
    let c = &deps.config;
    let mut s = format!(
        "{}={}; Path={}; Max-Age={}",
        deps.csrf_cookie_name,
        csrf::encode_cookie(token),
        c.cookies.path,
        csrf::COOKIE_MAX_AGE_SECS
    );
    if let Some(d) = &c.cookies.domain {
        s.push_str(&format!("; Domain={d}"));
    }
    s.push_str("; HttpOnly");
    let secure = c.cookies.secure.unwrap_or(!c.dev);
    if secure {
        s.push_str("; Secure");
    }
    let same_site = if secure { c.cookies.same_site } else { SameSite::Lax };
    s.push_str(&format!("; SameSite={}", same_site_str(same_site)));
    s
}
