//! The page model every admin UI page is rendered from, and the two templates.
//!
//! A page is a list of [`Block`]s (headings, text, statistics, tables, forms, logs, charts)
//! rendered by one askama template (`page.html`), so every page shares the same markup,
//! labelling and keyboard behaviour. Everything is HTML-escaped by askama except
//! [`Block::Chart`], whose SVG is generated on the server from numbers only (`charts`).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::session::Staff;

/// One navigation link.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Path.
    pub href: &'static str,
    /// Label.
    pub label: &'static str,
    /// Marked as the current page.
    pub current: bool,
}

/// A status message shown above the page (`?ok=` / `?err=` after a redirect).
#[derive(Debug, Clone)]
pub struct Flash {
    /// True for an error.
    pub error: bool,
    /// Text.
    pub text: String,
}

/// A button posting a small form (hidden fields plus the CSRF token).
#[derive(Debug, Clone)]
pub struct Button {
    /// Label.
    pub label: String,
    /// Where it posts.
    pub action: String,
    /// Hidden fields.
    pub fields: Vec<(String, String)>,
    /// Drawn as a dangerous action and confirmed (with JavaScript) before posting.
    pub danger: bool,
}

impl Button {
    /// A button posting `fields` to `action`.
    pub fn new(label: impl Into<String>, action: impl Into<String>, fields: &[(&str, &str)]) -> Self {
        Self {
            label: label.into(),
            action: action.into(),
            fields: fields.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
            danger: false,
        }
    }

    /// Marks it dangerous.
    pub fn danger(mut self) -> Self {
        self.danger = true;
        self
    }
}

/// A table cell.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// Text.
    pub text: String,
    /// Makes the text a link.
    pub href: Option<String>,
    /// Buttons after the text.
    pub buttons: Vec<Button>,
    /// Monospaced.
    pub code: bool,
}

impl Cell {
    /// Plain text.
    pub fn text(text: impl ToString) -> Self {
        Self { text: text.to_string(), ..Self::default() }
    }

    /// A link.
    pub fn link(text: impl ToString, href: impl Into<String>) -> Self {
        Self { text: text.to_string(), href: Some(href.into()), ..Self::default() }
    }

    /// Monospaced text.
    pub fn code(text: impl ToString) -> Self {
        Self { text: text.to_string(), code: true, ..Self::default() }
    }

    /// Buttons only.
    pub fn buttons(buttons: Vec<Button>) -> Self {
        Self { buttons, ..Self::default() }
    }
}

/// A table row; `select` adds a checkbox (value) tied to the table's bulk form.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Cells.
    pub cells: Vec<Cell>,
    /// Value of the row's checkbox.
    pub select: Option<String>,
}

/// Buttons acting on the selected rows of a table.
#[derive(Debug, Clone)]
pub struct Bulk {
    /// Form id (checkboxes refer to it).
    pub id: String,
    /// Where it posts; selected values are sent as `ids`.
    pub action: String,
    /// Submit buttons: (label, `op` value, dangerous).
    pub buttons: Vec<(String, String, bool)>,
}

/// A table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Caption (for screen readers and as a title).
    pub caption: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Row>,
    /// Bulk actions.
    pub bulk: Option<Bulk>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(caption: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            caption: caption.into(),
            columns: columns.iter().map(|column| (*column).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row { cells, select: None });
    }
}

/// A form input.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// Name.
    pub name: String,
    /// Label.
    pub label: String,
    /// `text`, `number`, `password`, `textarea`, `select`, `checkbox`, `datetime-local`,
    /// `file`, `hidden`, `email`.
    pub kind: &'static str,
    /// Current value.
    pub value: String,
    /// Choices of a select: (value, label).
    pub options: Vec<(String, String)>,
    /// Help text.
    pub help: String,
    /// Required.
    pub required: bool,
    /// Checked (checkbox).
    pub checked: bool,
}

impl Field {
    /// A field of `kind`.
    pub fn new(kind: &'static str, name: &str, label: &str, value: impl ToString) -> Self {
        Self { name: name.into(), label: label.into(), kind, value: value.to_string(), ..Self::default() }
    }

    /// A checkbox.
    pub fn checkbox(name: &str, label: &str, checked: bool) -> Self {
        Self { checked, value: "true".into(), ..Self::new("checkbox", name, label, "") }
    }

    /// A select among `options` (value, label).
    pub fn select(name: &str, label: &str, value: impl ToString, options: &[(&str, &str)]) -> Self {
        Self {
            options: options.iter().map(|(value, label)| ((*value).to_owned(), (*label).to_owned())).collect(),
            ..Self::new("select", name, label, value)
        }
    }

    /// Adds help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// Marks it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// A form.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// Heading.
    pub title: String,
    /// Where it goes.
    pub action: String,
    /// POST (with the CSRF token) or GET (filters).
    pub post: bool,
    /// multipart/form-data (the CSRF token then travels in the query string).
    pub multipart: bool,
    /// Inputs.
    pub fields: Vec<Field>,
    /// Submit label.
    pub submit: String,
    /// Laid out on one line (filters, small forms).
    pub inline: bool,
}

impl Form {
    /// A POST form.
    pub fn post(title: impl Into<String>, action: impl Into<String>, submit: impl Into<String>) -> Self {
        Self { title: title.into(), action: action.into(), post: true, submit: submit.into(), ..Self::default() }
    }

    /// A GET filter form laid out on one line.
    pub fn filter(action: impl Into<String>) -> Self {
        Self { action: action.into(), submit: "Filter".into(), inline: true, ..Self::default() }
    }

    /// Adds a field.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }
}

/// A piece of a page.
#[derive(Debug, Clone)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// A paragraph.
    Text(String),
    /// Label/value pairs shown as tiles.
    Stats(Vec<(String, String)>),
    /// Links shown as a row of buttons (exports, views).
    Links(Vec<(String, String)>),
    /// A table.
    Table(Table),
    /// A form.
    Form(Form),
    /// Preformatted text (logs); `id` lets the auto-refresh script find it.
    Pre { id: String, text: String },
    /// A server-generated SVG chart (numbers only; not escaped).
    Chart(String),
    /// Buttons in a row.
    Buttons(Vec<Button>),
    /// A link downloading `body` as a file, carried in the page itself (a `data:` URL), so
    /// the content is never stored on the server (credentials shown once).
    Download {
        /// Link text.
        label: String,
        /// Suggested file name.
        filename: String,
        /// `data:` URL of the content.
        href: String,
    },
}

impl Block {
    /// A [`Block::Download`] of `body` as `mime` (base64 in a `data:` URL).
    pub fn download(label: impl Into<String>, filename: impl Into<String>, mime: &str, body: &str) -> Self {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
        Block::Download {
            label: label.into(),
            filename: filename.into(),
            href: format!("data:{mime};base64,{encoded}"),
        }
    }
}

/// A full page.
#[derive(Template)]
#[template(path = "page.html", config = "src/web/admin/askama.toml")]
pub struct Page {
    /// Title.
    pub title: String,
    /// Navigation for the viewer's role.
    pub nav: Vec<NavItem>,
    /// Viewer name.
    pub user: String,
    /// Viewer role.
    pub role: String,
    /// CSRF token for forms.
    pub csrf: String,
    /// Status message.
    pub flash: Option<Flash>,
    /// Content.
    pub blocks: Vec<Block>,
    /// Seconds between automatic reloads of `Pre` blocks (JavaScript only; a link otherwise).
    pub refresh: Option<u32>,
}

impl Page {
    /// A page for `staff`, with the navigation entry `current` marked.
    pub fn new(staff: &Staff, title: impl Into<String>, current: &str) -> Self {
        let nav = super::nav_for(staff.actor.role)
            .into_iter()
            .map(|(href, label)| NavItem { href, label, current: href == current })
            .collect();
        Self {
            title: title.into(),
            nav,
            user: staff.actor.name.clone(),
            role: staff.actor.role.as_str().to_owned(),
            csrf: staff.csrf.clone(),
            flash: None,
            blocks: Vec::new(),
            refresh: None,
        }
    }

    /// Shows the `ok` / `err` message of the query string.
    pub fn flash(mut self, query: &super::FlashQuery) -> Self {
        self.flash = match (&query.err, &query.ok) {
            (Some(text), _) if !text.is_empty() => Some(Flash { error: true, text: text.clone() }),
            (_, Some(text)) if !text.is_empty() => Some(Flash { error: false, text: text.clone() }),
            _ => None,
        };
        self
    }

    /// Appends a block.
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        render(&self, StatusCode::OK)
    }
}

/// The login page.
#[derive(Template)]
#[template(path = "login.html", config = "src/web/admin/askama.toml")]
pub struct LoginPage {
    /// Error to show.
    pub error: Option<String>,
    /// Name typed before.
    pub name: String,
    /// Where to go after logging in.
    pub next: String,
}

/// A bare error page (no navigation: the viewer may not be logged in).
#[derive(Template)]
#[template(path = "error.html", config = "src/web/admin/askama.toml")]
pub struct ErrorPage {
    /// Status line.
    pub status: String,
    /// Explanation.
    pub message: String,
}

/// Renders a template with a status; a rendering failure is a 500 without details.
pub fn render<T: Template>(template: &T, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, [("cache-control", "no-store")], Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "admin UI template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
        }
    }
}

/// An error answered as an HTML page.
#[derive(Debug)]
pub struct UiError {
    /// Status.
    pub status: StatusCode,
    /// Message shown.
    pub message: String,
}

impl UiError {
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, message: message.into() }
    }

    /// 404.
    pub fn not_found() -> Self {
        Self { status: StatusCode::NOT_FOUND, message: "Not found".into() }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// 500/503 for a backend failure (details logged, not shown).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "admin UI request failed");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The server could not complete the request; retry".into(),
        }
    }
}

impl From<crate::store::StoreError> for UiError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::NotFound => Self::not_found(),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let page = ErrorPage { status: self.status.to_string(), message: self.message };
        render(&page, self.status)
    }
}

/// Result of a page handler.
pub type UiResult<T = Response> = Result<T, UiError>;

/// A 303 redirect to `path` with a success (`ok`) or error (`err`) message.
pub fn redirect_with(path: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(text) => ("ok", text),
        Err(text) => ("err", text),
    };
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}{key}={encoded}")).into_response()
}
