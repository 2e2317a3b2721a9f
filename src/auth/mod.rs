//! Credentials: password hashing and API tokens.
//!
//! New password hashes are argon2id (PHC strings). API tokens are 32 random bytes shown once
//! as `fctf_<hex>`; only their SHA-256 is stored, so a leaked database leaks no usable token.

pub mod passlib;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::UserId;
use crate::store::{NewUser, Store, UserRole};

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("password hashing failed: {error}"))?;
    Ok(hash.to_string())
}

/// Checks a password against an argon2 PHC hash; false for any mismatch or malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A new random API token (shown once) and the digest to store.
pub fn new_api_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("fctf_{}", hex::encode(bytes));
    let digest = token_digest(&token);
    (token, digest)
}

/// The stored form of an API token.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password of 20 URL-safe characters.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// What `create_admin` made.
#[derive(Debug)]
pub struct CreatedAdmin {
    pub user_id: UserId,
    pub name: String,
    /// Set when no password was given and one was generated.
    pub generated_password: Option<String>,
    /// The admin API token, shown once.
    pub api_token: String,
}

/// Creates an admin account (verified) and an admin API token for it.
pub async fn create_admin(store: &Store, name: &str, password: Option<&str>) -> anyhow::Result<CreatedAdmin> {
    create_staff(store, name, password, UserRole::Admin).await
}

/// Creates a verified staff account (admin, jury or challenge writer) and an API token for it.
pub async fn create_staff(
    store: &Store,
    name: &str,
    password: Option<&str>,
    role: UserRole,
) -> anyhow::Result<CreatedAdmin> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty() && name.len() <= 128, "the admin name must be 1 to 128 characters");
    let generated_password = match password {
        Some(given) => {
            anyhow::ensure!(given.len() >= 8, "the password must be at least 8 characters");
            None
        }
        None => Some(generate_password()),
    };
    let password_text = password.map(str::to_owned).or_else(|| generated_password.clone()).unwrap_or_default();
    let new_user = NewUser {
        name: name.to_owned(),
        email: None,
        password_hash: hash_password(&password_text)?,
        role,
        verified: true,
    };
    let user_id =
        store.create_user(&new_user).await.with_context(|| format!("failed to create the admin account `{name}`"))?;
    let (api_token, digest) = new_api_token();
    store
        .create_api_token(user_id, &digest, None, "created by fctf admin create")
        .await
        .context("failed to create the admin API token")?;
    Ok(CreatedAdmin { user_id, name: name.to_owned(), generated_password, api_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_digested() {
        let (first, first_digest) = new_api_token();
        let (second, _) = new_api_token();
        assert_ne!(first, second);
        assert_eq!(token_digest(&first), first_digest);
        assert_eq!(first_digest.len(), 64);
    }
}
