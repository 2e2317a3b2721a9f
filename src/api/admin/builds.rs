//! Challenge image builds through the deployment center (fctf additions), and the signed
//! download of their build contexts.
//!
//! - `POST /api/v1/challenges/{id}/build` `{file_id, image, dockerfile?}` (challenge write):
//!   asks center ([`ApiState::center`]) to build `image` from the build context `file_id`, a tar
//!   archive uploaded beforehand with `POST /api/v1/files` (as a `standard` file, which players
//!   never see, or a file of this challenge). Answers `{workflow}`.
//! - `GET /api/v1/challenges/{id}/build?workflow=` (challenge read): the build's state as center
//!   reports it; without `workflow`, the challenge's latest build.
//! - `GET /build-contexts/{token}` (no credentials: the build pod has none): the context's bytes,
//!   for a token minted by the build request. The token is `base64url(json{file_id, exp})` "."
//!   `base64url(HMAC-SHA256(files secret, "fctf-build-context." + payload))`, valid for
//!   [`CONTEXT_TOKEN_SECONDS`]; a bad, expired or foreign token is a 404, as is a file that was
//!   deleted meanwhile.
//!
//! Decision: the context URL is built from `api.public_url`, which build pods must be able to
//! reach (argo/README.md §2 lets them reach the api Service; point `api.public_url` at an
//! address they resolve, or at the ingress).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, QueryParams};
use super::reply::ok;
use super::storage::FileStorage;
use super::{Table, Verb, audit, challenges};
use crate::api::ApiState;
use crate::control::{BuildRequest, BuildStatusRequest};

/// How long a build context URL stays valid (the build fetches it when its pod starts).
pub const CONTEXT_TOKEN_SECONDS: i64 = 3600;

/// The path of the context download route.
pub const CONTEXT_ROUTE: &str = "/build-contexts/{token}";

const CONTEXT_DOMAIN: &[u8] = b"fctf-build-context.";

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Get, Post};
    table.add(Post, "/api/v1/challenges/{id}/build", write, build).add(
        Get,
        "/api/v1/challenges/{id}/build",
        read,
        status,
    )
}

/// The signed claims of a context URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ContextClaims {
    file_id: i64,
    exp: i64,
}

fn mac(secret: &[u8], payload: &str) -> hmac::Tag {
    let mut message = CONTEXT_DOMAIN.to_vec();
    message.extend_from_slice(payload.as_bytes());
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message)
}

/// Mints the token of a context URL.
pub fn sign_context(secret: &[u8], file_id: i64, exp: i64) -> String {
    let payload = URL_SAFE_NO_PAD.encode(json!(ContextClaims { file_id, exp }).to_string());
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &payload).as_ref());
    format!("{payload}.{signature}")
}

/// The file id of a valid, unexpired token.
pub fn verify_context(secret: &[u8], token: &str, now: i64) -> Option<i64> {
    let (payload, signature) = token.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let mut message = CONTEXT_DOMAIN.to_vec();
    message.extend_from_slice(payload.as_bytes());
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message, &signature).ok()?;
    let claims: ContextClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (claims.exp >= now).then_some(claims.file_id)
}

async fn build(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let file_id = fields.int("file_id", 1, i64::MAX).set();
    let image = fields.required_text("image", 512);
    let dockerfile = fields.text("dockerfile", 512).set().filter(|path| !path.trim().is_empty());
    if image.as_deref().is_some_and(|image| image.chars().any(char::is_whitespace)) {
        fields.error("image", "must be an image reference without spaces");
    }
    if file_id.is_none() && !fields.has_errors() {
        fields.error("file_id", "is required (upload the build context with POST /api/v1/files)");
    }
    fields.finish()?;
    let (Some(file_id), Some(image)) = (file_id, image) else {
        return Err(AdminError::field("file_id", "is required"));
    };
    let challenge = challenges::load(&state.store, id).await?;
    let record = match state.store.get_file_record(file_id).await {
        Ok(record) => record,
        Err(crate::store::StoreError::NotFound) => return Err(AdminError::field("file_id", "does not exist")),
        Err(error) => return Err(error.into()),
    };
    let usable = record.file.kind == "standard" || record.file.challenge_id == Some(challenge.id);
    if !usable {
        return Err(AdminError::field("file_id", "must be a standard file or a file of this challenge"));
    }
    let exp = chrono::Utc::now().timestamp() + CONTEXT_TOKEN_SECONDS;
    let token = sign_context(state.secrets.files(), file_id, exp);
    let base = state.deps.settings.api.public_url.trim_end_matches('/');
    let context_url = format!("{base}{}", CONTEXT_ROUTE.replace("{token}", &token));
    let request =
        BuildRequest { challenge_id: challenge.id, context_url, image, dockerfile, user_id: Some(actor.user_id) };
    let accepted = state.center.build(request.clone()).await?;
    let after = json!({"workflow": accepted.workflow, "image": request.image, "file_id": file_id,
                       "dockerfile": request.dockerfile});
    audit::record(&state, &actor, "build", "challenge", Some(challenge.id.to_string()), None, Some(&after)).await;
    Ok(ok(json!({"workflow": accepted.workflow})))
}

async fn status(State(state): State<ApiState>, IdPath(id): IdPath, query: QueryParams) -> AdminResult<Response> {
    let challenge = challenges::load(&state.store, id).await?;
    let workflow = match query.text("workflow") {
        Some(workflow) => workflow.to_owned(),
        None => state
            .store
            .list_deploy_history(challenge.id)
            .await?
            .into_iter()
            .find_map(|record| record.workflow_name)
            .ok_or(AdminError::NotFound)?,
    };
    let build = state.center.build_status(BuildStatusRequest { workflow }).await?;
    if build.challenge_id.is_some_and(|owner| owner != challenge.id) {
        return Err(AdminError::NotFound);
    }
    Ok(ok(json!(build)))
}

/// `GET /build-contexts/{token}`: the build context, streamed.
pub async fn context(State(state): State<ApiState>, Path(token): Path<String>) -> Response {
    let now = chrono::Utc::now().timestamp();
    let Some(file_id) = verify_context(state.secrets.files(), &token, now) else {
        return AdminError::NotFound.into_response();
    };
    let record = match state.store.get_file_record(file_id).await {
        Ok(record) => record,
        Err(error) => return AdminError::from(error).into_response(),
    };
    let Ok(path) = FileStorage::new(&state.deps.settings.data_dir).path_of(&record.file.location) else {
        return AdminError::NotFound.into_response();
    };
    match tokio::fs::File::open(&path).await {
        Ok(file) => crate::api::contestant::files::stream_file(file, &path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => AdminError::NotFound.into_response(),
        Err(error) => AdminError::Internal(error.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tokens_are_bound_to_the_secret_the_file_and_the_time() {
        let token = sign_context(b"secret", 42, 1_000);
        assert_eq!(verify_context(b"secret", &token, 999), Some(42));
        assert_eq!(verify_context(b"secret", &token, 1_000), Some(42));
        assert_eq!(verify_context(b"secret", &token, 1_001), None, "expired");
        assert_eq!(verify_context(b"other", &token, 999), None, "another secret");
        let (payload, signature) = token.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(json!({"file_id": 43, "exp": 1_000}).to_string());
        assert_eq!(verify_context(b"secret", &format!("{forged_payload}.{signature}"), 999), None);
        assert_eq!(verify_context(b"secret", payload, 999), None);
        assert_eq!(verify_context(b"secret", "", 999), None);
    }
}
