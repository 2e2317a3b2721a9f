//! The HTTP port's connections (requests are answered in [`crate::gateway::request`]).
//!
//! Connections are HTTP/1.1 with keep-alive and upgrades; the header read timeout also bounds
//! idle keep-alive connections. Each connection drives its own upstream connections in its task
//! (see [`crate::gateway::upstream`]).
//! Half-closed clients (`printf 'GET / ...' | nc`) still get their answer.
//!
//! Lingering close: when a connection ends with request bytes still unread (a 413, a 401 to a
//! POST), closing the socket would make the kernel answer with a reset that can destroy the
//! response before the client reads it. So, unless the connection was upgraded, the gateway
//! keeps a duplicate of the socket, sends FIN after hyper is done, and reads and discards what
//! the client still sends for up to `LINGER` before closing (what nginx calls lingering close).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::metrics::GatewayMetrics;
use crate::gateway::request::handle;
use crate::gateway::upstream::Upstreams;
use crate::gateway::verified::Authorized;
use crate::gateway::{Shared, tls};

const LINGER: Duration = Duration::from_secs(2);

/// What a request handler knows about its connection.
pub(crate) struct ConnInfo {
    /// The socket peer (or the PROXY header's source).
    pub(crate) peer: IpAddr,
    /// `peer` as a header value (`X-Forwarded-For` of requests that carry none).
    pub(crate) peer_header: Option<HeaderValue>,
    /// The connection is TLS.
    pub(crate) tls: bool,
    /// Set when the connection was handed over to an upgrade relay.
    pub(crate) upgraded: AtomicBool,
    /// Upstream connections used by this connection.
    pub(crate) upstreams: Upstreams,
    /// The last token verified on this connection.
    pub(crate) last_auth: Mutex<Option<Arc<Authorized>>>,
    pub(crate) metrics: Arc<GatewayMetrics>,
}

/// Serves one HTTP connection until it closes or the gateway stops.
pub(crate) async fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let header_timeout = Duration::from_secs(shared.cfg.http_header_timeout_secs);
    let Some(peer) = shared.resolve_peer(&mut stream, peer, header_timeout).await else { return };
    let linger_handle = duplicate(&stream);
    let acceptor = shared.tls.as_ref().map(|acceptors| &acceptors.http);
    let Some(stream) = tls::accept(stream, acceptor, header_timeout, header_timeout).await else { return };
    let (upstreams, mut driver) = Upstreams::new();
    let conn = Arc::new(ConnInfo {
        peer: peer.ip(),
        peer_header: HeaderValue::from_str(&peer.ip().to_string()).ok(),
        tls: stream.is_tls(),
        upgraded: AtomicBool::new(false),
        upstreams,
        last_auth: Mutex::new(None),
        metrics: shared.metrics.clone(),
    });
    let service_conn = conn.clone();
    let shutdown = shared.shutdown.clone();
    let hard_stop = shared.hard_stop.clone();
    let service_shared = shared.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = service_shared.clone();
        let conn = service_conn.clone();
        async move { Ok::<_, Infallible>(handle(&shared, conn, request).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true).half_close(true);
    let result = {
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        tokio::pin!(connection);
        let driving = driver.run();
        tokio::pin!(driving);
        tokio::select! {
            result = connection.as_mut() => result,
            () = &mut driving => Ok(()),
            () = shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => result,
                    () = &mut driving => Ok(()),
                    () = hard_stop.cancelled() => Ok(()),
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "http connection ended with an error");
    }
    let upgraded = conn.upgraded.load(Ordering::Relaxed);
    if let Ok(conn) = Arc::try_unwrap(conn)
        && !hard_stop.is_cancelled()
    {
        conn.upstreams.release_into(driver, &shared.pool);
    }
    if let Some(socket) = linger_handle
        && !upgraded
        && !hard_stop.is_cancelled()
    {
        linger(socket).await;
    }
}

/// A second handle on the connection's socket, so it can be closed gently after hyper is done.
/// It stays out of the event loop until then (a second registration of the same socket would
/// double the readiness work of every packet).
fn duplicate(stream: &TcpStream) -> Option<socket2::Socket> {
    socket2::SockRef::from(stream).try_clone().ok()
}

/// Sends FIN, then discards what the client still sends (until it closes, or `LINGER`).
async fn linger(socket: socket2::Socket) {
    let Ok(mut socket) = TcpStream::from_std(std::net::TcpStream::from(socket)) else { return };
    let _ = socket.shutdown().await;
    let mut sink = [0_u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(read) = socket.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}
