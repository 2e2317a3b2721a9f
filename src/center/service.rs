//! `CenterService`: center's implementation of the control operations, over the store (the
//! instance rows), the cache (hot state), the queue producer and the runtime.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use crate::config::Secrets;
use crate::control::lifecycle::{Lifecycle, StopResult};
use crate::control::{
    BuildAccepted, BuildReport, BuildRequest, BuildState, BuildStatusRequest, ControlError, ControlService,
    InstanceView, ListOutcome, ListRequest, LogsOutcome, LogsRequest, StartOutcome, StartRequest, StatusOutcome,
    StatusRequest, StopAllOutcome, StopAllRequest, StopReason, StopRequest,
};
use crate::domain::{InstanceId, TeamId};
use crate::queue::{DeployJob, QueueProducer, Task};
use crate::store::{Instance, InstanceState, NewInstance, StoreError, UserRole};

/// A failed instance stays visible in status answers this long, so the player sees why.
pub const RECENT_FAILURE_SECS: i64 = 5 * 60;
/// Stops run at once by stop-all.
const STOP_ALL_CONCURRENCY: usize = 16;

/// Center's control operations.
pub struct CenterService {
    pub(super) lifecycle: Lifecycle,
    producer: QueueProducer,
    secrets: Secrets,
    /// URL of center's build callback, given to build workflows.
    pub(super) build_callback_url: String,
}

impl CenterService {
    /// Builds the service.
    pub fn new(
        lifecycle: Lifecycle,
        producer: QueueProducer,
        secrets: Secrets,
        build_callback_url: String,
    ) -> Arc<Self> {
        Arc::new(Self { lifecycle, producer, secrets, build_callback_url })
    }

    /// The player-facing view of an instance: the gateway token while running (minted from the
    /// row, so its `exp` is always `time_finished`), the queue position while queued.
    async fn view(&self, instance: &Instance) -> Result<InstanceView, ControlError> {
        let mut view = InstanceView::of(instance);
        match instance.state {
            InstanceState::Running => {
                if let (Some(upstream), Some(expires_at)) = (&instance.upstream, instance.expires_at) {
                    view.token = Some(crate::domain::gateway_token::mint(
                        self.secrets.gateway(),
                        expires_at,
                        upstream,
                        Some(instance.id),
                    ));
                }
            }
            InstanceState::Queued => {
                let ahead = self.lifecycle.store().count_queued_before(instance.id).await?;
                view.queue_position = Some(u64::try_from(ahead).unwrap_or(0) + 1);
            }
            _ => {}
        }
        Ok(view)
    }

    /// Publishes the deploy job of a freshly queued instance; on failure the instance ends
    /// `failed` (releasing the team's slot) and the error is returned.
    async fn publish(&self, instance: &Instance) -> Result<(), ControlError> {
        let job = DeployJob {
            instance_id: instance.id,
            challenge_id: instance.challenge_id,
            team_id: instance.team_id,
            user_id: instance.user_id,
            enqueued_at: crate::store::now(),
        };
        let Err(error) = self.producer.publish(&Task::Deploy(job)).await else { return Ok(()) };
        let control_error = ControlError::from(error);
        tracing::warn!(instance = %instance.id, error = %control_error, "deploy job not queued");
        if let Err(store_error) = self.lifecycle.fail(instance.id, &control_error.to_string()).await {
            tracing::warn!(error = %store_error, instance = %instance.id, "could not record the queueing failure");
        }
        Err(control_error)
    }

    async fn latest_instance(
        &self,
        team_id: TeamId,
        challenge_id: crate::domain::ChallengeId,
    ) -> Result<Option<Instance>, StoreError> {
        if let Some(live) = self.lifecycle.store().find_live_instance(team_id, challenge_id).await? {
            return Ok(Some(live));
        }
        let latest = self.lifecycle.store().list_instances(Some(team_id), Some(challenge_id), 0, 1).await?;
        Ok(latest.into_iter().next())
    }

    async fn stop_instance(&self, instance: Instance, reason: StopReason) -> Result<InstanceView, ControlError> {
        match self.lifecycle.stop(instance, reason.as_str()).await? {
            StopResult::Stopped(stopped) | StopResult::Stopping(stopped) => Ok(InstanceView::of(&stopped)),
            StopResult::AlreadyStopped(_) => Err(ControlError::Conflict("Challenge already stopped".to_owned())),
        }
    }
}

#[async_trait]
impl ControlService for CenterService {
    async fn start(&self, request: StartRequest) -> Result<StartOutcome, ControlError> {
        if request.challenge_id.get() <= 0 || request.team_id.get() == 0 {
            return Err(ControlError::BadRequest("Invalid request data.".to_owned()));
        }
        let store = self.lifecycle.store();
        let challenge = match store.get_challenge(request.challenge_id).await {
            Ok(challenge) => challenge,
            Err(StoreError::NotFound) => return Err(ControlError::NotFound("Challenge not found".to_owned())),
            Err(error) => return Err(error.into()),
        };
        if !challenge.spec.deploy.require_deploy {
            return Err(ControlError::BadRequest("This challenge does not require deploy".to_owned()));
        }
        let flags = store.list_flags(Some(request.challenge_id)).await?;
        let flag = super::flags::instance_flag(&flags, self.secrets.internal(), request.challenge_id, request.team_id);
        let new = NewInstance {
            team_id: request.team_id,
            challenge_id: request.challenge_id,
            user_id: request.user_id,
            flag,
        };
        // Two attempts: a conflicting live instance may end between our insert and our read.
        for _ in 0..2 {
            match store.create_instance(&new).await {
                Ok(instance) => {
                    self.publish(&instance).await?;
                    tracing::info!(instance = %instance.id, team = %instance.team_id, challenge = %instance.challenge_id, "instance queued");
                    return Ok(StartOutcome { created: true, instance: self.view(&instance).await? });
                }
                Err(error) if error.is_conflict_on("instances_live_uq") => {
                    if let Some(existing) = store.find_live_instance(request.team_id, request.challenge_id).await? {
                        return Ok(StartOutcome { created: false, instance: self.view(&existing).await? });
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ControlError::Unavailable("the instance changed state during the start; try again".to_owned()))
    }

    async fn stop(&self, request: StopRequest) -> Result<InstanceView, ControlError> {
        let store = self.lifecycle.store();
        let Some(instance) = store.find_live_instance(request.team_id, request.challenge_id).await? else {
            return Err(ControlError::NotFound("Challenge not started or already stopped".to_owned()));
        };
        self.stop_instance(instance, request.reason).await
    }

    async fn status(&self, request: StatusRequest) -> Result<StatusOutcome, ControlError> {
        let Some(instance) = self.latest_instance(request.team_id, request.challenge_id).await? else {
            return Ok(StatusOutcome { instance: None });
        };
        let recent_failure = instance.state == InstanceState::Failed
            && instance.stopped_at.is_some_and(|at| crate::store::now() - at < RECENT_FAILURE_SECS);
        if instance.state.is_terminal() && !recent_failure {
            return Ok(StatusOutcome { instance: None });
        }
        Ok(StatusOutcome { instance: Some(self.view(&instance).await?) })
    }

    async fn list(&self, request: ListRequest) -> Result<ListOutcome, ControlError> {
        let live = self.lifecycle.store().list_live_instances(request.team_id).await?;
        let mut instances = Vec::with_capacity(live.len());
        for instance in &live {
            instances.push(self.view(instance).await?);
        }
        Ok(ListOutcome { instances })
    }

    async fn logs(&self, request: LogsRequest) -> Result<LogsOutcome, ControlError> {
        let Some(instance) = self.latest_instance(request.team_id, request.challenge_id).await? else {
            return Err(ControlError::NotFound("Pod not found".to_owned()));
        };
        let tail = request.tail_lines.clamp(1, 10_000);
        match self.lifecycle.runtime().logs(instance.id, tail).await {
            Ok(logs) => Ok(LogsOutcome { instance_id: instance.id, logs }),
            Err(crate::runtime::RuntimeError::NotFound(_)) => Err(ControlError::NotFound("Pod not found".to_owned())),
            Err(error) => Err(error.into()),
        }
    }

    async fn stop_all(&self, request: StopAllRequest) -> Result<StopAllOutcome, ControlError> {
        let store = self.lifecycle.store();
        let admin = match store.get_user(request.user_id).await {
            Ok(user) => user.role == UserRole::Admin,
            Err(StoreError::NotFound) => false,
            Err(error) => return Err(error.into()),
        };
        if !admin {
            return Err(ControlError::Forbidden("Unauthorized request.".to_owned()));
        }
        let live = store.list_live_instances(None).await?;
        let results: Vec<Result<StopResult, StoreError>> = futures::stream::iter(live)
            .map(|instance| self.lifecycle.stop(instance, StopReason::Admin.as_str()))
            .buffer_unordered(STOP_ALL_CONCURRENCY)
            .collect()
            .await;
        let mut outcome = StopAllOutcome { stopped: 0, orphans_removed: 0, failed: 0 };
        for result in results {
            match result {
                Ok(StopResult::Stopped(_)) => outcome.stopped += 1,
                Ok(StopResult::AlreadyStopped(_)) => {}
                Ok(StopResult::Stopping(_)) | Err(_) => outcome.failed += 1,
            }
        }
        let objects = self.lifecycle.runtime().list().await?;
        let live_ids: std::collections::HashSet<InstanceId> =
            store.list_live_instances(None).await?.into_iter().map(|instance| instance.id).collect();
        for object in objects.into_iter().filter(|object| !live_ids.contains(&object.instance_id)) {
            match self.lifecycle.runtime().stop(object.instance_id).await {
                Ok(()) | Err(crate::runtime::RuntimeError::NotFound(_)) => outcome.orphans_removed += 1,
                Err(error) => {
                    tracing::warn!(%error, instance = %object.instance_id, "stop-all could not remove a runtime object");
                    outcome.failed += 1;
                }
            }
        }
        tracing::info!(
            stopped = outcome.stopped,
            orphans = outcome.orphans_removed,
            failed = outcome.failed,
            "stop-all"
        );
        Ok(outcome)
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildAccepted, ControlError> {
        super::builds::submit(self, request).await
    }

    async fn build_status(&self, request: BuildStatusRequest) -> Result<BuildState, ControlError> {
        Ok(self.lifecycle.runtime().build_state(&request.workflow).await?)
    }

    async fn build_report(&self, report: BuildReport) -> Result<(), ControlError> {
        super::builds::record(self, report).await
    }
}
