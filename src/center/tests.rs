//! Center: the instance state machine through the control client, and the signed HTTP API.

use std::time::Duration;

use crate::cache::SlotReservation;
use crate::control::signature::{KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::control::testing::{HTTP_SERVER, Pipeline, Run};
use crate::control::{Client, ControlError, StartRequest, StatusRequest, StopReason, StopRequest, paths};
use crate::domain::{ChallengeId, TeamId};
use crate::store::InstanceState;

const SLOW: Duration = Duration::from_secs(30);

fn start(challenge_id: ChallengeId, team: i64) -> StartRequest {
    StartRequest { challenge_id, team_id: TeamId(team), user_id: None }
}

fn stop(challenge_id: ChallengeId, team: i64) -> StopRequest {
    StopRequest { challenge_id, team_id: TeamId(team), user_id: None, reason: StopReason::User }
}

#[tokio::test]
async fn start_runs_with_a_bound_token_and_stop_revokes_and_releases() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, Some(30)).await;
    assert_eq!(pipeline.reserve(TeamId(7), challenge, 3).await, SlotReservation::Reserved);
    let outcome = pipeline.client.start(start(challenge, 7)).await.unwrap();
    assert!(outcome.created);
    let id = outcome.instance.instance_id;
    let running = pipeline.wait_state(id, InstanceState::Running, SLOW).await;
    let expires_at = running.expires_at.unwrap();
    let now = crate::store::now();
    assert!((expires_at - (now + 30 * 60)).abs() <= 5, "time_finished = start + time limit");
    let upstream = running.upstream.clone().unwrap();
    assert!(tokio::net::TcpStream::connect(&upstream).await.is_ok());

    let status = pipeline.client.status(StatusRequest { challenge_id: challenge, team_id: TeamId(7) }).await.unwrap();
    let view = status.instance.unwrap();
    assert_eq!(view.fctf_status(), "Running");
    let claims = crate::domain::gateway_token::verify(b"test-gateway", view.token.as_deref().unwrap(), now).unwrap();
    assert_eq!((claims.exp, claims.route.as_str(), claims.instance_id), (expires_at, upstream.as_str(), Some(id)));
    assert!(pipeline.cache.is_instance_live(id).await.unwrap());
    assert_eq!(pipeline.slots(TeamId(7)).await, vec![challenge.to_string()]);

    let stopped = pipeline.client.stop(stop(challenge, 7)).await.unwrap();
    assert_eq!(stopped.state, "stopped");
    assert!(!pipeline.cache.is_instance_live(id).await.unwrap());
    assert!(pipeline.slots(TeamId(7)).await.is_empty());
    assert!(tokio::net::TcpStream::connect(&upstream).await.is_err(), "the process is gone");
    let after = pipeline.client.status(StatusRequest { challenge_id: challenge, team_id: TeamId(7) }).await.unwrap();
    assert_eq!(after.instance, None);
    assert!(matches!(pipeline.client.stop(stop(challenge, 7)).await, Err(ControlError::NotFound(_))));
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_second_start_returns_the_live_instance() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let first = pipeline.client.start(start(challenge, 3)).await.unwrap();
    let second = pipeline.client.start(start(challenge, 3)).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.instance.instance_id, second.instance.instance_id);
    assert_eq!(second.instance.fctf_status(), "PENDING_DEPLOY");
    assert_eq!(second.instance.queue_position, Some(1));
    let other_team = pipeline.client.start(start(challenge, 4)).await.unwrap();
    assert_eq!(other_team.instance.queue_position, Some(2));
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_stop_while_queued_means_the_instance_never_runs() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: true }, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let id = pipeline.client.start(start(challenge, 5)).await.unwrap().instance.instance_id;
    let stopped = pipeline.client.stop(stop(challenge, 5)).await.unwrap();
    assert_eq!(stopped.state, "stopped");
    let producer = pipeline.deps.producer.clone().unwrap();
    assert_eq!(producer.depth().await.unwrap(), 1, "the job is still queued");
    let consumer = pipeline.spawn_consumer();
    let deadline = tokio::time::Instant::now() + SLOW;
    while producer.depth().await.unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the consumer never took the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pipeline.store.get_instance(id).await.unwrap().state, InstanceState::Stopped);
    assert!(pipeline.runtime.list().await.unwrap().is_empty(), "nothing was started");
    consumer.abort();
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_answers_an_error_and_releases_the_reservation() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[("FCTF_QUEUE__MAX_LENGTH", "1")]).await;
    let first = pipeline.challenge(HTTP_SERVER, None).await;
    let second = pipeline.challenge(HTTP_SERVER, None).await;
    assert_eq!(pipeline.reserve(TeamId(9), first, 3).await, SlotReservation::Reserved);
    pipeline.client.start(start(first, 9)).await.unwrap();
    assert_eq!(pipeline.reserve(TeamId(9), second, 3).await, SlotReservation::Reserved);
    let refused = pipeline.client.start(start(second, 9)).await.unwrap_err();
    assert_eq!(refused, ControlError::QueueFull);
    assert_eq!(refused.status(), 429);
    assert_eq!(pipeline.slots(TeamId(9)).await, vec![first.to_string()], "the refused start's slot is released");
    assert!(pipeline.live(TeamId(9), second).await.is_none());
    let failed = pipeline.store.list_instances(Some(TeamId(9)), Some(second), 0, 1).await.unwrap();
    assert_eq!(failed[0].state, InstanceState::Failed);
    assert!(failed[0].reason.as_deref().unwrap().contains("queue is full"), "{:?}", failed[0].reason);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn of_ten_concurrent_stops_exactly_one_stops() {
    let pipeline = Pipeline::start(Run::ALL, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let id = pipeline.client.start(start(challenge, 11)).await.unwrap().instance.instance_id;
    pipeline.wait_state(id, InstanceState::Running, SLOW).await;
    let stops = (0..10).map(|_| pipeline.client.stop(stop(challenge, 11)));
    let results = futures::future::join_all(stops).await;
    let stopped = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(stopped, 1, "{results:?}");
    for result in results.into_iter().filter_map(Result::err) {
        assert!(matches!(result, ControlError::Conflict(_) | ControlError::NotFound(_)), "{result:?}");
    }
    assert_eq!(pipeline.store.get_instance(id).await.unwrap().state, InstanceState::Stopped);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn the_remote_client_signs_and_center_refuses_bad_stale_and_replayed_requests() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let base = format!("http://{}", pipeline.center_addr);
    let remote = Client::remote(&base, pipeline.deps.secrets.clone()).unwrap();
    assert!(!remote.is_local());
    let outcome = remote.start(start(challenge, 21)).await.unwrap();
    assert!(outcome.created);
    let again = remote.status(StatusRequest { challenge_id: challenge, team_id: TeamId(21) }).await.unwrap();
    assert_eq!(again.instance.unwrap().instance_id, outcome.instance.instance_id);
    // Identical requests in the same second still get distinct signatures (nonce).
    let statuses = futures::future::join_all(
        (0..5).map(|_| remote.status(StatusRequest { challenge_id: challenge, team_id: TeamId(21) })),
    )
    .await;
    assert!(statuses.iter().all(Result::is_ok), "{statuses:?}");
    let wrong_key =
        Client::remote(&base, crate::config::Secrets::from_values("k1", b"j", b"g", b"wrong", b"f")).unwrap();
    let refused = wrong_key.status(StatusRequest { challenge_id: challenge, team_id: TeamId(21) }).await.unwrap_err();
    assert!(
        matches!(&refused, ControlError::Unauthorized(message) if message.contains("invalid request signature")),
        "{refused:?}"
    );

    let http = reqwest::Client::new();
    let body = format!(r#"{{"challenge_id":{challenge},"team_id":21}}"#);
    let post = |timestamp: i64, signature: String| {
        http.post(format!("{base}{}", paths::STATUS))
            .header(KEY_ID_HEADER, "k1")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone())
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let signature = sign(b"test-internal", "POST", paths::STATUS, now, body.as_bytes());
    assert_eq!(post(now, signature.clone()).await.unwrap().status(), 200);
    let replay = post(now, signature).await.unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("replayed"));
    let stale = now - 120;
    let stale_signature = sign(b"test-internal", "POST", paths::STATUS, stale, body.as_bytes());
    assert_eq!(post(stale, stale_signature).await.unwrap().status(), 401);
    let unsigned = http.post(format!("{base}{}", paths::STATUS)).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn builds_need_kubernetes_and_build_reports_are_idempotent() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let refused = pipeline
        .client
        .build(crate::control::BuildRequest {
            challenge_id: challenge,
            context_url: "http://files/ctx.tar".into(),
            image: "registry/x:1".into(),
            dockerfile: None,
            user_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(refused, ControlError::Unavailable(ref message) if message.contains("kubernetes")), "{refused:?}");
    let report = |succeeded: bool, workflow: &str| crate::control::BuildReport {
        challenge_id: challenge,
        finished_at: 1,
        image: "registry/x:2".into(),
        kind: "build".into(),
        message: (!succeeded).then(|| "step failed".to_owned()),
        phase: if succeeded { "Succeeded" } else { "Error" }.into(),
        succeeded,
        workflow: workflow.into(),
    };
    pipeline.client.build_report(report(true, "build-1")).await.unwrap();
    pipeline.client.build_report(report(true, "build-1")).await.unwrap();
    let stored = pipeline.store.get_challenge(challenge).await.unwrap();
    assert_eq!(stored.deploy_status.as_deref(), Some("DEPLOY_SUCCEEDED"));
    assert_eq!(stored.spec.deploy.image.as_deref(), Some("registry/x:2"));
    assert_eq!(stored.spec.state, crate::store::ChallengeState::Visible);
    assert_eq!(pipeline.store.list_deploy_history(challenge).await.unwrap().len(), 1);
    pipeline.client.build_report(report(false, "build-2")).await.unwrap();
    let stored = pipeline.store.get_challenge(challenge).await.unwrap();
    assert_eq!(stored.deploy_status.as_deref(), Some("DEPLOY_FAILED"));
    assert_eq!(stored.spec.state, crate::store::ChallengeState::Hidden);
    assert_eq!(pipeline.store.list_deploy_history(challenge).await.unwrap().len(), 2);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn stop_all_needs_an_admin() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[]).await;
    let refused =
        pipeline.client.stop_all(crate::control::StopAllRequest { user_id: crate::domain::UserId(999) }).await;
    assert!(matches!(refused, Err(ControlError::Forbidden(_))), "{refused:?}");
    pipeline.shutdown().await;
}
