//! The runtime conformance suite: behaviour every backend must show, written once.
//!
//! Each case builds its own target, starts only instances with fresh ids, and stops what it
//! started (then calls `shutdown`, which only matters for the local runtime).

use std::collections::HashSet;
use std::time::Duration;

use super::{
    Events, IMPATIENT_READY_TIMEOUT, MakeTarget, PATIENT_READY_TIMEOUT, Target, accepts, base_spec, expect_closed,
    http_get,
};
use crate::runtime::{InstanceEvent, RuntimeError};

async fn finish(target: Target) {
    target.runtime.shutdown(Duration::from_secs(5)).await;
}

pub(crate) async fn start_reports_starting_then_running_with_a_serving_upstream(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.http_server(base_spec(), "hello");
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();

    let upstream = events.expect_running(instance_id).await;
    assert!(accepts(&upstream).await);
    let response = http_get(&upstream).await;
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"), "{response}");

    target.runtime.stop(instance_id).await.unwrap();
    finish(target).await;
}

pub(crate) async fn stop_reports_stopped_and_closes_the_upstream(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.http_server(base_spec(), "hello");
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();
    let upstream = events.expect_running(instance_id).await;

    target.runtime.stop(instance_id).await.unwrap();
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Stopped { instance_id });
    expect_closed(&upstream).await;
    assert!(target.runtime.list().await.unwrap().iter().all(|object| object.instance_id != instance_id));
    finish(target).await;
}

pub(crate) async fn stop_while_starting_reports_stopped(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.never_listens(base_spec());
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Starting { instance_id });

    target.runtime.stop(instance_id).await.unwrap();
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Stopped { instance_id });
    assert_eq!(target.runtime.in_flight().await.unwrap(), 0);
    finish(target).await;
}

pub(crate) async fn exit_before_ready_reports_failed_with_the_exit_code(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.exits_with_code(base_spec(), "giving up", 3);
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();

    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Starting { instance_id });
    match events.next_for(instance_id).await {
        InstanceEvent::Failed { reason, .. } => assert!(reason.contains('3'), "reason without the exit code: {reason}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(target.runtime.in_flight().await.unwrap(), 0);
    let _ = target.runtime.stop(instance_id).await;
    finish(target).await;
}

pub(crate) async fn never_listening_reports_failed_after_the_ready_timeout(make: &dyn MakeTarget) {
    let target = make.target(IMPATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.never_listens(base_spec());
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();

    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Starting { instance_id });
    match events.next_for(instance_id).await {
        InstanceEvent::Failed { reason, .. } => {
            assert!(reason.contains("did not accept connections within 1 s"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(target.runtime.in_flight().await.unwrap(), 0);
    assert!(target.runtime.list().await.unwrap().is_empty());
    let _ = target.runtime.stop(instance_id).await;
    finish(target).await;
}

pub(crate) async fn duplicate_start_of_a_live_instance_is_a_noop(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.http_server(base_spec(), "hello");
    let instance_id = spec.instance_id;
    target.runtime.start(spec.clone()).await.unwrap();
    target.runtime.start(spec.clone()).await.unwrap();
    let upstream = events.expect_running(instance_id).await;
    target.runtime.start(spec).await.unwrap();

    let listed: Vec<_> =
        target.runtime.list().await.unwrap().into_iter().filter(|object| object.instance_id == instance_id).collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].upstream.as_deref(), Some(upstream.as_str()));
    // The next event is the stop's, not a second Starting or Running.
    target.runtime.stop(instance_id).await.unwrap();
    assert_eq!(events.next_for(instance_id).await, InstanceEvent::Stopped { instance_id });
    finish(target).await;
}

pub(crate) async fn stop_and_logs_of_an_unknown_instance_are_not_found(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let unknown = base_spec().instance_id;
    assert!(matches!(target.runtime.stop(unknown).await, Err(RuntimeError::NotFound(id)) if id == unknown));
    assert!(matches!(target.runtime.logs(unknown, 10).await, Err(RuntimeError::NotFound(id)) if id == unknown));
    finish(target).await;
}

pub(crate) async fn start_of_an_unrunnable_spec_is_invalid(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let spec = target.challenges.unrunnable(base_spec());
    let instance_id = spec.instance_id;
    assert!(matches!(target.runtime.start(spec).await, Err(RuntimeError::InvalidSpec(_))));
    assert!(target.runtime.list().await.unwrap().is_empty());
    assert!(matches!(target.runtime.stop(instance_id).await, Err(RuntimeError::NotFound(_))));
    finish(target).await;
}

pub(crate) async fn in_flight_counts_starts_until_running_or_failed(make: &dyn MakeTarget) {
    let target = make.target(IMPATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    assert_eq!(target.runtime.in_flight().await.unwrap(), 0);
    let first = target.challenges.never_listens(base_spec());
    let second = target.challenges.never_listens(base_spec());
    let (first_id, second_id) = (first.instance_id, second.instance_id);
    target.runtime.start(first).await.unwrap();
    target.runtime.start(second).await.unwrap();
    assert_eq!(target.runtime.in_flight().await.unwrap(), 2);

    for instance_id in [first_id, second_id] {
        assert_eq!(events.next_for(instance_id).await, InstanceEvent::Starting { instance_id });
    }
    for instance_id in [first_id, second_id] {
        assert!(matches!(events.next_for(instance_id).await, InstanceEvent::Failed { .. }));
    }
    assert_eq!(target.runtime.in_flight().await.unwrap(), 0);
    finish(target).await;
}

pub(crate) async fn list_shows_live_instances_only(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let running = target.challenges.http_server(base_spec(), "hello");
    let failing = target.challenges.exits_with_code(base_spec(), "bye", 1);
    let (running_id, failing_id, running_name) = (running.instance_id, failing.instance_id, running.name.clone());
    target.runtime.start(running).await.unwrap();
    target.runtime.start(failing).await.unwrap();
    let upstream = events.expect_running(running_id).await;
    assert_eq!(events.next_for(failing_id).await, InstanceEvent::Starting { instance_id: failing_id });
    assert!(matches!(events.next_for(failing_id).await, InstanceEvent::Failed { .. }));

    let listed = target.runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].instance_id, running_id);
    assert_eq!(listed[0].name, running_name);
    assert_eq!(listed[0].upstream.as_deref(), Some(upstream.as_str()));
    assert!(!listed[0].starting);

    target.runtime.stop(running_id).await.unwrap();
    assert!(target.runtime.list().await.unwrap().is_empty());
    finish(target).await;
}

pub(crate) async fn logs_capture_the_output(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let spec = target.challenges.http_server(base_spec(), "marker-line-for-logs");
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();
    let upstream = events.expect_running(instance_id).await;
    http_get(&upstream).await;

    let logs = target.runtime.logs(instance_id, 100).await.unwrap();
    assert!(logs.contains("marker-line-for-logs"), "{logs}");
    assert!(target.runtime.logs(instance_id, 1).await.unwrap().lines().count() <= 1);
    target.runtime.stop(instance_id).await.unwrap();
    finish(target).await;
}

pub(crate) async fn concurrent_starts_all_run_with_distinct_upstreams(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut events = Events::watch(&target.runtime);
    let specs: Vec<_> = (0..10).map(|_| target.challenges.http_server(base_spec(), "hello")).collect();
    let ids: Vec<_> = specs.iter().map(|spec| spec.instance_id).collect();
    let starts = specs.into_iter().map(|spec| {
        let runtime = target.runtime.clone();
        tokio::spawn(async move { runtime.start(spec).await })
    });
    for result in futures::future::join_all(starts).await {
        result.unwrap().unwrap();
    }

    let mut upstreams = HashSet::new();
    for instance_id in &ids {
        upstreams.insert(events.expect_running(*instance_id).await);
    }
    assert_eq!(upstreams.len(), ids.len(), "upstreams are not distinct: {upstreams:?}");
    for upstream in &upstreams {
        assert!(accepts(upstream).await, "{upstream} does not accept connections");
    }
    assert_eq!(target.runtime.list().await.unwrap().len(), ids.len());
    assert_eq!(target.runtime.in_flight().await.unwrap(), 0);
    for instance_id in ids {
        target.runtime.stop(instance_id).await.unwrap();
    }
    finish(target).await;
}

pub(crate) async fn every_watcher_sees_every_event(make: &dyn MakeTarget) {
    let target = make.target(PATIENT_READY_TIMEOUT).await;
    let mut first = Events::watch(&target.runtime);
    let mut second = Events::watch(&target.runtime);
    let spec = target.challenges.http_server(base_spec(), "hello");
    let instance_id = spec.instance_id;
    target.runtime.start(spec).await.unwrap();
    let upstream = first.expect_running(instance_id).await;
    assert_eq!(second.expect_running(instance_id).await, upstream);

    target.runtime.stop(instance_id).await.unwrap();
    // A watcher opened now sees only what happens from now on.
    let mut late = Events::watch(&target.runtime);
    for events in [&mut first, &mut second] {
        assert_eq!(events.next_for(instance_id).await, InstanceEvent::Stopped { instance_id });
    }
    let other = target.challenges.never_listens(base_spec());
    let other_id = other.instance_id;
    target.runtime.start(other).await.unwrap();
    assert_eq!(late.next_any().await, InstanceEvent::Starting { instance_id: other_id });
    target.runtime.stop(other_id).await.unwrap();
    finish(target).await;
}
