//! Accounts through the contestant API: registration (fields, policy, cap, captcha), login
//! (imported CTFd hashes, account states), password change, team self-service and the
//! per-address rate limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::post;
use fctf::store::UserUpdate;
use serde_json::{Value, json};

use crate::contestant_support::{Event, Kind, PASSWORD, all_at_once, on_both_backends};

fn registration(name: &str) -> Value {
    json!({"username": name, "email": format!("{name}@example.org"), "password": PASSWORD, "confirmPassword": PASSWORD})
}

async fn registration_flow_with_custom_fields(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("contestant_registration_enabled", "1")]).await;
    let student_id = event.store.create_registration_field("Student ID", "text", "your id", true).await.unwrap();
    let consent = event.store.create_registration_field("Rules", "boolean", "accept the rules", true).await.unwrap();
    event.start().await;

    let (status, body) = event.get(0, "/api/auth/registration-metadata", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["userFields"][1]["fieldType"], "boolean");
    assert_eq!(body["data"]["constraints"]["numUsersLimit"], 0);

    let mut weak = registration("carol");
    weak["password"] = json!("weakpass");
    weak["confirmPassword"] = json!("weakpass");
    let (status, body) = event.post(0, "/api/Auth/register-contestant", None, weak).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("Password must be 8-20 characters"), "{body}");

    let mut mismatch = registration("carol");
    mismatch["confirmPassword"] = json!("Other!pw1");
    let (_, body) = event.post(0, "/api/Auth/register-contestant", None, mismatch).await;
    assert_eq!(body["message"], "Password confirmation does not match");

    let (_, body) = event.post(0, "/api/Auth/register-contestant", None, json!({"username": "x"})).await;
    assert_eq!(body["success"], false, "declarative validation: {body}");

    let (_, body) = event.post(0, "/api/Auth/register-contestant", None, registration("carol")).await;
    assert_eq!(body["message"], "User field 'Student ID' is required");

    let mut complete = registration("carol");
    complete["userFields"] = json!([{"fieldId": student_id, "value": " S-42 "}, {"fieldId": consent, "value": "no"}]);
    let (_, body) = event.post(0, "/api/Auth/register-contestant", None, complete.clone()).await;
    assert_eq!(body["message"], "User field 'Rules' must be accepted");
    complete["userFields"] = json!([{"fieldId": student_id, "value": " S-42 "}, {"fieldId": consent, "value": "yes"}]);
    let (status, body) = event.post(0, "/api/Auth/register-contestant", None, complete.clone()).await;
    assert_eq!((status, body["message"].as_str()), (200, Some("Registration submitted")), "{body}");
    let (_, body) = event.post(0, "/api/Auth/register-contestant", None, complete).await;
    assert_eq!(body["message"], "Username has already been taken: carol");

    let user = event.store.get_user_by_name("carol").await.unwrap().unwrap();
    assert!(!user.verified && user.team_id.is_none());
    assert!(user.password_hash.as_deref().unwrap().starts_with("$argon2id$"));
    let values = event.store.user_field_values(user.id).await.unwrap();
    assert_eq!(values, vec![(student_id, "\"S-42\"".to_owned()), (consent, "true".to_owned())]);

    let login = |password: &str| json!({"username": "CAROL", "password": password});
    let (_, body) = event.post(0, "/api/Auth/login-contestant", None, login("Wrong!pw1")).await;
    assert_eq!(body["message"], "Invalid username or password", "the password is checked before the account state");
    let (_, body) = event.post(0, "/api/Auth/login-contestant", None, login(PASSWORD)).await;
    assert_eq!(body["message"], "Your account is not verified yet");
    event.store.update_user(user.id, &UserUpdate { verified: Some(true), ..UserUpdate::default() }).await.unwrap();
    let (_, body) = event.post(0, "/api/Auth/login-contestant", None, login(PASSWORD)).await;
    assert_eq!(body["message"], "You don't have a team yet");
    event.stop().await;
}

async fn registration_cap_race(kind: Kind) {
    const CAP: u32 = 3;
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("contestant_registration_enabled", "true"), ("num_users", &CAP.to_string())]).await;
    event.player("existing").await;
    event.start().await;
    let results = all_at_once(
        (0..12)
            .map(|index| {
                event.post(index, "/api/Auth/register-contestant", None, registration(&format!("racer{index}")))
            })
            .collect(),
    )
    .await;
    let accepted = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(accepted, (CAP - 1) as usize, "{results:?}");
    for (status, body) in results.iter().filter(|(status, _)| *status != 200) {
        let message = body["message"].as_str().unwrap();
        assert_eq!(*status, 400);
        assert!(
            message == "Reached the maximum number of users (3)" || message == "Registration is busy, please try again",
            "{message}"
        );
    }
    assert_eq!(event.store.count_active_players().await.unwrap(), i64::from(CAP));
    event.stop().await;
}

on_both_backends! {
    registration_cap_race => registration_cap_race_embedded, registration_cap_race_postgres_redis;
    registration_flow_with_custom_fields => registration_flow_with_custom_fields_embedded, registration_flow_with_custom_fields_postgres_redis;
    captcha_is_checked_when_configured => captcha_is_checked_when_configured_embedded, captcha_is_checked_when_configured_postgres_redis;
    imported_ctfd_hashes_are_upgraded_on_login => imported_ctfd_hashes_are_upgraded_on_login_embedded, imported_ctfd_hashes_are_upgraded_on_login_postgres_redis;
    account_states_and_password_change => account_states_and_password_change_embedded, account_states_and_password_change_postgres_redis;
    team_self_service => team_self_service_embedded, team_self_service_postgres_redis;
    per_address_rate_limit => per_address_rate_limit_embedded, per_address_rate_limit_postgres_redis;
}

/// A local stand-in for Cloudflare's siteverify: `response=good` is valid.
async fn fake_captcha() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/siteverify",
        post(move |body: String| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let ok = body.contains("response=good") && body.contains("secret=turnstile-secret");
                axum::Json(json!({"success": ok}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/siteverify"), calls)
}

async fn captcha_is_checked_when_configured(kind: Kind) {
    let (url, calls) = fake_captcha().await;
    let Some(mut event) = Event::prepare(kind, &[("FCTF_API__CAPTCHA_VERIFY_URL", url.as_str())]).await else { return };
    event
        .configure(&[("cloudflare_turnstile_secret_key", "turnstile-secret"), ("contestant_registration_enabled", "1")])
        .await;
    let (_, members) = event.team("alpha", 1).await;
    event.start().await;
    let name = &members[0].1;
    let (status, body) =
        event.post(0, "/api/Auth/login-contestant", None, json!({"username": name, "password": PASSWORD})).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Captcha validation failed")));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no token, no call");
    let bad = json!({"username": name, "password": PASSWORD, "captchaToken": "bad"});
    assert_eq!(event.post(0, "/api/Auth/login-contestant", None, bad).await.1["message"], "Captcha validation failed");
    let good = json!({"username": name, "password": PASSWORD, "captchaToken": "good"});
    let (status, body) = event.post(0, "/api/Auth/login-contestant", None, good).await;
    assert_eq!(status, 200, "{body}");
    let mut register = registration("dave");
    register["captchaToken"] = json!("bad");
    assert_eq!(
        event.post(0, "/api/Auth/register-contestant", None, register).await.1["message"],
        "Captcha validation failed"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    event.stop().await;
}

async fn imported_ctfd_hashes_are_upgraded_on_login(kind: Kind) {
    const PASSLIB: &str = "$bcrypt-sha256$v=2,t=2b,r=12$0mZ35JSikYcRUxPds2IKK.$G/4eI2JPqTURMzE34fgCa2qNRYdlnSC";
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (_, members) = event.team("alpha", 1).await;
    let update = UserUpdate { password_hash: Some(PASSLIB.into()), ..UserUpdate::default() };
    event.store.update_user(members[0].0, &update).await.unwrap();
    event.start().await;
    let login = json!({"username": members[0].1, "password": "Evoluti0n"});
    let (status, body) = event.post(0, "/api/Auth/login-contestant", None, login.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["team"]["teamName"], "alpha");
    let stored = event.store.get_user(members[0].0).await.unwrap().password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert_eq!(event.post(0, "/api/Auth/login-contestant", None, login).await.0, 200);
    event.stop().await;
}

async fn account_states_and_password_change(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    let (team, members) = event.team("alpha", 2).await;
    event.start().await;
    let (alice, bob) = (&members[0], &members[1]);
    let token = event.login(0, &alice.1).await;

    let change = |old: &str, new: &str, confirm: &str| json!({"oldPassword": old, "newPassword": new, "confirmPassword": confirm});
    let path = "/api/Auth/change-password";
    let (_, body) = event.post(0, path, Some(&token), change("Wrong!pw1", "N3w!pass", "N3w!pass")).await;
    assert_eq!(body["message"], "Old password is incorrect");
    let (_, body) = event.post(0, path, Some(&token), change(PASSWORD, "N3w!pass", "N3w!pasS")).await;
    assert_eq!(body["message"], "New password and confirm password do not match");
    let (_, body) = event.post(0, path, Some(&token), change(PASSWORD, "weak", "weak")).await;
    assert!(body["message"].as_str().unwrap().starts_with("New password must be 8-20"));
    let (status, body) = event.post(0, path, Some(&token), change(PASSWORD, "N3w!pass", "N3w!pass")).await;
    assert_eq!((status, body["message"].as_str()), (200, Some("Password changed successfully")));
    assert_eq!(event.get(1, "/api/Users/profile", Some(&token)).await.0, 200, "the current session survives");
    let login = json!({"username": alice.1, "password": "N3w!pass"});
    assert_eq!(event.post(0, "/api/Auth/login-contestant", None, login).await.0, 200);

    let bob_token = event.login(0, &bob.1).await;
    event.store.update_team(team, &fctf::store::TeamUpdate { banned: Some(true), ..Default::default() }).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = event.get(1, "/api/Users/profile", Some(&bob_token)).await;
    assert_eq!((status, body), (403, Value::String("Your team has been banned.".into())));
    let (_, body) =
        event.post(0, "/api/Auth/login-contestant", None, json!({"username": bob.1, "password": PASSWORD})).await;
    assert_eq!(body["message"], "Your team has been banned");
    event.stop().await;
}

async fn team_self_service(kind: Kind) {
    let Some(mut event) = Event::prepare(kind, &[]).await else { return };
    event.configure(&[("team_self_service", "true"), ("team_size", "2")]).await;
    for name in ["ann", "ben", "cid", "dot"] {
        event.player(name).await;
    }
    let challenge = event.challenge("warmup", |_| {}).await;
    event.start().await;
    let ann = event.login(0, "ann").await;
    let (status, body) =
        event.post(0, "/api/Team/create", Some(&ann), json!({"name": "Rockets", "password": "launch"})).await;
    assert_eq!(status, 200, "{body}");
    let invite = body["data"]["inviteCode"].as_str().unwrap().to_owned();
    let ann_new = body["generatedToken"].as_str().unwrap().to_owned();
    assert_eq!(event.get(1, "/api/Users/profile", Some(&ann)).await.0, 401, "the old token carried no team");
    let (status, body) = event.get(0, "/api/Users/profile", Some(&ann_new)).await;
    assert_eq!((status, body["data"]["team"].as_str()), (200, Some("Rockets")));
    let (_, body) = event.post(0, "/api/Team/create", Some(&ann_new), json!({"name": "Other"})).await;
    assert_eq!(body["message"], "You are already in a team");

    let ben = event.login(0, "ben").await;
    let (_, body) = event.post(0, "/api/Team/create", Some(&ben), json!({"name": "rockets"})).await;
    assert_eq!(body["message"], "Team name has already been taken");
    let (_, body) = event.post(0, "/api/Team/join", Some(&ben), json!({"name": "Rockets", "password": "wrong"})).await;
    assert_eq!(body["message"], "Invalid team name, password or invite code");
    let (status, body) =
        event.post(0, "/api/Team/join", Some(&ben), json!({"name": "Rockets", "password": "launch"})).await;
    assert_eq!(status, 200, "{body}");
    let ben_new = body["generatedToken"].as_str().unwrap().to_owned();

    let cid = event.login(0, "cid").await;
    let (_, body) = event.post(0, "/api/Team/join", Some(&cid), json!({"inviteCode": invite})).await;
    assert_eq!(body["message"], "The team is full");

    let solve = json!({"challengeId": challenge.get(), "submission": "FCTF{warmup}"});
    assert_eq!(event.post(0, "/api/Challenge/attempt", Some(&ann_new), solve).await.1["data"]["status"], "correct");
    let (_, body) = event.post(0, "/api/Team/leave", Some(&ann_new), json!({})).await;
    assert_eq!(body["message"], "You cannot leave a team after scoring for it");
    let (status, body) = event.post(0, "/api/Team/leave", Some(&ben_new), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = event.post(0, "/api/Team/join", Some(&cid), json!({"InviteCode": invite})).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = event.get(0, "/api/Team/contestant", Some(body["generatedToken"].as_str().unwrap())).await;
    assert_eq!(body["data"]["members"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"]["score"], 100);
    let captains: Vec<&str> = body["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|member| member["captain"] == true)
        .map(|member| member["name"].as_str().unwrap())
        .collect();
    assert_eq!(captains, vec!["ann"], "{body}");
    assert!(body["data"]["inviteCode"].is_null(), "only the captain sees the invite code: {body}");
    let (_, body) = event.get(0, "/api/Team/contestant", Some(&ann_new)).await;
    assert_eq!(body["data"]["inviteCode"].as_str(), Some(invite.as_str()), "{body}");

    let dot = event.login(0, "dot").await;
    event.reconfigure(&[("team_self_service", "false")]).await;
    assert_eq!(event.post(0, "/api/Team/create", Some(&dot), json!({"name": "Late"})).await.0, 403);
    event.stop().await;
}

async fn per_address_rate_limit(kind: Kind) {
    let limits = [("FCTF_API__RATE_LIMITS__IP_BURST", "5"), ("FCTF_API__RATE_LIMITS__IP_PER_SECOND", "0.5")];
    let Some(mut event) = Event::prepare(kind, &limits).await else { return };
    event.start().await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(event.get(0, "/api/Config/get_public_config", None).await);
    }
    assert!(statuses[..5].iter().all(|(status, _)| *status == 200));
    let (status, body) = &statuses[6];
    assert_eq!(*status, 429);
    assert!(body.as_str().unwrap().starts_with("API calls quota exceeded!"), "{body}");
    event.stop().await;
}
