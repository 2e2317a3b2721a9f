//! A cache outage: with the default (fail-open) rules players keep playing after one short wait;
//! with fail-closed rules they are refused. Uses a private `redis-server` that the test kills, so
//! it runs only when Redis tests are enabled (FCTF_TEST_REDIS_URL) and the binary exists.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::header;
use tokio::net::TcpStream;

use super::harness::*;
use crate::cache::{Cache, CacheBackendKind, CacheConfig};
use crate::config::Secret;

struct PrivateRedis {
    child: Child,
    url: String,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn private_redis() -> Option<PrivateRedis> {
    if std::env::var("FCTF_TEST_REDIS_URL").is_err() {
        eprintln!("FCTF_TEST_REDIS_URL is not set; skipping the cache outage test");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("redis-server cannot be started ({error}); skipping the cache outage test");
            return None;
        }
    };
    let redis = PrivateRedis { child, url: format!("redis://127.0.0.1:{port}") };
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(redis);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("private redis-server did not start");
}

async fn connect(url: &str) -> Cache {
    let cfg = CacheConfig { backend: CacheBackendKind::Redis, url: Secret::new(url), prefix: "gw-outage:".to_owned() };
    Cache::from_config(&cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_outage_fails_open_by_default_and_closed_when_configured_redis() {
    let Some(mut redis) = private_redis().await else { return };
    let upstream = http_upstream().await;
    let echo = tcp_echo().await;
    let open = TestGateway::start(connect(&redis.url).await, |_| {}).await;
    let closed = TestGateway::start(connect(&redis.url).await, |cfg| {
        cfg.liveness_fail_open = false;
        cfg.limits_fail_open = false;
    })
    .await;
    let liveness_only_closed =
        TestGateway::start(connect(&redis.url).await, |cfg| cfg.liveness_fail_open = false).await;
    let known = open.mint_live(&upstream.to_string(), 600, 60).await;
    let tcp_token = open.mint_live(&echo.to_string(), 600, 62).await;
    let client = client();
    let get = |gateway: &TestGateway, token: &str| {
        client.get(gateway.url("/")).header(header::COOKIE, format!("FCTF_Auth_Token={token}")).send()
    };
    assert_eq!(get(&open, &known).await.unwrap().status(), 200);

    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let started = Instant::now();
    assert_eq!(get(&open, &known).await.unwrap().status(), 200, "the remembered liveness answer is reused");
    // One cache timeout (250 ms) and no more; generous for a loaded machine.
    assert!(started.elapsed() < Duration::from_millis(2500), "one short wait: {:?}", started.elapsed());
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(get(&open, &known).await.unwrap().status(), 200);
    }
    // Without the breaker each request would wait out at least one cache timeout (2.5 s in all).
    assert!(started.elapsed() < Duration::from_millis(2000), "later requests skip the cache: {:?}", started.elapsed());
    let unknown = open.mint(&upstream.to_string(), 600, Some(crate::domain::InstanceId(61)));
    assert_eq!(get(&open, &unknown).await.unwrap().status(), 200, "fail-open lets an unknown instance through");

    let mut stream = TcpStream::connect(open.tcp).await.unwrap();
    read_until(&mut stream, "Please enter your token").await;
    send_line(&mut stream, &tcp_token).await;
    read_until(&mut stream, "Access Granted!").await;

    assert_eq!(get(&closed, &known).await.unwrap().status(), 429, "fail-closed limits refuse");
    let refused = get(&liveness_only_closed, &unknown).await.unwrap();
    assert_eq!(refused.status(), 401, "fail-closed liveness refuses an instance it cannot check");
}
