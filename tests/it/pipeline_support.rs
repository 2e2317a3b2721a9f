//! Support for the deployment pipeline's end-to-end tests: the platform on the embedded
//! backends (`--role all`: SQLite, memory cache and queue, local runtime) or with the roles
//! split over three processes on PostgreSQL + Redis + RabbitMQ (`[center, consumer,
//! listener]`, `[api]`, `[gateway]`); players logged in over HTTP; instances reached through
//! the gateway with their token.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use fctf::app::{App, Deps, Role, RoleSet};
use fctf::cache::Cache;
use fctf::domain::{ChallengeId, InstanceId, TeamId, UserId};
use fctf::store::{DeploySettings, Instance, InstanceState, NewChallenge, NewFlag, NewTeam, NewUser, Store, UserRole};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{Backends, settings};

/// A challenge that serves HTTP on `$PORT`.
pub const HTTP_SERVER: &str = r#"exec python3 -m http.server "$PORT" --bind "$HOST""#;
const PASSWORD: &str = "Pipe!line9";
const SLOW: Duration = Duration::from_secs(60);

/// Which topology a platform runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// `--role all` on the embedded backends.
    Embedded,
    /// `[center, consumer, listener]`, `[api]`, `[gateway]` on PostgreSQL, Redis, RabbitMQ.
    Split,
}

/// Local ports for this test binary's platforms: below the kernel's ephemeral range and
/// disjoint from the unit tests' blocks.
fn port_block() -> (u16, u16) {
    const START: u16 = 16_000;
    const END: u16 = 19_960;
    const SIZE: u16 = 60;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let blocks = (END - START) / SIZE;
    let first = u16::try_from(std::process::id() % u32::from(blocks)).unwrap();
    let block = (first + NEXT.fetch_add(1, Ordering::Relaxed)) % blocks;
    let start = START + block * SIZE;
    (start, start + SIZE - 1)
}

/// A running platform.
pub struct Platform {
    pub topology: Topology,
    pub store: Store,
    pub cache: Cache,
    pub http: reqwest::Client,
    pub api: String,
    pub gateway: String,
    /// The deployment center (in process: the first app runs center), as admins reach it.
    pub control: fctf::control::Client,
    /// The first process's backends, for a consumer run apart.
    consumer_deps: Option<Deps>,
    tokens: Vec<CancellationToken>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _backends: Backends,
}

impl Platform {
    /// Starts a platform; `None` (skip) for `Split` when the real backends are not configured.
    /// `config` rows (event configuration) are written before the roles start.
    pub async fn start(topology: Topology, extra: &[(&str, &str)], config: &[(&str, &str)]) -> Option<Self> {
        Self::launch(topology, extra, config, false).await
    }

    /// [`Platform::start`] with the consumer role connected (in the first process, on its
    /// queue) but not running: the test runs it with [`Platform::spawn_consumer`] and kills it
    /// by aborting the task.
    pub async fn start_without_consumer(
        topology: Topology,
        extra: &[(&str, &str)],
        config: &[(&str, &str)],
    ) -> Option<Self> {
        Self::launch(topology, extra, config, true).await
    }

    async fn launch(
        topology: Topology,
        extra: &[(&str, &str)],
        config: &[(&str, &str)],
        consumer_apart: bool,
    ) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (backends, groups): (Backends, Vec<Vec<Role>>) = match topology {
            Topology::Embedded => (Backends::Embedded, vec![vec![Role::All]]),
            Topology::Split => (
                Backends::real().await?,
                vec![vec![Role::Center, Role::Consumer, Role::Listener], vec![Role::Api], vec![Role::Gateway]],
            ),
        };
        let (port_start, port_end) = port_block();
        let (port_start, port_end) = (port_start.to_string(), port_end.to_string());
        let mut extras: Vec<(&str, &str)> = vec![
            ("FCTF_LOG__LEVEL", "warn"),
            ("FCTF_RUNTIME__LOCAL__PORT_RANGE_START", &port_start),
            ("FCTF_RUNTIME__LOCAL__PORT_RANGE_END", &port_end),
            ("FCTF_LISTENER__SWEEP_INTERVAL_MS", "100"),
            ("FCTF_CONSUMER__POLL_INTERVAL_MS", "20"),
            ("FCTF_GATEWAY__LIVENESS_CACHE_MS", "100"),
        ];
        extras.extend_from_slice(extra);
        let mut apps = Vec::new();
        let mut consumer_deps = None;
        let mut center_url: Option<String> = None;
        for (index, group) in groups.iter().enumerate() {
            let mut group_extras = extras.clone();
            if let Some(url) = &center_url {
                group_extras.push(("FCTF_CENTER__URL", url.as_str()));
            }
            let app_settings = settings(&backends, group, &dir.path().join(format!("app{index}")), &group_extras);
            if index == 0 {
                // Seed the event configuration before any role reads it.
                let store = Store::from_config(&app_settings.store, &app_settings.data_dir).await.unwrap();
                store.migrate().await.unwrap();
                let entries: Vec<(String, Option<String>)> =
                    config.iter().map(|(key, value)| ((*key).to_owned(), Some((*value).to_owned()))).collect();
                store.set_config_many(&entries).await.unwrap();
            }
            let app = if index == 0 && consumer_apart {
                let roles = app_settings.validate().unwrap();
                let deps = Deps::connect(std::sync::Arc::new(app_settings.clone()), roles).await.unwrap();
                consumer_deps = Some(deps.clone());
                let others: Vec<Role> = roles.iter().filter(|role| *role != Role::Consumer).collect();
                App::build_with(Deps { roles: RoleSet::from_roles(&others), ..deps }).await.unwrap()
            } else {
                App::build(app_settings.clone()).await.unwrap()
            };
            if let Some(center) = app.addrs().center {
                center_url = Some(format!("http://{center}"));
            }
            apps.push((app, app_settings));
        }
        let (first, first_settings) = &apps[0];
        let store = first.deps().store.clone().unwrap();
        let cache = first.deps().cache.clone();
        let control = fctf::control::Client::for_process(first.deps()).unwrap();
        let _ = first_settings;
        let mut api = String::new();
        let mut gateway = String::new();
        let mut tokens = Vec::new();
        let mut tasks = Vec::new();
        for (app, _) in apps {
            if let Some(addr) = app.addrs().api {
                api = format!("http://{addr}");
            }
            if let Some(addr) = app.addrs().gateway_http {
                gateway = format!("http://{addr}");
            }
            let token = CancellationToken::new();
            tasks.push(tokio::spawn(app.run(token.clone())));
            tokens.push(token);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some(Platform {
            topology,
            store,
            cache,
            http,
            api,
            gateway,
            control,
            consumer_deps,
            tokens,
            tasks,
            _dir: dir,
            _backends: backends,
        })
    }

    /// Runs a consumer on the first process's backends (only after
    /// [`Platform::start_without_consumer`]); aborting the task kills it mid-work.
    pub fn spawn_consumer(&self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let deps = self.consumer_deps.as_ref().expect("started without its consumer");
        let consumer = fctf::consumer::Consumer::bind(&deps.settings.consumer, deps).unwrap();
        tokio::spawn(consumer.run(CancellationToken::new()))
    }

    /// Stops every process (center last, so in-flight calls finish).
    pub async fn stop(self) {
        for token in self.tokens.iter().rev() {
            token.cancel();
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }

    /// A team of one verified captain; returns the team and the captain's session token.
    pub async fn team(&self, name: &str) -> (TeamId, UserId, String) {
        static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let hash = HASH.get_or_init(|| fctf::auth::hash_password(PASSWORD).unwrap()).clone();
        let team = self.store.create_team(&NewTeam { name: name.to_owned(), ..NewTeam::default() }).await.unwrap();
        let user =
            NewUser { name: name.to_owned(), email: None, password_hash: hash, role: UserRole::User, verified: true };
        let user = self.store.create_user(&user).await.unwrap();
        self.store.add_team_member(team.id, user, None).await.unwrap();
        self.store.set_team_captain(team.id, Some(user)).await.unwrap();
        let (status, body) =
            self.post("/api/Auth/login-contestant", None, json!({"username": name, "password": PASSWORD})).await;
        assert_eq!(status, 200, "login: {body}");
        (team.id, user, body["generatedToken"].as_str().unwrap().to_owned())
    }

    /// A deployable challenge running `command` locally.
    pub async fn challenge(&self, name: &str, command: &str) -> ChallengeId {
        self.challenge_with(name, command, |_| {}).await
    }

    /// A deployable challenge running `command` locally, with more settings.
    pub async fn challenge_with(
        &self,
        name: &str,
        command: &str,
        tweak: impl FnOnce(&mut NewChallenge),
    ) -> ChallengeId {
        let mut spec = NewChallenge {
            name: name.to_owned(),
            category: "web".into(),
            value: 100,
            deploy: DeploySettings {
                require_deploy: true,
                command: Some(command.to_owned()),
                ..DeploySettings::default()
            },
            ..NewChallenge::default()
        };
        tweak(&mut spec);
        self.store.create_challenge(&spec).await.unwrap().id
    }

    /// `POST` on the api with a JSON body; returns the status and the JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.api)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `POST /api/Challenge/start`.
    pub async fn start_instance(&self, token: &str, challenge: ChallengeId) -> (u16, Value) {
        self.post("/api/Challenge/start", Some(token), json!({"challengeId": challenge.get()})).await
    }

    /// `POST /api/Challenge/stop-by-user`.
    pub async fn stop_instance(&self, token: &str, challenge: ChallengeId) -> (u16, Value) {
        self.post("/api/Challenge/stop-by-user", Some(token), json!({"challengeId": challenge.get()})).await
    }

    /// `POST /api/Challenge/check-status`.
    pub async fn check_status(&self, token: &str, challenge: ChallengeId) -> (u16, Value) {
        self.post("/api/Challenge/check-status", Some(token), json!({"challengeId": challenge.get()})).await
    }

    /// `POST /api/Challenge/attempt`.
    pub async fn attempt(&self, token: &str, challenge: ChallengeId, submission: &str) -> (u16, Value) {
        let body = json!({"challengeId": challenge.get(), "submission": submission});
        self.post("/api/Challenge/attempt", Some(token), body).await
    }

    /// Gives a challenge a static flag.
    pub async fn flag(&self, challenge: ChallengeId, content: &str) {
        let flag = NewFlag { challenge_id: challenge, kind: "static".into(), content: content.to_owned(), data: None };
        self.store.create_flag(&flag).await.unwrap();
    }

    /// Polls the gateway with an instance token until it answers `wanted` (or `limit` passes);
    /// returns the last status.
    pub async fn gateway_answers(&self, token: &str, wanted: u16, limit: Duration) -> u16 {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.through_gateway(token).await;
            if status == wanted || Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls check-status until the instance runs; returns its token and the time it took.
    pub async fn wait_running(&self, token: &str, challenge: ChallengeId) -> (String, Duration) {
        self.wait_running_every(token, challenge, Duration::from_millis(10)).await
    }

    /// [`Platform::wait_running`], polling every `interval`.
    pub async fn wait_running_every(
        &self,
        token: &str,
        challenge: ChallengeId,
        interval: Duration,
    ) -> (String, Duration) {
        let started = Instant::now();
        loop {
            let (status, body) = self.check_status(token, challenge).await;
            if status == 200 && body["pod_status"] == "Running" {
                return (body["challenge_url"].as_str().unwrap().to_owned(), started.elapsed());
            }
            assert!(started.elapsed() < SLOW, "never running: {status} {body}");
            tokio::time::sleep(interval).await;
        }
    }

    /// The team's live instance of a challenge.
    pub async fn live(&self, team: TeamId, challenge: ChallengeId) -> Option<Instance> {
        self.store.find_live_instance(team, challenge).await.unwrap()
    }

    /// Waits until the instance reaches `state`.
    pub async fn wait_state(&self, id: InstanceId, state: InstanceState) -> Instance {
        let deadline = Instant::now() + SLOW;
        loop {
            let instance = self.store.get_instance(id).await.unwrap();
            if instance.state == state {
                return instance;
            }
            assert!(Instant::now() < deadline, "instance {id} is {:?}, expected {state:?}", instance.state);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reaches an instance through the gateway with its token (URL token, then the cookie);
    /// returns the final HTTP status.
    pub async fn through_gateway(&self, token: &str) -> u16 {
        let first = self.http.get(format!("{}/?fctftoken={token}", self.gateway)).send().await.unwrap();
        if !first.status().is_redirection() {
            return first.status().as_u16();
        }
        let cookie = first
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("FCTF_Auth_Token="))
            .map(|value| value.split(';').next().unwrap().to_owned())
            .expect("the gateway sets its cookie");
        let location = first.headers().get(reqwest::header::LOCATION).unwrap().to_str().unwrap().to_owned();
        let url = if location.starts_with("http") { location } else { format!("{}{location}", self.gateway) };
        self.http.get(url).header(reqwest::header::COOKIE, cookie).send().await.unwrap().status().as_u16()
    }

    /// The challenges holding a slot of the team.
    pub async fn slots(&self, team: TeamId) -> Vec<String> {
        self.cache.instance_slots(&team.to_string()).await.unwrap()
    }
}

/// Generates an embedded test and a `_postgres` test (split roles on PostgreSQL, Redis,
/// RabbitMQ; skipped when the variables are unset) for each scenario `fn(Topology)`.
macro_rules! on_both_topologies {
    ($($scenario:ident => $embedded:ident, $split:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $embedded() {
                $scenario(crate::pipeline_support::Topology::Embedded).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $split() {
                $scenario(crate::pipeline_support::Topology::Split).await;
            }
        )*
    };
}
pub(crate) use on_both_topologies;
