//! Sessions and accounts (contract §1): login, logout, password change, self-registration.
//!
//! Decisions on top of the contract: the password is checked before any account state is
//! revealed (fctf decision 2); imported CTFd hashes are upgraded to argon2id on login; a
//! password change revokes the other sessions (decision 19, moot with one session per user
//! but kept explicit); `captchaToken` is optional when no captcha is configured (decision 1).
//! With `team_self_service` on, a verified player without a team may log in (to create or join
//! one); otherwise login still requires a team as in the original. Every login costs exactly
//! one password verification (a dummy hash stands in for a missing account), run on the
//! blocking pool. Registration lives in `registration`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::client_ip::ClientIp;
use super::context::Contestant;
use super::error::{ApiError, ApiResult, ok};
use super::session::{Player, issue_session};
use super::signals;
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::auth::passlib::{PasswordCheck, verify_any};
use crate::store::{StoreError, UserRole, UserUpdate};

/// Special characters the password policy accepts (contract §1.6).
const SPECIALS: &str = "!@#$%^&*(),.?\":{}|<>";

/// True when `password` satisfies the contract's policy: 8–20 characters with an upper-case
/// letter, a lower-case letter, a digit and one of [`SPECIALS`].
pub fn password_policy_ok(password: &str) -> bool {
    let length = password.chars().count();
    (8..=20).contains(&length)
        && password.chars().any(char::is_uppercase)
        && password.chars().any(char::is_lowercase)
        && password.chars().any(char::is_numeric)
        && password.chars().any(|character| SPECIALS.contains(character))
}

/// Verifies a password on the blocking pool.
pub async fn verify_blocking(password: String, hash: String) -> PasswordCheck {
    tokio::task::spawn_blocking(move || verify_any(&password, &hash)).await.unwrap_or(PasswordCheck::Malformed)
}

/// Hashes a password with argon2id on the blocking pool.
pub async fn hash_blocking(password: String) -> Result<String, ApiError> {
    match tokio::task::spawn_blocking(move || crate::auth::hash_password(&password)).await {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(error)) => Err(ApiError::internal(&error)),
        Err(error) => Err(ApiError::internal(&error)),
    }
}

pub(super) fn bad_request(text: impl Into<String>) -> ApiError {
    ApiError::message(StatusCode::BAD_REQUEST, text)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).map(|text| text.chars().take(255).collect())
}

pub(super) async fn captcha_ok(state: &ApiState, context: &Contestant, token: Option<&str>, ip: ClientIp) -> bool {
    let config = state.event.current();
    let Some(secret) = config.turnstile_secret_key.as_deref() else { return true };
    let Some(token) = token.map(str::trim).filter(|token| !token.is_empty()) else { return false };
    context.captcha.verify(secret, token, ip.0).await
}

/// `POST /api/Auth/login-contestant` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct LoginBody {
    username: Option<String>,
    password: Option<String>,
    captchatoken: Option<String>,
}

/// `POST /api/Auth/login-contestant`.
pub async fn login(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    ip: ClientIp,
    headers: HeaderMap,
    CiJson(body): CiJson<LoginBody>,
) -> ApiResult {
    let username = body.username.as_deref().unwrap_or_default().trim().to_owned();
    let password = body.password.as_deref().unwrap_or_default().trim().to_owned();
    if username.is_empty() || password.is_empty() {
        verify_blocking(password, context.dummy_hash().to_owned()).await;
        return Err(bad_request("Missing username or password"));
    }
    if !captcha_ok(&state, &context, body.captchatoken.as_deref(), ip).await {
        verify_blocking(password, context.dummy_hash().to_owned()).await;
        return Err(bad_request("Captcha validation failed"));
    }
    let user = state.store.get_user_by_name(&username).await?;
    let hash =
        user.as_ref().and_then(|user| user.password_hash.clone()).unwrap_or_else(|| context.dummy_hash().to_owned());
    let check = verify_blocking(password.clone(), hash).await;
    let Some(user) = user.filter(|user| user.role == UserRole::User && user.password_hash.is_some()) else {
        return Err(bad_request("Invalid username or password"));
    };
    let rehash = match check {
        PasswordCheck::Valid { rehash } => rehash,
        PasswordCheck::Invalid => return Err(bad_request("Invalid username or password")),
        PasswordCheck::Malformed => {
            tracing::warn!(user_id = user.id.get(), "stored password hash is in no known format");
            return Err(bad_request("An error occurred during login"));
        }
    };
    if !user.verified {
        return Err(bad_request("Your account is not verified yet"));
    }
    if user.hidden || user.banned {
        return Err(bad_request("Your account is not allowed"));
    }
    let config = state.event.current();
    let team = match user.team_id {
        Some(team_id) => Some(state.store.get_team(team_id).await?),
        None => None,
    };
    match &team {
        None if !config.team_self_service => return Err(bad_request("You don't have a team yet")),
        Some(team) if team.banned => return Err(bad_request("Your team has been banned")),
        _ => {}
    }
    if rehash {
        let new_hash = hash_blocking(password).await?;
        let update = UserUpdate { password_hash: Some(new_hash), ..UserUpdate::default() };
        state.store.update_user(user.id, &update).await?;
        tracing::info!(user_id = user.id.get(), "upgraded an imported password hash to argon2id");
    }
    let ip_text = ip.text();
    let token = issue_session(
        &state,
        &context,
        user.id,
        team.as_ref().map(|team| team.id),
        Some(&ip_text),
        user_agent(&headers).as_deref(),
    )
    .await?;
    if let Err(error) = state.store.record_user_ip(user.id, &ip_text).await {
        tracing::warn!(%error, "could not record the login address");
    }
    tracing::info!(user_id = user.id.get(), team_id = ?team.as_ref().map(|team| team.id.get()), "LOGIN");
    ok(json!({
        "generatedToken": token,
        "user": {
            "id": user.id.get(),
            "username": user.name,
            "email": user.email,
            "team": team.map(|team| json!({"id": team.id.get(), "teamName": team.name})),
        }
    }))
}

/// `POST /api/Auth/logout`.
pub async fn logout(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
) -> ApiResult {
    if let Err(error) = state.store.revoke_user_sessions(player.user_id, None).await {
        tracing::warn!(%error, "logout failed");
        return Err(bad_request("An error occurred during logout"));
    }
    signals::account_changed(&state.cache, Some(&context), player.user_id).await;
    ok(json!({"message": "Logged out successfully"}))
}

/// `POST /api/Auth/change-password` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct ChangePasswordBody {
    oldpassword: Option<String>,
    newpassword: Option<String>,
    confirmpassword: Option<String>,
}

/// `POST /api/Auth/change-password`.
pub async fn change_password(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    CiJson(body): CiJson<ChangePasswordBody>,
) -> ApiResult {
    let old = body.oldpassword.as_deref().unwrap_or_default().trim().to_owned();
    let new = body.newpassword.as_deref().unwrap_or_default().trim().to_owned();
    let confirm = body.confirmpassword.as_deref().unwrap_or_default().trim().to_owned();
    if old.is_empty() || new.is_empty() || confirm.is_empty() {
        return Err(bad_request("All password fields are required"));
    }
    if new != confirm {
        return Err(bad_request("New password and confirm password do not match"));
    }
    if old == new {
        return Err(bad_request("New password must be different from current password"));
    }
    if !password_policy_ok(&new) {
        return Err(bad_request(
            "New password must be 8-20 characters and include uppercase, lowercase, number, and special character",
        ));
    }
    let user = match state.store.get_user(player.user_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => return Err(bad_request("User not found")),
        Err(error) => return Err(error.into()),
    };
    let Some(hash) = user.password_hash else { return Err(bad_request("Old password is incorrect")) };
    match verify_blocking(old, hash).await {
        PasswordCheck::Valid { .. } => {}
        PasswordCheck::Invalid => return Err(bad_request("Old password is incorrect")),
        PasswordCheck::Malformed => return Err(bad_request("An error occurred while changing password")),
    }
    let new_hash = hash_blocking(new).await?;
    state
        .store
        .update_user(player.user_id, &UserUpdate { password_hash: Some(new_hash), ..UserUpdate::default() })
        .await?;
    state.store.revoke_user_sessions(player.user_id, Some(&player.token_id)).await?;
    signals::account_changed(&state.cache, Some(&context), player.user_id).await;
    ok(json!({"message": "Password changed successfully"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(password_policy_ok("S3cret!pw"));
        assert!(!password_policy_ok("S3cret!"), "too short");
        assert!(!password_policy_ok("S3cret!pwS3cret!pwS3c"), "too long");
        assert!(!password_policy_ok("s3cret!pw"), "no upper case");
        assert!(!password_policy_ok("S3CRET!PW"), "no lower case");
        assert!(!password_policy_ok("Secret!pw"), "no digit");
        assert!(!password_policy_ok("S3cretpw9"), "no special");
        assert!(password_policy_ok("Ää3cret{pw"), "unicode letters count");
    }
}
