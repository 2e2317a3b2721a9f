//! Cloudflare Turnstile verification for login and registration.
//!
//! Captcha is on iff the event configuration holds `cloudflare_turnstile_secret_key`. The
//! verifier is a small trait so that tests (and other providers) can plug in their own;
//! [`HttpVerifier`] is the real one: a form POST of `secret`, `response` and `remoteip` to
//! `api.captcha_verify_url`, valid only on HTTP 2xx with JSON `success == true`, 8 s timeout,
//! any error = invalid (fails closed).
//!
//! Transport: one HTTP/1.1 request per verification (hyper's connection-level client,
//! `Connection: close`), over TLS for `https://` URLs (Cloudflare's
//! `https://challenges.cloudflare.com/turnstile/v0/siteverify`) and in the clear for `http://`
//! URLs (a local test double or a forwarder). TLS is rustls with the `ring` provider, TLS 1.2
//! and 1.3, the server name checked against the URL's host. The trusted roots are the
//! operating system's (`rustls-native-certs`, already in the tree through kube's client): the
//! runtime image installs `ca-certificates`; `SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere.
//! They are read once, when the verifier is built (startup); with no usable root every
//! `https://` verification fails closed and a warning is logged then.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long a verification may take.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(8);
/// Largest verifier response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// Checks a captcha token.
#[async_trait]
pub trait CaptchaVerifier: Send + Sync + std::fmt::Debug {
    /// True when `token` is a valid response for `secret` (`remote_ip` when known).
    async fn verify(&self, secret: &str, token: &str, remote_ip: Option<IpAddr>) -> bool;
}

/// The siteverify client over HTTPS (or plain HTTP; see the module docs).
#[derive(Clone)]
pub struct HttpVerifier {
    url: String,
    /// The TLS client for `https://` URLs (`None`: no usable TLS configuration).
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for HttpVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("HttpVerifier").field("url", &self.url).field("tls", &self.tls.is_some()).finish()
    }
}

impl HttpVerifier {
    /// A verifier posting to `url`, trusting the operating system's root certificates (read
    /// now, and only when `url` is `https://`).
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let tls = if is_https(&url) { tls_connector(native_roots()) } else { None };
        Self { url, tls }
    }

    /// A verifier posting to `url`, trusting exactly `roots` for `https://` (a private CA).
    pub fn with_roots(url: impl Into<String>, roots: RootCertStore) -> Self {
        Self { url: url.into(), tls: tls_connector(roots) }
    }

    /// Posts the form and returns the status and (bounded) body.
    async fn post_form(&self, url: &url::Url, body: String) -> Result<(u16, Bytes), String> {
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("the URL has no host".into()),
        };
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let authority = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err("the URL has no host".into()),
        };
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let request = http::Request::post(target)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::USER_AGENT, "fctf")
            .header(http::header::CONNECTION, "close")
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| error.to_string())?;
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|error| format!("connect: {error}"))?;
        match url.scheme() {
            "http" => exchange(TokioIo::new(tcp), request).await,
            "https" => {
                let connector = self.tls.as_ref().ok_or("no TLS configuration (no trusted root certificates)")?;
                let server_name = ServerName::try_from(host).map_err(|error| format!("server name: {error}"))?;
                let tls = connector.connect(server_name, tcp).await.map_err(|error| format!("TLS: {error}"))?;
                exchange(TokioIo::new(tls), request).await
            }
            other => Err(format!("unsupported scheme {other}")),
        }
    }
}

fn is_https(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| url.scheme() == "https")
}

/// The operating system's trusted roots (unreadable or unparsable ones are skipped).
fn native_roots() -> RootCertStore {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::warn!(%error, "could not read some trusted root certificates");
    }
    let mut roots = RootCertStore::empty();
    let (_added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "skipped unparsable root certificates");
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted root certificates found (install ca-certificates or set SSL_CERT_FILE); \
             captcha verification over https fails closed"
        );
    }
    roots
}

/// A rustls client (ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN) trusting `roots`.
fn tls_connector(roots: RootCertStore) -> Option<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(builder) => builder,
        Err(error) => {
            tracing::error!(%error, "cannot configure TLS for captcha verification");
            return None;
        }
    };
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(TlsConnector::from(Arc::new(config)))
}

/// Sends one request on a fresh connection and reads the response (at most [`MAX_RESPONSE`]).
async fn exchange<I>(io: I, request: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|error| format!("handshake: {error}"))?;
    let response = async move {
        let response = sender.send_request(request).await.map_err(|error| format!("request: {error}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|error| format!("response body: {error}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    // The connection is driven alongside the exchange; it ends once the sender is dropped.
    let (result, _connection) = futures::future::join(response, connection).await;
    result
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

#[async_trait]
impl CaptchaVerifier for HttpVerifier {
    async fn verify(&self, secret: &str, token: &str, remote_ip: Option<IpAddr>) -> bool {
        let token = token.trim();
        if token.is_empty() {
            return false;
        }
        let Ok(url) = url::Url::parse(&self.url) else {
            tracing::warn!("api.captcha_verify_url is not a valid URL; captcha fails closed");
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            tracing::warn!("api.captcha_verify_url must be an https:// or http:// URL; captcha fails closed");
            return false;
        }
        let ip = remote_ip.map(|ip| ip.to_string());
        let mut pairs = vec![("secret", secret), ("response", token)];
        if let Some(ip) = ip.as_deref() {
            pairs.push(("remoteip", ip));
        }
        let body = form_encode(&pairs);
        let (status, body) = match tokio::time::timeout(VERIFY_TIMEOUT, self.post_form(&url, body)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(problem)) => {
                tracing::warn!(%problem, "captcha verification failed");
                return false;
            }
            Err(_elapsed) => {
                tracing::warn!("captcha verification timed out");
                return false;
            }
        };
        if !(200..300).contains(&status) {
            tracing::warn!(status, "captcha verifier answered with an error status");
            return false;
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value.get("success").and_then(serde_json::Value::as_bool))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers `requests` connections like siteverify: `response=good` with `secret=s3cret` is
    /// valid. `wrap` turns the accepted socket into the stream served (plain or TLS).
    async fn serve_siteverify<S, F, Fut>(listener: tokio::net::TcpListener, requests: usize, wrap: F)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
        F: Fn(TcpStream) -> Fut,
        Fut: std::future::Future<Output = Option<S>>,
    {
        for _ in 0..requests {
            let (socket, _) = listener.accept().await.unwrap();
            let Some(mut stream) = wrap(socket).await else { continue };
            let mut request = Vec::new();
            let mut buffer = vec![0u8; 4096];
            // Read the head and the body (Content-Length) of the request.
            loop {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            let request = String::from_utf8_lossy(&request).to_string();
            assert!(request.starts_with("POST /siteverify HTTP/1.1\r\n"), "{request}");
            let success = request.contains("response=good") && request.contains("secret=s3cret");
            let body = format!("{{\"success\":{success}}}");
            // Chunked, as real servers often answer HTTP/1.1 requests.
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
            stream.shutdown().await.ok();
        }
    }

    #[tokio::test]
    async fn verifies_against_a_local_http_endpoint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_siteverify(listener, 2, |socket| async move { Some(socket) }));
        let verifier = HttpVerifier::new(format!("http://{addr}/siteverify"));
        assert!(verifier.verify("s3cret", "good", None).await);
        assert!(!verifier.verify("s3cret", "bad", Some("10.1.2.3".parse().unwrap())).await);
        assert!(!verifier.verify("s3cret", "  ", None).await, "an empty token fails without a call");
        assert!(!HttpVerifier::new("ftp://127.0.0.1/").verify("s", "t", None).await);
        assert!(!HttpVerifier::new("not a url").verify("s", "t", None).await);
    }

    /// A test CA and a server certificate it signed for `localhost`.
    struct TestPki {
        ca: rustls_pki_types::CertificateDer<'static>,
        server: tokio_rustls::TlsAcceptor,
    }

    fn test_pki() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "fctf test CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls_pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der().clone(), ca.der().clone()], key)
            .unwrap();
        TestPki { ca: ca.der().clone(), server: tokio_rustls::TlsAcceptor::from(Arc::new(config)) }
    }

    #[tokio::test]
    async fn verifies_over_https_with_a_trusted_ca() {
        let pki = test_pki();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = pki.server.clone();
        // Two good handshakes (good and bad token), then three refused ones.
        let server = tokio::spawn(serve_siteverify(listener, 5, move |socket| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(socket).await.ok() }
        }));
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let url = format!("https://localhost:{port}/siteverify");
        let trusted = HttpVerifier::with_roots(&url, roots.clone());
        assert!(trusted.verify("s3cret", "good", None).await, "valid token over TLS");
        assert!(!trusted.verify("s3cret", "bad", None).await, "invalid token over TLS");

        // The same server is refused by a client that does not trust its CA ...
        assert!(!HttpVerifier::with_roots(&url, RootCertStore::empty()).verify("s3cret", "good", None).await);
        assert!(!HttpVerifier::new(&url).verify("s3cret", "good", None).await, "not in the system roots");
        // ... and when the name does not match the certificate (issued for localhost only).
        let by_address = HttpVerifier::with_roots(format!("https://127.0.0.1:{port}/siteverify"), roots);
        assert!(!by_address.verify("s3cret", "good", None).await);
        tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    }

    #[test]
    fn the_system_roots_are_loaded_for_https_only() {
        assert!(HttpVerifier::new("http://127.0.0.1:1/siteverify").tls.is_none());
        let https = HttpVerifier::new("https://challenges.cloudflare.com/turnstile/v0/siteverify");
        assert!(https.tls.is_some());
        if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
            assert!(!native_roots().is_empty(), "the Debian bundle is found");
        }
    }
}
