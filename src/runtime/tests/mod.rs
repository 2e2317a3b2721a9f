//! Runtime tests.
//!
//! [`conformance`] is the backend-neutral suite: each case is a function taking a
//! [`MakeTarget`] (how to build a `Runtime` and which specs it can run), and
//! [`runtime_conformance_tests!`] turns the whole suite into one `#[tokio::test]` per case for
//! a backend. [`local`] instantiates it for the local runtime and adds local-only tests
//! (environment, process groups, ports, log retention). A Kubernetes target implements
//! [`MakeTarget`] with images instead of commands and returns `None` from its factory when
//! `FCTF_TEST_KUBE` is unset.

pub(crate) mod conformance;
mod local;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{InstanceEvent, InstanceSpec, Runtime};
use crate::domain::{ChallengeId, InstanceId, TeamId};

/// Ready timeout for cases where the instance is expected to come up.
pub(crate) const PATIENT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Ready timeout for cases where the instance is expected never to come up.
pub(crate) const IMPATIENT_READY_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a case waits for one expected event.
pub(crate) const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The challenges a backend can run, built from a base spec that carries the ids and flag.
pub(crate) trait Challenges: Send + Sync {
    /// An HTTP server answering `GET /` with status 200, which writes `line` to its output
    /// first.
    fn http_server(&self, base: InstanceSpec, line: &str) -> InstanceSpec;
    /// Writes `line` to its output and exits with `code` without ever listening.
    fn exits_with_code(&self, base: InstanceSpec, line: &str, code: i32) -> InstanceSpec;
    /// Keeps running without ever listening.
    fn never_listens(&self, base: InstanceSpec) -> InstanceSpec;
    /// A spec this backend must refuse as invalid.
    fn unrunnable(&self, base: InstanceSpec) -> InstanceSpec;
}

/// A runtime under test and the challenges it can run.
pub(crate) struct Target {
    pub runtime: Runtime,
    pub challenges: Box<dyn Challenges>,
}

/// Builds targets for one backend.
#[async_trait::async_trait]
pub(crate) trait MakeTarget: Sync {
    /// A fresh runtime whose instances must accept connections within `ready_timeout`.
    async fn target(&self, ready_timeout: Duration) -> Target;
}

/// One `#[tokio::test]` per conformance case, for the backend whose factory is `$make`: an
/// `async fn() -> Option<Box<dyn MakeTarget>>` returning `None` to skip (backend not set up).
macro_rules! runtime_conformance_tests {
    ($make:path) => {
        $crate::runtime::tests::runtime_conformance_tests!(
            @cases $make;
            start_reports_starting_then_running_with_a_serving_upstream,
            stop_reports_stopped_and_closes_the_upstream,
            stop_while_starting_reports_stopped,
            exit_before_ready_reports_failed_with_the_exit_code,
            never_listening_reports_failed_after_the_ready_timeout,
            duplicate_start_of_a_live_instance_is_a_noop,
            stop_and_logs_of_an_unknown_instance_are_not_found,
            start_of_an_unrunnable_spec_is_invalid,
            in_flight_counts_starts_until_running_or_failed,
            list_shows_live_instances_only,
            logs_capture_the_output,
            concurrent_starts_all_run_with_distinct_upstreams,
            every_watcher_sees_every_event,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(make) = $make().await else { return };
                $crate::runtime::tests::conformance::$case(&*make).await;
            }
        )*
    };
}
pub(crate) use runtime_conformance_tests;

/// An instance id no other test of this process uses, and unlikely to collide across
/// processes sharing a cluster.
pub(crate) fn next_instance_id() -> InstanceId {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    let base = i64::from(std::process::id()) * 1_000_000;
    InstanceId(base + NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A spec with fresh ids, a flag and nothing to run yet.
pub(crate) fn base_spec() -> InstanceSpec {
    let instance_id = next_instance_id();
    InstanceSpec {
        instance_id,
        team_id: TeamId(7),
        challenge_id: ChallengeId(11),
        name: format!("test-{}", instance_id.get()),
        image: None,
        command: None,
        port: 3333,
        flag: Some(format!("fctf{{test-flag-{}}}", instance_id.get())),
        env: Default::default(),
        max_lifetime_secs: 600,
        container: Default::default(),
    }
}

/// A watch stream that sets aside events about other instances, so a test following several
/// instances can wait for each in turn without losing any.
pub(crate) struct Events {
    stream: BoxStream<'static, InstanceEvent>,
    set_aside: VecDeque<InstanceEvent>,
}

impl Events {
    /// Watches `runtime` from now on.
    pub(crate) fn watch(runtime: &Runtime) -> Self {
        Self { stream: runtime.watch(), set_aside: VecDeque::new() }
    }

    /// The next event about any instance; panics after `EVENT_TIMEOUT`.
    pub(crate) async fn next_any(&mut self) -> InstanceEvent {
        if let Some(event) = self.set_aside.pop_front() {
            return event;
        }
        match tokio::time::timeout(EVENT_TIMEOUT, self.stream.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("event stream ended"),
            Err(_) => panic!("no event within {EVENT_TIMEOUT:?}"),
        }
    }

    /// The next event about `instance_id`; panics after `EVENT_TIMEOUT`.
    pub(crate) async fn next_for(&mut self, instance_id: InstanceId) -> InstanceEvent {
        if let Some(position) = self.set_aside.iter().position(|event| event.instance_id() == instance_id)
            && let Some(event) = self.set_aside.remove(position)
        {
            return event;
        }
        let wait = async {
            loop {
                match self.stream.next().await {
                    Some(event) if event.instance_id() == instance_id => return event,
                    Some(event) => self.set_aside.push_back(event),
                    None => panic!("event stream ended while waiting for instance {instance_id}"),
                }
            }
        };
        match tokio::time::timeout(EVENT_TIMEOUT, wait).await {
            Ok(event) => event,
            Err(_) => panic!("no event for instance {instance_id} within {EVENT_TIMEOUT:?}"),
        }
    }

    /// Waits for `Starting` then `Running` and returns the upstream.
    pub(crate) async fn expect_running(&mut self, instance_id: InstanceId) -> String {
        assert_eq!(self.next_for(instance_id).await, InstanceEvent::Starting { instance_id });
        match self.next_for(instance_id).await {
            InstanceEvent::Running { upstream, .. } => upstream,
            other => panic!("expected Running, got {other:?}"),
        }
    }
}

/// Whether something accepts TCP connections at `upstream`.
pub(crate) async fn accepts(upstream: &str) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(upstream)).await, Ok(Ok(_)))
}

/// Polls until nothing accepts connections at `upstream`; panics after 10 s.
pub(crate) async fn expect_closed(upstream: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while accepts(upstream).await {
        assert!(tokio::time::Instant::now() < deadline, "{upstream} still accepts connections");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /` over HTTP/1.0; returns the whole response.
pub(crate) async fn http_get(upstream: &str) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: fctf-test\r\n\r\n").await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("GET {upstream} failed: {error}"),
        Err(_) => panic!("GET {upstream} timed out"),
    }
}
