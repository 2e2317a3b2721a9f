//! The queue conformance suite: every case runs against `MemoryQueue` and, when
//! `FCTF_TEST_AMQP_URL` is set (e.g. `amqp://guest:guest@127.0.0.1:5672`), against RabbitMQ.
//!
//! `conformance!` generates `queue::tests::memory::<case>` and `queue::tests::rabbitmq::<case>`.
//! Each RabbitMQ test uses its own exchange and queue names (random prefix, default vhost `/`
//! unless the URL names one) and deletes them afterwards, even when the case panics.
//! RabbitMQ-only behaviour (connection loss, unreachable broker) is tested at the end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use super::*;
use crate::domain::{ChallengeId, InstanceId, TeamId, UserId};

/// Upper bound for anything a case waits for (a hang guard, not a performance claim).
const WAIT: Duration = Duration::from_secs(20);
/// How long a case waits to be sure nothing more is delivered.
const QUIET: Duration = Duration::from_millis(400);

#[derive(Clone)]
enum Backend {
    Memory(MemoryQueue),
    Rabbit(Arc<RabbitQueue>),
}

/// One backend under test with its configuration, producer and first consumer.
#[derive(Clone)]
pub(crate) struct Harness {
    backend: Backend,
    producer: QueueProducer,
    consumer: QueueConsumer,
    max_deliveries: u32,
}

fn test_config(backend: QueueBackendKind, url: &str, max_length: u32) -> QueueConfig {
    QueueConfig {
        backend,
        url: crate::config::Secret::new(url),
        vhost: "/".to_owned(),
        exchange: "deploy_exchange".to_owned(),
        queue: "deploy_queue".to_owned(),
        routing_key: "deploy".to_owned(),
        max_length,
        prefetch: 10,
        max_deliveries: 3,
        confirm_timeout_secs: 5,
    }
}

impl Harness {
    fn memory(max_length: u32) -> Self {
        let cfg = test_config(QueueBackendKind::Memory, "", max_length);
        let queue = MemoryQueue::new(cfg.max_length as usize);
        Self {
            producer: QueueProducer { backend: Arc::new(queue.clone()) },
            consumer: QueueConsumer { backend: Arc::new(queue.clone()), max_deliveries: cfg.max_deliveries },
            backend: Backend::Memory(queue),
            max_deliveries: cfg.max_deliveries,
        }
    }

    /// `None` (test skipped) when `FCTF_TEST_AMQP_URL` is unset; panics when it is set and the
    /// broker is unreachable.
    async fn rabbitmq(max_length: u32) -> Option<Self> {
        let Ok(url) = std::env::var("FCTF_TEST_AMQP_URL") else {
            eprintln!("FCTF_TEST_AMQP_URL unset; skipping rabbitmq queue test");
            return None;
        };
        let prefix = format!("fctf_test_{:016x}_", rand::rng().random::<u64>());
        let cfg = test_config(QueueBackendKind::Rabbitmq, &url, max_length).with_prefix(&prefix);
        let queue = match RabbitQueue::connect(&cfg).await {
            Ok(queue) => Arc::new(queue),
            Err(error) => panic!("FCTF_TEST_AMQP_URL is set but rabbitmq is unusable: {error}"),
        };
        Some(Self {
            producer: QueueProducer { backend: Arc::new(queue.producer()) },
            consumer: QueueConsumer { backend: Arc::new(queue.consumer()), max_deliveries: cfg.max_deliveries },
            backend: Backend::Rabbit(queue),
            max_deliveries: cfg.max_deliveries,
        })
    }

    /// Another consumer of the same queue (RabbitMQ: its own connection and channel).
    fn extra_consumer(&self) -> QueueConsumer {
        let backend: Arc<dyn ConsumerBackend> = match &self.backend {
            Backend::Memory(queue) => Arc::new(queue.clone()),
            Backend::Rabbit(queue) => Arc::new(queue.consumer()),
        };
        QueueConsumer { backend, max_deliveries: self.max_deliveries }
    }

    /// Publishes bytes that are not a `Task`.
    async fn publish_raw(&self, payload: &[u8]) {
        self.producer.backend.publish(payload.to_vec()).await.expect("raw publish");
    }

    /// Waits until `expected` messages were dead-lettered and returns their bodies.
    async fn dead_lettered(&self, expected: usize) -> Vec<Vec<u8>> {
        let mut bodies = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match &self.backend {
                Backend::Memory(queue) => bodies = queue.dead_letters().into_iter().map(|dead| dead.payload).collect(),
                Backend::Rabbit(queue) => {
                    bodies.extend(queue.take_dead_letters_for_test().await.expect("read the dlq"))
                }
            }
            if bodies.len() >= expected || tokio::time::Instant::now() > deadline {
                return bodies;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn cleanup(&self) {
        if let Backend::Rabbit(queue) = &self.backend {
            queue.delete_topology_for_test().await;
        }
    }
}

/// Runs one case, then cleans up even if it panicked, then reports the panic.
async fn run<F, Fut>(harness: Harness, case: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(tokio::time::timeout(WAIT * 3, case(harness.clone()))).await;
    harness.cleanup().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("queue test case timed out"),
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

macro_rules! conformance {
    ($($case:ident(max_length = $max_length:expr)),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Harness::memory($max_length), super::$case).await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(harness) = super::Harness::rabbitmq($max_length).await {
                        super::run(harness, super::$case).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    round_trip_delivers_the_deploy_job(max_length = 10),
    delivers_in_fifo_order(max_length = 20),
    refuses_publish_when_ready_messages_reach_max_length(max_length = 3),
    retry_redelivers_with_delivery_count_two(max_length = 10),
    dead_letters_after_max_deliveries(max_length = 10),
    dead_letters_an_undecodable_payload(max_length = 10),
    redelivers_a_delivery_dropped_unsettled(max_length = 10),
    concurrent_consumers_ack_every_message_exactly_once(max_length = 300),
    depth_counts_ready_messages(max_length = 10),
);

fn job(n: i64) -> Task {
    Task::Deploy(DeployJob {
        instance_id: InstanceId(n),
        challenge_id: ChallengeId(7),
        team_id: TeamId(5),
        user_id: Some(UserId(77)),
        enqueued_at: 1_712_345_678,
    })
}

fn instance(task: &Task) -> i64 {
    match task {
        Task::Deploy(job) => job.instance_id.get(),
    }
}

async fn next(consumer: &QueueConsumer) -> Delivery {
    match tokio::time::timeout(WAIT, consumer.next()).await {
        Ok(Ok(delivery)) => delivery,
        Ok(Err(error)) => panic!("receive failed: {error}"),
        Err(_) => panic!("no delivery within {WAIT:?}"),
    }
}

async fn assert_nothing_delivered(consumer: &QueueConsumer) {
    if let Ok(result) = tokio::time::timeout(QUIET, consumer.next()).await {
        panic!("unexpected delivery: {:?}", result.map(|delivery| delivery.task));
    }
}

async fn round_trip_delivers_the_deploy_job(h: Harness) {
    h.producer.publish(&job(1)).await.expect("publish");
    let delivery = next(&h.consumer).await;
    assert_eq!(delivery.task, job(1));
    assert_eq!(delivery.delivery_count, 1);
    delivery.ack().await.expect("ack");
    assert_nothing_delivered(&h.consumer).await;
    assert_eq!(h.producer.depth().await.expect("depth"), 0);
}

async fn delivers_in_fifo_order(h: Harness) {
    for n in 0..10 {
        h.producer.publish(&job(n)).await.expect("publish");
    }
    for n in 0..10 {
        let delivery = next(&h.consumer).await;
        assert_eq!(instance(&delivery.task), n);
        delivery.ack().await.expect("ack");
    }
}

async fn refuses_publish_when_ready_messages_reach_max_length(h: Harness) {
    for n in 0..3 {
        h.producer.publish(&job(n)).await.expect("publish below max_length");
    }
    assert!(matches!(h.producer.publish(&job(3)).await, Err(QueueError::Full)));
    assert_eq!(h.producer.depth().await.expect("depth"), 3);
    // A delivered but unacknowledged message no longer counts against max_length.
    let first = next(&h.consumer).await;
    assert_eq!(instance(&first.task), 0);
    h.producer.publish(&job(4)).await.expect("publish after a delivery");
    first.ack().await.expect("ack");
    for expected in [1, 2, 4] {
        let delivery = next(&h.consumer).await;
        assert_eq!(instance(&delivery.task), expected);
        delivery.ack().await.expect("ack");
    }
}

async fn retry_redelivers_with_delivery_count_two(h: Harness) {
    h.producer.publish(&job(1)).await.expect("publish");
    let first = next(&h.consumer).await;
    assert_eq!(first.delivery_count, 1);
    first.retry().await.expect("retry");
    let second = next(&h.consumer).await;
    assert_eq!(second.task, job(1));
    assert_eq!(second.delivery_count, 2);
    second.ack().await.expect("ack");
    assert_nothing_delivered(&h.consumer).await;
}

async fn dead_letters_after_max_deliveries(h: Harness) {
    h.producer.publish(&job(1)).await.expect("publish");
    for attempt in 1..=h.max_deliveries {
        let delivery = next(&h.consumer).await;
        assert_eq!((instance(&delivery.task), delivery.delivery_count), (1, attempt));
        delivery.retry().await.expect("retry");
    }
    h.producer.publish(&job(2)).await.expect("publish");
    // `next` dead-letters job 1 (delivery max_deliveries + 1) and returns job 2.
    let delivery = next(&h.consumer).await;
    assert_eq!((instance(&delivery.task), delivery.delivery_count), (2, 1));
    delivery.ack().await.expect("ack");
    let dead = h.dead_lettered(1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(serde_json::from_slice::<Task>(&dead[0]).expect("dead letter is a task"), job(1));
    assert_nothing_delivered(&h.consumer).await;
}

async fn dead_letters_an_undecodable_payload(h: Harness) {
    h.publish_raw(b"{\"type\":\"not-a-task\"}").await;
    h.producer.publish(&job(1)).await.expect("publish");
    let delivery = next(&h.consumer).await;
    assert_eq!(delivery.task, job(1));
    delivery.ack().await.expect("ack");
    assert_eq!(h.dead_lettered(1).await, vec![b"{\"type\":\"not-a-task\"}".to_vec()]);
}

async fn redelivers_a_delivery_dropped_unsettled(h: Harness) {
    h.producer.publish(&job(1)).await.expect("publish");
    let first = next(&h.consumer).await;
    drop(first);
    let again = next(&h.consumer).await;
    assert_eq!(again.task, job(1));
    assert_eq!(again.delivery_count, 2);
    again.ack().await.expect("ack");
    assert_nothing_delivered(&h.consumer).await;
}

async fn concurrent_consumers_ack_every_message_exactly_once(h: Harness) {
    const CONSUMERS: usize = 5;
    const MESSAGES: i64 = 200;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let done = tokio_util::sync::CancellationToken::new();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONSUMERS {
        let consumer = h.extra_consumer();
        let (acked, done) = (acked.clone(), done.clone());
        workers.spawn(async move {
            loop {
                let delivery = tokio::select! {
                    () = done.cancelled() => return,
                    delivery = consumer.next() => delivery.expect("receive"),
                };
                let id = instance(&delivery.task);
                delivery.ack().await.expect("ack");
                let mut acked = acked.lock().expect("lock");
                acked.push(id);
                if acked.len() == MESSAGES as usize {
                    done.cancel();
                }
            }
        });
    }
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..4 {
        let producer = h.producer.clone();
        publishers.spawn(async move {
            for n in (publisher..MESSAGES).step_by(4) {
                producer.publish(&job(n)).await.expect("publish");
            }
        });
    }
    while let Some(result) = publishers.join_next().await {
        result.expect("publisher");
    }
    tokio::time::timeout(WAIT, done.cancelled()).await.expect("all messages acked in time");
    tokio::time::sleep(QUIET).await;
    done.cancel();
    while let Some(result) = workers.join_next().await {
        result.expect("consumer");
    }
    let acked = acked.lock().expect("lock").clone();
    let unique: HashSet<i64> = acked.iter().copied().collect();
    assert_eq!(acked.len(), MESSAGES as usize, "no message acked twice");
    assert_eq!(unique, (0..MESSAGES).collect::<HashSet<_>>(), "every message acked");
    assert_eq!(h.producer.depth().await.expect("depth"), 0);
}

async fn depth_counts_ready_messages(h: Harness) {
    assert_eq!(h.producer.depth().await.expect("depth"), 0);
    for n in 0..3 {
        h.producer.publish(&job(n)).await.expect("publish");
    }
    assert_eq!(h.producer.depth().await.expect("depth"), 3);
    for _ in 0..3 {
        next(&h.consumer).await.ack().await.expect("ack");
    }
    assert_eq!(h.producer.depth().await.expect("depth"), 0);
}

// RabbitMQ-only behaviour.

#[tokio::test]
async fn connecting_to_an_unreachable_broker_fails_fast_with_unavailable_rabbitmq() {
    let cfg = test_config(QueueBackendKind::Rabbitmq, "amqp://fctf:hunter2@127.0.0.1:1", 10);
    match tokio::time::timeout(WAIT, RabbitQueue::connect(&cfg)).await {
        Ok(Err(QueueError::Unavailable(message))) => assert!(!message.contains("hunter2"), "{message}"),
        Ok(Err(other)) => panic!("expected Unavailable, got {other}"),
        Ok(Ok(_)) => panic!("connected to a closed port"),
        Err(_) => panic!("connect did not fail within {WAIT:?}"),
    }
}

#[tokio::test]
async fn publishing_while_the_broker_is_unreachable_fails_fast_rabbitmq() {
    let cfg = test_config(QueueBackendKind::Rabbitmq, "amqp://127.0.0.1:1", 10);
    let settings = Arc::new(super::rabbitmq::Settings::from_config(&cfg).expect("settings"));
    let producer = QueueProducer { backend: Arc::new(RabbitProducer::unconnected(settings)) };
    let first = tokio::time::timeout(WAIT, producer.publish(&job(1))).await.expect("no hang");
    assert!(matches!(first, Err(QueueError::Unavailable(_))), "{first:?}");
    // Within the backoff window the next publish does not even try to connect.
    let second = tokio::time::timeout(WAIT, producer.publish(&job(2))).await.expect("no hang");
    match second {
        Err(QueueError::Unavailable(message)) => assert!(message.contains("next connection attempt"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_reconnects_and_gets_the_unsettled_delivery_again_rabbitmq() {
    let Some(harness) = Harness::rabbitmq(10).await else { return };
    run(harness, |h| async move {
        let Backend::Rabbit(queue) = &h.backend else { unreachable!() };
        let rabbit_consumer = queue.consumer();
        let consumer = QueueConsumer { backend: Arc::new(rabbit_consumer.clone()), max_deliveries: h.max_deliveries };
        h.producer.publish(&job(1)).await.expect("publish");
        let first = next(&consumer).await;
        assert_eq!(first.delivery_count, 1);
        // Simulate a crash: the delivery is never settled and the connection goes away.
        std::mem::forget(first);
        rabbit_consumer.close_connection_for_test().await;
        let again = next(&consumer).await;
        assert_eq!(again.task, job(1));
        assert_eq!(again.delivery_count, 2);
        again.ack().await.expect("ack after reconnection");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_reconnects_after_losing_its_connection_rabbitmq() {
    let Some(harness) = Harness::rabbitmq(10).await else { return };
    run(harness, |h| async move {
        let Backend::Rabbit(queue) = &h.backend else { unreachable!() };
        queue.producer().close_connection_for_test().await;
        h.producer.publish(&job(1)).await.expect("publish after reconnection");
        let delivery = next(&h.consumer).await;
        assert_eq!(delivery.task, job(1));
        delivery.ack().await.expect("ack");
    })
    .await;
}
