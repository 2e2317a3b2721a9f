//! Conformance suite of the store: every case runs against SQLite in memory (one connection),
//! SQLite in a WAL file with several connections (real concurrent writers) and PostgreSQL
//! (when `FCTF_TEST_DATABASE_URL` is set; each test gets its own `fctf_test_<uuid>` database).
//! Test names contain the backend (`sqlite_memory::…`, `sqlite_file::…`, `postgres::…`).

mod accounts;
mod challenges;
mod instances;
mod logs;
mod player;
mod schema;
mod scoring;

use super::Store;
use super::testing::{self, TestDatabase};

/// A migrated in-memory SQLite store, for other modules' tests.
pub(crate) async fn sqlite_memory_store() -> Store {
    testing::sqlite_memory_store().await.expect("in-memory sqlite store")
}

/// A migrated store on a fresh PostgreSQL database, or `None` (with a line on stderr) when
/// `FCTF_TEST_DATABASE_URL` is unset. Call `TestDatabase::drop_database` at the end.
pub(crate) async fn fresh_postgres_store() -> Option<(Store, TestDatabase)> {
    let fresh = testing::fresh_postgres_store(8).await.expect("postgres test database");
    if fresh.is_none() {
        eprintln!("skipping: {} is not set", testing::DATABASE_URL_VAR);
    }
    fresh
}

enum Cleanup {
    Nothing,
    Directory(#[allow(dead_code)] tempfile::TempDir),
    Postgres(TestDatabase),
}

/// A store under test and what to clean up after it.
pub(crate) struct Harness {
    pub(crate) store: Store,
    cleanup: Cleanup,
}

impl Harness {
    async fn sqlite_memory() -> Harness {
        Harness { store: sqlite_memory_store().await, cleanup: Cleanup::Nothing }
    }

    async fn sqlite_file() -> Harness {
        let directory = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", directory.path().join("fctf.db").display());
        let store = Store::connect_sqlite(&url, 8).await.expect("sqlite file store");
        store.migrate().await.expect("migrate");
        Harness { store, cleanup: Cleanup::Directory(directory) }
    }

    async fn postgres() -> Option<Harness> {
        let (store, database) = fresh_postgres_store().await?;
        Some(Harness { store, cleanup: Cleanup::Postgres(database) })
    }

    async fn finish(self) {
        self.store.close().await;
        if let Cleanup::Postgres(database) = self.cleanup
            && let Err(error) = database.drop_database().await
        {
            eprintln!("could not drop the test database: {error}");
        }
    }
}

/// Generates one `#[tokio::test]` per case and backend.
macro_rules! conformance_suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::sqlite_memory().await;
                    super::$module::$case(&harness.store).await;
                    harness.finish().await;
                }
            )*
        }
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::sqlite_file().await;
                    super::$module::$case(&harness.store).await;
                    harness.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres().await else { return };
                    super::$module::$case(&harness.store).await;
                    harness.finish().await;
                }
            )*
        }
    };
}

conformance_suite!(
    schema::migrations_apply_twice,
    schema::booleans_round_trip_as_integers,
    accounts::users_crud_and_unique_names,
    accounts::teams_members_and_captain,
    accounts::concurrent_joins_respect_the_team_size,
    accounts::sessions_one_active_per_user,
    accounts::concurrent_logins_leave_one_active_session,
    accounts::api_token_lookup_expiry_and_revoke,
    accounts::config_bulk_set_and_get,
    accounts::import_creates_every_account_or_none,
    challenges::challenge_round_trip_with_deploy_settings,
    challenges::flags_and_hints_in_creation_order,
    challenges::recreated_hint_keeps_unlocks,
    challenges::tags_topics_files_and_brackets,
    scoring::record_solve_is_exactly_once_under_concurrency,
    scoring::users_mode_solves_are_per_user,
    scoring::dynamic_value_decays_with_solves,
    scoring::incorrect_submissions_are_counted,
    scoring::submissions_commit_with_their_action_log,
    scoring::hint_unlock_is_exactly_once_under_concurrency,
    scoring::concurrent_unlocks_cannot_overspend,
    instances::one_live_instance_per_team_and_challenge,
    instances::transition_guard_has_one_winner,
    instances::instance_lifecycle,
    logs::audit_log_round_trip,
    logs::action_logs_cheat_events_and_records,
    player::account_snapshot_follows_session_and_team,
    player::team_self_service_is_atomic,
    player::similar_tickets_are_created_once,
    player::registration_and_score_data,
);

/// Fixtures shared by the cases.
pub(crate) mod fixtures {
    use crate::domain::{ChallengeId, TeamId, UserId};
    use crate::store::{Account, NewChallenge, NewTeam, NewUser, Store, UserRole};

    /// A verified player.
    pub(crate) async fn user(store: &Store, name: &str) -> UserId {
        let new_user = NewUser {
            name: name.to_owned(),
            email: Some(format!("{name}@example.test")),
            password_hash: "hash".to_owned(),
            role: UserRole::User,
            verified: true,
        };
        store.create_user(&new_user).await.expect("create user")
    }

    /// A team with one member, as a teams-mode account.
    pub(crate) async fn team_account(store: &Store, name: &str) -> Account {
        let team = store.create_team(&NewTeam { name: name.to_owned(), ..NewTeam::default() }).await.expect("team");
        let user_id = user(store, &format!("{name}-member")).await;
        store.add_team_member(team.id, user_id, None).await.expect("join");
        Account { user_id, team_id: Some(team.id) }
    }

    /// A visible standard challenge worth `value`.
    pub(crate) async fn challenge(store: &Store, name: &str, value: i64) -> ChallengeId {
        let spec = NewChallenge { name: name.to_owned(), value, category: "web".to_owned(), ..NewChallenge::default() };
        store.create_challenge(&spec).await.expect("create challenge").id
    }

    /// The team of an account (teams-mode fixtures always have one).
    pub(crate) fn team_of(account: Account) -> TeamId {
        account.team_id.expect("teams-mode account")
    }
}
