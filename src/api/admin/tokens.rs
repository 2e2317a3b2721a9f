//! API tokens (`/api/v1/tokens`): staff list, create and revoke their own tokens; admins any
//! token. A token is shown once, at creation (`value`); only its SHA-256 is stored. Tokens
//! expire after 30 days unless `expiration` (`YYYY-MM-DD` or ISO-8601) says otherwise.
//! fctf extension: an admin may pass `user_id` to create a token for another account.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams, time_of};
use super::reply::{done, iso, iso_opt, ok};
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::domain::UserId;
use crate::store::{ApiToken, StoreError};

pub(super) fn routes(table: Table, staff: Access) -> Table {
    use Verb::{Delete, Get, Post};
    table
        .add(Get, "/api/v1/tokens", staff, list)
        .add(Post, "/api/v1/tokens", staff, create)
        .add(Get, "/api/v1/tokens/{id}", staff, get)
        .add(Delete, "/api/v1/tokens/{id}", staff, delete)
}

/// Default token lifetime.
pub const DEFAULT_LIFETIME_SECS: i64 = 30 * 24 * 3600;

fn view(token: &ApiToken) -> Value {
    json!({
        "id": token.id, "type": token.kind, "user_id": token.user_id, "created": iso(token.created),
        "expiration": iso_opt(token.expires_at), "description": token.description,
    })
}

async fn list(State(state): State<ApiState>, actor: Actor, query: QueryParams) -> AdminResult<Response> {
    let owner = match query.int("user_id")? {
        Some(user_id) if actor.is_admin() => Some(UserId(user_id)),
        Some(_) => return Err(AdminError::Forbidden("only admins may list other accounts' tokens".into())),
        None => Some(actor.user_id),
    };
    let tokens = state.store.list_api_tokens(owner).await?;
    Ok(ok(tokens.iter().map(view).collect::<Vec<_>>()))
}

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let now = chrono::Utc::now().timestamp();
    let expires_at = match fields.raw("expiration") {
        None | Some(Value::Null) => Some(now + DEFAULT_LIFETIME_SECS),
        Some(value) => match time_of(value) {
            Some(time) if time > now => Some(time),
            Some(_) => {
                fields.error("expiration", "must be in the future");
                None
            }
            None => {
                fields.error("expiration", "must be a date (YYYY-MM-DD) or an ISO-8601 date-time");
                None
            }
        },
    };
    let description = fields.text("description", 255).set().unwrap_or_default();
    let owner = match fields.int("user_id", 1, i64::MAX) {
        Opt::Set(user_id) if actor.is_admin() => UserId(user_id),
        Opt::Set(_) => return Err(AdminError::Forbidden("only admins may create tokens for other accounts".into())),
        _ => actor.user_id,
    };
    if owner != actor.user_id {
        match state.store.get_user(owner).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => fields.error("user_id", "user does not exist"),
            Err(error) => return Err(error.into()),
        }
    }
    fields.finish()?;
    let (value, digest) = crate::auth::new_api_token();
    let id = state.store.create_api_token(owner, &digest, expires_at, &description).await?;
    let token = state.store.get_api_token(id).await?;
    let after = view(&token);
    audit::record(&state, &actor, "create", "token", Some(id.to_string()), None, Some(&after)).await;
    let mut data = after;
    data["value"] = json!(value);
    Ok(ok(data))
}

/// The token if the caller may see it (admins: any; others: their own); 404 otherwise.
async fn visible(state: &ApiState, actor: &Actor, id: i64) -> AdminResult<ApiToken> {
    let token = state.store.get_api_token(id).await?;
    if actor.is_admin() || token.user_id == actor.user_id { Ok(token) } else { Err(AdminError::NotFound) }
}

async fn get(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(view(&visible(&state, &actor, id).await?)))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let token = visible(&state, &actor, id).await?;
    if !state.store.revoke_api_token(id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "revoke", "token", Some(id.to_string()), Some(&view(&token)), None).await;
    Ok(done())
}
