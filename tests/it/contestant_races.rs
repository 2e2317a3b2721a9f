//! Exactly-once semantics of the contestant API under concurrency (issue 4), each scenario on
//! the embedded backends and on PostgreSQL + Redis with requests spread over two api processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fctf::store::{Account, NewAward, NewHint, NewTicket, SubmissionKind, UserUpdate};
use serde_json::{Value, json};

use crate::contestant_support::{Event, Kind, all_at_once, on_both_backends};

/// Concurrent requests per race.
const N: usize = 20;

fn statuses(results: &[(u16, Value)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (status, body) in results {
        let label = format!("{status} {}", body["data"]["status"].as_str().unwrap_or_default());
        *counts.entry(label).or_insert(0) += 1;
    }
    counts
}

async fn logins(event: &Event, names: &[String]) -> Vec<String> {
    let mut tokens = Vec::new();
    for (index, name) in names.iter().enumerate() {
        tokens.push(event.login(index, name).await);
    }
    tokens
}

fn names(members: &[(fctf::domain::UserId, String)]) -> Vec<String> {
    members.iter().map(|(_, name)| name.clone()).collect()
}

async fn correct_race_one_team(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (team, members) = event.team("alpha", 4).await;
    let challenge = event.challenge("race", |_| {}).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let body = json!({"challengeId": challenge.get(), "submission": "FCTF{race}"});
    let results = all_at_once(
        (0..N)
            .map(|index| event.post(index, "/api/Challenge/attempt", Some(&tokens[index % tokens.len()]), body.clone()))
            .collect(),
    )
    .await;
    let counts = statuses(&results);
    assert_eq!(counts.get("200 correct"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("200 already_solved"), Some(&(N - 1)), "{counts:?}");
    let solves = event.store.list_challenge_solves(challenge).await.unwrap();
    assert_eq!(solves.len(), 1);
    assert_eq!(solves[0].account.team_id, Some(team));
    event.stop().await;
}

async fn correct_race_one_team_with_cooldown(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (_, members) = event.team("alpha", 4).await;
    let challenge = event.challenge("race", |spec| spec.cooldown = 30).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let body = json!({"challengeId": challenge.get(), "submission": "FCTF{race}"});
    let results = all_at_once(
        (0..N)
            .map(|index| event.post(index, "/api/Challenge/attempt", Some(&tokens[index % tokens.len()]), body.clone()))
            .collect(),
    )
    .await;
    let counts = statuses(&results);
    assert_eq!(counts.get("200 correct"), Some(&1), "{counts:?}");
    let others =
        counts.get("429 ratelimited").copied().unwrap_or(0) + counts.get("200 already_solved").copied().unwrap_or(0);
    assert_eq!(others, N - 1, "{counts:?}");
    assert_eq!(event.store.list_challenge_solves(challenge).await.unwrap().len(), 1);
    event.stop().await;
}

async fn correct_race_many_teams(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let mut players = Vec::new();
    for index in 0..N {
        let (_, members) = event.team(&format!("team{index}"), 1).await;
        players.push(members[0].1.clone());
    }
    let challenge = event.challenge("race", |_| {}).await;
    event.start().await;
    let tokens = logins(&event, &players).await;
    let body = json!({"challengeId": challenge.get(), "submission": "FCTF{race}"});
    let results = all_at_once(
        (0..N).map(|index| event.post(index, "/api/Challenge/attempt", Some(&tokens[index]), body.clone())).collect(),
    )
    .await;
    let counts = statuses(&results);
    assert_eq!(counts.get("200 correct"), Some(&N), "{counts:?}");
    assert_eq!(event.store.list_challenge_solves(challenge).await.unwrap().len(), N);
    event.stop().await;
}

async fn cooldown_race(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("incorrect_submissions_per_min", "0")]).await;
    let (_, members) = event.team("alpha", 4).await;
    let (_, others) = event.team("beta", 1).await;
    let challenge = event.challenge("cool", |spec| spec.cooldown = 60).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let other = event.login(1, &others[0].1).await;
    let wrong = json!({"challengeId": challenge.get(), "submission": "FCTF{wrong}"});
    let mut futures: Vec<_> = (0..N)
        .map(|index| event.post(index, "/api/Challenge/attempt", Some(&tokens[index % tokens.len()]), wrong.clone()))
        .collect();
    futures.push(event.post(N, "/api/Challenge/attempt", Some(&other), wrong.clone()));
    let mut results = all_at_once(futures).await;
    let other_result = results.pop().unwrap();
    assert_eq!((other_result.0, other_result.1["data"]["status"].as_str()), (200, Some("incorrect")), "other team");
    let counts = statuses(&results);
    assert_eq!(counts.get("200 incorrect"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("429 ratelimited"), Some(&(N - 1)), "{counts:?}");
    for (status, body) in &results {
        if *status == 429 {
            let cooldown = body["data"]["cooldown"].as_u64().unwrap();
            assert!((1..=60).contains(&cooldown), "{body}");
        }
    }
    event.stop().await;
}

async fn attempt_budget_race(kind: Kind) {
    const MAX: usize = 3;
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("incorrect_submissions_per_min", "0")]).await;
    let (team, members) = event.team("alpha", 4).await;
    let challenge = event.challenge("budget", |spec| spec.max_attempts = MAX as i64).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let wrong = json!({"challengeId": challenge.get(), "submission": "FCTF{wrong}"});
    let results = all_at_once(
        (0..N)
            .map(|index| {
                event.post(index, "/api/Challenge/attempt", Some(&tokens[index % tokens.len()]), wrong.clone())
            })
            .collect(),
    )
    .await;
    let counts = statuses(&results);
    assert_eq!(counts.get("200 incorrect"), Some(&MAX), "{counts:?}");
    assert_eq!(counts.get("400 incorrect"), Some(&(N - MAX)), "{counts:?}");
    for (status, body) in &results {
        let message = body["data"]["message"].as_str().unwrap();
        if *status == 400 {
            assert!(message.contains("0 tries remaining"), "{message}");
        } else {
            assert!(message.starts_with("Incorrect. You have "), "{message}");
        }
    }
    let account = Account { user_id: members[0].0, team_id: Some(team) };
    let recorded = event.store.count_submissions(challenge, account, SubmissionKind::Incorrect).await.unwrap();
    assert_eq!(recorded, MAX as i64, "refused attempts are not recorded");
    event.stop().await;
}

async fn hint_unlock_race(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (team, members) = event.team("alpha", 5).await;
    let challenge = event.challenge("hinted", |_| {}).await;
    let hint = event
        .store
        .create_hint(&NewHint {
            challenge_id: challenge,
            title: None,
            content: "look closer".into(),
            cost: 50,
            requirements: None,
        })
        .await
        .unwrap();
    event
        .store
        .create_award(&NewAward {
            user_id: Some(members[0].0),
            team_id: Some(team),
            name: "bonus".into(),
            value: 100,
            ..NewAward::default()
        })
        .await
        .unwrap();
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let body = json!({"type": "hints", "target": hint.id.get()});
    let results = all_at_once(
        tokens
            .iter()
            .enumerate()
            .map(|(index, token)| event.post(index, "/api/Hint/unlock", Some(token), body.clone()))
            .collect(),
    )
    .await;
    let succeeded = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(succeeded, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 200) {
        let error = body["error"].as_str().unwrap_or_default().to_lowercase();
        assert_eq!(*status, 400, "{body}");
        assert!(
            error.contains("already unlocked") || error.contains("another unlock operation is in progress"),
            "{body}"
        );
    }
    let awards = event.store.list_awards(Some(team), None).await.unwrap();
    let charges: Vec<_> = awards.iter().filter(|award| award.award.value < 0).collect();
    assert_eq!(charges.len(), 1, "one charge");
    assert_eq!(charges[0].award.value, -50);
    let account = Account { user_id: members[0].0, team_id: Some(team) };
    assert_eq!(event.store.list_unlocks(account).await.unwrap().len(), 1, "one unlock");
    assert_eq!(event.store.account_score(account).await.unwrap(), 50);
    let (status, body) = event.get(0, &format!("/api/Hint/{}", hint.id.get()), Some(&tokens[1])).await;
    assert_eq!((status, body["data"]["content"].as_str()), (200, Some("look closer")), "{body}");
    event.stop().await;
}

async fn dynamic_value_race(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let mut players = Vec::new();
    for index in 0..10 {
        let (_, members) = event.team(&format!("team{index}"), 1).await;
        players.push(members[0].1.clone());
    }
    let (_, crowd) = event.team("crowd", 10).await;
    let decaying = |function: &'static str| {
        move |spec: &mut fctf::store::NewChallenge| {
            spec.kind = "dynamic".into();
            spec.function = function.into();
            spec.initial = Some(100);
            spec.decay = Some(5);
            spec.minimum = Some(20);
            spec.value = 100;
        }
    };
    let logarithmic = event.challenge("log", decaying("logarithmic")).await;
    let linear = event.challenge("lin", decaying("linear")).await;
    let single = event.challenge("single", decaying("linear")).await;
    event.start().await;
    let tokens = logins(&event, &players).await;
    let crowd_tokens = logins(&event, &names(&crowd)).await;
    for (challenge, flag, expected) in [(logarithmic, "FCTF{log}", 20), (linear, "FCTF{lin}", 55)] {
        let body = json!({"challengeId": challenge.get(), "submission": flag});
        let results = all_at_once(
            tokens
                .iter()
                .enumerate()
                .map(|(index, token)| event.post(index, "/api/Challenge/attempt", Some(token), body.clone()))
                .collect(),
        )
        .await;
        assert_eq!(statuses(&results).get("200 correct"), Some(&10), "{results:?}");
        assert_eq!(event.store.get_challenge(challenge).await.unwrap().spec.value, expected, "{flag}");
        let mut values: Vec<i64> = results.iter().map(|(_, body)| body["data"]["value"].as_i64().unwrap()).collect();
        values.sort_unstable();
        assert_eq!(values.first(), Some(&expected), "the last solver sees the final value");
    }
    let body = json!({"challengeId": single.get(), "submission": "FCTF{single}"});
    let results = all_at_once(
        crowd_tokens
            .iter()
            .enumerate()
            .map(|(index, token)| event.post(index, "/api/Challenge/attempt", Some(token), body.clone()))
            .collect(),
    )
    .await;
    assert_eq!(statuses(&results).get("200 correct"), Some(&1), "{results:?}");
    assert_eq!(
        event.store.get_challenge(single).await.unwrap().spec.value,
        100,
        "one team solving many times does not decay"
    );
    let (_, board) = event.get(1, "/api/Scoreboard/top/20", None).await;
    let top: Vec<(String, i64)> = board["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["name"].as_str().unwrap().to_owned(), entry["score"].as_i64().unwrap()))
        .collect();
    assert_eq!(top[0], ("crowd".to_owned(), 100), "{top:?}");
    assert!(top.iter().filter(|(name, _)| name.starts_with("team")).all(|(_, score)| *score == 75), "{top:?}");
    event.stop().await;
}

/// Linear 100/5/20 after 10 solves is 55; decaying values count visible solvers only, so the
/// admin hiding, banning or deleting a solver gives points back (and the board follows on the
/// other process).
async fn decay_follows_hidden_banned_and_deleted_solvers(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let mut teams = Vec::new();
    for index in 0..10 {
        let (team, members) = event.team(&format!("team{index}"), 1).await;
        teams.push((team, members[0].clone()));
    }
    let challenge = event
        .challenge("lin", |spec| {
            spec.kind = "dynamic".into();
            spec.function = "linear".into();
            spec.initial = Some(100);
            spec.decay = Some(5);
            spec.minimum = Some(20);
            spec.value = 100;
        })
        .await;
    let admin = fctf::auth::create_admin(&event.store, "root", None).await.unwrap().api_token;
    event.start().await;
    let players: Vec<String> = teams.iter().map(|(_, (_, name))| name.clone()).collect();
    let tokens = logins(&event, &players).await;
    let body = json!({"challengeId": challenge.get(), "submission": "FCTF{lin}"});
    let results = all_at_once(
        tokens
            .iter()
            .enumerate()
            .map(|(index, token)| event.post(index, "/api/Challenge/attempt", Some(token), body.clone()))
            .collect(),
    )
    .await;
    assert_eq!(statuses(&results).get("200 correct"), Some(&10), "{results:?}");
    assert_eq!(event.store.get_challenge(challenge).await.unwrap().spec.value, 55);

    let value = || async { event.store.get_challenge(challenge).await.unwrap().spec.value };
    let patch = reqwest::Method::PATCH;
    let (status, body) = event
        .admin(patch.clone(), 0, &format!("/api/v1/teams/{}", teams[0].0.get()), &admin, Some(json!({"banned": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value().await, 60, "a banned team's solve no longer counts");
    let user = teams[1].1.0;
    let (status, body) = event
        .admin(patch.clone(), 0, &format!("/api/v1/users/{}", user.get()), &admin, Some(json!({"hidden": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value().await, 65, "a hidden user's solve no longer counts");
    let (status, body) =
        event.admin(reqwest::Method::DELETE, 0, &format!("/api/v1/teams/{}", teams[2].0.get()), &admin, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value().await, 70, "a deleted team's solve is gone");
    let (status, body) = event
        .admin(patch, 0, &format!("/api/v1/teams/{}", teams[0].0.get()), &admin, Some(json!({"banned": false})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value().await, 65, "unbanning counts the solve again");

    // The other process serves the new values within the standings' lifetime (signalled: at once).
    let started = Instant::now();
    loop {
        let (_, board) = event.get(1, "/api/Scoreboard/top/20", None).await;
        let scores: BTreeMap<String, i64> = board["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| (entry["name"].as_str().unwrap().to_owned(), entry["score"].as_i64().unwrap()))
            .collect();
        let expected = [0, 3, 4, 5, 6, 7, 8, 9];
        if expected.iter().all(|index| scores.get(&format!("team{index}")) == Some(&65))
            && !scores.contains_key("team2")
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "board still {board}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    event.stop().await;
}

async fn ticket_races(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (_, members) = event.team("alpha", 1).await;
    event.start().await;
    let token = event.login(0, &members[0].1).await;
    let ticket =
        json!({"title": "Instance down", "type": "Error", "description": "The web instance answers 502 since 10:00."});
    let results = all_at_once(
        (0..N).map(|index| event.post(index, "/api/Ticket/sendticket", Some(&token), ticket.clone())).collect(),
    )
    .await;
    let created: Vec<_> = results.iter().filter(|(status, _)| *status == 201).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 201) {
        assert_eq!((*status, body["message"].as_str()), (400, Some("You have already sent a similar ticket")));
    }
    let near =
        json!({"title": "instance down", "type": "Error", "description": "the web instance answers 502 since 10:00!"});
    let (status, body) = event.post(1, "/api/Ticket/sendticket", Some(&token), near).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("You have already sent a similar ticket")),
        "near duplicate"
    );
    let id = created[0].1["id"].as_i64().unwrap();
    let path = format!("/api/Ticket/tickets/{id}");
    let results = all_at_once(
        (0..N).map(|index| event.send(reqwest::Method::DELETE, index, &path, Some(&token), None)).collect(),
    )
    .await;
    let deleted = results
        .iter()
        .filter(|(status, body)| *status == 200 && body["message"] == "Ticket deleted successfully")
        .count();
    assert_eq!(deleted, 1, "{results:?}");
    assert!(results.iter().all(|(status, _)| *status == 200 || *status == 400));
    assert!(event.store.list_tickets(Some(members[0].0)).await.unwrap().is_empty());
    let again = NewTicket {
        author_id: members[0].0,
        title: "t".into(),
        kind: "Question".into(),
        description: "another".into(),
    };
    event.store.create_ticket(&again).await.unwrap();
    event.stop().await;
}

async fn ban_revokes_everywhere(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (_, members) = event.team("alpha", 2).await;
    event.start().await;
    let token = event.login(0, &members[0].1).await;
    assert_eq!(event.get(1, "/api/Users/profile", Some(&token)).await.0, 200);
    // A ban written straight to the store (no signal at all) is refused within the TTL.
    event.store.update_user(members[0].0, &UserUpdate { banned: Some(true), ..UserUpdate::default() }).await.unwrap();
    let banned_at = Instant::now();
    loop {
        let (status, body) = event.get(1, "/api/Users/profile", Some(&token)).await;
        if status == 403 {
            assert_eq!(body, Value::String("Account banned.".into()));
            break;
        }
        assert!(banned_at.elapsed() < Duration::from_secs(2), "still accepted after {:?}", banned_at.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(banned_at.elapsed() < Duration::from_secs(2));
    // A logout on one process is refused at once by the other (signalled invalidation).
    let other = event.login(0, &members[1].1).await;
    assert_eq!(event.get(1, "/api/Users/profile", Some(&other)).await.0, 200);
    assert_eq!(event.post(0, "/api/Auth/logout", Some(&other), json!({})).await.0, 200);
    let logged_out_at = Instant::now();
    loop {
        let (status, _) = event.get(1, "/api/Users/profile", Some(&other)).await;
        if status == 401 {
            break;
        }
        assert!(logged_out_at.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A newer login replaces the older session everywhere.
    let first = event.login(0, &members[1].1).await;
    let second = event.login(1, &members[1].1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(event.get(0, "/api/Users/profile", Some(&second)).await.0, 200);
    let replaced_at = Instant::now();
    loop {
        if event.get(0, "/api/Users/profile", Some(&first)).await.0 == 401 {
            break;
        }
        assert!(replaced_at.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    event.stop().await;
}

/// The per-user wrong-flag rate (`incorrect_submissions_per_min`) is one shared bucket per user:
/// of N concurrent wrong flags from one user over both processes exactly the limit pass; a
/// teammate is not affected.
async fn wrong_flag_rate_race(kind: Kind) {
    const LIMIT: usize = 3;
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("incorrect_submissions_per_min", &LIMIT.to_string())]).await;
    let (_, members) = event.team("alpha", 2).await;
    let challenge = event.challenge("rate", |_| {}).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let wrong = json!({"challengeId": challenge.get(), "submission": "FCTF{wrong}"});
    let results = all_at_once(
        (0..N).map(|index| event.post(index, "/api/Challenge/attempt", Some(&tokens[0]), wrong.clone())).collect(),
    )
    .await;
    let counts = statuses(&results);
    assert_eq!(counts.get("200 incorrect"), Some(&LIMIT), "{counts:?}");
    assert_eq!(counts.get("429 ratelimited"), Some(&(N - LIMIT)), "{counts:?}");
    let refusal = results.iter().find(|(status, _)| *status == 429).unwrap();
    assert!(refusal.1["data"]["message"].as_str().unwrap().contains("too fast"), "{refusal:?}");
    let (status, body) = event.post(1, "/api/Challenge/attempt", Some(&tokens[1]), wrong).await;
    assert_eq!((status, body["data"]["status"].as_str()), (200, Some("incorrect")), "the teammate has its own bucket");
    event.stop().await;
}

/// The per-user request limit lives on the cache: both processes draw from one bucket.
async fn user_rate_limit_is_shared(kind: Kind) {
    const BURST: usize = 6;
    let limits = [("FCTF_API__RATE_LIMITS__USER_BURST", "6"), ("FCTF_API__RATE_LIMITS__USER_PER_SECOND", "0.01")];
    let Some(mut event) = Event::prepare(kind, &limits).await else { return };
    let (_, members) = event.team("alpha", 2).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let results =
        all_at_once((0..BURST + 4).map(|index| event.get(index, "/api/Users/profile", Some(&tokens[0]))).collect())
            .await;
    let passed = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(passed, BURST, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 429);
        assert!(body.as_str().unwrap().starts_with("API calls quota exceeded!"), "{body}");
    }
    assert_eq!(event.get(1, "/api/Users/profile", Some(&tokens[1])).await.0, 200, "another user is not limited");
    event.stop().await;
}

/// Users mode: each player scores alone (a teammate's solve does not count), N concurrent
/// correct flags from one player give one solve, and the board ranks players.
async fn users_mode_scores_players(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("user_mode", "users")]).await;
    let (_, members) = event.team("alpha", 2).await;
    let (_, others) = event.team("beta", 1).await;
    let challenge = event.challenge("solo", |_| {}).await;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    let other = event.login(0, &others[0].1).await;
    let body = json!({"challengeId": challenge.get(), "submission": "FCTF{solo}"});
    let results = all_at_once(
        (0..N).map(|index| event.post(index, "/api/Challenge/attempt", Some(&tokens[0]), body.clone())).collect(),
    )
    .await;
    let counts = statuses(&results);
    assert_eq!(counts.get("200 correct"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("200 already_solved"), Some(&(N - 1)), "{counts:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, answer) = event.post(1, "/api/Challenge/attempt", Some(&tokens[1]), body.clone()).await;
    assert_eq!(answer["data"]["status"], "correct", "a teammate's solve does not count in users mode");
    assert_eq!(event.store.list_challenge_solves(challenge).await.unwrap().len(), 2);
    let started = Instant::now();
    loop {
        let (_, board) = event.get(1, "/api/Scoreboard/top/10", Some(&other)).await;
        let top: Vec<(String, i64, String)> = board["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let url = entry["accountUrl"].as_str().unwrap().to_owned();
                (entry["name"].as_str().unwrap().to_owned(), entry["score"].as_i64().unwrap(), url)
            })
            .collect();
        if top.len() >= 2 && top[1].1 == 100 {
            assert_eq!((top[0].0.as_str(), top[0].1), ("alpha-0", 100), "the earlier solver ranks first: {top:?}");
            assert_eq!(top[1].0, "alpha-1");
            assert_eq!(top[0].2, format!("/users/{}", members[0].0.get()));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "board still {board}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    event.stop().await;
}

/// Waits until api process `index` refuses `token` (≤ 2 s) and returns how it answered.
async fn refused_within_two_seconds(event: &Event, index: usize, token: &str, what: &str) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let (status, body) = event.get(index, "/api/Users/profile", Some(token)).await;
        if status != 200 {
            return (status, body);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: still accepted after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every revoking change made through process 0 (admin API or contestant API), and one written
/// straight to the store with no signal, is refused by process 1 within two seconds.
async fn revocations_reach_the_other_process(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("team_self_service", "true")]).await;
    let (alpha, members) = event.team("alpha", 6).await;
    let (beta, _) = event.team("beta", 1).await;
    let admin = fctf::auth::create_admin(&event.store, "root", None).await.unwrap().api_token;
    event.start().await;
    let tokens = logins(&event, &names(&members)).await;
    for token in &tokens {
        assert_eq!(event.get(1, "/api/Users/profile", Some(token)).await.0, 200);
    }
    let user = |index: usize| format!("/api/v1/users/{}", members[index].0.get());
    let patch = reqwest::Method::PATCH;

    // Hide (admin API).
    assert_eq!(event.admin(patch.clone(), 0, &user(0), &admin, Some(json!({"hidden": true}))).await.0, 200);
    let refused = refused_within_two_seconds(&event, 1, &tokens[0], "hidden").await;
    assert_eq!(refused, (403, Value::String("Account hidden.".into())));

    // Ban (admin API): the session is revoked too.
    assert_eq!(event.admin(patch.clone(), 0, &user(1), &admin, Some(json!({"banned": true}))).await.0, 200);
    let refused = refused_within_two_seconds(&event, 1, &tokens[1], "banned").await;
    assert_eq!(refused.0, 401, "{refused:?}");

    // Password set by an admin: the session is revoked.
    let password = json!({"password": "An0ther!pass"});
    assert_eq!(event.admin(patch, 0, &user(2), &admin, Some(password)).await.0, 200);
    let refused = refused_within_two_seconds(&event, 1, &tokens[2], "password set by an admin").await;
    assert_eq!(refused, (401, Value::String("Invalid user token".into())));

    // Team change (admin API): moved from alpha to beta.
    let body = json!({"user_id": members[3].0.get()});
    let path = format!("/api/v1/teams/{}/members", alpha.get());
    assert_eq!(event.admin(reqwest::Method::DELETE, 0, &path, &admin, Some(body.clone())).await.0, 200);
    let path = format!("/api/v1/teams/{}/members", beta.get());
    assert_eq!(event.admin(reqwest::Method::POST, 0, &path, &admin, Some(body)).await.0, 200);
    let refused = refused_within_two_seconds(&event, 1, &tokens[3], "team change").await;
    assert_eq!(refused, (401, Value::String("Invalid user token.".into())));

    // Team change (self-service leave on process 0): the old token dies, the new one works.
    let (status, body) = event.post(0, "/api/Team/leave", Some(&tokens[4]), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let refused = refused_within_two_seconds(&event, 1, &tokens[4], "left the team").await;
    assert_eq!(refused, (401, Value::String("Invalid user token".into())));
    let fresh = body["generatedToken"].as_str().unwrap();
    let (status, body) = event.post(1, "/api/Team/create", Some(fresh), json!({"name": "gamma"})).await;
    assert_eq!(status, 200, "the team-less session works on the other process: {body}");

    // Hidden straight in the store, no signal at all: the snapshot lifetime bounds it.
    let hide = UserUpdate { hidden: Some(true), ..UserUpdate::default() };
    event.store.update_user(members[5].0, &hide).await.unwrap();
    let refused = refused_within_two_seconds(&event, 1, &tokens[5], "hidden without a signal").await;
    assert_eq!(refused, (403, Value::String("Account hidden.".into())));
    event.stop().await;
}

on_both_backends! {
    correct_race_one_team => correct_race_one_team_embedded, correct_race_one_team_postgres_redis;
    correct_race_one_team_with_cooldown => correct_race_one_team_with_cooldown_embedded, correct_race_one_team_with_cooldown_postgres_redis;
    correct_race_many_teams => correct_race_many_teams_embedded, correct_race_many_teams_postgres_redis;
    cooldown_race => cooldown_race_embedded, cooldown_race_postgres_redis;
    attempt_budget_race => attempt_budget_race_embedded, attempt_budget_race_postgres_redis;
    hint_unlock_race => hint_unlock_race_embedded, hint_unlock_race_postgres_redis;
    dynamic_value_race => dynamic_value_race_embedded, dynamic_value_race_postgres_redis;
    decay_follows_hidden_banned_and_deleted_solvers => decay_follows_hidden_banned_and_deleted_solvers_embedded, decay_follows_hidden_banned_and_deleted_solvers_postgres_redis;
    ticket_races => ticket_races_embedded, ticket_races_postgres_redis;
    wrong_flag_rate_race => wrong_flag_rate_race_embedded, wrong_flag_rate_race_postgres_redis;
    user_rate_limit_is_shared => user_rate_limit_is_shared_embedded, user_rate_limit_is_shared_postgres_redis;
    users_mode_scores_players => users_mode_scores_players_embedded, users_mode_scores_players_postgres_redis;
    ban_revokes_everywhere => ban_revokes_everywhere_embedded, ban_revokes_everywhere_postgres_redis;
    revocations_reach_the_other_process => revocations_reach_the_other_process_embedded, revocations_reach_the_other_process_postgres_redis;
}
