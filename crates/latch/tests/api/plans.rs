//! Every hot query uses an index: the database's own query plan, on SQLite and PostgreSQL
//! (see `latch::store::plans`). No timing, so it holds on any machine.

use crate::both;
use crate::harness::{Backend, TestServer};

/// A plan step that reads a whole table (or a whole index) instead of looking rows up.
fn full_scan(backend: Backend, line: &str) -> bool {
    match backend {
        // SQLite: `SEARCH t USING INDEX …` looks up; `SCAN t` reads everything. A scan of a
        // subquery's or CTE's result is not a table scan.
        Backend::Sqlite => {
            let l = line.trim_start_matches(['|', '-', '`', ' ']);
            l.starts_with("SCAN ") && !l.starts_with("SCAN (") && !l.contains("SUBQUERY") && !l.contains("CTE")
        }
        // PostgreSQL (sequential scans discouraged): only a query without a usable index
        // still plans a `Seq Scan`.
        Backend::Postgres => line.contains("Seq Scan"),
    }
}

async fn hot_queries_use_indexes(b: Backend) {
    let srv = TestServer::start(b).await;
    let store = &srv.app.store;
    let queries = latch::store::plans::hot_queries(store.dialect());
    assert!(queries.len() >= 10);
    let mut bad = Vec::new();
    for (name, sql) in &queries {
        let plan = store
            .query_plan(sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{sql}"));
        assert!(!plan.is_empty(), "{name}: empty plan");
        if plan.iter().any(|l| full_scan(b, l)) {
            bad.push(format!("{name}:\n  {}", plan.join("\n  ")));
        }
    }
    assert!(bad.is_empty(), "full scans on {b:?}:\n{}", bad.join("\n"));

    // The check itself can fail: a lookup by a column without an index is a full scan.
    let plan = store
        .query_plan("SELECT id FROM identities WHERE schema_id = $1")
        .await
        .unwrap();
    assert!(plan.iter().any(|l| full_scan(b, l)), "{plan:?}");
    srv.stop().await;
}
both!(hot_queries_use_indexes);
