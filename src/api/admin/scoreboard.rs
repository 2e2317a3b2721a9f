//! Scoreboard (`/api/v1/scoreboard`, `/scoreboard/top/{n}`) and statistics
//! (`/api/v1/statistics/...`) as organisers see them: live (no freeze), hidden and banned
//! accounts left out. Statistics columns come from fixed lists, so no request text ever
//! reaches SQL; an unknown column is a 404.
//!
//! `GET /api/v1/statistics/progression/matrix` (CTFd 3.8; the spec names it without a shape,
//! so this is fctf's design, modelled on what CTFd's admin statistics page draws): who solved
//! or tried what, for the top of the board.
//!
//! ```json
//! {"challenges": [{"id": 3, "name": "Warmup", "category": "misc", "value": 100}],
//!  "scoreboard": [{"id": 7, "name": "team a", "place": 1, "score": 100, "bracket_id": null,
//!                  "solves": [3], "attempts": [5]}]}
//! ```
//!
//! `challenges` are the challenges that are not hidden, by category, then value, then id (the
//! matrix's columns). `scoreboard` is the top 100 of the live standings (teams in teams mode,
//! players otherwise; `?bracket_id=` keeps one bracket and numbers its places from 1), each with
//! the ids of the listed challenges it solved and of those it submitted to without solving
//! (`solves` and `attempts` never overlap).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::accounts::teams_mode;
use super::auth::Access;
use super::error::{AdminError, AdminResult};
use super::input::{QueryParams, TextPath};
use super::reply::{iso_z, ok};
use super::{Table, Verb};
use crate::api::ApiState;
use crate::domain::{ChallengeId, TeamId, UserId};
use crate::store::{ChallengeState, Standing};

pub(super) fn routes(table: Table, read: Access) -> Table {
    use Verb::Get;
    table
        .add(Get, "/api/v1/scoreboard", read, scoreboard)
        .add(Get, "/api/v1/scoreboard/top/{count}", read, top)
        .add(Get, "/api/v1/statistics/users", read, users)
        .add(Get, "/api/v1/statistics/users/{column}", read, users_by)
        .add(Get, "/api/v1/statistics/teams", read, teams)
        .add(Get, "/api/v1/statistics/challenges/solves", read, challenge_solves)
        .add(Get, "/api/v1/statistics/challenges/solves/percentages", read, challenge_percentages)
        .add(Get, "/api/v1/statistics/challenges/{column}", read, challenges_by)
        .add(Get, "/api/v1/statistics/submissions/{column}", read, submissions_by)
        .add(Get, "/api/v1/statistics/scores/distribution", read, distribution)
        .add(Get, "/api/v1/statistics/progression/matrix", read, progression_matrix)
}

/// Rows of the progression matrix.
const MATRIX_ROWS: usize = 100;

async fn bracket_names(state: &ApiState) -> AdminResult<HashMap<i64, String>> {
    Ok(state.store.list_brackets().await?.into_iter().map(|bracket| (bracket.id.get(), bracket.name)).collect())
}

async fn scoreboard(State(state): State<ApiState>) -> AdminResult<Response> {
    let teams = teams_mode(&state);
    let standings = state.store.standings(teams, None).await?;
    let brackets = bracket_names(&state).await?;
    let user_scores: HashMap<UserId, i64> = if teams {
        let mut scores = HashMap::new();
        for event in state.store.score_events(None).await? {
            if let Some(user) = event.user_id {
                *scores.entry(user).or_insert(0) += event.value;
            }
        }
        scores
    } else {
        HashMap::new()
    };
    let mut data = Vec::with_capacity(standings.len());
    for (index, standing) in standings.iter().enumerate() {
        let bracket_name = standing.bracket_id.and_then(|id| brackets.get(&id).cloned());
        let mut entry = json!({
            "pos": index + 1,
            "account_id": standing.account_id,
            "account_url": format!("/{}/{}", if teams { "teams" } else { "users" }, standing.account_id),
            "account_type": if teams { "team" } else { "user" },
            "oauth_id": standing.oauth_id,
            "name": standing.name,
            "score": standing.score,
            "bracket_id": standing.bracket_id,
            "bracket_name": bracket_name,
        });
        if teams {
            let mut members = Vec::new();
            for member in state.store.team_members(TeamId(standing.account_id)).await? {
                if member.hidden || member.banned {
                    continue;
                }
                members.push(json!({
                    "id": member.id, "oauth_id": member.oauth_id, "name": member.name,
                    "score": user_scores.get(&member.id).copied().unwrap_or(0),
                    "bracket_id": member.bracket_id,
                    "bracket_name": member.bracket_id.and_then(|id| brackets.get(&id.get()).cloned()),
                }));
            }
            entry["members"] = json!(members);
        }
        data.push(entry);
    }
    Ok(ok(data))
}

async fn top(State(state): State<ApiState>, TextPath(count): TextPath, query: QueryParams) -> AdminResult<Response> {
    let count: usize = count.trim().parse::<usize>().map_err(|_| AdminError::NotFound)?.clamp(1, 50);
    let bracket = query.int("bracket_id")?;
    let teams = teams_mode(&state);
    let standings: Vec<Standing> = state
        .store
        .standings(teams, None)
        .await?
        .into_iter()
        .filter(|standing| bracket.is_none() || standing.bracket_id == bracket)
        .take(count)
        .collect();
    let brackets = bracket_names(&state).await?;
    let events = state.store.score_events(None).await?;
    let mut data = Map::new();
    for (index, standing) in standings.iter().enumerate() {
        let solves: Vec<Value> = events
            .iter()
            .filter(|event| {
                if teams {
                    event.team_id == Some(TeamId(standing.account_id))
                } else {
                    event.user_id == Some(UserId(standing.account_id))
                }
            })
            .map(|event| {
                json!({
                    "challenge_id": event.challenge_id, "account_id": standing.account_id,
                    "team_id": event.team_id, "user_id": event.user_id, "value": event.value, "date": iso_z(event.date),
                })
            })
            .collect();
        data.insert(
            (index + 1).to_string(),
            json!({
                "id": standing.account_id,
                "account_url": format!("/{}/{}", if teams { "teams" } else { "users" }, standing.account_id),
                "name": standing.name,
                "score": standing.score,
                "bracket_id": standing.bracket_id,
                "bracket_name": standing.bracket_id.and_then(|id| brackets.get(&id).cloned()),
                "solves": solves,
            }),
        );
    }
    Ok(ok(Value::Object(data)))
}

fn grouped(rows: Vec<(Option<String>, i64)>) -> Value {
    let map: Map<String, Value> =
        rows.into_iter().map(|(key, count)| (key.unwrap_or_else(|| "null".into()), json!(count))).collect();
    Value::Object(map)
}

async fn users(State(state): State<ApiState>) -> AdminResult<Response> {
    let users = state.store.list_users(0, i64::MAX).await?;
    let players: Vec<_> = users.iter().filter(|user| user.role == crate::store::UserRole::User).collect();
    let confirmed = players.iter().filter(|user| user.verified).count();
    Ok(ok(json!({"registered": players.len(), "confirmed": confirmed})))
}

async fn users_by(State(state): State<ApiState>, TextPath(column): TextPath) -> AdminResult<Response> {
    let column: &'static str = match column.as_str() {
        "country" => "country",
        "affiliation" => "affiliation",
        "website" => "website",
        "language" => "language",
        "bracket_id" => "bracket_id",
        "team_id" => "team_id",
        "type" => "type",
        "hidden" => "hidden",
        "banned" => "banned",
        "verified" => "verified",
        _ => return Err(AdminError::NotFound),
    };
    Ok(ok(grouped(state.store.group_count("users", column, "1 = 1").await?)))
}

async fn teams(State(state): State<ApiState>) -> AdminResult<Response> {
    Ok(ok(json!({"registered": state.store.count_teams().await?})))
}

async fn challenge_solves(State(state): State<ApiState>) -> AdminResult<Response> {
    let counts = state.store.solve_counts().await?;
    let data: Vec<Value> = state
        .store
        .list_challenges()
        .await?
        .iter()
        .filter(|challenge| challenge.spec.state != ChallengeState::Hidden)
        .map(|challenge| {
            json!({"id": challenge.id, "name": challenge.spec.name, "solves": counts.get(&challenge.id).copied().unwrap_or(0)})
        })
        .collect();
    Ok(ok(data))
}

async fn challenge_percentages(State(state): State<ApiState>) -> AdminResult<Response> {
    let accounts = state.store.standings(teams_mode(&state), None).await?.len();
    let counts = state.store.solve_counts().await?;
    let mut data: Vec<(f64, Value)> = state
        .store
        .list_challenges()
        .await?
        .iter()
        .filter(|challenge| challenge.spec.state != ChallengeState::Hidden)
        .map(|challenge| {
            let solves = counts.get(&challenge.id).copied().unwrap_or(0);
            #[allow(clippy::cast_precision_loss)]
            let percentage = if accounts == 0 { 0.0 } else { solves as f64 / accounts as f64 };
            (percentage, json!({"id": challenge.id, "name": challenge.spec.name, "percentage": percentage}))
        })
        .collect();
    data.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(ok(data.into_iter().map(|(_, value)| value).collect::<Vec<_>>()))
}

fn challenge_column(name: &str) -> Option<&'static str> {
    Some(match name {
        "category" => "category",
        "type" => "type",
        "state" => "state",
        "value" => "value",
        "max_attempts" => "max_attempts",
        "logic" => "logic",
        "function" => "function",
        "difficulty" => "difficulty",
        "require_deploy" => "require_deploy",
        "connection_protocol" => "connection_protocol",
        _ => return None,
    })
}

async fn challenges_by(
    State(state): State<ApiState>,
    TextPath(column): TextPath,
    query: QueryParams,
) -> AdminResult<Response> {
    let column = challenge_column(&column).ok_or(AdminError::NotFound)?;
    match query.text("function").unwrap_or("count") {
        "count" => Ok(ok(grouped(state.store.group_count("challenges", column, "1 = 1").await?))),
        "sum" => {
            let target = match query.text("target").unwrap_or("value") {
                "value" => "value",
                "max_attempts" => "max_attempts",
                "difficulty" => "difficulty",
                _ => return Err(AdminError::field("target", "must be value, max_attempts or difficulty")),
            };
            Ok(ok(grouped(state.store.challenge_group_sum(column, target).await?)))
        }
        _ => Err(AdminError::field("function", "must be count or sum")),
    }
}

async fn submissions_by(State(state): State<ApiState>, TextPath(column): TextPath) -> AdminResult<Response> {
    let column: &'static str = match column.as_str() {
        "type" => "type",
        "challenge_id" => "challenge_id",
        "user_id" => "user_id",
        "team_id" => "team_id",
        "ip" => "ip",
        "provided" => "provided",
        _ => return Err(AdminError::NotFound),
    };
    Ok(ok(grouped(state.store.group_count("submissions", column, "1 = 1").await?)))
}

/// `{brackets: {upper_bound: count}}` over ten equal score ranges.
async fn distribution(State(state): State<ApiState>) -> AdminResult<Response> {
    let standings = state.store.standings(teams_mode(&state), None).await?;
    let top = standings.iter().map(|standing| standing.score).max().unwrap_or(0).max(0);
    let width = ((top + 9) / 10).max(1);
    let mut buckets: BTreeMap<i64, i64> = (1..=10).map(|step| (step * width, 0)).collect();
    for standing in &standings {
        let step = (standing.score.max(0) + width - 1) / width;
        let bound = step.clamp(1, 10) * width;
        *buckets.entry(bound).or_insert(0) += 1;
    }
    let map: Map<String, Value> = buckets.into_iter().map(|(bound, count)| (bound.to_string(), json!(count))).collect();
    Ok(ok(json!({"brackets": map})))
}

/// The progression matrix (see the module docs).
async fn progression_matrix(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let bracket = query.int("bracket_id")?;
    let teams = teams_mode(&state);
    let mut challenges = state.store.list_challenges().await?;
    challenges.retain(|challenge| challenge.spec.state != ChallengeState::Hidden);
    challenges.sort_by(|a, b| {
        (a.spec.category.as_str(), a.spec.value, a.id).cmp(&(b.spec.category.as_str(), b.spec.value, b.id))
    });
    let listed: BTreeSet<ChallengeId> = challenges.iter().map(|challenge| challenge.id).collect();
    let mut solved: HashMap<i64, BTreeSet<ChallengeId>> = HashMap::new();
    for event in state.store.score_events(None).await? {
        let owner = if teams { event.team_id.map(TeamId::get) } else { event.user_id.map(UserId::get) };
        if let (Some(owner), Some(challenge)) = (owner, event.challenge_id)
            && listed.contains(&challenge)
        {
            solved.entry(owner).or_default().insert(challenge);
        }
    }
    let mut tried: HashMap<i64, BTreeSet<ChallengeId>> = HashMap::new();
    for (owner, challenge) in state.store.submitted_pairs(teams).await? {
        if listed.contains(&challenge) && !solved.get(&owner).is_some_and(|set| set.contains(&challenge)) {
            tried.entry(owner).or_default().insert(challenge);
        }
    }
    let standings = state.store.standings(teams, None).await?;
    let rows: Vec<Value> = standings
        .iter()
        .filter(|standing| bracket.is_none() || standing.bracket_id == bracket)
        .take(MATRIX_ROWS)
        .enumerate()
        .map(|(index, standing)| {
            let ids = |sets: &HashMap<i64, BTreeSet<ChallengeId>>| -> Vec<ChallengeId> {
                sets.get(&standing.account_id).map(|set| set.iter().copied().collect()).unwrap_or_default()
            };
            json!({
                "id": standing.account_id,
                "name": standing.name,
                "place": index + 1,
                "score": standing.score,
                "bracket_id": standing.bracket_id,
                "solves": ids(&solved),
                "attempts": ids(&tried),
            })
        })
        .collect();
    let columns: Vec<Value> = challenges
        .iter()
        .map(|challenge| {
            json!({"id": challenge.id, "name": challenge.spec.name, "category": challenge.spec.category, "value": challenge.spec.value})
        })
        .collect();
    Ok(ok(json!({"challenges": columns, "scoreboard": rows})))
}
