//! Replication rounds: each of the lake's tables copied to the replica one primary metadata version at a
//! time, in commit order.
//!
//! A round loads the primary table and reads the replica's own pointer. The primary versions the replica
//! lacks are those of the primary's metadata log newer than the version the replica copied last (recorded in
//! the replica's properties), then the current one. For each version, oldest first:
//! 1. every snapshot the replica does not hold yet, in sequence-number order, is copied: the data files its
//!    new manifests list (skipped when the replica has them already, with the same size), then each manifest
//!    rewritten with the replica's paths, then its manifest list;
//! 2. the version's metadata, rewritten (see [`super::rewrite::metadata`]), is written as the replica's next
//!    metadata file and swapped into the replica's catalog (registered the first time).
//!
//! So the replica is only ever a state the primary had, with its properties (the ingestion watermarks, the
//! awaited ranges) as they were in that state, and it never points at a file it does not hold. A crash at
//! any point leaves it at the last version swapped in; the next round finds the files already copied (by
//! name and size) and copies the rest. A file that disappears from the primary during a round (expiry ran)
//! ends the round for that table with [`ReplicaError::PrimaryMoved`]; the next round starts from the newer
//! metadata, which no longer needs it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{DataContentType, FormatVersion, Manifest, ManifestList, ManifestStatus, TableMetadata};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableIdent};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use serde_json::Value as Json;

use super::error::ReplicaError;
use super::relocate::Relocate;
use super::rewrite::{self, MetadataEdit};
use crate::lake::catalog::{CatalogSettings, Publisher};
use crate::lake::{CatalogAuth, Lake, MetadataPointer, RenewingCatalog};
use crate::observability::{ReplicationFailed, TableReplicated};
use crate::storage::{Location, StorageError, StorageSettings, Warehouse};

/// In the replica's properties: the primary table it copies (its location).
pub const REPLICA_OF_PROPERTY: &str = "sentiment-lake.replica.of";
/// In the replica's properties: the primary metadata file it copied last.
pub const SOURCE_METADATA_PROPERTY: &str = "sentiment-lake.replica.source-metadata";
/// In the replica's properties: that file's `last-updated-ms` (the primary commit it holds).
pub const SOURCE_UPDATED_PROPERTY: &str = "sentiment-lake.replica.source-updated-ms";
/// In the replica's properties: its current snapshot as replicated. Another current snapshot means
/// something committed to the replica since; replicating over it would drop that commit.
pub const SNAPSHOT_PROPERTY: &str = "sentiment-lake.replica.snapshot";
/// In a promoted replica's properties: when it became a primary (it is never replicated into again).
pub const PROMOTED_PROPERTY: &str = "sentiment-lake.replica.promoted-at";

/// Primary versions copied per table and round, newest kept: a replica far behind catches up on the
/// newest states (their snapshots hold the older ones' data) instead of writing every state in between.
const MAX_VERSIONS_PER_ROUND: usize = 32;
/// The replica's own metadata files kept in its log (older ones are deleted once they leave it).
const REPLICA_LOG: usize = 10;
/// Files up to this size are copied in one request; larger ones are streamed in parts.
const SINGLE_PUT_BYTES: u64 = 16 << 20;
/// Files copied at once: with streamed parts of 10 MiB and two parts in flight each, a round holds at most
/// about 8 × 16 MiB (small files) or 8 × 20 MiB of file data.
const COPIES_AT_ONCE: usize = 8;
/// The replica's lease: one replication round (or a promotion) at a time.
pub(crate) const LEASE: &str = "replicate";
/// How long the replica's lease lasts unless renewed: a replicator that dies keeps others out this long.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// Where the replica is and how to reach it.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Directory, `file://` or `abfss://` URL.
    pub location: String,
    /// The replica's own SQL catalog (default: `<location>/catalog.db` for a local replica).
    pub catalog_uri: Option<String>,
    /// The catalog name its rows carry (the primary's, so readers open both alike).
    pub catalog_name: String,
    pub catalog_auth: CatalogAuth,
    pub storage: StorageSettings,
    /// How long a round's lease lasts unless renewed (it is renewed every quarter of it, before each
    /// version and snapshot copied, so a long first copy never lets a second replicator in).
    pub lease: std::time::Duration,
}

/// What one round did to one table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableReport {
    pub table: String,
    /// Primary metadata versions now in the replica.
    pub versions: usize,
    /// Versions of the primary's log already gone from the primary (a later state covers them).
    pub versions_gone: usize,
    pub snapshots: usize,
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub files_present: u64,
    pub manifests_written: u64,
    /// The primary's current snapshot when the round loaded it, and the replica's after the round.
    pub primary_snapshot: Option<i64>,
    pub replica_snapshot: Option<i64>,
    /// How long the oldest primary commit the replica lacks has existed (0: it lacks none).
    pub lag_seconds: f64,
    /// Why the round stopped short for this table, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the next round can get past that error by itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}

/// What one round did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicationReport {
    pub replica: String,
    pub tables: Vec<TableReport>,
    pub seconds: f64,
}

impl ReplicationReport {
    /// The largest lag over the tables.
    pub fn lag_seconds(&self) -> f64 {
        self.tables.iter().map(|t| t.lag_seconds).fold(0.0, f64::max)
    }

    pub fn failed(&self) -> bool {
        self.tables.iter().any(|t| t.error.is_some())
    }
}

/// The replica's current state of one table.
struct ReplicaTable {
    pointer: String,
    snapshots: HashSet<i64>,
    source_metadata: String,
    source_updated_ms: i64,
    current_snapshot: Option<i64>,
    log: Vec<(String, i64)>,
    last_updated_ms: i64,
}

/// What a replicator copies: a warehouse, the catalog its tables are in, and which tables.
#[derive(Clone)]
pub struct Source {
    pub warehouse: Warehouse,
    pub catalog: Arc<dyn Catalog>,
    pub tables: Tables,
}

/// The lake's tables, by role: the order a round reads and copies them in depends on it.
#[derive(Debug, Clone)]
pub struct Tables {
    pub records: TableIdent,
    pub dead_letters: TableIdent,
    pub ledger: TableIdent,
    pub rollup: TableIdent,
}

impl Tables {
    /// From [`Lake::replicated_tables`]'s order (records, dead letters, migration ledger, rollup).
    pub fn of(idents: Vec<TableIdent>) -> Result<Self, ReplicaError> {
        let [records, dead_letters, ledger, rollup]: [TableIdent; 4] =
            idents.try_into().map_err(|_| ReplicaError::Config("a lake has four tables to replicate".into()))?;
        Ok(Self { records, dead_letters, ledger, rollup })
    }
}

impl Source {
    /// The lake's tables (records with the ingestion ledger, dead letters, migration ledger, rollup).
    pub fn lake(lake: &Lake) -> Result<Self, ReplicaError> {
        Ok(Self { warehouse: lake.warehouse().clone(), catalog: lake.catalog(), tables: Tables::of(lake.replicated_tables())? })
    }
}

/// Copies the lake's tables to a replica, round after round.
pub struct Replicator {
    primary: Source,
    replica: Warehouse,
    catalog: Arc<RenewingCatalog>,
    /// Primary paths to the replica's.
    relocate: Relocate,
    /// The replica's own paths (its URLs to its store's paths).
    own: Relocate,
    /// Replica manifests known to be complete, with their length: a manifest is shared by many snapshots.
    known: Mutex<HashMap<Path, u64>>,
    holder: String,
    /// When this round last took or extended the replica's lease.
    leased_at: Mutex<Option<Instant>>,
    lease: std::time::Duration,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator").field("primary", &self.primary.warehouse).field("replica", &self.replica).finish_non_exhaustive()
    }
}

fn store_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(object_store::Error) -> ReplicaError + 'a {
    move |e| ReplicaError::Storage(StorageError::store(op, path.to_string(), e))
}

impl Replicator {
    /// Opens the replica's location and catalog (created on first use). The replica must be another place
    /// than the primary warehouse.
    pub async fn open(primary: Source, config: &ReplicaConfig) -> Result<Self, ReplicaError> {
        let location = Location::parse(&config.location)?;
        let primary_location = primary.warehouse.location().clone();
        let overlaps = match (&primary_location, &location) {
            (Location::Local(a), Location::Local(b)) => {
                // Compared as the filesystem resolves them (`..`, symbolic links), which is how they are
                // opened; the replica's directory is created first so that it can be resolved.
                std::fs::create_dir_all(b).map_err(|e| ReplicaError::Config(format!("cannot create {}: {e}", b.display())))?;
                let resolve = |p: &std::path::Path| std::fs::canonicalize(p).map_err(|e| ReplicaError::Config(format!("{}: {e}", p.display())));
                let (a, b) = (resolve(a)?, resolve(b)?);
                a.starts_with(&b) || b.starts_with(&a)
            }
            (Location::Azure(a), Location::Azure(b)) => a.contains(b) || b.contains(a),
            _ => false,
        };
        if overlaps {
            return Err(ReplicaError::Config(format!(
                "the replica {} overlaps the primary warehouse {}: it must be another container, account or directory",
                location.url(),
                primary_location.url()
            )));
        }
        let (replica, catalog) = open_place(config).await?;
        Ok(Self {
            relocate: Relocate::new(primary_location, location.clone()),
            own: Relocate::new(location.clone(), location),
            primary,
            replica,
            catalog: Arc::new(catalog),
            known: Mutex::default(),
            holder: uuid::Uuid::now_v7().to_string(),
            leased_at: Mutex::default(),
            lease: config.lease.max(std::time::Duration::from_secs(1)),
        })
    }

    /// The replica's catalog (for readers of the replica: `drill`, tests).
    pub fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    async fn publisher(&self) -> Result<Publisher, ReplicaError> {
        Ok(self.catalog.current().await?.1)
    }

    /// Takes the replica's lease, or extends it when this round took it more than a minute ago; `Busy` when
    /// another replicator has it (then nothing more is written by this round).
    async fn hold_lease(&self) -> Result<(), ReplicaError> {
        if self.leased_at.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|at| at.elapsed() < self.lease / 4) {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(self.lease.as_millis().try_into().unwrap_or(i64::MAX));
        if !self.publisher().await?.try_lease(LEASE, &self.holder, now, until).await? {
            *self.leased_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return Err(ReplicaError::Busy);
        }
        *self.leased_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// One round over every table, under the replica's lease. The tables are read and copied in an order
    /// that keeps the replica consistent across them whichever of them a failure stops:
    /// - the rollup is read before the records and copied after them, so it is never ahead of them (a
    ///   rollup behind is caught up by the next commit's follow);
    /// - the migration ledger is read after the records and copied before them, and the records are copied
    ///   only if it was: a legacy file the replica's records hold no watermark for any more (retired) is
    ///   then always in the replica's ledger. A ledger ahead of the records is reconciled at promotion.
    pub async fn round(&self) -> Result<ReplicationReport, ReplicaError> {
        let started = Instant::now();
        *self.leased_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.hold_lease().await?;
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let tables = &self.primary.tables;
        let mut reports: Vec<TableReport> = [&tables.records, &tables.dead_letters, &tables.ledger, &tables.rollup]
            .iter()
            .map(|t| TableReport { table: t.to_string(), ..TableReport::default() })
            .collect();
        let rollup = self.load(&tables.rollup).await;
        let records = self.load(&tables.records).await;
        let dead_letters = self.load(&tables.dead_letters).await;
        let ledger = self.load(&tables.ledger).await;
        let ledger_copied = self.copy(&tables.ledger, ledger, &mut reports[2]).await;
        let records_copied = match ledger_copied {
            true => self.copy(&tables.records, records, &mut reports[0]).await,
            false => skip(&mut reports[0], "the migration ledger was not copied in this round"),
        };
        self.copy(&tables.dead_letters, dead_letters, &mut reports[1]).await;
        if records_copied {
            self.copy(&tables.rollup, rollup, &mut reports[3]).await;
        } else {
            skip(&mut reports[3], "the records table was not copied in this round");
        }
        if self.leased_at.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            self.publisher().await?.release_lease(LEASE, &self.holder).await?;
        }
        Ok(ReplicationReport { replica: self.replica.url(), tables: reports, seconds: started.elapsed().as_secs_f64() })
    }

    async fn load(&self, ident: &TableIdent) -> Result<Table, ReplicaError> {
        Ok(self.primary.catalog.load_table(ident).await.map_err(crate::lake::LakeError::iceberg(format!("loading {ident}")))?)
    }

    /// Copies one table up to the state `primary` was loaded in; false when it stopped short.
    async fn copy(&self, ident: &TableIdent, primary: Result<Table, ReplicaError>, report: &mut TableReport) -> bool {
        let outcome = match primary {
            Ok(primary) => self.table(ident, &primary, report).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            ReplicationFailed { table: &report.table, error: &e.to_string(), retryable: e.is_retryable() }.emit();
            report.error = Some(e.to_string());
            report.retryable = e.is_retryable();
        }
        TableReplicated {
            table: &report.table,
            versions: report.versions,
            files: report.files_copied,
            bytes: report.bytes_copied,
            lag_seconds: report.lag_seconds,
        }
        .emit();
        outcome.is_ok()
    }

    async fn table(&self, ident: &TableIdent, primary: &Table, report: &mut TableReport) -> Result<(), ReplicaError> {
        let current = primary.metadata_location().ok_or_else(|| ReplicaError::Config(format!("{ident} has no metadata location")))?.to_string();
        let metadata = primary.metadata();
        report.primary_snapshot = metadata.current_snapshot_id();
        let mut replica = self.replica_table(ident, metadata).await?;
        // The primary's states after the replica's, oldest first, each with its commit time.
        let mut pending: Vec<(String, i64)> = match &replica {
            Some(r) if r.source_metadata == current => Vec::new(),
            Some(r) => metadata
                .metadata_log()
                .iter()
                .filter(|m| m.timestamp_ms > r.source_updated_ms && m.metadata_file != r.source_metadata)
                .map(|m| (m.metadata_file.clone(), m.timestamp_ms))
                .chain(std::iter::once((current.clone(), metadata.last_updated_ms())))
                .collect(),
            None => vec![(current.clone(), metadata.last_updated_ms())],
        };
        let lag =
            |pending: &[(String, i64)]| pending.first().map_or(0.0, |(_, at)| ((chrono::Utc::now().timestamp_millis() - at).max(0)) as f64 / 1000.0);
        report.lag_seconds = lag(&pending);
        if pending.len() > MAX_VERSIONS_PER_ROUND {
            pending.drain(..pending.len() - MAX_VERSIONS_PER_ROUND);
        }
        let mut remaining = pending.as_slice();
        while let Some(((file, _), rest)) = remaining.split_first() {
            self.hold_lease().await?;
            let copied = match self.read_primary(file).await {
                Ok(bytes) => self.version(file, bytes, replica.as_ref(), report).await,
                Err(e) => Err(e),
            };
            let (bytes, version) = match copied {
                Ok(copied) => copied,
                // A state the primary has moved on from (expiry took its metadata, a manifest list or a
                // file): a later state covers it, so the replica goes on with that one.
                Err(ReplicaError::PrimaryMoved { path }) if !rest.is_empty() => {
                    tracing::info!(version = %file, gone = %path, "A primary state is gone in part; replicating the next one instead.");
                    report.versions_gone += 1;
                    remaining = rest;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.hold_lease().await?;
            replica = Some(self.commit_version(ident, file, &bytes, &version, replica).await?);
            report.versions += 1;
            report.replica_snapshot = version.current_snapshot_id();
            remaining = rest;
            report.lag_seconds = lag(remaining);
        }
        if let Some(r) = &replica {
            report.replica_snapshot = r.current_snapshot;
        }
        Ok(())
    }

    /// Copies the snapshots of the primary version `bytes` (at `file`) the replica lacks; returns the version.
    async fn version(
        &self,
        file: &str,
        bytes: Bytes,
        replica: Option<&ReplicaTable>,
        report: &mut TableReport,
    ) -> Result<(Bytes, TableMetadata), ReplicaError> {
        let version: TableMetadata = serde_json::from_slice(&bytes).map_err(|e| ReplicaError::Format {
            what: "table metadata",
            path: file.to_string(),
            detail: e.to_string(),
        })?;
        let mut snapshots: Vec<_> = version.snapshots().filter(|s| replica.is_none_or(|r| !r.snapshots.contains(&s.snapshot_id()))).collect();
        snapshots.sort_by_key(|s| (s.sequence_number(), s.timestamp_ms()));
        for snapshot in snapshots {
            self.hold_lease().await?;
            self.snapshot(snapshot.manifest_list(), version.format_version(), report).await?;
            report.snapshots += 1;
        }
        Ok((bytes, version))
    }

    /// The replica's state of `ident`, checked to be a replica of `primary` (`None`: not replicated yet).
    async fn replica_table(&self, ident: &TableIdent, primary: &TableMetadata) -> Result<Option<ReplicaTable>, ReplicaError> {
        let Some(pointer) = self.catalog.metadata_location(ident).await? else {
            return Ok(None);
        };
        let not_a_replica = |detail: String| ReplicaError::NotAReplica { table: ident.to_string(), detail };
        let relative = self.own.relative(&pointer).map_err(|_| not_a_replica(format!("its metadata {pointer} is outside the replica")))?;
        let bytes =
            self.replica.store().get(&relative).await.map_err(store_error("get", &relative))?.bytes().await.map_err(store_error("get", &relative))?;
        let json: Json = serde_json::from_slice(&bytes).map_err(|e| ReplicaError::Format {
            what: "replica metadata",
            path: pointer.clone(),
            detail: e.to_string(),
        })?;
        let property = |key: &str| json["properties"][key].as_str().map(str::to_string);
        match property(REPLICA_OF_PROPERTY) {
            Some(of) if of == primary.location() => {}
            Some(of) => return Err(not_a_replica(format!("it copies {of}, not {}", primary.location()))),
            None => return Err(not_a_replica("it carries no replica marker (a table of its own, or a promoted replica)".into())),
        }
        if let Some(at) = property(PROMOTED_PROPERTY) {
            return Err(not_a_replica(format!("it was promoted to a primary at {at}")));
        }
        let current = json["current-snapshot-id"].as_i64().filter(|id| *id >= 0);
        if property(SNAPSHOT_PROPERTY) != Some(current.map_or_else(|| "none".to_string(), |id| id.to_string())) {
            return Err(not_a_replica(format!(
                "its current snapshot {current:?} is not the one replicated: something committed to it since (promote it, or replicate into an empty location)"
            )));
        }
        if json["table-uuid"].as_str() != Some(&primary.uuid().to_string()) {
            return Err(not_a_replica(format!(
                "its table UUID {} differs from the primary's {} (the primary table was dropped and created again?)",
                json["table-uuid"],
                primary.uuid()
            )));
        }
        let source_metadata = property(SOURCE_METADATA_PROPERTY).ok_or_else(|| not_a_replica(format!("no {SOURCE_METADATA_PROPERTY}")))?;
        let source_updated_ms = property(SOURCE_UPDATED_PROPERTY)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| not_a_replica(format!("no readable {SOURCE_UPDATED_PROPERTY}")))?;
        let snapshots = json["snapshots"].as_array().map(|s| s.iter().filter_map(|s| s["snapshot-id"].as_i64()).collect()).unwrap_or_default();
        let log = json["metadata-log"]
            .as_array()
            .map(|l| l.iter().filter_map(|m| Some((m["metadata-file"].as_str()?.to_string(), m["timestamp-ms"].as_i64()?))).collect())
            .unwrap_or_default();
        Ok(Some(ReplicaTable {
            pointer,
            snapshots,
            source_metadata,
            source_updated_ms,
            current_snapshot: current,
            log,
            last_updated_ms: json["last-updated-ms"].as_i64().unwrap_or_default(),
        }))
    }

    /// A whole primary file (metadata, manifest list, manifest: small, bounded by the table's history).
    async fn read_primary(&self, url: &str) -> Result<Bytes, ReplicaError> {
        let relative = self.relocate.relative(url)?;
        let moved = read_error(url);
        self.primary.warehouse.store().get(&relative).await.map_err(&moved)?.bytes().await.map_err(&moved)
    }

    /// The replica's object at `relative`, if there is one: its size.
    async fn present(&self, relative: &Path) -> Result<Option<u64>, ReplicaError> {
        match self.replica.store().head(relative).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error("head", relative)(e)),
        }
    }

    async fn put(&self, relative: &Path, bytes: Vec<u8>) -> Result<u64, ReplicaError> {
        let length = bytes.len() as u64;
        self.replica.store().put(relative, bytes.into()).await.map_err(store_error("put", relative))?;
        Ok(length)
    }

    /// Copies one snapshot: its new manifests' files, the manifests, then its manifest list.
    async fn snapshot(&self, manifest_list: &str, format: FormatVersion, report: &mut TableReport) -> Result<(), ReplicaError> {
        let relative = self.relocate.relative(manifest_list)?;
        if self.present(&relative).await?.is_some() {
            // Written by an earlier round that stopped before its metadata: its manifests are complete.
            return Ok(());
        }
        let bytes = self.read_primary(manifest_list).await?;
        let list = ManifestList::parse_with_version(&bytes, format).map_err(|e| ReplicaError::Format {
            what: "manifest list",
            path: manifest_list.to_string(),
            detail: e.to_string(),
        })?;
        let mut lengths = HashMap::new();
        for manifest in list.entries() {
            let length = self.manifest(&manifest.manifest_path, report).await?;
            lengths.insert(manifest.manifest_path.clone(), length);
        }
        let rewritten = rewrite::manifest_list(manifest_list, &bytes, |path| {
            let length = lengths.get(path).copied().ok_or_else(|| ReplicaError::Format {
                what: "manifest list",
                path: manifest_list.to_string(),
                detail: format!("{path} read differently the second time"),
            })?;
            Ok((self.relocate.url(path)?, length))
        })?;
        self.put(&relative, rewritten).await?;
        Ok(())
    }

    /// Copies one manifest (its live files first) unless the replica has it; returns its length there.
    async fn manifest(&self, url: &str, report: &mut TableReport) -> Result<u64, ReplicaError> {
        let relative = self.relocate.relative(url)?;
        if let Some(length) = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&relative) {
            return Ok(*length);
        }
        if let Some(length) = self.present(&relative).await? {
            self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(relative, length);
            return Ok(length);
        }
        let bytes = self.read_primary(url).await?;
        let manifest =
            Manifest::parse_avro(&bytes).map_err(|e| ReplicaError::Format { what: "manifest", path: url.to_string(), detail: e.to_string() })?;
        // A deleted entry's file is not part of this state (an older snapshot's manifest lists it as live).
        let mut files = Vec::new();
        for entry in manifest.entries().iter().filter(|e| e.status() != ManifestStatus::Deleted) {
            if entry.content_type() == DataContentType::PositionDeletes {
                return Err(ReplicaError::PositionDeletes { path: entry.file_path().to_string() });
            }
            files.push((self.relocate.relative(entry.file_path())?, entry.file_path().to_string(), entry.file_size_in_bytes()));
        }
        let copied: Vec<Option<u64>> = futures::stream::iter(files)
            .map(|(relative, url, size)| self.file(relative, url, size))
            .buffer_unordered(COPIES_AT_ONCE)
            .try_collect()
            .await?;
        for bytes in copied {
            match bytes {
                Some(bytes) => {
                    report.files_copied += 1;
                    report.bytes_copied += bytes;
                }
                None => report.files_present += 1,
            }
        }
        let rewritten = rewrite::manifest(url, &bytes, |path| self.relocate.url(path))?;
        let length = self.put(&relative, rewritten).await?;
        report.manifests_written += 1;
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(relative, length);
        Ok(length)
    }

    /// Copies one data file unless the replica has it with the same size; `Some(bytes)` when it copied.
    async fn file(&self, relative: Path, url: String, size: u64) -> Result<Option<u64>, ReplicaError> {
        match self.present(&relative).await? {
            Some(found) if found == size => return Ok(None),
            Some(found) => return Err(ReplicaError::SizeMismatch { path: self.relocate.target_url(&relative), expected: size, found }),
            None => {}
        }
        let moved = read_error(&url);
        let source = self.primary.warehouse.store().get(&relative).await.map_err(&moved)?;
        if source.meta.size != size {
            return Err(ReplicaError::Format {
                what: "data file",
                path: url.clone(),
                detail: format!("it has {} bytes where its manifest says {size}", source.meta.size),
            });
        }
        let target: &Arc<dyn ObjectStore> = self.replica.store();
        if size <= SINGLE_PUT_BYTES {
            let bytes = source.bytes().await.map_err(&moved)?;
            target.put(&relative, bytes.into()).await.map_err(store_error("put", &relative))?;
            return Ok(Some(size));
        }
        let upload = target.put_multipart(&relative).await.map_err(store_error("put", &relative))?;
        let mut writer = WriteMultipart::new(upload);
        let mut stream = source.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(moved(e));
                }
            };
            writer.wait_for_capacity(2).await.map_err(store_error("put", &relative))?;
            written += chunk.len() as u64;
            writer.put(chunk);
        }
        if written != size {
            let _ = writer.abort().await;
            return Err(ReplicaError::Format {
                what: "data file",
                path: url.clone(),
                detail: format!("{written} bytes read where {size} were expected"),
            });
        }
        writer.finish().await.map_err(store_error("put", &relative))?;
        Ok(Some(size))
    }

    /// Writes the primary version at `file` as the replica's next metadata and swaps it in.
    async fn commit_version(
        &self,
        ident: &TableIdent,
        file: &str,
        bytes: &[u8],
        version: &TableMetadata,
        previous: Option<ReplicaTable>,
    ) -> Result<ReplicaTable, ReplicaError> {
        let table_location = self.relocate.relative(version.location())?;
        let number = previous.as_ref().map_or(0, |p| metadata_number(&p.pointer).map_or(0, |n| n + 1));
        let relative = Path::parse(format!("{table_location}/metadata/{number:05}-{}.metadata.json", uuid::Uuid::now_v7()))
            .map_err(|e| ReplicaError::Config(format!("replica metadata path: {e}")))?;
        let url = self.relocate.target_url(&relative);
        let mut log = previous.as_ref().map(|p| p.log.clone()).unwrap_or_default();
        if let Some(p) = &previous {
            log.push((p.pointer.clone(), p.last_updated_ms));
        }
        let dropped: Vec<String> = log.drain(..log.len().saturating_sub(REPLICA_LOG)).map(|(f, _)| f).collect();
        let edit = MetadataEdit {
            log: log.clone(),
            properties: vec![
                (REPLICA_OF_PROPERTY.to_string(), version.location().to_string()),
                (SOURCE_METADATA_PROPERTY.to_string(), file.to_string()),
                (SOURCE_UPDATED_PROPERTY.to_string(), version.last_updated_ms().to_string()),
                (SNAPSHOT_PROPERTY.to_string(), version.current_snapshot_id().map_or_else(|| "none".to_string(), |id| id.to_string())),
            ],
            remove: &[PROMOTED_PROPERTY],
        };
        let rewritten = rewrite::metadata(file, bytes, edit, |path| self.relocate.url(path))?;
        self.put(&relative, rewritten).await?;
        match &previous {
            None => {
                let namespace = ident.namespace();
                if !self.catalog.namespace_exists(namespace).await.unwrap_or(false) {
                    self.catalog.create_namespace(namespace, HashMap::new()).await.or_else(|e| ignore_existing(namespace, e))?;
                }
                self.catalog
                    .register_table(ident, url.clone())
                    .await
                    .map_err(crate::lake::LakeError::iceberg(format!("registering {ident} in the replica")))?;
            }
            Some(previous) => {
                let Publisher::Sql(swap) = self.publisher().await? else {
                    return Err(ReplicaError::Config("the replica's catalog must be a SQL catalog".into()));
                };
                if !swap.swap(ident, &previous.pointer, &url).await? {
                    return Err(ReplicaError::ReplicaMoved { table: ident.to_string() });
                }
            }
        }
        for old in dropped {
            if let Ok(path) = self.own.relative(&old) {
                let _ = self.replica.store().delete(&path).await;
            }
        }
        let mut snapshots = previous.map(|p| p.snapshots).unwrap_or_default();
        let kept: HashSet<i64> = version.snapshots().map(|s| s.snapshot_id()).collect();
        snapshots.retain(|id| kept.contains(id));
        snapshots.extend(kept);
        Ok(ReplicaTable {
            pointer: url,
            snapshots,
            source_metadata: file.to_string(),
            source_updated_ms: version.last_updated_ms(),
            current_snapshot: version.current_snapshot_id(),
            log,
            last_updated_ms: version.last_updated_ms(),
        })
    }
}

/// A replica's location and its SQL catalog.
pub async fn open_place(config: &ReplicaConfig) -> Result<(Warehouse, RenewingCatalog), ReplicaError> {
    let warehouse = Warehouse::open(Location::parse(&config.location)?, &config.storage)?;
    let uri = config.catalog_uri.clone().or_else(|| warehouse.default_catalog_uri()).ok_or_else(|| {
        ReplicaError::Config(format!("{} is remote: its catalog must be given (a PostgreSQL database of its own, in its region)", warehouse.url()))
    })?;
    let catalog = RenewingCatalog::connect(CatalogSettings {
        uri,
        rest: None,
        catalog_name: config.catalog_name.clone(),
        warehouse_url: warehouse.url(),
        storage_factory: warehouse.storage_factory(),
        auth: config.catalog_auth,
        identity: config.storage.azure.clone(),
    })
    .await?;
    Ok((warehouse, catalog))
}

/// A failed read of the primary's file at `url`: gone means the primary moved on (expiry), not a failure.
fn read_error(url: &str) -> impl Fn(object_store::Error) -> ReplicaError + '_ {
    move |e| match e {
        object_store::Error::NotFound { .. } => ReplicaError::PrimaryMoved { path: url.to_string() },
        e => ReplicaError::Storage(StorageError::store("get", url, e)),
    }
}

/// A table not copied in a round because one it depends on was not.
fn skip(report: &mut TableReport, why: &str) -> bool {
    report.error = Some(format!("not copied: {why}"));
    report.retryable = true;
    false
}

/// A namespace another process created first is fine.
fn ignore_existing(namespace: &NamespaceIdent, error: iceberg::Error) -> Result<iceberg::Namespace, ReplicaError> {
    if error.kind() == iceberg::ErrorKind::NamespaceAlreadyExists {
        Ok(iceberg::Namespace::new(namespace.clone()))
    } else {
        Err(crate::lake::LakeError::iceberg(format!("creating namespace {} in the replica", namespace.join(".")))(error).into())
    }
}

/// The version number of a metadata file named `NNNNN-<uuid>.metadata.json`.
fn metadata_number(url: &str) -> Option<u64> {
    let name = url.rsplit('/').next()?;
    name.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_files_are_numbered_after_the_last() {
        assert_eq!(metadata_number("file:///r/t/metadata/00041-0190-abcd.metadata.json"), Some(41));
        assert_eq!(metadata_number("file:///r/t/metadata/v3.metadata.json"), None);
    }
}
