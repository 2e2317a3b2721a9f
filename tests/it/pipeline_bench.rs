//! Benchmark (ignored; prints figures, asserts no timing): start requests accepted per second
//! and start → Running latency percentiles with the local runtime, each against a baseline
//! measured in the same run on the same platform.
//!
//! `cargo test --release --test it pipeline_bench -- --ignored --nocapture`
//! (`FCTF_BENCH_INSTANCES`, default 40: one instance per team, all started at once; the
//! `_postgres` variant needs `FCTF_TEST_DATABASE_URL`, `FCTF_TEST_REDIS_URL`, `FCTF_TEST_AMQP_URL`).
//! The api's rate limits are disabled for the run (every player shares 127.0.0.1).
//!
//! Baselines:
//! - throughput: the same players sending, all at once, one `GET /healthz` each (the api's
//!   cheapest answer) and one `POST /api/Challenge/check-status` each (same authentication, a
//!   store read and a call to center, no reservation and no publish); best of three bursts;
//! - latency: the challenge's own command spawned directly by the test and probed every
//!   millisecond until it accepts a connection, i.e. what the pipeline adds its queue,
//!   consumer, readiness probing (every 100 ms) and status polling to.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::pipeline_support::{HTTP_SERVER, Platform, Topology};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints figures"]
async fn pipeline_bench_embedded() {
    bench(Topology::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints figures; needs postgres, redis and rabbitmq"]
async fn pipeline_bench_postgres() {
    bench(Topology::Split).await;
}

/// A TCP server that starts in about a millisecond.
const LIGHT_SERVER: &str = r#"exec socat TCP-LISTEN:"$PORT",bind="$HOST",fork,reuseaddr SYSTEM:'echo ok'"#;

/// How often each player polls check-status (the portal polls every second).
const POLL: Duration = Duration::from_millis(200);
/// Runs of the one-at-a-time measurements.
const RUNS: usize = 5;
/// A port for the bare-process baseline, outside every range the platforms use.
const BARE_PORT: u16 = 19_990;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Sends `count` requests at once (`request(i)` for each player `i`), three times; returns
/// the best rate, in requests answered per second.
async fn best_burst<F, Fut>(count: usize, request: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = u16>,
{
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let began = Instant::now();
        let statuses = futures::future::join_all((0..count).map(&request)).await;
        let took = began.elapsed();
        assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
        best = best.max(count as f64 / took.as_secs_f64());
    }
    best
}

/// Spawns `command` as the local runtime would and waits until it accepts a connection.
async fn bare_start(command: &str) -> Duration {
    let began = Instant::now();
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("PORT", BARE_PORT.to_string())
        .env("HOST", "127.0.0.1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", BARE_PORT)).await.is_ok() {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(30), "the command never listened");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ready = began.elapsed();
    child.kill().await.unwrap();
    // Wait until the port is free again for the next run.
    while tokio::net::TcpStream::connect(("127.0.0.1", BARE_PORT)).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ready
}

async fn bench(topology: Topology) {
    let instances: usize = std::env::var("FCTF_BENCH_INSTANCES").ok().and_then(|text| text.parse().ok()).unwrap_or(40);
    // Every player comes from 127.0.0.1: the api's rate limits are off for the run.
    let extra = [
        ("FCTF_RUNTIME__LOCAL__PORT_RANGE_START", "10000"),
        ("FCTF_RUNTIME__LOCAL__PORT_RANGE_END", "11999"),
        ("FCTF_API__RATE_LIMITS__IP_BURST", "0"),
        ("FCTF_API__RATE_LIMITS__USER_BURST", "0"),
    ];
    let Some(platform) = Platform::start(topology, &extra, &[]).await else { return };
    // A challenge that starts in a millisecond (socat) measures the pipeline, not Python's
    // start-up; the Python server is the fallback where socat is missing.
    let socat = std::process::Command::new("socat").arg("-V").output().is_ok_and(|output| output.status.success());
    let command = if socat { LIGHT_SERVER } else { HTTP_SERVER };
    let challenge = platform.challenge("Bench", command).await;

    // Latency baseline: the bare command, spawned and probed by the test.
    let mut bare = Vec::new();
    for _ in 0..RUNS {
        bare.push(bare_start(command).await);
    }
    bare.sort();
    // One start at a time: the latency of a single start on an idle pipeline.
    let (_, _, solo) = platform.team("solo").await;
    let mut single = Vec::new();
    for _ in 0..RUNS {
        let sent = Instant::now();
        assert_eq!(platform.start_instance(&solo, challenge).await.0, 200);
        platform.wait_running_every(&solo, challenge, Duration::from_millis(5)).await;
        single.push(sent.elapsed());
        assert_eq!(platform.stop_instance(&solo, challenge).await.0, 200);
    }
    single.sort();

    let mut players = Vec::new();
    for index in 0..instances {
        players.push(platform.team(&format!("bench{index}")).await.2);
    }
    // Throughput baselines, same players, same concurrency.
    let (platform_ref, players_ref) = (&platform, &players);
    let healthz = best_burst(instances, |_| async move {
        platform_ref.http.get(format!("{}/healthz", platform_ref.api)).send().await.unwrap().status().as_u16()
    })
    .await;
    let status_rate =
        best_burst(instances, |index| async move { platform_ref.check_status(&players_ref[index], challenge).await.0 })
            .await;

    let began = Instant::now();
    let starts = futures::future::join_all(players.iter().map(|token| async {
        let sent = Instant::now();
        let (status, body) = platform.start_instance(token, challenge).await;
        assert_eq!(status, 200, "{body}");
        (sent, sent.elapsed())
    }))
    .await;
    let accepted_in = began.elapsed();
    let start_rate = instances as f64 / accepted_in.as_secs_f64();
    let latencies: Vec<Duration> =
        futures::future::join_all(players.iter().zip(&starts).map(|(token, (sent, _))| async move {
            platform_ref.wait_running_every(token, challenge, POLL).await;
            sent.elapsed()
        }))
        .await;
    let mut answer_times: Vec<Duration> = starts.iter().map(|(_, took)| *took).collect();
    answer_times.sort();
    let mut sorted = latencies.clone();
    sorted.sort();

    let bare_p50 = percentile(&bare, 0.5);
    eprintln!(
        "pipeline benchmark ({topology:?}, local runtime, {} challenge, {instances} instances started at once, consumer.max_in_flight 30)",
        if socat { "socat" } else { "python http.server" }
    );
    eprintln!("  baselines, {instances} requests at once, best of 3:");
    eprintln!("    GET /healthz: {healthz:.0} req/s;  POST check-status: {status_rate:.0} req/s");
    eprintln!(
        "  start requests accepted: {instances} in {:.0} ms = {start_rate:.1} starts/s = {:.3} x healthz, {:.3} x check-status (answer p50 {:.1} ms, max {:.1} ms)",
        ms(accepted_in),
        start_rate / healthz,
        start_rate / status_rate,
        ms(percentile(&answer_times, 0.5)),
        ms(percentile(&answer_times, 1.0)),
    );
    eprintln!(
        "  bare command spawn -> accepting (baseline, {RUNS} runs, 1 ms probe): min {:.1} ms  p50 {:.1} ms  max {:.1} ms",
        ms(bare[0]),
        ms(bare_p50),
        ms(percentile(&bare, 1.0))
    );
    eprintln!(
        "  single start -> Running (one at a time, {RUNS} runs, 5 ms status poll): min {:.0} ms  p50 {:.0} ms  max {:.0} ms = p50 {:.1} x bare",
        ms(single[0]),
        ms(percentile(&single, 0.5)),
        ms(percentile(&single, 1.0)),
        ms(percentile(&single, 0.5)) / ms(bare_p50),
    );
    eprintln!(
        "  burst start -> Running (each player polls check-status every {POLL:?}, from sending the start): p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms = p50 {:.1} x, p99 {:.1} x bare",
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.9)),
        ms(percentile(&sorted, 0.99)),
        ms(percentile(&sorted, 1.0)),
        ms(percentile(&sorted, 0.5)) / ms(bare_p50),
        ms(percentile(&sorted, 0.99)) / ms(bare_p50),
    );
    platform.stop().await;
}
