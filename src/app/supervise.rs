//! Runs the roles of a process as tasks under one cancellation token.
//!
//! A role that returns before shutdown was requested (with or without an error) is a failure
//! of the whole process: the error names the role and every other role is stopped. On shutdown
//! readiness turns off first, then `readiness_delay` passes (so load balancers stop sending
//! traffic), then the roles are cancelled and get `grace` to finish; stragglers are aborted.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ops::Readiness;
use super::role::Role;

/// A role ready to run: given its cancellation token, returns the future that serves it.
pub type RoleTask = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// Timing of the drain.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub readiness_delay: Duration,
    pub grace: Duration,
}

/// Runs `tasks` until `shutdown` is cancelled or one of them stops on its own.
pub async fn supervise(
    tasks: Vec<(Role, RoleTask)>,
    shutdown: CancellationToken,
    readiness: Readiness,
    drain: Drain,
) -> anyhow::Result<()> {
    let roles_token = CancellationToken::new();
    let mut running: JoinSet<(Role, anyhow::Result<()>)> = JoinSet::new();
    for (role, task) in tasks {
        let future = task(roles_token.child_token());
        running.spawn(async move { (role, future.await) });
    }
    readiness.set(true);

    let mut outcome: anyhow::Result<()> = Ok(());
    tokio::select! {
        () = shutdown.cancelled() => {
            tracing::info!("shutdown requested; draining");
        }
        Some(joined) = running.join_next() => {
            outcome = Err(match joined {
                Ok((role, Ok(()))) => anyhow::anyhow!("role {role} stopped unexpectedly"),
                Ok((role, Err(error))) => error.context(format!("role {role} failed")),
                Err(join_error) => anyhow::anyhow!("a role task panicked: {join_error}"),
            });
        }
    }

    readiness.set(false);
    if outcome.is_ok() && !drain.readiness_delay.is_zero() {
        tokio::time::sleep(drain.readiness_delay).await;
    }
    roles_token.cancel();
    let drained = tokio::time::timeout(drain.grace, async {
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((role, Err(error))) => {
                    tracing::warn!(%role, error = format!("{error:#}"), "role failed while stopping")
                }
                Ok((role, Ok(()))) => tracing::debug!(%role, "role stopped"),
                Err(join_error) => tracing::warn!(%join_error, "role task panicked while stopping"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace_secs = drain.grace.as_secs(), "roles did not stop within the grace period; aborting them");
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn until_cancelled() -> RoleTask {
        Box::new(|token: CancellationToken| {
            Box::pin(async move {
                token.cancelled().await;
                Ok(())
            })
        })
    }

    fn drain() -> Drain {
        Drain { readiness_delay: Duration::ZERO, grace: Duration::from_millis(300) }
    }

    #[tokio::test]
    async fn a_role_that_returns_on_its_own_stops_the_process_naming_it() {
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        let watcher: RoleTask = Box::new(move |token: CancellationToken| {
            Box::pin(async move {
                token.cancelled().await;
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
        });
        let quitter: RoleTask = Box::new(|_token| Box::pin(async { Ok(()) }));
        let readiness = Readiness::default();
        let error = supervise(
            vec![(Role::Api, watcher), (Role::Consumer, quitter)],
            CancellationToken::new(),
            readiness.clone(),
            drain(),
        )
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "role consumer stopped unexpectedly");
        assert!(stopped.load(Ordering::SeqCst), "the other roles were cancelled");
        assert!(!readiness.get());
    }

    #[tokio::test]
    async fn a_failing_role_reports_its_error_with_its_name() {
        let failing: RoleTask = Box::new(|_token| Box::pin(async { Err(anyhow::anyhow!("listener socket closed")) }));
        let error = supervise(
            vec![(Role::Gateway, failing), (Role::Api, until_cancelled())],
            CancellationToken::new(),
            Readiness::default(),
            drain(),
        )
        .await
        .unwrap_err();
        assert_eq!(format!("{error:#}"), "role gateway failed: listener socket closed");
    }

    #[tokio::test]
    async fn shutdown_turns_readiness_off_first_and_aborts_stragglers_after_the_grace_period() {
        let stubborn: RoleTask = Box::new(|_token| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            })
        });
        let readiness = Readiness::default();
        let shutdown = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(
            vec![(Role::Center, stubborn), (Role::Api, until_cancelled())],
            shutdown.clone(),
            readiness.clone(),
            Drain { readiness_delay: Duration::from_millis(200), grace: Duration::from_millis(200) },
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(readiness.get());
        let started = std::time::Instant::now();
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!readiness.get(), "readiness is off during the readiness delay");
        supervisor.await.unwrap().expect("a requested shutdown is not an error");
        assert!(started.elapsed() < Duration::from_secs(5), "stragglers were aborted");
    }
}
