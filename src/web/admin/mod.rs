//! The admin UI at `/admin`: server-rendered pages (askama templates and one stylesheet
//! embedded in the binary, a little JavaScript for enhancement only) to run the event from a
//! browser. Every form works without JavaScript.
//!
//! Shape:
//! - [`session`]: login/logout, the guard in front of every page (staff session cookie, CSRF
//!   token on every POST) and [`session::Staff`], the viewer.
//! - [`dispatch`]: changes (and most lists) go through the admin API in process, so the UI and
//!   the API share validation, role checks and the audit log.
//! - [`view`]: the page model and templates; `pages::*`: one module per area.
//!
//! Roles: a page names the [`Access`] level it needs (the admin API's levels) and answers 403
//! otherwise; the navigation only lists what the role may open. Jury reads everything and
//! answers tickets; challenge writers see challenges (and preview) only.
//!
//! Decisions where the spec is silent: status messages after a change travel in the redirect's
//! query string (`?ok=` / `?err=`), so there is no server-side flash state; lists show the
//! newest 100 rows with page links; CSV exports are UTF-8 with a header row; a CSV import of
//! accounts is all or nothing (every row is checked and every problem listed before anything
//! is written) and the passwords it generates are shown once, in the answer page only
//! (`pages::imports`); starting and stopping instances (preview, shared, the monitor's stops)
//! also goes through the admin API, so each action lands in the audit log.

pub mod charts;
pub mod csv;
pub mod dispatch;
pub mod session;
pub mod view;

mod pages;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::api::ApiState;
use crate::api::admin::Access;
use crate::store::UserRole;

pub use dispatch::AdminApi;
pub use session::Staff;

/// `?ok=` / `?err=` messages shown after a redirect.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlashQuery {
    /// Success message.
    pub ok: Option<String>,
    /// Error message.
    pub err: Option<String>,
}

/// Navigation entries: (path, label, access needed).
const NAV: &[(&str, &str, Access)] = &[
    ("/admin", "Dashboard", Access::ChallengeRead),
    ("/admin/config", "Event", Access::Read),
    ("/admin/challenges", "Challenges", Access::ChallengeRead),
    ("/admin/instances", "Instances", Access::Read),
    ("/admin/users", "Users", Access::Read),
    ("/admin/teams", "Teams", Access::Read),
    ("/admin/submissions", "Submissions", Access::Read),
    ("/admin/scoreboard", "Scoreboard", Access::Read),
    ("/admin/statistics", "Statistics", Access::Read),
    ("/admin/notifications", "Notifications", Access::Read),
    ("/admin/tickets", "Tickets", Access::Tickets),
    ("/admin/logs", "Logs", Access::Read),
];

/// The navigation a role sees.
pub fn nav_for(role: UserRole) -> Vec<(&'static str, &'static str)> {
    NAV.iter().filter(|(_, _, access)| access.allows(role)).map(|(href, label, _)| (*href, *label)).collect()
}

/// The admin UI router; merge it into the api router.
pub fn router(state: ApiState) -> Router<ApiState> {
    let api = AdminApi::new(crate::api::admin::router(state.clone()).with_state(state.clone()));
    pages::routes(Router::new())
        .route("/admin/logout", post(session::logout))
        .route_layer(axum::middleware::from_fn_with_state(state, session::guard))
        .route("/admin/login", get(session::login_form).post(session::login))
        .route("/admin/static/{name}", get(static_file))
        .layer(axum::Extension(api))
}

const CSS: &str = include_str!("static/admin.css");
const JS: &str = include_str!("static/admin.js");

/// `GET /admin/static/{name}`: the embedded stylesheet and script.
async fn static_file(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "admin.css" => (CSS, "text/css; charset=utf-8"),
        "admin.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}
