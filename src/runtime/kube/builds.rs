//! Build Workflows (`ctf/kind=challenge-build`): their state by name, and a watch of their
//! completions so center records a build even when its signed callback never arrived.

use std::collections::HashSet;

use ::kube::api::{Api, DynamicObject};
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher::{self, Event};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use super::render::{CHALLENGE, KIND, KIND_BUILD};
use crate::domain::ChallengeId;
use crate::runtime::BuildState;

/// The state of a build Workflow.
pub(super) fn state(workflow: &DynamicObject) -> BuildState {
    let status = workflow.data.get("status");
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let phase = text(status.and_then(|status| status.get("phase"))).unwrap_or_else(|| "Pending".to_owned());
    let finished = matches!(phase.as_str(), "Succeeded" | "Failed" | "Error");
    let time = |key: &str| {
        text(status.and_then(|status| status.get(key)))
            .and_then(|stamp| chrono::DateTime::parse_from_rfc3339(&stamp).ok())
            .map(|stamp| stamp.timestamp())
    };
    let image = workflow
        .data
        .pointer("/spec/arguments/parameters")
        .and_then(Value::as_array)
        .and_then(|parameters| {
            parameters.iter().find(|parameter| parameter.get("name").and_then(Value::as_str) == Some("image"))
        })
        .and_then(|parameter| text(parameter.get("value")));
    BuildState {
        workflow: workflow.metadata.name.clone().unwrap_or_default(),
        challenge_id: workflow
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(CHALLENGE))
            .and_then(|value| value.parse::<i64>().ok())
            .map(ChallengeId),
        image,
        succeeded: phase == "Succeeded",
        finished,
        message: text(status.and_then(|status| status.get("message"))),
        started_at: time("startedAt"),
        finished_at: time("finishedAt"),
        phase,
    }
}

/// Finished builds, once each per stream; ends at a relist (see the pod watch).
pub(super) fn finished_builds(api: Api<DynamicObject>) -> BoxStream<'static, BuildState> {
    let config = watcher::Config::default().labels(&format!("{KIND}={KIND_BUILD}"));
    let events = watcher::watcher(api, config).default_backoff().boxed();
    let seen: HashSet<String> = HashSet::new();
    futures::stream::unfold((events, seen, false), |(mut events, mut seen, mut listed_once)| async move {
        loop {
            match events.next().await? {
                Ok(Event::Init) if listed_once => return None,
                Ok(Event::Init | Event::Delete(_)) => {}
                Ok(Event::InitDone) => listed_once = true,
                Ok(Event::InitApply(workflow) | Event::Apply(workflow)) => {
                    let build = state(&workflow);
                    if build.finished && seen.insert(build.workflow.clone()) {
                        return Some((build, (events, seen, listed_once)));
                    }
                }
                Err(error) => tracing::warn!(%error, "build watch error; retrying with backoff"),
            }
        }
    })
    .boxed()
}
