//! Secrets: a redacting string type for configuration values, and the per-purpose signing keys.
//!
//! Each purpose (session JWTs, gateway tokens, internal request signatures, file-download tokens)
//! has its own key so that one leaking or rotating never affects the others. In embedded mode
//! (every role in one process) missing keys are generated once and kept in
//! `<data_dir>/secrets.toml` (mode 0600), so `fctf --role all` needs no configuration at all and
//! sessions survive restarts. With split roles every process must be given the same keys, so a
//! missing key is a configuration error there.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::app::role::{Role, RoleSet};

/// A string that never shows in `Debug` or `Display` output (URLs with passwords, keys).
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the value; call it only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"[redacted]\"") }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The `[secrets]` section as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    pub jwt: Secret,
    pub gateway: Secret,
    pub internal: Secret,
    pub files: Secret,
    pub key_id: String,
}

impl SecretsConfig {
    /// Problems for keys that the given roles need but that are not configured.
    pub(crate) fn missing_for(&self, roles: &RoleSet) -> Vec<String> {
        let needs = |wanted: &[Role]| wanted.iter().any(|role| roles.contains(*role));
        let mut problems = Vec::new();
        let mut require = |secret: &Secret, name: &str, wanted: &[Role]| {
            if secret.is_empty() && needs(wanted) {
                problems.push(format!(
                    "secrets.{name} must be set (FCTF_SECRETS__{}) when roles are split over processes",
                    name.to_uppercase()
                ));
            }
        };
        require(&self.jwt, "jwt", &[Role::Api]);
        require(&self.gateway, "gateway", &[Role::Gateway, Role::Listener, Role::Center, Role::Api]);
        require(&self.internal, "internal", &[Role::Api, Role::Center]);
        require(&self.files, "files", &[Role::Api]);
        problems
    }
}

/// The resolved signing keys of this process. Cheap to clone.
#[derive(Clone)]
pub struct Secrets(Arc<SecretKeys>);

struct SecretKeys {
    key_id: String,
    jwt: Vec<u8>,
    gateway: Vec<u8>,
    internal: Vec<u8>,
    files: Vec<u8>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("key_id", &self.0.key_id).finish_non_exhaustive()
    }
}

#[derive(Default, Deserialize, Serialize)]
struct GeneratedSecrets {
    jwt: String,
    gateway: String,
    internal: String,
    files: String,
}

impl Secrets {
    /// Builds the keys from explicit values (tests, tools).
    pub fn from_values(key_id: &str, jwt: &[u8], gateway: &[u8], internal: &[u8], files: &[u8]) -> Self {
        Self(Arc::new(SecretKeys {
            key_id: key_id.to_owned(),
            jwt: jwt.to_vec(),
            gateway: gateway.to_vec(),
            internal: internal.to_vec(),
            files: files.to_vec(),
        }))
    }

    /// Random keys, for tests.
    pub fn random() -> Self {
        Self::from_values("test", &random_key(), &random_key(), &random_key(), &random_key())
    }

    /// Resolves the configured keys; in embedded mode missing ones are generated once and kept
    /// in `<data_dir>/secrets.toml`.
    pub fn resolve(cfg: &SecretsConfig, data_dir: &Path, embedded: bool) -> std::io::Result<Self> {
        let all_set =
            !cfg.jwt.is_empty() && !cfg.gateway.is_empty() && !cfg.internal.is_empty() && !cfg.files.is_empty();
        let generated = if all_set || !embedded { GeneratedSecrets::default() } else { load_or_generate(data_dir)? };
        let pick = |configured: &Secret, generated: &str| -> Vec<u8> {
            if configured.is_empty() { generated.as_bytes().to_vec() } else { configured.expose().as_bytes().to_vec() }
        };
        Ok(Self(Arc::new(SecretKeys {
            key_id: cfg.key_id.clone(),
            jwt: pick(&cfg.jwt, &generated.jwt),
            gateway: pick(&cfg.gateway, &generated.gateway),
            internal: pick(&cfg.internal, &generated.internal),
            files: pick(&cfg.files, &generated.files),
        })))
    }

    /// The key id sent along with signatures.
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }

    /// Key for session JWTs.
    pub fn jwt(&self) -> &[u8] {
        &self.0.jwt
    }

    /// Key for gateway tokens.
    pub fn gateway(&self) -> &[u8] {
        &self.0.gateway
    }

    /// Key for internal (api → center, workflow → center) request signatures.
    pub fn internal(&self) -> &[u8] {
        &self.0.internal
    }

    /// Key for file-download tokens.
    pub fn files(&self) -> &[u8] {
        &self.0.files
    }
}

fn random_key() -> Vec<u8> {
    hex::encode(random_bytes()).into_bytes()
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn load_or_generate(data_dir: &Path) -> std::io::Result<GeneratedSecrets> {
    let path = data_dir.join("secrets.toml");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return toml::from_str(&text).map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {error}", path.display()))
        });
    }
    std::fs::create_dir_all(data_dir)?;
    let generated = GeneratedSecrets {
        jwt: hex::encode(random_bytes()),
        gateway: hex::encode(random_bytes()),
        internal: hex::encode(random_bytes()),
        files: hex::encode(random_bytes()),
    };
    let text = format!(
        "# Generated by fctf on first start. Keep this file private; deleting it logs everyone out.\njwt = \"{}\"\ngateway = \"{}\"\ninternal = \"{}\"\nfiles = \"{}\"\n",
        generated.jwt, generated.gateway, generated.internal, generated.files
    );
    write_private(&path, &text)?;
    Ok(generated)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
