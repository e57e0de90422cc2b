//! Invocation results -> host replies. The only place that decides status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use super::payload::{InvokeResponse, PayloadError};
use crate::lake::LakeError;

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("unreadable invocation payload: {0}")]
    Payload(#[from] PayloadError),
    #[error("lake unavailable: {0}")]
    Lake(#[from] LakeError),
}

impl IntoResponse for InvocationError {
    fn into_response(self) -> Response {
        // The host discards the body's Logs on non-2xx: stderr (via tracing) is the only trace that survives.
        tracing::error!(error = %self, "Invocation failed; the host will retry it.");
        let body = InvokeResponse { logs: vec![self.to_string()], ..InvokeResponse::default() };
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    }
}

/// A successful invocation: `ReturnValue` carries the report, `Logs` a one-line summary.
pub fn success(summary: String, report: impl serde::Serialize) -> Json<InvokeResponse> {
    Json(InvokeResponse {
        outputs: Map::new(),
        logs: vec![summary],
        return_value: Some(serde_json::to_value(report).unwrap_or(Value::Null)),
    })
}
