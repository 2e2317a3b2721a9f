//! Challenge `POST`/`PATCH` bodies ([`BodyFields`]): a JSON object, or form data as CTFd
//! accepts it. `application/x-www-form-urlencoded` or the text fields of `multipart/form-data`
//! become an object of strings (the first value of a repeated key wins, as werkzeug's
//! `to_dict()`), and go through the same field readers as JSON, which already accept digit
//! strings and textual booleans. Decisions: a form has no null, so an empty form value is an
//! empty string (the readers give it the meaning of the same JSON string); file parts are
//! refused with a 400 (files are uploaded with `POST /api/v1/files`); the fields of a form may
//! total at most [`MAX_JSON_BODY`] bytes, like a JSON body.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use serde_json::{Map, Value};

use super::error::AdminError;
use super::input::{JsonBody, MAX_JSON_BODY};

/// A challenge body: a JSON object, or form fields (urlencoded or multipart) as strings.
#[derive(Debug, Clone, Default)]
pub struct BodyFields(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for BodyFields {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        match content_type.as_str() {
            "application/x-www-form-urlencoded" => {
                let bytes = Bytes::from_request(request, state)
                    .await
                    .map_err(|error| AdminError::field("body", format!("unreadable body: {}", error.body_text())))?;
                if bytes.len() > MAX_JSON_BODY {
                    return Err(AdminError::field("body", "body too large"));
                }
                Ok(BodyFields(form_object(url::form_urlencoded::parse(&bytes).into_owned())))
            }
            "multipart/form-data" => {
                let multipart = Multipart::from_request(request, state).await.map_err(|error| {
                    AdminError::field("body", format!("malformed multipart body: {}", error.body_text()))
                })?;
                Ok(BodyFields(form_object(multipart_fields(multipart).await?)))
            }
            _ => JsonBody::from_request(request, state).await.map(|JsonBody(map)| BodyFields(map)),
        }
    }
}

/// The text fields of a multipart body, in order; a file part is refused.
async fn multipart_fields(mut multipart: Multipart) -> Result<Vec<(String, String)>, AdminError> {
    let mut pairs = Vec::new();
    let mut total = 0usize;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(pairs),
            Err(error) => return Err(AdminError::field("body", format!("malformed multipart body: {error}"))),
        };
        let name = field.name().unwrap_or("").to_owned();
        if field.file_name().is_some() {
            return Err(AdminError::field(
                &name,
                "file parts are not accepted here: upload files with POST /api/v1/files",
            ));
        }
        let text =
            field.text().await.map_err(|error| AdminError::field(&name, format!("unreadable field: {error}")))?;
        total += name.len() + text.len();
        if total > MAX_JSON_BODY {
            return Err(AdminError::field("body", "body too large"));
        }
        pairs.push((name, text));
    }
}

/// Form pairs as an object of strings; the first value of a repeated key wins.
fn form_object(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs {
        if !map.contains_key(&key) {
            map.insert(key, Value::String(value));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_become_strings_and_the_first_value_wins() {
        let map = form_object(vec![("a".to_owned(), "1".to_owned()), ("a".to_owned(), "2".to_owned())]);
        assert_eq!(map["a"], "1");
        assert_eq!(map.len(), 1);
    }
}
