//! Server-rendered web UIs: the player portal at `/` and the shared pieces the admin UI reuses.
//!
//! Shared infrastructure (used by `portal` and by the admin UI):
//! - [`WebContext`]: process-wide settings of the web UIs (CSRF key, whether cookies are
//!   `Secure`), attached to every web route as a request extension by [`router`].
//! - [`browser::Browser`]: extractor of the browser's cookies: CSRF token (issued on first
//!   visit), flash message, theme. `Browser::check_csrf` guards every POST;
//!   `Browser::finish` adds the cookies a page must set.
//! - [`layout::Layout`]: what `templates/base.html` needs (title, navigation, user, flash,
//!   CSRF token, theme); page templates `{% extends "base.html" %}` and carry a `layout` field.
//! - [`render`], [`error_page`], [`redirect`]: responses.
//! - [`assets`]: the embedded stylesheet and script under `/static/`.
//!
//! Decisions: pages are askama templates compiled into the binary (no files at run time);
//! every action is a plain HTML form (POST, then 303 redirect with a flash message), so the
//! UIs work without JavaScript; `static/app.js` only adds live updates (notifications over
//! SSE, countdowns, periodic refresh of marked regions). Cookies are HttpOnly and
//! SameSite=Lax, and `Secure` when `api.public_url` is `https://`.

pub mod admin;
pub mod assets;
pub mod browser;
pub mod csrf;
pub mod layout;
pub mod markdown;
pub mod portal;

use std::sync::Arc;

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};

use crate::api::ApiState;

pub use browser::Browser;
pub use layout::{Flash, Layout, NavLink};

/// Process-wide settings of the web UIs.
pub struct WebContext {
    /// Key of the CSRF tokens.
    pub csrf_key: ring::hmac::Key,
    /// Whether cookies carry `Secure` (the public URL is `https://`).
    pub secure_cookies: bool,
    /// The event's public base URL (`api.public_url`).
    pub public_url: String,
}

impl std::fmt::Debug for WebContext {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WebContext").field("secure_cookies", &self.secure_cookies).finish_non_exhaustive()
    }
}

impl WebContext {
    /// Builds the context from the api state.
    pub fn new(state: &ApiState) -> Arc<Self> {
        let public_url = state.deps.settings.api.public_url.clone();
        Arc::new(Self {
            csrf_key: csrf::key(state.secrets.jwt()),
            secure_cookies: public_url.trim().to_ascii_lowercase().starts_with("https://"),
            public_url,
        })
    }
}

/// Every web UI route (portal, static assets), with the shared [`WebContext`].
pub fn router(state: &ApiState) -> Router<ApiState> {
    with_context(state, Router::new().merge(assets::routes()).merge(portal::router(state)))
}

/// Attaches a fresh [`WebContext`] to a router of web pages (the admin UI may use this too).
pub fn with_context(state: &ApiState, router: Router<ApiState>) -> Router<ApiState> {
    router.layer(Extension(WebContext::new(state)))
}

/// Renders a template into an HTML response (a rendering failure becomes a plain 500).
pub fn render(template: &impl Template) -> Response {
    render_status(StatusCode::OK, template)
}

/// Renders a template with a status.
pub fn render_status(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Page frame.
    pub layout: Layout,
    /// HTTP status shown.
    pub status: u16,
    /// What went wrong, for the user.
    pub message: String,
}

/// An error page with a status.
pub fn error_page(status: StatusCode, layout: Layout, message: impl Into<String>) -> Response {
    render_status(status, &ErrorPage { layout, status: status.as_u16(), message: message.into() })
}

/// A 303 redirect (after a POST, or to the login page).
pub fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// Percent-encodes a value for a query string.
pub fn query_escape(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// True when `next` is a safe local redirect target (a path on this site, not `//host`).
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && !next.contains(['\r', '\n'])
}
