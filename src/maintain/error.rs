//! How maintenance fails, and whether the next run can succeed where this one did not.

use crate::lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("maintenance through Dremio: {0}")]
    Dremio(#[from] crate::dremio::DremioError),
    /// Something does not add up (rows read vs listed, paths vs listing): nothing is changed.
    #[error("maintenance stopped to keep the table safe: {0}")]
    Unsafe(String),
}

impl MaintainError {
    pub fn is_retryable(&self) -> bool {
        match self {
            MaintainError::Lake(e) => e.is_retryable(),
            MaintainError::Dremio(e) => e.is_retryable(),
            MaintainError::Unsafe(_) => false,
        }
    }
}
