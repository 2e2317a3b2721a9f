//! The CRUD shape several admin resources share (pages, solutions): read one, create, update,
//! delete, each mutation audited with the resource's full view before and after, and the files
//! a deleted resource owned removed from storage once its rows are gone (their rows go with it).
//!
//! A resource says how to load, create, update and delete itself and which file rows it owns
//! ([`Resource`]); the handlers here do the rest, so the resources cannot drift apart. Lists
//! stay per resource (their filters differ).

use std::future::Future;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value};

use super::audit;
use super::auth::Actor;
use super::error::{AdminError, AdminResult};
use super::input::{IdPath, JsonBody};
use super::reply::{done, ok};
use super::storage::FileStorage;
use crate::api::ApiState;
use crate::store::FileRecord;

/// A resource with the shared CRUD shape.
pub(super) trait Resource: Sized + Send + Sync + 'static {
    /// Its name in the audit log (`target_type`) and in log lines.
    const KIND: &'static str;

    /// Its id.
    fn id(&self) -> i64;

    /// The full view the API answers (and the audit log records).
    fn view(&self) -> Value;

    /// Reads it; `NotFound` when missing.
    fn load(state: &ApiState, id: i64) -> impl Future<Output = AdminResult<Self>> + Send;

    /// Validates `body` and creates it.
    fn create(state: &ApiState, body: &Map<String, Value>) -> impl Future<Output = AdminResult<Self>> + Send;

    /// Validates `body` as a partial update of `current` and writes it.
    fn update(
        state: &ApiState,
        current: &Self,
        body: &Map<String, Value>,
    ) -> impl Future<Output = AdminResult<Self>> + Send;

    /// Deletes its rows (and the file rows it owns); false when it did not exist.
    fn remove(state: &ApiState, id: i64) -> impl Future<Output = AdminResult<bool>> + Send;

    /// True when `record` belongs to the resource `id`.
    fn owns(record: &FileRecord, id: i64) -> bool;
}

/// `GET …/{id}`.
pub(super) async fn get<R: Resource>(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(R::load(&state, id).await?.view()))
}

/// `POST …`.
pub(super) async fn create<R: Resource>(
    State(state): State<ApiState>,
    actor: Actor,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let created = R::create(&state, &body).await?;
    let after = created.view();
    audit::record(&state, &actor, "create", R::KIND, Some(created.id().to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

/// `PATCH …/{id}`.
pub(super) async fn update<R: Resource>(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = R::load(&state, id).await?;
    let updated = R::update(&state, &current, &body).await?;
    let (before, after) = (current.view(), updated.view());
    audit::record(&state, &actor, "update", R::KIND, Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

/// `DELETE …/{id}`: the rows first, then the stored files they owned.
pub(super) async fn delete<R: Resource>(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
) -> AdminResult<Response> {
    let current = R::load(&state, id).await?;
    let locations: Vec<String> = state
        .store
        .list_file_records()
        .await?
        .into_iter()
        .filter(|record| R::owns(record, id))
        .map(|record| record.file.location)
        .collect();
    if !R::remove(&state, id).await? {
        return Err(AdminError::NotFound);
    }
    let storage = FileStorage::new(&state.deps.settings.data_dir);
    for location in locations {
        if let Err(error) = storage.remove(&location).await {
            tracing::warn!(%error, location, kind = R::KIND, "could not remove a deleted resource's file");
        }
    }
    audit::record(&state, &actor, "delete", R::KIND, Some(id.to_string()), Some(&current.view()), None).await;
    Ok(done())
}
