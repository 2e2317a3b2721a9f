//! `Deps`: the backends a process needs, built once from the configuration, only for the roles
//! that run here, then handed to each role.

use std::sync::Arc;

use anyhow::Context;

use crate::app::role::{Role, RoleSet};
use crate::cache::Cache;
use crate::config::{Secrets, Settings};
use crate::metrics::Metrics;
use crate::queue::{QueueConsumer, QueueProducer};
use crate::runtime::Runtime;
use crate::store::Store;

/// Backends and shared values for the roles of one process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Deps {
    pub settings: Arc<Settings>,
    pub roles: RoleSet,
    /// Present when a role of this process uses the store.
    pub store: Option<Store>,
    pub cache: Cache,
    /// Present when center runs here.
    pub producer: Option<QueueProducer>,
    /// Present when consumer runs here.
    pub consumer: Option<QueueConsumer>,
    /// Present when center, consumer or listener runs here.
    pub runtime: Option<Runtime>,
    pub secrets: Secrets,
    pub metrics: Metrics,
    /// Where center registers itself when it runs in this process, so the api's control
    /// client calls it in process (`control::Client::for_process`).
    pub control: crate::control::LocalLink,
}

impl Deps {
    /// Connects every backend the roles need. Fails fast, naming the backend.
    pub async fn connect(settings: Arc<Settings>, roles: RoleSet) -> anyhow::Result<Self> {
        let embedded = roles.is_all();
        let secrets = Secrets::resolve(&settings.secrets, &settings.data_dir, embedded)
            .context("failed to load or generate the secrets in the data directory")?;
        let store = if roles.iter().any(|role| role.uses_store()) {
            let store =
                Store::from_config(&settings.store, &settings.data_dir).await.context("failed to connect the store")?;
            if settings.store.migrate_on_start {
                store.migrate().await.context("failed to migrate the store")?;
            }
            Some(store)
        } else {
            None
        };
        let cache = Cache::from_config(&settings.cache).await.context("failed to connect the cache")?;
        let (producer, consumer) = if roles.contains(Role::Center) || roles.contains(Role::Consumer) {
            let (producer, consumer) =
                crate::queue::new_pair(&settings.queue).await.context("failed to connect the queue")?;
            (roles.contains(Role::Center).then_some(producer), roles.contains(Role::Consumer).then_some(consumer))
        } else {
            (None, None)
        };
        let runtime =
            if roles.contains(Role::Center) || roles.contains(Role::Consumer) || roles.contains(Role::Listener) {
                Some(Runtime::from_config(&settings.runtime).await.context("failed to start the instance runtime")?)
            } else {
                None
            };
        Ok(Self {
            settings,
            roles,
            store,
            cache,
            producer,
            consumer,
            runtime,
            secrets,
            metrics: Metrics::new(),
            control: crate::control::LocalLink::default(),
        })
    }

    /// The store; roles that use it only run when it was connected.
    pub fn store(&self) -> anyhow::Result<&Store> {
        self.store.as_ref().context("the store is not connected in this process")
    }

    /// The runtime; roles that use it only run when it was built.
    pub fn runtime(&self) -> anyhow::Result<&Runtime> {
        self.runtime.as_ref().context("the runtime is not available in this process")
    }
}
