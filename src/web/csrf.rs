//! CSRF protection of the server-rendered UIs (portal and admin UI).
//!
//! Double-submit with a keyed token: every browser gets a random `fctf_csrf` cookie (HttpOnly,
//! SameSite=Lax); forms carry `csrf` = hex HMAC-SHA256 of that cookie under a key derived from
//! the process's JWT secret. A POST is accepted only when the form's token is the MAC of the
//! cookie the browser sent, so a cross-site page can neither read nor forge it (it would need
//! the cookie value and the server key), and a cookie planted by a sibling domain is useless
//! without the key. Tokens are checked in constant time (`ring::hmac::verify`).

use rand::RngCore;
use ring::hmac;

/// Name of the per-browser CSRF cookie.
pub const COOKIE: &str = "fctf_csrf";
/// Name of the form field carrying the token.
pub const FIELD: &str = "csrf";

/// Derives the MAC key from the server secret (domain-separated from other uses).
pub fn key(secret: &[u8]) -> hmac::Key {
    let base = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let derived = hmac::sign(&base, b"fctf web csrf v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

/// A fresh random cookie value (32 bytes, hex).
pub fn new_cookie_value() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The form token for a cookie value.
pub fn token_for(key: &hmac::Key, cookie_value: &str) -> String {
    hex::encode(hmac::sign(key, cookie_value.as_bytes()).as_ref())
}

/// True when `token` is the form token of `cookie_value`.
pub fn verify(key: &hmac::Key, cookie_value: &str, token: &str) -> bool {
    if cookie_value.len() < 32 {
        return false;
    }
    match hex::decode(token.trim()) {
        Ok(tag) => hmac::verify(key, cookie_value.as_bytes(), &tag).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_to_cookie_and_key() {
        let key_a = key(b"secret a");
        let cookie = new_cookie_value();
        let token = token_for(&key_a, &cookie);
        assert!(verify(&key_a, &cookie, &token));
        assert!(!verify(&key(b"secret b"), &cookie, &token));
        assert!(!verify(&key_a, &new_cookie_value(), &token));
        assert!(!verify(&key_a, &cookie, "zz"));
        assert!(!verify(&key_a, &cookie, ""));
        assert!(!verify(&key_a, "short", &token_for(&key_a, "short")));
    }
}
