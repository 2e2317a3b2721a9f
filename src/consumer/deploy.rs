//! Handling of one deploy job: re-read the instance, claim it (`queued` → `deploying`), build
//! its `InstanceSpec` from the challenge, ask the runtime to start it.

use std::time::Duration;

use crate::control::lifecycle::{Lifecycle, time_limit_secs};
use crate::domain::instance_names::instance_name;
use crate::queue::DeployJob;
use crate::runtime::{ContainerSettings, InstanceSpec, RuntimeError};
use crate::store::{Challenge, Instance, InstanceState, StoreError};

/// Attempts at claiming an instance whose state moves under us.
const CLAIM_ATTEMPTS: usize = 3;
/// Longest pause before a retried job goes back to the queue.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How to settle a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Handled or dropped for good: ack.
    Done,
    /// Transient failure: requeue after `delay`.
    Retry { delay: Duration },
    /// Gave up: the instance failed; dead-letter the job.
    DeadLetter,
}

/// Everything a job needs.
pub(super) struct Worker {
    pub lifecycle: Lifecycle,
    pub max_deliveries: u32,
    pub queue_timeout_secs: i64,
    /// Added to the instance lifetime for the runtime's lifetime backstop.
    pub start_budget_secs: u64,
}

impl Worker {
    /// Handles one job (at least once: every step is idempotent).
    pub async fn deploy(&self, job: &DeployJob, delivery_count: u32) -> Outcome {
        match self.try_deploy(job).await {
            Ok(outcome) => outcome,
            Err(reason) => self.transient(job, delivery_count, &reason).await,
        }
    }

    async fn transient(&self, job: &DeployJob, delivery_count: u32, reason: &str) -> Outcome {
        if delivery_count >= self.max_deliveries {
            tracing::warn!(instance = %job.instance_id, deliveries = delivery_count, reason, "deploy job failed too often; dead-lettered");
            if let Err(error) = self.lifecycle.fail(job.instance_id, &format!("could not start: {reason}")).await {
                tracing::warn!(%error, instance = %job.instance_id, "could not record a failed start");
            }
            return Outcome::DeadLetter;
        }
        tracing::info!(instance = %job.instance_id, deliveries = delivery_count, reason, "deploy job will be retried");
        let delay = Duration::from_millis(200u64.saturating_mul(u64::from(delivery_count))).min(MAX_RETRY_DELAY);
        Outcome::Retry { delay }
    }

    async fn try_deploy(&self, job: &DeployJob) -> Result<Outcome, String> {
        let store = self.lifecycle.store();
        let Some(instance) = self.claim(job).await.map_err(|error| error.to_string())? else {
            return Ok(Outcome::Done);
        };
        let challenge = match store.get_challenge(instance.challenge_id).await {
            Ok(challenge) => challenge,
            Err(StoreError::NotFound) => {
                self.fail(&instance, "the challenge no longer exists").await;
                return Ok(Outcome::Done);
            }
            Err(error) => return Err(error.to_string()),
        };
        let spec = self.spec(&instance, &challenge);
        if let Err(error) = store.set_instance_runtime_name(instance.id, &spec.name).await {
            tracing::warn!(%error, instance = %instance.id, "could not record the runtime name");
        }
        match self.lifecycle.runtime().start(spec).await {
            Ok(()) => {}
            Err(RuntimeError::InvalidSpec(reason)) => {
                self.fail(&instance, &reason).await;
                return Ok(Outcome::Done);
            }
            Err(error) => return Err(error.to_string()),
        }
        // A stop may have won between our claim and the runtime object appearing: it found
        // nothing to remove, so remove it now (the listener would also catch it as a ghost).
        match store.get_instance(instance.id).await {
            Ok(current) if matches!(current.state, InstanceState::Deploying | InstanceState::Running) => {}
            Ok(_) | Err(StoreError::NotFound) => self.lifecycle.remove_runtime_object(instance.id).await,
            Err(error) => tracing::warn!(%error, instance = %instance.id, "could not re-check a started instance"),
        }
        Ok(Outcome::Done)
    }

    /// Moves the job's instance to `deploying`; `None` when the job must be dropped (the
    /// instance is gone, stopped, failed or already running, or waited too long).
    async fn claim(&self, job: &DeployJob) -> Result<Option<Instance>, StoreError> {
        let store = self.lifecycle.store();
        for _ in 0..CLAIM_ATTEMPTS {
            let instance = match store.get_instance(job.instance_id).await {
                Ok(instance) => instance,
                Err(StoreError::NotFound) => return Ok(None),
                Err(error) => return Err(error),
            };
            match instance.state {
                InstanceState::Queued => {
                    if crate::store::now().saturating_sub(job.enqueued_at) > self.queue_timeout_secs {
                        self.fail(&instance, "waited too long in the deployment queue").await;
                        return Ok(None);
                    }
                    if self.lifecycle.begin_deploy(&instance).await? {
                        return Ok(Some(Instance { state: InstanceState::Deploying, ..instance }));
                    }
                }
                // A redelivery after a consumer died between claiming and acking: start again.
                InstanceState::Deploying => return Ok(Some(instance)),
                InstanceState::Running | InstanceState::Stopping | InstanceState::Stopped | InstanceState::Failed => {
                    tracing::debug!(instance = %instance.id, state = instance.state.as_str(), "deploy job dropped");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    async fn fail(&self, instance: &Instance, reason: &str) {
        tracing::info!(instance = %instance.id, reason, "instance failed before starting");
        if let Err(error) = self.lifecycle.fail(instance.id, reason).await {
            tracing::warn!(%error, instance = %instance.id, "could not record a failed start");
        }
    }

    fn spec(&self, instance: &Instance, challenge: &Challenge) -> InstanceSpec {
        let deploy = &challenge.spec.deploy;
        let lifetime = u64::try_from(time_limit_secs(deploy)).unwrap_or(0);
        let to_u32 = |value: Option<i64>| value.and_then(|value| u32::try_from(value).ok()).filter(|value| *value > 0);
        InstanceSpec {
            instance_id: instance.id,
            team_id: instance.team_id,
            challenge_id: instance.challenge_id,
            name: instance_name(instance.team_id, instance.challenge_id, &challenge.spec.name, instance.id),
            image: deploy.image.clone(),
            command: deploy.command.clone(),
            port: deploy.exposed_port.and_then(|port| u16::try_from(port).ok()).unwrap_or(0),
            flag: instance.flag.clone(),
            env: Default::default(),
            max_lifetime_secs: lifetime.saturating_add(self.start_budget_secs),
            container: ContainerSettings {
                cpu_request_millis: to_u32(deploy.cpu_request),
                cpu_limit_millis: to_u32(deploy.cpu_limit),
                memory_request_mib: to_u32(deploy.memory_request),
                memory_limit_mib: to_u32(deploy.memory_limit),
                hardened: deploy.harden_container,
                gvisor: deploy.use_gvisor,
            },
        }
    }
}
