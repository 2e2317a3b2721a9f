//! Image builds: center submits the build workflow (`up-challenge-template`, through the
//! runtime) and records its signed status report.
//!
//! Decisions: a report is idempotent per (workflow, outcome): a repeated report changes
//! nothing. `Error` counts as a failure (`succeeded` is false). On success the built image
//! becomes the challenge's image and a version is recorded; on failure the challenge is hidden
//! (a broken challenge is never shown). A success never publishes a challenge by itself: its
//! visibility stays the organiser's decision.

use super::service::CenterService;
use crate::control::{BuildAccepted, BuildReport, BuildRequest, ControlError};
use crate::runtime::BuildSpec;
use crate::store::{ChallengeState, StoreError};

/// `deploy_status` while a build runs.
pub const PENDING: &str = "PENDING_DEPLOY";
/// `deploy_status` after a successful build.
pub const SUCCEEDED: &str = "DEPLOY_SUCCEEDED";
/// `deploy_status` after a failed build.
pub const FAILED: &str = "DEPLOY_FAILED";

/// Submits a build workflow.
pub(super) async fn submit(center: &CenterService, request: BuildRequest) -> Result<BuildAccepted, ControlError> {
    if request.challenge_id.get() <= 0 || request.context_url.trim().is_empty() || request.image.trim().is_empty() {
        return Err(ControlError::BadRequest("challenge_id, context_url and image are required".to_owned()));
    }
    let store = center.lifecycle.store();
    match store.get_challenge(request.challenge_id).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(ControlError::NotFound("Challenge not found".to_owned())),
        Err(error) => return Err(error.into()),
    }
    let spec = BuildSpec {
        challenge_id: request.challenge_id,
        context_url: request.context_url,
        image: request.image,
        dockerfile: request.dockerfile,
        callback_url: center.build_callback_url.clone(),
    };
    let workflow = center.lifecycle.runtime().build_image(spec).await?;
    store.set_challenge_deploy_status(request.challenge_id, Some(PENDING)).await?;
    store.append_deploy_history(request.challenge_id, None, PENDING, Some(&workflow), None).await?;
    tracing::info!(challenge = %request.challenge_id, %workflow, "image build submitted");
    Ok(BuildAccepted { workflow })
}

/// Records builds that finished without reporting (the callback is the normal path; this
/// watch of the build Workflows is the fallback), until the token is cancelled.
pub(super) async fn watch_finished(center: &CenterService, token: tokio_util::sync::CancellationToken) {
    use futures::StreamExt;
    loop {
        let mut builds = center.lifecycle.runtime().watch_builds();
        loop {
            let build = tokio::select! {
                () = token.cancelled() => return,
                build = builds.next() => build,
            };
            let Some(build) = build else { break };
            let Some(challenge_id) = build.challenge_id else { continue };
            let report = BuildReport {
                challenge_id,
                finished_at: build.finished_at.unwrap_or_else(crate::store::now),
                image: build.image.clone().unwrap_or_default(),
                kind: "build".to_owned(),
                message: build.message.clone(),
                phase: build.phase.clone(),
                succeeded: build.succeeded,
                workflow: build.workflow.clone(),
            };
            if let Err(error) = record(center, report).await {
                tracing::warn!(%error, workflow = %build.workflow, "could not record a finished build");
            }
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// Records a build report.
pub(super) async fn record(center: &CenterService, report: BuildReport) -> Result<(), ControlError> {
    if report.kind != "build" || report.workflow.is_empty() {
        return Err(ControlError::BadRequest("not a build report".to_owned()));
    }
    let store = center.lifecycle.store();
    let mut challenge = match store.get_challenge(report.challenge_id).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Err(ControlError::NotFound("Challenge not found".to_owned())),
        Err(error) => return Err(error.into()),
    };
    let status = if report.succeeded { SUCCEEDED } else { FAILED };
    let history = store.list_deploy_history(report.challenge_id).await?;
    if history
        .iter()
        .any(|record| record.workflow_name.as_deref() == Some(report.workflow.as_str()) && record.status == status)
    {
        return Ok(());
    }
    let detail = report.message.as_deref().map(|message| message.chars().take(1000).collect::<String>());
    if report.succeeded {
        let version = store
            .add_challenge_version(report.challenge_id, &report.image, challenge.spec.deploy.exposed_port, None)
            .await?;
        challenge.spec.deploy.image = Some(report.image.clone());
        store.update_challenge(report.challenge_id, &challenge.spec).await?;
        store
            .append_deploy_history(
                report.challenge_id,
                Some(version.id),
                status,
                Some(&report.workflow),
                detail.as_deref(),
            )
            .await?;
    } else {
        store.set_challenge_state(report.challenge_id, ChallengeState::Hidden).await?;
        store
            .append_deploy_history(report.challenge_id, None, status, Some(&report.workflow), detail.as_deref())
            .await?;
    }
    store.set_challenge_deploy_status(report.challenge_id, Some(status)).await?;
    tracing::info!(challenge = %report.challenge_id, workflow = %report.workflow, phase = %report.phase, "image build finished");
    Ok(())
}
