//! Invocation results -> host replies. The only place that decides status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use super::payload::InvokeResponse;
use crate::lake::LakeError;

/// Why an invocation failed as a whole. Only failures that may pass are answered this way (non-2xx makes
/// the host retry); input that can never be processed is quarantined and acknowledged instead.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The request body broke off while it was being read.
    #[error("the invocation body could not be read: {0}")]
    Body(String),
    #[error("lake unavailable: {0}")]
    Lake(#[from] LakeError),
    /// A legacy file could not be migrated for now (storage or catalog unavailable).
    #[error("migration unavailable: {0}")]
    Migrate(#[from] crate::migrate::MigrateError),
    #[error("maintenance failed: {0}")]
    Maintain(crate::maintain::MaintainError),
    #[error("replication failed: {0}")]
    Replicate(crate::replica::ReplicaError),
    /// Someone else is doing this work right now; the trigger's own redelivery brings it back later.
    #[error("busy: {0}")]
    Busy(String),
}

impl IntoResponse for InvocationError {
    fn into_response(self) -> Response {
        // The host discards the body's Logs on non-2xx: stderr (via tracing) is the only trace that survives.
        tracing::error!(error = %self, "Invocation failed; the host will retry it.");
        let cause = match &self {
            InvocationError::Body(_) => "body",
            InvocationError::Lake(_) => "lake",
            InvocationError::Migrate(_) => "migrate",
            InvocationError::Maintain(_) => "maintain",
            InvocationError::Replicate(_) => "replicate",
            InvocationError::Busy(_) => "busy",
        };
        crate::observability::InvocationFailed { cause }.emit();
        let body = InvokeResponse { logs: vec![self.to_string()], ..InvokeResponse::default() };
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    }
}

/// A successful invocation: `ReturnValue` carries the report, `Logs` a one-line summary.
pub fn success(summary: String, report: impl serde::Serialize) -> Json<InvokeResponse> {
    Json(InvokeResponse { outputs: Map::new(), logs: vec![summary], return_value: Some(serde_json::to_value(report).unwrap_or(Value::Null)) })
}
