//! Session token exchanges of native apps' social sign-in (`/sessions/token-exchange`).
//! Kratos: `persistence/sql/persister_sessiontokenexchanger.go`. Codes are stored as hashes,
//! the session token sealed; taking an exchange deletes it in the same statement, so two
//! requests with the same codes never both get the token.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Ts};

/// What a completed exchange hands out.
#[derive(Debug, sqlx::FromRow)]
pub struct Taken {
    /// The session the flow issued.
    pub session_id: Uuid,
    /// Its token, sealed under the two codes.
    pub sealed_token: String,
}

impl Store {
    /// Stores a new exchange for `flow_id`, open until `expires_at`; drops a few expired ones.
    pub async fn insert_token_exchange(
        &self,
        id: Uuid,
        flow_id: Uuid,
        init_code_hash: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        crate::with_pool!(self, p => {
            sqlx::query(
                "DELETE FROM session_token_exchanges WHERE id IN \
                 (SELECT id FROM session_token_exchanges WHERE expires_at < $1 LIMIT 100)",
            )
            .bind(Ts(now))
            .execute(p)
            .await?;
            sqlx::query(
                "INSERT INTO session_token_exchanges (id, flow_id, init_code_hash, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(flow_id)
            .bind(init_code_hash)
            .bind(Ts(expires_at))
            .bind(Ts(now))
            .execute(p)
            .await
            .map_err(|e| StoreError::from_write(e, "session token exchange code collision"))?;
        });
        Ok(())
    }

    /// Records the outcome of the sign-in an exchange waits for: the session it hands out,
    /// or (`None`) a failure whose flow the exchange shows. `false` when it already handed
    /// out a session or is gone; a failure may be followed by a success (the flow retried).
    pub async fn complete_token_exchange(
        &self,
        id: Uuid,
        return_to_code_hash: &str,
        session: Option<(Uuid, &str)>,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let n = crate::with_pool!(self, p => {
            sqlx::query(
                "UPDATE session_token_exchanges SET return_to_code_hash = $2, session_id = $3, \
                 sealed_token = $4, expires_at = $5 WHERE id = $1 AND session_id IS NULL",
            )
            .bind(id)
            .bind(return_to_code_hash)
            .bind(session.map(|s| s.0))
            .bind(session.map(|s| s.1))
            .bind(Ts(expires_at))
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The flow of an unexpired exchange with these codes whose sign-in failed.
    pub async fn failed_token_exchange_flow(
        &self,
        init_code_hash: &str,
        return_to_code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(crate::with_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT flow_id FROM session_token_exchanges WHERE init_code_hash = $1 \
                 AND return_to_code_hash = $2 AND session_id IS NULL AND expires_at > $3",
            )
            .bind(init_code_hash)
            .bind(return_to_code_hash)
            .bind(Ts(now))
            .fetch_optional(p)
            .await?
        }))
    }

    /// The init code hash of exchange `id` (the key of its sealed token), if it still exists.
    pub async fn token_exchange_init_hash(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(crate::with_pool!(self, p => {
            sqlx::query_scalar("SELECT init_code_hash FROM session_token_exchanges WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Takes (deletes and returns) the completed, unexpired exchange with these codes.
    pub async fn take_token_exchange(
        &self,
        init_code_hash: &str,
        return_to_code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, StoreError> {
        Ok(crate::with_pool!(self, p => {
            sqlx::query_as(
                "DELETE FROM session_token_exchanges WHERE init_code_hash = $1 AND return_to_code_hash = $2 \
                 AND session_id IS NOT NULL AND sealed_token IS NOT NULL AND expires_at > $3 \
                 RETURNING session_id, sealed_token",
            )
            .bind(init_code_hash)
            .bind(return_to_code_hash)
            .bind(Ts(now))
            .fetch_optional(p)
            .await?
        }))
    }
}
