//! One-time codes: stored as keyed hashes, single-use, one live code per flow.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Ts};

/// A stored code (never the code itself).
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// Row id.
    pub id: Uuid,
    /// The flow the code belongs to.
    pub flow_id: Uuid,
    /// The identity it signs in / recovers (None for registration and unknown addresses).
    pub identity_id: Option<Uuid>,
    /// `login`, `registration`, `verification`, `recovery`.
    pub purpose: String,
    /// Where it was sent (normalised).
    pub address: String,
    /// `email` or `sms`.
    pub address_type: String,
    /// Keyed hash of the code.
    pub code_hash: String,
    /// End of validity.
    pub expires_at: OffsetDateTime,
    /// When it was used.
    pub used_at: Option<OffsetDateTime>,
    /// When it was issued.
    pub created_at: OffsetDateTime,
}

/// One `selfservice_codes` row as [`UNUSED_CODES`] reads it.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    flow_id: Uuid,
    identity_id: Option<Uuid>,
    purpose: String,
    address: String,
    address_type: String,
    code_hash: String,
    expires_at: Ts,
    used_at: Option<Ts>,
    created_at: Ts,
}

fn from_row(r: Row) -> CodeRow {
    CodeRow {
        id: r.id,
        flow_id: r.flow_id,
        identity_id: r.identity_id,
        purpose: r.purpose,
        address: r.address,
        address_type: r.address_type,
        code_hash: r.code_hash,
        expires_at: r.expires_at.0,
        used_at: r.used_at.map(|t| t.0),
        created_at: r.created_at.0,
    }
}

/// Inserts a code after deleting the flow's unused ones; used inside `with_tx!` bodies so the
/// code and its email are written together.
#[macro_export]
macro_rules! replace_code {
    ($tx:expr, $code:expr) => {{
        let code: &$crate::store::code::CodeRow = $code;
        sqlx::query("DELETE FROM selfservice_codes WHERE flow_id = $1 AND used_at IS NULL")
            .bind(code.flow_id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query(
            "INSERT INTO selfservice_codes (id, flow_id, identity_id, purpose, address, address_type, code_hash, expires_at, used_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
        )
        .bind(code.id)
        .bind(code.flow_id)
        .bind(code.identity_id)
        .bind(&code.purpose)
        .bind(&code.address)
        .bind(&code.address_type)
        .bind(&code.code_hash)
        .bind($crate::store::Ts(code.expires_at))
        .bind($crate::store::Ts(code.created_at))
        .execute(&mut *$tx)
        .await?;
    }};
}

/// A flow's unused codes, newest first (every code submission).
pub(crate) const UNUSED_CODES: &str = "SELECT id, flow_id, identity_id, purpose, address, address_type, code_hash, \
    expires_at, used_at, created_at FROM selfservice_codes WHERE flow_id = $1 AND used_at IS NULL ORDER BY created_at DESC";

impl Store {
    /// The flow's unused codes, newest first.
    pub async fn unused_codes(&self, flow_id: Uuid) -> Result<Vec<CodeRow>, StoreError> {
        let rows: Vec<Row> = crate::with_pool!(self, p => {
            sqlx::query_as(UNUSED_CODES)
            .bind(flow_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// When the flow's newest code was issued (resend cooldown).
    pub async fn last_code_at(&self, flow_id: Uuid) -> Result<Option<OffsetDateTime>, StoreError> {
        let created_at: Option<Ts> = crate::with_pool!(self, p => {
            sqlx::query_scalar("SELECT created_at FROM selfservice_codes WHERE flow_id = $1 ORDER BY created_at DESC LIMIT 1")
                .bind(flow_id)
                .fetch_optional(p)
                .await?
        });
        Ok(created_at.map(|t| t.0))
    }

    /// Marks a code used; `false` if another request used it first (single use).
    pub async fn use_code(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = crate::with_pool!(self, p => {
            sqlx::query("UPDATE selfservice_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(Ts(now))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Stores a new flow and its first code (or link token) in one transaction (admin
    /// recovery links).
    pub async fn insert_flow_with_code(
        &self,
        flow: &crate::model::flow::Flow,
        code: &CodeRow,
    ) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            crate::insert_flow!(&mut *tx, flow);
            crate::replace_code!(tx, code);
            Ok::<(), StoreError>(())
        })
    }

    /// Stores a code without an email (unknown addresses under enumeration protection, so the
    /// work done matches a real send).
    pub async fn insert_code(&self, code: &CodeRow) -> Result<(), StoreError> {
        crate::with_tx!(self, tx => {
            crate::replace_code!(tx, code);
            Ok::<(), StoreError>(())
        })
    }
}
