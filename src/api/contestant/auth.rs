//! Sessions and accounts (contract §1): login, logout, password change, self-registration.
//!
//! Decisions on top of the contract: the password is checked before any account state is
//! revealed (fctf decision 2); imported CTFd hashes are upgraded to argon2id on login; a
//! password change revokes the other sessions (decision 19, moot with one session per user
//! but kept explicit); `captchaToken` is optional when no captcha is configured (decision 1).
//! With `team_self_service` on, a verified player without a team may log in (to create or join
//! one); otherwise login still requires a team as in the original. Every login costs exactly
//! one password verification (a dummy hash stands in for a missing account), run on the
//! blocking pool. The registration cap is enforced under a cache lock so that concurrent
//! registrations on several processes cannot overshoot it.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client_ip::ClientIp;
use super::context::Contestant;
use super::error::{ApiError, ApiResult, ok};
use super::session::{Player, issue_session};
use super::signals;
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::auth::passlib::{PasswordCheck, verify_any};
use crate::store::{NewUser, StoreError, UserRole, UserUpdate};

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

fn bad_request(text: impl Into<String>) -> ApiError {
    ApiError::message(StatusCode::BAD_REQUEST, text)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).map(|text| text.chars().take(255).collect())
}

async fn captcha_ok(state: &ApiState, context: &Contestant, token: Option<&str>, ip: ClientIp) -> bool {
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

/// `GET /api/Auth/registration-metadata`.
pub async fn registration_metadata(State(state): State<ApiState>) -> ApiResult {
    let config = state.event.current();
    if !config.contestant_registration_enabled {
        return Err(bad_request("Registration is currently disabled"));
    }
    let fields = match state.store.registration_fields().await {
        Ok(fields) => fields,
        Err(error) => {
            tracing::warn!(%error, "registration metadata");
            return Err(bad_request("Unable to load registration metadata"));
        }
    };
    let fields: Vec<Value> = fields
        .iter()
        .map(|field| {
            json!({
                "id": field.id,
                "name": field.name,
                "fieldType": if field.field_type.eq_ignore_ascii_case("boolean") { "boolean" } else { "text" },
                "description": field.description,
                "required": field.required,
            })
        })
        .collect();
    ok(json!({"data": {"userFields": fields, "constraints": {"numUsersLimit": config.num_users}}}))
}

/// One custom field value in a registration.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct FieldValue {
    fieldid: Option<i64>,
    value: Option<Value>,
}

/// `POST /api/Auth/register-contestant` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct RegisterBody {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    confirmpassword: Option<String>,
    captchatoken: Option<String>,
    #[serde(default)]
    userfields: Vec<FieldValue>,
}

/// The lenient e-mail rule: exactly one `@`, neither first nor last.
fn email_ok(email: &str) -> bool {
    let at = email.matches('@').count();
    at == 1 && !email.starts_with('@') && !email.ends_with('@')
}

fn value_text_len(value: &Value) -> usize {
    match value {
        Value::String(text) => text.chars().count(),
        other => other.to_string().chars().count(),
    }
}

fn parse_boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" => Some(true),
            "false" | "0" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text_of(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// Validates the declarative constraints (fctf decision 13: 400 with a message).
fn validate_register(body: &RegisterBody) -> Result<(), ApiError> {
    let mut errors = serde_json::Map::new();
    let required = [
        ("username", &body.username, 255),
        ("email", &body.email, 255),
        ("password", &body.password, 255),
        ("confirmPassword", &body.confirmpassword, 255),
    ];
    for (name, value, max) in required {
        match value.as_deref() {
            None | Some("") => {
                errors.insert(name.to_owned(), json!([format!("The {name} field is required.")]));
            }
            Some(text) if text.chars().count() > max => {
                errors.insert(name.to_owned(), json!([format!("The {name} field must be at most {max} characters.")]));
            }
            _ => {}
        }
    }
    if body.captchatoken.as_deref().is_some_and(|token| token.len() > 10_000) {
        errors.insert("captchaToken".to_owned(), json!(["The captchaToken field is too long."]));
    }
    if let Some(email) = body.email.as_deref().filter(|email| !email.is_empty())
        && !email_ok(email.trim())
    {
        errors.insert("email".to_owned(), json!(["The email field is not a valid e-mail address."]));
    }
    if body.userfields.iter().any(|field| field.value.as_ref().is_some_and(|value| value_text_len(value) > 255)) {
        errors.insert("userFields".to_owned(), json!(["A field value must be at most 255 characters."]));
    }
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors.keys().next().and_then(|key| errors[key][0].as_str()).unwrap_or("Invalid request").to_owned();
    Err(ApiError::json(StatusCode::BAD_REQUEST, json!({"success": false, "message": message, "errors": errors})))
}

/// `POST /api/Auth/register-contestant`.
pub async fn register(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    ip: ClientIp,
    CiJson(body): CiJson<RegisterBody>,
) -> ApiResult {
    validate_register(&body)?;
    let config = state.event.current();
    if !config.contestant_registration_enabled {
        return Err(bad_request("Registration is currently disabled"));
    }
    if !captcha_ok(&state, &context, body.captchatoken.as_deref(), ip).await {
        return Err(bad_request("Captcha validation failed"));
    }
    let username = body.username.as_deref().map(str::trim).filter(|text| !text.is_empty());
    let email = body.email.as_deref().map(str::trim).filter(|text| !text.is_empty());
    let password = body.password.as_deref().map(str::trim).filter(|text| !text.is_empty());
    let confirm = body.confirmpassword.as_deref().map(str::trim).filter(|text| !text.is_empty());
    let (Some(username), Some(email), Some(password), Some(confirm)) = (username, email, password, confirm) else {
        return Err(bad_request("Username, email, password, and confirm password are required"));
    };
    if password != confirm {
        return Err(bad_request("Password confirmation does not match"));
    }
    if !password_policy_ok(password) {
        return Err(bad_request(
            "Password must be 8-20 characters and include uppercase, lowercase, number, and special character",
        ));
    }
    let _cap_lock = if config.num_users > 0 {
        let mut lock = None;
        for attempt in 0..8 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            lock = state.cache.try_lock("auth:register:num-users-limit", Duration::from_secs(10)).await?;
            if lock.is_some() {
                break;
            }
        }
        let Some(lock) = lock else { return Err(bad_request("Registration is busy, please try again")) };
        let count = state.store.count_active_players().await?;
        if count + 1 > i64::from(config.num_users) {
            return Err(bad_request(format!("Reached the maximum number of users ({})", config.num_users)));
        }
        Some(lock)
    } else {
        None
    };
    if state.store.get_user_by_name(username).await?.is_some() {
        return Err(bad_request(format!("Username has already been taken: {username}")));
    }
    if state.store.get_user_by_email(email).await?.is_some() {
        return Err(bad_request(format!("Email address has already been used: {email}")));
    }
    let entries = resolve_fields(&state, &body.userfields).await?;
    let password_hash = hash_blocking(password.to_owned()).await?;
    let new_user = NewUser {
        name: username.to_owned(),
        email: Some(email.to_owned()),
        password_hash,
        role: UserRole::User,
        verified: false,
    };
    match state.store.register_player(&new_user, &entries).await {
        Ok(user_id) => {
            tracing::info!(user_id = user_id.get(), "REGISTER");
            ok(json!({"message": "Registration submitted"}))
        }
        Err(StoreError::Conflict { constraint }) if constraint.starts_with("users_") => {
            Err(bad_request("A duplicated username or email was detected"))
        }
        Err(StoreError::Conflict { .. }) => Err(bad_request("Invalid registration field data")),
        Err(error) => {
            tracing::warn!(%error, "registration failed");
            Err(bad_request("Unable to submit registration"))
        }
    }
}

/// Applies the custom-field rules (contract §1.5 step 9); returns `(field id, JSON text)`.
async fn resolve_fields(state: &ApiState, given: &[FieldValue]) -> Result<Vec<(i64, String)>, ApiError> {
    let mut by_id: std::collections::HashMap<i64, &Value> = std::collections::HashMap::new();
    for field in given {
        let Some(id) = field.fieldid.filter(|id| *id > 0) else { continue };
        match field.value.as_ref() {
            Some(value) => by_id.insert(id, value),
            None => by_id.remove(&id),
        };
    }
    let mut entries = Vec::new();
    for field in state.store.registration_fields().await? {
        let value = by_id.get(&field.id).copied().filter(|value| match value {
            Value::Null => false,
            Value::String(text) => !text.trim().is_empty(),
            _ => true,
        });
        if field.field_type.eq_ignore_ascii_case("boolean") {
            let Some(value) = value else {
                if field.required {
                    return Err(bad_request(format!("User field '{}' is required", field.name)));
                }
                continue;
            };
            let Some(flag) = parse_boolean(value) else {
                return Err(bad_request(format!("User field '{}' must be a boolean value", field.name)));
            };
            if field.required && !flag {
                return Err(bad_request(format!("User field '{}' must be accepted", field.name)));
            }
            entries.push((field.id, flag.to_string()));
        } else {
            match value.and_then(text_of) {
                Some(text) => entries.push((field.id, Value::String(text).to_string())),
                None if field.required => return Err(bad_request(format!("User field '{}' is required", field.name))),
                None => {}
            }
        }
    }
    Ok(entries)
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

    #[test]
    fn field_value_rules() {
        assert_eq!(parse_boolean(&json!("Yes")), Some(true));
        assert_eq!(parse_boolean(&json!(0)), Some(false));
        assert_eq!(parse_boolean(&json!("maybe")), None);
        assert_eq!(text_of(&json!(" abc ")), Some("abc".into()));
        assert_eq!(text_of(&json!(12)), Some("12".into()));
        assert_eq!(text_of(&json!(true)), Some("true".into()));
        assert!(email_ok("a@b") && !email_ok("@b") && !email_ok("a@") && !email_ok("a@@b") && !email_ok("ab"));
    }
}
