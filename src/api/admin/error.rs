//! Errors of the admin API and their CTFd-compatible bodies (admin-api D3).
//!
//! - 400: `{"success":false,"errors":{"<field>":["message", ...]}}`;
//! - 401, 403, 404, 405: `{"success":false,"message":"..."}`;
//! - 5xx: a generic message; the cause is logged, never returned.
//!
//! Store conflicts are bad input (a taken name, an unknown foreign key) and answer 400 on the
//! field the constraint belongs to; only an unreachable or failing backend gives a 5xx.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An admin API failure.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Invalid input: messages per field.
    #[error("invalid input")]
    Invalid(BTreeMap<String, Vec<String>>),
    /// No or bad credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Authenticated, but the role does not allow it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The object does not exist.
    #[error("not found")]
    NotFound,
    /// A backend failed (the cause is logged, not shown).
    #[error("internal error: {0}")]
    Internal(String),
    /// The store is temporarily unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Refused by the deployment center with its own status (404 no live instance, 409 already
    /// stopping, 429 queue full) and message.
    #[error("refused ({status}): {message}")]
    Refused {
        /// The status to answer.
        status: StatusCode,
        /// What center said.
        message: String,
    },
}

impl AdminError {
    /// One message on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(field.to_owned(), vec![message.into()]);
        AdminError::Invalid(errors)
    }

    /// The HTTP status of this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound => StatusCode::NOT_FOUND,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Refused { status, .. } => *status,
        }
    }

    /// Turns a store conflict into a field error: `constraint` names map to fields.
    pub fn from_store_on(error: StoreError, fields: &[(&str, &str, &str)]) -> Self {
        if let StoreError::Conflict { constraint } = &error {
            for (name, field, message) in fields {
                if constraint == name {
                    return AdminError::field(field, *message);
                }
            }
        }
        AdminError::from(error)
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => AdminError::NotFound,
            // A conflict the handler did not name is still the caller's input (an unknown
            // foreign key, a duplicate); never a 5xx.
            StoreError::Conflict { constraint } => {
                let field = constraint_field(&constraint);
                AdminError::field(field, "conflicts with existing data or refers to a missing object")
            }
            StoreError::Unavailable(message) => AdminError::Unavailable(message),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<crate::control::ControlError> for AdminError {
    fn from(error: crate::control::ControlError) -> Self {
        use crate::control::ControlError;
        let refused = |status: StatusCode, message: String| AdminError::Refused { status, message };
        match error {
            ControlError::BadRequest(message) => AdminError::field("instance", message),
            ControlError::Forbidden(message) => AdminError::Forbidden(message),
            ControlError::NotFound(message) => refused(StatusCode::NOT_FOUND, message),
            ControlError::Conflict(message) => refused(StatusCode::CONFLICT, message),
            error @ ControlError::QueueFull => refused(StatusCode::TOO_MANY_REQUESTS, error.to_string()),
            ControlError::Unavailable(message) => AdminError::Unavailable(message),
            // A refused signature between api and center is a deployment mistake, not input.
            ControlError::Unauthorized(message) | ControlError::Internal(message) => AdminError::Internal(message),
        }
    }
}

/// The field a schema constraint is about (`users_name_uq` → `name`), `""` when unknown.
fn constraint_field(constraint: &str) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("users_name_uq", "name"),
        ("users_email_uq", "email"),
        ("users_oauth_id_uq", "oauth_id"),
        ("teams_name_uq", "name"),
        ("teams_email_uq", "email"),
        ("teams_oauth_id_uq", "oauth_id"),
        ("teams_invite_code_uq", "invite_code"),
        ("challenges_name_uq", "name"),
        ("topics_value_uq", "value"),
        ("solutions_challenge_uq", "challenge_id"),
        ("pages_route_uq", "route"),
        ("files_location_uq", "location"),
        ("config_key_uq", "key"),
    ];
    KNOWN.iter().find(|(name, _)| *name == constraint).map(|(_, field)| *field).unwrap_or("")
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = match &self {
            AdminError::Invalid(errors) => json!({"success": false, "errors": errors}),
            AdminError::Unauthorized(message)
            | AdminError::Forbidden(message)
            | AdminError::Refused { message, .. } => {
                json!({"success": false, "message": message})
            }
            AdminError::NotFound => {
                json!({"success": false, "message": "The requested URL was not found on the server."})
            }
            AdminError::Internal(_) => {
                tracing::error!(error = ?self, "admin API request failed");
                json!({"success": false, "message": "internal server error"})
            }
            AdminError::Unavailable(_) => {
                tracing::warn!(error = ?self, "admin API backend unavailable");
                json!({"success": false, "message": "service temporarily unavailable, retry"})
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

/// Result of an admin handler.
pub type AdminResult<T = Response> = Result<T, AdminError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_field_errors_not_server_errors() {
        let error = AdminError::from(StoreError::Conflict { constraint: "users_name_uq".into() });
        assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
        match error {
            AdminError::Invalid(errors) => assert!(errors.contains_key("name")),
            other => panic!("{other:?}"),
        }
        let named = AdminError::from_store_on(
            StoreError::Conflict { constraint: "challenges_name_uq".into() },
            &[("challenges_name_uq", "name", "taken")],
        );
        assert!(matches!(named, AdminError::Invalid(errors) if errors["name"] == vec!["taken".to_owned()]));
    }
}
