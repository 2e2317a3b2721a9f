//! Verification of password hashes imported from CTFd: passlib `bcrypt_sha256`, version 2.
//!
//! Format `$bcrypt-sha256$v=2,t=<2a|2b>,r=<rounds>$<salt22>$<digest31>`. The password is first
//! keyed into `base64(HMAC-SHA256(key = salt22, msg = password))` (44 characters, so bcrypt's
//! 72-byte limit never truncates it), then checked with plain bcrypt against
//! `$<t>$<rounds:02>$<salt22><digest31>`. fctf never writes this format: a successful login
//! rehashes the password with argon2id (see `verify_any`).

use base64::Engine;
use ring::hmac;

/// The prefix of every passlib `bcrypt_sha256` hash.
pub const PREFIX: &str = "$bcrypt-sha256$";

const BCRYPT_ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why a stored hash could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasslibError {
    /// The text is not a version-2 `bcrypt_sha256` hash.
    #[error("malformed bcrypt_sha256 hash")]
    Malformed,
}

struct Parsed<'a> {
    variant: &'a str,
    rounds: u32,
    salt: &'a str,
    digest: &'a str,
}

fn in_alphabet(text: &str) -> bool {
    text.bytes().all(|byte| BCRYPT_ALPHABET.contains(&byte))
}

fn parse(hash: &str) -> Result<Parsed<'_>, PasslibError> {
    let rest = hash.strip_prefix(PREFIX).ok_or(PasslibError::Malformed)?;
    let mut parts = rest.split('$');
    let (Some(settings), Some(salt), Some(digest), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PasslibError::Malformed);
    };
    let mut fields = settings.split(',');
    let (Some("v=2"), Some(variant), Some(rounds), None) = (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PasslibError::Malformed);
    };
    let variant = variant.strip_prefix("t=").ok_or(PasslibError::Malformed)?;
    if variant != "2a" && variant != "2b" {
        return Err(PasslibError::Malformed);
    }
    let rounds = rounds.strip_prefix("r=").ok_or(PasslibError::Malformed)?;
    if rounds.is_empty() || rounds.len() > 2 || !rounds.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(PasslibError::Malformed);
    }
    let rounds: u32 = rounds.parse().map_err(|_| PasslibError::Malformed)?;
    if !(4..=31).contains(&rounds)
        || salt.len() != 22
        || digest.len() != 31
        || !in_alphabet(salt)
        || !in_alphabet(digest)
    {
        return Err(PasslibError::Malformed);
    }
    Ok(Parsed { variant, rounds, salt, digest })
}

/// True when `hash` looks like a passlib `bcrypt_sha256` hash (of any version).
pub fn is_bcrypt_sha256(hash: &str) -> bool {
    hash.starts_with(PREFIX)
}

/// Checks `password` against a version-2 `bcrypt_sha256` hash.
pub fn verify_bcrypt_sha256(password: &str, hash: &str) -> Result<bool, PasslibError> {
    let parsed = parse(hash)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, parsed.salt.as_bytes());
    let tag = hmac::sign(&key, password.as_bytes());
    let prehashed = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let inner = format!("${}${:02}${}{}", parsed.variant, parsed.rounds, parsed.salt, parsed.digest);
    bcrypt::verify(prehashed.as_bytes(), &inner).map_err(|_| PasslibError::Malformed)
}

/// The outcome of checking a password against any hash fctf accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password matches; `rehash` asks the caller to store a fresh argon2id hash.
    Valid { rehash: bool },
    /// The password does not match.
    Invalid,
    /// The stored hash is in no known format.
    Malformed,
}

/// Checks a password against an argon2 PHC string or an imported CTFd hash.
pub fn verify_any(password: &str, hash: &str) -> PasswordCheck {
    if is_bcrypt_sha256(hash) {
        return match verify_bcrypt_sha256(password, hash) {
            Ok(true) => PasswordCheck::Valid { rehash: true },
            Ok(false) => PasswordCheck::Invalid,
            Err(_) => PasswordCheck::Malformed,
        };
    }
    if argon2::password_hash::PasswordHash::new(hash).is_err() {
        return PasswordCheck::Malformed;
    }
    if super::verify_password(password, hash) {
        PasswordCheck::Valid { rehash: !hash.starts_with("$argon2id$") }
    } else {
        PasswordCheck::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A passlib-generated hash of `Evoluti0n` (CTFd's default parameters, `t=2b,r=12`).
    const PASSLIB_VECTOR: &str = "$bcrypt-sha256$v=2,t=2b,r=12$0mZ35JSikYcRUxPds2IKK.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC";

    #[test]
    fn verifies_a_passlib_hash() {
        assert_eq!(verify_bcrypt_sha256("Evoluti0n", PASSLIB_VECTOR), Ok(true));
        assert_eq!(verify_bcrypt_sha256("evoluti0n", PASSLIB_VECTOR), Ok(false));
        assert_eq!(verify_any("Evoluti0n", PASSLIB_VECTOR), PasswordCheck::Valid { rehash: true });
        assert_eq!(verify_any("nope", PASSLIB_VECTOR), PasswordCheck::Invalid);
    }

    #[test]
    fn round_trips_a_locally_built_hash() {
        // Build a v2 hash the way passlib does, with a cheap cost, and check it.
        let salt_bytes = [7u8; 16];
        let salt22 = {
            let inner = bcrypt::hash_with_salt(b"x", 4, salt_bytes).unwrap().format_for_version(bcrypt::Version::TwoB);
            inner[7..29].to_owned()
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, salt22.as_bytes());
        let prehashed = base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, b"S3cret!pw").as_ref());
        let inner = bcrypt::hash_with_salt(prehashed.as_bytes(), 4, salt_bytes)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        let digest31 = &inner[29..];
        let hash = format!("$bcrypt-sha256$v=2,t=2a,r=4${salt22}${digest31}");
        assert_eq!(verify_bcrypt_sha256("S3cret!pw", &hash), Ok(true));
        assert_eq!(verify_bcrypt_sha256("S3cret!pW", &hash), Ok(false));
    }

    #[test]
    fn rejects_malformed_hashes() {
        for hash in [
            "$bcrypt-sha256$2b,12$0mZ35JSikYcRUxPds2IKK.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC",
            "$bcrypt-sha256$v=2,t=2y,r=12$0mZ35JSikYcRUxPds2IKK.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC",
            "$bcrypt-sha256$v=2,t=2b,r=123$0mZ35JSikYcRUxPds2IKK.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC",
            "$bcrypt-sha256$v=2,t=2b,r=12$0mZ35JSikYcRUxPds2IKK$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC",
            "$bcrypt-sha256$v=2,t=2b,r=12$0mZ35JSikYcRUxPds2IKK.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC$",
            "$bcrypt-sha256$v=2,t=2b,r=12$0mZ35JSikYcRUxPds2IK!.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC",
        ] {
            assert_eq!(verify_bcrypt_sha256("Evoluti0n", hash), Err(PasslibError::Malformed), "{hash}");
        }
        assert_eq!(verify_any("x", "plain text"), PasswordCheck::Malformed);
    }

    #[test]
    fn argon2_hashes_verify_without_rehash() {
        let hash = super::super::hash_password("pw").unwrap();
        assert_eq!(verify_any("pw", &hash), PasswordCheck::Valid { rehash: false });
        assert_eq!(verify_any("px", &hash), PasswordCheck::Invalid);
    }
}
