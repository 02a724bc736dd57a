//! Admin identities API. Kratos: `identity/handler.go` (createIdentity, getIdentity, …).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, query_all, query_one};
use crate::flow::AppState;
use crate::identity::manager::{TraitsError, apply_traits, new_identity, set_credential};
use crate::identity::{Identity, Render, State as IdentityState};
use crate::store::identity::IdentityFilter;
use crate::strategy::{ImportCx, ImportError};

/// Routes under `/admin`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/identities",
            get(list_identities).post(create_identity).patch(batch_patch_identities),
        )
        .route(
            "/admin/identities/{id}",
            get(get_identity)
                .put(update_identity)
                .patch(patch_identity)
                .delete(delete_identity),
        )
        .route("/admin/identities/by/external/{external_id}", get(get_by_external_id))
        .route("/admin/identities/{id}/credentials/{kind}", delete(delete_credentials))
}

/// Kratos: `createIdentityBody` (strict: unknown fields are refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentityBody {
    schema_id: String,
    traits: Value,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    credentials: Option<Value>,
    #[serde(default)]
    verifiable_addresses: Option<Vec<AddressImport>>,
    #[serde(default)]
    recovery_addresses: Option<Vec<AddressImport>>,
    #[serde(default)]
    metadata_public: Option<Value>,
    #[serde(default)]
    metadata_admin: Option<Value>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    organization_id: Option<Uuid>,
    #[serde(default)]
    region: Option<String>,
}

/// An address in an import body.
#[derive(Debug, Deserialize)]
pub struct AddressImport {
    value: String,
    via: String,
    #[serde(default)]
    verified: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    verified_at: Option<String>,
    #[serde(flatten)]
    _rest: serde_json::Map<String, Value>,
}

/// Kratos: `updateIdentityBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentityBody {
    #[serde(default)]
    schema_id: Option<String>,
    traits: Value,
    state: String,
    #[serde(default)]
    credentials: Option<Value>,
    #[serde(default)]
    metadata_public: Option<Value>,
    #[serde(default)]
    metadata_admin: Option<Value>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
}

fn parse_state(s: &str) -> ApiResult<IdentityState> {
    IdentityState::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Identity state {s:?} is not valid: use \"active\" or \"inactive\"."
        ))
    })
}

fn parse_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found("Unable to locate the resource"))
}

fn traits_error(e: TraitsError) -> ApiError {
    let details = e.details();
    let mut err = ApiError::bad_request(e.summary());
    if !details.is_null() {
        err = err.details(details);
    }
    err
}

fn null_to_none(v: Option<Value>) -> Option<Value> {
    v.filter(|v| !v.is_null())
}

/// Renders the admin form of an identity.
pub fn admin_json(state: &AppState, ident: &Identity, include: &[String]) -> Value {
    ident.to_json(
        &state.schema_url(&ident.schema_id),
        &Render {
            admin: true,
            include_credential: include,
        },
    )
}

async fn build_identity(state: &AppState, body: CreateIdentityBody) -> ApiResult<Identity> {
    build_identity_with(state, body, false).await
}

/// Builds an identity from a create body; with `dry_run` plaintext passwords are checked
/// but not hashed (the identity is never stored).
async fn build_identity_with(state: &AppState, body: CreateIdentityBody, dry_run: bool) -> ApiResult<Identity> {
    let _ = body.region;
    let clock = state.clock.as_ref();
    let mut ident = new_identity(&body.schema_id, body.traits, clock);
    if let Some(s) = body.state {
        ident.state = parse_state(&s)?;
    }
    ident.metadata_public = null_to_none(body.metadata_public);
    ident.metadata_admin = null_to_none(body.metadata_admin);
    ident.external_id = body.external_id.filter(|e| !e.is_empty());
    ident.organization_id = body.organization_id;
    apply_traits(&mut ident, &state.schemas, clock).map_err(traits_error)?;
    if let Some(imports) = body.verifiable_addresses {
        for imp in imports {
            let value = imp.value.trim().to_lowercase();
            if let Some(a) = ident
                .verifiable_addresses
                .iter_mut()
                .find(|a| a.via == imp.via && a.value == value)
            {
                if let Some(v) = imp.verified {
                    a.verified = v;
                    a.status = if v { "completed".into() } else { "pending".into() };
                    a.verified_at = if v { Some(clock.now()) } else { None };
                }
                if let Some(s) = imp.status {
                    a.status = s;
                }
                if let Some(t) = imp.verified_at.as_deref().and_then(parse_time)
                    && a.verified
                {
                    a.verified_at = Some(t);
                }
            }
        }
    }
    let _ = body.recovery_addresses;
    if let Some(creds) = body.credentials {
        import_credentials(state, &mut ident, &creds, dry_run).await?;
    }
    Ok(ident)
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Applies `credentials` from a create/update body: each type's [`CredentialType::import`]
/// decides what is stored (passwords are hashed or checked, others kept as given). With
/// `dry_run`, plain-text passwords are not hashed (nothing is stored).
async fn import_credentials(state: &AppState, ident: &mut Identity, creds: &Value, dry_run: bool) -> ApiResult<()> {
    let Some(obj) = creds.as_object() else {
        return Err(ApiError::bad_request("credentials must be a JSON object"));
    };
    let cx = ImportCx {
        hasher: &state.hasher,
        dry_run,
    };
    for (kind, body) in obj {
        let Some(credential) = state.credentials.get(kind) else {
            return Err(ApiError::bad_request(format!(
                "Credentials of type {kind:?} cannot be imported."
            )));
        };
        let config = body.get("config").cloned().unwrap_or(Value::Null);
        let imported = credential.import(&cx, ident, config).await.map_err(|e| match e {
            ImportError::Invalid(reason) => ApiError::bad_request(reason),
            ImportError::Busy => ApiError::from(crate::limits::Limited {
                kind: crate::limits::LimitKind::HashingQueue,
                retry_after: std::time::Duration::from_secs(1),
                limit: None,
            }),
            ImportError::Internal(reason) => {
                tracing::error!(error = %reason, credential = kind.as_str(), "importing a credential failed");
                ApiError::internal()
            }
        })?;
        if let Some(i) = imported {
            set_credential(
                ident,
                credential.id(),
                i.identifiers,
                i.config,
                i.version,
                state.clock.as_ref(),
            );
        }
    }
    Ok(())
}

async fn create_identity(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateIdentityBody>,
) -> ApiResult<Response> {
    let ident = build_identity(&state, body).await?;
    state.store.insert_identity(&ident).await?;
    let location = state.admin_url(&format!("admin/identities/{}", ident.id));
    let mut res = (StatusCode::CREATED, Json(admin_json(&state, &ident, &[]))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn load(state: &AppState, id: &str) -> ApiResult<Identity> {
    let id = parse_id(id)?;
    state
        .store
        .get_identity(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unable to locate the resource"))
}

async fn get_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let ident = load(&state, &id).await?;
    let include = query_all(q.as_deref(), "include_credential");
    Ok(Json(admin_json(&state, &ident, &include)))
}

async fn get_by_external_id(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let ident = state
        .store
        .find_identity_by_external_id(&external_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unable to locate the resource"))?;
    let include = query_all(q.as_deref(), "include_credential");
    Ok(Json(admin_json(&state, &ident, &include)))
}

async fn update_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateIdentityBody>,
) -> ApiResult<Json<Value>> {
    let _ = body.region;
    let mut ident = load(&state, &id).await?;
    let clock = state.clock.as_ref();
    if let Some(s) = body.schema_id.filter(|s| !s.is_empty()) {
        ident.schema_id = s;
    }
    ident.traits = body.traits;
    let new_state = parse_state(&body.state)?;
    if new_state != ident.state {
        ident.state = new_state;
        ident.state_changed_at = Some(clock.now());
    }
    ident.metadata_public = null_to_none(body.metadata_public);
    ident.metadata_admin = null_to_none(body.metadata_admin);
    if let Some(e) = body.external_id {
        ident.external_id = Some(e).filter(|e| !e.is_empty());
    }
    apply_traits(&mut ident, &state.schemas, clock).map_err(traits_error)?;
    if let Some(creds) = body.credentials {
        import_credentials(&state, &mut ident, &creds, false).await?;
    }
    state.store.update_identity(&ident).await?;
    Ok(Json(admin_json(&state, &ident, &[])))
}

/// Paths a JSON patch may not change (Kratos refuses the same).
const IMMUTABLE: &[&str] = &[
    "/id",
    "/credentials",
    "/created_at",
    "/updated_at",
    "/state_changed_at",
    "/schema_url",
];

async fn patch_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<json_patch::Patch>,
) -> ApiResult<Json<Value>> {
    let mut ident = load(&state, &id).await?;
    for op in &patch.0 {
        let path = op_path(op);
        if IMMUTABLE
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        {
            return Err(ApiError::bad_request(format!("The JSON patch may not change {path}.")));
        }
    }
    let mut doc = admin_json(&state, &ident, &[]);
    json_patch::patch(&mut doc, &patch)
        .map_err(|e| ApiError::bad_request(format!("The JSON patch could not be applied: {e}")))?;
    let clock = state.clock.as_ref();
    ident.schema_id = doc
        .get("schema_id")
        .and_then(Value::as_str)
        .unwrap_or(&ident.schema_id)
        .to_string();
    ident.traits = doc.get("traits").cloned().unwrap_or(Value::Null);
    let new_state = parse_state(doc.get("state").and_then(Value::as_str).unwrap_or(""))?;
    if new_state != ident.state {
        ident.state = new_state;
        ident.state_changed_at = Some(clock.now());
    }
    ident.metadata_public = null_to_none(doc.get("metadata_public").cloned());
    ident.metadata_admin = null_to_none(doc.get("metadata_admin").cloned());
    ident.external_id = doc
        .get("external_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|e| !e.is_empty());
    ident.organization_id = doc
        .get("organization_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    apply_traits(&mut ident, &state.schemas, clock).map_err(traits_error)?;
    if let Some(addrs) = doc.get("verifiable_addresses").and_then(Value::as_array) {
        for a in ident.verifiable_addresses.iter_mut() {
            let patched = addrs.iter().find(|p| {
                p.get("value").and_then(Value::as_str) == Some(a.value.as_str())
                    && p.get("via").and_then(Value::as_str) == Some(a.via.as_str())
            });
            if let Some(p) = patched
                && let Some(v) = p.get("verified").and_then(Value::as_bool)
                && v != a.verified
            {
                a.verified = v;
                a.verified_at = v.then(|| clock.now());
                a.status = if v { "completed".into() } else { "pending".into() };
                a.updated_at = clock.now();
            }
        }
    }
    state.store.update_identity(&ident).await?;
    Ok(Json(admin_json(&state, &ident, &[])))
}

fn op_path(op: &json_patch::PatchOperation) -> String {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(o) => o.path.to_string(),
        P::Remove(o) => o.path.to_string(),
        P::Replace(o) => o.path.to_string(),
        P::Move(o) => o.path.to_string(),
        P::Copy(o) => o.path.to_string(),
        P::Test(o) => o.path.to_string(),
    }
}

async fn delete_identity(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    if state.store.delete_identity(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Unable to locate the resource"))
    }
}

async fn delete_credentials(
    State(state): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let mut ident = load(&state, &id).await?;
    match state.credentials.get(&kind) {
        Some(c) => c.deletable().map_err(ApiError::bad_request)?,
        None => return Err(ApiError::bad_request(format!("Unknown credential type {kind:?}."))),
    }
    let Some(cred) = ident.credentials.get_mut(kind.as_str()) else {
        return Err(ApiError::not_found(format!("The identity has no {kind} credentials.")));
    };
    if matches!(kind.as_str(), "oidc" | "saml")
        && let Some(identifier) = query_one(q.as_deref(), "identifier")
    {
        let before = cred.identifiers.len();
        cred.identifiers.retain(|i| i != &identifier);
        if before == cred.identifiers.len() {
            return Err(ApiError::not_found(format!(
                "The identity has no {kind} credential {identifier:?}."
            )));
        }
        if let Some(ps) = cred.config.get_mut("providers").and_then(Value::as_array_mut) {
            ps.retain(|p| {
                let id = format!(
                    "{}:{}",
                    p.get("provider").and_then(Value::as_str).unwrap_or(""),
                    p.get("subject").and_then(Value::as_str).unwrap_or("")
                );
                id != identifier
            });
        }
        if !cred.identifiers.is_empty() {
            state.store.update_identity(&ident).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    ident.credentials.remove(kind.as_str());
    ident.updated_at = state.clock.now();
    state.store.update_identity(&ident).await?;
    Ok(StatusCode::NO_CONTENT)
}

const DEFAULT_PAGE_SIZE: u32 = 250;
const MAX_PAGE_SIZE: u32 = 1000;

async fn list_identities(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let q = q.as_deref();
    let page_size = match query_one(q, "page_size").or_else(|| query_one(q, "per_page")) {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("page_size must be a number from 1 to {MAX_PAGE_SIZE}.")))?,
        None => DEFAULT_PAGE_SIZE,
    };
    let after = match query_one(q, "page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_page_token(&t)?),
        None => None,
    };
    let ids: Vec<Uuid> = query_all(q, "ids")
        .iter()
        .map(|s| Uuid::parse_str(s).map_err(|_| ApiError::bad_request(format!("ids: {s:?} is not a UUID."))))
        .collect::<Result<_, _>>()?;
    if ids.len() > 500 {
        return Err(ApiError::bad_request("At most 500 ids can be requested at once."));
    }
    let ci = query_one(q, "credentials_identifier").filter(|s| !s.is_empty());
    if !ids.is_empty() && ci.is_some() {
        return Err(ApiError::bad_request(
            "Only one filter can be used at a time: ids or credentials_identifier.",
        ));
    }
    let filter = IdentityFilter {
        ids,
        credentials_identifier: ci.map(|s| s.trim().to_string()),
        after,
        limit: page_size + 1,
    };
    let mut list = state.store.list_identities(&filter).await?;
    if list.is_empty()
        && let Some(ci) = &filter.credentials_identifier
    {
        // Identifiers of password/code/webauthn are stored lower-cased.
        let lowered = IdentityFilter {
            credentials_identifier: Some(ci.to_lowercase()),
            ..filter.clone()
        };
        list = state.store.list_identities(&lowered).await?;
    }
    let has_more = list.len() > page_size as usize;
    list.truncate(page_size as usize);
    let include = query_all(q, "include_credential");
    let body: Vec<Value> = list.iter().map(|i| admin_json(&state, i, &include)).collect();
    let mut headers = HeaderMap::new();
    let base = state.admin_url("admin/identities");
    let mut links = vec![format!("<{base}?page_size={page_size}&page_token=>; rel=\"first\"")];
    if has_more && let Some(last) = list.last() {
        links.push(format!(
            "<{base}?page_size={page_size}&page_token={}>; rel=\"next\"",
            encode_page_token(last.id)
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        headers.insert(header::LINK, v);
    }
    Ok((headers, Json(Value::Array(body))).into_response())
}

/// Opaque page tokens: base64url of the last id seen.
pub fn encode_page_token(id: Uuid) -> String {
    crate::crypto::b64url(id.to_string().as_bytes())
}

/// Decodes a token from [`encode_page_token`].
pub fn decode_page_token(t: &str) -> ApiResult<Uuid> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| Uuid::parse_str(&s).ok())
        .ok_or_else(|| ApiError::bad_request("The page_token is invalid. Use the token from the Link header."))
}

/// Kratos: `patchIdentitiesBody`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    identities: Vec<BatchPatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchPatch {
    #[serde(default)]
    patch_id: Option<Uuid>,
    /// Decoded per entry, so that one malformed entry fails alone.
    #[serde(default)]
    create: Option<Value>,
}

/// Kratos: `BatchPatchIdentitiesLimit`.
pub const MAX_BATCH: usize = 1000;
/// Kratos: `BatchPatchIdentitiesWithPasswordLimit` (plaintext passwords are hashed here).
pub const MAX_BATCH_WITH_PASSWORD: usize = 200;
/// Plaintext passwords of one batch hashed at once (the hasher's own limit still applies).
const BATCH_HASH_CONCURRENCY: usize = 4;

fn has_plaintext_password(create: &Value) -> bool {
    create
        .pointer("/credentials/password/config/password")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
}

/// `PATCH /admin/identities`: creates up to 1,000 identities (200 with plaintext passwords)
/// and answers, in request order, `{"action":"create","identity":id}` or
/// `{"action":"error","error":{…}}` per entry, with the entry's `patch_id` when given
/// (Kratos' `batchPatchIdentitiesResponse`). Unlike Kratos, an entry whose body is invalid
/// (schema, traits, hash format) fails alone instead of failing the whole request. All
/// created identities are written in one transaction. Latch extension: `?dry_run=true`
/// validates everything, including identifier conflicts, and writes nothing.
async fn batch_patch_identities(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody<BatchBody>,
) -> ApiResult<Response> {
    let dry_run = query_one(q.as_deref(), "dry_run").is_some_and(|v| v == "true" || v == "1");
    if body.identities.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "The maximum number of identities per request that can be created or deleted at once is {MAX_BATCH}."
        )));
    }
    let plaintext = body
        .identities
        .iter()
        .filter(|p| p.create.as_ref().is_some_and(has_plaintext_password))
        .count();
    if plaintext > MAX_BATCH_WITH_PASSWORD {
        return Err(ApiError::bad_request(format!(
            "The maximum number of identities per request that can be created with a plaintext password is {MAX_BATCH_WITH_PASSWORD}."
        )));
    }
    use futures_util::StreamExt as _;
    let patch_ids: Vec<Option<Uuid>> = body.identities.iter().map(|p| p.patch_id).collect();
    let built: Vec<ApiResult<Identity>> = futures_util::stream::iter(body.identities)
        .map(|p| {
            let state = &state;
            async move {
                match p.create {
                    Some(create) => match serde_json::from_value::<CreateIdentityBody>(create) {
                        Ok(create) => build_identity_with(state, create, dry_run).await,
                        Err(e) => Err(ApiError::bad_request(format!(
                            "The identity is not a valid createIdentityBody: {e}"
                        ))),
                    },
                    None => Err(ApiError::bad_request("The patch has no create body.")),
                }
            }
        })
        .buffered(BATCH_HASH_CONCURRENCY)
        .collect()
        .await;
    let mut outcomes: Vec<ApiResult<Uuid>> = Vec::with_capacity(built.len());
    if dry_run {
        let mut seen = std::collections::HashSet::new();
        for b in built {
            outcomes.push(match b {
                Ok(ident) => dry_run_conflicts(&state, &ident, &mut seen).await.map(|()| ident.id),
                Err(e) => Err(e),
            });
        }
    } else {
        let mut valid = Vec::new();
        let mut slots = Vec::with_capacity(built.len());
        for b in built {
            match b {
                Ok(ident) => {
                    slots.push(Ok(valid.len()));
                    valid.push(ident);
                }
                Err(e) => slots.push(Err(e)),
            }
        }
        let mut written = state.store.insert_identities(&valid).await?.into_iter();
        for slot in slots {
            outcomes.push(match slot {
                Ok(i) => match written.next() {
                    Some(Ok(())) => Ok(valid[i].id),
                    Some(Err(e)) => Err(ApiError::from(e)),
                    None => Err(ApiError::internal()),
                },
                Err(e) => Err(e),
            });
        }
    }
    let results: Vec<Value> = outcomes
        .into_iter()
        .zip(patch_ids)
        .map(|(outcome, patch_id)| {
            let mut entry = serde_json::Map::new();
            match outcome {
                Ok(id) => {
                    entry.insert("action".into(), json!("create"));
                    entry.insert("identity".into(), json!(id));
                }
                Err(e) => {
                    entry.insert("action".into(), json!("error"));
                    entry.insert("error".into(), e.error_object());
                }
            }
            if let Some(p) = patch_id {
                entry.insert("patch_id".into(), json!(p));
            }
            Value::Object(entry)
        })
        .collect();
    let mut out = json!({ "identities": results });
    if dry_run {
        out["dry_run"] = json!(true);
    }
    Ok(Json(out).into_response())
}

/// For a dry run: the conflicts the insert would hit (credential identifiers and external
/// ids held by stored identities or by an earlier entry of the same batch).
async fn dry_run_conflicts(
    state: &AppState,
    ident: &Identity,
    seen: &mut std::collections::HashSet<(String, String)>,
) -> ApiResult<()> {
    let conflict = || {
        ApiError::from(crate::store::StoreError::Conflict(
            crate::store::identity::CONFLICT.into(),
        ))
    };
    let mut keys = Vec::new();
    for (kind, c) in &ident.credentials {
        for i in &c.identifiers {
            if state.store.find_identity_by_identifier(kind, i).await?.is_some() {
                return Err(conflict());
            }
            keys.push((kind.to_string(), i.clone()));
        }
    }
    if let Some(e) = &ident.external_id {
        if state.store.find_identity_by_external_id(e).await?.is_some() {
            return Err(conflict());
        }
        keys.push(("external_id".into(), e.clone()));
    }
    if keys.iter().any(|k| seen.contains(k)) {
        return Err(conflict());
    }
    seen.extend(keys);
    Ok(())
}
