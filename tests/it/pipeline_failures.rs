//! A stop while queued, a full deployment queue, and a consumer killed mid-batch, on both
//! topologies.

use std::time::Duration;

use fctf::store::InstanceState;

use crate::pipeline_support::{HTTP_SERVER, Platform, Topology, on_both_topologies};

on_both_topologies! {
    stop_while_queued => a_stop_while_the_job_is_queued_means_the_instance_never_runs, a_stop_while_the_job_is_queued_means_the_instance_never_runs_postgres;
    queue_full => a_full_queue_answers_the_player_and_releases_the_reservation, a_full_queue_answers_the_player_and_releases_the_reservation_postgres;
    consumer_killed => a_consumer_killed_mid_batch_loses_no_start_and_runs_none_twice, a_consumer_killed_mid_batch_loses_no_start_and_runs_none_twice_postgres;
}

/// One start in flight at a time, held by a challenge that never becomes ready.
const ONE_AT_A_TIME: [(&str, &str); 2] = [("FCTF_CONSUMER__MAX_IN_FLIGHT", "1"), ("FCTF_QUEUE__PREFETCH", "1")];
const BLOCKER: &str = "exec sleep 120";

async fn stop_while_queued(topology: Topology) {
    let Some(platform) = Platform::start(topology, &ONE_AT_A_TIME, &[]).await else { return };
    let (team, _, token) = platform.team("patient").await;
    let blocker = platform.challenge("Blocker", BLOCKER).await;
    let marker = tempfile::NamedTempFile::new().unwrap();
    let command = format!("echo started > '{}'; {HTTP_SERVER}", marker.path().display());
    let queued = platform.challenge("Queued", &command).await;
    assert_eq!(platform.start_instance(&token, blocker).await.0, 200);
    let blocker_id = platform.live(team, blocker).await.unwrap().id;
    platform.wait_state(blocker_id, InstanceState::Deploying).await;
    let (status, body) = platform.start_instance(&token, queued).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = platform.check_status(&token, queued).await;
    assert_eq!((status, body["pod_status"].as_str()), (200, Some("PENDING_DEPLOY")), "{body}");
    assert!(body["queue_position"].as_u64().is_some(), "{body}");
    let queued_id = platform.live(team, queued).await.unwrap().id;
    let (status, body) = platform.stop_instance(&token, queued).await;
    assert_eq!(status, 200, "{body}");
    // Free the runtime: the queued job is consumed now, and must be dropped.
    assert_eq!(platform.stop_instance(&token, blocker).await.0, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let instance = platform.store.get_instance(queued_id).await.unwrap();
    assert_eq!(instance.state, InstanceState::Stopped);
    assert_eq!(instance.ready_at, None);
    assert_eq!(std::fs::read_to_string(marker.path()).unwrap(), "", "the instance never ran");
    assert!(platform.slots(team).await.is_empty());
    platform.stop().await;
}

async fn queue_full(topology: Topology) {
    let mut extra = ONE_AT_A_TIME.to_vec();
    extra.push(("FCTF_QUEUE__MAX_LENGTH", "1"));
    let Some(platform) = Platform::start(topology, &extra, &[("limit_challenges", "10")]).await else { return };
    let (team, _, token) = platform.team("crowd").await;
    let blocker = platform.challenge("Blocker", BLOCKER).await;
    assert_eq!(platform.start_instance(&token, blocker).await.0, 200);
    let blocker_id = platform.live(team, blocker).await.unwrap().id;
    platform.wait_state(blocker_id, InstanceState::Deploying).await;
    let mut refused = None;
    for index in 0..6 {
        let challenge = platform.challenge(&format!("Waiting {index}"), HTTP_SERVER).await;
        let (status, body) = platform.start_instance(&token, challenge).await;
        if status == 429 {
            refused = Some((challenge, body));
            break;
        }
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (challenge, body) = refused.expect("the queue filled up");
    assert_eq!(body["success"], false);
    assert!(body["message"].as_str().unwrap().contains("deployment queue is full"), "{body}");
    assert!(!platform.slots(team).await.contains(&challenge.to_string()), "the reservation is released");
    assert!(platform.live(team, challenge).await.is_none());
    platform.stop().await;
}

async fn consumer_killed(topology: Topology) {
    const TEAMS: usize = 8;
    // Three starts at most in flight: the kill lands while most jobs are still queued.
    let extra =
        [("FCTF_CONSUMER__BATCH_SIZE", "3"), ("FCTF_QUEUE__PREFETCH", "3"), ("FCTF_CONSUMER__MAX_IN_FLIGHT", "3")];
    let Some(platform) = Platform::start_without_consumer(topology, &extra, &[]).await else { return };
    let marks = tempfile::NamedTempFile::new().unwrap();
    // Each start leaves a line, and takes a moment, so the kill lands mid-batch.
    let command = format!(r#"echo "$FCTF_INSTANCE_ID" >> '{}'; sleep 0.3; {HTTP_SERVER}"#, marks.path().display());
    let challenge = platform.challenge("Crash Test", &command).await;
    let mut players = Vec::new();
    for index in 0..TEAMS {
        let (team, _, token) = platform.team(&format!("queued{index}")).await;
        let (status, body) = platform.start_instance(&token, challenge).await;
        assert_eq!(status, 200, "{body}");
        players.push((team, token));
    }
    let mut ids = Vec::new();
    for (team, _) in &players {
        let instance = platform.live(*team, challenge).await.unwrap();
        assert_eq!(instance.state, InstanceState::Queued);
        ids.push(instance.id);
    }
    let first = platform.spawn_consumer();
    // Kill it as soon as it has claimed part of the work.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live = platform.store.list_live_instances(None).await.unwrap();
        if live.iter().any(|instance| instance.state != InstanceState::Queued) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the consumer never claimed a job");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.abort();
    let _ = first.await;
    let claimed_at_kill = std::fs::read_to_string(marks.path()).unwrap().lines().count();
    assert!(claimed_at_kill < TEAMS, "killed before the last start ({claimed_at_kill} of {TEAMS} begun)");
    let second = platform.spawn_consumer();
    for (_, token) in &players {
        let (gateway_token, _) = platform.wait_running(token, challenge).await;
        assert_eq!(platform.through_gateway(&gateway_token).await, 200);
    }
    let mut started: Vec<i64> =
        std::fs::read_to_string(marks.path()).unwrap().lines().map(|line| line.trim().parse().unwrap()).collect();
    started.sort_unstable();
    let mut expected: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    expected.sort_unstable();
    assert_eq!(started, expected, "every instance started exactly once");
    second.abort();
    let _ = second.await;
    platform.stop().await;
}
