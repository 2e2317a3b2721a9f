//! Custom pages (`/api/v1/pages`, used by `ctf pages`): the list leaves `content` out, routes
//! are unique and stored without a leading `/` (CTFd strips it). Read, create, update and
//! delete are the shared CRUD handlers ([`super::crud`]).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::Access;
use super::crud::{self, Resource};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, Opt, QueryParams};
use super::reply::ok;
use super::{Table, Verb};
use crate::api::ApiState;
use crate::store::{FileRecord, NewPage, Page};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/pages", read, list)
        .add(Post, "/api/v1/pages", write, crud::create::<Page>)
        .add(Get, "/api/v1/pages/{id}", read, crud::get::<Page>)
        .add(Patch, "/api/v1/pages/{id}", write, crud::update::<Page>)
        .add(Delete, "/api/v1/pages/{id}", write, crud::delete::<Page>)
}

fn summary(page: &Page) -> Value {
    let body = &page.page;
    json!({
        "id": page.id, "title": body.title, "route": body.route, "draft": body.draft, "hidden": body.hidden,
        "auth_required": body.auth_required, "format": body.format, "link_target": body.link_target,
    })
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let id = query.int("id")?;
    let mut data = Vec::new();
    for page in state.store.list_pages().await? {
        let body = &page.page;
        if id.is_some_and(|wanted| wanted != page.id)
            || query.text("title").is_some_and(|title| title != body.title)
            || query.text("route").is_some_and(|route| route.trim_start_matches('/') != body.route)
            || query.bool("draft")?.is_some_and(|draft| draft != body.draft)
            || query.bool("hidden")?.is_some_and(|hidden| hidden != body.hidden)
            || query.bool("auth_required")?.is_some_and(|auth| auth != body.auth_required)
        {
            continue;
        }
        if let Some(needle) = query.text("q") {
            let haystack = match query.text("field").unwrap_or("title") {
                "title" => &body.title,
                "route" => &body.route,
                "content" => &body.content,
                _ => return Err(AdminError::field("field", "must be title, route or content")),
            };
            if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
                continue;
            }
        }
        data.push(summary(&page));
    }
    Ok(ok(data))
}

fn page_fields(fields: &mut Fields<'_>, page: &mut NewPage, creating: bool) {
    match fields.text("title", 80) {
        Opt::Set(title) => page.title = title,
        Opt::Null => page.title.clear(),
        Opt::Absent => {}
    }
    let route = if creating || fields.has("route") { fields.required_text("route", 128) } else { None };
    if let Some(route) = route {
        let trimmed = route.trim().trim_start_matches('/').to_owned();
        if trimmed.is_empty() || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            fields.error("route", "must be a path without spaces");
        }
        page.route = trimmed;
    }
    match fields.text("content", 1_000_000) {
        Opt::Set(content) => page.content = content,
        Opt::Null => page.content.clear(),
        Opt::Absent => {}
    }
    if let Opt::Set(format) = fields.choice("format", &["markdown", "html"]) {
        page.format = format;
    }
    match fields.choice("link_target", &["_self", "_blank"]) {
        Opt::Set(target) => page.link_target = Some(target),
        Opt::Null => page.link_target = None,
        Opt::Absent => {}
    }
    for (key, target) in
        [("draft", &mut page.draft), ("hidden", &mut page.hidden), ("auth_required", &mut page.auth_required)]
    {
        if let Some(value) = fields.bool(key).patch() {
            *target = value.unwrap_or(false);
        }
    }
}

const ROUTE_TAKEN: &[(&str, &str, &str)] = &[("pages_route_uq", "route", "Another page already uses this route")];

impl Resource for Page {
    const KIND: &'static str = "page";

    fn id(&self) -> i64 {
        self.id
    }

    fn view(&self) -> Value {
        let mut data = summary(self);
        data["content"] = json!(self.page.content);
        data
    }

    async fn load(state: &ApiState, id: i64) -> AdminResult<Self> {
        Ok(state.store.get_page(id).await?)
    }

    async fn create(state: &ApiState, body: &Map<String, Value>) -> AdminResult<Self> {
        let mut fields = Fields::new(body);
        let mut page = NewPage { format: "markdown".into(), ..NewPage::default() };
        page_fields(&mut fields, &mut page, true);
        fields.finish()?;
        state.store.create_page(&page).await.map_err(|error| AdminError::from_store_on(error, ROUTE_TAKEN))
    }

    async fn update(state: &ApiState, current: &Self, body: &Map<String, Value>) -> AdminResult<Self> {
        let mut fields = Fields::new(body);
        let mut page = current.page.clone();
        page_fields(&mut fields, &mut page, false);
        fields.finish()?;
        state.store.update_page(current.id, &page).await.map_err(|error| AdminError::from_store_on(error, ROUTE_TAKEN))
    }

    async fn remove(state: &ApiState, id: i64) -> AdminResult<bool> {
        Ok(state.store.delete_page(id).await?)
    }

    fn owns(record: &FileRecord, id: i64) -> bool {
        record.page_id == Some(id)
    }
}
