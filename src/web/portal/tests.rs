//! Router-level tests of the portal: rendering, CSRF rejection, safe Markdown, logged-out
//! redirects, log in through the form and a flag submission, on SQLite in memory.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

use crate::api::ApiState;
use crate::app::{Deps, RoleSet};
use crate::cache::Cache;
use crate::config::{Overrides, Secrets};
use crate::metrics::Metrics;
use crate::store::{NewChallenge, NewFlag, NewTeam, NewUser, Store, UserRole};

struct Harness {
    router: axum::Router,
    store: Store,
    cookies: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert("FCTF_DATA_DIR".to_owned(), dir.path().display().to_string());
        let settings = crate::config::load_from(None, &env, &Overrides::default()).unwrap();
        let store = crate::store::testing::sqlite_memory_store().await.unwrap();
        let deps = Deps {
            settings: Arc::new(settings),
            roles: RoleSet::parse(&["all".to_owned()]).unwrap(),
            store: Some(store.clone()),
            cache: Cache::memory("test:"),
            producer: None,
            consumer: None,
            runtime: None,
            secrets: Secrets::random(),
            metrics: Metrics::new(),
            control: Default::default(),
        };
        let state = ApiState::new(&deps).await.unwrap();
        Self { router: crate::api::router(state), store, cookies: HashMap::new(), _dir: dir }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut request = Request::builder().method(method).uri(path);
        let cookie = self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ");
        if !cookie.is_empty() {
            request = request.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish())
            }
            None => Body::empty(),
        };
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
        Page { status, location, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(fields)).await
    }

    /// The CSRF token of a rendered page.
    fn csrf(page: &Page) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = page.body.find(marker).expect("a form with a csrf token") + marker.len();
        page.body[start..].split('"').next().unwrap().to_owned()
    }

    async fn player_in_team(&self, name: &str) {
        let hash = crate::auth::hash_password("S3cret!pw").unwrap();
        let user = self
            .store
            .create_user(&NewUser {
                name: name.into(),
                email: None,
                password_hash: hash,
                role: UserRole::User,
                verified: true,
            })
            .await
            .unwrap();
        let team = self.store.create_team(&NewTeam { name: "Team A".into(), ..NewTeam::default() }).await.unwrap();
        self.store.add_team_member(team.id, user, None).await.unwrap();
    }

    async fn log_in(&mut self, name: &str) {
        let page = self.get("/login").await;
        let csrf = Self::csrf(&page);
        let page = self.post("/login", &[("csrf", &csrf), ("username", name), ("password", "S3cret!pw")]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location, "/challenges");
        assert!(self.cookies.contains_key(super::SESSION_COOKIE));
    }
}

#[tokio::test]
async fn pages_render_and_private_pages_redirect_to_login() {
    let mut harness = Harness::new().await;
    let home = harness.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("<html lang=\"en\""), "{}", home.body);
    assert!(home.body.contains("href=\"/login\""));
    assert!(harness.cookies.contains_key(crate::web::csrf::COOKIE), "first visit issues the CSRF cookie");
    for page in ["/login", "/register", "/scoreboard", "/static/style.css", "/static/app.js"] {
        assert_eq!(harness.get(page).await.status, StatusCode::OK, "{page}");
    }
    for private in
        ["/challenges", "/challenges/1", "/team", "/profile", "/tickets", "/notifications", "/log", "/instances"]
    {
        let page = harness.get(private).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{private}");
        assert!(page.location.starts_with("/login?next="), "{private}: {}", page.location);
    }
    assert_eq!(harness.get("/events").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_rejected() {
    let mut harness = Harness::new().await;
    harness.player_in_team("alice").await;
    harness.get("/login").await;
    for token in ["", "00", "not hex at all"] {
        let page = harness.post("/login", &[("csrf", token), ("username", "alice"), ("password", "S3cret!pw")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(!harness.cookies.contains_key(super::SESSION_COOKIE));
    }
    // A token from another browser (another CSRF cookie) is refused too.
    let mut other = Harness::new().await;
    let foreign = Harness::csrf(&other.get("/login").await);
    let page = harness.post("/login", &[("csrf", &foreign), ("username", "alice"), ("password", "S3cret!pw")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    harness.log_in("alice").await;
    let page = harness.post("/logout", &[("csrf", "00")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(harness.cookies.contains_key(super::SESSION_COOKIE), "the session survives a forged logout");
}

#[tokio::test]
async fn challenge_descriptions_are_rendered_safely_and_flags_get_a_verdict() {
    let mut harness = Harness::new().await;
    harness.player_in_team("alice").await;
    let challenge = harness
        .store
        .create_challenge(&NewChallenge {
            name: "warmup".into(),
            category: "web".into(),
            value: 100,
            description: "**bold** <script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))"
                .into(),
            ..NewChallenge::default()
        })
        .await
        .unwrap();
    harness
        .store
        .create_flag(&NewFlag {
            challenge_id: challenge.id,
            kind: "static".into(),
            content: "FCTF{ok}".into(),
            data: None,
        })
        .await
        .unwrap();
    harness.log_in("alice").await;

    let board = harness.get("/challenges").await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(board.body.contains(&format!("href=\"/challenges/{}\"", challenge.id.get())), "{}", board.body);

    let path = format!("/challenges/{}", challenge.id.get());
    let page = harness.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<strong>bold</strong>"));
    assert!(!page.body.contains("<script>alert"), "raw script must be escaped");
    assert!(!page.body.contains("<img src=x"), "raw HTML must be escaped");
    assert!(!page.body.contains("javascript:"), "unsafe link schemes must be dropped");

    let csrf = Harness::csrf(&page);
    let submit = format!("{path}/submit");
    let wrong = harness.post(&submit, &[("csrf", &csrf), ("flag", "nope")]).await;
    assert_eq!((wrong.status, wrong.location.as_str()), (StatusCode::SEE_OTHER, path.as_str()));
    let shown = harness.get(&path).await;
    assert!(shown.body.contains("flash error") && shown.body.contains("Incorrect"), "{}", shown.body);
    assert!(!harness.get(&path).await.body.contains("flash error"), "a flash message is shown once");

    harness.post(&submit, &[("csrf", &csrf), ("flag", "FCTF{ok}")]).await;
    let solved = harness.get(&path).await;
    assert!(solved.body.contains("Correct! +100 points"), "{}", solved.body);
    assert!(solved.body.contains("Your team solved this challenge."));

    let board = harness.get("/scoreboard").await;
    assert!(board.body.contains("<svg class=\"graph wide\""), "{}", board.body);
    assert!(board.body.contains("<svg class=\"graph compact\""), "{}", board.body);
    assert!(board.body.contains("class=\"me\""));
}

#[tokio::test]
async fn a_revoked_session_cookie_is_dropped() {
    let mut harness = Harness::new().await;
    harness.player_in_team("alice").await;
    harness.log_in("alice").await;
    assert_eq!(harness.get("/team").await.status, StatusCode::OK);
    let stolen = harness.cookies[super::SESSION_COOKIE].clone();
    let csrf = Harness::csrf(&harness.get("/team").await);
    let out = harness.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!harness.cookies.contains_key(super::SESSION_COOKIE));
    // Replaying the old cookie after logout: the contestant session check refuses it.
    harness.cookies.insert(super::SESSION_COOKIE.to_owned(), stolen);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let page = harness.get("/team").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location.starts_with("/login"));
    assert!(!harness.cookies.contains_key(super::SESSION_COOKIE), "the dead cookie is cleared");
}
