//! Challenge instances through the deployment center (fctf additions to the CTFd API): every
//! action goes through [`ApiState::center`], the one client handle to the center role (in
//! process when center runs here, signed HTTP otherwise), never to the store or the runtime
//! directly, so the instance state machine, the team slots and the audit of stops stay
//! center's.
//!
//! | route | access | what |
//! |---|---|---|
//! | `GET /api/v1/instances?team_id=&challenge_id=` | read | live instances (with their gateway tokens) |
//! | `POST /api/v1/instances/stop` `{challenge_id, team_id}` | write | stop one team's instance |
//! | `POST /api/v1/instances/stop-all` `{confirm: true}` | write | stop every instance |
//! | `GET /api/v1/instances/logs?challenge_id=&team_id=&tail=` | read | last lines of output |
//! | `GET /api/v1/challenges/{id}/instances` | challenge read | the preview and shared instances |
//! | `POST /api/v1/challenges/{id}/instances` `{target}` | challenge write | start one |
//! | `DELETE /api/v1/challenges/{id}/instances?target=` | challenge write | stop one |
//! | `GET /api/v1/challenges/{id}/instances/logs?target=&tail=` | challenge read | its output |
//!
//! `target` is `preview` (team −1, the default) or `shared` (team −2, the one instance every
//! team reaches when the challenge has `shared_instance`). Players' own instances start only
//! through the contestant API, which reserves the team's slot first, so staff start preview
//! and shared instances only. Decisions: stop-all needs `{"confirm": true}` (one stray request
//! must not end every instance of an event); `tail` defaults to 200 lines and is capped at
//! 5000; center's refusals keep their status and message (404 no live instance, 409 already
//! stopping, 429 queue full, 503 center unreachable).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams};
use super::reply::ok;
use super::{Table, Verb, audit, challenges};
use crate::api::ApiState;
use crate::control::{
    InstanceView, ListRequest, LogsRequest, StartRequest, StatusRequest, StopAllRequest, StopReason, StopRequest,
};
use crate::domain::{ChallengeId, TeamId};
use crate::store::Challenge;

pub(super) fn routes(
    table: Table,
    read: Access,
    write: Access,
    challenge_read: Access,
    challenge_write: Access,
) -> Table {
    use Verb::{Delete, Get, Post};
    table
        .add(Get, "/api/v1/instances", read, list)
        .add(Post, "/api/v1/instances/stop", write, stop)
        .add(Post, "/api/v1/instances/stop-all", write, stop_all)
        .add(Get, "/api/v1/instances/logs", read, logs)
        .add(Get, "/api/v1/challenges/{id}/instances", challenge_read, challenge_instances)
        .add(Post, "/api/v1/challenges/{id}/instances", challenge_write, start_challenge_instance)
        .add(Delete, "/api/v1/challenges/{id}/instances", challenge_write, stop_challenge_instance)
        .add(Get, "/api/v1/challenges/{id}/instances/logs", challenge_read, challenge_instance_logs)
}

const DEFAULT_TAIL: usize = 200;
const MAX_TAIL: usize = 5000;

/// An instance as the admin API shows it: center's view plus the FCTF status string.
fn view(instance: &InstanceView) -> Value {
    let mut data = json!(instance);
    data["status"] = json!(instance.fctf_status());
    data
}

/// The view written to the audit log: never the gateway token.
fn audited(view: &Value) -> Value {
    let mut entry = view.clone();
    if let Value::Object(map) = &mut entry {
        map.remove("token");
    }
    entry
}

fn tail_of(query: &QueryParams) -> AdminResult<usize> {
    match query.int("tail")? {
        None => Ok(DEFAULT_TAIL),
        Some(lines) if (1..=i64::try_from(MAX_TAIL).unwrap_or(i64::MAX)).contains(&lines) => {
            Ok(usize::try_from(lines).unwrap_or(DEFAULT_TAIL))
        }
        Some(_) => Err(AdminError::field("tail", format!("must be between 1 and {MAX_TAIL}"))),
    }
}

/// `preview` (default) or `shared`, from the query or the body.
fn target_team(text: Option<&str>) -> AdminResult<TeamId> {
    match text.map(str::trim) {
        None | Some("" | "preview") => Ok(TeamId::PREVIEW),
        Some("shared") => Ok(TeamId::SHARED),
        Some(_) => Err(AdminError::field("target", "must be preview or shared")),
    }
}

/// The challenge, which must be deployable.
async fn deployable(state: &ApiState, id: i64) -> AdminResult<Challenge> {
    let challenge = challenges::load(&state.store, id).await?;
    if !challenge.spec.deploy.require_deploy {
        return Err(AdminError::field("challenge_id", "this challenge has no instances (require_deploy is off)"));
    }
    Ok(challenge)
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let team = query.int("team_id")?.map(TeamId);
    let challenge = query.int("challenge_id")?.map(ChallengeId);
    let listed = state.center.list(ListRequest { team_id: team }).await?;
    let data: Vec<Value> = listed
        .instances
        .iter()
        .filter(|instance| challenge.is_none_or(|wanted| instance.challenge_id == wanted))
        .map(view)
        .collect();
    Ok(ok(data))
}

/// Reads `{challenge_id, team_id}` (team ids: a team, −1 preview, −2 shared).
fn instance_key(body: &serde_json::Map<String, Value>) -> AdminResult<(ChallengeId, TeamId)> {
    let mut fields = Fields::new(body);
    let challenge = fields.int("challenge_id", 1, i64::MAX);
    let team = fields.int("team_id", -2, i64::MAX);
    if matches!(team, Opt::Set(0)) {
        fields.error("team_id", "must be a team id, -1 (preview) or -2 (shared)");
    }
    for (key, value) in [("challenge_id", &challenge), ("team_id", &team)] {
        if !matches!(value, Opt::Set(_)) && !fields.has_errors() {
            fields.error(key, "is required");
        }
    }
    fields.finish()?;
    match (challenge, team) {
        (Opt::Set(challenge), Opt::Set(team)) => Ok((ChallengeId(challenge), TeamId(team))),
        _ => Err(AdminError::field("challenge_id", "is required")),
    }
}

async fn stop_instance(
    state: &ApiState,
    actor: &Actor,
    challenge_id: ChallengeId,
    team_id: TeamId,
) -> AdminResult<Value> {
    let request = StopRequest { challenge_id, team_id, user_id: Some(actor.user_id), reason: StopReason::Admin };
    let stopped = state.center.stop(request).await?;
    let after = view(&stopped);
    let entry = audited(&after);
    audit::record(state, actor, "stop", "instance", Some(stopped.instance_id.to_string()), None, Some(&entry)).await;
    Ok(after)
}

async fn stop(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let (challenge_id, team_id) = instance_key(&body)?;
    Ok(ok(stop_instance(&state, &actor, challenge_id, team_id).await?))
}

async fn stop_all(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let confirmed = fields.bool("confirm");
    fields.finish()?;
    if confirmed != Opt::Set(true) {
        return Err(AdminError::field("confirm", "send {\"confirm\": true} to stop every instance of the event"));
    }
    let outcome = state.center.stop_all(StopAllRequest { user_id: actor.user_id }).await?;
    let after = json!(outcome);
    audit::record(&state, &actor, "stop_all", "instance", None, None, Some(&after)).await;
    Ok(ok(after))
}

async fn logs(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let challenge = query.int("challenge_id")?.ok_or_else(|| AdminError::field("challenge_id", "is required"))?;
    let team = query.int("team_id")?.ok_or_else(|| AdminError::field("team_id", "is required"))?;
    let request =
        LogsRequest { challenge_id: ChallengeId(challenge), team_id: TeamId(team), tail_lines: tail_of(&query)? };
    let outcome = state.center.logs(request).await?;
    Ok(ok(json!(outcome)))
}

async fn challenge_instances(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let challenge = challenges::load(&state.store, id).await?;
    let mut data = serde_json::Map::new();
    for (target, team) in [("preview", TeamId::PREVIEW), ("shared", TeamId::SHARED)] {
        let status = state.center.status(StatusRequest { challenge_id: challenge.id, team_id: team }).await?;
        data.insert(target.to_owned(), status.instance.as_ref().map(view).unwrap_or(Value::Null));
    }
    Ok(ok(Value::Object(data)))
}

async fn start_challenge_instance(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let target = fields.choice("target", &["preview", "shared"]).set();
    fields.finish()?;
    let team = target_team(target.as_deref())?;
    let challenge = deployable(&state, id).await?;
    let request = StartRequest { challenge_id: challenge.id, team_id: team, user_id: Some(actor.user_id) };
    let started = state.center.start(request).await?;
    let after = view(&started.instance);
    if started.created {
        let target_id = Some(started.instance.instance_id.to_string());
        audit::record(&state, &actor, "start", "instance", target_id, None, Some(&audited(&after))).await;
    }
    Ok(ok(json!({"created": started.created, "instance": after})))
}

async fn stop_challenge_instance(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    query: QueryParams,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let from_body = body.get("target").and_then(Value::as_str);
    let team = target_team(query.text("target").or(from_body))?;
    let challenge = challenges::load(&state.store, id).await?;
    Ok(ok(stop_instance(&state, &actor, challenge.id, team).await?))
}

async fn challenge_instance_logs(
    State(state): State<ApiState>,
    IdPath(id): IdPath,
    query: QueryParams,
) -> AdminResult<Response> {
    let team = target_team(query.text("target"))?;
    let challenge = challenges::load(&state.store, id).await?;
    let request = LogsRequest { challenge_id: challenge.id, team_id: team, tail_lines: tail_of(&query)? };
    Ok(ok(json!(state.center.logs(request).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_keys_are_validated() {
        assert_eq!(target_team(None).unwrap(), TeamId::PREVIEW);
        assert_eq!(target_team(Some("shared")).unwrap(), TeamId::SHARED);
        assert!(target_team(Some("team")).is_err());
        let body = json!({"challenge_id": "3", "team_id": -2});
        assert_eq!(instance_key(body.as_object().unwrap()).unwrap(), (ChallengeId(3), TeamId::SHARED));
        for bad in [json!({}), json!({"challenge_id": 3, "team_id": 0}), json!({"challenge_id": 0, "team_id": 1})] {
            assert!(instance_key(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
