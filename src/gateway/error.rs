//! Why the gateway answered a request itself, and how that answer looks: Go `http.Error` style
//! (text/plain, `nosniff`, one line with a trailing newline), as FCTF clients expect.
//!
//! Upstream failures are classified by origin: the upstream refusing or dropping the connection
//! is a 502, an upstream too slow to answer a 504, and the client's own body overflowing the
//! limit a 413 (even when it was discovered while streaming to the upstream).

use http::StatusCode;

use crate::domain::gateway_token::TokenError;

/// A request the gateway answers itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token in the URL and no gateway cookie.
    #[error("missing token")]
    MissingToken,
    /// The token does not verify.
    #[error("invalid token: {0}")]
    InvalidToken(TokenError),
    /// The token verifies but its instance is no longer running.
    #[error("invalid token: instance is not running")]
    InstanceStopped,
    /// A rate limit refused the request.
    #[error("too many requests")]
    RateLimited,
    /// The request body is over `http_max_body_bytes`.
    #[error("request body too large")]
    BodyTooLarge,
    /// The upstream could not be reached, or dropped the request.
    #[error("Cannot connect to challenge")]
    UpstreamUnreachable,
    /// The upstream did not answer in time.
    #[error("challenge did not respond in time")]
    UpstreamTimeout,
    /// The request cannot be proxied (e.g. an unusable URI, malformed framing).
    #[error("bad request")]
    BadRequest,
    /// The client stopped sending its request body.
    #[error("request timeout")]
    RequestTimeout,
    /// The request head is over the size or header count limit.
    #[error("request header fields too large")]
    HeadTooLarge,
}

impl Error {
    /// The HTTP status of this answer.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) | Self::InstanceStopped => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    /// True for refusals caused by the token (counted as authentication failures).
    pub(crate) fn is_auth_failure(&self) -> bool {
        matches!(self, Self::MissingToken | Self::InvalidToken(_) | Self::InstanceStopped)
    }

    /// The plain-text body: one line.
    pub(crate) fn body(&self) -> String {
        format!("{self}\n")
    }
}

/// The headers of the gateway's own plain-text answers (each line ends with CRLF).
pub(crate) const PLAIN_HEADERS: &str =
    "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n";
