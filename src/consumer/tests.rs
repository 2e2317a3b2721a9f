//! Consumer: the global cap, crash safety (no job lost, none run twice), bounded retries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::deploy::{Outcome, Worker};
use crate::control::lifecycle::Lifecycle;
use crate::control::testing::{HTTP_SERVER, Pipeline, Run};
use crate::control::{StartRequest, StopReason};
use crate::domain::{InstanceId, TeamId};
use crate::queue::DeployJob;
use crate::runtime::{InstanceEvent, InstanceSpec, Runtime, RuntimeBackend, RuntimeError, RuntimeObject};
use crate::store::InstanceState;

const SLOW: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_no_job_and_runs_none_twice() {
    killed_mid_batch(&[]).await;
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_no_job_and_runs_none_twice_rabbitmq() {
    let Ok(url) = std::env::var("FCTF_TEST_AMQP_URL") else {
        eprintln!("skipped: FCTF_TEST_AMQP_URL is not set");
        return;
    };
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let (exchange, queue) = (format!("{prefix}deployment_exchange"), format!("{prefix}deployment_queue"));
    killed_mid_batch(&[
        ("FCTF_QUEUE__BACKEND", "rabbitmq"),
        ("FCTF_QUEUE__URL", &url),
        ("FCTF_QUEUE__VHOST", "/"),
        ("FCTF_QUEUE__EXCHANGE", &exchange),
        ("FCTF_QUEUE__QUEUE", &queue),
    ])
    .await;
}

async fn killed_mid_batch(extra: &[(&str, &str)]) {
    let mut settings = vec![("FCTF_CONSUMER__BATCH_SIZE", "4")];
    settings.extend_from_slice(extra);
    let pipeline = Pipeline::start(Run { consumer: false, listener: true }, &settings).await;
    let marks = tempfile::NamedTempFile::new().unwrap();
    let command = format!(r#"echo "$FCTF_INSTANCE_ID" >> '{}'; sleep 0.3; {HTTP_SERVER}"#, marks.path().display());
    let challenge = pipeline.challenge(&command, None).await;
    let mut ids = Vec::new();
    for team in 1..=12 {
        let request = StartRequest { challenge_id: challenge, team_id: TeamId(team), user_id: None };
        ids.push(pipeline.client.start(request).await.unwrap().instance.instance_id);
    }
    let first = pipeline.spawn_consumer();
    // Kill it as soon as it has claimed part of the work.
    let deadline = tokio::time::Instant::now() + SLOW;
    loop {
        let claimed = pipeline
            .store
            .list_live_instances(None)
            .await
            .unwrap()
            .iter()
            .filter(|instance| instance.state != InstanceState::Queued)
            .count();
        if claimed > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.abort();
    let _ = first.await;
    let second = pipeline.spawn_consumer();
    for id in &ids {
        pipeline.wait_state(*id, InstanceState::Running, SLOW).await;
    }
    let text = std::fs::read_to_string(marks.path()).unwrap();
    let mut started: Vec<i64> = text.lines().map(|line| line.trim().parse().unwrap()).collect();
    started.sort_unstable();
    let mut expected: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    expected.sort_unstable();
    assert_eq!(started, expected, "every instance started exactly once");
    assert_eq!(pipeline.deps.producer.clone().unwrap().depth().await.unwrap(), 0);
    second.abort();
    pipeline.shutdown().await;
}

#[tokio::test]
async fn starts_in_flight_never_exceed_the_global_cap() {
    let pipeline =
        Pipeline::start(Run::ALL, &[("FCTF_CONSUMER__MAX_IN_FLIGHT", "2"), ("FCTF_CONSUMER__POLL_INTERVAL_MS", "20")])
            .await;
    let command = format!("sleep 0.4; {HTTP_SERVER}");
    let challenge = pipeline.challenge(&command, None).await;
    let mut ids = Vec::new();
    for team in 1..=6 {
        let request = StartRequest { challenge_id: challenge, team_id: TeamId(team), user_id: None };
        ids.push(pipeline.client.start(request).await.unwrap().instance.instance_id);
    }
    let mut highest = 0;
    let deadline = tokio::time::Instant::now() + SLOW;
    loop {
        highest = highest.max(pipeline.runtime.in_flight().await.unwrap());
        let live = pipeline.store.list_live_instances(None).await.unwrap();
        if live.iter().all(|instance| instance.state == InstanceState::Running) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not all instances came up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(highest <= 2, "{highest} starts were in flight at once");
    assert_eq!(highest, 2, "the cap was used");
    for (index, id) in ids.iter().enumerate() {
        let team = TeamId(i64::try_from(index).unwrap() + 1);
        let instance = pipeline.store.get_instance(*id).await.unwrap();
        assert_eq!(instance.state, InstanceState::Running, "{instance:?}");
        assert!(pipeline.client.stop_after_solve(team, challenge, StopReason::Solved).await.unwrap());
        assert_eq!(pipeline.store.get_instance(*id).await.unwrap().state, InstanceState::Stopped);
    }
    pipeline.shutdown().await;
}

/// A runtime whose starts always fail transiently.
struct Unreachable;

#[async_trait]
impl RuntimeBackend for Unreachable {
    async fn start(&self, _spec: InstanceSpec) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable("cluster unreachable".into()))
    }
    async fn stop(&self, instance_id: InstanceId) -> Result<(), RuntimeError> {
        Err(RuntimeError::NotFound(instance_id))
    }
    async fn logs(&self, instance_id: InstanceId, _tail_lines: usize) -> Result<String, RuntimeError> {
        Err(RuntimeError::NotFound(instance_id))
    }
    async fn in_flight(&self) -> Result<usize, RuntimeError> {
        Ok(0)
    }
    async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError> {
        Ok(Vec::new())
    }
    fn watch(&self) -> BoxStream<'static, InstanceEvent> {
        Box::pin(futures::stream::pending())
    }
    async fn shutdown(&self, _grace: Duration) {}
}

#[tokio::test]
async fn transient_failures_are_retried_then_dead_lettered_with_the_instance_failed() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    assert_eq!(pipeline.reserve(TeamId(4), challenge, 3).await, crate::cache::SlotReservation::Reserved);
    let request = StartRequest { challenge_id: challenge, team_id: TeamId(4), user_id: None };
    let instance = pipeline.client.start(request).await.unwrap().instance;
    let runtime = Runtime::from_backend(Arc::new(Unreachable));
    let worker = Worker {
        lifecycle: Lifecycle::new(pipeline.store.clone(), pipeline.cache.clone(), runtime),
        max_deliveries: 3,
        queue_timeout_secs: 300,
        start_budget_secs: 60,
    };
    let job = DeployJob {
        instance_id: instance.instance_id,
        challenge_id: challenge,
        team_id: TeamId(4),
        user_id: None,
        enqueued_at: crate::store::now(),
    };
    for delivery in 1..3 {
        assert!(matches!(worker.deploy(&job, delivery).await, Outcome::Retry { .. }));
        assert_eq!(pipeline.store.get_instance(instance.instance_id).await.unwrap().state, InstanceState::Deploying);
    }
    assert_eq!(worker.deploy(&job, 3).await, Outcome::DeadLetter);
    let failed = pipeline.store.get_instance(instance.instance_id).await.unwrap();
    assert_eq!(failed.state, InstanceState::Failed);
    assert!(failed.reason.unwrap().contains("cluster unreachable"));
    assert!(pipeline.slots(TeamId(4)).await.is_empty(), "the slot is released");
    // A redelivery of the dead job does nothing.
    assert_eq!(worker.deploy(&job, 4).await, Outcome::Done);
    pipeline.shutdown().await;
}

#[tokio::test]
async fn a_job_older_than_the_queue_timeout_fails_its_instance() {
    let pipeline = Pipeline::start(Run { consumer: false, listener: false }, &[]).await;
    let challenge = pipeline.challenge(HTTP_SERVER, None).await;
    let request = StartRequest { challenge_id: challenge, team_id: TeamId(8), user_id: None };
    let instance = pipeline.client.start(request).await.unwrap().instance;
    let worker = Worker {
        lifecycle: Lifecycle::new(pipeline.store.clone(), pipeline.cache.clone(), pipeline.runtime.clone()),
        max_deliveries: 3,
        queue_timeout_secs: 300,
        start_budget_secs: 60,
    };
    let job = DeployJob {
        instance_id: instance.instance_id,
        challenge_id: challenge,
        team_id: TeamId(8),
        user_id: None,
        enqueued_at: crate::store::now() - 301,
    };
    assert_eq!(worker.deploy(&job, 1).await, Outcome::Done);
    let failed = pipeline.store.get_instance(instance.instance_id).await.unwrap();
    assert_eq!(failed.state, InstanceState::Failed);
    assert!(pipeline.runtime.list().await.unwrap().is_empty());
    pipeline.shutdown().await;
}
