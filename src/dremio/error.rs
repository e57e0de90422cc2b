//! What went wrong talking to Dremio, and whether trying again can help.

use std::time::Duration;

/// What went wrong talking to Dremio.
#[derive(Debug, thiserror::Error)]
pub enum DremioError {
    #[error("Dremio settings: {0}")]
    Config(String),
    /// Dremio could not be reached or timed out (after the client's own retries).
    #[error("Dremio unavailable: {0}")]
    Unavailable(String),
    /// Too many consecutive failures: calls fail at once until the cool-down ends.
    #[error("Dremio is failing; calls are paused for {retry_in:?} (circuit open after {failures} consecutive failures)")]
    CircuitOpen { retry_in: Duration, failures: u32 },
    #[error("Dremio refused the credentials: {0}")]
    Unauthenticated(String),
    /// Another commit landed while a MERGE or OPTIMIZE ran ("Concurrent operation has updated the table").
    #[error("a concurrent commit changed the table: {0}")]
    Conflict(String),
    /// Dremio rejected or failed the statement.
    #[error("Dremio failed the statement: {0}")]
    Statement(String),
    #[error("Dremio's result exceeds the {limit} bytes one statement may return")]
    ResultTooLarge { limit: usize },
    #[error("Dremio's answer could not be decoded: {0}")]
    Decode(String),
}

impl DremioError {
    /// Worth trying again later (the same statement may succeed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DremioError::Unavailable(_) | DremioError::CircuitOpen { .. } | DremioError::Conflict(_))
    }
}
