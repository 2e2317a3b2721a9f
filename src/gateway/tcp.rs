//! The TCP port: prompt, token line, then a byte pipe to the instance.
//!
//! 1. PROXY header (when enabled), per-IP connection bucket and the global and per-IP connection
//!    leases; refusals close the connection silently (a TLS client could not read a plaintext
//!    message anyway). 2. TLS detection. 3. The prompt goes out at once. 4. One line (up to
//!    `tcp_max_token_line_bytes`, within `tcp_auth_timeout_secs`) is the token; a client that
//!    closes its side right after the token without a newline is accepted too. Bytes the client
//!    sent after the newline are kept and forwarded first. 5. Verification and liveness, the
//!    per-(token, IP) bucket and the per-token lease. 6. Dial with a timeout, relay until either
//!    side closes, `exp` passes, the instance stops or the drain deadline passes ([`relay`]).
//!
//! Only events, sizes and reasons are logged, never the token or relayed bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::domain::InstanceId;
use crate::gateway::limits::{CapRefusal, Leases};
use crate::gateway::relay::{Moved, relay};
use crate::gateway::session::{GaugeGuard, watch};
use crate::gateway::tls::{self, ClientStream};
use crate::gateway::{Error, Shared};

const LINGER: Duration = Duration::from_secs(1);
const AUTH_FAILED: &[u8] = b"Auth failed!\n";
const RATE_LIMITED: &[u8] = b"Rate limit exceeded\n";
const TOO_MANY: &[u8] = b"Too many connections for token\n";
const GRANTED: &[u8] = b"Access Granted! Connecting to challenge...\n";
const DIAL_FAILED: &[u8] = b"[!] Could not connect to challenge server.\n";

/// Serves one TCP connection.
pub(crate) async fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let socket = socket2::SockRef::from(&stream);
    let _ = socket.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(Duration::from_secs(30)));
    let auth_timeout = Duration::from_secs(shared.cfg.tcp_auth_timeout_secs);
    let Some(peer) = shared.resolve_peer(&mut stream, peer, auth_timeout).await else { return };
    let ip = peer.ip();
    if !shared.limits.allow_tcp_ip(ip).await {
        shared.metrics.tcp_rate_limited.inc();
        log_event(ip, "rate_limited", None);
        return;
    }
    let mut leases = match shared.limits.tcp_connection(ip).await {
        Ok(leases) => leases,
        Err(refusal) => {
            shared.metrics.tcp_refused_caps.inc();
            log_event(ip, refusal_event(refusal), None);
            return;
        }
    };
    let _open = GaugeGuard::new(&shared.metrics.tcp_sessions_open);
    let detect = Duration::from_millis(shared.cfg.tls_detect_timeout_ms);
    let acceptor = shared.tls.as_ref().map(|acceptors| &acceptors.tcp);
    let Some(mut client) = tls::accept(stream, acceptor, detect, auth_timeout).await else {
        leases.release().await;
        return;
    };
    session(&shared, &mut client, ip, &mut leases).await;
    leases.release().await;
    linger(client).await;
}

/// Closes gently: FIN (and TLS close_notify), then discards what the client still sends for a
/// moment, so a refusal message is not destroyed by a reset when the client sent more than we
/// read.
async fn linger(mut client: ClientStream) {
    let _ = tokio::time::timeout(LINGER, async {
        let _ = client.shutdown().await;
        let mut sink = [0_u8; 4096];
        while let Ok(read) = client.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
}

fn refusal_event(refusal: CapRefusal) -> &'static str {
    match refusal {
        CapRefusal::Global => "refused_global_cap",
        CapRefusal::PerIp => "refused_ip_cap",
        CapRefusal::PerToken => "refused_token_cap",
    }
}

fn log_event(ip: IpAddr, event: &'static str, reason: Option<&str>) {
    tracing::info!(target: "fctf::gateway::access", proto = "tcp", event, reason, client = %ip);
}

async fn session(shared: &Shared, client: &mut ClientStream, ip: IpAddr, leases: &mut Leases) {
    let auth_timeout = Duration::from_secs(shared.cfg.tcp_auth_timeout_secs);
    let prompt = format!(
        "\n--- CTF AUTHENTICATION ---\nPlease enter your token (Timeout {}s): ",
        shared.cfg.tcp_auth_timeout_secs
    );
    if client.write_all(prompt.as_bytes()).await.is_err() || client.flush().await.is_err() {
        return;
    }
    let line = tokio::select! {
        line = tokio::time::timeout(auth_timeout, read_token_line(client, shared.cfg.tcp_max_token_line_bytes)) => line,
        () = shared.shutdown.cancelled() => return,
    };
    let (token, leftover) = match line {
        Ok(Ok(pair)) => pair,
        Ok(Err(LineError::Io)) => return,
        Ok(Err(LineError::TooLong)) => return refuse_auth(shared, client, ip, "token too long").await,
        Err(_elapsed) => return refuse_auth(shared, client, ip, "authentication timed out").await,
    };
    if token.is_empty() {
        return refuse_auth(shared, client, ip, "empty token").await;
    }
    let authorized = match shared.authorize(&token).await {
        Ok(authorized) => authorized,
        Err(error) => {
            let reason = match &error {
                Error::InvalidToken(token_error) => token_error.to_string(),
                other => other.to_string(),
            };
            return refuse_auth(shared, client, ip, &reason).await;
        }
    };
    let claims = &authorized.claims;
    let (team, challenge) = authorized.labels.unzip();
    let instance = claims.instance_id.map(InstanceId::get);
    let log = |event: &'static str, reason: Option<&str>| {
        tracing::info!(
            target: "fctf::gateway::access",
            proto = "tcp",
            event,
            reason,
            team,
            challenge,
            ns = %claims.route,
            instance,
            client = %ip,
        );
    };
    if !shared.limits.allow_tcp_token(&authorized, ip).await {
        shared.metrics.tcp_rate_limited.inc();
        log("rate_limited", None);
        let _ = client.write_all(RATE_LIMITED).await;
        return;
    }
    if let Err(refusal) = shared.limits.tcp_token(leases, authorized.token_key()).await {
        shared.metrics.tcp_refused_caps.inc();
        log(refusal_event(refusal), None);
        let _ = client.write_all(TOO_MANY).await;
        return;
    }
    if client.write_all(GRANTED).await.is_err() || client.flush().await.is_err() {
        return;
    }
    let mut upstream = match dial(shared, authorized.authority.as_ref()).await {
        Ok(upstream) => upstream,
        Err(reason) => {
            log("dial_failed", Some(reason));
            let _ = client.write_all(DIAL_FAILED).await;
            return;
        }
    };
    if !leftover.is_empty() && upstream.write_all(&leftover).await.is_err() {
        log("dial_failed", Some("upstream closed"));
        let _ = client.write_all(DIAL_FAILED).await;
        return;
    }
    shared.metrics.tcp_sessions.inc();
    log("auth_ok", None);
    let started = Instant::now();
    let buffer = shared.cfg.tcp_copy_buf_bytes;
    let mut moved = Moved::default();
    let reason = tokio::select! {
        result = relay(client, &mut upstream, buffer, &mut moved) => match result {
            Ok(()) => "closed",
            Err(_) => "error",
        },
        cut = watch(shared, claims.exp, claims.instance_id, Some(&*leases)) => cut.as_str(),
    };
    let bytes_in = moved.to_upstream + leftover.len() as u64;
    let bytes_out = moved.to_client;
    shared.metrics.tcp_bytes_in.add(bytes_in);
    shared.metrics.tcp_bytes_out.add(bytes_out);
    tracing::info!(
        target: "fctf::gateway::access",
        proto = "tcp",
        event = "session_end",
        reason,
        bytes_in,
        bytes_out,
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        team,
        challenge,
        ns = %claims.route,
        instance,
        client = %ip,
    );
}

async fn refuse_auth(shared: &Shared, client: &mut ClientStream, ip: IpAddr, reason: &str) {
    shared.metrics.tcp_auth_failures.inc();
    log_event(ip, "auth_failed", Some(reason));
    let _ = client.write_all(AUTH_FAILED).await;
    let _ = client.flush().await;
}

/// Connects to the route's upstream within `tcp_dial_timeout_secs`; the error is the reason
/// logged.
async fn dial(shared: &Shared, authority: Option<&Authority>) -> Result<TcpStream, &'static str> {
    let authority = authority.ok_or("no usable route")?;
    let wait = Duration::from_secs(shared.cfg.tcp_dial_timeout_secs);
    match tokio::time::timeout(wait, TcpStream::connect(authority.as_str())).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => {
            tracing::debug!(upstream = %authority, %error, "tcp upstream dial failed");
            Err("connect failed")
        }
        Err(_elapsed) => Err("connect timed out"),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LineError {
    Io,
    TooLong,
}

/// Reads the token line; returns it trimmed, with whatever the client sent after it.
async fn read_token_line<S: AsyncRead + Unpin>(stream: &mut S, max: usize) -> Result<(String, Vec<u8>), LineError> {
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut chunk = [0_u8; 2048];
    loop {
        let read = stream.read(&mut chunk).await.map_err(|_| LineError::Io)?;
        if read == 0 {
            // The client closed its side: what it sent is the token (an empty line if nothing).
            if line.len() > max {
                return Err(LineError::TooLong);
            }
            return Ok((String::from_utf8_lossy(&line).trim().to_owned(), Vec::new()));
        }
        let start = line.len();
        line.extend_from_slice(&chunk[..read]);
        if let Some(offset) = line[start..].iter().position(|byte| *byte == b'\n') {
            let leftover = line.split_off(start + offset + 1);
            line.pop();
            if line.len() > max {
                return Err(LineError::TooLong);
            }
            return Ok((String::from_utf8_lossy(&line).trim().to_owned(), leftover));
        }
        if line.len() > max {
            return Err(LineError::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_line_keeps_the_bytes_after_it() {
        let mut input: &[u8] = b"  tok.en \r\nhello\x00world";
        let (token, leftover) = read_token_line(&mut input, 1024).await.unwrap();
        assert_eq!(token, "tok.en");
        assert_eq!(leftover, b"hello\x00world");
    }

    #[tokio::test]
    async fn token_line_limits_and_eof() {
        let long = vec![b'a'; 1025];
        assert_eq!(read_token_line(&mut long.as_slice(), 1024).await.unwrap_err(), LineError::TooLong);
        let with_newline = [vec![b'a'; 1025], b"\n".to_vec()].concat();
        assert_eq!(read_token_line(&mut with_newline.as_slice(), 1024).await.unwrap_err(), LineError::TooLong);
        let (token, leftover) = read_token_line(&mut b"abc".as_slice(), 1024).await.unwrap();
        assert_eq!((token.as_str(), leftover.len()), ("abc", 0));
        let (empty, _) = read_token_line(&mut b"\n".as_slice(), 1024).await.unwrap();
        assert!(empty.is_empty());
    }
}
