//! Center's internal HTTP API: every route is `POST` with a JSON body signed per
//! `control::signature` (v1), checked before the body is even parsed; a signature already
//! accepted within the freshness window is refused as a replay (remembered in the cache, so
//! every center replica refuses it). Answers are the control DTOs, errors `{code, message}`
//! with the error's HTTP status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::service::CenterService;
use crate::cache::Cache;
use crate::config::Secrets;
use crate::control::signature::{
    FRESHNESS_WINDOW_SECS, KEY_ID_HEADER, ReceivedSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify,
};
use crate::control::{ControlError, ControlService, paths};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub(super) struct HttpState {
    pub service: Arc<CenterService>,
    pub cache: Cache,
    pub secrets: Secrets,
}

/// The internal router.
pub(super) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(paths::START, post(start))
        .route(paths::STOP, post(stop))
        .route(paths::STATUS, post(status))
        .route(paths::LIST, post(list))
        .route(paths::LOGS, post(logs))
        .route(paths::STOP_ALL, post(stop_all))
        .route(paths::BUILD, post(build))
        .route(paths::BUILD_STATUS, post(build_status))
        .route(paths::BUILD_REPORT, post(build_report))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// One handler per control operation.
macro_rules! control_route {
    ($($name:ident),* $(,)?) => {$(
        async fn $name(State(state): State<HttpState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
            let service = state.service.clone();
            handle(&state, &uri, &headers, &body, move |request| async move { service.$name(request).await }).await
        }
    )*};
}

control_route!(start, stop, status, list, logs, stop_all, build, build_status);

async fn build_report(State(state): State<HttpState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let service = state.service.clone();
    handle(&state, &uri, &headers, &body, move |report| async move {
        service.build_report(report).await.map(|()| serde_json::json!({"success": true}))
    })
    .await
}

/// Verifies, parses, runs `operation` and renders its result.
async fn handle<Req, Resp, F, Fut>(
    state: &HttpState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    operation: F,
) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ControlError>>,
{
    if let Err(error) = authenticate(state, uri.path(), headers, body).await {
        return error_response(&error);
    }
    let request: Req = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return error_response(&ControlError::BadRequest(format!("invalid request body: {error}"))),
    };
    match operation(request).await {
        Ok(answer) => (StatusCode::OK, axum::Json(answer)).into_response(),
        Err(error) => error_response(&error),
    }
}

/// Checks the signature and refuses replays.
async fn authenticate(state: &HttpState, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), ControlError> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let received = ReceivedSignature {
        key_id: header(KEY_ID_HEADER),
        timestamp: header(TIMESTAMP_HEADER),
        signature: header(SIGNATURE_HEADER),
    };
    let now = chrono::Utc::now().timestamp();
    let signature = verify(state.secrets.internal(), state.secrets.key_id(), received, "POST", path, body, now)
        .map_err(|error| ControlError::Unauthorized(error.to_string()))?;
    // Remembered for the whole window on both sides of the timestamp.
    let memory = Duration::from_secs(u64::try_from(2 * FRESHNESS_WINDOW_SECS + 1).unwrap_or(121));
    match state.cache.claim_once(&format!("center-sig:{signature}"), memory).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ControlError::Unauthorized(crate::control::signature::SignatureError::Replayed.to_string())),
        Err(error) => Err(ControlError::Unavailable(format!("cannot check for replayed requests: {error}"))),
    }
}

fn error_response(error: &ControlError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::warn!(%error, "center request failed");
    }
    (status, axum::Json(error.to_body())).into_response()
}
