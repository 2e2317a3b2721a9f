//! The admin API: a CTFd v1-compatible subset under `/api/v1` (`shared/spec/admin-api.md`),
//! large enough for `ctfcli` 0.1.8 (`install`, `sync`, `verify`, `mirror`, `pages`, `instance
//! config`, `media`) and for scripts written against CTFd, plus `/files/<dir>/<name>`
//! downloads for staff.
//!
//! Shape: every route is one row of the route table ([`route_table`]): method, path, the
//! [`Access`] level it needs, and its handler. The same table builds the router and drives the
//! guard (a route layer that authenticates the caller, checks the role against the row and
//! hands the [`Actor`] to the handler), so a route cannot exist without an access rule, and the
//! authorization test walks the table so that no route is forgotten.
//!
//! Decisions where the spec is silent:
//! - `/api/v1` is the *staff* API: players use the FCTF-compatible contestant API, so CTFd's
//!   public endpoints (brackets, notifications, scoreboard) need a staff token here too.
//! - Admins may pass `user_id` to `POST /api/v1/tokens` to create a token for another staff
//!   account (how jury and challenge writers get API tokens without the admin UI).
//! - `GET /api/v1/tickets`, `GET`/`PATCH /api/v1/tickets/{id}` (jury's ticket answers) and
//!   `GET /api/v1/audit` (the audit log) are fctf additions, as are the instance and image-build
//!   routes ([`instances`], [`builds`]), which act only through the deployment center.
//! - One route stands outside the table and the guard: `GET /build-contexts/{token}`, which a
//!   build pod (holding no credentials) fetches with a short-lived signed token
//!   ([`builds::context`]).
//! - Every mutation is written to the audit log (actor, role, action, target, before/after,
//!   IP) after it succeeded; an audit write that fails is logged as an error and does not undo
//!   the change.

pub mod auth;
pub mod error;
pub mod input;
pub mod reply;
pub mod storage;

mod accounts;
mod audit;
pub mod builds;
mod challenge_fields;
pub(crate) mod challenges;
mod children;
mod configs;
mod crud;
mod files;
mod forms;
mod hints;
pub mod imports;
mod instances;
mod pages;
mod profiles;
mod results;
mod scoreboard;
mod signals;
mod solutions;
mod teams;
mod tickets;
mod tokens;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

pub use auth::{Access, Actor};
pub use children::FLAG_TYPES;
pub use error::AdminError;

use super::ApiState;

/// HTTP methods used by the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    /// The HTTP method.
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// One row of the route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRoute {
    /// Method.
    pub verb: Verb,
    /// axum path template (`{id}` marks a parameter).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// The largest file upload accepted by `POST /api/v1/files`.
pub const MAX_UPLOAD_BYTES: usize = 512 * 1024 * 1024;

struct Table {
    router: Router<ApiState>,
    routes: Vec<AdminRoute>,
}

impl Table {
    fn add<H, T>(self, verb: Verb, path: &'static str, access: Access, handler: H) -> Self
    where
        H: axum::handler::Handler<T, ApiState>,
        T: 'static,
    {
        self.add_router(verb, path, access, on(verb.filter(), handler))
    }

    fn add_router(mut self, verb: Verb, path: &'static str, access: Access, route: MethodRouter<ApiState>) -> Self {
        self.router = self.router.route(path, route);
        self.routes.push(AdminRoute { verb, path, access });
        self
    }
}

fn table() -> Table {
    use Access::{ChallengeRead as CR, ChallengeWrite as CW, Read as R, Staff as S, Tickets as T, Write as W};
    use Verb::{Get, Post};
    let table = Table { router: Router::new(), routes: Vec::new() };
    let table = challenges::routes(table, CR, CW, R);
    let table = children::routes(table, CR, CW);
    let table = hints::routes(table, CR, CW);
    let table = files::routes(table, CR, CW);
    let table = instances::routes(table, R, W, CR, CW);
    let table = builds::routes(table, CR, CW);
    let table = users::routes(table, R, W);
    let table = teams::routes(table, R, W);
    let table = accounts::routes(table, R, W);
    let table = configs::routes(table, R, W);
    let table = results::routes(table, R, W);
    let table = scoreboard::routes(table, R);
    let table = pages::routes(table, R, W);
    let table = solutions::routes(table, CR, CW);
    let table = tokens::routes(table, S);
    let table = tickets::routes(table, T, W);
    let table = imports::routes(table, W);
    table.add(Get, "/api/v1/audit", R, audit::list).add_router(
        Post,
        "/api/v1/files",
        CW,
        axum::routing::post(files::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
    )
}

/// Every admin route with its access level (the authorization test walks this list).
pub fn route_table() -> Vec<AdminRoute> {
    table().routes
}

#[derive(Clone)]
struct Guard {
    state: ApiState,
    access: Arc<HashMap<(Method, String), Access>>,
}

/// The admin API router (guarded); merge it into the api router.
pub fn router(state: ApiState) -> Router<ApiState> {
    let Table { router, routes } = table();
    let access = routes.iter().map(|route| ((route.verb.method(), route.path.to_owned()), route.access)).collect();
    let guard = Guard { state, access: Arc::new(access) };
    router
        .route_layer(axum::middleware::from_fn_with_state(guard, guard_request))
        .route(builds::CONTEXT_ROUTE, axum::routing::get(builds::context))
}

/// Authenticates the caller and checks the route's access level before the handler runs.
async fn guard_request(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let method = if request.method() == Method::HEAD { Method::GET } else { request.method().clone() };
    let Some(path) = request.extensions().get::<MatchedPath>().map(|matched| matched.as_str().to_owned()) else {
        return AdminError::NotFound.into_response();
    };
    let Some(access) = guard.access.get(&(method, path)).copied() else {
        // Not in the table for this method: let the router answer 405.
        return next.run(request).await;
    };
    let state = &guard.state;
    let ip = auth::client_ip(request.extensions(), request.headers(), &state.trusted_proxies);
    match auth::authenticate(&state.store, &state.secrets, request.method(), request.headers(), ip).await {
        Err(error) => error.into_response(),
        Ok(None) => AdminError::Unauthorized("Authentication required: send `Authorization: Token <token>`".into())
            .into_response(),
        Ok(Some(actor)) if !access.allows(actor.role) => AdminError::Forbidden(format!(
            "Your role ({}) does not have the permission to access this resource",
            actor.role.as_str()
        ))
        .into_response(),
        Ok(Some(actor)) => {
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| AdminError::Unauthorized("Authentication required".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_route_appears_once_with_an_access_level() {
        let routes = route_table();
        let mut seen = HashSet::new();
        for route in &routes {
            assert!(seen.insert((route.verb, route.path)), "duplicate route {route:?}");
            assert!(route.path.starts_with("/api/v1/") || route.path.starts_with("/files/"), "{route:?}");
        }
        assert!(routes.len() > 80, "{} routes", routes.len());
    }
}
