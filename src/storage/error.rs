/// What failed in the storage layer. Keeps its source and says whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Wrong or missing configuration (a location, a credential): fixing it needs a person.
    #[error("storage configuration: {0}")]
    Config(String),
    /// No Entra credential could be built or it gave no token.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The store refused or failed an operation.
    #[error("storage: {op} {path}: {source}")]
    Store {
        op: &'static str,
        path: String,
        #[source]
        source: Box<object_store::Error>,
    },
}

impl StorageError {
    pub fn store(op: &'static str, path: impl Into<String>, source: object_store::Error) -> Self {
        StorageError::Store { op, path: path.into(), source: Box::new(source) }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Config(_) => false,
            StorageError::Identity(e) => e.is_retryable(),
            StorageError::Store { source, .. } => store_error_is_retryable(source),
        }
    }
}

/// Outages, throttling and timeouts are worth retrying; refusals (permissions, credentials, invalid paths,
/// unsupported operations) are not: the same request would be refused again.
pub fn store_error_is_retryable(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    !matches!(
        error,
        E::InvalidPath { .. }
            | E::NotSupported { .. }
            | E::NotImplemented { .. }
            | E::UnknownConfigurationKey { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
    )
}
