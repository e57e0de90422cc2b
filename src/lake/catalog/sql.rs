//! The catalog connection: iceberg's SQL catalog plus the pool the committer's compare-and-swap runs on,
//! both signed in the same way and renewed together; or (`--catalog-type rest`) iceberg's REST catalog,
//! the committer that posts to it ([`super::rest`]), and the SQL database the leases live in.
//!
//! With `--catalog-auth entra` the password is an Entra access token of the process's identity (what
//! Azure Database for PostgreSQL accepts for an Entra role). The server checks it only when a connection
//! opens, and both pools open connections all the time (iceberg's closes idle ones after 10 s), so a
//! connection must never be opened with an expired token: [`RenewingCatalog`] reconnects with a fresh one
//! a few minutes before the current one expires (a REST catalog's OAuth2 token is renewed the same way).
//! It is itself the `Catalog` everything holds (the query engine keeps its `Arc` for the life of the
//! process), so renewal reaches every user.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use iceberg::io::StorageFactory;
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, Namespace, NamespaceIdent, Result as IcebergResult, TableCommit, TableCreation, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder, SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE};
use tokio::sync::RwLock;

use super::publish::Publisher;
use super::rest::{self, RestSettings};
use super::swap::CatalogSwap;
use crate::identity::POSTGRES_SCOPE;
use crate::lake::error::LakeError;
use crate::storage::AzureSettings;

/// Which kind of catalog holds the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CatalogType {
    /// iceberg's SQL catalog in SQLite or PostgreSQL (`--catalog-uri sqlite://...` or `postgres://...`).
    #[default]
    Sql,
    /// An Iceberg REST catalog (`--catalog-uri` is its base URL, the part before `/v1/`): Nessie,
    /// Polaris, Lakekeeper, ...
    Rest,
}

/// How the catalog database is signed in to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CatalogAuth {
    /// Whatever the URI carries (a password, or none for trust and SQLite).
    #[default]
    Uri,
    /// The URI's user with an Entra access token of the managed identity as its password.
    Entra,
}

/// A REST catalog to connect to.
pub(crate) struct RestEndpoint {
    /// The base URL, the part before `/v1/`.
    pub uri: String,
    pub settings: RestSettings,
}

/// What a (re)connection needs.
pub(crate) struct CatalogSettings {
    /// The SQL database: the catalog's own, or with a REST catalog the one the leases live in.
    pub uri: String,
    /// The REST catalog holding the tables; `None`: the SQL catalog at `uri` does.
    pub rest: Option<RestEndpoint>,
    pub catalog_name: String,
    pub warehouse_url: String,
    pub storage_factory: Arc<dyn StorageFactory>,
    pub auth: CatalogAuth,
    pub identity: AzureSettings,
}

struct Connected {
    catalog: Arc<dyn Catalog>,
    publisher: Publisher,
    /// When to reconnect (a few minutes before a token expires); `None`: never.
    renew_at: Option<DateTime<Utc>>,
}

impl Connected {
    fn due(&self) -> bool {
        let refused = matches!(&self.publisher, Publisher::Rest { committer, .. } if committer.sign_in_refused());
        refused || self.renew_at.is_some_and(|at| Utc::now() >= at)
    }
}

/// The SQL or REST catalog, reconnected before its sign-in expires.
pub struct RenewingCatalog {
    settings: CatalogSettings,
    current: RwLock<Connected>,
}

impl std::fmt::Debug for RenewingCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewingCatalog")
            .field("catalog_name", &self.settings.catalog_name)
            .field("auth", &self.settings.auth)
            .field("rest", &self.settings.rest.as_ref().map(|r| &r.settings))
            .finish_non_exhaustive()
    }
}

impl RenewingCatalog {
    pub(crate) async fn connect(settings: CatalogSettings) -> Result<Self, LakeError> {
        let connected = connect(&settings).await?;
        Ok(Self { settings, current: RwLock::new(connected) })
    }

    /// The catalog and what publishes commits (and holds the leases), renewed first when the sign-in is
    /// about to expire.
    pub(crate) async fn current(&self) -> Result<(Arc<dyn Catalog>, Publisher), LakeError> {
        {
            let current = self.current.read().await;
            if !current.due() {
                return Ok((current.catalog.clone(), current.publisher.clone()));
            }
        }
        let mut current = self.current.write().await;
        // Another task may have renewed while this one waited for the lock.
        if current.due() {
            *current = connect(&self.settings).await?;
            tracing::info!(catalog = %self.settings.catalog_name, renew_at = ?current.renew_at, "catalog sign-in renewed");
        }
        Ok((current.catalog.clone(), current.publisher.clone()))
    }

    async fn catalog(&self) -> IcebergResult<Arc<dyn Catalog>> {
        self.current().await.map(|(catalog, _)| catalog).map_err(|e| {
            let retryable = e.is_retryable();
            iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("catalog connection: {e}")).with_retryable(retryable)
        })
    }
}

async fn connect(settings: &CatalogSettings) -> Result<Connected, LakeError> {
    let (uri, renew_at) = match settings.auth {
        CatalogAuth::Uri => (settings.uri.clone(), None),
        CatalogAuth::Entra => {
            super::tls::check_fit_for_a_token(&settings.uri)?;
            let token = settings.identity.entra_identity()?.token(POSTGRES_SCOPE).await?;
            let mut url = url::Url::parse(&settings.uri).map_err(|e| LakeError::Config(format!("catalog URI: {e}")))?;
            if url.username().is_empty() {
                return Err(LakeError::Config("--catalog-auth entra needs the Entra role name as the catalog URI's user".into()));
            }
            url.set_password(Some(&token.token)).map_err(|()| LakeError::Config("the catalog URI cannot carry a password".into()))?;
            (url.to_string(), Some(token.renew_at()))
        }
    };
    let swap = CatalogSwap::connect(&uri, &settings.catalog_name).await?;
    if let Some(endpoint) = &settings.rest {
        let connection = rest::connect(&endpoint.uri, &settings.catalog_name, &endpoint.settings, settings.storage_factory.clone()).await?;
        let renew_at = [renew_at, connection.renew_at].into_iter().flatten().min();
        let publisher = Publisher::Rest { committer: connection.committer, leases: swap };
        return Ok(Connected { catalog: Arc::new(connection.catalog), publisher, renew_at });
    }
    // PostgreSQL binds `$1..$n`; SQLite (and MySQL) bind `?`.
    let bind_style = if uri.starts_with("postgres") { SqlBindStyle::DollarNumeric } else { SqlBindStyle::QMark };
    let props = HashMap::from([
        (SQL_CATALOG_PROP_URI.to_string(), uri),
        (SQL_CATALOG_PROP_WAREHOUSE.to_string(), settings.warehouse_url.clone()),
        (SQL_CATALOG_PROP_BIND_STYLE.to_string(), bind_style.to_string()),
    ]);
    // Instances starting together on a fresh database race to create the catalog's tables (PostgreSQL's
    // CREATE TABLE IF NOT EXISTS is not atomic against itself): the loser tries again.
    let mut attempt = 0;
    let catalog = loop {
        attempt += 1;
        match SqlCatalogBuilder::default().with_storage_factory(settings.storage_factory.clone()).load(&settings.catalog_name, props.clone()).await {
            Ok(catalog) => break catalog,
            Err(e) if attempt < 3 => {
                tracing::debug!(error = %e, attempt, "opening the SQL catalog failed; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => return Err(LakeError::iceberg("opening the SQL catalog")(e)),
        }
    };
    Ok(Connected { catalog: Arc::new(catalog), publisher: Publisher::Sql(swap), renew_at })
}

/// Which metadata file a table points at, learnt without loading it. A reader that keeps the table it last
/// loaded compares this pointer instead of re-reading and re-parsing the metadata file on every request.
#[async_trait]
pub trait MetadataPointer: Send + Sync {
    /// `Ok(None)`: this catalog cannot tell cheaply (or has no such table); load the table instead.
    async fn metadata_location(&self, table: &TableIdent) -> Result<Option<String>, LakeError>;
}

#[async_trait]
impl MetadataPointer for RenewingCatalog {
    async fn metadata_location(&self, table: &TableIdent) -> Result<Option<String>, LakeError> {
        match self.current().await?.1 {
            Publisher::Sql(swap) => swap.metadata_location(table).await,
            // A REST catalog's pointer comes only with the whole metadata (loadTable).
            Publisher::Rest { .. } => Ok(None),
        }
    }
}

#[async_trait]
impl Catalog for RenewingCatalog {
    async fn list_namespaces(&self, parent: Option<&NamespaceIdent>) -> IcebergResult<Vec<NamespaceIdent>> {
        self.catalog().await?.list_namespaces(parent).await
    }

    async fn create_namespace(&self, namespace: &NamespaceIdent, properties: HashMap<String, String>) -> IcebergResult<Namespace> {
        self.catalog().await?.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> IcebergResult<Namespace> {
        self.catalog().await?.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> IcebergResult<bool> {
        self.catalog().await?.namespace_exists(namespace).await
    }

    async fn update_namespace(&self, namespace: &NamespaceIdent, properties: HashMap<String, String>) -> IcebergResult<()> {
        self.catalog().await?.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> IcebergResult<()> {
        self.catalog().await?.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> IcebergResult<Vec<TableIdent>> {
        self.catalog().await?.list_tables(namespace).await
    }

    async fn create_table(&self, namespace: &NamespaceIdent, creation: TableCreation) -> IcebergResult<Table> {
        self.catalog().await?.create_table(namespace, creation).await
    }

    async fn load_table(&self, table: &TableIdent) -> IcebergResult<Table> {
        self.catalog().await?.load_table(table).await
    }

    async fn drop_table(&self, table: &TableIdent) -> IcebergResult<()> {
        self.catalog().await?.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> IcebergResult<()> {
        self.catalog().await?.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> IcebergResult<bool> {
        self.catalog().await?.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> IcebergResult<()> {
        self.catalog().await?.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> IcebergResult<Table> {
        self.catalog().await?.register_table(table, metadata_location).await
    }

    async fn update_table(&self, commit: TableCommit) -> IcebergResult<Table> {
        self.catalog().await?.update_table(commit).await
    }
}
