//! Users (`/api/v1/users`): paginated list (50 per page, `per_page` up to 100 as an
//! extension; admin-api D11), create, read, update, delete, and each user's solves, fails and
//! awards.
//!
//! Decisions: `type` accepts fctf's staff roles (`admin`, `jury`, `challenge_writer`) besides
//! CTFd's `user` and `admin`. A ban, a role change or a password change revokes the user's
//! sessions at once (API tokens of a banned account are refused by the guard). Admins cannot
//! ban, demote or delete themselves, so an event never loses its last way in by accident.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::accounts::{entries_view, field_entries, place_and_score};
use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams};
use super::reply::{done, iso, ok};
use super::{Table, Verb, audit, profiles, results, signals};
use crate::api::ApiState;
use crate::domain::UserId;
use crate::store::{FieldOwner, NewUser, SubmissionFilter, SubmissionKind, User, UserRole, UserUpdate};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/users", read, list)
        .add(Post, "/api/v1/users", write, create)
        .add(Get, "/api/v1/users/{id}", read, get)
        .add(Patch, "/api/v1/users/{id}", write, update)
        .add(Delete, "/api/v1/users/{id}", write, delete)
        .add(Get, "/api/v1/users/{id}/solves", read, solves)
        .add(Get, "/api/v1/users/{id}/fails", read, fails)
        .add(Get, "/api/v1/users/{id}/awards", read, awards)
}

const ROLES: &[&str] = &["user", "admin", "jury", "challenge_writer"];

/// The admin view (never the password hash).
pub fn view(user: &User) -> Value {
    json!({
        "id": user.id,
        "oauth_id": user.oauth_id,
        "name": user.name,
        "email": user.email,
        "type": user.role.as_str(),
        "secret": user.secret,
        "website": user.website,
        "affiliation": user.affiliation,
        "country": user.country,
        "language": user.language,
        "bracket_id": user.bracket_id,
        "team_id": user.team_id,
        "hidden": user.hidden,
        "banned": user.banned,
        "verified": user.verified,
        "change_password": user.change_password,
        "created": iso(user.created),
    })
}

async fn full_view(state: &ApiState, user: &User) -> AdminResult<Value> {
    let mut data = view(user);
    data["fields"] = entries_view(state, FieldOwner::User(user.id)).await?;
    Ok(data)
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let users = state.store.list_users(0, i64::MAX).await?;
    profiles::list_page(&users, &query, view)
}

/// Reads the profile fields shared by create and update into `update`.
async fn profile_fields(state: &ApiState, fields: &mut Fields<'_>, update: &mut UserUpdate) -> AdminResult<()> {
    let profile = profiles::read_profile(state, fields, true).await?;
    update.email = profile.email;
    update.website = profile.website;
    update.affiliation = profile.affiliation;
    update.country = profile.country;
    update.secret = profile.secret;
    update.bracket_id = profile.bracket_id;
    update.hidden = profile.hidden;
    update.banned = profile.banned;
    update.verified = profile.verified;
    match fields.text("language", 16) {
        Opt::Set(language) if language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            update.language = Some(Some(language).filter(|text| !text.is_empty()));
        }
        Opt::Set(_) => fields.error("language", "must be a language code such as en or pt-BR"),
        Opt::Null => update.language = Some(None),
        Opt::Absent => {}
    }
    update.oauth_id = fields.int("oauth_id", 1, i64::MAX).patch();
    update.change_password = fields.bool("change_password").set();
    if let Opt::Set(role) = fields.choice("type", ROLES) {
        update.role = role.parse::<UserRole>().ok();
    }
    Ok(())
}

fn password_field(fields: &mut Fields<'_>, required: bool) -> Option<String> {
    match fields.text("password", 128) {
        Opt::Set(password) if password.chars().count() >= 8 => Some(password),
        Opt::Set(_) => {
            fields.error("password", "must be at least 8 characters");
            None
        }
        Opt::Null | Opt::Absent => {
            if required && !fields.has("password") {
                fields.error("password", "is required");
            } else if required {
                fields.error("password", "must be a string");
            }
            None
        }
    }
}

fn hash(password: &str) -> AdminResult<String> {
    crate::auth::hash_password(password).map_err(|error| AdminError::Internal(error.to_string()))
}

const USER_CONFLICTS: &[(&str, &str, &str)] = &[
    ("users_name_uq", "name", "User name has already been taken"),
    ("users_email_uq", "email", "Email address has already been used"),
    ("users_oauth_id_uq", "oauth_id", "OAuth id has already been used"),
];

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let name = fields.required_text("name", 128);
    let password = password_field(&mut fields, true);
    let mut extra = UserUpdate::default();
    profile_fields(&state, &mut fields, &mut extra).await?;
    let entries = field_entries(&state, &mut fields, "user").await?;
    fields.finish()?;
    let (Some(name), Some(password)) = (name, password) else {
        return Err(AdminError::field("name", "is required"));
    };
    let new_user = NewUser {
        name: name.trim().to_owned(),
        email: extra.email.clone().flatten(),
        password_hash: hash(&password)?,
        role: extra.role.unwrap_or(UserRole::User),
        verified: extra.verified.unwrap_or(false),
    };
    let created = state
        .store
        .create_user_full(&new_user, &extra)
        .await
        .map_err(|error| AdminError::from_store_on(error, USER_CONFLICTS))?;
    if let Some(entries) = entries {
        state.store.set_field_entries(FieldOwner::User(created.id), &entries).await?;
    }
    let after = full_view(&state, &created).await?;
    audit::record(&state, &actor, "create", "user", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let user = state.store.get_user(UserId(id)).await?;
    let mut data = full_view(&state, &user).await?;
    let (place, score) = place_and_score(&state, false, id).await?;
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
    let current = state.store.get_user(UserId(id)).await?;
    let mut fields = Fields::new(&body);
    let mut update = UserUpdate::default();
    if fields.has("name") {
        update.name = fields.required_text("name", 128).map(|name| name.trim().to_owned());
    }
    let password = if fields.has("password") { password_field(&mut fields, true) } else { None };
    profile_fields(&state, &mut fields, &mut update).await?;
    let entries = field_entries(&state, &mut fields, "user").await?;
    if current.id == actor.user_id {
        if update.banned == Some(true) {
            fields.error("id", "You cannot ban yourself");
        }
        if update.role.is_some_and(|role| role != current.role) {
            fields.error("type", "You cannot change your own role");
        }
    }
    fields.finish()?;
    if let Some(password) = &password {
        update.password_hash = Some(hash(password)?);
    }
    let updated = state
        .store
        .update_user(current.id, &update)
        .await
        .map_err(|error| AdminError::from_store_on(error, USER_CONFLICTS))?;
    if let Some(entries) = entries {
        state.store.set_field_entries(FieldOwner::User(updated.id), &entries).await?;
    }
    let changes = profiles::changes(&current, &updated);
    let revoke = changes.newly_banned || updated.role != current.role || password.is_some();
    if revoke {
        profiles::revoke_sessions(&state, [updated.id]).await?;
    }
    if revoke || changes.visible {
        signals::account(&state, updated.id).await;
        if updated.banned != current.banned || updated.hidden != current.hidden {
            signals::solvers(&state).await;
        } else {
            signals::scores(&state).await;
        }
    }
    let before = full_view(&state, &current).await?;
    let after = full_view(&state, &updated).await?;
    audit::record(&state, &actor, "update", "user", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_user(UserId(id)).await?;
    if current.id == actor.user_id {
        return Err(AdminError::field("id", "You cannot delete yourself"));
    }
    let before = full_view(&state, &current).await?;
    if !state.store.delete_user(current.id).await? {
        return Err(AdminError::NotFound);
    }
    signals::account(&state, current.id).await;
    signals::solvers(&state).await;
    audit::record(&state, &actor, "delete", "user", Some(id.to_string()), Some(&before), None).await;
    Ok(done())
}

async fn results_of(state: &ApiState, id: i64, kind: SubmissionKind) -> AdminResult<Response> {
    let user = state.store.get_user(UserId(id)).await?;
    let filter = SubmissionFilter { user_id: Some(user.id), kind: Some(kind), ..SubmissionFilter::default() };
    results::counted_submissions(state, &filter).await
}

async fn solves(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    results_of(&state, id, SubmissionKind::Correct).await
}

async fn fails(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    results_of(&state, id, SubmissionKind::Incorrect).await
}

async fn awards(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let user = state.store.get_user(UserId(id)).await?;
    Ok(profiles::awards_response(&state.store.list_awards(None, Some(user.id)).await?))
}
