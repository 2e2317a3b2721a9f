//! Flags, tags and topics of challenges (`/api/v1/flags`, `/tags`, `/topics`).
//!
//! Lists come back in creation order (ctfcli compares them in order). Flag content is trimmed
//! for `static` and `regex` flags; `data` is stored as sent (null, `""`, `case_sensitive`,
//! `case_insensitive`). Topics are found or created by value, then linked; a topic link is
//! deleted by its link id (`DELETE /topics?type=challenge&target_id=<link id>`).

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams, TextPath};
use super::reply::{done, ok};
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::domain::ChallengeId;
use crate::store::{Flag, NewFlag, Tag, TopicLink};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/flags", read, list_flags)
        .add(Post, "/api/v1/flags", write, create_flag)
        .add(Get, "/api/v1/flags/types", read, flag_types)
        .add(Get, "/api/v1/flags/types/{name}", read, flag_type)
        .add(Get, "/api/v1/flags/{id}", read, get_flag)
        .add(Patch, "/api/v1/flags/{id}", write, update_flag)
        .add(Delete, "/api/v1/flags/{id}", write, delete_flag)
        .add(Get, "/api/v1/tags", read, list_tags)
        .add(Post, "/api/v1/tags", write, create_tag)
        .add(Get, "/api/v1/tags/{id}", read, get_tag)
        .add(Patch, "/api/v1/tags/{id}", write, update_tag)
        .add(Delete, "/api/v1/tags/{id}", write, delete_tag)
        .add(Get, "/api/v1/topics", read, list_topics)
        .add(Post, "/api/v1/topics", write, create_topic)
        .add(Delete, "/api/v1/topics", write, delete_topic_link)
        .add(Get, "/api/v1/topics/{id}", read, get_topic)
        .add(Delete, "/api/v1/topics/{id}", write, delete_topic)
}

/// Flag kinds: CTFd's `static` and `regex`, and fctf's per-instance `dynamic`.
pub const FLAG_TYPES: &[&str] = &["static", "regex", "dynamic"];
const FLAG_DATA: &[&str] = &["", "case_sensitive", "case_insensitive"];

/// `{id, challenge_id, challenge, type, content, data}`.
pub fn flag_view(flag: &Flag) -> Value {
    json!({
        "id": flag.id,
        "challenge_id": flag.flag.challenge_id,
        "challenge": flag.flag.challenge_id,
        "type": flag.flag.kind,
        "content": flag.flag.content,
        "data": flag.flag.data,
    })
}

/// `{id, challenge_id, challenge, value}`.
pub fn tag_view(tag: &Tag) -> Value {
    json!({"id": tag.id, "challenge_id": tag.challenge_id, "challenge": tag.challenge_id, "value": tag.value})
}

/// `{id, challenge_id, topic_id, value, challenge, topic}` (`id` is the link).
pub fn link_view(link: &TopicLink) -> Value {
    json!({
        "id": link.id, "challenge_id": link.challenge_id, "topic_id": link.topic_id, "value": link.value,
        "challenge": link.challenge_id, "topic": link.topic_id,
    })
}

fn search_matches(query: &QueryParams, fields: &[(&str, &str)]) -> Result<bool, AdminError> {
    for (key, actual) in fields {
        if let Some(wanted) = query.text(key)
            && wanted != *actual
        {
            return Ok(false);
        }
    }
    if let Some(needle) = query.text("q") {
        let field = query.text("field").unwrap_or(fields.first().map(|(key, _)| *key).unwrap_or(""));
        let Some((_, haystack)) = fields.iter().find(|(key, _)| *key == field) else {
            return Err(AdminError::field("field", "unknown search field"));
        };
        if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The challenge named by `challenge_id` (or `challenge`), which must exist.
pub async fn challenge_of(
    state: &ApiState,
    fields: &mut Fields<'_>,
    required: bool,
) -> AdminResult<Option<ChallengeId>> {
    match fields.id_of(&["challenge_id", "challenge"]) {
        Opt::Set(id) => match state.store.get_challenge(ChallengeId(id)).await {
            Ok(challenge) => Ok(Some(challenge.id)),
            Err(crate::store::StoreError::NotFound) => {
                fields.error("challenge_id", "challenge does not exist");
                Ok(None)
            }
            Err(error) => Err(error.into()),
        },
        Opt::Null | Opt::Absent => {
            if required && !fields.has_errors() {
                fields.error("challenge_id", "is required");
            }
            Ok(None)
        }
    }
}

async fn list_flags(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let challenge_id = query.int("challenge_id")?.map(ChallengeId);
    let mut data = Vec::new();
    for flag in state.store.list_flags(challenge_id).await? {
        let data_text = flag.flag.data.clone().unwrap_or_default();
        let searchable =
            [("content", flag.flag.content.as_str()), ("type", flag.flag.kind.as_str()), ("data", data_text.as_str())];
        if search_matches(&query, &searchable)? {
            data.push(flag_view(&flag));
        }
    }
    Ok(ok(data))
}

/// Reads flag fields over `base` (type, content, data).
fn flag_fields(fields: &mut Fields<'_>, base: &mut NewFlag, creating: bool) {
    if let Opt::Set(kind) = fields.choice("type", FLAG_TYPES) {
        base.kind = kind;
    }
    let content = if creating { fields.required_text("content", 65_535) } else { fields.text("content", 65_535).set() };
    if let Some(content) = content {
        base.content = content;
    }
    match fields.text("data", 64) {
        Opt::Set(data) if FLAG_DATA.contains(&data.as_str()) => base.data = Some(data),
        Opt::Set(_) => fields.error("data", "must be null, \"\", case_sensitive or case_insensitive"),
        Opt::Null => base.data = None,
        Opt::Absent => {}
    }
    if matches!(base.kind.as_str(), "static" | "regex") {
        base.content = base.content.trim().to_owned();
        if base.content.is_empty() && (creating || fields.has("content")) {
            fields.error("content", "must not be empty");
        }
    }
}

async fn create_flag(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let challenge_id = challenge_of(&state, &mut fields, true).await?;
    let mut flag = NewFlag {
        challenge_id: challenge_id.unwrap_or(ChallengeId(0)),
        kind: "static".into(),
        content: String::new(),
        data: None,
    };
    flag_fields(&mut fields, &mut flag, true);
    fields.finish()?;
    let created = state.store.create_flag(&flag).await?;
    let after = flag_view(&created);
    audit::record(&state, &actor, "create", "flag", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn flag_types() -> Response {
    let entry = |name: &str| json!({"name": name, "templates": {"create": "", "update": ""}});
    ok(json!({"static": entry("static"), "regex": entry("regex"), "dynamic": entry("dynamic")}))
}

async fn flag_type(TextPath(name): TextPath) -> AdminResult<Response> {
    if !FLAG_TYPES.contains(&name.as_str()) {
        return Err(AdminError::NotFound);
    }
    Ok(ok(json!({"name": name, "templates": {"create": "", "update": ""}})))
}

async fn get_flag(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let flag = state.store.get_flag(id).await?;
    let mut data = flag_view(&flag);
    data["templates"] = json!({"create": "", "update": ""});
    Ok(ok(data))
}

async fn update_flag(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_flag(id).await?;
    let mut fields = Fields::new(&body);
    let mut flag = current.flag.clone();
    if (fields.has("challenge_id") || fields.has("challenge"))
        && let Some(challenge_id) = challenge_of(&state, &mut fields, true).await?
    {
        flag.challenge_id = challenge_id;
    }
    flag_fields(&mut fields, &mut flag, false);
    fields.finish()?;
    let updated = state.store.update_flag(id, &flag).await?;
    let (before, after) = (flag_view(&current), flag_view(&updated));
    audit::record(&state, &actor, "update", "flag", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete_flag(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_flag(id).await?;
    if !state.store.delete_flag(id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "flag", Some(id.to_string()), Some(&flag_view(&current)), None).await;
    Ok(done())
}

async fn list_tags(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let challenge_id = query.int("challenge_id")?.map(ChallengeId);
    let mut data = Vec::new();
    for tag in state.store.list_tags(challenge_id).await? {
        if search_matches(&query, &[("value", tag.value.as_str())])? {
            data.push(tag_view(&tag));
        }
    }
    Ok(ok(data))
}

async fn create_tag(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let challenge_id = challenge_of(&state, &mut fields, true).await?;
    let value = fields.required_text("value", 80);
    fields.finish()?;
    let (Some(challenge_id), Some(value)) = (challenge_id, value) else {
        return Err(AdminError::field("value", "is required"));
    };
    let created = state.store.create_tag(challenge_id, &value).await?;
    let after = tag_view(&created);
    audit::record(&state, &actor, "create", "tag", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get_tag(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(tag_view(&state.store.get_tag(id).await?)))
}

async fn update_tag(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_tag(id).await?;
    let mut fields = Fields::new(&body);
    let value = if fields.has("value") { fields.required_text("value", 80) } else { None };
    fields.finish()?;
    let updated = match value {
        Some(value) => state.store.update_tag(id, &value).await?,
        None => current.clone(),
    };
    let (before, after) = (tag_view(&current), tag_view(&updated));
    audit::record(&state, &actor, "update", "tag", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete_tag(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_tag(id).await?;
    if !state.store.delete_tag(id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "tag", Some(id.to_string()), Some(&tag_view(&current)), None).await;
    Ok(done())
}

async fn list_topics(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let mut data = Vec::new();
    for topic in state.store.list_topics().await? {
        if search_matches(&query, &[("value", topic.value.as_str())])? {
            data.push(json!({"id": topic.id, "value": topic.value}));
        }
    }
    Ok(ok(data))
}

async fn create_topic(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    if fields.raw("type").and_then(Value::as_str) != Some("challenge") {
        fields.error("type", "must be \"challenge\"");
    }
    let challenge_id = challenge_of(&state, &mut fields, true).await?;
    let topic_id = fields.int("topic_id", 1, i64::MAX).set();
    let value = if topic_id.is_none() { fields.required_text("value", 255) } else { None };
    fields.finish()?;
    let Some(challenge_id) = challenge_id else { return Err(AdminError::field("challenge_id", "is required")) };
    let link = match (topic_id, value) {
        (Some(topic_id), _) => state.store.link_topic_id(challenge_id, topic_id).await?,
        (None, Some(value)) => state.store.link_topic(challenge_id, &value).await?,
        (None, None) => return Err(AdminError::field("value", "is required")),
    };
    let after = link_view(&link);
    audit::record(&state, &actor, "create", "topic_link", Some(link.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

/// `DELETE /api/v1/topics?type=challenge&target_id=<link id>`.
async fn delete_topic_link(State(state): State<ApiState>, actor: Actor, query: QueryParams) -> AdminResult<Response> {
    if query.text("type") != Some("challenge") {
        return Err(AdminError::field("type", "must be \"challenge\""));
    }
    let Some(link_id) = query.int("target_id")? else {
        return Err(AdminError::field("target_id", "is required"));
    };
    if !state.store.unlink_topic(link_id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "topic_link", Some(link_id.to_string()), None, None).await;
    Ok(done())
}

async fn get_topic(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let topic = state.store.get_topic(id).await?;
    Ok(ok(json!({"id": topic.id, "value": topic.value})))
}

async fn delete_topic(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let topic = state.store.get_topic(id).await?;
    if !state.store.delete_topic(id).await? {
        return Err(AdminError::NotFound);
    }
    let before = json!({"id": topic.id, "value": topic.value});
    audit::record(&state, &actor, "delete", "topic", Some(id.to_string()), Some(&before), None).await;
    Ok(done())
}
