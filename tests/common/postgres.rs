//! The machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`; started before every session and
//! CI run) as the SQL catalog. Each test gets its own schema, so tests never see each other's tables.

use sqlx::Connection;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A catalog URI whose tables live in a new, empty schema.
pub async fn fresh_catalog() -> String {
    let schema = format!("catalog_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::postgres::PgConnection::connect(SERVER)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {SERVER} (it runs on every machine and in CI): {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut connection).await.unwrap();
    format!("{SERVER}?options=-c%20search_path%3D{schema}")
}
