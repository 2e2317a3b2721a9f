//! HTTP/1.1 details of the proxy path that clients and challenge servers rely on: pipelining,
//! HTTP/1.0, chunked bodies, close-delimited responses, `Expect: 100-continue`, `HEAD`,
//! absolute-form targets, refused heads, and upstream keep-alive connections the upstream
//! closed while idle. Protocol behaviour does not depend on the cache: memory cache only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::harness::*;

async fn gateway_and_token() -> (TestGateway, String) {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(memory_cache().await.unwrap(), |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 7).await;
    (gateway, token)
}

/// Reads one response with a `Content-Length` body from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .map_or(0, |value| value.parse().unwrap());
            if seen.len() >= end + 4 + length {
                return text;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await.unwrap().unwrap();
        assert!(read > 0, "connection closed early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..read]);
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (gateway, token) = gateway_and_token().await;
    let cookie = format!("Cookie: FCTF_Auth_Token={token}\r\n");
    let requests = format!(
        "GET /first HTTP/1.1\r\nHost: x\r\n{cookie}\r\nGET /second HTTP/1.1\r\nHost: x\r\n{cookie}Connection: close\r\n\r\n"
    );
    let answer = raw_http(gateway.http, requests.as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    let first = answer.find("uri=/first").expect("first answered");
    let second = answer.find("uri=/second").expect("second answered");
    assert!(first < second);
}

#[tokio::test]
async fn http_1_0_clients_get_close_or_keep_alive() {
    let (gateway, token) = gateway_and_token().await;
    let closing =
        raw_http(gateway.http, format!("GET /a HTTP/1.0\r\nCookie: FCTF_Auth_Token={token}\r\n\r\n").as_bytes()).await;
    assert_eq!(status_of(&closing), 200, "{closing}");
    assert!(closing.contains("uri=/a"), "read to close: the gateway closed after the answer");

    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let kept = format!("GET /b HTTP/1.0\r\nConnection: keep-alive\r\nCookie: FCTF_Auth_Token={token}\r\n\r\n");
    stream.write_all(kept.as_bytes()).await.unwrap();
    let first = read_response(&mut stream).await;
    assert!(first.to_ascii_lowercase().contains("connection: keep-alive"), "{first}");
    stream.write_all(kept.replace("/b", "/c").as_bytes()).await.unwrap();
    let second = read_response(&mut stream).await;
    assert!(second.contains("uri=/c"), "{second}");
}

#[tokio::test]
async fn chunked_request_bodies_reach_the_upstream_whole() {
    let (gateway, token) = gateway_and_token().await;
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n5;name=value\r\nhello\r\n1A\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "z".repeat(26)
    );
    let answer = raw_http(gateway.http, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains("body=31"), "{answer}");
    let malformed = format!(
        "POST /echo HTTP/1.1\r\nCookie: FCTF_Auth_Token={token}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n"
    );
    assert_eq!(status_of(&raw_http(gateway.http, malformed.as_bytes()).await), 400);
}

#[tokio::test]
async fn ambiguous_framing_and_oversized_heads_are_refused() {
    let (gateway, token) = gateway_and_token().await;
    let both = format!(
        "POST /echo HTTP/1.1\r\nCookie: FCTF_Auth_Token={token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(status_of(&raw_http(gateway.http, both.as_bytes()).await), 400);
    let huge = format!("GET / HTTP/1.1\r\nCookie: FCTF_Auth_Token={token}\r\nX-Big: {}\r\n\r\n", "a".repeat(40 * 1024));
    assert_eq!(status_of(&raw_http(gateway.http, huge.as_bytes()).await), 431);
    assert_eq!(status_of(&raw_http(gateway.http, b"NOT HTTP AT ALL\r\n\r\n").await), 400);
    let health = raw_http(gateway.http, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&health), 200);
}

/// An upstream answering every request with `answer` and then closing (for close-delimited
/// bodies); returns its address.
async fn scripted_upstream(answer: &'static [u8]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut stream).await;
                let _ = stream.write_all(answer).await;
            });
        }
    });
    addr
}

/// Reads a request head (and a `Content-Length` body); `None` when the peer closed.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let mut byte = [0_u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        seen.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&seen).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .map_or(0, |value| value.parse().unwrap_or(0));
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head)
}

#[tokio::test]
async fn close_delimited_responses_are_rechunked_for_http_1_1() {
    let upstream = scripted_upstream(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello until close").await;
    let gateway = TestGateway::start(memory_cache().await.unwrap(), |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 8).await;
    let response = gateway.get_with_cookie("/", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[http::header::TRANSFER_ENCODING], "chunked");
    assert_eq!(response.text().await.unwrap(), "hello until close");
    let old =
        raw_http(gateway.http, format!("GET / HTTP/1.0\r\nCookie: FCTF_Auth_Token={token}\r\n\r\n").as_bytes()).await;
    assert!(old.ends_with("\r\n\r\nhello until close"), "{old}");
    assert!(!old.to_ascii_lowercase().contains("transfer-encoding"), "{old}");
}

#[tokio::test]
async fn expect_continue_gets_100_before_the_body() {
    let (gateway, token) = gateway_and_token().await;
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let head = format!(
        "PUT /echo HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue\r\n"), "{interim}");
    stream.write_all(b"hello").await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains("body=5"), "{answer}");
}

#[tokio::test]
async fn head_requests_and_absolute_targets() {
    let (gateway, token) = gateway_and_token().await;
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let cookie = format!("Cookie: FCTF_Auth_Token={token}\r\n");
    stream.write_all(format!("HEAD /h HTTP/1.1\r\nHost: x\r\n{cookie}\r\n").as_bytes()).await.unwrap();
    let head_answer = read_until(&mut stream, "\r\n\r\n").await;
    assert_eq!(status_of(&head_answer), 200, "{head_answer}");
    assert!(head_answer.ends_with("\r\n\r\n"), "no body after a HEAD answer: {head_answer}");
    let absolute =
        format!("GET http://somewhere.example/abs?x=1 HTTP/1.1\r\nHost: x\r\n{cookie}Connection: close\r\n\r\n");
    stream.write_all(absolute.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(status_of(&answer), 200, "the connection served a request after HEAD: {answer}");
    assert!(answer.contains("uri=/abs?x=1"), "{answer}");
}

#[tokio::test]
async fn upstream_connections_closed_while_idle_are_replaced() {
    // A server with a very short keep-alive timeout: it answers one request per connection
    // (without saying it will close) and closes 50 ms later.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_some() {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
    });
    let gateway = TestGateway::start(memory_cache().await.unwrap(), |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 9).await;
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let get = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\n\r\n");
    let post = format!("POST / HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nContent-Length: 3\r\n\r\nabc");
    stream.write_all(get.as_bytes()).await.unwrap();
    assert_eq!(status_of(&read_response(&mut stream).await), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A request without a body on the connection the upstream closed: retried on a new one.
    stream.write_all(get.as_bytes()).await.unwrap();
    assert_eq!(status_of(&read_response(&mut stream).await), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A request with a body cannot be retried: the kept connection is checked first.
    stream.write_all(post.as_bytes()).await.unwrap();
    assert_eq!(status_of(&read_response(&mut stream).await), 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn mutated_requests_get_an_answer_or_a_close_and_the_gateway_stays_up() {
    use rand::{Rng as _, SeedableRng as _};
    let (gateway, token) = gateway_and_token().await;
    let seed = format!(
        "POST /echo?x=1 HTTP/1.1\r\nHost: x\r\nCookie: a=1; FCTF_Auth_Token={token}\r\nContent-Length: 4\r\n\
         Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xfc7f);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let mut bytes = seed.clone().into_bytes();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = rng.random(),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, *b"\r\n: ;\x00".get(rng.random_range(0..6)).unwrap()),
            }
        }
        let mut stream = TcpStream::connect(gateway.http).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        stream.shutdown().await.unwrap();
        let answer = read_to_close(&mut stream).await;
        if !answer.is_empty() {
            assert!(answer.starts_with("HTTP/1.1 "), "{answer:?}");
            let status = status_of(&answer);
            assert!(matches!(status, 200 | 302 | 400 | 401 | 413 | 431 | 502), "{status}: {answer:?}");
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    assert!(statuses.contains_key(&200) && statuses.contains_key(&400), "{statuses:?}");
    let health = raw_http(gateway.http, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&health), 200);
}

#[tokio::test]
async fn a_body_that_stops_arriving_ends_the_request() {
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(memory_cache().await.unwrap(), |cfg| cfg.upstream_response_timeout_secs = 1).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 10).await;
    let mut stream = TcpStream::connect(gateway.http).await.unwrap();
    let head =
        format!("POST /echo HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nContent-Length: 10\r\n\r\nabc");
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(status_of(&answer), 408, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "closed after the idle timeout, not the test's");
}
