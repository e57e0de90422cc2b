//! Where bytes live: one storage layer for every path the crate touches (table data and metadata, staged
//! segments, quarantine, probes, legacy inputs), on a local directory or on Azure Blob / ADLS Gen2.
//!
//! A [`Location`] is opened with [`StorageSettings`] into `object_store` clients; the warehouse gets two
//! views of the same client:
//! - an `object_store` rooted at the warehouse for the project's own files: its puts are atomic (a
//!   temporary file renamed into place on disk, one PUT or a committed block list on blob storage), it
//!   lists and it streams multipart uploads;
//! - an Iceberg [`StorageFactory`] ([`ObjectStorageFactory`]) for the catalog, the writers and the scans.
//!
//! Nothing else in the crate builds storage clients, so adding a backend touches only this module.

pub mod azure;
mod error;
pub mod faults;
mod iceberg_io;
mod location;

use std::sync::Arc;

use iceberg::io::StorageFactory;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

pub use self::azure::{AzureAccount, AzureAuth, AzureSettings};
pub use self::error::{store_error_is_retryable, StorageError};
pub use self::faults::StoreLayer;
pub use self::iceberg_io::{ObjectStorage, ObjectStorageFactory};
pub use self::location::{AzureLocation, Location};

/// How to reach remote storage; local directories need nothing.
#[derive(Debug, Clone, Default)]
pub struct StorageSettings {
    pub azure: AzureSettings,
    /// Wrapped around every client opened (the fault tests inject storage failures here).
    pub layer: Option<StoreLayer>,
}

impl StorageSettings {
    fn layered(&self, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        match &self.layer {
            Some(layer) => layer.apply(store),
            None => store,
        }
    }
}

/// A location opened for use: a client rooted at it and a sentence saying how it is reached.
#[derive(Clone)]
pub struct OpenedLocation {
    pub location: Location,
    /// Paths are relative to the location.
    pub store: Arc<dyn ObjectStore>,
    /// Iceberg's view, for any location of the same container (or of the local disk).
    pub iceberg: ObjectStorage,
    /// Where requests go and which credential they carry; never a secret.
    pub access: String,
}

impl OpenedLocation {
    /// An object's metadata, its path relative to this location (object_store 0.13's `PrefixStore` answers
    /// `head` with the prefix included, unlike `list`).
    pub async fn head(&self, path: &object_store::path::Path) -> Result<object_store::ObjectMeta, StorageError> {
        use object_store::ObjectStoreExt;
        let mut meta = self.store.head(path).await.map_err(|e| StorageError::store("head", format!("{}/{path}", self.location.url()), e))?;
        meta.location = path.clone();
        Ok(meta)
    }

    pub fn open(location: Location, settings: &StorageSettings) -> Result<Self, StorageError> {
        match &location {
            Location::Local(path) => {
                std::fs::create_dir_all(path).map_err(|e| StorageError::Config(format!("cannot create {}: {e}", path.display())))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| StorageError::store("open", path.display().to_string(), e))?
                    .with_automatic_cleanup(true);
                let iceberg = ObjectStorage::local_on(settings.layered(Arc::new(object_store::local::LocalFileSystem::new())));
                Ok(Self { store: settings.layered(Arc::new(store)), iceberg, access: "local filesystem".into(), location })
            }
            Location::Azure(azure) => {
                let account = AzureAccount::resolve(&azure.account, &settings.azure)?;
                let container = settings.layered(account.container(&azure.container)?);
                let store: Arc<dyn ObjectStore> = if azure.path.as_ref().is_empty() {
                    container.clone()
                } else {
                    Arc::new(PrefixStore::new(container.clone(), azure.path.clone()))
                };
                Ok(Self { store, iceberg: ObjectStorage::azure(azure.container_root(), container), access: account.describe(), location })
            }
        }
    }
}

/// The opened warehouse: its location, the project's store and Iceberg's storage factory.
#[derive(Clone)]
pub struct Warehouse {
    opened: OpenedLocation,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse").field("location", &self.url()).field("access", &self.opened.access).finish()
    }
}

impl Warehouse {
    pub fn open(location: Location, settings: &StorageSettings) -> Result<Self, StorageError> {
        Ok(Self { opened: OpenedLocation::open(location, settings)? })
    }

    pub fn location(&self) -> &Location {
        &self.opened.location
    }

    pub fn url(&self) -> String {
        self.opened.location.url()
    }

    /// How the warehouse is reached (endpoint and credential kind), for `doctor` and startup logs.
    pub fn access(&self) -> &str {
        &self.opened.access
    }

    /// Object store view rooted at the warehouse (paths are relative to it).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.opened.store
    }

    pub fn storage_factory(&self) -> Arc<dyn StorageFactory> {
        Arc::new(ObjectStorageFactory(self.opened.iceberg.clone()))
    }

    /// The default SQL catalog URI: a SQLite file inside a local warehouse. A remote warehouse has no local
    /// directory, and instances must share one catalog, so it needs an explicit (PostgreSQL) catalog URI.
    pub fn default_catalog_uri(&self) -> Option<String> {
        match self.location() {
            Location::Local(path) => Some(format!("sqlite://{}?mode=rwc", path.join("catalog.db").display())),
            Location::Azure(_) => None,
        }
    }
}
