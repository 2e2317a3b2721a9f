//! Contestant API benchmark (ignored by default; prints figures, asserts nothing about speed).
//!
//! Seeds 500 teams (one player each), 50 challenges and 10,000 solves, then measures
//! throughput and latency percentiles of `/healthz` (the baseline), `/api/Scoreboard/top/10`,
//! the challenge list of a category, wrong-flag submissions and correct-flag submissions (each
//! logged-in player's unsolved challenges: 64 × 30 new solves), with 32 concurrent clients,
//! spread over the api processes. Rate limits are disabled for the run.
//!
//! ```text
//! cargo test --release --test it contestant_benchmark -- --ignored --nocapture
//! FCTF_TEST_DATABASE_URL=… FCTF_TEST_REDIS_URL=… FCTF_TEST_AMQP_URL=… (for the postgres_redis run)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use fctf::domain::{ChallengeId, TeamId, UserId};
use fctf::store::{Account, NewChallenge, NewFlag, NewTeam, NewUser, UserRole};
use serde_json::json;

use crate::contestant_support::{Event, Kind, password_hash};

const TEAMS: usize = 500;
const CHALLENGES: usize = 50;
const SOLVES_PER_TEAM: usize = 20;
const CLIENTS: usize = 32;
const REQUESTS: usize = 3000;
const PLAYERS_LOGGED_IN: usize = 64;

async fn seed(event: &Event) -> (Vec<(UserId, String)>, Vec<ChallengeId>) {
    let mut challenges = Vec::new();
    for index in 0..CHALLENGES {
        let spec = NewChallenge {
            name: format!("bench{index}"),
            category: if index % 2 == 0 { "web".into() } else { "pwn".into() },
            value: 100 + index as i64,
            ..NewChallenge::default()
        };
        let challenge = event.store.create_challenge(&spec).await.unwrap();
        let flag = NewFlag {
            challenge_id: challenge.id,
            kind: "static".into(),
            content: format!("FCTF{{bench{index}}}"),
            data: None,
        };
        event.store.create_flag(&flag).await.unwrap();
        challenges.push(challenge.id);
    }
    let hash = password_hash();
    let mut players = Vec::new();
    for index in 0..TEAMS {
        let team =
            event.store.create_team(&NewTeam { name: format!("team{index:03}"), ..NewTeam::default() }).await.unwrap();
        let name = format!("player{index:03}");
        let user = NewUser {
            name: name.clone(),
            email: None,
            password_hash: hash.clone(),
            role: UserRole::User,
            verified: true,
        };
        let user_id = event.store.create_user(&user).await.unwrap();
        event.store.add_team_member(team.id, user_id, None).await.unwrap();
        players.push((user_id, name, team.id));
    }
    let parallel = if event.kind == Kind::Embedded { 1 } else { 16 };
    let store = event.store.clone();
    let work: Vec<(UserId, TeamId, ChallengeId)> = players
        .iter()
        .enumerate()
        .flat_map(|(index, (user, _, team))| {
            let challenges = &challenges;
            (0..SOLVES_PER_TEAM).map(move |k| (*user, *team, challenges[(index * 7 + k) % CHALLENGES]))
        })
        .collect();
    let work = Arc::new(tokio::sync::Mutex::new(work));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let work = work.clone();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((user, team, challenge)) = work.lock().await.pop() else { break };
                let account = Account { user_id: user, team_id: Some(team) };
                store.record_solve(challenge, account, "seeded", None).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (players.into_iter().map(|(user, name, _)| (user, name)).collect(), challenges)
}

struct Figures {
    name: &'static str,
    requests: usize,
    per_second: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(name: &'static str, requests: usize, request: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let request = request.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if index >= requests {
                    break;
                }
                let sent = Instant::now();
                let status = request(index).await;
                assert!(status < 500, "{name}: HTTP {status}");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |quantile: f64| latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)];
    Figures {
        name,
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
    }
}

async fn benchmark(kind: Kind) {
    let extra = [
        ("FCTF_API__RATE_LIMITS__IP_BURST", "0"),
        ("FCTF_API__RATE_LIMITS__USER_BURST", "0"),
        ("FCTF_STORE__MAX_CONNECTIONS", "16"),
    ];
    let Some(mut event) = Event::prepare(kind, &extra).await else { return };
    event.configure(&[("incorrect_submissions_per_min", "0")]).await;
    let seeding = Instant::now();
    let (players, challenges) = seed(&event).await;
    let seeded_in = seeding.elapsed();
    event.start().await;
    let mut tokens = Vec::new();
    for (index, (_, name)) in players.iter().take(PLAYERS_LOGGED_IN).enumerate() {
        tokens.push(event.login(index, name).await);
    }
    let event = Arc::new(event);
    let tokens = Arc::new(tokens);
    let mut results = Vec::new();
    {
        let event = event.clone();
        results.push(
            measure("GET /healthz (baseline)", REQUESTS, move |index| {
                let event = event.clone();
                async move { event.client.get(event.url(index, "/healthz")).send().await.unwrap().status().as_u16() }
            })
            .await,
        );
    }
    {
        let event = event.clone();
        results.push(
            measure("GET /api/Scoreboard/top/10", REQUESTS, move |index| {
                let event = event.clone();
                async move {
                    event.client.get(event.url(index, "/api/Scoreboard/top/10")).send().await.unwrap().status().as_u16()
                }
            })
            .await,
        );
    }
    {
        let event = event.clone();
        let tokens = tokens.clone();
        results.push(
            measure("GET /api/Challenge/list_challenge/web", REQUESTS, move |index| {
                let event = event.clone();
                let tokens = tokens.clone();
                async move {
                    let url = event.url(index, "/api/Challenge/list_challenge/web");
                    event
                        .client
                        .get(url)
                        .bearer_auth(&tokens[index % tokens.len()])
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            })
            .await,
        );
    }
    {
        let event = event.clone();
        let tokens = tokens.clone();
        let challenges = Arc::new(challenges.clone());
        results.push(measure("POST /api/Challenge/attempt (wrong flag)", REQUESTS, move |index| {
            let event = event.clone();
            let tokens = tokens.clone();
            let challenges = challenges.clone();
            async move {
                let body = json!({"challengeId": challenges[index % challenges.len()].get(), "submission": format!("FCTF{{nope{index}}}")});
                let url = event.url(index, "/api/Challenge/attempt");
                event.client.post(url).bearer_auth(&tokens[index % tokens.len()]).json(&body).send().await.unwrap().status().as_u16()
            }
        }).await);
    }
    {
        // Correct flags: every logged-in player's unsolved challenges (a new solve each, with
        // the value update and the scoreboard invalidation that come with it).
        let event = event.clone();
        let tokens = tokens.clone();
        let challenges = Arc::new(challenges);
        let work: Vec<(usize, usize)> = (0..tokens.len())
            .flat_map(|player| (SOLVES_PER_TEAM..CHALLENGES).map(move |k| (player, (player * 7 + k) % CHALLENGES)))
            .collect();
        let work = Arc::new(work);
        let count = work.len();
        results.push(
            measure("POST /api/Challenge/attempt (correct flag)", count, move |index| {
                let event = event.clone();
                let tokens = tokens.clone();
                let work = work.clone();
                let challenges = challenges.clone();
                async move {
                    let (player, number) = work[index];
                    let challenge = challenges[number];
                    let body = json!({"challengeId": challenge.get(), "submission": format!("FCTF{{bench{number}}}")});
                    let url = event.url(index, "/api/Challenge/attempt");
                    let response =
                        event.client.post(url).bearer_auth(&tokens[player]).json(&body).send().await.unwrap();
                    let status = response.status().as_u16();
                    let answer: serde_json::Value = response.json().await.unwrap();
                    assert_eq!(answer["data"]["status"], "correct", "{answer}");
                    status
                }
            })
            .await,
        );
    }
    let baseline = results[0].per_second;
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "\ncontestant benchmark — {kind:?}, {} api process(es), {build} build; {TEAMS} teams, {CHALLENGES} challenges, {} solves (seeded in {:.1?}); {CLIENTS} concurrent clients",
        event.apis.len(),
        TEAMS * SOLVES_PER_TEAM,
        seeded_in
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("machine load (1, 5, 15 min): {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    }
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "requests", "req/s", "vs base", "p50", "p95", "p99"
    );
    for figures in &results {
        println!(
            "{:<44} {:>8} {:>9.0} {:>8.2}x {:>9.1?} {:>9.1?} {:>9.1?}",
            figures.name,
            figures.requests,
            figures.per_second,
            figures.per_second / baseline,
            figures.p50,
            figures.p95,
            figures.p99
        );
    }
    match Arc::try_unwrap(event) {
        Ok(event) => event.stop().await,
        Err(_) => eprintln!("benchmark event still shared; not stopped cleanly"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints figures; run with --ignored --nocapture"]
async fn contestant_benchmark_embedded() {
    benchmark(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints figures; run with --ignored --nocapture"]
async fn contestant_benchmark_postgres_redis() {
    benchmark(Kind::PostgresRedis).await;
}
