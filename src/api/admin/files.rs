//! Files: `/api/v1/files` (list, multipart upload, read, delete) and the `/files/<dir>/<name>`
//! download for staff (ctfcli's `mirror`, and `verify` when a sha1 is missing).
//!
//! An upload carries `type` (`standard`, `challenge`, `page`, `solution`; default `standard`),
//! the owner (`challenge_id`/`challenge`, `page_id`/`page`, `solution_id`/`solution`), an
//! optional `location` (only with a single file) and any number of `file` parts, in any order:
//! each part is streamed to a temporary file while its SHA-1 is computed, and only once the
//! whole request has been read and validated are the files moved into place and recorded.
//! Uploading to an existing location replaces that file and its row (CTFd behaviour).
//! Challenge writers may upload challenge and solution files; page and standard files are for
//! admins.

use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{IdPath, QueryParams};
use super::reply::{done, ok};
use super::storage::{FileStorage, Upload, random_dir, validate_location, validate_name};
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::domain::ChallengeId;
use crate::store::{FileCommitError, FileOwner, FileRecord, StoreError, UserRole};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get};
    table
        .add(Get, "/api/v1/files", read, list)
        .add(Get, "/api/v1/files/{id}", read, get)
        .add(Delete, "/api/v1/files/{id}", write, delete)
        .add(Get, "/files/{dir}/{name}", read, download)
}

const FILE_TYPES: &[&str] = &["standard", "challenge", "page", "solution"];

/// The download URL of a location.
pub fn url_of(location: &str) -> String {
    format!("/files/{location}")
}

/// `{id, type, location, sha1sum, …}`.
pub fn view(record: &FileRecord) -> Value {
    json!({
        "id": record.file.id,
        "type": record.file.kind,
        "location": record.file.location,
        "sha1sum": record.file.sha1sum,
        "size": record.file.size,
        "challenge_id": record.file.challenge_id,
        "page_id": record.page_id,
        "solution_id": record.solution_id,
    })
}

fn storage(state: &ApiState) -> FileStorage {
    FileStorage::new(&state.deps.settings.data_dir)
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    if let Some(kind) = query.text("type")
        && !FILE_TYPES.contains(&kind)
    {
        return Err(AdminError::field("type", "must be standard, challenge, page or solution"));
    }
    let mut data = Vec::new();
    for record in state.store.list_file_records().await? {
        if query.text("type").is_some_and(|kind| kind != record.file.kind)
            || query.text("location").is_some_and(|location| location != record.file.location)
        {
            continue;
        }
        if let Some(needle) = query.text("q")
            && !record.file.location.to_lowercase().contains(&needle.to_lowercase())
        {
            continue;
        }
        data.push(view(&record));
    }
    Ok(ok(data))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(view(&state.store.get_file_record(id).await?)))
}

/// A file part read into a temporary file.
struct Part {
    name: String,
    upload: Upload,
}

async fn abort_all(parts: Vec<Part>) {
    for part in parts {
        part.upload.abort().await;
    }
}

/// Reads the multipart body: text fields and the file parts (streamed to temporary files).
async fn read_parts(
    storage: &FileStorage,
    multipart: &mut Multipart,
    texts: &mut Vec<(String, String)>,
    parts: &mut Vec<Part>,
) -> AdminResult<()> {
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(()),
            Err(error) => return Err(AdminError::field("file", format!("malformed multipart body: {error}"))),
        };
        let field_name = field.name().unwrap_or("").to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                if let Err(error) = validate_name(&file_name) {
                    return Err(AdminError::field("file", format!("{file_name:?}: {error}")));
                }
                let mut upload = storage.begin().await.map_err(|error| AdminError::Internal(error.to_string()))?;
                let mut field = field;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if let Err(error) = upload.write(&chunk).await {
                                upload.abort().await;
                                return Err(AdminError::Internal(error.to_string()));
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            upload.abort().await;
                            return Err(AdminError::field("file", format!("upload interrupted: {error}")));
                        }
                    }
                }
                parts.push(Part { name: file_name, upload });
            }
            None => {
                let text = field.text().await.map_err(|error| AdminError::field(&field_name, error.to_string()))?;
                texts.push((field_name, text));
            }
        }
    }
}

fn text_of<'a>(texts: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| texts.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str()))
}

fn id_of(texts: &[(String, String)], keys: &[&str]) -> AdminResult<Option<i64>> {
    match text_of(texts, keys).map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .map(Some)
            .map_err(|_| AdminError::field(keys.first().copied().unwrap_or("id"), "must be an integer")),
    }
}

/// Validates the owner fields of an upload.
async fn owner_of(state: &ApiState, actor: &Actor, texts: &[(String, String)]) -> AdminResult<(String, FileOwner)> {
    let kind = text_of(texts, &["type"]).unwrap_or("standard").to_owned();
    if !FILE_TYPES.contains(&kind.as_str()) {
        return Err(AdminError::field("type", "must be standard, challenge, page or solution"));
    }
    if actor.role == UserRole::Writer && matches!(kind.as_str(), "standard" | "page") {
        return Err(AdminError::Forbidden("challenge writers may upload challenge and solution files only".into()));
    }
    let challenge_id = id_of(texts, &["challenge_id", "challenge"])?;
    let page_id = id_of(texts, &["page_id", "page"])?;
    let solution_id = id_of(texts, &["solution_id", "solution"])?;
    let missing = |error: StoreError, field: &str| match error {
        StoreError::NotFound => AdminError::field(field, "does not exist"),
        other => other.into(),
    };
    if let Some(id) = challenge_id {
        state.store.get_challenge(ChallengeId(id)).await.map_err(|error| missing(error, "challenge_id"))?;
    } else if kind == "challenge" {
        return Err(AdminError::field("challenge_id", "is required for challenge files"));
    }
    if let Some(id) = page_id {
        state.store.get_page(id).await.map_err(|error| missing(error, "page_id"))?;
    }
    if let Some(id) = solution_id {
        state.store.get_solution(id).await.map_err(|error| missing(error, "solution_id"))?;
    } else if kind == "solution" {
        return Err(AdminError::field("solution_id", "is required for solution files"));
    }
    Ok((kind, FileOwner { challenge_id: challenge_id.map(ChallengeId), page_id, solution_id }))
}

/// `POST /api/v1/files` (multipart): returns the list of stored files.
pub async fn upload(
    State(state): State<ApiState>,
    actor: Actor,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AdminResult<Response> {
    let mut multipart = multipart.map_err(|error| {
        AdminError::field("file", format!("expected a multipart/form-data body: {}", error.body_text()))
    })?;
    let storage = storage(&state);
    let mut texts = Vec::new();
    let mut parts = Vec::new();
    if let Err(error) = read_parts(&storage, &mut multipart, &mut texts, &mut parts).await {
        abort_all(parts).await;
        return Err(error);
    }
    let checked = async {
        let (kind, owner) = owner_of(&state, &actor, &texts).await?;
        if parts.is_empty() {
            return Err(AdminError::field("file", "No file uploaded"));
        }
        let location = text_of(&texts, &["location"]).map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned);
        if let Some(location) = &location {
            if parts.len() > 1 {
                return Err(AdminError::field("location", "Location cannot be specified with multiple files"));
            }
            validate_location(location).map_err(|error| AdminError::field("location", error.to_string()))?;
        }
        Ok((kind, owner, location))
    }
    .await;
    let (kind, owner, location) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            abort_all(parts).await;
            return Err(error);
        }
    };
    let mut stored = Vec::new();
    let mut remaining = parts.into_iter();
    while let Some(part) = remaining.next() {
        let generated = location.is_none();
        let target = location.clone().unwrap_or_else(|| format!("{}/{}", random_dir(), part.name));
        let upload = part.upload;
        let (storage_ref, target_ref) = (&storage, target.as_str());
        let committed = state
            .store
            .commit_file_locked(&kind, &target, &owner, async move || upload.commit_to(storage_ref, target_ref).await)
            .await;
        let record = match committed {
            Ok(record) => record,
            Err(error) => {
                if generated && matches!(error, FileCommitError::Store(_)) {
                    let _ = storage.remove(&target).await;
                }
                abort_all(remaining.collect()).await;
                return Err(match error {
                    FileCommitError::Io(error) => AdminError::Internal(error.to_string()),
                    FileCommitError::Store(error) => error.into(),
                });
            }
        };
        let after = view(&record);
        audit::record(&state, &actor, "upload", "file", Some(record.file.id.to_string()), None, Some(&after)).await;
        stored.push(after);
    }
    Ok(ok(stored))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let record = state.store.get_file_record(id).await?;
    if actor.role == UserRole::Writer && matches!(record.file.kind.as_str(), "standard" | "page") {
        return Err(AdminError::Forbidden("challenge writers may delete challenge and solution files only".into()));
    }
    let storage = storage(&state);
    let removed = state.store.delete_file_locked(id, async |location: &str| storage.remove(location).await).await;
    match removed {
        Ok(Some(_)) => {}
        Ok(None) => return Err(AdminError::NotFound),
        Err(FileCommitError::Io(error)) => return Err(AdminError::Internal(error.to_string())),
        Err(FileCommitError::Store(error)) => return Err(error.into()),
    }
    audit::record(&state, &actor, "delete", "file", Some(id.to_string()), Some(&view(&record)), None).await;
    Ok(done())
}

/// `GET /files/<dir>/<name>`: the stored bytes as an attachment.
async fn download(
    State(state): State<ApiState>,
    axum::extract::Path((dir, name)): axum::extract::Path<(String, String)>,
) -> AdminResult<Response> {
    let location = format!("{dir}/{name}");
    if validate_location(&location).is_err() {
        return Err(AdminError::NotFound);
    }
    if state.store.get_file_record_by_location(&location).await?.is_none() {
        return Err(AdminError::NotFound);
    }
    let bytes = match storage(&state).read(&location).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(AdminError::NotFound),
        Err(error) => return Err(AdminError::Internal(error.to_string())),
    };
    let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(&name));
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response())
}

/// RFC 3986 percent-encoding of everything but unreserved characters (for RFC 5987 headers).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
