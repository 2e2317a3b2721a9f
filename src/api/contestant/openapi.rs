//! The OpenAPI 3.1 description of the contestant API, hand-written in `openapi.json` and
//! embedded in the binary; served at `GET /api/openapi.json`. A unit test checks that its
//! operations are exactly the router's routes.

use axum::http::header;
use axum::response::IntoResponse;

/// The document as embedded.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

/// The `(METHOD, path)` operations the document describes.
pub fn operations() -> Result<Vec<(String, String)>, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(DOCUMENT)?;
    let mut operations = Vec::new();
    if let Some(paths) = value.get("paths").and_then(serde_json::Value::as_object) {
        for (path, item) in paths {
            let Some(methods) = item.as_object() else { continue };
            for method in methods.keys() {
                if matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                    operations.push((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    Ok(operations)
}
