//! One map from every error a handler meets to an HTTP status and a JSON body
//! `{"error": "..."}`: missing things are 404, bad input 400 (or 422), anything else
//! 500 with the cause logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::project::BadInput;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but refused (a reload whose files have errors).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("HTTP API: {self}");
        }
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

impl From<BadInput> for ApiError {
    fn from(e: BadInput) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::Ambiguous(_) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<BadInput>() {
            Ok(b) => b.into(),
            Err(e) => match e.downcast::<StoreError>() {
                Ok(s) => s.into(),
                Err(e) => ApiError::Internal(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        let not_found: ApiError = StoreError::NotFound("x".into()).into();
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        let db: ApiError = StoreError::Sql(sqlx::Error::PoolTimedOut).into();
        assert_eq!(db.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bad: ApiError = anyhow::Error::from(BadInput("no".into())).into();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let wrapped: ApiError = anyhow::Error::from(StoreError::NotFound("y".into())).into();
        assert_eq!(wrapped.status(), StatusCode::NOT_FOUND);
    }
}
