//! The API's one error format: `{"error": {"code", "message", "parameter"?}}` with a matching status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::query::params::ParamError;
use crate::query::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A parameter is missing, malformed, out of range or unknown (400).
    InvalidParameter,
    /// No such endpoint (404).
    NotFound,
    /// Too many requests from this client (429); see `Retry-After`.
    RateLimited,
    /// The catalog or storage is unreachable, or the engine is at its concurrency limit (503, then with
    /// `Retry-After`); retry later.
    EngineUnavailable,
    /// The query did not finish within the request timeout (504).
    Timeout,
    /// The query failed (500).
    QueryFailed,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameter => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::EngineUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::QueryFailed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The offending query parameter, for `invalid_parameter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    body: ErrorBody,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { body: ErrorBody { code, message: message.into(), parameter: None }, retry_after_secs: None }
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(ErrorCode::RateLimited, "too many requests; retry after the indicated delay")
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.body.code
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        Self { body: ErrorBody { code: ErrorCode::InvalidParameter, message: e.to_string(), parameter: Some(e.parameter) }, retry_after_secs: None }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Unavailable(m) | QueryError::Moved(m) => ApiError::new(ErrorCode::EngineUnavailable, m),
            QueryError::Failed(m) => ApiError::new(ErrorCode::QueryFailed, m),
            QueryError::UnknownSnapshot(m) => ApiError::new(ErrorCode::NotFound, m),
            overloaded @ QueryError::Overloaded { .. } => {
                ApiError { retry_after_secs: Some(1), ..ApiError::new(ErrorCode::EngineUnavailable, overloaded.to_string()) }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.body.code.status();
        if status.is_server_error() {
            tracing::error!(code = ?self.body.code, message = %self.body.message, "API request failed.");
        }
        let mut response = (status, Json(ErrorEnvelope { error: self.body })).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overloaded_engine_is_a_503_with_retry_after() {
        let response = ApiError::from(QueryError::Overloaded { limit: 4 }).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let unreachable = ApiError::from(QueryError::Unavailable("catalog down".into())).into_response();
        assert_eq!(unreachable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(unreachable.headers().get(header::RETRY_AFTER).is_none());
    }
}
