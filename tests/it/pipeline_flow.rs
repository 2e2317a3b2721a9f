//! Start → queue → runtime → Running → gateway → stop, end to end, on both topologies.

use std::time::{Duration, Instant};

use fctf::store::InstanceState;

use crate::pipeline_support::{HTTP_SERVER, Platform, Topology, on_both_topologies};

on_both_topologies! {
    start_reach_and_stop => start_runs_is_reachable_through_the_gateway_and_stop_revokes, start_runs_is_reachable_through_the_gateway_and_stop_revokes_postgres;
    expiry => an_instance_past_time_finished_is_stopped_and_refused, an_instance_past_time_finished_is_stopped_and_refused_postgres;
    cache_flush => a_flushed_cache_keeps_instances_running_and_re_caches_them, a_flushed_cache_keeps_instances_running_and_re_caches_them_postgres;
    shared_and_preview => shared_instances_serve_every_team_and_previews_take_no_slot, shared_instances_serve_every_team_and_previews_take_no_slot_postgres;
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
    assert_eq!(platform.gateway_answers(&gateway_token, 401, Duration::from_secs(2)).await, 401, "token refused");
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
    assert_eq!(platform.gateway_answers(&gateway_token, 401, Duration::from_secs(2)).await, 401);
    // The slot is released right after the row turns stopped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !platform.slots(team).await.is_empty() {
        assert!(Instant::now() < deadline, "the slot was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    assert_eq!(platform.gateway_answers(&gateway_token, 200, Duration::from_secs(5)).await, 200, "re-cached");
    assert_eq!(platform.slots(team).await, vec![challenge.to_string()]);
    assert_eq!(platform.store.get_instance(instance.id).await.unwrap().state, InstanceState::Running);
    let (status, body) = platform.check_status(&token, challenge).await;
    assert_eq!((status, body["pod_status"].as_str()), (200, Some("Running")), "{body}");
    platform.stop().await;
}

async fn shared_and_preview(topology: Topology) {
    use fctf::control::{StartRequest, StatusRequest, StopReason, StopRequest};
    use fctf::domain::TeamId;
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("delta").await;
    let shared = platform.challenge_with("Shared", HTTP_SERVER, |spec| spec.deploy.shared_instance = true).await;
    // Players cannot start or stop a shared instance; the organisers do (team -2).
    let (status, body) = platform.start_instance(&token, shared).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not available for deployment"), "{body}");
    let outcome = platform
        .control
        .start(StartRequest { challenge_id: shared, team_id: TeamId::SHARED, user_id: None })
        .await
        .unwrap();
    assert!(outcome.created);
    let (gateway_token, _) = platform.wait_running(&token, shared).await;
    assert_eq!(platform.through_gateway(&gateway_token).await, 200, "every team reaches the shared instance");
    assert_eq!(platform.stop_instance(&token, shared).await.0, 400);
    assert!(platform.slots(team).await.is_empty());
    // An admin preview (team -1) of another challenge runs without touching any team's quota.
    let private = platform.challenge("Private", HTTP_SERVER).await;
    let preview = platform
        .control
        .start(StartRequest { challenge_id: private, team_id: TeamId::PREVIEW, user_id: None })
        .await
        .unwrap();
    let id = preview.instance.instance_id;
    platform.wait_state(id, InstanceState::Running).await;
    let status =
        platform.control.status(StatusRequest { challenge_id: private, team_id: TeamId::PREVIEW }).await.unwrap();
    assert!(status.instance.unwrap().token.is_some());
    for (challenge, team) in [(private, TeamId::PREVIEW), (shared, TeamId::SHARED)] {
        let request = StopRequest { challenge_id: challenge, team_id: team, user_id: None, reason: StopReason::Admin };
        assert_eq!(platform.control.stop(request).await.unwrap().state, "stopped");
    }
    assert_eq!(platform.gateway_answers(&gateway_token, 401, Duration::from_secs(2)).await, 401);
    platform.stop().await;
}
