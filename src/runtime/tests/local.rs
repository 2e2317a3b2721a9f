//! The conformance suite on the local runtime, and local-only behaviour: environment, process
//! groups, exit handling, lifetime backstop, ports, log retention, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use super::{
    Challenges, Events, IMPATIENT_READY_TIMEOUT, MakeTarget, PATIENT_READY_TIMEOUT, Target, accepts, base_spec,
    expect_closed, runtime_conformance_tests,
};
use crate::domain::InstanceId;
use crate::runtime::{InstanceEvent, InstanceSpec, LocalConfig, LocalRuntime, Runtime, RuntimeError};

const HTTP_SERVER: &str = r#"exec python3 -m http.server "$PORT" --bind "$HOST""#;
/// Ports per runtime. Test runtimes of one process get disjoint ranges below the ephemeral range
/// and above the default `runtime.local` range, so parallel tests never race for a port; the
/// first block depends on the process id, so test processes running at once (several
/// checkouts on one machine) mostly use different blocks.
const PORTS_PER_RUNTIME: u16 = 20;
const TEST_PORTS_START: u16 = 30_000;
const TEST_PORTS_END: u16 = 32_700;

fn config(ready_timeout: Duration) -> LocalConfig {
    static NEXT_BLOCK: AtomicU16 = AtomicU16::new(0);
    let blocks = (TEST_PORTS_END - TEST_PORTS_START) / PORTS_PER_RUNTIME;
    let first_block = u16::try_from(std::process::id() % u32::from(blocks)).unwrap();
    let block = (first_block + NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) % blocks) % blocks;
    let start = TEST_PORTS_START + block * PORTS_PER_RUNTIME;
    LocalConfig {
        host: "127.0.0.1".to_owned(),
        ready_timeout_secs: ready_timeout.as_secs(),
        port_range_start: start,
        port_range_end: start + PORTS_PER_RUNTIME - 1,
        log_lines: 100,
    }
}

fn runtime_with(cfg: LocalConfig) -> Runtime {
    Runtime(Arc::new(LocalRuntime::new(cfg)))
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn with_command(mut spec: InstanceSpec, command: impl Into<String>) -> InstanceSpec {
    spec.command = Some(command.into());
    spec
}

struct ShellChallenges;

impl Challenges for ShellChallenges {
    fn http_server(&self, base: InstanceSpec, line: &str) -> InstanceSpec {
        with_command(base, format!("echo {}; {HTTP_SERVER}", quoted(line)))
    }

    fn exits_with_code(&self, base: InstanceSpec, line: &str, code: i32) -> InstanceSpec {
        with_command(base, format!("echo {}; exit {code}", quoted(line)))
    }

    fn never_listens(&self, base: InstanceSpec) -> InstanceSpec {
        with_command(base, "exec sleep 300")
    }

    fn unrunnable(&self, mut base: InstanceSpec) -> InstanceSpec {
        base.command = None;
        base
    }
}

struct LocalTargets;

#[async_trait::async_trait]
impl MakeTarget for LocalTargets {
    async fn target(&self, ready_timeout: Duration) -> Target {
        Target { runtime: runtime_with(config(ready_timeout)), challenges: Box::new(ShellChallenges) }
    }
}

async fn local_targets() -> Option<Box<dyn MakeTarget>> {
    Some(Box::new(LocalTargets))
}

mod conformance {
    super::runtime_conformance_tests!(super::local_targets);
}

/// Starts `spec` and waits until it runs; returns the upstream.
async fn start_running(runtime: &Runtime, events: &mut Events, spec: InstanceSpec) -> String {
    let instance_id = spec.instance_id;
    runtime.start(spec).await.unwrap();
    events.expect_running(instance_id).await
}

/// Starts `spec` and returns its final event after `Starting`.
async fn start_until_end(runtime: &Runtime, spec: InstanceSpec) -> InstanceEvent {
    let mut events = Events::watch(runtime);
    let instance_id = spec.instance_id;
    runtime.start(spec).await.unwrap();
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Starting { instance_id });
    events.next_for(instance_id).await
}

/// The value of `key=` on a captured output line.
fn logged_value(logs: &str, key: &str) -> Option<String> {
    let prefix = format!("[stdout] {key}=");
    logs.lines().find_map(|line| line.strip_prefix(&prefix)).map(str::to_owned)
}

async fn logged_pid(runtime: &Runtime, instance_id: InstanceId, key: &str) -> u32 {
    let logs = runtime.logs(instance_id, 100).await.unwrap();
    logged_value(&logs, key).and_then(|pid| pid.parse().ok()).unwrap_or_else(|| panic!("no {key} in {logs}"))
}

/// `/proc/<pid>` state: `None` when the process is gone, `Some('Z')` for a zombie.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next())
}

/// Waits until `pid` is gone or a zombie (an orphaned grandchild is reaped by init, not by us).
async fn expect_dead(pid: u32) {
    for _ in 0..50 {
        if matches!(process_state(pid), None | Some('Z')) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("process {pid} is still alive: {:?}", process_state(pid));
}

#[tokio::test]
async fn environment_carries_port_flag_ids_and_extras_but_not_fctf_secrets() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let mut events = Events::watch(&runtime);
    let mut spec = base_spec();
    spec.env.insert("EXTRA".to_owned(), "extra value".to_owned());
    spec.env.insert("PORT".to_owned(), "1".to_owned());
    let command = r#"for key in PORT FLAG HOST FCTF_INSTANCE_ID FCTF_TEAM_ID FCTF_CHALLENGE_ID EXTRA CARGO_MANIFEST_DIR; do
        eval "echo $key=\${$key:-unset}"; done"#;
    let spec = with_command(spec, format!("{command}; {HTTP_SERVER}"));
    let (instance_id, flag) = (spec.instance_id, spec.flag.clone().unwrap());
    let upstream = start_running(&runtime, &mut events, spec).await;

    let logs = runtime.logs(instance_id, 100).await.unwrap();
    let port = upstream.rsplit_once(':').unwrap().1;
    assert_eq!(logged_value(&logs, "PORT").as_deref(), Some(port), "the runtime's PORT wins over spec.env");
    assert_eq!(logged_value(&logs, "FLAG"), Some(flag));
    assert_eq!(logged_value(&logs, "HOST").as_deref(), Some("127.0.0.1"));
    assert_eq!(logged_value(&logs, "FCTF_INSTANCE_ID"), Some(instance_id.to_string()));
    assert_eq!(logged_value(&logs, "FCTF_TEAM_ID").as_deref(), Some("7"));
    assert_eq!(logged_value(&logs, "FCTF_CHALLENGE_ID").as_deref(), Some("11"));
    assert_eq!(logged_value(&logs, "EXTRA").as_deref(), Some("extra value"));
    // cargo sets this for the test process; the challenge must not inherit fctf's environment.
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        assert_eq!(logged_value(&logs, "CARGO_MANIFEST_DIR").as_deref(), Some("unset"));
    }
    runtime.shutdown(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn stop_kills_the_whole_process_group_and_reaps_the_leader() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let mut events = Events::watch(&runtime);
    let command = format!("sleep 300 & echo grandchild=$!; echo leader=$$; {HTTP_SERVER}");
    let spec = with_command(base_spec(), command);
    let instance_id = spec.instance_id;
    let upstream = start_running(&runtime, &mut events, spec).await;
    let leader = logged_pid(&runtime, instance_id, "leader").await;
    let grandchild = logged_pid(&runtime, instance_id, "grandchild").await;
    assert!(!matches!(process_state(leader), None | Some('Z')));
    assert!(!matches!(process_state(grandchild), None | Some('Z')));

    runtime.stop(instance_id).await.unwrap();
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Stopped { instance_id });
    assert_eq!(process_state(leader), None, "the leader must be reaped, not left a zombie");
    expect_dead(grandchild).await;
    expect_closed(&upstream).await;
    // Stop forgets the instance; a second stop finds nothing.
    assert!(matches!(runtime.stop(instance_id).await, Err(RuntimeError::NotFound(_))));
    assert!(matches!(runtime.logs(instance_id, 10).await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn leftovers_of_a_leader_that_exits_on_its_own_are_killed() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let spec = with_command(base_spec(), "sleep 300 & echo grandchild=$!; exit 5");
    let instance_id = spec.instance_id;
    let end = start_until_end(&runtime, spec).await;
    assert!(matches!(&end, InstanceEvent::Failed { reason, .. } if reason.contains("exited with code 5")), "{end:?}");
    expect_dead(logged_pid(&runtime, instance_id, "grandchild").await).await;
}

#[tokio::test]
async fn failure_reason_names_the_code_and_last_output_without_the_flag() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let spec = with_command(base_spec(), r#"echo "cannot open db, flag is $FLAG" >&2; exit 3"#);
    let flag = spec.flag.clone().unwrap();
    match start_until_end(&runtime, spec).await {
        InstanceEvent::Failed { reason, .. } => {
            assert!(reason.contains("exited with code 3 before accepting connections"), "{reason}");
            assert!(reason.contains("cannot open db, flag is [redacted]"), "{reason}");
            assert!(!reason.contains(&flag), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// A server that accepts one connection (the readiness probe), then exits with `code`.
fn serves_once_then_exits(code: i32) -> InstanceSpec {
    let script = "import os, socket, sys\n\
        server = socket.socket()\n\
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        server.bind((os.environ['HOST'], int(os.environ['PORT'])))\n\
        server.listen()\n\
        server.accept()[0].close()\n\
        sys.exit(int(sys.argv[1]))";
    with_command(base_spec(), format!("exec python3 -c {} {code}", quoted(script)))
}

#[tokio::test]
async fn exit_after_running_is_stopped_with_code_zero_and_failed_otherwise() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let mut events = Events::watch(&runtime);
    for (code, expect_failed) in [(0, false), (4, true)] {
        let spec = serves_once_then_exits(code);
        let instance_id = spec.instance_id;
        start_running(&runtime, &mut events, spec).await;
        match events.next_for(instance_id).await {
            InstanceEvent::Stopped { .. } => assert!(!expect_failed),
            InstanceEvent::Failed { reason, .. } => {
                assert!(expect_failed);
                assert!(reason.contains("exited with code 4 after accepting connections"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let logs = runtime.logs(instance_id, 10).await.unwrap();
        assert!(logs.ends_with(&format!("[fctf] exited with code {code}")), "{logs}");
    }
}

#[tokio::test]
async fn max_lifetime_backstop_stops_the_instance() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let mut events = Events::watch(&runtime);
    let mut spec = with_command(base_spec(), HTTP_SERVER);
    spec.max_lifetime_secs = 2;
    let instance_id = spec.instance_id;
    let upstream = start_running(&runtime, &mut events, spec).await;
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Stopped { instance_id });
    expect_closed(&upstream).await;
    let logs = runtime.logs(instance_id, 10).await.unwrap();
    assert!(logs.contains("[fctf] stopped: maximum lifetime of 2 s reached"), "{logs}");
}

#[tokio::test]
async fn shutdown_stops_everything_and_refuses_new_starts() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let mut events = Events::watch(&runtime);
    let mut leaders = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let spec = with_command(base_spec(), format!("echo leader=$$; trap '' TERM; {HTTP_SERVER}"));
        ids.push(spec.instance_id);
        start_running(&runtime, &mut events, spec).await;
    }
    let starting = with_command(base_spec(), "exec sleep 300");
    ids.push(starting.instance_id);
    runtime.start(starting).await.unwrap();
    for instance_id in &ids[..3] {
        leaders.push(logged_pid(&runtime, *instance_id, "leader").await);
    }

    // The HTTP servers ignore SIGTERM (inherited SIG_IGN), so this also exercises SIGKILL.
    runtime.shutdown(Duration::from_millis(500)).await;
    let mut stopped = Vec::new();
    while stopped.len() < ids.len() {
        if let InstanceEvent::Stopped { instance_id } = events.next_any().await {
            stopped.push(instance_id);
        }
    }
    for leader in leaders {
        assert_eq!(process_state(leader), None);
    }
    assert!(runtime.list().await.unwrap().is_empty());
    let refused = runtime.start(with_command(base_spec(), HTTP_SERVER)).await;
    assert!(matches!(refused, Err(RuntimeError::Unavailable(_))), "{refused:?}");
}

#[tokio::test]
async fn busy_ports_are_skipped_and_an_exhausted_range_is_unavailable() {
    let mut cfg = config(PATIENT_READY_TIMEOUT);
    cfg.port_range_end = cfg.port_range_start + 1;
    let busy = std::net::TcpListener::bind(("127.0.0.1", cfg.port_range_start)).unwrap();
    let runtime = runtime_with(cfg.clone());
    let mut events = Events::watch(&runtime);
    let upstream = start_running(&runtime, &mut events, with_command(base_spec(), HTTP_SERVER)).await;
    assert_eq!(upstream, format!("127.0.0.1:{}", cfg.port_range_end));

    let refused = runtime.start(with_command(base_spec(), HTTP_SERVER)).await;
    assert!(matches!(refused, Err(RuntimeError::Unavailable(_))), "{refused:?}");
    drop(busy);
    runtime.shutdown(Duration::from_secs(3)).await;
}

#[tokio::test]
async fn exited_instance_keeps_its_logs_until_stopped_and_can_start_again() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let spec = with_command(base_spec(), "echo first run; exit 2");
    let instance_id = spec.instance_id;
    assert!(matches!(start_until_end(&runtime, spec.clone()).await, InstanceEvent::Failed { .. }));
    let logs = runtime.logs(instance_id, 10).await.unwrap();
    assert_eq!(logs, "[stdout] first run\n[fctf] exited with code 2");
    assert!(runtime.list().await.unwrap().is_empty());

    // Starting the same id again after it exited runs it again.
    let mut events = Events::watch(&runtime);
    start_running(&runtime, &mut events, with_command(spec, HTTP_SERVER)).await;
    assert!(!runtime.logs(instance_id, 10).await.unwrap().contains("first run"));
    runtime.stop(instance_id).await.unwrap();

    // A stop of an exited instance is Ok and forgets it.
    let exited = with_command(base_spec(), "exit 1");
    let exited_id = exited.instance_id;
    start_until_end(&runtime, exited).await;
    runtime.stop(exited_id).await.unwrap();
    assert!(matches!(runtime.logs(exited_id, 10).await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn exited_instances_are_forgotten_after_the_retention() {
    let local = LocalRuntime::with_exited_retention(config(PATIENT_READY_TIMEOUT), Duration::from_millis(200));
    let runtime = Runtime(Arc::new(local));
    let spec = with_command(base_spec(), "exit 1");
    let instance_id = spec.instance_id;
    start_until_end(&runtime, spec).await;
    assert!(runtime.logs(instance_id, 10).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(runtime.logs(instance_id, 10).await, Err(RuntimeError::NotFound(_))));
}

#[tokio::test]
async fn logs_keep_the_last_lines_and_bound_long_ones() {
    let mut cfg = config(PATIENT_READY_TIMEOUT);
    cfg.log_lines = 5;
    let runtime = runtime_with(cfg);
    let command = "i=0; while [ $i -lt 50 ]; do echo line $i; i=$((i+1)); done; \
                   head -c 100000 /dev/zero | tr '\\0' a; echo; sleep 0.3; echo err >&2; exit 1";
    let spec = with_command(base_spec(), command);
    let instance_id = spec.instance_id;
    start_until_end(&runtime, spec).await;
    let logs = runtime.logs(instance_id, 100).await.unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 5, "{logs}");
    let long_line = lines.iter().find(|line| line.starts_with("[stdout] aaa")).expect("the long line");
    assert!(long_line.ends_with("…[line truncated]"));
    assert!(long_line.len() < 4200, "{}", long_line.len());
    assert!(lines.contains(&"[stdout] line 49"));
    assert!(lines.contains(&"[stderr] err"));
    assert_eq!(lines.last(), Some(&"[fctf] exited with code 1"));
}

#[tokio::test]
async fn invalid_environment_is_an_invalid_spec() {
    let runtime = runtime_with(config(IMPATIENT_READY_TIMEOUT));
    let mut spec = with_command(base_spec(), HTTP_SERVER);
    spec.env.insert("BAD=NAME".to_owned(), "x".to_owned());
    assert!(matches!(runtime.start(spec).await, Err(RuntimeError::InvalidSpec(_))));
    let blank = with_command(base_spec(), "   ");
    assert!(matches!(runtime.start(blank).await, Err(RuntimeError::InvalidSpec(_))));
    assert!(runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn ports_rotate_instead_of_reusing_a_just_freed_one() {
    let runtime = runtime_with(config(PATIENT_READY_TIMEOUT));
    let mut events = Events::watch(&runtime);
    let first = with_command(base_spec(), HTTP_SERVER);
    let first_id = first.instance_id;
    let first_upstream = start_running(&runtime, &mut events, first).await;
    runtime.stop(first_id).await.unwrap();
    let second_upstream = start_running(&runtime, &mut events, with_command(base_spec(), HTTP_SERVER)).await;
    assert_ne!(first_upstream, second_upstream);
    assert!(accepts(&second_upstream).await);
    runtime.shutdown(Duration::from_secs(3)).await;
}
