//! Configuration: layering, the `Settings` aggregate and role-aware validation.
//!
//! Layers, lowest priority first: the embedded `config/default.toml`, an optional file
//! (`--config`/`FCTF_CONFIG`), `FCTF_*` environment variables (`__` separates nesting levels,
//! `FCTF_ROLES=api,gateway` is a list) and command-line overrides. Every struct denies unknown
//! keys. Backends are chosen by a `backend` key next to a `url`; we keep them as flat structs
//! rather than internally tagged enums so that an environment variable can switch the backend
//! without the default file's keys for the other backend becoming "unknown". Validation
//! (`Settings::validate`) reports every problem at once.
//!
//! Environment variables are read from a map handed in by the caller (`load_from`), never by
//! mutating the process environment, so tests can build any configuration in parallel.

mod secrets;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::app::role::{Role, RoleSet};

pub use secrets::{Secret, Secrets};

/// The embedded default configuration, every key documented.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The merged configuration of one process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub roles: Vec<String>,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub ops: OpsConfig,
    pub secrets: crate::config::secrets::SecretsConfig,
    pub store: crate::store::StoreConfig,
    pub cache: crate::cache::CacheConfig,
    pub queue: crate::queue::QueueConfig,
    pub runtime: crate::runtime::RuntimeConfig,
    pub api: crate::api::Config,
    pub center: crate::center::Config,
    pub consumer: crate::consumer::Config,
    pub listener: crate::listener::Config,
    pub gateway: crate::gateway::Config,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Compact,
}

/// Graceful-shutdown timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    pub readiness_delay_secs: u64,
    pub grace_period_secs: u64,
}

/// The process-wide operations listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    pub listen: SocketAddr,
}

/// Values given on the command line, applied on top of every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub roles: Vec<Role>,
    pub data_dir: Option<PathBuf>,
}

/// A configuration that cannot be loaded or cannot work. Printed as is and exits with code 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn single(problem: impl Into<String>) -> Self {
        Self { problems: vec![problem.into()] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.len() == 1 {
            return write!(f, "invalid configuration: {}", self.problems[0]);
        }
        writeln!(f, "invalid configuration ({} problems):", self.problems.len())?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Loads the configuration from the real process environment.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    load_from(file, &env, overrides)
}

/// Loads the configuration with `env` standing in for the process environment.
pub fn load_from(
    file: Option<&Path>,
    env: &HashMap<String, String>,
    overrides: &Overrides,
) -> Result<Settings, ConfigError> {
    let fctf_env: HashMap<String, String> = env
        .iter()
        // FCTF_CONFIG names the file; FCTF_TEST_* belong to the test harness, not to fctf.
        .filter(|(key, _)| key.starts_with("FCTF_") && key.as_str() != "FCTF_CONFIG" && !key.starts_with("FCTF_TEST_"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let mut builder =
        config::Config::builder().add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml));
    let file = file.map(Path::to_path_buf).or_else(|| env.get("FCTF_CONFIG").map(PathBuf::from));
    if let Some(path) = &file {
        builder = builder.add_source(config::File::from(path.as_path()).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("FCTF")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("roles")
            .source(Some(fctf_env)),
    );
    if !overrides.roles.is_empty() {
        let roles: Vec<String> = overrides.roles.iter().map(|role| role.as_str().to_owned()).collect();
        builder = builder.set_override("roles", roles).map_err(|error| ConfigError::single(error.to_string()))?;
    }
    if let Some(data_dir) = &overrides.data_dir {
        builder = builder
            .set_override("data_dir", data_dir.to_string_lossy().into_owned())
            .map_err(|error| ConfigError::single(error.to_string()))?;
    }
    let merged = builder.build().map_err(|error| ConfigError::single(error.to_string()))?;
    merged.try_deserialize::<Settings>().map_err(|error| ConfigError::single(error.to_string()))
}

impl Settings {
    /// The roles this process runs, parsed from `roles`.
    pub fn role_set(&self) -> Result<RoleSet, ConfigError> {
        RoleSet::parse(&self.roles).map_err(ConfigError::single)
    }

    /// True when every role runs in this process: the only topology where embedded backends
    /// (memory cache and queue, SQLite, local runtime) and generated secrets are valid.
    pub fn is_embedded(&self) -> bool {
        self.role_set().map(|roles| roles.is_all()).unwrap_or(false)
    }

    /// Checks that this configuration can work for the roles of this process, reporting every
    /// problem at once.
    pub fn validate(&self) -> Result<RoleSet, ConfigError> {
        let roles = self.role_set()?;
        let mut problems = Vec::new();
        let all = roles.is_all();
        let uses_store = roles.iter().any(|role| role.uses_store());

        match self.store.backend {
            crate::store::StoreBackendKind::Sqlite => {
                if uses_store && !all {
                    problems.push(
                        "store.backend = sqlite cannot be shared by several processes; use postgres when roles are split (or run --role all)".to_owned(),
                    );
                }
            }
            crate::store::StoreBackendKind::Postgres => {
                if self.store.url.is_empty() {
                    problems.push("store.backend = postgres needs store.url (FCTF_STORE__URL)".to_owned());
                }
            }
        }
        if self.store.max_connections == 0 {
            problems.push("store.max_connections must be at least 1".to_owned());
        }
        match self.cache.backend {
            crate::cache::CacheBackendKind::Memory => {
                if !all {
                    problems.push(
                        "cache.backend = memory only works when every role runs in this process; use redis when roles are split".to_owned(),
                    );
                }
            }
            crate::cache::CacheBackendKind::Redis => {
                if self.cache.url.is_empty() {
                    problems.push("cache.backend = redis needs cache.url (FCTF_CACHE__URL)".to_owned());
                }
            }
        }
        match self.queue.backend {
            crate::queue::QueueBackendKind::Memory => {
                let producer_and_consumer = roles.contains(Role::Center) && roles.contains(Role::Consumer);
                let any_user = roles.contains(Role::Center) || roles.contains(Role::Consumer);
                if any_user && !producer_and_consumer {
                    problems.push(
                        "queue.backend = memory needs the center and consumer roles in the same process; use rabbitmq when they are split".to_owned(),
                    );
                }
            }
            crate::queue::QueueBackendKind::Rabbitmq => {
                if self.queue.url.is_empty() {
                    problems.push("queue.backend = rabbitmq needs queue.url (FCTF_QUEUE__URL)".to_owned());
                }
            }
        }
        if self.queue.max_length == 0 || self.queue.prefetch == 0 || self.queue.max_deliveries == 0 {
            problems.push("queue.max_length, queue.prefetch and queue.max_deliveries must be at least 1".to_owned());
        }
        let runtime_users: Vec<Role> =
            [Role::Center, Role::Consumer, Role::Listener].into_iter().filter(|role| roles.contains(*role)).collect();
        if self.runtime.backend == crate::runtime::RuntimeBackendKind::Local
            && !runtime_users.is_empty()
            && runtime_users.len() != 3
        {
            problems.push(
                "runtime.backend = local runs challenges as child processes of this process, so center, consumer and listener must run together; use kubernetes when they are split".to_owned(),
            );
        }
        problems.extend(self.runtime.problems());
        if roles.contains(Role::Gateway) {
            problems.extend(self.gateway.problems());
        }
        if roles.contains(Role::Api) {
            problems.extend(self.gateway.public_problems());
        }
        if self.consumer.max_in_flight == 0 {
            problems.push("consumer.max_in_flight must be at least 1".to_owned());
        }
        if !all {
            problems.extend(self.secrets.missing_for(&roles));
        }
        problems.extend(self.listen_clashes(&roles));
        if problems.is_empty() { Ok(roles) } else { Err(ConfigError { problems }) }
    }

    /// Settings that work but probably not as intended, for the start-up banner and
    /// `fctf config check`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let portal_host = url::Url::parse(self.api.public_url.trim())
            .ok()
            .and_then(|url| url.host_str().map(|host| host.trim_matches(['[', ']']).to_ascii_lowercase()));
        let gateway_host = self.gateway.public_http_host();
        if portal_host.is_some_and(|host| host == gateway_host) {
            warnings.push(format!(
                "the gateway's public host ({gateway_host}) is the portal's (api.public_url): opening an instance replaces the portal's cookies and logs the player out; give the gateway another host name (gateway.public_host or gateway.public_http_url)"
            ));
        }
        warnings
    }

    /// Listen addresses of the enabled roles that collide (port 0 never collides).
    fn listen_clashes(&self, roles: &RoleSet) -> Vec<String> {
        let mut listeners: Vec<(&str, SocketAddr)> = vec![("ops.listen", self.ops.listen)];
        if roles.contains(Role::Api) {
            listeners.push(("api.listen", self.api.listen));
        }
        if roles.contains(Role::Center) {
            listeners.push(("center.listen", self.center.listen));
        }
        if roles.contains(Role::Gateway) {
            listeners.push(("gateway.http_listen", self.gateway.http_listen));
            listeners.push(("gateway.tcp_listen", self.gateway.tcp_listen));
        }
        let mut problems = Vec::new();
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        for (index, (name, addr)) in listeners.iter().enumerate() {
            if addr.port() == 0 || seen.contains(&index) {
                continue;
            }
            let clashing: Vec<&str> = listeners
                .iter()
                .enumerate()
                .skip(index + 1)
                .filter(|(_, (_, other))| other.port() == addr.port() && overlaps(addr, other))
                .map(|(other_index, (other_name, _))| {
                    seen.insert(other_index);
                    *other_name
                })
                .collect();
            if !clashing.is_empty() {
                problems.push(format!("{name} ({addr}) clashes with {}", clashing.join(", ")));
            }
        }
        problems
    }
}

/// Two addresses on the same port collide when either is unspecified or they are equal.
fn overlaps(left: &SocketAddr, right: &SocketAddr) -> bool {
    left.ip().is_unspecified() || right.ip().is_unspecified() || left.ip() == right.ip()
}

#[cfg(test)]
mod tests;
