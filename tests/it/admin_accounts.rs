//! Accounts, results and settings through the admin API: users and teams (pagination D11,
//! members, captain), awards, submissions (filters, re-judging), configs (validated, shared
//! with `EventSettings`), scoreboard and statistics, pages, solutions, notifications,
//! brackets and custom fields.

use axum::http::{Method, StatusCode};
use fctf::domain::ChallengeId;
use fctf::store::{Account, NewUser, SolveOutcome, UserRole};
use serde_json::{Value, json};

use crate::admin_support::{AdminApi, on_both_databases};

async fn users_and_teams(api: AdminApi) {
    for index in 0..56 {
        let user = NewUser {
            name: format!("p{index:02}"),
            email: None,
            password_hash: "x".into(),
            role: UserRole::User,
            verified: index % 2 == 0,
        };
        api.store.create_user(&user).await.unwrap();
    }
    let first = api.admin(Method::GET, "/api/v1/users", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.data().as_array().unwrap().len(), 50);
    assert_eq!(
        first.body["meta"]["pagination"],
        json!({"page": 1, "next": 2, "prev": null, "pages": 2, "per_page": 50, "total": 60})
    );
    let second = api.admin(Method::GET, "/api/v1/users?page=2", None).await;
    assert_eq!(second.data().as_array().unwrap().len(), 10);
    assert_eq!(second.body["meta"]["pagination"]["next"], Value::Null);
    let wide = api.admin(Method::GET, "/api/v1/users?per_page=500", None).await;
    assert_eq!(wide.body["meta"]["pagination"]["per_page"], 100);
    let beyond = api.admin(Method::GET, "/api/v1/users?page=9", None).await;
    assert_eq!((beyond.status, beyond.data().clone()), (StatusCode::OK, json!([])));
    let search = api.ok(Method::GET, "/api/v1/users?q=p0&field=name", None).await;
    assert_eq!(search.as_array().unwrap().len(), 10);
    let bad_field = api.admin(Method::GET, "/api/v1/users?q=x&field=password", None).await;
    assert_eq!(bad_field.status, StatusCode::BAD_REQUEST);
    let staff = api.ok(Method::GET, "/api/v1/users?type=jury", None).await;
    assert_eq!(staff.as_array().unwrap().len(), 1);

    let field = api.ok(Method::POST, "/api/v1/configs/fields", Some(&json!({"name": "School", "type": "user"}))).await;
    let created = api
        .ok(
            Method::POST,
            "/api/v1/users",
            Some(&json!({"name": "alice", "email": "alice@example.org", "password": "correct horse", "country": "FR",
                         "type": "challenge_writer", "verified": true, "fields": [{"field_id": field["id"], "value": "MIT"}]})),
        )
        .await;
    assert!(created.get("password").is_none());
    assert_eq!(created["type"], "challenge_writer");
    assert_eq!(created["fields"][0]["value"], "MIT");
    let user = api.store.get_user(fctf::domain::UserId(created["id"].as_i64().unwrap())).await.unwrap();
    assert!(fctf::auth::verify_password("correct horse", user.password_hash.as_deref().unwrap()));
    let taken =
        api.admin(Method::POST, "/api/v1/users", Some(&json!({"name": "ALICE", "password": "long enough"}))).await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert_eq!(taken.body["errors"]["name"][0], "User name has already been taken");
    let invalid = api
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(&json!({"name": "bob", "password": "short", "email": "nope", "country": "France"})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    for key in ["password", "email", "country"] {
        assert!(invalid.body["errors"][key].is_array(), "{key}: {}", invalid.body);
    }

    let team = api.ok(Method::POST, "/api/v1/teams", Some(&json!({"name": "red", "country": "DE"}))).await;
    let team_id = team["id"].as_i64().unwrap();
    let alice = created["id"].as_i64().unwrap();
    let members =
        api.ok(Method::POST, &format!("/api/v1/teams/{team_id}/members"), Some(&json!({"user_id": alice}))).await;
    assert_eq!(members, json!([alice]));
    let twice =
        api.admin(Method::POST, &format!("/api/v1/teams/{team_id}/members"), Some(&json!({"user_id": alice}))).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    let player = api.player.id.get();
    let bad_captain =
        api.admin(Method::PATCH, &format!("/api/v1/teams/{team_id}"), Some(&json!({"captain_id": player}))).await;
    assert_eq!(bad_captain.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_captain.body["errors"]["captain_id"][0], "Invalid Captain ID");
    let captained =
        api.ok(Method::PATCH, &format!("/api/v1/teams/{team_id}"), Some(&json!({"captain_id": alice}))).await;
    assert_eq!(captained["captain_id"], alice);
    let code = api.ok(Method::POST, &format!("/api/v1/teams/{team_id}/members"), None).await;
    assert_eq!(code["code"].as_str().unwrap().len(), 32);
    let detail = api.ok(Method::GET, &format!("/api/v1/teams/{team_id}"), None).await;
    assert_eq!(detail["members"], json!([alice]));
    assert_eq!(detail["score"], 0);
    let removed =
        api.ok(Method::DELETE, &format!("/api/v1/teams/{team_id}/members"), Some(&json!({"user_id": alice}))).await;
    assert_eq!(removed, json!([]));
    let not_member =
        api.admin(Method::DELETE, &format!("/api/v1/teams/{team_id}/members"), Some(&json!({"user_id": alice}))).await;
    assert_eq!(not_member.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.ok(Method::GET, &format!("/api/v1/teams/{team_id}"), None).await["captain_id"], Value::Null);
    api.ok(Method::DELETE, &format!("/api/v1/teams/{team_id}"), None).await;
    api.ok(Method::DELETE, &format!("/api/v1/users/{alice}"), None).await;
    let own = api.admin(Method::DELETE, &format!("/api/v1/users/{}", api.admin.id), None).await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST);
    // Users mode hides the team routes.
    api.ok(Method::PATCH, "/api/v1/configs", Some(&json!({"user_mode": "users"}))).await;
    assert_eq!(api.admin(Method::GET, "/api/v1/teams", None).await.status, StatusCode::NOT_FOUND);
}

async fn submissions_and_scores(api: AdminApi) {
    let challenge = api
        .ok(
            Method::POST,
            "/api/v1/challenges",
            Some(&json!({"name": "dyn", "type": "dynamic", "initial": 500, "decay": 1, "minimum": 100})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let account = Account { user_id: api.player.id, team_id: Some(api.team) };
    let wrong = json!({"challenge_id": challenge, "user_id": api.player.id, "provided": "nope", "type": "incorrect"});
    let submission = api.ok(Method::POST, "/api/v1/submissions", Some(&wrong)).await;
    assert_eq!(submission["team_id"], api.team.get(), "the team is taken from the user");
    assert_eq!(submission["challenge"]["name"], "dyn");
    assert_eq!(submission["user"]["name"], "player");
    let id = submission["id"].as_i64().unwrap();
    let listed = api.admin(Method::GET, "/api/v1/submissions?type=incorrect", None).await;
    assert_eq!(listed.body["meta"]["pagination"]["per_page"], 20);
    assert_eq!(listed.data().as_array().unwrap().len(), 1);
    let solve = api.ok(Method::PATCH, &format!("/api/v1/submissions/{id}"), Some(&json!({"type": "correct"}))).await;
    assert_eq!(solve["type"], "correct");
    assert_eq!(api.ok(Method::GET, &format!("/api/v1/submissions/{id}"), None).await["type"], "discard");
    assert!(api.store.has_solved(ChallengeId(challenge), account).await.unwrap());
    let twice = api.admin(Method::PATCH, &format!("/api/v1/submissions/{id}"), Some(&json!({"type": "correct"}))).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert!(twice.body["errors"]["type"].is_array());
    let scoreboard = api.ok(Method::GET, "/api/v1/scoreboard", None).await;
    assert_eq!(scoreboard[0]["name"], "players");
    assert_eq!(scoreboard[0]["score"], 500);
    assert_eq!(scoreboard[0]["members"][0]["name"], "player");
    let top = api.ok(Method::GET, "/api/v1/scoreboard/top/10", None).await;
    assert_eq!(top["1"]["solves"][0]["challenge_id"], challenge);
    let solve_id = solve["id"].as_i64().unwrap();
    api.ok(Method::PATCH, &format!("/api/v1/submissions/{solve_id}"), Some(&json!({"type": "incorrect"}))).await;
    assert!(!api.store.has_solved(ChallengeId(challenge), account).await.unwrap());
    assert_eq!(api.ok(Method::GET, "/api/v1/scoreboard", None).await[0]["score"], 0);
    let by_type = api.ok(Method::GET, "/api/v1/statistics/submissions/type", None).await;
    assert_eq!(by_type, json!({"discard": 1, "incorrect": 1}));
    assert_eq!(
        api.admin(Method::GET, "/api/v1/statistics/submissions/password", None).await.status,
        StatusCode::NOT_FOUND
    );
    let outcome = api.store.record_solve(ChallengeId(challenge), account, "flag", None).await.unwrap();
    assert!(matches!(outcome, SolveOutcome::Solved { .. }));
    let solves = api.ok(Method::GET, "/api/v1/statistics/challenges/solves", None).await;
    assert_eq!(solves[0]["solves"], 1);
    let percentages = api.ok(Method::GET, "/api/v1/statistics/challenges/solves/percentages", None).await;
    assert_eq!(percentages[0]["percentage"], 1.0);
    assert_eq!(api.ok(Method::GET, "/api/v1/statistics/teams", None).await["registered"], 1);
    let categories = api.ok(Method::GET, "/api/v1/statistics/challenges/type", None).await;
    assert_eq!(categories, json!({"dynamic": 1}));
    let user_solves = api.admin(Method::GET, &format!("/api/v1/users/{}/solves", api.player.id), None).await;
    assert_eq!(user_solves.body["meta"]["count"], 1);

    let award = api
        .ok(
            Method::POST,
            "/api/v1/awards",
            Some(&json!({"user_id": api.player.id, "name": "bonus", "value": -50, "category": "penalty"})),
        )
        .await;
    assert_eq!(award["team_id"], api.team.get());
    assert_eq!(api.ok(Method::GET, "/api/v1/scoreboard", None).await[0]["score"], 450);
    let orphan = api
        .admin(Method::POST, "/api/v1/awards", Some(&json!({"user_id": api.admin.id, "name": "x", "value": 1})))
        .await;
    assert_eq!(orphan.status, StatusCode::BAD_REQUEST);
    assert!(orphan.body["errors"]["team_id"].is_array());
    api.ok(Method::DELETE, &format!("/api/v1/awards/{}", award["id"]), None).await;
    api.ok(Method::DELETE, &format!("/api/v1/submissions/{id}"), None).await;
    assert_eq!(api.admin(Method::GET, &format!("/api/v1/submissions/{id}"), None).await.status, StatusCode::NOT_FOUND);
}

async fn configs_are_validated_and_shared(api: AdminApi) {
    let invalid = api
        .admin(
            Method::PATCH,
            "/api/v1/configs",
            Some(&json!({"ctf_name": "Ok", "start": "yesterday", "user_mode": "both"})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(invalid.body["errors"]["start"].is_array() && invalid.body["errors"]["user_mode"].is_array());
    assert_eq!(
        api.admin(Method::GET, "/api/v1/configs/ctf_name", None).await.status,
        StatusCode::NOT_FOUND,
        "nothing was written"
    );
    let done = api
        .admin(Method::PATCH, "/api/v1/configs", Some(&json!({"ctf_name": "Finals", "start": 1000, "paused": true})))
        .await;
    assert_eq!(done.body, json!({"success": true}));
    let current = api.state.event.current();
    assert_eq!((current.ctf_name.as_str(), current.start, current.paused), ("Finals", 1000, true));
    let single = api.ok(Method::PATCH, "/api/v1/configs/limit_challenges", Some(&json!({"value": 5}))).await;
    assert_eq!(single["value"], "5");
    assert_eq!(api.state.event.current().limit_challenges, 5);
    let listed = api.ok(Method::GET, "/api/v1/configs", None).await;
    assert!(listed.as_array().unwrap().iter().any(|entry| entry["key"] == "ctf_name" && entry["value"] == "Finals"));
    api.ok(Method::PATCH, "/api/v1/configs/cloudflare_turnstile_secret_key", Some(&json!({"value": "s3cret"}))).await;
    let as_jury =
        api.call(Method::GET, "/api/v1/configs/cloudflare_turnstile_secret_key", Some(&api.jury.token), None).await;
    assert_eq!(as_jury.data()["value"], "[redacted]");
    let created = api.ok(Method::POST, "/api/v1/configs", Some(&json!({"key": "custom_key", "value": null}))).await;
    assert_eq!(created["value"], Value::Null);
    api.ok(Method::DELETE, "/api/v1/configs/custom_key", None).await;
    assert_eq!(api.admin(Method::GET, "/api/v1/configs/custom_key", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.admin(Method::DELETE, "/api/v1/configs/custom_key", None).await.status, StatusCode::NOT_FOUND);
    let audit = api.ok(Method::GET, "/api/v1/audit?target_type=config", None).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["after"]["ctf_name"] == "Finals" && entry["before"]["ctf_name"].is_null())
    );
    assert!(
        audit.as_array().unwrap().iter().all(|entry| !entry.to_string().contains("s3cret")),
        "secrets stay out of the log"
    );
}

async fn pages_solutions_notifications_brackets(api: AdminApi) {
    let page = api
        .ok(
            Method::POST,
            "/api/v1/pages",
            Some(&json!({"route": "/rules", "title": "Rules", "content": "# Rules", "format": "markdown"})),
        )
        .await;
    assert_eq!(page["route"], "rules");
    let listed = api.ok(Method::GET, "/api/v1/pages", None).await;
    assert!(listed[0].get("content").is_none());
    let duplicate = api.admin(Method::POST, "/api/v1/pages", Some(&json!({"route": "rules"}))).await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert!(duplicate.body["errors"]["route"].is_array());
    let patched = api.ok(Method::PATCH, &format!("/api/v1/pages/{}", page["id"]), Some(&json!({"hidden": true}))).await;
    assert_eq!((patched["hidden"].clone(), patched["content"].clone()), (json!(true), json!("# Rules")));

    let challenge =
        api.ok(Method::POST, "/api/v1/challenges", Some(&json!({"name": "c", "value": 1}))).await["id"].clone();
    let solution = api
        .ok(
            Method::POST,
            "/api/v1/solutions",
            Some(&json!({"challenge_id": challenge, "content": "", "state": "hidden"})),
        )
        .await;
    let second = api.admin(Method::POST, "/api/v1/solutions", Some(&json!({"challenge_id": challenge}))).await;
    assert_eq!(second.body["errors"]["challenge_id"][0], "A solution for this challenge already exists");
    let image = api
        .upload(
            &api.admin.token,
            &[("type", "solution"), ("solution_id", &solution["id"].to_string())],
            &[("shot.png", b"img")],
        )
        .await;
    assert_eq!(image.status, StatusCode::OK, "{}", image.body);
    let location = image.data()[0]["location"].as_str().unwrap().to_owned();
    api.ok(
        Method::PATCH,
        &format!("/api/v1/solutions/{}", solution["id"]),
        Some(&json!({"content": format!("![x](/files/{location})")})),
    )
    .await;
    api.ok(Method::DELETE, &format!("/api/v1/solutions/{}", solution["id"]), None).await;
    assert!(!api.data_dir.path().join("files").join(&location).exists());

    let notification = api
        .ok(
            Method::POST,
            "/api/v1/notifications",
            Some(&json!({"title": "Hello", "content": "Started", "type": "toast"})),
        )
        .await;
    assert_eq!((notification["type"].clone(), notification["sound"].clone()), (json!("toast"), json!(true)));
    let listed = api.admin(Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(listed.headers["result-count"], "1");
    let since = api.ok(Method::GET, &format!("/api/v1/notifications?since_id={}", notification["id"]), None).await;
    assert_eq!(since, json!([]));
    let bad = api
        .admin(Method::POST, "/api/v1/notifications", Some(&json!({"title": "x", "content": "y", "type": "siren"})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let bracket = api.ok(Method::POST, "/api/v1/brackets", Some(&json!({"name": "Students", "type": "teams"}))).await;
    let renamed =
        api.ok(Method::PATCH, &format!("/api/v1/brackets/{}", bracket["id"]), Some(&json!({"name": "Pupils"}))).await;
    assert_eq!(renamed["name"], "Pupils");
    api.ok(Method::PATCH, &format!("/api/v1/teams/{}", api.team), Some(&json!({"bracket_id": bracket["id"]}))).await;
    let board = api.ok(Method::GET, "/api/v1/scoreboard", None).await;
    assert_eq!(board[0]["bracket_name"], "Pupils");
    let missing =
        api.admin(Method::PATCH, &format!("/api/v1/teams/{}", api.team), Some(&json!({"bracket_id": 999}))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    api.ok(Method::DELETE, &format!("/api/v1/brackets/{}", bracket["id"]), None).await;

    let ticket = api
        .store
        .create_ticket(&fctf::store::NewTicket {
            author_id: api.player.id,
            title: "Help".into(),
            kind: "Question".into(),
            description: "?".into(),
        })
        .await
        .unwrap();
    let answered = api
        .call(
            Method::PATCH,
            &format!("/api/v1/tickets/{}", ticket.id),
            Some(&api.jury.token),
            Some(&json!({"replier_message": "Read the rules"})),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    assert_eq!(answered.data()["status"], "answered");
    assert_eq!(answered.data()["replier_id"], api.jury.id.get());
}

on_both_databases! {
    users_teams => users_and_teams,
    submissions => submissions_and_scores,
    configs => configs_are_validated_and_shared,
    pages_and_more => pages_solutions_notifications_brackets,
}
