//! Router-level tests without sockets: the route table, the OpenAPI document, and a few flows
//! through `router().oneshot()` on SQLite in memory and the memory cache. Concurrency and
//! multi-process behaviour are tested in `tests/it/contestant_*.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::api::paths::PathNormalizer;
use crate::app::{Deps, RoleSet};
use crate::cache::Cache;
use crate::config::{Overrides, Secrets};
use crate::domain::TeamId;
use crate::metrics::Metrics;
use crate::store::{NewChallenge, NewFlag, NewTeam, NewUser, Store, UserRole};

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let served: BTreeSet<(String, String)> =
        routes().into_iter().map(|(method, path, _)| (method.to_owned(), path.to_owned())).collect();
    let documented: BTreeSet<(String, String)> = openapi::operations().unwrap().into_iter().collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "routes missing from openapi.json: {missing:?}");
    assert!(extra.is_empty(), "openapi.json documents routes the router does not serve: {extra:?}");
}

#[test]
fn every_route_is_case_insensitive_and_no_template_shadows_another() {
    let normalizer = PathNormalizer::new(ROUTE_PATHS.iter().copied());
    for (_, path, _) in routes() {
        assert!(ROUTE_PATHS.contains(&path), "{path} is missing from ROUTE_PATHS");
    }
    for template in ROUTE_PATHS {
        let concrete = template.replace("{category_name}", "Web").replace("{id}", "42").replace("{count}", "10");
        let lowered: String = concrete
            .split('/')
            .map(|segment| if segment == "Web" { segment.to_owned() } else { segment.to_lowercase() })
            .collect::<Vec<_>>()
            .join("/");
        let canonical = normalizer.canonical(&lowered).unwrap_or(lowered.clone());
        assert_eq!(canonical, concrete, "{lowered} should normalise to {concrete}");
    }
}

async fn test_state(data_dir: &std::path::Path) -> (ApiState, Store) {
    let mut env = HashMap::new();
    env.insert("FCTF_DATA_DIR".to_owned(), data_dir.display().to_string());
    let settings = crate::config::load_from(None, &env, &Overrides::default()).unwrap();
    let store = crate::store::testing::sqlite_memory_store().await.unwrap();
    let deps = Deps {
        settings: Arc::new(settings),
        roles: RoleSet::parse(&["all".to_owned()]).unwrap(),
        store: Some(store.clone()),
        cache: Cache::memory("test:"),
        producer: None,
        consumer: None,
        runtime: None,
        secrets: Secrets::random(),
        metrics: Metrics::new(),
        control: Default::default(),
    };
    (ApiState::new(&deps).await.unwrap(), store)
}

struct Harness {
    router: axum::Router,
    normalizer: PathNormalizer,
    store: Store,
    state: ApiState,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (state, store) = test_state(dir.path()).await;
        let router = crate::api::router(state.clone());
        Self { router, normalizer: PathNormalizer::new(ROUTE_PATHS.iter().copied()), store, state, _dir: dir }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut uri: axum::http::Uri = path.parse().unwrap();
        self.normalizer.normalize_uri(&mut uri);
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn player(&self, name: &str, team: TeamId) -> String {
        let hash = crate::auth::hash_password("S3cret!pw").unwrap();
        let user = self
            .store
            .create_user(&NewUser {
                name: name.into(),
                email: None,
                password_hash: hash,
                role: UserRole::User,
                verified: true,
            })
            .await
            .unwrap();
        self.store.add_team_member(team, user, None).await.unwrap();
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/LOGIN-contestant",
                None,
                Some(json!({"Username": name, "PASSWORD": "S3cret!pw"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["generatedToken"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn login_submit_and_scoreboard_flow() {
    let harness = Harness::new().await;
    let team = harness.store.create_team(&NewTeam { name: "Team A".into(), ..NewTeam::default() }).await.unwrap();
    let token = harness.player("alice", team.id).await;
    let challenge = harness
        .store
        .create_challenge(&NewChallenge {
            name: "warmup".into(),
            category: "web".into(),
            value: 100,
            ..NewChallenge::default()
        })
        .await
        .unwrap();
    harness
        .store
        .create_flag(&NewFlag {
            challenge_id: challenge.id,
            kind: "static".into(),
            content: "FCTF{ok}".into(),
            data: None,
        })
        .await
        .unwrap();

    let (status, body) = harness.call(Method::GET, "/api/challenge/by-topic", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0], json!({"topic_name": "web", "challenge_count": 1, "cleared": false}));

    let attempt = json!({"challengeId": challenge.id.get(), "submission": "nope"});
    let (status, body) = harness.call(Method::POST, "/api/challenge/attempt", Some(&token), Some(attempt)).await;
    assert_eq!((status, body["data"]["status"].as_str()), (StatusCode::OK, Some("incorrect")), "{body}");

    let attempt = json!({"ChallengeID": challenge.id.get(), "Submission": " FCTF{ok} "});
    let (status, body) =
        harness.call(Method::POST, "/api/Challenge/Attempt", Some(&token), Some(attempt.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"status": "correct", "message": "Correct", "value": 100}));
    let (_, body) = harness.call(Method::POST, "/api/challenge/attempt", Some(&token), Some(attempt)).await;
    assert_eq!(body["data"]["status"], "already_solved");

    let (status, body) = harness.call(Method::GET, "/api/scoreboard/top/10", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["name"], "Team A");
    assert_eq!(body["data"][0]["score"], 100);
    assert_eq!(body["data"][0]["solves"][0]["challengeId"], challenge.id.get());

    let (status, body) = harness.call(Method::GET, "/api/Team/contestant", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["place"], 1);
    assert_eq!(body["data"]["score"], 100);

    let (status, _) = harness.call(Method::POST, "/api/Auth/logout", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = harness.call(Method::GET, "/api/Users/profile", Some(&token), None).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, Value::String("Invalid user token".into())));
}

#[tokio::test]
async fn unauthenticated_and_unknown_requests() {
    let harness = Harness::new().await;
    let (status, _) = harness.call(Method::GET, "/api/Users/profile", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = harness.call(Method::GET, "/api/Users/profile", Some("garbage"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = harness.call(Method::GET, "/api/Config/get_public_config", None, None).await;
    assert_eq!((status, body["ctf_name"].as_str()), (StatusCode::OK, Some("FCTF")));
    let (status, body) = harness.call(Method::GET, "/HEALTHZ", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, Value::String("Healthy".into())));
    let (status, body) = harness.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!((status, body["openapi"].as_str()), (StatusCode::OK, Some("3.1.0")));
    let (status, body) = harness
        .call(Method::POST, "/api/Auth/login-contestant", None, Some(json!({"username": "ghost", "password": "x"})))
        .await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::BAD_REQUEST, Some("Invalid username or password")));
    let _ = &harness.state;
}
