//! Errors of the deployment control API, with one HTTP status each so that they cross the wire
//! unchanged (`{"code": "...", "message": "..."}`) and reach the player with their real status
//! and message (contestant-api decision 11).

use serde::{Deserialize, Serialize};

/// A refused or failed control call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The request is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request signature is missing, wrong, stale or replayed (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Nothing to act on: no such challenge, no live instance (404).
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow it: the instance is already stopping or stopped (409).
    #[error("{0}")]
    Conflict(String),
    /// The deployment queue is at its maximum length; nothing was queued (429).
    #[error("deployment queue is full, try again shortly")]
    QueueFull,
    /// A backend (queue, runtime, store, center itself) cannot be reached; nothing was done
    /// unless the message says otherwise (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

/// The wire form of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ControlError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            ControlError::BadRequest(_) => 400,
            ControlError::Unauthorized(_) => 401,
            ControlError::Forbidden(_) => 403,
            ControlError::NotFound(_) => 404,
            ControlError::Conflict(_) => 409,
            ControlError::QueueFull => 429,
            ControlError::Internal(_) => 500,
            ControlError::Unavailable(_) => 503,
        }
    }

    /// The stable code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::BadRequest(_) => "bad_request",
            ControlError::Unauthorized(_) => "unauthorized",
            ControlError::Forbidden(_) => "forbidden",
            ControlError::NotFound(_) => "not_found",
            ControlError::Conflict(_) => "conflict",
            ControlError::QueueFull => "queue_full",
            ControlError::Internal(_) => "internal",
            ControlError::Unavailable(_) => "unavailable",
        }
    }

    /// The wire form.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody { code: self.code().to_owned(), message: self.to_string() }
    }

    /// Rebuilds an error from its wire form (unknown codes read by HTTP status).
    pub fn from_body(status: u16, body: ErrorBody) -> Self {
        let message = body.message;
        match body.code.as_str() {
            "bad_request" => ControlError::BadRequest(message),
            "unauthorized" => ControlError::Unauthorized(message),
            "forbidden" => ControlError::Forbidden(message),
            "not_found" => ControlError::NotFound(message),
            "conflict" => ControlError::Conflict(message),
            "queue_full" => ControlError::QueueFull,
            "unavailable" => ControlError::Unavailable(message),
            "internal" => ControlError::Internal(message),
            _ => match status {
                400 => ControlError::BadRequest(message),
                401 => ControlError::Unauthorized(message),
                403 => ControlError::Forbidden(message),
                404 => ControlError::NotFound(message),
                409 => ControlError::Conflict(message),
                429 => ControlError::QueueFull,
                502..=504 => ControlError::Unavailable(message),
                _ => ControlError::Internal(message),
            },
        }
    }
}

impl From<crate::store::StoreError> for ControlError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::NotFound => ControlError::NotFound("not found".to_owned()),
            crate::store::StoreError::Unavailable(message) => ControlError::Unavailable(message),
            other => ControlError::Internal(other.to_string()),
        }
    }
}

impl From<crate::queue::QueueError> for ControlError {
    fn from(error: crate::queue::QueueError) -> Self {
        match error {
            crate::queue::QueueError::Full => ControlError::QueueFull,
            crate::queue::QueueError::Unavailable(message) => {
                ControlError::Unavailable(format!("deployment queue unavailable, try again shortly ({message})"))
            }
            crate::queue::QueueError::Closed => {
                ControlError::Unavailable("deployment queue unavailable, try again shortly".to_owned())
            }
            other => ControlError::Internal(other.to_string()),
        }
    }
}

impl From<crate::runtime::RuntimeError> for ControlError {
    fn from(error: crate::runtime::RuntimeError) -> Self {
        match error {
            crate::runtime::RuntimeError::NotFound(id) => {
                ControlError::NotFound(format!("instance {id} is not running"))
            }
            crate::runtime::RuntimeError::InvalidSpec(message) => ControlError::BadRequest(message),
            crate::runtime::RuntimeError::Unavailable(message) => ControlError::Unavailable(message),
            crate::runtime::RuntimeError::Other(message) => ControlError::Internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_the_wire_unchanged() {
        let errors = [
            ControlError::BadRequest("b".into()),
            ControlError::Unauthorized("u".into()),
            ControlError::Forbidden("f".into()),
            ControlError::NotFound("n".into()),
            ControlError::Conflict("c".into()),
            ControlError::QueueFull,
            ControlError::Unavailable("x".into()),
            ControlError::Internal("i".into()),
        ];
        for error in errors {
            let body: ErrorBody = serde_json::from_str(&serde_json::to_string(&error.to_body()).unwrap()).unwrap();
            assert_eq!(ControlError::from_body(error.status(), body), error);
        }
        let unknown = ErrorBody { code: "teapot".into(), message: "m".into() };
        assert_eq!(ControlError::from_body(502, unknown), ControlError::Unavailable("m".into()));
    }
}
