//! Where an HTTP request carries its token, and the cookie exchange.
//!
//! A token in the URL is looked for in the query parameters `fctftoken`, `token`, `t`,
//! `access_token` (in that order), then in the last path segment. `fctftoken` is ours, so any
//! value there is taken as the token (a bad one is a 401). The other names and the path segment
//! are common in challenge apps too, so they only count when the value has the token shape, and
//! a value that then fails verification is left alone when the request also has a valid gateway
//! cookie (the app gets its own parameter). The redirect removes exactly the pair or segment that
//! held the token and keeps everything else byte for byte; its location is always a relative
//! path (leading slashes are collapsed so `//host` cannot become an open redirect).
//!
//! The gateway cookie `FCTF_Auth_Token` is set as the first `Set-Cookie` of the redirect; the
//! other cookies the request carried are expired after it (logging the browser out of the
//! previous challenge), and no deletion is ever emitted for the gateway cookie's own name.

use crate::domain::gateway_token::looks_like_token;

/// The gateway cookie's name.
pub(crate) const COOKIE_NAME: &str = "FCTF_Auth_Token";

const QUERY_NAMES: [&str; 4] = ["fctftoken", "token", "t", "access_token"];

/// A token found in the request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlToken {
    pub(crate) token: String,
    /// Where to redirect: the same path and query without the token.
    pub(crate) location: String,
    /// True for `fctftoken` (never handed to the app).
    pub(crate) dedicated: bool,
}

/// Finds a token in the URL (path and query of the request target).
pub(crate) fn url_token(path_and_query: &str) -> Option<UrlToken> {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let pairs: Vec<&str> = if query.is_empty() { Vec::new() } else { query.split('&').collect() };
    for (rank, name) in QUERY_NAMES.iter().enumerate() {
        for (index, pair) in pairs.iter().enumerate() {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            if decode_component(raw_key) != *name {
                continue;
            }
            let value = decode_component(raw_value);
            let dedicated = rank == 0;
            if value.is_empty() || (!dedicated && !looks_like_token(&value)) {
                continue;
            }
            let kept: Vec<&str> =
                pairs.iter().enumerate().filter(|(other, _)| *other != index).map(|(_, pair)| *pair).collect();
            return Some(UrlToken { token: value, location: location(path, &kept), dedicated });
        }
    }
    let (parent, last) = path.rsplit_once('/')?;
    if !looks_like_token(last) {
        return None;
    }
    Some(UrlToken { token: last.to_owned(), location: location(&format!("{parent}/"), &pairs), dedicated: false })
}

fn location(path: &str, pairs: &[&str]) -> String {
    let trimmed = path.trim_start_matches(['/', '\\']);
    let mut location = String::with_capacity(path.len() + 16);
    location.push('/');
    location.push_str(trimmed);
    if !pairs.is_empty() {
        location.push('?');
        location.push_str(&pairs.join("&"));
    }
    location
}

/// Percent-decodes a query component (`+` is a space); invalid UTF-8 is replaced.
fn decode_component(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `name=value` pairs of a `Cookie` header value.
pub(crate) fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    // Header values that reach here are visible ASCII (`to_str` succeeded), so ASCII trimming
    // is exact, and cheaper than the Unicode-aware kind on the request path.
    header.split(';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            return None;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        Some((name.trim_ascii(), trim_quotes(value.trim_ascii())))
    })
}

/// `value` without the double quotes around it (all of them, as `trim_matches('"')`).
fn trim_quotes(value: &str) -> &str {
    let bytes = value.as_bytes();
    let start = bytes.iter().position(|byte| *byte != b'"').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|byte| *byte != b'"').map_or(start, |last| last + 1);
    // Quotes are ASCII, so both ends are character boundaries.
    value.get(start..end).unwrap_or("")
}

/// The `Cookie` header without the gateway cookie; `None` when nothing is left.
pub(crate) fn strip_gateway_cookie(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split_once('=').map_or(*pair, |(name, _)| name).trim() != COOKIE_NAME)
        .collect();
    if kept.is_empty() { None } else { Some(kept.join("; ")) }
}

/// True for a name that may appear in a `Set-Cookie` (RFC 6265 token characters).
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte))
}

/// The gateway cookie, valid for `max_age` seconds.
pub(crate) fn gateway_cookie(token: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}", max_age.max(1))
}

/// Expiring `Set-Cookie` values for every other cookie of the request (deduplicated, never the
/// gateway cookie, names that cannot be echoed safely skipped).
pub(crate) fn expire_other_cookies<'a>(cookie_headers: impl Iterator<Item = &'a str>, secure: bool) -> Vec<String> {
    let secure = if secure { "; Secure" } else { "" };
    let mut names: Vec<&str> = Vec::new();
    for header in cookie_headers {
        for (name, _) in cookie_pairs(header) {
            if name != COOKIE_NAME && is_cookie_name(name) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            format!("{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax{secure}")
        })
        .collect()
}

/// True when a `Set-Cookie` value from an upstream names the gateway cookie (dropped, so a
/// challenge can neither overwrite nor delete it).
pub(crate) fn sets_gateway_cookie(set_cookie: &[u8]) -> bool {
    let text = String::from_utf8_lossy(set_cookie);
    let name = text.split(';').next().and_then(|pair| pair.split('=').next()).unwrap_or("");
    name.trim().eq_ignore_ascii_case(COOKIE_NAME)
}

/// A path fit for logs: a last segment shaped like a token is masked.
pub(crate) fn loggable_path(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, last)) if looks_like_token(last) => format!("{parent}/[token]"),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJleHAiOjEsInJvdXRlIjoiYSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";

    fn find(uri: &str) -> Option<UrlToken> {
        url_token(uri)
    }

    #[test]
    fn each_query_name_is_found_and_stripped() {
        for name in QUERY_NAMES {
            let found = find(&format!("/app/x?a=1&{name}={TOKEN}&b=%20two")).unwrap();
            assert_eq!(found.token, TOKEN, "{name}");
            assert_eq!(found.location, "/app/x?a=1&b=%20two", "{name}");
            assert_eq!(found.dedicated, name == "fctftoken");
        }
        assert_eq!(find(&format!("/?fctftoken={TOKEN}")).unwrap().location, "/");
    }

    #[test]
    fn priority_and_shape_rules() {
        let found = find(&format!("/?t=short&token={TOKEN}")).unwrap();
        assert_eq!(found.location, "/?t=short");
        let both = find(&format!("/?token={TOKEN}&fctftoken=other.value")).unwrap();
        assert_eq!(both.token, "other.value", "fctftoken wins and takes any value");
        assert_eq!(both.location, format!("/?token={TOKEN}"));
        assert!(find("/?t=42&token=abc").is_none());
        assert!(find("/?fctftoken=").is_none());
    }

    #[test]
    fn path_segment_form() {
        let found = find(&format!("/{TOKEN}")).unwrap();
        assert_eq!(found.location, "/");
        let nested = find(&format!("/a/b/{TOKEN}?keep=1")).unwrap();
        assert_eq!((nested.token.as_str(), nested.location.as_str()), (TOKEN, "/a/b/?keep=1"));
        assert!(find("/static/main.js").is_none());
        assert!(find("/static/app.bundle.min.js").is_none());
    }

    #[test]
    fn redirect_never_leaves_the_host() {
        assert_eq!(find(&format!("//evil.example/{TOKEN}")).unwrap().location, "/evil.example/");
        assert_eq!(find(&format!("/\\evil.example?fctftoken={TOKEN}")).unwrap().location, "/evil.example");
    }

    #[test]
    fn query_components_are_decoded() {
        assert_eq!(decode_component("a%2Eb+c%zz%4"), "a.b c%zz%4");
        let found = find(&format!("/?%74oken={}", TOKEN.replace('.', "%2E"))).unwrap();
        assert_eq!(found.token, TOKEN);
    }

    #[test]
    fn cookies_are_stripped_and_expired() {
        assert_eq!(strip_gateway_cookie("a=1; FCTF_Auth_Token=x; b=2").as_deref(), Some("a=1; b=2"));
        assert_eq!(strip_gateway_cookie("FCTF_Auth_Token=x"), None);
        assert_eq!(strip_gateway_cookie("fctf_auth_token=x").as_deref(), Some("fctf_auth_token=x"));
        let expired = expire_other_cookies(["a=1; FCTF_Auth_Token=x", "a=2; b=3; bad,name=4"].into_iter(), true);
        assert_eq!(expired.len(), 2);
        assert!(expired[0].starts_with("a=; Path=/; Max-Age=0;") && expired[0].ends_with("; Secure"));
        assert!(expired[1].starts_with("b=;"));
        assert_eq!(gateway_cookie("tok", 0, false), "FCTF_Auth_Token=tok; Path=/; Max-Age=1; HttpOnly; SameSite=Lax");
        assert!(sets_gateway_cookie(b" fctf_auth_token=; Max-Age=0"));
        assert!(!sets_gateway_cookie(b"session=1"));
    }

    #[test]
    fn cookie_pairs_trim_spaces_and_quotes() {
        let pairs: Vec<_> = cookie_pairs(" a=\"x\" ;; b=\"\"q\"\" ;c; d=\"\" ").collect();
        assert_eq!(pairs, vec![("a", "x"), ("b", "q"), ("c", ""), ("d", "")]);
        assert_eq!(trim_quotes("\""), "");
        assert_eq!(trim_quotes("a\"b"), "a\"b");
    }

    #[test]
    fn logged_paths_mask_tokens() {
        assert_eq!(loggable_path(&format!("/a/{TOKEN}")), "/a/[token]");
        assert_eq!(loggable_path("/a/b"), "/a/b");
    }
}
