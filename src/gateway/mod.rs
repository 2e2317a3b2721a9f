//! The `gateway` role: authenticated HTTP (:8080) and TCP (:1337) access to instances.
//!
//! Players hold a gateway token (`domain::gateway_token`, signed with `secrets.gateway`) naming
//! their instance's route. HTTP: a token in the URL is exchanged for the `FCTF_Auth_Token`
//! cookie by a redirect ([`auth`]), then every request is verified ([`request`]; verified tokens
//! are remembered in [`verified`]) and reverse-proxied ([`proxy`]) over upstream connections
//! used in the client connection's own task ([`upstream`], [`http`]), WebSocket upgrades
//! included. The gateway speaks HTTP/1.1 itself ([`wire`]: heads parsed in place, headers
//! passed byte for byte), which is what makes it as cheap per request as nginx. TCP: the player gets a prompt at once, sends the token as the first line, and the
//! connection becomes a byte pipe ([`tcp`]). Tokens of stopped instances are refused through the
//! cache's liveness marker; rate limits and connection caps are shared through the cache
//! ([`limits`]; on the in-process memory cache the buckets live in the gateway itself, on Redis
//! each replica leases their tokens in batches). TLS is detected per connection on
//! both ports ([`tls`]); the client address honours trusted proxies ([`client_ip`]) or the
//! PROXY protocol ([`proxy_protocol`]).
//!
//! Lifecycle: `bind` loads TLS and builds the shared state; `run` accepts on both listeners
//! until cancelled, every connection running on a `TaskTracker`. On cancellation the listeners
//! close, HTTP connections finish their current request (graceful shutdown), TCP sessions that
//! are still authenticating close, and relaying sessions get `drain_timeout_secs` before they
//! are cut. By default connections run on the process's shared runtime; with `io_threads = N`
//! they run on N dedicated threads, each a single-threaded event loop with its own registration
//! of both listeners (nginx's worker-per-core model): a connection and its upstream stay on one
//! thread, and no cross-thread wake-ups are paid per request.
//!
//! Nothing here logs a token, a MAC, a request body or relayed bytes; access lines go to the
//! tracing target `fctf::gateway::access`.

mod auth;
mod body;
mod client_ip;
mod config;
mod error;
mod http;
mod limits;
mod metrics;
mod proxy;
mod proxy_protocol;
mod relay;
mod request;
mod route;
mod session;
mod tcp;
mod tls;
mod upstream;
mod verified;
mod wire;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, url_host};
pub use error::Error;

use crate::app::Deps;
use crate::domain::gateway_token::Verifier;
use crate::gateway::verified::{Authorized, VerifiedTokens};

/// State shared by every connection of one gateway.
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) verifier: Verifier,
    pub(crate) verified: VerifiedTokens,
    pub(crate) limits: limits::Limits,
    pub(crate) metrics: Arc<metrics::GatewayMetrics>,
    pub(crate) trusted: client_ip::TrustedProxies,
    pub(crate) tls: Option<tls::TlsAcceptors>,
    pub(crate) pool: upstream::SharedPool,
    pub(crate) routes: route::RouteMapper,
    /// Cancelled when the gateway starts draining.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the drain deadline passes: every connection is cut.
    pub(crate) hard_stop: CancellationToken,
    pub(crate) tracker: TaskTracker,
}

impl Shared {
    /// Verifies a token (or finds it among those verified recently) and, when it names an
    /// instance, checks that the instance is live.
    pub(crate) async fn authorize(&self, token: &str) -> Result<Arc<Authorized>, Error> {
        let now = chrono::Utc::now().timestamp();
        let authorized = match self.verified.get(token, now) {
            Some(authorized) => authorized,
            None => {
                let claims = self.verifier.verify(token, now).map_err(Error::InvalidToken)?;
                let authorized = Arc::new(Authorized::new(&self.routes, token, claims));
                self.verified.insert(authorized.clone(), now);
                authorized
            }
        };
        self.check_live(&authorized).await?;
        Ok(authorized)
    }

    /// Refuses a token whose instance has stopped (tokens naming no instance pass). A live
    /// answer is memoised in `authorized` for as long as the liveness cache would reuse it.
    pub(crate) async fn check_live(&self, authorized: &Authorized) -> Result<(), Error> {
        let Some(instance_id) = authorized.claims.instance_id else { return Ok(()) };
        if authorized.known_live_at(Instant::now()) {
            return Ok(());
        }
        match self.limits.live_until(instance_id).await {
            Some(until) => {
                authorized.remember_live_until(until);
                Ok(())
            }
            None => Err(Error::InstanceStopped),
        }
    }

    /// The client address of a new connection: the PROXY header's source when the protocol is
    /// on, else the socket peer. `None` when the connection must be dropped.
    pub(crate) async fn resolve_peer(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        wait: Duration,
    ) -> Option<SocketAddr> {
        if !self.cfg.proxy_protocol {
            return Some(peer);
        }
        if !self.trusted.is_empty() && !self.trusted.contains(peer.ip()) {
            tracing::debug!(%peer, "proxy protocol header from an untrusted peer refused");
            return None;
        }
        match tokio::time::timeout(wait, proxy_protocol::read_header(stream)).await {
            Ok(Ok(Some(source))) => Some(source),
            Ok(Ok(None)) => Some(peer),
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "connection without a valid proxy protocol header dropped");
                None
            }
            Err(_elapsed) => None,
        }
    }
}

/// The bound gateway role.
pub struct Gateway {
    http: TcpListener,
    tcp: TcpListener,
    shared: Arc<Shared>,
}

impl Gateway {
    /// Validates the section, loads TLS material and binds both listeners.
    pub async fn bind(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            anyhow::bail!("invalid gateway configuration: {}", problems.join("; "));
        }
        let tls = match cfg.tls_files() {
            Some((cert, key)) => Some(tls::load(&cert, &key)?),
            None => None,
        };
        let http = TcpListener::bind(cfg.http_listen)
            .await
            .with_context(|| format!("failed to bind gateway.http_listen {}", cfg.http_listen))?;
        let tcp = TcpListener::bind(cfg.tcp_listen)
            .await
            .with_context(|| format!("failed to bind gateway.tcp_listen {}", cfg.tcp_listen))?;
        let pool = upstream::SharedPool::new(
            cfg.upstream_max_idle_per_host,
            Duration::from_secs(cfg.upstream_idle_timeout_secs),
            Duration::from_secs(cfg.upstream_connect_timeout_secs),
        );
        let shared = Shared {
            cfg: cfg.clone(),
            verifier: Verifier::new(deps.secrets.gateway()),
            verified: VerifiedTokens::default(),
            limits: limits::Limits::new(deps.cache.clone(), cfg),
            metrics: Arc::new(metrics::GatewayMetrics::register(&deps.metrics)),
            trusted: client_ip::TrustedProxies::new(&cfg.trusted_proxies),
            tls,
            pool,
            routes: route::RouteMapper::new(&cfg.route_domain, cfg.route_port),
            shutdown: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        };
        Ok(Self { http, tcp, shared: Arc::new(shared) })
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves until the token is cancelled, then drains open connections.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        let Self { http, tcp, shared } = self;
        tracing::info!(
            http = ?http.local_addr().ok(),
            tcp = ?tcp.local_addr().ok(),
            tls = shared.tls.is_some(),
            "gateway listening"
        );
        // Should this future be dropped before it finishes, the io threads still stop.
        let _stop_on_drop = StopOnDrop(shared.clone());
        let mut io_threads = Vec::new();
        if shared.cfg.io_threads == 0 {
            tokio::select! {
                () = token.cancelled() => {}
                () = accept_loop(http, shared.clone(), Port::Http) => {}
                () = accept_loop(tcp, shared.clone(), Port::Tcp) => {}
            }
        } else {
            let http = http.into_std().context("gateway http listener")?;
            let tcp = tcp.into_std().context("gateway tcp listener")?;
            for index in 0..shared.cfg.io_threads {
                let listeners = (http.try_clone()?, tcp.try_clone()?);
                let thread_shared = shared.clone();
                let (done, finished) = tokio::sync::oneshot::channel::<()>();
                std::thread::Builder::new()
                    .name(format!("fctf-gateway-{index}"))
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                            Ok(runtime) => runtime.block_on(io_thread(listeners, thread_shared)),
                            Err(error) => tracing::error!(%error, "gateway io thread could not start its event loop"),
                        }
                        let _ = done.send(());
                    })
                    .context("failed to start a gateway io thread")?;
                io_threads.push(finished);
            }
            drop((http, tcp));
            token.cancelled().await;
        }
        shared.shutdown.cancel();
        shared.tracker.close();
        let drain = Duration::from_secs(shared.cfg.drain_timeout_secs);
        if tokio::time::timeout(drain, shared.tracker.wait()).await.is_err() {
            tracing::info!(open = shared.tracker.len(), "gateway drain deadline passed; cutting open connections");
            shared.hard_stop.cancel();
            if tokio::time::timeout(Duration::from_secs(2), shared.tracker.wait()).await.is_err() {
                tracing::warn!(open = shared.tracker.len(), "gateway connections did not stop after being cut");
            }
        }
        for finished in io_threads {
            let _ = tokio::time::timeout(Duration::from_secs(5), finished).await;
        }
        Ok(())
    }
}

/// Cuts every connection and stops the io threads when dropped.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.shutdown.cancel();
        self.0.tracker.close();
        self.0.hard_stop.cancel();
    }
}

/// One dedicated io thread (`io_threads > 0`): accepts on its own registration of both
/// listeners (the kernel hands each new connection to one of the threads) and serves those
/// connections on its single-threaded event loop, until the gateway stops and every
/// connection is done or cut.
async fn io_thread((http, tcp): (std::net::TcpListener, std::net::TcpListener), shared: Arc<Shared>) {
    let (http, tcp) = match (TcpListener::from_std(http), TcpListener::from_std(tcp)) {
        (Ok(http), Ok(tcp)) => (http, tcp),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "gateway io thread could not register the listeners");
            return;
        }
    };
    tokio::join!(accept_loop(http, shared.clone(), Port::Http), accept_loop(tcp, shared.clone(), Port::Tcp));
    tokio::select! {
        () = shared.tracker.wait() => {}
        () = async {
            shared.hard_stop.cancelled().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => {}
    }
}

#[derive(Clone, Copy)]
enum Port {
    Http,
    Tcp,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, port: Port) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection_shared = shared.clone();
                shared.tracker.spawn(async move {
                    match port {
                        Port::Http => http::serve_connection(connection_shared, stream, peer).await,
                        Port::Tcp => tcp::serve_connection(connection_shared, stream, peer).await,
                    }
                });
            }
            Err(error) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "gateway accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
