//! The portal's request context: browser cookies, the signed-in player (through the
//! contestant session check), the event configuration and helpers to answer.

use std::sync::Arc;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::api::{Caller, Reply};
use super::{Portal, SESSION_COOKIE};
use crate::api::ApiState;
use crate::api::contestant::session::{Player, TOKEN_LIFETIME, authenticate};
use crate::event::EventConfig;
use crate::web::{Browser, Flash, Layout, error_page, query_escape, redirect, render_status};

/// A portal request.
#[derive(Debug, Clone)]
pub struct Session {
    /// The api state.
    pub state: ApiState,
    /// Portal state.
    pub portal: Arc<Portal>,
    /// Cookies.
    pub browser: Browser,
    /// Address and forwarding headers of the browser.
    pub caller: Caller,
    /// The signed-in player.
    pub player: Option<Player>,
    /// The session JWT of `player`.
    pub token: Option<String>,
    /// Event configuration.
    pub config: Arc<EventConfig>,
    dead_cookie: bool,
}

impl FromRequestParts<ApiState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let browser = match Browser::from_request_parts(parts, state).await {
            Ok(browser) => browser,
            Err(never) => match never {},
        };
        let Some(portal) = parts.extensions.get::<Arc<Portal>>().cloned() else {
            tracing::error!("portal state missing from the router");
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response());
        };
        let mut player = None;
        let mut token = None;
        let mut dead_cookie = false;
        if let Some(jwt) = browser.cookie(SESSION_COOKIE).filter(|value| !value.is_empty()) {
            match authenticate(state, &portal.contestant, jwt).await {
                Ok(checked) => {
                    player = Some(checked);
                    token = Some(jwt.to_owned());
                }
                Err(_) => dead_cookie = true,
            }
        }
        Ok(Session {
            state: state.clone(),
            config: state.event.current(),
            portal,
            caller: Caller::from_parts(parts),
            browser,
            player,
            token,
            dead_cookie,
        })
    }
}

/// `Result` of portal handlers: the error side is a finished response (redirect or error page).
pub type PageResult = Result<Response, Response>;

impl Session {
    /// The event name.
    pub fn site_name(&self) -> String {
        self.config
            .raw
            .get("ctf_name")
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .unwrap_or("fctf")
            .to_owned()
    }

    /// The page frame with the portal's navigation.
    pub fn layout(&self, title: &str) -> Layout {
        let current = self.browser.path.split('?').next().unwrap_or("/").to_owned();
        let mut layout = Layout::new(&self.browser, self.site_name(), title);
        layout = match &self.player {
            Some(player) => {
                layout.user = Some(player.name().to_owned());
                layout.live_events = Some("/events".to_owned());
                let layout = if player.team_id.is_some() {
                    layout.link("Challenges", "/challenges", &current).link("Instances", "/instances", &current)
                } else {
                    layout
                };
                layout
                    .link("Scoreboard", "/scoreboard", &current)
                    .link("Team", "/team", &current)
                    .link("Log", "/log", &current)
                    .link("Notifications", "/notifications", &current)
                    .link("Tickets", "/tickets", &current)
                    .link("Profile", "/profile", &current)
            }
            None => layout.link("Scoreboard", "/scoreboard", &current).link("Log in", "/login", &current).link(
                "Register",
                "/register",
                &current,
            ),
        };
        layout.banner = self.banner();
        layout
    }

    fn banner(&self) -> Option<String> {
        let now = chrono::Utc::now().timestamp();
        let config = &self.config;
        let when = |unix: i64| {
            chrono::DateTime::from_timestamp(unix, 0)
                .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        };
        if config.paused {
            Some("The event is paused.".to_owned())
        } else if config.start > 0 && !config.has_started(now) {
            Some(format!("The event starts at {}.", when(config.start)))
        } else if config.has_ended(now) {
            Some("The event has ended.".to_owned())
        } else if config.is_frozen(now) {
            Some("The scoreboard is frozen.".to_owned())
        } else {
            None
        }
    }

    /// Renders a page (setting the cookies the request needs).
    pub fn page(&self, template: &impl Template) -> Response {
        self.finish(render_status(StatusCode::OK, template))
    }

    /// Adds cookies: a new CSRF cookie, clearing a shown flash or a dead session.
    pub fn finish(&self, response: Response) -> Response {
        let mut response = self.browser.finish(response);
        if self.dead_cookie
            && let Some(value) = self.browser.cookie_header(SESSION_COOKIE, "", Some(0))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// An error page.
    pub fn error(&self, status: StatusCode, message: impl Into<String>) -> Response {
        self.finish(error_page(status, self.layout("Error"), message))
    }

    /// The signed-in player, or a redirect to the login page.
    pub fn require(&self) -> Result<&Player, Response> {
        match &self.player {
            Some(player) => Ok(player),
            None => Err(self.finish(redirect(&format!("/login?next={}", query_escape(&self.browser.path))))),
        }
    }

    /// The signed-in player with a team, or a redirect (login, or the team page).
    pub fn require_team(&self) -> Result<&Player, Response> {
        let player = self.require()?;
        if player.team_id.is_none() {
            return Err(self.redirect_with("/team", Flash::info("Create or join a team first.")));
        }
        Ok(player)
    }

    /// Checks a form's CSRF token (403 page when wrong).
    pub fn check_csrf(&self, token: &str) -> Result<(), Response> {
        if self.browser.check_csrf(token) {
            Ok(())
        } else {
            Err(self.error(
                StatusCode::FORBIDDEN,
                "The form expired or came from another site. Go back, reload the page and try again.",
            ))
        }
    }

    /// A 303 redirect with a flash message.
    pub fn redirect_with(&self, to: &str, flash: Flash) -> Response {
        let mut response = self.browser.redirect_with(to, flash);
        if self.dead_cookie
            && let Some(value) = self.browser.cookie_header(SESSION_COOKIE, "", Some(0))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// A redirect that also stores a (new) session token.
    pub fn redirect_signed_in(&self, to: &str, flash: Flash, token: &str) -> Response {
        let mut response = self.browser.redirect_with(to, flash);
        if let Some(value) = self.browser.cookie_header(SESSION_COOKIE, token, Some(TOKEN_LIFETIME.as_secs() as i64)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// A redirect that drops the session cookie.
    pub fn redirect_signed_out(&self, to: &str, flash: Flash) -> Response {
        let mut response = self.browser.redirect_with(to, flash);
        if let Some(value) = self.browser.cookie_header(SESSION_COOKIE, "", Some(0)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// Calls the contestant API with the session's token.
    pub async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.portal.api.call(&self.caller, method, path, self.token.as_deref(), body).await
    }

    /// `GET` on the contestant API.
    pub async fn get(&self, path: &str) -> Reply {
        self.api(Method::GET, path, None).await
    }

    /// `GET` on the contestant API with an owned path (for joined futures).
    pub async fn get_owned(&self, path: String) -> Reply {
        self.api(Method::GET, &path, None).await
    }

    /// `POST` on the contestant API.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.api(Method::POST, path, Some(body)).await
    }

    /// The redirect after an action: a 401 ends the session, otherwise the API's message is
    /// flashed as success or error.
    pub fn after(&self, reply: &Reply, to: &str) -> Response {
        if reply.status == StatusCode::UNAUTHORIZED {
            return self.redirect_signed_out("/login", Flash::error("Your session has ended; please log in again."));
        }
        let flash = if reply.ok() { Flash::ok(reply.message()) } else { Flash::error(reply.message()) };
        self.redirect_with(to, flash)
    }

    /// An error page for a failed read of the contestant API (401 → login).
    pub fn read_failed(&self, reply: &Reply) -> Response {
        if reply.status == StatusCode::UNAUTHORIZED {
            return self.redirect_signed_out("/login", Flash::error("Your session has ended; please log in again."));
        }
        let status = if reply.status.is_success() { StatusCode::BAD_GATEWAY } else { reply.status };
        self.error(status, reply.message())
    }
}

/// A JSON value as display text (strings unquoted, null empty).
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Converts the contract's ISO time (`2025-03-01T10:11:12[Z]`) to `2025-03-01 10:11:12`.
pub fn short_time(value: &Value) -> String {
    let text = text(value);
    text.trim_end_matches('Z').replacen('T', " ", 1).chars().take(19).collect()
}
