//! The gateway's series in the process registry, registered once at bind so the hot path only
//! touches atomics.

use crate::metrics::{Counter, Gauge, Metrics};

/// Handles to every gateway series.
pub(crate) struct GatewayMetrics {
    http_requests: [Counter; 5],
    pub(crate) http_bytes_in: Counter,
    pub(crate) http_bytes_out: Counter,
    pub(crate) http_auth_failures: Counter,
    pub(crate) http_rate_limited: Counter,
    pub(crate) http_upgrades_open: Gauge,
    pub(crate) tcp_sessions_open: Gauge,
    pub(crate) tcp_sessions: Counter,
    pub(crate) tcp_bytes_in: Counter,
    pub(crate) tcp_bytes_out: Counter,
    pub(crate) tcp_auth_failures: Counter,
    pub(crate) tcp_rate_limited: Counter,
    pub(crate) tcp_refused_caps: Counter,
}

impl GatewayMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let class = |label: &str| {
            metrics.counter(
                "fctf_gateway_http_requests_total",
                "HTTP requests answered by the gateway, by status class.",
                &[("class", label)],
            )
        };
        let bytes = |proto: &str, direction: &str| {
            metrics.counter(
                "fctf_gateway_bytes_total",
                "Payload bytes relayed by the gateway (in: from players, out: to players).",
                &[("proto", proto), ("direction", direction)],
            )
        };
        let auth = |proto: &str| {
            metrics.counter(
                "fctf_gateway_auth_failures_total",
                "Requests or sessions refused for a missing, invalid, expired or revoked token.",
                &[("proto", proto)],
            )
        };
        let limited = |proto: &str| {
            metrics.counter(
                "fctf_gateway_rate_limited_total",
                "Requests or connections refused by a rate limit.",
                &[("proto", proto)],
            )
        };
        Self {
            http_requests: [class("1xx"), class("2xx"), class("3xx"), class("4xx"), class("5xx")],
            http_bytes_in: bytes("http", "in"),
            http_bytes_out: bytes("http", "out"),
            http_auth_failures: auth("http"),
            http_rate_limited: limited("http"),
            http_upgrades_open: metrics.gauge(
                "fctf_gateway_http_upgrades_open",
                "Upgraded HTTP connections (WebSocket) open now.",
                &[],
            ),
            tcp_sessions_open: metrics.gauge(
                "fctf_gateway_tcp_sessions_open",
                "TCP connections open now (authenticating or relaying).",
                &[],
            ),
            tcp_sessions: metrics.counter(
                "fctf_gateway_tcp_sessions_total",
                "TCP sessions that passed authentication.",
                &[],
            ),
            tcp_bytes_in: bytes("tcp", "in"),
            tcp_bytes_out: bytes("tcp", "out"),
            tcp_auth_failures: auth("tcp"),
            tcp_rate_limited: limited("tcp"),
            tcp_refused_caps: metrics.counter(
                "fctf_gateway_tcp_refused_total",
                "TCP connections refused by a connection cap (global, per IP or per token).",
                &[],
            ),
        }
    }

    /// Counts one answered HTTP request.
    pub(crate) fn http_request(&self, status: u16) {
        let index = usize::from(status / 100).clamp(1, 5) - 1;
        self.http_requests[index].inc();
    }
}
