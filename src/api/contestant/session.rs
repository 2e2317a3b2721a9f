//! Contestant sessions: HS256 JWTs with the contract's claims, one active session per user,
//! and the per-request account check behind the [`Player`] extractor.
//!
//! Token: `{"userId":"12","teamId":"3","nameid":"12","tokenUuid":"<uuid>","exp":<unix>}`
//! signed with `secrets.jwt`, valid 7 days (5 minutes of clock leeway). The `tokenUuid` is the
//! `token_id` of the user's active row in `sessions`; a new login replaces that row, so older
//! tokens die at once.
//!
//! Per-request check (contract §1.4, in that order; plain-text answers): bad claims → 401
//! `Invalid user token.`; unknown user → 401 `User not found.`; session gone, replaced or
//! expired → 401 `Invalid user token`; team changed since login → 401 `Invalid user token.`;
//! then 403 `Account not verified.` / `Account banned.` / `Account hidden.` /
//! `Your team has been banned.`. The account snapshot this needs is one store query, kept in
//! process for at most [`SNAPSHOT_TTL`] (1 s) and dropped at once in every process when a
//! session or account changes (`signals::account_changed` → `Cache::notify`); so a logout,
//! ban, hide, team change or password change takes effect everywhere within about a second
//! even when nobody signals it, and immediately when someone does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::context::Contestant;
use super::error::ApiError;
use crate::api::ApiState;
use crate::domain::{TeamId, UserId};
use crate::event::UserMode;
use crate::store::{Account, AccountSnapshot, TeamSnapshot};

/// How long a token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long an account snapshot is reused in process.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(1);
/// Cap on cached snapshots (the map is cleared when it grows beyond it).
const SNAPSHOT_CAPACITY: usize = 100_000;

/// The session JWT's claims (all strings but `exp`, as in the original).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Team id (`0` when none).
    #[serde(rename = "teamId")]
    pub team_id: String,
    /// User id again (the name-identifier claim the server reads).
    pub nameid: String,
    /// Session token id.
    #[serde(rename = "tokenUuid")]
    pub token_uuid: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// Signs a session token.
pub fn encode_token(key: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(key))
}

/// Verifies signature and lifetime and returns the claims.
pub fn decode_token(key: &[u8], token: &str) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 300;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation).ok().map(|data| data.claims)
}

/// Opens a new session for the user (revoking the previous one) and returns its token.
pub async fn issue_session(
    state: &ApiState,
    context: &Contestant,
    user_id: UserId,
    team_id: Option<TeamId>,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<String, ApiError> {
    let token_id = uuid::Uuid::new_v4().hyphenated().to_string();
    let exp = chrono::Utc::now().timestamp() + TOKEN_LIFETIME.as_secs() as i64;
    state.store.create_session(user_id, &token_id, exp, ip, user_agent).await?;
    super::signals::account_changed(&state.cache, Some(context), user_id).await;
    let claims = Claims {
        user_id: user_id.get().to_string(),
        team_id: team_id.map(TeamId::get).unwrap_or(0).to_string(),
        nameid: user_id.get().to_string(),
        token_uuid: token_id,
        exp,
    };
    encode_token(state.secrets.jwt(), &claims).map_err(|error| ApiError::internal(&error))
}

/// An authenticated contestant whose account passed the per-request check.
#[derive(Debug, Clone)]
pub struct Player {
    /// The user.
    pub user_id: UserId,
    /// The user's team (the JWT's and the store's agree).
    pub team_id: Option<TeamId>,
    /// The session's token id.
    pub token_id: String,
    /// The account as checked.
    pub account: Arc<AccountSnapshot>,
}

impl Player {
    /// The user's team, if any.
    pub fn team(&self) -> Option<&TeamSnapshot> {
        self.account.team.as_ref()
    }

    /// The login name.
    pub fn name(&self) -> &str {
        &self.account.name
    }

    /// True when the user is the captain of its team.
    pub fn is_captain(&self) -> bool {
        self.team().and_then(|team| team.captain_id) == Some(self.user_id)
    }

    /// The scoring account: the team in teams mode, the user alone in users mode.
    pub fn account_for(&self, mode: UserMode) -> Account {
        match mode {
            UserMode::Teams => Account { user_id: self.user_id, team_id: self.team_id },
            UserMode::Users => Account { user_id: self.user_id, team_id: None },
        }
    }
}

/// Cached snapshots by user, with the time they were read (`None`: no such user).
type Snapshots = HashMap<UserId, (Instant, Option<Arc<AccountSnapshot>>)>;

/// The in-process cache of account snapshots.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    entries: Mutex<Snapshots>,
    generation: AtomicU64,
}

impl SnapshotCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshots> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, user_id: UserId) -> Option<Option<Arc<AccountSnapshot>>> {
        let entries = self.lock();
        let (stored, snapshot) = entries.get(&user_id)?;
        (stored.elapsed() < SNAPSHOT_TTL).then(|| snapshot.clone())
    }

    fn put(&self, user_id: UserId, snapshot: Option<Arc<AccountSnapshot>>, generation: u64) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= SNAPSHOT_CAPACITY {
            entries.clear();
        }
        entries.insert(user_id, (Instant::now(), snapshot));
    }

    /// Drops one user's snapshot (or every snapshot with `None`).
    pub fn invalidate(&self, user_id: Option<UserId>) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        match user_id {
            Some(user_id) => {
                entries.remove(&user_id);
            }
            None => entries.clear(),
        }
    }

    async fn load(&self, state: &ApiState, user_id: UserId) -> Result<Option<Arc<AccountSnapshot>>, ApiError> {
        if let Some(cached) = self.get(user_id) {
            return Ok(cached);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let snapshot = state.store.account_snapshot(user_id).await?.map(Arc::new);
        self.put(user_id, snapshot.clone(), generation);
        Ok(snapshot)
    }
}

fn invalid_token() -> ApiError {
    ApiError::plain(StatusCode::UNAUTHORIZED, "Invalid user token.")
}

/// Runs the whole per-request check for a raw bearer token.
pub async fn authenticate(state: &ApiState, context: &Contestant, token: &str) -> Result<Player, ApiError> {
    let Some(claims) = decode_token(state.secrets.jwt(), token) else {
        return Err(ApiError::unauthenticated());
    };
    let Ok(user_id) = claims.nameid.parse::<i64>() else { return Err(invalid_token()) };
    let Ok(claimed_team) = claims.team_id.parse::<i64>() else { return Err(invalid_token()) };
    let user_id = UserId(user_id);
    let Some(account) = context.sessions.load(state, user_id).await? else {
        return Err(ApiError::plain(StatusCode::UNAUTHORIZED, "User not found."));
    };
    let now = chrono::Utc::now().timestamp();
    match &account.session {
        Some((token_id, expires_at)) if *token_id == claims.token_uuid && *expires_at > now => {}
        _ => return Err(ApiError::plain(StatusCode::UNAUTHORIZED, "Invalid user token")),
    }
    let team_id = account.team.as_ref().map(|team| team.id);
    if team_id.map(TeamId::get).unwrap_or(0) != claimed_team {
        return Err(invalid_token());
    }
    if !account.verified {
        return Err(ApiError::plain(StatusCode::FORBIDDEN, "Account not verified."));
    }
    if account.banned {
        return Err(ApiError::plain(StatusCode::FORBIDDEN, "Account banned."));
    }
    if account.hidden {
        return Err(ApiError::plain(StatusCode::FORBIDDEN, "Account hidden."));
    }
    if account.team.as_ref().is_some_and(|team| team.banned) {
        return Err(ApiError::plain(StatusCode::FORBIDDEN, "Your team has been banned."));
    }
    super::ratelimit::check_user(state, context, user_id).await?;
    Ok(Player { user_id, team_id, token_id: claims.token_uuid, account })
}

/// The bearer token of a request, if any.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

fn context_of(parts: &Parts) -> Result<Arc<Contestant>, ApiError> {
    parts
        .extensions
        .get::<Arc<Contestant>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&"the contestant context is missing from the router"))
}

impl FromRequestParts<ApiState> for Player {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let context = context_of(parts)?;
        let Some(token) = bearer_token(parts) else { return Err(ApiError::unauthenticated()) };
        authenticate(state, &context, token).await
    }
}

/// A player when a bearer token was sent (with the full check, fctf decision 9), else `None`.
#[derive(Debug, Clone)]
pub struct MaybePlayer(pub Option<Player>);

impl FromRequestParts<ApiState> for MaybePlayer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let context = context_of(parts)?;
        match bearer_token(parts) {
            None => Ok(MaybePlayer(None)),
            Some(token) => authenticate(state, &context, token).await.map(|player| MaybePlayer(Some(player))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let claims = Claims {
            user_id: "12".into(),
            team_id: "3".into(),
            nameid: "12".into(),
            token_uuid: "2f1c7c1e-6a0e-4c1e-9d1f-1b2a3c4d5e6f".into(),
            exp: chrono::Utc::now().timestamp() + 60,
        };
        let token = encode_token(b"key", &claims).unwrap();
        assert_eq!(decode_token(b"key", &token), Some(claims.clone()));
        assert_eq!(decode_token(b"other key", &token), None);
        let expired = Claims { exp: chrono::Utc::now().timestamp() - 3600, ..claims };
        assert_eq!(decode_token(b"key", &encode_token(b"key", &expired).unwrap()), None);
        assert_eq!(decode_token(b"key", "not.a.jwt"), None);
        let header = token.split('.').next().unwrap();
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), r#"{"typ":"JWT","alg":"HS256"}"#);
    }
}
