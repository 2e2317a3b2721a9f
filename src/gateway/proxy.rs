//! Forwarding an authenticated request to its instance, and WebSocket (any HTTP/1.1 upgrade)
//! pass-through.
//!
//! Towards the upstream: absolute `http://<authority><path?query>` URI, `Host` set to the
//! upstream authority (as the original did), hop-by-hop headers removed (including those the
//! `Connection` header names), the gateway cookie removed from `Cookie`, and the socket peer
//! appended to `X-Forwarded-For`. Appending (never replacing) keeps what the client sent, as the
//! original proxy did: challenges that are *meant* to trust a spoofable header keep working.
//! Towards the client: hop-by-hop headers removed, any upstream `Set-Cookie` for the gateway
//! cookie dropped (a challenge cannot overwrite or delete it), and HTML marked no-store without
//! `ETag`/`Last-Modified`.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::gateway::auth;
use crate::gateway::body::{AccessRecord, BodyProgress, LimitedBody, ResponseBody};
use crate::gateway::error::Error;
use crate::gateway::http::ConnInfo;
use crate::gateway::request::{Authorized, insert_no_store};
use crate::gateway::{Shared, session};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Proxies `request` to the instance of `claims`.
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    mut request: Request<Incoming>,
    authorized: &Authorized,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, Error> {
    let claims = &authorized.claims;
    let authority = authorized.authority.as_ref().ok_or(Error::UpstreamUnreachable)?;
    let upgrade = upgrade_protocol(request.headers());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();

    let path_and_query = parts.uri.path_and_query().map_or("/", |value| value.as_str());
    parts.uri = Uri::builder().path_and_query(path_and_query).build().map_err(|_| Error::BadRequest)?;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    strip_gateway_cookie(headers);
    let host = HeaderValue::from_str(authority.as_str()).map_err(|_| Error::BadRequest)?;
    headers.insert(header::HOST, host);
    append_forwarded_for(headers, conn);

    let progress = Arc::new(BodyProgress::default());
    record.request_body = Some(progress.clone());
    let upstream_request =
        http::Request::from_parts(parts, LimitedBody::new(body, shared.cfg.http_max_body_bytes, progress.clone()));
    let wait = Duration::from_secs(shared.cfg.upstream_response_timeout_secs);
    let sending = conn.upstreams.send(&shared.pool, authority, upstream_request, upgrade.is_some());
    let mut response = match tokio::time::timeout(wait, sending).await {
        Err(_elapsed) => return Err(Error::UpstreamTimeout),
        Ok(Err(error)) => {
            if progress.exceeded.load(Ordering::Relaxed) {
                return Err(Error::BodyTooLarge);
            }
            tracing::debug!(upstream = %authority, %error, "upstream request failed");
            return Err(Error::UpstreamUnreachable);
        }
        Ok(Ok(response)) => response,
    };
    if progress.exceeded.load(Ordering::Relaxed) {
        return Err(Error::BodyTooLarge);
    }

    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    match (switching, client_upgrade) {
        (true, Some(client_upgrade)) => {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            conn.upgraded.store(true, std::sync::atomic::Ordering::Relaxed);
            let pipe_shared = shared.clone();
            let exp = claims.exp;
            let instance_id = claims.instance_id;
            shared.tracker.spawn(async move {
                session::pipe_upgrade(pipe_shared, client_upgrade, upstream_upgrade, exp, instance_id).await;
            });
            let upgrade_header = response.headers().get(header::UPGRADE).cloned();
            remove_hop_by_hop(response.headers_mut());
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            if let Some(value) = upgrade_header {
                response.headers_mut().insert(header::UPGRADE, value);
            }
        }
        (true, None) => return Err(Error::UpstreamUnreachable),
        (false, _) => remove_hop_by_hop(response.headers_mut()),
    }
    filter_response_headers(response.headers_mut());
    Ok(response.map(ResponseBody::upstream))
}

/// The `Upgrade` value when the request asks for a protocol upgrade.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if wants { headers.get(header::UPGRADE).cloned() } else { None }
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|token| HeaderName::from_str(token.trim()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

fn strip_gateway_cookie(headers: &mut HeaderMap) {
    let mentions_gateway_cookie = headers.get_all(header::COOKIE).iter().any(|value| {
        value.as_bytes().windows(auth::COOKIE_NAME.len()).any(|window| window == auth::COOKIE_NAME.as_bytes())
    });
    if !mentions_gateway_cookie {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(auth::strip_gateway_cookie)
        .collect();
    headers.remove(header::COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(header::COOKIE, value);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, conn: &ConnInfo) {
    let peer = conn.peer.to_string();
    let value = if headers.contains_key(&X_FORWARDED_FOR) {
        let prior: Vec<&str> =
            headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|value| value.to_str().ok()).collect();
        format!("{}, {peer}", prior.join(", "))
    } else {
        peer
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        let proto = if conn.tls { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
}

fn filter_response_headers(headers: &mut HeaderMap) {
    if headers.contains_key(header::SET_COOKIE)
        && headers.get_all(header::SET_COOKIE).iter().any(|value| auth::sets_gateway_cookie(value.as_bytes()))
    {
        let kept: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|value| !auth::sets_gateway_cookie(value.as_bytes()))
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for value in kept {
            headers.append(header::SET_COOKIE, value);
        }
    }
    let html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().windows(9).any(|window| window.eq_ignore_ascii_case(b"text/html")));
    if html {
        insert_no_store(headers);
        headers.remove(header::ETAG);
        headers.remove(header::LAST_MODIFIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(upgrade_protocol(&headers).is_none());
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert_eq!(upgrade_protocol(&headers).unwrap(), "websocket");
    }

    #[test]
    fn html_is_not_cached_and_gateway_cookie_cannot_be_set_by_upstream() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("Text/HTML; charset=utf-8"));
        headers.insert(header::ETAG, HeaderValue::from_static("\"x\""));
        headers.insert(header::LAST_MODIFIED, HeaderValue::from_static("yesterday"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("FCTF_Auth_Token=; Max-Age=0"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("app=1"));
        filter_response_headers(&mut headers);
        assert!(headers.get(header::CACHE_CONTROL).unwrap().to_str().unwrap().contains("no-store"));
        assert!(!headers.contains_key(header::ETAG) && !headers.contains_key(header::LAST_MODIFIED));
        let cookies: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, vec!["app=1"]);
    }
}
