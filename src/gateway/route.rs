//! Token route → upstream address, and the team/challenge labels of access logs.
//!
//! A route with none of `:`, `.`, `/` is an app name (the instance namespace) and expands to the
//! cluster service `R-svc.R.<domain>:<port>`; any other route is used verbatim as `host:port`
//! (the local runtime mints `127.0.0.1:<port>`). Routes only come from tokens we signed, so
//! naming any host is acceptable; a route that is not a valid authority is refused as an
//! unreachable upstream rather than guessed at.

use std::str::FromStr;

use http::uri::Authority;

/// Expands routes to upstream authorities.
#[derive(Debug, Clone)]
pub(crate) struct RouteMapper {
    domain: String,
    port: u16,
}

impl RouteMapper {
    pub(crate) fn new(domain: &str, port: u16) -> Self {
        Self { domain: domain.trim_matches('.').to_owned(), port }
    }

    /// The upstream `host[:port]` of `route`, or `None` when it cannot name one.
    pub(crate) fn authority(&self, route: &str) -> Option<Authority> {
        let text = if route.contains([':', '.', '/']) {
            route.to_owned()
        } else {
            format!("{route}-svc.{route}.{}:{}", self.domain, self.port)
        };
        if text.contains(['/', '@', '?', '#']) || text.chars().any(char::is_whitespace) {
            return None;
        }
        let authority = Authority::from_str(&text).ok()?;
        let names_port = text.rsplit_once(':').is_some_and(|(_, tail)| !tail.ends_with(']'));
        if names_port && authority.port_u16().is_none() {
            return None;
        }
        Some(authority)
    }
}

/// `(team, challenge)` from the leftmost DNS label of a route (after dropping the port and a
/// `-svc` suffix) when it reads `team-<int>-<int>-…`; `None` for shared or foreign routes.
pub(crate) fn team_and_challenge(route: &str) -> Option<(i64, i64)> {
    let host = match route.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => host,
        _ => route,
    };
    let label = host.split('.').next()?;
    let label = label.strip_suffix("-svc").unwrap_or(label);
    let mut parts = label.strip_prefix("team-")?.split('-');
    let team = parts.next()?.parse().ok()?;
    let challenge = parts.next()?.parse().ok()?;
    Some((team, challenge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_expand_and_addresses_are_verbatim() {
        let mapper = RouteMapper::new("svc.cluster.local", 3333);
        assert_eq!(
            mapper.authority("team-5-12-web-abc").unwrap().as_str(),
            "team-5-12-web-abc-svc.team-5-12-web-abc.svc.cluster.local:3333"
        );
        assert_eq!(mapper.authority("127.0.0.1:20001").unwrap().as_str(), "127.0.0.1:20001");
        assert_eq!(mapper.authority("[::1]:80").unwrap().as_str(), "[::1]:80");
        assert_eq!(mapper.authority("challenge.example").unwrap().as_str(), "challenge.example");
        assert!(mapper.authority("a/b").is_none());
        assert!(mapper.authority("user@host:1").is_none());
        assert!(mapper.authority("bad name").is_none());
        assert!(mapper.authority("x:notaport").is_none());
    }

    #[test]
    fn log_labels_parse_team_and_challenge() {
        assert_eq!(team_and_challenge("team-5-12-web"), Some((5, 12)));
        assert_eq!(team_and_challenge("team-5-12-web-svc.team-5-12-web.svc.cluster.local:3333"), Some((5, 12)));
        assert_eq!(team_and_challenge("team-7-3-svc:80"), Some((7, 3)));
        assert_eq!(team_and_challenge("team-shared-3-x"), None);
        assert_eq!(team_and_challenge("127.0.0.1:20001"), None);
    }
}
