//! Runtime events → instance transitions.

use super::reconcile::Reconciler;
use crate::control::lifecycle::time_finished;
use crate::domain::InstanceId;
use crate::runtime::InstanceEvent;
use crate::store::{InstanceState, StoreError};

/// Reason recorded when the event end stops an instance.
pub(super) const EVENT_ENDED: &str = "the event has ended";

impl Reconciler {
    /// Applies one runtime event.
    pub async fn handle_event(&self, event: InstanceEvent) {
        let instance_id = event.instance_id();
        let result = match event {
            InstanceEvent::Starting { instance_id } => self.on_starting(instance_id).await,
            InstanceEvent::Running { instance_id, upstream } => self.on_running(instance_id, &upstream).await,
            InstanceEvent::Failed { instance_id, reason } => self.fail(instance_id, &reason).await,
            InstanceEvent::Stopped { instance_id } => self.on_stopped(instance_id).await,
        };
        if let Err(error) = result {
            tracing::warn!(%error, instance = %instance_id, "could not apply a runtime event; the next resync retries");
        }
    }

    /// An object is starting: if its instance is no longer live, remove it at once.
    async fn on_starting(&self, id: InstanceId) -> Result<(), StoreError> {
        match self.lifecycle().store().get_instance(id).await {
            Ok(instance) if instance.state.is_terminal() => {
                self.lifecycle().remove_runtime_object(id).await;
                Ok(())
            }
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The instance accepts connections at `upstream`.
    pub(super) async fn on_running(&self, id: InstanceId, upstream: &str) -> Result<(), StoreError> {
        let store = self.lifecycle().store();
        let instance = match store.get_instance(id).await {
            Ok(instance) => instance,
            // No record at all: a ghost, collected after the grace period.
            Err(StoreError::NotFound) => return Ok(()),
            Err(error) => return Err(error),
        };
        match instance.state {
            InstanceState::Queued | InstanceState::Deploying => {
                let challenge = store.get_challenge(instance.challenge_id).await?;
                let now = crate::store::now();
                let event_end = self.event().current().end;
                let finish = time_finished(now, &challenge.spec.deploy, event_end);
                if finish <= now {
                    self.lifecycle().stop(instance, EVENT_ENDED).await?;
                    return Ok(());
                }
                if self.lifecycle().mark_running(&instance, upstream, finish).await? {
                    self.metrics().running.inc();
                    tracing::info!(instance = %id, %upstream, time_finished = finish, "instance running");
                } else {
                    // Moved meanwhile (stopped or failed): re-apply against the new state.
                    let current = store.get_instance(id).await?;
                    if current.state.is_terminal() || current.state == InstanceState::Stopping {
                        self.lifecycle().remove_runtime_object(id).await;
                    }
                }
            }
            InstanceState::Running => {
                if let Err(error) = self.lifecycle().restore_hot_state(&instance).await {
                    tracing::warn!(%error, instance = %id, "could not refresh a running instance's hot state");
                }
            }
            // Stopping: center is removing it. Stopped or failed: a late start; remove it.
            InstanceState::Stopping => {}
            InstanceState::Stopped | InstanceState::Failed => self.lifecycle().remove_runtime_object(id).await,
        }
        Ok(())
    }

    /// The object is gone.
    async fn on_stopped(&self, id: InstanceId) -> Result<(), StoreError> {
        let instance = match self.lifecycle().store().get_instance(id).await {
            Ok(instance) => instance,
            Err(StoreError::NotFound) => return Ok(()),
            Err(error) => return Err(error),
        };
        match instance.state {
            InstanceState::Stopping => {
                self.lifecycle().finish_stop(instance).await?;
            }
            InstanceState::Deploying | InstanceState::Running => {
                self.fail(id, "the instance stopped unexpectedly").await?;
            }
            InstanceState::Queued | InstanceState::Stopped | InstanceState::Failed => {}
        }
        Ok(())
    }
}
