//! Benchmarks (ignored; run `benches/gateway.sh`, which builds with `--release`).
//!
//! `bench_gateway_against_nginx_and_direct`: the gateway against nginx as a reverse proxy to the
//! same upstream, and against the upstream directly, measured with wrk on loopback; then TCP
//! relay throughput against a direct connection (then one stream per largest relay buffer, for
//! plaintext and TLS clients). Every row is measured in several rounds that
//! alternate between the contenders (the machine is shared, so load drifts) and the medians are
//! shown, with the per-round ratios. Besides wrk's throughput and latency, each row shows the
//! CPU time the proxy under test spent per request (from `/proc/<pid>/stat`).
//!
//! `callgrind_instructions_against_nginx`: user-space instructions per request of nginx and of
//! the gateway, each run under callgrind, which counts the same on an idle or a loaded machine.
//!
//! The upstream is a separate nginx (one worker) answering `/` with a short text and serving a
//! 64 KiB file. The proxy nginx gets as many workers as the gateway has io threads (two; set
//! FCTF_BENCH_IO_THREADS=0 to serve on the test's two-thread shared runtime instead),
//! upstream keep-alive, buffers that hold a 64 KiB answer and no access log; the gateway runs
//! with no log subscriber, in three variants: limits off, limits on over the memory cache, and
//! (with FCTF_TEST_REDIS_URL) limits on over Redis. Prints figures and ratios, asserts nothing
//! about speed. FCTF_BENCH_TCP_ONLY=1 runs only the TCP relay part (no wrk needed); with the nginx
//! stream module installed (`libnginx-mod-stream`) it also measures nginx as a TCP proxy.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::harness::*;
use super::tls_cases::{connector, test_cert};
use crate::cache::Cache;

const WRK_CONNECTIONS: &str = "64";

struct Nginx {
    child: Child,
    conf: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Runs `command` (nginx, or a wrapper ending in `nginx`) on the configuration `conf`.
    fn spawn(mut command: Command, conf: std::path::PathBuf, dir: tempfile::TempDir) -> Self {
        let child = command
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (apt-get install -y nginx wrk)");
        Self { child, conf, dir }
    }
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
    start_nginx_with(&[], workers, server_block, extra_http)
}

/// Starts nginx, run through `prefix` (e.g. valgrind) when it is not empty: then as a single
/// process without a master.
fn start_nginx_with(prefix: &[&str], workers: u32, server_block: &str, extra_http: &str) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    std::fs::write(dir.path().join("big.bin"), vec![b'x'; 64 * 1024]).unwrap();
    let master = if prefix.is_empty() { "" } else { "master_process off;\n" };
    let conf = format!(
        "worker_processes {workers};\n{master}daemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n access_log off;\n client_body_temp_path {root}/body;\n proxy_temp_path {root}/proxy;\n\
         fastcgi_temp_path {root}/fastcgi;\n uwsgi_temp_path {root}/uwsgi;\n scgi_temp_path {root}/scgi;\n\
         {extra_http}\n server {{\n{server_block}\n }}\n}}\n"
    );
    let conf = conf.replace("$ROOT", &root);
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg("nginx");
            command
        }
        None => Command::new("nginx"),
    };
    Nginx::spawn(command, path, dir)
}

/// Where Debian's `libnginx-mod-stream` puts nginx's TCP proxy module.
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// nginx as a TCP proxy (`stream`, `WORKERS` workers) in front of `upstream`, when the stream
/// module is installed (`apt-get install -y libnginx-mod-stream`).
async fn start_stream_nginx(upstream: SocketAddr) -> Option<(Nginx, SocketAddr)> {
    if !std::path::Path::new(STREAM_MODULE).exists() {
        println!("  (nginx stream module not installed: apt-get install -y libnginx-mod-stream for an nginx row)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = format!(
        "load_module {STREAM_MODULE};\nworker_processes {WORKERS};\ndaemon off;\npid {root}/nginx.pid;\n\
         error_log {root}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         stream {{\n server {{\n  listen {proxy};\n  proxy_pass {upstream};\n  proxy_buffer_size 256k;\n  proxy_half_close on;\n }}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let nginx = Nginx::spawn(Command::new("nginx"), path, dir);
    wait_listening(proxy).await;
    Some((nginx, proxy))
}

async fn wait_listening(addr: SocketAddr) {
    // Long enough for a process starting under valgrind.
    for _ in 0..1200 {
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

fn wrk_duration() -> String {
    format!("{}s", env_number("FCTF_BENCH_SECONDS", 6))
}

async fn wrk(url: String, cookie: Option<String>, measured: Vec<u32>) -> WrkFigures {
    wrk_with(url, cookie, measured, WRK_CONNECTIONS.to_owned(), wrk_duration()).await
}

async fn wrk_with(
    url: String,
    cookie: Option<String>,
    measured: Vec<u32>,
    connections: String,
    duration: String,
) -> WrkFigures {
    tokio::task::spawn_blocking(move || {
        let cpu_before = cpu_seconds(&measured);
        let switches_before = context_switches(&measured);
        let mut command = Command::new("wrk");
        command.args(["-t2", "-c", &connections, "-d", &duration, "--latency"]);
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
    start_variant_with(cache, limits, |_| {}).await
}

async fn start_variant_with(
    cache: Cache,
    limits: bool,
    tweak: impl FnOnce(&mut crate::gateway::Config),
) -> TestGateway {
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
        cfg.io_threads = env_number("FCTF_BENCH_IO_THREADS", u64::from(WORKERS)) as usize;
        tweak(cfg);
    })
    .await
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn load_line() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let up_minutes = uptime.split_whitespace().next().and_then(|value| value.parse::<f64>().ok()).unwrap_or(0.0) / 60.0;
    format!("up {up_minutes:.0} min, load average {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// The element-wise median of several measurements of one row.
fn median(rows: &[WrkFigures]) -> WrkFigures {
    let pick = |field: fn(&WrkFigures) -> f64| {
        let mut values: Vec<f64> = rows.iter().map(field).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    WrkFigures {
        requests_per_sec: pick(|row| row.requests_per_sec),
        requests: pick(|row| row.requests),
        p50_ms: pick(|row| row.p50_ms),
        p90_ms: pick(|row| row.p90_ms),
        p99_ms: pick(|row| row.p99_ms),
        errors: rows.iter().map(|row| row.errors).sum(),
        cpu_us_per_request: pick(|row| row.cpu_us_per_request),
        user_share: pick(|row| row.user_share),
        switches_per_request: pick(|row| row.switches_per_request),
    }
}

/// Warnings nginx wrote (e.g. responses buffered to temporary files), which would make the
/// comparison unfair to it.
fn nginx_warnings(nginx: &Nginx) -> String {
    std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default()
}

/// The reverse-proxy nginx: `workers` processes (as many as the gateway's runtime threads),
/// keep-alive to the upstream, buffers large enough that a 64 KiB answer never goes to a
/// temporary file, no access log.
async fn start_proxy_nginx(workers: u32, upstream: SocketAddr, prefix: &[&str]) -> (Nginx, SocketAddr) {
    let proxy_port = free_port();
    let nginx = start_nginx_with(
        prefix,
        workers,
        &format!(
            "  listen 127.0.0.1:{proxy_port};\n  keepalive_requests 1000000;\n  location / {{ proxy_pass http://challenge; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffer_size 16k; proxy_buffers 8 16k; proxy_busy_buffers_size 32k; }}"
        ),
        &format!("upstream challenge {{ server {upstream}; keepalive 256; }}"),
    );
    let proxy: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    wait_listening(proxy).await;
    (nginx, proxy)
}

/// The upstream: one nginx worker answering `/` with a short text and serving `/big.bin`.
async fn start_upstream_nginx() -> (Nginx, SocketAddr) {
    let upstream_port = free_port();
    let nginx = start_nginx(
        1,
        &format!(
            "  listen 127.0.0.1:{upstream_port};\n  keepalive_requests 1000000;\n  root $ROOT;\n  location = / {{ return 200 \"hello from the challenge\\n\"; }}"
        ),
        "",
    );
    let upstream: SocketAddr = format!("127.0.0.1:{upstream_port}").parse().unwrap();
    wait_listening(upstream).await;
    (nginx, upstream)
}

const WORKERS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: needs nginx and wrk; run benches/gateway.sh (release build)"]
async fn bench_gateway_against_nginx_and_direct() {
    if std::env::var("FCTF_BENCH_TCP_ONLY").is_ok() {
        let gateway = start_variant(memory_cache().await.unwrap(), false).await;
        tcp_throughput(&gateway, env_number("FCTF_BENCH_ROUNDS", 3).max(1)).await;
        return;
    }
    let (upstream_nginx, upstream) = start_upstream_nginx().await;
    let (proxy_nginx, proxy) = start_proxy_nginx(WORKERS, upstream, &[]).await;

    let quick = std::env::var("FCTF_BENCH_QUICK").is_ok();
    let rounds = env_number("FCTF_BENCH_ROUNDS", 3).max(1);
    let mut variants = vec![("fctf (limits off)", start_variant(memory_cache().await.unwrap(), false).await)];
    if !quick {
        variants.push(("fctf (limits, memory)", start_variant(memory_cache().await.unwrap(), true).await));
        if let Some(cache) = redis_cache().await {
            variants.push(("fctf (limits, redis)", start_variant(cache, true).await));
        }
    }
    let mut tokens = Vec::new();
    for (index, (_, gateway)) in variants.iter().enumerate() {
        tokens.push(gateway.mint_live(&upstream.to_string(), 3600, 90 + index as i64).await);
    }
    println!(
        "\nHTTP, wrk -t2 -c{WRK_CONNECTIONS} -d{} on loopback; nginx {WORKERS} workers, fctf io_threads {}; \
         {rounds} alternating rounds, medians shown\n  before: {}",
        wrk_duration(),
        env_number("FCTF_BENCH_IO_THREADS", u64::from(WORKERS)),
        load_line()
    );
    let paths: &[&str] = if quick { &["/"] } else { &["/", "/big.bin"] };
    for path in paths.iter().copied() {
        let mut direct_rows = Vec::new();
        let mut nginx_rows = Vec::new();
        let mut variant_rows = vec![Vec::new(); variants.len()];
        for _ in 0..rounds {
            direct_rows.push(wrk(format!("http://{upstream}{path}"), None, nginx_pids(&upstream_nginx)).await);
            nginx_rows.push(wrk(format!("http://{proxy}{path}"), None, nginx_pids(&proxy_nginx)).await);
            for (index, (_, gateway)) in variants.iter().enumerate() {
                let figures = wrk(gateway.url(path), Some(tokens[index].clone()), vec![std::process::id()]).await;
                variant_rows[index].push(figures);
            }
        }
        let direct = median(&direct_rows);
        let nginx = median(&nginx_rows);
        println!("path {path}");
        print_row("direct", direct, nginx, direct);
        print_row("nginx proxy", nginx, nginx, direct);
        for (index, (name, _)) in variants.iter().enumerate() {
            print_row(name, median(&variant_rows[index]), nginx, direct);
            let per_round: Vec<String> = variant_rows[index]
                .iter()
                .zip(&nginx_rows)
                .map(|(fctf, nginx)| format!("{:.2}", fctf.requests_per_sec / nginx.requests_per_sec))
                .collect();
            println!("  {:<22} rps vs nginx per round: {}", "", per_round.join(" "));
        }
    }
    println!("  after: {}", load_line());
    let warnings = nginx_warnings(&proxy_nginx);
    if !warnings.trim().is_empty() {
        println!("proxy nginx warnings:\n{warnings}");
    }
    if !quick {
        let (_, gateway) = &variants[0];
        tcp_throughput(gateway, rounds).await;
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

async fn push<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: u64) -> u64 {
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

async fn through_gateway_tls(gateway: &TestGateway, token: &str, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let stream = TcpStream::connect(gateway.tcp).await.unwrap();
    let server_name = ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(server_name, stream).await.unwrap();
    read_until(&mut stream, "Please enter your token").await;
    send_line(&mut stream, token).await;
    read_until(&mut stream, "Access Granted! Connecting to challenge...\n").await;
    stream
}

/// Megabytes per second of `streams` parallel pushes of `total` bytes, opened by `open`.
async fn push_rate<F, Fut, S>(streams: u64, total: u64, open: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    push_rate_and_cpu(streams, total, open).await.0
}

/// [`push_rate`], and the CPU milliseconds this process (client, upstream and gateway alike)
/// spent per gigabyte meanwhile.
async fn push_rate_and_cpu<F, Fut, S>(streams: u64, total: u64, open: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let bytes = total / streams;
    let cpu_before = cpu_seconds(&[std::process::id()]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        tasks.push(tokio::spawn(push(open().await, bytes)));
    }
    for task in tasks {
        assert!(task.await.unwrap() >= bytes);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(&[std::process::id()]);
    let cpu = (cpu_after.0 + cpu_after.1) - (cpu_before.0 + cpu_before.1);
    ((total as f64) / elapsed / 1e6, cpu * 1e3 / (total as f64 / 1e9))
}

async fn tcp_throughput(gateway: &TestGateway, rounds: u64) {
    let upstream = counting_upstream().await;
    let token = gateway.mint_live(&upstream.to_string(), 3600, 91).await;
    let total: u64 = 512 * 1024 * 1024;
    println!("\nTCP relay, client -> upstream, 64 KiB writes, {rounds} alternating rounds, medians shown");
    let stream_nginx = start_stream_nginx(upstream).await;
    for streams in [1_u64, 8] {
        let mut direct = Vec::new();
        let mut relayed = Vec::new();
        let mut proxied = Vec::new();
        let mut direct_cpu = Vec::new();
        let mut relayed_cpu = Vec::new();
        for _ in 0..rounds {
            let (rate, cpu) =
                push_rate_and_cpu(streams, total, || async { TcpStream::connect(upstream).await.unwrap() }).await;
            direct.push(rate);
            direct_cpu.push(cpu);
            let (rate, cpu) = push_rate_and_cpu(streams, total, || through_gateway(gateway, &token)).await;
            relayed.push(rate);
            relayed_cpu.push(cpu);
            if let Some((_, proxy)) = &stream_nginx {
                let proxy = *proxy;
                let (rate, _) =
                    push_rate_and_cpu(streams, total, || async move { TcpStream::connect(proxy).await.unwrap() }).await;
                proxied.push(rate);
            }
        }
        let ratios: Vec<f64> = relayed.iter().zip(&direct).map(|(relayed, direct)| relayed / direct).collect();
        println!(
            "  {streams} stream(s), {} MiB total: direct {:>7.0} MB/s  via fctf {:>7.0} MB/s  ratio {:.2} (per round: {})",
            total / (1024 * 1024),
            median_of(&direct),
            median_of(&relayed),
            median_of(&ratios),
            ratios.iter().map(|ratio| format!("{ratio:.2}")).collect::<Vec<_>>().join(" "),
        );
        if !proxied.is_empty() {
            let against: Vec<f64> = relayed.iter().zip(&proxied).map(|(relayed, nginx)| relayed / nginx).collect();
            let nginx_direct: Vec<f64> = proxied.iter().zip(&direct).map(|(nginx, direct)| nginx / direct).collect();
            println!(
                "  {:<32} via nginx stream {:>7.0} MB/s (vs direct {:.2})  fctf vs nginx {:.2} (per round: {})",
                "",
                median_of(&proxied),
                median_of(&nginx_direct),
                median_of(&against),
                against.iter().map(|ratio| format!("{ratio:.2}")).collect::<Vec<_>>().join(" "),
            );
        }
        println!(
            "  {:<32} CPU of the whole process per GB: direct {:>4.0} ms  via fctf {:>4.0} ms",
            "",
            median_of(&direct_cpu),
            median_of(&relayed_cpu),
        );
    }
    drop(stream_nginx);
    buffer_size_throughput(upstream, rounds, false).await;
    buffer_size_throughput(upstream, rounds, true).await;
}

fn median_of(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One stream per largest relay buffer (`tcp_copy_buf_bytes`), each through its own gateway,
/// plaintext or TLS clients, against a plaintext direct connection in the same rounds. A TLS
/// client encrypts in this process too, so its ratios are lower; what they compare is the sizes.
async fn buffer_size_throughput(upstream: SocketAddr, rounds: u64, tls: bool) {
    let cert = test_cert();
    let connector = connector(&cert);
    let sizes = [32 * 1024, 256 * 1024, 1024 * 1024];
    let mut gateways = Vec::new();
    for size in sizes {
        let gateway = start_variant_with(memory_cache().await.unwrap(), false, |cfg| {
            if tls {
                cfg.tls_cert_file = cert.cert_file.clone();
                cfg.tls_key_file = cert.key_file.clone();
            }
            cfg.tcp_copy_buf_bytes = size;
        })
        .await;
        let token = gateway.mint_live(&upstream.to_string(), 3600, 93).await;
        gateways.push((gateway, token));
    }
    let total: u64 = 256 * 1024 * 1024;
    let mut direct = Vec::new();
    let mut relayed = vec![Vec::new(); sizes.len()];
    for _ in 0..rounds {
        direct.push(push_rate(1, total, || async { TcpStream::connect(upstream).await.unwrap() }).await);
        for (index, (gateway, token)) in gateways.iter().enumerate() {
            let rate = if tls {
                push_rate(1, total, || through_gateway_tls(gateway, token, &connector)).await
            } else {
                push_rate(1, total, || through_gateway(gateway, token)).await
            };
            relayed[index].push(rate);
        }
    }
    let clients = if tls { "TLS clients (encrypting in-process)" } else { "plaintext clients" };
    println!("TCP relay by largest buffer, {clients}, 1 stream, {} MiB, direct is plaintext", total >> 20);
    for (index, size) in sizes.iter().enumerate() {
        let ratios: Vec<f64> = relayed[index].iter().zip(&direct).map(|(relayed, direct)| relayed / direct).collect();
        println!(
            "  up to {:>4} KiB: direct {:>7.0} MB/s  via fctf {:>7.0} MB/s  ratio {:.2} (per round: {})",
            size / 1024,
            median_of(&direct),
            median_of(&relayed[index]),
            median_of(&ratios),
            ratios.iter().map(|ratio| format!("{ratio:.2}")).collect::<Vec<_>>().join(" "),
        );
    }
}

/// User-space instructions per request of a process running under callgrind: warm up, zero
/// its counters, drive it with wrk, read the counters back.
async fn instructions_per_request(pid: u32, url: String, cookie: Option<String>) -> (f64, f64) {
    let connections = "8".to_owned();
    wrk_with(url.clone(), cookie.clone(), Vec::new(), connections.clone(), "3s".to_owned()).await;
    let control = |args: &[&str]| {
        let output = Command::new("callgrind_control").args(args).arg(pid.to_string()).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    control(&["-z"]);
    let figures = wrk_with(url, cookie, Vec::new(), connections, "10s".to_owned()).await;
    let counters = control(&["-e", "Ir"]);
    // "  Totals:    Ir" then one "   Th <n>  12,345" line per thread.
    let instructions: f64 = counters
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Th "))
        .filter_map(|rest| rest.split_whitespace().nth(1))
        .filter_map(|count| count.replace(',', "").parse::<f64>().ok())
        .sum();
    assert!(instructions > 0.0, "no callgrind counters read: {counters}");
    (instructions / figures.requests, figures.requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: needs nginx, wrk and valgrind; run benches/gateway.sh callgrind (release build)"]
async fn callgrind_instructions_against_nginx() {
    let (_upstream_nginx, upstream) = start_upstream_nginx().await;
    let dir = tempfile::tempdir().unwrap();
    let out_file = |name: &str| format!("--callgrind-out-file={}/{name}.%p", dir.path().display());
    println!(
        "\nUser-space instructions per request under callgrind (wrk -c8; kernel work not counted); fctf io_threads {} \
         (FCTF_BENCH_IO_THREADS; 0: on the runtime threads shown); {}",
        env_number("FCTF_BENCH_IO_THREADS", u64::from(WORKERS)),
        load_line()
    );
    for path in ["/", "/big.bin"] {
        let nginx_out = out_file("nginx");
        let (nginx, proxy) = start_proxy_nginx(1, upstream, &["valgrind", "--tool=callgrind", &nginx_out]).await;
        let (nginx_ir, nginx_requests) =
            instructions_per_request(nginx.child.id(), format!("http://{proxy}{path}"), None).await;
        drop(nginx);
        let mut rows = vec![("nginx proxy (1 process)".to_owned(), nginx_ir, nginx_requests)];
        for (limits, workers) in [("off", "1"), ("memory", "1"), ("off", "2")] {
            let control = dir.path().join(format!("serve-{limits}-{workers}"));
            let mut child = Command::new("valgrind")
                .args(["--tool=callgrind", &out_file("fctf")])
                .arg(std::env::current_exe().unwrap())
                .args(["gateway::tests::bench::serve_for_profiling", "--exact", "--ignored", "--test-threads", "1"])
                .env("FCTF_PROFILE_UPSTREAM", upstream.to_string())
                .env("FCTF_PROFILE_CONTROL", &control)
                .env("FCTF_PROFILE_LIMITS", limits)
                .env("FCTF_PROFILE_WORKERS", workers)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("valgrind is installed");
            let deadline = Instant::now() + Duration::from_secs(120);
            let announced = loop {
                if let Ok(text) = std::fs::read_to_string(&control)
                    && text.ends_with('\n')
                {
                    break text;
                }
                assert!(Instant::now() < deadline, "the profiled gateway never announced itself");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let (addr, token) = announced.trim().split_once(' ').unwrap();
            let (ir, requests) =
                instructions_per_request(child.id(), format!("http://{addr}{path}"), Some(token.to_owned())).await;
            let _ = std::fs::remove_file(&control);
            let stopped = tokio::task::spawn_blocking(move || {
                for _ in 0..100 {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            });
            stopped.await.unwrap();
            rows.push((format!("fctf (limits {limits}, {workers} runtime thread(s))"), ir, requests));
        }
        println!("path {path}");
        for (name, ir, requests) in &rows {
            println!(
                "  {name:<30} {ir:>9.0} instructions/request ({requests:.0} requests)  vs nginx {:.2}",
                ir / nginx_ir
            );
        }
    }
}

/// A gateway for an outside profiler (see `callgrind_instructions_against_nginx`): in front of
/// FCTF_PROFILE_UPSTREAM, limits per FCTF_PROFILE_LIMITS (`off` or `memory`), on
/// FCTF_PROFILE_WORKERS runtime threads. Writes "<http address> <token>\n" to
/// FCTF_PROFILE_CONTROL and serves until that file is removed (at most ten minutes).
#[test]
#[ignore = "started by callgrind_instructions_against_nginx"]
fn serve_for_profiling() {
    let (Ok(upstream), Ok(control)) = (std::env::var("FCTF_PROFILE_UPSTREAM"), std::env::var("FCTF_PROFILE_CONTROL"))
    else {
        eprintln!("FCTF_PROFILE_UPSTREAM and FCTF_PROFILE_CONTROL are not set; nothing to serve");
        return;
    };
    let limits = std::env::var("FCTF_PROFILE_LIMITS").is_ok_and(|value| value == "memory");
    let workers = env_number("FCTF_PROFILE_WORKERS", 1).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    runtime.block_on(async move {
        let gateway = start_variant(memory_cache().await.unwrap(), limits).await;
        let token = gateway.mint_live(&upstream, 3600, 92).await;
        let temporary = format!("{control}.tmp");
        std::fs::write(&temporary, format!("{} {token}\n", gateway.http)).unwrap();
        std::fs::rename(&temporary, &control).unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        while std::path::Path::new(&control).exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gateway.stop().await;
    });
}
