//! The Iceberg REST catalog (`--catalog-type rest`): Nessie (0.90.2 and later serve the REST API),
//! Polaris, Lakekeeper, lakana or any other server of the spec.
//!
//! iceberg-rust's `RestCatalog` lists, loads and creates tables. It cannot commit this crate's changes:
//! its `update_table` takes a `TableCommit`, whose builder is crate-private (only iceberg's own
//! `Transaction` makes one, and that re-binds partition specs and rebases appends, see [`super::swap`]).
//! So [`RestCommitter`] posts the spec's commit request itself, built from iceberg's public serde types:
//! the manifests and manifest list are written exactly as for the SQL catalog, and instead of writing the
//! next metadata file and swapping a pointer, the server is asked to add the snapshot, move `main` and set
//! the properties, on the condition that `main` is still where the commit was built. The server writes the
//! metadata file.
//!
//! Sign-in is a bearer token, either given (`--catalog-token`) or fetched with OAuth2 client credentials
//! (`--catalog-credential id:secret`) from `{uri}/v1/oauth/tokens`. It rides as a default header of the
//! one HTTP client both halves use, marked sensitive, so it is never in a property map, a log line or a
//! `Debug` output; a fetched token is renewed by reconnecting before it expires ([`super::catalog`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use iceberg::io::StorageFactory;
use iceberg::spec::{Snapshot, SnapshotReference, SnapshotRetention, TableMetadata};
use iceberg::table::Table;
use iceberg::{CatalogBuilder, TableIdent, TableRequirement, TableUpdate};
use iceberg_catalog_rest::{CommitTableRequest, RestCatalog, RestCatalogBuilder, REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;

use crate::lake::error::LakeError;

/// The branch every commit of this crate moves.
pub const MAIN_BRANCH: &str = "main";
/// The path segment the REST spec puts before every route.
const V1: &str = "v1";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough to load a big table's metadata; a commit that takes longer has an unknown outcome.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// A fetched token is renewed this long before it expires (or at half its life, if that is shorter).
const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// A fetched token whose lifetime the server does not state is renewed this often.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How much of an error body goes into an error message.
const MAX_ERROR_BODY: usize = 1000;

/// A secret given on the command line or in the environment (a token, client credentials): `Debug` never
/// shows it, and it is read only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_string()))
    }
}

/// How to reach a REST catalog besides its URI.
#[derive(Debug, Clone, Default)]
pub struct RestSettings {
    /// The `prefix` the server's routes are under (`/v1/{prefix}/namespaces/...`); a prefix the server
    /// states in its `/v1/config` overrides it.
    pub prefix: Option<String>,
    /// The `warehouse` asked for in `/v1/config` (a name or a location, as the server understands it).
    pub warehouse: Option<String>,
    /// A bearer token.
    pub token: Option<Secret>,
    /// OAuth2 client credentials, `client_id:client_secret` (or the secret alone), exchanged for a token.
    pub credential: Option<Secret>,
}

/// A REST catalog signed in to, and the committer that shares its sign-in.
pub(crate) struct RestConnection {
    pub catalog: RestCatalog,
    pub committer: RestCommitter,
    /// When to reconnect for a fresh token; `None` for a given token (it cannot be renewed here).
    pub renew_at: Option<DateTime<Utc>>,
}

/// Signs in, reads the server's `/v1/config` (which may move the URI or set the prefix, as Nessie does),
/// and opens iceberg-rust's `RestCatalog` with the warehouse's storage for table files.
pub(crate) async fn connect(
    uri: &str,
    catalog_name: &str,
    settings: &RestSettings,
    storage_factory: Arc<dyn StorageFactory>,
) -> Result<RestConnection, LakeError> {
    let uri = uri.trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&uri).map_err(|e| LakeError::Config(format!("REST catalog URI {uri:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        return Err(LakeError::Config(format!("REST catalog URI {uri:?}: expected http(s)://host[:port][/path], the part before /v1/")));
    }
    let plain = http_client(HeaderMap::new())?;
    let (token, renew_at) = match (&settings.token, &settings.credential) {
        (Some(token), _) => (Some(token.expose().to_string()), None),
        (None, Some(credential)) => {
            let (token, lifetime) = fetch_token(&plain, &uri, credential.expose()).await?;
            let margin = RENEW_MARGIN.min(lifetime / 2);
            (Some(token), Some(Utc::now() + chrono::Duration::from_std(lifetime - margin).unwrap_or(chrono::Duration::zero())))
        }
        (None, None) => (None, None),
    };
    let mut headers = HeaderMap::new();
    if let Some(token) = &token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| LakeError::Config("the REST catalog token is not a valid header value".into()))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let client = http_client(headers)?;
    let config = server_config(&client, &uri, settings.warehouse.as_deref()).await?;
    let base = config.overrides.get("uri").cloned().unwrap_or_else(|| uri.clone()).trim_end_matches('/').to_string();
    let prefix =
        config.overrides.get("prefix").or(settings.prefix.as_ref()).or_else(|| config.defaults.get("prefix")).filter(|p| !p.is_empty()).cloned();
    // The catalog reads /v1/config again and merges it the same way, so both halves use one base and prefix.
    let mut props = HashMap::from([(REST_CATALOG_PROP_URI.to_string(), uri.clone())]);
    if let Some(prefix) = &settings.prefix {
        props.insert("prefix".to_string(), prefix.clone());
    }
    if let Some(warehouse) = &settings.warehouse {
        props.insert(REST_CATALOG_PROP_WAREHOUSE.to_string(), warehouse.clone());
    }
    let catalog = RestCatalogBuilder::default()
        .with_client(client.clone())
        .with_storage_factory(storage_factory)
        .load(catalog_name, props)
        .await
        .map_err(LakeError::iceberg("opening the REST catalog"))?;
    tracing::info!(uri = %base, prefix = ?prefix, "REST catalog opened");
    let committer = RestCommitter {
        client,
        base,
        prefix,
        renewable: settings.token.is_none() && settings.credential.is_some(),
        refused_sign_in: Arc::new(AtomicBool::new(false)),
    };
    Ok(RestConnection { catalog, committer, renew_at })
}

fn http_client(headers: HeaderMap) -> Result<reqwest::Client, LakeError> {
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| LakeError::Config(format!("building the REST catalog's HTTP client: {e}")))
}

fn rest_error(context: &str, status: Option<StatusCode>, detail: impl Into<String>, retryable: bool) -> LakeError {
    LakeError::RestCatalog { context: context.to_string(), status: status.map(|s| s.as_u16()), detail: detail.into(), retryable }
}

/// A failed request that never got an answer: connecting, timing out, reading the body.
fn transport_error(context: &str, error: reqwest::Error) -> LakeError {
    // `without_url`: the URL is in the context already, and an error's URL could carry a query string.
    rest_error(context, None, error.without_url().to_string(), true)
}

/// The server's error model (`{"error": {"message", "type", "code"}}`) as one line, or the body itself.
async fn error_detail(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let model = parsed.as_ref().and_then(|v| v.get("error"));
    let detail = match model {
        Some(model) => {
            let kind = model.get("type").and_then(|t| t.as_str()).unwrap_or("error");
            let message = model.get("message").and_then(|m| m.as_str()).unwrap_or_default();
            format!("{kind}: {message}")
        }
        None if body.trim().is_empty() => status.canonical_reason().unwrap_or("no message").to_string(),
        None => body,
    };
    let mut detail = detail.trim().to_string();
    if detail.len() > MAX_ERROR_BODY {
        let mut end = MAX_ERROR_BODY;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    format!("HTTP {}: {detail}", status.as_u16())
}

#[derive(Debug, Default, serde::Deserialize)]
struct ServerConfig {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

async fn server_config(client: &reqwest::Client, uri: &str, warehouse: Option<&str>) -> Result<ServerConfig, LakeError> {
    const CONTEXT: &str = "reading /v1/config";
    let mut request = client.get(format!("{uri}/{V1}/config"));
    if let Some(warehouse) = warehouse {
        request = request.query(&[("warehouse", warehouse)]);
    }
    let response = request.send().await.map_err(|e| transport_error(CONTEXT, e))?;
    let status = response.status();
    if !status.is_success() {
        let detail = error_detail(response).await;
        // Unreachable or overloaded servers come back; a wrong URI, prefix or sign-in does not.
        let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        return Err(rest_error(CONTEXT, Some(status), format!("{detail} (is {uri} the part of the URI before /v1/?)"), retryable));
    }
    let body = response.bytes().await.map_err(|e| transport_error(CONTEXT, e))?;
    serde_json::from_slice(&body).map_err(|e| rest_error(CONTEXT, Some(status), format!("not a catalog config: {e}"), false))
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// The spec's client-credentials exchange; returns the token and how long it lives.
async fn fetch_token(client: &reqwest::Client, uri: &str, credential: &str) -> Result<(String, Duration), LakeError> {
    const CONTEXT: &str = "fetching an OAuth2 token";
    let (client_id, secret) = match credential.split_once(':') {
        Some((id, secret)) => (Some(id), secret),
        None => (None, credential),
    };
    let mut form = vec![("grant_type", "client_credentials"), ("client_secret", secret), ("scope", "catalog")];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    let response = client.post(format!("{uri}/{V1}/oauth/tokens")).form(&form).send().await.map_err(|e| transport_error(CONTEXT, e))?;
    let status = response.status();
    if !status.is_success() {
        let detail = error_detail(response).await;
        return Err(rest_error(CONTEXT, Some(status), detail, status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS));
    }
    let body = response.bytes().await.map_err(|e| transport_error(CONTEXT, e))?;
    let token: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| rest_error(CONTEXT, Some(status), format!("not a token response: {e}"), false))?;
    let lifetime = token.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok((token.access_token, lifetime))
}

/// How a REST commit ended.
#[derive(Debug)]
pub(crate) enum Published {
    /// 200: the table is at the new metadata.
    Landed,
    /// 409: a requirement failed (another commit moved `main`); nothing of this commit is referenced.
    Conflict,
    /// The request provably never reached the server (no connection was made, or it could not be built):
    /// the files written for it are referenced by nothing.
    NotSent(LakeError),
    /// Anything else: every 5xx (gateways answer 502, 503 or 504 after the catalog behind them committed),
    /// 429, an unexpected 4xx (Polaris answered 400 for an unknown commit state), a lost reply. The commit
    /// may have landed, so its files stay and the committer decides by looking for its commit id, as
    /// Iceberg's own client does (`CommitStateUnknownException`). Retryable unless the server refused the
    /// request itself (a bad update, a forbidden action).
    Unknown(LakeError),
}

/// Posts commits to a REST catalog's `POST /v1/{prefix}/namespaces/{namespace}/tables/{table}`.
#[derive(Clone)]
pub struct RestCommitter {
    client: reqwest::Client,
    /// The base URI (after the server's `/v1/config` overrides), without a trailing slash.
    base: String,
    prefix: Option<String>,
    /// The token was fetched with client credentials, so a refused sign-in may pass after renewal.
    renewable: bool,
    /// Set when the server refused the token: the next use of the catalog reconnects with a fresh one.
    refused_sign_in: Arc<AtomicBool>,
}

impl std::fmt::Debug for RestCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCommitter").field("base", &self.base).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RestCommitter {
    /// Whether the server refused this connection's token (a fetched one expired early or was revoked).
    pub(crate) fn sign_in_refused(&self) -> bool {
        self.refused_sign_in.load(Ordering::Relaxed)
    }

    /// `{base}/v1/{prefix}/namespaces/{namespace}/tables/{table}`, each part percent-encoded as one path
    /// segment (a multi-level namespace joined by the spec's 0x1F separator).
    fn table_url(&self, ident: &TableIdent) -> Result<url::Url, LakeError> {
        let mut url = url::Url::parse(&self.base).map_err(|e| LakeError::Config(format!("REST catalog URI {:?}: {e}", self.base)))?;
        {
            let mut segments =
                url.path_segments_mut().map_err(|()| LakeError::Config(format!("REST catalog URI {:?} cannot be a base", self.base)))?;
            segments.pop_if_empty().push(V1);
            if let Some(prefix) = &self.prefix {
                segments.extend(prefix.split('/').filter(|s| !s.is_empty()));
            }
            segments.push("namespaces").push(&ident.namespace().join("\u{1f}")).push("tables").push(ident.name());
        }
        Ok(url)
    }

    /// Posts `request` for `ident` and says how it ended.
    pub(crate) async fn publish(&self, ident: &TableIdent, request: &CommitTableRequest) -> Published {
        let context = format!("committing to {ident}");
        let url = match self.table_url(ident) {
            Ok(url) => url,
            Err(e) => return Published::NotSent(e),
        };
        let response = match self.client.post(url).json(request).send().await {
            Ok(response) => response,
            // Never connected: the request was not sent, so nothing can have landed.
            Err(e) if e.is_connect() => return Published::NotSent(transport_error(&context, e)),
            Err(e) => return Published::Unknown(transport_error(&context, e)),
        };
        let status = response.status();
        if status.is_success() {
            return Published::Landed;
        }
        if status == StatusCode::CONFLICT {
            let detail = error_detail(response).await;
            tracing::debug!(table = %ident, detail = %detail, "REST commit refused: a requirement failed");
            return Published::Conflict;
        }
        let detail = error_detail(response).await;
        let retryable = match status {
            StatusCode::UNAUTHORIZED if self.renewable => {
                self.refused_sign_in.store(true, Ordering::Relaxed);
                true
            }
            s => s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT,
        };
        Published::Unknown(rest_error(&context, Some(status), format!("{detail}; whether the commit landed is unknown"), retryable))
    }
}

/// The commit request for `snapshot` (none: a properties-only commit), the properties and the expired
/// snapshots, on top of exactly `table`'s metadata.
///
/// The requirements are the table's uuid and `main` at the snapshot the commit was built on: the REST spec
/// has no "metadata location is still X". A commit that adds a snapshot is exact (every other commit that
/// could conflict with it moves `main`). A properties-only commit (the ledger folding range markers,
/// retirement removing watermark keys) is checked against `main` only, so two properties-only commits, or
/// one and a snapshot commit built on the same `main`, can both land, the last one's properties winning.
/// For the ledger that can only move a watermark back over ranges that held no new rows (never forward):
/// nothing is committed twice, and the ranges are staged again or bridged after the gap grace period.
pub(crate) fn commit_request(
    table: &Table,
    snapshot: Option<Snapshot>,
    properties: &[(String, String)],
    expire: &[i64],
    set_current: Option<i64>,
    schema: Option<iceberg::spec::Schema>,
    tags: &[(String, i64)],
) -> Result<CommitTableRequest, LakeError> {
    let metadata = table.metadata();
    let base = metadata.current_snapshot_id();
    if let Some(id) = expire.iter().find(|id| Some(**id) == base) {
        let detail = format!("snapshot {id} is the current snapshot of {} and cannot be expired", table.identifier());
        return Err(LakeError::iceberg("building the commit")(iceberg::Error::new(iceberg::ErrorKind::DataInvalid, detail)));
    }
    let mut requirements = vec![
        TableRequirement::UuidMatch { uuid: metadata.uuid() },
        TableRequirement::RefSnapshotIdMatch { r#ref: MAIN_BRANCH.to_string(), snapshot_id: base },
    ];
    let mut updates = Vec::new();
    if let Some(schema) = schema {
        // A concurrent schema change must make this one fail, not interleave.
        requirements.push(TableRequirement::CurrentSchemaIdMatch { current_schema_id: metadata.current_schema_id() });
        requirements.push(TableRequirement::LastAssignedFieldIdMatch { last_assigned_field_id: metadata.last_column_id() });
        updates.push(TableUpdate::AddSchema { schema });
        updates.push(TableUpdate::SetCurrentSchema { schema_id: -1 });
    }
    if let Some(snapshot) = snapshot {
        let reference = SnapshotReference::new(snapshot.snapshot_id(), main_retention(metadata));
        updates.push(TableUpdate::AddSnapshot { snapshot });
        updates.push(TableUpdate::SetSnapshotRef { ref_name: MAIN_BRANCH.to_string(), reference });
    }
    if let Some(id) = set_current.filter(|_| updates.is_empty()) {
        updates
            .push(TableUpdate::SetSnapshotRef { ref_name: MAIN_BRANCH.to_string(), reference: SnapshotReference::new(id, main_retention(metadata)) });
    }
    for (name, id) in tags {
        // A tag of that name already there makes the server refuse the commit (never moved).
        requirements.push(TableRequirement::RefSnapshotIdMatch { r#ref: name.clone(), snapshot_id: None });
        let reference = SnapshotReference::new(*id, iceberg::spec::SnapshotRetention::Tag { max_ref_age_ms: None });
        updates.push(TableUpdate::SetSnapshotRef { ref_name: name.clone(), reference });
    }
    if !properties.is_empty() {
        updates.push(TableUpdate::SetProperties { updates: properties.iter().cloned().collect() });
    }
    if !expire.is_empty() {
        updates.push(TableUpdate::RemoveSnapshots { snapshot_ids: expire.to_vec() });
    }
    Ok(CommitTableRequest { identifier: Some(table.identifier().clone()), requirements, updates })
}

/// `main`'s retention settings, kept when the commit moves it (the metadata has no public accessor for
/// refs, so they are read from its JSON form).
fn main_retention(metadata: &TableMetadata) -> SnapshotRetention {
    serde_json::to_value(metadata)
        .ok()
        .and_then(|doc| doc.get("refs")?.get(MAIN_BRANCH).cloned())
        .and_then(|main| serde_json::from_value::<SnapshotReference>(main).ok())
        .map(|main| main.retention)
        .filter(|retention| matches!(retention, SnapshotRetention::Branch { .. }))
        .unwrap_or(SnapshotRetention::branch(None, None, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committer(base: &str, prefix: Option<&str>) -> RestCommitter {
        RestCommitter {
            client: reqwest::Client::new(),
            base: base.to_string(),
            prefix: prefix.map(str::to_string),
            renewable: false,
            refused_sign_in: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn table_urls_follow_the_spec() {
        let ident = TableIdent::from_strs(["bronze", "sentiment", "records"]).unwrap();
        let url = committer("http://127.0.0.1:19120/iceberg", Some("main|warehouse")).table_url(&ident).unwrap();
        // `|` (Nessie's branch|warehouse prefix) is a valid path character, left as iceberg-rust's client leaves it.
        assert_eq!(url.as_str(), "http://127.0.0.1:19120/iceberg/v1/main|warehouse/namespaces/bronze%1Fsentiment/tables/records");
        let url = committer("http://127.0.0.1:8181/", None).table_url(&TableIdent::from_strs(["bronze", "t"]).unwrap()).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8181/v1/namespaces/bronze/tables/t");
    }

    /// A stand-in REST server: hands out a token for client credentials, states a prefix in /v1/config,
    /// and answers commits with the status the test sets, recording the Authorization headers it sees.
    struct Mock {
        uri: String,
        status: Arc<std::sync::atomic::AtomicU16>,
        seen: Arc<std::sync::Mutex<Vec<Option<String>>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Mock {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn mock() -> Mock {
        use axum::http::HeaderMap as Headers;
        use axum::routing::{get, post};
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let seen: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::default();
        let (commit_status, commit_seen) = (status.clone(), seen.clone());
        let router = axum::Router::new()
            .route(
                "/v1/oauth/tokens",
                post(|| async { axum::Json(serde_json::json!({"access_token": "fetched", "token_type": "bearer", "expires_in": 3600})) }),
            )
            .route("/v1/config", get(|| async { axum::Json(serde_json::json!({"defaults": {}, "overrides": {"prefix": "from-server"}})) }))
            .route(
                "/v1/from-server/namespaces/ns/tables/t",
                post(move |headers: Headers| async move {
                    commit_seen.lock().unwrap().push(headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string));
                    let code = StatusCode::from_u16(commit_status.load(Ordering::Relaxed)).unwrap();
                    (code, axum::Json(serde_json::json!({"error": {"message": "said no", "type": "TestError", "code": code.as_u16()}})))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Mock { uri, status, seen, task }
    }

    #[tokio::test]
    async fn client_credentials_sign_in_and_commit_answers_are_classified() {
        let server = mock().await;
        let settings = RestSettings { credential: Some("id:secret".into()), prefix: Some("ignored".into()), ..RestSettings::default() };
        let factory: Arc<dyn StorageFactory> = Arc::new(iceberg::io::LocalFsStorageFactory);
        let connection = connect(&server.uri, "test", &settings, factory).await.unwrap();
        assert!(connection.renew_at.is_some_and(|at| at > Utc::now() + chrono::Duration::minutes(50)), "renewed before the hour is up");
        let committer = connection.committer;
        assert_eq!(committer.prefix.as_deref(), Some("from-server"), "the server's override wins");
        let ident = TableIdent::from_strs(["ns", "t"]).unwrap();
        let request = CommitTableRequest { identifier: Some(ident.clone()), requirements: vec![], updates: vec![] };
        let outcome = |status: u16| {
            server.status.store(status, Ordering::Relaxed);
            committer.publish(&ident, &request)
        };
        assert!(matches!(outcome(200).await, Published::Landed));
        assert!(matches!(outcome(409).await, Published::Conflict), "only a failed requirement says the commit did not land");
        for status in [500, 502, 503, 504, 429] {
            assert!(matches!(outcome(status).await, Published::Unknown(e) if e.is_retryable()), "{status}");
        }
        match outcome(400).await {
            Published::Unknown(e @ LakeError::RestCatalog { status: Some(400), .. }) => {
                assert!(!e.is_retryable() && e.to_string().contains("TestError: said no"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(outcome(403).await, Published::Unknown(e) if !e.is_retryable()));
        assert!(!committer.sign_in_refused());
        assert!(matches!(outcome(401).await, Published::Unknown(e) if e.is_retryable()));
        assert!(committer.sign_in_refused(), "a refused fetched token makes the catalog reconnect");
        assert!(server.seen.lock().unwrap().iter().all(|h| h.as_deref() == Some("Bearer fetched")), "{:?}", server.seen.lock().unwrap());
        assert!(!format!("{committer:?}").contains("fetched"));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retryable_and_a_wrong_uri_is_not() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let factory: Arc<dyn StorageFactory> = Arc::new(iceberg::io::LocalFsStorageFactory);
        match connect(&format!("http://127.0.0.1:{port}"), "test", &RestSettings::default(), factory.clone()).await {
            Err(e @ LakeError::RestCatalog { status: None, .. }) => assert!(e.is_retryable(), "{e}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("nothing listens there"),
        }
        let server = mock().await;
        match connect(&format!("{}/not-the-base", server.uri), "test", &RestSettings::default(), factory.clone()).await {
            Err(e @ LakeError::RestCatalog { status: Some(404), .. }) => assert!(!e.is_retryable() && e.to_string().contains("before /v1/"), "{e}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("no /v1/config there"),
        }
        assert!(matches!(connect("ftp://127.0.0.1/x", "test", &RestSettings::default(), factory).await, Err(LakeError::Config(_))));
    }

    #[test]
    fn settings_never_show_secrets() {
        let settings = RestSettings { token: Some("s3cr3t".into()), credential: Some("id:hush".into()), ..RestSettings::default() };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("hush"), "{shown}");
    }

    #[test]
    fn updates_serialize_as_the_rest_spec_says() {
        let snapshot = Snapshot::builder()
            .with_snapshot_id(7)
            .with_parent_snapshot_id(Some(6))
            .with_sequence_number(3)
            .with_timestamp_ms(1_700_000_000_000)
            .with_manifest_list("file:///w/metadata/snap-7.avro")
            .with_summary(iceberg::spec::Summary {
                operation: iceberg::spec::Operation::Append,
                additional_properties: HashMap::from([("k".to_string(), "v".to_string())]),
            })
            .with_schema_id(0)
            .build();
        let add = serde_json::to_value(TableUpdate::AddSnapshot { snapshot }).unwrap();
        assert_eq!(
            add,
            serde_json::json!({"action": "add-snapshot", "snapshot": {
                "snapshot-id": 7, "parent-snapshot-id": 6, "sequence-number": 3, "timestamp-ms": 1_700_000_000_000i64,
                "manifest-list": "file:///w/metadata/snap-7.avro", "summary": {"operation": "append", "k": "v"}, "schema-id": 0}})
        );
        let set_ref = TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.into(),
            reference: SnapshotReference::new(7, SnapshotRetention::branch(None, None, None)),
        };
        assert_eq!(
            serde_json::to_value(set_ref).unwrap(),
            serde_json::json!({"action": "set-snapshot-ref", "ref-name": "main", "snapshot-id": 7, "type": "branch"})
        );
        let requirement = TableRequirement::RefSnapshotIdMatch { r#ref: MAIN_BRANCH.into(), snapshot_id: None };
        assert_eq!(
            serde_json::to_value(requirement).unwrap(),
            serde_json::json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": null})
        );
        let remove = TableUpdate::RemoveSnapshots { snapshot_ids: vec![1, 2] };
        assert_eq!(serde_json::to_value(remove).unwrap(), serde_json::json!({"action": "remove-snapshots", "snapshot-ids": [1, 2]}));
    }
}
