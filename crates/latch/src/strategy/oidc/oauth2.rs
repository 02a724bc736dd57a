//! Plain OAuth 2.0 sign-in for the presets that do not use OpenID discovery: the
//! authorization URL, the code exchange (client credentials in the body), and the claims, read
//! from the provider's user API (GitHub, GitLab, Discord, Slack) or from the ID token checked
//! against the issuer's keys (Microsoft, Apple). Kratos: `provider_{github,gitlab,discord,
//! slack,microsoft,apple}.go`.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::client::{Client, ProviderError};
use crate::config::{OidcProvider, Pkce};

/// Largest user-API answer read.
const MAX_BODY: usize = 1 << 20;

/// How a preset signs in: its endpoints, what the authorization URL carries, and where the
/// claims come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Authorization endpoint.
    pub auth_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes asked for, in order.
    pub scopes: Vec<String>,
    /// Fixed parameters of the authorization URL.
    pub params: Vec<(String, String)>,
    /// Whether `nonce` is sent (and then required in the ID token).
    pub nonce: bool,
    /// The client secret sent to the token endpoint (Apple's is a fresh signed JWT).
    pub client_secret: Option<String>,
    /// Where the claims come from.
    pub claims: ClaimsFrom,
}

/// Where a preset's claims come from after the code exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsFrom {
    /// GitHub's REST API: `<api>/user`, and `<api>/user/emails` when `user:email` was granted.
    GitHub {
        /// API base (`https://api.github.com`).
        api: String,
    },
    /// GitLab's OpenID user info (`<base>/oauth/userinfo`); `iss` falls back to `issuer`.
    GitLab {
        /// The user-info endpoint.
        userinfo: String,
        /// The issuer used when the answer has none.
        issuer: String,
    },
    /// Discord's `<api>/users/@me`.
    Discord {
        /// API base (`https://discord.com/api/v9`).
        api: String,
    },
    /// Slack's `<api>/users.identity`; `iss` is `issuer`.
    Slack {
        /// API base (`https://slack.com/api`).
        api: String,
        /// The issuer claim (`https://slack.com/oauth/`).
        issuer: String,
    },
    /// The ID token, checked against the keys of `<login>/<tid>/v2.0` (the tenant it names),
    /// then the subject as `subject_source` says.
    Microsoft {
        /// Login base (`https://login.microsoftonline.com`).
        login: String,
        /// `subject_source`: `userinfo` (default, the ID token's `sub`), `me` or `oid`.
        subject_source: String,
    },
    /// The ID token, checked against the issuer's discovered keys, plus the `user` form
    /// field Apple posts on the first sign-in (names only).
    Apple {
        /// The issuer (`https://appleid.apple.com`).
        issuer: String,
    },
}

/// The Microsoft Graph user endpoint (`subject_source: me`).
const GRAPH_ME: &str = "https://graph.microsoft.com/v1.0/me";

/// The authorization URL of `plan` and the PKCE verifier when PKCE is used (`pkce: force`
/// only: these providers have no discovery document to say they support it).
pub fn authorize(
    plan: &Plan,
    p: &OidcProvider,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    upstream: &[(String, String)],
) -> Result<(String, Option<String>), ProviderError> {
    let mut url = url::Url::parse(&plan.auth_url)
        .map_err(|e| ProviderError::Config(format!("authorization URL {:?}: {e}", plan.auth_url)))?;
    let mut verifier = None;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("state", state);
        if !plan.scopes.is_empty() {
            q.append_pair("scope", &plan.scopes.join(" "));
        }
        if plan.nonce {
            q.append_pair("nonce", nonce);
        }
        if p.pkce == Pkce::Force {
            let v = crate::crypto::b64url(&crate::crypto::random_bytes(32));
            let challenge = crate::crypto::b64url(&Sha256::digest(v.as_bytes()));
            q.append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            verifier = Some(v);
        }
        // What the client asked for (`upstream_parameters`) wins over the preset's defaults.
        let fixed = plan
            .params
            .iter()
            .filter(|(k, _)| !upstream.iter().any(|(u, _)| u == k));
        for (k, v) in fixed.chain(upstream) {
            q.append_pair(k, v);
        }
    }
    Ok((url.to_string(), verifier))
}

/// The token endpoint's answer.
#[derive(Debug)]
struct Tokens {
    access_token: String,
    id_token: Option<String>,
    scope: String,
}

/// Exchanges `code` at the token endpoint (client id and secret in the form body, which all
/// these providers accept; Apple requires it).
async fn exchange(
    client: &Client,
    plan: &Plan,
    p: &OidcProvider,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: Option<&str>,
) -> Result<Tokens, ProviderError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", p.client_id.as_str()),
    ];
    if let Some(secret) = plan.client_secret.as_deref().filter(|s| !s.is_empty()) {
        form.push(("client_secret", secret));
    }
    if let Some(v) = pkce_verifier {
        form.push(("code_verifier", v));
    }
    let body = serde_urlencoded(&form);
    let res = client
        .http()
        .reqwest()
        .post(&plan.token_url)
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| ProviderError::Unreachable(format!("{}: {e}", plan.token_url)))?;
    let status = res.status();
    let v = read_json(res, &plan.token_url).await?;
    // Slack answers 200 with `ok: false`; others use the status and `error`.
    if !status.is_success() || v.get("error").is_some_and(|e| !e.is_null()) || v.get("ok") == Some(&json!(false)) {
        return Err(ProviderError::Refused(format!(
            "code exchange: status {status}, error {}",
            v.get("error").unwrap_or(&Value::Null)
        )));
    }
    let access_token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::Refused("the token answer holds no access_token".into()))?
        .to_string();
    Ok(Tokens {
        access_token,
        id_token: v.get("id_token").and_then(Value::as_str).map(str::to_string),
        scope: v.get("scope").and_then(Value::as_str).unwrap_or("").to_string(),
    })
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn serde_urlencoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn read_json(res: reqwest::Response, url: &str) -> Result<Value, ProviderError> {
    let bytes = res
        .bytes()
        .await
        .map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))?;
    if bytes.len() > MAX_BODY {
        return Err(ProviderError::Unreachable(format!("{url}: answer too large")));
    }
    serde_json::from_slice(&bytes).map_err(|e| ProviderError::Unreachable(format!("{url}: not JSON: {e}")))
}

/// `GET url` with the access token; the JSON answer.
async fn api_get(client: &Client, url: &str, token: &str) -> Result<Value, ProviderError> {
    let res = client
        .http()
        .reqwest()
        .get(url)
        .bearer_auth(token)
        .header("accept", "application/json")
        // GitHub's API refuses requests without one.
        .header("user-agent", "Latch")
        .send()
        .await
        .map_err(|e| ProviderError::Unreachable(format!("{url}: {e}")))?;
    if !res.status().is_success() {
        return Err(ProviderError::Unreachable(format!("{url}: status {}", res.status())));
    }
    read_json(res, url).await
}

/// Every configured scope must have been granted (`granted` split on `sep`). Kratos:
/// `ErrScopeMissing`.
fn check_scopes(p: &OidcProvider, granted: &str, sep: char) -> Result<(), ProviderError> {
    let granted: Vec<&str> = granted.split(sep).map(str::trim).filter(|s| !s.is_empty()).collect();
    if p.scope.iter().all(|s| granted.contains(&s.as_str())) {
        Ok(())
    } else {
        Err(ProviderError::Denied(
            "Unable to finish because one or more permissions were not granted. Please retry and accept all permissions."
                .into(),
        ))
    }
}

/// What the callback needs to finish a plain OAuth 2.0 sign-in.
pub struct Finish<'a> {
    /// The redirect URI sent with the authorization request.
    pub redirect_uri: &'a str,
    /// The authorization code.
    pub code: &'a str,
    /// The PKCE verifier, when PKCE was used.
    pub pkce_verifier: Option<&'a str>,
    /// The nonce the ID token must carry (Microsoft, Apple).
    pub nonce: &'a str,
    /// Apple's `user` form field (`{"name": {"firstName", "lastName"}}`), if any.
    pub apple_user: Option<&'a str>,
    /// Now, by Latch's clock.
    pub now: time::OffsetDateTime,
}

/// Exchanges the code and returns the raw claims, shaped as Kratos builds them per provider.
pub async fn finish(
    client: &Client,
    plan: &Plan,
    p: &OidcProvider,
    f: Finish<'_>,
) -> Result<Map<String, Value>, ProviderError> {
    let tokens = exchange(client, plan, p, f.redirect_uri, f.code, f.pkce_verifier).await?;
    let token = tokens.access_token.as_str();
    let mut c = Map::new();
    match &plan.claims {
        ClaimsFrom::GitHub { api } => {
            check_scopes(p, &tokens.scope, ',')?;
            let user = api_get(client, &format!("{api}/user"), token).await?;
            let id = match user.get("id") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => return Err(ProviderError::Refused("the GitHub user has no id".into())),
            };
            c.insert("sub".into(), json!(id));
            c.insert("iss".into(), json!(plan.token_url));
            put(&mut c, "name", user.get("name"));
            put(&mut c, "nickname", user.get("login"));
            put(&mut c, "website", user.get("blog"));
            put(&mut c, "picture", user.get("avatar_url"));
            put(&mut c, "profile", user.get("html_url"));
            if let Some(t) = user
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
            {
                c.insert("updated_at".into(), json!(t.unix_timestamp()));
            }
            let granted_email = tokens.scope.split(',').map(str::trim).any(|s| s == "user:email");
            if granted_email {
                let emails = api_get(client, &format!("{api}/user/emails"), token).await?;
                if let Some(primary) = emails
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e.get("primary") == Some(&json!(true)))
                {
                    put(&mut c, "email", primary.get("email"));
                    if primary.get("verified") == Some(&json!(true)) {
                        c.insert("email_verified".into(), json!(true));
                    }
                }
            }
        }
        ClaimsFrom::GitLab { userinfo, issuer } => {
            let info = api_get(client, userinfo, token).await?;
            let Value::Object(info) = info else {
                return Err(ProviderError::Refused("the user-info answer is not an object".into()));
            };
            c = info;
            if c.get("iss").and_then(Value::as_str).is_none_or(str::is_empty) {
                c.insert("iss".into(), json!(issuer));
            }
        }
        ClaimsFrom::Discord { api } => {
            check_scopes(p, &tokens.scope, ' ')?;
            let user = api_get(client, &format!("{api}/users/@me"), token).await?;
            let id = user.get("id").and_then(Value::as_str).unwrap_or("").to_string();
            let username = user.get("username").and_then(Value::as_str).unwrap_or("");
            let discriminator = user.get("discriminator").and_then(Value::as_str).unwrap_or("");
            c.insert("iss".into(), json!(format!("{api}/oauth2/")));
            c.insert("sub".into(), json!(id));
            c.insert("name".into(), json!(format!("{username}#{discriminator}")));
            put(&mut c, "nickname", user.get("username"));
            put(&mut c, "preferred_username", user.get("username"));
            c.insert(
                "picture".into(),
                json!(discord_avatar(
                    &id,
                    user.get("avatar").and_then(Value::as_str).unwrap_or(""),
                    discriminator
                )),
            );
            put(&mut c, "email", user.get("email"));
            if user.get("verified") == Some(&json!(true)) {
                c.insert("email_verified".into(), json!(true));
            }
            put(&mut c, "locale", user.get("locale"));
        }
        ClaimsFrom::Slack { api, issuer } => {
            check_scopes(p, &tokens.scope, ',')?;
            let res = client
                .http()
                .reqwest()
                .get(format!("{api}/users.identity"))
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| ProviderError::Unreachable(format!("users.identity: {e}")))?;
            let v = read_json(res, "users.identity").await?;
            if v.get("ok") != Some(&json!(true)) {
                return Err(ProviderError::Unreachable(format!(
                    "users.identity: {}",
                    v.get("error").unwrap_or(&Value::Null)
                )));
            }
            let user = v.get("user").cloned().unwrap_or(Value::Null);
            c.insert("iss".into(), json!(issuer));
            put(&mut c, "sub", user.get("id"));
            put(&mut c, "name", user.get("name"));
            put(&mut c, "preferred_username", user.get("name"));
            put(&mut c, "nickname", user.get("name"));
            put(&mut c, "email", user.get("email"));
            // Kratos marks Slack's email verified.
            c.insert("email_verified".into(), json!(true));
            put(&mut c, "picture", user.get("image_512"));
            put(&mut c, "team", v.pointer("/team/id"));
        }
        ClaimsFrom::Microsoft { login, subject_source } => {
            let raw = id_token(&tokens)?;
            let tid = unverified_claim(raw, "tid")?;
            if uuid::Uuid::parse_str(&tid).is_err() {
                return Err(ProviderError::Refused("the tid claim is not a UUID".into()));
            }
            let issuer = format!("{login}/{tid}/v2.0");
            c = client
                .verify_id_token(p, &issuer, f.redirect_uri, raw, Some(f.nonce), f.now)
                .await?;
            match subject_source.as_str() {
                "me" => {
                    let me = api_get(client, GRAPH_ME, token).await?;
                    let id = me.get("id").and_then(Value::as_str).unwrap_or("");
                    c.insert("sub".into(), json!(id));
                }
                "oid" => {
                    let oid = c.get("oid").cloned().unwrap_or(Value::Null);
                    c.insert("sub".into(), oid);
                }
                _ => {}
            }
        }
        ClaimsFrom::Apple { issuer } => {
            let raw = id_token(&tokens)?;
            c = client
                .verify_id_token(p, issuer, f.redirect_uri, raw, Some(f.nonce), f.now)
                .await?;
            apple_names(&mut c, f.apple_user);
        }
    }
    Ok(c)
}

/// Copies `v` to `c[k]` unless it is missing, null or empty (Kratos' `omitempty`).
fn put(c: &mut Map<String, Value>, k: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null() && *v != &json!("")) {
        c.insert(k.to_string(), v.clone());
    }
}

fn id_token(t: &Tokens) -> Result<&str, ProviderError> {
    t.id_token.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        ProviderError::Denied(
            "Authentication failed because no id_token was returned. Please accept the \"openid\" permission and try again."
                .into(),
        )
    })
}

/// One string claim of a JWT read without checking it (only to choose the issuer whose keys
/// then check the whole token).
fn unverified_claim(jwt: &str, name: &str) -> Result<String, ProviderError> {
    use base64::Engine;
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or_else(|| ProviderError::Refused("malformed id_token".into()))?;
    Ok(payload.get(name).and_then(Value::as_str).unwrap_or("").to_string())
}

/// Given and family name from Apple's `user` field, where the ID token has none. The field is
/// not signed; Kratos takes it as is, and so names only.
fn apple_names(c: &mut Map<String, Value>, user: Option<&str>) {
    let Some(user) = user.and_then(|u| serde_json::from_str::<Value>(u).ok()) else {
        return;
    };
    let first = user.pointer("/name/firstName").and_then(Value::as_str);
    let last = user.pointer("/name/lastName").and_then(Value::as_str);
    for (key, v) in [("given_name", first), ("last_name", last), ("family_name", last)] {
        if let Some(v) = v
            && c.get(key).and_then(Value::as_str).is_none_or(str::is_empty)
        {
            c.insert(key.into(), json!(v));
        }
    }
}

/// Discord's avatar URL for a user (its CDN's default avatar when none is set).
fn discord_avatar(id: &str, avatar: &str, discriminator: &str) -> String {
    const CDN: &str = "https://cdn.discordapp.com";
    if avatar.is_empty() {
        let index = match discriminator.parse::<u64>() {
            Ok(d) if d != 0 => d % 5,
            _ => id.parse::<u64>().map(|n| (n >> 22) % 6).unwrap_or(0),
        };
        return format!("{CDN}/embed/avatars/{index}.png");
    }
    let ext = if avatar.starts_with("a_") { "gif" } else { "png" };
    format!("{CDN}/avatars/{id}/{avatar}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_avatars() {
        assert_eq!(
            discord_avatar("80351110224678912", "8342729096ea3675442027381ff50dfe", "1337"),
            "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
        );
        assert_eq!(
            discord_avatar("1", "a_abc", "0"),
            "https://cdn.discordapp.com/avatars/1/a_abc.gif"
        );
        assert_eq!(
            discord_avatar("1", "", "1337"),
            "https://cdn.discordapp.com/embed/avatars/2.png"
        );
    }

    #[test]
    fn apple_names_fill_only_missing() {
        let mut c = Map::new();
        c.insert("given_name".into(), json!("Kept"));
        apple_names(&mut c, Some(r#"{"name":{"firstName":"Ann","lastName":"Lee"}}"#));
        assert_eq!(c["given_name"], "Kept");
        assert_eq!(c["last_name"], "Lee");
        assert_eq!(c["family_name"], "Lee");
        apple_names(&mut c, Some("not json"));
    }

    #[test]
    fn scopes_must_all_be_granted() {
        let p = OidcProvider {
            scope: vec!["user:email".into(), "read:org".into()],
            ..Default::default()
        };
        assert!(check_scopes(&p, "read:org,user:email", ',').is_ok());
        assert!(matches!(
            check_scopes(&p, "user:email", ','),
            Err(ProviderError::Denied(_))
        ));
    }
}
