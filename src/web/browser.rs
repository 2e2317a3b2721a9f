//! The [`Browser`] extractor: cookies of a web UI request (CSRF, flash message, theme).
//!
//! The CSRF cookie is issued on the first request that lacks one (the page's response sets
//! it through [`Browser::finish`]); a flash message is a short-lived cookie written by a POST's
//! redirect ([`Browser::redirect_with`]) and cleared by the next page that shows it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::layout::Flash;
use super::{WebContext, csrf, redirect};

/// Cookie carrying a flash message.
pub const FLASH_COOKIE: &str = "fctf_flash";
/// Cookie carrying the theme choice (`dark`, `light`; absent = follow the system).
pub const THEME_COOKIE: &str = "fctf_theme";

/// The browser side of a web UI request.
#[derive(Debug, Clone)]
pub struct Browser {
    context: Arc<WebContext>,
    cookies: HashMap<String, String>,
    csrf_cookie: String,
    csrf_is_new: bool,
    flash: Option<Flash>,
    /// The request path (with query), for "back to where you were" links.
    pub path: String,
}

/// Parses a `Cookie` header into name → value (first occurrence wins).
pub fn parse_cookies(parts: &Parts) -> HashMap<String, String> {
    let mut cookies = HashMap::new();
    for value in parts.headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies.entry(name.trim().to_owned()).or_insert_with(|| value.trim().to_owned());
            }
        }
    }
    cookies
}

impl Browser {
    /// Builds the browser view from request parts and the web context.
    pub fn from_parts(parts: &Parts, context: Arc<WebContext>) -> Self {
        let cookies = parse_cookies(parts);
        let (csrf_cookie, csrf_is_new) = match cookies.get(csrf::COOKIE) {
            Some(value) if value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit()) => {
                (value.clone(), false)
            }
            _ => (csrf::new_cookie_value(), true),
        };
        let flash = cookies.get(FLASH_COOKIE).and_then(|value| Flash::decode(value));
        let path = parts.uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| "/".to_owned());
        Self { context, cookies, csrf_cookie, csrf_is_new, flash, path }
    }

    /// The web context.
    pub fn context(&self) -> &WebContext {
        &self.context
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// The CSRF token forms must carry.
    pub fn csrf_token(&self) -> String {
        csrf::token_for(&self.context.csrf_key, &self.csrf_cookie)
    }

    /// True when a submitted form token is valid for this browser.
    pub fn check_csrf(&self, token: &str) -> bool {
        !self.csrf_is_new && csrf::verify(&self.context.csrf_key, &self.csrf_cookie, token)
    }

    /// The flash message to show, if any.
    pub fn flash(&self) -> Option<Flash> {
        self.flash.clone()
    }

    /// The theme choice: `dark`, `light` or `auto`.
    pub fn theme(&self) -> &'static str {
        match self.cookie(THEME_COOKIE) {
            Some("dark") => "dark",
            Some("light") => "light",
            _ => "auto",
        }
    }

    /// A `Set-Cookie` value with the UI's attributes (`Path=/; HttpOnly; SameSite=Lax`,
    /// `Secure` under TLS). `max_age` 0 deletes the cookie; `None` makes a session cookie.
    pub fn cookie_header(&self, name: &str, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
        let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(seconds) = max_age {
            text.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.context.secure_cookies {
            text.push_str("; Secure");
        }
        HeaderValue::from_str(&text).ok()
    }

    /// Adds the cookies this request must set: a new CSRF cookie, the clearing of a shown
    /// flash message.
    pub fn finish(&self, mut response: Response) -> Response {
        if self.csrf_is_new
            && let Some(value) = self.cookie_header(csrf::COOKIE, &self.csrf_cookie, None)
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        if self.cookies.contains_key(FLASH_COOKIE)
            && let Some(value) = self.cookie_header(FLASH_COOKIE, "", Some(0))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    /// A 303 redirect that shows `flash` on the next page.
    pub fn redirect_with(&self, to: &str, flash: Flash) -> Response {
        let mut response = redirect(to);
        if let Some(value) = self.cookie_header(FLASH_COOKIE, &flash.encode(), Some(60)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        if self.csrf_is_new
            && let Some(value) = self.cookie_header(csrf::COOKIE, &self.csrf_cookie, None)
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }
}

impl Flash {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.kind, self.text))
    }

    fn decode(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (kind, text) = text.split_once(':')?;
        let kind = match kind {
            "ok" => "ok",
            "error" => "error",
            _ => "info",
        };
        Some(Flash { kind: kind.to_owned(), text: text.chars().take(500).collect() })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Browser {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = match parts.extensions.get::<Arc<WebContext>>() {
            Some(context) => context.clone(),
            None => {
                tracing::error!("web context missing from the router; using an ephemeral CSRF key");
                Arc::new(WebContext {
                    csrf_key: csrf::key(csrf::new_cookie_value().as_bytes()),
                    secure_cookies: true,
                    public_url: String::new(),
                })
            }
        };
        Ok(Browser::from_parts(parts, context))
    }
}
