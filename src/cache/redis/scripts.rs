//! The Lua scripts behind every multi-step Redis operation (one script = one atomic step).
//!
//! The sources live in `lua/*.lua`; scripts that keep expiring sets get `lua/prelude.lua`
//! prepended. They run with `EVALSHA`, falling back to `SCRIPT LOAD` when the server does not
//! know the hash yet (first use, or after a restart or `SCRIPT FLUSH`).
//!
//! Multi-key scripts (`acquire_lease`, `renew_lease`, `release_lease`) touch keys of several
//! scopes, which a standalone or sentinel Redis allows; Redis Cluster would need the scopes to
//! share a hash tag, which fctf does not use.

use fred::clients::Client;
use fred::types::FromValue;
use fred::types::MultipleKeys;
use fred::types::scripts::Script;

use super::map_error;
use crate::cache::CacheError;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// The scripts, hashed once at connection time.
pub(super) struct Scripts {
    pub(super) delete_if_equals: Script,
    pub(super) take_tokens: Script,
    pub(super) cooldown: Script,
    pub(super) increment_bounded: Script,
    pub(super) decrement_floor: Script,
    pub(super) reserve_slot: Script,
    pub(super) refresh_slot: Script,
    pub(super) release_slot: Script,
    pub(super) live_members: Script,
    pub(super) live_count: Script,
    pub(super) acquire_lease: Script,
    pub(super) renew_lease: Script,
    pub(super) release_lease: Script,
}

fn plain(source: &'static str) -> Script {
    Script::from_lua(source)
}

fn with_prelude(source: &str) -> Script {
    Script::from_lua(format!("{PRELUDE}{source}"))
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            delete_if_equals: plain(include_str!("lua/delete_if_equals.lua")),
            take_tokens: plain(include_str!("lua/take_tokens.lua")),
            cooldown: plain(include_str!("lua/cooldown.lua")),
            increment_bounded: plain(include_str!("lua/increment_bounded.lua")),
            decrement_floor: plain(include_str!("lua/decrement_floor.lua")),
            reserve_slot: with_prelude(include_str!("lua/reserve_slot.lua")),
            refresh_slot: with_prelude(include_str!("lua/refresh_slot.lua")),
            release_slot: with_prelude(include_str!("lua/release_slot.lua")),
            live_members: plain(include_str!("lua/live_members.lua")),
            live_count: plain(include_str!("lua/live_count.lua")),
            acquire_lease: with_prelude(include_str!("lua/acquire_lease.lua")),
            renew_lease: with_prelude(include_str!("lua/renew_lease.lua")),
            release_lease: with_prelude(include_str!("lua/release_lease.lua")),
        }
    }
}

/// Runs `script` with `keys` and `args`; `error_key` names the key in a `Malformed` error.
pub(super) async fn run<R: FromValue>(
    client: &Client,
    script: &Script,
    error_key: &str,
    keys: impl Into<MultipleKeys> + Send,
    args: Vec<fred::types::Value>,
) -> Result<R, CacheError> {
    script.evalsha_with_reload(client, keys, args).await.map_err(|error| map_error(error_key, error))
}
