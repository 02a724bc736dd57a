//! Flow persistence and stored browser errors.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Ts};
use crate::model::flow::{Flow, FlowKind, FlowType};
use crate::ui::Container;

type FlowRow = (
    Uuid,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Json<Value>,
    Json<Value>,
    Option<Uuid>,
    Option<Uuid>,
    bool,
    String,
    (Ts, Ts, Ts, Ts),
);

/// Reads one flow (the hot path of every self-service request).
pub(crate) const FLOW_BY_ID: &str = "SELECT id, kind, type, state, request_url, return_to, csrf_hash, active, ui, \
    internal, identity_id, session_id, refresh, requested_aal, issued_at, expires_at, created_at, updated_at \
    FROM selfservice_flows WHERE id = $1";

impl Store {
    /// Stores a new flow.
    pub async fn insert_flow(&self, f: &Flow) -> Result<(), StoreError> {
        let ui = serde_json::to_value(&f.ui).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        crate::with_pool!(self, p => {
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
            .bind(Json(&ui))
            .bind(Json(&f.internal))
            .bind(f.identity_id)
            .bind(f.session_id)
            .bind(f.refresh)
            .bind(f.requested_aal.as_str())
            .bind(Ts(f.issued_at))
            .bind(Ts(f.expires_at))
            .bind(Ts(f.created_at))
            .bind(Ts(f.updated_at))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Saves a flow's mutable parts.
    pub async fn update_flow(&self, f: &Flow) -> Result<(), StoreError> {
        let ui = serde_json::to_value(&f.ui).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE selfservice_flows SET state = $2, active = $3, ui = $4, internal = $5, identity_id = $6, \
                 session_id = $7, csrf_hash = $8, updated_at = $9 WHERE id = $1",
            )
            .bind(f.id)
            .bind(f.state.as_str())
            .bind(&f.active)
            .bind(Json(&ui))
            .bind(Json(&f.internal))
            .bind(f.identity_id)
            .bind(f.session_id)
            .bind(&f.csrf_hash)
            .bind(Ts(f.updated_at))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Loads a flow by id.
    pub async fn get_flow(&self, id: Uuid) -> Result<Option<Flow>, StoreError> {
        type Raw = (
            Uuid,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Json<Value>,
            Json<Value>,
            Option<Uuid>,
            Option<Uuid>,
            bool,
            String,
        );
        // One query; tuples stop at 16 columns, so the four timestamps are read by index.
        let row: Option<(Raw, (Ts, Ts, Ts, Ts))> = crate::with_pool!(self, p => {
            let row = sqlx::query(FLOW_BY_ID)
            .bind(id)
            .fetch_optional(p)
            .await?;
            match row {
                None => None,
                Some(r) => {
                    use sqlx::{FromRow, Row};
                    let a = Raw::from_row(&r)?;
                    let t = (r.try_get::<Ts, _>(14)?, r.try_get::<Ts, _>(15)?, r.try_get::<Ts, _>(16)?, r.try_get::<Ts, _>(17)?);
                    Some((a, t))
                }
            }
        });
        let Some((r, t)) = row else { return Ok(None) };
        let full: FlowRow = (
            r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13, t,
        );
        decode(full).map(Some)
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
        let row: Option<(Json<Value>, Ts, Ts)> = crate::with_pool!(self, p => {
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
        Ok(row.map(|(e, c, u)| (e.0, c.0, u.0)))
    }
}

fn decode(r: FlowRow) -> Result<Flow, StoreError> {
    let kind = FlowKind::parse(&r.1).ok_or_else(|| StoreError::Corrupt(format!("flow kind {:?}", r.1)))?;
    let flow_type = FlowType::parse(&r.2).ok_or_else(|| StoreError::Corrupt(format!("flow type {:?}", r.2)))?;
    let ui: Container = serde_json::from_value(r.8.0).map_err(|e| StoreError::Corrupt(format!("flow ui: {e}")))?;
    let state = crate::model::flow::FlowState::parse(&r.3)
        .ok_or_else(|| StoreError::Corrupt(format!("flow state {:?}", r.3)))?;
    let (issued_at, expires_at, created_at, updated_at) = r.14;
    Ok(Flow {
        id: r.0,
        kind,
        flow_type,
        state,
        request_url: r.4,
        return_to: r.5,
        csrf_hash: r.6,
        active: r.7,
        ui,
        internal: r.9.0,
        identity_id: r.10,
        session_id: r.11,
        refresh: r.12,
        requested_aal: crate::model::Aal::from(r.13.as_str()),
        issued_at: issued_at.0,
        expires_at: expires_at.0,
        created_at: created_at.0,
        updated_at: updated_at.0,
        rendered_identity: None,
        transient_payload: None,
    })
}
