//! Both dialects have the same migrations, and applying them yields the same tables/columns.

use std::collections::BTreeMap;

use latch::clock::SystemClock;
use latch::store::Store;

fn files(dialect: &str) -> Vec<String> {
    let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn migrations_have_the_same_files_in_both_dialects() {
    assert_eq!(files("sqlite"), files("postgres"));
    let listed: Vec<String> = latch::store::migrate::MIGRATIONS
        .iter()
        .map(|m| format!("{}.sql", m.name))
        .collect();
    assert_eq!(
        listed,
        files("sqlite"),
        "every migration file is registered in store::migrate::MIGRATIONS"
    );
}

async fn columns(store: &Store) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = match &store.pool {
        latch::store::Pool::Sqlite(p) => sqlx::query_as(
            "SELECT m.name, c.name FROM sqlite_master m JOIN pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.name",
        )
        .fetch_all(p)
        .await
        .unwrap(),
        latch::store::Pool::Postgres(p) => sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() ORDER BY table_name, column_name",
        )
        .fetch_all(p)
        .await
        .unwrap(),
    };
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, c) in rows {
        out.entry(t).or_default().push(c);
    }
    out
}

async fn open(db: &crate::harness::TestDb) -> Store {
    let dsn = latch::config::parse_dsn(&db.dsn).unwrap();
    let store = Store::connect(&dsn).await.unwrap();
    assert!(store.migrate(&SystemClock).await.unwrap() > 0);
    assert_eq!(
        store.migrate(&SystemClock).await.unwrap(),
        0,
        "migrating twice is a no-op"
    );
    assert!(store.pending_migrations().await.unwrap().is_empty());
    store
}

#[tokio::test]
#[cfg_attr(not(latch_pg), ignore = "set LATCH_TEST_POSTGRES_URL to run the PostgreSQL suite")]
async fn migrations_yield_the_same_tables_and_columns_on_sqlite_and_postgres() {
    use crate::harness::{Backend, TestDb};
    let (a, b) = (TestDb::new(Backend::Sqlite).await, TestDb::new(Backend::Postgres).await);
    let sqlite = columns(&open(&a).await).await;
    let pg = columns(&open(&b).await).await;
    assert!(sqlite.contains_key("identities"));
    assert_eq!(sqlite, pg);
}
