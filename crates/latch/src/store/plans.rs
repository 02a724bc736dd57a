//! The hot queries and their query plans: a test (`tests/api/plans.rs`) asks each database
//! how it would run every query here and fails when one would scan a whole table, so that a
//! login or a whoami stays one indexed lookup at a million identities.

use super::{Dialect, Pool, Store, StoreError};
use crate::store::identity::IdentityFilter;

/// `(name, SQL)` of the queries on the hot paths, as the store runs them.
pub fn hot_queries(dialect: Dialect) -> Vec<(&'static str, String)> {
    vec![
        (
            "whoami: session, devices and identity by token hash",
            super::session::session_with_identity_sql(dialect),
        ),
        (
            "session by logout token hash",
            format!(
                "SELECT {} FROM sessions WHERE logout_token_hash = $1",
                super::session::SESSION_COLUMNS
            ),
        ),
        (
            "session devices",
            "SELECT id, session_id, ip_address, user_agent, location FROM session_devices WHERE session_id IN ($1) \
             ORDER BY created_at, id"
                .to_string(),
        ),
        ("flow by id", super::flow::FLOW_BY_ID.to_string()),
        (
            "login: identity by identifier, whole",
            super::identity::identity_by_identifier_sql(dialect),
        ),
        ("identity by id, whole", super::identity::identity_by_id_sql(dialect)),
        ("unused codes of a flow", super::code::UNUSED_CODES.to_string()),
        (
            "admin list by credentials_identifier",
            super::identity::list_identities_sql(
                dialect,
                &IdentityFilter {
                    credentials_identifier: Some(String::new()),
                    limit: 250,
                    ..IdentityFilter::default()
                },
            ),
        ),
        (
            "admin list, a page after an id",
            super::identity::list_identities_sql(
                dialect,
                &IdentityFilter {
                    after: Some(uuid::Uuid::nil()),
                    limit: 250,
                    ..IdentityFilter::default()
                },
            ),
        ),
        ("courier claim", super::courier::claim_sql(dialect, 10)),
    ]
}

/// Highest `$N` in a statement.
fn parameters(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let digits: String = sql[i + 1..].chars().take_while(char::is_ascii_digit).collect();
            max = max.max(digits.parse().unwrap_or(0));
            i += digits.len();
        }
        i += 1;
    }
    max
}

/// One step of SQLite's `EXPLAIN QUERY PLAN` (its `id`, `parent` and `notused` columns are
/// not needed).
#[derive(sqlx::FromRow)]
struct SqlitePlanStep {
    detail: String,
}

/// One line of PostgreSQL's text `EXPLAIN`.
#[derive(sqlx::FromRow)]
struct PgPlanLine {
    #[sqlx(rename = "QUERY PLAN")]
    query_plan: String,
}

impl Store {
    /// How the database would run `sql`, one line per plan step: `EXPLAIN QUERY PLAN` on
    /// SQLite; on PostgreSQL `EXPLAIN` of a generic plan (parameters unknown) with sequential
    /// scans discouraged, so that an empty test table shows the index a large one would use
    /// (a query without a usable index still shows `Seq Scan`).
    pub async fn query_plan(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let rows: Vec<SqlitePlanStep> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                        .fetch_all(p)
                        .await?;
                Ok(rows.into_iter().map(|r| r.detail).collect())
            }
            Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                sqlx::raw_sql("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
                    .execute(&mut *conn)
                    .await?;
                let _ = sqlx::raw_sql("DEALLOCATE latch_plan").execute(&mut *conn).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE latch_plan AS {sql}")))
                    .execute(&mut *conn)
                    .await?;
                let n = parameters(sql);
                let args = if n == 0 {
                    String::new()
                } else {
                    format!("({})", vec!["NULL"; n].join(", "))
                };
                let rows: Vec<PgPlanLine> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE latch_plan{args}")))
                        .fetch_all(&mut *conn)
                        .await?;
                sqlx::raw_sql("DEALLOCATE latch_plan; RESET plan_cache_mode; RESET enable_seqscan")
                    .execute(&mut *conn)
                    .await?;
                Ok(rows.into_iter().map(|r| r.query_plan).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_parameters() {
        assert_eq!(super::parameters("SELECT 1"), 0);
        assert_eq!(super::parameters("a = $1 AND b = $12 OR c = $3"), 12);
    }
}
