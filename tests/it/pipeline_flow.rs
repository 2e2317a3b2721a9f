//! Start → queue → runtime → Running → gateway → stop, end to end, on both topologies.

use std::time::{Duration, Instant};

use fctf::store::InstanceState;

use crate::pipeline_support::{HTTP_SERVER, Platform, Topology, on_both_topologies};

on_both_topologies! {
    start_reach_and_stop => start_runs_is_reachable_through_the_gateway_and_stop_revokes, start_runs_is_reachable_through_the_gateway_and_stop_revokes_postgres;
    expiry => an_instance_past_time_finished_is_stopped_and_refused, an_instance_past_time_finished_is_stopped_and_refused_postgres;
    cache_flush => a_flushed_cache_keeps_instances_running_and_re_caches_them, a_flushed_cache_keeps_instances_running_and_re_caches_them_postgres;
}

/// Polls the gateway until it answers `wanted` (within `limit`).
async fn gateway_answers(platform: &Platform, token: &str, wanted: u16, limit: Duration) -> u16 {
    let deadline = Instant::now() + limit;
    loop {
        let status = platform.through_gateway(token).await;
        if status == wanted || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_reach_and_stop(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("alpha").await;
    let challenge = platform.challenge("Web One", HTTP_SERVER).await;
    let started = Instant::now();
    let (status, body) = platform.start_instance(&token, challenge).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let message = body["message"].as_str().unwrap();
    assert!(["deploying", "running", "deleting"].iter().all(|word| !message.contains(word)), "{message}");
    let (gateway_token, _) = platform.wait_running(&token, challenge).await;
    eprintln!("figure: start -> Running with the local runtime ({topology:?}): {} ms", started.elapsed().as_millis());
    let instance = platform.live(team, challenge).await.unwrap();
    assert_eq!(instance.state, InstanceState::Running);
    assert_eq!(platform.slots(team).await, vec![challenge.to_string()]);
    assert_eq!(platform.through_gateway(&gateway_token).await, 200, "the token reaches the instance");

    let (status, body) = platform.stop_instance(&token, challenge).await;
    assert_eq!(status, 200, "{body}");
    platform.wait_state(instance.id, InstanceState::Stopped).await;
    assert!(platform.slots(team).await.is_empty(), "slot released");
    assert_eq!(gateway_answers(&platform, &gateway_token, 401, Duration::from_secs(2)).await, 401, "token refused");
    let (status, body) = platform.check_status(&token, challenge).await;
    assert_eq!((status, body["pod_status"].as_str()), (200, Some("NOT_FOUND")), "{body}");
    platform.stop().await;
}

async fn expiry(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("beta").await;
    let challenge = platform.challenge("Expiring", HTTP_SERVER).await;
    assert_eq!(platform.start_instance(&token, challenge).await.0, 200);
    let (gateway_token, _) = platform.wait_running(&token, challenge).await;
    let instance = platform.live(team, challenge).await.unwrap();
    assert_eq!(platform.through_gateway(&gateway_token).await, 200);
    let soon = chrono::Utc::now().timestamp() + 1;
    assert!(platform.store.set_instance_expiry(instance.id, soon).await.unwrap());
    let stopped = platform.wait_state(instance.id, InstanceState::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("time limit reached"));
    assert_eq!(gateway_answers(&platform, &gateway_token, 401, Duration::from_secs(2)).await, 401);
    assert!(platform.slots(team).await.is_empty());
    platform.stop().await;
}

async fn cache_flush(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("gamma").await;
    let challenge = platform.challenge("Sturdy", HTTP_SERVER).await;
    assert_eq!(platform.start_instance(&token, challenge).await.0, 200);
    let (gateway_token, _) = platform.wait_running(&token, challenge).await;
    let instance = platform.live(team, challenge).await.unwrap();
    platform.cache.delete_prefix("").await.unwrap();
    assert!(platform.slots(team).await.is_empty(), "flushed");
    assert_eq!(gateway_answers(&platform, &gateway_token, 200, Duration::from_secs(5)).await, 200, "re-cached");
    assert_eq!(platform.slots(team).await, vec![challenge.to_string()]);
    assert_eq!(platform.store.get_instance(instance.id).await.unwrap().state, InstanceState::Running);
    let (status, body) = platform.check_status(&token, challenge).await;
    assert_eq!((status, body["pod_status"].as_str()), (200, Some("Running")), "{body}");
    platform.stop().await;
}
