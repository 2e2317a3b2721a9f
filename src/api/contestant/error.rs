//! Responses and errors of the contestant API.
//!
//! The FCTF contract has no single envelope: each endpoint answers with its own shape
//! (`{"message":…}`, `{"error":…}`, `{"success":…,"data":…}`, plain text from the session
//! check, an empty 403). [`ApiError`] therefore simply carries a finished response, built by
//! the constructors below; backend failures convert into it with `?` and become the contract's
//! generic 500 `{"success":false,"error":"Internal server error"}`, logged with their cause.
//! Handlers return [`ApiResult`].

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cache::CacheError;
use crate::store::StoreError;

/// A finished error response (boxed: a `Response` is large and errors are the rare path).
#[derive(Debug)]
pub struct ApiError(Box<Response>);

/// What contestant handlers return.
pub type ApiResult = Result<Response, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl ApiError {
    /// Wraps a finished response.
    pub fn from_response(response: Response) -> Self {
        Self(Box::new(response))
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    /// Any JSON body with a status.
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self::from_response(reply(status, body))
    }

    /// `{"message": text}`: the auth and ticket endpoints' error shape.
    pub fn message(status: StatusCode, text: impl Into<String>) -> Self {
        Self::json(status, json!({ "message": text.into() }))
    }

    /// `{"error": text}`: the time-window filters' and instance endpoints' shape.
    pub fn error(status: StatusCode, text: impl Into<String>) -> Self {
        Self::json(status, json!({ "error": text.into() }))
    }

    /// `{"success": false, "message": text}`: validation errors (fctf decision 13) and most
    /// "not found" answers.
    pub fn failure(status: StatusCode, text: impl Into<String>) -> Self {
        Self::json(status, json!({ "success": false, "message": text.into() }))
    }

    /// `{"success": false, "error": text}`: the hint endpoints' shape.
    pub fn failure_error(status: StatusCode, text: impl Into<String>) -> Self {
        Self::json(status, json!({ "success": false, "error": text.into() }))
    }

    /// A plain-text body (the session check answers this way).
    pub fn plain(status: StatusCode, text: &'static str) -> Self {
        Self::from_response((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
    }

    /// A status with an empty body (the original's bare `Forbid()`).
    pub fn empty(status: StatusCode) -> Self {
        Self::from_response(status.into_response())
    }

    /// 401 with a bearer challenge and no body: missing, malformed or expired token.
    pub fn unauthenticated() -> Self {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Self::from_response(response)
    }

    /// The ProblemDetails-style 404 the original answers for a bare `NotFound()`.
    pub fn not_found() -> Self {
        Self::json(
            StatusCode::NOT_FOUND,
            json!({"type": "https://tools.ietf.org/html/rfc9110#section-15.5.5", "title": "Not Found", "status": 404}),
        )
    }

    /// The generic 500 (the cause is logged, never sent).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "contestant api request failed");
        Self::failure_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if let StoreError::Unavailable(_) = error {
            tracing::warn!(%error, "store unavailable");
            return Self::failure(StatusCode::SERVICE_UNAVAILABLE, "The service is busy, please retry in a moment.");
        }
        Self::internal(&error)
    }
}

impl From<CacheError> for ApiError {
    fn from(error: CacheError) -> Self {
        Self::internal(&error)
    }
}

/// A JSON response.
pub fn reply(status: StatusCode, body: impl Serialize) -> Response {
    (status, Json(body)).into_response()
}

/// A 200 JSON response.
pub fn ok(body: impl Serialize) -> ApiResult {
    Ok(reply(StatusCode::OK, body))
}

/// Unix seconds as the contract's ISO-8601 text without offset (`2025-03-01T10:11:12`).
pub fn iso_time(unix_seconds: i64) -> String {
    use chrono::{Datelike, Timelike};
    match chrono::DateTime::from_timestamp(unix_seconds, 0) {
        Some(time) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            time.year(),
            time.month(),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        None => "0001-01-01T00:00:00".to_owned(),
    }
}

/// Unix seconds as ISO-8601 with `Z` (values created by this request).
pub fn iso_time_z(unix_seconds: i64) -> String {
    format!("{}Z", iso_time(unix_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_like_the_original() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00");
        assert_eq!(iso_time(1_767_225_600), "2026-01-01T00:00:00");
        assert_eq!(iso_time_z(1_767_225_600), "2026-01-01T00:00:00Z");
    }
}
