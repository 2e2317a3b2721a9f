//! The RabbitMQ producer: one connection and one confirm-mode channel, re-established lazily.
//!
//! A publish is `Ok` only when the broker confirmed it: a broker nack (with
//! `x-overflow = reject-publish` that means the queue is at `x-max-length`) is
//! [`QueueError::Full`]; an unroutable message (returned because of `mandatory`), a lost
//! connection or no confirmation within the timeout are [`QueueError::Unavailable`]. Messages
//! are persistent JSON with a fresh UUID message id.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use super::{Settings, backoff_delay, open_connection, unavailable};
use crate::queue::{ProducerBackend, QueueError};

/// AMQP delivery mode of messages that survive a broker restart.
const PERSISTENT: u8 = 2;

/// Publishes to the configured exchange with publisher confirms. Clones share the connection.
#[derive(Clone)]
pub struct RabbitProducer {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Arc<Settings>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    link: Option<Link>,
    /// Consecutive failed connection attempts.
    failures: u32,
    /// No new connection attempt before this instant (fail fast during an outage).
    retry_at: Option<Instant>,
}

struct Link {
    connection: Connection,
    channel: Channel,
}

impl RabbitProducer {
    /// Connects now; used by `RabbitQueue::connect`, whose failure must be immediate.
    pub(super) async fn connect(settings: Arc<Settings>) -> Result<Self, QueueError> {
        let producer = Self::unconnected(settings);
        producer.channel().await?;
        Ok(producer)
    }

    /// A producer that connects on its first publish.
    pub(crate) fn unconnected(settings: Arc<Settings>) -> Self {
        Self { inner: Arc::new(Inner { settings, state: Mutex::new(State::default()) }) }
    }

    /// The confirm channel, reopening the channel or the whole connection when needed.
    async fn channel(&self) -> Result<Channel, QueueError> {
        let settings = &self.inner.settings;
        let mut state = self.inner.state.lock().await;
        if let Some(link) = state.link.as_mut() {
            if link.connection.status().connected() {
                if link.channel.status().connected() {
                    return Ok(link.channel.clone());
                }
                if let Ok(channel) = open_confirm_channel(&link.connection).await {
                    link.channel = channel.clone();
                    return Ok(channel);
                }
            }
            tracing::warn!(broker = %settings.endpoint, "rabbitmq producer connection lost; reconnecting");
            state.link = None;
        }
        if let Some(retry_at) = state.retry_at {
            let now = Instant::now();
            if now < retry_at {
                return Err(QueueError::Unavailable(format!(
                    "rabbitmq at {} is unreachable; next connection attempt in {} ms",
                    settings.endpoint,
                    (retry_at - now).as_millis()
                )));
            }
        }
        match connect_link(settings).await {
            Ok(link) => {
                if state.failures > 0 {
                    tracing::info!(broker = %settings.endpoint, "rabbitmq producer reconnected");
                }
                state.failures = 0;
                state.retry_at = None;
                let channel = link.channel.clone();
                state.link = Some(link);
                Ok(channel)
            }
            Err(error) => {
                let delay = backoff_delay(state.failures);
                state.failures = state.failures.saturating_add(1);
                state.retry_at = Some(Instant::now() + delay);
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "rabbitmq producer cannot connect");
                Err(error)
            }
        }
    }

    async fn publish_confirmed(&self, payload: &[u8]) -> Result<(), QueueError> {
        let settings = &self.inner.settings;
        let channel = self.channel().await?;
        let confirm = channel
            .basic_publish(
                settings.exchange.clone(),
                settings.routing_key.clone(),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                payload,
                message_properties(None),
            )
            .await
            .map_err(|error| unavailable("cannot publish to rabbitmq", &error))?;
        let confirmation = confirm.await.map_err(|error| unavailable("publish not confirmed", &error))?;
        confirmation_result(confirmation)
    }

    /// Closes the connection as if the broker had dropped it (reconnection tests).
    #[cfg(test)]
    pub(crate) async fn close_connection_for_test(&self) {
        let state = self.inner.state.lock().await;
        if let Some(link) = state.link.as_ref() {
            let _ = link.connection.close(320, "test: connection forced".into()).await;
        }
    }
}

/// Properties of every message fctf publishes; `headers` carries the retry count of copies.
pub(super) fn message_properties(headers: Option<FieldTable>) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(uuid::Uuid::new_v4().to_string()));
    match headers {
        Some(headers) => properties.with_headers(headers),
        None => properties,
    }
}

/// What a broker confirmation means for the publisher.
pub(super) fn confirmation_result(confirmation: Confirmation) -> Result<(), QueueError> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(QueueError::Unavailable(format!(
            "rabbitmq could not route the message (is the queue bound?): {}",
            returned.reply_text
        ))),
        Confirmation::Nack(_) => Err(QueueError::Full),
        Confirmation::NotRequested => Err(QueueError::Other("publisher confirms are not enabled".to_owned())),
    }
}

pub(super) async fn open_confirm_channel(connection: &Connection) -> Result<Channel, QueueError> {
    let channel = connection.create_channel().await.map_err(|error| unavailable("cannot open a channel", &error))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| unavailable("cannot enable publisher confirms", &error))?;
    Ok(channel)
}

async fn connect_link(settings: &Settings) -> Result<Link, QueueError> {
    let connection = open_connection(settings, "producer").await?;
    let channel = tokio::time::timeout(settings.op_timeout, open_confirm_channel(&connection))
        .await
        .map_err(|_| QueueError::Unavailable("rabbitmq did not open a channel in time".to_owned()))??;
    Ok(Link { connection, channel })
}

#[async_trait]
impl ProducerBackend for RabbitProducer {
    async fn publish(&self, payload: Vec<u8>) -> Result<(), QueueError> {
        let settings = &self.inner.settings;
        match tokio::time::timeout(settings.op_timeout, self.publish_confirmed(&payload)).await {
            Ok(result) => result,
            Err(_) => Err(QueueError::Unavailable(format!(
                "rabbitmq did not confirm the publish within {:?}",
                settings.op_timeout
            ))),
        }
    }

    /// Ready messages, from a passive declaration of the queue.
    async fn depth(&self) -> Result<u64, QueueError> {
        let settings = &self.inner.settings;
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let declare = async {
            let channel = self.channel().await?;
            channel
                .queue_declare(settings.queue.clone(), passive, FieldTable::default())
                .await
                .map_err(|error| unavailable("cannot read the queue depth", &error))
        };
        match tokio::time::timeout(settings.op_timeout, declare).await {
            Ok(queue) => Ok(u64::from(queue?.message_count())),
            Err(_) => Err(QueueError::Unavailable("rabbitmq did not report the queue depth in time".to_owned())),
        }
    }
}

impl std::fmt::Debug for RabbitProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitProducer").field("broker", &self.inner.settings.endpoint).finish_non_exhaustive()
    }
}
