//! Challenge solutions (`/api/v1/solutions`, CTFd 3.8). `GET /api/v1/solutions` must exist:
//! every `ctf challenge sync` calls it (admin-api D9). One solution per challenge; deleting a
//! solution deletes its files too. Read, create, update and delete are the shared CRUD
//! handlers ([`super::crud`]).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::Access;
use super::children::challenge_of;
use super::crud::{self, Resource};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, Opt, QueryParams};
use super::reply::ok;
use super::{Table, Verb};
use crate::api::ApiState;
use crate::store::{FileRecord, Solution};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/solutions", read, list)
        .add(Post, "/api/v1/solutions", write, crud::create::<Solution>)
        .add(Get, "/api/v1/solutions/{id}", read, crud::get::<Solution>)
        .add(Patch, "/api/v1/solutions/{id}", write, crud::update::<Solution>)
        .add(Delete, "/api/v1/solutions/{id}", write, crud::delete::<Solution>)
}

const STATES: &[&str] = &["hidden", "visible", "solved"];

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
        data.push(solution.view());
    }
    Ok(ok(data))
}

impl Resource for Solution {
    const KIND: &'static str = "solution";

    fn id(&self) -> i64 {
        self.id
    }

    fn view(&self) -> Value {
        json!({
            "id": self.id, "challenge_id": self.challenge_id, "challenge": self.challenge_id,
            "content": self.content, "html": self.content, "state": self.state,
        })
    }

    async fn load(state: &ApiState, id: i64) -> AdminResult<Self> {
        Ok(state.store.get_solution(id).await?)
    }

    async fn create(state: &ApiState, body: &Map<String, Value>) -> AdminResult<Self> {
        let mut fields = Fields::new(body);
        let challenge_id = challenge_of(state, &mut fields, true).await?;
        let content = fields.text("content", 1_000_000).set().unwrap_or_default();
        let solution_state = fields.choice("state", STATES).set().unwrap_or_else(|| "hidden".into());
        fields.finish()?;
        let Some(challenge_id) = challenge_id else { return Err(AdminError::field("challenge_id", "is required")) };
        state.store.create_solution(challenge_id, &content, &solution_state).await.map_err(|error| {
            AdminError::from_store_on(
                error,
                &[("solutions_challenge_uq", "challenge_id", "A solution for this challenge already exists")],
            )
        })
    }

    async fn update(state: &ApiState, current: &Self, body: &Map<String, Value>) -> AdminResult<Self> {
        let mut fields = Fields::new(body);
        let content = match fields.text("content", 1_000_000) {
            Opt::Set(content) => content,
            Opt::Null => String::new(),
            Opt::Absent => current.content.clone(),
        };
        let solution_state = fields.choice("state", STATES).set().unwrap_or_else(|| current.state.clone());
        fields.finish()?;
        Ok(state.store.update_solution(current.id, &content, &solution_state).await?)
    }

    async fn remove(state: &ApiState, id: i64) -> AdminResult<bool> {
        Ok(state.store.delete_solution(id).await?)
    }

    fn owns(record: &FileRecord, id: i64) -> bool {
        record.solution_id == Some(id)
    }
}
