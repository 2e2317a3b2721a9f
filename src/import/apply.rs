//! Writing [`ChallengePlan`]s to the store, idempotently.
//!
//! A challenge is matched by its exact name: it is created when missing (hidden until every
//! part is written, then given its `state`), otherwise updated in place. Children are compared
//! with what is stored and rewritten only when they differ: flags, tags and topics as ordered
//! lists; hints as ordered `(title, content, cost, prerequisites)` lists (a rewrite keeps the
//! unlocks of unchanged hints, admin-api D7); files by basename and SHA-1 (an unchanged file is
//! not rewritten, a changed one keeps its location); a write-up's images likewise, as solution
//! files whose links the stored text points at. Requirements and `next` are resolved after
//! every challenge of the batch exists, so they may name each other. Running the same import
//! twice therefore changes nothing the second time.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::yml::{ChallengePlan, ChallengeRef};
use crate::api::admin::challenges::{create_from, update_from, view};
use crate::api::admin::storage::{FileStorage, random_dir, sha1_hex, validate_name};
use crate::domain::{ChallengeId, HintId};
use crate::store::{Challenge, NewAuditEntry, NewFlag, NewHint, Store, StoreError};

/// What an import did to one challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It did not exist.
    Created,
    /// Something differed and was rewritten.
    Updated,
    /// Everything already matched.
    Unchanged,
}

/// A challenge after the first pass.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The stored challenge.
    pub id: ChallengeId,
    /// Created or updated so far.
    pub action: Action,
    /// The view before the import (for the audit log), `None` when created.
    pub before: Option<Value>,
}

fn message(error: impl std::fmt::Display) -> String {
    error.to_string()
}

fn admin_error_text(error: crate::api::admin::AdminError) -> String {
    match error {
        crate::api::admin::AdminError::Invalid(errors) => errors
            .iter()
            .map(|(field, messages)| {
                format!("{}: {}", if field.is_empty() { "challenge" } else { field }, messages.join("; "))
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// First pass: the challenge fields and its children.
pub async fn stage(store: &Store, storage: &FileStorage, plan: &ChallengePlan) -> Result<Staged, String> {
    let existing = store.get_challenge_by_name(&plan.name).await.map_err(message)?;
    let (challenge, mut action, before) = match existing {
        Some(current) => {
            let updated = update_from(store, &current, &plan.body).await.map_err(admin_error_text)?;
            let changed = view(&current) != view(&updated);
            let before = Some(view(&current));
            (updated, if changed { Action::Updated } else { Action::Unchanged }, before)
        }
        None => {
            let mut body = plan.body.clone();
            body.insert("state".into(), Value::String("hidden".into()));
            let created = create_from(store, &body).await.map_err(admin_error_text)?;
            (created, Action::Created, None)
        }
    };
    let mut changed = false;
    changed |= sync_flags(store, &challenge, plan).await?;
    changed |= sync_tags(store, &challenge, plan).await?;
    changed |= sync_topics(store, &challenge, plan).await?;
    changed |= sync_hints(store, &challenge, plan).await?;
    changed |= sync_files(store, storage, &challenge, plan).await?;
    changed |= sync_solution(store, storage, &challenge, plan).await?;
    if changed && action == Action::Unchanged {
        action = Action::Updated;
    }
    Ok(Staged { id: challenge.id, action, before })
}

async fn sync_flags(store: &Store, challenge: &Challenge, plan: &ChallengePlan) -> Result<bool, String> {
    let desired: Vec<(String, String, Option<String>)> = plan
        .flags
        .iter()
        .map(|flag| {
            let content = if matches!(flag.kind.as_str(), "static" | "regex") {
                flag.content.trim().to_owned()
            } else {
                flag.content.clone()
            };
            (flag.kind.clone(), content, flag.data.clone())
        })
        .collect();
    for (kind, content, data) in &desired {
        if !crate::api::admin::FLAG_TYPES.contains(&kind.as_str()) {
            return Err(format!("flags: unknown type {kind:?}"));
        }
        if content.is_empty() && kind != "dynamic" {
            return Err("flags: a flag must not be empty".into());
        }
        if let Some(data) = data
            && !matches!(data.as_str(), "" | "case_sensitive" | "case_insensitive")
        {
            return Err(format!("flags: unknown data {data:?}"));
        }
    }
    let existing = store.list_flags(Some(challenge.id)).await.map_err(message)?;
    let current: Vec<(String, String, Option<String>)> = existing
        .iter()
        .map(|flag| (flag.flag.kind.clone(), flag.flag.content.clone(), flag.flag.data.clone()))
        .collect();
    if current == desired {
        return Ok(false);
    }
    for flag in &existing {
        store.delete_flag(flag.id).await.map_err(message)?;
    }
    for (kind, content, data) in desired {
        store.create_flag(&NewFlag { challenge_id: challenge.id, kind, content, data }).await.map_err(message)?;
    }
    Ok(true)
}

async fn sync_tags(store: &Store, challenge: &Challenge, plan: &ChallengePlan) -> Result<bool, String> {
    if plan.tags.iter().any(|tag| tag.trim().is_empty() || tag.chars().count() > 80) {
        return Err("tags: each tag must be 1 to 80 characters".into());
    }
    let existing = store.list_tags(Some(challenge.id)).await.map_err(message)?;
    let current: Vec<&String> = existing.iter().map(|tag| &tag.value).collect();
    if current == plan.tags.iter().collect::<Vec<_>>() {
        return Ok(false);
    }
    for tag in &existing {
        store.delete_tag(tag.id).await.map_err(message)?;
    }
    for tag in &plan.tags {
        store.create_tag(challenge.id, tag).await.map_err(message)?;
    }
    Ok(true)
}

async fn sync_topics(store: &Store, challenge: &Challenge, plan: &ChallengePlan) -> Result<bool, String> {
    if plan.topics.iter().any(|topic| topic.trim().is_empty() || topic.chars().count() > 255) {
        return Err("topics: each topic must be 1 to 255 characters".into());
    }
    let existing = store.list_topic_links(challenge.id).await.map_err(message)?;
    let current: Vec<&String> = existing.iter().map(|link| &link.value).collect();
    if current == plan.topics.iter().collect::<Vec<_>>() {
        return Ok(false);
    }
    for link in &existing {
        store.unlink_topic(link.id).await.map_err(message)?;
    }
    for topic in &plan.topics {
        store.link_topic(challenge.id, topic).await.map_err(message)?;
    }
    Ok(true)
}

/// `(title, content, cost, prerequisite positions)` of the desired hints.
type HintShape = (String, String, i64, Vec<usize>);

async fn sync_hints(store: &Store, challenge: &Challenge, plan: &ChallengePlan) -> Result<bool, String> {
    let positions: HashMap<&str, usize> =
        plan.hints.iter().enumerate().filter_map(|(index, hint)| hint.key.as_deref().map(|key| (key, index))).collect();
    let mut desired: Vec<HintShape> = Vec::new();
    for hint in &plan.hints {
        let mut requirements = Vec::new();
        for key in &hint.requirements {
            match positions.get(key.as_str()) {
                Some(position) => requirements.push(*position),
                None => return Err(format!("hints: no hint has the key {key:?}")),
            }
        }
        desired.push((hint.title.clone(), hint.content.clone(), hint.cost, requirements));
    }
    let existing = store.list_hints(Some(challenge.id)).await.map_err(message)?;
    let ids: Vec<HintId> = existing.iter().map(|hint| hint.id).collect();
    let current: Vec<HintShape> = existing
        .iter()
        .map(|hint| {
            let prerequisites: Vec<usize> = hint
                .hint
                .requirements
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .and_then(|value| value.get("prerequisites").cloned())
                .and_then(|value| serde_json::from_value::<Vec<i64>>(value).ok())
                .unwrap_or_default()
                .iter()
                .filter_map(|id| ids.iter().position(|candidate| candidate.get() == *id))
                .collect();
            (hint.hint.title.clone().unwrap_or_default(), hint.hint.content.clone(), hint.hint.cost, prerequisites)
        })
        .collect();
    if current == desired {
        return Ok(false);
    }
    for hint in &existing {
        store.delete_hint(hint.id).await.map_err(message)?;
    }
    let mut created = Vec::new();
    for (title, content, cost, requirements) in &desired {
        let chained = !requirements.is_empty();
        let hint = NewHint {
            challenge_id: challenge.id,
            title: Some(title.clone()),
            // Chained hints start empty until their prerequisites are set (as ctfcli does).
            content: if chained { String::new() } else { content.clone() },
            cost: *cost,
            requirements: None,
        };
        created.push(store.create_hint(&hint).await.map_err(message)?);
    }
    for (index, (title, content, cost, requirements)) in desired.iter().enumerate() {
        if requirements.is_empty() {
            continue;
        }
        let prerequisites: Vec<i64> =
            requirements.iter().filter_map(|position| created.get(*position)).map(|hint| hint.id.get()).collect();
        let hint = NewHint {
            challenge_id: challenge.id,
            title: Some(title.clone()),
            content: content.clone(),
            cost: *cost,
            requirements: Some(json!({"prerequisites": prerequisites}).to_string()),
        };
        if let Some(stored) = created.get(index) {
            store.update_hint(stored.id, &hint).await.map_err(message)?;
        }
    }
    Ok(true)
}

async fn sync_files(
    store: &Store,
    storage: &FileStorage,
    challenge: &Challenge,
    plan: &ChallengePlan,
) -> Result<bool, String> {
    let mut desired: Vec<(String, Vec<u8>)> = Vec::new();
    for path in &plan.files {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_owned();
        validate_name(&name).map_err(|error| format!("files: {name:?}: {error}"))?;
        if desired.iter().any(|(other, _)| *other == name) {
            return Err(format!("files: two files are named {name:?}"));
        }
        let bytes = std::fs::read(path).map_err(|error| format!("files: {}: {error}", path.display()))?;
        desired.push((name, bytes));
    }
    let existing: Vec<_> = store
        .list_file_records()
        .await
        .map_err(message)?
        .into_iter()
        .filter(|record| record.file.challenge_id == Some(challenge.id) && record.file.kind == "challenge")
        .collect();
    let basename = |location: &str| location.rsplit('/').next().unwrap_or(location).to_owned();
    let mut changed = false;
    for record in &existing {
        if !desired.iter().any(|(name, _)| *name == basename(&record.file.location)) {
            store
                .delete_file_locked(record.file.id, async |location: &str| storage.remove(location).await)
                .await
                .map_err(message)?;
            changed = true;
        }
    }
    let owner = crate::store::FileOwner { challenge_id: Some(challenge.id), ..Default::default() };
    for (name, bytes) in &desired {
        let sha1 = sha1_hex(bytes);
        let current = existing.iter().find(|record| basename(&record.file.location) == *name);
        if let Some(record) = current
            && record.file.sha1sum.as_deref() == Some(sha1.as_str())
            && storage.path_of(&record.file.location).is_ok_and(|path| path.is_file())
        {
            continue;
        }
        let location =
            current.map(|record| record.file.location.clone()).unwrap_or_else(|| format!("{}/{name}", random_dir()));
        let target = location.as_str();
        store
            .commit_file_locked("challenge", &location, &owner, async move || storage.write(target, bytes).await)
            .await
            .map_err(message)?;
        changed = true;
    }
    Ok(changed)
}

async fn sync_solution(
    store: &Store,
    storage: &FileStorage,
    challenge: &Challenge,
    plan: &ChallengePlan,
) -> Result<bool, String> {
    let Some(solution_plan) = &plan.solution else { return Ok(false) };
    let mut images: Vec<(PathBuf, String, Vec<u8>)> = Vec::new();
    for image in &solution_plan.images {
        if images.iter().any(|(file, _, _)| *file == image.file) {
            continue;
        }
        let name = image.file.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_owned();
        validate_name(&name).map_err(|error| format!("solution: image {name:?}: {error}"))?;
        let bytes =
            std::fs::read(&image.file).map_err(|error| format!("solution: {}: {error}", image.file.display()))?;
        images.push((image.file.clone(), name, bytes));
    }
    let existing = store
        .list_solutions()
        .await
        .map_err(message)?
        .into_iter()
        .find(|solution| solution.challenge_id == challenge.id);
    let mut changed = false;
    let solution = match existing {
        Some(solution) => solution,
        None => {
            changed = true;
            store.create_solution(challenge.id, "", &solution_plan.state).await.map_err(message)?
        }
    };
    let stored: Vec<_> = store
        .list_file_records()
        .await
        .map_err(message)?
        .into_iter()
        .filter(|record| record.solution_id == Some(solution.id))
        .collect();
    let basename = |location: &str| location.rsplit('/').next().unwrap_or(location).to_owned();
    for record in &stored {
        if !images.iter().any(|(_, name, _)| *name == basename(&record.file.location)) {
            store
                .delete_file_locked(record.file.id, async |location: &str| storage.remove(location).await)
                .await
                .map_err(message)?;
            changed = true;
        }
    }
    let owner = crate::store::FileOwner { solution_id: Some(solution.id), ..Default::default() };
    let mut locations: HashMap<PathBuf, String> = HashMap::new();
    for (file, name, bytes) in &images {
        let sha1 = sha1_hex(bytes);
        let current = stored.iter().find(|record| basename(&record.file.location) == *name);
        let unchanged = current.is_some_and(|record| {
            record.file.sha1sum.as_deref() == Some(sha1.as_str())
                && storage.path_of(&record.file.location).is_ok_and(|path| path.is_file())
        });
        let location =
            current.map(|record| record.file.location.clone()).unwrap_or_else(|| format!("{}/{name}", random_dir()));
        if !unchanged {
            let target = location.as_str();
            store
                .commit_file_locked("solution", &location, &owner, async move || storage.write(target, bytes).await)
                .await
                .map_err(message)?;
            changed = true;
        }
        locations.insert(file.clone(), location);
    }
    let content = solution_plan.rewritten(|file| locations.get(file).cloned());
    if solution.content != content || solution.state != solution_plan.state {
        store.update_solution(solution.id, &content, &solution_plan.state).await.map_err(message)?;
        changed = true;
    }
    Ok(changed)
}

async fn resolve(store: &Store, reference: &ChallengeRef) -> Result<Option<ChallengeId>, String> {
    match reference {
        ChallengeRef::Name(name) => {
            Ok(store.get_challenge_by_name(name).await.map_err(message)?.map(|challenge| challenge.id))
        }
        ChallengeRef::Id(id) => match store.get_challenge(ChallengeId(*id)).await {
            Ok(challenge) => Ok(Some(challenge.id)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(error.to_string()),
        },
    }
}

/// Second pass: requirements, next and the final state; writes the audit entry.
pub async fn finish(store: &Store, plan: &ChallengePlan, staged: &Staged) -> Result<Action, String> {
    let current = store.get_challenge(staged.id).await.map_err(message)?;
    let mut body = serde_json::Map::new();
    let mut problems = Vec::new();
    if let Some((references, anonymize)) = &plan.requirements {
        let mut ids = Vec::new();
        for reference in references {
            match resolve(store, reference).await? {
                Some(id) if id == staged.id => {
                    problems.push("requirements: a challenge cannot require itself".to_owned())
                }
                Some(id) => {
                    if !ids.contains(&id.get()) {
                        ids.push(id.get());
                    }
                }
                None => problems.push(format!("requirements: no challenge {reference:?}")),
            }
        }
        ids.sort_unstable();
        body.insert("requirements".into(), json!({"prerequisites": ids, "anonymize": anonymize}));
    }
    let next = match &plan.next {
        Some(reference) => match resolve(store, reference).await? {
            Some(id) if id != staged.id => Some(id.get()),
            Some(_) => {
                problems.push("next: a challenge cannot be its own next challenge".to_owned());
                None
            }
            None => {
                problems.push(format!("next: no challenge {reference:?}"));
                None
            }
        },
        None => None,
    };
    body.insert("next_id".into(), json!(next));
    // A challenge whose prerequisites could not all be resolved is not shown (it would be
    // playable without them); a new one stays hidden, an existing one keeps its state.
    if problems.is_empty() {
        body.insert("state".into(), json!(plan.state));
    }
    let updated = update_from(store, &current, &body).await.map_err(admin_error_text)?;
    let mut action = staged.action;
    if action == Action::Unchanged && view(&updated) != view(&current) {
        action = Action::Updated;
    }
    if action != Action::Unchanged {
        let entry = NewAuditEntry {
            actor_id: None,
            actor_name: "fctf challenge import".into(),
            actor_role: "system".into(),
            action: if action == Action::Created { "import_create".into() } else { "import_update".into() },
            target_type: "challenge".into(),
            target_id: Some(staged.id.to_string()),
            before_json: staged.before.as_ref().map(Value::to_string),
            after_json: Some(view(&updated).to_string()),
            ip: None,
        };
        store.append_audit(&entry).await.map_err(message)?;
    }
    if problems.is_empty() { Ok(action) } else { Err(problems.join(", ")) }
}
