//! The gateway role wired through `App`: a token minted with the process's gateway secret
//! reaches an instance over HTTP and TCP, and the role stops cleanly with the app.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fctf::app::{App, Deps, RoleSet};
use fctf::cache::Cache;
use fctf::config::{Overrides, Secrets};
use fctf::domain::InstanceId;
use fctf::domain::gateway_token;
use fctf::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

async fn echo_upstream() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0_u8; 4096];
                let mut seen = Vec::new();
                loop {
                    let read = stream.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buffer[..read]);
                    if seen.starts_with(b"GET ") {
                        if seen.windows(4).any(|window| window == b"\r\n\r\n") {
                            let body = "instance says hi";
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(answer.as_bytes()).await;
                            seen.clear();
                        }
                    } else {
                        let _ = stream.write_all(&seen).await;
                        seen.clear();
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_role_serves_http_and_tcp_through_the_app() {
    let mut settings = fctf::config::load_from(None, &HashMap::new(), &Overrides::default()).unwrap();
    settings.ops.listen = "127.0.0.1:0".parse().unwrap();
    settings.gateway.http_listen = "127.0.0.1:0".parse().unwrap();
    settings.gateway.tcp_listen = "127.0.0.1:0".parse().unwrap();
    let secrets = Secrets::random();
    let cache = Cache::memory("it-gateway:");
    let deps = Deps {
        settings: Arc::new(settings),
        roles: RoleSet::parse(&["gateway".to_owned()]).unwrap(),
        store: None,
        cache: cache.clone(),
        producer: None,
        consumer: None,
        runtime: None,
        secrets: secrets.clone(),
        metrics: Metrics::new(),
        control: Default::default(),
    };
    let app = App::build_with(deps).await.unwrap();
    let http = app.addrs().gateway_http.expect("gateway http bound");
    let tcp = app.addrs().gateway_tcp.expect("gateway tcp bound");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));

    let upstream = echo_upstream().await;
    let exp = chrono::Utc::now().timestamp() + 600;
    cache.mark_instance_live(InstanceId(1), exp).await.unwrap();
    let token = gateway_token::mint(secrets.gateway(), exp, &upstream.to_string(), Some(InstanceId(1)));

    let mut stream = TcpStream::connect(http).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: FCTF_Auth_Token={token}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("instance says hi"), "{answer}");

    let mut stream = TcpStream::connect(tcp).await.unwrap();
    let mut prompt = vec![0_u8; 256];
    let read = stream.read(&mut prompt).await.unwrap();
    assert!(String::from_utf8_lossy(&prompt[..read]).contains("Please enter your token"));
    stream.write_all(format!("{token}\nping").as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 256];
    while !received.ends_with(b"ping") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
        assert!(read > 0, "closed early: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..read]);
    }
    assert_eq!(received, b"Access Granted! Connecting to challenge...\nping");
    drop(stream);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), running).await.unwrap().unwrap().unwrap();
}
