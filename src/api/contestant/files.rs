//! Challenge attachments (contract §2.4, §3.9): signed, expiring download tokens bound to the
//! user and the file, and the download endpoint.
//!
//! Token: Python itsdangerous `URLSafeTimedSerializer` format (compatible with the original's
//! tokens): `base64url(json) "." base64url(timestamp) "." base64url(HMAC-SHA1(key, payload.ts))`
//! with `key = SHA-1("itsdangerous" + "signer" + secret)`, the secret being `secrets.files`;
//! payload `{"user_id":12,"team_id":3,"file_id":10}`; valid 5 days.
//!
//! Download checks: token valid and issued to the caller → the `path` names exactly the token's
//! file → a challenge file's challenge is visible to the caller and its prerequisites are met
//! (strictly: a deleted prerequisite is not waived) → the path resolves, after canonicalisation,
//! inside `<data_dir>/files` (only plain relative components are accepted, so `..`, absolute
//! paths and symlinks out of the directory are refused) → the file exists. The body is streamed.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::context::Contestant;
use super::error::{ApiError, ApiResult};
use super::guards::{ctf_or_after, now};
use super::session::Player;
use super::visibility::{Requirements, is_hidden};
use crate::api::ApiState;
use crate::domain::{ChallengeId, UserId};
use crate::store::StoreError;

/// How long a download token is valid.
pub const TOKEN_MAX_AGE: i64 = 432_000;

/// The signed payload of a download token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileClaims {
    /// The user it was issued to.
    pub user_id: i64,
    /// The user's team at the time.
    pub team_id: Option<i64>,
    /// The file.
    pub file_id: i64,
}

fn signing_key(secret: &[u8]) -> hmac::Key {
    let mut material = b"itsdangerous".to_vec();
    material.extend_from_slice(b"signer");
    material.extend_from_slice(secret);
    let derived = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &material);
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, derived.as_ref())
}

fn timestamp_bytes(timestamp: i64) -> Vec<u8> {
    let bytes = timestamp.max(0).to_be_bytes();
    let first = bytes.iter().position(|byte| *byte != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

/// Issues a token at `issued_at` (Unix seconds).
pub fn sign_token(secret: &[u8], claims: &FileClaims, issued_at: i64) -> String {
    let json = serde_json::to_string(claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json.as_bytes());
    let value = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(timestamp_bytes(issued_at)));
    let signature = hmac::sign(&signing_key(secret), value.as_bytes());
    format!("{value}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// Verifies a token at `now`; `None` when forged, malformed or older than [`TOKEN_MAX_AGE`].
pub fn verify_token(secret: &[u8], token: &str, now: i64) -> Option<FileClaims> {
    let (value, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    hmac::verify(&signing_key(secret), value.as_bytes(), &signature).ok()?;
    let (payload, timestamp) = value.rsplit_once('.')?;
    let timestamp_raw = URL_SAFE_NO_PAD.decode(timestamp).ok()?;
    if timestamp_raw.len() > 8 {
        return None;
    }
    let issued_at = timestamp_raw.iter().fold(0i64, |total, byte| (total << 8) | i64::from(*byte));
    if now - issued_at > TOKEN_MAX_AGE || issued_at - now > 300 {
        return None;
    }
    if payload.starts_with('.') {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The link a challenge detail lists for one file.
pub fn download_link(secret: &[u8], claims: &FileClaims, location: &str) -> String {
    format!("/files?path={location}&token={}", sign_token(secret, claims, now()))
}

/// Joins a stored location under `root` when it is made only of plain components.
pub fn contained_path(root: &Path, location: &str) -> Option<PathBuf> {
    if location.is_empty() || location.contains('\0') || location.contains('\\') {
        return None;
    }
    let relative = Path::new(location);
    if !relative.components().all(|component| matches!(component, Component::Normal(_))) {
        return None;
    }
    Some(root.join(relative))
}

fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        "doc" => "application/vnd.ms-word",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

fn denied(text: &str) -> ApiError {
    ApiError::failure(StatusCode::BAD_REQUEST, text)
}

fn not_found() -> ApiError {
    ApiError::failure(StatusCode::NOT_FOUND, "File not found")
}

/// Query of `GET /api/Files`.
#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    path: Option<String>,
    token: Option<String>,
}

/// `GET /api/Files?path=…&token=…`.
pub async fn download(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    Query(query): Query<DownloadQuery>,
) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    let (Some(path), Some(token)) = (query.path, query.token) else {
        return Err(denied("File path is required"));
    };
    if path.trim().is_empty() {
        return Err(denied("Missing 'path' parameter"));
    }
    let Some(claims) = verify_token(state.secrets.files(), &token, now) else {
        return Err(denied("Invalid or expired token"));
    };
    if UserId(claims.user_id) != player.user_id {
        return Err(denied("Invalid or expired token"));
    }
    let Some(file) = state.store.get_file_by_location(&path).await? else { return Err(not_found()) };
    if file.id != claims.file_id {
        return Err(not_found());
    }
    if let Some(challenge_id) = file.challenge_id {
        check_challenge_access(&state, &player, challenge_id, now).await?;
    }
    let Some(joined) = contained_path(&context.files_dir, &file.location) else {
        return Err(denied("Invalid file path"));
    };
    let (Ok(root), Ok(resolved)) =
        (tokio::fs::canonicalize(&context.files_dir).await, tokio::fs::canonicalize(&joined).await)
    else {
        return Err(not_found());
    };
    if !resolved.starts_with(&root) {
        return Err(denied("Invalid file path"));
    }
    let Ok(handle) = tokio::fs::File::open(&resolved).await else { return Err(not_found()) };
    let is_file = handle.metadata().await.map(|metadata| metadata.is_file()).unwrap_or(false);
    if !is_file {
        return Err(not_found());
    }
    Ok(stream_file(handle, &resolved))
}

async fn check_challenge_access(
    state: &ApiState,
    player: &Player,
    challenge_id: ChallengeId,
    now: i64,
) -> Result<(), ApiError> {
    let config = state.event.current();
    let challenge = match state.store.get_challenge(challenge_id).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Err(denied("Access denied")),
        Err(error) => return Err(error.into()),
    };
    if is_hidden(&challenge, &config, now) {
        return Err(denied("Access denied"));
    }
    if let Some(requirements) = Requirements::parse(challenge.spec.requirements.as_deref()) {
        let solved: HashSet<ChallengeId> =
            state.store.solved_challenge_ids(player.account_for(config.user_mode)).await?.into_iter().collect();
        let strict: HashSet<ChallengeId> = requirements.prerequisites.iter().copied().collect();
        if !requirements.met(&solved, &strict) {
            return Err(denied("Access denied"));
        }
    } else if challenge.spec.requirements.as_deref().is_some_and(|text| !text.trim().is_empty()) {
        return Err(denied("Access denied"));
    }
    Ok(())
}

pub(crate) fn stream_file(file: tokio::fs::File, path: &Path) -> Response {
    let stream = futures::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok::<_, std::io::Error>(buffer), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    });
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("download").replace(['"', '\r', '\n'], "_");
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_expire() {
        let claims = FileClaims { user_id: 12, team_id: Some(3), file_id: 10 };
        let token = sign_token(b"secret", &claims, 1_700_000_000);
        assert_eq!(verify_token(b"secret", &token, 1_700_000_100), Some(claims));
        assert_eq!(verify_token(b"other", &token, 1_700_000_100), None);
        assert_eq!(verify_token(b"secret", &token, 1_700_000_000 + TOKEN_MAX_AGE + 1), None);
        let mut tampered = token.clone();
        tampered.replace_range(0..1, "X");
        assert_eq!(verify_token(b"secret", &tampered, 1_700_000_100), None);
        assert_eq!(verify_token(b"secret", "a.b", 1_700_000_100), None);
        let payload = token.split('.').next().unwrap();
        let json = URL_SAFE_NO_PAD.decode(payload).unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), r#"{"user_id":12,"team_id":3,"file_id":10}"#);
    }

    #[test]
    fn timestamps_are_minimal_big_endian_like_itsdangerous() {
        // itsdangerous encodes int_to_bytes(1700000000) = 65 53 f1 00 as "ZVPxAA".
        assert_eq!(URL_SAFE_NO_PAD.encode(timestamp_bytes(1_700_000_000)), "ZVPxAA");
        assert_eq!(timestamp_bytes(255), vec![0xff]);
    }

    #[test]
    fn paths_must_stay_inside_the_root() {
        let root = Path::new("/srv/files");
        assert_eq!(contained_path(root, "abc/flag.txt"), Some(PathBuf::from("/srv/files/abc/flag.txt")));
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", "", "a\\b", "a\0b", "./a"] {
            assert_eq!(contained_path(root, bad), None, "{bad:?}");
        }
    }
}
