//! Store errors and their classification.
//!
//! Callers branch on the variant, and on `Conflict::constraint` for unique violations. The
//! constraint is reported as the *index name* of the schema (`users_name_uq`,
//! `solves_team_challenge_uq`, …) on both backends: PostgreSQL names it in the error; SQLite only
//! names expression indexes and otherwise lists the columns, which [`SQLITE_UNIQUE_COLUMNS`]
//! maps back to the index name (a test checks the table covers every unique index).

/// Errors of the store seam.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict {
        /// Unique index name (e.g. `users_name_uq`), or the database message when unknown.
        constraint: String,
    },
    /// The database could not be reached, the pool timed out or the database stayed busy
    /// (SQLite lock, PostgreSQL serialization failure or deadlock); retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// True for a unique/foreign-key conflict on the named constraint.
    pub fn is_conflict_on(&self, constraint_name: &str) -> bool {
        matches!(self, StoreError::Conflict { constraint } if constraint == constraint_name)
    }
}

/// SQLite names a violated plain-column unique index by its columns; these are the schema's
/// unique indexes by column list. Primary keys map to `<table>_pkey` as on PostgreSQL.
pub(crate) const SQLITE_UNIQUE_COLUMNS: &[(&str, &str)] = &[
    ("teams.oauth_id", "teams_oauth_id_uq"),
    ("teams.invite_code", "teams_invite_code_uq"),
    ("users.oauth_id", "users_oauth_id_uq"),
    ("field_entries.field_id, field_entries.user_id", "field_entries_user_uq"),
    ("field_entries.field_id, field_entries.team_id", "field_entries_team_uq"),
    ("sessions.token_id", "sessions_token_id_uq"),
    ("sessions.user_id", "sessions_one_active_uq"),
    ("api_tokens.digest", "api_tokens_digest_uq"),
    ("tracking.user_id, tracking.ip", "tracking_user_ip_uq"),
    ("config.key", "config_key_uq"),
    ("challenges.name", "challenges_name_uq"),
    ("topics.value", "topics_value_uq"),
    ("solutions.challenge_id", "solutions_challenge_uq"),
    ("pages.route", "pages_route_uq"),
    ("files.location", "files_location_uq"),
    ("solves.challenge_id, solves.team_id", "solves_team_challenge_uq"),
    ("solves.challenge_id, solves.user_id", "solves_user_challenge_uq"),
    ("unlocks.hint_id, unlocks.team_id", "unlocks_team_hint_uq"),
    ("unlocks.hint_id, unlocks.user_id", "unlocks_user_hint_uq"),
    ("instances.team_id, instances.challenge_id", "instances_live_uq"),
];

/// The constraint name of a SQLite constraint message.
fn sqlite_constraint_name(message: &str) -> Option<String> {
    let detail = message.strip_prefix("UNIQUE constraint failed: ")?;
    if let Some(index) = detail.strip_prefix("index '") {
        return Some(index.trim_end_matches('\'').to_owned());
    }
    if let Some((_, name)) = SQLITE_UNIQUE_COLUMNS.iter().find(|(columns, _)| *columns == detail) {
        return Some((*name).to_owned());
    }
    let (table, column) = detail.split_once('.')?;
    (column == "id").then(|| format!("{table}_pkey"))
}

/// SQLite result codes (primary code in the low byte) that mean "locked, try again".
fn is_sqlite_busy(code: &str) -> bool {
    code.parse::<i64>().map(|value| matches!(value & 0xff, 5 | 6)).unwrap_or(false)
}

/// PostgreSQL SQLSTATEs that mean "try again": serialization failure, deadlock, lock timeout.
fn is_postgres_retryable(code: &str) -> bool {
    matches!(code, "40001" | "40P01" | "55P03")
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(database_error) => {
                let message = database_error.message().to_owned();
                let constraint_kind = matches!(
                    database_error.kind(),
                    sqlx::error::ErrorKind::UniqueViolation | sqlx::error::ErrorKind::ForeignKeyViolation
                );
                if constraint_kind {
                    let constraint = database_error
                        .constraint()
                        .map(str::to_owned)
                        .or_else(|| sqlite_constraint_name(&message))
                        .unwrap_or(message);
                    return StoreError::Conflict { constraint };
                }
                let code = database_error.code().map(|code| code.into_owned()).unwrap_or_default();
                if is_sqlite_busy(&code) || is_postgres_retryable(&code) {
                    StoreError::Unavailable(message)
                } else {
                    StoreError::Other(message)
                }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(error.to_string())
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_messages_map_to_index_names() {
        assert_eq!(
            sqlite_constraint_name("UNIQUE constraint failed: index 'users_name_uq'").as_deref(),
            Some("users_name_uq")
        );
        assert_eq!(
            sqlite_constraint_name("UNIQUE constraint failed: solves.challenge_id, solves.team_id").as_deref(),
            Some("solves_team_challenge_uq")
        );
        assert_eq!(sqlite_constraint_name("UNIQUE constraint failed: solves.id").as_deref(), Some("solves_pkey"));
        assert_eq!(sqlite_constraint_name("FOREIGN KEY constraint failed"), None);
    }

    #[test]
    fn busy_codes_are_classified() {
        assert!(is_sqlite_busy("5"));
        assert!(is_sqlite_busy("517"));
        assert!(is_sqlite_busy("6"));
        assert!(!is_sqlite_busy("2067"));
        assert!(is_postgres_retryable("40001"));
        assert!(!is_postgres_retryable("23505"));
    }
}
