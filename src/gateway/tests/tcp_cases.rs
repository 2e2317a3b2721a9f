//! TCP port behaviours.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::*;
use crate::cache::Cache;
use crate::domain::InstanceId;

const PROMPT_END: &str = "Please enter your token (Timeout 10s): ";
const GRANTED: &str = "Access Granted! Connecting to challenge...\n";

/// Connects, waits for the prompt, sends `line`.
async fn authenticate(gateway: &TestGateway, line: &str) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut stream, PROMPT_END).await;
    send_line(&mut stream, line).await;
    stream
}

pub(crate) async fn prompt_is_sent_at_once(cache: Cache) {
    let gateway = TestGateway::start(cache, |_| {}).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gateway.tcp).await.unwrap();
    let prompt = read_until(&mut stream, PROMPT_END).await;
    assert_eq!(prompt, format!("\n--- CTF AUTHENTICATION ---\n{PROMPT_END}"));
    assert!(started.elapsed() < Duration::from_secs(2), "the prompt does not wait for client bytes");
}

pub(crate) async fn empty_and_invalid_tokens_get_auth_failed(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |cfg| cfg.tcp_auth_timeout_secs = 10).await;
    let expired = gateway.mint(&echo.to_string(), -1, None);
    for line in ["", "   ", "not-a-token", "a.b", expired.as_str(), &"x".repeat(2000)] {
        let mut stream = authenticate(&gateway, line).await;
        assert_eq!(read_to_close(&mut stream).await, "Auth failed!\n", "line {:?}", &line[..line.len().min(20)]);
    }
    assert!(gateway.metrics.render().contains("fctf_gateway_auth_failures_total{proto=\"tcp\"} 6"));
}

pub(crate) async fn valid_token_is_granted_and_bytes_after_the_line_are_forwarded(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&echo.to_string(), 600, 20).await;
    let mut stream = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut stream, PROMPT_END).await;
    stream.write_all(format!("{token}\nearly-bytes").as_bytes()).await.unwrap();
    let answer = read_until(&mut stream, "early-bytes").await;
    assert_eq!(answer, format!("{GRANTED}early-bytes"));
    let payload: Vec<u8> = (0..=255_u8).cycle().take(256 * 1024).collect();
    let (mut reader, mut writer) = stream.into_split();
    let expected = payload.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&payload).await.unwrap();
        writer
    });
    let mut echoed = vec![0_u8; expected.len()];
    tokio::time::timeout(Duration::from_secs(10), reader.read_exact(&mut echoed)).await.unwrap().unwrap();
    assert!(echoed == expected, "binary round trip");
    let metrics = gateway.metrics.render();
    assert!(metrics.contains("fctf_gateway_tcp_sessions_open 1"), "{metrics}");
    drop(writing.await.unwrap());
}

pub(crate) async fn per_token_cap_grants_15_of_30(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |cfg| cfg.tcp_max_conns_per_token = 15).await;
    let token = gateway.mint_live(&echo.to_string(), 600, 21).await;
    let mut attempts = Vec::new();
    for _ in 0..30 {
        let tcp = gateway.tcp;
        let token = token.clone();
        attempts.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(tcp).await.unwrap();
            read_until(&mut stream, PROMPT_END).await;
            send_line(&mut stream, &token).await;
            let mut first = vec![0_u8; 0];
            let mut byte = [0_u8; 1];
            while !first.ends_with(b"\n") {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await {
                    Ok(Ok(1)) => first.push(byte[0]),
                    _ => break,
                }
            }
            (String::from_utf8(first).unwrap(), stream)
        }));
    }
    let mut granted = 0;
    let mut refused = 0;
    let mut open = Vec::new();
    for attempt in attempts {
        let (line, stream) = attempt.await.unwrap();
        match line.as_str() {
            GRANTED => granted += 1,
            "Too many connections for token\n" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
        open.push(stream);
    }
    assert_eq!((granted, refused), (15, 15));
    let scope_count = gateway.metrics.render();
    assert!(scope_count.contains("fctf_gateway_tcp_refused_total 15"), "{scope_count}");
}

pub(crate) async fn leases_are_released_when_sessions_end(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |cfg| cfg.tcp_max_conns_per_token = 2).await;
    let token = gateway.mint_live(&echo.to_string(), 600, 22).await;
    for round in 0..3 {
        let mut first = authenticate(&gateway, &token).await;
        let mut second = authenticate(&gateway, &token).await;
        read_until(&mut first, GRANTED).await;
        read_until(&mut second, GRANTED).await;
        assert!(gateway.cache.lease_count("gw:tcp:global").await.unwrap() >= 2, "round {round}");
        drop(first);
        drop(second);
        let deadline = Instant::now() + Duration::from_secs(3);
        while gateway.cache.lease_count("gw:tcp:global").await.unwrap() > 0 {
            assert!(Instant::now() < deadline, "leases released after round {round}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) async fn session_is_cut_at_exp(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&echo.to_string(), 2, 23).await;
    let mut stream = authenticate(&gateway, &token).await;
    read_until(&mut stream, GRANTED).await;
    let started = Instant::now();
    stream.write_all(b"still-here").await.unwrap();
    read_until(&mut stream, "still-here").await;
    let rest = read_to_close(&mut stream).await;
    assert!(rest.is_empty(), "{rest}");
    let lived = started.elapsed();
    assert!(lived <= Duration::from_secs(3), "cut at exp, lived {lived:?}");
}

/// The relay is cut by the watchdog (not ended by either side): the bytes relayed up to the
/// cut are still counted.
pub(crate) async fn bytes_relayed_before_a_cut_at_exp_are_counted(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&echo.to_string(), 3, 27).await;
    let mut stream = authenticate(&gateway, &token).await;
    read_until(&mut stream, GRANTED).await;
    let payload: Vec<u8> = (0..=255_u8).cycle().take(1024 * 1024).collect();
    let (mut reader, mut writer) = stream.into_split();
    let mut echoed = vec![0_u8; payload.len()];
    let (written, read) = tokio::join!(writer.write_all(&payload), reader.read_exact(&mut echoed));
    written.unwrap();
    read.unwrap();
    assert!(echoed == payload, "echoed whole");
    assert_eq!(read_to_close(&mut reader).await, "", "cut at exp");
    let metrics = gateway.metrics.render();
    for direction in ["in", "out"] {
        let line = format!("fctf_gateway_bytes_total{{proto=\"tcp\",direction=\"{direction}\"}} {}", payload.len());
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    drop(writer);
}

pub(crate) async fn revoked_token_is_refused_and_open_session_cut(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint_live(&echo.to_string(), 600, 24).await;
    let mut open = authenticate(&gateway, &token).await;
    read_until(&mut open, GRANTED).await;
    gateway.cache.clear_instance_live(InstanceId(24)).await.unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(4), read_to_close(&mut open)).await;
    assert!(cut.is_ok(), "an open session of a stopped instance is cut");
    let mut refused = authenticate(&gateway, &token).await;
    assert_eq!(read_to_close(&mut refused).await, "Auth failed!\n");
}

pub(crate) async fn dial_failure_is_reported(cache: Cache) {
    let dead = dead_addr().await;
    let gateway = TestGateway::start(cache, |_| {}).await;
    let token = gateway.mint(&dead.to_string(), 600, None);
    let mut stream = authenticate(&gateway, &token).await;
    let answer = read_to_close(&mut stream).await;
    assert_eq!(answer, format!("{GRANTED}[!] Could not connect to challenge server.\n"));
}

pub(crate) async fn dial_timeout_is_reported_and_closes(cache: Cache) {
    let unresponsive = unresponsive_addr().await;
    let gateway = TestGateway::start(cache, |cfg| cfg.tcp_dial_timeout_secs = 1).await;
    let token = gateway.mint(&unresponsive.addr.to_string(), 600, None);
    let mut stream = authenticate(&gateway, &token).await;
    read_until(&mut stream, GRANTED).await;
    let started = Instant::now();
    let answer = read_to_close(&mut stream).await;
    let waited = started.elapsed();
    assert_eq!(answer, "[!] Could not connect to challenge server.\n");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "the dial gives up after tcp_dial_timeout_secs, not before and not much later: {waited:?}"
    );
}

pub(crate) async fn proxy_protocol_gives_the_client_address(cache: Cache) {
    let echo = tcp_echo().await;
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |cfg| {
        cfg.proxy_protocol = true;
        cfg.tcp_max_conns_per_ip = 1;
    })
    .await;
    let token = gateway.mint(&echo.to_string(), 600, None);
    // Two clients behind the same balancer: different PROXY sources, separate per-IP caps.
    let mut sessions = Vec::new();
    for source in ["198.51.100.7", "198.51.100.8"] {
        let mut stream = TcpStream::connect(gateway.tcp).await.unwrap();
        stream.write_all(format!("PROXY TCP4 {source} 10.0.0.1 40000 1337\r\n").as_bytes()).await.unwrap();
        read_until(&mut stream, PROMPT_END).await;
        send_line(&mut stream, &token).await;
        read_until(&mut stream, GRANTED).await;
        sessions.push(stream);
    }
    let mut third = TcpStream::connect(gateway.tcp).await.unwrap();
    third.write_all(b"PROXY TCP4 198.51.100.7 10.0.0.1 40001 1337\r\n").await.unwrap();
    assert_eq!(read_to_close(&mut third).await, "", "the per-IP cap applies to the PROXY source");
    let mut no_header = TcpStream::connect(gateway.tcp).await.unwrap();
    no_header.write_all(b"hello there, no header\n").await.unwrap();
    assert_eq!(read_to_close(&mut no_header).await, "");

    let http_token = gateway.mint(&upstream.to_string(), 600, None);
    let request = format!(
        "PROXY TCP4 203.0.113.50 10.0.0.1 5000 8080\r\nGET / HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={http_token}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_http(gateway.http, request.as_bytes()).await;
    assert!(answer.contains("xff=203.0.113.50\n"), "{answer}");
}

pub(crate) async fn shutdown_drains_then_cuts_sessions(cache: Cache) {
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |cfg| cfg.drain_timeout_secs = 1).await;
    let token = gateway.mint(&echo.to_string(), 600, None);
    let mut session = authenticate(&gateway, &token).await;
    read_until(&mut session, GRANTED).await;
    let mut waiting = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut waiting, PROMPT_END).await;
    let tcp = gateway.tcp;
    let took = gateway.stop().await;
    assert!(took < Duration::from_secs(4), "drain deadline respected: {took:?}");
    assert_eq!(read_to_close(&mut waiting).await, "", "authenticating connections close at once");
    assert_eq!(read_to_close(&mut session).await, "", "relaying sessions are cut at the deadline");
    assert!(TcpStream::connect(tcp).await.is_err(), "listener closed");
}

pub(crate) async fn dedicated_io_threads_serve_and_stop(cache: Cache) {
    let echo = tcp_echo().await;
    let upstream = http_upstream().await;
    let gateway = TestGateway::start(cache, |cfg| {
        cfg.io_threads = 2;
        cfg.drain_timeout_secs = 1;
    })
    .await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 25).await;
    for _ in 0..20 {
        assert_eq!(gateway.get_with_cookie("/", &token).await.status(), 200);
    }
    let tcp_token = gateway.mint_live(&echo.to_string(), 600, 26).await;
    let mut session = authenticate(&gateway, &tcp_token).await;
    read_until(&mut session, GRANTED).await;
    session.write_all(b"ping").await.unwrap();
    read_until(&mut session, "ping").await;
    let (http, tcp) = (gateway.http, gateway.tcp);
    let took = gateway.stop().await;
    assert!(took < Duration::from_secs(5), "drain deadline respected: {took:?}");
    assert_eq!(read_to_close(&mut session).await, "", "relaying sessions are cut at the deadline");
    assert!(TcpStream::connect(http).await.is_err() && TcpStream::connect(tcp).await.is_err(), "listeners closed");
}
