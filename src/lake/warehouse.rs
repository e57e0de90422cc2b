//! Where the lake's bytes live: one location (a local directory, or `abfss://` with the `azure` feature)
//! seen through two views built from the same configuration:
//! - an `object_store` client for the project's own files (staged segments, quarantine, probes): its puts
//!   are atomic (a temporary file renamed into place on disk, one PUT on blob storage), it lists and it
//!   streams multipart uploads;
//! - an Iceberg storage factory for the catalog and table files.
//!
//! Nothing else in the crate builds storage clients, so adding a backend touches only this file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::io::StorageFactory;
use iceberg_storage_opendal::OpenDalStorageFactory;
use object_store::ObjectStore;

use super::LakeError;

/// A parsed warehouse location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseLocation {
    /// A local directory (absolute).
    Local(PathBuf),
    /// ADLS Gen2: `abfss://<filesystem>@<account>.dfs.core.windows.net/<path>`.
    Azure { filesystem: String, account: String, endpoint: String, root: String },
}

impl WarehouseLocation {
    /// Accepts a path, a `file://` URL or an `abfss://` URL.
    pub fn parse(location: &str) -> Result<Self, LakeError> {
        if let Some(rest) = location.strip_prefix("abfss://") {
            let (authority, root) = rest.split_once('/').unwrap_or((rest, ""));
            let (filesystem, host) =
                authority.split_once('@').ok_or_else(|| LakeError::Config(format!("{location:?}: expected abfss://<filesystem>@<host>/<path>")))?;
            let account = host.split('.').next().unwrap_or_default().to_string();
            return Ok(WarehouseLocation::Azure {
                filesystem: filesystem.to_string(),
                account,
                endpoint: format!("https://{host}"),
                root: format!("/{}", root.trim_matches('/')),
            });
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        if path.is_empty() || path.contains("://") {
            return Err(LakeError::Config(format!("{location:?} is neither a directory nor a file:// or abfss:// URL")));
        }
        let path = Path::new(path);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| LakeError::Config(format!("current directory: {e}")))?.join(path)
        };
        // Table metadata records this location verbatim: drop `.` segments so other engines see clean paths.
        Ok(WarehouseLocation::Local(absolute.components().collect()))
    }

    /// The URL Iceberg metadata records for files under this location (no trailing slash).
    pub fn url(&self) -> String {
        match self {
            WarehouseLocation::Local(path) => format!("file://{}", path.display()).trim_end_matches('/').to_string(),
            WarehouseLocation::Azure { filesystem, endpoint, root, .. } => {
                let host = endpoint.trim_start_matches("https://");
                format!("abfss://{filesystem}@{host}{}", root.trim_end_matches('/'))
            }
        }
    }
}

/// The opened warehouse: the two storage views plus the properties handed to Iceberg.
#[derive(Clone)]
pub struct Warehouse {
    location: WarehouseLocation,
    store: Arc<dyn ObjectStore>,
    storage_factory: Arc<dyn StorageFactory>,
    iceberg_props: HashMap<String, String>,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The props may carry account keys: never print them.
        f.debug_struct("Warehouse").field("location", &self.location.url()).finish_non_exhaustive()
    }
}

impl Warehouse {
    /// Opens the location. `azure_props` are Iceberg ADLS keys (`adls.account-key`, `adls.sas-token`, ...)
    /// and only apply to Azure locations.
    pub fn open(location: WarehouseLocation, azure_props: HashMap<String, String>) -> Result<Self, LakeError> {
        match &location {
            WarehouseLocation::Local(path) => {
                std::fs::create_dir_all(path).map_err(|e| LakeError::Config(format!("cannot create warehouse {}: {e}", path.display())))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| LakeError::storage("open", path.display().to_string(), e))?
                    .with_automatic_cleanup(true);
                Ok(Self { location, store: Arc::new(store), storage_factory: Arc::new(OpenDalStorageFactory::Fs), iceberg_props: HashMap::new() })
            }
            WarehouseLocation::Azure { .. } => Self::open_azure(location, azure_props),
        }
    }

    #[cfg(feature = "azure")]
    fn open_azure(location: WarehouseLocation, props: HashMap<String, String>) -> Result<Self, LakeError> {
        let WarehouseLocation::Azure { filesystem, account, root, .. } = &location else {
            return Err(LakeError::Config(format!("{} is not an Azure location", location.url())));
        };
        let mut builder = object_store::azure::MicrosoftAzureBuilder::new().with_account(account).with_container_name(filesystem);
        if let Some(key) = props.get("adls.account-key") {
            builder = builder.with_access_key(key);
        }
        let client = builder.build().map_err(|e| LakeError::storage("open", location.url(), e))?;
        let store = object_store::prefix::PrefixStore::new(client, root.trim_matches('/'));
        Ok(Self { location, store: Arc::new(store), storage_factory: Arc::new(OpenDalStorageFactory::Azdls), iceberg_props: props })
    }

    #[cfg(not(feature = "azure"))]
    fn open_azure(location: WarehouseLocation, _props: HashMap<String, String>) -> Result<Self, LakeError> {
        Err(LakeError::Config(format!("{} needs a build with `--features azure`", location.url())))
    }

    pub fn location(&self) -> &WarehouseLocation {
        &self.location
    }

    pub fn url(&self) -> String {
        self.location.url()
    }

    /// Object store view rooted at the warehouse (paths are relative to it).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn storage_factory(&self) -> Arc<dyn StorageFactory> {
        self.storage_factory.clone()
    }

    pub fn iceberg_props(&self) -> &HashMap<String, String> {
        &self.iceberg_props
    }

    /// The default SQL catalog URI: a SQLite file inside a local warehouse. An Azure warehouse has no local
    /// directory, so it needs an explicit catalog URI.
    pub fn default_catalog_uri(&self) -> Option<String> {
        match &self.location {
            WarehouseLocation::Local(path) => Some(format!("sqlite://{}?mode=rwc", path.join("catalog.db").display())),
            WarehouseLocation::Azure { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_file_urls_and_abfss() {
        assert_eq!(WarehouseLocation::parse("/tmp/wh").unwrap().url(), "file:///tmp/wh");
        assert_eq!(WarehouseLocation::parse("file:///tmp/wh/").unwrap().url(), "file:///tmp/wh");
        assert_eq!(WarehouseLocation::parse("/tmp/./wh/.").unwrap().url(), "file:///tmp/wh");
        let relative = WarehouseLocation::parse("./wh").unwrap().url();
        assert!(relative.starts_with("file:///") && relative.ends_with("/wh") && !relative.contains("/./"), "{relative}");
        let azure = WarehouseLocation::parse("abfss://lake@acct.dfs.core.windows.net/warehouse/").unwrap();
        assert_eq!(
            azure,
            WarehouseLocation::Azure {
                filesystem: "lake".into(),
                account: "acct".into(),
                endpoint: "https://acct.dfs.core.windows.net".into(),
                root: "/warehouse".into()
            }
        );
        assert_eq!(azure.url(), "abfss://lake@acct.dfs.core.windows.net/warehouse");
        assert!(WarehouseLocation::parse("s3://bucket").is_err());
        assert!(WarehouseLocation::parse("abfss://nohost").is_err());
    }
}
