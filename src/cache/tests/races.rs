//! Concurrency: many tasks (on Redis, over several connections) race each atomic operation and
//! exactly the allowed number win.

use std::time::Duration;

use tokio::task::JoinSet;

use super::Harness;
use crate::cache::Cache;
use crate::cache::SlotReservation;

const LONG: Duration = Duration::from_secs(60);
/// Handles (on Redis: connections) the racing tasks are spread over.
const CONNECTIONS: usize = 4;

/// Runs `tasks` copies of `race` at once, each with a handle and its task number, and returns
/// every outcome once all have finished (so guards stay held until then).
async fn race<T, F, Fut>(harness: &Harness, tasks: usize, race: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Cache, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let handles = harness.handles(CONNECTIONS).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(tasks));
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let run = race(handles[task % CONNECTIONS].clone(), task);
        let start = start.clone();
        set.spawn(async move {
            start.wait().await;
            run.await
        });
    }
    let mut outcomes = Vec::with_capacity(tasks);
    while let Some(outcome) = set.join_next().await {
        outcomes.push(outcome.expect("racing task panicked"));
    }
    outcomes
}

pub(crate) async fn racing_slot_reservations_grant_exactly_the_limit(harness: &Harness) {
    let outcomes = race(harness, 50, |cache, task| async move {
        cache.reserve_instance_slot("race", &task.to_string(), 3, LONG).await.unwrap()
    })
    .await;
    let reserved = outcomes.iter().filter(|outcome| **outcome == SlotReservation::Reserved).count();
    let refused = outcomes.iter().filter(|outcome| **outcome == SlotReservation::LimitReached).count();
    assert_eq!((reserved, refused), (3, 47));
    assert_eq!(harness.cache().instance_slots("race").await.unwrap().len(), 3);
}

pub(crate) async fn racing_attempts_grant_exactly_the_budget(harness: &Harness) {
    let outcomes =
        race(harness, 50, |cache, _| async move { cache.consume_attempt("race", 10, 0, LONG).await.unwrap() }).await;
    let mut granted: Vec<u64> = outcomes.into_iter().flatten().collect();
    granted.sort_unstable();
    assert_eq!(granted, (1..=10).collect::<Vec<u64>>(), "each count is handed out once");
}

pub(crate) async fn racing_cooldown_checks_allow_exactly_one(harness: &Harness) {
    let outcomes = race(harness, 50, |cache, _| async move { cache.check_cooldown("race", LONG).await.unwrap() }).await;
    assert_eq!(outcomes.iter().filter(|left| left.is_none()).count(), 1);
}

pub(crate) async fn racing_locks_grant_exactly_one(harness: &Harness) {
    let outcomes = race(harness, 50, |cache, _| async move { cache.try_lock("race", LONG).await.unwrap() }).await;
    assert_eq!(outcomes.iter().filter(|guard| guard.is_some()).count(), 1);
    for guard in outcomes.into_iter().flatten() {
        assert!(guard.release().await.unwrap());
    }
}

pub(crate) async fn racing_leases_grant_exactly_the_limit(harness: &Harness) {
    let outcomes = race(harness, 30, |cache, _| async move {
        cache.acquire_lease(&[("race", 15), ("race:all", 100)], LONG).await.unwrap()
    })
    .await;
    let granted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(granted, 15);
    assert!(outcomes.iter().filter_map(|outcome| outcome.as_ref().err()).all(|index| *index == 0));
    assert_eq!(harness.cache().lease_count("race").await.unwrap(), 15);
    assert_eq!(harness.cache().lease_count("race:all").await.unwrap(), 15, "refused leases took nothing");
    for guard in outcomes.into_iter().flatten() {
        guard.release().await.unwrap();
    }
    assert_eq!(harness.cache().lease_count("race").await.unwrap(), 0);
}

pub(crate) async fn racing_token_takes_allow_exactly_the_capacity(harness: &Harness) {
    // One token per 1000 s: no refill during the race.
    let outcomes =
        race(harness, 100, |cache, _| async move { cache.rate_limit("race", 20, 0.001).await.unwrap() }).await;
    assert_eq!(outcomes.iter().filter(|decision| decision.allowed).count(), 20);
    assert!(outcomes.iter().filter(|decision| !decision.allowed).all(|decision| decision.retry_after > Duration::ZERO));
}

pub(crate) async fn racing_token_batches_grant_exactly_the_capacity(harness: &Harness) {
    // 100 takers of 1 to 5 tokens each from a bucket of 20 that does not refill during the race.
    let outcomes = race(harness, 100, |cache, task| async move {
        let want = u32::try_from(task % 5 + 1).unwrap();
        (want, cache.take_tokens("race", 20, 0.001, want).await.unwrap())
    })
    .await;
    assert!(outcomes.iter().all(|(want, grant)| grant.granted <= *want));
    assert_eq!(outcomes.iter().map(|(_, grant)| grant.granted).sum::<u32>(), 20);
    let partial = outcomes.iter().filter(|(want, grant)| grant.granted > 0 && grant.granted < *want).count();
    assert!(partial <= 1, "only the taker that found the last tokens gets fewer than asked: {partial}");
}
