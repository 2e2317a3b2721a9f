//! The portal's calls into the contestant API, dispatched in process.
//!
//! The portal does not re-implement any contestant rule: each action is the contestant API's
//! own handler, reached through the contestant router (built once with the portal's shared
//! [`Contestant`] context) with the session cookie's JWT as the bearer token and the browser's
//! connection address and forwarding headers, so the session check, time windows, rate limits,
//! client-IP rules and logging are exactly those of the JSON API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::api::ApiState;
use crate::api::contestant::{self, Contestant};

/// Largest contestant API body the portal reads.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The in-process contestant API.
#[derive(Clone)]
pub struct ContestantApi {
    router: Router,
}

impl std::fmt::Debug for ContestantApi {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ContestantApi")
    }
}

/// Who is calling: the browser's address and forwarding headers.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    connect_info: Option<ConnectInfo<SocketAddr>>,
    headers: HeaderMap,
}

impl Caller {
    /// Captures the caller from request parts.
    pub fn from_parts(parts: &Parts) -> Self {
        let mut headers = HeaderMap::new();
        for name in [
            header::USER_AGENT,
            header::HeaderName::from_static("x-forwarded-for"),
            header::HeaderName::from_static("x-real-ip"),
            header::HeaderName::from_static("last-event-id"),
        ] {
            if let Some(value) = parts.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        Self { connect_info: parts.extensions.get::<ConnectInfo<SocketAddr>>().copied(), headers }
    }
}

/// A contestant API answer: status and JSON body (`Value::Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Parsed body.
    pub body: Value,
}

impl Reply {
    /// True for a 2xx status.
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The first message-like field of the body (`message`, `error`, `data.message`), or a
    /// generic text for the status.
    pub fn message(&self) -> String {
        for pointer in ["/data/message", "/message", "/error", "/title"] {
            if let Some(text) = self.body.pointer(pointer).and_then(Value::as_str).filter(|text| !text.is_empty()) {
                return text.to_owned();
            }
        }
        match self.status {
            StatusCode::UNAUTHORIZED => "Your session has ended; please log in again.".to_owned(),
            StatusCode::FORBIDDEN => "You are not allowed to do this now.".to_owned(),
            StatusCode::NOT_FOUND => "Not found.".to_owned(),
            StatusCode::TOO_MANY_REQUESTS => "Too many requests; slow down.".to_owned(),
            status if status.is_success() => "Done.".to_owned(),
            _ => "Something went wrong; please try again.".to_owned(),
        }
    }

    /// `data` of the body, or `Null`.
    pub fn data(&self) -> &Value {
        self.body.get("data").unwrap_or(&Value::Null)
    }
}

impl ContestantApi {
    /// Builds the contestant router over the shared context.
    pub fn new(state: &ApiState, context: Arc<Contestant>) -> Self {
        Self { router: contestant::router_with(state, context).with_state(state.clone()) }
    }

    /// Sends a request and returns the raw response (used to pass the SSE stream through).
    pub async fn raw(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(headers) = request.headers_mut() {
            headers.extend(caller.headers.clone());
            if let Some(token) = token
                && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
            {
                headers.insert(header::AUTHORIZATION, value);
            }
            if body.is_some() {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
        }
        if let Some(info) = caller.connect_info {
            request = request.extension(info);
        }
        let body = body.map(|value| Body::from(value.to_string())).unwrap_or_else(Body::empty);
        let request = match request.body(body) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, "cannot build a contestant api request");
                return Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .body(Body::empty())
                    .unwrap_or_default();
            }
        };
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// Sends a request and parses the JSON answer.
    pub async fn call(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let response = self.raw(caller, method, path, token, body).await;
        let status = response.status();
        let bytes = match http_body_util::Limited::new(response.into_body(), MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracing::warn!(%error, path, "cannot read a contestant api answer");
                return Reply { status: StatusCode::INTERNAL_SERVER_ERROR, body: Value::Null };
            }
        };
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            if text.is_empty() { Value::Null } else { serde_json::json!({ "message": text }) }
        });
        Reply { status, body }
    }
}
