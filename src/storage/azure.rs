//! Azure Blob / ADLS Gen2 clients through `object_store`'s Azure support, with the credential picked from
//! configuration.
//!
//! Why `object_store` rather than OpenDAL (what iceberg-rust ships) or the Azure SDK's storage crate:
//! `object_store` 0.13 is already in the build through DataFusion, streams multipart uploads and ranges, and
//! reaches emulators and private endpoints. Keys, SAS tokens and connection strings are its own; every Entra
//! credential (service principal, workload identity, managed identity, `az login`) comes from the one
//! [`AzureIdentity`] of the process through `object_store`'s credential hook, so storage, the catalog and the
//! cache sign in the same way.
//!
//! The credential is chosen once, explicitly (`--azure-auth`) or from what is configured (`auto`), so
//! `doctor` can say which one is in use. Secrets never reach `Debug`, logs or errors.

use std::sync::{Arc, Mutex};

use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzureBuilder};
use object_store::{ClientOptions, CredentialProvider, ObjectStore};

use super::error::StorageError;
use crate::identity::{AzureIdentity, EntraAuth, IdentityError, IdentitySettings, STORAGE_SCOPE};

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
    /// The identity signed in with `az login` (a developer's machine).
    AzureCli,
}

impl AzureAuth {
    /// The Entra credential this choice means for tokens (the catalog's and the cache's too); key-based
    /// storage credentials leave the Entra one to be found from what is configured.
    pub fn entra(self) -> EntraAuth {
        match self {
            AzureAuth::ServicePrincipal => EntraAuth::ServicePrincipal,
            AzureAuth::WorkloadIdentity => EntraAuth::WorkloadIdentity,
            AzureAuth::ManagedIdentity => EntraAuth::ManagedIdentity,
            AzureAuth::AzureCli => EntraAuth::AzureCli,
            AzureAuth::Auto | AzureAuth::ConnectionString | AzureAuth::AccountKey | AzureAuth::Sas => EntraAuth::Auto,
        }
    }
}

/// Everything a deployment may set about Azure. Built by the CLI from flags and the usual Azure environment
/// variables (`AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_CLIENT_ID`, ...).
#[derive(Clone, Default)]
pub struct AzureSettings {
    pub auth: AzureAuth,
    pub connection_string: Option<String>,
    pub account_key: Option<String>,
    pub sas_token: Option<String>,
    /// The Entra identity: service principal, workload identity, user-assigned managed identity.
    pub identity: IdentitySettings,
    /// Blob endpoint of the account (`http://127.0.0.1:10000/devstoreaccount1` for Azurite, a private link,
    /// a sovereign cloud). Default: `https://<account>.blob.core.windows.net`.
    pub blob_endpoint: Option<String>,
    /// A PEM root certificate to trust besides the system's (a private endpoint's or an emulator's CA), for
    /// storage and token requests.
    pub ca_file: Option<String>,
    /// The Entra credential once built, shared by every clone of these settings so the process asks for each
    /// token once (rebuilt if the settings it was built from change).
    pub resolved: ResolvedIdentity,
}

impl std::fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<set>");
        f.debug_struct("AzureSettings")
            .field("auth", &self.auth)
            .field("connection_string", &set(&self.connection_string))
            .field("account_key", &set(&self.account_key))
            .field("sas_token", &set(&self.sas_token))
            .field("identity", &self.identity)
            .field("blob_endpoint", &self.blob_endpoint)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// See [`AzureSettings::resolved`].
#[derive(Clone, Default)]
pub struct ResolvedIdentity(Arc<Mutex<Option<(String, AzureIdentity)>>>);

impl AzureSettings {
    /// The process's Entra credential for these settings (built on first use, then shared).
    pub fn entra_identity(&self) -> Result<AzureIdentity, IdentityError> {
        let settings = IdentitySettings { ca_file: self.identity.ca_file.clone().or_else(|| self.ca_file.clone()), ..self.identity.clone() };
        let choice = self.auth.entra();
        // What the credential was built from; kept only in memory, as the settings themselves are.
        let fingerprint = format!(
            "{choice:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            settings.client_id, settings.tenant_id, settings.client_secret, settings.federated_token_file, settings.authority_host, settings.ca_file
        );
        let mut resolved = self.resolved.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*resolved {
            Some((built_from, identity)) if *built_from == fingerprint => Ok(identity.clone()),
            _ => {
                let identity = AzureIdentity::resolve(choice, &settings)?;
                *resolved = Some((fingerprint, identity.clone()));
                Ok(identity)
            }
        }
    }
}

impl AzureSettings {
    /// The Entra credential, if anything has built it yet (for `doctor` to say which one answered).
    pub fn built_identity(&self) -> Option<AzureIdentity> {
        self.resolved.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, identity)| identity.clone())
    }
}

/// The credential that was chosen, with what is needed to use it.
#[derive(Clone)]
enum Credential {
    AccountKey { key: String, from: &'static str },
    Sas(String),
    Entra(AzureIdentity),
}

/// An account's connection: endpoint, credential, TLS options. Builds a client per container.
#[derive(Clone)]
pub struct AzureAccount {
    account: String,
    blob_endpoint: Option<String>,
    credential: Credential,
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for AzureAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Storage requests signed with the process's Entra tokens.
#[derive(Debug)]
struct EntraStorageCredential(AzureIdentity);

#[async_trait::async_trait]
impl CredentialProvider for EntraStorageCredential {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        match self.0.token(STORAGE_SCOPE).await {
            Ok(token) => Ok(Arc::new(AzureCredential::BearerToken(token.token))),
            // A refused identity is refused again: say so, so the request is not retried.
            Err(e) if !e.is_retryable() => Err(object_store::Error::Unauthenticated { path: String::new(), source: Box::new(e) }),
            Err(e) => Err(object_store::Error::Generic { store: "MicrosoftAzure", source: Box::new(e) }),
        }
    }
}

impl AzureAccount {
    /// Resolves the settings for `account` (the account named by the location).
    pub fn resolve(account: &str, settings: &AzureSettings) -> Result<Self, StorageError> {
        let missing = |what: &str, var: &str| StorageError::Config(format!("--azure-auth {what} needs {var}"));
        let parsed = settings.connection_string.as_deref().map(ConnectionString::parse).transpose()?;
        let entra = || settings.entra_identity().map(Credential::Entra).map_err(StorageError::from);
        let credential = match settings.auth {
            AzureAuth::ConnectionString => {
                parsed.as_ref().ok_or_else(|| missing("connection-string", "AZURE_STORAGE_CONNECTION_STRING"))?.credential(account)?
            }
            AzureAuth::AccountKey => Credential::AccountKey {
                key: settings.account_key.clone().ok_or_else(|| missing("account-key", "AZURE_STORAGE_ACCOUNT_KEY"))?,
                from: "AZURE_STORAGE_ACCOUNT_KEY",
            },
            AzureAuth::Sas => Credential::Sas(settings.sas_token.clone().ok_or_else(|| missing("sas", "AZURE_STORAGE_SAS_TOKEN"))?),
            AzureAuth::ServicePrincipal | AzureAuth::WorkloadIdentity | AzureAuth::ManagedIdentity | AzureAuth::AzureCli => entra()?,
            AzureAuth::Auto => match (&parsed, settings) {
                (Some(parsed), _) => parsed.credential(account)?,
                (None, AzureSettings { account_key: Some(key), .. }) => {
                    Credential::AccountKey { key: key.clone(), from: "AZURE_STORAGE_ACCOUNT_KEY" }
                }
                (None, AzureSettings { sas_token: Some(sas), .. }) => Credential::Sas(sas.clone()),
                (None, _) => entra()?,
            },
        };
        let mut blob_endpoint = settings.blob_endpoint.clone();
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
        Ok(Self { account: account.to_string(), blob_endpoint, credential, ca_pem })
    }

    /// Which credential is in use and where requests go, without any secret.
    pub fn describe(&self) -> String {
        let endpoint = self.blob_endpoint.clone().unwrap_or_else(|| format!("https://{}.blob.core.windows.net", self.account));
        let credential = match &self.credential {
            Credential::AccountKey { from, .. } => format!("shared key (from {from})"),
            Credential::Sas(_) => "SAS token".to_string(),
            Credential::Entra(identity) => identity.describe(),
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
        builder = match &self.credential {
            Credential::AccountKey { key, .. } => builder.with_access_key(key),
            Credential::Sas(sas) => builder.with_config(AzureConfigKey::SasKey, sas.trim_start_matches('?')),
            Credential::Entra(identity) => builder.with_credentials(Arc::new(EntraStorageCredential(identity.clone()))),
        };
        let client = builder.build().map_err(|e| StorageError::store("connect", format!("{}/{container}", self.account), e))?;
        Ok(Arc::new(client))
    }
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
            identity: IdentitySettings {
                client_id: Some("cid".into()),
                tenant_id: Some("tid".into()),
                client_secret: Some("s3cret".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(resolve(sp.clone()).unwrap().describe(), "account acct at https://acct.blob.core.windows.net, service principal cid (tenant tid)");
        let with_key = AzureSettings { account_key: Some("a2V5".into()), ..sp.clone() };
        assert!(resolve(with_key).unwrap().describe().ends_with("shared key (from AZURE_STORAGE_ACCOUNT_KEY)"));
        let token_file = tempfile::NamedTempFile::new().unwrap();
        let wi = AzureSettings {
            identity: IdentitySettings {
                client_secret: None,
                federated_token_file: Some(token_file.path().display().to_string()),
                ..sp.identity.clone()
            },
            ..Default::default()
        };
        assert!(resolve(wi).unwrap().describe().contains("workload identity cid"));
        let mi = AzureSettings {
            auth: AzureAuth::ManagedIdentity,
            identity: IdentitySettings { client_id: Some("uami".into()), ..Default::default() },
            ..Default::default()
        };
        assert!(resolve(mi).unwrap().describe().ends_with("(user-assigned, client id uami)"));
    }

    #[test]
    fn an_explicit_choice_names_what_is_missing() {
        let sp = AzureSettings {
            auth: AzureAuth::ServicePrincipal,
            identity: IdentitySettings { client_id: Some("cid".into()), ..Default::default() },
            ..Default::default()
        };
        let err = resolve(sp).unwrap_err();
        assert!(err.to_string().contains("AZURE_TENANT_ID"), "{err}");
        let err = resolve(AzureSettings { auth: AzureAuth::AccountKey, ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("AZURE_STORAGE_ACCOUNT_KEY"), "{err}");
        // Explicit managed identity ignores a key that is also configured.
        let mi = resolve(AzureSettings { auth: AzureAuth::ManagedIdentity, account_key: Some("a2V5".into()), ..Default::default() }).unwrap();
        assert!(mi.describe().contains("managed identity"));
    }

    #[test]
    fn the_entra_credential_is_built_once_per_settings() {
        let settings = AzureSettings { auth: AzureAuth::AzureCli, ..Default::default() };
        let copy = settings.clone();
        let first = settings.entra_identity().unwrap();
        assert!(first.same_as(&copy.entra_identity().unwrap()), "clones share the credential");
        let mut changed = copy.clone();
        changed.auth = AzureAuth::ManagedIdentity;
        assert!(changed.entra_identity().unwrap().describe().contains("managed identity"), "changed settings build a new one");
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
            identity: IdentitySettings { client_secret: Some("S3CRETSP".into()), ..Default::default() },
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
