//! Instance slots and connection leases (expiring sets).

use std::time::Duration;

use super::Harness;
use super::eventually;
use crate::cache::SlotReservation;

const SHORT: Duration = Duration::from_millis(400);
const PAST_SHORT: Duration = Duration::from_millis(600);
const LONG: Duration = Duration::from_secs(60);

fn sorted(mut members: Vec<String>) -> Vec<String> {
    members.sort();
    members
}

pub(crate) async fn slots_respect_the_limit_and_are_never_resurrected(harness: &Harness) {
    let cache = harness.cache();
    assert_eq!(cache.reserve_instance_slot("5", "12", 2, LONG).await.unwrap(), SlotReservation::Reserved);
    assert_eq!(cache.reserve_instance_slot("5", "12", 2, LONG).await.unwrap(), SlotReservation::AlreadyHeld);
    assert_eq!(cache.reserve_instance_slot("5", "13", 2, LONG).await.unwrap(), SlotReservation::Reserved);
    assert_eq!(cache.reserve_instance_slot("5", "14", 2, LONG).await.unwrap(), SlotReservation::LimitReached);
    assert_eq!(cache.reserve_instance_slot("6", "14", 2, LONG).await.unwrap(), SlotReservation::Reserved);
    assert_eq!(sorted(cache.instance_slots("5").await.unwrap()), ["12", "13"]);
    let ttl = cache.ttl("slots:5").await.unwrap().expect("the set expires after its latest member");
    assert!(ttl > Duration::from_secs(55) && ttl <= Duration::from_secs(61), "ttl {ttl:?}");

    assert!(cache.refresh_instance_slot("5", "12", LONG).await.unwrap());
    assert!(cache.release_instance_slot("5", "12").await.unwrap());
    assert!(!cache.release_instance_slot("5", "12").await.unwrap());
    assert!(!cache.refresh_instance_slot("5", "12", LONG).await.unwrap(), "a released slot is never resurrected");
    assert_eq!(cache.instance_slots("5").await.unwrap(), ["13"]);
    assert_eq!(cache.reserve_instance_slot("5", "14", 2, LONG).await.unwrap(), SlotReservation::Reserved);

    assert_eq!(cache.reserve_instance_slot("7", "1", 0, LONG).await.unwrap(), SlotReservation::LimitReached);
    assert_eq!(cache.instance_slots("7").await.unwrap(), Vec::<String>::new());
    assert_eq!(cache.ttl("slots:7").await.unwrap(), None, "a refused reservation creates nothing");

    // Releasing the last member removes the set.
    assert!(cache.release_instance_slot("6", "14").await.unwrap());
    assert_eq!(cache.ttl("slots:6").await.unwrap(), None);
}

pub(crate) async fn expired_slots_free_room_and_cannot_be_refreshed(harness: &Harness) {
    let cache = harness.cache();
    assert_eq!(cache.reserve_instance_slot("9", "old", 1, SHORT).await.unwrap(), SlotReservation::Reserved);
    assert_eq!(cache.reserve_instance_slot("9", "new", 1, LONG).await.unwrap(), SlotReservation::LimitReached);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(cache.instance_slots("9").await.unwrap(), Vec::<String>::new(), "an expired slot is not listed");
    assert!(!cache.refresh_instance_slot("9", "old", LONG).await.unwrap(), "an expired slot is never resurrected");
    assert!(!cache.release_instance_slot("9", "old").await.unwrap(), "an expired slot was not held");
    assert_eq!(cache.reserve_instance_slot("9", "old", 1, SHORT).await.unwrap(), SlotReservation::Reserved);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(
        cache.reserve_instance_slot("9", "new", 1, LONG).await.unwrap(),
        SlotReservation::Reserved,
        "expiry frees the slot"
    );
    assert_eq!(cache.instance_slots("9").await.unwrap(), ["new"]);
}

pub(crate) async fn leases_are_all_or_nothing_across_scopes(harness: &Harness) {
    let cache = harness.cache();
    let first = cache.acquire_lease(&[("ip:a", 2), ("global", 3)], LONG).await.unwrap().expect("room");
    let second = cache.acquire_lease(&[("ip:a", 2), ("global", 3)], LONG).await.unwrap().expect("room");
    assert_eq!(cache.acquire_lease(&[("ip:a", 2), ("global", 3)], LONG).await.unwrap().err(), Some(0));
    assert_eq!(cache.lease_count("global").await.unwrap(), 2, "a refused lease takes nothing anywhere");

    let third = cache.acquire_lease(&[("ip:b", 2), ("global", 3)], LONG).await.unwrap().expect("room");
    assert_eq!(cache.acquire_lease(&[("ip:c", 2), ("global", 3)], LONG).await.unwrap().err(), Some(1));
    assert_eq!(cache.lease_count("ip:c").await.unwrap(), 0, "a refused lease takes nothing anywhere");
    assert_eq!(cache.lease_count("global").await.unwrap(), 3);
    assert_eq!(cache.lease_count("ip:a").await.unwrap(), 2);
    assert_eq!(cache.lease_count("nowhere").await.unwrap(), 0);

    assert!(first.renew().await.unwrap(), "a live lease renews");
    assert_eq!(first.ttl(), LONG);
    first.release().await.unwrap();
    assert_eq!(cache.lease_count("ip:a").await.unwrap(), 1);
    assert_eq!(cache.lease_count("global").await.unwrap(), 2);
    let fourth = cache.acquire_lease(&[("ip:c", 2), ("global", 3)], LONG).await.unwrap().expect("room again");

    for guard in [second, third, fourth] {
        guard.release().await.unwrap();
    }
    assert_eq!(cache.lease_count("global").await.unwrap(), 0);
    assert_eq!(cache.ttl("lease:global").await.unwrap(), None, "an empty scope disappears");
}

pub(crate) async fn expired_leases_free_room_and_are_not_renewed(harness: &Harness) {
    let cache = harness.cache();
    let stale = cache.acquire_lease(&[("tcp:1", 1), ("tcp:all", 5)], SHORT).await.unwrap().expect("room");
    assert_eq!(cache.acquire_lease(&[("tcp:1", 1)], LONG).await.unwrap().err(), Some(0));
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(cache.lease_count("tcp:1").await.unwrap(), 0, "an expired lease does not count");
    assert!(!stale.renew().await.unwrap(), "an expired lease is not revived");
    let fresh = cache.acquire_lease(&[("tcp:1", 1)], LONG).await.unwrap().expect("expiry freed the room");
    assert_eq!(cache.lease_count("tcp:all").await.unwrap(), 0);
    stale.release().await.unwrap();
    assert_eq!(cache.lease_count("tcp:1").await.unwrap(), 1, "releasing a lost lease leaves others alone");
    fresh.release().await.unwrap();
}

pub(crate) async fn lease_guard_releases_on_drop(harness: &Harness) {
    let cache = harness.cache();
    let guard = cache.acquire_lease(&[("dropped", 1), ("dropped:all", 1)], LONG).await.unwrap().expect("room");
    assert_eq!(cache.lease_count("dropped").await.unwrap(), 1);
    drop(guard);
    eventually("lease release on drop", || async {
        cache.lease_count("dropped").await.unwrap() == 0 && cache.lease_count("dropped:all").await.unwrap() == 0
    })
    .await;
}
