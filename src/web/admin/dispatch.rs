//! The admin UI acts through the admin API, in process.
//!
//! Every change a form makes (and most lists a page shows) is the matching `/api/v1` request,
//! sent through the same guarded router the API serves, with the viewer's session cookie and
//! CSRF header. Validation, role checks, audit logging and CTFd's semantics therefore live in
//! one place (`api::admin`); the UI translates forms into API bodies and answers into pages.
//! Nothing goes over the network.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, header};
use serde_json::Value;
use tower::ServiceExt;

use super::session::Staff;
use super::view::UiError;
use crate::api::admin::auth::CSRF_HEADER;

/// Largest admin API answer the UI reads.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The admin API router, ready to take requests.
#[derive(Clone)]
pub struct AdminApi {
    router: Router,
}

/// An admin API answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Parsed JSON (`Null` when the body is not JSON).
    pub json: Value,
}

impl Answer {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's explanation of a failure, readable by a person.
    pub fn message(&self) -> String {
        if let Some(message) = self.json.get("message").and_then(Value::as_str) {
            return message.to_owned();
        }
        if let Some(errors) = self.json.get("errors").and_then(Value::as_object) {
            let parts: Vec<String> = errors
                .iter()
                .map(|(field, problems)| {
                    let text = match problems {
                        Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    format!("{field}: {text}")
                })
                .collect();
            if !parts.is_empty() {
                return parts.join(". ");
            }
        }
        format!("request failed ({})", self.status)
    }
}

impl AdminApi {
    /// Wraps the admin API router (with its state applied).
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// Sends one request as `staff`.
    pub async fn send(
        &self,
        staff: &Staff,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<Answer, UiError> {
        let mut builder = Request::builder().method(method).uri(path).header(header::COOKIE, &staff.cookie);
        builder = builder.header(CSRF_HEADER, &staff.csrf).header(header::HOST, "admin-ui.internal");
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let mut request = builder.body(body).map_err(UiError::internal)?;
        if let Some(ip) = staff.actor.ip.as_deref().and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
            request.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::new(ip, 0)));
        }
        let response = self.router.clone().oneshot(request).await.map_err(UiError::internal)?;
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), MAX_ANSWER_BYTES).await.map_err(UiError::internal)?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, json })
    }

    /// Sends a JSON body.
    pub async fn json(&self, staff: &Staff, method: Method, path: &str, body: &Value) -> Result<Answer, UiError> {
        let bytes = serde_json::to_vec(body).map_err(UiError::internal)?;
        self.send(staff, method, path, Some("application/json"), Body::from(bytes)).await
    }

    /// `GET path` and its `data`; a refusal or failure is the page's error.
    pub async fn get(&self, staff: &Staff, path: &str) -> Result<Value, UiError> {
        let answer = self.send(staff, Method::GET, path, None, Body::empty()).await?;
        match answer.status {
            200..=299 => Ok(answer.json.get("data").cloned().unwrap_or(Value::Null)),
            401 | 403 => Err(UiError::forbidden(answer.message())),
            404 => Err(UiError::not_found()),
            400..=499 => Err(UiError::bad_request(answer.message())),
            _ => Err(UiError::internal(format!("admin API {path} answered {}", answer.status))),
        }
    }

    /// Sends a change and turns the answer into a flash message: `Ok(done)` or `Err(reason)`.
    pub async fn change(
        &self,
        staff: &Staff,
        method: Method,
        path: &str,
        body: &Value,
        done: &str,
    ) -> Result<Result<String, String>, UiError> {
        let answer = self.json(staff, method, path, body).await?;
        if answer.status >= 500 {
            return Err(UiError::internal(format!("admin API {path} answered {}", answer.status)));
        }
        Ok(if answer.is_success() { Ok(done.to_owned()) } else { Err(answer.message()) })
    }
}
