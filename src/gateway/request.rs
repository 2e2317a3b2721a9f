//! One HTTP request: health, limits, token (URL redirect or cookie), then the proxy.
//!
//! Order for every request except `/healthz` and `/healthcheck` (no auth, no limits): per-IP
//! bucket (429) → declared body size (413) → token from the URL (redirect) or the cookie (401
//! when missing or bad) → per-(token, IP) bucket (429) → proxy.
//!
//! A token's MAC and JSON are checked once: the gateway remembers verified tokens
//! ([`crate::gateway::verified`]) and each connection its last one, so later requests (on any
//! connection) only check expiry and liveness, which they do every time. The access line's
//! strings are only built when that log target is enabled.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::domain::gateway_token::{TokenClaims, TokenError};
use crate::gateway::auth::{self, UrlToken};
use crate::gateway::body::{ACCESS_TARGET, AccessRecord, ResponseBody};
use crate::gateway::error::{Error, plain_response};
use crate::gateway::http::ConnInfo;
use crate::gateway::verified::Authorized;
use crate::gateway::{Shared, proxy};

/// Answers one request.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    conn: Arc<ConnInfo>,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = request.uri().path();
    if path == "/healthz" || path == "/healthcheck" {
        return plain_response(StatusCode::OK, "ok").map(ResponseBody::full);
    }
    let client_ip = shared.trusted.client_ip(conn.peer, request.headers());
    let logged_path = tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO).then(|| auth::loggable_path(path));
    let mut record = AccessRecord {
        conn: conn.clone(),
        started: Instant::now(),
        method: request.method().clone(),
        path: logged_path,
        status: 0,
        client_ip,
        auth: None,
        request_body: None,
    };
    let response = match decide(shared, &conn, client_ip, request, &mut record).await {
        Ok(response) => response,
        Err(error) => {
            if error.is_auth_failure() {
                shared.metrics.http_auth_failures.inc();
            } else if matches!(error, Error::RateLimited) {
                shared.metrics.http_rate_limited.inc();
            }
            error.to_response().map(ResponseBody::full)
        }
    };
    record.status = response.status().as_u16();
    response.map(|body| body.with_record(record))
}

async fn decide(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    client_ip: IpAddr,
    request: Request<Incoming>,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, Error> {
    if !shared.limits.allow_http_ip(client_ip).await {
        return Err(Error::RateLimited);
    }
    if declared_length(request.headers()).is_some_and(|length| length > shared.cfg.http_max_body_bytes) {
        return Err(Error::BodyTooLarge);
    }
    if request.method() == http::Method::CONNECT {
        return Err(Error::BadRequest);
    }
    if let Some(url_token) = auth::url_token(request.uri()) {
        match shared.authorize(&url_token.token).await {
            Ok(authorized) => {
                record.auth = Some(authorized.clone());
                if !shared.limits.allow_http_token(&authorized, client_ip).await {
                    return Err(Error::RateLimited);
                }
                let secure = conn.tls || shared.trusted.forwarded_https(conn.peer, request.headers());
                return redirect(&url_token, &authorized.claims, secure, request.headers());
            }
            Err(url_error) => {
                // `fctftoken` is ours for sure; the other forms may be the app's own parameter,
                // so a valid cookie wins over them.
                if url_token.dedicated {
                    return Err(url_error);
                }
                return match cookie_auth(shared, conn, request.headers()).await {
                    Ok(cookie) => proxy_with(shared, conn, client_ip, request, cookie, record).await,
                    Err(Error::MissingToken) => Err(url_error),
                    Err(cookie_error) => Err(cookie_error),
                };
            }
        }
    }
    let cookie = cookie_auth(shared, conn, request.headers()).await?;
    proxy_with(shared, conn, client_ip, request, cookie, record).await
}

async fn proxy_with(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    client_ip: IpAddr,
    request: Request<Incoming>,
    cookie: CookieAuth,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, Error> {
    let authorized = cookie.authorized;
    record.auth = Some(authorized.clone());
    if !shared.limits.allow_http_token(&authorized, client_ip).await {
        return Err(Error::RateLimited);
    }
    proxy::forward(shared, conn, request, &authorized, cookie.other_cookies, record).await
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// A request authenticated by a gateway cookie.
struct CookieAuth {
    authorized: Arc<Authorized>,
    /// The `Cookie` headers also carry other cookies (else the proxy drops them whole).
    other_cookies: bool,
}

/// The first gateway cookie that authorizes; the first failure when none does.
async fn cookie_auth(shared: &Shared, conn: &ConnInfo, headers: &HeaderMap) -> Result<CookieAuth, Error> {
    let mut first_error = None;
    let mut found = None;
    let mut other_cookies = false;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else {
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
            match authorize_remembered(shared, conn, token).await {
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
async fn authorize_remembered(shared: &Shared, conn: &ConnInfo, token: &str) -> Result<Arc<Authorized>, Error> {
    let remembered = conn.last_auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    if let Some(authorized) = remembered.filter(|authorized| authorized.token == token) {
        let now = chrono::Utc::now().timestamp();
        if now > authorized.claims.exp {
            return Err(Error::InvalidToken(TokenError::Expired { exp: authorized.claims.exp, now }));
        }
        shared.check_live(&authorized).await?;
        return Ok(authorized);
    }
    let authorized = shared.authorize(token).await?;
    *conn.last_auth.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(authorized.clone());
    Ok(authorized)
}

/// The token-for-cookie redirect: 302 to the same place without the token, the gateway cookie
/// as the first `Set-Cookie`, the request's other cookies expired after it.
fn redirect(
    url_token: &UrlToken,
    claims: &TokenClaims,
    secure: bool,
    request_headers: &HeaderMap,
) -> Result<Response<ResponseBody>, Error> {
    let location = HeaderValue::from_str(&url_token.location).map_err(|_| Error::BadRequest)?;
    let max_age = claims.exp - chrono::Utc::now().timestamp();
    let mut response = Response::new(ResponseBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    let cookie = HeaderValue::from_str(&auth::gateway_cookie(&url_token.token, max_age, secure))
        .map_err(|_| Error::BadRequest)?;
    headers.append(header::SET_COOKIE, cookie);
    let cookie_headers = request_headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok());
    for expired in auth::expire_other_cookies(cookie_headers, secure) {
        if let Ok(value) = HeaderValue::from_str(&expired) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    insert_no_store(headers);
    Ok(response)
}

/// The no-store trio.
pub(crate) fn insert_no_store(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate, private, max-age=0"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
}
