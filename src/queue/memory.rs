//! `MemoryQueue`: the in-process queue backend (embedded default, tests).
//!
//! It owns one bounded FIFO of ready messages shared by every clone, the messages currently held
//! by consumers (inside their ackers) and an inspectable dead-letter list. It mirrors the
//! RabbitMQ backend's semantics so that the conformance suite holds for both:
//!
//! - **Capacity counts ready messages only**, like RabbitMQ's `x-max-length`: a publish is refused
//!   with [`QueueError::Full`] while `max_length` messages wait undelivered; messages a consumer
//!   holds unacknowledged do not count. A message that returns to the queue (retry, or a delivery
//!   dropped unsettled) is always accepted even when that briefly exceeds the capacity: it was
//!   accepted once and must not be lost.
//! - **Retry goes to the back** of the queue (RabbitMQ: the consumer republishes a copy), so a
//!   failing job does not starve the others. A delivery **dropped without being settled** goes
//!   back to the **front** (RabbitMQ: the broker requeues it at its original position).
//! - The delivery count is kept with the message and incremented on every delivery, so it is
//!   exact (1 on the first delivery).
//! - Dead-lettered messages are kept, newest last, up to `max(max_length, 100)` entries; the
//!   oldest are discarded beyond that (with a warning) so a poison flood cannot exhaust memory.
//! - `receive` parks on a [`Notify`] (no polling); one notification is issued per message that
//!   becomes ready, and the queue state is always re-checked under the lock.
//!
//! Nothing survives a restart; that is the point of the RabbitMQ backend.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Acker, ConsumerBackend, ProducerBackend, QueueError, RawDelivery};

/// Minimum number of dead letters kept for inspection.
const MIN_DEAD_LETTERS_KEPT: usize = 100;

/// A bounded in-process queue. Clones share the same queue.
#[derive(Clone)]
pub struct MemoryQueue {
    shared: Arc<Shared>,
}

/// A message moved to the dead-letter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message body as published.
    pub payload: Vec<u8>,
    /// How many times it had been delivered when it was dead-lettered.
    pub deliveries: u32,
}

struct Shared {
    state: Mutex<State>,
    ready_notify: Notify,
    capacity: usize,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Message>,
    dead_letters: VecDeque<DeadLetter>,
}

struct Message {
    payload: Vec<u8>,
    /// Deliveries so far.
    deliveries: u32,
}

impl Shared {
    /// Locks the state. A panic while the lock was held cannot leave the queue half-updated
    /// (every critical section is a single push or pop), so a poisoned lock is recovered.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn return_message(&self, message: Message, at_front: bool) {
        {
            let mut state = self.lock();
            if at_front {
                state.ready.push_front(message);
            } else {
                state.ready.push_back(message);
            }
        }
        self.ready_notify.notify_one();
    }

    fn dead_letter(&self, message: Message) {
        let keep = self.capacity.max(MIN_DEAD_LETTERS_KEPT);
        let mut state = self.lock();
        state.dead_letters.push_back(DeadLetter { payload: message.payload, deliveries: message.deliveries });
        while state.dead_letters.len() > keep {
            state.dead_letters.pop_front();
            tracing::warn!(kept = keep, "memory queue dead-letter list full; oldest entry discarded");
        }
    }
}

impl MemoryQueue {
    /// A queue holding at most `max_length` ready messages.
    pub fn new(max_length: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                ready_notify: Notify::new(),
                capacity: max_length,
            }),
        }
    }

    /// The messages moved to the dead-letter list, oldest first (admin and tests).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.lock().dead_letters.iter().cloned().collect()
    }

    /// Messages waiting to be delivered.
    pub fn ready_len(&self) -> usize {
        self.shared.lock().ready.len()
    }
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").field("capacity", &self.shared.capacity).finish_non_exhaustive()
    }
}

#[async_trait]
impl ProducerBackend for MemoryQueue {
    async fn publish(&self, payload: Vec<u8>) -> Result<(), QueueError> {
        {
            let mut state = self.shared.lock();
            if state.ready.len() >= self.shared.capacity {
                return Err(QueueError::Full);
            }
            state.ready.push_back(Message { payload, deliveries: 0 });
        }
        self.shared.ready_notify.notify_one();
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.ready_len() as u64)
    }
}

#[async_trait]
impl ConsumerBackend for MemoryQueue {
    async fn receive(&self) -> Result<RawDelivery, QueueError> {
        loop {
            // Register interest before looking, so a publish between the check and the wait
            // cannot be missed.
            let notified = self.shared.ready_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let message_opt = self.shared.lock().ready.pop_front();
            if let Some(mut message) = message_opt {
                // If a notification was meant for us, dropping `notified` forwards it to the
                // next waiter (tokio's `Notify` contract), so no wake-up is lost.
                message.deliveries = message.deliveries.saturating_add(1);
                return Ok(RawDelivery {
                    payload: message.payload.clone(),
                    delivery_count: message.deliveries,
                    acker: Box::new(MemoryAcker { shared: self.shared.clone(), message: Mutex::new(Some(message)) }),
                });
            }
            notified.await;
        }
    }
}

/// Settles one in-memory delivery; the message travels with it until settled.
struct MemoryAcker {
    shared: Arc<Shared>,
    message: Mutex<Option<Message>>,
}

impl MemoryAcker {
    fn take(&self) -> Result<Message, QueueError> {
        self.message
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| QueueError::Other("delivery already settled".to_owned()))
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), QueueError> {
        self.take().map(drop)
    }

    async fn requeue(&self) -> Result<(), QueueError> {
        let message = self.take()?;
        self.shared.return_message(message, false);
        Ok(())
    }

    async fn dead_letter(&self) -> Result<(), QueueError> {
        let message = self.take()?;
        self.shared.dead_letter(message);
        Ok(())
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        let message_opt = self.message.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(message) = message_opt {
            tracing::debug!(deliveries = message.deliveries, "unsettled queue delivery dropped; requeued");
            self.shared.return_message(message, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn receive(queue: &MemoryQueue) -> RawDelivery {
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.receive())
            .await
            .expect("a ready message")
            .expect("receive")
    }

    #[tokio::test]
    async fn retry_goes_to_the_back_and_a_dropped_delivery_to_the_front() {
        let queue = MemoryQueue::new(10);
        for body in [b"a", b"b", b"c"] {
            queue.publish(body.to_vec()).await.expect("publish");
        }
        let a = receive(&queue).await;
        a.acker.requeue().await.expect("requeue");
        let b = receive(&queue).await;
        assert_eq!(b.payload, b"b");
        drop(b);
        let order: Vec<(Vec<u8>, u32)> = [receive(&queue).await, receive(&queue).await, receive(&queue).await]
            .into_iter()
            .map(|delivery| (delivery.payload.clone(), delivery.delivery_count))
            .collect();
        assert_eq!(order, vec![(b"b".to_vec(), 2), (b"c".to_vec(), 1), (b"a".to_vec(), 2)]);
    }

    #[tokio::test]
    async fn a_returning_message_is_accepted_even_when_the_queue_is_full() {
        let queue = MemoryQueue::new(1);
        queue.publish(b"a".to_vec()).await.expect("publish");
        let a = receive(&queue).await;
        queue.publish(b"b".to_vec()).await.expect("publish while a is in flight");
        assert!(matches!(queue.publish(b"c".to_vec()).await, Err(QueueError::Full)));
        a.acker.requeue().await.expect("requeue over capacity");
        assert_eq!(queue.ready_len(), 2);
    }

    #[tokio::test]
    async fn dead_letters_are_capped_oldest_first() {
        let queue = MemoryQueue::new(1);
        for n in 0..(MIN_DEAD_LETTERS_KEPT + 5) {
            queue.publish(n.to_string().into_bytes()).await.expect("publish");
            receive(&queue).await.acker.dead_letter().await.expect("dead-letter");
        }
        let dead = queue.dead_letters();
        assert_eq!(dead.len(), MIN_DEAD_LETTERS_KEPT);
        assert_eq!(dead[0], DeadLetter { payload: b"5".to_vec(), deliveries: 1 });
    }

    #[tokio::test]
    async fn settling_twice_is_an_error() {
        let queue = MemoryQueue::new(1);
        queue.publish(b"a".to_vec()).await.expect("publish");
        let a = receive(&queue).await;
        a.acker.ack().await.expect("ack");
        assert!(a.acker.requeue().await.is_err());
        assert_eq!(queue.ready_len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_receiver_wakes_on_publish() {
        let queue = MemoryQueue::new(1);
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { receive(&queue).await.payload }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        queue.publish(b"late".to_vec()).await.expect("publish");
        assert_eq!(waiting.await.expect("receiver"), b"late");
    }
}
