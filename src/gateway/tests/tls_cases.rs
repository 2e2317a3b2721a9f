//! TLS auto-detection on both ports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::harness::*;
use crate::cache::Cache;

pub(crate) struct TestCert {
    _dir: tempfile::TempDir,
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
    der: rustls::pki_types::CertificateDer<'static>,
}

pub(crate) fn test_cert() -> TestCert {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
    TestCert {
        cert_file: cert_file.to_string_lossy().into_owned(),
        key_file: key_file.to_string_lossy().into_owned(),
        der: cert.der().clone(),
        _dir: dir,
    }
}

pub(crate) fn connector(cert: &TestCert) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

pub(crate) async fn tls_and_plaintext_share_both_ports(cache: Cache) {
    let cert = test_cert();
    let upstream = http_upstream().await;
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |cfg| {
        cfg.tls_cert_file = cert.cert_file.clone();
        cfg.tls_key_file = cert.key_file.clone();
    })
    .await;
    let connector = connector(&cert);
    let server_name = ServerName::try_from("localhost").unwrap();

    // HTTP over TLS: the redirect cookie is Secure and the proxy works.
    let http_token = gateway.mint_live(&upstream.to_string(), 600, 30).await;
    let tcp = TcpStream::connect(gateway.http).await.unwrap();
    let mut tls = connector.connect(server_name.clone(), tcp).await.unwrap();
    let request = format!("GET /x?fctftoken={http_token} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut tls).await;
    assert_eq!(status_of(&answer), 302, "{answer}");
    assert!(answer.contains("; Secure"), "{answer}");
    let tcp = TcpStream::connect(gateway.http).await.unwrap();
    let mut tls = connector.connect(server_name.clone(), tcp).await.unwrap();
    let request = format!(
        "GET /x HTTP/1.1\r\nHost: localhost\r\nCookie: FCTF_Auth_Token={http_token}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut tls).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    // Plain HTTP on the same port.
    let plain = raw_http(gateway.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&plain), 200);

    // TCP over TLS.
    let tcp_token = gateway.mint_live(&echo.to_string(), 600, 31).await;
    let tcp = TcpStream::connect(gateway.tcp).await.unwrap();
    let mut tls = connector.connect(server_name, tcp).await.unwrap();
    read_until(&mut tls, "Please enter your token").await;
    send_line(&mut tls, &tcp_token).await;
    read_until(&mut tls, "Access Granted!").await;
    tls.write_all(b"over-tls").await.unwrap();
    tls.flush().await.unwrap();
    read_until(&mut tls, "over-tls").await;

    // Plaintext TCP still gets its prompt without sending anything (after the detection wait).
    let started = Instant::now();
    let mut plain = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut plain, "Please enter your token").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    send_line(&mut plain, &tcp_token).await;
    read_until(&mut plain, "Access Granted!").await;
    plain.write_all(b"plain").await.unwrap();
    let mut echoed = [0_u8; 5];
    plain.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"plain");
}

#[test]
fn tls_needs_both_files() {
    let mut cfg = default_config();
    cfg.tls_cert_file = "/tmp/cert.pem".into();
    assert!(cfg.problems().iter().any(|problem| problem.contains("tls_cert_file and gateway.tls_key_file")));
    cfg.tls_key_file = "/tmp/key.pem".into();
    assert!(cfg.problems().is_empty());
    cfg.tls_cert_file.clear();
    assert!(!cfg.problems().is_empty());
}

#[test]
fn default_section_is_valid_and_bad_values_are_reported() {
    let mut cfg = default_config();
    assert_eq!(cfg.problems(), Vec::<String>::new());
    assert_eq!(cfg.http_max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(cfg.tcp_max_conns_per_token, 15);
    cfg.trusted_proxies = vec!["10.0.0.0/8".into(), "not-an-ip".into()];
    cfg.http_ip_rate = -1.0;
    cfg.lease_ttl_secs = 1;
    assert_eq!(cfg.problems().len(), 3, "{:?}", cfg.problems());
}

#[tokio::test]
async fn unreadable_tls_files_fail_at_bind() {
    let cache = memory_cache().await.unwrap();
    let mut cfg = default_config();
    cfg.tls_cert_file = "/nonexistent/tls.crt".into();
    cfg.tls_key_file = "/nonexistent/tls.key".into();
    let settings =
        crate::config::load_from(None, &std::collections::HashMap::new(), &crate::config::Overrides::default())
            .unwrap();
    let deps = crate::app::Deps {
        settings: Arc::new(settings),
        roles: crate::app::RoleSet::parse(&["gateway".to_owned()]).unwrap(),
        store: None,
        cache,
        producer: None,
        consumer: None,
        runtime: None,
        secrets: crate::config::Secrets::random(),
        metrics: crate::metrics::Metrics::new(),
        control: Default::default(),
    };
    let error = crate::gateway::Gateway::bind(&cfg, &deps).await.err().expect("bind fails");
    assert!(format!("{error:#}").contains("tls_cert_file"), "{error:#}");
}
