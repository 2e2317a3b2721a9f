//! The HTTP port's connections: HTTP/1.x with keep-alive, pipelining and upgrades, spoken by
//! the gateway itself ([`crate::gateway::wire`]); requests are decided in
//! [`crate::gateway::request`] and proxied in [`crate::gateway::proxy`].
//!
//! Why not a general HTTP library: a reverse proxy in front of many small challenge apps spends
//! most of its time on small requests, and a general server plus a general client per request
//! (header maps, request channels, a task per upstream connection, per-request timers) cost
//! about twice nginx's instructions per request. Here a request's head is parsed in place, the
//! headers the upstream gets are the client's own bytes minus what the proxy removes, and the
//! request, the response and the upstream connection all stay in the client connection's task.
//!
//! Per connection: a read buffer (requests may be pipelined: bytes after one request are the
//! next), a write buffer, the token verified last and the upstream connection kept for the next
//! request. The header read timeout bounds both a slow head and an idle keep-alive connection.
//! A client that half-closes after its request (`printf 'GET / ...' | nc`) still gets its
//! answer. When the gateway drains, idle connections close and busy ones close after their
//! current response (`Connection: close`); at the drain deadline every connection is cut.
//!
//! Lingering close: when a connection ends with request bytes still unread (a 413, a 401 to a
//! POST whose body did not arrive yet), closing the socket would make the kernel answer with a
//! reset that can destroy the response before the client reads it. So the gateway sends FIN and
//! reads and discards what the client still sends for up to `LINGER` before closing (what nginx
//! calls lingering close). A gateway answer to a request whose body already arrived whole skips
//! the body and keeps the connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::body::{ACCESS_TARGET, AccessRecord};
use crate::gateway::error::{Error, PLAIN_HEADERS};
use crate::gateway::proxy::{BodyState, Failure};
use crate::gateway::request::{self, Decision};
use crate::gateway::tls::{self, ClientStream};
use crate::gateway::upstream::Kept;
use crate::gateway::verified::Authorized;
use crate::gateway::wire::{Framing, HeadError, RequestHead};
use crate::gateway::{Shared, auth, proxy};

const LINGER: Duration = Duration::from_secs(2);
/// Bytes read from a client at a time.
const READ_SIZE: usize = 8 * 1024;

/// What happens to the connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    KeepAlive,
    Close,
    /// Closed with request bytes possibly unread: linger.
    CloseLingering,
}

/// One client connection.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: ClientStream,
    /// Bytes read from the client and not yet used.
    pub(crate) buf: BytesMut,
    /// The socket peer (or the PROXY header's source).
    pub(crate) peer: IpAddr,
    /// `peer` as text (`X-Forwarded-For`).
    pub(crate) peer_text: String,
    pub(crate) tls: bool,
    /// The last token verified on this connection.
    pub(crate) last_auth: Option<Arc<Authorized>>,
    /// The upstream connection kept for the next request.
    pub(crate) kept: Kept,
}

/// Serves one HTTP connection until it closes or the gateway stops.
pub(crate) async fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let header_timeout = Duration::from_secs(shared.cfg.http_header_timeout_secs);
    let Some(peer) = shared.resolve_peer(&mut stream, peer, header_timeout).await else { return };
    let acceptor = shared.tls.as_ref().map(|acceptors| &acceptors.http);
    let Some(client) = tls::accept(stream, acceptor, header_timeout, header_timeout).await else { return };
    let hard_stop = shared.hard_stop.clone();
    let mut conn = Conn {
        tls: client.is_tls(),
        shared,
        client,
        buf: BytesMut::with_capacity(READ_SIZE),
        peer: peer.ip(),
        peer_text: peer.ip().to_string(),
        last_auth: None,
        kept: Kept::default(),
    };
    let next = tokio::select! {
        next = conn.run() => next,
        () = hard_stop.cancelled() => return,
    };
    conn.kept.release(&conn.shared.pool);
    if next == Next::CloseLingering {
        tokio::select! {
            () = linger(&mut conn.client) => {}
            () = hard_stop.cancelled() => {}
        }
    }
}

/// Sends FIN, then discards what the client still sends (until it closes, or `LINGER`).
async fn linger(client: &mut ClientStream) {
    let _ = client.shutdown().await;
    let mut sink = [0_u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(read) = client.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}

impl Conn {
    async fn run(&mut self) -> Next {
        loop {
            let head = match self.read_head().await {
                Ok(Some(head)) => head,
                Ok(None) => return Next::Close,
                Err(error) => {
                    let error = match error {
                        HeadError::Invalid => Error::BadRequest,
                        HeadError::TooLarge => Error::HeadTooLarge,
                    };
                    let _ = self
                        .write_answer(error.status_code(), PLAIN_HEADERS, error.body().as_bytes(), false, true, false)
                        .await;
                    return Next::CloseLingering;
                }
            };
            match self.serve(&head).await {
                Next::KeepAlive if !self.shared.shutdown.is_cancelled() => {}
                Next::KeepAlive => return Next::Close,
                other => return other,
            }
        }
    }

    /// The next request head; `None` when the client closed, went idle too long, or the
    /// gateway is draining while the connection is idle.
    async fn read_head(&mut self) -> Result<Option<RequestHead>, HeadError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.shared.cfg.http_header_timeout_secs);
        loop {
            if !self.buf.is_empty()
                && let Some(head) = RequestHead::parse(&mut self.buf)?
            {
                return Ok(Some(head));
            }
            let idle = self.buf.is_empty();
            self.buf.reserve(READ_SIZE);
            let reading = tokio::time::timeout_at(deadline, self.client.read_buf(&mut self.buf));
            let read = if idle {
                let shutdown = &self.shared.shutdown;
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return Ok(None),
                    read = reading => read,
                }
            } else {
                reading.await
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Ok(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Answers one request.
    async fn serve(&mut self, head: &RequestHead) -> Next {
        let Some(target) = head.path_and_query() else {
            return self.answer_error(head, &Error::BadRequest).await;
        };
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        if path == "/healthz" || path == "/healthcheck" {
            return self.answer(head, StatusCode::OK, PLAIN_HEADERS, b"ok\n", BodyState::Untouched).await;
        }
        let shared = self.shared.clone();
        let client_ip = shared.trusted.client_ip(
            self.peer,
            head.fields.values(crate::gateway::wire::Kind::XForwardedFor),
            head.fields.first(crate::gateway::wire::Kind::XRealIp),
        );
        let logged = tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO);
        let mut record = AccessRecord {
            started: Instant::now(),
            method: if logged { String::from_utf8_lossy(head.method()).into_owned() } else { String::new() },
            path: logged.then(|| auth::loggable_path(path)),
            status: 0,
            client_ip,
            auth: None,
            bytes_in: 0,
            bytes_out: 0,
        };
        let decided = request::decide(self, head, target, client_ip, &mut record).await;
        let next = match decided {
            Ok(Decision::Redirect { headers }) => {
                record.status = StatusCode::FOUND.as_u16();
                self.answer(head, StatusCode::FOUND, &headers, b"", BodyState::Untouched).await
            }
            Ok(Decision::Proxy { authorized, other_cookies }) => {
                match proxy::forward(self, head, target, &authorized, other_cookies, &mut record).await {
                    Ok(next) => next,
                    Err(failure) => {
                        record.status = failure.error.status_code().as_u16();
                        self.answer_failed(head, &failure).await
                    }
                }
            }
            Err(error) => {
                record.status = error.status_code().as_u16();
                if error.is_auth_failure() {
                    shared.metrics.http_auth_failures.inc();
                } else if matches!(error, Error::RateLimited) {
                    shared.metrics.http_rate_limited.inc();
                }
                self.answer_error(head, &error).await
            }
        };
        record.finish(&shared.metrics);
        next
    }

    async fn answer_error(&mut self, head: &RequestHead, error: &Error) -> Next {
        self.answer(head, error.status_code(), PLAIN_HEADERS, error.body().as_bytes(), BodyState::Untouched).await
    }

    async fn answer_failed(&mut self, head: &RequestHead, failure: &Failure) -> Next {
        let error = &failure.error;
        self.answer(head, error.status_code(), PLAIN_HEADERS, error.body().as_bytes(), failure.body).await
    }

    /// Writes the gateway's own answer to `head`, whose body got as far as `request_body`. A
    /// body not read yet is skipped when it arrived whole; one that did not (or was read in
    /// part) closes the connection, lingering.
    pub(crate) async fn answer(
        &mut self,
        head: &RequestHead,
        status: StatusCode,
        headers: &str,
        body: &[u8],
        request_body: BodyState,
    ) -> Next {
        let unread_body = match (request_body, head.fields.framing) {
            (BodyState::Consumed, _) | (BodyState::Untouched, Framing::None) => false,
            (BodyState::Untouched, Framing::Length(length)) if length <= self.buf.len() as u64 => {
                self.buf.advance(length as usize);
                false
            }
            _ => true,
        };
        let close = head.fields.close || unread_body || self.shared.shutdown.is_cancelled();
        let keep_alive_1_0 = !close && head.minor == 0;
        if self.write_answer(status, headers, body, head.is_head(), close, keep_alive_1_0).await.is_err() {
            return Next::Close;
        }
        match (close, unread_body) {
            (false, _) => Next::KeepAlive,
            (true, true) => Next::CloseLingering,
            (true, false) => Next::Close,
        }
    }

    /// Writes a gateway answer: its head, then `body` unless `omit_body` (a `HEAD` request).
    async fn write_answer(
        &mut self,
        status: StatusCode,
        headers: &str,
        body: &[u8],
        omit_body: bool,
        close: bool,
        keep_alive_1_0: bool,
    ) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(256 + headers.len() + body.len());
        own_head(&mut out, status, headers, body.len(), close, keep_alive_1_0);
        if !omit_body {
            out.extend_from_slice(body);
        }
        self.write_all(&out).await
    }

    /// Writes to the client and flushes (a TLS stream may hold bytes until flushed).
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.client.write_all(bytes).await?;
        self.client.flush().await
    }
}

/// The head of a gateway answer: status line, `headers` (CRLF-terminated lines), length and
/// connection handling.
fn own_head(out: &mut BytesMut, status: StatusCode, headers: &str, length: usize, close: bool, keep_alive_1_0: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    out.extend_from_slice(b"\r\n");
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if keep_alive_1_0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
