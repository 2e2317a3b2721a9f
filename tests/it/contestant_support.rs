//! Support for the contestant API tests: an event on the embedded backends (one process, every
//! role) or on PostgreSQL + Redis with the API split over two processes, seeded directly
//! through the store; players logged in over HTTP; requests spread over the api processes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use fctf::app::{App, Role};
use fctf::cache::{Cache, CacheBackendKind, CacheConfig};
use fctf::config::{Secret, Settings};
use fctf::domain::{ChallengeId, TeamId, UserId};
use fctf::store::{NewChallenge, NewFlag, NewTeam, NewUser, Store, UserRole};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{Backends, settings};

/// The password of every seeded player.
pub const PASSWORD: &str = "S3cret!pw";

/// One argon2id hash of [`PASSWORD`], computed once per test binary.
pub fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| fctf::auth::hash_password(PASSWORD).unwrap()).clone()
}

/// Which backends an event runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SQLite + memory cache, every role in one process.
    Embedded,
    /// PostgreSQL + Redis, the api role in two processes.
    PostgresRedis,
}

/// A prepared (then started) event.
pub struct Event {
    pub kind: Kind,
    pub store: Store,
    pub client: reqwest::Client,
    /// Base URLs of the api processes (`http://127.0.0.1:port`).
    pub apis: Vec<String>,
    /// A cache handle on the apps' cache (set once started).
    pub cache: Option<Cache>,
    settings: Vec<Settings>,
    tokens: Vec<CancellationToken>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _backends: Backends,
}

impl Event {
    /// Prepares an event; `None` (skip) for `PostgresRedis` when the variables are unset.
    pub async fn prepare(kind: Kind, extra: &[(&str, &str)]) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (backends, groups): (Backends, Vec<Vec<Role>>) = match kind {
            Kind::Embedded => (Backends::Embedded, vec![vec![Role::All]]),
            Kind::PostgresRedis => (Backends::real().await?, vec![vec![Role::Api], vec![Role::Api]]),
        };
        let mut all_settings = Vec::new();
        for (index, group) in groups.iter().enumerate() {
            let data_dir = dir.path().join(format!("app{index}"));
            let mut extras: Vec<(&str, &str)> = vec![("FCTF_LOG__LEVEL", "warn")];
            extras.extend_from_slice(extra);
            all_settings.push(settings(&backends, group, &data_dir, &extras));
        }
        let first = &all_settings[0];
        let store = Store::from_config(&first.store, &first.data_dir).await.unwrap();
        store.migrate().await.unwrap();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Some(Self {
            kind,
            store,
            client,
            apis: Vec::new(),
            cache: None,
            settings: all_settings,
            tokens: Vec::new(),
            tasks: Vec::new(),
            _dir: dir,
            _backends: backends,
        })
    }

    /// Writes event configuration rows (before `start`, or followed by `reload`).
    pub async fn configure(&self, pairs: &[(&str, &str)]) {
        let entries: Vec<(String, Option<String>)> =
            pairs.iter().map(|(key, value)| ((*key).to_owned(), Some((*value).to_owned()))).collect();
        self.store.set_config_many(&entries).await.unwrap();
    }

    /// Starts the api processes.
    pub async fn start(&mut self) {
        for settings in self.settings.clone() {
            let app = App::build(settings.clone()).await.unwrap();
            if self.cache.is_none() {
                self.cache = Some(match self.kind {
                    Kind::Embedded => app.deps().cache.clone(),
                    Kind::PostgresRedis => Cache::from_config(&CacheConfig {
                        backend: CacheBackendKind::Redis,
                        url: Secret::new(settings.cache.url.expose()),
                        prefix: settings.cache.prefix.clone(),
                    })
                    .await
                    .unwrap(),
                });
            }
            self.apis.push(format!("http://{}", app.addrs().api.unwrap()));
            let token = CancellationToken::new();
            self.tasks.push(tokio::spawn(app.run(token.clone())));
            self.tokens.push(token);
        }
        // Let each process subscribe to change signals before the test acts.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Changes event configuration at run time and waits until every api process sees it.
    pub async fn reconfigure(&self, pairs: &[(&str, &str)]) {
        let settings = fctf::event::EventSettings::load(self.store.clone(), self.cache.clone().unwrap()).await.unwrap();
        let updates: BTreeMap<String, Option<String>> =
            pairs.iter().map(|(key, value)| ((*key).to_owned(), Some((*value).to_owned()))).collect();
        settings.update(&updates).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// The data directory of app `index`.
    pub fn data_dir(&self, index: usize) -> std::path::PathBuf {
        self.settings[index % self.settings.len()].data_dir.clone()
    }

    /// The URL of `path` on api process `index` (modulo the number of processes).
    pub fn url(&self, index: usize, path: &str) -> String {
        format!("{}{path}", self.apis[index % self.apis.len()])
    }

    /// Stops every process.
    pub async fn stop(self) {
        for token in &self.tokens {
            token.cancel();
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }

    /// A team with `members` verified players named `<team>-<n>`; returns the team and users.
    pub async fn team(&self, name: &str, members: usize) -> (TeamId, Vec<(UserId, String)>) {
        let team = self.store.create_team(&NewTeam { name: name.to_owned(), ..NewTeam::default() }).await.unwrap();
        let mut users = Vec::new();
        for index in 0..members {
            let user_name = format!("{name}-{index}");
            let user = self.player(&user_name).await;
            self.store.add_team_member(team.id, user, None).await.unwrap();
            if index == 0 {
                self.store.set_team_captain(team.id, Some(user)).await.unwrap();
            }
            users.push((user, user_name));
        }
        (team.id, users)
    }

    /// A verified player without a team.
    pub async fn player(&self, name: &str) -> UserId {
        let user = NewUser {
            name: name.to_owned(),
            email: Some(format!("{name}@example.org")),
            password_hash: password_hash(),
            role: UserRole::User,
            verified: true,
        };
        self.store.create_user(&user).await.unwrap()
    }

    /// A visible challenge with one static flag `FCTF{<name>}`.
    pub async fn challenge(&self, name: &str, tweak: impl FnOnce(&mut NewChallenge)) -> ChallengeId {
        let mut spec =
            NewChallenge { name: name.to_owned(), category: "web".into(), value: 100, ..NewChallenge::default() };
        tweak(&mut spec);
        let challenge = self.store.create_challenge(&spec).await.unwrap();
        let flag = NewFlag {
            challenge_id: challenge.id,
            kind: "static".into(),
            content: format!("FCTF{{{name}}}"),
            data: None,
        };
        self.store.create_flag(&flag).await.unwrap();
        challenge.id
    }

    /// Logs a player in through api process `index`; returns the token.
    pub async fn login(&self, index: usize, name: &str) -> String {
        let (status, body) =
            self.post(index, "/api/Auth/login-contestant", None, json!({"username": name, "password": PASSWORD})).await;
        assert_eq!(status, 200, "login of {name}: {body}");
        body["generatedToken"].as_str().unwrap().to_owned()
    }

    /// Sends a JSON request; returns the status and the body (JSON, or a JSON string of text).
    pub async fn send(
        &self,
        method: reqwest::Method,
        index: usize,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(index, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// An admin API request (`Authorization: Token <admin_token>`) to api process `index`.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        index: usize,
        path: &str,
        admin_token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request =
            self.client.request(method, self.url(index, path)).header("authorization", format!("Token {admin_token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `GET`.
    pub async fn get(&self, index: usize, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::GET, index, path, token, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, index: usize, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, index, path, token, Some(body)).await
    }
}

/// Runs `count` futures at once and collects their results in order.
pub async fn all_at_once<F, T>(futures: Vec<F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    futures::future::join_all(futures).await
}

/// Generates, for each async scenario `fn(Kind)`, an embedded test and a `_postgres_redis`
/// test (two api processes on PostgreSQL + Redis; skipped when the variables are unset).
macro_rules! on_both_backends {
    ($($scenario:ident => $embedded:ident, $real:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $embedded() {
                $scenario(crate::contestant_support::Kind::Embedded).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $real() {
                $scenario(crate::contestant_support::Kind::PostgresRedis).await;
            }
        )*
    };
}
pub(crate) use on_both_backends;
