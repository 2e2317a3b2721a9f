//! HTTP port behaviours.

use std::time::{Duration, Instant};

use http::header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::*;
use crate::cache::Cache;
use crate::domain::InstanceId;

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(header::SET_COOKIE).iter().map(|value| value.to_str().unwrap().to_owned()).collect()
}

pub(crate) async fn each_url_token_form_redirects_with_the_cookie_first(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 1).await;
    let client = client();
    let cases = [
        (format!("/app/page?a=1&fctftoken={token}&b=x%20y"), "/app/page?a=1&b=x%20y"),
        (format!("/?token={token}"), "/"),
        (format!("/p?t={token}&t2=keep"), "/p?t2=keep"),
        (format!("/p?access_token={token}"), "/p"),
        (format!("/deep/path/{token}?q=1"), "/deep/path/?q=1"),
        (format!("/{token}"), "/"),
    ];
    for (path, location) in cases {
        let response = client
            .get(gateway.url(&path))
            .header(header::COOKIE, "session=abc; FCTF_Auth_Token=old; theme=dark")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{path}");
        assert_eq!(response.headers()[header::LOCATION], location, "{path}");
        let cookies = set_cookies(&response);
        assert!(cookies[0].starts_with(&format!("FCTF_Auth_Token={token}; Path=/; Max-Age=")), "{cookies:?}");
        assert!(cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax"));
        assert_eq!(cookies.iter().filter(|cookie| cookie.starts_with("FCTF_Auth_Token=")).count(), 1, "{cookies:?}");
        assert!(cookies.iter().any(|cookie| cookie.starts_with("session=;") && cookie.contains("Max-Age=0")));
        assert!(cookies.iter().any(|cookie| cookie.starts_with("theme=;")));
        assert!(response.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("no-store"));
    }
}

pub(crate) async fn cookie_requests_are_proxied_without_the_gateway_cookie(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 2).await;
    let response = client()
        .post(gateway.url("/echo?x=1"))
        .header(header::COOKIE, format!("a=1; FCTF_Auth_Token={token}; b=2"))
        .header("x-forwarded-for", "10.9.9.9")
        .body(vec![b'z'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("method=POST"), "{text}");
    assert!(text.contains("uri=/echo?x=1"), "{text}");
    assert!(text.contains(&format!("host={upstream}")), "{text}");
    assert!(text.contains("cookie=a=1; b=2\n"), "{text}");
    assert!(!text.contains("FCTF_Auth_Token"), "{text}");
    assert!(text.contains("xff=10.9.9.9, 127.0.0.1"), "{text}");
    assert!(text.contains("body=1000"), "{text}");
    let only_gateway_cookie = client()
        .get(gateway.url("/"))
        .header(header::COOKIE, format!("FCTF_Auth_Token={token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(only_gateway_cookie.contains("cookie=\n"), "{only_gateway_cookie}");
}

pub(crate) async fn html_is_not_cached_and_upstream_cannot_touch_the_gateway_cookie(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 3).await;
    let cookie = format!("FCTF_Auth_Token={token}");
    let html = client().get(gateway.url("/html")).header(header::COOKIE, &cookie).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("no-store"));
    assert_eq!(html.headers()[header::PRAGMA], "no-cache");
    assert!(html.headers().get(header::ETAG).is_none() && html.headers().get(header::LAST_MODIFIED).is_none());
    let plain = client().get(gateway.url("/plain")).header(header::COOKIE, &cookie).send().await.unwrap();
    assert!(plain.headers().get(header::CACHE_CONTROL).is_none());
    let setter = client().get(gateway.url("/set-gateway-cookie")).header(header::COOKIE, &cookie).send().await.unwrap();
    assert_eq!(set_cookies(&setter), vec!["app=1; Path=/".to_owned()]);
}

pub(crate) async fn missing_invalid_and_expired_tokens_get_401(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let client = client();
    let missing = client.get(gateway.url("/")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.text().await.unwrap(), "missing token\n");

    let valid = gateway.mint(&upstream.to_string(), 600, None);
    let (payload, _) = valid.split_once('.').unwrap();
    let forged = format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let invalid = client.get(gateway.url(&format!("/?fctftoken={forged}"))).send().await.unwrap();
    assert_eq!(invalid.status(), 401);
    assert_eq!(invalid.text().await.unwrap(), "invalid token: invalid token signature\n");
    let garbage = client.get(gateway.url("/")).header(header::COOKIE, "FCTF_Auth_Token=garbage").send().await.unwrap();
    assert_eq!(garbage.text().await.unwrap(), "invalid token: invalid token format\n");

    let expired = gateway.mint(&upstream.to_string(), -5, None);
    for request in [
        client.get(gateway.url(&format!("/?fctftoken={expired}"))),
        client.get(gateway.url(&format!("/{expired}"))),
        client.get(gateway.url("/")).header(header::COOKIE, format!("FCTF_Auth_Token={expired}")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.text().await.unwrap().starts_with("invalid token: token expired (Exp: "));
    }
    assert!(gateway.metrics.render().contains("fctf_gateway_auth_failures_total{proto=\"http\"} 6"));
}

pub(crate) async fn app_parameters_shaped_like_tokens_pass_with_a_valid_cookie(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 4).await;
    let app_value = "appvalue12345678.signed";
    let response = client()
        .get(gateway.url(&format!("/files/{app_value}?token={app_value}")))
        .header(header::COOKIE, format!("FCTF_Auth_Token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains(&format!("uri=/files/{app_value}?token={app_value}")));
    let dedicated = client()
        .get(gateway.url("/?fctftoken=appvalue12345678.signed"))
        .header(header::COOKIE, format!("FCTF_Auth_Token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(dedicated.status(), 401, "fctftoken is always the gateway's");
}

pub(crate) async fn oversized_bodies_get_413_declared_or_chunked(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 5).await;
    let limit = 10 * 1024 * 1024;
    let over = limit + 1024;

    let declared = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nContent-Length: {over}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_http(gateway.http, declared.as_bytes()).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.ends_with("request body too large\n"), "{answer}");

    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b'c'; 64 * 1024];
        let mut sent = 0;
        while sent < over {
            let size = chunk.len().min(over - sent);
            let frame = [format!("{size:x}\r\n").as_bytes(), &chunk[..size], b"\r\n"].concat();
            if writer.write_all(&frame).await.is_err() {
                return;
            }
            sent += size;
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let answer = read_to_close(&mut reader).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    sender.abort();

    // At the limit exactly, chunked, everything arrives.
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'c'; 1024 * 1024];
    for _ in 0..10 {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        stream.write_all(&chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(status_of(&answer), 200, "{}", &answer[..answer.len().min(300)]);
    assert!(answer.contains(&format!("body={limit}")));
}

pub(crate) async fn dead_route_gets_502_and_health_stays_up(cache: Cache) {
    let dead = dead_addr().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint(&dead.to_string(), 600, None);
    let client = client();
    let response =
        client.get(gateway.url("/")).header(header::COOKIE, format!("FCTF_Auth_Token={token}")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.text().await.unwrap(), "Cannot connect to challenge\n");
    let unresolvable = gateway.mint("no-such-app", 600, None);
    let response = client
        .get(gateway.url("/"))
        .header(header::COOKIE, format!("FCTF_Auth_Token={unresolvable}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    for path in ["/healthz", "/healthcheck"] {
        let health = client.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.unwrap(), "ok\n");
    }
}

pub(crate) async fn upstream_dial_timeout_gets_502_quickly(cache: Cache) {
    let unresponsive = unresponsive_addr().await;
    let gateway = TestGateway::start(cache, |cfg| cfg.upstream_connect_timeout_secs = 1).await;
    let token = gateway.mint(&unresponsive.addr.to_string(), 600, None);
    let client = client();
    let started = Instant::now();
    let response =
        client.get(gateway.url("/")).header(header::COOKIE, format!("FCTF_Auth_Token={token}")).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 502);
    assert_eq!(response.text().await.unwrap(), "Cannot connect to challenge\n");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "the dial gives up after upstream_connect_timeout_secs, well before the response timeout: {waited:?}"
    );
    assert_eq!(client.get(gateway.url("/healthz")).send().await.unwrap().status(), 200);
}

pub(crate) async fn flood_from_one_client_is_rate_limited_but_a_burst_passes(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |cfg| {
        cfg.http_ip_rate = 20.0;
        cfg.http_ip_burst = 40;
    })
    .await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 6).await;
    let client = client();
    let cookie = format!("FCTF_Auth_Token={token}");
    let mut burst_ok = 0;
    for _ in 0..30 {
        let response = client.get(gateway.url("/")).header(header::COOKIE, &cookie).send().await.unwrap();
        burst_ok += usize::from(response.status() == 200);
    }
    assert!(burst_ok >= 28, "a short burst mostly passes: {burst_ok}/30");
    let mut limited = 0;
    let mut flood = Vec::new();
    for _ in 0..200 {
        let request = client.get(gateway.url("/")).header(header::COOKIE, &cookie).send();
        flood.push(tokio::spawn(request));
    }
    for request in flood {
        limited += usize::from(request.await.unwrap().unwrap().status() == 429);
    }
    assert!(limited >= 150, "a flood is limited: {limited}/200 refused");
    health_is_never_limited(&gateway).await;
}

async fn health_is_never_limited(gateway: &TestGateway) {
    for _ in 0..20 {
        assert_eq!(client().get(gateway.url("/healthz")).send().await.unwrap().status(), 200);
    }
}

pub(crate) async fn trusted_proxy_headers_choose_the_rate_limit_bucket(cache: Cache) {
    let gateway = TestGateway::start(cache, |cfg| {
        cfg.http_ip_rate = 0.5;
        cfg.http_ip_burst = 3;
        cfg.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let client = client();
    let status = |ip: &'static str| {
        let request = client.get(gateway.url("/")).header("x-forwarded-for", ip);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(status("198.51.100.1").await);
    }
    assert_eq!(first, vec![401, 401, 401, 429, 429], "the forwarded client has its own bucket");
    assert_eq!(status("198.51.100.2").await, 401, "another forwarded client is not limited");
}

pub(crate) async fn websocket_upgrade_passes_through(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 7).await;
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_until(&mut stream, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    for message in ["frame-one", "frame-two"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut echoed = vec![0_u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed)).await.unwrap().unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
}

pub(crate) async fn revoked_token_is_refused_within_two_seconds(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 8).await;
    let client = client();
    let cookie = format!("FCTF_Auth_Token={token}");
    assert_eq!(client.get(gateway.url("/")).header(header::COOKIE, &cookie).send().await.unwrap().status(), 200);
    gateway.cache.clear_instance_live(InstanceId(8)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = client.get(gateway.url("/")).header(header::COOKIE, &cookie).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap(), "invalid token: instance is not running\n");
    let redirect = client.get(gateway.url(&format!("/?fctftoken={token}"))).send().await.unwrap();
    assert_eq!(redirect.status(), 401);
    let never_live = gateway.mint(&upstream.to_string(), 600, Some(InstanceId(9999)));
    let response =
        client.get(gateway.url("/")).header(header::COOKIE, format!("FCTF_Auth_Token={never_live}")).send().await;
    assert_eq!(response.unwrap().status(), 401);
}

pub(crate) async fn token_without_instance_id_skips_the_liveness_check(cache: Cache) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let third_party = gateway.mint(&upstream.to_string(), 600, None);
    let response = client()
        .get(gateway.url("/"))
        .header(header::COOKIE, format!("FCTF_Auth_Token={third_party}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
