//! Custom pages (`/api/v1/pages`, used by `ctf pages`): the list leaves `content` out, routes
//! are unique and stored without a leading `/` (CTFd strips it).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams};
use super::reply::{done, ok};
use super::storage::FileStorage;
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::store::{NewPage, Page};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/pages", read, list)
        .add(Post, "/api/v1/pages", write, create)
        .add(Get, "/api/v1/pages/{id}", read, get)
        .add(Patch, "/api/v1/pages/{id}", write, update)
        .add(Delete, "/api/v1/pages/{id}", write, delete)
}

fn summary(page: &Page) -> Value {
    let body = &page.page;
    json!({
        "id": page.id, "title": body.title, "route": body.route, "draft": body.draft, "hidden": body.hidden,
        "auth_required": body.auth_required, "format": body.format, "link_target": body.link_target,
    })
}

fn view(page: &Page) -> Value {
    let mut data = summary(page);
    data["content"] = json!(page.page.content);
    data
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

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let mut page = NewPage { format: "markdown".into(), ..NewPage::default() };
    page_fields(&mut fields, &mut page, true);
    fields.finish()?;
    let created =
        state.store.create_page(&page).await.map_err(|error| AdminError::from_store_on(error, ROUTE_TAKEN))?;
    let after = view(&created);
    audit::record(&state, &actor, "create", "page", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(view(&state.store.get_page(id).await?)))
}

async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_page(id).await?;
    let mut fields = Fields::new(&body);
    let mut page = current.page.clone();
    page_fields(&mut fields, &mut page, false);
    fields.finish()?;
    let updated =
        state.store.update_page(id, &page).await.map_err(|error| AdminError::from_store_on(error, ROUTE_TAKEN))?;
    let (before, after) = (view(&current), view(&updated));
    audit::record(&state, &actor, "update", "page", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_page(id).await?;
    let locations: Vec<String> = state
        .store
        .list_file_records()
        .await?
        .into_iter()
        .filter(|record| record.page_id == Some(id))
        .map(|record| record.file.location)
        .collect();
    if !state.store.delete_page(id).await? {
        return Err(AdminError::NotFound);
    }
    let storage = FileStorage::new(&state.deps.settings.data_dir);
    for location in locations {
        if let Err(error) = storage.remove(&location).await {
            tracing::warn!(%error, location, "could not remove a deleted page's file");
        }
    }
    audit::record(&state, &actor, "delete", "page", Some(id.to_string()), Some(&view(&current)), None).await;
    Ok(done())
}
