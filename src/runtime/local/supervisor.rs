//! One task per local instance: owns the child process from spawn to reaping.
//!
//! It probes `host:port` every [`PROBE_INTERVAL`] until a TCP connect succeeds (→ `Running`),
//! and ends on the first of: the process exiting, a stop request, the ready timeout, or the
//! instance's maximum lifetime. Every ending kills whatever is left of the process group, reaps
//! the child (no zombies), drains the output readers, records the outcome in the log buffer and
//! only then publishes the final event, so a `Stopped`/`Failed` event means the port is free.
//!
//! Outcomes:
//! - stop request (also during start-up) → `Stopped`;
//! - exit before accepting connections (whatever the code) → `Failed`, with the exit status and
//!   the last output line;
//! - exit after `Running` with code 0 → `Stopped` (it ended on its own, nothing failed);
//!   any other exit after `Running` → `Failed`, with status and last output line;
//! - no connection accepted within `ready_timeout_secs` → killed, `Failed`;
//! - `max_lifetime_secs` reached (a backstop: the listener's expiry normally stops it first) →
//!   killed, `Stopped`; the reason is written to the instance's log since `Stopped` has none.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::logs::SharedLogs;
use super::process::{KillGroupOnDrop, ProcessGroup};
use super::{Inner, STOP_GRACE};
use crate::domain::InstanceId;
use crate::runtime::InstanceEvent;

/// Time between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Longest a single readiness connect may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest to wait for the output readers after the process group is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything the supervisor of one instance owns.
pub(super) struct Supervised {
    pub instance_id: InstanceId,
    pub generation: u64,
    pub child: Child,
    pub group: ProcessGroup,
    pub host: String,
    pub port: u16,
    pub flag: Option<String>,
    pub logs: SharedLogs,
    pub readers: Vec<JoinHandle<()>>,
    /// Set to `Some(grace)` to ask for a stop.
    pub stop_rx: watch::Receiver<Option<Duration>>,
    /// Set to `true` once the process group is gone and the final event is published.
    pub done_tx: watch::Sender<bool>,
    pub ready_timeout: Duration,
    pub max_lifetime: Option<Duration>,
}

enum Ending {
    Exited(std::io::Result<ExitStatus>),
    StopRequested(Duration),
    NotReady,
    LifetimeReached(Duration),
}

/// Runs the instance to its end. See the module docs for the outcomes.
pub(super) async fn supervise(inner: Arc<Inner>, mut run: Supervised) {
    let mut guard = KillGroupOnDrop::new(run.group);
    let started = Instant::now();
    let ready_deadline = started + run.ready_timeout;
    let lifetime_deadline = run.max_lifetime.map(|lifetime| started + lifetime);
    let mut probe = tokio::time::interval(PROBE_INTERVAL);
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ready = false;

    let ending = loop {
        tokio::select! {
            status = run.child.wait() => break Ending::Exited(status),
            changed = run.stop_rx.changed() => {
                let grace = if changed.is_ok() { *run.stop_rx.borrow() } else { None };
                break Ending::StopRequested(grace.unwrap_or(STOP_GRACE));
            }
            _ = probe.tick(), if !ready => {
                if accepts_connections(&run.host, run.port).await {
                    ready = true;
                    inner.mark_running(run.instance_id, run.generation, super::process::upstream(&run.host, run.port));
                }
            }
            _ = tokio::time::sleep_until(ready_deadline), if !ready => break Ending::NotReady,
            _ = sleep_until_opt(lifetime_deadline) => {
                break Ending::LifetimeReached(run.max_lifetime.unwrap_or_default());
            }
        }
    };

    let instance_id = run.instance_id;
    let event = match ending {
        Ending::Exited(status) => {
            // The leader is reaped; kill what it left behind in its group.
            run.group.kill();
            drain(&mut run.readers).await;
            let stop_requested = run.stop_rx.borrow().is_some();
            exit_event(instance_id, status, ready, stop_requested, &run)
        }
        Ending::StopRequested(grace) => {
            terminate(&mut run, grace).await;
            run.logs.push_note("stopped on request");
            InstanceEvent::Stopped { instance_id }
        }
        Ending::NotReady => {
            terminate(&mut run, STOP_GRACE).await;
            let mut reason = format!("did not accept connections within {} s", run.ready_timeout.as_secs());
            if let Some(excerpt) = run.logs.last_output_excerpt(run.flag.as_deref()) {
                reason.push_str(&format!("; last output: {excerpt}"));
            }
            run.logs.push_note(&reason);
            InstanceEvent::Failed { instance_id, reason }
        }
        Ending::LifetimeReached(lifetime) => {
            terminate(&mut run, STOP_GRACE).await;
            let note = format!("stopped: maximum lifetime of {} s reached", lifetime.as_secs());
            tracing::info!(instance_id = %instance_id, lifetime_secs = lifetime.as_secs(), "challenge process reached its maximum lifetime");
            run.logs.push_note(&note);
            InstanceEvent::Stopped { instance_id }
        }
    };
    inner.mark_exited(instance_id, run.generation, event);
    guard.disarm();
    run.done_tx.send_replace(true);
}

/// The final event for a process that exited by itself.
fn exit_event(
    instance_id: InstanceId,
    status: std::io::Result<ExitStatus>,
    ready: bool,
    stop_requested: bool,
    run: &Supervised,
) -> InstanceEvent {
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            let reason = format!("could not wait for the challenge process: {error}");
            run.logs.push_note(&reason);
            return InstanceEvent::Failed { instance_id, reason };
        }
    };
    let described = describe(status);
    run.logs.push_note(&described);
    if stop_requested || (ready && status.success()) {
        return InstanceEvent::Stopped { instance_id };
    }
    let mut reason = if ready {
        format!("process {described} after accepting connections")
    } else {
        format!("process {described} before accepting connections")
    };
    if let Some(excerpt) = run.logs.last_output_excerpt(run.flag.as_deref()) {
        reason.push_str(&format!("; last output: {excerpt}"));
    }
    InstanceEvent::Failed { instance_id, reason }
}

/// `exited with code N` or `was killed by signal N`.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    if let Some(signal) = status.signal() {
        return format!("was killed by signal {signal}");
    }
    format!("ended with {status}")
}

/// SIGTERM to the group, SIGKILL after `grace` if the leader is still there, reap the leader,
/// SIGKILL again for members that outlived it, then drain the output.
async fn terminate(run: &mut Supervised, grace: Duration) {
    run.group.terminate();
    if tokio::time::timeout(grace, run.child.wait()).await.is_err() {
        run.group.kill();
        if let Err(error) = run.child.wait().await {
            tracing::warn!(instance_id = %run.instance_id, error = %error, "failed to reap challenge process");
        }
    }
    run.group.kill();
    drain(&mut run.readers).await;
}

/// Waits briefly for the output readers to reach end of file, then drops them.
async fn drain(readers: &mut Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    for reader in readers.iter_mut() {
        if tokio::time::timeout_at(deadline, &mut *reader).await.is_err() {
            reader.abort();
        }
    }
    readers.clear();
}

async fn accepts_connections(host: &str, port: u16) -> bool {
    matches!(tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await, Ok(Ok(_)))
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
