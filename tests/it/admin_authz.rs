//! Authorization of every admin route, generated from the route table so that none is
//! forgotten: 401 without credentials, 403 for a player, and for jury, challenge writer and
//! admin exactly what the role model allows (checked against an independent statement of the
//! rules, not only against the table). Plus the token and session mechanics.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fctf::api::admin::{Verb, route_table};
use fctf::store::UserRole;
use serde_json::json;

use crate::admin_support::{AdminApi, on_both_databases};

/// The role rules, written independently of the route table.
fn expected(role: UserRole, verb: Verb, path: &str) -> bool {
    let challenge_area = [
        "/api/v1/challenges",
        "/api/v1/flags",
        "/api/v1/hints",
        "/api/v1/tags",
        "/api/v1/topics",
        "/api/v1/files",
        "/api/v1/solutions",
        "/files/",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
        && path != "/api/v1/challenges/{id}/solves";
    let own_tokens = path.starts_with("/api/v1/tokens");
    match role {
        UserRole::Admin => true,
        UserRole::User => false,
        UserRole::Jury => verb == Verb::Get || own_tokens || (path == "/api/v1/tickets/{id}" && verb == Verb::Patch),
        UserRole::Writer => challenge_area || own_tokens,
    }
}

/// A concrete path for a template; ids point at nothing, so allowed calls change nothing.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "999999")
        .replace("{key}", "no_such_key")
        .replace("{column}", "no_such_column")
        .replace("{count}", "5")
        .replace("{dir}", "0123abcd")
        .replace("{name}", "static")
}

async fn every_route_enforces_its_role(api: AdminApi) {
    let routes = route_table();
    assert!(routes.len() > 100, "{} routes", routes.len());
    let body = json!({});
    for route in &routes {
        let path = concrete(route.path);
        let method = route.verb.method();
        let anonymous = api.call(method.clone(), &path, None, Some(&body)).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path} without a token: {}", anonymous.body);
        assert_eq!(anonymous.body["success"], false);
        let player = api.call(method.clone(), &path, Some(&api.player.token), Some(&body)).await;
        assert_eq!(player.status, StatusCode::FORBIDDEN, "{method} {path} as a player: {}", player.body);
        for (role, token) in [
            (UserRole::Jury, &api.jury.token),
            (UserRole::Writer, &api.writer.token),
            (UserRole::Admin, &api.admin.token),
        ] {
            let allowed = expected(role, route.verb, route.path);
            assert_eq!(
                route.access.allows(role),
                allowed,
                "route table disagrees for {role:?} on {method} {}",
                route.path
            );
            let answer = api.call(method.clone(), &path, Some(token), Some(&body)).await;
            assert!(!answer.status.is_server_error(), "{method} {path} as {role:?}: {} {}", answer.status, answer.body);
            if allowed {
                assert!(
                    answer.status != StatusCode::UNAUTHORIZED && answer.status != StatusCode::FORBIDDEN,
                    "{role:?} must be allowed {method} {path}: {} {}",
                    answer.status,
                    answer.body
                );
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{role:?} must be refused {method} {path}: {}",
                    answer.body
                );
            }
        }
    }
}

async fn roles_work_with_real_requests(api: AdminApi) {
    let challenge = json!({"name": "by writer", "value": 10, "category": "misc"});
    let created = api.call(Method::POST, "/api/v1/challenges", Some(&api.writer.token), Some(&challenge)).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.data()["id"].as_i64().unwrap();
    let refused = api
        .call(Method::PATCH, &format!("/api/v1/challenges/{id}"), Some(&api.jury.token), Some(&json!({"value": 1})))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let read = api.call(Method::GET, &format!("/api/v1/challenges/{id}"), Some(&api.jury.token), None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.data()["value"], 10);
    let users = api.call(Method::GET, "/api/v1/users", Some(&api.writer.token), None).await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    let users = api.call(Method::GET, "/api/v1/users", Some(&api.jury.token), None).await;
    assert_eq!(users.status, StatusCode::OK);
    let page = api
        .call(Method::POST, "/api/v1/pages", Some(&api.jury.token), Some(&json!({"route": "x", "title": "x"})))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let upload =
        api.upload(&api.writer.token, &[("type", "page"), ("location", "media/a.png")], &[("a.png", b"png")]).await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN, "{}", upload.body);
    let upload = api
        .upload(&api.writer.token, &[("type", "challenge"), ("challenge_id", &id.to_string())], &[("a.txt", b"a")])
        .await;
    assert_eq!(upload.status, StatusCode::OK, "{}", upload.body);
    // Every change is in the audit log with its actor and role.
    let audit = api.ok(Method::GET, "/api/v1/audit?target_type=challenge", None).await;
    let entry = &audit[0];
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["actor_role"], "challenge_writer");
    assert_eq!(entry["actor_name"], "author");
    assert_eq!(entry["after"]["name"], "by writer");
    assert_eq!(entry["before"], serde_json::Value::Null);
}

async fn tokens_expire_and_are_revoked(api: AdminApi) {
    // Bearer works like Token, whatever the content type.
    let request = Request::builder()
        .uri("/api/v1/challenges")
        .header("authorization", format!("Bearer {}", api.admin.token))
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.send(request).await.status, StatusCode::OK);
    for header in ["Token", "Token a b", "Token fctf_0000"] {
        let request =
            Request::builder().uri("/api/v1/challenges").header("authorization", header).body(Body::empty()).unwrap();
        let answer = api.send(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{header}: {}", answer.body);
        assert!(answer.body["message"].is_string());
    }
    let created = api.ok(Method::POST, "/api/v1/tokens", Some(&json!({"description": "ci"}))).await;
    let value = created["value"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert!(value.starts_with("fctf_") && value.len() == 69, "{value}");
    assert!(created["expiration"].is_string());
    assert_eq!(api.call(Method::GET, "/api/v1/users", Some(&value), None).await.status, StatusCode::OK);
    let listed = api.ok(Method::GET, "/api/v1/tokens", None).await;
    assert!(listed.as_array().unwrap().iter().all(|token| token.get("value").is_none()), "values are shown once");
    api.ok(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(api.call(Method::GET, "/api/v1/users", Some(&value), None).await.status, StatusCode::UNAUTHORIZED);
    // An expired token is refused; a token in the past cannot be created.
    let (expired, digest) = fctf::auth::new_api_token();
    api.store.create_api_token(api.admin.id, &digest, Some(chrono::Utc::now().timestamp() - 1), "old").await.unwrap();
    assert_eq!(api.call(Method::GET, "/api/v1/users", Some(&expired), None).await.status, StatusCode::UNAUTHORIZED);
    let past = api.admin(Method::POST, "/api/v1/tokens", Some(&json!({"expiration": "2001-01-01"}))).await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert!(past.body["errors"]["expiration"].is_array());
    // Admins mint tokens for other staff; others only for themselves and cannot see others'.
    let for_jury = api.ok(Method::POST, "/api/v1/tokens", Some(&json!({"user_id": api.jury.id}))).await;
    let jury_token = for_jury["value"].as_str().unwrap();
    assert_eq!(api.call(Method::GET, "/api/v1/users", Some(jury_token), None).await.status, StatusCode::OK);
    let forbidden =
        api.call(Method::POST, "/api/v1/tokens", Some(&api.jury.token), Some(&json!({"user_id": api.admin.id}))).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let hidden = api.call(Method::GET, &format!("/api/v1/tokens/{id}"), Some(&api.jury.token), None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    // A banned staff account's token stops working at once.
    api.ok(Method::PATCH, &format!("/api/v1/users/{}", api.writer.id), Some(&json!({"banned": true}))).await;
    let banned = api.call(Method::GET, "/api/v1/challenges", Some(&api.writer.token), None).await;
    assert_eq!(banned.status, StatusCode::FORBIDDEN);
    let self_ban =
        api.admin(Method::PATCH, &format!("/api/v1/users/{}", api.admin.id), Some(&json!({"banned": true}))).await;
    assert_eq!(self_ban.status, StatusCode::BAD_REQUEST);
}

async fn sessions_need_csrf_for_changes(api: AdminApi) {
    let admin = api.store.get_user(api.admin.id).await.unwrap();
    let session = fctf::api::admin::auth::open_session(&api.store, &api.state.secrets, &admin, 3600, None, None, false)
        .await
        .unwrap();
    assert!(session.set_cookie.contains("HttpOnly") && session.set_cookie.contains("SameSite=Strict"));
    let cookie = session.set_cookie.split(';').next().unwrap().to_owned();
    let get = Request::builder().uri("/api/v1/users").header("cookie", &cookie).body(Body::empty()).unwrap();
    assert_eq!(api.send(get).await.status, StatusCode::OK);
    let body = json!({"name": "csrf", "value": 1}).to_string();
    let without = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/challenges")
        .header("cookie", &cookie)
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(api.send(without).await.status, StatusCode::FORBIDDEN);
    let with = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/challenges")
        .header("cookie", &cookie)
        .header("csrf-token", &session.csrf_token)
        .body(Body::from(body))
        .unwrap();
    let answer = api.send(with).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let player = api.store.get_user(api.player.id).await.unwrap();
    assert!(
        fctf::api::admin::auth::open_session(&api.store, &api.state.secrets, &player, 3600, None, None, false)
            .await
            .is_err()
    );
    // A second login revokes the first session; logging out ends the second.
    let second = fctf::api::admin::auth::open_session(&api.store, &api.state.secrets, &admin, 3600, None, None, true)
        .await
        .unwrap();
    assert!(second.set_cookie.ends_with("; Secure"));
    let stale = Request::builder().uri("/api/v1/users").header("cookie", &cookie).body(Body::empty()).unwrap();
    assert_eq!(api.send(stale).await.status, StatusCode::UNAUTHORIZED);
    let second_cookie = second.set_cookie.split(';').next().unwrap().to_owned();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("cookie", second_cookie.parse().unwrap());
    let cleared = fctf::api::admin::auth::close_session(&api.store, &headers).await.unwrap();
    assert!(cleared.contains("Max-Age=0"));
    let after_logout =
        Request::builder().uri("/api/v1/users").header("cookie", &second_cookie).body(Body::empty()).unwrap();
    assert_eq!(api.send(after_logout).await.status, StatusCode::UNAUTHORIZED);
}

on_both_databases! {
    every_route => every_route_enforces_its_role,
    real_requests => roles_work_with_real_requests,
    tokens => tokens_expire_and_are_revoked,
    sessions => sessions_need_csrf_for_changes,
}
