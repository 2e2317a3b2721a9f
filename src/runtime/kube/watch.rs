//! The pod watch: kube-runtime's watcher over pods labelled `ctf/kind=challenge` in every
//! namespace, mapped to instance events.
//!
//! The watcher lists, then watches from the list's resource version; a watch that ends
//! normally resumes from the last version seen (nothing lost); a `410 Gone` or a desync makes
//! it list again (`Init`), and errors back off exponentially. Decisions:
//! - An event is emitted only when a pod's mapped state changes (pods are modified far more
//!   often than their instance changes state).
//! - A relist after the first one means events may have been missed in between (deletions in
//!   particular never show in a list), so the stream *ends* there, as the `Runtime::watch`
//!   contract asks: the listener watches again and runs a full resync.

use std::collections::HashMap;

use ::kube::api::Api;
use ::kube::runtime::WatchStreamExt;
use ::kube::runtime::watcher::{self, Event};
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;

use super::pods::{self, PodState};
use super::render::{KIND, KIND_CHALLENGE};
use crate::domain::InstanceId;
use crate::runtime::InstanceEvent;

struct WatchState {
    events: BoxStream<'static, Result<Event<Pod>, watcher::Error>>,
    last: HashMap<InstanceId, PodState>,
    listed_once: bool,
    pending: Vec<InstanceEvent>,
}

/// Instance events from the pods of `api` (all namespaces).
pub(super) fn pod_events(api: Api<Pod>) -> BoxStream<'static, InstanceEvent> {
    let config = watcher::Config::default().labels(&format!("{KIND}={KIND_CHALLENGE}"));
    let events = watcher::watcher(api, config).default_backoff().boxed();
    let state = WatchState { events, last: HashMap::new(), listed_once: false, pending: Vec::new() };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop() {
                return Some((event, state));
            }
            match state.events.next().await? {
                Ok(Event::Init) => {
                    if state.listed_once {
                        tracing::info!("pod watch relisted; ending the stream so its owner resyncs");
                        return None;
                    }
                }
                Ok(Event::InitDone) => state.listed_once = true,
                Ok(Event::InitApply(pod) | Event::Apply(pod)) => {
                    if let Some(event) = state.apply(&pod) {
                        state.pending.push(event);
                    }
                }
                Ok(Event::Delete(pod)) => {
                    if let Some(instance_id) = pods::instance_id(&pod) {
                        state.last.remove(&instance_id);
                        state.pending.push(InstanceEvent::Stopped { instance_id });
                    }
                }
                Err(error) => tracing::warn!(%error, "pod watch error; retrying with backoff"),
            }
        }
    })
    .boxed()
}

impl WatchState {
    fn apply(&mut self, pod: &Pod) -> Option<InstanceEvent> {
        let instance_id = pods::instance_id(pod)?;
        let state = pods::state(pod, chrono::Utc::now().timestamp())?;
        if self.last.get(&instance_id) == Some(&state) {
            return None;
        }
        self.last.insert(instance_id, state.clone());
        Some(match state {
            PodState::Starting => InstanceEvent::Starting { instance_id },
            PodState::Running { upstream } => InstanceEvent::Running { instance_id, upstream },
            PodState::Failed { reason } => InstanceEvent::Failed { instance_id, reason },
        })
    }
}
