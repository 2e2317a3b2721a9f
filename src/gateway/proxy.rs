//! Forwarding an authenticated request to its instance, and WebSocket (any HTTP/1.1 upgrade)
//! pass-through.
//!
//! Towards the upstream: origin-form target (an absolute-form target is reduced to its path),
//! `HTTP/1.1`, `Host` set to the upstream authority (as the original did), hop-by-hop headers
//! removed (including those the `Connection` header names, and `Expect`: the gateway answers
//! `100 Continue` itself before it reads the body), the gateway cookie removed from `Cookie`,
//! the socket peer appended to `X-Forwarded-For` and `X-Forwarded-Proto` added when absent.
//! Appending (never replacing) keeps what the client sent, as the original proxy did:
//! challenges that are *meant* to trust a spoofable header keep working. Every other header is
//! passed byte for byte, in order. The body keeps its length, or is re-chunked.
//! Towards the client: hop-by-hop headers removed, any upstream `Set-Cookie` for the gateway
//! cookie dropped (a challenge cannot overwrite or delete it), and HTML marked no-store without
//! `ETag`/`Last-Modified`. A body delimited by the upstream closing is re-chunked for HTTP/1.1
//! clients; interim `1xx` answers other than `101` are skipped.
//!
//! Failures before the response head reaches the client are answered by the gateway: 502 when
//! the upstream cannot be reached or drops the request, 504 when it does not answer within
//! `upstream_response_timeout_secs`, 413 when a streamed body passes the limit, 400 for a
//! malformed chunked body. After that the client connection is closed mid-response (the only
//! honest signal left).

use std::time::Duration;

use bytes::BytesMut;

use crate::gateway::auth;
use crate::gateway::body::{AccessRecord, BodyCopy, CopyError, Out};
use crate::gateway::error::Error;
use crate::gateway::http::{Conn, Next};
use crate::gateway::relay::{Moved, relay};
use crate::gateway::request::NO_STORE;
use crate::gateway::session::{self, GaugeGuard};
use crate::gateway::upstream::{BODY_READ_SIZE, READ_SIZE, UpstreamConn};
use crate::gateway::verified::Authorized;
use crate::gateway::wire::{Framing, HeadError, Kind, RequestHead, ResponseHead};

/// Why the response head did not arrive.
enum HeadFailure {
    /// Nothing at all came back (a reused connection the upstream had closed: retry).
    Nothing,
    Failed,
    TimedOut,
}

/// How far the request body got when forwarding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyState {
    /// Not read (none, or still where the client left it).
    Untouched,
    /// Read whole (sent to the upstream).
    Consumed,
    /// Read in part: the connection cannot go on.
    Partial,
}

/// Forwarding failed before anything reached the client: the gateway answers `error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) body: BodyState,
}

impl Failure {
    fn new(error: Error, body: BodyState) -> Self {
        Self { error, body }
    }
}

/// Proxies the request to the instance of `authorized`. `Err` when nothing was sent to the
/// client yet (the caller answers); `Ok` with what happens to the connection otherwise.
pub(crate) async fn forward(
    conn: &mut Conn,
    head: &RequestHead,
    target: &str,
    authorized: &Authorized,
    other_cookies: bool,
    record: &mut AccessRecord,
) -> Result<Next, Failure> {
    let untouched = |error| Failure::new(error, BodyState::Untouched);
    let shared = conn.shared.clone();
    let authority = authorized.authority.as_ref().ok_or_else(|| untouched(Error::UpstreamUnreachable))?;
    let host = authorized.host.as_ref().ok_or_else(|| untouched(Error::BadRequest))?;
    let upgrade = head.upgrade();
    let mut request_head = BytesMut::with_capacity(head_capacity(head));
    write_request_head(&mut request_head, head, target, host.as_bytes(), other_cookies, conn, upgrade);
    let has_body = head.fields.framing != Framing::None;
    if has_body
        && head.expect_continue
        && conn.buf.is_empty()
        && conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
    {
        return Ok(Next::Close);
    }
    // After the body went, a failure leaves it consumed.
    let sent = if has_body { BodyState::Consumed } else { BodyState::Untouched };
    let wait = Duration::from_secs(shared.cfg.upstream_response_timeout_secs);
    let mut retried = false;
    let (mut upstream, response) = loop {
        let kept = if upgrade.is_some() { None } else { conn.kept.checkout(&shared.pool, authority, has_body) };
        let mut upstream = match kept {
            Some(upstream) => upstream,
            None => shared.pool.connect(authority).await.map_err(|error| {
                tracing::debug!(upstream = %authority, %error, "upstream connect failed");
                untouched(Error::UpstreamUnreachable)
            })?,
        };
        let retry_allowed = upstream.reused && !has_body && !retried;
        if has_body {
            let copied = BodyCopy {
                source: &mut conn.client,
                buffer: &mut conn.buf,
                sink: &mut upstream.stream,
                // A request with a body is sent once (never retried): its head can go as is.
                pending: &mut request_head,
                read_size: BODY_READ_SIZE,
                limit: shared.cfg.http_max_body_bytes,
                idle_timeout: wait,
            }
            .run(head.fields.framing, out_for(head.fields.framing))
            .await;
            match copied {
                Ok(bytes) => record.bytes_in = bytes,
                Err(CopyError::TooLarge) => return Err(Failure::new(Error::BodyTooLarge, BodyState::Partial)),
                Err(CopyError::Malformed) => return Err(Failure::new(Error::BadRequest, BodyState::Partial)),
                Err(CopyError::Read(error)) if error.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(Failure::new(Error::RequestTimeout, BodyState::Partial));
                }
                Err(CopyError::Read(_)) => return Ok(Next::Close),
                Err(CopyError::Write(error)) => {
                    tracing::debug!(upstream = %authority, %error, "upstream dropped the request body");
                    return Err(Failure::new(Error::UpstreamUnreachable, BodyState::Partial));
                }
            }
        } else if let Err(error) = tokio::io::AsyncWriteExt::write_all(&mut upstream.stream, &request_head).await {
            if retry_allowed {
                retried = true;
                continue;
            }
            tracing::debug!(upstream = %authority, %error, "upstream write failed");
            return Err(untouched(Error::UpstreamUnreachable));
        }
        match read_response_head(&mut upstream, head.is_head(), wait).await {
            Ok(response) => break (upstream, response),
            Err(HeadFailure::Nothing) if retry_allowed => retried = true,
            Err(HeadFailure::TimedOut) => return Err(Failure::new(Error::UpstreamTimeout, sent)),
            Err(HeadFailure::Nothing | HeadFailure::Failed) => {
                return Err(Failure::new(Error::UpstreamUnreachable, sent));
            }
        }
    };

    record.status = response.status;
    if response.status == 101 {
        let Some(protocol) = upgrade else { return Err(Failure::new(Error::UpstreamUnreachable, sent)) };
        let mut out = BytesMut::with_capacity(512);
        write_response_head(&mut out, &response, ResponseOut::Upgrade(protocol));
        return Ok(relay_upgrade(conn, upstream, out, authorized).await);
    }
    let client_close = head.fields.close || shared.shutdown.is_cancelled();
    let (out_framing, close_after) = match response.fields.framing {
        Framing::None | Framing::Length(_) => (Out::Plain, client_close),
        Framing::Chunked | Framing::UntilClose if head.minor >= 1 => (Out::Chunked, client_close),
        Framing::Chunked | Framing::UntilClose => (Out::Plain, true),
    };
    let mut out = BytesMut::with_capacity(response_capacity(&response));
    let connection = if close_after {
        ConnectionOut::Close
    } else if head.minor == 0 {
        ConnectionOut::KeepAlive
    } else {
        ConnectionOut::Default
    };
    write_response_head(&mut out, &response, ResponseOut::Normal { chunked: out_framing == Out::Chunked, connection });
    let copied = BodyCopy {
        source: &mut upstream.stream,
        buffer: &mut upstream.buf,
        sink: &mut conn.client,
        pending: &mut out,
        read_size: BODY_READ_SIZE,
        limit: u64::MAX,
        idle_timeout: wait,
    }
    .run(response.fields.framing, out_framing)
    .await;
    let flushed = tokio::io::AsyncWriteExt::flush(&mut conn.client).await;
    match copied {
        Ok(bytes) => record.bytes_out = bytes,
        Err(error) => {
            tracing::debug!(upstream = %authority, %error, "response body not relayed whole");
            return Ok(Next::Close);
        }
    }
    if flushed.is_err() {
        return Ok(Next::Close);
    }
    let reusable = upgrade.is_none()
        && !response.fields.close
        && response.minor >= 1
        && response.fields.framing != Framing::UntilClose
        && upstream.buf.is_empty();
    if reusable {
        conn.kept.checkin(&shared.pool, authority, upstream);
    }
    Ok(if close_after { Next::Close } else { Next::KeepAlive })
}

/// How a request body goes out: with its length, or re-chunked.
fn out_for(framing: Framing) -> Out {
    if framing == Framing::Chunked { Out::Chunked } else { Out::Plain }
}

fn head_capacity(head: &RequestHead) -> usize {
    head.fields.headers().len() * 48 + 256
}

fn response_capacity(response: &ResponseHead) -> usize {
    // Room for the head and a small body, which then leave in one write.
    response.fields.headers().len() * 48 + 256 + 4096
}

/// Reads the final response head (interim `1xx` heads other than `101` are skipped).
async fn read_response_head(
    upstream: &mut UpstreamConn,
    request_head: bool,
    wait: Duration,
) -> Result<ResponseHead, HeadFailure> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut received_any = false;
    loop {
        if !upstream.buf.is_empty() {
            match ResponseHead::parse(&mut upstream.buf, request_head) {
                Ok(Some(response)) if (100..200).contains(&response.status) && response.status != 101 => continue,
                Ok(Some(response)) => return Ok(response),
                Ok(None) => {}
                Err(HeadError::Invalid | HeadError::TooLarge) => return Err(HeadFailure::Failed),
            }
        }
        upstream.buf.reserve(READ_SIZE);
        let reading = tokio::io::AsyncReadExt::read_buf(&mut upstream.stream, &mut upstream.buf);
        match tokio::time::timeout_at(deadline, reading).await {
            Err(_elapsed) => return Err(HeadFailure::TimedOut),
            Ok(Ok(0)) | Ok(Err(_)) if !received_any => return Err(HeadFailure::Nothing),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadFailure::Failed),
            Ok(Ok(_)) => received_any = true,
        }
    }
}

/// Appends `name: value\r\n`.
fn header_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The head the upstream gets (see the module docs).
fn write_request_head(
    out: &mut BytesMut,
    head: &RequestHead,
    target: &str,
    host: &[u8],
    other_cookies: bool,
    conn: &Conn,
    upgrade: Option<&[u8]>,
) {
    let fields = &head.fields;
    out.extend_from_slice(head.method());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    header_line(out, b"Host", host);
    let named = if fields.connection_names { fields.connection_named() } else { Vec::new() };
    let rewrite_cookies = other_cookies && cookies_carry_gateway(head);
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    let mut forwarded_proto = false;
    for header in fields.headers() {
        match header.kind {
            Kind::Host
            | Kind::Connection
            | Kind::HopByHop
            | Kind::TransferEncoding
            | Kind::Upgrade
            | Kind::ContentLength
            | Kind::Expect => continue,
            Kind::Cookie if !other_cookies || rewrite_cookies => continue,
            Kind::XForwardedFor => {
                forwarded_for.push(fields.value(header));
                continue;
            }
            Kind::XForwardedProto => forwarded_proto = true,
            _ => {}
        }
        if !named.is_empty() && fields.is_named_by(header, &named) {
            continue;
        }
        out.extend_from_slice(fields.line(header));
        out.extend_from_slice(b"\r\n");
    }
    if rewrite_cookies {
        let kept: Vec<String> = fields
            .values(Kind::Cookie)
            .filter_map(|value| std::str::from_utf8(value).ok())
            .filter_map(auth::strip_gateway_cookie)
            .collect();
        if !kept.is_empty() {
            header_line(out, b"Cookie", kept.join("; ").as_bytes());
        }
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for prior in forwarded_for {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(conn.peer_text.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !forwarded_proto {
        out.extend_from_slice(if conn.tls {
            &b"X-Forwarded-Proto: https\r\n"[..]
        } else {
            b"X-Forwarded-Proto: http\r\n"
        });
    }
    match fields.framing {
        Framing::Length(length) => header_line(out, b"Content-Length", itoa::Buffer::new().format(length).as_bytes()),
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {}
    }
    if let Some(protocol) = upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
        header_line(out, b"Upgrade", protocol);
    }
    out.extend_from_slice(b"\r\n");
}

/// True when some `Cookie` header carries the gateway cookie.
fn cookies_carry_gateway(head: &RequestHead) -> bool {
    head.fields.values(Kind::Cookie).any(|value| {
        std::str::from_utf8(value).is_ok_and(|text| auth::cookie_pairs(text).any(|(name, _)| name == auth::COOKIE_NAME))
    })
}

/// The `Connection` header the client gets.
#[derive(Clone, Copy)]
enum ConnectionOut {
    /// None (HTTP/1.1 keeps the connection).
    Default,
    /// `keep-alive` (an HTTP/1.0 client that asked for it).
    KeepAlive,
    Close,
}

enum ResponseOut<'a> {
    Normal {
        chunked: bool,
        connection: ConnectionOut,
    },
    /// `101`: `Connection: upgrade` and the protocol.
    Upgrade(&'a [u8]),
}

/// The head the client gets (see the module docs).
fn write_response_head(out: &mut BytesMut, response: &ResponseHead, how: ResponseOut<'_>) {
    let fields = &response.fields;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(response.status).as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(response.reason());
    out.extend_from_slice(b"\r\n");
    let html = fields
        .values(Kind::ContentType)
        .any(|value| value.windows(9).any(|window| window.eq_ignore_ascii_case(b"text/html")));
    let named = if fields.connection_names { fields.connection_named() } else { Vec::new() };
    for header in fields.headers() {
        match header.kind {
            Kind::Connection | Kind::HopByHop | Kind::TransferEncoding | Kind::Upgrade => continue,
            Kind::Caching if html => continue,
            Kind::SetCookie if auth::sets_gateway_cookie(fields.value(header)) => continue,
            _ => {}
        }
        if !named.is_empty() && fields.is_named_by(header, &named) {
            continue;
        }
        out.extend_from_slice(fields.line(header));
        out.extend_from_slice(b"\r\n");
    }
    if html {
        out.extend_from_slice(NO_STORE.as_bytes());
    }
    match how {
        ResponseOut::Normal { chunked, connection } => {
            if chunked {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            }
            match connection {
                ConnectionOut::Default => {}
                ConnectionOut::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
                ConnectionOut::Close => out.extend_from_slice(b"Connection: close\r\n"),
            }
        }
        ResponseOut::Upgrade(protocol) => {
            out.extend_from_slice(b"Connection: upgrade\r\n");
            let upgrade = fields.first(Kind::Upgrade).unwrap_or(protocol);
            header_line(out, b"Upgrade", upgrade);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Relays an upgraded connection (WebSocket) until either side closes or it is cut; the
/// client connection ends with it (`Next::Close`).
async fn relay_upgrade(
    conn: &mut Conn,
    mut upstream: UpstreamConn,
    mut out: BytesMut,
    authorized: &Authorized,
) -> Next {
    use tokio::io::AsyncWriteExt as _;
    let shared = conn.shared.clone();
    // What each side sent beyond the heads goes first.
    out.extend_from_slice(&upstream.buf);
    upstream.buf.clear();
    if conn.write_all(&out).await.is_err() {
        return Next::Close;
    }
    if !conn.buf.is_empty() {
        if upstream.stream.write_all(&conn.buf).await.is_err() {
            return Next::Close;
        }
        conn.buf.clear();
    }
    let _open = GaugeGuard::new(&shared.metrics.http_upgrades_open);
    let claims = &authorized.claims;
    let mut moved = Moved::default();
    let reason = tokio::select! {
        result = relay(&mut conn.client, &mut upstream.stream, shared.cfg.tcp_copy_buf_bytes, &mut moved) => match result {
            Ok(()) => "closed",
            Err(_) => "error",
        },
        cut = session::watch(&shared, claims.exp, claims.instance_id, None) => cut.as_str(),
    };
    shared.metrics.http_bytes_in.add(moved.to_upstream);
    shared.metrics.http_bytes_out.add(moved.to_client);
    tracing::info!(
        target: "fctf::gateway::access",
        proto = "http",
        event = "upgrade_end",
        reason,
        bytes_in = moved.to_upstream,
        bytes_out = moved.to_client,
        instance = claims.instance_id.map(crate::domain::InstanceId::get),
    );
    Next::Close
}
