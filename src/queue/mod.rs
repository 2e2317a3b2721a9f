//! The `Queue` seam: deploy jobs from center to consumer.
//!
//! Backends: `MemoryQueue` (embedded default; center and consumer in one process) and
//! `RabbitQueue` (production; topology of `shared/spec/pipeline-and-gateway.md` §2 declared
//! idempotently at start-up, publisher confirms, manual ack, explicit prefetch, a dead-letter
//! queue). Delivery is at least once; handlers must be idempotent. A publish that the queue
//! refuses (full, broker down, no confirmation in time) is an error the caller reports, never a
//! silent drop.
//!
//! Semantics both backends share (proven by the conformance suite in `tests.rs`):
//! - `max_length` bounds the messages *waiting* (ready); delivered-but-unacked ones do not count
//!   (RabbitMQ `x-max-length`). A publish beyond it is [`QueueError::Full`].
//! - FIFO delivery; a retried message goes to the back of the queue with its delivery count
//!   incremented; after `max_deliveries` deliveries, or when it cannot be decoded, `next`
//!   moves it to the dead-letter queue (`<queue>.dlq`, or `MemoryQueue::dead_letters`).
//! - A delivery dropped without being settled is handed back at once and redelivered (its
//!   count incremented); if the process dies, RabbitMQ redelivers it when the connection closes.

mod memory;
mod message;
mod rabbitmq;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::Secret;

pub use memory::{DeadLetter, MemoryQueue};
pub use message::{DeployJob, Task};
pub use rabbitmq::{RabbitConsumer, RabbitProducer, RabbitQueue};

/// Which queue backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueBackendKind {
    Memory,
    Rabbitmq,
}

/// The `[queue]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// `memory` or `rabbitmq`.
    pub backend: QueueBackendKind,
    /// `amqp://user:pass@host:port[/vhost]` (RabbitMQ only; never logged).
    pub url: Secret,
    /// Vhost used when `url` has no path (empty: the default vhost `/`).
    pub vhost: String,
    /// Durable direct exchange jobs are published to; `<exchange>.dlx` is the dead-letter exchange.
    pub exchange: String,
    /// Durable queue consumers read; `<queue>.dlq` holds dead letters.
    pub queue: String,
    /// Routing key binding `queue` to `exchange`.
    pub routing_key: String,
    /// Maximum messages waiting (ready); a publish beyond it is `QueueError::Full`.
    pub max_length: u32,
    /// Deliveries a RabbitMQ consumer holds unacknowledged at once.
    pub prefetch: u16,
    /// Deliveries of one message before `QueueConsumer::next` dead-letters it.
    pub max_deliveries: u32,
    /// Bound, in seconds, on every broker round trip (connect, declare, publish confirmation).
    pub confirm_timeout_secs: u64,
}

impl QueueConfig {
    /// The publish confirmation timeout.
    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_secs(self.confirm_timeout_secs)
    }

    /// A copy whose exchange and queue names carry `prefix` (test isolation on a shared broker).
    pub fn with_prefix(&self, prefix: &str) -> Self {
        let mut prefixed = self.clone();
        prefixed.exchange = format!("{prefix}{}", self.exchange);
        prefixed.queue = format!("{prefix}{}", self.queue);
        prefixed
    }
}

/// Errors of the queue seam.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue is at its maximum length; the job was not accepted.
    #[error("deployment queue is full, try again shortly")]
    Full,
    /// The broker could not be reached or did not confirm in time; the job was not accepted.
    #[error("deployment queue unavailable: {0}")]
    Unavailable(String),
    /// The queue was closed (shutdown).
    #[error("queue closed")]
    Closed,
    /// A message could not be encoded or decoded.
    #[error("malformed queue message: {0}")]
    Malformed(String),
    /// Anything else.
    #[error("queue error: {0}")]
    Other(String),
}

/// Producer side of a backend.
#[async_trait]
pub(crate) trait ProducerBackend: Send + Sync + 'static {
    /// Publishes one message; returns only once the queue has accepted it.
    async fn publish(&self, payload: Vec<u8>) -> Result<(), QueueError>;
    /// Messages waiting (not yet delivered), when the backend knows.
    async fn depth(&self) -> Result<u64, QueueError>;
}

/// Consumer side of a backend.
#[async_trait]
pub(crate) trait ConsumerBackend: Send + Sync + 'static {
    /// Waits for the next delivery (RabbitMQ: reconnecting as long as needed). Cancel-safe: a
    /// cancelled call loses no message.
    async fn receive(&self) -> Result<RawDelivery, QueueError>;
}

/// Settles one delivery; at most one settlement succeeds, later calls are errors. Dropping an
/// unsettled acker hands the message back to the queue for redelivery.
#[async_trait]
pub(crate) trait Acker: Send + Sync + 'static {
    /// Removes the message for good.
    async fn ack(&self) -> Result<(), QueueError>;
    /// Returns the message to the queue for another delivery.
    async fn requeue(&self) -> Result<(), QueueError>;
    /// Moves the message to the dead-letter queue.
    async fn dead_letter(&self) -> Result<(), QueueError>;
}

/// A message as the backend delivered it.
pub(crate) struct RawDelivery {
    /// The message body.
    pub payload: Vec<u8>,
    /// 1 for the first delivery, 2 for the first redelivery, …
    pub delivery_count: u32,
    /// Settles this delivery.
    pub acker: Box<dyn Acker>,
}

/// Creates a connected producer/consumer pair for the configured backend. For RabbitMQ the
/// producer connects and declares the topology now (an unreachable broker fails here with
/// `Unavailable`); the consumer connects on its first `next`, so a process that drops it never
/// takes messages off the queue.
pub async fn new_pair(cfg: &QueueConfig) -> Result<(QueueProducer, QueueConsumer), QueueError> {
    match cfg.backend {
        QueueBackendKind::Memory => {
            let queue = MemoryQueue::new(cfg.max_length as usize);
            Ok((
                QueueProducer { backend: Arc::new(queue.clone()) },
                QueueConsumer { backend: Arc::new(queue), max_deliveries: cfg.max_deliveries },
            ))
        }
        QueueBackendKind::Rabbitmq => {
            let queue = RabbitQueue::connect(cfg).await?;
            Ok((
                QueueProducer { backend: Arc::new(queue.producer()) },
                QueueConsumer { backend: Arc::new(queue.consumer()), max_deliveries: cfg.max_deliveries },
            ))
        }
    }
}

/// Publishes tasks. Cheap to clone.
#[derive(Clone)]
pub struct QueueProducer {
    backend: Arc<dyn ProducerBackend>,
}

impl QueueProducer {
    /// Publishes a task; `Ok` only once the queue confirmed it.
    pub async fn publish(&self, task: &Task) -> Result<(), QueueError> {
        let payload = serde_json::to_vec(task).map_err(|error| QueueError::Malformed(error.to_string()))?;
        self.backend.publish(payload).await
    }

    /// Messages waiting in the queue.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        self.backend.depth().await
    }
}

/// Receives tasks. Cheap to clone; clones share the deliveries.
#[derive(Clone)]
pub struct QueueConsumer {
    backend: Arc<dyn ConsumerBackend>,
    max_deliveries: u32,
}

impl QueueConsumer {
    /// Waits for the next task. A message that cannot be decoded, or that was delivered more
    /// than `max_deliveries` times, goes to the dead-letter queue and is skipped.
    pub async fn next(&self) -> Result<Delivery, QueueError> {
        loop {
            let raw = self.backend.receive().await?;
            if raw.delivery_count > self.max_deliveries {
                tracing::warn!(deliveries = raw.delivery_count, "queue message redelivered too often; dead-lettered");
                raw.acker.dead_letter().await?;
                continue;
            }
            match serde_json::from_slice::<Task>(&raw.payload) {
                Ok(task) => return Ok(Delivery { task, delivery_count: raw.delivery_count, acker: raw.acker }),
                Err(error) => {
                    tracing::warn!(%error, "undecodable queue message; dead-lettered");
                    raw.acker.dead_letter().await?;
                }
            }
        }
    }
}

/// One delivered task; settle it with `ack`, `retry` or `dead_letter`. A delivery dropped
/// without settling is handed back to the queue and redelivered.
pub struct Delivery {
    /// The decoded message.
    pub task: Task,
    /// 1 for the first delivery.
    pub delivery_count: u32,
    acker: Box<dyn Acker>,
}

impl Delivery {
    /// Done with it.
    pub async fn ack(self) -> Result<(), QueueError> {
        self.acker.ack().await
    }

    /// Deliver it again later.
    pub async fn retry(self) -> Result<(), QueueError> {
        self.acker.requeue().await
    }

    /// Give up on it (poison message).
    pub async fn dead_letter(self) -> Result<(), QueueError> {
        self.acker.dead_letter().await
    }
}

impl std::fmt::Debug for QueueProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueProducer")
    }
}

impl std::fmt::Debug for QueueConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueConsumer")
    }
}
