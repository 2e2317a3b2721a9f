//! Home, log in, registration, log out and the profile page (password change).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{PageResult, Session, text};
use crate::web::{Flash, Layout, is_local_path, redirect};

/// Form field the Turnstile widget fills in.
const TURNSTILE_FIELD: &str = "cf-turnstile-response";

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage {
    layout: Layout,
    signed_in: bool,
    has_team: bool,
    description: String,
    registration: bool,
    schedule: Option<Schedule>,
}

/// The event's countdown on the home page.
struct Schedule {
    /// `Starts in` or `Ends in`.
    label: &'static str,
    /// Seconds left (the script counts down).
    seconds: i64,
    /// The same, for readers without the script.
    text: String,
    /// What the countdown shows once it reaches zero.
    done: &'static str,
    /// The moment itself (UTC).
    when: String,
}

/// A rough duration for people: `3 d 4 h`, `2 h 5 min`, `12 min`, `under a minute`.
fn rough_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    let (days, hours) = (minutes / 1440, minutes / 60 % 24);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {} min", minutes % 60)
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        "under a minute".to_owned()
    }
}

fn schedule(config: &crate::event::EventConfig, now: i64) -> Option<Schedule> {
    let (label, at, done) = if config.start > 0 && !config.has_started(now) {
        ("Starts in", config.start, "now")
    } else if config.end > 0 && !config.has_ended(now) {
        ("Ends in", config.end, "ended")
    } else {
        return None;
    };
    let seconds = (at - now).max(0);
    let when = chrono::DateTime::from_timestamp(at, 0)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    Some(Schedule { label, seconds, text: rough_duration(seconds), done, when })
}

/// `GET /`.
pub async fn home(session: Session) -> Response {
    let description = session.config.ctf_description.as_deref().map(crate::web::markdown::render).unwrap_or_default();
    session.page(&HomePage {
        layout: session.layout("Home"),
        signed_in: session.player.is_some(),
        has_team: session.player.as_ref().is_some_and(|player| player.team_id.is_some()),
        description,
        registration: session.config.contestant_registration_enabled,
        schedule: schedule(&session.config, chrono::Utc::now().timestamp()),
    })
}

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    site_key: Option<String>,
    registration: bool,
}

/// Query of the login page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|next| is_local_path(next) && !next.starts_with("/login") && !next.starts_with("/logout"))
        .map(str::to_owned)
}

/// `GET /login`.
pub async fn login_page(session: Session, Query(query): Query<NextQuery>) -> Response {
    if session.player.is_some() {
        return session.finish(redirect("/challenges"));
    }
    session.page(&LoginPage {
        layout: session.layout("Log in"),
        next: safe_next(query.next.as_deref()).unwrap_or_default(),
        site_key: session.config.turnstile_site_key.clone(),
        registration: session.config.contestant_registration_enabled,
    })
}

/// `POST /login`.
pub async fn login(session: Session, Form(form): Form<HashMap<String, String>>) -> PageResult {
    session.check_csrf(form.get("csrf").map(String::as_str).unwrap_or_default())?;
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut body = json!({"username": field("username"), "password": field("password")});
    if let Some(captcha) = form.get(TURNSTILE_FIELD) {
        body["captchaToken"] = Value::String(captcha.clone());
    }
    let reply = session
        .portal
        .api
        .call(&session.caller, axum::http::Method::POST, "/api/Auth/login-contestant", None, Some(&body))
        .await;
    let next = safe_next(form.get("next").map(String::as_str));
    let Some(token) = reply.body.get("generatedToken").and_then(Value::as_str).filter(|_| reply.ok()) else {
        let back = match &next {
            Some(next) => format!("/login?next={}", crate::web::query_escape(next)),
            None => "/login".to_owned(),
        };
        return Ok(session.redirect_with(&back, Flash::error(reply.message())));
    };
    let has_team = reply.body.pointer("/user/team/id").is_some_and(|id| !id.is_null());
    let to = match next {
        Some(next) => next,
        None if has_team => "/challenges".to_owned(),
        None => "/team".to_owned(),
    };
    Ok(session.redirect_signed_in(&to, Flash::ok("Welcome back!"), token))
}

/// One custom registration field.
#[derive(Debug)]
struct FieldView {
    id: i64,
    name: String,
    description: String,
    boolean: bool,
    required: bool,
}

#[derive(Template)]
#[template(path = "portal/register.html")]
struct RegisterPage {
    layout: Layout,
    open: bool,
    message: String,
    fields: Vec<FieldView>,
    site_key: Option<String>,
}

/// `GET /register`.
pub async fn register_page(session: Session) -> Response {
    let reply = session
        .portal
        .api
        .call(&session.caller, axum::http::Method::GET, "/api/Auth/registration-metadata", None, None)
        .await;
    let fields = reply
        .data()
        .get("userFields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .map(|field| FieldView {
                    id: field.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    name: text(field.get("name").unwrap_or(&Value::Null)),
                    description: text(field.get("description").unwrap_or(&Value::Null)),
                    boolean: field.get("fieldType").and_then(Value::as_str) == Some("boolean"),
                    required: field.get("required").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    session.page(&RegisterPage {
        layout: session.layout("Register"),
        open: reply.ok(),
        message: reply.message(),
        fields,
        site_key: session.config.turnstile_site_key.clone(),
    })
}

/// `POST /register`.
pub async fn register(session: Session, Form(form): Form<HashMap<String, String>>) -> PageResult {
    session.check_csrf(form.get("csrf").map(String::as_str).unwrap_or_default())?;
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut user_fields = Vec::new();
    for (name, value) in &form {
        if let Some(id) = name.strip_prefix("field_").and_then(|id| id.parse::<i64>().ok()) {
            user_fields.push(json!({"fieldId": id, "value": value}));
        }
    }
    let mut body = json!({
        "username": field("username"),
        "email": field("email"),
        "password": field("password"),
        "confirmPassword": field("confirm"),
        "userFields": user_fields,
    });
    if let Some(captcha) = form.get(TURNSTILE_FIELD) {
        body["captchaToken"] = Value::String(captcha.clone());
    }
    let reply = session
        .portal
        .api
        .call(&session.caller, axum::http::Method::POST, "/api/Auth/register-contestant", None, Some(&body))
        .await;
    if reply.ok() {
        Ok(session.redirect_with(
            "/login",
            Flash::ok("Registration submitted. An organizer must verify your account before you can log in."),
        ))
    } else {
        Ok(session.redirect_with("/register", Flash::error(reply.message())))
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The token.
    pub csrf: String,
}

/// `POST /logout`.
pub async fn logout(session: Session, Form(form): Form<CsrfForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    if session.token.is_some() {
        session.post("/api/Auth/logout", &json!({})).await;
    }
    Ok(session.redirect_signed_out("/", Flash::info("You are logged out.")))
}

#[derive(Template)]
#[template(path = "portal/profile.html")]
struct ProfilePage {
    layout: Layout,
    username: String,
    email: String,
    team: String,
}

/// `GET /profile`.
pub async fn profile(session: Session) -> PageResult {
    let player = session.require()?;
    let reply = session.get("/api/Users/profile").await;
    let data = reply.data();
    Ok(session.page(&ProfilePage {
        layout: session.layout("Profile"),
        username: player.name().to_owned(),
        email: text(data.get("email").unwrap_or(&Value::Null)),
        team: player.team().map(|team| team.name.clone()).unwrap_or_default(),
    }))
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    old: String,
    new: String,
    confirm: String,
}

/// `POST /profile/password`.
pub async fn change_password(session: Session, Form(form): Form<PasswordForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require()?;
    let reply = session
        .post(
            "/api/Auth/change-password",
            &json!({"oldPassword": form.old, "newPassword": form.new, "confirmPassword": form.confirm}),
        )
        .await;
    Ok(session.after(&reply, "/profile"))
}

#[cfg(test)]
mod tests {
    use super::{rough_duration, schedule};

    #[test]
    fn the_home_page_counts_down_to_the_start_then_to_the_end() {
        let mut config = crate::event::EventConfig::from_map(std::collections::BTreeMap::new());
        assert!(schedule(&config, 1_000).is_none(), "no dates, no countdown");
        config.start = 10_000;
        config.end = 100_000;
        let before = schedule(&config, 1_000).expect("before the start");
        assert_eq!((before.label, before.seconds, before.done), ("Starts in", 9_000, "now"));
        assert_eq!(before.text, "2 h 30 min");
        let during = schedule(&config, 20_000).expect("during the event");
        assert_eq!((during.label, during.seconds), ("Ends in", 80_000));
        assert_eq!(during.when, "1970-01-02 03:46 UTC");
        assert!(schedule(&config, 200_000).is_none(), "after the end");
        assert_eq!(rough_duration(2 * 86_400 + 3_600 * 5), "2 d 5 h");
        assert_eq!(rough_duration(61), "1 min");
        assert_eq!(rough_duration(59), "under a minute");
    }
}
