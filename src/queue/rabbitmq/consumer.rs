//! The RabbitMQ consumer: its own connection, a consuming channel with `basic_qos(prefetch)` and
//! manual acks, and a confirm-mode channel for retries.
//!
//! **Delivery count.** Classic queues do not count deliveries, so a retry is done by the
//! consumer: `requeue` republishes a copy (same body and message id) whose `x-fctf-deliveries`
//! header holds the deliveries so far, waits for its confirmation, then acks the original. The
//! count of a delivery is `x-fctf-deliveries + broker redeliveries + 1`, where broker
//! redeliveries is the `x-delivery-count` header when the broker sets it (quorum queues) and
//! otherwise 1 if the `redelivered` flag is set (a lower bound: a classic queue does not say how
//! often it redelivered a message whose consumer died). If the copy is refused (queue full,
//! channel lost) the original is handed back to the broker with `basic_nack(requeue)`, so the
//! retry still happens with a lower-bound count.
//!
//! **Dead-lettering** is `basic_reject(requeue = false)`; the queue's dead-letter exchange routes
//! the message to `<queue>.dlq` with its headers (and the broker's `x-death`).
//!
//! **Unsettled deliveries.** Dropping a delivery without settling it nacks it with
//! `requeue = true` (spawned on the current tokio runtime), so it is redelivered at once; if the
//! process dies instead, the broker redelivers it when the connection closes. Deliveries
//! prefetched by a channel that was lost are never handed out: the consumer stream is replaced
//! on reconnection and the broker requeues them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::message::Delivery as LapinDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, Consumer};
use tokio::sync::Mutex;

use super::producer::{confirmation_result, message_properties, open_confirm_channel};
use super::{Settings, backoff_delay, open_connection, unavailable};
use crate::queue::{Acker, ConsumerBackend, QueueError, RawDelivery};

/// Header carrying the deliveries a message had before the copy was published.
pub(crate) const DELIVERIES_HEADER: &str = "x-fctf-deliveries";
/// Header set by RabbitMQ on quorum-queue redeliveries.
const BROKER_DELIVERY_COUNT_HEADER: &str = "x-delivery-count";
/// How often a waiting consumer checks that its connection is still alive.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// Receives deliveries from the configured queue. Clones share the connection and deliveries.
#[derive(Clone)]
pub struct RabbitConsumer {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Arc<Settings>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    link: Option<Link>,
    failures: u32,
}

struct Link {
    connection: Arc<Connection>,
    consume_channel: Channel,
    retry_channel: Channel,
    consumer: Consumer,
}

impl Link {
    fn alive(&self) -> bool {
        alive(&self.connection, &self.consume_channel, &self.retry_channel)
    }
}

fn alive(connection: &Connection, consume_channel: &Channel, retry_channel: &Channel) -> bool {
    connection.status().connected() && consume_channel.status().connected() && retry_channel.status().connected()
}

impl RabbitConsumer {
    pub(super) fn new(settings: Arc<Settings>) -> Self {
        Self { inner: Arc::new(Inner { settings, state: Mutex::new(State::default()) }) }
    }

    /// Closes the connection as if the broker had dropped it (redelivery and reconnection tests).
    #[cfg(test)]
    pub(crate) async fn close_connection_for_test(&self) {
        let state = self.inner.state.lock().await;
        if let Some(link) = state.link.as_ref() {
            let _ = link.connection.close(320, "test: connection forced".into()).await;
        }
    }
}

async fn connect_link(settings: &Settings) -> Result<Link, QueueError> {
    let connection = Arc::new(open_connection(settings, "consumer").await?);
    let setup = async {
        let consume_channel =
            connection.create_channel().await.map_err(|error| unavailable("cannot open a channel", &error))?;
        consume_channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(|error| unavailable("cannot set the prefetch", &error))?;
        let consumer = consume_channel
            .basic_consume(
                settings.queue.clone(),
                ShortString::from(format!("fctf-{}", uuid::Uuid::new_v4())),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| unavailable("cannot start consuming", &error))?;
        let retry_channel = open_confirm_channel(&connection).await?;
        Ok::<_, QueueError>((consume_channel, retry_channel, consumer))
    };
    let (consume_channel, retry_channel, consumer) = tokio::time::timeout(settings.op_timeout, setup)
        .await
        .map_err(|_| QueueError::Unavailable("rabbitmq did not set up the consumer in time".to_owned()))??;
    Ok(Link { connection, consume_channel, retry_channel, consumer })
}

/// Resolves once the link is found dead (the consumer stream may not notice on its own).
async fn until_dead(connection: &Connection, consume_channel: &Channel, retry_channel: &Channel) {
    loop {
        tokio::time::sleep(LIVENESS_CHECK).await;
        if !alive(connection, consume_channel, retry_channel) {
            return;
        }
    }
}

#[async_trait]
impl ConsumerBackend for RabbitConsumer {
    async fn receive(&self) -> Result<RawDelivery, QueueError> {
        let settings = &self.inner.settings;
        let mut state = self.inner.state.lock().await;
        loop {
            if state.link.as_ref().is_some_and(|link| !link.alive()) {
                tracing::warn!(broker = %settings.endpoint, "rabbitmq consumer connection lost; reconnecting");
                state.link = None;
            }
            let Some(link) = state.link.as_mut() else {
                match connect_link(settings).await {
                    Ok(link) => {
                        if state.failures > 0 {
                            tracing::info!(broker = %settings.endpoint, "rabbitmq consumer reconnected");
                        }
                        state.failures = 0;
                        state.link = Some(link);
                    }
                    Err(error) => {
                        let delay = backoff_delay(state.failures);
                        state.failures = state.failures.saturating_add(1);
                        tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "rabbitmq consumer cannot connect");
                        tokio::time::sleep(delay).await;
                    }
                }
                continue;
            };
            let next = tokio::select! {
                next = link.consumer.next() => next,
                () = until_dead(&link.connection, &link.consume_channel, &link.retry_channel) => None,
            };
            match next {
                Some(Ok(delivery)) => return Ok(raw_delivery(delivery, link, settings)),
                Some(Err(error)) => {
                    tracing::warn!(%error, "rabbitmq consumer channel failed; reconnecting");
                    state.link = None;
                }
                None => {
                    tracing::warn!(broker = %settings.endpoint, "rabbitmq consumer stopped by the broker; reconnecting");
                    state.link = None;
                }
            }
        }
    }
}

fn raw_delivery(delivery: LapinDelivery, link: &Link, settings: &Arc<Settings>) -> RawDelivery {
    let headers = delivery.properties.headers().as_ref();
    let delivery_count = delivery_count(headers, delivery.redelivered);
    let acker = RabbitAcker {
        acker: delivery.acker,
        retry_channel: link.retry_channel.clone(),
        settings: settings.clone(),
        payload: delivery.data.clone(),
        headers: headers.cloned(),
        delivery_count,
        settled: AtomicBool::new(false),
    };
    RawDelivery { payload: delivery.data, delivery_count, acker: Box::new(acker) }
}

/// The delivery count rule of the module docs.
pub(crate) fn delivery_count(headers: Option<&FieldTable>, redelivered: bool) -> u32 {
    let previous = header_count(headers, DELIVERIES_HEADER).unwrap_or(0);
    let broker_redeliveries =
        header_count(headers, BROKER_DELIVERY_COUNT_HEADER).unwrap_or(if redelivered { 1 } else { 0 });
    previous.saturating_add(broker_redeliveries).saturating_add(1)
}

fn header_count(headers: Option<&FieldTable>, name: &str) -> Option<u32> {
    let value = headers?.inner().get(name)?;
    let number: i128 = match value {
        AMQPValue::ShortShortInt(v) => i128::from(*v),
        AMQPValue::ShortShortUInt(v) => i128::from(*v),
        AMQPValue::ShortInt(v) => i128::from(*v),
        AMQPValue::ShortUInt(v) => i128::from(*v),
        AMQPValue::LongInt(v) => i128::from(*v),
        AMQPValue::LongUInt(v) => i128::from(*v),
        AMQPValue::LongLongInt(v) => i128::from(*v),
        _ => return None,
    };
    Some(u32::try_from(number.max(0)).unwrap_or(u32::MAX))
}

/// The headers of a retry copy: the application's own headers (broker-managed `x-` headers
/// dropped) plus the delivery count so far.
fn retry_headers(original: Option<&FieldTable>, delivery_count: u32) -> FieldTable {
    let mut headers = FieldTable::default();
    if let Some(original) = original {
        for (name, value) in original.inner() {
            if !name.as_str().starts_with("x-") {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    headers.insert(DELIVERIES_HEADER.into(), AMQPValue::LongLongInt(i64::from(delivery_count)));
    headers
}

/// Settles one RabbitMQ delivery.
struct RabbitAcker {
    acker: lapin::Acker,
    retry_channel: Channel,
    settings: Arc<Settings>,
    payload: Vec<u8>,
    headers: Option<FieldTable>,
    delivery_count: u32,
    settled: AtomicBool,
}

impl RabbitAcker {
    fn settle(&self) -> Result<(), QueueError> {
        if self.settled.swap(true, Ordering::AcqRel) {
            return Err(QueueError::Other("delivery already settled".to_owned()));
        }
        Ok(())
    }

    /// Interprets lapin's answer: `false` means the delivery's channel is gone.
    fn settled_result(doing: &str, result: Result<bool, lapin::Error>) -> Result<(), QueueError> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(QueueError::Unavailable(format!(
                "cannot {doing}: the delivery's channel was closed; rabbitmq will redeliver it"
            ))),
            Err(error) => Err(unavailable(&format!("cannot {doing}"), &error)),
        }
    }

    async fn publish_copy(&self) -> Result<(), QueueError> {
        let publish = async {
            let confirm = self
                .retry_channel
                .basic_publish(
                    self.settings.exchange.clone(),
                    self.settings.routing_key.clone(),
                    BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                    &self.payload,
                    message_properties(Some(retry_headers(self.headers.as_ref(), self.delivery_count))),
                )
                .await
                .map_err(|error| unavailable("cannot republish for retry", &error))?;
            confirmation_result(confirm.await.map_err(|error| unavailable("retry copy not confirmed", &error))?)
        };
        match tokio::time::timeout(self.settings.op_timeout, publish).await {
            Ok(result) => result,
            Err(_) => Err(QueueError::Unavailable("rabbitmq did not confirm the retry copy in time".to_owned())),
        }
    }
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(&self) -> Result<(), QueueError> {
        self.settle()?;
        Self::settled_result("ack", self.acker.ack(BasicAckOptions::default()).await)
    }

    async fn requeue(&self) -> Result<(), QueueError> {
        self.settle()?;
        match self.publish_copy().await {
            Ok(()) => {
                Self::settled_result("ack the retried original", self.acker.ack(BasicAckOptions::default()).await)
            }
            Err(error) => {
                tracing::warn!(%error, "retry copy refused; handing the message back to rabbitmq instead");
                let nack = self.acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await;
                Self::settled_result("requeue", nack)
            }
        }
    }

    async fn dead_letter(&self) -> Result<(), QueueError> {
        self.settle()?;
        Self::settled_result("dead-letter", self.acker.reject(BasicRejectOptions { requeue: false }).await)
    }
}

impl Drop for RabbitAcker {
    fn drop(&mut self) {
        if *self.settled.get_mut() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Redelivered by the broker when the channel closes.
            return;
        };
        let acker = self.acker.clone();
        tracing::debug!(deliveries = self.delivery_count, "unsettled queue delivery dropped; requeued");
        runtime.spawn(async move {
            let _ = acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut headers = FieldTable::default();
        for (name, value) in entries {
            headers.insert((*name).into(), value.clone());
        }
        headers
    }

    #[test]
    fn delivery_count_is_one_for_a_fresh_message() {
        assert_eq!(delivery_count(None, false), 1);
        assert_eq!(delivery_count(Some(&FieldTable::default()), false), 1);
    }

    #[test]
    fn delivery_count_adds_the_retry_header_and_broker_redeliveries() {
        let copied = table(&[(DELIVERIES_HEADER, AMQPValue::LongLongInt(2))]);
        assert_eq!(delivery_count(Some(&copied), false), 3);
        assert_eq!(delivery_count(Some(&copied), true), 4);
        let quorum =
            table(&[(DELIVERIES_HEADER, AMQPValue::LongInt(1)), ("x-delivery-count", AMQPValue::LongLongInt(3))]);
        assert_eq!(delivery_count(Some(&quorum), true), 5);
        assert_eq!(delivery_count(None, true), 2);
    }

    #[test]
    fn delivery_count_ignores_malformed_headers() {
        let odd = table(&[
            (DELIVERIES_HEADER, AMQPValue::LongString("many".into())),
            ("x-delivery-count", AMQPValue::LongInt(-4)),
        ]);
        assert_eq!(delivery_count(Some(&odd), false), 1);
    }

    #[test]
    fn retry_headers_keep_application_headers_and_replace_broker_ones() {
        let original = table(&[
            ("traceparent", AMQPValue::LongString("00-abc".into())),
            ("x-death", AMQPValue::LongInt(1)),
            (DELIVERIES_HEADER, AMQPValue::LongLongInt(1)),
        ]);
        let headers = retry_headers(Some(&original), 2);
        assert!(headers.inner().contains_key("traceparent"));
        assert!(!headers.inner().contains_key("x-death"));
        assert_eq!(header_count(Some(&headers), DELIVERIES_HEADER), Some(2));
    }
}
