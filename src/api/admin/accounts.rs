//! Account-side resources shared by users and teams: brackets (`/api/v1/brackets`), custom
//! registration fields (`/api/v1/configs/fields`) and their values, awards (`/api/v1/awards`),
//! and the helpers users and teams share (profile validation, scores and places).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams, value_as_text};
use super::reply::{done, iso, ok};
use super::{Table, Verb, audit, signals};
use crate::api::ApiState;
use crate::domain::{BracketId, TeamId, UserId};
use crate::event::UserMode;
use crate::store::{Award, Bracket, Field, FieldOwner, NewAward, NewField, StoreError};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/brackets", read, list_brackets)
        .add(Post, "/api/v1/brackets", write, create_bracket)
        .add(Patch, "/api/v1/brackets/{id}", write, update_bracket)
        .add(Delete, "/api/v1/brackets/{id}", write, delete_bracket)
        .add(Get, "/api/v1/configs/fields", read, list_fields)
        .add(Post, "/api/v1/configs/fields", write, create_field)
        .add(Get, "/api/v1/configs/fields/{id}", read, get_field)
        .add(Patch, "/api/v1/configs/fields/{id}", write, update_field)
        .add(Delete, "/api/v1/configs/fields/{id}", write, delete_field)
        .add(Get, "/api/v1/awards", read, list_awards)
        .add(Post, "/api/v1/awards", write, create_award)
        .add(Get, "/api/v1/awards/{id}", read, get_award)
        .add(Patch, "/api/v1/awards/{id}", write, update_award)
        .add(Delete, "/api/v1/awards/{id}", write, delete_award)
}

/// True for a two-letter upper-case country code (ISO 3166-1 alpha-2 shape).
pub fn country_ok(text: &str) -> bool {
    text.len() == 2 && text.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// Reads `country` (validated), `None` when absent.
pub fn country_field(fields: &mut Fields<'_>) -> Option<Option<String>> {
    match fields.text("country", 2 + 30) {
        Opt::Set(country) if country.is_empty() => Some(None),
        Opt::Set(country) if country_ok(&country) => Some(Some(country)),
        Opt::Set(_) => {
            fields.error("country", "must be an ISO 3166-1 alpha-2 code such as FR");
            None
        }
        Opt::Null => Some(None),
        Opt::Absent => None,
    }
}

/// Reads an e-mail address (validated), `None` when absent.
pub fn email_field(fields: &mut Fields<'_>) -> Option<Option<String>> {
    match fields.text("email", 128) {
        Opt::Set(email) if email.trim().is_empty() => Some(None),
        Opt::Set(email) => {
            let valid = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            }) && !email.chars().any(char::is_whitespace);
            if valid {
                Some(Some(email.trim().to_owned()))
            } else {
                fields.error("email", "Emails must be a properly formatted email address");
                None
            }
        }
        Opt::Null => Some(None),
        Opt::Absent => None,
    }
}

/// Reads `bracket_id` (the bracket must exist), `None` when absent.
pub async fn bracket_field(state: &ApiState, fields: &mut Fields<'_>) -> AdminResult<Option<Option<BracketId>>> {
    match fields.int("bracket_id", 1, i64::MAX) {
        Opt::Set(id) => match state.store.get_bracket(BracketId(id)).await {
            Ok(bracket) => Ok(Some(Some(bracket.id))),
            Err(StoreError::NotFound) => {
                fields.error("bracket_id", "bracket does not exist");
                Ok(None)
            }
            Err(error) => Err(error.into()),
        },
        Opt::Null => Ok(Some(None)),
        Opt::Absent => Ok(None),
    }
}

/// Reads `fields: [{field_id, value}]` for a `user` or `team` form.
pub async fn field_entries(
    state: &ApiState,
    fields: &mut Fields<'_>,
    kind: &str,
) -> AdminResult<Option<Vec<(i64, String)>>> {
    let Some(raw) = fields.raw("fields") else { return Ok(None) };
    let Value::Array(items) = raw else {
        fields.error("fields", "must be a list of {field_id, value}");
        return Ok(None);
    };
    let known: Vec<Field> = state.store.list_fields(Some(kind)).await?;
    let mut entries = Vec::new();
    for item in items {
        let field_id = item.get("field_id").and_then(super::input::int_of);
        let value = item.get("value").and_then(value_as_text);
        match (field_id, value) {
            (Some(field_id), Some(value)) if known.iter().any(|field| field.id == field_id) => {
                if value.chars().count() > 65_535 {
                    fields.error("fields", "values must be at most 65535 characters");
                } else {
                    entries.push((field_id, value));
                }
            }
            (Some(field_id), Some(_)) => fields.error("fields", format!("field {field_id} is not a {kind} field")),
            _ => fields.error("fields", "each entry needs a field_id and a value"),
        }
    }
    Ok(Some(entries))
}

/// `[{field_id, name, type, description, value}]` of an owner.
pub async fn entries_view(state: &ApiState, owner: FieldOwner) -> AdminResult<Value> {
    let definitions = state.store.list_fields(None).await?;
    let entries = state.store.list_field_entries(owner).await?;
    let data: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let definition = definitions.iter().find(|field| field.id == entry.field_id);
            json!({
                "field_id": entry.field_id,
                "name": definition.map(|field| field.field.name.clone()),
                "type": definition.map(|field| field.field.field_type.clone()),
                "description": definition.map(|field| field.field.description.clone()),
                "value": entry.value,
            })
        })
        .collect();
    Ok(json!(data))
}

/// True in teams mode.
pub fn teams_mode(state: &ApiState) -> bool {
    state.event.current().user_mode == UserMode::Teams
}

/// `(place, score)` of a team (teams mode) or user (users mode); place is `None` for accounts
/// left off the scoreboard (hidden, banned, staff).
pub async fn place_and_score(state: &ApiState, teams: bool, account_id: i64) -> AdminResult<(Option<usize>, i64)> {
    let standings = state.store.standings(teams, None).await?;
    if let Some(position) = standings.iter().position(|standing| standing.account_id == account_id) {
        return Ok((Some(position + 1), standings[position].score));
    }
    let events = state.store.score_events(None).await?;
    let score = events
        .iter()
        .filter(|event| {
            if teams { event.team_id == Some(TeamId(account_id)) } else { event.user_id == Some(UserId(account_id)) }
        })
        .map(|event| event.value)
        .sum();
    Ok((None, score))
}

fn bracket_view(bracket: &Bracket) -> Value {
    json!({"id": bracket.id, "name": bracket.name, "description": bracket.description, "type": bracket.kind})
}

async fn list_brackets(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let mut data = Vec::new();
    for bracket in state.store.list_brackets().await? {
        if query.text("name").is_some_and(|name| name != bracket.name)
            || query.text("type").is_some_and(|kind| kind != bracket.kind)
        {
            continue;
        }
        data.push(bracket_view(&bracket));
    }
    Ok(ok(data))
}

fn bracket_fields(fields: &mut Fields<'_>, bracket: &mut Bracket, creating: bool) {
    let name = if creating || fields.has("name") { fields.required_text("name", 255) } else { None };
    if let Some(name) = name {
        bracket.name = name;
    }
    match fields.text("description", 65_535) {
        Opt::Set(text) => bracket.description = text,
        Opt::Null => bracket.description.clear(),
        Opt::Absent => {}
    }
    if let Opt::Set(kind) = fields.choice("type", &["users", "teams"]) {
        bracket.kind = kind;
    }
}

async fn create_bracket(
    State(state): State<ApiState>,
    actor: Actor,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let default_kind = if teams_mode(&state) { "teams" } else { "users" };
    let mut bracket =
        Bracket { id: BracketId(0), name: String::new(), description: String::new(), kind: default_kind.into() };
    bracket_fields(&mut fields, &mut bracket, true);
    fields.finish()?;
    let created = state.store.create_bracket(&bracket.name, &bracket.description, &bracket.kind).await?;
    let after = bracket_view(&created);
    audit::record(&state, &actor, "create", "bracket", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn update_bracket(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_bracket(BracketId(id)).await?;
    let mut fields = Fields::new(&body);
    let mut bracket = current.clone();
    bracket_fields(&mut fields, &mut bracket, false);
    fields.finish()?;
    let updated = state.store.update_bracket(&bracket).await?;
    signals::scores(&state).await;
    let (before, after) = (bracket_view(&current), bracket_view(&updated));
    audit::record(&state, &actor, "update", "bracket", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete_bracket(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_bracket(BracketId(id)).await?;
    if !state.store.delete_bracket(current.id).await? {
        return Err(AdminError::NotFound);
    }
    signals::scores(&state).await;
    audit::record(&state, &actor, "delete", "bracket", Some(id.to_string()), Some(&bracket_view(&current)), None).await;
    Ok(done())
}

fn field_view(field: &Field) -> Value {
    json!({
        "id": field.id, "name": field.field.name, "type": field.field.kind, "field_type": field.field.field_type,
        "description": field.field.description, "required": field.field.required, "public": field.field.public,
        "editable": field.field.editable,
    })
}

fn custom_field_fields(fields: &mut Fields<'_>, field: &mut NewField, creating: bool) {
    let name = if creating || fields.has("name") { fields.required_text("name", 255) } else { None };
    if let Some(name) = name {
        field.name = name;
    }
    if let Opt::Set(kind) = fields.choice("type", &["user", "team"]) {
        field.kind = kind;
    }
    if let Opt::Set(field_type) = fields.choice("field_type", &["text", "boolean"]) {
        field.field_type = field_type;
    }
    match fields.text("description", 65_535) {
        Opt::Set(text) => field.description = text,
        Opt::Null => field.description.clear(),
        Opt::Absent => {}
    }
    for (key, target) in
        [("required", &mut field.required), ("public", &mut field.public), ("editable", &mut field.editable)]
    {
        if let Some(value) = fields.bool(key).patch() {
            *target = value.unwrap_or(false);
        }
    }
}

async fn list_fields(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let fields = state.store.list_fields(query.text("type")).await?;
    Ok(ok(fields.iter().map(field_view).collect::<Vec<_>>()))
}

async fn create_field(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let mut field = NewField { kind: "user".into(), field_type: "text".into(), ..NewField::default() };
    custom_field_fields(&mut fields, &mut field, true);
    fields.finish()?;
    let created = state.store.create_field(&field).await?;
    let after = field_view(&created);
    audit::record(&state, &actor, "create", "field", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get_field(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(field_view(&state.store.get_field(id).await?)))
}

async fn update_field(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_field(id).await?;
    let mut fields = Fields::new(&body);
    let mut field = current.field.clone();
    custom_field_fields(&mut fields, &mut field, false);
    fields.finish()?;
    let updated = state.store.update_field(id, &field).await?;
    let (before, after) = (field_view(&current), field_view(&updated));
    audit::record(&state, &actor, "update", "field", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete_field(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_field(id).await?;
    if !state.store.delete_field(id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "field", Some(id.to_string()), Some(&field_view(&current)), None).await;
    Ok(done())
}

/// `{id, user_id, team_id, type, name, description, date, value, category, icon, requirements, user, team}`.
pub fn award_view(award: &Award) -> Value {
    json!({
        "id": award.id,
        "user_id": award.award.user_id,
        "team_id": award.award.team_id,
        "type": "standard",
        "name": award.award.name,
        "description": award.award.description,
        "date": iso(award.date),
        "value": award.award.value,
        "category": award.award.category,
        "icon": award.award.icon,
        "requirements": null,
        "user": award.award.user_id,
        "team": award.award.team_id,
    })
}

async fn list_awards(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let user_id = query.int("user_id")?.map(UserId);
    let team_id = query.int("team_id")?.map(TeamId);
    let value = query.int("value")?;
    let mut data = Vec::new();
    for award in state.store.list_awards(team_id, user_id).await? {
        if value.is_some_and(|wanted| wanted != award.award.value)
            || query.text("category").is_some_and(|wanted| Some(wanted) != award.award.category.as_deref())
            || query.text("icon").is_some_and(|wanted| Some(wanted) != award.award.icon.as_deref())
        {
            continue;
        }
        if let Some(needle) = query.text("q") {
            let haystack = match query.text("field").unwrap_or("name") {
                "name" => award.award.name.clone(),
                "description" => award.award.description.clone(),
                "category" => award.award.category.clone().unwrap_or_default(),
                _ => return Err(AdminError::field("field", "must be name, description or category")),
            };
            if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
                continue;
            }
        }
        data.push(award_view(&award));
    }
    Ok(ok(data))
}

async fn create_award(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let user_id = fields.int("user_id", 1, i64::MAX).set();
    let team_id = fields.int("team_id", 1, i64::MAX).set();
    let name = fields.required_text("name", 80);
    let description = fields.text("description", 65_535).set().unwrap_or_default();
    let value = fields.int("value", -1_000_000_000, 1_000_000_000).set();
    let category = fields.text("category", 80).set();
    let icon = fields.text("icon", 80).set();
    if value.is_none() && !fields.has("value") {
        fields.error("value", "is required");
    }
    if user_id.is_none() && team_id.is_none() && !fields.has_errors() {
        fields.error("user_id", "an award needs a user_id or a team_id");
    }
    let mut team = team_id.map(TeamId);
    if let Some(user_id) = user_id {
        match state.store.get_user(UserId(user_id)).await {
            Ok(user) => {
                if teams_mode(&state) && team.is_none() {
                    match user.team_id {
                        Some(team_id) => team = Some(team_id),
                        None => fields.error("team_id", "User doesn't have a team to associate award with"),
                    }
                }
            }
            Err(StoreError::NotFound) => fields.error("user_id", "user does not exist"),
            Err(error) => return Err(error.into()),
        }
    }
    if let Some(team_id) = team {
        match state.store.get_team(team_id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => fields.error("team_id", "team does not exist"),
            Err(error) => return Err(error.into()),
        }
    }
    fields.finish()?;
    let award = NewAward {
        user_id: user_id.map(UserId),
        team_id: team,
        name: name.unwrap_or_default(),
        description,
        value: value.unwrap_or(0),
        category,
        icon,
    };
    let created = state.store.create_award(&award).await?;
    signals::scores(&state).await;
    let after = award_view(&created);
    audit::record(&state, &actor, "create", "award", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get_award(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(award_view(&state.store.get_award(id).await?)))
}

/// `PATCH /api/v1/awards/{id}` (an fctf addition; CTFd has none): changes the name,
/// description, value, category or icon. Who received the award and when stay as they were.
async fn update_award(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_award(id).await?;
    let mut fields = Fields::new(&body);
    let mut award = current.award.clone();
    if fields.has("name")
        && let Some(name) = fields.required_text("name", 80)
    {
        award.name = name;
    }
    match fields.text("description", 65_535) {
        Opt::Set(text) => award.description = text,
        Opt::Null => award.description.clear(),
        Opt::Absent => {}
    }
    if let Opt::Set(value) = fields.int("value", -1_000_000_000, 1_000_000_000) {
        award.value = value;
    }
    if let Some(category) = fields.text("category", 80).patch() {
        award.category = category.filter(|text| !text.is_empty());
    }
    if let Some(icon) = fields.text("icon", 80).patch() {
        award.icon = icon.filter(|text| !text.is_empty());
    }
    for key in ["user_id", "team_id", "date"] {
        if fields.has(key) {
            fields.error(key, "cannot be changed; delete the award and create another");
        }
    }
    fields.finish()?;
    let updated = state.store.update_award(id, &award).await?;
    signals::scores(&state).await;
    let (before, after) = (award_view(&current), award_view(&updated));
    audit::record(&state, &actor, "update", "award", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete_award(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_award(id).await?;
    if !state.store.delete_award(id).await? {
        return Err(AdminError::NotFound);
    }
    signals::scores(&state).await;
    audit::record(&state, &actor, "delete", "award", Some(id.to_string()), Some(&award_view(&current)), None).await;
    Ok(done())
}
