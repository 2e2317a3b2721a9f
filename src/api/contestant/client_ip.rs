//! The client address, decided by one explicit trusted-proxy setting (fctf decision 14).
//!
//! `api.trusted_proxies` lists the addresses or CIDR ranges of the reverse proxies in front of
//! fctf. When the socket peer is one of them, `X-Forwarded-For` is walked from the right and
//! the first address that is not a trusted proxy is the client; otherwise (and always when the
//! list is empty) the socket peer is the client and `X-Forwarded-For` is ignored, so a client
//! cannot choose its own address for rate limits, submissions or tracking. IPv4-mapped IPv6
//! addresses are reported as IPv4.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::context::Contestant;

/// A parsed list of trusted proxy ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn prefix_matches(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(network), IpAddr::V4(ip)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(network) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(ip)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(network) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// Parses one `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`,
/// `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry.parse::<SocketAddr>().ok().map(|socket| canonical(socket.ip()))
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR ranges (`10.0.0.0/8, ::1`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (address, prefix) = match item.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (item, None),
            };
            let ip: IpAddr = address.parse().map_err(|_| format!("invalid trusted proxy address {item:?}"))?;
            let ip = canonical(ip);
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(text) => text
                    .parse::<u8>()
                    .ok()
                    .filter(|bits| *bits <= max)
                    .ok_or_else(|| format!("invalid prefix in {item:?}"))?,
                None => max,
            };
            ranges.push((ip, prefix));
        }
        Ok(Self { ranges })
    }

    /// True when `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.ranges.iter().any(|(network, prefix)| prefix_matches(*network, *prefix, ip))
    }

    /// The client address for a request from `peer` carrying `forwarded_for` headers.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: &[&str]) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.contains(peer) {
            return Some(peer);
        }
        let entries: Vec<&str> = forwarded_for.iter().flat_map(|header| header.split(',')).collect();
        for entry in entries.iter().rev() {
            match parse_forwarded(entry) {
                Some(ip) if self.contains(ip) => continue,
                Some(ip) => return Some(ip),
                None => return Some(peer),
            }
        }
        Some(peer)
    }
}

/// The client address of a request (`None` when unknown, e.g. in router tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The address as text, `unknown` when there is none.
    pub fn text(&self) -> String {
        self.0.map(|ip| ip.to_string()).unwrap_or_else(|| "unknown".to_owned())
    }

    /// Resolves the address from request parts.
    pub fn from_parts(parts: &Parts) -> Self {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect();
        let proxies = parts.extensions.get::<Arc<Contestant>>().map(|context| &context.trusted_proxies);
        match proxies {
            Some(proxies) => ClientIp(proxies.client_ip(peer, &forwarded)),
            None => ClientIp(peer.map(canonical)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let proxies = TrustedProxies::parse("").unwrap();
        assert_eq!(proxies.client_ip(Some(ip("203.0.113.9")), &["1.2.3.4"]), Some(ip("203.0.113.9")));
        assert_eq!(proxies.client_ip(None, &["1.2.3.4"]), None);
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        assert_eq!(
            proxies.client_ip(Some(ip("10.1.2.3")), &["6.6.6.6, 198.51.100.7", "192.168.1.1"]),
            Some(ip("198.51.100.7")),
            "a spoofed left-most entry is not believed"
        );
        assert_eq!(proxies.client_ip(Some(ip("10.1.2.3")), &["10.0.0.5"]), Some(ip("10.1.2.3")));
        assert_eq!(proxies.client_ip(Some(ip("10.1.2.3")), &["garbage"]), Some(ip("10.1.2.3")));
        assert_eq!(proxies.client_ip(Some(ip("10.1.2.3")), &["198.51.100.7:4431"]), Some(ip("198.51.100.7")));
        assert_eq!(proxies.client_ip(Some(ip("172.16.0.1")), &["198.51.100.7"]), Some(ip("172.16.0.1")));
    }

    #[test]
    fn mapped_addresses_and_v6_ranges() {
        let proxies = TrustedProxies::parse("::1, fd00::/8").unwrap();
        assert!(proxies.contains(ip("::1")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("fe80::1")));
        let v4 = TrustedProxies::parse("127.0.0.1").unwrap();
        assert!(v4.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(v4.client_ip(Some(ip("::ffff:127.0.0.1")), &[]), Some(ip("127.0.0.1")));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nonsense").is_err());
    }
}
