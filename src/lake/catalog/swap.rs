//! The SQL catalog's compare-and-swap of a table's metadata location, and the leases that live beside it
//! in the same database.
//!
//! The swap is the statement the catalog itself runs: `UPDATE iceberg_tables ... WHERE metadata_location =
//! <the location this commit was built on>`. Zero rows updated means another commit won, a provable no-op;
//! any error leaves the outcome unknown.

use iceberg::TableIdent;
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::AnyPool;

use super::tls::connect_error;
use crate::lake::error::LakeError;

/// The SQL catalog database, for the compare-and-swap of a table's metadata location.
#[derive(Clone)]
pub struct CatalogSwap {
    pool: AnyPool,
    catalog_name: String,
    dollar_placeholders: bool,
}

impl std::fmt::Debug for CatalogSwap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSwap").field("catalog_name", &self.catalog_name).finish_non_exhaustive()
    }
}

fn sql_error(context: &str) -> impl FnOnce(sqlx::Error) -> LakeError + '_ {
    move |e| LakeError::iceberg(context)(iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("catalog database: {e}")).with_retryable(true))
}

impl CatalogSwap {
    pub async fn connect(uri: &str, catalog_name: &str) -> Result<Self, LakeError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(uri).await.map_err(|e| connect_error(uri, e))?;
        Ok(Self { pool, catalog_name: catalog_name.to_string(), dollar_placeholders: uri.starts_with("postgres") })
    }

    /// `statement` with `?` placeholders numbered for PostgreSQL when the catalog is PostgreSQL.
    fn placeholders(&self, statement: &str) -> String {
        if !self.dollar_placeholders {
            return statement.to_string();
        }
        let mut numbered = String::with_capacity(statement.len() + 8);
        let mut n = 0;
        for ch in statement.chars() {
            if ch == '?' {
                n += 1;
                numbered.push_str(&format!("${n}"));
            } else {
                numbered.push(ch);
            }
        }
        numbered
    }

    /// Points `table` at `to` if it still points at `from`. `Ok(false)`: another commit landed first.
    pub async fn swap(&self, table: &TableIdent, from: &str, to: &str) -> Result<bool, LakeError> {
        let statement = self.placeholders(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = ?",
        );
        let namespace = table.namespace().join(".");
        let result = sqlx::query(&statement)
            .bind(to)
            .bind(from)
            .bind(&self.catalog_name)
            .bind(&namespace)
            .bind(table.name())
            .bind(from)
            .execute(&self.pool)
            .await
            .map_err(sql_error("swapping the table's metadata location"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The metadata file `table` points at, read from its catalog row without opening the file: one indexed
    /// row, so a reader can tell whether the table moved for the price of a round trip. `None`: no such table.
    pub async fn metadata_location(&self, table: &TableIdent) -> Result<Option<String>, LakeError> {
        let statement = self.placeholders(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        );
        let namespace = table.namespace().join(".");
        let row: Option<(Option<String>,)> = sqlx::query_as(&statement)
            .bind(&self.catalog_name)
            .bind(&namespace)
            .bind(table.name())
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_error("reading the table's metadata location"))?;
        Ok(row.and_then(|(location,)| location))
    }

    /// Takes (or extends) the lease `name` for `holder` until `expires_ms` if it is free, expired or already
    /// `holder`'s. The lease table lives beside the catalog's own in the same database, so every instance
    /// that shares the catalog sees one lease.
    pub async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, expires_ms: i64) -> Result<bool, LakeError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sentiment_lake_leases (catalog_name VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, \
             holder VARCHAR(255) NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (catalog_name, name))",
        )
        .execute(&self.pool)
        .await
        .map_err(sql_error("creating the lease table"))?;
        let statement = self.placeholders(
            "INSERT INTO sentiment_lake_leases (catalog_name, name, holder, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (catalog_name, name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE sentiment_lake_leases.expires_at < ? OR sentiment_lake_leases.holder = ?",
        );
        let result = sqlx::query(&statement)
            .bind(&self.catalog_name)
            .bind(name)
            .bind(holder)
            .bind(expires_ms)
            .bind(now_ms)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(sql_error("taking a lease"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Gives the lease back if `holder` still has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), LakeError> {
        let statement = self.placeholders("DELETE FROM sentiment_lake_leases WHERE catalog_name = ? AND name = ? AND holder = ?");
        sqlx::query(&statement).bind(&self.catalog_name).bind(name).bind(holder).execute(&self.pool).await.map_err(sql_error("releasing a lease"))?;
        Ok(())
    }
}
