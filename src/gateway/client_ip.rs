//! The client's IP address: the socket peer, unless the peer is a trusted proxy.
//!
//! When the peer is listed in `gateway.trusted_proxies`, `X-Forwarded-For` is walked from the
//! right (the hop closest to us) skipping trusted proxies; the first untrusted address is the
//! client. A malformed entry stops the walk (everything left of it is client-controlled) and the
//! last trusted hop is used. Without `X-Forwarded-For`, `X-Real-IP` is used. An untrusted peer's
//! headers are ignored entirely. IPv4-mapped IPv6 addresses are treated as IPv4.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a single-host network).
pub(crate) fn parse_net(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    if let Ok(net) = IpNet::from_str(entry) {
        return Some(net.trunc());
    }
    IpAddr::from_str(entry).ok().map(|ip| IpNet::from(canonical(ip)))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        IpAddr::V4(_) => ip,
    }
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses the configured entries; invalid ones are reported by `Config::problems`.
    pub(crate) fn new(entries: &[String]) -> Self {
        Self { nets: entries.iter().filter_map(|entry| parse_net(entry)).collect() }
    }

    /// True when no proxy is trusted.
    pub(crate) fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// True when `ip` belongs to a trusted proxy.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with these `X-Forwarded-For`
    /// and `X-Real-IP` values.
    pub(crate) fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
        real_ip: Option<&[u8]>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if self.nets.is_empty() || !self.contains(peer) {
            return peer;
        }
        let mut hops: Vec<&str> = Vec::new();
        for value in forwarded_for {
            let Ok(text) = std::str::from_utf8(value) else { return peer };
            hops.extend(text.split(',').map(str::trim).filter(|hop| !hop.is_empty()));
        }
        if !hops.is_empty() {
            let mut client = peer;
            for hop in hops.iter().rev() {
                let Some(ip) = parse_hop(hop) else { return client };
                client = ip;
                if !self.contains(ip) {
                    return ip;
                }
            }
            return client;
        }
        real_ip
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|text| parse_hop(text.trim()))
            .unwrap_or(peer)
    }

    /// True when a trusted proxy in front of us says (`X-Forwarded-Proto`) the client used HTTPS.
    pub(crate) fn forwarded_https(&self, peer: IpAddr, proto: Option<&[u8]>) -> bool {
        self.contains(peer) && proto.is_some_and(|proto| proto.trim_ascii().eq_ignore_ascii_case(b"https"))
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Ok(addr) = std::net::SocketAddr::from_str(hop) {
        return Some(canonical(addr.ip()));
    }
    let bracketed = hop.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))?;
    IpAddr::from_str(bracketed).ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Headers = Vec<(&'static str, &'static str)>;

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        pairs.to_vec()
    }

    /// `client_ip` over test headers.
    trait Lookup {
        fn client_ip(&self, peer: IpAddr, headers: &Headers) -> IpAddr;
        fn https(&self, peer: IpAddr, headers: &Headers) -> bool;
    }

    impl Lookup for TrustedProxies {
        fn client_ip(&self, peer: IpAddr, headers: &Headers) -> IpAddr {
            let values = |name: &'static str| {
                headers.iter().filter(move |(key, _)| *key == name).map(|(_, value)| value.as_bytes())
            };
            TrustedProxies::client_ip(self, peer, values("x-forwarded-for"), values("x-real-ip").next())
        }

        fn https(&self, peer: IpAddr, headers: &Headers) -> bool {
            let proto = headers.iter().find(|(key, _)| *key == "x-forwarded-proto").map(|(_, value)| value.as_bytes());
            self.forwarded_https(peer, proto)
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "5.6.7.8")]);
        assert_eq!(Lookup::client_ip(&trusted, ip("203.0.113.9"), &spoofed), ip("203.0.113.9"));
        assert_eq!(Lookup::client_ip(&TrustedProxies::default(), ip("10.1.1.1"), &spoofed), ip("10.1.1.1"));
    }

    #[test]
    fn forwarded_for_is_walked_from_the_right() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".into(), "192.0.2.7".into()]);
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4"), ("x-forwarded-for", "192.0.2.7")]);
        assert_eq!(Lookup::client_ip(&trusted, ip("10.0.0.2"), &chain), ip("198.51.100.4"));
        let all_trusted = headers(&[("x-forwarded-for", "10.9.9.9, 192.0.2.7")]);
        assert_eq!(Lookup::client_ip(&trusted, ip("10.0.0.2"), &all_trusted), ip("10.9.9.9"));
        let garbage = headers(&[("x-forwarded-for", "nonsense, 10.3.3.3")]);
        assert_eq!(Lookup::client_ip(&trusted, ip("10.0.0.2"), &garbage), ip("10.3.3.3"));
        let ported = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(Lookup::client_ip(&trusted, ip("10.0.0.2"), &ported), ip("2001:db8::1"));
    }

    #[test]
    fn real_ip_is_used_without_forwarded_for() {
        let trusted = TrustedProxies::new(&["127.0.0.1".into()]);
        assert_eq!(
            Lookup::client_ip(&trusted, ip("127.0.0.1"), &headers(&[("x-real-ip", "198.51.100.1")])),
            ip("198.51.100.1")
        );
        assert_eq!(Lookup::client_ip(&trusted, ip("127.0.0.1"), &headers(&[("x-real-ip", "bad")])), ip("127.0.0.1"));
        assert_eq!(Lookup::client_ip(&trusted, ip("::ffff:127.0.0.1"), &headers(&[])), ip("127.0.0.1"));
    }

    #[test]
    fn nets_parse_and_match() {
        assert!(parse_net("10.0.0.0/8").is_some());
        assert!(parse_net(" 2001:db8::/32 ").is_some());
        assert!(parse_net("192.0.2.7").is_some());
        assert!(parse_net("10.0.0.0/33").is_none());
        assert!(parse_net("example.com").is_none());
        let trusted = TrustedProxies::new(&["10.1.2.3/8".into()]);
        assert!(trusted.contains(ip("10.200.0.1")));
        assert!(trusted.contains(ip("::ffff:10.0.0.1")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(trusted.https(ip("10.0.0.1"), &headers(&[("x-forwarded-proto", "HTTPS")])));
        assert!(!trusted.https(ip("11.0.0.1"), &headers(&[("x-forwarded-proto", "https")])));
    }
}
