//! Reading one `challenge.yml` (ctfcli 0.1.8's format, admin-api §3) into a [`ChallengePlan`].
//!
//! Keys read: `name`, `category`, `description`, `attribution`, `value`, `type`, `extra`
//! (merged into the challenge fields, as ctfcli does), `connection_info`, `attempts`, `logic`,
//! `flags` (strings, or `{type, content, data}`), `topics`, `tags`, `files` (paths relative to
//! the yml), `hints` (strings, or `{content, cost, title, key, requirements}`), `requirements`
//! (names or ids, or `{prerequisites, anonymize}`), `next` (a name, an id or null), `state`,
//! `solution` (a path, or `{path, state}`: see [`super::solution`]).
//! fctf's deployment fields (see `api::admin::challenge_fields`) live in one of two places
//! (`deploy` wins when both name a key):
//! - under `extra`: ctfcli sends them with the challenge (`install`, `sync`), and `verify`
//!   stays in sync as long as the value does not decay: ctfcli compares `extra` only with the
//!   `initial`/`decay`/`minimum` it reads back, which fctf returns for decaying challenges
//!   only (and `mirror` then rewrites `extra` without them);
//! - under `deploy:` (the documented home, needed for decaying challenges): only `fctf
//!   challenge import` reads it; ctfcli keeps the key untouched, never sends or compares it,
//!   and its `sync` (a partial update) leaves the imported settings in place.
//!
//! `tests/ctfcli/challenges` has one of each, checked end to end by `tests/ctfcli/run.sh`.
//! ctfcli-only keys (`author`, `version`, `image`, `protocol`, `host`, `healthcheck`) are
//! ignored.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::solution::solution_of;
pub use super::solution::{ImageRef, SolutionPlan};

/// A flag to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSpec {
    /// `static`, `regex` or `dynamic`.
    pub kind: String,
    /// Flag text or pattern.
    pub content: String,
    /// `case_insensitive`, `case_sensitive`, `""` or none.
    pub data: Option<String>,
}

/// A hint to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintSpec {
    /// Title (`""` when none, as ctfcli sends it).
    pub title: String,
    /// Body.
    pub content: String,
    /// Unlock cost.
    pub cost: i64,
    /// Key other hints name in their requirements.
    pub key: Option<String>,
    /// Keys of the hints that must be unlocked first.
    pub requirements: Vec<String>,
}

/// A challenge named by a requirement or `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeRef {
    /// By exact name.
    Name(String),
    /// By id.
    Id(i64),
}

/// Everything a `challenge.yml` asks for.
#[derive(Debug, Clone)]
pub struct ChallengePlan {
    /// The yml file.
    pub path: PathBuf,
    /// The challenge name (the matching key).
    pub name: String,
    /// Challenge fields for the admin API parser (no state, requirements or next).
    pub body: Map<String, Value>,
    /// `visible` (default), `hidden` or `locked`.
    pub state: String,
    /// Flags in order.
    pub flags: Vec<FlagSpec>,
    /// Tags in order.
    pub tags: Vec<String>,
    /// Topics in order.
    pub topics: Vec<String>,
    /// Hints in order.
    pub hints: Vec<HintSpec>,
    /// Absolute paths of the attachments.
    pub files: Vec<PathBuf>,
    /// Prerequisites and `anonymize`, when given.
    pub requirements: Option<(Vec<ChallengeRef>, Value)>,
    /// The next challenge (`None`: clear it, as ctfcli does when `next` is absent).
    pub next: Option<ChallengeRef>,
    /// The write-up, when given.
    pub solution: Option<SolutionPlan>,
}

pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn list_of(root: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> Vec<Value> {
    match root.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            problems.push(format!("{key}: must be a list"));
            Vec::new()
        }
    }
}

fn challenge_ref(value: &Value) -> Option<ChallengeRef> {
    match value {
        Value::String(name) => Some(ChallengeRef::Name(name.clone())),
        Value::Number(number) => number.as_i64().filter(|id| *id > 0).map(ChallengeRef::Id),
        _ => None,
    }
}

/// Parses the text of a `challenge.yml` found at `path`. Every problem is reported.
pub fn parse(path: &Path, text: &str) -> Result<ChallengePlan, Vec<String>> {
    let document: Value = serde_yaml_ng::from_str(text).map_err(|error| vec![format!("invalid YAML: {error}")])?;
    let Value::Object(root) = document else {
        return Err(vec!["the file is empty or not a mapping".to_owned()]);
    };
    let directory = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut problems = Vec::new();
    let name = match root.get("name").and_then(text_of) {
        Some(name) if !name.trim().is_empty() => name,
        _ => {
            problems.push("name: is required".to_owned());
            String::new()
        }
    };
    let mut body = Map::new();
    body.insert("name".into(), Value::String(name.clone()));
    for key in ["category", "description", "attribution"] {
        body.insert(key.into(), root.get(key).cloned().unwrap_or_else(|| Value::String(String::new())));
    }
    body.insert("type".into(), root.get("type").cloned().unwrap_or_else(|| Value::String("standard".into())));
    if let Some(value) = root.get("value").filter(|value| !value.is_null()) {
        body.insert("value".into(), value.clone());
    }
    body.insert("max_attempts".into(), root.get("attempts").cloned().unwrap_or(Value::from(0)));
    body.insert("connection_info".into(), root.get("connection_info").cloned().unwrap_or(Value::Null));
    if let Some(logic) = root.get("logic").filter(|value| !value.is_null()) {
        body.insert("logic".into(), logic.clone());
    }
    for section in ["extra", "deploy"] {
        match root.get(section) {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (key, value) in entries {
                    body.insert(key.clone(), value.clone());
                }
            }
            Some(_) => problems.push(format!("{section}: must be a mapping")),
        }
    }
    let type_is_dynamic = body.get("type").and_then(Value::as_str) == Some("dynamic");
    if !body.contains_key("value") && !type_is_dynamic {
        problems.push("value: is required unless type is dynamic".to_owned());
    }
    let state = match root.get("state") {
        None | Some(Value::Null) => "visible".to_owned(),
        Some(Value::String(state)) if matches!(state.as_str(), "visible" | "hidden" | "locked") => state.clone(),
        Some(_) => {
            problems.push("state: must be visible, hidden or locked".to_owned());
            "visible".to_owned()
        }
    };
    let mut flags = Vec::new();
    for item in list_of(&root, "flags", &mut problems) {
        match &item {
            Value::Object(flag) => match flag.get("content").and_then(text_of) {
                Some(content) => flags.push(FlagSpec {
                    kind: flag.get("type").and_then(text_of).unwrap_or_else(|| "static".into()),
                    content,
                    data: flag.get("data").and_then(text_of),
                }),
                None => problems.push("flags: a flag mapping needs a content".to_owned()),
            },
            other => match text_of(other) {
                Some(content) => flags.push(FlagSpec { kind: "static".into(), content, data: None }),
                None => problems.push("flags: each flag is a string or a mapping".to_owned()),
            },
        }
    }
    let labels = |key: &str, problems: &mut Vec<String>| -> Vec<String> {
        let mut values = Vec::new();
        for item in list_of(&root, key, problems) {
            match text_of(&item) {
                Some(value) => values.push(value),
                None => problems.push(format!("{key}: each entry must be a string")),
            }
        }
        values
    };
    let tags = labels("tags", &mut problems);
    let topics = labels("topics", &mut problems);
    let mut hints = Vec::new();
    for item in list_of(&root, "hints", &mut problems) {
        match &item {
            Value::Object(hint) => {
                let Some(content) = hint.get("content").and_then(text_of) else {
                    problems.push("hints: a hint mapping needs a content".to_owned());
                    continue;
                };
                let cost = match hint.get("cost") {
                    None | Some(Value::Null) => 0,
                    Some(value) => match crate::api::admin::input::int_of(value) {
                        Some(cost) if cost >= 0 => cost,
                        _ => {
                            problems.push("hints: cost must be a non-negative integer".to_owned());
                            0
                        }
                    },
                };
                let requirements = match hint.get("requirements") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(keys)) => keys.iter().filter_map(text_of).collect(),
                    Some(_) => {
                        problems.push("hints: requirements must be a list of hint keys".to_owned());
                        Vec::new()
                    }
                };
                hints.push(HintSpec {
                    title: hint.get("title").and_then(text_of).unwrap_or_default(),
                    content,
                    cost,
                    key: hint.get("key").and_then(text_of),
                    requirements,
                });
            }
            other => match text_of(other) {
                Some(content) => {
                    hints.push(HintSpec { title: String::new(), content, cost: 0, key: None, requirements: Vec::new() })
                }
                None => problems.push("hints: each hint is a string or a mapping".to_owned()),
            },
        }
    }
    let mut files = Vec::new();
    for item in list_of(&root, "files", &mut problems) {
        match text_of(&item) {
            Some(relative) => {
                let file = directory.join(&relative);
                if file.is_file() {
                    files.push(file);
                } else {
                    problems.push(format!("files: {relative} does not exist"));
                }
            }
            None => problems.push("files: each entry must be a path".to_owned()),
        }
    }
    let requirements = match root.get("requirements") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some((items.iter().filter_map(challenge_ref).collect(), Value::Bool(false))),
        Some(Value::Object(object)) => {
            let prerequisites = match object.get("prerequisites") {
                Some(Value::Array(items)) => items.iter().filter_map(challenge_ref).collect(),
                _ => Vec::new(),
            };
            Some((prerequisites, object.get("anonymize").cloned().unwrap_or(Value::Bool(false))))
        }
        Some(_) => {
            problems.push("requirements: must be a list or {prerequisites, anonymize}".to_owned());
            None
        }
    };
    let next = root.get("next").and_then(challenge_ref);
    let solution = solution_of(&root, &directory, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ChallengePlan {
        path: path.to_path_buf(),
        name,
        body,
        state,
        flags,
        tags,
        topics,
        hints,
        files,
        requirements,
        next,
        solution,
    })
}

/// The `challenge.yml` files an argument names: the file itself, `<dir>/challenge.yml`, or
/// every `challenge.yml`/`challenge.yaml` below a directory (sorted).
pub fn discover(argument: &Path) -> Result<Vec<PathBuf>, String> {
    if argument.is_file() {
        return Ok(vec![argument.to_path_buf()]);
    }
    if !argument.is_dir() {
        return Err(format!("{} does not exist", argument.display()));
    }
    for name in ["challenge.yml", "challenge.yaml"] {
        let direct = argument.join(name);
        if direct.is_file() {
            return Ok(vec![direct]);
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![argument.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(&directory).map_err(|error| format!("{}: {error}", directory.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if path.is_dir() && !hidden {
                pending.push(path);
            } else if matches!(entry.file_name().to_str(), Some("challenge.yml" | "challenge.yaml")) {
                found.push(path);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(format!("no challenge.yml under {}", argument.display()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ctfcli_form_parses() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("a.txt"), "a").unwrap();
        let path = directory.path().join("challenge.yml");
        let text = r#"
name: Demo
category: web
description: d
value: "100"
extra: {require_deploy: false, cooldown: 5}
deploy: {cooldown: 7}
flags:
  - plain
  - {type: regex, content: "a+", data: case_insensitive}
hints:
  - free
  - {content: paid, cost: 10, title: T, key: k1}
  - {content: chained, requirements: [k1]}
files: [a.txt]
tags: [x, 3]
topics: [y]
requirements: {prerequisites: [Other, 4], anonymize: true}
next: Other
state: hidden
"#;
        let plan = parse(&path, text).unwrap();
        assert_eq!(plan.name, "Demo");
        assert_eq!(plan.body["cooldown"], 7);
        assert_eq!(plan.body["value"], "100");
        assert_eq!(plan.flags.len(), 2);
        assert_eq!(plan.flags[1].data.as_deref(), Some("case_insensitive"));
        assert_eq!(plan.hints[2].requirements, vec!["k1".to_owned()]);
        assert_eq!(plan.tags, vec!["x".to_owned(), "3".to_owned()]);
        assert_eq!(plan.state, "hidden");
        let (prerequisites, anonymize) = plan.requirements.unwrap();
        assert_eq!(prerequisites, vec![ChallengeRef::Name("Other".into()), ChallengeRef::Id(4)]);
        assert_eq!(anonymize, Value::Bool(true));
        assert_eq!(plan.next, Some(ChallengeRef::Name("Other".into())));
    }

    #[test]
    fn problems_are_all_reported() {
        let path = Path::new("/nonexistent/challenge.yml");
        let problems = parse(path, "flags: 3\nfiles: [missing.bin]\nstate: gone\n").unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(parse(path, "- a list").is_err());
        assert!(parse(path, "name: [unclosed").is_err());
    }
}
