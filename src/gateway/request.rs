//! What to do with one HTTP request: limits, then the token (URL redirect or cookie).
//!
//! Order for every request except `/healthz` and `/healthcheck` (no auth, no limits; answered
//! in [`crate::gateway::http`]): per-IP bucket (429) → declared body size (413) → token from
//! the URL (redirect) or the cookie (401 when missing or bad) → per-(token, IP) bucket (429) →
//! proxy.
//!
//! A token's MAC and JSON are checked once: the gateway remembers verified tokens
//! ([`crate::gateway::verified`]) and each connection its last one, so later requests (on any
//! connection) only check expiry and liveness, which they do every time.

use std::net::IpAddr;
use std::sync::Arc;

use crate::domain::gateway_token::{TokenClaims, TokenError};
use crate::gateway::auth::{self, UrlToken};
use crate::gateway::body::AccessRecord;
use crate::gateway::error::Error;
use crate::gateway::http::Conn;
use crate::gateway::verified::Authorized;
use crate::gateway::wire::{Framing, Kind, RequestHead};

/// The no-store trio (CRLF-terminated header lines).
pub(crate) const NO_STORE: &str =
    "Cache-Control: no-store, no-cache, must-revalidate, private, max-age=0\r\nPragma: no-cache\r\nExpires: 0\r\n";

/// The outcome of the checks.
pub(crate) enum Decision {
    /// The token-for-cookie redirect (302 with these header lines, no body).
    Redirect { headers: String },
    /// Proxy to the token's instance.
    Proxy {
        authorized: Arc<Authorized>,
        /// The `Cookie` headers also carry other cookies (else the proxy drops them whole).
        other_cookies: bool,
    },
}

/// Decides one request (`target`: its path and query).
pub(crate) async fn decide(
    conn: &mut Conn,
    head: &RequestHead,
    target: &str,
    client_ip: IpAddr,
    record: &mut AccessRecord,
) -> Result<Decision, Error> {
    let shared = conn.shared.clone();
    if !shared.limits.allow_http_ip(client_ip).await {
        return Err(Error::RateLimited);
    }
    if let Framing::Length(length) = head.fields.framing
        && length > shared.cfg.http_max_body_bytes
    {
        return Err(Error::BodyTooLarge);
    }
    if head.method() == b"CONNECT" {
        return Err(Error::BadRequest);
    }
    if let Some(url_token) = auth::url_token(target) {
        match shared.authorize(&url_token.token).await {
            Ok(authorized) => {
                record.auth = Some(authorized.clone());
                if !shared.limits.allow_http_token(&authorized, client_ip).await {
                    return Err(Error::RateLimited);
                }
                let secure =
                    conn.tls || shared.trusted.forwarded_https(conn.peer, head.fields.first(Kind::XForwardedProto));
                return redirect(&url_token, &authorized.claims, secure, head);
            }
            Err(url_error) => {
                // `fctftoken` is ours for sure; the other forms may be the app's own parameter,
                // so a valid cookie wins over them.
                if url_token.dedicated {
                    return Err(url_error);
                }
                return match cookie_auth(conn, head).await {
                    Ok(cookie) => proxy_with(conn, client_ip, cookie, record).await,
                    Err(Error::MissingToken) => Err(url_error),
                    Err(cookie_error) => Err(cookie_error),
                };
            }
        }
    }
    let cookie = cookie_auth(conn, head).await?;
    proxy_with(conn, client_ip, cookie, record).await
}

async fn proxy_with(
    conn: &Conn,
    client_ip: IpAddr,
    cookie: CookieAuth,
    record: &mut AccessRecord,
) -> Result<Decision, Error> {
    let authorized = cookie.authorized;
    record.auth = Some(authorized.clone());
    if !conn.shared.limits.allow_http_token(&authorized, client_ip).await {
        return Err(Error::RateLimited);
    }
    Ok(Decision::Proxy { authorized, other_cookies: cookie.other_cookies })
}

/// A request authenticated by a gateway cookie.
struct CookieAuth {
    authorized: Arc<Authorized>,
    other_cookies: bool,
}

/// The first gateway cookie that authorizes; the first failure when none does.
async fn cookie_auth(conn: &mut Conn, head: &RequestHead) -> Result<CookieAuth, Error> {
    let mut first_error = None;
    let mut found = None;
    let mut other_cookies = false;
    for value in head.fields.values(Kind::Cookie) {
        let Ok(text) = std::str::from_utf8(value) else {
            other_cookies = true;
            continue;
        };
        for (name, token) in auth::cookie_pairs(text) {
            if name != auth::COOKIE_NAME {
                other_cookies = true;
                continue;
            }
            if found.is_some() {
                continue;
            }
            match authorize_remembered(conn, token).await {
                Ok(authorized) => found = Some(authorized),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    match found {
        Some(authorized) => Ok(CookieAuth { authorized, other_cookies }),
        None => Err(first_error.unwrap_or(Error::MissingToken)),
    }
}

/// Verifies `token`, reusing the connection's last verification when it is the same token
/// (expiry and liveness are still checked).
async fn authorize_remembered(conn: &mut Conn, token: &str) -> Result<Arc<Authorized>, Error> {
    if let Some(authorized) = conn.last_auth.as_ref().filter(|authorized| authorized.token == token) {
        let now = chrono::Utc::now().timestamp();
        if now > authorized.claims.exp {
            return Err(Error::InvalidToken(TokenError::Expired { exp: authorized.claims.exp, now }));
        }
        conn.shared.check_live(authorized).await?;
        return Ok(authorized.clone());
    }
    let authorized = conn.shared.authorize(token).await?;
    conn.last_auth = Some(authorized.clone());
    Ok(authorized)
}

/// True when `value` can go into a header line as is (no control characters).
fn header_safe(value: &str) -> bool {
    value.bytes().all(|byte| byte == b'\t' || (byte >= b' ' && byte != 0x7f))
}

/// The token-for-cookie redirect: 302 to the same place without the token, the gateway cookie
/// as the first `Set-Cookie`, the request's other cookies expired after it.
fn redirect(url_token: &UrlToken, claims: &TokenClaims, secure: bool, head: &RequestHead) -> Result<Decision, Error> {
    let max_age = claims.exp - chrono::Utc::now().timestamp();
    let cookie = auth::gateway_cookie(&url_token.token, max_age, secure);
    if !header_safe(&url_token.location) || !header_safe(&cookie) {
        return Err(Error::BadRequest);
    }
    let mut headers = String::with_capacity(512);
    headers.push_str("Location: ");
    headers.push_str(&url_token.location);
    headers.push_str("\r\nSet-Cookie: ");
    headers.push_str(&cookie);
    headers.push_str("\r\n");
    let cookie_headers = head.fields.values(Kind::Cookie).filter_map(|value| std::str::from_utf8(value).ok());
    for expired in auth::expire_other_cookies(cookie_headers, secure) {
        if header_safe(&expired) {
            headers.push_str("Set-Cookie: ");
            headers.push_str(&expired);
            headers.push_str("\r\n");
        }
    }
    headers.push_str(NO_STORE);
    Ok(Decision::Redirect { headers })
}
