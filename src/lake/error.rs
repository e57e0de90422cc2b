//! The lake's one error type. Every variant keeps its source and says whether trying again later can help:
//! the committer retries only what is retryable, and the Functions edge answers non-2xx (so the host
//! retries) only for those.

/// What failed in the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// Wrong or missing configuration: fixing it needs a person.
    #[error("configuration: {0}")]
    Config(String),
    /// Object storage (the warehouse's own files: staging, quarantine) failed.
    #[error("storage: {op} {path}: {source}")]
    Storage {
        op: &'static str,
        path: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// The Iceberg library, its catalog or its file IO failed.
    #[error("iceberg: {context}: {source}")]
    Iceberg {
        context: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The exactly-once ledger cannot be read safely; committing now could duplicate rows.
    #[error("ledger of table {table} is unreadable: {detail}")]
    Ledger { table: String, detail: String },
    /// Another commit moved the table between reading it and swapping in the new metadata.
    #[error("table {table}: another commit landed first")]
    Conflict { table: String },
    /// Commit attempts kept failing on retryable errors (conflicts, timeouts); the next pass tries again.
    #[error("table {table}: gave up after {attempts} commit attempts: {source}")]
    CommitExhausted {
        table: String,
        attempts: u32,
        #[source]
        source: Box<LakeError>,
    },
    /// The table exists but the writer cannot fill it (checked when the lake opens).
    #[error("table {table} is incompatible: {detail}")]
    IncompatibleTable { table: String, detail: String },
    /// No Entra token (for storage or the catalog database).
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// A blocking task of the committer panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// A REST catalog refused a request or did not answer (`--catalog-type rest`); `status` is the HTTP
    /// status when there was an answer.
    #[error("REST catalog: {context}: {detail}")]
    RestCatalog { context: String, status: Option<u16>, detail: String, retryable: bool },
    /// The rollup table cannot answer or follow the records table as asked (it says why).
    #[error("rollup: {0}")]
    Rollup(String),
    /// Staged entries an answer was reading were committed (or moved) meanwhile: answer again from the
    /// newer snapshot, which holds them.
    #[error("staged entries moved while they were read ({0}); the newer snapshot holds them")]
    TailMoved(String),
    /// Another writer of the table's staged entries failed (`--writer dremio`: Dremio's MERGE).
    #[error("{writer}: {source}")]
    Writer {
        writer: &'static str,
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<crate::storage::StorageError> for LakeError {
    fn from(error: crate::storage::StorageError) -> Self {
        match error {
            crate::storage::StorageError::Config(detail) => LakeError::Config(detail),
            crate::storage::StorageError::Identity(e) => LakeError::Identity(e),
            crate::storage::StorageError::Store { op, path, source } => LakeError::Storage { op, path, source },
        }
    }
}

impl LakeError {
    pub(crate) fn storage(op: &'static str, path: impl Into<String>, source: object_store::Error) -> Self {
        LakeError::Storage { op, path: path.into(), source: Box::new(source) }
    }

    pub(crate) fn iceberg(context: impl Into<String>) -> impl FnOnce(iceberg::Error) -> Self {
        let context = context.into();
        move |source| LakeError::Iceberg { context, source: Box::new(source) }
    }

    /// True when the same operation may succeed later without anyone changing anything: storage and catalog
    /// outages, throttling, commit conflicts. Not for bad configuration, bad data or an unreadable ledger.
    pub fn is_retryable(&self) -> bool {
        match self {
            LakeError::Storage { source, .. } => crate::storage::store_error_is_retryable(source),
            LakeError::Iceberg { source, .. } => iceberg_error_is_retryable(source),
            LakeError::Conflict { .. } | LakeError::CommitExhausted { .. } | LakeError::Task(_) | LakeError::TailMoved(_) => true,
            LakeError::Identity(e) => e.is_retryable(),
            LakeError::RestCatalog { retryable, .. } => *retryable,
            LakeError::Writer { retryable, .. } => *retryable,
            LakeError::Config(_)
            | LakeError::Rollup(_)
            | LakeError::Arrow(_)
            | LakeError::Parquet(_)
            | LakeError::Ledger { .. }
            | LakeError::IncompatibleTable { .. } => false,
        }
    }

    /// True for a missing object: another committer removed it, which is not a failure of this one.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LakeError::Storage { source, .. } if matches!(**source, object_store::Error::NotFound { .. }))
    }
}

/// iceberg-rust marks catalog conflicts retryable itself; I/O and database failures surface as `Unexpected`.
pub(crate) fn iceberg_error_is_retryable(error: &iceberg::Error) -> bool {
    use iceberg::ErrorKind as K;
    error.retryable() || matches!(error.kind(), K::CatalogCommitConflicts | K::Unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let conflict = iceberg::Error::new(iceberg::ErrorKind::CatalogCommitConflicts, "moved");
        assert!(LakeError::iceberg("commit")(conflict).is_retryable());
        assert!(LakeError::Conflict { table: "t".into() }.is_retryable());
        let invalid = iceberg::Error::new(iceberg::ErrorKind::DataInvalid, "bad");
        assert!(!LakeError::iceberg("commit")(invalid).is_retryable());
        let gone = LakeError::storage("get", "x", object_store::Error::NotFound { path: "x".into(), source: "gone".into() });
        assert!(gone.is_not_found() && gone.is_retryable());
        let denied = LakeError::storage("put", "x", object_store::Error::PermissionDenied { path: "x".into(), source: "no".into() });
        assert!(!denied.is_retryable());
        assert!(!LakeError::Ledger { table: "t".into(), detail: "parent gone".into() }.is_retryable());
        assert!(!LakeError::Config("x".into()).is_retryable());
    }
}
