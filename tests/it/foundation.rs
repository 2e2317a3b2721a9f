//! Wiring tests: every role in one process, split roles over several processes on the real
//! backends, topology validation and graceful drain.

use fctf::app::{App, Role};

use crate::harness::{Backends, TestApp, TestCluster};

async fn assert_ops_endpoints(app: &TestApp) {
    let health = app.client.get(app.ops_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.ops_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let metrics = app.client.get(app.ops_url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let content_type = metrics.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE fctf_uptime_seconds gauge"), "{text}");
    assert!(text.contains("fctf_ready 1"), "{text}");
}

#[tokio::test]
async fn all_roles_run_in_one_process_on_embedded_backends() {
    let app = TestApp::spawn(&[Role::All], &Backends::Embedded).await;
    assert!(app.addrs.api.is_some() && app.addrs.center.is_some());
    assert!(app.addrs.gateway_http.is_some() && app.addrs.gateway_tcp.is_some());
    assert_ops_endpoints(&app).await;
    let unknown = app.client.get(app.api_url("/api/does-not-exist")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["success"], false);
    let gateway_health =
        app.client.get(format!("http://{}/healthz", app.addrs.gateway_http.unwrap())).send().await.unwrap();
    assert_eq!(gateway_health.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn readiness_turns_off_before_the_roles_stop() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = crate::harness::settings(
        &Backends::Embedded,
        &[Role::All],
        data_dir.path(),
        &[("FCTF_SHUTDOWN__READINESS_DELAY_SECS", "2")],
    );
    let app = App::build(settings).await.unwrap();
    let addrs = app.addrs();
    let token = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(app.run(token.clone()));
    let client = reqwest::Client::new();
    let ready = format!("http://{}/readyz", addrs.ops);
    assert_eq!(client.get(&ready).send().await.unwrap().status(), 200);
    token.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // During the readiness delay the roles still serve but the process reports not ready.
    assert_eq!(client.get(&ready).send().await.unwrap().status(), 503);
    let api = format!("http://{}/api/x", addrs.api.unwrap());
    assert_eq!(client.get(&api).send().await.unwrap().status(), 404);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn impossible_topologies_are_refused_with_every_problem_listed() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = crate::harness::settings(&Backends::Embedded, &[Role::Api, Role::Consumer], data_dir.path(), &[]);
    let error = match App::build(settings).await {
        Ok(_) => panic!("a split on embedded backends must be refused"),
        Err(error) => error,
    };
    let config_error = error.downcast_ref::<fctf::config::ConfigError>().expect("a configuration error");
    assert!(config_error.problems.len() >= 4, "{config_error}");
}

#[tokio::test]
async fn a_lone_gateway_on_the_memory_cache_is_refused() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = crate::harness::settings(
        &Backends::Embedded,
        &[Role::Gateway],
        data_dir.path(),
        &[("FCTF_SECRETS__GATEWAY", "k")],
    );
    let error = match App::build(settings).await {
        Ok(_) => panic!("a gateway cannot share a memory cache with an api in another process"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("cache.backend = memory"), "{error}");
}

#[tokio::test]
async fn split_roles_share_the_real_backends_postgres_redis_rabbitmq() {
    let Some(backends) = Backends::real().await else { return };
    let cluster = TestCluster::spawn(
        &[&[Role::Api], &[Role::Gateway], &[Role::Center, Role::Consumer, Role::Listener]],
        &backends,
    )
    .await;
    let api = &cluster.apps[0];
    let gateway = &cluster.apps[1];
    let pipeline = &cluster.apps[2];
    assert!(api.addrs.api.is_some() && api.addrs.center.is_none() && api.addrs.gateway_http.is_none());
    assert!(gateway.addrs.gateway_http.is_some() && gateway.addrs.api.is_none());
    assert!(pipeline.addrs.center.is_some() && pipeline.addrs.api.is_none());
    for app in &cluster.apps {
        assert_ops_endpoints(app).await;
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn all_roles_run_on_the_real_backends_postgres_redis_rabbitmq() {
    let Some(backends) = Backends::real().await else { return };
    let app = TestApp::spawn(&[Role::All], &backends).await;
    assert_ops_endpoints(&app).await;
    app.shutdown().await;
}
