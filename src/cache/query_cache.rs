//! What the query service asks of a cache, and how a cache fails.

use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache operation timed out after {0:?}")]
    Timeout(Duration),
    /// A recent failure: the cache is not being tried until it may have recovered.
    #[error("cache skipped after a recent failure")]
    Skipped,
}

#[async_trait]
pub trait QueryCache: Send + Sync {
    /// For logs and health output (`redis`).
    fn name(&self) -> &'static str;
    /// Where it is and how it signs in, without secrets (for `doctor`).
    fn describe(&self) -> String {
        self.name().to_string()
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;
    /// A round trip, for health checks and `doctor`.
    async fn ping(&self) -> Result<Duration, CacheError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_stay_object_safe() {
        fn _takes(_: &dyn QueryCache) {}
    }
}
