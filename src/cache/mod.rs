//! The answer cache behind a narrow trait, and its Redis implementation.
//!
//! The cache is an accelerator, never a dependency: every operation is bounded by a timeout, and after a
//! failure the cache is skipped for a short while (the query service then answers from the engine, counted as
//! `bypass`) instead of making every request wait for a dead server.

mod query_cache;
mod redis_cache;

pub use self::query_cache::{CacheError, QueryCache};
pub use self::redis_cache::{RedisCache, RedisCacheConfig, RedisSignIn};
