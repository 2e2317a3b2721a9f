//! Teams (`/api/v1/teams`, 404 in users mode as in CTFd): list, create, read (with members,
//! captain, place and score), update (the captain must be a member), delete (members are
//! detached), members add/remove, and each team's solves, fails and awards.
//!
//! Removing a member deletes that user's submissions, awards and unlocks (CTFd behaviour);
//! adding one is atomic with the user's "no team yet" check (`store::teams`). An admin adding a
//! member is not bound by the event's team size.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::accounts::{entries_view, field_entries, place_and_score, teams_mode};
use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams};
use super::reply::{done, iso, ok};
use super::{Table, Verb, audit, profiles, results, signals};
use crate::api::ApiState;
use crate::domain::{TeamId, UserId};
use crate::store::{FieldOwner, JoinOutcome, NewTeam, StoreError, SubmissionFilter, SubmissionKind, Team, TeamUpdate};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/teams", read, list)
        .add(Post, "/api/v1/teams", write, create)
        .add(Get, "/api/v1/teams/{id}", read, get)
        .add(Patch, "/api/v1/teams/{id}", write, update)
        .add(Delete, "/api/v1/teams/{id}", write, delete)
        .add(Get, "/api/v1/teams/{id}/members", read, members)
        .add(Post, "/api/v1/teams/{id}/members", write, add_member)
        .add(Delete, "/api/v1/teams/{id}/members", write, remove_member)
        .add(Get, "/api/v1/teams/{id}/solves", read, solves)
        .add(Get, "/api/v1/teams/{id}/fails", read, fails)
        .add(Get, "/api/v1/teams/{id}/awards", read, awards)
}

fn require_teams_mode(state: &ApiState) -> AdminResult<()> {
    if teams_mode(state) { Ok(()) } else { Err(AdminError::NotFound) }
}

/// The admin view (never the password hash).
pub fn view(team: &Team) -> Value {
    json!({
        "id": team.id,
        "oauth_id": team.oauth_id,
        "name": team.name,
        "email": team.email,
        "secret": team.secret,
        "website": team.website,
        "affiliation": team.affiliation,
        "country": team.country,
        "bracket_id": team.bracket_id,
        "hidden": team.hidden,
        "banned": team.banned,
        "captain_id": team.captain_id,
        "invite_code": team.invite_code,
        "created": iso(team.created),
    })
}

async fn full_view(state: &ApiState, team: &Team) -> AdminResult<Value> {
    let mut data = view(team);
    data["fields"] = entries_view(state, FieldOwner::Team(team.id)).await?;
    let members: Vec<UserId> = state.store.team_members(team.id).await?.iter().map(|user| user.id).collect();
    data["members"] = json!(members);
    Ok(data)
}

async fn load(state: &ApiState, id: i64) -> AdminResult<Team> {
    require_teams_mode(state)?;
    Ok(state.store.get_team(TeamId(id)).await?)
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    require_teams_mode(&state)?;
    let teams = state.store.list_teams(0, i64::MAX).await?;
    profiles::list_page(&teams, &query, view)
}

async fn profile_fields(state: &ApiState, fields: &mut Fields<'_>, update: &mut TeamUpdate) -> AdminResult<()> {
    let profile = profiles::read_profile(state, fields, false).await?;
    update.email = profile.email;
    update.website = profile.website;
    update.affiliation = profile.affiliation;
    update.country = profile.country;
    update.secret = profile.secret;
    update.bracket_id = profile.bracket_id;
    update.hidden = profile.hidden;
    update.banned = profile.banned;
    match fields.text("password", 128) {
        Opt::Set(password) if password.is_empty() => update.password_hash = Some(None),
        Opt::Set(password) => {
            update.password_hash = Some(Some(
                crate::auth::hash_password(&password).map_err(|error| AdminError::Internal(error.to_string()))?,
            ));
        }
        Opt::Null => update.password_hash = Some(None),
        Opt::Absent => {}
    }
    Ok(())
}

const TEAM_CONFLICTS: &[(&str, &str, &str)] = &[
    ("teams_name_uq", "name", "Team name has already been taken"),
    ("teams_email_uq", "email", "Email address has already been used"),
];

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    require_teams_mode(&state)?;
    let mut fields = Fields::new(&body);
    let name = fields.required_text("name", 128);
    let mut extra = TeamUpdate::default();
    profile_fields(&state, &mut fields, &mut extra).await?;
    let entries = field_entries(&state, &mut fields, "team").await?;
    if fields.raw("captain_id").is_some_and(|value| !value.is_null()) {
        fields.error("captain_id", "Invalid Captain ID: add members first, then set the captain");
    }
    fields.finish()?;
    let Some(name) = name else { return Err(AdminError::field("name", "is required")) };
    let new_team = NewTeam {
        name: name.trim().to_owned(),
        email: extra.email.clone().flatten(),
        password_hash: extra.password_hash.clone().flatten(),
        invite_code: None,
        bracket_id: extra.bracket_id.flatten(),
        hidden: extra.hidden.unwrap_or(false),
        banned: extra.banned.unwrap_or(false),
    };
    let created = state
        .store
        .create_team_full(&new_team, &extra)
        .await
        .map_err(|error| AdminError::from_store_on(error, TEAM_CONFLICTS))?;
    if let Some(entries) = entries {
        state.store.set_field_entries(FieldOwner::Team(created.id), &entries).await?;
    }
    let after = full_view(&state, &created).await?;
    audit::record(&state, &actor, "create", "team", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let team = load(&state, id).await?;
    let mut data = full_view(&state, &team).await?;
    let (place, score) = place_and_score(&state, true, id).await?;
    data["place"] = json!(place);
    data["score"] = json!(score);
    Ok(ok(data))
}

async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = load(&state, id).await?;
    let mut fields = Fields::new(&body);
    let mut update = TeamUpdate::default();
    if fields.has("name") {
        update.name = fields.required_text("name", 128).map(|name| name.trim().to_owned());
    }
    profile_fields(&state, &mut fields, &mut update).await?;
    let entries = field_entries(&state, &mut fields, "team").await?;
    let captain = fields.int("captain_id", 1, i64::MAX);
    if let Opt::Set(captain_id) = captain {
        let members = state.store.team_members(current.id).await?;
        if !members.iter().any(|member| member.id == UserId(captain_id)) {
            fields.error("captain_id", "Invalid Captain ID");
        }
    }
    fields.finish()?;
    let updated = state
        .store
        .update_team(current.id, &update)
        .await
        .map_err(|error| AdminError::from_store_on(error, TEAM_CONFLICTS))?;
    if let Some(captain) = captain.patch()
        && !state.store.set_team_captain(current.id, captain.map(UserId)).await?
    {
        return Err(AdminError::field("captain_id", "Invalid Captain ID"));
    }
    if let Some(entries) = entries {
        state.store.set_field_entries(FieldOwner::Team(updated.id), &entries).await?;
    }
    let changes = profiles::changes(&current, &updated);
    if changes.newly_banned {
        profiles::revoke_sessions(&state, member_ids(&state, current.id).await?).await?;
    }
    let updated = state.store.get_team(current.id).await?;
    if changes.visible || updated.captain_id != current.captain_id {
        signals::accounts(&state).await;
        if updated.banned != current.banned || updated.hidden != current.hidden {
            signals::solvers(&state).await;
        } else {
            signals::scores(&state).await;
        }
    }
    let before = full_view(&state, &current).await?;
    let after = full_view(&state, &updated).await?;
    audit::record(&state, &actor, "update", "team", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = load(&state, id).await?;
    let before = full_view(&state, &current).await?;
    if !state.store.delete_team(current.id).await? {
        return Err(AdminError::NotFound);
    }
    signals::accounts(&state).await;
    signals::solvers(&state).await;
    audit::record(&state, &actor, "delete", "team", Some(id.to_string()), Some(&before), None).await;
    Ok(done())
}

async fn member_ids(state: &ApiState, team: TeamId) -> AdminResult<Vec<UserId>> {
    Ok(state.store.team_members(team).await?.iter().map(|user| user.id).collect())
}

async fn members(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let team = load(&state, id).await?;
    Ok(ok(member_ids(&state, team.id).await?))
}

fn user_id_of(fields: &mut Fields<'_>) -> Option<UserId> {
    match fields.int("user_id", 1, i64::MAX) {
        Opt::Set(id) => Some(UserId(id)),
        _ => {
            if !fields.has_errors() {
                fields.error("user_id", "is required");
            }
            None
        }
    }
}

/// `POST /api/v1/teams/{id}/members {user_id}`; an empty body returns the invite code.
async fn add_member(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let team = load(&state, id).await?;
    if body.is_empty() {
        let code = match team.invite_code.clone() {
            Some(code) => code,
            None => {
                let code = super::storage::random_dir();
                let update = TeamUpdate { invite_code: Some(Some(code.clone())), ..TeamUpdate::default() };
                state.store.update_team(team.id, &update).await?;
                audit::record(&state, &actor, "invite_code", "team", Some(id.to_string()), None, None).await;
                code
            }
        };
        return Ok(ok(json!({"code": code})));
    }
    let mut fields = Fields::new(&body);
    let user_id = user_id_of(&mut fields);
    fields.finish()?;
    let Some(user_id) = user_id else { return Err(AdminError::field("user_id", "is required")) };
    match state.store.add_team_member(team.id, user_id, None).await {
        Ok(JoinOutcome::Joined) => {}
        Ok(JoinOutcome::AlreadyInTeam) => return Err(AdminError::field("id", "User has already joined a team")),
        Ok(JoinOutcome::TeamFull) => return Err(AdminError::field("id", "The team is full")),
        Err(StoreError::NotFound) => return Err(AdminError::field("user_id", "user does not exist")),
        Err(error) => return Err(error.into()),
    }
    signals::account(&state, user_id).await;
    signals::scores(&state).await;
    let after = json!({"team_id": team.id, "user_id": user_id});
    audit::record(&state, &actor, "add_member", "team", Some(id.to_string()), None, Some(&after)).await;
    Ok(ok(member_ids(&state, team.id).await?))
}

async fn remove_member(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let team = load(&state, id).await?;
    let mut fields = Fields::new(&body);
    let user_id = user_id_of(&mut fields);
    fields.finish()?;
    let Some(user_id) = user_id else { return Err(AdminError::field("user_id", "is required")) };
    if !state.store.remove_team_member(team.id, user_id, true).await? {
        return Err(AdminError::field("id", "User is not part of this team"));
    }
    signals::account(&state, user_id).await;
    signals::scores(&state).await;
    let before = json!({"team_id": team.id, "user_id": user_id});
    audit::record(&state, &actor, "remove_member", "team", Some(id.to_string()), Some(&before), None).await;
    Ok(ok(member_ids(&state, team.id).await?))
}

async fn results_of(state: &ApiState, id: i64, kind: SubmissionKind) -> AdminResult<Response> {
    let team = load(state, id).await?;
    let filter = SubmissionFilter { team_id: Some(team.id), kind: Some(kind), ..SubmissionFilter::default() };
    results::counted_submissions(state, &filter).await
}

async fn solves(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    results_of(&state, id, SubmissionKind::Correct).await
}

async fn fails(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    results_of(&state, id, SubmissionKind::Incorrect).await
}

async fn awards(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let team = load(&state, id).await?;
    Ok(profiles::awards_response(&state.store.list_awards(Some(team.id), None).await?))
}
