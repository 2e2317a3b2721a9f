//! `GET /api/v1/statistics/progression/matrix`: the listed challenges as columns, the top of
//! the standings as rows, each with what it solved and what it only tried.

use axum::http::{Method, StatusCode};
use fctf::domain::ChallengeId;
use fctf::store::{Account, NewTeam, NewUser, SubmissionKind, UserRole};
use serde_json::json;

use crate::admin_support::{AdminApi, on_both_databases};

async fn matrix_shows_solves_and_attempts(api: AdminApi) {
    let create = |body: serde_json::Value| {
        let api = &api;
        async move { ChallengeId(api.ok(Method::POST, "/api/v1/challenges", Some(&body)).await["id"].as_i64().unwrap()) }
    };
    let crypto = create(json!({"name": "c1", "category": "crypto", "value": 300})).await;
    let easy = create(json!({"name": "w1", "category": "web", "value": 100})).await;
    let hard = create(json!({"name": "w2", "category": "web", "value": 200})).await;
    let hidden = create(json!({"name": "h", "category": "a", "value": 1, "state": "hidden"})).await;
    let bracket = api.ok(Method::POST, "/api/v1/brackets", Some(&json!({"name": "students", "type": "teams"}))).await;
    let rivals = api.store.create_team(&NewTeam { name: "rivals".into(), ..NewTeam::default() }).await.unwrap().id;
    api.ok(Method::PATCH, &format!("/api/v1/teams/{rivals}"), Some(&json!({"bracket_id": bracket["id"]}))).await;
    let rival = api
        .store
        .create_user(&NewUser {
            name: "rival".into(),
            email: None,
            password_hash: "x".into(),
            role: UserRole::User,
            verified: true,
        })
        .await
        .unwrap();
    api.store.add_team_member(rivals, rival, None).await.unwrap();
    let players = Account { user_id: api.player.id, team_id: Some(api.team) };
    let rivals_account = Account { user_id: rival, team_id: Some(rivals) };
    for challenge in [easy, crypto, hidden] {
        api.store.record_solve(challenge, players, "flag", None).await.unwrap();
    }
    api.store.record_submission(hard, players, SubmissionKind::Incorrect, "no", None).await.unwrap();
    api.store.record_submission(easy, rivals_account, SubmissionKind::Incorrect, "no", None).await.unwrap();
    api.store.record_solve(easy, rivals_account, "flag", None).await.unwrap();
    api.store.record_submission(crypto, rivals_account, SubmissionKind::Incorrect, "no", None).await.unwrap();

    let matrix = api.ok(Method::GET, "/api/v1/statistics/progression/matrix", None).await;
    let columns: Vec<&str> =
        matrix["challenges"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, vec!["c1", "w1", "w2"], "hidden challenges are no column; by category, then value");
    assert_eq!(matrix["challenges"][0], json!({"id": crypto, "name": "c1", "category": "crypto", "value": 300}));
    let rows = matrix["scoreboard"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "players");
    assert_eq!((rows[0]["place"].clone(), rows[0]["score"].clone()), (json!(1), json!(401)));
    assert_eq!(rows[0]["solves"], json!([crypto, easy]), "only listed challenges");
    assert_eq!(rows[0]["attempts"], json!([hard]));
    assert_eq!(rows[1]["name"], "rivals");
    assert_eq!(rows[1]["solves"], json!([easy]), "a solved challenge is not also an attempt");
    assert_eq!(rows[1]["attempts"], json!([crypto]));
    assert_eq!(rows[1]["bracket_id"], bracket["id"]);

    let students =
        api.ok(Method::GET, &format!("/api/v1/statistics/progression/matrix?bracket_id={}", bracket["id"]), None).await;
    assert_eq!(students["scoreboard"].as_array().unwrap().len(), 1);
    assert_eq!(students["scoreboard"][0]["place"], 1);
    let bad = api.admin(Method::GET, "/api/v1/statistics/progression/matrix?bracket_id=x", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let jury = api.call(Method::GET, "/api/v1/statistics/progression/matrix", Some(&api.jury.token), None).await;
    assert_eq!(jury.status, StatusCode::OK);
}

on_both_databases! {
    progression_matrix => matrix_shows_solves_and_attempts,
}
