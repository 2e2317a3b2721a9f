//! The `[gateway]` section. Defaults live in `config/default.toml` (each key documented there).
//!
//! A rate of 0 disables that token bucket; a connection cap of 0 disables that cap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The `[gateway]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP listener (default `0.0.0.0:8080`).
    pub http_listen: SocketAddr,
    /// TCP listener (default `0.0.0.0:1337`).
    pub tcp_listen: SocketAddr,
    /// Host name players use to reach the gateway, shown in connection info (another host name
    /// than the portal's, see `config/default.toml`).
    pub public_host: String,
    /// Base URL of players' HTTP links; empty: `http(s)://<public_host>:<http_listen port>`.
    pub public_http_url: String,
    /// Port shown for TCP access; 0: the port of `tcp_listen`.
    pub public_tcp_port: u16,

    /// PEM certificate chain; TLS is served (auto-detected per connection) when set with the key.
    pub tls_cert_file: String,
    /// PEM private key matching `tls_cert_file`.
    pub tls_key_file: String,
    /// How long a new TCP-port connection may stay silent before it is served as plaintext.
    pub tls_detect_timeout_ms: u64,

    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` / `X-Real-IP` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// Every connection on both ports starts with a PROXY protocol (v1 or v2) header.
    pub proxy_protocol: bool,

    /// A bare app-name route `r` expands to `r-svc.r.<route_domain>:<route_port>`.
    pub route_domain: String,
    /// Port of expanded app-name routes.
    pub route_port: u16,

    /// Largest request body, declared or chunked.
    pub http_max_body_bytes: u64,
    /// Time a client gets to send a request's headers.
    pub http_header_timeout_secs: u64,
    /// Per client IP, all requests (before authentication).
    pub http_ip_rate: f64,
    /// Burst of `http_ip_rate`.
    pub http_ip_burst: u32,
    /// Per (token, client IP), authenticated requests.
    pub http_token_rate: f64,
    /// Burst of `http_token_rate`.
    pub http_token_burst: u32,
    /// Time to connect to an upstream.
    pub upstream_connect_timeout_secs: u64,
    /// Time an upstream gets to answer with response headers; also the longest silence of a
    /// client or an upstream while a body is relayed.
    pub upstream_response_timeout_secs: u64,
    /// Idle upstream connections kept per upstream.
    pub upstream_max_idle_per_host: usize,
    /// Seconds an idle upstream connection is kept.
    pub upstream_idle_timeout_secs: u64,

    /// Per client IP, new TCP connections.
    pub tcp_ip_rate: f64,
    /// Burst of `tcp_ip_rate`.
    pub tcp_ip_burst: u32,
    /// Per (token, client IP), authenticated TCP sessions.
    pub tcp_token_rate: f64,
    /// Burst of `tcp_token_rate`.
    pub tcp_token_burst: u32,
    /// TCP connections open at once, whole platform.
    pub tcp_max_conns: u32,
    /// TCP connections open at once per client IP.
    pub tcp_max_conns_per_ip: u32,
    /// TCP sessions open at once per token.
    pub tcp_max_conns_per_token: u32,
    /// Time a TCP client gets to send its token line.
    pub tcp_auth_timeout_secs: u64,
    /// Longest token line accepted.
    pub tcp_max_token_line_bytes: usize,
    /// Time to connect to a TCP upstream.
    pub tcp_dial_timeout_secs: u64,
    /// Largest buffer of each direction of a TCP relay (buffers start at 16 KiB and double while
    /// reads fill them).
    pub tcp_copy_buf_bytes: usize,

    /// Connection leases expire after this unless renewed (renewed every third of it).
    pub lease_ttl_secs: u64,
    /// How long an instance-liveness answer is reused in process.
    pub liveness_cache_ms: u64,
    /// On a cache error with no recent answer: true lets the token through, false refuses it.
    pub liveness_fail_open: bool,
    /// On a cache error: true lets rate limits and connection caps pass, false refuses.
    pub limits_fail_open: bool,
    /// On shutdown, how long open connections get to finish before they are cut.
    pub drain_timeout_secs: u64,
    /// Dedicated single-threaded event loops serving connections (0: the shared runtime).
    pub io_threads: usize,
    /// Longest wait for one cache call on the request path before it counts as failed.
    pub cache_timeout_ms: u64,
    /// After a failed cache call, how long the cache is not asked at all (failure rules apply).
    pub cache_retry_after_ms: u64,
}

impl Config {
    /// Problems that make this section unusable, all at once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tls_cert_file.is_empty() != self.tls_key_file.is_empty() {
            problems
                .push("gateway.tls_cert_file and gateway.tls_key_file must be set together (or neither)".to_owned());
        }
        for entry in &self.trusted_proxies {
            if crate::gateway::client_ip::parse_net(entry).is_none() {
                problems.push(format!("gateway.trusted_proxies: `{entry}` is not an IP address or CIDR"));
            }
        }
        for (name, rate) in [
            ("http_ip_rate", self.http_ip_rate),
            ("http_token_rate", self.http_token_rate),
            ("tcp_ip_rate", self.tcp_ip_rate),
            ("tcp_token_rate", self.tcp_token_rate),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                problems.push(format!("gateway.{name} must be a finite number, 0 or more"));
            }
        }
        if self.route_port == 0 {
            problems.push("gateway.route_port must not be 0".to_owned());
        }
        if self.tcp_max_token_line_bytes == 0 || self.tcp_copy_buf_bytes == 0 {
            problems
                .push("gateway.tcp_max_token_line_bytes and gateway.tcp_copy_buf_bytes must be at least 1".to_owned());
        }
        if self.io_threads > 256 {
            problems.push("gateway.io_threads must be at most 256".to_owned());
        }
        if self.cache_timeout_ms == 0 {
            problems.push("gateway.cache_timeout_ms must be at least 1".to_owned());
        }
        if self.lease_ttl_secs < 3 {
            problems.push("gateway.lease_ttl_secs must be at least 3".to_owned());
        }
        if self.tcp_auth_timeout_secs == 0 || self.tcp_dial_timeout_secs == 0 {
            problems
                .push("gateway.tcp_auth_timeout_secs and gateway.tcp_dial_timeout_secs must be at least 1".to_owned());
        }
        if self.upstream_connect_timeout_secs == 0
            || self.upstream_response_timeout_secs == 0
            || self.http_header_timeout_secs == 0
        {
            problems.push(
                "gateway.upstream_connect_timeout_secs, upstream_response_timeout_secs and http_header_timeout_secs must be at least 1"
                    .to_owned(),
            );
        }
        problems
    }

    /// Problems of the public coordinates the portal shows (checked where the api role runs).
    pub fn public_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.public_host.trim().is_empty() {
            problems.push("gateway.public_host must not be empty".to_owned());
        }
        let base = self.public_http_url.trim();
        if !base.is_empty() {
            let parsed = url::Url::parse(base);
            let usable = parsed.as_ref().is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none()
            });
            if !usable {
                problems.push(format!(
                    "gateway.public_http_url `{base}` must be an http:// or https:// URL with a host and no query"
                ));
            }
        }
        problems
    }

    /// True when TLS is configured (both files set); the portal then shows `https://` links and
    /// the TLS command.
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert_file.trim().is_empty() && !self.tls_key_file.trim().is_empty()
    }

    /// Base of players' HTTP links, without a trailing slash: `public_http_url`, or
    /// `http(s)://<public_host>:<port of http_listen>` (the port left out when it is the scheme's).
    pub fn public_http_base(&self) -> String {
        let base = self.public_http_url.trim().trim_end_matches('/');
        if !base.is_empty() {
            return base.to_owned();
        }
        let tls = self.tls_enabled();
        let scheme = if tls { "https" } else { "http" };
        let host = url_host(self.public_host.trim());
        match (tls, self.http_listen.port()) {
            (true, 443) | (false, 80) => format!("{scheme}://{host}"),
            (_, port) => format!("{scheme}://{host}:{port}"),
        }
    }

    /// Host name of players' HTTP links (the cookie host of the gateway).
    pub fn public_http_host(&self) -> String {
        url::Url::parse(&self.public_http_base())
            .ok()
            .and_then(|url| url.host_str().map(|host| host.trim_matches(['[', ']']).to_ascii_lowercase()))
            .unwrap_or_default()
    }

    /// Host and port shown for TCP access (`nc <host> <port>`).
    pub fn public_tcp(&self) -> (String, u16) {
        let port = if self.public_tcp_port == 0 { self.tcp_listen.port() } else { self.public_tcp_port };
        (self.public_host.trim().to_owned(), port)
    }

    /// The certificate and key paths, when TLS is configured.
    pub(crate) fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        if self.tls_cert_file.is_empty() || self.tls_key_file.is_empty() {
            return None;
        }
        Some((PathBuf::from(&self.tls_cert_file), PathBuf::from(&self.tls_key_file)))
    }

    pub(crate) fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }
}

/// `host` as written in a URL or `host:port` (IPv6 addresses in brackets).
pub fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() }
}
