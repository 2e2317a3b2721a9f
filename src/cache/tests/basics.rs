//! Key-value basics, JSON, locks, prefix deletion and change signals.

use std::time::Duration;

use serde::Deserialize;
use serde::Serialize;

use super::Harness;
use super::eventually;
use crate::cache::CacheError;

const SHORT: Duration = Duration::from_millis(400);
const PAST_SHORT: Duration = Duration::from_millis(600);
const LONG: Duration = Duration::from_secs(60);

pub(crate) async fn get_set_delete_and_ttl_expire(harness: &Harness) {
    let cache = harness.cache();
    assert_eq!(cache.get_bytes("missing").await.unwrap(), None);
    assert_eq!(cache.ttl("missing").await.unwrap(), None);

    cache.set_bytes("forever", b"one", None).await.unwrap();
    assert_eq!(cache.get_bytes("forever").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(cache.ttl("forever").await.unwrap(), None, "a key without expiry has no ttl");

    cache.set_bytes("brief", b"two", Some(SHORT)).await.unwrap();
    assert_eq!(cache.get_bytes("brief").await.unwrap(), Some(b"two".to_vec()));
    let ttl = cache.ttl("brief").await.unwrap().expect("an expiring key has a ttl");
    assert!(ttl > Duration::ZERO && ttl <= SHORT, "ttl {ttl:?}");

    // Overwriting without a ttl makes the key permanent, as SET does.
    cache.set_bytes("forever", b"uno", None).await.unwrap();
    assert_eq!(cache.get_bytes("forever").await.unwrap(), Some(b"uno".to_vec()));

    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(cache.get_bytes("brief").await.unwrap(), None, "expired keys are invisible");
    assert_eq!(cache.ttl("brief").await.unwrap(), None);
    assert!(!cache.delete("brief").await.unwrap(), "an expired key does not count as deleted");

    assert!(cache.delete("forever").await.unwrap());
    assert!(!cache.delete("forever").await.unwrap());
    assert_eq!(cache.get_bytes("forever").await.unwrap(), None);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Snapshot {
    team: i64,
    name: String,
    tags: Vec<String>,
}

pub(crate) async fn json_round_trips_and_reports_malformed_values(harness: &Harness) {
    let cache = harness.cache();
    let snapshot = Snapshot { team: 5, name: "röd".to_owned(), tags: vec!["web".to_owned()] };
    cache.set_json("snap", &snapshot, Some(LONG)).await.unwrap();
    assert_eq!(cache.get_json::<Snapshot>("snap").await.unwrap(), Some(snapshot));
    assert!(cache.ttl("snap").await.unwrap().is_some());
    assert_eq!(cache.get_json::<Snapshot>("absent").await.unwrap(), None);

    cache.set_bytes("garbage", b"{not json", None).await.unwrap();
    let error = cache.get_json::<Snapshot>("garbage").await.unwrap_err();
    assert!(matches!(&error, CacheError::Malformed { key, .. } if key.ends_with("garbage")), "{error:?}");
}

pub(crate) async fn lock_is_exclusive_and_release_is_owner_checked(harness: &Harness) {
    let cache = harness.cache();
    let first = cache.try_lock("stop:5:12", LONG).await.unwrap().expect("a free lock is taken");
    assert!(cache.try_lock("stop:5:12", LONG).await.unwrap().is_none(), "a held lock is exclusive");
    assert!(cache.try_lock("stop:5:13", LONG).await.unwrap().is_some(), "locks are per name");
    assert!(first.release().await.unwrap());
    let again = cache.try_lock("stop:5:12", LONG).await.unwrap().expect("a released lock is free");
    assert!(again.release().await.unwrap());

    // An expired lock taken over by another owner is not released by the first guard.
    let stale = cache.try_lock("expiring", SHORT).await.unwrap().expect("free");
    tokio::time::sleep(PAST_SHORT).await;
    let other = harness.another().await;
    let current = other.try_lock("expiring", LONG).await.unwrap().expect("an expired lock is free");
    assert!(!stale.release().await.unwrap(), "the stale owner must not release the new owner's lock");
    assert!(cache.try_lock("expiring", LONG).await.unwrap().is_none(), "the new owner still holds it");
    assert!(current.release().await.unwrap());
}

pub(crate) async fn lock_guard_releases_on_drop(harness: &Harness) {
    let cache = harness.cache();
    let guard = cache.try_lock("dropped", LONG).await.unwrap().expect("free");
    drop(guard);
    eventually("lock release on drop", || async {
        match cache.try_lock("dropped", LONG).await.unwrap() {
            Some(guard) => guard.release().await.unwrap(),
            None => false,
        }
    })
    .await;
}

pub(crate) async fn delete_prefix_removes_only_keys_under_the_literal_prefix(harness: &Harness) {
    let cache = harness.cache();
    for key in ["dp:a:1", "dp:a:2", "dp:ab", "dp:b:1", "dp:x*:1", "dp:xy:1", "dp:x?", "dp:[x]:1", "dp:x:1"] {
        cache.set_bytes(key, b"v", Some(LONG)).await.unwrap();
    }
    cache.reserve_instance_slot("dp", "m", 1, LONG).await.unwrap();

    assert_eq!(cache.delete_prefix("dp:a:").await.unwrap(), 2);
    assert_eq!(cache.get_bytes("dp:a:1").await.unwrap(), None);
    assert_eq!(cache.get_bytes("dp:ab").await.unwrap(), Some(b"v".to_vec()));

    // Glob characters in the prefix are literal.
    assert_eq!(cache.delete_prefix("dp:x*").await.unwrap(), 1);
    assert_eq!(cache.delete_prefix("dp:x?").await.unwrap(), 1);
    assert_eq!(cache.delete_prefix("dp:[x]").await.unwrap(), 1);
    assert_eq!(cache.get_bytes("dp:xy:1").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(cache.get_bytes("dp:x:1").await.unwrap(), Some(b"v".to_vec()));

    // Every type goes, and nothing outside the prefix.
    assert_eq!(cache.delete_prefix("slots:").await.unwrap(), 1);
    assert_eq!(cache.instance_slots("dp").await.unwrap(), Vec::<String>::new());
    assert_eq!(cache.delete_prefix("dp:").await.unwrap(), 4);
    assert_eq!(cache.delete_prefix("dp:").await.unwrap(), 0);
}

pub(crate) async fn change_signal_reaches_a_subscriber_on_another_handle(harness: &Harness) {
    let publisher = harness.cache();
    let listener = harness.another().await;
    let mut routes = listener.subscribe("routes").await.unwrap();
    let mut other_topic = listener.subscribe("scoreboard").await.unwrap();

    publisher.notify("routes", "instance 42 stopped").await.unwrap();
    let signal = tokio::time::timeout(Duration::from_secs(1), routes.next()).await.expect("signal within a second");
    assert_eq!(signal.as_deref(), Some("instance 42 stopped"));
    assert!(
        tokio::time::timeout(Duration::from_millis(150), other_topic.next()).await.is_err(),
        "a signal reaches only its own topic"
    );

    // A second subscriber on the same topic gets the next signal too.
    let mut second = listener.subscribe("routes").await.unwrap();
    publisher.notify("routes", "again").await.unwrap();
    for stream in [&mut routes, &mut second] {
        let signal = tokio::time::timeout(Duration::from_secs(1), stream.next()).await.expect("signal");
        assert_eq!(signal.as_deref(), Some("again"));
    }
}

pub(crate) async fn using_a_key_as_another_type_is_an_error(harness: &Harness) {
    let cache = harness.cache();
    cache.reserve_instance_slot("typed", "m", 1, LONG).await.unwrap();
    assert!(matches!(cache.get_bytes("slots:typed").await, Err(CacheError::Other(_))));
    cache.set_bytes("lease:plain", b"v", None).await.unwrap();
    assert!(matches!(cache.acquire_lease(&[("plain", 1)], LONG).await, Err(CacheError::Other(_))));
    // Nothing was half-done: the string is intact.
    assert_eq!(cache.get_bytes("lease:plain").await.unwrap(), Some(b"v".to_vec()));
}
