//! Bad input never causes a 5xx and never changes anything: every admin route that reads a
//! body gets malformed and wrongly typed bodies (and the upload route malformed multipart),
//! every GET route gets nonsense query parameters, and the whole event (every row of every
//! table, the audit log included) and the files directory must be exactly as before.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fctf::api::admin::{Verb, route_table};
use serde_json::{Value, json};

use crate::admin_support::{AdminApi, on_both_databases};

/// Ids of one existing object per resource, so that validation (not a 404) answers.
struct Fixture {
    ids: Vec<(&'static str, i64)>,
    file_location: String,
}

async fn fixture(api: &AdminApi) -> Fixture {
    let challenge =
        api.ok(Method::POST, "/api/v1/challenges", Some(&json!({"name": "target", "value": 10}))).await["id"]
            .as_i64()
            .unwrap();
    let flag =
        api.ok(Method::POST, "/api/v1/flags", Some(&json!({"challenge_id": challenge, "content": "f"}))).await["id"]
            .as_i64()
            .unwrap();
    let hint =
        api.ok(Method::POST, "/api/v1/hints", Some(&json!({"challenge_id": challenge, "content": "h"}))).await["id"]
            .as_i64()
            .unwrap();
    let tag = api.ok(Method::POST, "/api/v1/tags", Some(&json!({"challenge_id": challenge, "value": "t"}))).await["id"]
        .as_i64()
        .unwrap();
    let link = api
        .ok(
            Method::POST,
            "/api/v1/topics",
            Some(&json!({"challenge_id": challenge, "value": "p", "type": "challenge"})),
        )
        .await;
    let solution = api
        .ok(Method::POST, "/api/v1/solutions", Some(&json!({"challenge_id": challenge, "content": "s"})))
        .await["id"]
        .as_i64()
        .unwrap();
    let upload = api
        .upload(
            &api.admin.token,
            &[("type", "challenge"), ("challenge_id", &challenge.to_string())],
            &[("f.txt", b"f")],
        )
        .await;
    let file = upload.data()[0]["id"].as_i64().unwrap();
    let file_location = upload.data()[0]["location"].as_str().unwrap().to_owned();
    let bracket = api.ok(Method::POST, "/api/v1/brackets", Some(&json!({"name": "b"}))).await["id"].as_i64().unwrap();
    let field =
        api.ok(Method::POST, "/api/v1/configs/fields", Some(&json!({"name": "f"}))).await["id"].as_i64().unwrap();
    let award = api
        .ok(Method::POST, "/api/v1/awards", Some(&json!({"user_id": api.player.id, "name": "a", "value": 1})))
        .await["id"]
        .as_i64()
        .unwrap();
    let submission = api
        .ok(
            Method::POST,
            "/api/v1/submissions",
            Some(&json!({"challenge_id": challenge, "user_id": api.player.id, "provided": "x", "type": "incorrect"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let notification =
        api.ok(Method::POST, "/api/v1/notifications", Some(&json!({"title": "n", "content": "n"}))).await["id"]
            .as_i64()
            .unwrap();
    let token = api.ok(Method::POST, "/api/v1/tokens", Some(&json!({}))).await["id"].as_i64().unwrap();
    let page = api.ok(Method::POST, "/api/v1/pages", Some(&json!({"route": "p"}))).await["id"].as_i64().unwrap();
    let ticket = api
        .store
        .create_ticket(&fctf::store::NewTicket {
            author_id: api.player.id,
            title: "t".into(),
            kind: "Question".into(),
            description: "d".into(),
        })
        .await
        .unwrap()
        .id;
    api.ok(Method::PATCH, "/api/v1/configs", Some(&json!({"ctf_name": "Fuzz", "start": 5}))).await;
    Fixture {
        ids: vec![
            ("/api/v1/challenges/", challenge),
            ("/api/v1/flags/", flag),
            ("/api/v1/hints/", hint),
            ("/api/v1/tags/", tag),
            ("/api/v1/topics/", link["topic_id"].as_i64().unwrap()),
            ("/api/v1/files/", file),
            ("/api/v1/solutions/", solution),
            ("/api/v1/users/", api.player.id.get()),
            ("/api/v1/teams/", api.team.get()),
            ("/api/v1/brackets/", bracket),
            ("/api/v1/configs/fields/", field),
            ("/api/v1/awards/", award),
            ("/api/v1/submissions/", submission),
            ("/api/v1/notifications/", notification),
            ("/api/v1/tokens/", token),
            ("/api/v1/pages/", page),
            ("/api/v1/tickets/", ticket),
        ],
        file_location,
    }
}

impl Fixture {
    fn concrete(&self, template: &str) -> String {
        let id = self.ids.iter().find(|(prefix, _)| template.starts_with(prefix)).map(|(_, id)| *id).unwrap_or(1);
        let (dir, name) = self.file_location.split_once('/').unwrap();
        template
            .replace("{id}", &id.to_string())
            .replace("{key}", "start")
            .replace("{column}", "type")
            .replace("{count}", "3")
            .replace("{dir}", dir)
            .replace("{name}", if template.starts_with("/files/") { name } else { "static" })
    }
}

/// Wrong types for every key the admin API reads, plus invalid event settings.
fn wrongly_typed() -> Value {
    json!({
        "name": {}, "title": {}, "content": {}, "value": {}, "challenge_id": "abc", "challenge": "abc",
        "user_id": "abc", "team_id": "abc", "type": {}, "state": 17, "description": [], "key": [], "route": [],
        "cost": "lots", "password": 3, "email": [], "provided": [], "expiration": "garbage", "replier_message": [],
        "requirements": "nope", "data": [], "fields": "x", "captain_id": "x", "bracket_id": "x", "hidden": "maybe",
        "format": 7, "category": [], "sound": "loud", "start": "never", "user_mode": "both", "paused": "maybe",
        "next_id": "x", "initial": "x", "topic_id": "x", "field_type": [], "status": [], "link_target": 3,
    })
}

fn bodies() -> Vec<Vec<u8>> {
    let long = "x".repeat(70_000);
    vec![
        b"{".to_vec(),
        b"[1, 2]".to_vec(),
        b"\"text\"".to_vec(),
        b"null".to_vec(),
        vec![0xff, 0xfe, 0x00],
        wrongly_typed().to_string().into_bytes(),
        json!({"name": long, "title": long, "content": {}, "value": long, "key": long, "route": long, "user_id": -1,
               "challenge_id": -5, "type": long, "start": long, "replier_message": {}, "expiration": long})
        .to_string()
        .into_bytes(),
    ]
}

fn files_on_disk(api: &AdminApi) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![api.data_dir.path().join("files")];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

async fn bad_input_is_refused_and_changes_nothing(api: AdminApi) {
    let fixture = fixture(&api).await;
    let before = api.snapshot().await;
    let disk = files_on_disk(&api);
    let mut checked = 0;
    for route in route_table() {
        let path = fixture.concrete(route.path);
        let method = route.verb.method();
        let reads_body = matches!(route.verb, Verb::Post | Verb::Patch)
            || (route.verb == Verb::Delete && (route.path == "/api/v1/topics" || route.path.ends_with("/members")));
        if reads_body {
            for body in bodies() {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(&path)
                    .header("authorization", format!("Token {}", api.admin.token))
                    .header("content-type", "application/json")
                    .body(Body::from(body.clone()))
                    .unwrap();
                let answer = api.send(request).await;
                assert!(
                    answer.status.is_client_error(),
                    "{method} {path} with {:?}: {} {}",
                    String::from_utf8_lossy(&body),
                    answer.status,
                    answer.body
                );
                assert_eq!(answer.body["success"], false, "{method} {path}: {}", answer.body);
                if answer.status == StatusCode::BAD_REQUEST {
                    assert!(answer.body["errors"].is_object(), "{method} {path}: D3 shape: {}", answer.body);
                }
                checked += 1;
            }
        }
        if route.verb == Verb::Get {
            let query = "page=x&per_page=-5&challenge_id=x&user_id=x&team_id=x&type=nope&field=nope&q=a&since_id=x\
                         &bracket_id=x&function=nope&target=nope&limit=x&view=admin&hidden=maybe";
            let answer = api.admin(method.clone(), &format!("{path}?{query}"), None).await;
            assert!(!answer.status.is_server_error(), "GET {path}?{query}: {} {}", answer.status, answer.body);
            checked += 1;
        }
    }
    for (content_type, body) in [
        ("multipart/form-data; boundary=xyz", b"--abc\r\nnot a part\r\n".to_vec()),
        ("multipart/form-data", b"--xyz--\r\n".to_vec()),
        ("text/plain", b"file".to_vec()),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/files")
            .header("authorization", format!("Token {}", api.admin.token))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let answer = api.send(request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{content_type}: {}", answer.body);
    }
    for fields in [
        vec![("type", "challenge"), ("challenge_id", "abc")],
        vec![("type", "challenge"), ("challenge_id", "424242")],
        vec![("type", "nope")],
        vec![("type", "page"), ("location", "../../etc/passwd")],
        vec![("type", "solution")],
    ] {
        let answer = api.upload(&api.admin.token, &fields, &[("evil.txt", b"payload")]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{fields:?}: {}", answer.body);
    }
    let answer = api.upload(&api.admin.token, &[("type", "page")], &[("../escape", b"payload")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(checked > 300, "{checked} requests");
    assert_eq!(api.snapshot().await, before, "bad input changed the event");
    assert_eq!(files_on_disk(&api), disk, "bad input changed the files directory");
}

on_both_databases! {
    bad_input => bad_input_is_refused_and_changes_nothing,
}
