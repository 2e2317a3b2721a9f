//! The HTTP port: connection handling and the per-request decision (health, limits, token,
//! redirect or proxy).
//!
//! Order for every request except `/healthz` and `/healthcheck` (no auth, no limits): per-IP
//! bucket (429) → declared body size (413) → token from the URL (redirect) or the cookie (401
//! when missing or bad) → per-(token, IP) bucket (429) → proxy. Connections are HTTP/1.1 with
//! keep-alive and upgrades; the header read timeout also bounds idle keep-alive connections.
//! Half-closed clients (`printf 'GET / ...' | nc`) still get their answer.
//!
//! Lingering close: when a connection ends with request bytes still unread (a 413, a 401 to a
//! POST), closing the socket would make the kernel answer with a reset that can destroy the
//! response before the client reads it. So, unless the connection was upgraded, the gateway
//! keeps a duplicate of the socket, sends FIN after hyper is done, and reads and discards what
//! the client still sends for up to `LINGER` before closing (what nginx calls lingering close).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::domain::gateway_token::TokenClaims;
use crate::gateway::auth::{self, UrlToken};
use crate::gateway::body::{AccessRecord, ResponseBody};
use crate::gateway::error::{Error, plain_response};
use crate::gateway::limits::token_key;
use crate::gateway::{Shared, proxy, tls};

const LINGER: Duration = Duration::from_secs(2);

/// What a request handler knows about its connection.
pub(crate) struct ConnInfo {
    /// The socket peer (or the PROXY header's source).
    pub(crate) peer: IpAddr,
    /// The connection is TLS.
    pub(crate) tls: bool,
    /// Set when the connection was handed over to an upgrade relay.
    pub(crate) upgraded: AtomicBool,
}

/// Serves one HTTP connection until it closes or the gateway stops.
pub(crate) async fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let header_timeout = Duration::from_secs(shared.cfg.http_header_timeout_secs);
    let Some(peer) = shared.resolve_peer(&mut stream, peer, header_timeout).await else { return };
    let linger_handle = duplicate(&stream);
    let acceptor = shared.tls.as_ref().map(|acceptors| &acceptors.http);
    let Some(stream) = tls::accept(stream, acceptor, header_timeout, header_timeout).await else { return };
    let conn = Arc::new(ConnInfo { peer: peer.ip(), tls: stream.is_tls(), upgraded: AtomicBool::new(false) });
    let service_conn = conn.clone();
    let shutdown = shared.shutdown.clone();
    let hard_stop = shared.hard_stop.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        let conn = service_conn.clone();
        async move { Ok::<_, Infallible>(handle(&shared, &conn, request).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true).half_close(true);
    let result = {
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => result,
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => result,
                    () = hard_stop.cancelled() => Ok(()),
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "http connection ended with an error");
    }
    if let Some(socket) = linger_handle
        && !conn.upgraded.load(Ordering::Relaxed)
        && !hard_stop.is_cancelled()
    {
        linger(socket).await;
    }
}

/// A second handle on the connection's socket, so it can be closed gently after hyper is done.
fn duplicate(stream: &TcpStream) -> Option<TcpStream> {
    let socket = socket2::SockRef::from(stream).try_clone().ok()?;
    TcpStream::from_std(std::net::TcpStream::from(socket)).ok()
}

/// Sends FIN, then discards what the client still sends (until it closes, or `LINGER`).
async fn linger(mut socket: TcpStream) {
    let _ = socket.shutdown().await;
    let mut sink = [0_u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(read) = socket.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}

/// Answers one request.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let path = request.uri().path();
    if path == "/healthz" || path == "/healthcheck" {
        return plain_response(StatusCode::OK, "ok").map(ResponseBody::full);
    }
    let client_ip = shared.trusted.client_ip(conn.peer, request.headers());
    let mut record = AccessRecord {
        metrics: shared.metrics.clone(),
        started: Instant::now(),
        method: request.method().clone(),
        path: auth::loggable_path(path),
        status: 0,
        client_ip,
        route: None,
        instance_id: None,
        request_body: None,
    };
    let response = match decide(shared, conn, client_ip, request, &mut record).await {
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
    let secure = conn.tls || shared.trusted.forwarded_https(conn.peer, request.headers());
    if let Some(url_token) = auth::url_token(request.uri()) {
        match shared.authorize(&url_token.token).await {
            Ok(claims) => {
                note_claims(record, &claims);
                if !shared.limits.allow_http_token(&token_key(&url_token.token), client_ip).await {
                    return Err(Error::RateLimited);
                }
                return redirect(&url_token, &claims, secure, request.headers());
            }
            Err(url_error) => {
                // Not ours for sure: the app may own this parameter if the cookie is good.
                if url_token.dedicated {
                    return Err(url_error);
                }
                return match cookie_token(shared, request.headers()).await {
                    Ok((token, claims)) => proxy_with(shared, conn, client_ip, request, token, claims, record).await,
                    Err(Error::MissingToken) => Err(url_error),
                    Err(cookie_error) => Err(cookie_error),
                };
            }
        }
    }
    let (token, claims) = cookie_token(shared, request.headers()).await?;
    proxy_with(shared, conn, client_ip, request, token, claims, record).await
}

async fn proxy_with(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    client_ip: IpAddr,
    request: Request<Incoming>,
    token: String,
    claims: TokenClaims,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, Error> {
    note_claims(record, &claims);
    if !shared.limits.allow_http_token(&token_key(&token), client_ip).await {
        return Err(Error::RateLimited);
    }
    proxy::forward(shared, conn, request, &claims, record).await
}

fn note_claims(record: &mut AccessRecord, claims: &TokenClaims) {
    record.route = Some(claims.route.clone());
    record.instance_id = claims.instance_id.map(|id| id.get());
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The first gateway cookie that authorizes; the first failure when none does.
async fn cookie_token(shared: &Shared, headers: &HeaderMap) -> Result<(String, TokenClaims), Error> {
    let mut first_error = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for (name, token) in auth::cookie_pairs(text) {
            if name != auth::COOKIE_NAME {
                continue;
            }
            match shared.authorize(token).await {
                Ok(claims) => return Ok((token.to_owned(), claims)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    Err(first_error.unwrap_or(Error::MissingToken))
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
