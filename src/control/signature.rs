//! Signed internal requests, v1 (`argo/README.md` §3): api → center calls and workflow → center
//! callbacks carry an HMAC-SHA256, keyed with the internal secret, over
//!
//! ```text
//! METHOD "\n" PATH "\n" TIMESTAMP "\n" lowercase_hex(SHA-256(body bytes))
//! ```
//!
//! in the headers `X-Fctf-Key-Id`, `X-Fctf-Timestamp` (Unix seconds) and `X-Fctf-Signature`
//! (64 lowercase hex digits). The receiver recomputes the MAC over the bytes it received,
//! compares in constant time (`ring::hmac::verify`), refuses timestamps more than
//! [`FRESHNESS_WINDOW_SECS`] away from its clock, and refuses a signature it has already
//! accepted within the window (the replay memory lives in the cache, see center). Pure logic.
//!
//! Decision: two legitimate identical requests in the same second would share a signature and
//! the second would be refused as a replay, so fctf's own client puts a random `nonce` in every
//! body (the workflow callback never repeats a body within a second: each retry is re-signed
//! with a new timestamp).

use ring::hmac;
use sha2::{Digest, Sha256};

/// Header carrying the key id.
pub const KEY_ID_HEADER: &str = "x-fctf-key-id";
/// Header carrying the Unix timestamp.
pub const TIMESTAMP_HEADER: &str = "x-fctf-timestamp";
/// Header carrying the hex MAC.
pub const SIGNATURE_HEADER: &str = "x-fctf-signature";
/// Largest accepted distance between the request's timestamp and the receiver's clock.
pub const FRESHNESS_WINDOW_SECS: i64 = 60;

/// The string that is signed.
pub fn canonical(method: &str, path: &str, timestamp: i64, body: &[u8]) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{}\n{path}\n{timestamp}\n{body_hash}", method.to_ascii_uppercase())
}

/// The hex signature of a request.
pub fn sign(key: &[u8], method: &str, path: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hex::encode(hmac::sign(&key, canonical(method, path, timestamp, body).as_bytes()).as_ref())
}

/// The signature headers as received (raw header values).
#[derive(Debug, Clone, Copy)]
pub struct ReceivedSignature<'a> {
    pub key_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a signature was refused. Messages never contain the expected MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing request signature")]
    Missing,
    #[error("unknown signing key id")]
    UnknownKey,
    #[error("malformed request signature")]
    Malformed,
    #[error("request timestamp outside the accepted window")]
    Stale,
    #[error("invalid request signature")]
    Mismatch,
    #[error("replayed request")]
    Replayed,
}

/// Verifies a request against `key` (whose id is `key_id`) at `now` (Unix seconds). On success
/// returns the signature, which the caller must remember for the window to refuse replays.
pub fn verify<'a>(
    key: &[u8],
    key_id: &str,
    received: ReceivedSignature<'a>,
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Result<&'a str, SignatureError> {
    let (Some(timestamp), Some(signature)) = (received.timestamp, received.signature) else {
        return Err(SignatureError::Missing);
    };
    if let Some(received_key_id) = received.key_id
        && received_key_id != key_id
    {
        return Err(SignatureError::UnknownKey);
    }
    if timestamp.is_empty() || timestamp.len() > 19 || !timestamp.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let timestamp: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    if signature.len() != 64 || !signature.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(SignatureError::Malformed);
    }
    let mac = hex::decode(signature).map_err(|_| SignatureError::Malformed)?;
    if (now - timestamp).abs() > FRESHNESS_WINDOW_SECS {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, canonical(method, path, timestamp, body).as_bytes(), &mac)
        .map_err(|_| SignatureError::Mismatch)?;
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test-internal-key";
    const BODY: &[u8] = br#"{"challenge_id":12,"kind":"build"}"#;

    /// The test vector of `argo/README.md` §3 (computed there with `openssl dgst -hmac`).
    #[test]
    fn matches_the_contract_test_vector() {
        assert_eq!(
            sign(KEY, "POST", "/internal/workflows/callback", 1_712_345_678, BODY),
            "2f16fe386a5ff1a6da3ca8cf45bb30d7be2678c824075d7766d69cfcb282f7e6"
        );
    }

    fn received<'a>(timestamp: &'a str, signature: &'a str) -> ReceivedSignature<'a> {
        ReceivedSignature { key_id: Some("k1"), timestamp: Some(timestamp), signature: Some(signature) }
    }

    #[test]
    fn verifies_fresh_requests_and_refuses_every_alteration() {
        let now = 1_712_345_678;
        let signature = sign(KEY, "POST", "/p", now, BODY);
        let stamp = now.to_string();
        assert_eq!(
            verify(KEY, "k1", received(&stamp, &signature), "POST", "/p", BODY, now + 60),
            Ok(signature.as_str())
        );
        assert_eq!(
            verify(KEY, "k1", received(&stamp, &signature), "post", "/p", BODY, now - 60),
            Ok(signature.as_str())
        );
        let check = |method: &str, path: &str, body: &[u8], at: i64| {
            verify(KEY, "k1", received(&stamp, &signature), method, path, body, at)
        };
        assert_eq!(check("GET", "/p", BODY, now), Err(SignatureError::Mismatch));
        assert_eq!(check("POST", "/q", BODY, now), Err(SignatureError::Mismatch));
        assert_eq!(check("POST", "/p", b"{}", now), Err(SignatureError::Mismatch));
        assert_eq!(check("POST", "/p", BODY, now + 61), Err(SignatureError::Stale));
        assert_eq!(check("POST", "/p", BODY, now - 61), Err(SignatureError::Stale));
        assert_eq!(
            verify(b"other", "k1", received(&stamp, &signature), "POST", "/p", BODY, now),
            Err(SignatureError::Mismatch)
        );
        let other_stamp = (now + 1).to_string();
        assert_eq!(
            verify(KEY, "k1", received(&other_stamp, &signature), "POST", "/p", BODY, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_missing_malformed_and_foreign_keys() {
        let now = 100;
        let signature = sign(KEY, "POST", "/p", now, b"");
        let none = ReceivedSignature { key_id: None, timestamp: None, signature: Some(&signature) };
        assert_eq!(verify(KEY, "k1", none, "POST", "/p", b"", now), Err(SignatureError::Missing));
        let foreign = ReceivedSignature { key_id: Some("k0"), timestamp: Some("100"), signature: Some(&signature) };
        assert_eq!(verify(KEY, "k1", foreign, "POST", "/p", b"", now), Err(SignatureError::UnknownKey));
        let upper = signature.to_uppercase();
        for (stamp, mac) in
            [("-100", signature.as_str()), ("1e2", signature.as_str()), ("100", "zz"), ("100", upper.as_str())]
        {
            assert_eq!(verify(KEY, "k1", received(stamp, mac), "POST", "/p", b"", now), Err(SignatureError::Malformed));
        }
        let no_key_id = ReceivedSignature { key_id: None, timestamp: Some("100"), signature: Some(&signature) };
        assert!(verify(KEY, "k1", no_key_id, "POST", "/p", b"", now).is_ok());
    }
}
