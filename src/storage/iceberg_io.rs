//! Iceberg's file IO on `object_store`: the catalog, the writers and the DataFusion scans read and write
//! table files through the same clients (and credentials) as everything else in the crate.
//!
//! Iceberg hands over absolute locations (`file:///...`, `abfss://container@account.../...`). A location is
//! mapped to an object path verbatim, without percent-decoding: Iceberg's escaped partition values
//! (`ticker=A%2F..`) name objects literally, as the Java and Python implementations name them, and
//! `Path::parse` refuses `.`/`..` segments, so no location reaches outside the container it names. A
//! location in another container or account than the warehouse's is refused rather than guessed at.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig, StorageFactory};
use iceberg::{Error, ErrorKind, Result};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::store_error_is_retryable;
use super::location::AzureLocation;

/// Which locations this storage serves.
#[derive(Debug, Clone)]
enum Scope {
    /// Absolute local paths (`file:///...` or `/...`), served by a store rooted at `/`.
    Local,
    /// One container of one account.
    Azure(AzureLocation),
}

/// [`Storage`] over an `object_store` client.
#[derive(Clone)]
pub struct ObjectStorage {
    scope: Arc<Scope>,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl ObjectStorage {
    /// Local files, any absolute path. Without automatic cleanup of emptied directories: rooted at `/`, it
    /// could climb past the warehouse; an empty partition directory left by a cleaned-up commit is harmless.
    pub fn local() -> Self {
        Self::local_on(Arc::new(object_store::local::LocalFileSystem::new()))
    }

    /// Local files through `store`, a filesystem store rooted at `/` (possibly wrapped in a layer).
    pub(crate) fn local_on(store: Arc<dyn ObjectStore>) -> Self {
        Self { scope: Arc::new(Scope::Local), store }
    }

    /// One Azure container; `store` is that container's client.
    pub fn azure(container: AzureLocation, store: Arc<dyn ObjectStore>) -> Self {
        Self { scope: Arc::new(Scope::Azure(container)), store }
    }

    /// The object a location names.
    fn resolve(&self, location: &str) -> Result<Path> {
        let refuse = |why: String| Error::new(ErrorKind::DataInvalid, format!("{location:?}: {why}"));
        let raw = match self.scope.as_ref() {
            Scope::Local => {
                let path = location.strip_prefix("file://").or_else(|| location.strip_prefix("file:")).unwrap_or(location);
                if !path.starts_with('/') {
                    return Err(refuse("not an absolute local path".into()));
                }
                path.to_string()
            }
            Scope::Azure(container) => {
                let named = AzureLocation::parse(location).map_err(|e| refuse(e.to_string()))?.ok_or_else(|| refuse("not an Azure URL".into()))?;
                if !container.same_container(&named) {
                    return Err(refuse(format!("outside the warehouse's container {}@{}", container.container, container.account)));
                }
                return Ok(named.path);
            }
        };
        Path::parse(raw.trim_start_matches('/')).map_err(|e| refuse(e.to_string()))
    }

    fn io_error(op: &'static str, location: &str, error: object_store::Error) -> Error {
        let kind = match &error {
            object_store::Error::NotFound { .. } => ErrorKind::DataInvalid,
            e if store_error_is_retryable(e) => ErrorKind::Unexpected,
            // Refusals (permissions, credentials): the lake treats these as not worth retrying.
            _ => ErrorKind::PreconditionFailed,
        };
        let retryable = kind == ErrorKind::Unexpected;
        Error::new(kind, format!("{op} {location}")).with_retryable(retryable).with_source(error)
    }
}

impl Serialize for ObjectStorage {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        // A live client with credentials: only where it points is worth writing down.
        let scope = match self.scope.as_ref() {
            Scope::Local => "file:///".to_string(),
            Scope::Azure(container) => container.url(),
        };
        serializer.serialize_str(&scope)
    }
}

impl<'de> Deserialize<'de> for ObjectStorage {
    fn deserialize<D: Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom("sentiment-lake storage holds live clients and credentials; it is never deserialized"))
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStorage {
    async fn exists(&self, location: &str) -> Result<bool> {
        match self.store.head(&self.resolve(location)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Self::io_error("head", location, e)),
        }
    }

    async fn metadata(&self, location: &str) -> Result<FileMetadata> {
        let meta = self.store.head(&self.resolve(location)?).await.map_err(|e| Self::io_error("head", location, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, location: &str) -> Result<Bytes> {
        let path = self.resolve(location)?;
        let result = self.store.get(&path).await.map_err(|e| Self::io_error("get", location, e))?;
        result.bytes().await.map_err(|e| Self::io_error("get", location, e))
    }

    async fn reader(&self, location: &str) -> Result<Box<dyn FileRead>> {
        Ok(Box::new(ObjectRead { store: self.store.clone(), path: self.resolve(location)?, location: location.to_string() }))
    }

    async fn write(&self, location: &str, bs: Bytes) -> Result<()> {
        let path = self.resolve(location)?;
        self.store.put(&path, bs.into()).await.map(|_| ()).map_err(|e| Self::io_error("put", location, e))
    }

    async fn writer(&self, location: &str) -> Result<Box<dyn FileWrite>> {
        let path = self.resolve(location)?;
        Ok(Box::new(ObjectWrite { writer: Some(BufWriter::new(self.store.clone(), path)), location: location.to_string() }))
    }

    async fn delete(&self, location: &str) -> Result<()> {
        match self.store.delete(&self.resolve(location)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::io_error("delete", location, e)),
        }
    }

    async fn delete_prefix(&self, location: &str) -> Result<()> {
        let prefix = self.resolve(location.trim_end_matches('/'))?;
        let listed = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        self.store.delete_stream(listed).try_collect::<Vec<_>>().await.map(|_| ()).map_err(|e| Self::io_error("delete prefix", location, e))
    }

    async fn delete_stream(&self, locations: BoxStream<'static, String>) -> Result<()> {
        let locations: Vec<String> = locations.collect().await;
        let mut paths = Vec::with_capacity(locations.len());
        for location in &locations {
            paths.push(Ok(self.resolve(location)?));
        }
        let mut deleted = self.store.delete_stream(futures::stream::iter(paths).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Self::io_error("delete", "(batch)", e)),
            }
        }
        Ok(())
    }

    fn new_input(&self, location: &str) -> Result<InputFile> {
        self.resolve(location)?;
        Ok(InputFile::new(Arc::new(self.clone()), location.to_string()))
    }

    fn new_output(&self, location: &str) -> Result<OutputFile> {
        self.resolve(location)?;
        Ok(OutputFile::new(Arc::new(self.clone()), location.to_string()))
    }
}

struct ObjectRead {
    store: Arc<dyn ObjectStore>,
    path: Path,
    location: String,
}

#[async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.store.get_range(&self.path, range).await.map_err(|e| ObjectStorage::io_error("get range", &self.location, e))
    }
}

/// Buffered upload: one PUT for small files, a multipart upload in 10 MiB parts for large ones. Nothing is
/// visible under the final name until `close` (the local store renames a temporary file into place).
struct ObjectWrite {
    writer: Option<BufWriter>,
    location: String,
}

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().ok_or_else(|| Error::new(ErrorKind::Unexpected, format!("{} is already closed", self.location)))?;
        writer.put(bs).await.map_err(|e| ObjectStorage::io_error("write", &self.location, e))
    }

    async fn close(&mut self) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut writer = self.writer.take().ok_or_else(|| Error::new(ErrorKind::Unexpected, format!("{} is already closed", self.location)))?;
        // No abort after a failed shutdown: object_store's BufWriter panics ("Already shut down") when
        // aborted once shutdown has begun (found by tests/faults.rs), and a failed single PUT leaves nothing
        // behind; an uncommitted multipart upload expires on the service's side.
        if let Err(e) = writer.shutdown().await {
            return Err(Error::new(ErrorKind::Unexpected, format!("close {}", self.location)).with_retryable(true).with_source(e));
        }
        Ok(())
    }
}

/// Hands the catalog the one storage the warehouse was opened with.
#[derive(Debug, Clone)]
pub struct ObjectStorageFactory(pub ObjectStorage);

impl Serialize for ObjectStorageFactory {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ObjectStorageFactory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        ObjectStorage::deserialize(deserializer).map(Self)
    }
}

#[typetag::serde]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_map_verbatim_and_stay_inside() {
        let local = ObjectStorage::local();
        assert_eq!(local.resolve("file:///tmp/wh/t/data/ticker=A%2F..%2FX/f.parquet").unwrap().as_ref(), "tmp/wh/t/data/ticker=A%2F..%2FX/f.parquet");
        assert_eq!(local.resolve("/tmp/wh/x").unwrap().as_ref(), "tmp/wh/x");
        assert!(local.resolve("file:///tmp/wh/../etc/passwd").is_err());
        assert!(local.resolve("relative/path").is_err());
        let container = AzureLocation::parse("abfss://lake@acct.dfs.core.windows.net").unwrap().unwrap();
        let azure = ObjectStorage::azure(container, Arc::new(object_store::memory::InMemory::new()));
        assert_eq!(azure.resolve("abfss://lake@acct.dfs.core.windows.net/wh/t/m.json").unwrap().as_ref(), "wh/t/m.json");
        // Other engines may write the blob form of the same container.
        assert_eq!(azure.resolve("wasbs://lake@acct.blob.core.windows.net/wh/t/m.json").unwrap().as_ref(), "wh/t/m.json");
        assert!(azure.resolve("abfss://other@acct.dfs.core.windows.net/wh").is_err());
        assert!(azure.resolve("abfss://lake@evil.dfs.core.windows.net/wh").is_err());
        assert!(azure.resolve("abfss://lake@acct.dfs.core.windows.net/wh/../../x").is_err());
        assert!(azure.resolve("file:///tmp/x").is_err());
    }

    #[tokio::test]
    async fn round_trip_through_the_iceberg_traits() {
        let container = AzureLocation::parse("abfss://lake@acct.dfs.core.windows.net").unwrap().unwrap();
        let storage = ObjectStorage::azure(container, Arc::new(object_store::memory::InMemory::new()));
        let location = "abfss://lake@acct.dfs.core.windows.net/wh/t/data/part.bin";
        assert!(!storage.exists(location).await.unwrap());
        let mut writer = storage.writer(location).await.unwrap();
        writer.write(Bytes::from_static(b"hello ")).await.unwrap();
        writer.write(Bytes::from_static(b"world")).await.unwrap();
        assert!(!storage.exists(location).await.unwrap(), "visible before close");
        writer.close().await.unwrap();
        assert!(writer.close().await.is_err());
        assert_eq!(storage.metadata(location).await.unwrap().size, 11);
        assert_eq!(storage.reader(location).await.unwrap().read(6..11).await.unwrap().as_ref(), b"world");
        storage.write("abfss://lake@acct.dfs.core.windows.net/wh/t/data/other.bin", Bytes::from_static(b"x")).await.unwrap();
        storage.delete_prefix("abfss://lake@acct.dfs.core.windows.net/wh/t/data/").await.unwrap();
        assert!(!storage.exists(location).await.unwrap());
        storage.delete(location).await.unwrap();
        let missing = storage.read(location).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::DataInvalid);
    }
}
