//! The `local` runtime: each challenge instance is a process on the fctf host.
//!
//! The embedded default for one-machine events and for tests: `start` runs the challenge's
//! command (`/bin/sh -c`) with `PORT`, `HOST`, `FLAG` and the instance ids in its environment,
//! readiness is a successful TCP connect to `HOST:PORT`, output is captured, and stop, the
//! maximum lifetime and `shutdown` kill the whole process group. [`process`] spawns and signals,
//! [`supervisor`] owns each child until it is reaped, [`logs`] keeps its output.
//!
//! Decisions where the spec is silent:
//! - **Duplicate start.** A start of an id that is starting or running is `Ok` and does nothing
//!   (the spec is not compared), so a redelivered deploy job is harmless. A start of an id whose
//!   process has exited replaces the old record and runs it again.
//! - **Stop** asks for SIGTERM to the group, SIGKILL after 3 s, and returns once the group is
//!   gone and `Stopped` is published. Stopping an exited instance is `Ok`. A stop forgets the
//!   instance (its logs too); after that its id is `NotFound`, which callers treat as "already
//!   gone".
//! - **Exited instances** keep their record and logs (so admins can see why one failed) until
//!   `stop` or [`EXITED_RETENTION`] after the exit; expired records are pruned lazily by the next
//!   call. They are not listed, not in flight and hold no port.
//! - **Events** go through a broadcast channel of [`EVENT_CAPACITY`]; each `watch` is an
//!   independent receiver. A watcher that falls that far behind loses the oldest events (the
//!   runtime never blocks on a slow watcher): a warning is logged and its stream ends, so its
//!   owner watches again and relists with `list()` (the listener does). Events are published
//!   under the same lock that updates the records, so `list()` is never older than an event
//!   already seen.
//! - **Shutdown** refuses new starts (`Unavailable`) and stops every instance with the given
//!   grace. Each supervisor also holds a guard that SIGKILLs its group if the task is dropped, so
//!   no challenge process outlives the fctf runtime even without `shutdown`.
//! - **No sandbox.** Processes run as fctf's user with a cleared environment (see [`process`]);
//!   use the kubernetes runtime for isolation.

mod logs;
mod process;
mod supervisor;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{InstanceEvent, InstanceSpec, LocalConfig, RuntimeBackend, RuntimeError, RuntimeObject};
use crate::domain::InstanceId;
use logs::{SharedLogs, Stream};
use process::ProcessGroup;
use supervisor::Supervised;

/// Grace between SIGTERM and SIGKILL for `stop`, the ready timeout and the lifetime backstop.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long an exited instance's record and logs are kept when nobody stops it.
pub const EXITED_RETENTION: Duration = Duration::from_secs(10 * 60);
/// Events buffered per watcher before a slow watcher starts skipping.
pub const EVENT_CAPACITY: usize = 1024;

/// Runtime running challenge instances as local processes.
#[derive(Debug)]
pub struct LocalRuntime {
    inner: Arc<Inner>,
}

/// State shared by the handle and the supervisors.
#[derive(Debug)]
struct Inner {
    cfg: LocalConfig,
    exited_retention: Duration,
    state: Mutex<State>,
    events_tx: broadcast::Sender<InstanceEvent>,
}

#[derive(Debug, Default)]
struct State {
    instances: HashMap<InstanceId, Entry>,
    next_generation: u64,
    /// Offset into the port range where the next search starts.
    port_cursor: u32,
    shutting_down: bool,
}

#[derive(Debug)]
struct Entry {
    /// Distinguishes successive runs of one id.
    generation: u64,
    name: String,
    port: u16,
    phase: Phase,
    logs: SharedLogs,
    stop_tx: watch::Sender<Option<Duration>>,
    done_rx: watch::Receiver<bool>,
}

#[derive(Debug)]
enum Phase {
    Starting,
    Running { upstream: String },
    Exited { at: Instant },
}

impl Phase {
    fn is_live(&self) -> bool {
        !matches!(self, Phase::Exited { .. })
    }
}

impl LocalRuntime {
    /// A runtime with no instances. Spawning needs a tokio runtime with the `process` driver.
    pub fn new(cfg: LocalConfig) -> Self {
        Self::with_exited_retention(cfg, EXITED_RETENTION)
    }

    /// A runtime keeping exited instances for `exited_retention` instead of the default.
    pub(crate) fn with_exited_retention(cfg: LocalConfig, exited_retention: Duration) -> Self {
        let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let state = State { port_cursor: rand::random(), ..State::default() };
        let inner = Inner { cfg, exited_retention, state: Mutex::new(state), events_tx };
        Self { inner: Arc::new(inner) }
    }

    /// Stops `instance_id` with `grace` between SIGTERM and SIGKILL, and forgets it.
    async fn stop_with_grace(&self, instance_id: InstanceId, grace: Duration) -> Result<(), RuntimeError> {
        let (generation, mut done_rx) = {
            let mut state = self.inner.lock_state();
            state.prune_exited(self.inner.exited_retention);
            let Some(entry) = state.instances.get(&instance_id) else {
                return Err(RuntimeError::NotFound(instance_id));
            };
            entry.stop_tx.send_if_modified(|request| {
                if request.is_some() {
                    return false;
                }
                *request = Some(grace);
                true
            });
            (entry.generation, entry.done_rx.clone())
        };
        // An error means the supervisor is gone, which also means the group is gone.
        let _ = done_rx.wait_for(|done| *done).await;
        let mut state = self.inner.lock_state();
        if state.instances.get(&instance_id).is_some_and(|entry| entry.generation == generation) {
            state.instances.remove(&instance_id);
        }
        Ok(())
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the instance accepts connections and publishes `Running`.
    fn mark_running(&self, instance_id: InstanceId, generation: u64, upstream: String) {
        let mut state = self.lock_state();
        let Some(entry) = state.instances.get_mut(&instance_id) else { return };
        if entry.generation != generation || !matches!(entry.phase, Phase::Starting) {
            return;
        }
        entry.phase = Phase::Running { upstream: upstream.clone() };
        let _ = self.events_tx.send(InstanceEvent::Running { instance_id, upstream });
    }

    /// Records that the process group is gone and publishes the final `event`.
    fn mark_exited(&self, instance_id: InstanceId, generation: u64, event: InstanceEvent) {
        let mut state = self.lock_state();
        if let Some(entry) = state.instances.get_mut(&instance_id)
            && entry.generation == generation
        {
            entry.phase = Phase::Exited { at: Instant::now() };
        }
        let _ = self.events_tx.send(event);
    }
}

impl State {
    fn prune_exited(&mut self, retention: Duration) {
        self.instances.retain(|_, entry| match entry.phase {
            Phase::Exited { at } => at.elapsed() < retention,
            _ => true,
        });
    }
}

#[async_trait]
impl RuntimeBackend for LocalRuntime {
    async fn start(&self, spec: InstanceSpec) -> Result<(), RuntimeError> {
        let command = process::validate_spec(&spec).map_err(RuntimeError::InvalidSpec)?;
        let cfg = &self.inner.cfg;
        // One critical section from the duplicate check to publishing `Starting`: two starts
        // can neither both run one id nor pick the same port. Nothing in it awaits.
        let mut state = self.inner.lock_state();
        if state.shutting_down {
            return Err(RuntimeError::Unavailable("the local runtime is shutting down".to_owned()));
        }
        state.prune_exited(self.inner.exited_retention);
        if state.instances.get(&spec.instance_id).is_some_and(|entry| entry.phase.is_live()) {
            return Ok(());
        }
        let held: HashSet<u16> =
            state.instances.values().filter(|entry| entry.phase.is_live()).map(|entry| entry.port).collect();
        let port =
            process::pick_port(&cfg.host, cfg.port_range_start, cfg.port_range_end, &mut state.port_cursor, &held)
                .ok_or_else(|| {
                    RuntimeError::Unavailable(format!(
                        "no free port in {}..={} on {}",
                        cfg.port_range_start, cfg.port_range_end, cfg.host
                    ))
                })?;
        let mut child = process::spawn(&spec, command, &cfg.host, port)
            .map_err(|error| RuntimeError::Other(format!("failed to spawn the challenge command: {error}")))?;
        let Some(group) = child.id().and_then(ProcessGroup::led_by) else {
            let _ = child.start_kill();
            return Err(RuntimeError::Other("the challenge process has no usable process id".to_owned()));
        };

        let logs = SharedLogs::new(cfg.log_lines);
        let mut readers = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(logs::capture(stdout, Stream::Stdout, logs.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(logs::capture(stderr, Stream::Stderr, logs.clone())));
        }
        let (stop_tx, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let generation = state.next_generation;
        state.next_generation += 1;
        let instance_id = spec.instance_id;
        let entry = Entry {
            generation,
            name: spec.name.clone(),
            port,
            phase: Phase::Starting,
            logs: logs.clone(),
            stop_tx,
            done_rx,
        };
        state.instances.insert(instance_id, entry);
        let _ = self.inner.events_tx.send(InstanceEvent::Starting { instance_id });
        tracing::info!(instance_id = %instance_id, name = %spec.name, port, "started local challenge process");

        let supervised = Supervised {
            instance_id,
            generation,
            child,
            group,
            host: cfg.host.clone(),
            port,
            flag: spec.flag,
            logs,
            readers,
            stop_rx,
            done_tx,
            ready_timeout: Duration::from_secs(cfg.ready_timeout_secs),
            max_lifetime: (spec.max_lifetime_secs > 0).then(|| Duration::from_secs(spec.max_lifetime_secs)),
        };
        tokio::spawn(supervisor::supervise(Arc::clone(&self.inner), supervised));
        Ok(())
    }

    async fn stop(&self, instance_id: InstanceId) -> Result<(), RuntimeError> {
        self.stop_with_grace(instance_id, STOP_GRACE).await
    }

    async fn logs(&self, instance_id: InstanceId, tail_lines: usize) -> Result<String, RuntimeError> {
        let logs = {
            let mut state = self.inner.lock_state();
            state.prune_exited(self.inner.exited_retention);
            let entry = state.instances.get(&instance_id).ok_or(RuntimeError::NotFound(instance_id))?;
            entry.logs.clone()
        };
        Ok(logs.tail(tail_lines))
    }

    async fn in_flight(&self) -> Result<usize, RuntimeError> {
        let state = self.inner.lock_state();
        Ok(state.instances.values().filter(|entry| matches!(entry.phase, Phase::Starting)).count())
    }

    async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError> {
        let mut state = self.inner.lock_state();
        state.prune_exited(self.inner.exited_retention);
        let mut objects: Vec<RuntimeObject> = state
            .instances
            .iter()
            .filter_map(|(instance_id, entry)| match &entry.phase {
                Phase::Starting => Some(RuntimeObject {
                    instance_id: *instance_id,
                    name: entry.name.clone(),
                    upstream: None,
                    starting: true,
                }),
                Phase::Running { upstream } => Some(RuntimeObject {
                    instance_id: *instance_id,
                    name: entry.name.clone(),
                    upstream: Some(upstream.clone()),
                    starting: false,
                }),
                Phase::Exited { .. } => None,
            })
            .collect();
        objects.sort_by_key(|object| object.instance_id);
        Ok(objects)
    }

    fn watch(&self) -> BoxStream<'static, InstanceEvent> {
        // A lagging watcher's stream ends (the `RuntimeBackend::watch` contract): its owner
        // watches again and relists instead of silently missing events.
        let events = BroadcastStream::new(self.inner.events_tx.subscribe()).map_while(|item| match item {
            Ok(event) => Some(event),
            Err(BroadcastStreamRecvError::Lagged(skipped)) => {
                tracing::warn!(skipped, "runtime event watcher lagged behind; its stream ends and its owner relists");
                None
            }
        });
        Box::pin(events)
    }

    async fn shutdown(&self, grace: Duration) {
        let live: Vec<InstanceId> = {
            let mut state = self.inner.lock_state();
            state.shutting_down = true;
            state.instances.iter().filter(|(_, entry)| entry.phase.is_live()).map(|(id, _)| *id).collect()
        };
        if !live.is_empty() {
            tracing::info!(instances = live.len(), "stopping local challenge processes");
        }
        let stops = live.into_iter().map(|instance_id| self.stop_with_grace(instance_id, grace));
        // NotFound only means a concurrent stop got there first.
        let _ = futures::future::join_all(stops).await;
    }
}
