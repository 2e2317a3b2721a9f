//! Embedded static assets (`/static/style.css`, `/static/app.js`) and the theme switch
//! (`POST /theme`), shared by the portal and the admin UI.

use axum::Form;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::browser::THEME_COOKIE;
use super::{Browser, is_local_path, redirect};
use crate::api::ApiState;

/// The stylesheet (dark and light themes, responsive).
pub const STYLE_CSS: &str = include_str!("static/style.css");
/// The script (live notifications, countdowns, region refresh, confirmations).
pub const APP_JS: &str = include_str!("static/app.js");

/// Asset and theme routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
        .route("/theme", post(theme))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body)
        .into_response()
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The theme form.
#[derive(Debug, Deserialize)]
pub struct ThemeForm {
    csrf: String,
    theme: String,
}

async fn theme(browser: Browser, headers: axum::http::HeaderMap, Form(form): Form<ThemeForm>) -> Response {
    let back = headers
        .get(header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| url::Url::parse(referer).ok())
        .map(|url| match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
        .filter(|path| is_local_path(path))
        .unwrap_or_else(|| "/".to_owned());
    if !browser.check_csrf(&form.csrf) {
        return browser.finish(redirect(&back));
    }
    let value = if form.theme == "light" { "light" } else { "dark" };
    let mut response = redirect(&back);
    if let Some(cookie) = browser.cookie_header(THEME_COOKIE, value, Some(365 * 24 * 3600)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
