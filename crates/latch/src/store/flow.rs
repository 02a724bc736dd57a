//! Flow persistence and stored browser errors.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Ts};
use crate::model::flow::{Flow, FlowKind, FlowType};
use crate::ui::Container;

/// One `selfservice_flows` row as [`FLOW_BY_ID`] reads it.
#[derive(sqlx::FromRow)]
struct FlowRow {
    id: Uuid,
    kind: String,
    #[sqlx(rename = "type")]
    flow_type: String,
    state: String,
    request_url: String,
    return_to: Option<String>,
    csrf_hash: Option<String>,
    active: Option<String>,
    ui: Json<Value>,
    internal: Json<Value>,
    identity_id: Option<Uuid>,
    session_id: Option<Uuid>,
    refresh: bool,
    requested_aal: String,
    issued_at: Ts,
    expires_at: Ts,
    created_at: Ts,
    updated_at: Ts,
}

/// One `selfservice_errors` row.
#[derive(sqlx::FromRow)]
struct ErrorRow {
    error: Json<Value>,
    created_at: Ts,
    updated_at: Ts,
}

/// Reads one flow (the hot path of every self-service request).
pub(crate) const FLOW_BY_ID: &str = "SELECT id, kind, type, state, request_url, return_to, csrf_hash, active, ui, \
    internal, identity_id, session_id, refresh, requested_aal, issued_at, expires_at, created_at, updated_at \
    FROM selfservice_flows WHERE id = $1";

/// Inserts a new flow with `exec` (a pool, or `&mut *tx` inside `with_tx!` bodies so that the
/// flow and what belongs to it are written together).
#[macro_export]
macro_rules! insert_flow {
    ($exec:expr, $flow:expr) => {{
        let f: &$crate::model::flow::Flow = $flow;
        let ui = serde_json::to_value(&f.ui).map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO selfservice_flows (id, kind, type, state, request_url, return_to, csrf_hash, active, ui, internal, \
             identity_id, session_id, refresh, requested_aal, issued_at, expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(f.id)
        .bind(f.kind.as_str())
        .bind(f.flow_type.as_str())
        .bind(f.state.as_str())
        .bind(&f.request_url)
        .bind(&f.return_to)
        .bind(&f.csrf_hash)
        .bind(&f.active)
        .bind(sqlx::types::Json(&ui))
        .bind(sqlx::types::Json(&f.internal))
        .bind(f.identity_id)
        .bind(f.session_id)
        .bind(f.refresh)
        .bind(f.requested_aal.as_str())
        .bind($crate::store::Ts(f.issued_at))
        .bind($crate::store::Ts(f.expires_at))
        .bind($crate::store::Ts(f.created_at))
        .bind($crate::store::Ts(f.updated_at))
        .execute($exec)
        .await?;
    }};
}

/// Saves a flow's mutable parts with `exec` (a pool, or `&mut *tx` inside `with_tx!` bodies, so
/// that a strategy's writes and the flow they change commit together).
#[macro_export]
macro_rules! update_flow {
    ($exec:expr, $flow:expr) => {{
        let f: &$crate::model::flow::Flow = $flow;
        let ui = serde_json::to_value(&f.ui).map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE selfservice_flows SET state = $2, active = $3, ui = $4, internal = $5, identity_id = $6, \
             session_id = $7, csrf_hash = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(f.id)
        .bind(f.state.as_str())
        .bind(&f.active)
        .bind(sqlx::types::Json(&ui))
        .bind(sqlx::types::Json(&f.internal))
        .bind(f.identity_id)
        .bind(f.session_id)
        .bind(&f.csrf_hash)
        .bind($crate::store::Ts(f.updated_at))
        .execute($exec)
        .await?;
    }};
}

impl Store {
    /// Stores a new flow.
    pub async fn insert_flow(&self, f: &Flow) -> Result<(), StoreError> {
        crate::with_pool!(self, p => {
            crate::insert_flow!(p, f);
        });
        Ok(())
    }

    /// Saves a flow's mutable parts.
    pub async fn update_flow(&self, f: &Flow) -> Result<(), StoreError> {
        crate::with_pool!(self, p => {
            crate::update_flow!(p, f);
        });
        Ok(())
    }

    /// Loads a flow by id.
    pub async fn get_flow(&self, id: Uuid) -> Result<Option<Flow>, StoreError> {
        let row: Option<FlowRow> = crate::with_pool!(self, p => {
            sqlx::query_as(FLOW_BY_ID).bind(id).fetch_optional(p).await?
        });
        row.map(decode).transpose()
    }

    /// Stores a browser-facing error for `GET /self-service/errors?id=`.
    pub async fn insert_error(&self, id: Uuid, error: &Value, now: OffsetDateTime) -> Result<(), StoreError> {
        crate::with_pool!(self, p => {
            sqlx::query("INSERT INTO selfservice_errors (id, error, seen_at, created_at, updated_at) VALUES ($1, $2, NULL, $3, $3)")
                .bind(id)
                .bind(Json(error))
                .bind(Ts(now))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Loads a stored error and marks it seen.
    pub async fn get_error(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<(Value, OffsetDateTime, OffsetDateTime)>, StoreError> {
        let row: Option<ErrorRow> = crate::with_pool!(self, p => {
            let row = sqlx::query_as("SELECT error, created_at, updated_at FROM selfservice_errors WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?;
            sqlx::query("UPDATE selfservice_errors SET seen_at = $2 WHERE id = $1 AND seen_at IS NULL")
                .bind(id)
                .bind(Ts(now))
                .execute(p)
                .await?;
            row
        });
        Ok(row.map(|r| (r.error.0, r.created_at.0, r.updated_at.0)))
    }
}

fn decode(r: FlowRow) -> Result<Flow, StoreError> {
    let kind = FlowKind::parse(&r.kind).ok_or_else(|| StoreError::Corrupt(format!("flow kind {:?}", r.kind)))?;
    let flow_type =
        FlowType::parse(&r.flow_type).ok_or_else(|| StoreError::Corrupt(format!("flow type {:?}", r.flow_type)))?;
    let ui: Container = serde_json::from_value(r.ui.0).map_err(|e| StoreError::Corrupt(format!("flow ui: {e}")))?;
    let state = crate::model::flow::FlowState::parse(&r.state)
        .ok_or_else(|| StoreError::Corrupt(format!("flow state {:?}", r.state)))?;
    Ok(Flow {
        id: r.id,
        kind,
        flow_type,
        state,
        request_url: r.request_url,
        return_to: r.return_to,
        csrf_hash: r.csrf_hash,
        active: r.active,
        ui,
        internal: r.internal.0,
        identity_id: r.identity_id,
        session_id: r.session_id,
        refresh: r.refresh,
        requested_aal: crate::model::Aal::from(r.requested_aal.as_str()),
        issued_at: r.issued_at.0,
        expires_at: r.expires_at.0,
        created_at: r.created_at.0,
        updated_at: r.updated_at.0,
        rendered_identity: None,
        transient_payload: None,
    })
}
