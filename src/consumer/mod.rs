//! The `consumer` role: deploy jobs from the queue to the runtime under a global cap.
//!
//! Loop: wait until the runtime reports fewer than `consumer.max_in_flight` starts in flight
//! (`Runtime::in_flight`, the runtime's own view: starting processes locally, start workflows
//! selected by label and phase on Kubernetes), take a batch of at most `consumer.batch_size`
//! jobs and no more than the free room (the queue's prefetch bounds what the broker hands over
//! unacknowledged), handle the batch concurrently, settle every delivery (manual ack), repeat.
//!
//! Handling is idempotent, since delivery is at least once ([`deploy`]): the job carries ids
//! only and the instance row decides. A job whose instance was stopped, failed or is already
//! running is acked and dropped; a queued instance moves to `deploying` by compare-and-set
//! before the runtime is asked, so two consumers never both start it; a redelivered job of a
//! `deploying` instance asks the runtime again, which treats a start of a live instance as a
//! no-op (locally) or finds its workflow already created (Kubernetes). A transient runtime
//! failure is retried with a growing delay; after `queue.max_deliveries` deliveries the
//! instance fails and the job goes to the dead-letter queue. On shutdown the consumer stops
//! fetching and finishes the batch in hand; a killed consumer's unacknowledged jobs are
//! redelivered.

mod deploy;

#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::control::lifecycle::Lifecycle;
use crate::metrics::{Counter, Gauge};
use crate::queue::{Delivery, QueueConsumer, QueueError};

/// The `[consumer]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Instance starts in flight at once across the whole platform.
    pub max_in_flight: u32,
    /// Jobs taken and handled together at most.
    pub batch_size: u32,
    /// Milliseconds between two looks at the runtime while it is at the cap.
    pub poll_interval_ms: u64,
    /// Seconds a job may wait in the queue; an older job fails its instance instead.
    pub queue_timeout_secs: u64,
}

/// How long the loop waits for more jobs to fill a batch once it has one.
const BATCH_GATHER: Duration = Duration::from_millis(5);
/// Pause after a queue error before trying again.
const QUEUE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The consumer role.
pub struct Consumer {
    queue: QueueConsumer,
    worker: deploy::Worker,
    cfg: Config,
    jobs_started: Counter,
    in_flight: Gauge,
}

impl Consumer {
    /// Checks that the queue consumer, the store and the runtime are available.
    pub fn bind(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let runtime = deps.runtime()?.clone();
        let store = deps.store()?.clone();
        let queue = deps.consumer.clone().context("the queue consumer is not connected")?;
        let lifecycle = Lifecycle::new(store, deps.cache.clone(), runtime);
        let worker = deploy::Worker {
            lifecycle,
            max_deliveries: deps.settings.queue.max_deliveries,
            queue_timeout_secs: i64::try_from(cfg.queue_timeout_secs).unwrap_or(i64::MAX),
            start_budget_secs: deps.settings.listener.start_timeout_secs,
        };
        Ok(Self {
            queue,
            worker,
            cfg: cfg.clone(),
            jobs_started: deps.metrics.counter(
                "fctf_consumer_starts_total",
                "Instance starts asked of the runtime.",
                &[],
            ),
            in_flight: deps.metrics.gauge("fctf_consumer_in_flight", "Instance starts in flight (runtime view).", &[]),
        })
    }

    /// Runs until the token is cancelled; the batch in hand is finished first.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        let poll = Duration::from_millis(self.cfg.poll_interval_ms.max(10));
        loop {
            if token.is_cancelled() {
                return Ok(());
            }
            let room = self.room().await;
            if room == 0 {
                tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    () = tokio::time::sleep(poll) => continue,
                }
            }
            let first = tokio::select! {
                () = token.cancelled() => return Ok(()),
                next = self.queue.next() => next,
            };
            let first = match first {
                Ok(delivery) => delivery,
                Err(QueueError::Closed) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%error, "could not take a deploy job; retrying");
                    tokio::select! {
                        () = token.cancelled() => return Ok(()),
                        () = tokio::time::sleep(QUEUE_ERROR_PAUSE) => continue,
                    }
                }
            };
            let limit = room.min(self.cfg.batch_size.max(1) as usize);
            let mut batch = vec![first];
            while batch.len() < limit && !token.is_cancelled() {
                match tokio::time::timeout(BATCH_GATHER, self.queue.next()).await {
                    Ok(Ok(delivery)) => batch.push(delivery),
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            self.jobs_started.add(batch.len() as u64);
            futures::future::join_all(batch.into_iter().map(|delivery| self.handle(delivery))).await;
        }
    }

    /// Free room under the global cap, from the runtime's own count. An unreadable count
    /// leaves no room (the cap must hold even when the runtime is unreachable).
    async fn room(&self) -> usize {
        match self.worker.lifecycle.runtime().in_flight().await {
            Ok(in_flight) => {
                self.in_flight.set(i64::try_from(in_flight).unwrap_or(i64::MAX));
                (self.cfg.max_in_flight as usize).saturating_sub(in_flight)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot count instance starts in flight; waiting");
                0
            }
        }
    }

    async fn handle(&self, delivery: Delivery) {
        let crate::queue::Task::Deploy(job) = &delivery.task;
        let job = job.clone();
        let settled = match self.worker.deploy(&job, delivery.delivery_count).await {
            deploy::Outcome::Done => delivery.ack().await,
            deploy::Outcome::Retry { delay } => {
                tokio::time::sleep(delay).await;
                delivery.retry().await
            }
            deploy::Outcome::DeadLetter => delivery.dead_letter().await,
        };
        if let Err(error) = settled {
            tracing::warn!(%error, instance = %job.instance_id, "could not settle a deploy job; it will be redelivered");
        }
    }
}
