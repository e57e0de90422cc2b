//! Redis (Azure Managed Redis, Azure Cache for Redis, or any other) through redis-rs's async
//! [`ConnectionManager`], which reconnects by itself. `rediss://` URLs use TLS (Azure Managed Redis's port
//! 10000, Azure Cache for Redis's 6380), verified against the webpki roots or, for a private CA, the PEM file
//! given as `ca_cert`.
//!
//! Signing in: the URL's password (any Redis), or an Entra access token of the process's identity
//! ([`RedisSignIn::Entra`]) with the principal's object id as user name, which is what Azure's Redis
//! products accept once access keys are off. A token lasts about an hour; redis-rs sends the next one as
//! `AUTH` on every open connection before the current one expires, and new connections sign in with the
//! current one.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::Stream;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::auth::{BasicAuth, StreamingCredentialsProvider};
use redis::AsyncCommands;

use super::query_cache::{CacheError, QueryCache};
use crate::identity::{AzureIdentity, REDIS_SCOPE};

/// How the cache signs in.
#[derive(Clone, Debug, Default)]
pub enum RedisSignIn {
    /// Whatever the URL carries (a password, or nothing).
    #[default]
    Url,
    /// An Entra token as the password, renewed before it expires; the user name is the URL's, or else the
    /// token's object id.
    Entra(AzureIdentity),
}

#[derive(Clone)]
pub struct RedisCacheConfig {
    /// `redis://host:port/db` or `rediss://:password@host:6380` (may hold a password: never logged).
    pub url: String,
    /// Longest wait for one GET or SET before answering from the engine instead.
    pub op_timeout: Duration,
    /// How long the cache is skipped after a failure.
    pub retry_after: Duration,
    /// PEM root certificate(s) to verify a `rediss://` server with, instead of the public roots.
    pub ca_cert: Option<PathBuf>,
    pub sign_in: RedisSignIn,
}

impl std::fmt::Debug for RedisCacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCacheConfig")
            .field("url", &redacted(&self.url))
            .field("op_timeout", &self.op_timeout)
            .field("retry_after", &self.retry_after)
            .field("ca_cert", &self.ca_cert)
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

/// The URL without its credentials.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable redis url>".to_string(),
    }
}

impl RedisCacheConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            op_timeout: Duration::from_millis(250),
            retry_after: Duration::from_secs(5),
            ca_cert: None,
            sign_in: RedisSignIn::Url,
        }
    }
}

pub struct RedisCache {
    manager: ConnectionManager,
    config: RedisCacheConfig,
    skip_until: Mutex<Option<Instant>>,
}

impl RedisCache {
    /// Validates the URL; connects lazily, so a Redis that is down at start-up does not stop the service.
    pub fn new(config: RedisCacheConfig) -> Result<Self, CacheError> {
        let invalid = |e: redis::RedisError| CacheError::Unavailable(format!("{}: {e}", redacted(&config.url)));
        let client = match &config.ca_cert {
            None => redis::Client::open(config.url.as_str()).map_err(invalid)?,
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|e| CacheError::Unavailable(format!("CA certificate {}: {e}", path.display())))?;
                redis::Client::build_with_tls(config.url.as_str(), redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) })
                    .map_err(invalid)?
            }
        };
        let mut manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.op_timeout))
            .set_response_timeout(Some(config.op_timeout))
            .set_number_of_retries(1);
        if let RedisSignIn::Entra(identity) = &config.sign_in {
            let url = url::Url::parse(&config.url).map_err(|e| CacheError::Unavailable(format!("{}: {e}", redacted(&config.url))))?;
            let loopback = url.host_str().is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
            if url.scheme() != "rediss" && !loopback {
                return Err(CacheError::Unavailable(format!(
                    "{}: an Entra token is a credential and is sent only over TLS: use rediss://",
                    redacted(&config.url)
                )));
            }
            let user = Some(url.username().to_string()).filter(|u| !u.is_empty());
            manager_config = manager_config.set_credentials_provider(EntraCredentials { identity: identity.clone(), user });
            // Fetched now, so the first connection finds it cached and signs in within its short deadline.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let identity = identity.clone();
                runtime.spawn(async move {
                    if let Err(e) = identity.token(REDIS_SCOPE).await {
                        tracing::warn!(error = %e, "No Entra token for Redis yet; the cache is bypassed until one comes.");
                    }
                });
            }
        }
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|e| CacheError::Unavailable(e.to_string()))?;
        Ok(Self { manager, config, skip_until: Mutex::new(None) })
    }

    fn check_breaker(&self) -> Result<(), CacheError> {
        let mut skip = self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
        match *skip {
            Some(until) if Instant::now() < until => Err(CacheError::Skipped),
            Some(_) => {
                *skip = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn trip(&self) {
        *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + self.config.retry_after);
    }

    /// Runs one command with the breaker and the timeout around it.
    async fn guarded<T>(&self, op: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, CacheError> {
        self.check_breaker()?;
        let result = match tokio::time::timeout(self.config.op_timeout, op).await {
            Ok(Ok(value)) => return Ok(value),
            // The connection manager's own response timeout usually fires first; it is still a timeout.
            Ok(Err(e)) if e.is_timeout() => CacheError::Timeout(self.config.op_timeout),
            Ok(Err(e)) => CacheError::Unavailable(e.to_string()),
            Err(_) => CacheError::Timeout(self.config.op_timeout),
        };
        self.trip();
        Err(result)
    }
}

/// Entra tokens for Redis: the current one at once (a new connection), then each next one when the
/// current one is [`crate::identity::RENEW_MARGIN`] from expiring (re-sent as `AUTH` on open connections).
struct EntraCredentials {
    identity: AzureIdentity,
    user: Option<String>,
}

/// How long to wait before asking again after the token endpoint failed.
const TOKEN_RETRY: Duration = Duration::from_secs(15);

impl StreamingCredentialsProvider for EntraCredentials {
    fn subscribe(&self) -> std::pin::Pin<Box<dyn Stream<Item = redis::RedisResult<BasicAuth>> + Send + 'static>> {
        let state = (self.identity.clone(), self.user.clone(), None::<std::time::Duration>);
        Box::pin(futures::stream::unfold(state, |(identity, user, wait)| async move {
            // The first item signs a connection in, within the connection's deadline: the current token if it
            // is still accepted, not a wait for the token endpoint. The next ones are the renewals.
            let token = match wait {
                None => identity.token_for_sign_in(REDIS_SCOPE).await,
                Some(wait) => {
                    tokio::time::sleep(wait).await;
                    identity.token(REDIS_SCOPE).await
                }
            };
            match token {
                Ok(token) => {
                    let next = (token.renew_at() - chrono::Utc::now()).to_std().unwrap_or_default().max(Duration::from_secs(1));
                    let name = user.clone().or_else(|| token.object_id());
                    let item = match name {
                        Some(name) => Ok(BasicAuth::new(name, token.token)),
                        None => Err(redis::RedisError::from((
                            redis::ErrorKind::AuthenticationFailed,
                            "the Entra token names no object id (oid) to sign in to Redis as; put the user name in the Redis URL",
                        ))),
                    };
                    Some((item, (identity, user, Some(next))))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "No Entra token for Redis; the cache is bypassed until one comes.");
                    let item = Err(redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "no Entra token for Redis", e.to_string())));
                    Some((item, (identity, user, Some(TOKEN_RETRY))))
                }
            }
        }))
    }
}

#[async_trait]
impl QueryCache for RedisCache {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        let sign_in = match &self.config.sign_in {
            RedisSignIn::Url if url::Url::parse(&self.config.url).is_ok_and(|u| u.password().is_some()) => "the URL's password".to_string(),
            RedisSignIn::Url => "no password".to_string(),
            RedisSignIn::Entra(identity) => format!("Entra tokens of {}", identity.describe()),
        };
        format!("redis at {}, signed in with {sign_in}", redacted(&self.config.url))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut conn = self.manager.clone();
        self.guarded(async move { conn.get::<_, Option<Vec<u8>>>(key).await }).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let mut conn = self.manager.clone();
        let seconds = ttl.as_secs().max(1);
        self.guarded(async move { conn.set_ex::<_, _, ()>(key, value, seconds).await }).await
    }

    async fn ping(&self) -> Result<Duration, CacheError> {
        let mut conn = self.manager.clone();
        let started = Instant::now();
        self.guarded(async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await?;
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redacted("rediss://:s3cret@example.redis.cache.windows.net:6380"), "rediss://:***@example.redis.cache.windows.net:6380");
        assert_eq!(redacted("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert!(!format!("{:?}", RedisCacheConfig::new("redis://user:pw@h:1")).contains("pw"));
    }

    #[tokio::test]
    async fn a_dead_server_trips_the_breaker_and_later_tries_again() {
        // Port 1 on loopback refuses connections.
        let mut config = RedisCacheConfig::new("redis://127.0.0.1:1");
        config.retry_after = Duration::from_millis(100);
        let cache = RedisCache::new(config).unwrap();
        assert!(matches!(cache.get("k").await, Err(CacheError::Unavailable(_) | CacheError::Timeout(_))));
        assert!(matches!(cache.get("k").await, Err(CacheError::Skipped)));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(cache.get("k").await, Err(CacheError::Unavailable(_) | CacheError::Timeout(_))));
    }
}
