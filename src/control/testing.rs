//! Test support for the pipeline roles: a process running center, consumer and listener on
//! embedded backends (SQLite file, memory cache and queue, local runtime), with helpers to
//! create deployable challenges and wait for instance states.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::{Deps, Role, RoleSet};
use crate::cache::Cache;
use crate::control::Client;
use crate::domain::{ChallengeId, InstanceId, TeamId};
use crate::runtime::Runtime;
use crate::store::{DeploySettings, Instance, InstanceState, NewChallenge, Store};

/// A challenge that serves HTTP on `$PORT`.
pub(crate) const HTTP_SERVER: &str = r#"exec python3 -m http.server "$PORT" --bind "$HOST""#;

/// Local ports for pipeline tests: blocks per process and fixture, below the kernel's
/// ephemeral range (outgoing connections never take them) and apart from the runtime tests'
/// and the integration tests' ranges, so parallel tests never race for a port.
fn port_block() -> (u16, u16) {
    const START: u16 = 12_000;
    const END: u16 = 16_000;
    const SIZE: u16 = 40;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let blocks = (END - START) / SIZE;
    let first = u16::try_from(std::process::id() % u32::from(blocks)).unwrap();
    let block = (first + NEXT.fetch_add(1, Ordering::Relaxed)) % blocks;
    let start = START + block * SIZE;
    (start, start + SIZE - 1)
}

/// The pipeline roles running in this process.
pub(crate) struct Pipeline {
    pub deps: Deps,
    pub store: Store,
    pub cache: Cache,
    pub runtime: Runtime,
    pub client: Client,
    pub center_addr: std::net::SocketAddr,
    token: CancellationToken,
    tasks: JoinSet<(Role, anyhow::Result<()>)>,
    _data_dir: tempfile::TempDir,
}

/// Which roles to run (center is always bound, for its service).
#[derive(Clone, Copy)]
pub(crate) struct Run {
    pub consumer: bool,
    pub listener: bool,
}

impl Run {
    pub const ALL: Run = Run { consumer: true, listener: true };
}

impl Pipeline {
    /// Starts the roles with `extra` configuration (`FCTF_*` variables).
    pub async fn start(run: Run, extra: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let (port_start, port_end) = port_block();
        let mut env: HashMap<String, String> = HashMap::new();
        for (key, value) in [
            ("FCTF_DATA_DIR", data_dir.path().display().to_string()),
            ("FCTF_CENTER__LISTEN", "127.0.0.1:0".to_owned()),
            ("FCTF_RUNTIME__LOCAL__PORT_RANGE_START", port_start.to_string()),
            ("FCTF_RUNTIME__LOCAL__PORT_RANGE_END", port_end.to_string()),
            ("FCTF_RUNTIME__LOCAL__READY_TIMEOUT_SECS", "20".to_owned()),
            ("FCTF_SECRETS__JWT", "test-jwt".to_owned()),
            ("FCTF_SECRETS__GATEWAY", "test-gateway".to_owned()),
            ("FCTF_SECRETS__INTERNAL", "test-internal".to_owned()),
            ("FCTF_SECRETS__FILES", "test-files".to_owned()),
            ("FCTF_LISTENER__SWEEP_INTERVAL_MS", "100".to_owned()),
        ] {
            env.insert(key.to_owned(), value);
        }
        for (key, value) in extra {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let settings = crate::config::load_from(None, &env, &crate::config::Overrides::default()).unwrap();
        let roles = RoleSet::from_roles(&[Role::Center, Role::Consumer, Role::Listener]);
        let deps = Deps::connect(Arc::new(settings), roles).await.unwrap();
        let center = crate::center::Center::bind(&deps.settings.center, &deps).await.unwrap();
        let center_addr = center.local_addr().unwrap();
        let token = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let child = token.child_token();
        tasks.spawn(async move { (Role::Center, center.run(child).await) });
        if run.consumer {
            let consumer = crate::consumer::Consumer::bind(&deps.settings.consumer, &deps).unwrap();
            let child = token.child_token();
            tasks.spawn(async move { (Role::Consumer, consumer.run(child).await) });
        }
        if run.listener {
            let listener = crate::listener::Listener::bind(&deps.settings.listener, &deps).unwrap();
            let child = token.child_token();
            tasks.spawn(async move { (Role::Listener, listener.run(child).await) });
        }
        let client = Client::for_process(&deps).unwrap();
        assert!(client.is_local());
        Self {
            store: deps.store.clone().unwrap(),
            cache: deps.cache.clone(),
            runtime: deps.runtime.clone().unwrap(),
            client,
            center_addr,
            deps,
            token,
            tasks,
            _data_dir: data_dir,
        }
    }

    /// A deployable challenge running `command` with the given time limit (minutes).
    pub async fn challenge(&self, command: &str, time_limit_minutes: Option<i64>) -> ChallengeId {
        let spec = NewChallenge {
            name: format!("Chall {}", uuid::Uuid::new_v4().simple()),
            deploy: DeploySettings {
                require_deploy: true,
                command: Some(command.to_owned()),
                time_limit_minutes,
                ..DeploySettings::default()
            },
            ..NewChallenge::default()
        };
        self.store.create_challenge(&spec).await.unwrap().id
    }

    /// Waits until the instance reaches `state` (panics after `timeout`).
    pub async fn wait_state(&self, id: InstanceId, state: InstanceState, timeout: Duration) -> Instance {
        let deadline = Instant::now() + timeout;
        loop {
            let instance = self.store.get_instance(id).await.unwrap();
            if instance.state == state {
                return instance;
            }
            assert!(Instant::now() < deadline, "instance {id} is {:?}, expected {state:?}", instance.state);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The live instance of a team and challenge.
    pub async fn live(&self, team: TeamId, challenge: ChallengeId) -> Option<Instance> {
        self.store.find_live_instance(team, challenge).await.unwrap()
    }

    /// Stops every role and the runtime; asserts they ended cleanly.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            let (role, result) = joined.unwrap();
            result.unwrap_or_else(|error| panic!("{role} failed: {error:#}"));
        }
        self.runtime.shutdown(Duration::from_secs(2)).await;
    }

    /// Starts a consumer now; the handle aborts it (a crash) when dropped or aborted.
    pub fn spawn_consumer(&self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let consumer = crate::consumer::Consumer::bind(&self.deps.settings.consumer, &self.deps).unwrap();
        tokio::spawn(consumer.run(self.token.child_token()))
    }

    /// Records a team's slot reservation as the api does before a start.
    pub async fn reserve(&self, team: TeamId, challenge: ChallengeId, limit: u32) -> crate::cache::SlotReservation {
        use crate::control::lifecycle::{RESERVATION_HOLD, slot_member, slot_team};
        self.cache
            .reserve_instance_slot(&slot_team(team), &slot_member(challenge), limit, RESERVATION_HOLD)
            .await
            .unwrap()
    }

    /// Waits until the team holds no slot (a slot is released just after the row ends).
    pub async fn wait_no_slots(&self, team: TeamId) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.slots(team).await.is_empty() {
            assert!(Instant::now() < deadline, "team {team} still holds a slot");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The challenges holding a slot of the team.
    pub async fn slots(&self, team: TeamId) -> Vec<String> {
        self.cache.instance_slots(&crate::control::lifecycle::slot_team(team)).await.unwrap()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
