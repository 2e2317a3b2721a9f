//! The command line: global `--role`/`--config`/`--data-dir` and the subcommands.
//!
//! `fctf` alone is `fctf run --role all`: the whole platform with embedded backends.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::role::Role;
use crate::config::{self, ConfigError, Overrides, Settings};

/// fctf: a capture-the-flag competition platform.
#[derive(Debug, Parser)]
#[command(name = "fctf", version, about, long_about = None)]
pub struct Cli {
    /// Roles to run (repeatable or comma-separated): api, gateway, consumer, listener, center, all.
    #[arg(long = "role", global = true, value_delimiter = ',', env = "FCTF_ROLES")]
    pub roles: Vec<Role>,
    /// Configuration file layered over the embedded defaults.
    #[arg(long, global = true, env = "FCTF_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, generated secrets, files); overrides `data_dir`.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the selected roles (the default).
    Run,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// GET a URL and exit 0 on a 2xx answer (container health checks without curl).
    Healthcheck {
        /// e.g. http://127.0.0.1:9000/healthz
        url: String,
    },
    /// Manage staff accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage challenges offline.
    Challenge {
        #[command(subcommand)]
        command: ChallengeCommand,
    },
    /// Export or import the whole event.
    Event {
        #[command(subcommand)]
        command: EventCommand,
    },
}

/// `fctf challenge …`
#[derive(Debug, Subcommand)]
pub enum ChallengeCommand {
    /// Create or update challenges from ctfcli `challenge.yml` files (idempotent).
    Import {
        /// `challenge.yml` files, directories holding one, or trees of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// `fctf event …`
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Write settings, challenges with files, accounts and submissions to one JSON document.
    Export {
        /// Output file.
        file: PathBuf,
    },
    /// Load an exported event into an empty data directory or database.
    Import {
        /// Input file.
        file: PathBuf,
    },
}

/// `fctf config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration, every key documented.
    PrintDefault,
    /// Load and validate the configuration for the selected roles, then print it (secrets redacted).
    Check,
}

/// `fctf admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account and print an admin API token for it.
    Create {
        /// Account name.
        #[arg(long)]
        name: String,
        /// Password; generated and printed when omitted.
        #[arg(long)]
        password: Option<String>,
        /// Staff role of the account (CTFd's user `type`).
        #[arg(long = "type", default_value = "admin", value_parser = ["admin", "jury", "challenge_writer"])]
        kind: String,
    },
}

fn overrides(cli: &Cli) -> Overrides {
    Overrides { roles: cli.roles.clone(), data_dir: cli.data_dir.clone() }
}

fn load(cli: &Cli) -> Result<Settings, ConfigError> {
    config::load(cli.config.as_deref(), &overrides(cli))
}

/// Runs the parsed command line.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        None | Some(Command::Run) => {
            let settings = load(&cli)?;
            crate::telemetry::init(&settings.log);
            run(settings).await
        }
        Some(Command::Migrate) => {
            let settings = load(&cli)?;
            crate::telemetry::init(&settings.log);
            let store = crate::store::Store::from_config(&settings.store, &settings.data_dir)
                .await
                .context("failed to connect the store")?;
            store.migrate().await.context("failed to migrate the store")?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Config { command: ConfigCommand::PrintDefault }) => {
            print!("{}", config::DEFAULT_TOML);
            Ok(())
        }
        Some(Command::Config { command: ConfigCommand::Check }) => {
            let settings = load(&cli)?;
            let roles = settings.validate()?;
            println!("configuration is valid for roles: {roles}");
            for warning in settings.warnings() {
                println!("warning: {warning}");
            }
            println!("{settings:#?}");
            Ok(())
        }
        Some(Command::Healthcheck { url }) => healthcheck(url).await,
        Some(Command::Admin { command: AdminCommand::Create { name, password, kind } }) => {
            let (_, store) = open_store(&cli).await?;
            let role: crate::store::UserRole = kind.parse()?;
            let created = crate::auth::create_staff(&store, name, password.as_deref(), role).await?;
            println!("{} account `{}` created (id {})", role.as_str(), created.name, created.user_id);
            if let Some(generated) = &created.generated_password {
                println!("password: {generated}");
            }
            println!("admin API token: {}", created.api_token);
            Ok(())
        }
        Some(Command::Challenge { command: ChallengeCommand::Import { paths } }) => {
            let (settings, store) = open_store(&cli).await?;
            let reports =
                crate::import::import_challenges(&store, &settings.data_dir, paths, &mut std::io::stderr()).await;
            let failed = crate::import::write_report(&reports, &mut std::io::stdout());
            anyhow::ensure!(failed == 0, "{failed} challenge file(s) could not be imported");
            Ok(())
        }
        Some(Command::Event { command }) => {
            let (settings, store) = open_store(&cli).await?;
            let summary = match command {
                EventCommand::Export { file } => crate::import::export_event(&store, &settings.data_dir, file).await?,
                EventCommand::Import { file } => crate::import::import_event(&store, &settings.data_dir, file).await?,
            };
            for location in &summary.missing_files {
                eprintln!("warning: {location} has a row but no file in the data directory; left out");
            }
            println!("{} rows and {} files", summary.rows, summary.files);
            Ok(())
        }
    }
}

/// Loads the configuration and opens the (migrated) store, for offline subcommands.
async fn open_store(cli: &Cli) -> anyhow::Result<(Settings, crate::store::Store)> {
    let settings = load(cli)?;
    crate::telemetry::init(&settings.log);
    let store = crate::store::Store::from_config(&settings.store, &settings.data_dir)
        .await
        .context("failed to connect the store")?;
    store.migrate().await.context("failed to migrate the store")?;
    Ok((settings, store))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    // Signals first: anyone who has seen the announcement may send SIGTERM at once.
    let shutdown = crate::shutdown::on_signals();
    let app = crate::app::App::build(settings).await?;
    let addrs = app.addrs();
    crate::app::announce(&app).await?;
    tracing::debug!(?addrs, "listeners bound");
    app.run(shutdown).await
}

/// A dependency-free HTTP/1.1 GET for container health checks.
async fn healthcheck(url: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let parsed = url::Url::parse(url).with_context(|| format!("invalid URL {url}"))?;
    anyhow::ensure!(parsed.scheme() == "http", "only http:// URLs are supported");
    let host = parsed.host_str().context("the URL has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let path = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<Vec<u8>, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .context("health check timed out")?
        .with_context(|| format!("health check of {url} failed"))?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    let status: u16 =
        head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).context("no HTTP status in the answer")?;
    anyhow::ensure!((200..300).contains(&status), "{url} answered {status}");
    println!("{url}: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn repeated_and_comma_separated_roles() {
        let cli = Cli::try_parse_from(["fctf", "--role", "api", "--role", "gateway,center"]).unwrap();
        assert_eq!(cli.roles, vec![Role::Api, Role::Gateway, Role::Center]);
        assert!(cli.command.is_none());
    }

    #[test]
    fn unknown_role_is_rejected_with_the_valid_list() {
        let error = Cli::try_parse_from(["fctf", "--role", "web"]).unwrap_err().to_string();
        assert!(error.contains("valid roles"), "{error}");
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from(["fctf", "admin", "create", "--name", "root"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Admin { command: AdminCommand::Create { .. } })));
        let cli = Cli::try_parse_from(["fctf", "config", "print-default"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Config { command: ConfigCommand::PrintDefault })));
        let cli = Cli::try_parse_from(["fctf", "challenge", "import", "a", "b/challenge.yml"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Challenge { command: ChallengeCommand::Import { paths } }) if paths.len() == 2)
        );
        assert!(Cli::try_parse_from(["fctf", "challenge", "import"]).is_err());
        let cli = Cli::try_parse_from(["fctf", "event", "export", "out.json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Event { command: EventCommand::Export { .. } })));
        assert!(Cli::try_parse_from(["fctf", "admin", "create", "--name", "j", "--type", "user"]).is_err());
        let cli = Cli::try_parse_from(["fctf", "admin", "create", "--name", "j", "--type", "jury"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Admin { command: AdminCommand::Create { kind, .. } }) if kind == "jury")
        );
    }
}
