//! Benchmark (ignored; prints figures, asserts no timing): start requests accepted per second
//! and start → Running latency percentiles with the local runtime.
//!
//! `cargo test --release --test it pipeline_bench -- --ignored --nocapture`
//! (`FCTF_BENCH_INSTANCES`, default 40: one instance per team, all started at once).

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

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn bench(topology: Topology) {
    let instances: usize = std::env::var("FCTF_BENCH_INSTANCES").ok().and_then(|text| text.parse().ok()).unwrap_or(40);
    let extra = [("FCTF_RUNTIME__LOCAL__PORT_RANGE_START", "46000"), ("FCTF_RUNTIME__LOCAL__PORT_RANGE_END", "49999")];
    let Some(platform) = Platform::start(topology, &extra, &[]).await else { return };
    // A challenge that starts in a millisecond (socat) measures the pipeline, not Python's
    // start-up; the Python server is the fallback where socat is missing.
    let socat = std::process::Command::new("socat").arg("-V").output().is_ok_and(|output| output.status.success());
    let command = if socat { LIGHT_SERVER } else { HTTP_SERVER };
    let challenge = platform.challenge("Bench", command).await;
    // One start at a time: the latency of a single start on an idle pipeline.
    let (_, _, solo) = platform.team("solo").await;
    let mut single = Vec::new();
    for _ in 0..5 {
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
    let began = Instant::now();
    let starts = futures::future::join_all(players.iter().map(|token| async {
        let sent = Instant::now();
        let (status, body) = platform.start_instance(token, challenge).await;
        assert_eq!(status, 200, "{body}");
        (sent, sent.elapsed())
    }))
    .await;
    let accepted_in = began.elapsed();
    let platform_ref = &platform;
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
    eprintln!(
        "pipeline benchmark ({topology:?}, local runtime, {} challenge, {instances} instances started at once, consumer.max_in_flight 30)",
        if socat { "socat" } else { "python http.server" }
    );
    eprintln!(
        "  start requests accepted: {instances} in {:.0} ms = {:.1} starts/s (answer p50 {:?}, max {:?})",
        accepted_in.as_secs_f64() * 1000.0,
        instances as f64 / accepted_in.as_secs_f64(),
        percentile(&answer_times, 0.5),
        percentile(&answer_times, 1.0),
    );
    eprintln!(
        "  single start -> Running (one at a time, 5 runs): min {:?}  p50 {:?}  max {:?}",
        single[0],
        percentile(&single, 0.5),
        percentile(&single, 1.0)
    );
    eprintln!("  (each player polls check-status every {POLL:?}; latency measured from sending the start request)");
    eprintln!(
        "  start -> Running: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
        percentile(&sorted, 0.99),
        percentile(&sorted, 1.0)
    );
    platform.stop().await;
}
