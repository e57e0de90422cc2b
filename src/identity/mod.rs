//! Who this process is to Microsoft Entra ID: one credential from Microsoft's `azure_identity` crate, chosen
//! once from configuration, that issues the access tokens every Azure dependency signs in with: blob storage
//! (through `object_store`'s credential hook), the PostgreSQL catalog and the Redis cache (tokens as
//! passwords).
//!
//! Owns: choosing the credential (service principal, workload identity, managed identity through the
//! Functions/App Service endpoint or the VM metadata service, a developer's `az login`), saying which one it
//! is and which one answered without printing a secret, caching tokens per scope, and the HTTP transport the
//! SDK sends through. Uses nothing else in the crate; storage, the catalog and the cache use it.

mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use chrono::{DateTime, Utc};

/// Scope of Azure Storage tokens.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
/// Scope of Azure Database for PostgreSQL (and MySQL) tokens.
pub const POSTGRES_SCOPE: &str = "https://ossrdbms-aad.database.windows.net/.default";
/// Scope of Azure Managed Redis and Azure Cache for Redis tokens.
pub const REDIS_SCOPE: &str = "https://redis.azure.com/.default";

/// A token is renewed this long before it expires (what the SDK's own caches use), so a connection is never
/// opened or re-authenticated with one that is about to lapse.
pub const RENEW_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// Which Entra credential to use; `Auto` decides from what is configured (see [`AzureIdentity::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntraAuth {
    #[default]
    Auto,
    ServicePrincipal,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

/// What a deployment may set about its Entra identity. The managed-identity endpoint (`IDENTITY_ENDPOINT`,
/// `IDENTITY_HEADER`) is not here: the platform sets it in the environment, where the SDK reads it.
#[derive(Clone, Default)]
pub struct IdentitySettings {
    /// Service principal or workload identity client id, or the user-assigned managed identity to use.
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    pub client_secret: Option<String>,
    pub federated_token_file: Option<String>,
    /// Another Entra authority (a sovereign cloud).
    pub authority_host: Option<String>,
    /// A PEM root certificate to trust for token requests besides the system's.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for IdentitySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySettings")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<set>"))
            .field("federated_token_file", &self.federated_token_file)
            .field("authority_host", &self.authority_host)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    /// The configuration names a credential it does not give what it needs: fixing it needs a person.
    #[error("identity configuration: {0}")]
    Config(String),
    #[error("{credential}: no token for {scope}: {detail}")]
    Token { credential: String, scope: String, detail: String, retryable: bool },
}

impl IdentityError {
    /// Outages and throttling of the token endpoint pass; refusals (a wrong secret, an identity not assigned
    /// to this resource, no `az login`) do not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IdentityError::Token { retryable: true, .. })
    }
}

/// An Entra access token, when it was obtained and when it stops being accepted.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub obtained_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

impl AccessToken {
    fn fresh(&self, now: DateTime<Utc>) -> bool {
        now < self.renew_at()
    }

    /// Whether it is still accepted for a little while: good enough to sign in with now, while its
    /// successor is fetched in the background.
    fn usable(&self, now: DateTime<Utc>) -> bool {
        now + chrono::Duration::seconds(30) < self.expires_at
    }

    /// When to fetch the next one: [`RENEW_MARGIN`] before this one expires, or, for a token that came with
    /// less time than that left (an endpoint handing out what it had cached), halfway through what it had
    /// left: never sooner, so renewal cannot spin.
    pub fn renew_at(&self) -> DateTime<Utc> {
        let margin = self.expires_at - RENEW_MARGIN;
        if margin > self.obtained_at {
            margin
        } else {
            self.obtained_at + (self.expires_at - self.obtained_at).max(chrono::Duration::seconds(2)) / 2
        }
    }

    /// The object id (`oid` claim) of the principal the token was issued to: the user name Azure Managed
    /// Redis expects beside the token. Read, not verified: the server verifies the token.
    pub fn object_id(&self) -> Option<String> {
        use base64::Engine;
        let payload = self.token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        claims.get("oid")?.as_str().map(str::to_string)
    }
}

/// One credential the SDK offers, with the sentence that names it.
struct Candidate {
    description: String,
    credential: Arc<dyn TokenCredential>,
}

struct Inner {
    candidates: Vec<Candidate>,
    /// Which candidate answered first; later requests go to it alone.
    answered: OnceLock<usize>,
    cache: Mutex<HashMap<String, AccessToken>>,
    /// When every candidate of a chain failed, and how: asked again only after [`CHAIN_RETRY`], so a laptop
    /// with no identity does not run the CLI and probe the metadata service on every request.
    failed: Mutex<Option<(std::time::Instant, IdentityError)>>,
}

/// How long a chain that found no credential is not asked again.
const CHAIN_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// The process's Entra credential: cheap to clone, tokens cached per scope and renewed [`RENEW_MARGIN`]
/// before they expire.
#[derive(Clone)]
pub struct AzureIdentity {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AzureIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AzureIdentity {
    /// Builds the credential. `Auto` takes, in order: a service principal (client id, tenant and secret), a
    /// workload identity (client id, tenant and federated token file), the platform's managed identity when
    /// the Functions/App Service endpoint is in the environment, and otherwise whichever of `az login` and
    /// the VM's managed identity answers first (a developer's laptop, or a VM).
    pub fn resolve(choice: EntraAuth, settings: &IdentitySettings) -> Result<Self, IdentityError> {
        let ca_pem = match &settings.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| IdentityError::Config(format!("CA file {path}: {e}")))?),
            None => None,
        };
        let transport = transport::ReqwestTransport::new(ca_pem.as_deref()).map_err(IdentityError::Config)?;
        let client_options = || {
            let mut options = ClientOptions { transport: Some(Transport::new(Arc::new(transport.clone()))), ..Default::default() };
            if let Some(host) = &settings.authority_host {
                let mut cloud = azure_core::cloud::CustomConfiguration::default();
                cloud.authority_host = host.clone();
                options.cloud = Some(Arc::new(cloud.into()));
            }
            options
        };
        let missing = |what: &str, var: &str| IdentityError::Config(format!("{what} needs {var}"));
        fn sdk(what: &'static str) -> impl Fn(azure_core::Error) -> IdentityError {
            move |e| IdentityError::Config(format!("{what}: {e}"))
        }
        let service_principal = || -> Result<Candidate, IdentityError> {
            let client_id = settings.client_id.clone().ok_or_else(|| missing("a service principal", "AZURE_CLIENT_ID"))?;
            let tenant_id = settings.tenant_id.clone().ok_or_else(|| missing("a service principal", "AZURE_TENANT_ID"))?;
            let secret = settings.client_secret.clone().ok_or_else(|| missing("a service principal", "AZURE_CLIENT_SECRET"))?;
            let options = azure_identity::ClientSecretCredentialOptions { client_options: client_options() };
            let credential = azure_identity::ClientSecretCredential::new(&tenant_id, client_id.clone(), secret.into(), Some(options))
                .map_err(sdk("service principal"))?;
            Ok(Candidate { description: format!("service principal {client_id} (tenant {tenant_id})"), credential })
        };
        let workload_identity = || -> Result<Candidate, IdentityError> {
            let client_id = settings.client_id.clone().ok_or_else(|| missing("a workload identity", "AZURE_CLIENT_ID"))?;
            let tenant_id = settings.tenant_id.clone().ok_or_else(|| missing("a workload identity", "AZURE_TENANT_ID"))?;
            let file = settings.federated_token_file.clone().ok_or_else(|| missing("a workload identity", "AZURE_FEDERATED_TOKEN_FILE"))?;
            let options = azure_identity::WorkloadIdentityCredentialOptions {
                credential_options: azure_identity::ClientAssertionCredentialOptions { client_options: client_options() },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(file.clone().into()),
            };
            let credential = azure_identity::WorkloadIdentityCredential::new(Some(options)).map_err(sdk("workload identity"))?;
            Ok(Candidate { description: format!("workload identity {client_id} (tenant {tenant_id}, token file {file})"), credential })
        };
        let managed_identity = || -> Result<Candidate, IdentityError> {
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: settings.client_id.clone().map(azure_identity::UserAssignedId::ClientId),
                client_options: client_options(),
            };
            let credential = azure_identity::ManagedIdentityCredential::new(Some(options)).map_err(sdk("managed identity"))?;
            let via = match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
                (Some(endpoint), Some(_)) => format!("App Service endpoint {endpoint}"),
                _ => "instance metadata service (IMDS)".to_string(),
            };
            let which = settings.client_id.as_ref().map_or("system-assigned".to_string(), |id| format!("user-assigned, client id {id}"));
            Ok(Candidate { description: format!("managed identity via {via} ({which})"), credential })
        };
        let azure_cli = || -> Result<Candidate, IdentityError> {
            let options = azure_identity::AzureCliCredentialOptions { tenant_id: settings.tenant_id.clone(), ..Default::default() };
            let credential = azure_identity::AzureCliCredential::new(Some(options)).map_err(sdk("Azure CLI"))?;
            Ok(Candidate { description: "Azure CLI sign-in (`az login`)".to_string(), credential })
        };
        let candidates = match choice {
            EntraAuth::ServicePrincipal => vec![service_principal()?],
            EntraAuth::WorkloadIdentity => vec![workload_identity()?],
            EntraAuth::ManagedIdentity => vec![managed_identity()?],
            EntraAuth::AzureCli => vec![azure_cli()?],
            EntraAuth::Auto => match settings {
                IdentitySettings { client_id: Some(_), tenant_id: Some(_), client_secret: Some(_), .. } => vec![service_principal()?],
                IdentitySettings { client_id: Some(_), tenant_id: Some(_), federated_token_file: Some(_), .. } => vec![workload_identity()?],
                _ if env("IDENTITY_ENDPOINT").is_some() => vec![managed_identity()?],
                // The CLI fails at once when nobody is signed in; the metadata service is retried for up to a
                // minute when it is absent, so it goes second.
                _ => vec![azure_cli()?, managed_identity()?],
            },
        };
        Ok(Self { inner: Arc::new(Inner { candidates, answered: OnceLock::new(), cache: Mutex::new(HashMap::new()), failed: Mutex::new(None) }) })
    }

    /// Which credential this is (or, before one answered, which are tried), without any secret.
    pub fn describe(&self) -> String {
        match (self.inner.answered.get(), self.inner.candidates.as_slice()) {
            (Some(&i), candidates) => candidates[i].description.clone(),
            (None, [only]) => only.description.clone(),
            (None, candidates) => {
                format!("the first to answer of: {}", candidates.iter().map(|c| c.description.as_str()).collect::<Vec<_>>().join(", "))
            }
        }
    }

    /// The credential that has answered, if any has yet.
    pub fn answered(&self) -> Option<String> {
        self.inner.answered.get().map(|&i| self.inner.candidates[i].description.clone())
    }

    /// A token for `scope` (e.g. [`STORAGE_SCOPE`]), from the cache until it is due for renewal
    /// ([`AccessToken::renew_at`]).
    pub async fn token(&self, scope: &str) -> Result<AccessToken, IdentityError> {
        if let Some(token) = self.cached(scope, AccessToken::fresh) {
            return Ok(token);
        }
        self.fetch(scope).await
    }

    /// A token to sign in with right now: the cached one while it is still accepted for a little while,
    /// even if its renewal is due (a connection attempt has a deadline of its own and must not wait for a
    /// token endpoint), else a new one.
    pub async fn token_for_sign_in(&self, scope: &str) -> Result<AccessToken, IdentityError> {
        if let Some(token) = self.cached(scope, AccessToken::usable) {
            return Ok(token);
        }
        self.fetch(scope).await
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, IdentityError> {
        let chain = self.inner.answered.get().is_none() && self.inner.candidates.len() > 1;
        if chain {
            if let Some((at, error)) = self.inner.failed.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                if at.elapsed() < CHAIN_RETRY {
                    return Err(error.clone());
                }
            }
        }
        let order: Vec<usize> = match self.inner.answered.get() {
            Some(&i) => vec![i],
            None => (0..self.inner.candidates.len()).collect(),
        };
        let mut failures = Vec::new();
        for i in order {
            let candidate = &self.inner.candidates[i];
            match candidate.credential.get_token(&[scope], None).await {
                Ok(token) => {
                    let expires_at = DateTime::from_timestamp(token.expires_on.unix_timestamp(), 0).unwrap_or_else(Utc::now);
                    let token = AccessToken { token: token.token.secret().to_string(), expires_at, obtained_at: Utc::now() };
                    let _ = self.inner.answered.set(i);
                    self.inner.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(scope.to_string(), token.clone());
                    return Ok(token);
                }
                Err(e) => failures.push((candidate.description.clone(), e.to_string(), sdk_error_is_retryable(&e))),
            }
        }
        // Worth retrying only if every candidate failed for a passing reason: a chain in which the CLI has no
        // sign-in and the metadata service is absent has no credential, however often it is asked.
        let retryable = failures.iter().all(|(_, _, retryable)| *retryable);
        let credential = failures.iter().map(|(c, _, _)| c.as_str()).collect::<Vec<_>>().join(", then ");
        let detail = failures.into_iter().map(|(_, e, _)| e).collect::<Vec<_>>().join("; ");
        let error = IdentityError::Token { credential, scope: scope.to_string(), detail, retryable };
        if chain {
            *self.inner.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((std::time::Instant::now(), error.clone()));
        }
        Err(error)
    }

    /// Whether two handles are the same credential (and share its token cache).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    fn cached(&self, scope: &str, good: fn(&AccessToken, DateTime<Utc>) -> bool) -> Option<AccessToken> {
        let cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(scope).filter(|token| good(token, Utc::now())).cloned()
    }
}

/// A token endpoint that failed, throttled or could not be reached may answer later; one that refused the
/// request will refuse it again.
fn sdk_error_is_retryable(error: &azure_core::Error) -> bool {
    use azure_core::error::ErrorKind;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(sdk) = e.downcast_ref::<azure_core::Error>() {
            match sdk.kind() {
                ErrorKind::HttpResponse { status, .. } => {
                    let code = u16::from(*status);
                    return code >= 500 || code == 429 || code == 408;
                }
                ErrorKind::Connection | ErrorKind::Io => return true,
                _ => {}
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(claims: serde_json::Value) -> AccessToken {
        use base64::Engine;
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        AccessToken {
            token: format!("{}.{}.sig", b64(serde_json::json!({"alg": "RS256"})), b64(claims)),
            expires_at: Utc::now(),
            obtained_at: Utc::now(),
        }
    }

    #[test]
    fn the_object_id_is_read_from_the_token() {
        assert_eq!(token_with(serde_json::json!({"oid": "abc-1"})).object_id().as_deref(), Some("abc-1"));
        assert_eq!(token_with(serde_json::json!({"sub": "x"})).object_id(), None);
        assert_eq!(AccessToken { token: "not-a-jwt".into(), expires_at: Utc::now(), obtained_at: Utc::now() }.object_id(), None);
    }

    #[test]
    fn a_token_is_renewed_before_it_expires_and_never_in_a_spin() {
        let now = Utc::now();
        let token = |seconds: i64| AccessToken { token: String::new(), expires_at: now + chrono::Duration::seconds(seconds), obtained_at: now };
        assert!(token(3600).fresh(now));
        assert_eq!(token(3600).renew_at(), now + chrono::Duration::seconds(3300), "five minutes before it expires");
        assert_eq!(token(302).renew_at(), now + chrono::Duration::seconds(2));
        // Handed out with less than the margin left: renewed halfway, not at once and again and again.
        assert_eq!(token(240).renew_at(), now + chrono::Duration::seconds(120));
        assert!(token(240).fresh(now) && !token(240).fresh(now + chrono::Duration::seconds(121)));
        assert!(token(0).renew_at() > now, "even an expired one is not asked for again in the same instant");
        assert!(token(240).usable(now) && !token(20).usable(now));
    }

    #[test]
    fn an_explicit_choice_names_what_is_missing() {
        let settings = IdentitySettings { client_id: Some("cid".into()), ..Default::default() };
        let error = AzureIdentity::resolve(EntraAuth::ServicePrincipal, &settings).unwrap_err();
        assert!(error.to_string().contains("AZURE_TENANT_ID"), "{error}");
        let error = AzureIdentity::resolve(EntraAuth::WorkloadIdentity, &IdentitySettings::default()).unwrap_err();
        assert!(error.to_string().contains("AZURE_CLIENT_ID"), "{error}");
    }

    #[test]
    fn auto_picks_from_what_is_configured_and_never_prints_a_secret() {
        let sp = IdentitySettings {
            client_id: Some("cid".into()),
            tenant_id: Some("00000000-0000-0000-0000-000000000001".into()),
            client_secret: Some("S3CRET".into()),
            ..Default::default()
        };
        let identity = AzureIdentity::resolve(EntraAuth::Auto, &sp).unwrap();
        assert_eq!(identity.describe(), "service principal cid (tenant 00000000-0000-0000-0000-000000000001)");
        assert!(!format!("{identity:?} {sp:?}").contains("S3CRET"));
        let token_file = tempfile::NamedTempFile::new().unwrap();
        let wi = IdentitySettings { client_secret: None, federated_token_file: Some(token_file.path().display().to_string()), ..sp };
        assert!(AzureIdentity::resolve(EntraAuth::Auto, &wi).unwrap().describe().starts_with("workload identity cid"));
        let cli = AzureIdentity::resolve(EntraAuth::AzureCli, &IdentitySettings::default()).unwrap();
        assert_eq!(cli.describe(), "Azure CLI sign-in (`az login`)");
        assert_eq!(cli.answered(), None);
    }
}
