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

use http::header::{self, Entry, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::gateway::auth;
use crate::gateway::body::{AccessRecord, BodyProgress, LimitedBody, ResponseBody};
use crate::gateway::error::Error;
use crate::gateway::http::ConnInfo;
use crate::gateway::request::insert_no_store;
use crate::gateway::verified::Authorized;
use crate::gateway::{Shared, session};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const HOP_BY_HOP_COUNT: usize = 9;
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
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
    other_cookies: bool,
    record: &mut AccessRecord,
) -> Result<Response<ResponseBody>, Error> {
    let claims = &authorized.claims;
    let authority = authorized.authority.as_ref().ok_or(Error::UpstreamUnreachable)?;
    let upgrade = upgrade_protocol(request.headers());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();

    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() || parts.uri.path_and_query().is_none() {
        let path_and_query = parts.uri.path_and_query().map_or("/", |value| value.as_str());
        parts.uri = Uri::builder().path_and_query(path_and_query).build().map_err(|_| Error::BadRequest)?;
    }
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    if let Some(protocol) = &upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    if other_cookies {
        strip_gateway_cookie(headers);
    } else {
        // The request authenticated with a gateway cookie and carries no other cookie.
        headers.remove(header::COOKIE);
    }
    let host = authorized.host.clone().ok_or(Error::BadRequest)?;
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
    // One pass over the (few) names present, then removals of only those found: hashing every
    // hop-by-hop name on every request and response costs more than the rest of this module.
    let mut present = [false; HOP_BY_HOP_COUNT];
    let mut any = false;
    for name in headers.keys() {
        if let Some(index) = hop_by_hop_index(name) {
            present[index] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    // HOP_BY_HOP[0] is `Connection`: the headers it names go too.
    if present[0] {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim_ascii)
            // The usual options name no header (or one removed below anyway).
            .filter(|token| {
                !token.is_empty()
                    && !token.eq_ignore_ascii_case("keep-alive")
                    && !token.eq_ignore_ascii_case("close")
                    && !token.eq_ignore_ascii_case("upgrade")
            })
            .filter_map(|token| HeaderName::from_str(token).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (name, found) in HOP_BY_HOP.iter().zip(present) {
        if found {
            headers.remove(name);
        }
    }
}

/// The position of `name` in `HOP_BY_HOP` (a match on the lower-case name compiles to a
/// length switch and one comparison, cheaper than comparing with each entry).
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-authenticate" => 2,
        "proxy-authorization" => 3,
        "proxy-connection" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Removes the gateway cookie from the `Cookie` headers, leaving the other cookies byte for
/// byte where a header did not carry it.
fn strip_gateway_cookie(headers: &mut HeaderMap) {
    let mut carries_gateway = false;
    let mut carries_other = false;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else {
            carries_other = true;
            continue;
        };
        for (name, _) in auth::cookie_pairs(text) {
            if name == auth::COOKIE_NAME {
                carries_gateway = true;
            } else {
                carries_other = true;
            }
        }
    }
    if !carries_gateway {
        return;
    }
    if !carries_other {
        headers.remove(header::COOKIE);
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
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Occupied(mut occupied) => {
            let prior: Vec<&str> = occupied.iter().filter_map(|value| value.to_str().ok()).collect();
            let value = format!("{}, {}", prior.join(", "), conn.peer);
            if let Ok(value) = HeaderValue::from_str(&value) {
                occupied.insert(value);
            }
        }
        Entry::Vacant(vacant) => {
            if let Some(peer) = &conn.peer_header {
                vacant.insert(peer.clone());
            }
        }
    }
    let proto = if conn.tls { "https" } else { "http" };
    headers.entry(X_FORWARDED_PROTO).or_insert_with(|| HeaderValue::from_static(proto));
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
    fn gateway_cookie_is_stripped_and_other_cookies_kept() {
        let mut only = HeaderMap::new();
        only.append(header::COOKIE, HeaderValue::from_static("FCTF_Auth_Token=abc"));
        strip_gateway_cookie(&mut only);
        assert!(!only.contains_key(header::COOKIE));

        let mut untouched = HeaderMap::new();
        untouched.append(header::COOKIE, HeaderValue::from_static("a=1;b=2"));
        strip_gateway_cookie(&mut untouched);
        assert_eq!(untouched.get(header::COOKIE).unwrap(), "a=1;b=2", "left byte for byte");

        let mut mixed = HeaderMap::new();
        mixed.append(header::COOKIE, HeaderValue::from_static("a=1; FCTF_Auth_Token=abc"));
        mixed.append(header::COOKIE, HeaderValue::from_static("b=2"));
        strip_gateway_cookie(&mut mixed);
        let values: Vec<_> = mixed.get_all(header::COOKIE).iter().collect();
        assert_eq!(values, vec!["a=1; b=2"]);
    }

    #[test]
    fn connection_options_that_name_no_header_are_skipped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        let mut clean = HeaderMap::new();
        clean.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut clean);
        assert_eq!(clean.len(), 1);
    }

    #[test]
    fn hop_by_hop_index_matches_the_list() {
        for (index, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(index));
        }
        assert_eq!(hop_by_hop_index(&header::ACCEPT), None);
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
