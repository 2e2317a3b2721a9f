//! `CiJson<T>`: a JSON body extractor whose property names match case-insensitively.
//!
//! The FCTF contract binds `challengeId`, `ChallengeId` and `challengeid` alike. The body is
//! parsed to a `serde_json::Value`, every object key is lower-cased (recursively), then the
//! value is deserialised into `T`, whose fields must therefore be spelled in lower case
//! (`#[serde(rename_all = "lowercase")]`). Malformed bodies answer 400 with the contract's
//! `{"success":false,"message":...}` shape, never a panic.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body with case-insensitive property names.
#[derive(Debug, Clone)]
pub struct CiJson<T>(pub T);

/// Why a body was refused.
#[derive(Debug)]
pub struct CiJsonRejection(String);

impl IntoResponse for CiJsonRejection {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"success": false, "message": self.0}))).into_response()
    }
}

/// Lower-cases every object key of `value`, recursively. On a clash the later key wins.
pub fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(key, inner)| (key.to_lowercase(), lowercase_keys(inner))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// Parses `bytes` as JSON with case-insensitive property names.
pub fn parse_ci<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("request body is required".to_owned());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|error| format!("invalid JSON body: {error}"))?;
    serde_json::from_value(lowercase_keys(value)).map_err(|error| format!("invalid request: {error}"))
}

impl<S, T> FromRequest<S> for CiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = CiJsonRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|error| CiJsonRejection(error.body_text()))?;
        parse_ci(&bytes).map(CiJson).map_err(CiJsonRejection)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    struct Attempt {
        challengeid: i64,
        submission: String,
    }

    #[test]
    fn property_names_match_in_any_case() {
        for body in [
            r#"{"challengeId": 3, "submission": "x"}"#,
            r#"{"ChallengeId": 3, "SUBMISSION": "x"}"#,
            r#"{"challengeid": 3, "Submission": "x"}"#,
        ] {
            assert_eq!(
                parse_ci::<Attempt>(body.as_bytes()).unwrap(),
                Attempt { challengeid: 3, submission: "x".into() }
            );
        }
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert!(parse_ci::<Attempt>(b"").is_err());
        assert!(parse_ci::<Attempt>(b"{").is_err());
        assert!(parse_ci::<Attempt>(br#"{"challengeId": "three"}"#).is_err());
        assert!(parse_ci::<Attempt>(&[0xff, 0xfe]).is_err());
    }
}
