//! One map from every error a handler meets to an HTTP status and one JSON shape:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` (`field` when one input
//! is at fault). Missing things are 404, bad input 400 (or 422), no credentials 401, not
//! allowed 403, too many failed logins 429 with `Retry-After`; anything else 500 with the
//! cause logged.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::actions::ActionError;
use crate::auth::AuthError;
use crate::project::BadInput;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// One input is wrong: named in `field`.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    /// Several inputs are wrong (a run's options): (field, message) each.
    #[error("{}", .0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; "))]
    Fields(Vec<(String, String)>),
    /// Well-formed but refused (a reload whose files have errors).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed logins: wait {0} s before the next try")]
    Wait(u64),
    /// A request body over the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A service ordo needs did not answer (the mail relay for a login code).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::Field { .. } | ApiError::Fields(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Wait(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Field { .. } | ApiError::Fields(_) => "invalid_field",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::Wait(_) => "too_many_tries",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Field {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("HTTP API: {self}");
        }
        let (message, field) = match &self {
            ApiError::Field { field, message } => (message.clone(), Some(field.clone())),
            ApiError::Fields(f) => (self.to_string(), f.first().map(|(n, _)| n.clone())),
            // The cause of a 500 is in the log, not for the caller.
            ApiError::Internal(_) => ("internal error: see the controller's log".into(), None),
            other => (other.to_string(), None),
        };
        let mut error = json!({"code": self.code(), "message": message});
        if let Some(f) = field {
            error["field"] = f.into();
        }
        if let ApiError::Fields(f) = &self {
            error["errors"] = f
                .iter()
                .map(|(field, message)| json!({"field": field, "message": message}))
                .collect();
        }
        let mut r = (status, Json(json!({ "error": error }))).into_response();
        match self {
            ApiError::Wait(s) => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            ApiError::Unauthenticated(_) => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ordo\""),
                );
            }
            _ => {}
        }
        r
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
            StoreError::NotFound(_) | StoreError::Missing(_) => ApiError::NotFound(e.to_string()),
            StoreError::Ambiguous(_) => ApiError::BadRequest(e.to_string()),
            StoreError::Exists(_) => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => ApiError::Unauthenticated(m),
            AuthError::Forbidden(m) => ApiError::Forbidden(m),
            AuthError::Wait { seconds } => ApiError::Wait(seconds),
            AuthError::Invalid { field, message } => ApiError::Field { field, message },
            AuthError::Mail(m) => ApiError::Unavailable(format!("cannot send the login code: {m}")),
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(m) => ApiError::NotFound(m),
            ActionError::Invalid { field, message } => ApiError::Field { field, message },
            ActionError::Forbidden(m) => ApiError::Forbidden(m),
            ActionError::Conflict(m) => ApiError::Conflict(m),
            ActionError::Options(errs) => ApiError::Fields(
                errs.0
                    .into_iter()
                    .map(|e| {
                        let field = if e.option.is_empty() {
                            "options".to_string()
                        } else {
                            format!("options.{}", e.option)
                        };
                        (field, e.message)
                    })
                    .collect(),
            ),
            ActionError::Refused(m) => ApiError::BadRequest(m),
            ActionError::Fields(f) => ApiError::Fields(f),
            ActionError::Auth(a) => a.into(),
            ActionError::Store(s) => s.into(),
            ActionError::Internal(e) => ApiError::Internal(e),
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
        let bad: ApiError = BadInput("no".into()).into();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let wait: ApiError = AuthError::Wait { seconds: 20 }.into();
        assert_eq!(wait.status(), StatusCode::TOO_MANY_REQUESTS);
        let r = wait.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "20");
        let exists: ApiError = StoreError::Exists("account `a`".into()).into();
        assert_eq!(exists.status(), StatusCode::CONFLICT);
    }
}
