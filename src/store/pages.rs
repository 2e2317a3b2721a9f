//! Custom pages (CTFd's `pages`, pushed by `ctf pages`). Routes are unique; the admin API
//! strips a leading `/` before storing, as CTFd does.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::bool_of;
use super::{Store, StoreError};

/// Every editable field of a page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewPage {
    /// Title (≤ 80 characters).
    pub title: String,
    /// Route, unique (≤ 128 characters, no leading `/`).
    pub route: String,
    /// Markdown or HTML text.
    pub content: String,
    /// `markdown` or `html`.
    pub format: String,
    /// `_self`, `_blank` or none.
    pub link_target: Option<String>,
    /// Not published yet.
    pub draft: bool,
    /// Left out of the menu.
    pub hidden: bool,
    /// Only for logged-in players.
    pub auth_required: bool,
}

/// A stored page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Row id.
    pub id: i64,
    /// The page.
    pub page: NewPage,
}

const PAGE_COLUMNS: &str = "id, title, route, content, format, link_target, draft, hidden, auth_required";

fn page_of(row: &AnyRow) -> Result<Page, sqlx::Error> {
    Ok(Page {
        id: row.try_get("id")?,
        page: NewPage {
            title: row.try_get("title")?,
            route: row.try_get("route")?,
            content: row.try_get("content")?,
            format: row.try_get("format")?,
            link_target: row.try_get("link_target")?,
            draft: bool_of(row, "draft")?,
            hidden: bool_of(row, "hidden")?,
            auth_required: bool_of(row, "auth_required")?,
        },
    })
}

impl Store {
    /// Creates a page; `Conflict` on `pages_route_uq`.
    pub async fn create_page(&self, page: &NewPage) -> Result<Page, StoreError> {
        let sql = format!(
            "INSERT INTO pages (title, route, content, format, link_target, draft, hidden, auth_required) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {PAGE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&page.title)
            .bind(&page.route)
            .bind(&page.content)
            .bind(&page.format)
            .bind(&page.link_target)
            .bind(i64::from(page.draft))
            .bind(i64::from(page.hidden))
            .bind(i64::from(page.auth_required))
            .fetch_one(&self.pool)
            .await?;
        Ok(page_of(&row)?)
    }

    /// Reads a page; `NotFound` when it does not exist.
    pub async fn get_page(&self, id: i64) -> Result<Page, StoreError> {
        let sql = format!("SELECT {PAGE_COLUMNS} FROM pages WHERE id = $1");
        Ok(page_of(&sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?)?)
    }

    /// Every page by ascending id.
    pub async fn list_pages(&self) -> Result<Vec<Page>, StoreError> {
        let sql = format!("SELECT {PAGE_COLUMNS} FROM pages ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(page_of).collect::<Result<_, _>>()?)
    }

    /// Replaces every field of a page; `NotFound`, or `Conflict` on a taken route.
    pub async fn update_page(&self, id: i64, page: &NewPage) -> Result<Page, StoreError> {
        let sql = format!(
            "UPDATE pages SET title = $1, route = $2, content = $3, format = $4, link_target = $5, draft = $6, \
             hidden = $7, auth_required = $8 WHERE id = $9 RETURNING {PAGE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&page.title)
            .bind(&page.route)
            .bind(&page.content)
            .bind(&page.format)
            .bind(&page.link_target)
            .bind(i64::from(page.draft))
            .bind(i64::from(page.hidden))
            .bind(i64::from(page.auth_required))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(page_of(&row.ok_or(StoreError::NotFound)?)?)
    }

    /// Deletes a page (its files' rows go with it); false when it did not exist.
    pub async fn delete_page(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM pages WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }
}
