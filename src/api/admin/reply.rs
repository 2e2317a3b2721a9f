//! CTFd's response envelope and pagination (admin-api §2.1, D11) and date formatting.

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::AdminError;
use super::input::QueryParams;

/// `{"success": true, "data": …}` with HTTP 200.
pub fn ok(data: impl Serialize) -> Response {
    axum::Json(json!({"success": true, "data": data})).into_response()
}

/// `{"success": true}` (deletes, bulk config patch).
pub fn done() -> Response {
    axum::Json(json!({"success": true})).into_response()
}

/// A page request: 1-based `page` and the page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based page number.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
}

impl Page {
    /// Reads `?page=` and `?per_page=` (capped at `max`, default `default`).
    pub fn from_query(query: &QueryParams, default: i64, max: i64) -> Result<Self, AdminError> {
        let page = query.int("page")?.unwrap_or(1);
        if page < 1 {
            return Err(AdminError::field("page", "must be at least 1"));
        }
        let per_page = query.int("per_page")?.unwrap_or(default);
        if per_page < 1 {
            return Err(AdminError::field("per_page", "must be at least 1"));
        }
        Ok(Self { page, per_page: per_page.min(max) })
    }

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        self.page.saturating_sub(1).saturating_mul(self.per_page)
    }

    /// `{"pagination": {...}}` for `total` rows.
    pub fn meta(self, total: i64) -> Value {
        let pages = if total == 0 { 0 } else { (total + self.per_page - 1) / self.per_page };
        let next = (self.page < pages).then_some(self.page + 1);
        let prev = (self.page > 1).then_some(self.page - 1);
        json!({"pagination": {
            "page": self.page, "next": next, "prev": prev, "pages": pages,
            "per_page": self.per_page, "total": total,
        }})
    }
}

/// A paginated list answer.
pub fn paginated(data: Vec<Value>, page: Page, total: i64) -> Response {
    axum::Json(json!({"success": true, "data": data, "meta": page.meta(total)})).into_response()
}

/// A slice of `items` for `page` (lists filtered in memory).
pub fn page_of<T: Clone>(items: &[T], page: Page) -> Vec<T> {
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX).min(items.len());
    let end = start.saturating_add(usize::try_from(page.per_page).unwrap_or(usize::MAX)).min(items.len());
    items[start..end].to_vec()
}

/// Unix seconds as ISO-8601 with `+00:00` (CTFd's schema dumps).
pub fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())
        .unwrap_or_default()
}

/// Optional Unix seconds as ISO-8601, or null.
pub fn iso_opt(seconds: Option<i64>) -> Value {
    seconds.map(|value| Value::String(iso(value))).unwrap_or(Value::Null)
}

/// Unix seconds as ISO-8601 with `Z` (CTFd's helper-built lists such as the scoreboard).
pub fn iso_z(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_meta_matches_ctfd() {
        let page = Page { page: 2, per_page: 50 };
        assert_eq!(
            page.meta(120)["pagination"],
            json!({"page": 2, "next": 3, "prev": 1, "pages": 3, "per_page": 50, "total": 120})
        );
        let empty = Page { page: 1, per_page: 20 };
        assert_eq!(
            empty.meta(0)["pagination"],
            json!({"page": 1, "next": null, "prev": null, "pages": 0, "per_page": 20, "total": 0})
        );
        assert_eq!(page_of(&[1, 2, 3], Page { page: 2, per_page: 2 }), vec![3]);
        assert!(page_of(&[1, 2, 3], Page { page: 9, per_page: 2 }).is_empty());
        assert_eq!(iso(0), "1970-01-01T00:00:00.000000+00:00");
    }
}
