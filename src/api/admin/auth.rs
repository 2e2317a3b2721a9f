//! Who is calling the admin API, and what their role lets them do.
//!
//! Credentials, in order:
//! 1. `Authorization: <word> <token>`: the first word is ignored, as CTFd does, so `Token` and
//!    `Bearer` both work whatever the `Content-Type` (admin-api D2). Tokens are stored as
//!    SHA-256 digests, can expire and are revoked by deletion (`store::tokens`).
//! 2. The admin UI's session cookie [`SESSION_COOKIE`] (HttpOnly, SameSite=Strict): a random
//!    secret whose digest is the `sessions.token_id`, so one active session per user holds for
//!    staff too. Requests other than GET/HEAD/OPTIONS that authenticate with the cookie must
//!    carry the matching `CSRF-Token` header ([`csrf_token`], an HMAC of the session under the
//!    JWT key), so a cross-site form cannot act with an organiser's cookie.
//!
//! Roles (admin-api "fctf decisions"): `admin` may do everything; `jury` reads everything and
//! answers tickets but changes neither challenges nor accounts; `challenge_writer` reads and
//! changes challenges and their children (flags, hints, tags, topics, files, solutions) only.
//! Players are refused everywhere. Every route of the admin API names one [`Access`] level in
//! the route table (`admin::routes`), and the guard applies it before the handler runs.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method};
use ring::hmac;
use serde::Serialize;

use super::error::AdminError;
use crate::api::contestant::client_ip::TrustedProxies;
use crate::auth::token_digest;
use crate::config::Secrets;
use crate::domain::UserId;
use crate::store::{Session, Store, StoreError, User, UserRole};

/// Name of the admin UI session cookie.
pub const SESSION_COOKIE: &str = "fctf_admin_session";
/// Header carrying the CSRF token of a cookie session.
pub const CSRF_HEADER: &str = "csrf-token";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read challenges and their children: admin, jury, challenge writer.
    ChallengeRead,
    /// Change challenges and their children: admin, challenge writer.
    ChallengeWrite,
    /// Read everything else (accounts, submissions, configuration…): admin, jury.
    Read,
    /// Change everything else: admin only.
    Write,
    /// The caller's own resources (API tokens): any staff role.
    Staff,
    /// Answer tickets: admin, jury.
    Tickets,
}

impl Access {
    /// True when `role` may use a route of this level.
    pub fn allows(self, role: UserRole) -> bool {
        match role {
            UserRole::User => false,
            UserRole::Admin => true,
            UserRole::Jury => matches!(self, Access::ChallengeRead | Access::Read | Access::Staff | Access::Tickets),
            UserRole::Writer => matches!(self, Access::ChallengeRead | Access::ChallengeWrite | Access::Staff),
        }
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token (its id).
    Token(i64),
    /// An admin UI session (its `token_id`).
    Session(String),
}

/// The authenticated caller of an admin route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The account.
    pub user_id: UserId,
    /// Its name (kept in the audit log).
    pub name: String,
    /// Its role.
    pub role: UserRole,
    /// How it authenticated.
    pub credential: Credential,
    /// The client address, when known.
    pub ip: Option<String>,
}

impl Actor {
    /// True for the admin role.
    pub fn is_admin(&self) -> bool {
        self.role == UserRole::Admin
    }
}

/// The client address of a request, decided by the `api.trusted_proxies` setting (fctf
/// decision 14): the socket peer, or the first untrusted `X-Forwarded-For` hop when the peer is
/// a trusted proxy.
pub fn client_ip(extensions: &axum::http::Extensions, headers: &HeaderMap, proxies: &TrustedProxies) -> Option<String> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let forwarded: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect();
    proxies.client_ip(peer, &forwarded).map(|ip| ip.to_string())
}

/// Authenticates a request. `Ok(None)`: no credentials at all.
pub async fn authenticate(
    store: &Store,
    secrets: &Secrets,
    method: &Method,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<Option<Actor>, AdminError> {
    let now = chrono::Utc::now().timestamp();
    if let Some(header) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = header.to_str().map_err(|_| AdminError::Unauthorized("Invalid authorization header".into()))?;
        let mut words = text.split_whitespace();
        let (Some(_scheme), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(AdminError::Unauthorized("Invalid authorization header".into()));
        };
        let Some((api_token, user)) = store.find_api_token(&token_digest(token), now).await? else {
            return Err(AdminError::Unauthorized("Your access token is invalid or has expired".into()));
        };
        return actor_of(user, Credential::Token(api_token.id), ip).map(Some);
    }
    let Some(secret) = session_cookie(headers) else { return Ok(None) };
    let token_id = token_digest(&secret);
    let Some(session) = store.get_active_session(&token_id, now).await? else {
        return Err(AdminError::Unauthorized("Your session has expired; log in again".into()));
    };
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let given = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("");
        if !csrf_matches(secrets, &session.token_id, given) {
            return Err(AdminError::Forbidden("CSRF token missing or invalid".into()));
        }
    }
    let user = match store.get_user(session.user_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound) => return Err(AdminError::Unauthorized("Your session has expired".into())),
        Err(error) => return Err(error.into()),
    };
    actor_of(user, Credential::Session(session.token_id), ip).map(Some)
}

fn actor_of(user: User, credential: Credential, ip: Option<String>) -> Result<Actor, AdminError> {
    if user.banned {
        return Err(AdminError::Forbidden("Your account has been banned".into()));
    }
    Ok(Actor { user_id: user.id, name: user.name, role: user.role, credential, ip })
}

/// The value of the admin session cookie, if sent.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    for header in headers.get_all(axum::http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == SESSION_COOKIE
                && !value.is_empty()
            {
                return Some(value.to_owned());
            }
        }
    }
    None
}

fn csrf_key(secrets: &Secrets) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secrets.jwt())
}

/// The CSRF token of a session (`token_id` is the stored session id).
pub fn csrf_token(secrets: &Secrets, token_id: &str) -> String {
    let tag = hmac::sign(&csrf_key(secrets), format!("csrf:{token_id}").as_bytes());
    hex::encode(tag.as_ref())
}

/// True when `given` is the CSRF token of the session `token_id` (constant-time check).
pub fn csrf_matches(secrets: &Secrets, token_id: &str, given: &str) -> bool {
    let Ok(tag) = hex::decode(given.trim()) else { return false };
    hmac::verify(&csrf_key(secrets), format!("csrf:{token_id}").as_bytes(), &tag).is_ok()
}

/// A freshly opened admin UI session.
#[derive(Debug, Clone)]
pub struct AdminSession {
    /// The stored session.
    pub session: Session,
    /// The `Set-Cookie` header value to send (HttpOnly, SameSite=Strict, Path=/).
    pub set_cookie: String,
    /// The token to put in the `CSRF-Token` header of changing requests.
    pub csrf_token: String,
}

/// Opens an admin UI session for a staff account (revoking its previous one) and returns the
/// cookie to set. `secure` adds the `Secure` attribute (serve the UI over TLS).
pub async fn open_session(
    store: &Store,
    secrets: &Secrets,
    user: &User,
    ttl_seconds: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
    secure: bool,
) -> Result<AdminSession, AdminError> {
    if user.role == UserRole::User {
        return Err(AdminError::Forbidden("only staff accounts can open an admin session".into()));
    }
    let (secret, token_id) = crate::auth::new_api_token();
    let expires_at = chrono::Utc::now().timestamp().saturating_add(ttl_seconds.max(60));
    let session = store.create_session(user.id, &token_id, expires_at, ip, user_agent).await?;
    let secure_attribute = if secure { "; Secure" } else { "" };
    let set_cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure_attribute}",
        ttl_seconds.max(60)
    );
    let csrf_token = csrf_token(secrets, &session.token_id);
    Ok(AdminSession { session, set_cookie, csrf_token })
}

/// Ends the admin UI session named by the request's cookie (logout) and returns the
/// `Set-Cookie` value that clears it; the session is revoked whether or not it was active.
pub async fn close_session(store: &Store, headers: &HeaderMap) -> Result<String, AdminError> {
    if let Some(secret) = session_cookie(headers) {
        store.revoke_session(&token_digest(&secret)).await?;
    }
    Ok(format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_access_levels() {
        use Access::*;
        let all = [ChallengeRead, ChallengeWrite, Read, Write, Staff, Tickets];
        assert!(all.iter().all(|access| access.allows(UserRole::Admin)));
        assert!(all.iter().all(|access| !access.allows(UserRole::User)));
        let jury: Vec<_> = all.iter().filter(|access| access.allows(UserRole::Jury)).collect();
        assert_eq!(jury, vec![&ChallengeRead, &Read, &Staff, &Tickets]);
        let writer: Vec<_> = all.iter().filter(|access| access.allows(UserRole::Writer)).collect();
        assert_eq!(writer, vec![&ChallengeRead, &ChallengeWrite, &Staff]);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let secrets = Secrets::random();
        let token = csrf_token(&secrets, "abc");
        assert!(csrf_matches(&secrets, "abc", &token));
        assert!(!csrf_matches(&secrets, "abd", &token));
        assert!(!csrf_matches(&secrets, "abc", "zz"));
        assert!(!csrf_matches(&Secrets::random(), "abc", &token));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, "a=1; fctf_admin_session=xyz; b=2".parse().unwrap());
        assert_eq!(session_cookie(&headers).as_deref(), Some("xyz"));
        headers.insert(axum::http::header::COOKIE, "fctf_admin_session=".parse().unwrap());
        assert_eq!(session_cookie(&headers), None);
    }
}
