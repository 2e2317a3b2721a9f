//! Composition root: builds the backends and the enabled roles, then runs them under one
//! cancellation token.
//!
//! Lifecycle (see STYLE §7.4): `App::build` connects the backends (`Deps`) and *binds* every
//! listener of every enabled role, so start-up errors surface before anything accepts traffic
//! and tests can read the bound addresses. `App::run` then serves: each role is one task; a role
//! that returns on its own (with or without an error) stops the process with an error naming
//! it. On shutdown readiness turns off first, then `shutdown.readiness_delay_secs` passes, then
//! the roles are cancelled and awaited for at most `shutdown.grace_period_secs`; the runtime and
//! the store are closed last.

pub mod deps;
pub mod ops;
pub mod role;
pub mod supervise;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use deps::Deps;
pub use role::{Role, RoleSet};

use crate::config::Settings;

/// Addresses the process listens on (port 0 in the configuration gives the real port here).
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub ops: SocketAddr,
    pub api: Option<SocketAddr>,
    pub center: Option<SocketAddr>,
    pub gateway_http: Option<SocketAddr>,
    pub gateway_tcp: Option<SocketAddr>,
}

use supervise::RoleTask;

/// A process with its backends connected and its listeners bound, ready to run.
pub struct App {
    deps: Deps,
    addrs: Addrs,
    ops: ops::OpsServer,
    readiness: ops::Readiness,
    tasks: Vec<(Role, RoleTask)>,
}

impl App {
    /// Validates the configuration, connects the backends and binds every listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let roles = settings.validate()?;
        let deps = Deps::connect(Arc::new(settings), roles).await?;
        Self::build_with(deps).await
    }

    /// Binds every listener of the roles in `deps.roles` using already connected backends.
    pub async fn build_with(deps: Deps) -> anyhow::Result<Self> {
        let settings = deps.settings.clone();
        let readiness = ops::Readiness::default();
        let ops =
            ops::OpsServer::bind(settings.ops.listen, readiness.clone(), deps.metrics.clone(), deps.store.clone())
                .await
                .with_context(|| format!("failed to bind the ops listener on {}", settings.ops.listen))?;
        let mut addrs =
            Addrs { ops: ops.local_addr()?, api: None, center: None, gateway_http: None, gateway_tcp: None };
        let mut tasks: Vec<(Role, RoleTask)> = Vec::new();
        for role in deps.roles.iter() {
            match role {
                Role::Center => {
                    let center =
                        crate::center::Center::bind(&settings.center, &deps).await.context("failed to start center")?;
                    addrs.center = Some(center.local_addr()?);
                    tasks.push((role, Box::new(move |token| Box::pin(center.run(token)))));
                }
                Role::Consumer => {
                    let consumer = crate::consumer::Consumer::bind(&settings.consumer, &deps)
                        .context("failed to start consumer")?;
                    tasks.push((role, Box::new(move |token| Box::pin(consumer.run(token)))));
                }
                Role::Listener => {
                    let listener = crate::listener::Listener::bind(&settings.listener, &deps)
                        .context("failed to start listener")?;
                    tasks.push((role, Box::new(move |token| Box::pin(listener.run(token)))));
                }
                Role::Api => {
                    let api = crate::api::Api::bind(&settings.api, &deps).await.context("failed to start api")?;
                    addrs.api = Some(api.local_addr()?);
                    tasks.push((role, Box::new(move |token| Box::pin(api.run(token)))));
                }
                Role::Gateway => {
                    let gateway = crate::gateway::Gateway::bind(&settings.gateway, &deps)
                        .await
                        .context("failed to start gateway")?;
                    addrs.gateway_http = Some(gateway.http_addr()?);
                    addrs.gateway_tcp = Some(gateway.tcp_addr()?);
                    tasks.push((role, Box::new(move |token| Box::pin(gateway.run(token)))));
                }
                Role::All => {}
            }
        }
        Ok(Self { deps, addrs, ops, readiness, tasks })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Addrs {
        self.addrs
    }

    /// The connected backends.
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Runs every role until `shutdown` is cancelled or a role stops on its own.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { deps, addrs: _, ops, readiness, tasks } = self;
        let settings = deps.settings.clone();
        let ops_token = CancellationToken::new();
        let ops_task = tokio::spawn(ops.run(ops_token.clone()));
        tracing::info!(roles = %deps.roles, "fctf is running");
        let drain = supervise::Drain {
            readiness_delay: Duration::from_secs(settings.shutdown.readiness_delay_secs),
            grace: Duration::from_secs(settings.shutdown.grace_period_secs),
        };
        let outcome = supervise::supervise(tasks, shutdown, readiness, drain).await;
        if let Some(runtime) = &deps.runtime {
            runtime.shutdown(drain.grace).await;
        }
        if let Some(store) = &deps.store {
            store.close().await;
        }
        ops_token.cancel();
        match ops_task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "ops listener failed"),
            Err(join_error) => tracing::warn!(%join_error, "ops listener panicked"),
        }
        outcome
    }
}

/// Prints where to reach the platform. When this process runs the api role against a store
/// with no admin yet (a first start), creates the admin account `admin` with a generated
/// password, prints it once and keeps it in `<data_dir>/initial-admin.txt` (mode 0600).
pub async fn announce(app: &App) -> anyhow::Result<()> {
    let deps = app.deps();
    let settings = &deps.settings;
    let addrs = app.addrs();
    let mut lines = vec![format!("fctf {} running roles: {}", env!("CARGO_PKG_VERSION"), deps.roles)];
    if addrs.api.is_some() {
        lines.push(format!("  player portal : {}/", settings.api.public_url.trim_end_matches('/')));
        lines.push(format!("  admin         : {}/admin", settings.api.public_url.trim_end_matches('/')));
        if let Some(store) = &deps.store
            && store.count_users_with_role(crate::store::UserRole::Admin).await? == 0
        {
            let created = crate::auth::create_admin(store, "admin", None).await?;
            let password = created.generated_password.unwrap_or_default();
            let note = format!(
                "fctf initial admin account\nname: admin\npassword: {password}\nadmin API token: {}\n",
                created.api_token
            );
            let path = settings.data_dir.join("initial-admin.txt");
            if let Err(error) = write_private_file(&path, &note) {
                tracing::warn!(%error, path = %path.display(), "could not keep the initial admin credentials");
            }
            lines.push(format!("  first start: log in as `admin` with password {password}"));
            lines.push(format!("  (also written to {})", path.display()));
        }
    }
    if let Some(addr) = addrs.gateway_http {
        lines.push(format!(
            "  gateway http  : {}/ (players' links; listening on {})",
            settings.gateway.public_http_base(),
            reachable(addr)
        ));
    }
    if let Some(addr) = addrs.gateway_tcp {
        let (host, port) = settings.gateway.public_tcp();
        lines.push(format!(
            "  gateway tcp   : {}:{port} (players' `nc`; listening on {})",
            crate::gateway::url_host(&host),
            reachable(addr)
        ));
    }
    if let Some(addr) = addrs.center {
        lines.push(format!("  center        : http://{}/", reachable(addr)));
    }
    let ops = reachable(addrs.ops);
    lines.push(format!("  health        : http://{ops}/healthz  metrics: http://{ops}/metrics"));
    if addrs.api.is_some() {
        for warning in settings.warnings() {
            tracing::warn!("{warning}");
            lines.push(format!("  warning: {warning}"));
        }
    }
    println!("{}", lines.join("\n"));
    Ok(())
}

/// How a person on this machine reaches a listener: `localhost` for a wildcard address.
fn reachable(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("localhost:{}", addr.port()) } else { addr.to_string() }
}

fn write_private_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
