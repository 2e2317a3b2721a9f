//! Playing through the contestant API: visibility and prerequisites, attachments, dynamic
//! flags and cheat events, hints, the scoreboard (freeze, visibility, brackets), the time
//! window and pause, captain rules, tickets, action logs and notifications.

use std::time::Duration;

use fctf::domain::flags::dynamic_flag;
use fctf::store::{ChallengeState, NewFlag, NewHint, NewNotification, TeamUpdate};
use serde_json::{Value, json};

use crate::contestant_support::{Event, Kind, all_at_once, on_both_backends};

const INTERNAL_SECRET: &str = "test-internal-secret";
const ADMIN_PASSWORD: &str = "Adm1n!passw0rd";

fn attempt(challenge: fctf::domain::ChallengeId, flag: &str) -> Value {
    json!({"challengeId": challenge.get(), "submission": flag})
}

async fn visibility_prerequisites_and_details(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("hidden_categories", "secret\nArchive"), ("challenge_difficulty_visibility", "enabled")]).await;
    let (_, members) = event.team("alpha", 1).await;
    let first = event.challenge("first", |spec| spec.difficulty = Some(2)).await;
    let next =
        event.challenge("second", |spec| spec.requirements = Some(format!(r#"{{"prerequisites":[{}]}}"#, 1))).await;
    let anonymous = event
        .challenge("anon", |spec| {
            spec.requirements = Some(format!(r#"{{"prerequisites":[{}],"anonymize":true}}"#, first.get()))
        })
        .await;
    let hidden = event.challenge("hidden", |spec| spec.state = ChallengeState::Hidden).await;
    let locked = event.challenge("locked", |spec| spec.state = ChallengeState::Locked).await;
    let secret = event.challenge("secret", |spec| spec.category = "Secret ".into()).await;
    let choice = event
        .challenge("choice", |spec| {
            spec.kind = "multiple_choice".into();
            spec.description = "Pick one\n* () red\n* () blue".into();
            spec.next_id = Some(first);
        })
        .await;
    assert_eq!(first.get(), 1, "the requirements above name challenge 1");
    event.start().await;
    let token = event.login(0, &members[0].1).await;

    let (_, body) = event.get(0, "/api/Challenge/by-topic", Some(&token)).await;
    assert_eq!(body["data"], json!([{"topic_name": "web", "challenge_count": 5, "cleared": false}]));
    let (_, body) = event.get(0, "/api/Challenge/list_challenge/WEB", Some(&token)).await;
    let listed: Vec<(i64, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| (item["id"].as_i64().unwrap(), item["name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (first.get(), "first".into()),
            (anonymous.get(), "???".into()),
            (locked.get(), "locked".into()),
            (choice.get(), "choice".into())
        ],
        "unmet prerequisites hide `second`; `anon` is a placeholder; hidden ones are left out"
    );
    assert_eq!(body["data"][0]["difficulty"], 2);
    let (_, body) = event.get(0, "/api/Challenge/list_challenge/secret", Some(&token)).await;
    assert_eq!(body["data"], json!([]));

    let detail = |id: fctf::domain::ChallengeId| format!("/api/Challenge/{}", id.get());
    assert_eq!(event.get(0, &detail(next), Some(&token)).await.0, 403);
    assert_eq!(event.get(0, &detail(hidden), Some(&token)).await.0, 404);
    assert_eq!(event.get(0, &detail(secret), Some(&token)).await.0, 404);
    let (status, body) = event.get(0, &detail(anonymous), Some(&token)).await;
    assert_eq!(
        (status, body["data"]["name"].as_str(), body["data"]["description"].as_str()),
        (200, Some("???"), Some(""))
    );
    let (_, body) = event.get(0, &detail(choice), Some(&token)).await;
    assert!(body["data"]["description"].as_str().unwrap().contains("name=\"radio-group\" value=\"blue\""), "{body}");
    assert_eq!(body["data"]["next_name"], "first");
    assert_eq!((body["message"].clone(), body["is_started"].clone()), (json!(true), json!(false)));

    assert_eq!(event.post(0, "/api/Challenge/attempt", Some(&token), attempt(next, "FCTF{second}")).await.0, 403);
    let (status, body) = event.post(0, "/api/Challenge/attempt", Some(&token), attempt(locked, "FCTF{locked}")).await;
    assert_eq!((status, body), (403, Value::String(String::new())));
    assert_eq!(event.post(0, "/api/Challenge/attempt", Some(&token), attempt(hidden, "x")).await.0, 404);
    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&token), json!({"challengeId": 0, "submission": "x"})).await.0,
        400
    );
    let (status, body) = event.post(0, "/api/Challenge/attempt", Some(&token), attempt(first, "   ")).await;
    assert_eq!((status, body["data"]["status"].as_str()), (400, Some("invalid")));
    let long = "x".repeat(1001);
    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&token), attempt(first, &long)).await.1["data"]["status"],
        "invalid"
    );

    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&token), attempt(first, "FCTF{first}")).await.1["data"]["status"],
        "correct"
    );
    assert_eq!(event.get(1, &detail(next), Some(&token)).await.0, 200, "prerequisite met, seen by the other process");
    let (_, body) = event.get(0, &detail(anonymous), Some(&token)).await;
    assert_eq!(body["data"]["name"], "anon");
    event.stop().await;
}

async fn attachments_are_signed_and_contained(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (_, alpha) = event.team("alpha", 1).await;
    let (_, beta) = event.team("beta", 1).await;
    let challenge = event.challenge("files", |_| {}).await;
    let files_dir = event.data_dir(0).join("files");
    std::fs::create_dir_all(files_dir.join("abc")).unwrap();
    std::fs::write(files_dir.join("abc/notes.txt"), b"attached content").unwrap();
    std::fs::write(event.data_dir(0).join("outside.txt"), b"secret").unwrap();
    event.store.upsert_file("challenge", "abc/notes.txt", None, Some(16), Some(challenge)).await.unwrap();
    let escape = event.store.upsert_file("challenge", "../outside.txt", None, None, Some(challenge)).await.unwrap();
    event.start().await;
    let token = event.login(0, &alpha[0].1).await;
    let other = event.login(0, &beta[0].1).await;
    let (_, body) = event.get(0, &format!("/api/Challenge/{}", challenge.get()), Some(&token)).await;
    let links: Vec<String> =
        body["data"]["files"].as_array().unwrap().iter().map(|link| link.as_str().unwrap().to_owned()).collect();
    assert_eq!(links.len(), 2);
    assert!(links[0].starts_with("/files?path=abc/notes.txt&token="), "{links:?}");
    let url = event.url(0, &format!("/api{}", links[0]));
    let response = event.client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("notes.txt"));
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"attached content");

    let stolen = event.client.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(stolen.status(), 400, "a token is bound to its user");
    let swapped = url.replace("abc/notes.txt", "../outside.txt");
    assert_eq!(event.client.get(&swapped).bearer_auth(&token).send().await.unwrap().status(), 404, "bound to its file");
    let traversal = event.url(0, &format!("/api{}", links[1]));
    let response = event.client.get(&traversal).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 400, "file {} escapes the files directory", escape.id);
    assert_eq!(response.json::<Value>().await.unwrap()["message"], "Invalid file path");
    event.stop().await;
}

async fn dynamic_flags_and_flag_sharing(kind: Kind) {
    const COPIERS: usize = 6;
    let Some(mut event) = Event::prepare(kind, &[("FCTF_SECRETS__INTERNAL", INTERNAL_SECRET)]).await else { return };
    let (alpha, alpha_members) = event.team("alpha", 1).await;
    let (beta, beta_members) = event.team("beta", 1).await;
    let (_, gamma_members) = event.team("gamma", 1).await;
    let mut copiers = Vec::new();
    for index in 0..COPIERS {
        let (team, members) = event.team(&format!("copier{index}"), 1).await;
        copiers.push((team, members[0].1.clone()));
    }
    let spec =
        fctf::store::NewChallenge { name: "dyn".into(), category: "pwn".into(), value: 300, ..Default::default() };
    let challenge = event.store.create_challenge(&spec).await.unwrap().id;
    let flag = NewFlag { challenge_id: challenge, kind: "dynamic".into(), content: "FCTF".into(), data: None };
    event.store.create_flag(&flag).await.unwrap();
    let admin = fctf::auth::create_admin(&event.store, "root", Some(ADMIN_PASSWORD)).await.unwrap();
    event.start().await;
    let alpha_token = event.login(0, &alpha_members[0].1).await;
    let beta_token = event.login(1, &beta_members[0].1).await;
    let gamma_token = event.login(0, &gamma_members[0].1).await;
    let alpha_flag = dynamic_flag(INTERNAL_SECRET.as_bytes(), challenge, alpha, "FCTF");
    let beta_flag = dynamic_flag(INTERNAL_SECRET.as_bytes(), challenge, beta, "FCTF");
    assert_ne!(alpha_flag, beta_flag);

    let (_, body) = event.post(1, "/api/Challenge/attempt", Some(&beta_token), attempt(challenge, &alpha_flag)).await;
    assert_eq!(body["data"]["status"], "incorrect", "another team's flag is refused by default");
    let events = event.store.list_cheat_events(Some(challenge)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].event.submitting_team_id, events[0].event.owner_team_id), (Some(beta), Some(alpha)));
    assert_eq!(events[0].event.provided, alpha_flag);
    let (_, body) = event.post(0, "/api/Challenge/attempt", Some(&beta_token), attempt(challenge, &beta_flag)).await;
    assert_eq!(body["data"]["status"], "correct");
    assert_eq!(
        event.post(1, "/api/Challenge/attempt", Some(&alpha_token), attempt(challenge, &alpha_flag)).await.1["data"]["status"],
        "correct"
    );

    // Several teams copying alpha's flag at once, over both processes: each is one cheat event.
    let mut copier_tokens = Vec::new();
    for (index, (_, name)) in copiers.iter().enumerate() {
        copier_tokens.push(event.login(index, name).await);
    }
    let results = all_at_once(
        copier_tokens
            .iter()
            .enumerate()
            .map(|(index, token)| {
                event.post(index, "/api/Challenge/attempt", Some(token), attempt(challenge, &alpha_flag))
            })
            .collect(),
    )
    .await;
    assert!(
        results.iter().all(|(status, body)| *status == 200 && body["data"]["status"] == "incorrect"),
        "{results:?}"
    );
    let events = event.store.list_cheat_events(Some(challenge)).await.unwrap();
    assert_eq!(events.len(), 1 + COPIERS);
    let mut cheaters: Vec<_> = events.iter().filter_map(|event| event.event.submitting_team_id).collect();
    cheaters.sort_unstable();
    let mut expected: Vec<_> = copiers.iter().map(|(team, _)| *team).chain([beta]).collect();
    expected.sort_unstable();
    assert_eq!(cheaters, expected);
    assert!(events.iter().all(|event| event.event.owner_team_id == Some(alpha)));
    assert!(event.store.list_challenge_solves(challenge).await.unwrap().len() == 2, "copiers did not score");

    // Admins see them (admin UI, logs page), on either process.
    let page = admin_page(&event, 1, &admin.name, "/admin/logs").await;
    let section = page.split("Cheat events (shared dynamic flags)").nth(1).expect("cheat events section");
    let rows = section.matches("<tr").count();
    assert_eq!(rows, 1 + (1 + COPIERS), "header and one row per event:\n{section}");
    for (team, _) in &copiers {
        assert!(section.contains(&format!(">{}<", team.get())), "copier {team:?} listed");
    }

    event.reconfigure(&[("dynamic_flag_sharing", "record")]).await;
    let (_, body) = event.post(1, "/api/Challenge/attempt", Some(&gamma_token), attempt(challenge, &alpha_flag)).await;
    assert_eq!(body["data"]["status"], "correct", "record mode accepts and records");
    assert_eq!(event.store.list_cheat_events(Some(challenge)).await.unwrap().len(), 2 + COPIERS);
    event.stop().await;
}

/// Logs in to the admin UI of api process `index` and returns the HTML of `path`.
async fn admin_page(event: &Event, index: usize, name: &str, path: &str) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = format!("name={name}&password={}&next=%2Fadmin", url_encoded(ADMIN_PASSWORD));
    let response = client
        .post(event.url(index, "/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let response = client.get(event.url(index, path)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

fn url_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn hints_costs_and_prerequisites(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (team, members) = event.team("alpha", 1).await;
    let challenge = event.challenge("hinted", |_| {}).await;
    let other = event.challenge("other", |spec| spec.value = 60).await;
    let hint = |content: &str, cost: i64, requirements: Option<String>| NewHint {
        challenge_id: challenge,
        title: None,
        content: content.into(),
        cost,
        requirements,
    };
    let free = event.store.create_hint(&hint("free one", 0, None)).await.unwrap();
    let paid = event.store.create_hint(&hint("paid one", 50, None)).await.unwrap();
    let chained = event
        .store
        .create_hint(&hint("chained", 10, Some(format!(r#"{{"prerequisites":[{}]}}"#, paid.id.get()))))
        .await
        .unwrap();
    event.start().await;
    let token = event.login(0, &members[0].1).await;
    let (_, body) = event.get(0, &format!("/api/Hint/{}/all", challenge.get()), Some(&token)).await;
    assert_eq!(body["hints"]["size"], 3);
    assert_eq!(body["hints"]["hints"][0]["isUnlocked"], true);
    assert_eq!(body["hints"]["hints"][1]["isUnlocked"], false);
    let (_, body) = event.get(0, &format!("/api/Hint/{}?preview=true", paid.id.get()), Some(&token)).await;
    assert_eq!((body["data"]["view"].as_str(), body["data"]["content"].clone()), (Some("locked"), Value::Null));
    let (_, body) = event.get(0, &format!("/api/Hint/{}", free.id.get()), Some(&token)).await;
    assert_eq!(body["data"]["html"], "<p>free one</p>\n");

    let unlock = |id: i64| json!({"type": "hints", "target": id});
    let (_, body) = event.post(0, "/api/Hint/unlock", Some(&token), unlock(paid.id.get())).await;
    assert_eq!(body["error"], "Not enough points to unlock this hint");
    let (_, body) = event.post(0, "/api/Hint/unlock", Some(&token), unlock(chained.id.get())).await;
    assert_eq!(body["error"], "You must unlock other hints before accessing this hint");
    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&token), attempt(other, "FCTF{other}")).await.1["data"]["status"],
        "correct"
    );
    let (status, body) = event.post(0, "/api/Hint/unlock", Some(&token), unlock(paid.id.get())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["type"], "hints");
    assert_eq!(body["data"]["teamId"], team.get());
    let (_, body) = event.post(0, "/api/Hint/unlock", Some(&token), unlock(paid.id.get())).await;
    assert_eq!(body["error"], "Already unlocked");
    assert_eq!(event.post(0, "/api/Hint/unlock", Some(&token), unlock(chained.id.get())).await.0, 200);
    let (_, body) = event.get(1, "/api/Scoreboard/top/5", None).await;
    assert_eq!(body["data"][0]["score"], 0, "60 - 50 - 10");
    let (_, body) = event.post(0, "/api/Hint/unlock", Some(&token), json!({"target": paid.id.get()})).await;
    assert_eq!(body["success"], false, "type is required");
    event.store.set_challenge_state(challenge, ChallengeState::Locked).await.unwrap();
    let (_, body) = event.post(0, "/api/Hint/unlock", Some(&token), unlock(free.id.get())).await;
    assert_eq!(body["error"], "Unable to unlock hint");
    event.stop().await;
}

async fn scoreboard_freeze_visibility_and_brackets(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let students = event.store.create_bracket("Students", "", "teams").await.unwrap();
    let (alpha, alpha_members) = event.team("alpha", 1).await;
    let (_, beta_members) = event.team("beta", 1).await;
    let update = TeamUpdate { bracket_id: Some(Some(students.id)), ..TeamUpdate::default() };
    event.store.update_team(alpha, &update).await.unwrap();
    let early = event.challenge("early", |_| {}).await;
    let late = event.challenge("late", |spec| spec.value = 500).await;
    event.start().await;
    let alpha_token = event.login(0, &alpha_members[0].1).await;
    let beta_token = event.login(0, &beta_members[0].1).await;
    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&beta_token), attempt(early, "FCTF{early}")).await.1["data"]["status"],
        "correct"
    );
    let freeze = chrono::Utc::now().timestamp() + 1;
    event.reconfigure(&[("freeze", &freeze.to_string())]).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&alpha_token), attempt(late, "FCTF{late}")).await.1["data"]["status"],
        "correct"
    );

    let (_, status) = event.get(1, "/api/Scoreboard/freeze-status", None).await;
    assert_eq!((status["is_frozen"].clone(), status["freeze_time"].clone()), (json!(true), json!(freeze)));
    let (_, board) = event.get(1, "/api/Scoreboard/top/10", None).await;
    let names: Vec<(&str, i64)> = board["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["name"].as_str().unwrap(), entry["score"].as_i64().unwrap()))
        .collect();
    assert_eq!(names, vec![("beta", 100), ("alpha", 0)], "the late solve is hidden by the freeze");
    let graph = board["data"][0]["solves"].as_array().unwrap();
    assert_eq!(
        (graph.len(), graph[0]["challengeId"].as_i64(), graph[0]["value"].as_i64()),
        (1, Some(early.get()), Some(100))
    );
    assert_eq!(board["data"][1]["solves"], json!([]), "graph data stops at the freeze too");
    let (_, mine) = event.get(0, "/api/Team/contestant", Some(&alpha_token)).await;
    assert_eq!(
        (mine["data"]["score"].as_i64(), mine["data"]["place"].as_i64()),
        (Some(500), Some(1)),
        "live for the team"
    );
    let (_, solves) = event.get(0, "/api/Team/solves", Some(&alpha_token)).await;
    assert_eq!(solves["meta"]["count"], 1);
    let (_, board) = event.get(0, &format!("/api/Scoreboard/top/10?bracket_id={}", students.id.get()), None).await;
    assert_eq!(board["data"].as_array().unwrap().len(), 1);
    assert_eq!(board["data"][0]["bracketName"], "Students");

    event.reconfigure(&[("score_visibility", "private")]).await;
    assert_eq!(event.get(0, "/api/Scoreboard/top/10", None).await.0, 401);
    let (status, board) = event.get(0, "/api/Scoreboard/top/10", Some(&alpha_token)).await;
    assert_eq!(status, 200);
    assert_eq!(board["data"].as_array().unwrap().len(), 1, "restricted to the caller's bracket");
    assert_eq!(event.get(0, "/api/Scoreboard/brackets", None).await.1["data"], json!([]));
    assert_eq!(
        event.get(0, "/api/Scoreboard/top/10", Some("not-a-token")).await.0,
        401,
        "a presented token is checked"
    );
    event.reconfigure(&[("score_visibility", "hidden")]).await;
    assert_eq!(event.get(0, "/api/Scoreboard/top/10", Some(&alpha_token)).await.0, 403);
    event.stop().await;
}

async fn time_window_pause_and_captain_rules(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (_, members) = event.team("alpha", 2).await;
    let challenge = event.challenge("window", |_| {}).await;
    let now = chrono::Utc::now().timestamp();
    event.configure(&[("ctf_name", "Demo CTF"), ("start", &(now + 3600).to_string())]).await;
    event.start().await;
    let captain = event.login(0, &members[0].1).await;
    let member = event.login(0, &members[1].1).await;
    let (status, body) = event.get(0, "/api/Challenge/by-topic", Some(&captain)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("Demo CTF has not started yet")));
    assert_eq!(event.get(0, "/api/Config/contest_access", Some(&captain)).await.1["reason"], "not_started");

    event.reconfigure(&[("start", &(now - 3600).to_string()), ("end", &(now - 60).to_string())]).await;
    let (_, body) = event.get(0, "/api/Challenge/by-topic", Some(&captain)).await;
    assert_eq!(body["error"], "Demo CTF has ended");
    event.reconfigure(&[("view_after_ctf", "1")]).await;
    assert_eq!(event.get(0, "/api/Challenge/by-topic", Some(&captain)).await.0, 200);
    assert_eq!(
        event.post(0, "/api/Challenge/attempt", Some(&captain), attempt(challenge, "x")).await.0,
        403,
        "submissions stay closed"
    );
    assert_eq!(event.get(0, "/api/Config/get_date_config", Some(&captain)).await.1["message"], "CTF has ended");

    event.reconfigure(&[("end", &(now + 3600).to_string()), ("paused", "true")]).await;
    let (status, body) = event.post(0, "/api/Challenge/attempt", Some(&captain), attempt(challenge, "x")).await;
    assert_eq!(
        (status, body["data"]["status"].as_str(), body["data"]["message"].as_str()),
        (403, Some("paused"), Some("Demo CTF is paused"))
    );
    event.reconfigure(&[("paused", "false"), ("captain_only_submit_challenge", "true")]).await;
    let (status, body) =
        event.post(0, "/api/Challenge/attempt", Some(&member), attempt(challenge, "FCTF{window}")).await;
    assert_eq!((status, body["data"]["status"].as_str()), (403, Some("forbidden")));
    let (_, body) = event.post(0, "/api/Challenge/attempt", Some(&captain), attempt(challenge, "FCTF{window}")).await;
    assert_eq!(body["data"]["status"], "correct");
    let (_, body) = event.get(0, &format!("/api/Challenge/{}", challenge.get()), Some(&member)).await;
    assert_eq!(
        (body["data"]["is_captain"].clone(), body["data"]["captain_only_submit"].clone()),
        (json!(false), json!(true))
    );
    event.stop().await;
}

async fn tickets_logs_and_notifications(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (team, members) = event.team("alpha", 2).await;
    let (_, strangers) = event.team("beta", 1).await;
    let challenge = event.challenge("logged", |spec| spec.category = "crypto".into()).await;
    event.start().await;
    let token = event.login(0, &members[0].1).await;
    let mate = event.login(0, &members[1].1).await;
    let stranger = event.login(0, &strangers[0].1).await;

    let ticket = json!({"title": "Question", "type": "Question", "description": "Is the flag format FCTF{...}?"});
    let (status, created) = event.post(0, "/api/Ticket/sendticket", Some(&token), ticket).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["date"].as_str().unwrap().ends_with('Z'));
    let path = format!("/api/Ticket/tickets/{}", created["id"]);
    assert_eq!(event.get(1, &path, Some(&stranger)).await.0, 403);
    let (_, mine) = event.get(0, "/api/Ticket/tickets-user", Some(&token)).await;
    assert_eq!(mine["tickets"].as_array().unwrap().len(), 1);
    let (_, body) = event
        .post(0, "/api/Ticket/sendticket", Some(&token), json!({"title": " ", "type": "x", "description": "y"}))
        .await;
    assert_eq!(body["message"], "Missing information");
    event.store.reply_ticket(created["id"].as_i64().unwrap(), members[1].0, "Yes.", "answered").await.unwrap();
    let (_, body) = event.get(0, &path, Some(&token)).await;
    assert_eq!(body["data"]["replierMessage"], "Yes.");
    let (_, body) = event.send(reqwest::Method::DELETE, 0, &path, Some(&token), None).await;
    assert_eq!(body["message"], "Cannot delete ticket that has been replied or closed");

    event.post(0, "/api/Challenge/attempt", Some(&token), attempt(challenge, "wrong")).await;
    let save = json!({"actionType": 1, "actionDetail": "opened the challenge", "challenge_id": challenge.get()});
    let (status, body) = event.post(0, "/api/ActionLogs/save-logs", Some(&mate), save).await;
    assert_eq!((status, body["data"]["topicName"].as_str()), (200, Some("crypto")), "{body}");
    let long = json!({"actionType": 1, "actionDetail": "x".repeat(501)});
    assert_eq!(event.post(0, "/api/ActionLogs/save-logs", Some(&mate), long).await.0, 400);
    let (_, body) = event.get(0, "/api/ActionLogs/get-logs-team", Some(&token)).await;
    let types: Vec<i64> =
        body["data"].as_array().unwrap().iter().map(|log| log["actionType"].as_i64().unwrap()).collect();
    assert_eq!(types, vec![1, 4]);
    assert_eq!(event.get(0, "/api/ActionLogs/get-logs", Some(&token)).await.1["data"].as_array().unwrap().len(), 1);

    let response =
        event.client.get(event.url(0, &format!("/api/Notifications/stream?token={token}"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut response = response;
    let cache = event.cache.clone().unwrap();
    for (title, team_id) in
        [("for beta only", Some(fctf::domain::TeamId(team.get() + 1))), ("Welcome", None), ("for alpha", Some(team))]
    {
        let notification = NewNotification {
            title: title.into(),
            content: "hello".into(),
            kind: "toast".into(),
            team_id,
            ..Default::default()
        };
        let id = event.store.create_notification(&notification).await.unwrap();
        fctf::api::contestant::signals::notification_published(&cache, id).await;
    }
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(received.contains("Welcome") && received.contains("for alpha")) {
        let chunk =
            tokio::time::timeout_at(deadline, response.chunk()).await.expect("notifications arrive").unwrap().unwrap();
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: notification"), "{received}");
    assert!(!received.contains("for beta only"), "{received}");
    let (_, body) = event.get(0, "/api/Notifications", Some(&stranger)).await;
    let titles: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|item| item["title"].as_str().unwrap()).collect();
    assert_eq!(titles, vec!["for beta only", "Welcome"]);
    event.stop().await;
}

on_both_backends! {
    visibility_prerequisites_and_details => visibility_prerequisites_and_details_embedded, visibility_prerequisites_and_details_postgres_redis;
    attachments_are_signed_and_contained => attachments_are_signed_and_contained_embedded, attachments_are_signed_and_contained_postgres_redis;
    dynamic_flags_and_flag_sharing => dynamic_flags_and_flag_sharing_embedded, dynamic_flags_and_flag_sharing_postgres_redis;
    hints_costs_and_prerequisites => hints_costs_and_prerequisites_embedded, hints_costs_and_prerequisites_postgres_redis;
    scoreboard_freeze_visibility_and_brackets => scoreboard_freeze_visibility_and_brackets_embedded, scoreboard_freeze_visibility_and_brackets_postgres_redis;
    time_window_pause_and_captain_rules => time_window_pause_and_captain_rules_embedded, time_window_pause_and_captain_rules_postgres_redis;
    tickets_logs_and_notifications => tickets_logs_and_notifications_embedded, tickets_logs_and_notifications_postgres_redis;
}
