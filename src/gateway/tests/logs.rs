//! Everything the gateway logs, at every level, while tokens, bodies and TCP payloads pass:
//! none of them (nor the MAC the gateway expected) may appear; access lines must.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::harness::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_tokens_macs_bodies_or_payloads() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let upstream = http_upstream().await;
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(memory_cache().await.unwrap(), |_| {}).await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 50).await;
    let client = client();
    let redirect = client.get(gateway.url(&format!("/p?fctftoken={token}"))).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let path_form = client.get(gateway.url(&format!("/a/{token}"))).send().await.unwrap();
    assert_eq!(path_form.status(), 302);
    let proxied = client
        .post(gateway.url("/login"))
        .header(header::COOKIE, format!("FCTF_Auth_Token={token}"))
        .body("password=BODY-SECRET-123")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    // A forged payload under the genuine signature: the expected MAC must not be logged.
    let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800,"route":"127.0.0.1:22"}"#);
    let signature = token.split_once('.').unwrap().1;
    let forged = format!("{forged_payload}.{signature}");
    let expected_mac = {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &gateway_secret(&gateway));
        URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, forged_payload.as_bytes()).as_ref())
    };
    let refused = client.get(gateway.url("/")).header(header::COOKIE, format!("FCTF_Auth_Token={forged}")).send();
    assert_eq!(refused.await.unwrap().status(), 401);

    let tcp_token = gateway.mint_live(&echo.to_string(), 600, 51).await;
    let mut stream = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut stream, "Please enter your token").await;
    stream.write_all(format!("{tcp_token}\nTCP-PAYLOAD-SECRET").as_bytes()).await.unwrap();
    read_until(&mut stream, "TCP-PAYLOAD-SECRET").await;
    drop(stream);
    let mut failed = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut failed, "Please enter your token").await;
    send_line(&mut failed, &forged).await;
    assert_eq!(read_to_close(&mut failed).await, "Auth failed!\n");
    gateway.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for secret in [
        token.as_str(),
        signature,
        tcp_token.as_str(),
        tcp_token.split_once('.').unwrap().1,
        expected_mac.as_str(),
        "BODY-SECRET",
        "TCP-PAYLOAD-SECRET",
    ] {
        assert!(!logs.contains(secret), "logs leak {secret:?}:\n{logs}");
    }
    assert!(logs.contains("fctf::gateway::access"), "{logs}");
    assert!(logs.contains("status=302") && logs.contains("status=200") && logs.contains("status=401"), "{logs}");
    assert!(logs.contains("event=\"session_end\"") || logs.contains("event=session_end"), "{logs}");
    assert!(logs.contains("/a/[token]"), "{logs}");
}

fn gateway_secret(gateway: &TestGateway) -> Vec<u8> {
    gateway.secret().to_vec()
}
