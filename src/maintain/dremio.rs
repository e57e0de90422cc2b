//! `--maintenance dremio`: the same policy carried out by Dremio's own statements, for tables Dremio
//! writes (`--writer dremio`) or that live in a catalog only Dremio commits to.
//!
//! - compaction: `OPTIMIZE TABLE .. REWRITE DATA USING BIN_PACK FOR PARTITIONS <recent>` with the policy's
//!   target size and minimum input files;
//! - expiry: `VACUUM TABLE .. EXPIRE SNAPSHOTS older_than .. retain_last ..`, or `VACUUM CATALOG` on Nessie
//!   (Dremio refuses VACUUM TABLE there);
//! - filesystem sources: `ALTER TABLE .. REFRESH METADATA` first, so commits of other writers are seen.
//!
//! Orphan files are not removed through Dremio: CE 25 ships `REMOVE ORPHAN FILES` disabled. A statement
//! that meets a concurrent commit gives way to ingestion; the next run tries again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};

use super::policy::MaintenancePolicy;
use crate::dremio::sql::{self, DremioMaintenance, TablePath};
use crate::dremio::{DremioError, FlightSqlClient, StatementKind};
use crate::schema::column as c;

/// Which kind of Dremio source holds the table: it decides the VACUUM form and whether metadata must be
/// refreshed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DremioCatalog {
    #[default]
    Nessie,
    /// A filesystem source (ADLS, S3, ...: Hadoop-layout tables).
    Filesystem,
    /// Glue or Hive.
    Other,
}

/// One statement of a run and what Dremio answered (its one result row, as text).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatementOutcome {
    pub step: &'static str,
    pub sql: String,
    /// `ok`, `conflict` (gave way to a concurrent commit) or `failed`.
    pub outcome: &'static str,
    pub result: BTreeMap<String, String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DremioMaintenanceReport {
    pub table: String,
    pub statements: Vec<StatementOutcome>,
    pub seconds: f64,
}

impl DremioMaintenanceReport {
    /// Whether a statement failed outright (not merely gave way).
    pub fn failed(&self) -> bool {
        self.statements.iter().any(|s| s.outcome == "failed")
    }
}

/// The statements a run sends, in order.
pub fn statements(
    table: &TablePath,
    catalog: DremioCatalog,
    policy: &MaintenancePolicy,
    compact_window: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, String)>, DremioError> {
    let mut out = Vec::new();
    if catalog == DremioCatalog::Filesystem {
        out.push(("refresh", sql::refresh_metadata(table)));
    }
    let expiry = policy.expiry.unwrap_or_default();
    let compaction = policy.compaction.unwrap_or_default();
    let window = chrono::Duration::from_std(compact_window).unwrap_or(chrono::Duration::days(3));
    let age = chrono::Duration::from_std(expiry.max_age).unwrap_or(chrono::Duration::days(5));
    let m = DremioMaintenance {
        target_file_size_mb: (compaction.target_file_bytes >> 20).max(1),
        min_input_files: u32::try_from(compaction.min_input_files).unwrap_or(u32::MAX),
        compact_since: (!compact_window.is_zero()).then(|| now - window),
        expire_older_than: now - age,
        retain_last: u32::try_from(expiry.min_snapshots).unwrap_or(u32::MAX),
    };
    if policy.compaction.is_some() {
        out.push(("compact", sql::optimize(table, &m, c::EVENT_TIMESTAMP)?));
    }
    if policy.expiry.is_some() {
        out.push(("expire", sql::vacuum(table, &m, catalog == DremioCatalog::Nessie)));
    }
    Ok(out)
}

fn first_row(batches: &[RecordBatch]) -> BTreeMap<String, String> {
    let mut row = BTreeMap::new();
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let text = arrow_cast::display::ArrayFormatter::try_new(column.as_ref(), &Default::default())
                .map(|f| f.value(0).to_string())
                .unwrap_or_default();
            row.insert(field.name().clone(), text);
        }
    }
    row
}

/// Runs the statements one after another. A conflict skips the step; a transient failure ends the run
/// (retryable); a refused statement is reported and the run goes on with the next step.
pub async fn run(
    client: &FlightSqlClient,
    table: &TablePath,
    catalog: DremioCatalog,
    policy: &MaintenancePolicy,
    compact_window: Duration,
) -> Result<DremioMaintenanceReport, DremioError> {
    let started = Instant::now();
    let mut report = DremioMaintenanceReport { table: table.parts().join("."), ..Default::default() };
    for (step, statement) in statements(table, catalog, policy, compact_window, Utc::now())? {
        let outcome = match client.execute(&statement, StatementKind::Idempotent).await {
            Ok(batches) => StatementOutcome { step, sql: statement, outcome: "ok", result: first_row(&batches), error: None },
            Err(DremioError::Conflict(detail)) => {
                tracing::info!(step, detail, "Dremio maintenance gave way to a concurrent commit; the next run tries again.");
                StatementOutcome { step, sql: statement, outcome: "conflict", result: BTreeMap::new(), error: Some(detail) }
            }
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(step, error = %e, "Dremio refused a maintenance statement.");
                StatementOutcome { step, sql: statement, outcome: "failed", result: BTreeMap::new(), error: Some(e.to_string()) }
            }
        };
        report.statements.push(outcome);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn golden_runs_per_catalog_kind() {
        let table = TablePath::parse("lake.sentiment.sentiment_records").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap();
        let policy = MaintenancePolicy::default();
        let window = Duration::from_secs(3 * 86_400);
        let fs = statements(&table, DremioCatalog::Filesystem, &policy, window, now).unwrap();
        let expected = [
            ("refresh", r#"ALTER TABLE "lake"."sentiment"."sentiment_records" REFRESH METADATA"#),
            (
                "compact",
                r#"OPTIMIZE TABLE "lake"."sentiment"."sentiment_records" REWRITE DATA USING BIN_PACK FOR PARTITIONS "event_timestamp" >= TIMESTAMP '2026-03-07 00:00:00.000' (TARGET_FILE_SIZE_MB = 128, MIN_INPUT_FILES = 5)"#,
            ),
            (
                "expire",
                r#"VACUUM TABLE "lake"."sentiment"."sentiment_records" EXPIRE SNAPSHOTS older_than = '2026-03-05 00:00:00.000' retain_last = 10"#,
            ),
        ];
        let got: Vec<(&str, &str)> = fs.iter().map(|(s, q)| (*s, q.as_str())).collect();
        assert_eq!(got, expected);
        let nessie = statements(&table, DremioCatalog::Nessie, &policy, window, now).unwrap();
        assert_eq!(nessie.len(), 2, "no refresh: Nessie tables are read at their current commit");
        assert_eq!(nessie[1].1, r#"VACUUM CATALOG "lake""#);
        let only_expiry = MaintenancePolicy { compaction: None, ..policy };
        assert_eq!(statements(&table, DremioCatalog::Other, &only_expiry, window, now).unwrap().len(), 1);
    }
}
