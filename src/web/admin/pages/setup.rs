//! Brackets (`/admin/brackets`), custom registration fields (`/admin/fields`) and awards
//! (`/admin/awards`): list, create, edit and delete through the admin API.
//!
//! The three are the same kind of page, so each is described once as a [`Resource`] (its API
//! path, columns, form and the API body of a submitted form) and served by the same four
//! handlers. Forms may carry a `back` field (a local `/admin/…` path) to return somewhere else
//! after a change: the user page adds awards that way.

use axum::extract::{Extension, Path, Query};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Fields, field, flag, iso_when, items};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::web::admin::FlashQuery;
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{
    Block, Button, Cell, Field, Form as UiForm, Page, Table, UiError, UiResult, redirect_with,
};

/// How a list column shows its value.
#[derive(Debug, Clone, Copy)]
enum Show {
    Text,
    YesNo,
    /// A link to `<prefix><value>` (empty values stay empty).
    Link(&'static str),
    /// An ISO date shortened to `YYYY-MM-DD HH:MM`.
    Date,
}

/// One kind of editable object.
#[derive(Debug)]
pub struct Resource {
    /// Page title of the list.
    title: &'static str,
    /// What one of them is called ("bracket").
    singular: &'static str,
    /// UI path of the list.
    base: &'static str,
    /// Admin API path of the list.
    api: &'static str,
    /// The API reads one object at `{api}/{id}` (brackets have no such route: the list is
    /// searched instead).
    get_one: bool,
    /// The list can be filtered by user and team id.
    owner_filter: bool,
    /// Navigation entry marked as current.
    nav: &'static str,
    /// Text under the title.
    intro: &'static str,
    /// Columns: (heading, key, how).
    columns: &'static [(&'static str, &'static str, Show)],
    /// The form inputs, filled from the current object (`Null` when creating).
    form: fn(&Value, bool) -> Vec<Field>,
    /// The API body of a submitted form (`true` when creating).
    body: fn(&Fields, bool) -> Value,
}

static BRACKETS: Resource = Resource {
    title: "Brackets",
    singular: "bracket",
    base: "/admin/brackets",
    api: "/api/v1/brackets",
    get_one: false,
    owner_filter: false,
    nav: "/admin/users",
    intro: "Brackets divide the scoreboard (for example students and professionals). Put users or teams in a \
            bracket from their page or the CSV import.",
    columns: &[
        ("Id", "id", Show::Text),
        ("Name", "name", Show::Text),
        ("For", "type", Show::Text),
        ("Description", "description", Show::Text),
    ],
    form: |current, _| {
        let kind = field(current, "type");
        vec![
            Field::new("text", "name", "Name", field(current, "name")).required(),
            Field::select(
                "type",
                "For",
                if kind.is_empty() { "users" } else { &kind },
                &[("users", "Users"), ("teams", "Teams")],
            ),
            Field::new("textarea", "description", "Description", field(current, "description")),
        ]
    },
    body: |fields, _| json!({"name": fields.raw("name").trim(), "type": fields.get("type"), "description": fields.raw("description")}),
};

static FIELDS: Resource = Resource {
    title: "Custom fields",
    singular: "custom field",
    base: "/admin/fields",
    api: "/api/v1/configs/fields",
    get_one: true,
    owner_filter: false,
    nav: "/admin/users",
    intro: "Extra questions on the registration form of users or teams. Their answers appear on each account's \
            page and can be filled by the CSV import (a column named like the field).",
    columns: &[
        ("Id", "id", Show::Text),
        ("Name", "name", Show::Text),
        ("For", "type", Show::Text),
        ("Kind", "field_type", Show::Text),
        ("Required", "required", Show::YesNo),
        ("Public", "public", Show::YesNo),
        ("Editable", "editable", Show::YesNo),
    ],
    form: |current, creating| {
        let kind = field(current, "type");
        let field_type = field(current, "field_type");
        vec![
            Field::new("text", "name", "Name", field(current, "name")).required(),
            Field::select(
                "type",
                "For",
                if kind.is_empty() { "user" } else { &kind },
                &[("user", "Users"), ("team", "Teams")],
            ),
            Field::select(
                "field_type",
                "Kind",
                if field_type.is_empty() { "text" } else { &field_type },
                &[("text", "Text"), ("boolean", "Yes / no")],
            ),
            Field::new("textarea", "description", "Description", field(current, "description")),
            Field::checkbox("required", "Required at registration", flag(current, "required")),
            Field::checkbox("public", "Shown on public profiles", flag(current, "public")),
            Field::checkbox("editable", "Editable by the player", creating || flag(current, "editable")),
        ]
    },
    body: |fields, _| {
        json!({
            "name": fields.raw("name").trim(), "type": fields.get("type"), "field_type": fields.get("field_type"),
            "description": fields.raw("description"), "required": fields.checked("required"),
            "public": fields.checked("public"), "editable": fields.checked("editable"),
        })
    },
};

static AWARDS: Resource = Resource {
    title: "Awards",
    singular: "award",
    base: "/admin/awards",
    api: "/api/v1/awards",
    get_one: true,
    owner_filter: true,
    nav: "/admin/scoreboard",
    intro: "Points given or taken by hand: a bonus, or a penalty with a negative value. In teams mode an award to \
            a user counts for their team.",
    columns: &[
        ("Id", "id", Show::Text),
        ("Name", "name", Show::Text),
        ("Value", "value", Show::Text),
        ("Category", "category", Show::Text),
        ("User", "user_id", Show::Link("/admin/users/")),
        ("Team", "team_id", Show::Link("/admin/teams/")),
        ("Date", "date", Show::Date),
    ],
    form: |current, creating| {
        let mut inputs = Vec::new();
        if creating {
            inputs.push(Field::new("number", "user_id", "User id", field(current, "user_id")));
            inputs.push(
                Field::new("number", "team_id", "Team id", field(current, "team_id")).help("Users mode: leave empty"),
            );
        }
        inputs.push(Field::new("text", "name", "Name", field(current, "name")).required());
        inputs.push(Field::new("number", "value", "Value (negative: penalty)", field(current, "value")).required());
        inputs.push(Field::new("text", "category", "Category", field(current, "category")));
        inputs.push(Field::new("text", "icon", "Icon", field(current, "icon")));
        inputs.push(Field::new("textarea", "description", "Description", field(current, "description")));
        inputs
    },
    body: |fields, creating| {
        let mut body = Map::new();
        if creating {
            for key in ["user_id", "team_id"] {
                if let Some(number) = fields.number(key) {
                    body.insert(key.into(), number);
                }
            }
        }
        body.insert("name".into(), json!(fields.raw("name").trim()));
        body.insert("value".into(), fields.number("value").unwrap_or(Value::Null));
        body.insert("description".into(), json!(fields.raw("description")));
        for key in ["category", "icon"] {
            body.insert(key.into(), json!(fields.get(key)));
        }
        Value::Object(body)
    },
};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    [&BRACKETS, &FIELDS, &AWARDS].into_iter().fold(router, |router, resource: &'static Resource| {
        router
            .route(
                resource.base,
                get(move |api, staff, query| list(resource, api, staff, query))
                    .post(move |api, staff, form| create(resource, api, staff, form)),
            )
            .route(
                &format!("{}/{{id}}", resource.base),
                get(move |api, staff, id, flash| edit(resource, api, staff, id, flash))
                    .post(move |api, staff, id, form| update(resource, api, staff, id, form)),
            )
            .route(
                &format!("{}/{{id}}/delete", resource.base),
                post(move |api, staff, id, form| delete(resource, api, staff, id, form)),
            )
    })
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    user_id: Option<String>,
    team_id: Option<String>,
    ok: Option<String>,
    err: Option<String>,
}

fn cell(value: &Value, key: &str, show: Show) -> Cell {
    let text = field(value, key);
    match show {
        Show::Text => Cell::text(text),
        Show::YesNo => Cell::text(if flag(value, key) { "yes" } else { "no" }),
        Show::Link(_) if text.is_empty() => Cell::text(""),
        Show::Link(prefix) => Cell::link(&text, format!("{prefix}{text}")),
        Show::Date => Cell::text(iso_when(&text)),
    }
}

/// Where to go after a change: a local `back` path from the form, or `default`.
fn back_to(fields: &Fields, default: &str) -> String {
    match fields.get("back") {
        Some(path) if path.starts_with("/admin/") && !path.contains("//") && !path.contains('\\') => path.to_owned(),
        _ => default.to_owned(),
    }
}

/// The table of `list` with edit links and delete buttons (writers only).
pub fn resource_table(resource: &Resource, caption: &str, list: &Value, write: bool, back: &str) -> Table {
    let mut headings: Vec<&str> = resource.columns.iter().map(|(heading, _, _)| *heading).collect();
    headings.push("");
    let mut table = Table::new(caption, &headings);
    for entry in items(list) {
        let id = field(entry, "id");
        let mut cells: Vec<Cell> = resource.columns.iter().map(|(_, key, show)| cell(entry, key, *show)).collect();
        let mut actions = Cell::default();
        if write {
            actions = Cell::link("Edit", format!("{}/{id}", resource.base));
            let action = format!("{}/{id}/delete", resource.base);
            actions.buttons.push(Button::new("Delete", action, &[("back", back)]).danger());
        }
        cells.push(actions);
        table.row(cells);
    }
    table
}

/// The creation form of `resource`, prefilled from `current`, returning to `back`.
pub fn create_form(resource: &Resource, current: &Value, back: &str) -> UiForm {
    let mut form = UiForm::post(
        format!("Add {} {}", article(resource.singular), resource.singular),
        resource.base,
        format!("Add {}", resource.singular),
    );
    form.fields = (resource.form)(current, true);
    form.fields.push(Field::new("hidden", "back", "", back));
    form
}

async fn list(
    resource: &'static Resource,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let mut filter = String::new();
    for (key, value) in [("user_id", &query.user_id), ("team_id", &query.team_id)] {
        if let Some(id) = value.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
            filter.push_str(&format!("{}{key}={}", if filter.is_empty() { '?' } else { '&' }, super::encode(id)));
        }
    }
    let list = api.get(&staff, &format!("{}{filter}", resource.api)).await?;
    let flash = FlashQuery { ok: query.ok.clone(), err: query.err.clone() };
    let mut page = Page::new(&staff, resource.title, resource.nav).flash(&flash);
    page.push(Block::Text(resource.intro.into()));
    if resource.owner_filter {
        page.push(Block::Form(
            UiForm::filter(resource.base)
                .field(Field::new("number", "user_id", "User id", query.user_id.clone().unwrap_or_default()))
                .field(Field::new("number", "team_id", "Team id", query.team_id.clone().unwrap_or_default())),
        ));
    }
    let write = staff.can(Access::Write);
    page.push(Block::Table(resource_table(resource, resource.title, &list, write, resource.base)));
    if write {
        page.push(Block::Form(create_form(resource, &Value::Null, resource.base)));
    }
    Ok(page)
}

async fn create(
    resource: &'static Resource,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let done = format!("{} added", capitalized(resource.singular));
    let outcome = api.change(&staff, Method::POST, resource.api, &(resource.body)(&fields, true), &done).await?;
    Ok(redirect_with(&back_to(&fields, resource.base), outcome))
}

fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

async fn edit(
    resource: &'static Resource,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::Write)?;
    let current = if resource.get_one {
        api.get(&staff, &format!("{}/{id}", resource.api)).await?
    } else {
        let list = api.get(&staff, resource.api).await?;
        let wanted = id.to_string();
        items(&list).iter().find(|entry| field(entry, "id") == wanted).cloned().ok_or_else(UiError::not_found)?
    };
    let title = format!("Edit {}: {}", resource.singular, field(&current, "name"));
    let mut page = Page::new(&staff, title, resource.nav).flash(&flash);
    page.push(Block::Links(vec![(format!("All {}", resource.title.to_lowercase()), resource.base.into())]));
    let mut form = UiForm::post("", format!("{}/{id}", resource.base), "Save");
    form.fields = (resource.form)(&current, false);
    page.push(Block::Form(form));
    page.push(Block::Buttons(vec![
        Button::new(format!("Delete {}", resource.singular), format!("{}/{id}/delete", resource.base), &[]).danger(),
    ]));
    Ok(page)
}

async fn update(
    resource: &'static Resource,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let path = format!("{}/{id}", resource.api);
    let done = format!("{} saved", capitalized(resource.singular));
    match api.change(&staff, Method::PATCH, &path, &(resource.body)(&fields, false), &done).await? {
        Ok(done) => Ok(redirect_with(resource.base, Ok(done))),
        Err(error) => Ok(redirect_with(&format!("{}/{id}", resource.base), Err(error))),
    }
}

async fn delete(
    resource: &'static Resource,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let path = format!("{}/{id}", resource.api);
    let done = format!("{} deleted", capitalized(resource.singular));
    let outcome = api.change(&staff, Method::DELETE, &path, &json!({}), &done).await?;
    Ok(redirect_with(&back_to(&fields, resource.base), outcome))
}

/// The awards resource (the user page lists and adds awards with it).
pub fn awards() -> &'static Resource {
    &AWARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect())
    }

    #[test]
    fn award_owners_are_sent_only_on_creation() {
        let fields =
            form(&[("user_id", "4"), ("team_id", ""), ("name", " Bonus "), ("value", "-50"), ("category", "")]);
        let created = (AWARDS.body)(&fields, true);
        assert_eq!(
            created,
            json!({"user_id": 4, "name": "Bonus", "value": -50, "description": "", "category": null, "icon": null})
        );
        let edited = (AWARDS.body)(&fields, false);
        assert!(edited.get("user_id").is_none(), "{edited}");
        assert_eq!((AWARDS.form)(&Value::Null, false).iter().filter(|input| input.name == "user_id").count(), 0);
    }

    #[test]
    fn custom_field_checkboxes_become_booleans() {
        let body = (FIELDS.body)(
            &form(&[("name", "School"), ("type", "user"), ("field_type", "text"), ("public", "true")]),
            true,
        );
        assert_eq!(
            (body["public"].clone(), body["required"].clone(), body["editable"].clone()),
            (json!(true), json!(false), json!(false))
        );
    }

    #[test]
    fn back_paths_stay_inside_the_admin_ui() {
        assert_eq!(back_to(&form(&[("back", "/admin/users/3")]), "/admin/awards"), "/admin/users/3");
        for evil in ["https://evil.test/", "//evil.test", "/admin/\\evil", "/other"] {
            assert_eq!(back_to(&form(&[("back", evil)]), "/admin/awards"), "/admin/awards", "{evil}");
        }
    }
}
