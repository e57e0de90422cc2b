//! Azure Blob / ADLS Gen2 clients through `object_store`'s Azure support, with the credential picked from
//! configuration.
//!
//! Why `object_store` rather than OpenDAL (what iceberg-rust ships) or the Azure SDK crates: OpenDAL 0.57's
//! credential chain never asks the App Service / Functions managed-identity endpoint (`IDENTITY_ENDPOINT`)
//! and cannot reach an emulator; `object_store` 0.13 is already in the build through DataFusion and speaks
//! every credential a deployment uses (managed identity through IMDS or the App Service endpoint, workload
//! identity, service principal, SAS, shared key), plus custom endpoints for Azurite and private links.
//!
//! The credential is chosen once, explicitly (`--azure-auth`) or from what is configured (`auto`), so
//! `doctor` can say which one is in use. Secrets never reach `Debug`, logs or errors.

use std::sync::Arc;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::{ClientOptions, ObjectStore};

use super::StorageError;

/// Azurite's (and the old emulator's) published development account and key.
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
pub const EMULATOR_ACCOUNT_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Which credential to use; `Auto` picks the first one configured, in the order of the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AzureAuth {
    #[default]
    Auto,
    ConnectionString,
    AccountKey,
    Sas,
    ServicePrincipal,
    WorkloadIdentity,
    ManagedIdentity,
}

/// Everything a deployment may set about Azure storage. Built by the CLI from flags and the usual Azure
/// environment variables (`AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_CLIENT_ID`, `IDENTITY_ENDPOINT`, ...).
#[derive(Clone, Default)]
pub struct AzureSettings {
    pub auth: AzureAuth,
    pub connection_string: Option<String>,
    pub account_key: Option<String>,
    pub sas_token: Option<String>,
    /// Service principal, workload identity, or the user-assigned managed identity to use.
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_secret: Option<String>,
    pub federated_token_file: Option<String>,
    pub authority_host: Option<String>,
    /// The App Service / Functions managed-identity endpoint (`IDENTITY_ENDPOINT`) and its secret header
    /// (`IDENTITY_HEADER`). The storage client reads the header from the environment itself; tokens for
    /// other resources (the catalog database) are asked for with this one.
    pub identity_endpoint: Option<String>,
    pub identity_header: Option<String>,
    /// Blob endpoint of the account (`http://127.0.0.1:10000/devstoreaccount1` for Azurite, a private link,
    /// a sovereign cloud). Default: `https://<account>.blob.core.windows.net`.
    pub blob_endpoint: Option<String>,
    /// A PEM root certificate to trust besides the system's (a private endpoint's or an emulator's CA).
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<set>");
        f.debug_struct("AzureSettings")
            .field("auth", &self.auth)
            .field("connection_string", &set(&self.connection_string))
            .field("account_key", &set(&self.account_key))
            .field("sas_token", &set(&self.sas_token))
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_secret", &set(&self.client_secret))
            .field("federated_token_file", &self.federated_token_file)
            .field("identity_endpoint", &self.identity_endpoint)
            .field("identity_header", &set(&self.identity_header))
            .field("blob_endpoint", &self.blob_endpoint)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The credential that was chosen, with what is needed to use it.
#[derive(Clone, PartialEq, Eq)]
enum Credential {
    AccountKey { key: String, from: &'static str },
    Sas(String),
    ServicePrincipal { client_id: String, tenant_id: String, secret: String },
    WorkloadIdentity { client_id: String, tenant_id: String, token_file: String },
    ManagedIdentity { endpoint: Option<String>, client_id: Option<String> },
}

/// An account's connection: endpoint, credential, TLS options. Builds a client per container.
#[derive(Clone)]
pub struct AzureAccount {
    account: String,
    blob_endpoint: Option<String>,
    credential: Credential,
    authority_host: Option<String>,
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for AzureAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl AzureAccount {
    /// Resolves the settings for `account` (the account named by the location).
    pub fn resolve(account: &str, settings: &AzureSettings) -> Result<Self, StorageError> {
        let missing = |what: &str, var: &str| StorageError::Config(format!("--azure-auth {what} needs {var}"));
        let parsed = settings.connection_string.as_deref().map(ConnectionString::parse).transpose()?;
        let mut blob_endpoint = settings.blob_endpoint.clone();
        let credential = match settings.auth {
            AzureAuth::ConnectionString => {
                Some(parsed.as_ref().ok_or_else(|| missing("connection-string", "AZURE_STORAGE_CONNECTION_STRING"))?.credential(account)?)
            }
            AzureAuth::AccountKey => Some(Credential::AccountKey {
                key: settings.account_key.clone().ok_or_else(|| missing("account-key", "AZURE_STORAGE_ACCOUNT_KEY"))?,
                from: "AZURE_STORAGE_ACCOUNT_KEY",
            }),
            AzureAuth::Sas => Some(Credential::Sas(settings.sas_token.clone().ok_or_else(|| missing("sas", "AZURE_STORAGE_SAS_TOKEN"))?)),
            AzureAuth::ServicePrincipal => Some(Credential::ServicePrincipal {
                client_id: settings.client_id.clone().ok_or_else(|| missing("service-principal", "AZURE_CLIENT_ID"))?,
                tenant_id: settings.tenant_id.clone().ok_or_else(|| missing("service-principal", "AZURE_TENANT_ID"))?,
                secret: settings.client_secret.clone().ok_or_else(|| missing("service-principal", "AZURE_CLIENT_SECRET"))?,
            }),
            AzureAuth::WorkloadIdentity => Some(Credential::WorkloadIdentity {
                client_id: settings.client_id.clone().ok_or_else(|| missing("workload-identity", "AZURE_CLIENT_ID"))?,
                tenant_id: settings.tenant_id.clone().ok_or_else(|| missing("workload-identity", "AZURE_TENANT_ID"))?,
                token_file: settings.federated_token_file.clone().ok_or_else(|| missing("workload-identity", "AZURE_FEDERATED_TOKEN_FILE"))?,
            }),
            AzureAuth::ManagedIdentity => {
                Some(Credential::ManagedIdentity { endpoint: settings.identity_endpoint.clone(), client_id: settings.client_id.clone() })
            }
            AzureAuth::Auto => None,
        };
        let credential = match credential {
            Some(credential) => credential,
            None => match (&parsed, settings) {
                (Some(parsed), _) => parsed.credential(account)?,
                (None, AzureSettings { account_key: Some(key), .. }) => {
                    Credential::AccountKey { key: key.clone(), from: "AZURE_STORAGE_ACCOUNT_KEY" }
                }
                (None, AzureSettings { sas_token: Some(sas), .. }) => Credential::Sas(sas.clone()),
                (None, AzureSettings { client_id: Some(id), tenant_id: Some(tenant), client_secret: Some(secret), .. }) => {
                    Credential::ServicePrincipal { client_id: id.clone(), tenant_id: tenant.clone(), secret: secret.clone() }
                }
                (None, AzureSettings { client_id: Some(id), tenant_id: Some(tenant), federated_token_file: Some(file), .. }) => {
                    Credential::WorkloadIdentity { client_id: id.clone(), tenant_id: tenant.clone(), token_file: file.clone() }
                }
                (None, _) => Credential::ManagedIdentity { endpoint: settings.identity_endpoint.clone(), client_id: settings.client_id.clone() },
            },
        };
        if blob_endpoint.is_none() {
            blob_endpoint = parsed.as_ref().and_then(|p| p.blob_endpoint(account));
        }
        if let Some(endpoint) = &blob_endpoint {
            let url = url::Url::parse(endpoint).map_err(|e| StorageError::Config(format!("blob endpoint {endpoint:?}: {e}")))?;
            if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                return Err(StorageError::Config(format!("blob endpoint {endpoint:?} must be an http(s) URL")));
            }
        }
        let ca_pem = match &settings.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| StorageError::Config(format!("CA file {path}: {e}")))?),
            None => None,
        };
        Ok(Self { account: account.to_string(), blob_endpoint, credential, authority_host: settings.authority_host.clone(), ca_pem })
    }

    /// Which credential is in use and where requests go, without any secret.
    pub fn describe(&self) -> String {
        let endpoint = self.blob_endpoint.clone().unwrap_or_else(|| format!("https://{}.blob.core.windows.net", self.account));
        let credential = match &self.credential {
            Credential::AccountKey { from, .. } => format!("shared key (from {from})"),
            Credential::Sas(_) => "SAS token".to_string(),
            Credential::ServicePrincipal { client_id, tenant_id, .. } => format!("service principal {client_id} (tenant {tenant_id})"),
            Credential::WorkloadIdentity { client_id, tenant_id, token_file } => {
                format!("workload identity {client_id} (tenant {tenant_id}, token file {token_file})")
            }
            Credential::ManagedIdentity { endpoint, client_id } => {
                let via = match endpoint {
                    Some(endpoint) => format!("App Service endpoint {endpoint}"),
                    None => "instance metadata service (IMDS)".to_string(),
                };
                let which = client_id.as_ref().map_or("system-assigned".to_string(), |id| format!("user-assigned, client id {id}"));
                format!("managed identity via {via} ({which})")
            }
        };
        format!("account {} at {endpoint}, {credential}", self.account)
    }

    /// A client for one container of the account, paths relative to the container.
    pub fn container(&self, container: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let mut options = ClientOptions::new();
        if let Some(pem) = &self.ca_pem {
            let certificate = object_store::Certificate::from_pem(pem).map_err(|e| StorageError::Config(format!("CA file: {e}")))?;
            options = options.with_root_certificate(certificate);
        }
        let mut builder = MicrosoftAzureBuilder::new().with_account(&self.account).with_container_name(container).with_client_options(options);
        if let Some(endpoint) = &self.blob_endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string()).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(host) = &self.authority_host {
            builder = builder.with_authority_host(host);
        }
        builder = match &self.credential {
            Credential::AccountKey { key, .. } => builder.with_access_key(key),
            Credential::Sas(sas) => builder.with_config(AzureConfigKey::SasKey, sas.trim_start_matches('?')),
            Credential::ServicePrincipal { client_id, tenant_id, secret } => {
                builder.with_client_id(client_id).with_tenant_id(tenant_id).with_client_secret(secret)
            }
            Credential::WorkloadIdentity { client_id, tenant_id, token_file } => {
                builder.with_client_id(client_id).with_tenant_id(tenant_id).with_federated_token_file(token_file)
            }
            Credential::ManagedIdentity { endpoint, client_id } => {
                let builder = match endpoint {
                    Some(endpoint) => builder.with_msi_endpoint(endpoint),
                    None => builder,
                };
                match client_id {
                    Some(id) => builder.with_client_id(id),
                    None => builder,
                }
            }
        };
        let client = builder.build().map_err(|e| StorageError::store("connect", format!("{}/{container}", self.account), e))?;
        Ok(Arc::new(client))
    }
}

/// An Entra ID access token and when it stops being accepted.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// The Azure instance metadata service, where managed identity lives outside App Service and Functions.
const IMDS_TOKEN_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// A token of the managed identity (the platform endpoint when configured, IMDS otherwise; the user-assigned
/// identity `client_id` when set) for `resource`, e.g. `https://ossrdbms-aad.database.windows.net` for
/// Azure Database for PostgreSQL.
pub async fn managed_identity_token(settings: &AzureSettings, resource: &str) -> Result<AccessToken, StorageError> {
    #[derive(serde::Deserialize)]
    struct Reply {
        access_token: String,
        /// Seconds since the epoch; the App Service endpoint sends it as a string, IMDS as either.
        expires_on: serde_json::Value,
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| StorageError::Token { detail: format!("HTTP client: {e}"), retryable: false })?;
    let mut query = vec![("resource", resource.to_string())];
    if let Some(id) = &settings.client_id {
        query.push(("client_id", id.clone()));
    }
    let request = match &settings.identity_endpoint {
        Some(endpoint) => {
            query.push(("api-version", "2019-08-01".into()));
            let header = settings
                .identity_header
                .clone()
                .ok_or_else(|| StorageError::Token { detail: "IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not".into(), retryable: false })?;
            client.get(endpoint).header("X-IDENTITY-HEADER", header)
        }
        None => {
            query.push(("api-version", "2018-02-01".into()));
            client.get(IMDS_TOKEN_ENDPOINT).header("Metadata", "true")
        }
    };
    let failed =
        |detail: String, retryable: bool| StorageError::Token { detail: format!("managed identity token for {resource}: {detail}"), retryable };
    let response = request.query(&query).send().await.map_err(|e| failed(e.to_string(), true))?;
    let status = response.status();
    if !status.is_success() {
        // The platform refuses a wrong secret or identity for good; it is busy or down only for a while.
        return Err(failed(format!("the endpoint answered {status}"), status.is_server_error() || status.as_u16() == 429));
    }
    let reply: Reply = response.json().await.map_err(|e| failed(format!("unreadable reply: {e}"), false))?;
    let seconds = match &reply.expires_on {
        serde_json::Value::String(s) => s.parse::<i64>().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| failed(format!("expires_on {} is not a number of seconds", reply.expires_on), false))?;
    let expires_at = chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| failed(format!("expires_on {seconds} is out of range"), false))?;
    Ok(AccessToken { token: reply.access_token, expires_at })
}

/// An Azure Storage connection string (`AccountName=..;AccountKey=..;BlobEndpoint=..` or
/// `UseDevelopmentStorage=true`).
#[derive(Clone)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
    protocol: Option<String>,
    suffix: Option<String>,
}

impl ConnectionString {
    fn parse(text: &str) -> Result<Self, StorageError> {
        let mut parsed = Self { account: None, key: None, sas: None, blob_endpoint: None, protocol: None, suffix: None };
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            // Values (keys, SAS tokens) contain `=`: split at the first one only.
            let (name, value) =
                pair.split_once('=').ok_or_else(|| StorageError::Config("connection string: every part must be Name=value".into()))?;
            let value = Some(value.to_string());
            match name.to_ascii_lowercase().as_str() {
                "usedevelopmentstorage" if value.as_deref() == Some("true") => {
                    parsed.account = Some(EMULATOR_ACCOUNT.into());
                    parsed.key = Some(EMULATOR_ACCOUNT_KEY.into());
                    parsed.blob_endpoint = parsed.blob_endpoint.take().or_else(|| Some(EMULATOR_BLOB_ENDPOINT.into()));
                }
                "accountname" => parsed.account = value,
                "accountkey" => parsed.key = value,
                "sharedaccesssignature" => parsed.sas = value,
                "blobendpoint" => parsed.blob_endpoint = value,
                "defaultendpointsprotocol" => parsed.protocol = value,
                "endpointsuffix" => parsed.suffix = value,
                // Other services' endpoints (queue, table, file, dfs) do not concern blob access.
                _ => {}
            }
        }
        Ok(parsed)
    }

    fn credential(&self, account: &str) -> Result<Credential, StorageError> {
        if let Some(named) = &self.account {
            if named != account {
                return Err(StorageError::Config(format!("the connection string is for account {named}, the location names {account}")));
            }
        }
        match (&self.key, &self.sas) {
            (Some(key), _) => Ok(Credential::AccountKey { key: key.clone(), from: "AZURE_STORAGE_CONNECTION_STRING" }),
            (None, Some(sas)) => Ok(Credential::Sas(sas.clone())),
            (None, None) => Err(StorageError::Config("the connection string has neither AccountKey nor SharedAccessSignature".into())),
        }
    }

    fn blob_endpoint(&self, account: &str) -> Option<String> {
        self.blob_endpoint.clone().or_else(|| {
            let suffix = self.suffix.as_ref()?;
            Some(format!("{}://{account}.blob.{suffix}", self.protocol.as_deref().unwrap_or("https")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(settings: AzureSettings) -> Result<AzureAccount, StorageError> {
        AzureAccount::resolve("acct", &settings)
    }

    #[test]
    fn auto_picks_the_first_configured_credential() {
        let sp = AzureSettings {
            client_id: Some("cid".into()),
            tenant_id: Some("tid".into()),
            client_secret: Some("s3cret".into()),
            ..Default::default()
        };
        assert_eq!(resolve(sp.clone()).unwrap().describe(), "account acct at https://acct.blob.core.windows.net, service principal cid (tenant tid)");
        let with_key = AzureSettings { account_key: Some("a2V5".into()), ..sp.clone() };
        assert!(resolve(with_key).unwrap().describe().ends_with("shared key (from AZURE_STORAGE_ACCOUNT_KEY)"));
        let mi = AzureSettings { identity_endpoint: Some("http://127.0.0.1:8081/msi/token".into()), ..Default::default() };
        assert!(resolve(mi)
            .unwrap()
            .describe()
            .ends_with("managed identity via App Service endpoint http://127.0.0.1:8081/msi/token (system-assigned)"));
        let user_assigned = AzureSettings { client_id: Some("uami".into()), ..Default::default() };
        assert!(resolve(user_assigned).unwrap().describe().ends_with("via instance metadata service (IMDS) (user-assigned, client id uami)"));
        let wi = AzureSettings { client_secret: None, federated_token_file: Some("/var/run/token".into()), ..sp };
        assert!(resolve(wi).unwrap().describe().contains("workload identity cid"));
    }

    #[test]
    fn an_explicit_choice_names_what_is_missing() {
        let err = resolve(AzureSettings { auth: AzureAuth::ServicePrincipal, client_id: Some("cid".into()), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("AZURE_TENANT_ID"), "{err}");
        let err = resolve(AzureSettings { auth: AzureAuth::AccountKey, ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("AZURE_STORAGE_ACCOUNT_KEY"), "{err}");
        // Explicit managed identity ignores a key that is also configured.
        let mi = resolve(AzureSettings { auth: AzureAuth::ManagedIdentity, account_key: Some("a2V5".into()), ..Default::default() }).unwrap();
        assert!(mi.describe().contains("managed identity"));
    }

    #[test]
    fn connection_strings() {
        let dev = AzureAccount::resolve(
            EMULATOR_ACCOUNT,
            &AzureSettings { connection_string: Some("UseDevelopmentStorage=true".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(
            dev.describe(),
            "account devstoreaccount1 at http://127.0.0.1:10000/devstoreaccount1, shared key (from AZURE_STORAGE_CONNECTION_STRING)"
        );
        let text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5PT0=;EndpointSuffix=core.chinacloudapi.cn";
        let cn = resolve(AzureSettings { connection_string: Some(text.into()), ..Default::default() }).unwrap();
        assert!(cn.describe().starts_with("account acct at https://acct.blob.core.chinacloudapi.cn,"), "{}", cn.describe());
        let other = AzureAccount::resolve("other", &AzureSettings { connection_string: Some(text.into()), ..Default::default() });
        assert!(other.unwrap_err().to_string().contains("for account acct"));
        let sas =
            resolve(AzureSettings { connection_string: Some("AccountName=acct;SharedAccessSignature=sv=1&sig=x".into()), ..Default::default() });
        assert!(sas.unwrap().describe().ends_with("SAS token"));
        assert!(resolve(AzureSettings { connection_string: Some("AccountName=acct".into()), ..Default::default() }).is_err());
        assert!(resolve(AzureSettings { connection_string: Some("garbage".into()), ..Default::default() }).is_err());
    }

    #[test]
    fn secrets_never_reach_debug_or_describe() {
        let settings = AzureSettings {
            account_key: Some("S3CRETKEY".into()),
            client_secret: Some("S3CRETSP".into()),
            sas_token: Some("sig=S3CRETSAS".into()),
            connection_string: Some("AccountName=acct;AccountKey=S3CRETCS".into()),
            ..Default::default()
        };
        let debug = format!("{settings:?} {:?}", resolve(settings.clone()).unwrap());
        assert!(!debug.contains("S3CRET"), "{debug}");
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(resolve(AzureSettings { blob_endpoint: Some("ftp://x".into()), account_key: Some("a2V5".into()), ..Default::default() }).is_err());
        let azurite = resolve(AzureSettings {
            blob_endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
            account_key: Some("a2V5".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(azurite.container("lake").is_ok());
    }
}
