//! Challenge solutions (`/api/v1/solutions`, CTFd 3.8). `GET /api/v1/solutions` must exist:
//! every `ctf challenge sync` calls it (admin-api D9). One solution per challenge; deleting a
//! solution deletes its files too.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::children::challenge_of;
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams};
use super::reply::{done, ok};
use super::storage::FileStorage;
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::store::Solution;

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/solutions", read, list)
        .add(Post, "/api/v1/solutions", write, create)
        .add(Get, "/api/v1/solutions/{id}", read, get)
        .add(Patch, "/api/v1/solutions/{id}", write, update)
        .add(Delete, "/api/v1/solutions/{id}", write, delete)
}

const STATES: &[&str] = &["hidden", "visible", "solved"];

fn view(solution: &Solution) -> Value {
    json!({
        "id": solution.id, "challenge_id": solution.challenge_id, "challenge": solution.challenge_id,
        "content": solution.content, "html": solution.content, "state": solution.state,
    })
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let mut data = Vec::new();
    for solution in state.store.list_solutions().await? {
        if query.text("state").is_some_and(|wanted| wanted != solution.state) {
            continue;
        }
        if let Some(needle) = query.text("q")
            && !solution.content.to_lowercase().contains(&needle.to_lowercase())
        {
            continue;
        }
        data.push(view(&solution));
    }
    Ok(ok(data))
}

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let challenge_id = challenge_of(&state, &mut fields, true).await?;
    let content = fields.text("content", 1_000_000).set().unwrap_or_default();
    let solution_state = fields.choice("state", STATES).set().unwrap_or_else(|| "hidden".into());
    fields.finish()?;
    let Some(challenge_id) = challenge_id else { return Err(AdminError::field("challenge_id", "is required")) };
    let created = state.store.create_solution(challenge_id, &content, &solution_state).await.map_err(|error| {
        AdminError::from_store_on(
            error,
            &[("solutions_challenge_uq", "challenge_id", "A solution for this challenge already exists")],
        )
    })?;
    let after = view(&created);
    audit::record(&state, &actor, "create", "solution", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(view(&state.store.get_solution(id).await?)))
}

async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_solution(id).await?;
    let mut fields = Fields::new(&body);
    let content = match fields.text("content", 1_000_000) {
        Opt::Set(content) => content,
        Opt::Null => String::new(),
        Opt::Absent => current.content.clone(),
    };
    let solution_state = fields.choice("state", STATES).set().unwrap_or_else(|| current.state.clone());
    fields.finish()?;
    let updated = state.store.update_solution(id, &content, &solution_state).await?;
    let (before, after) = (view(&current), view(&updated));
    audit::record(&state, &actor, "update", "solution", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_solution(id).await?;
    let locations: Vec<String> = state
        .store
        .list_file_records()
        .await?
        .into_iter()
        .filter(|record| record.solution_id == Some(id))
        .map(|record| record.file.location)
        .collect();
    if !state.store.delete_solution(id).await? {
        return Err(AdminError::NotFound);
    }
    let storage = FileStorage::new(&state.deps.settings.data_dir);
    for location in locations {
        if let Err(error) = storage.remove(&location).await {
            tracing::warn!(%error, location, "could not remove a deleted solution's file");
        }
    }
    audit::record(&state, &actor, "delete", "solution", Some(id.to_string()), Some(&view(&current)), None).await;
    Ok(done())
}
