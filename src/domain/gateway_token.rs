//! Gateway access tokens: the FCTF wire format, minted by the listener when an instance becomes
//! Running and verified by the gateway on every request and TCP session.
//!
//! ```text
//! token      = payloadB64 "." sigB64
//! payloadB64 = base64url_nopad(JSON {"exp": <unix seconds>, "route": "<route>"[, "iid": <id>]})
//! sigB64     = base64url_nopad(HMAC-SHA256(key = gateway secret, msg = ASCII(payloadB64)))
//! ```
//!
//! The format is exactly the original's, so third-party token generators keep working; the
//! optional `iid` field (the instance id) is ours and lets the gateway refuse the token of a
//! stopped instance. Verification follows the original order (shape, key, signature encoding,
//! constant-time MAC, payload encoding, JSON, content, expiry) and keeps its error strings.
//!
//! Decisions where the original is silent: base64url decoding is strict (no padding, no
//! non-canonical trailing bits), so every token has exactly one encoding; unknown payload fields
//! are ignored (forward compatibility), duplicate fields are refused as `invalid payload json`;
//! expiry times in error messages are printed in UTC (the domain layer reads no local time
//! zone). Pure logic, no I/O.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::domain::InstanceId;

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Expiry, Unix seconds; the token is valid while `now <= exp`.
    pub exp: i64,
    /// The instance's route: an app name (expanded to a cluster service) or `host:port`.
    pub route: String,
    /// The instance the token belongs to; absent in tokens of third-party generators.
    pub instance_id: Option<InstanceId>,
}

/// Why a token was refused. `Display` gives the FCTF error strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not exactly two dot-separated parts.
    Format,
    /// The verification key is empty.
    MissingKey,
    /// The signature part is not base64url.
    SignatureEncoding,
    /// The MAC does not match.
    Signature,
    /// The payload part is not base64url.
    PayloadEncoding,
    /// The payload is not the expected JSON object.
    PayloadJson,
    /// `exp <= 0` or an empty route.
    PayloadContent,
    /// `now > exp`.
    Expired { exp: i64, now: i64 },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format => f.write_str("invalid token format"),
            Self::MissingKey => f.write_str("missing PRIVATE_KEY"),
            Self::SignatureEncoding => f.write_str("invalid signature encoding"),
            Self::Signature => f.write_str("invalid token signature"),
            Self::PayloadEncoding => f.write_str("invalid payload encoding"),
            Self::PayloadJson => f.write_str("invalid payload json"),
            Self::PayloadContent => f.write_str("invalid payload content"),
            Self::Expired { exp, now } => {
                write!(f, "token expired (Exp: {}, Server: {})", format_unix(*exp), format_unix(*now))
            }
        }
    }
}

impl std::error::Error for TokenError {}

fn format_unix(seconds: i64) -> String {
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => seconds.to_string(),
    }
}

/// The payload as written: property order `exp`, `route`, then ours.
#[derive(Serialize)]
struct PayloadOut<'a> {
    exp: i64,
    route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iid: Option<i64>,
}

/// The payload as read; other fields are ignored.
#[derive(Deserialize)]
struct PayloadIn {
    exp: i64,
    route: String,
    #[serde(default)]
    iid: Option<i64>,
}

/// Mints a token for `route`, valid until `exp` (Unix seconds), bound to `instance_id` when
/// given (the gateway then refuses it as soon as the instance stops).
pub fn mint(secret: &[u8], exp: i64, route: &str, instance_id: Option<InstanceId>) -> String {
    let payload = PayloadOut { exp, route, iid: instance_id.map(InstanceId::get) };
    // Serialising a struct of an integer, a string and an optional integer cannot fail.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let payload_b64 = URL_SAFE_NO_PAD.encode(json);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, payload_b64.as_bytes());
    let mut token = payload_b64;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    token
}

/// Verifies `token` with `secret` at `now` (Unix seconds).
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<TokenClaims, TokenError> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    verify_with_key(&key, secret.is_empty(), token, now)
}

/// A verification key prepared once (the HMAC key schedule is not redone per token).
#[derive(Clone)]
pub struct Verifier {
    key: hmac::Key,
    key_is_empty: bool,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier")
    }
}

impl Verifier {
    /// Prepares the key.
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret), key_is_empty: secret.is_empty() }
    }

    /// Same as [`verify`] with the prepared key.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenClaims, TokenError> {
        verify_with_key(&self.key, self.key_is_empty, token, now)
    }
}

fn verify_with_key(key: &hmac::Key, key_is_empty: bool, token: &str, now: i64) -> Result<TokenClaims, TokenError> {
    let mut parts = token.split('.');
    let (Some(payload_b64), Some(sig_b64), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Format);
    };
    if key_is_empty {
        return Err(TokenError::MissingKey);
    }
    let signature = URL_SAFE_NO_PAD.decode(sig_b64).map_err(|_| TokenError::SignatureEncoding)?;
    hmac::verify(key, payload_b64.as_bytes(), &signature).map_err(|_| TokenError::Signature)?;
    let json = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| TokenError::PayloadEncoding)?;
    let payload: PayloadIn = serde_json::from_slice(&json).map_err(|_| TokenError::PayloadJson)?;
    if payload.exp <= 0 || payload.route.is_empty() {
        return Err(TokenError::PayloadContent);
    }
    if now > payload.exp {
        return Err(TokenError::Expired { exp: payload.exp, now });
    }
    Ok(TokenClaims { exp: payload.exp, route: payload.route, instance_id: payload.iid.map(InstanceId) })
}

/// True when `candidate` has the shape of a token: base64url characters with exactly one `.`
/// and at least 16 characters. Used to recognise a token in the last path segment.
pub fn looks_like_token(candidate: &str) -> bool {
    candidate.len() >= 16
        && candidate.bytes().filter(|byte| *byte == b'.').count() == 1
        && candidate.bytes().all(|byte| byte == b'.' || byte == b'-' || byte == b'_' || byte.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"gateway-test-key";

    #[test]
    fn minted_token_verifies_and_keeps_property_order() {
        let token = mint(KEY, 2_000_000_000, "team-1-2-web", Some(InstanceId(42)));
        let (payload, _) = token.split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(json, r#"{"exp":2000000000,"route":"team-1-2-web","iid":42}"#);
        let claims = verify(KEY, &token, 1_900_000_000).unwrap();
        assert_eq!(
            claims,
            TokenClaims { exp: 2_000_000_000, route: "team-1-2-web".into(), instance_id: Some(InstanceId(42)) }
        );
        assert!(looks_like_token(&token));
    }

    #[test]
    fn token_without_instance_id_is_the_original_format() {
        let token = mint(KEY, 100, "app", None);
        let (payload, _) = token.split_once('.').unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(payload).unwrap(), br#"{"exp":100,"route":"app"}"#);
        assert_eq!(verify(KEY, &token, 100).unwrap().instance_id, None);
    }

    #[test]
    fn third_party_token_with_extra_fields_verifies() {
        let payload_b64 = URL_SAFE_NO_PAD.encode(br#"{"exp":500,"route":"10.0.0.1:80","who":"bot"}"#);
        let key = hmac::Key::new(hmac::HMAC_SHA256, KEY);
        let sig = URL_SAFE_NO_PAD.encode(hmac::sign(&key, payload_b64.as_bytes()).as_ref());
        let claims = verify(KEY, &format!("{payload_b64}.{sig}"), 10).unwrap();
        assert_eq!(claims.route, "10.0.0.1:80");
    }

    fn signed(payload: &[u8]) -> String {
        let payload_b64 = URL_SAFE_NO_PAD.encode(payload);
        let key = hmac::Key::new(hmac::HMAC_SHA256, KEY);
        format!("{payload_b64}.{}", URL_SAFE_NO_PAD.encode(hmac::sign(&key, payload_b64.as_bytes()).as_ref()))
    }

    #[test]
    fn errors_follow_the_original_order_and_strings() {
        let good = mint(KEY, 100, "app", None);
        assert_eq!(verify(KEY, "nodot", 1).unwrap_err().to_string(), "invalid token format");
        assert_eq!(verify(KEY, "a.b.c", 1).unwrap_err(), TokenError::Format);
        assert_eq!(verify(b"", &good, 1).unwrap_err().to_string(), "missing PRIVATE_KEY");
        assert_eq!(verify(KEY, "abc.!!", 1).unwrap_err().to_string(), "invalid signature encoding");
        assert_eq!(verify(KEY, "abc.AAAA", 1).unwrap_err().to_string(), "invalid token signature");
        assert_eq!(verify(b"other", &good, 1).unwrap_err(), TokenError::Signature);
        assert_eq!(verify(KEY, &signed(b"not json"), 1).unwrap_err().to_string(), "invalid payload json");
        assert_eq!(verify(KEY, &signed(br#"{"exp":1.5,"route":"a"}"#), 1).unwrap_err(), TokenError::PayloadJson);
        assert_eq!(
            verify(KEY, &signed(br#"{"exp":5,"route":"a","route":"b"}"#), 1).unwrap_err(),
            TokenError::PayloadJson
        );
        assert_eq!(
            verify(KEY, &signed(br#"{"exp":0,"route":"a"}"#), 1).unwrap_err().to_string(),
            "invalid payload content"
        );
        assert_eq!(verify(KEY, &signed(br#"{"exp":5,"route":""}"#), 1).unwrap_err(), TokenError::PayloadContent);
        let expired = verify(KEY, &good, 101).unwrap_err();
        assert_eq!(expired, TokenError::Expired { exp: 100, now: 101 });
        assert_eq!(
            expired.to_string(),
            "token expired (Exp: 1970-01-01 00:01:40 UTC, Server: 1970-01-01 00:01:41 UTC)"
        );
    }

    #[test]
    fn payload_signed_but_not_base64_is_an_encoding_error() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, KEY);
        let payload = "not*base64";
        let sig = URL_SAFE_NO_PAD.encode(hmac::sign(&key, payload.as_bytes()).as_ref());
        assert_eq!(verify(KEY, &format!("{payload}.{sig}"), 1).unwrap_err().to_string(), "invalid payload encoding");
    }

    #[test]
    fn padded_or_non_canonical_signatures_are_refused() {
        let good = mint(KEY, 100, "app", None);
        assert_eq!(verify(KEY, &format!("{good}="), 1).unwrap_err(), TokenError::SignatureEncoding);
        // The 32-byte MAC leaves 2 unused bits in the last of 43 characters; setting them must
        // not give a second valid spelling of the same token.
        let (payload, sig) = good.split_once('.').unwrap();
        let mut chars: Vec<u8> = sig.bytes().collect();
        let last = chars.len() - 1;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|c| *c == chars[last]).unwrap();
        chars[last] = alphabet[index ^ 1];
        let variant = format!("{payload}.{}", String::from_utf8(chars).unwrap());
        assert!(verify(KEY, &variant, 1).is_err());
    }

    #[test]
    fn verifier_matches_the_free_function() {
        let verifier = Verifier::new(KEY);
        let token = mint(KEY, 100, "app", Some(InstanceId(7)));
        assert_eq!(verifier.verify(&token, 1), verify(KEY, &token, 1));
        assert_eq!(Verifier::new(b"").verify(&token, 1), Err(TokenError::MissingKey));
    }

    #[test]
    fn token_shape_detection() {
        assert!(looks_like_token("abcdefghijklmn.p"), "16 characters");
        assert!(!looks_like_token("abcdefghijklm.p"), "15 characters");
        assert!(!looks_like_token("abcdefghijklmnopq"), "no dot");
        assert!(!looks_like_token("abcdefgh.ijklmno.pq"), "two dots");
        assert!(!looks_like_token("abcdefghijklmno+p.x"), "not base64url");
    }
}
