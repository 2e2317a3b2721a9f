//! The admin API's instance routes end to end: an admin token starts a preview instance
//! through `ApiState::center` (in process on the embedded platform, signed HTTP to a center in
//! another process on the split one), the instance really runs (reached through the gateway),
//! its logs and listing come from center, and stop, stop-all and their refusals keep center's
//! statuses. Image builds: the build route checks its context file before it asks center, and
//! the context is downloadable only with a valid, unexpired token.

use std::time::{Duration, Instant};

use fctf::domain::ChallengeId;
use fctf::store::{InstanceState, NewUser, UserRole};
use serde_json::{Value, json};

use crate::admin_support::{AdminApi, on_both_databases};
use crate::pipeline_support::{HTTP_SERVER, Platform, Topology, on_both_topologies};

struct Admin<'a> {
    platform: &'a Platform,
    token: String,
}

impl Admin<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .platform
            .http
            .request(method, format!("{}{path}", self.platform.api))
            .header("authorization", format!("Token {}", self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["data"].clone()
    }

    /// Polls the challenge's instances until `target` is running; returns its view.
    async fn wait_running(&self, challenge: ChallengeId, target: &str) -> Value {
        let started = Instant::now();
        loop {
            let instances =
                self.ok(reqwest::Method::GET, &format!("/api/v1/challenges/{challenge}/instances"), None).await;
            if instances[target]["state"] == "running" {
                return instances[target].clone();
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never running: {instances}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn admin_manages_instances_through_center(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let admin_id = platform
        .store
        .create_user(&NewUser {
            name: "root".into(),
            email: None,
            password_hash: "not-a-hash".into(),
            role: UserRole::Admin,
            verified: true,
        })
        .await
        .unwrap();
    let (token, digest) = fctf::auth::new_api_token();
    platform.store.create_api_token(admin_id, &digest, None, "test").await.unwrap();
    let admin = Admin { platform: &platform, token };
    let challenge = platform.challenge("admin preview", HTTP_SERVER).await;
    use reqwest::Method;

    // Start the preview instance; a second start returns the same live instance.
    let path = format!("/api/v1/challenges/{challenge}/instances");
    let started = admin.ok(Method::POST, &path, Some(json!({"target": "preview"}))).await;
    assert_eq!(started["created"], true, "{started}");
    assert_eq!(started["instance"]["team_id"], -1);
    let again = admin.ok(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["instance"]["instance_id"], started["instance"]["instance_id"]);
    let running = admin.wait_running(challenge, "preview").await;
    assert_eq!(running["status"], "Running");
    let gateway_token = running["token"].as_str().expect("a running instance has a token").to_owned();
    assert_eq!(platform.through_gateway(&gateway_token).await, 200, "the preview instance serves");

    let listed = admin.ok(Method::GET, &format!("/api/v1/instances?challenge_id={challenge}"), None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["instance_id"], running["instance_id"]);
    let logs = admin.ok(Method::GET, &format!("{path}/logs?target=preview&tail=50"), None).await;
    assert_eq!(logs["instance_id"], running["instance_id"]);
    assert!(logs["logs"].as_str().unwrap().contains("GET /"), "the gateway request is in the logs: {logs}");
    let same =
        admin.ok(Method::GET, &format!("/api/v1/instances/logs?challenge_id={challenge}&team_id=-1"), None).await;
    assert_eq!(same["instance_id"], running["instance_id"]);

    // Stop it; a second stop finds nothing live (center's 404), and the audit log has both.
    let stopped = admin.ok(Method::DELETE, &format!("{path}?target=preview"), None).await;
    assert_eq!(stopped["instance_id"], running["instance_id"]);
    let instance_id = fctf::domain::InstanceId(running["instance_id"].as_i64().unwrap());
    platform.wait_state(instance_id, InstanceState::Stopped).await;
    let (status, body) = admin.call(Method::DELETE, &format!("{path}?target=preview"), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["success"], false);
    let (status, body) = admin.call(Method::POST, &path, Some(json!({"target": "team"}))).await;
    assert_eq!(status, 400, "{body}");

    // Stop-all needs an explicit confirmation, then stops the shared instance too.
    admin.ok(Method::POST, &path, Some(json!({"target": "shared"}))).await;
    admin.wait_running(challenge, "shared").await;
    let (status, body) = admin.call(Method::POST, "/api/v1/instances/stop-all", Some(json!({}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(platform.store.find_live_instance(fctf::domain::TeamId::SHARED, challenge).await.unwrap().is_some());
    let outcome = admin.ok(Method::POST, "/api/v1/instances/stop-all", Some(json!({"confirm": true}))).await;
    assert_eq!(outcome["stopped"], 1, "{outcome}");
    assert!(admin.ok(Method::GET, "/api/v1/instances", None).await.as_array().unwrap().is_empty());
    let audit = admin.ok(Method::GET, "/api/v1/audit?target_type=instance", None).await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|entry| entry["action"].as_str()).collect();
    for action in ["start", "stop", "stop_all"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    assert!(!audit.to_string().contains(&gateway_token), "gateway tokens stay out of the audit log");
    platform.stop().await;
}

on_both_topologies! {
    admin_manages_instances_through_center => admin_instances_embedded, admin_instances_postgres_redis_rabbitmq;
}

async fn build_contexts_need_a_valid_token(api: AdminApi) {
    use axum::http::{Method, StatusCode};
    let challenge = api.ok(Method::POST, "/api/v1/challenges", Some(&json!({"name": "built", "value": 1}))).await;
    let other = api.ok(Method::POST, "/api/v1/challenges", Some(&json!({"name": "other", "value": 1}))).await;
    let context = api.upload(&api.admin.token, &[("type", "standard")], &[("context.tar", b"tar bytes")]).await;
    let file_id = context.data()[0]["id"].as_i64().unwrap();
    let foreign = api
        .upload(
            &api.admin.token,
            &[("type", "challenge"), ("challenge_id", &other["id"].to_string())],
            &[("x.tar", b"x")],
        )
        .await;
    let path = format!("/api/v1/challenges/{}/build", challenge["id"]);
    let before = api.snapshot().await;
    for (body, field) in [
        (json!({"image": "registry/x:1"}), "file_id"),
        (json!({"file_id": file_id}), "image"),
        (json!({"file_id": file_id, "image": "has space"}), "image"),
        (json!({"file_id": 999_999, "image": "registry/x:1"}), "file_id"),
        (json!({"file_id": foreign.data()[0]["id"], "image": "registry/x:1"}), "file_id"),
    ] {
        let answer = api.admin(Method::POST, &path, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {}", answer.body);
        assert!(answer.body["errors"][field].is_array(), "{body}: {}", answer.body);
    }
    // A valid request reaches center, whose local runtime cannot build images.
    let refused = api.admin(Method::POST, &path, Some(&json!({"file_id": file_id, "image": "registry/x:1"}))).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    assert_eq!(api.snapshot().await, before, "a refused build changes nothing");
    let no_build = api.admin(Method::GET, &path, None).await;
    assert_eq!(no_build.status, StatusCode::NOT_FOUND);

    let secret = api.state.secrets.files().to_vec();
    let now = chrono::Utc::now().timestamp();
    let download = |token: String| {
        let api = &api;
        async move { api.call(Method::GET, &format!("/build-contexts/{token}"), None, None).await }
    };
    let valid = download(fctf::api::admin::builds::sign_context(&secret, file_id, now + 60)).await;
    assert_eq!(valid.status, StatusCode::OK);
    assert_eq!(valid.body, "tar bytes");
    for token in [
        fctf::api::admin::builds::sign_context(&secret, file_id, now - 1),
        fctf::api::admin::builds::sign_context(b"another secret", file_id, now + 60),
        fctf::api::admin::builds::sign_context(&secret, 999_999, now + 60),
        "not-a-token".to_owned(),
    ] {
        assert_eq!(download(token).await.status, StatusCode::NOT_FOUND);
    }
}

on_both_databases! {
    build_contexts => build_contexts_need_a_valid_token,
}
