//! `POST /api/v1/import/csv?type=users|teams` (an fctf addition, admin only): bulk creation
//! of accounts from a CSV file sent as the request body (`text/csv`, UTF-8 or Windows-1252).
//!
//! Decisions:
//! - **All or nothing.** Every row is checked first ([`rows`]); when any row has a problem,
//!   nothing is imported and the answer (400) lists every problem of every row:
//!   `{"success":false,"message":"…","rows":[{"row":3,"errors":["…"]}]}` (row numbers as a
//!   spreadsheet shows them, the header being row 1). The accounts are then created in one
//!   store transaction, so a name taken meanwhile also leaves nothing behind. An organiser
//!   fixes the file and uploads it again, never wondering which half went in.
//! - **Credentials.** A user row without a password gets a generated one (14 characters with
//!   upper- and lower-case letters, digits and a symbol, never starting with a character a
//!   spreadsheet would read as a formula). The answer is the only place the generated
//!   passwords ever appear: `data.users[].password` is set for those accounts only; the
//!   audit log (one `import` entry) lists ids and names, never passwords. Team passwords are
//!   join passwords and are not generated.
//! - Users in the file are verified unless their `verified` column says otherwise; a user's
//!   `team` joins or creates that team and a new team's first member becomes its captain.

pub mod csv;
pub mod rows;

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::QueryParams;
use super::reply::ok;
use super::{Table, Verb, audit, signals};
use crate::api::ApiState;
use crate::domain::BracketId;
use crate::store::{ImportTeam, ImportUser, NewTeam, NewUser, StoreError, TeamUpdate, UserRole, UserUpdate};
use rows::{Existing, Kind, Row, RowErrors};

/// The largest CSV file accepted.
pub const MAX_CSV_BYTES: usize = 4 * 1024 * 1024;

pub(super) fn routes(table: Table, write: Access) -> Table {
    table.add_router(
        Verb::Post,
        "/api/v1/import/csv",
        write,
        axum::routing::post(import_csv).layer(DefaultBodyLimit::max(MAX_CSV_BYTES)),
    )
}

const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#%*?";

/// A fresh password: 14 characters without look-alikes (0/O, 1/l/I), at least one of each
/// class, starting with a letter.
pub fn generate_password() -> String {
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| char::from(set[rng.random_range(0..set.len())]);
    let letters: Vec<u8> = [LOWER, UPPER].concat();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    let first = pick(&letters);
    let mut rest = vec![pick(LOWER), pick(UPPER), pick(DIGITS), pick(SYMBOLS)];
    while rest.len() < 13 {
        rest.push(pick(&all));
    }
    rest.shuffle(&mut rand::rng());
    std::iter::once(first).chain(rest).collect()
}

async fn existing(state: &ApiState, kind: Kind) -> AdminResult<Existing> {
    let lower = |text: &str| text.to_lowercase();
    let (names, emails): (HashSet<String>, HashSet<String>) = match kind {
        Kind::Users => {
            let users = state.store.list_users(0, i64::MAX).await?;
            (
                users.iter().map(|user| lower(&user.name)).collect(),
                users.iter().filter_map(|user| user.email.as_deref()).map(lower).collect(),
            )
        }
        Kind::Teams => {
            let teams = state.store.list_teams(0, i64::MAX).await?;
            (
                teams.iter().map(|team| lower(&team.name)).collect(),
                teams.iter().filter_map(|team| team.email.as_deref()).map(lower).collect(),
            )
        }
    };
    Ok(Existing {
        names,
        emails,
        brackets: state.store.list_brackets().await?,
        fields: state.store.list_fields(Some(kind.field_kind())).await?,
    })
}

fn refused(message: String, problems: &[RowErrors]) -> Response {
    let rows: Vec<Value> =
        problems.iter().map(|problem| json!({"row": problem.row, "errors": problem.errors})).collect();
    (StatusCode::BAD_REQUEST, axum::Json(json!({"success": false, "message": message, "rows": rows}))).into_response()
}

/// Hashes the given or generated password of every row (off the async threads: argon2 is
/// deliberately slow). Returns `(hash, generated password)` per row.
async fn passwords(rows: &[Row], generate: bool) -> AdminResult<Vec<(Option<String>, Option<String>)>> {
    let plain: Vec<(Option<String>, bool)> = rows
        .iter()
        .map(|row| match (&row.password, generate) {
            (Some(given), _) => (Some(given.clone()), false),
            (None, true) => (Some(generate_password()), true),
            (None, false) => (None, false),
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        plain
            .into_iter()
            .map(|(password, generated)| {
                let Some(password) = password else { return Ok((None, None)) };
                let hash =
                    crate::auth::hash_password(&password).map_err(|error| AdminError::Internal(error.to_string()))?;
                Ok((Some(hash), generated.then_some(password)))
            })
            .collect()
    })
    .await
    .map_err(|error| AdminError::Internal(format!("password hashing task failed: {error}")))?
}

async fn import_csv(
    State(state): State<ApiState>,
    actor: Actor,
    query: QueryParams,
    body: Bytes,
) -> AdminResult<Response> {
    let Some(kind) = query.text("type").and_then(Kind::parse) else {
        return Err(AdminError::field("type", "must be users or teams"));
    };
    let text = csv::decode(&body);
    let checked = match rows::check(kind, &text, &existing(&state, kind).await?) {
        Ok(checked) => checked,
        Err(problems) => {
            let count = problems.len();
            let message = if count == 1 {
                "1 row has problems; nothing was imported".to_owned()
            } else {
                format!("{count} rows have problems; nothing was imported")
            };
            return Ok(refused(message, &problems));
        }
    };
    let secrets = passwords(&checked, kind == Kind::Users).await?;
    let (mut users, mut teams) = (Vec::new(), Vec::new());
    for (row, (hash, _)) in checked.iter().zip(&secrets) {
        let bracket_id = row.bracket_id.map(BracketId);
        match kind {
            Kind::Users => users.push(ImportUser {
                user: NewUser {
                    name: row.name.clone(),
                    email: row.email.clone(),
                    password_hash: hash.clone().unwrap_or_default(),
                    role: UserRole::User,
                    verified: row.verified,
                },
                profile: UserUpdate {
                    website: Some(row.website.clone()),
                    affiliation: Some(row.affiliation.clone()),
                    country: Some(row.country.clone()),
                    bracket_id: Some(bracket_id),
                    hidden: Some(row.hidden),
                    banned: Some(row.banned),
                    verified: Some(row.verified),
                    ..UserUpdate::default()
                },
                team_name: row.team.clone(),
                fields: row.fields.clone(),
            }),
            Kind::Teams => teams.push(ImportTeam {
                team: NewTeam {
                    name: row.name.clone(),
                    email: row.email.clone(),
                    password_hash: hash.clone(),
                    invite_code: None,
                    bracket_id,
                    hidden: row.hidden,
                    banned: row.banned,
                },
                profile: TeamUpdate {
                    website: Some(row.website.clone()),
                    affiliation: Some(row.affiliation.clone()),
                    country: Some(row.country.clone()),
                    ..TeamUpdate::default()
                },
                fields: row.fields.clone(),
            }),
        }
    }
    let imported = match state.store.import_accounts(&teams, &users).await {
        Ok(imported) => imported,
        Err(StoreError::Conflict { constraint }) => {
            let message = format!("an account was created meanwhile ({constraint}); nothing was imported, try again");
            return Ok(refused(message, &[]));
        }
        Err(error) => return Err(error.into()),
    };
    signals::accounts(&state).await;
    signals::scores(&state).await;
    let teams_view: Vec<Value> = imported.teams.iter().map(|(id, name)| json!({"id": id, "name": name})).collect();
    let users_view: Vec<Value> = imported
        .users
        .iter()
        .zip(&checked)
        .map(|((id, team_id), row)| {
            json!({"id": id, "name": row.name, "email": row.email, "team_id": team_id, "team": row.team})
        })
        .collect();
    let summary = json!({"users": users_view, "teams": teams_view});
    let target = if kind == Kind::Users { "users" } else { "teams" };
    audit::record(&state, &actor, "import", target, None, None, Some(&summary)).await;
    let mut data = summary;
    if let Some(Value::Array(listed)) = data.get_mut("users") {
        for (entry, (_, generated)) in listed.iter_mut().zip(&secrets) {
            entry["password"] = json!(generated);
        }
    }
    Ok(ok(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_mix_every_class_and_start_with_a_letter() {
        for _ in 0..50 {
            let password = generate_password();
            assert_eq!(password.chars().count(), 14);
            assert!(password.starts_with(|ch: char| ch.is_ascii_alphabetic()), "{password}");
            assert!(password.chars().any(|ch| ch.is_ascii_lowercase()));
            assert!(password.chars().any(|ch| ch.is_ascii_uppercase()));
            assert!(password.chars().any(|ch| ch.is_ascii_digit()));
            assert!(password.chars().any(|ch| SYMBOLS.contains(&(ch as u8))));
            assert!(!password.contains(['0', 'O', '1', 'l', 'I', ',', '"']));
        }
    }
}
