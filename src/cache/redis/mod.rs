//! `RedisCache`: the production cache backend (fred 10), shared by every fctf process.
//!
//! One multiplexed client carries commands and scripts; every multi-step operation is one Lua
//! script (see `scripts.rs` and `lua/`), so it is atomic across processes. Change signals use a
//! second, dedicated subscriber connection created on the first `subscribe` (see `pubsub.rs`).
//!
//! Connection policy: the first connection must succeed within `CONNECT_TIMEOUT`, otherwise
//! `connect` fails with `CacheError::Unavailable` (startup surfaces a missing Redis at once).
//! After that, a lost connection is re-established with exponential backoff, forever, and every
//! command gives up after `COMMAND_TIMEOUT` with `Unavailable`, so a Redis outage slows callers
//! down by at most that much and never wedges them. fred errors map to `Unavailable` when they
//! are about the connection (IO, timeout, cancellation, backpressure, routing) and to `Other`
//! otherwise; a script's `FCTF_MALFORMED` reply maps to `Malformed`.
//!
//! Decisions where the spec is silent: wall-clock `now_ms` comes from the caller (not Redis
//! `TIME`), as on the memory backend; the scripts tolerate a caller clock that lags behind the
//! one that wrote a bucket or mark. `delete_prefix` walks `SCAN` and `UNLINK`s in batches, so it
//! is not atomic: a key created under the prefix while it runs may survive. TLS (`rediss://`)
//! needs one of fred's TLS features, which fctf does not enable yet.

mod pubsub;
mod scripts;

use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::error::Error as FredError;
use fred::error::ErrorKind;
use fred::interfaces::ClientLike;
use fred::interfaces::KeysInterface;
use fred::interfaces::PubsubInterface;
use fred::types::Builder;
use fred::types::Expiration;
use fred::types::SetOptions;
use fred::types::Value;
use fred::types::config::Config;
use fred::types::config::ReconnectPolicy;
use tokio::sync::OnceCell;

use self::pubsub::Subscriber;
use self::scripts::Scripts;
use self::scripts::run;
use super::CacheBackend;
use super::CacheError;
use super::ChangeStream;
use super::LeaseOutcome;
use super::SlotReservation;
use super::TokenGrant;
use super::expiry_ms;

/// Limit for establishing a connection (TCP connect, handshake, `AUTH`/`SELECT`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit for any one command, including time spent waiting for a reconnection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys fetched per `SCAN` page and deleted per `UNLINK` in `delete_prefix`.
const SCAN_BATCH: u32 = 500;

/// The Redis cache backend.
pub struct RedisCache {
    client: Client,
    builder: Builder,
    scripts: Scripts,
    subscriber: OnceCell<Subscriber>,
}

impl RedisCache {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`), failing with
    /// `CacheError::Unavailable` when Redis cannot be reached in time.
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        // Never echo the URL: it may carry a password.
        let config = Config::from_url(url)
            .map_err(|error| CacheError::Other(format!("invalid redis url: {}", error.details())))?;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|connection| {
                connection.connection_timeout = CONNECT_TIMEOUT;
                connection.internal_command_timeout = CONNECT_TIMEOUT;
                // Name each connection after its fred client id, so `CLIENT LIST` shows them.
                connection.auto_client_setname = true;
            })
            .with_performance_config(|performance| {
                performance.default_command_timeout = COMMAND_TIMEOUT;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
        let client = builder.build().map_err(|error| map_error("", error))?;
        init(&client).await?;
        Ok(Self { client, builder, scripts: Scripts::new(), subscriber: OnceCell::new() })
    }

    async fn subscriber(&self) -> Result<&Subscriber, CacheError> {
        self.subscriber.get_or_try_init(|| Subscriber::connect(&self.builder)).await
    }
}

/// Starts `client` and waits for its first connection, at most `CONNECT_TIMEOUT`.
async fn init(client: &(impl ClientLike + 'static)) -> Result<(), CacheError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client.init()).await {
        Ok(Ok(_connection_task)) => Ok(()),
        Ok(Err(error)) => Err(CacheError::Unavailable(format!("cannot connect to redis: {}", error.details()))),
        Err(_elapsed) => {
            // Stop the reconnecting connection task in the background.
            let client = client.clone();
            tokio::spawn(async move { client.quit().await });
            Err(CacheError::Unavailable("cannot connect to redis: timed out".to_owned()))
        }
    }
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        // Close the connections; the subscriber's tasks stop with its own drop.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            handle.spawn(async move { client.quit().await });
        }
    }
}

/// Maps a fred error: connection trouble is `Unavailable` (retrying may help), a script's
/// `FCTF_MALFORMED` reply is `Malformed` (for `key`), anything else is `Other`.
pub(super) fn map_error(key: &str, error: FredError) -> CacheError {
    let details = error.details();
    if let Some((_, rest)) = details.split_once("FCTF_MALFORMED") {
        // Redis 7 appends " script: <sha>, on @user_script:<line>." to script errors.
        let reason = rest.split(" script:").next().unwrap_or(rest);
        return CacheError::Malformed { key: key.to_owned(), reason: reason.trim().to_owned() };
    }
    match error.kind() {
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Backpressure | ErrorKind::Routing => {
            CacheError::Unavailable(format!("{:?}: {details}", error.kind()))
        }
        kind => CacheError::Other(format!("{kind:?}: {details}")),
    }
}

fn text(value: &str) -> Value {
    Value::from(value.to_owned())
}

fn pttl_to_duration(pttl: i64) -> Option<Duration> {
    // -2: no such key, -1: no expiry.
    u64::try_from(pttl).ok().map(Duration::from_millis)
}

/// Escapes the glob characters of `SCAN MATCH` so a prefix matches literally.
fn glob_escape(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for character in prefix.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped.push('*');
    escaped
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.client.get(key).await.map_err(|error| map_error(key, error))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        let expiration = ttl.map(|ttl| Expiration::PX(expiry_ms(ttl)));
        self.client.set::<(), _, _>(key, value, expiration, None, false).await.map_err(|error| map_error(key, error))
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let reply: Option<String> = self
            .client
            .set(key, value, Some(Expiration::PX(expiry_ms(ttl))), Some(SetOptions::NX), false)
            .await
            .map_err(|error| map_error(key, error))?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let removed: u64 = self.client.del(key).await.map_err(|error| map_error(key, error))?;
        Ok(removed > 0)
    }

    async fn delete_if_equals(&self, key: &str, value: &[u8]) -> Result<bool, CacheError> {
        let removed: i64 =
            run(&self.client, &self.scripts.delete_if_equals, key, key, vec![Value::from(value)]).await?;
        Ok(removed > 0)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let pttl: i64 = self.client.pttl(key).await.map_err(|error| map_error(key, error))?;
        Ok(pttl_to_duration(pttl))
    }

    async fn take_tokens(
        &self,
        key: &str,
        capacity: u32,
        refill_per_sec: f64,
        want: u32,
        now_ms: i64,
    ) -> Result<TokenGrant, CacheError> {
        let args = vec![
            Value::from(capacity),
            text(&refill_per_sec.to_string()),
            Value::from(now_ms),
            Value::from(want.max(1)),
        ];
        let (granted, remaining, retry_ms): (i64, i64, i64) =
            run(&self.client, &self.scripts.take_tokens, key, key, args).await?;
        Ok(TokenGrant {
            granted: u32::try_from(granted.max(0)).unwrap_or(u32::MAX),
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            retry_after: Duration::from_millis(retry_ms.max(0).unsigned_abs()),
        })
    }

    async fn cooldown(&self, key: &str, cooldown: Duration, now_ms: i64) -> Result<Option<Duration>, CacheError> {
        let args = vec![Value::from(expiry_ms(cooldown)), Value::from(now_ms)];
        let left_ms: i64 = run(&self.client, &self.scripts.cooldown, key, key, args).await?;
        Ok(u64::try_from(left_ms).ok().map(Duration::from_millis))
    }

    async fn increment_bounded(
        &self,
        key: &str,
        max: u64,
        initial: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CacheError> {
        let args = vec![text(&max.to_string()), text(&initial.to_string()), Value::from(expiry_ms(ttl))];
        let count: i64 = run(&self.client, &self.scripts.increment_bounded, key, key, args).await?;
        Ok(u64::try_from(count).ok())
    }

    async fn decrement_floor(&self, key: &str) -> Result<(), CacheError> {
        run::<i64>(&self.client, &self.scripts.decrement_floor, key, key, Vec::new()).await.map(drop)
    }

    async fn reserve_slot(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<SlotReservation, CacheError> {
        let args = vec![text(member), Value::from(limit), Value::from(expires_at_ms), Value::from(now_ms)];
        let outcome: i64 = run(&self.client, &self.scripts.reserve_slot, key, key, args).await?;
        match outcome {
            0 => Ok(SlotReservation::Reserved),
            1 => Ok(SlotReservation::AlreadyHeld),
            2 => Ok(SlotReservation::LimitReached),
            other => Err(CacheError::Other(format!("unexpected reserve_slot reply {other}"))),
        }
    }

    async fn refresh_slot(&self, key: &str, member: &str, expires_at_ms: i64, now_ms: i64) -> Result<bool, CacheError> {
        let args = vec![text(member), Value::from(expires_at_ms), Value::from(now_ms)];
        let refreshed: i64 = run(&self.client, &self.scripts.refresh_slot, key, key, args).await?;
        Ok(refreshed == 1)
    }

    async fn release_slot(&self, key: &str, member: &str, now_ms: i64) -> Result<bool, CacheError> {
        let args = vec![text(member), Value::from(now_ms)];
        let held: i64 = run(&self.client, &self.scripts.release_slot, key, key, args).await?;
        Ok(held == 1)
    }

    async fn slot_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, CacheError> {
        run(&self.client, &self.scripts.live_members, key, key, vec![Value::from(now_ms)]).await
    }

    async fn acquire_lease(
        &self,
        scopes: &[(String, u32)],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<LeaseOutcome, CacheError> {
        let keys: Vec<&str> = scopes.iter().map(|(scope, _)| scope.as_str()).collect();
        let mut args = vec![text(lease_id), Value::from(expires_at_ms), Value::from(now_ms)];
        args.extend(scopes.iter().map(|(_, limit)| Value::from(*limit)));
        let error_key = keys.first().copied().unwrap_or_default();
        let outcome: i64 = run(&self.client, &self.scripts.acquire_lease, error_key, keys, args).await?;
        match usize::try_from(outcome) {
            Ok(index) => Ok(LeaseOutcome::Full(index)),
            Err(_) => Ok(LeaseOutcome::Granted),
        }
    }

    async fn renew_lease(
        &self,
        scopes: &[String],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, CacheError> {
        let keys: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let args = vec![text(lease_id), Value::from(expires_at_ms), Value::from(now_ms)];
        let error_key = keys.first().copied().unwrap_or_default();
        let renewed: i64 = run(&self.client, &self.scripts.renew_lease, error_key, keys, args).await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, scopes: &[String], lease_id: &str) -> Result<(), CacheError> {
        let keys: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let args = vec![text(lease_id), Value::from(super::now_ms())];
        let error_key = keys.first().copied().unwrap_or_default();
        run::<i64>(&self.client, &self.scripts.release_lease, error_key, keys, args).await.map(drop)
    }

    async fn lease_count(&self, scope: &str, now_ms: i64) -> Result<u64, CacheError> {
        run(&self.client, &self.scripts.live_count, scope, scope, vec![Value::from(now_ms)]).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let pattern = glob_escape(prefix);
        let mut cursor = "0".to_owned();
        let mut removed = 0;
        loop {
            let (next, keys): (String, Vec<String>) = self
                .client
                .scan_page(cursor, pattern.as_str(), Some(SCAN_BATCH), None)
                .await
                .map_err(|error| map_error(prefix, error))?;
            if !keys.is_empty() {
                let count: u64 = self.client.unlink(keys).await.map_err(|error| map_error(prefix, error))?;
                removed += count;
            }
            if next == "0" {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        self.client.publish::<(), _, _>(channel, message).await.map_err(|error| map_error(channel, error))
    }

    async fn subscribe(&self, channel: &str) -> Result<ChangeStream, CacheError> {
        self.subscriber().await?.subscribe(channel).await
    }
}

#[cfg(test)]
impl RedisCache {
    /// Closes the subscriber connection from the server side, as a network failure or a Redis
    /// restart would; false when there is no subscriber connection.
    pub(crate) async fn kill_subscriber_connection(&self) -> Result<bool, CacheError> {
        use fred::types::ClusterHash;
        use fred::types::CustomCommand;

        let Some(subscriber) = self.subscriber.get() else { return Ok(false) };
        let client_command = || CustomCommand::new_static("CLIENT", ClusterHash::Random, false);
        let list: String =
            self.client.custom(client_command(), vec!["LIST"]).await.map_err(|error| map_error("", error))?;
        let wanted = format!("name={}", subscriber.name());
        let Some(id) = list
            .lines()
            .filter(|line| line.split(' ').any(|field| field == wanted))
            .find_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")).map(str::to_owned))
        else {
            return Ok(false);
        };
        let killed: i64 = self
            .client
            .custom(client_command(), vec!["KILL".to_owned(), "ID".to_owned(), id])
            .await
            .map_err(|error| map_error("", error))?;
        Ok(killed == 1)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn glob_escape_matches_the_prefix_literally() {
        assert_eq!(glob_escape("ev:a*b?[c]\\"), "ev:a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn script_errors_marked_malformed_map_to_malformed() {
        let error = FredError::new(ErrorKind::Unknown, "ERR user_script:9: FCTF_MALFORMED not a counter");
        assert!(
            matches!(map_error("k", error), CacheError::Malformed { key, reason } if key == "k" && reason == "not a counter")
        );
        let error = FredError::new(ErrorKind::IO, "broken pipe");
        assert!(matches!(map_error("k", error), CacheError::Unavailable(_)));
    }
}
