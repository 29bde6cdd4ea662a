//! What a request brings in: a JSON body (bounded, its errors in the API's shape, or
//! left out), and numbers in query strings, each refused with its field named.

use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// The largest request body accepted (options, accounts: small JSON).
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body whose errors answer in the API's error shape.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "request body: {}",
                e.body_text()
            ))),
        }
    }
}

/// A JSON body that may be left out (then every field takes its default).
pub struct OptBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|l| l.as_bytes() == b"0")
            || (req
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_none()
                && req
                    .headers()
                    .get(axum::http::header::CONTENT_LENGTH)
                    .is_none());
        if empty {
            return Ok(OptBody(T::default()));
        }
        Body::<T>::from_request(req, state)
            .await
            .map(|Body(v)| OptBody(v))
    }
}

/// A number from a query string, in `range`, `default` when absent; the field is named
/// when it is wrong.
pub fn number(
    field: &str,
    v: Option<&str>,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> ApiResult<i64> {
    match v {
        None => Ok(default),
        Some(t) => t.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            ApiError::field(
                field,
                format!("`{t}`: a number from {} to {}", range.start(), range.end()),
            )
        }),
    }
}
