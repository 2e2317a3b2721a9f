//! Router-level tests of the admin UI (`/admin`): login required, CSRF, role restrictions per
//! page, and no 5xx on bad form input. Runs the api role's real router without sockets.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fctf::store::{NewUser, UserRole};
use tower::ServiceExt;

use crate::admin_support::{AdminApi, Db};

const PASSWORD: &str = "ui-test-password";

struct Reply {
    status: StatusCode,
    location: String,
    set_cookie: String,
    body: String,
}

async fn send(api: &AdminApi, method: Method, path: &str, cookie: Option<&str>, form: Option<&str>) -> Reply {
    let mut builder = Request::builder().method(method).uri(path).header(header::HOST, "ctf.test");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    if form.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = builder.body(form.map(|text| Body::from(text.to_owned())).unwrap_or_else(Body::empty)).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value: &header::HeaderValue| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (status, location, set_cookie) =
        (response.status(), header_text(header::LOCATION), header_text(header::SET_COOKIE));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply { status, location, set_cookie, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// A staff account with a password; returns (cookie, csrf token) of its UI session.
async fn login_as(api: &AdminApi, name: &str, role: UserRole) -> (String, String) {
    let hash = fctf::auth::hash_password(PASSWORD).unwrap();
    api.store
        .create_user(&NewUser { name: name.into(), email: None, password_hash: hash, role, verified: true })
        .await
        .unwrap();
    let form = format!("name={name}&password={PASSWORD}&next=%2Fadmin");
    let reply = send(api, Method::POST, "/admin/login", None, Some(&form)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(reply.set_cookie.contains("HttpOnly") && reply.set_cookie.contains("SameSite=Strict"));
    let cookie = reply.set_cookie.split(';').next().unwrap().to_owned();
    let page = send(api, Method::GET, "/admin", Some(&cookie), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let marker = "name=\"csrf\" value=\"";
    let start = page.body.find(marker).expect("csrf field") + marker.len();
    let csrf = page.body[start..].split('"').next().unwrap().to_owned();
    (cookie, csrf)
}

async fn event() -> AdminApi {
    AdminApi::new(Db::Sqlite).await.unwrap()
}

#[tokio::test]
async fn pages_need_a_login_and_wrong_credentials_are_refused() {
    let api = event().await;
    for path in ["/admin", "/admin/challenges", "/admin/users", "/admin/instances", "/admin/scoreboard.csv"] {
        let reply = send(&api, Method::GET, path, None, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert!(reply.location.starts_with("/admin/login?next="), "{path}: {}", reply.location);
    }
    let reply = send(&api, Method::POST, "/admin/config", None, Some("ctf_name=x")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.location.starts_with("/admin/login"));
    let reply = send(&api, Method::GET, "/admin", Some("fctf_admin_session=forged"), None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    login_as(&api, "boss", UserRole::Admin).await;
    let reply = send(&api, Method::POST, "/admin/login", None, Some("name=boss&password=wrong")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.set_cookie.is_empty());
    let hash = fctf::auth::hash_password(PASSWORD).unwrap();
    let player =
        NewUser { name: "gamer".into(), email: None, password_hash: hash, role: UserRole::User, verified: true };
    api.store.create_user(&player).await.unwrap();
    let reply = send(&api, Method::POST, "/admin/login", None, Some(&format!("name=gamer&password={PASSWORD}"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "players cannot open the admin UI");
    let reply = send(&api, Method::GET, "/admin/login?next=https%3A%2F%2Fevil.test", None, None).await;
    assert!(!reply.body.contains("evil.test"), "open redirect in next");
}

#[tokio::test]
async fn posts_need_the_sessions_csrf_token() {
    let api = event().await;
    let (cookie, csrf) = login_as(&api, "boss", UserRole::Admin).await;
    let (other_cookie, other_csrf) = login_as(&api, "boss2", UserRole::Admin).await;
    assert_ne!(csrf, other_csrf);
    for form in [
        "ctf_name=Hacked".to_owned(),
        "ctf_name=Hacked&csrf=00".to_owned(),
        format!("ctf_name=Hacked&csrf={other_csrf}"),
    ] {
        let reply = send(&api, Method::POST, "/admin/config", Some(&cookie), Some(&form)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{form}");
    }
    assert_ne!(api.state.event.current().ctf_name, "Hacked");
    let reply = send(
        &api,
        Method::POST,
        "/admin/notifications",
        Some(&other_cookie),
        Some(&format!("title=t&content=c&csrf={csrf}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/admin/notifications")
        .header(header::HOST, "ctf.test")
        .header(header::ORIGIN, "https://evil.test")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("title=t&content=c&csrf={csrf}")))
        .unwrap();
    assert_eq!(api.router.clone().oneshot(request).await.unwrap().status(), StatusCode::FORBIDDEN);
    let form = format!("ctf_name=Renamed&user_mode=teams&score_visibility=public&csrf={csrf}");
    let reply = send(&api, Method::POST, "/admin/config", Some(&cookie), Some(&form)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.location.contains("ok="), "{}", reply.location);
    api.state.event.reload().await.unwrap();
    assert_eq!(api.state.event.current().ctf_name, "Renamed");
    let audit = api.store.list_audit(&fctf::store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert!(
        audit.iter().any(|entry| entry.entry.actor_name == "boss"),
        "changes are audited under the viewer: {audit:?}"
    );
}

#[tokio::test]
async fn roles_see_only_their_pages() {
    let api = event().await;
    let (jury, jury_csrf) = login_as(&api, "judge2", UserRole::Jury).await;
    let (writer, writer_csrf) = login_as(&api, "author2", UserRole::Writer).await;
    for path in ["/admin/challenges", "/admin/users", "/admin/tickets", "/admin/scoreboard", "/admin/logs"] {
        assert_eq!(send(&api, Method::GET, path, Some(&jury), None).await.status, StatusCode::OK, "jury {path}");
    }
    assert_eq!(send(&api, Method::GET, "/admin/challenges/new", Some(&jury), None).await.status, StatusCode::FORBIDDEN);
    let create = format!("name=x&category=y&value=10&type=standard&state=hidden&csrf={jury_csrf}");
    let reply = send(&api, Method::POST, "/admin/challenges", Some(&jury), Some(&create)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "jury cannot edit challenges");
    assert!(api.store.list_challenges().await.unwrap().is_empty());
    for path in ["/admin/users", "/admin/teams", "/admin/tickets", "/admin/config", "/admin/instances", "/admin/logs"] {
        assert_eq!(
            send(&api, Method::GET, path, Some(&writer), None).await.status,
            StatusCode::FORBIDDEN,
            "writer {path}"
        );
    }
    let dashboard = send(&api, Method::GET, "/admin", Some(&writer), None).await;
    assert!(!dashboard.body.contains("href=\"/admin/users\""), "writer's navigation lists users");
    let create = format!("name=Writer+made&category=web&value=10&type=standard&state=hidden&csrf={writer_csrf}");
    let reply = send(&api, Method::POST, "/admin/challenges", Some(&writer), Some(&create)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(api.store.list_challenges().await.unwrap().len(), 1);
    let reply =
        send(&api, Method::POST, "/admin/users/1/set", Some(&writer), Some(&format!("banned=true&csrf={writer_csrf}")))
            .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_form_input_never_answers_5xx() {
    let api = event().await;
    let (cookie, csrf) = login_as(&api, "boss", UserRole::Admin).await;
    let posts = [
        ("/admin/challenges", "name=&value=abc&type=bogus&decay=-1&prerequisites=x,999"),
        ("/admin/challenges/999999", "name=x&value=1"),
        ("/admin/challenges/999999/add/flags", "content="),
        ("/admin/challenges/999999/add/hints", "cost=lots"),
        ("/admin/challenges/1/add/nope", "value=x"),
        ("/admin/challenges/1/remove", "kind=nope&child=x"),
        ("/admin/challenges/1/instance", "op=explode"),
        ("/admin/config", "start=yesterday&limit_challenges=-5&user_mode=chaos"),
        ("/admin/users", "name=&password="),
        ("/admin/users/999999/set", "verified=true"),
        ("/admin/users/1/set", ""),
        ("/admin/teams/999999/set", "captain_id=abc"),
        ("/admin/teams/999999/members", "user_id=1"),
        ("/admin/submissions/999999", "op=correct"),
        ("/admin/tickets/999999", "replier_message="),
        ("/admin/instances/stop", "ids=garbage&ids=1:x"),
        ("/admin/scoreboard/freeze", "op=freeze"),
        ("/admin/notifications", "title="),
    ];
    for (path, form) in posts {
        let reply = send(&api, Method::POST, path, Some(&cookie), Some(&format!("{form}&csrf={csrf}"))).await;
        assert!(reply.status.as_u16() < 500, "POST {path} {form}: {} {}", reply.status, reply.body);
    }
    for path in [
        "/admin/challenges/abc",
        "/admin/challenges/999999",
        "/admin/teams/999999",
        "/admin/instances/999999/logs",
        "/admin/tickets/x",
        "/admin/submissions?page=-3&type=zzz",
        "/admin/static/nope.css",
    ] {
        let reply = send(&api, Method::GET, path, Some(&cookie), None).await;
        assert!(reply.status.is_client_error(), "GET {path}: {}", reply.status);
    }
    let reply = send(
        &api,
        Method::POST,
        "/admin/challenges",
        Some(&cookie),
        Some(&format!("name=Bad&category=c&value=abc&csrf={csrf}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.location.contains("err="), "{}", reply.location);
}
