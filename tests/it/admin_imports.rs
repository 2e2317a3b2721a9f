//! Bulk account import (`POST /api/v1/import/csv`), award edits (`PATCH /api/v1/awards/{id}`)
//! and the admin UI pages built on them: the import page with its one-time credentials, the
//! user page, brackets, custom fields and awards; and the audit entries of instance actions
//! taken from the UI on a running platform.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fctf::domain::{TeamId, UserId};
use fctf::store::{AuditQuery, NewUser, UserRole};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::admin_support::{AdminApi, Answer, Db, on_both_databases};
use crate::pipeline_support::{HTTP_SERVER, Platform, Topology};

async fn import(api: &AdminApi, kind: &str, csv: &[u8]) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/import/csv?type={kind}"))
        .header("authorization", format!("Token {}", api.admin.token))
        .header("content-type", "text/csv")
        .body(Body::from(csv.to_vec()))
        .unwrap();
    api.send(request).await
}

async fn imports_are_all_or_nothing(api: AdminApi) {
    let field = api.ok(Method::POST, "/api/v1/configs/fields", Some(&json!({"name": "School", "type": "user"}))).await;
    api.ok(Method::POST, "/api/v1/brackets", Some(&json!({"name": "Students", "type": "users"}))).await;
    let before = api.snapshot().await;
    let bad = import(
        &api,
        "users",
        b"name,email,team,country\nann,ann@example.test,Red,FR\nplayer,bad-address,,France\nann,,,\n",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["message"], "2 rows have problems; nothing was imported");
    assert_eq!(bad.body["rows"][0]["row"], 3);
    assert_eq!(
        bad.body["rows"][0]["errors"],
        json!([
            "name: player is already taken",
            "email: bad-address is not an e-mail address",
            "country: France is not a two-letter code such as FR"
        ])
    );
    assert_eq!(bad.body["rows"][1], json!({"row": 4, "errors": ["name: ann appears twice in the file"]}));
    assert_eq!(api.snapshot().await, before, "a refused file changes nothing");

    // Windows-1252 bytes (ë), a BOM-less header in another order, a custom field column.
    let good = b"Team,Name,Password,School,Bracket,Verified\nRed,zo\xEB,,Lyc\xE9e,students,\nRed,ann,given-password,,,no\n,solo,,,,\nplayers,joiner,,,,\n";
    let answer = import(&api, "users", good).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let users = answer.data()["users"].as_array().unwrap().clone();
    let names: Vec<&str> = users.iter().map(|user| user["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["zoë", "ann", "solo", "joiner"]);
    assert_eq!(answer.data()["teams"].as_array().unwrap().len(), 1, "Red is new; players already existed");
    assert_eq!(users[1]["password"], Value::Null, "given passwords are not echoed");
    let generated = users[0]["password"].as_str().unwrap().to_owned();
    let zoe = api.store.get_user(UserId(users[0]["id"].as_i64().unwrap())).await.unwrap();
    assert!(fctf::auth::verify_password(&generated, zoe.password_hash.as_deref().unwrap()));
    assert!(zoe.verified && zoe.bracket_id.is_some());
    let ann = api.store.get_user(UserId(users[1]["id"].as_i64().unwrap())).await.unwrap();
    assert!(fctf::auth::verify_password("given-password", ann.password_hash.as_deref().unwrap()));
    assert!(!ann.verified);
    assert_eq!(ann.team_id, zoe.team_id);
    let red = api.store.get_team(zoe.team_id.unwrap()).await.unwrap();
    assert_eq!((red.name.as_str(), red.captain_id), ("Red", Some(zoe.id)));
    assert_eq!(api.store.get_user(UserId(users[3]["id"].as_i64().unwrap())).await.unwrap().team_id, Some(api.team));
    let profile = api.ok(Method::GET, &format!("/api/v1/users/{}", zoe.id), None).await;
    assert_eq!(
        (profile["fields"][0]["field_id"].clone(), profile["fields"][0]["value"].clone()),
        (field["id"].clone(), json!("Lycée"))
    );

    let audit = api.store.list_audit(&AuditQuery { limit: 5, ..AuditQuery::default() }).await.unwrap();
    let entry = audit.iter().find(|entry| entry.entry.action == "import").expect("import audited");
    assert_eq!(entry.entry.target_type, "users");
    assert!(!entry.entry.after_json.clone().unwrap_or_default().contains(&generated), "no password in the audit log");

    let teams = import(&api, "teams", b"name,email,hidden\nBlue,blue@example.test,yes\nRED,,\n").await;
    assert_eq!(teams.status, StatusCode::BAD_REQUEST);
    assert_eq!(teams.body["rows"][0], json!({"row": 3, "errors": ["name: RED is already taken"]}));
    let teams = import(&api, "teams", b"name,email,hidden\nBlue,blue@example.test,yes\n").await;
    assert_eq!(teams.status, StatusCode::OK, "{}", teams.body);
    let blue = api.store.get_team(TeamId(teams.data()["teams"][0]["id"].as_i64().unwrap())).await.unwrap();
    assert!(blue.hidden && blue.password_hash.is_none());
    for (kind, body) in [("both", b"name\nx\n".as_slice()), ("users", b"".as_slice()), ("users", b"name,\"open\nx\n")] {
        let refused = import(&api, kind, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{kind}: {}", refused.body);
    }
    let jury =
        api.call(Method::POST, "/api/v1/import/csv?type=users", Some(&api.jury.token), Some(&json!("name\nx\n"))).await;
    assert_eq!(jury.status, StatusCode::FORBIDDEN);
}

async fn awards_can_be_edited(api: AdminApi) {
    let award = api
        .ok(Method::POST, "/api/v1/awards", Some(&json!({"user_id": api.player.id, "name": "Bonus", "value": 10})))
        .await;
    let path = format!("/api/v1/awards/{}", award["id"]);
    let edited =
        api.ok(Method::PATCH, &path, Some(&json!({"name": "Penalty", "value": -20, "category": "rules"}))).await;
    assert_eq!((edited["name"].clone(), edited["value"].clone()), (json!("Penalty"), json!(-20)));
    assert_eq!((edited["user_id"].clone(), edited["date"].clone()), (award["user_id"].clone(), award["date"].clone()));
    let moved = api.admin(Method::PATCH, &path, Some(&json!({"user_id": 1}))).await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST);
    let empty_name = api.admin(Method::PATCH, &path, Some(&json!({"name": ""}))).await;
    assert_eq!(empty_name.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.admin(Method::PATCH, "/api/v1/awards/999999", Some(&json!({}))).await.status, StatusCode::NOT_FOUND);
    let audit = api.store.list_audit(&AuditQuery { limit: 5, ..AuditQuery::default() }).await.unwrap();
    assert!(audit.iter().any(|entry| entry.entry.action == "update" && entry.entry.target_type == "award"));
}

on_both_databases! {
    import_csv => imports_are_all_or_nothing,
    award_edit => awards_can_be_edited,
}

// ---- the admin UI -------------------------------------------------------------------------

const PASSWORD: &str = "ui-test-password";

struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

async fn ui(api: &AdminApi, request: Request<Body>) -> Page {
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location =
        response.headers().get(header::LOCATION).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Page { status, location, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn request(method: Method, path: &str, cookie: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(path).header(header::HOST, "ctf.test").header(header::COOKIE, cookie)
}

async fn get(api: &AdminApi, path: &str, cookie: &str) -> Page {
    ui(api, request(Method::GET, path, cookie).body(Body::empty()).unwrap()).await
}

async fn post_form(api: &AdminApi, path: &str, cookie: &str, csrf: &str, form: &str) -> Page {
    let request = request(Method::POST, path, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("{form}&csrf={csrf}")))
        .unwrap();
    ui(api, request).await
}

async fn post_multipart(api: &AdminApi, path: &str, cookie: &str, parts: &[(&str, &str)]) -> Page {
    let boundary = "ui-import-boundary";
    let mut body = String::new();
    for (name, value) in parts {
        let file = if *name == "file" { "; filename=\"accounts.csv\"" } else { "" };
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let request = request(Method::POST, path, cookie)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from(body))
        .unwrap();
    ui(api, request).await
}

/// Logs `name` (a new admin) into the UI: (cookie, csrf token).
async fn login(api: &AdminApi, name: &str) -> (String, String) {
    let hash = fctf::auth::hash_password(PASSWORD).unwrap();
    let user = NewUser { name: name.into(), email: None, password_hash: hash, role: UserRole::Admin, verified: true };
    api.store.create_user(&user).await.unwrap();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/admin/login")
        .header(header::HOST, "ctf.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("name={name}&password={PASSWORD}")))
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = get(api, "/admin", &cookie).await;
    let marker = "name=\"csrf\" value=\"";
    let start = page.body.find(marker).expect("csrf field") + marker.len();
    (cookie.clone(), page.body[start..].split('"').next().unwrap().to_owned())
}

#[tokio::test]
async fn the_import_page_reports_rows_and_shows_credentials_once() {
    let api = AdminApi::new(Db::Sqlite).await.unwrap();
    let (cookie, csrf) = login(&api, "boss").await;
    let path = format!("/admin/import?csrf={csrf}");
    let without_csrf = post_multipart(&api, "/admin/import", &cookie, &[("type", "users"), ("csv", "name\nx\n")]).await;
    assert_eq!(without_csrf.status, StatusCode::FORBIDDEN);
    let refused =
        post_multipart(&api, &path, &cookie, &[("type", "users"), ("csv", "name,country\nkim,Korea\n")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("Problems by row"), "{}", refused.body);
    assert!(refused.body.contains("country: Korea is not a two-letter code"), "{}", refused.body);
    assert!(refused.body.contains("kim,Korea"), "the pasted text is kept for fixing");
    assert!(api.store.get_user_by_name("kim").await.unwrap().is_none());
    let empty = post_multipart(&api, &path, &cookie, &[("type", "users"), ("file", ""), ("csv", " ")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let done =
        post_multipart(&api, &path, &cookie, &[("type", "users"), ("file", "name,team\nkim,Seoul\nlee,Seoul\n")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Imported 2 user(s) and 1 new team(s)"));
    let marker = "download=\"credentials.csv\" href=\"data:text/csv;base64,";
    let start = done.body.find(marker).expect("credentials download") + marker.len();
    let encoded: String = done.body[start..].split('"').next().unwrap().replace("&#x2f;", "/").replace("&#43;", "+");
    use base64::Engine;
    let credentials =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).unwrap()).unwrap();
    let lines: Vec<&str> = credentials.lines().collect();
    assert_eq!(lines[0], "name,email,team,password");
    let kim_password = lines[1].strip_prefix("kim,,Seoul,").expect("kim's row").to_owned();
    let kim = api.store.get_user_by_name("kim").await.unwrap().unwrap();
    assert!(fctf::auth::verify_password(&kim_password, kim.password_hash.as_deref().unwrap()));
    assert!(done.body.contains(&kim_password), "shown on the page too");
    let again = get(&api, "/admin/import", &cookie).await;
    assert!(!again.body.contains(&kim_password), "shown only once");
    let template = get(&api, "/admin/import/template.csv?type=teams", &cookie).await;
    assert!(template.body.starts_with("name,email,password,website"), "{}", template.body);
}

#[tokio::test]
async fn user_brackets_fields_and_awards_pages_edit_through_the_api() {
    let api = AdminApi::new(Db::Sqlite).await.unwrap();
    let (cookie, csrf) = login(&api, "boss").await;
    let player = api.player.id;
    api.store.record_user_ip(player, "192.0.2.10").await.unwrap();
    api.store
        .create_session(player, "player-session", i64::MAX / 2, Some("192.0.2.10"), Some("TestBrowser/1"))
        .await
        .unwrap();

    let page = post_form(&api, "/admin/brackets", &cookie, &csrf, "name=Students&type=users&description=").await;
    assert!(page.location.contains("ok=Bracket+added"), "{}", page.location);
    let bracket = api.store.list_brackets().await.unwrap().pop().unwrap();
    let page =
        post_form(&api, &format!("/admin/brackets/{}", bracket.id), &cookie, &csrf, "name=Pupils&type=users").await;
    assert!(page.location.contains("ok="), "{}", page.location);
    assert!(get(&api, "/admin/brackets", &cookie).await.body.contains("Pupils"));
    let page =
        post_form(&api, "/admin/fields", &cookie, &csrf, "name=School&type=user&field_type=text&required=true").await;
    assert!(page.location.contains("ok="), "{}", page.location);
    let school = api.store.list_fields(Some("user")).await.unwrap().pop().unwrap();
    assert!(school.field.required && !school.field.public);

    let profile = format!(
        "name=player&email=p%40example.test&type=user&country=VN&bracket_id={}&password=&field_{}=MIT",
        bracket.id, school.id
    );
    let page = post_form(&api, &format!("/admin/users/{player}/profile"), &cookie, &csrf, &profile).await;
    assert!(page.location.contains("ok=Profile+saved"), "{}", page.location);
    let stored = api.store.get_user(player).await.unwrap();
    assert_eq!((stored.country.as_deref(), stored.bracket_id), (Some("VN"), Some(bracket.id)));
    let form = format!("user_id={player}&name=Bonus&value=15&back=%2Fadmin%2Fusers%2F{player}");
    let page = post_form(&api, "/admin/awards", &cookie, &csrf, &form).await;
    assert_eq!(page.location, format!("/admin/users/{player}?ok=Award+added"));
    let page = post_form(
        &api,
        &format!("/admin/users/{player}/set"),
        &cookie,
        &csrf,
        &format!("banned=true&back=/admin/users/{player}"),
    )
    .await;
    assert!(page.location.starts_with(&format!("/admin/users/{player}?ok=")), "{}", page.location);

    let detail = get(&api, &format!("/admin/users/{player}"), &cookie).await;
    assert_eq!(detail.status, StatusCode::OK);
    for expected in ["Unban", "MIT", "Bonus", "192.0.2.10", "TestBrowser/1", "Pupils", "ended "] {
        assert!(detail.body.contains(expected), "{expected} missing from the user page (the ban ended the session)");
    }
    let users = get(&api, "/admin/users?show=banned", &cookie).await;
    assert!(users.body.contains(&format!("href=\"/admin/users/{player}\"")), "banned users are listed");
    let award = api.store.list_awards(None, Some(player)).await.unwrap().pop().unwrap();
    let page =
        post_form(&api, &format!("/admin/awards/{}", award.id), &cookie, &csrf, "name=Bigger+bonus&value=30").await;
    assert!(page.location.contains("ok=Award+saved"), "{}", page.location);
    assert_eq!(api.store.get_award(award.id).await.unwrap().award.value, 30);
    for path in [
        format!("/admin/awards/{}/delete", award.id),
        format!("/admin/brackets/{}/delete", bracket.id),
        format!("/admin/fields/{}/delete", school.id),
    ] {
        let page = post_form(&api, &path, &cookie, &csrf, "").await;
        assert!(page.location.contains("ok="), "{path}: {}", page.location);
    }
    assert!(api.store.list_brackets().await.unwrap().is_empty());
    for path in ["/admin/awards/999999", "/admin/users/999999", "/admin/brackets/abc"] {
        assert!(get(&api, path, &cookie).await.status.is_client_error(), "{path}");
    }
    let bad = post_form(&api, "/admin/awards", &cookie, &csrf, "name=&value=lots").await;
    assert!(bad.location.contains("err="), "{}", bad.location);
}

#[tokio::test]
async fn jury_reads_account_pages_but_cannot_import_or_edit() {
    let api = AdminApi::new(Db::Sqlite).await.unwrap();
    let hash = fctf::auth::hash_password(PASSWORD).unwrap();
    let judge =
        NewUser { name: "judge9".into(), email: None, password_hash: hash, role: UserRole::Jury, verified: true };
    api.store.create_user(&judge).await.unwrap();
    let login = Request::builder()
        .method(Method::POST)
        .uri("/admin/login")
        .header(header::HOST, "ctf.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("name=judge9&password={PASSWORD}")))
        .unwrap();
    let response = api.router.clone().oneshot(login).await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let users = get(&api, "/admin/users", &cookie).await;
    assert!(!users.body.contains("/admin/import"), "jury is not offered the import");
    for path in ["/admin/brackets", "/admin/fields", "/admin/awards", &format!("/admin/users/{}", api.player.id)] {
        assert_eq!(get(&api, path, &cookie).await.status, StatusCode::OK, "{path}");
    }
    for path in ["/admin/import", "/admin/import/template.csv", "/admin/awards/1"] {
        assert_eq!(get(&api, path, &cookie).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let detail = get(&api, &format!("/admin/users/{}", api.player.id), &cookie).await;
    assert!(!detail.body.contains("Save profile") && !detail.body.contains(">Ban<"), "read-only for jury");
}

/// Logs into the UI of a running platform over HTTP: (cookie, csrf token).
async fn login_over_http(platform: &Platform) -> (String, String) {
    let hash = fctf::auth::hash_password(PASSWORD).unwrap();
    let user = NewUser { name: "ops".into(), email: None, password_hash: hash, role: UserRole::Admin, verified: true };
    platform.store.create_user(&user).await.unwrap();
    let response = platform
        .http
        .post(format!("{}/admin/login", platform.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=ops&password={PASSWORD}"))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = platform.http.get(format!("{}/admin", platform.api)).header("cookie", &cookie).send().await.unwrap();
    let body = page.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("csrf field") + marker.len();
    (cookie, body[start..].split('"').next().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instance_actions_from_the_ui_are_audited() {
    let Some(platform) = Platform::start(Topology::Embedded, &[], &[]).await else { return };
    let challenge = platform.challenge("Audited", HTTP_SERVER).await;
    let (cookie, csrf) = login_over_http(&platform).await;
    let post = |path: String, form: String| {
        platform
            .http
            .post(format!("{}{path}", platform.api))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("{form}&csrf={csrf}"))
            .send()
    };
    for (op, target) in [("start", "preview"), ("stop", "preview"), ("start", "shared")] {
        let response =
            post(format!("/admin/challenges/{challenge}/instance"), format!("op={op}&target={target}")).await.unwrap();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.contains("ok="), "{op} {target}: {location}");
    }
    let response = post("/admin/instances/stop".into(), format!("ids={challenge}:{}", fctf::domain::TeamId::SHARED))
        .await
        .unwrap();
    assert!(response.headers()["location"].to_str().unwrap().contains("ok="));
    let audit = platform.store.list_audit(&AuditQuery { limit: 20, ..AuditQuery::default() }).await.unwrap();
    let mut seen: Vec<(String, i64, i64)> = Vec::new();
    for entry in audit.iter().filter(|entry| entry.entry.target_type == "instance") {
        assert_eq!(entry.entry.actor_name, "ops");
        let after: Value = serde_json::from_str(entry.entry.after_json.as_deref().unwrap()).unwrap();
        assert!(after.get("token").is_none() && after["state"].is_string(), "{after}");
        assert_eq!(after["challenge_id"], json!(challenge.get()));
        seen.push((
            entry.entry.action.clone(),
            after["team_id"].as_i64().unwrap(),
            after["challenge_id"].as_i64().unwrap(),
        ));
    }
    seen.reverse();
    let (preview, shared, id) =
        (fctf::domain::TeamId::PREVIEW.get(), fctf::domain::TeamId::SHARED.get(), challenge.get());
    assert_eq!(
        seen,
        [
            ("start".into(), preview, id),
            ("stop".into(), preview, id),
            ("start".into(), shared, id),
            ("stop".into(), shared, id)
        ]
    );
    platform.stop().await;
}
