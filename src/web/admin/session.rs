//! Logging in and out of the admin UI, the guard in front of every other page, and CSRF.
//!
//! The session is the admin API's cookie session (`api::admin::auth::open_session`): an
//! HttpOnly, SameSite=Strict cookie (Secure when `api.public_url` is `https://`), one active
//! session per account. Every page except the login form needs a staff session; without one,
//! the guard redirects to `/admin/login?next=<path>`.
//!
//! CSRF: every POST must carry the session's CSRF token (an HMAC of the session id, the same
//! token the admin API expects in its `CSRF-Token` header). URL-encoded forms send it as the
//! `csrf` field (the guard reads the buffered body and hands it on unchanged); multipart forms
//! (file uploads) send it as `?csrf=` in the form's action URL. A POST whose `Origin` header
//! names another site is refused too.

use axum::Form;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::view::{LoginPage, UiError, render};
use crate::api::ApiState;
use crate::api::admin::auth::{self, Actor, Credential};
use crate::store::UserRole;

/// Largest URL-encoded form body accepted (challenge descriptions, CSV imports).
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;
/// How long an admin UI session lasts.
pub const SESSION_TTL_SECONDS: i64 = 12 * 3600;

/// The logged-in staff member of a request (set by the guard).
#[derive(Debug, Clone)]
pub struct Staff {
    /// Who.
    pub actor: Actor,
    /// The session's CSRF token (put in every form).
    pub csrf: String,
    /// The request's `Cookie` header (passed on to the admin API).
    pub cookie: String,
}

impl Staff {
    /// Refuses the page unless the role has `access`.
    pub fn require(&self, access: auth::Access) -> Result<(), UiError> {
        if access.allows(self.actor.role) {
            Ok(())
        } else {
            Err(UiError::forbidden(format!("Your role ({}) cannot use this page", self.actor.role.as_str())))
        }
    }

    /// True when the role has `access`.
    pub fn can(&self, access: auth::Access) -> bool {
        access.allows(self.actor.role)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Staff>().cloned().ok_or_else(|| UiError::forbidden("Log in first"))
    }
}

fn login_redirect(request: &Request) -> Response {
    let next = request.uri().path_and_query().map(|path| path.as_str()).unwrap_or("/admin");
    let next = if request.method() == Method::GET { next } else { "/admin" };
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/admin/login?next={encoded}")).into_response()
}

fn origin_is_foreign(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) else { return false };
    let Some(host) = headers.get(header::HOST).and_then(|value| value.to_str().ok()) else { return true };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    origin_host != host
}

fn csrf_from_query(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "csrf").map(|(_, value)| value.into_owned())
}

/// The guard: a staff session, and on POST a valid CSRF token.
pub async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let ip = auth::client_ip(request.extensions(), request.headers(), &state.trusted_proxies);
    let actor = match auth::authenticate(&state.store, &state.secrets, &Method::GET, request.headers(), ip).await {
        Ok(Some(actor)) => actor,
        Ok(None) | Err(crate::api::admin::AdminError::Unauthorized(_)) => return login_redirect(&request),
        Err(crate::api::admin::AdminError::Forbidden(message)) => return UiError::forbidden(message).into_response(),
        Err(error) => return UiError::internal(format!("{error:?}")).into_response(),
    };
    let Credential::Session(token_id) = actor.credential.clone() else {
        // API tokens are for the API; the UI works with its cookie only.
        return login_redirect(&request);
    };
    let csrf = auth::csrf_token(&state.secrets, &token_id);
    let cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    let staff = Staff { actor, csrf, cookie };
    let request = if request.method() == Method::GET || request.method() == Method::HEAD {
        request
    } else {
        match check_csrf(&state, &token_id, request).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    let mut request = request;
    request.extensions_mut().insert(staff);
    next.run(request).await
}

async fn check_csrf(state: &ApiState, token_id: &str, request: Request) -> Result<Request, Response> {
    let refuse = || UiError::forbidden("CSRF token missing or invalid: reload the page and try again").into_response();
    if origin_is_foreign(request.headers()) {
        return Err(refuse());
    }
    if let Some(given) = csrf_from_query(&request) {
        return if auth::csrf_matches(&state.secrets, token_id, &given) { Ok(request) } else { Err(refuse()) };
    }
    let is_urlencoded = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_urlencoded {
        return Err(refuse());
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(
            UiError { status: StatusCode::PAYLOAD_TOO_LARGE, message: "The form is too large".into() }.into_response()
        );
    };
    let given = url::form_urlencoded::parse(&bytes).find(|(key, _)| key == "csrf").map(|(_, value)| value.into_owned());
    match given {
        Some(given) if auth::csrf_matches(&state.secrets, token_id, &given) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refuse()),
    }
}

/// `?next=` of the login page.
#[derive(Debug, Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local admin paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with("/admin") && !path.starts_with("//") && !path.contains('\\') => path.to_owned(),
        _ => "/admin".to_owned(),
    }
}

/// `GET /admin/login`.
pub async fn login_form(Query(query): Query<NextQuery>) -> Response {
    render(&LoginPage { error: None, name: String::new(), next: safe_next(query.next.as_deref()) }, StatusCode::OK)
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

/// `POST /admin/login`. Login CSRF is blocked by the foreign-Origin check and SameSite.
pub async fn login(State(state): State<ApiState>, request_headers: HeaderMap, request: Request) -> Response {
    let ip = auth::client_ip(request.extensions(), request.headers(), &state.trusted_proxies);
    if origin_is_foreign(&request_headers) {
        return UiError::forbidden("Cross-site login refused").into_response();
    }
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return UiError::bad_request("Send a name and a password").into_response();
    };
    let next = safe_next(form.next.as_deref());
    let failed = |message: &str| {
        render(
            &LoginPage { error: Some(message.to_owned()), name: form.name.clone(), next: next.clone() },
            StatusCode::UNAUTHORIZED,
        )
    };
    let user = match state.store.get_user_by_name(form.name.trim()).await {
        Ok(user) => user,
        Err(error) => return UiError::internal(error).into_response(),
    };
    let verified = user.as_ref().and_then(|user| user.password_hash.as_deref()).is_some_and(|hash| {
        matches!(
            crate::auth::passlib::verify_any(&form.password, hash),
            crate::auth::passlib::PasswordCheck::Valid { .. }
        )
    });
    let Some(user) = user.filter(|_| verified) else { return failed("Wrong name or password") };
    if user.role == UserRole::User || user.banned {
        return failed("This account cannot use the admin UI");
    }
    let secure = state.deps.settings.api.public_url.starts_with("https://");
    let agent = request_headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok());
    match auth::open_session(&state.store, &state.secrets, &user, SESSION_TTL_SECONDS, ip.as_deref(), agent, secure)
        .await
    {
        Ok(session) => ([(header::SET_COOKIE, session.set_cookie)], Redirect::to(&next)).into_response(),
        Err(error) => UiError::internal(format!("{error:?}")).into_response(),
    }
}

/// `POST /admin/logout`: revokes the session and clears the cookie.
pub async fn logout(State(state): State<ApiState>, staff: Staff) -> Response {
    if let Credential::Session(token_id) = &staff.actor.credential
        && let Err(error) = state.store.revoke_session(token_id).await
    {
        tracing::warn!(%error, "could not revoke an admin UI session");
    }
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", auth::SESSION_COOKIE);
    ([(header::SET_COOKIE, clear)], Redirect::to("/admin/login")).into_response()
}
