//! Upstream connections: plain TCP sockets carrying HTTP/1.1 with keep-alive, owned by the
//! client connection that uses them.
//!
//! The proxy speaks HTTP/1.1 to instances itself ([`crate::gateway::wire`]), so an upstream
//! connection is just a socket and a read buffer, used in the client connection's own task:
//! no connection task, no request channel, no per-request allocation of a client. Each client
//! connection keeps the upstream connection of its last request for its next one (the usual
//! case: a browser or a script talks to one instance). When it needs another upstream, or when
//! it closes, the idle connection goes to a pool shared by the gateway, where the next client
//! connection to that upstream finds it instead of dialling, so clients that open a connection
//! per request do not leave a trail of TIME_WAIT sockets towards the instance.
//!
//! A pooled connection is checked before reuse (a non-blocking read must find nothing: end of
//! stream or stray bytes mean the upstream closed it or is confused), and so is a kept one
//! that was idle for over a second or is about to carry a request body. A kept connection
//! used moments ago is not (one read call per request saved); the proxy instead retries a
//! request without a body once on a new connection when a reused one fails before any byte of
//! the response arrives. Upgrade requests always dial, since the connection becomes the relay's.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::uri::Authority;
use tokio::net::TcpStream;

/// A kept connection idle longer than this is checked before reuse.
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// Bytes read from an upstream at a time: a response head (and a small body) in one read.
pub(crate) const READ_SIZE: usize = 16 * 1024;
/// At most this many bytes per read of a long body.
pub(crate) const BODY_READ_SIZE: usize = 64 * 1024;

/// One upstream connection.
pub(crate) struct UpstreamConn {
    pub(crate) stream: TcpStream,
    /// Bytes read from the upstream and not yet used.
    pub(crate) buf: BytesMut,
    /// It carried an earlier request (the upstream may have closed it since).
    pub(crate) reused: bool,
}

/// Idle upstream connections shared by every client connection of the gateway.
pub(crate) struct SharedPool {
    idle: Mutex<HashMap<Authority, Vec<(TcpStream, Instant)>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl SharedPool {
    pub(crate) fn new(max_idle_per_host: usize, idle_timeout: Duration, connect_timeout: Duration) -> Self {
        Self { idle: Mutex::new(HashMap::new()), max_idle_per_host, idle_timeout, connect_timeout }
    }

    /// An idle connection to `authority` that still looks usable.
    fn take(&self, authority: &Authority) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = idle.get_mut(authority)?;
        let mut found = None;
        while let Some((stream, since)) = entries.pop() {
            if since.elapsed() < self.idle_timeout && quiet(&stream) {
                found = Some(stream);
                break;
            }
        }
        if entries.is_empty() {
            idle.remove(authority);
        }
        found
    }

    fn put(&self, authority: Authority, stream: TcpStream) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = idle.entry(authority).or_default();
        entries.retain(|(_, since)| since.elapsed() < self.idle_timeout);
        if entries.len() < self.max_idle_per_host {
            entries.push((stream, Instant::now()));
        }
    }

    /// Dials `authority` within the connect timeout.
    pub(crate) async fn connect(&self, authority: &Authority) -> io::Result<UpstreamConn> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(authority_addr(authority))).await {
                Ok(connected) => connected?,
                Err(_elapsed) => return Err(io::ErrorKind::TimedOut.into()),
            };
        let _ = stream.set_nodelay(true);
        Ok(UpstreamConn { stream, buf: BytesMut::new(), reused: false })
    }
}

/// True when an idle connection has nothing to read (no end of stream, no stray bytes).
fn quiet(stream: &TcpStream) -> bool {
    let mut probe = [0_u8; 1];
    matches!(stream.try_read(&mut probe), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
}

/// The idle upstream connection one client connection keeps.
#[derive(Default)]
pub(crate) struct Kept {
    slot: Option<(Authority, UpstreamConn, Instant)>,
}

impl Kept {
    /// A connection to `authority`: the kept one, else one from the pool (`None`: dial).
    /// `probe` asks for the kept one to be checked too (a request with a body cannot be
    /// retried); so is one idle for more than `PROBE_AFTER` (servers with short keep-alive
    /// timeouts, such as Node's five seconds, close idle connections).
    pub(crate) fn checkout(&mut self, pool: &SharedPool, authority: &Authority, probe: bool) -> Option<UpstreamConn> {
        if let Some((kept_authority, _, since)) = &self.slot
            && kept_authority == authority
        {
            let idle = since.elapsed();
            let (_, mut conn, _) = self.slot.take()?;
            let usable = idle < pool.idle_timeout && ((!probe && idle < PROBE_AFTER) || quiet(&conn.stream));
            if usable {
                conn.reused = true;
                return Some(conn);
            }
        }
        let stream = pool.take(authority)?;
        Some(UpstreamConn { stream, buf: BytesMut::new(), reused: true })
    }

    /// Keeps `conn` (idle, its buffer empty) for the next request; a connection kept for
    /// another upstream goes to the pool.
    pub(crate) fn checkin(&mut self, pool: &SharedPool, authority: &Authority, conn: UpstreamConn) {
        if let Some((previous, conn, _)) = self.slot.replace((authority.clone(), conn, Instant::now())) {
            pool.put(previous, conn.stream);
        }
    }

    /// Hands the kept connection to the pool (the client connection is closing).
    pub(crate) fn release(&mut self, pool: &SharedPool) {
        if let Some((authority, conn, since)) = self.slot.take()
            && since.elapsed() < pool.idle_timeout
        {
            pool.put(authority, conn.stream);
        }
    }
}

/// `host:port` for the resolver (port 80 when the route names none).
fn authority_addr(authority: &Authority) -> String {
    match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.as_str()),
    }
}
