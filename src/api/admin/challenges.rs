//! `/api/v1/challenges`: list, create, read, update, delete, and the per-challenge child lists
//! ctfcli's `verify` reads (flags, tags, topics, hints, files, requirements, solves).
//!
//! The read shape is CTFd 3.7's (admin-api D1): `logic` only when it is not `any`, and
//! `initial`, `decay`, `minimum`, `function` only when the value decays, which is what makes
//! `ctf challenge verify` pass. fctf's deployment fields are added under their own keys
//! (ctfcli ignores them). Names are unique (D4): a duplicate is a 400 on `name`. `POST` and
//! `PATCH` take JSON or form data (`forms::BodyFields`), validated alike.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::{Access, Actor};
use super::challenge_fields::{self, References, parse_stored_requirements};
use super::error::{AdminError, AdminResult};
use super::forms::BodyFields;
use super::input::{IdPath, QueryParams};
use super::reply::{done, iso_z, ok};
use super::storage::FileStorage;
use super::{Table, Verb, audit, children, files, hints, signals};
use crate::api::ApiState;
use crate::domain::ChallengeId;
use crate::store::{Challenge, NewChallenge, Store};

pub(super) fn routes(table: Table, read: Access, write: Access, results: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/challenges", read, list)
        .add(Post, "/api/v1/challenges", write, create)
        .add(Get, "/api/v1/challenges/types", read, types)
        .add(Get, "/api/v1/challenges/{id}", read, detail)
        .add(Patch, "/api/v1/challenges/{id}", write, update)
        .add(Delete, "/api/v1/challenges/{id}", write, delete)
        .add(Get, "/api/v1/challenges/{id}/flags", read, child_flags)
        .add(Get, "/api/v1/challenges/{id}/tags", read, child_tags)
        .add(Get, "/api/v1/challenges/{id}/topics", read, child_topics)
        .add(Get, "/api/v1/challenges/{id}/hints", read, child_hints)
        .add(Get, "/api/v1/challenges/{id}/files", read, child_files)
        .add(Get, "/api/v1/challenges/{id}/requirements", read, child_requirements)
        .add(Get, "/api/v1/challenges/{id}/solves", results, solves)
}

/// The CTFd 3.7 read shape plus fctf's fields.
pub fn view(challenge: &Challenge) -> Value {
    let spec = &challenge.spec;
    let deploy = &spec.deploy;
    let mut data = json!({
        "id": challenge.id,
        "name": spec.name,
        "value": spec.value,
        "description": spec.description,
        "attribution": spec.attribution,
        "connection_info": spec.connection_info,
        "next_id": spec.next_id,
        "category": spec.category,
        "state": spec.state.as_str(),
        "max_attempts": spec.max_attempts,
        "type": spec.kind,
        "type_data": {"id": spec.kind, "name": spec.kind, "templates": {}, "scripts": {}},
        "position": spec.position,
        "scheduled_at": spec.scheduled_at.map(|time| iso_z(time).trim_end_matches('Z').to_owned()),
        "difficulty": spec.difficulty,
        "cooldown": spec.cooldown,
        "require_deploy": deploy.require_deploy,
        "image": deploy.image,
        "deploy_command": deploy.command,
        "exposed_port": deploy.exposed_port,
        "connection_protocol": deploy.protocol,
        "time_limit": deploy.time_limit_minutes,
        "cpu_request": deploy.cpu_request,
        "cpu_limit": deploy.cpu_limit,
        "memory_request": deploy.memory_request,
        "memory_limit": deploy.memory_limit,
        "harden_container": deploy.harden_container,
        "use_gvisor": deploy.use_gvisor,
        "shared_instance": deploy.shared_instance,
        "max_deploy_count": deploy.max_deploy_count,
        "deploy_status": challenge.deploy_status,
    });
    if let Value::Object(map) = &mut data {
        if spec.logic != "any" {
            map.insert("logic".into(), json!(spec.logic));
        }
        if challenge.decays() {
            map.insert("initial".into(), json!(spec.initial));
            map.insert("decay".into(), json!(spec.decay));
            map.insert("minimum".into(), json!(spec.minimum));
            map.insert("function".into(), json!(spec.function));
        }
    }
    data
}

/// Reads a challenge or answers 404.
pub async fn load(store: &Store, id: i64) -> AdminResult<Challenge> {
    Ok(store.get_challenge(ChallengeId(id)).await?)
}

fn matches_filters(challenge: &Challenge, query: &QueryParams) -> Result<bool, AdminError> {
    let spec = &challenge.spec;
    let checks = [
        ("name", spec.name.as_str()),
        ("category", spec.category.as_str()),
        ("type", spec.kind.as_str()),
        ("state", spec.state.as_str()),
    ];
    for (key, actual) in checks {
        if let Some(wanted) = query.text(key)
            && wanted != actual
        {
            return Ok(false);
        }
    }
    if let Some(value) = query.int("value")?
        && value != spec.value
    {
        return Ok(false);
    }
    if let Some(attempts) = query.int("max_attempts")?
        && attempts != spec.max_attempts
    {
        return Ok(false);
    }
    if let Some(needle) = query.text("q") {
        let haystack = match query.text("field").unwrap_or("name") {
            "name" => &spec.name,
            "description" => &spec.description,
            "category" => &spec.category,
            "type" => &spec.kind,
            "state" => spec.state.as_str(),
            _ => return Err(AdminError::field("field", "must be one of name, description, category, type, state")),
        };
        if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /api/v1/challenges` (hidden ones included for staff), ordered by position (0 last),
/// value, then id.
async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let mut challenges = state.store.list_challenges().await?;
    let solves = state.store.solve_counts().await?;
    let tags = state.store.list_tags(None).await?;
    challenges.sort_by_key(|challenge| {
        let position = challenge.spec.position;
        (position == 0, position, challenge.spec.value, challenge.id)
    });
    let mut data = Vec::new();
    for challenge in &challenges {
        if !matches_filters(challenge, &query)? {
            continue;
        }
        let spec = &challenge.spec;
        let challenge_tags: Vec<Value> =
            tags.iter().filter(|tag| tag.challenge_id == challenge.id).map(|tag| json!({"value": tag.value})).collect();
        data.push(json!({
            "id": challenge.id,
            "type": spec.kind,
            "name": spec.name,
            "value": spec.value,
            "category": spec.category,
            "state": spec.state.as_str(),
            "position": spec.position,
            "solves": solves.get(&challenge.id).copied().unwrap_or(0),
            "solved_by_me": false,
            "module_id": null,
            "tags": challenge_tags,
            "template": "",
            "script": "",
        }));
    }
    Ok(ok(data))
}

/// `GET /api/v1/challenges/types`.
async fn types() -> Response {
    let entry = |id: &str, name: &str| json!({"id": id, "name": name, "templates": {}, "scripts": {}, "create": ""});
    ok(json!({
        "standard": entry("standard", "standard"),
        "dynamic": entry("dynamic", "dynamic"),
        "multiple_choice": entry("multiple_choice", "multiple_choice"),
    }))
}

/// Checks that referenced challenges exist.
async fn check_references(store: &Store, references: &References) -> AdminResult<()> {
    for id in &references.prerequisites {
        match store.get_challenge(ChallengeId(*id)).await {
            Ok(_) => {}
            Err(crate::store::StoreError::NotFound) => {
                return Err(AdminError::field("requirements", format!("challenge {id} does not exist")));
            }
            Err(error) => return Err(error.into()),
        }
    }
    if let Some(next) = references.next_id {
        match store.get_challenge(ChallengeId(next)).await {
            Ok(_) => {}
            Err(crate::store::StoreError::NotFound) => {
                return Err(AdminError::field("next_id", format!("challenge {next} does not exist")));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

const NAME_TAKEN: &[(&str, &str, &str)] =
    &[("challenges_name_uq", "name", "A challenge with this name already exists")];

/// Creates a challenge from a parsed body (shared with `challenge.yml` import).
pub async fn create_from(store: &Store, body: &Map<String, Value>) -> AdminResult<Challenge> {
    let (spec, references) = challenge_fields::apply(body, &NewChallenge::default(), true, None)?;
    check_references(store, &references).await?;
    store.create_challenge(&spec).await.map_err(|error| AdminError::from_store_on(error, NAME_TAKEN))
}

/// Applies a partial update to a challenge (shared with `challenge.yml` import); an update
/// that changes nothing writes nothing.
pub async fn update_from(store: &Store, current: &Challenge, body: &Map<String, Value>) -> AdminResult<Challenge> {
    let (spec, references) = challenge_fields::apply(body, &current.spec, false, Some(current.id))?;
    if spec == current.spec {
        // Nothing changes: no write, so `updated` and the decayed value stay as they are.
        return Ok(current.clone());
    }
    check_references(store, &references).await?;
    store.update_challenge(current.id, &spec).await.map_err(|error| AdminError::from_store_on(error, NAME_TAKEN))
}

async fn create(State(state): State<ApiState>, actor: Actor, BodyFields(body): BodyFields) -> AdminResult<Response> {
    let created = create_from(&state.store, &body).await?;
    let after = view(&created);
    audit::record(&state, &actor, "create", "challenge", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

/// `GET /api/v1/challenges/{id}`: the read shape plus files, tags, hints and solve count.
async fn detail(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let mut data = view(&challenge);
    let files = state.store.list_files(Some("challenge"), Some(challenge.id)).await?;
    let tags = state.store.list_tags(Some(challenge.id)).await?;
    let hints = state.store.list_hints(Some(challenge.id)).await?;
    let solves = state.store.solve_counts().await?.get(&challenge.id).copied().unwrap_or(0);
    if let Value::Object(map) = &mut data {
        map.insert("files".into(), json!(files.iter().map(|file| files::url_of(&file.location)).collect::<Vec<_>>()));
        map.insert("tags".into(), json!(tags.iter().map(|tag| tag.value.clone()).collect::<Vec<_>>()));
        map.insert(
            "hints".into(),
            json!(
                hints
                    .iter()
                    .map(|hint| json!({"id": hint.id, "cost": hint.hint.cost, "title": hint.hint.title, "content": hint.hint.content}))
                    .collect::<Vec<_>>()
            ),
        );
        map.insert("solves".into(), json!(solves));
        map.insert("solved_by_me".into(), json!(false));
        map.insert("attempts".into(), json!(0));
    }
    Ok(ok(data))
}

async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    BodyFields(body): BodyFields,
) -> AdminResult<Response> {
    let current = load(&state.store, id).await?;
    let updated = update_from(&state.store, &current, &body).await?;
    let (before, after) = (view(&current), view(&updated));
    if before != after {
        if current.spec.value != updated.spec.value || current.spec.state != updated.spec.state {
            signals::scores(&state).await;
        }
        audit::record(&state, &actor, "update", "challenge", Some(id.to_string()), Some(&before), Some(&after)).await;
    }
    Ok(ok(after))
}

/// Deletes a challenge, then its stored files (shared with the event tools).
pub async fn delete_with_files(state: &ApiState, challenge: &Challenge) -> AdminResult<()> {
    let mut locations: Vec<String> = state
        .store
        .list_file_records()
        .await?
        .into_iter()
        .filter(|record| record.file.challenge_id == Some(challenge.id))
        .map(|record| record.file.location)
        .collect();
    let solutions = state.store.list_solutions().await?;
    if let Some(solution) = solutions.iter().find(|solution| solution.challenge_id == challenge.id) {
        for record in state.store.list_file_records().await? {
            if record.solution_id == Some(solution.id) {
                locations.push(record.file.location);
            }
        }
    }
    if !state.store.delete_challenge(challenge.id).await? {
        return Err(AdminError::NotFound);
    }
    let storage = FileStorage::new(&state.deps.settings.data_dir);
    for location in locations {
        if let Err(error) = storage.remove(&location).await {
            tracing::warn!(%error, location, "could not remove a deleted challenge's file");
        }
    }
    Ok(())
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    delete_with_files(&state, &challenge).await?;
    signals::scores(&state).await;
    audit::record(&state, &actor, "delete", "challenge", Some(id.to_string()), Some(&view(&challenge)), None).await;
    Ok(done())
}

async fn child_flags(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let flags = state.store.list_flags(Some(challenge.id)).await?;
    Ok(ok(flags.iter().map(children::flag_view).collect::<Vec<_>>()))
}

async fn child_tags(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let tags = state.store.list_tags(Some(challenge.id)).await?;
    Ok(ok(tags.iter().map(children::tag_view).collect::<Vec<_>>()))
}

async fn child_topics(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let links = state.store.list_topic_links(challenge.id).await?;
    Ok(ok(links.iter().map(children::link_view).collect::<Vec<_>>()))
}

async fn child_hints(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let hints = state.store.list_hints(Some(challenge.id)).await?;
    Ok(ok(hints.iter().map(hints::admin_view).collect::<Vec<_>>()))
}

async fn child_files(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let records = state.store.list_file_records().await?;
    let data: Vec<Value> =
        records.iter().filter(|record| record.file.challenge_id == Some(challenge.id)).map(files::view).collect();
    Ok(ok(data))
}

async fn child_requirements(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    Ok(ok(parse_stored_requirements(challenge.spec.requirements.as_deref())))
}

/// `GET /api/v1/challenges/{id}/solves`: `[{account_id, name, date, account_url}]`.
async fn solves(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = load(&state.store, id).await?;
    let teams_mode = state.event.current().user_mode == crate::event::UserMode::Teams;
    let mut data = Vec::new();
    for solve in state.store.list_challenge_solves(challenge.id).await? {
        let (account_id, name, url) = match (teams_mode, solve.account.team_id) {
            (true, Some(team_id)) => {
                let team = state.store.get_team(team_id).await?;
                if team.hidden || team.banned {
                    continue;
                }
                (team.id.get(), team.name, format!("/teams/{}", team.id))
            }
            _ => {
                let user = state.store.get_user(solve.account.user_id).await?;
                if user.hidden || user.banned {
                    continue;
                }
                (user.id.get(), user.name, format!("/users/{}", user.id))
            }
        };
        data.push(json!({"account_id": account_id, "name": name, "date": iso_z(solve.date), "account_url": url}));
    }
    Ok(ok(data))
}
