//! Listener: expiry, failures, ghosts, cache loss, start budget, event end.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::control::testing::{HTTP_SERVER, Pipeline, Run};
use crate::control::{StartRequest, StatusRequest};
use crate::domain::{ChallengeId, InstanceId, TeamId};
use crate::event::EventSettings;
use crate::runtime::InstanceSpec;
use crate::store::InstanceState;

const SLOW: Duration = Duration::from_secs(30);

async fn start(pipeline: &Pipeline, challenge: ChallengeId, team: i64) -> InstanceId {
    let request = StartRequest { challenge_id: challenge, team_id: TeamId(team), user_id: None };
    pipeline.client.start(request).await.unwrap().instance.instance_id
}

#[tokio::test]
async fn an_instance_past_time_finished_is_stopped_and_its_token_refused() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    pipeline.reserve(TeamId(2), challenge, 3).await;
    let id = start(&pipeline, challenge, 2).await;
    let running = pipeline.wait_state(id, InstanceState::Running, SLOW).await;
    let soon = crate::store::now() + 1;
    assert!(pipeline.store.set_instance_expiry(id, soon).await.unwrap());
    let token =
        crate::domain::gateway_token::mint(b"test-gateway", soon, running.upstream.as_deref().unwrap(), Some(id));
    let stopped = pipeline.wait_state(id, InstanceState::Stopped, SLOW).await;
    assert_eq!(stopped.reason.as_deref(), Some("time limit reached"));
    assert!(!pipeline.cache.is_instance_live(id).await.unwrap(), "revoked before the row turns stopped");
    pipeline.wait_no_slots(TeamId(2)).await;
    while crate::store::now() <= soon {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(crate::domain::gateway_token::verify(b"test-gateway", &token, crate::store::now()).is_err(), "expired");
    assert!(tokio::net::TcpStream::connect(running.upstream.unwrap()).await.is_err());
    pipeline.shutdown().await;
}

#[tokio::test]
async fn time_finished_is_capped_at_the_event_end() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let event = EventSettings::load(pipeline.store.clone(), pipeline.cache.clone()).await.unwrap();
    let end = crate::store::now() + 600;
    event.update(&BTreeMap::from([("end".to_owned(), Some(end.to_string()))])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let challenge = pipeline.challenge(HTTP_SERVER, Some(60)).await;
    let id = start(&pipeline, challenge, 3).await;
    let running = pipeline.wait_state(id, InstanceState::Running, SLOW).await;
    assert_eq!(running.expires_at, Some(end));
    pipeline.shutdown().await;
}

#[tokio::test]
async fn the_event_end_stops_every_instance() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let first = start(&pipeline, challenge, 3).await;
    let second = start(&pipeline, challenge, 4).await;
    pipeline.wait_state(first, InstanceState::Running, SLOW).await;
    pipeline.wait_state(second, InstanceState::Running, SLOW).await;
    let event = EventSettings::load(pipeline.store.clone(), pipeline.cache.clone()).await.unwrap();
    let end = crate::store::now() - 1;
    event.update(&BTreeMap::from([("end".to_owned(), Some(end.to_string()))])).await.unwrap();
    for id in [first, second] {
        let stopped = pipeline.wait_state(id, InstanceState::Stopped, SLOW).await;
        assert!(matches!(stopped.reason.as_deref(), Some("the event has ended" | "time limit reached")));
    }
    assert!(pipeline.runtime.list().await.unwrap().is_empty());
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_crash_before_ready_fails_the_instance_with_the_reason_and_releases_it() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let challenge = pipeline.challenge("echo boom; exit 3", None).await;
    pipeline.reserve(TeamId(5), challenge, 3).await;
    let id = start(&pipeline, challenge, 5).await;
    let failed = pipeline.wait_state(id, InstanceState::Failed, SLOW).await;
    assert!(failed.reason.as_deref().unwrap().contains('3'), "{:?}", failed.reason);
    pipeline.wait_no_slots(TeamId(5)).await;
    let status = pipeline.client.status(StatusRequest { challenge_id: challenge, team_id: TeamId(5) }).await.unwrap();
    let view = status.instance.unwrap();
    assert_eq!(view.fctf_status(), "Failed");
    assert!(view.reason.is_some());
    // A new start is possible at once.
    let again = start(&pipeline, challenge, 5).await;
    assert_ne!(again, id);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_deploying_instance_that_never_becomes_ready_fails_after_its_budget() {
    let pipeline = Pipeline::start(
        Run::ALL,
        &[("FCTF_LISTENER__START_TIMEOUT_SECS", "1"), ("FCTF_LISTENER__RESYNC_INTERVAL_SECS", "1")],
    )
    .await;
    let challenge = pipeline.challenge("exec sleep 60", None).await;
    let id = start(&pipeline, challenge, 6).await;
    let failed = pipeline.wait_state(id, InstanceState::Failed, SLOW).await;
    assert_eq!(failed.reason.as_deref(), Some("readiness timeout"));
    let deadline = tokio::time::Instant::now() + SLOW;
    while !pipeline.runtime.list().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "resources never cleaned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pipeline.shutdown().await;
}

#[tokio::test]
async fn ghosts_are_removed_after_the_grace_period_and_live_instances_never() {
    let pipeline = Pipeline::start(
        Run::ALL,
        &[("FCTF_LISTENER__GHOST_GRACE_SECS", "2"), ("FCTF_LISTENER__RESYNC_INTERVAL_SECS", "1")],
    )
    .await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let live = start(&pipeline, challenge, 7).await;
    pipeline.wait_state(live, InstanceState::Running, SLOW).await;
    // A runtime object whose instance record is stopped: a ghost.
    let ghost_row = start(&pipeline, challenge, 8).await;
    pipeline.wait_state(ghost_row, InstanceState::Running, SLOW).await;
    pipeline
        .store
        .transition_instance(ghost_row, &[InstanceState::Running], InstanceState::Stopped, None)
        .await
        .unwrap();
    let listed =
        |ids: Vec<crate::runtime::RuntimeObject>| ids.into_iter().map(|object| object.instance_id).collect::<Vec<_>>();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(listed(pipeline.runtime.list().await.unwrap()).contains(&ghost_row), "kept during the grace period");
    let deadline = tokio::time::Instant::now() + SLOW;
    while listed(pipeline.runtime.list().await.unwrap()).contains(&ghost_row) {
        assert!(tokio::time::Instant::now() < deadline, "the ghost was never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed(pipeline.runtime.list().await.unwrap()), vec![live]);
    assert_eq!(pipeline.store.get_instance(live).await.unwrap().state, InstanceState::Running);
    // An object with no record at all is a ghost too.
    let orphan = InstanceId(9_000_000);
    let spec = InstanceSpec {
        instance_id: orphan,
        team_id: TeamId(1),
        challenge_id: challenge,
        name: "orphan".into(),
        image: None,
        command: Some(HTTP_SERVER.into()),
        port: 0,
        flag: None,
        env: Default::default(),
        max_lifetime_secs: 600,
        container: Default::default(),
    };
    pipeline.runtime.start(spec).await.unwrap();
    let deadline = tokio::time::Instant::now() + SLOW;
    while listed(pipeline.runtime.list().await.unwrap()).contains(&orphan) {
        assert!(tokio::time::Instant::now() < deadline, "the orphan was never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_flushed_cache_never_stops_instances_and_is_rebuilt() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    pipeline.reserve(TeamId(9), challenge, 3).await;
    let id = start(&pipeline, challenge, 9).await;
    let running = pipeline.wait_state(id, InstanceState::Running, SLOW).await;
    assert!(pipeline.cache.is_instance_live(id).await.unwrap());
    pipeline.cache.delete_prefix("").await.unwrap();
    assert!(!pipeline.cache.is_instance_live(id).await.unwrap());
    let deadline = tokio::time::Instant::now() + SLOW;
    while !pipeline.cache.is_instance_live(id).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "never re-cached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pipeline.slots(TeamId(9)).await, vec![challenge.to_string()]);
    assert_eq!(pipeline.store.get_instance(id).await.unwrap().state, InstanceState::Running);
    assert!(tokio::net::TcpStream::connect(running.upstream.unwrap()).await.is_ok(), "still serving");
    pipeline.shutdown().await;
}
