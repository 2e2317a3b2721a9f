//! `RabbitQueue`: the RabbitMQ backend (lapin 4, AMQP 0-9-1).
//!
//! This module owns the connection settings, the topology and the reconnection policy; the
//! producer side lives in `producer.rs`, the consumer side and delivery settlement in
//! `consumer.rs`.
//!
//! **URL and vhost.** `[queue].url` is an `amqp://user:pass@host:port` URL. When it carries a
//! path other than `/` (e.g. `amqp://host/%2f` or `amqp://host/fctf_deploy`), that path is the
//! vhost and `[queue].vhost` is ignored; otherwise `[queue].vhost` is used (an empty value means
//! the default vhost `/`). TLS (`amqps://`) is not compiled in (lapin's TLS features are off).
//! The URL is held as a [`Secret`](crate::config::Secret) and never logged: logs and errors
//! name the broker as `host:port/vhost`.
//!
//! **Topology** (`shared/spec/pipeline-and-gateway.md` §2.1 plus a dead-letter path), declared
//! idempotently on every (re)connection: a durable direct exchange `<exchange>`; a durable
//! classic queue `<queue>` with `x-max-length = max_length`, `x-overflow = reject-publish` and
//! `x-dead-letter-exchange = <exchange>.dlx`, bound with `routing_key`; a durable fanout exchange
//! `<exchange>.dlx` (fanout so any routing key reaches the DLQ) bound to a durable queue
//! `<queue>.dlq`. When the broker refuses the declarations for lack of the configure
//! permission, the topology is assumed to be pre-provisioned: its presence is checked passively
//! and a warning says dead-lettering depends on the provisioned arguments. When the queue exists
//! with different arguments (PRECONDITION_FAILED) start-up fails with a message saying so.
//!
//! **Connections.** The producer and each consumer use their own connection (a publisher held
//! back by flow control must not stall deliveries). Every broker round trip (connect, declare,
//! publish confirmation) is bounded by `confirm_timeout_secs`. A dropped connection is
//! re-established with exponential backoff (100 ms doubling up to 30 s, logged with the endpoint
//! only): the producer retries lazily on the next publish and, while the backoff is running,
//! fails fast with `Unavailable` instead of hanging; the consumer keeps retrying inside
//! `receive`, which simply waits until the broker is back.

mod consumer;
mod producer;

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{QueueConfig, QueueError};

pub use consumer::RabbitConsumer;
pub use producer::RabbitProducer;

/// Longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First pause after a failed connection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// AMQP reply code: the user lacks a permission.
const ACCESS_REFUSED: u16 = 403;
/// AMQP reply code: an entity exists with different properties.
const PRECONDITION_FAILED: u16 = 406;

/// A connected RabbitMQ queue: hands out the producer and consumers of one configured topology.
pub struct RabbitQueue {
    settings: Arc<Settings>,
    producer: RabbitProducer,
}

impl RabbitQueue {
    /// Connects the producer, declares the topology and returns once the broker answered.
    /// An unreachable broker, bad credentials or a conflicting topology fail at once with
    /// `Unavailable` (or `Other` for a conflicting topology); nothing is retried here.
    pub async fn connect(cfg: &QueueConfig) -> Result<Self, QueueError> {
        let settings = Arc::new(Settings::from_config(cfg)?);
        let producer = RabbitProducer::connect(settings.clone()).await?;
        tracing::info!(broker = %settings.endpoint, queue = %settings.queue, "connected to rabbitmq");
        Ok(Self { settings, producer })
    }

    /// The producer (shares the connection opened by `connect`; cheap to clone).
    pub fn producer(&self) -> RabbitProducer {
        self.producer.clone()
    }

    /// A new consumer with its own connection and channel. It connects and starts consuming on
    /// its first `receive`, so a process that never consumes never takes messages off the
    /// queue (no prefetched messages stranded in a process that does not handle them).
    pub fn consumer(&self) -> RabbitConsumer {
        RabbitConsumer::new(self.settings.clone())
    }
}

impl std::fmt::Debug for RabbitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitQueue")
            .field("broker", &self.settings.endpoint)
            .field("queue", &self.settings.queue.as_str())
            .finish_non_exhaustive()
    }
}

/// Everything the backend needs from the configuration, validated once. Not `Debug`: `uri`
/// holds the password.
pub(crate) struct Settings {
    uri: AMQPUri,
    /// `host:port/vhost`, for logs and errors.
    pub(crate) endpoint: String,
    pub(crate) exchange: ShortString,
    pub(crate) queue: ShortString,
    pub(crate) routing_key: ShortString,
    pub(crate) dead_letter_exchange: ShortString,
    pub(crate) dead_letter_queue: ShortString,
    max_length: u32,
    prefetch: u16,
    /// Bound on every broker round trip.
    pub(crate) op_timeout: Duration,
}

impl Settings {
    pub(crate) fn from_config(cfg: &QueueConfig) -> Result<Self, QueueError> {
        let uri = resolve_uri(cfg.url.expose(), &cfg.vhost)?;
        let endpoint = format!("{}:{}/{}", uri.authority.host, uri.authority.port, uri.vhost);
        Ok(Self {
            uri,
            endpoint,
            exchange: amqp_name("exchange", &cfg.exchange)?,
            queue: amqp_name("queue", &cfg.queue)?,
            routing_key: amqp_name("routing_key", &cfg.routing_key)?,
            dead_letter_exchange: amqp_name("exchange", &format!("{}.dlx", cfg.exchange))?,
            dead_letter_queue: amqp_name("queue", &format!("{}.dlq", cfg.queue))?,
            max_length: cfg.max_length,
            prefetch: cfg.prefetch,
            op_timeout: cfg.confirm_timeout().max(Duration::from_millis(100)),
        })
    }
}

fn amqp_name(what: &str, name: &str) -> Result<ShortString, QueueError> {
    ShortString::try_new(name).map_err(|_| QueueError::Other(format!("queue.{what} is longer than 255 bytes")))
}

/// Parses the configured URL and applies the vhost rule of the module docs.
pub(crate) fn resolve_uri(url: &str, vhost: &str) -> Result<AMQPUri, QueueError> {
    let parsed = url::Url::parse(url).map_err(|error| QueueError::Other(format!("invalid queue.url: {error}")))?;
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|error: String| QueueError::Other(format!("invalid queue.url: {}", redact(&error, &parsed))))?;
    if matches!(parsed.path(), "" | "/") {
        uri.vhost = if vhost.is_empty() { "/".to_owned() } else { vhost.to_owned() };
    }
    Ok(uri)
}

/// Removes the URL's password from a parser message, in case it was echoed.
fn redact(message: &str, url: &url::Url) -> String {
    match url.password() {
        Some(password) if !password.is_empty() => message.replace(password, "[redacted]"),
        _ => message.to_owned(),
    }
}

/// The pause after `failures` consecutive failed connection attempts.
pub(crate) fn backoff_delay(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(16));
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Maps a lapin error to `Unavailable`, with what was being done.
pub(crate) fn unavailable(doing: &str, error: &lapin::Error) -> QueueError {
    QueueError::Unavailable(format!("{doing}: {error}"))
}

fn reply_code(error: &lapin::Error) -> Option<u16> {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp_error) => Some(amqp_error.get_id()),
        _ => None,
    }
}

/// Opens a connection and declares the topology on it, all within the operation timeout.
pub(crate) async fn open_connection(settings: &Settings, name: &str) -> Result<Connection, QueueError> {
    let open = async {
        let properties = ConnectionProperties::default().with_connection_name(LongString::from(format!("fctf-{name}")));
        let connection = Connection::connect_uri(settings.uri.clone(), properties)
            .await
            .map_err(|error| unavailable(&format!("cannot connect to rabbitmq at {}", settings.endpoint), &error))?;
        declare_topology(&connection, settings).await?;
        Ok(connection)
    };
    match tokio::time::timeout(settings.op_timeout, open).await {
        Ok(result) => result,
        Err(_) => Err(QueueError::Unavailable(format!(
            "rabbitmq at {} did not answer within {:?}",
            settings.endpoint, settings.op_timeout
        ))),
    }
}

async fn declare_topology(connection: &Connection, settings: &Settings) -> Result<(), QueueError> {
    let channel = connection.create_channel().await.map_err(|error| unavailable("cannot open a channel", &error))?;
    match declare_all(&channel, settings).await {
        Ok(()) => {
            close_quietly(&channel).await;
            Ok(())
        }
        Err(error) if reply_code(&error) == Some(ACCESS_REFUSED) => {
            tracing::warn!(
                broker = %settings.endpoint,
                "no configure permission on rabbitmq; using the pre-provisioned topology, dead-lettering depends on its arguments"
            );
            verify_existing(connection, settings).await
        }
        Err(error) if reply_code(&error) == Some(PRECONDITION_FAILED) => Err(QueueError::Other(format!(
            "the rabbitmq topology differs from the configuration (delete or migrate the queue): {error}"
        ))),
        Err(error) => Err(unavailable("cannot declare the rabbitmq topology", &error)),
    }
}

async fn declare_all(channel: &Channel, settings: &Settings) -> Result<(), lapin::Error> {
    let durable_exchange = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    let durable_queue = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel
        .exchange_declare(settings.exchange.clone(), ExchangeKind::Direct, durable_exchange, FieldTable::default())
        .await?;
    channel
        .exchange_declare(
            settings.dead_letter_exchange.clone(),
            ExchangeKind::Fanout,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    channel.queue_declare(settings.dead_letter_queue.clone(), durable_queue, FieldTable::default()).await?;
    channel
        .queue_bind(
            settings.dead_letter_queue.clone(),
            settings.dead_letter_exchange.clone(),
            settings.routing_key.clone(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    let max_length = i32::try_from(settings.max_length).unwrap_or(i32::MAX);
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(max_length));
    arguments.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
    arguments
        .insert("x-dead-letter-exchange".into(), AMQPValue::LongString(settings.dead_letter_exchange.as_str().into()));
    channel.queue_declare(settings.queue.clone(), durable_queue, arguments).await?;
    channel
        .queue_bind(
            settings.queue.clone(),
            settings.exchange.clone(),
            settings.routing_key.clone(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Checks that the exchange and queue exist (each check on its own channel: a failed passive
/// declaration closes the channel).
async fn verify_existing(connection: &Connection, settings: &Settings) -> Result<(), QueueError> {
    let missing = |what: &str, error: &lapin::Error| {
        QueueError::Other(format!("rabbitmq {what} is missing and fctf may not declare it: {error}"))
    };
    let channel = connection.create_channel().await.map_err(|error| unavailable("cannot open a channel", &error))?;
    let passive_exchange = ExchangeDeclareOptions { passive: true, ..ExchangeDeclareOptions::default() };
    channel
        .exchange_declare(settings.exchange.clone(), ExchangeKind::Direct, passive_exchange, FieldTable::default())
        .await
        .map_err(|error| missing("exchange", &error))?;
    close_quietly(&channel).await;
    let channel = connection.create_channel().await.map_err(|error| unavailable("cannot open a channel", &error))?;
    let passive_queue = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    channel
        .queue_declare(settings.queue.clone(), passive_queue, FieldTable::default())
        .await
        .map_err(|error| missing("queue", &error))?;
    close_quietly(&channel).await;
    Ok(())
}

/// Closes a channel we are done with; failure only means it is already gone.
pub(crate) async fn close_quietly(channel: &Channel) {
    if channel.status().connected() {
        let _ = channel.close(200, "OK".into()).await;
    }
}

#[cfg(test)]
impl RabbitQueue {
    /// A connection that declares nothing (test inspection and clean-up).
    async fn plain_connection_for_test(&self) -> Result<Connection, QueueError> {
        Connection::connect_uri(self.settings.uri.clone(), ConnectionProperties::default())
            .await
            .map_err(|error| unavailable("test connection", &error))
    }

    /// Takes every message currently in the dead-letter queue (bodies, oldest first).
    pub(crate) async fn take_dead_letters_for_test(&self) -> Result<Vec<Vec<u8>>, QueueError> {
        let connection = self.plain_connection_for_test().await?;
        let channel = connection.create_channel().await.map_err(|error| unavailable("test channel", &error))?;
        let mut bodies = Vec::new();
        let options = lapin::options::BasicGetOptions { no_ack: true };
        while let Some(message) = channel
            .basic_get(self.settings.dead_letter_queue.clone(), options)
            .await
            .map_err(|error| unavailable("basic_get", &error))?
        {
            bodies.push(message.delivery.data);
        }
        let _ = connection.close(200, "OK".into()).await;
        Ok(bodies)
    }

    /// Deletes the queues and exchanges of this topology, best effort.
    pub(crate) async fn delete_topology_for_test(&self) {
        let Ok(connection) = self.plain_connection_for_test().await else { return };
        for queue in [&self.settings.queue, &self.settings.dead_letter_queue] {
            if let Ok(channel) = connection.create_channel().await {
                let _ = channel.queue_delete(queue.clone(), lapin::options::QueueDeleteOptions::default()).await;
            }
        }
        for exchange in [&self.settings.exchange, &self.settings.dead_letter_exchange] {
            if let Ok(channel) = connection.create_channel().await {
                let _ =
                    channel.exchange_delete(exchange.clone(), lapin::options::ExchangeDeleteOptions::default()).await;
            }
        }
        let _ = connection.close(200, "OK".into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_comes_from_the_config_when_the_url_has_no_path() {
        assert_eq!(
            resolve_uri("amqp://u:p@broker:5672", "fctf_deploy").map(|uri| uri.vhost).ok(),
            Some("fctf_deploy".into())
        );
        assert_eq!(
            resolve_uri("amqp://u:p@broker:5672/", "fctf_deploy").map(|uri| uri.vhost).ok(),
            Some("fctf_deploy".into())
        );
        assert_eq!(resolve_uri("amqp://broker", "").map(|uri| uri.vhost).ok(), Some("/".into()));
    }

    #[test]
    fn vhost_in_the_url_wins() {
        assert_eq!(
            resolve_uri("amqp://u:p@broker:5672/%2f", "fctf_deploy").map(|uri| uri.vhost).ok(),
            Some("/".into())
        );
        assert_eq!(
            resolve_uri("amqp://broker/other?heartbeat=10", "x").map(|uri| uri.vhost).ok(),
            Some("other".into())
        );
    }

    #[test]
    fn invalid_url_errors_do_not_show_the_password() {
        for url in ["amqp://user:hunter2@broker:notaport", "http://user:hunter2@broker", "not a url hunter2"] {
            match resolve_uri(url, "/") {
                Ok(_) => panic!("{url} should be rejected"),
                Err(error) => assert!(!error.to_string().contains("hunter2"), "{error}"),
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff_delay(0), FIRST_BACKOFF);
        assert_eq!(backoff_delay(1), FIRST_BACKOFF * 2);
        assert_eq!(backoff_delay(40), MAX_BACKOFF);
    }
}
