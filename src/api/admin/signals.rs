//! Change signals the admin API sends so that every api process drops what it cached (the
//! contestant API's account snapshots and standings, live notification streams); see
//! `api::contestant::signals`. Best effort: a lost signal is bounded by those caches' TTLs.

use crate::api::ApiState;
use crate::api::contestant::signals;
use crate::domain::UserId;

/// An account's standing (ban, hide, verification, role, password, team) changed.
pub async fn account(state: &ApiState, user_id: UserId) {
    signals::account_changed(&state.cache, None, user_id).await;
}

/// Many accounts changed (a team was banned, hidden or deleted).
pub async fn accounts(state: &ApiState) {
    signals::accounts_changed(&state.cache).await;
}

/// Something the standings depend on changed (solves, awards, values, visibility of accounts).
pub async fn scores(state: &ApiState) {
    signals::scores_changed(&state.cache, None).await;
}

/// Solvers were hidden, banned or deleted (or shown, unbanned): decaying values count only
/// visible solvers, so every decaying challenge is recomputed, then the standings are dropped
/// everywhere. The account change is already stored, so a failed recompute is logged (the next
/// solve of that challenge recomputes it again) rather than reported.
pub async fn solvers(state: &ApiState) {
    if let Err(error) = state.store.recompute_decaying_values().await {
        tracing::warn!(%error, "could not recompute decaying challenge values after an account change");
    }
    scores(state).await;
}

/// A notification was published.
pub async fn notification(state: &ApiState, id: i64) {
    signals::notification_published(&state.cache, id).await;
}
