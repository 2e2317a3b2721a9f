//! Standings: ranking, freeze and graph data (contract §3.8), computed in memory from the
//! store's scoring snapshot and cached per process.
//!
//! Ranking (S1): accounts are teams (teams mode) or players (users mode); hidden and banned
//! accounts are left out; score = Σ values of solved challenges + Σ awards; order by score
//! descending, then the time of the last scoring event ascending (accounts with none first),
//! then the last solve id, then the account id. Only non-zero values move `last_*`.
//!
//! Freeze: with `freeze > 0` the public board ignores solves and awards at or after the freeze
//! and values every challenge as it stood at the freeze: a decaying challenge is worth
//! `dynamic_value(...)` of the solves counted before the freeze (solvers that are hidden or
//! banned, or whose team is, do not count), a static one its current value. Before the freeze
//! instant this is the live board.
//!
//! Cache: one [`Board`] (the snapshot and both rankings) per user mode and freeze setting, fresh
//! for [`BOARD_TTL`], refreshed in the background after that, and dropped by
//! `signals::scores_changed` in every process (see [`board`]). A generation counter keeps a
//! board computed before an invalidation from being stored after it, and one computation runs
//! at a time per process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::context::Contestant;
use super::error::ApiError;
use crate::api::ApiState;
use crate::domain::{BracketId, ChallengeId, TeamId, UserId};
use crate::event::UserMode;
use crate::store::{ScoreData, dynamic_value};

/// How long a computed board is reused.
pub const BOARD_TTL: Duration = Duration::from_secs(2);

/// One scoring event of an account (graph data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreEvent {
    /// The solved challenge (`None` for an award).
    pub challenge_id: Option<ChallengeId>,
    /// The ranked account (team or user id).
    pub account_id: i64,
    /// The team concerned.
    pub team_id: Option<TeamId>,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// Points (awards may be negative).
    pub value: i64,
    /// Unix seconds.
    pub date: i64,
    /// Solve or award id (ordering of equal dates).
    pub id: i64,
}

/// One ranked account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Team or user id.
    pub account_id: i64,
    /// Display name.
    pub name: String,
    /// Total points.
    pub score: i64,
    /// Bracket.
    pub bracket_id: Option<BracketId>,
    /// Bracket name (teams mode).
    pub bracket_name: Option<String>,
    /// Highest scoring solve id.
    pub last_id: i64,
    /// Time of the last scoring event.
    pub last_date: Option<i64>,
    /// Every solve and award, oldest first.
    pub events: Vec<ScoreEvent>,
}

/// Ranked accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranking {
    /// In rank order.
    pub entries: Vec<Standing>,
}

impl Ranking {
    /// The accounts of one bracket (or all), in rank order.
    pub fn in_bracket(&self, bracket: Option<BracketId>) -> impl Iterator<Item = &Standing> {
        self.entries.iter().filter(move |entry| bracket.is_none() || entry.bracket_id == bracket)
    }
}

/// Rendered scoreboard responses by `(bracket, count)`; cleared when it grows beyond
/// [`RENDERED_CAPACITY`].
type Rendered = HashMap<(Option<BracketId>, usize), Arc<[u8]>>;

/// Distinct rendered responses kept per board.
const RENDERED_CAPACITY: usize = 64;

/// A cached board: the snapshot it came from, its rankings and the responses rendered from it.
#[derive(Debug)]
pub struct Board {
    /// The store snapshot.
    pub data: ScoreData,
    /// The ranking with live values (profile pages, hint affordability).
    pub live: Ranking,
    /// The public ranking (freeze applied).
    pub public: Ranking,
    rendered: Mutex<Rendered>,
}

impl Board {
    /// The response body for `(bracket, count)`, rendered once per board by `render`.
    pub fn rendered(&self, bracket: Option<BracketId>, count: usize, render: impl FnOnce() -> Vec<u8>) -> Arc<[u8]> {
        let key = (bracket, count);
        if let Some(body) = self.rendered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&key) {
            return body.clone();
        }
        let body: Arc<[u8]> = render().into();
        let mut rendered = self.rendered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if rendered.len() >= RENDERED_CAPACITY {
            rendered.clear();
        }
        rendered.insert(key, body.clone());
        body
    }
}

/// The value of each challenge, live or as it stood at `freeze`.
fn challenge_values(data: &ScoreData, freeze: Option<i64>) -> HashMap<ChallengeId, i64> {
    let mut values: HashMap<ChallengeId, i64> =
        data.challenges.iter().map(|challenge| (challenge.id, challenge.value)).collect();
    let Some(freeze) = freeze else { return values };
    let excluded_users: std::collections::HashSet<UserId> =
        data.users.iter().filter(|user| user.hidden || user.banned).map(|user| user.id).collect();
    let excluded_teams: std::collections::HashSet<TeamId> =
        data.teams.iter().filter(|team| team.hidden || team.banned).map(|team| team.id).collect();
    let mut counted: HashMap<ChallengeId, i64> = HashMap::new();
    for solve in &data.solves {
        if solve.date >= freeze
            || excluded_users.contains(&solve.user_id)
            || solve.team_id.is_some_and(|team| excluded_teams.contains(&team))
        {
            continue;
        }
        *counted.entry(solve.challenge_id).or_default() += 1;
    }
    for challenge in &data.challenges {
        let Some(initial) = challenge.initial else { continue };
        let solves = counted.get(&challenge.id).copied().unwrap_or(0);
        if let Some(value) = dynamic_value(
            initial,
            challenge.minimum.unwrap_or(0),
            challenge.decay.unwrap_or(0),
            &challenge.function,
            solves,
        ) {
            values.insert(challenge.id, value);
        }
    }
    values
}

/// Ranks the accounts of `mode`, with the freeze applied when given.
pub fn rank(data: &ScoreData, mode: UserMode, freeze: Option<i64>) -> Ranking {
    let values = challenge_values(data, freeze);
    let bracket_names: HashMap<BracketId, &str> = data.brackets.iter().map(|(id, name)| (*id, name.as_str())).collect();
    let mut standings: Vec<Standing> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    match mode {
        UserMode::Teams => {
            for team in data.teams.iter().filter(|team| !team.hidden && !team.banned) {
                index.insert(team.id.get(), standings.len());
                standings.push(Standing {
                    account_id: team.id.get(),
                    name: team.name.clone(),
                    score: 0,
                    bracket_id: team.bracket_id,
                    bracket_name: team.bracket_id.and_then(|id| bracket_names.get(&id)).map(|name| (*name).to_owned()),
                    last_id: 0,
                    last_date: None,
                    events: Vec::new(),
                });
            }
        }
        UserMode::Users => {
            for user in data.users.iter().filter(|user| !user.hidden && !user.banned && user.role == "user") {
                index.insert(user.id.get(), standings.len());
                standings.push(Standing {
                    account_id: user.id.get(),
                    name: user.name.clone(),
                    score: 0,
                    bracket_id: user.bracket_id,
                    bracket_name: None,
                    last_id: 0,
                    last_date: None,
                    events: Vec::new(),
                });
            }
        }
    }
    let within_freeze = |date: i64| freeze.is_none_or(|freeze| date < freeze);
    for solve in data.solves.iter().filter(|solve| within_freeze(solve.date)) {
        let account = match mode {
            UserMode::Teams => match solve.team_id {
                Some(team) => team.get(),
                None => continue,
            },
            UserMode::Users => solve.user_id.get(),
        };
        let Some(&position) = index.get(&account) else { continue };
        let value = values.get(&solve.challenge_id).copied().unwrap_or(0);
        let standing = &mut standings[position];
        if value != 0 {
            standing.score += value;
            standing.last_id = standing.last_id.max(solve.id);
            standing.last_date = Some(standing.last_date.map_or(solve.date, |last| last.max(solve.date)));
        }
        standing.events.push(ScoreEvent {
            challenge_id: Some(solve.challenge_id),
            account_id: account,
            team_id: solve.team_id,
            user_id: Some(solve.user_id),
            value,
            date: solve.date,
            id: solve.id,
        });
    }
    for award in data.awards.iter().filter(|award| within_freeze(award.date)) {
        let account = match mode {
            UserMode::Teams => award.team_id.map(TeamId::get),
            UserMode::Users => award.user_id.map(UserId::get),
        };
        let Some(account) = account else { continue };
        let Some(&position) = index.get(&account) else { continue };
        let standing = &mut standings[position];
        if award.value != 0 {
            standing.score += award.value;
            standing.last_date = Some(standing.last_date.map_or(award.date, |last| last.max(award.date)));
        }
        standing.events.push(ScoreEvent {
            challenge_id: None,
            account_id: account,
            team_id: award.team_id,
            user_id: award.user_id,
            value: award.value,
            date: award.date,
            id: award.id,
        });
    }
    for standing in &mut standings {
        standing.events.sort_by_key(|event| (event.date, event.challenge_id.is_none(), event.id));
    }
    standings.sort_by(|left, right| {
        right
            .score
            .cmp(&left.score)
            .then_with(|| left.last_date.cmp(&right.last_date))
            .then_with(|| left.last_id.cmp(&right.last_id))
            .then_with(|| left.account_id.cmp(&right.account_id))
    });
    Ranking { entries: standings }
}

/// Boards by `(teams mode, freeze)`, with the time they were computed.
type Boards = HashMap<(bool, i64), (Instant, Arc<Board>)>;

/// The per-process board cache.
#[derive(Debug, Default)]
pub struct StandingsCache {
    boards: Mutex<Boards>,
    generation: AtomicU64,
    computing: tokio::sync::Mutex<()>,
    refreshing: std::sync::atomic::AtomicBool,
}

impl StandingsCache {
    /// Drops every cached board: the next read computes a fresh one.
    pub fn invalidate(&self) {
        let mut boards = self.boards.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        boards.clear();
    }

    /// The cached board and whether it is still fresh.
    fn cached(&self, key: (bool, i64)) -> Option<(Arc<Board>, bool)> {
        let boards = self.boards.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        boards.get(&key).map(|(stored, board)| (board.clone(), stored.elapsed() < BOARD_TTL))
    }

    /// Computes a board from a fresh store snapshot and stores it unless an invalidation
    /// happened meanwhile.
    async fn compute(&self, state: &ApiState, key: (bool, i64)) -> Result<Arc<Board>, ApiError> {
        let config = state.event.current();
        let generation = self.generation.load(Ordering::SeqCst);
        let data = state.store.score_data().await?;
        let freeze = (config.freeze > 0).then_some(config.freeze);
        let live = rank(&data, config.user_mode, None);
        let public = if freeze.is_some() { rank(&data, config.user_mode, freeze) } else { live.clone() };
        let board = Arc::new(Board { data, live, public, rendered: Mutex::default() });
        let mut boards = self.boards.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            boards.insert(key, (Instant::now(), board.clone()));
        }
        Ok(board)
    }
}

/// The current board for the event's mode and freeze.
///
/// A fresh board is returned as is. An expired one (no change signalled, only the TTL ran out)
/// is returned at once while one background task recomputes it, so no request waits on a
/// periodic recomputation. After an invalidation there is no board: the first request
/// computes it (one computation at a time; concurrent requests wait and share it), so a change
/// is visible to the next read.
pub async fn board(state: &ApiState, context: &Arc<Contestant>) -> Result<Arc<Board>, ApiError> {
    let config = state.event.current();
    let key = (config.user_mode == UserMode::Teams, config.freeze);
    let cache = &context.standings;
    match cache.cached(key) {
        Some((board, true)) => return Ok(board),
        Some((board, false)) => {
            if !cache.refreshing.swap(true, Ordering::SeqCst) {
                let state = state.clone();
                let context = context.clone();
                tokio::spawn(async move {
                    let standings = &context.standings;
                    let _computing = standings.computing.lock().await;
                    if let Err(error) = standings.compute(&state, key).await {
                        tracing::warn!(status = %error.status(), "background scoreboard refresh failed");
                    }
                    standings.refreshing.store(false, Ordering::SeqCst);
                });
            }
            return Ok(board);
        }
        None => {}
    }
    let _computing = cache.computing.lock().await;
    if let Some((board, _)) = cache.cached(key) {
        return Ok(board);
    }
    cache.compute(state, key).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AwardRow, ScoredChallenge, ScoredTeam, ScoredUser, SolveRow};

    fn challenge(id: i64, value: i64, decay: Option<(i64, i64, i64)>) -> ScoredChallenge {
        ScoredChallenge {
            id: ChallengeId(id),
            name: format!("c{id}"),
            category: "web".into(),
            state: "visible".into(),
            value,
            initial: decay.map(|(initial, _, _)| initial),
            minimum: decay.map(|(_, minimum, _)| minimum),
            decay: decay.map(|(_, _, decay)| decay),
            function: if decay.is_some() { "linear".into() } else { "static".into() },
        }
    }

    fn team(id: i64) -> ScoredTeam {
        ScoredTeam { id: TeamId(id), name: format!("t{id}"), bracket_id: None, hidden: false, banned: false }
    }

    fn user(id: i64, team: i64) -> ScoredUser {
        ScoredUser {
            id: UserId(id),
            name: format!("u{id}"),
            email: None,
            role: "user".into(),
            team_id: Some(TeamId(team)),
            bracket_id: None,
            hidden: false,
            banned: false,
        }
    }

    fn solve(id: i64, challenge: i64, user: i64, team: i64, date: i64) -> SolveRow {
        SolveRow { id, challenge_id: ChallengeId(challenge), user_id: UserId(user), team_id: Some(TeamId(team)), date }
    }

    fn sample() -> ScoreData {
        ScoreData {
            challenges: vec![challenge(1, 100, None), challenge(2, 80, Some((100, 10, 20)))],
            solves: vec![
                solve(1, 1, 11, 1, 100),
                solve(2, 1, 21, 2, 110),
                solve(3, 2, 21, 2, 120),
                solve(4, 2, 31, 3, 200),
            ],
            awards: vec![AwardRow {
                id: 1,
                user_id: Some(UserId(11)),
                team_id: Some(TeamId(1)),
                value: -10,
                date: 150,
            }],
            users: vec![user(11, 1), user(21, 2), user(31, 3)],
            teams: vec![team(1), team(2), team(3), team(4)],
            brackets: vec![],
        }
    }

    #[test]
    fn ranks_by_score_then_earliest_last_event() {
        let ranking = rank(&sample(), UserMode::Teams, None);
        let order: Vec<(i64, i64)> = ranking.entries.iter().map(|entry| (entry.account_id, entry.score)).collect();
        assert_eq!(order, vec![(2, 180), (1, 90), (3, 80), (4, 0)]);
        let team_one = &ranking.entries[1];
        assert_eq!(team_one.events.len(), 2);
        assert_eq!(team_one.events[1].value, -10);
        assert_eq!(team_one.last_date, Some(150));
    }

    #[test]
    fn ties_break_on_the_earlier_last_event() {
        let mut data = sample();
        data.awards.clear();
        data.solves = vec![solve(1, 1, 11, 1, 300), solve(2, 1, 21, 2, 100)];
        let ranking = rank(&data, UserMode::Teams, None);
        assert_eq!(ranking.entries[0].account_id, 2);
        assert_eq!(ranking.entries[1].account_id, 1);
    }

    #[test]
    fn freeze_drops_late_events_and_uses_values_at_the_freeze() {
        let ranking = rank(&sample(), UserMode::Teams, Some(160));
        let scores: HashMap<i64, i64> = ranking.entries.iter().map(|entry| (entry.account_id, entry.score)).collect();
        // Challenge 2 had one counted solve before the freeze: worth its initial 100.
        assert_eq!(scores[&2], 200);
        assert_eq!(scores[&3], 0, "solved after the freeze");
        assert_eq!(scores[&1], 90);
    }

    #[test]
    fn hidden_and_banned_accounts_are_not_ranked() {
        let mut data = sample();
        data.teams[1].hidden = true;
        data.teams[2].banned = true;
        let ranking = rank(&data, UserMode::Teams, None);
        let ids: Vec<i64> = ranking.entries.iter().map(|entry| entry.account_id).collect();
        assert_eq!(ids, vec![1, 4]);
    }

    #[test]
    fn users_mode_ranks_players() {
        let mut data = sample();
        for solve in &mut data.solves {
            solve.team_id = None;
        }
        data.users.push(ScoredUser { role: "admin".into(), ..user(99, 1) });
        let ranking = rank(&data, UserMode::Users, None);
        let ids: Vec<i64> = ranking.entries.iter().map(|entry| entry.account_id).collect();
        assert_eq!(ids, vec![21, 11, 31], "admins are not ranked");
    }
}
