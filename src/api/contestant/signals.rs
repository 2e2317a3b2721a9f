//! Cross-process change signals of the contestant API, over `Cache::notify`.
//!
//! - [`AUTH_TOPIC`]: an account or session changed (payload: the user id, or `*` for all). Every
//!   api process drops its cached account snapshot at once. The admin API should send it after
//!   a ban, hide, verification, team or password change ([`account_changed`]); without it the
//!   change still applies within the snapshot TTL (1 s).
//! - [`SCOREBOARD_TOPIC`]: something the standings depend on changed (a solve, an award, a hint
//!   charge, a ban, a challenge value); every process drops its cached standings
//!   ([`scores_changed`]); without it they refresh within their TTL (2 s).
//! - [`CHALLENGES_TOPIC`]: challenges were created, edited or deleted; every process drops its
//!   cached catalog and standings ([`challenges_changed`]); without it they refresh within 1 s
//!   and 2 s.
//! - [`NOTIFICATION_TOPIC`]: a notification was published; live streams poll the store at once.
//!
//! Signals are best effort: a failure to publish is logged and the TTLs bound the staleness.

use super::context::Contestant;
use crate::cache::Cache;
use crate::domain::UserId;

/// Topic of account and session changes.
pub const AUTH_TOPIC: &str = "contestant-auth";
/// Topic of scoreboard changes.
pub const SCOREBOARD_TOPIC: &str = "scoreboard";
/// Topic of challenge edits (catalog and scoreboard caches).
pub const CHALLENGES_TOPIC: &str = "challenges";
/// Topic of new notifications.
pub const NOTIFICATION_TOPIC: &str = "notifications";

async fn publish(cache: &Cache, topic: &str, message: &str) {
    if let Err(error) = cache.notify(topic, message).await {
        tracing::warn!(%error, topic, "could not publish a change signal; caches expire on their own");
    }
}

/// Tells every api process that this user's account or session changed. `local` (the
/// caller's own context, when it has one) is invalidated synchronously, so the caller's next
/// request already sees the change.
pub async fn account_changed(cache: &Cache, local: Option<&Contestant>, user_id: UserId) {
    if let Some(context) = local {
        context.sessions.invalidate(Some(user_id));
    }
    publish(cache, AUTH_TOPIC, &user_id.get().to_string()).await;
}

/// Tells every api process that many accounts changed (team ban, bulk edits).
pub async fn accounts_changed(cache: &Cache) {
    publish(cache, AUTH_TOPIC, "*").await;
}

/// Tells every api process that the standings changed (`local` as in [`account_changed`]).
pub async fn scores_changed(cache: &Cache, local: Option<&Contestant>) {
    if let Some(context) = local {
        context.standings.invalidate();
    }
    publish(cache, SCOREBOARD_TOPIC, "changed").await;
}

/// Tells every api process that challenges changed.
pub async fn challenges_changed(cache: &Cache) {
    publish(cache, CHALLENGES_TOPIC, "changed").await;
}

/// Tells every live notification stream to look for new notifications.
pub async fn notification_published(cache: &Cache, id: i64) {
    publish(cache, NOTIFICATION_TOPIC, &id.to_string()).await;
}
