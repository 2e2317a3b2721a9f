//! `/admin/instances`: running instances (filter, stop one / selected / all), logs with
//! auto-refresh, and the instance history with CSV export. Talks to the deployment center
//! through `ApiState::center` to read; stops go through the admin API (one audit trail).

use std::collections::HashMap;

use axum::extract::{Extension, Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Fields, when};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::control::{ListRequest, LogsRequest};
use crate::domain::{ChallengeId, InstanceId, TeamId};
use crate::web::admin::FlashQuery;
use crate::web::admin::csv::csv_download;
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{
    Block, Bulk, Button, Cell, Field, Form as UiForm, Page, Row, Table, UiError, UiResult, redirect_with,
};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/admin/instances", get(monitor))
        .route("/admin/instances/stop", post(stop))
        .route("/admin/instances/stop-all", post(stop_all))
        .route("/admin/instances/{id}/logs", get(logs))
        .route("/admin/instances/history", get(history))
        .route("/admin/instances/history.csv", get(history_csv))
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    team: Option<String>,
    challenge: Option<String>,
    ok: Option<String>,
    err: Option<String>,
}

impl Filter {
    fn team(&self) -> Option<i64> {
        self.team.as_deref().and_then(|text| text.trim().parse().ok())
    }
    fn challenge(&self) -> Option<i64> {
        self.challenge.as_deref().and_then(|text| text.trim().parse().ok())
    }
}

async fn names(state: &ApiState) -> Result<(HashMap<i64, String>, HashMap<i64, String>), UiError> {
    let challenges = state.store.list_challenges().await?;
    let teams = state.store.list_teams(0, i64::MAX).await?;
    Ok((
        challenges.into_iter().map(|challenge| (challenge.id.get(), challenge.spec.name)).collect(),
        teams.into_iter().map(|team| (team.id.get(), team.name)).collect(),
    ))
}

fn team_label(teams: &HashMap<i64, String>, id: TeamId) -> String {
    match id {
        TeamId::PREVIEW => "Preview".into(),
        TeamId::SHARED => "Shared".into(),
        other => teams.get(&other.get()).cloned().unwrap_or_else(|| format!("team {}", other.get())),
    }
}

fn filter_form(action: &str, filter: &Filter) -> UiForm {
    UiForm::filter(action)
        .field(Field::new("number", "team", "Team id", filter.team.clone().unwrap_or_default()))
        .field(Field::new("number", "challenge", "Challenge id", filter.challenge.clone().unwrap_or_default()))
}

async fn monitor(State(state): State<ApiState>, staff: Staff, Query(filter): Query<Filter>) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let flash = FlashQuery { ok: filter.ok.clone(), err: filter.err.clone() };
    let mut page = Page::new(&staff, "Instances", "/admin/instances").flash(&flash);
    let listed =
        state.center.list(ListRequest { team_id: filter.team().map(TeamId) }).await.map_err(UiError::internal)?;
    let (challenges, teams) = names(&state).await?;
    page.push(Block::Form(filter_form("/admin/instances", &filter)));
    page.push(Block::Links(vec![("Instance history".into(), "/admin/instances/history".into())]));
    let write = staff.can(Access::Write);
    let mut table = Table::new("Running instances", &["Id", "Challenge", "Team", "State", "Token", "Expires", ""]);
    if write {
        table.bulk = Some(Bulk {
            id: "bulk-instances".into(),
            action: "/admin/instances/stop".into(),
            buttons: vec![("Stop selected".into(), "stop".into(), true)],
        });
    }
    for instance in listed.instances {
        if filter.challenge().is_some_and(|wanted| wanted != instance.challenge_id.get()) {
            continue;
        }
        let key = format!("{}:{}", instance.challenge_id.get(), instance.team_id.get());
        let mut buttons = Vec::new();
        if write {
            buttons.push(Button::new("Stop", "/admin/instances/stop", &[("ids", &key)]).danger());
        }
        let challenge = challenges.get(&instance.challenge_id.get()).cloned().unwrap_or_default();
        table.rows.push(Row {
            cells: vec![
                Cell::link(instance.instance_id.get(), format!("/admin/instances/{}/logs", instance.instance_id.get())),
                Cell::text(challenge),
                Cell::text(team_label(&teams, instance.team_id)),
                Cell::text(&instance.state),
                Cell::code(instance.token.clone().unwrap_or_default()),
                Cell::text(when(instance.expires_at)),
                Cell::buttons(buttons),
            ],
            select: write.then_some(key),
        });
    }
    page.push(Block::Table(table));
    if write {
        page.push(Block::Buttons(vec![Button::new("Stop all instances", "/admin/instances/stop-all", &[]).danger()]));
    }
    Ok(page)
}

/// Stops each selected `challenge:team` pair through the admin API (which audits each stop).
async fn stop(Extension(api): Extension<AdminApi>, staff: Staff, Form(fields): Form<Fields>) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let (mut stopped, mut failed) = (0, Vec::new());
    for key in fields.all("ids") {
        let Some((challenge, team)) = key.split_once(':') else { continue };
        let (Ok(challenge), Ok(team)) = (challenge.parse::<i64>(), team.parse::<i64>()) else { continue };
        let body = json!({"challenge_id": challenge, "team_id": team});
        let answer = api.json(&staff, Method::POST, "/api/v1/instances/stop", &body).await?;
        if answer.is_success() {
            stopped += 1;
        } else {
            failed.push(format!("{key}: {}", answer.message()));
        }
    }
    let outcome = if failed.is_empty() {
        Ok(format!("Stopped {stopped} instance(s)"))
    } else {
        Err(format!("Stopped {stopped}; failed: {}", failed.join("; ")))
    };
    Ok(redirect_with("/admin/instances", outcome))
}

async fn stop_all(Extension(api): Extension<AdminApi>, staff: Staff) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let answer = api.json(&staff, Method::POST, "/api/v1/instances/stop-all", &json!({"confirm": true})).await?;
    let done = answer.json.get("data").cloned().unwrap_or(Value::Null);
    let count = |key: &str| done.get(key).and_then(Value::as_u64).unwrap_or(0);
    let outcome = match (answer.is_success(), count("failed")) {
        (true, 0) => Ok(format!("Stopped {} instance(s)", count("stopped"))),
        (true, failed) => Err(format!("Stopped {}, {failed} failed", count("stopped"))),
        (false, _) => Err(answer.message()),
    };
    Ok(redirect_with("/admin/instances", outcome))
}

async fn logs(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let instance = state.store.get_instance(InstanceId(id)).await?;
    let mut page = Page::new(&staff, format!("Logs of instance {id}"), "/admin/instances").flash(&flash);
    let request = LogsRequest { challenge_id: instance.challenge_id, team_id: instance.team_id, tail_lines: 500 };
    let text = match state.center.logs(request).await {
        Ok(outcome) => outcome.logs,
        Err(error) => format!("(no logs: {error})"),
    };
    page.push(Block::Stats(vec![
        ("State".into(), instance.state.as_str().to_owned()),
        ("Started".into(), when(Some(instance.created_at))),
    ]));
    page.push(Block::Links(vec![
        ("Refresh".into(), format!("/admin/instances/{id}/logs")),
        ("Back to instances".into(), "/admin/instances".into()),
    ]));
    page.push(Block::Text("The log refreshes every 5 seconds while this page is open.".into()));
    page.push(Block::Pre { id: "logs".into(), text });
    page.refresh = Some(5);
    Ok(page)
}

async fn history_rows(state: &ApiState, filter: &Filter) -> Result<Vec<Vec<String>>, UiError> {
    let instances =
        state.store.list_instances(filter.team().map(TeamId), filter.challenge().map(ChallengeId), 0, 5000).await?;
    let (challenges, teams) = names(state).await?;
    Ok(instances
        .iter()
        .map(|instance| {
            vec![
                instance.id.get().to_string(),
                challenges.get(&instance.challenge_id.get()).cloned().unwrap_or_default(),
                team_label(&teams, instance.team_id),
                instance.state.as_str().to_owned(),
                when(Some(instance.created_at)),
                when(Some(instance.updated_at)),
                instance.reason.clone().unwrap_or_default(),
            ]
        })
        .collect())
}

const HISTORY_COLUMNS: &[&str] = &["Id", "Challenge", "Team", "State", "Started", "Last change", "Reason"];

async fn history(State(state): State<ApiState>, staff: Staff, Query(filter): Query<Filter>) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let mut page = Page::new(&staff, "Instance history", "/admin/instances");
    page.push(Block::Form(filter_form("/admin/instances/history", &filter)));
    let query = format!(
        "?team={}&challenge={}",
        super::encode(filter.team.as_deref().unwrap_or("")),
        super::encode(filter.challenge.as_deref().unwrap_or(""))
    );
    page.push(Block::Links(vec![("Export CSV".into(), format!("/admin/instances/history.csv{query}"))]));
    let mut table = Table::new("Instances, newest first", HISTORY_COLUMNS);
    for row in history_rows(&state, &filter).await?.into_iter().take(500) {
        table.row(row.into_iter().map(Cell::text).collect());
    }
    page.push(Block::Table(table));
    Ok(page)
}

async fn history_csv(State(state): State<ApiState>, staff: Staff, Query(filter): Query<Filter>) -> UiResult<Response> {
    staff.require(Access::Read)?;
    Ok(csv_download("instance-history.csv", HISTORY_COLUMNS, &history_rows(&state, &filter).await?))
}
