//! `TestApp`: runs the real `App` in this process with every listener on 127.0.0.1:0, its own
//! data directory and its own cancellation token; `TestCluster` runs several apps with split
//! roles sharing the real backends.
//!
//! Backends: `Backends::Embedded` (SQLite file, memory cache and queue, local runtime) always
//! works; `Backends::Real` uses PostgreSQL, Redis and RabbitMQ from `FCTF_TEST_DATABASE_URL`,
//! `FCTF_TEST_REDIS_URL` and `FCTF_TEST_AMQP_URL`, with a fresh database, key prefix and queue
//! names per test, and is `None` (the test skips) when a variable is unset.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use fctf::app::{Addrs, App, Role};
use fctf::config::{Overrides, Settings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which backends an app uses.
#[derive(Clone, Debug)]
pub enum Backends {
    Embedded,
    Real(RealBackends),
}

/// Connection settings for the real backends of one test.
#[derive(Clone, Debug)]
pub struct RealBackends {
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    /// Unique per test: cache key prefix and queue name prefix.
    pub prefix: String,
    /// Dropped (best effort) when the last clone goes away.
    _database: std::sync::Arc<fctf::store::testing::TestDatabase>,
}

impl Backends {
    /// The real backends with a fresh database and unique prefixes, or `None` (skip) when the
    /// environment does not name them.
    pub async fn real() -> Option<Self> {
        let (Ok(database), Ok(redis), Ok(amqp)) = (
            std::env::var("FCTF_TEST_DATABASE_URL"),
            std::env::var("FCTF_TEST_REDIS_URL"),
            std::env::var("FCTF_TEST_AMQP_URL"),
        ) else {
            eprintln!("skipped: FCTF_TEST_DATABASE_URL, FCTF_TEST_REDIS_URL and FCTF_TEST_AMQP_URL are not all set");
            return None;
        };
        let database = fctf::store::testing::TestDatabase::create(&database).await.expect("a fresh test database");
        let prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
        Some(Backends::Real(RealBackends {
            database_url: database.url().to_owned(),
            redis_url: redis,
            amqp_url: amqp,
            prefix,
            _database: std::sync::Arc::new(database),
        }))
    }
}

/// Environment entries (as `FCTF_*` variables) for one app.
fn app_env(backends: &Backends, roles: &[Role], data_dir: &std::path::Path) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    let roles: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    env.insert("FCTF_ROLES".into(), roles.join(","));
    env.insert("FCTF_DATA_DIR".into(), data_dir.display().to_string());
    for key in [
        "FCTF_API__LISTEN",
        "FCTF_CENTER__LISTEN",
        "FCTF_GATEWAY__HTTP_LISTEN",
        "FCTF_GATEWAY__TCP_LISTEN",
        "FCTF_OPS__LISTEN",
    ] {
        env.insert(key.into(), "127.0.0.1:0".into());
    }
    env.insert("FCTF_SHUTDOWN__GRACE_PERIOD_SECS".into(), "5".into());
    if let Backends::Real(real) = backends {
        env.insert("FCTF_STORE__BACKEND".into(), "postgres".into());
        env.insert("FCTF_STORE__URL".into(), real.database_url.clone());
        env.insert("FCTF_CACHE__BACKEND".into(), "redis".into());
        env.insert("FCTF_CACHE__URL".into(), real.redis_url.clone());
        env.insert("FCTF_CACHE__PREFIX".into(), real.prefix.clone());
        env.insert("FCTF_QUEUE__BACKEND".into(), "rabbitmq".into());
        env.insert("FCTF_QUEUE__URL".into(), real.amqp_url.clone());
        env.insert("FCTF_QUEUE__VHOST".into(), "/".into());
        env.insert("FCTF_QUEUE__EXCHANGE".into(), format!("{}deployment_exchange", real.prefix));
        env.insert("FCTF_QUEUE__QUEUE".into(), format!("{}deployment_queue", real.prefix));
        for (key, value) in [("JWT", "jwt"), ("GATEWAY", "gateway"), ("INTERNAL", "internal"), ("FILES", "files")] {
            env.insert(format!("FCTF_SECRETS__{key}"), format!("test-{value}-{}", real.prefix));
        }
    }
    env
}

/// Builds the settings of one test app.
pub fn settings(backends: &Backends, roles: &[Role], data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut env = app_env(backends, roles, data_dir);
    for (key, value) in extra {
        env.insert((*key).to_owned(), (*value).to_owned());
    }
    fctf::config::load_from(None, &env, &Overrides::default()).expect("test configuration loads")
}

/// One running app.
pub struct TestApp {
    pub addrs: Addrs,
    pub client: reqwest::Client,
    token: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts an app with the given roles and backends.
    pub async fn spawn(roles: &[Role], backends: &Backends) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let settings = settings(backends, roles, data_dir.path(), &[]);
        let mut app = Self::spawn_settings(settings).await;
        app._data_dir = Some(data_dir);
        app
    }

    /// Starts an app from explicit settings.
    pub async fn spawn_settings(settings: Settings) -> Self {
        let app = App::build(settings).await.expect("app builds");
        let addrs = app.addrs();
        let token = CancellationToken::new();
        let task = tokio::spawn(app.run(token.clone()));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Self { addrs, client, token, task: Some(task), _data_dir: None }
    }

    /// `http://<ops>/<path>`.
    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.ops)
    }

    /// `http://<api>/<path>`.
    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.api.expect("api runs in this app"))
    }

    /// Address of a listener that must exist.
    pub fn addr(&self, pick: impl Fn(&Addrs) -> Option<SocketAddr>) -> SocketAddr {
        pick(&self.addrs).expect("listener runs in this app")
    }

    /// Cancels the app and asserts it stopped cleanly within the grace period.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        let task = self.task.take().expect("running");
        let joined =
            tokio::time::timeout(Duration::from_secs(15), task).await.expect("app stops within the grace period");
        joined.expect("app task did not panic").expect("app stopped without error");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Several apps with split roles sharing the real backends.
pub struct TestCluster {
    pub apps: Vec<TestApp>,
    _data_dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts one app per role group, all on the same real backends. Groups running center
    /// start first, so the others are given its bound address as `center.url`; `apps` keeps
    /// the order of `groups`.
    pub async fn spawn(groups: &[&[Role]], backends: &Backends) -> Self {
        Self::spawn_with(groups, backends, &[]).await
    }

    /// [`TestCluster::spawn`] with extra `FCTF_*` settings for every app.
    pub async fn spawn_with(groups: &[&[Role]], backends: &Backends, extra: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut apps: Vec<Option<TestApp>> = groups.iter().map(|_| None).collect();
        let mut center_url: Option<String> = None;
        let center_first = groups.iter().enumerate().filter(|(_, group)| group.contains(&Role::Center));
        let others = groups.iter().enumerate().filter(|(_, group)| !group.contains(&Role::Center));
        for (index, group) in center_first.chain(others) {
            let dir = data_dir.path().join(format!("app{index}"));
            let mut extra: Vec<(&str, &str)> = extra.to_vec();
            if let Some(url) = &center_url {
                extra.push(("FCTF_CENTER__URL", url));
            }
            let app = TestApp::spawn_settings(settings(backends, group, &dir, &extra)).await;
            if let Some(addr) = app.addrs.center {
                center_url.get_or_insert_with(|| format!("http://{addr}"));
            }
            apps[index] = Some(app);
        }
        Self { apps: apps.into_iter().map(|app| app.expect("every group started")).collect(), _data_dir: data_dir }
    }

    /// Stops every app, asserting each drains cleanly.
    pub async fn shutdown(self) {
        for app in self.apps {
            app.shutdown().await;
        }
    }
}
