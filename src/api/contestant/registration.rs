//! Self-registration (contract §1.5): the form metadata and the registration itself.
//!
//! Validation answers 400 `{"success":false,"message":...,"errors":{...}}` (fctf decision 13);
//! business refusals answer 400 `{"message":...}` as in the original. The registration cap
//! (`num_users`) is counted and the account created under a cache lock, so concurrent
//! registrations on several processes cannot overshoot it. New accounts are unverified and
//! team-less; their custom field values are stored with them in one transaction.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{bad_request, captcha_ok, hash_blocking, password_policy_ok};
use super::client_ip::ClientIp;
use super::context::Contestant;
use super::error::{ApiError, ApiResult, ok};
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::store::{NewUser, StoreError, UserRole};

/// `GET /api/Auth/registration-metadata`.
pub async fn metadata(State(state): State<ApiState>) -> ApiResult {
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
