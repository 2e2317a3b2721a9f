//! Support for the admin API tests: the api role's real router and state over SQLite (a file
//! in a temporary data directory) or PostgreSQL (a fresh database, when
//! `FCTF_TEST_DATABASE_URL` is set), driven without sockets (`Router::oneshot`), with one
//! account and API token per role. The center role is bound in the same process (its service
//! registered, its listener unused), so the instance routes reach a real center; no consumer
//! runs, so a started instance stays queued.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fctf::api::ApiState;
use fctf::app::{Deps, Role, RoleSet};
use fctf::config::Overrides;
use fctf::domain::{TeamId, UserId};
use fctf::store::testing::TestDatabase;
use fctf::store::{NewTeam, NewUser, Store, UserRole};
use serde_json::Value;
use tower::ServiceExt;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// One account and its API token.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: UserId,
    pub token: String,
}

/// The admin API of one fresh event.
pub struct AdminApi {
    pub router: Router,
    pub state: ApiState,
    pub store: Store,
    pub admin: Account,
    pub jury: Account,
    pub writer: Account,
    pub player: Account,
    pub team: TeamId,
    pub data_dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// A decoded answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl Answer {
    /// `body.data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

impl AdminApi {
    /// A fresh event, or `None` (skip) for PostgreSQL when `FCTF_TEST_DATABASE_URL` is unset.
    pub async fn new(db: Db) -> Option<Self> {
        Self::with_data_dir(db, tempfile::tempdir().unwrap()).await
    }

    /// A fresh event using `data_dir` (files live in `<data_dir>/files`).
    pub async fn with_data_dir(db: Db, data_dir: tempfile::TempDir) -> Option<Self> {
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("FCTF_DATA_DIR".into(), data_dir.path().display().to_string());
        env.insert("FCTF_ROLES".into(), "api".into());
        env.insert("FCTF_API__LISTEN".into(), "127.0.0.1:0".into());
        env.insert("FCTF_CENTER__LISTEN".into(), "127.0.0.1:0".into());
        for (key, value) in [("JWT", "jwt"), ("GATEWAY", "gateway"), ("INTERNAL", "internal"), ("FILES", "files")] {
            env.insert(format!("FCTF_SECRETS__{key}"), format!("test-{value}-secret"));
        }
        let database = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                let Ok(url) = std::env::var(fctf::store::testing::DATABASE_URL_VAR) else {
                    eprintln!("skipped: {} is not set", fctf::store::testing::DATABASE_URL_VAR);
                    return None;
                };
                let database = TestDatabase::create(&url).await.expect("fresh postgres database");
                env.insert("FCTF_STORE__BACKEND".into(), "postgres".into());
                env.insert("FCTF_STORE__URL".into(), database.url().to_owned());
                Some(database)
            }
        };
        let settings = fctf::config::load_from(None, &env, &Overrides::default()).expect("test settings");
        let settings = Arc::new(settings);
        let deps =
            Deps::connect(settings.clone(), RoleSet::from_roles(&[Role::Api, Role::Center])).await.expect("deps");
        fctf::center::Center::bind(&settings.center, &deps).await.expect("center");
        let state = ApiState::new(&deps).await.expect("api state");
        let store = state.store.clone();
        let router = fctf::api::router(state.clone());
        let team = store.create_team(&NewTeam { name: "players".into(), ..NewTeam::default() }).await.unwrap().id;
        let admin = account(&store, "root", UserRole::Admin).await;
        let jury = account(&store, "judge", UserRole::Jury).await;
        let writer = account(&store, "author", UserRole::Writer).await;
        let player = account(&store, "player", UserRole::User).await;
        store.add_team_member(team, player.id, None).await.unwrap();
        Some(Self { router, state, store, admin, jury, writer, player, team, data_dir, _database: database })
    }

    /// Sends a request with an optional token and JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut builder = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Token {token}"));
        }
        let body = body.map(|value| Body::from(value.to_string())).unwrap_or_else(Body::empty);
        self.send(builder.body(body).unwrap()).await
    }

    /// Sends a raw request.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer { status, body, headers }
    }

    /// As the admin.
    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        self.call(method, path, Some(&self.admin.token.clone()), body).await
    }

    /// As the admin, expecting 200 and returning `data`.
    pub async fn ok(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let answer = self.admin(method.clone(), path, body).await;
        assert_eq!(answer.status, StatusCode::OK, "{method} {path}: {}", answer.body);
        assert_eq!(answer.body["success"], true, "{method} {path}: {}", answer.body);
        answer.body["data"].clone()
    }

    /// Every row of every event table (for before/after comparisons).
    pub async fn snapshot(&self) -> std::collections::BTreeMap<String, fctf::store::TableDump> {
        self.store.dump_event_tables().await.unwrap()
    }

    /// A multipart upload to `/api/v1/files` as `token`.
    pub async fn upload(&self, token: &str, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Answer {
        self.multipart(Method::POST, "/api/v1/files", token, fields, files).await
    }

    /// A `multipart/form-data` request with text `fields` and `file` parts, as `token`.
    pub async fn multipart(
        &self,
        method: Method,
        path: &str,
        token: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> Answer {
        let boundary = "fctf-test-boundary-7d1c";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        for (file_name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Token {token}"))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// An `application/x-www-form-urlencoded` request as the admin.
    pub async fn form(&self, method: Method, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Token {}", self.admin.token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }
}

async fn account(store: &Store, name: &str, role: UserRole) -> Account {
    let id = store
        .create_user(&NewUser {
            name: name.into(),
            email: None,
            password_hash: "not-a-hash".into(),
            role,
            verified: true,
        })
        .await
        .unwrap();
    let (token, digest) = fctf::auth::new_api_token();
    store.create_api_token(id, &digest, None, "test").await.unwrap();
    Account { id, token }
}

/// Runs an async test body on SQLite (`<name>`) and PostgreSQL (`<name>_postgres`).
macro_rules! on_both_databases {
    ($($name:ident => $body:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let api = crate::admin_support::AdminApi::new(crate::admin_support::Db::Sqlite).await.unwrap();
                    super::$body(api).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(api) = crate::admin_support::AdminApi::new(crate::admin_support::Db::Postgres).await else {
                        return;
                    };
                    super::$body(api).await;
                }
            }
        )*
    };
}

pub(crate) use on_both_databases;
