//! Benchmark (ignored; run `benches/gateway.sh`, which builds with `--release`): the gateway
//! against nginx as a reverse proxy to the same upstream, and against the upstream directly,
//! measured with wrk on loopback; then TCP relay throughput against a direct connection.
//! Prints figures and ratios, asserts nothing about speed. Besides wrk's throughput and
//! latency, each row shows the CPU time the proxy under test spent per request (from
//! `/proc/<pid>/stat`), which stays meaningful on a machine shared with other work.
//!
//! The upstream is a separate nginx (one worker) answering `/` with a short text and serving a
//! 64 KiB file. The proxy nginx gets two workers, upstream keep-alive and no access log; the
//! gateway runs on a two-worker runtime with no log subscriber, in three variants: limits off,
//! limits on over the memory cache, and (with FCTF_TEST_REDIS_URL) limits on over Redis.
//! `FCTF_BENCH_QUICK=1` measures only small responses without limits (for profiling).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::harness::*;
use crate::cache::Cache;

const WRK_SECONDS: &str = "8s";
const WRK_CONNECTIONS: &str = "64";

struct Nginx {
    child: Child,
    conf: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Through the master, so the workers stop too (killing the master would orphan them).
        let stopped = Command::new("nginx")
            .arg("-c")
            .arg(&self.conf)
            .arg("-p")
            .arg(self.dir.path())
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_nginx(workers: u32, server_block: &str, extra_http: &str) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    std::fs::write(dir.path().join("big.bin"), vec![b'x'; 64 * 1024]).unwrap();
    let conf = format!(
        "worker_processes {workers};\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n access_log off;\n client_body_temp_path {root}/body;\n proxy_temp_path {root}/proxy;\n\
         fastcgi_temp_path {root}/fastcgi;\n uwsgi_temp_path {root}/uwsgi;\n scgi_temp_path {root}/scgi;\n\
         {extra_http}\n server {{\n{server_block}\n }}\n}}\n"
    );
    let conf = conf.replace("$ROOT", &root);
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is installed (apt-get install -y nginx wrk)");
    Nginx { child, conf: path, dir }
}

async fn wait_listening(addr: SocketAddr) {
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} never listened");
}

#[derive(Debug, Clone, Copy, Default)]
struct WrkFigures {
    requests_per_sec: f64,
    requests: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// CPU time the proxy under test used per request, in microseconds.
    cpu_us_per_request: f64,
    /// Share of that CPU time spent in user space.
    user_share: f64,
    /// Context switches of the proxy under test per request.
    switches_per_request: f64,
}

/// Context switches (voluntary + involuntary) so far of the given processes (all threads).
fn context_switches(pids: &[u32]) -> f64 {
    let mut total = 0.0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            for line in status.lines() {
                if let Some(value) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    total += value.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
        }
    }
    total
}

/// CPU seconds used so far by the given processes (all their threads): (user, system).
fn cpu_seconds(pids: &[u32]) -> (f64, f64) {
    let ticks_per_second = 100.0;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user / ticks_per_second, system / ticks_per_second))
        })
        .fold((0.0, 0.0), |(user, system), (more_user, more_system)| (user + more_user, system + more_system))
}

/// The nginx master and its workers.
fn nginx_pids(nginx: &Nginx) -> Vec<u32> {
    let master = nginx.child.id();
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
    std::iter::once(master).chain(children.split_whitespace().filter_map(|pid| pid.parse().ok())).collect()
}

fn parse_duration_ms(text: &str) -> f64 {
    let text = text.trim();
    let (number, factor) = if let Some(value) = text.strip_suffix("us") {
        (value, 0.001)
    } else if let Some(value) = text.strip_suffix("ms") {
        (value, 1.0)
    } else if let Some(value) = text.strip_suffix('s') {
        (value, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

async fn wrk(url: String, cookie: Option<String>, measured: Vec<u32>) -> WrkFigures {
    tokio::task::spawn_blocking(move || {
        let cpu_before = cpu_seconds(&measured);
        let switches_before = context_switches(&measured);
        let mut command = Command::new("wrk");
        command.args(["-t2", "-c", WRK_CONNECTIONS, "-d", WRK_SECONDS, "--latency"]);
        if let Some(cookie) = cookie {
            command.arg("-H").arg(format!("Cookie: FCTF_Auth_Token={cookie}"));
        }
        let output = command.arg(&url).output().expect("wrk is installed");
        let cpu_after = cpu_seconds(&measured);
        let user_used = cpu_after.0 - cpu_before.0;
        let cpu_used = user_used + cpu_after.1 - cpu_before.1;
        let switches = context_switches(&measured) - switches_before;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut figures = WrkFigures::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["Requests/sec:", value] => figures.requests_per_sec = value.parse().unwrap_or(0.0),
                [count, "requests", "in", ..] => figures.requests = count.parse().unwrap_or(0.0),
                ["50%", value] => figures.p50_ms = parse_duration_ms(value),
                ["90%", value] => figures.p90_ms = parse_duration_ms(value),
                ["99%", value] => figures.p99_ms = parse_duration_ms(value),
                ["Non-2xx", "or", "3xx", "responses:", value] => figures.errors += value.parse().unwrap_or(0),
                ["Socket", "errors:", ..] => {
                    figures.errors +=
                        fields.iter().filter_map(|field| field.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>()
                }
                _ => {}
            }
        }
        figures.cpu_us_per_request = cpu_used * 1e6 / figures.requests;
        figures.user_share = user_used / cpu_used;
        figures.switches_per_request = switches / figures.requests;
        figures
    })
    .await
    .unwrap()
}

fn print_row(name: &str, figures: WrkFigures, nginx: WrkFigures, direct: WrkFigures) {
    println!(
        "  {name:<22} {:>7.0} req/s  p50 {:>5.2} ms  p90 {:>5.2} ms  p99 {:>6.2} ms  err {:>3}  cpu/req {:>5.1} us ({:>3.0}% user)  cs/req {:>4.2} | rps vs nginx {:>4.2}  vs direct {:>4.2}  p99 vs nginx {:>4.2}  cpu/req vs nginx {:>4.2}",
        figures.requests_per_sec,
        figures.p50_ms,
        figures.p90_ms,
        figures.p99_ms,
        figures.errors,
        figures.cpu_us_per_request,
        figures.user_share * 100.0,
        figures.switches_per_request,
        figures.requests_per_sec / nginx.requests_per_sec,
        figures.requests_per_sec / direct.requests_per_sec,
        figures.p99_ms / nginx.p99_ms,
        figures.cpu_us_per_request / nginx.cpu_us_per_request,
    );
}

async fn start_variant(cache: Cache, limits: bool) -> TestGateway {
    TestGateway::start(cache, |cfg| {
        if limits {
            // On, but high enough that wrk is never refused: measures the limiter's cost.
            cfg.http_ip_rate = 1e9;
            cfg.http_ip_burst = u32::MAX;
            cfg.http_token_rate = 1e9;
            cfg.http_token_burst = u32::MAX;
        } else {
            cfg.http_ip_rate = 0.0;
            cfg.http_token_rate = 0.0;
        }
        cfg.upstream_max_idle_per_host = 256;
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "benchmark: needs nginx and wrk; run benches/gateway.sh (release build)"]
async fn bench_gateway_against_nginx_and_direct() {
    let upstream_port = free_port();
    let upstream_nginx = start_nginx(
        1,
        &format!(
            "  listen 127.0.0.1:{upstream_port};\n  keepalive_requests 1000000;\n  root $ROOT;\n  location = / {{ return 200 \"hello from the challenge\\n\"; }}"
        ),
        "",
    );
    let upstream: SocketAddr = format!("127.0.0.1:{upstream_port}").parse().unwrap();
    wait_listening(upstream).await;
    let proxy_port = free_port();
    let proxy_nginx = start_nginx(
        2,
        &format!(
            "  listen 127.0.0.1:{proxy_port};\n  keepalive_requests 1000000;\n  location / {{ proxy_pass http://challenge; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}"
        ),
        &format!("upstream challenge {{ server {upstream}; keepalive 256; }}"),
    );
    let proxy: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    wait_listening(proxy).await;

    let quick = std::env::var("FCTF_BENCH_QUICK").is_ok();
    let mut variants = vec![("fctf (limits off)", start_variant(memory_cache().await.unwrap(), false).await)];
    if !quick {
        variants.push(("fctf (limits, memory)", start_variant(memory_cache().await.unwrap(), true).await));
        if let Some(cache) = redis_cache().await {
            variants.push(("fctf (limits, redis)", start_variant(cache, true).await));
        }
    }
    println!("\nHTTP, wrk -t2 -c{WRK_CONNECTIONS} -d{WRK_SECONDS} on loopback (2 cores shared with everything else)");
    let paths: &[&str] = if quick { &["/"] } else { &["/", "/big.bin"] };
    for path in paths.iter().copied() {
        let direct = wrk(format!("http://{upstream}{path}"), None, nginx_pids(&upstream_nginx)).await;
        let nginx = wrk(format!("http://{proxy}{path}"), None, nginx_pids(&proxy_nginx)).await;
        println!("path {path}");
        print_row("direct", direct, nginx, direct);
        print_row("nginx proxy", nginx, nginx, direct);
        for (name, gateway) in &variants {
            let token = gateway.mint_live(&upstream.to_string(), 3600, 90).await;
            let figures = wrk(gateway.url(path), Some(token), vec![std::process::id()]).await;
            print_row(name, figures, nginx, direct);
        }
    }
    if std::env::var("FCTF_BENCH_BARE").is_ok() {
        let bare = bare_hyper_proxy(upstream).await;
        let nginx = wrk(format!("http://{proxy}/"), None, nginx_pids(&proxy_nginx)).await;
        let figures = wrk(format!("http://{bare}/"), None, vec![std::process::id()]).await;
        print_row("bare hyper proxy", figures, nginx, nginx);
    }
    if !quick {
        let (_, gateway) = &variants[0];
        tcp_throughput(gateway).await;
    }
}

/// An upstream that counts what it receives until EOF and answers with the count.
async fn counting_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buffer = vec![0_u8; 64 * 1024];
                let mut total: u64 = 0;
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    total += read as u64;
                }
                let _ = stream.write_all(format!("{total}\n").as_bytes()).await;
            });
        }
    });
    addr
}

async fn push(mut stream: TcpStream, bytes: u64) -> u64 {
    let chunk = vec![7_u8; 64 * 1024];
    let mut sent = 0;
    while sent < bytes {
        stream.write_all(&chunk).await.unwrap();
        sent += chunk.len() as u64;
    }
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.trim().parse().unwrap()
}

async fn through_gateway(gateway: &TestGateway, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.tcp).await.unwrap();
    read_until(&mut stream, "Please enter your token").await;
    send_line(&mut stream, token).await;
    read_until(&mut stream, "Access Granted! Connecting to challenge...\n").await;
    stream
}

async fn tcp_throughput(gateway: &TestGateway) {
    let upstream = counting_upstream().await;
    let token = gateway.mint_live(&upstream.to_string(), 3600, 91).await;
    let per_stream: u64 = 512 * 1024 * 1024;
    println!("\nTCP relay, client -> upstream, 64 KiB writes");
    for streams in [1_u64, 8] {
        let bytes = per_stream / streams;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let stream = TcpStream::connect(upstream).await.unwrap();
            tasks.push(tokio::spawn(push(stream, bytes)));
        }
        for task in tasks {
            assert!(task.await.unwrap() >= bytes);
        }
        let direct = (per_stream as f64) / started.elapsed().as_secs_f64() / 1e6;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let stream = through_gateway(gateway, &token).await;
            tasks.push(tokio::spawn(push(stream, bytes)));
        }
        for task in tasks {
            assert!(task.await.unwrap() >= bytes);
        }
        let relayed = (per_stream as f64) / started.elapsed().as_secs_f64() / 1e6;
        println!(
            "  {streams} stream(s), {} MiB total: direct {direct:>7.0} MB/s  via fctf {relayed:>7.0} MB/s  ratio {:.2}",
            per_stream / (1024 * 1024),
            relayed / direct
        );
    }
}

/// A reverse proxy with nothing but hyper and the gateway's upstream connections: the floor
/// of what the gateway can cost per request (`FCTF_BENCH_BARE=1`).
async fn bare_hyper_proxy(upstream: SocketAddr) -> SocketAddr {
    use crate::gateway::body::{BodyProgress, LimitedBody};
    use crate::gateway::upstream::{SharedPool, Upstreams};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pool = std::sync::Arc::new(SharedPool::new(64, Duration::from_secs(90), Duration::from_secs(5)));
    let authority: http::uri::Authority = upstream.to_string().parse().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let _ = stream.set_nodelay(true);
            let pool = pool.clone();
            let authority = authority.clone();
            tokio::spawn(async move {
                let (upstreams, mut driver) = Upstreams::new();
                let upstreams = std::sync::Arc::new(upstreams);
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let upstreams = upstreams.clone();
                    let pool = pool.clone();
                    let authority = authority.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = LimitedBody::new(body, u64::MAX, std::sync::Arc::new(BodyProgress::default()));
                        let response = upstreams
                            .send(&pool, &authority, http::Request::from_parts(parts, body), false)
                            .await
                            .map_err(|error| std::io::Error::other(error.to_string()))?;
                        Ok::<_, std::io::Error>(response)
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    () = driver.run() => {}
                }
            });
        }
    });
    addr
}
