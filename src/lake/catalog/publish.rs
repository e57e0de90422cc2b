//! Table commits made by this crate: an append or a replace snapshot (manifests, manifest list, snapshot),
//! expired snapshots and table properties in one new metadata file, published by the SQL catalog's own
//! compare-and-swap; or, with a REST catalog, the same manifests and manifest list sent as one commit
//! request that the server applies only if `main` has not moved ([`super::rest`]). iceberg 0.10.1 has no
//! public replace action; a replace is built here from its public writers: manifests holding a replaced
//! file are rewritten with it as `deleted` and their other files as `existing` (sequence numbers kept),
//! untouched manifests are carried over, and the new files get a manifest of their own.
//!
//! Why not iceberg-rust's `Transaction`: its metadata builder re-binds the default partition spec on every
//! commit and refuses a spec with two time transforms of one column, which is exactly the seed's
//! `year/month/day(event_timestamp)` (PyIceberg creates such tables; Phase 1 did). It also rebases an append
//! onto newer metadata without asking, where the ledger needs a commit that is either exactly on top of the
//! metadata it was planned against or refused. Here the new metadata is the current one plus the snapshot
//! and properties (edited as the spec's JSON, so any spec the table has survives untouched), and the swap
//! is the statement the catalog itself runs: `UPDATE iceberg_tables ... WHERE metadata_location = <the
//! location this commit was built on>`. Zero rows updated means another commit won.

use std::str::FromStr;

use iceberg::spec::FormatVersion;
use iceberg::table::Table;
use iceberg::MetadataLocation;

use super::rest::{self, Published, RestCommitter};
use super::swap::CatalogSwap;
use crate::lake::error::LakeError;
use crate::lake::table::{next_metadata, remove, write_snapshot, Change, NewSnapshot};

/// Where commits are published: the SQL catalog's compare-and-swap, or a REST catalog's commit endpoint.
/// Leases are rows in a SQL database either way: the SQL catalog's own, or the `--lease-uri` database
/// beside a REST catalog (whose `swap` is then never used).
#[derive(Debug, Clone)]
pub enum Publisher {
    Sql(CatalogSwap),
    Rest { committer: RestCommitter, leases: CatalogSwap },
}

impl Publisher {
    fn leases(&self) -> &CatalogSwap {
        match self {
            Publisher::Sql(swap) => swap,
            Publisher::Rest { leases, .. } => leases,
        }
    }

    /// [`CatalogSwap::try_lease`] on the lease database.
    pub async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, expires_ms: i64) -> Result<bool, LakeError> {
        self.leases().try_lease(name, holder, now_ms, expires_ms).await
    }

    /// [`CatalogSwap::release_lease`] on the lease database.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), LakeError> {
        self.leases().release_lease(name, holder).await
    }
}

/// How a commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The table now points at the new metadata; the new snapshot when there is one.
    Landed { snapshot_id: Option<i64> },
    /// Another commit moved the table first; nothing of this one is referenced.
    Conflict,
}

/// Commits `change` on top of exactly `table`'s metadata, through `publisher`.
pub async fn commit(publisher: &Publisher, table: &Table, change: Change) -> Result<Outcome, LakeError> {
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(LakeError::IncompatibleTable {
            table: table.identifier().to_string(),
            detail: format!("format version {} tables are not written by this version (v2 only)", metadata.format_version()),
        });
    }
    let from = table.metadata_location().ok_or_else(|| LakeError::Config(format!("{} has no metadata location", table.identifier())))?;
    let now = chrono::Utc::now().timestamp_millis().max(metadata.last_updated_ms() + 1);
    let mut written = Vec::new();
    let snapshot = write_snapshot(table, &change, &mut written).await?;
    let swap = match publisher {
        Publisher::Sql(swap) => swap,
        Publisher::Rest { committer, .. } => return publish_rest(committer, table, snapshot, &change, now, &written).await,
    };
    let next = match next_metadata(metadata, from, snapshot.as_ref(), &change, now) {
        Ok(next) => next,
        Err(e) => {
            remove(table, &written).await;
            return Err(e);
        }
    };
    let location = MetadataLocation::from_str(from)
        .map_err(LakeError::iceberg(format!("metadata location {from}")))?
        .with_next_version()
        .with_new_metadata(&next);
    next.write_to(table.file_io(), &location).await.map_err(LakeError::iceberg("writing table metadata"))?;
    let to = location.to_string();
    written.push(to.clone());
    match swap.swap(table.identifier(), from, &to).await {
        Ok(true) => {
            if delete_after_commit(metadata) {
                remove(table, &dropped_metadata_files(metadata, from, &next)).await;
            }
            Ok(Outcome::Landed { snapshot_id: snapshot.map(|s| s.id) })
        }
        Ok(false) => {
            remove(table, &written).await;
            Ok(Outcome::Conflict)
        }
        // The outcome is unknown: the files may be referenced now, so they stay.
        Err(e) => Err(e),
    }
}

/// Whether metadata files leaving the metadata log are deleted by the commit that drops them: Iceberg's
/// `write.metadata.delete-after-commit.enabled`, on unless the table turns it off (Iceberg's own default
/// is off, which leaves one metadata file per commit, each as large as the whole history: at a commit every
/// 30 s, 2,880 files of ~2 MB a day until orphan cleanup).
fn delete_after_commit(metadata: &iceberg::spec::TableMetadata) -> bool {
    metadata.properties().get(DELETE_AFTER_COMMIT).is_none_or(|v| !v.eq_ignore_ascii_case("false"))
}

const DELETE_AFTER_COMMIT: &str = "write.metadata.delete-after-commit.enabled";

/// The metadata files `previous` (at `from`) knew that `next` no longer lists (its log is bounded by
/// `write.metadata.previous-versions-max`).
fn dropped_metadata_files(previous: &iceberg::spec::TableMetadata, from: &str, next: &iceberg::spec::TableMetadata) -> Vec<String> {
    let kept: std::collections::HashSet<&str> = next.metadata_log().iter().map(|m| m.metadata_file.as_str()).collect();
    previous
        .metadata_log()
        .iter()
        .map(|m| m.metadata_file.as_str())
        .chain(std::iter::once(from))
        .filter(|f| !kept.contains(f))
        .map(str::to_string)
        .collect()
}

/// Sends the commit to the REST catalog. The server writes the metadata file; what was written here stays
/// unless the commit provably did not land (a 409, or a request never sent).
async fn publish_rest(
    committer: &RestCommitter,
    table: &Table,
    snapshot: Option<NewSnapshot>,
    change: &Change,
    now: i64,
    written: &[String],
) -> Result<Outcome, LakeError> {
    let snapshot_id = snapshot.as_ref().map(|s| s.id);
    let snapshot = snapshot.map(|s| s.into_snapshot(table.metadata(), now));
    let request =
        match rest::commit_request(table, snapshot, &change.properties, &change.expire, change.set_current, change.schema.clone(), &change.tags) {
            Ok(request) => request,
            Err(e) => {
                remove(table, written).await;
                return Err(e);
            }
        };
    match committer.publish(table.identifier(), &request).await {
        Published::Landed => Ok(Outcome::Landed { snapshot_id }),
        Published::Conflict => {
            remove(table, written).await;
            Ok(Outcome::Conflict)
        }
        Published::NotSent(e) => {
            remove(table, written).await;
            Err(e)
        }
        // The outcome is unknown: the files may be referenced now, so they stay.
        Published::Unknown(e) => Err(e),
    }
}
