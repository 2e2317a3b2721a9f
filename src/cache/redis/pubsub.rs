//! Change signals over Redis pub/sub: one dedicated subscriber connection per `RedisCache`,
//! one background task fanning its messages out to a `tokio::sync::broadcast` sender per
//! channel, and fred's subscription manager re-issuing `SUBSCRIBE` after every reconnection.
//! A signal published while the connection is down is lost; a signal only means "something
//! changed, reload", and readers reload on their own schedule as well.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;

use fred::clients::SubscriberClient;
use fred::interfaces::ClientLike;
use fred::interfaces::EventInterface;
use fred::interfaces::PubsubInterface;
use fred::types::Builder;
use fred::types::Message;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::init;
use super::map_error;
use crate::cache::CacheError;
use crate::cache::ChangeStream;

/// Buffered change signals per channel before a slow subscriber starts skipping.
const CHANNEL_CAPACITY: usize = 64;

type Senders = Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>;

fn lock(senders: &Senders) -> MutexGuard<'_, HashMap<String, broadcast::Sender<String>>> {
    senders.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The subscriber connection and its tasks; both stop when it is dropped.
pub(super) struct Subscriber {
    client: SubscriberClient,
    senders: Senders,
    tasks: Vec<JoinHandle<()>>,
}

impl Subscriber {
    /// Opens the subscriber connection (same server and policy as the command connection).
    pub(super) async fn connect(builder: &Builder) -> Result<Self, CacheError> {
        let client = builder.build_subscriber_client().map_err(|error| map_error("", error))?;
        init(&client).await?;
        let senders: Senders = Arc::new(Mutex::new(HashMap::new()));
        let fan_out = tokio::spawn(fan_out(client.message_rx(), senders.clone()));
        let resubscribe = client.manage_subscriptions();
        Ok(Self { client, senders, tasks: vec![fan_out, resubscribe] })
    }

    /// Subscribes to `channel`. The receiver exists before `SUBSCRIBE` is sent, so no signal
    /// published after this returns is missed. `SUBSCRIBE` is idempotent and is sent on every
    /// call, which also repairs a channel whose earlier subscription failed.
    pub(super) async fn subscribe(&self, channel: &str) -> Result<ChangeStream, CacheError> {
        let receiver = lock(&self.senders)
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        self.client.subscribe(channel).await.map_err(|error| map_error(channel, error))?;
        Ok(ChangeStream::new(receiver))
    }
}

#[cfg(test)]
impl Subscriber {
    /// The connection's client name (see `auto_client_setname`).
    pub(super) fn name(&self) -> &str {
        self.client.id()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            handle.spawn(async move { client.quit().await });
        }
    }
}

/// Forwards each message to its channel's sender until the connection is closed.
async fn fan_out(mut messages: broadcast::Receiver<Message>, senders: Senders) {
    loop {
        let message = match messages.recv().await {
            Ok(message) => message,
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "cache change signals were dropped; subscribers may reload late");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Ok(body) = message.value.convert::<String>() else {
            tracing::warn!(channel = %message.channel, "ignoring a change signal that is not text");
            continue;
        };
        let senders = lock(&senders);
        if let Some(sender) = senders.get(&*message.channel) {
            // Err only when no receiver is left: nobody to tell.
            let _ = sender.send(body);
        }
    }
}
