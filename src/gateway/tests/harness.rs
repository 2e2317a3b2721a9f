//! A gateway on 127.0.0.1:0 over a given cache, test upstreams and small raw clients.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{Deps, RoleSet};
use crate::cache::{Cache, CacheBackendKind, CacheConfig};
use crate::config::{Overrides, Secret, Secrets};
use crate::domain::InstanceId;
use crate::domain::gateway_token;
use crate::gateway::{Config, Gateway};
use crate::metrics::Metrics;

/// A fresh in-memory cache.
pub(crate) async fn memory_cache() -> Option<Cache> {
    Some(Cache::memory(&unique_prefix()))
}

/// A Redis cache with a unique prefix, or `None` (test skipped) without FCTF_TEST_REDIS_URL.
pub(crate) async fn redis_cache() -> Option<Cache> {
    let Ok(url) = std::env::var("FCTF_TEST_REDIS_URL") else {
        eprintln!("FCTF_TEST_REDIS_URL is not set; skipping a redis gateway test");
        return None;
    };
    let cfg = CacheConfig { backend: CacheBackendKind::Redis, url: Secret::new(url), prefix: unique_prefix() };
    Some(Cache::from_config(&cfg).await.expect("FCTF_TEST_REDIS_URL is set but redis is unreachable"))
}

fn unique_prefix() -> String {
    format!("fctf-test-gw-{}:", uuid::Uuid::new_v4().simple())
}

/// The default `[gateway]` section, listening on loopback ports chosen by the system.
pub(crate) fn default_config() -> Config {
    let settings = crate::config::load_from(None, &HashMap::new(), &Overrides::default()).expect("default config");
    let mut cfg = settings.gateway;
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.tcp_listen = "127.0.0.1:0".parse().unwrap();
    cfg
}

/// A running gateway.
pub(crate) struct TestGateway {
    pub(crate) http: SocketAddr,
    pub(crate) tcp: SocketAddr,
    pub(crate) cache: Cache,
    pub(crate) metrics: Metrics,
    secret: Vec<u8>,
    token: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestGateway {
    pub(crate) async fn start(cache: Cache, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = default_config();
        tweak(&mut cfg);
        let settings = crate::config::load_from(None, &HashMap::new(), &Overrides::default()).expect("default config");
        let secrets = Secrets::random();
        let metrics = Metrics::new();
        let deps = Deps {
            settings: Arc::new(settings),
            roles: RoleSet::parse(&["gateway".to_owned()]).unwrap(),
            store: None,
            cache: cache.clone(),
            producer: None,
            consumer: None,
            runtime: None,
            secrets: secrets.clone(),
            metrics: metrics.clone(),
            control: Default::default(),
        };
        let gateway = Gateway::bind(&cfg, &deps).await.expect("gateway binds");
        let http = gateway.http_addr().unwrap();
        let tcp = gateway.tcp_addr().unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(gateway.run(token.clone()));
        Self { http, tcp, cache, metrics, secret: secrets.gateway().to_vec(), token, task: Some(task) }
    }

    /// A token for `route`, valid for `valid_for` seconds (negative: already expired).
    pub(crate) fn mint(&self, route: &str, valid_for: i64, instance_id: Option<InstanceId>) -> String {
        gateway_token::mint(&self.secret, chrono::Utc::now().timestamp() + valid_for, route, instance_id)
    }

    /// A token for a live instance (marked live in the cache).
    pub(crate) async fn mint_live(&self, route: &str, valid_for: i64, instance_id: i64) -> String {
        let exp = chrono::Utc::now().timestamp() + valid_for;
        self.cache.mark_instance_live(InstanceId(instance_id), exp).await.unwrap();
        gateway_token::mint(&self.secret, exp, route, Some(InstanceId(instance_id)))
    }

    /// The gateway secret the tokens are signed with.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// `GET path` with the gateway cookie holding `token`.
    pub(crate) async fn get_with_cookie(&self, path: &str, token: &str) -> reqwest::Response {
        client().get(self.url(path)).header(header::COOKIE, format!("FCTF_Auth_Token={token}")).send().await.unwrap()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Cancels the gateway and waits for `run` to return.
    pub(crate) async fn stop(mut self) -> Duration {
        let started = std::time::Instant::now();
        self.token.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("gateway stops").unwrap().unwrap();
        }
        started.elapsed()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// An HTTP client that does not follow redirects.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// An HTTP upstream: `/html`, `/set-gateway-cookie`, `/ws` (upgrade echo), anything else
/// describes the request it got (method, uri, host, cookie, x-forwarded-for, body length).
pub(crate) async fn http_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(upstream_handler);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn upstream_handler(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header_text = |name: header::HeaderName| -> String {
        request.headers().get_all(name).iter().map(|value| value.to_str().unwrap_or("?")).collect::<Vec<_>>().join("|")
    };
    let path = request.uri().path().to_owned();
    if path == "/ws" {
        let on_upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buffer = [0_u8; 1024];
                while let Ok(read) = io.read(&mut buffer).await {
                    if read == 0 || io.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .body(Full::new(Bytes::new()))
            .unwrap();
        return Ok(response);
    }
    let description = format!(
        "method={}\nuri={}\nhost={}\ncookie={}\nxff={}\n",
        request.method(),
        request.uri(),
        header_text(header::HOST),
        header_text(header::COOKIE),
        header_text(header::HeaderName::from_static("x-forwarded-for")),
    );
    let body_len = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes().len(),
        Err(_) => return Ok(Response::new(Full::new(Bytes::from_static(b"body error")))),
    };
    let text = format!("{description}body={body_len}\n");
    let mut builder = Response::builder();
    if path == "/html" {
        builder = builder
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .header(header::ETAG, "\"v1\"")
            .header(header::LAST_MODIFIED, "Wed, 21 Oct 2015 07:28:00 GMT");
    } else if path == "/set-gateway-cookie" {
        builder = builder
            .header(header::SET_COOKIE, "FCTF_Auth_Token=; Max-Age=0; Path=/")
            .header(header::SET_COOKIE, "app=1; Path=/");
    } else {
        builder = builder.header(header::CONTENT_TYPE, "text/plain");
    }
    Ok(builder.body(Full::new(Bytes::from(text))).unwrap())
}

/// A TCP echo upstream.
pub(crate) async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    addr
}

/// An address nothing listens on.
pub(crate) async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// An address that neither accepts nor refuses: a loopback listener (backlog 0) whose accept
/// queue is full and never drained, so the kernel drops new SYNs and a dial hangs until the
/// dialler's own timeout. Dropping it closes the listener and the connections filling it.
pub(crate) struct Unresponsive {
    pub(crate) addr: SocketAddr,
    _listener: TcpListener,
    _filling: Vec<TcpStream>,
}

pub(crate) async fn unresponsive_addr() -> Unresponsive {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => filling.push(stream),
            Ok(Err(error)) => panic!("filling the accept queue failed: {error}"),
            Err(_elapsed) => return Unresponsive { addr, _listener: listener, _filling: filling },
        }
    }
    panic!("the accept queue of a backlog-0 listener never filled");
}

/// Reads until `expected` has arrived (or fails after 5 s).
pub(crate) async fn read_until<S: AsyncRead + Unpin>(stream: &mut S, expected: &str) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&seen).contains(expected) {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {expected:?}; got {:?}", String::from_utf8_lossy(&seen)))
            .unwrap_or(0);
        if read == 0 {
            panic!("closed before {expected:?}; got {:?}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads everything until the peer closes (fails after 10 s).
pub(crate) async fn read_to_close<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut seen)).await.expect("peer closes");
    String::from_utf8_lossy(&seen).into_owned()
}

/// Sends raw bytes on a new connection and returns the whole answer (the request should say
/// `Connection: close`).
pub(crate) async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream).await
}

/// The status code of a raw HTTP answer.
pub(crate) fn status_of(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// Writes a line and flushes.
pub(crate) async fn send_line<S: AsyncWrite + Unpin>(stream: &mut S, line: &str) {
    stream.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
}
