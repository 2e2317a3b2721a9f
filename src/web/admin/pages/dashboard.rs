//! `/admin`: event state and countdown, counts, running instances, recent solves and first
//! bloods.

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;

use super::when;
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::web::admin::FlashQuery;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{Block, Cell, Page, Table, UiResult};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router.route("/admin", get(dashboard))
}

/// "2d 03:04:05" for a number of seconds.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    if days > 0 { format!("{days}d {clock}") } else { clock }
}

/// The event's state in words, with the countdown to its next milestone.
pub fn event_state(config: &crate::event::EventConfig, now: i64) -> String {
    let mut state = if config.paused {
        "Paused".to_owned()
    } else if config.start > 0 && now < config.start {
        format!("Not started (starts in {})", duration(config.start - now))
    } else if config.end > 0 && now >= config.end {
        "Ended".to_owned()
    } else if config.end > 0 {
        format!("Running (ends in {})", duration(config.end - now))
    } else {
        "Running (no end time)".to_owned()
    };
    if config.is_frozen(now) {
        state.push_str(", scoreboard frozen");
    }
    state
}

async fn dashboard(State(state): State<ApiState>, staff: Staff, Query(flash): Query<FlashQuery>) -> UiResult<Page> {
    staff.require(Access::ChallengeRead)?;
    let now = chrono::Utc::now().timestamp();
    let config = state.event.current();
    let mut page = Page::new(&staff, format!("Dashboard · {}", config.ctf_name), "/admin").flash(&flash);
    let challenges = state.store.list_challenges().await?;
    let names: HashMap<i64, String> =
        challenges.iter().map(|challenge| (challenge.id.get(), challenge.spec.name.clone())).collect();
    let mut stats =
        vec![("Event".to_owned(), event_state(&config, now)), ("Challenges".into(), challenges.len().to_string())];
    if !staff.can(Access::Read) {
        page.push(Block::Stats(stats));
        page.push(Block::Links(vec![("Challenges".into(), "/admin/challenges".into())]));
        return Ok(page);
    }
    let live = state.store.list_live_instances(None).await?;
    stats.push(("Users".into(), state.store.count_users().await?.to_string()));
    stats.push(("Teams".into(), state.store.count_teams().await?.to_string()));
    stats.push(("Running instances".into(), live.len().to_string()));
    let tickets = state.store.list_tickets(None).await?;
    let open = tickets.iter().filter(|ticket| ticket.status == "open").count();
    stats.push(("Open tickets".into(), open.to_string()));
    page.push(Block::Stats(stats));

    let mut running = Table::new("Running instances", &["Challenge", "Team", "State", "Started"]);
    for instance in live.iter().take(10) {
        running.row(vec![
            Cell::text(names.get(&instance.challenge_id.get()).cloned().unwrap_or_default()),
            Cell::text(instance.team_id.get()),
            Cell::text(instance.state.as_str()),
            Cell::text(when(Some(instance.created_at))),
        ]);
    }
    page.push(Block::Table(running));

    let events = state.store.score_events(None).await?;
    let team_names: HashMap<i64, String> =
        state.store.list_teams(0, i64::MAX).await?.into_iter().map(|team| (team.id.get(), team.name)).collect();
    let user_names: HashMap<i64, String> =
        state.store.list_users(0, i64::MAX).await?.into_iter().map(|user| (user.id.get(), user.name)).collect();
    let account = |event: &crate::store::ScoreEvent| match (event.team_id, event.user_id) {
        (Some(team), _) => team_names.get(&team.get()).cloned().unwrap_or_default(),
        (None, Some(user)) => user_names.get(&user.get()).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut solves: Vec<_> = events.iter().filter(|event| event.challenge_id.is_some()).collect();
    solves.sort_by_key(|event| event.date);
    let mut seen = HashSet::new();
    let mut bloods = Table::new("First bloods", &["Challenge", "Account", "Time"]);
    for event in &solves {
        if let Some(challenge) = event.challenge_id
            && seen.insert(challenge)
        {
            bloods.row(vec![
                Cell::text(names.get(&challenge.get()).cloned().unwrap_or_default()),
                Cell::text(account(event)),
                Cell::text(when(Some(event.date))),
            ]);
        }
    }
    let mut recent = Table::new("Recent solves", &["Challenge", "Account", "Time"]);
    for event in solves.iter().rev().take(10) {
        let challenge = event.challenge_id.map(|id| id.get()).unwrap_or_default();
        recent.row(vec![
            Cell::text(names.get(&challenge).cloned().unwrap_or_default()),
            Cell::text(account(event)),
            Cell::text(when(Some(event.date))),
        ]);
    }
    page.push(Block::Table(recent));
    page.push(Block::Table(bloods));
    Ok(page)
}
