//! Challenge fields of `POST`/`PATCH /api/v1/challenges` (and of `challenge.yml` imports, which
//! go through the same parser): CTFd's fields plus fctf's deployment settings.
//!
//! fctf keys, accepted on the same endpoints (and in `challenge.yml` under `deploy:` or
//! `extra`, see `import::yml`; ctfcli merges `extra` into the request body):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `require_deploy` | bool | players start a private instance |
//! | `image` | string | container image (kubernetes runtime) |
//! | `deploy_command` | string | shell command (local runtime) |
//! | `exposed_port` | 1–65535 | port the challenge listens on |
//! | `connection_protocol` | `http`/`tcp` | how the gateway exposes it |
//! | `time_limit` | minutes | instance lifetime |
//! | `cpu_request`, `cpu_limit` | millicores | |
//! | `memory_request`, `memory_limit` | MiB | |
//! | `harden_container`, `use_gvisor`, `shared_instance` | bool | |
//! | `max_deploy_count` | int | starts per team (0 = unlimited) |
//! | `cooldown` | seconds | between two attempts of a team |
//! | `difficulty` | 1–5 | |
//!
//! `requirements` may also be given as the JSON text of the object (how a form sends it).
//!
//! Decisions: a `dynamic` challenge needs `initial`, `decay` and `minimum` (`initial` defaults
//! to `value` when only that is given) and decays logarithmically unless `function: linear`;
//! switching a challenge to `standard` (admin-api D6) stops the decay and keeps the current
//! value unless a new one is given. A `standard` challenge may decay too (CTFd 3.8) when given
//! `function: linear|logarithmic` with the three parameters. Unknown keys are ignored (D5).

use serde_json::{Map, Value, json};

use super::error::AdminError;
use super::input::{Fields, Opt, int_of, time_of};
use crate::domain::ChallengeId;
use crate::store::{ChallengeState, NewChallenge};

/// Keys this parser understands; others are ignored (and logged at debug level).
const KNOWN_KEYS: &[&str] = &[
    "name",
    "category",
    "description",
    "attribution",
    "connection_info",
    "value",
    "max_attempts",
    "state",
    "type",
    "logic",
    "position",
    "requirements",
    "next_id",
    "initial",
    "decay",
    "minimum",
    "function",
    "scheduled_at",
    "difficulty",
    "cooldown",
    "require_deploy",
    "image",
    "deploy_command",
    "exposed_port",
    "connection_protocol",
    "time_limit",
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "harden_container",
    "use_gvisor",
    "shared_instance",
    "max_deploy_count",
];

const MAX_TEXT: usize = 65_535;
const MAX_VALUE: i64 = 1_000_000_000;

/// Requirements parsed from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// Prerequisite challenge ids.
    pub prerequisites: Vec<i64>,
    /// `false`, `true` or `"preview"`.
    pub anonymize: Value,
}

impl Requirements {
    /// The stored JSON text.
    pub fn to_json(&self) -> String {
        json!({"prerequisites": self.prerequisites, "anonymize": self.anonymize}).to_string()
    }
}

/// Parses stored requirements (`None` for absent or malformed JSON).
pub fn parse_stored_requirements(text: Option<&str>) -> Option<Value> {
    text.and_then(|json| serde_json::from_str::<Value>(json).ok()).filter(|value| !value.is_null())
}

fn requirements_of(fields: &mut Fields<'_>) -> Opt<Requirements> {
    let Some(raw) = fields.raw("requirements") else { return Opt::Absent };
    // A form carries the object as JSON text (see `forms::BodyFields`).
    let parsed = match raw {
        Value::String(text) => serde_json::from_str::<Value>(text).ok(),
        _ => None,
    };
    let value = parsed.as_ref().unwrap_or(raw);
    let object = match value {
        Value::Null => return Opt::Null,
        Value::Object(object) => object,
        _ => {
            fields.error("requirements", "must be an object {prerequisites, anonymize}");
            return Opt::Absent;
        }
    };
    let mut prerequisites = Vec::new();
    match object.get("prerequisites") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match int_of(item) {
                    Some(id) if id > 0 => {
                        if !prerequisites.contains(&id) {
                            prerequisites.push(id);
                        }
                    }
                    _ => {
                        fields.error("requirements", "prerequisites must be challenge ids");
                        return Opt::Absent;
                    }
                }
            }
        }
        Some(_) => {
            fields.error("requirements", "prerequisites must be a list of challenge ids");
            return Opt::Absent;
        }
    }
    let anonymize = match object.get("anonymize") {
        None | Some(Value::Null) => Value::Bool(false),
        Some(Value::Bool(flag)) => Value::Bool(*flag),
        Some(Value::String(text)) if text == "preview" => Value::String("preview".into()),
        Some(_) => {
            fields.error("requirements", "anonymize must be a boolean or \"preview\"");
            return Opt::Absent;
        }
    };
    Opt::Set(Requirements { prerequisites, anonymize })
}

/// What the parser found besides the spec: ids to check against the store.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Prerequisite ids given in this request.
    pub prerequisites: Vec<i64>,
    /// `next_id` given in this request.
    pub next_id: Option<i64>,
}

fn text_field(fields: &mut Fields<'_>, key: &str, max: usize, target: &mut String) {
    match fields.text(key, max) {
        Opt::Set(text) => *target = text,
        Opt::Null => target.clear(),
        Opt::Absent => {}
    }
}

fn optional_text(fields: &mut Fields<'_>, key: &str, max: usize, target: &mut Option<String>) {
    if let Some(value) = fields.text(key, max).patch() {
        *target = value.filter(|text| !text.is_empty());
    }
}

fn optional_int(fields: &mut Fields<'_>, key: &str, min: i64, max: i64, target: &mut Option<i64>) {
    if let Some(value) = fields.int(key, min, max).patch() {
        *target = value;
    }
}

fn int_field(fields: &mut Fields<'_>, key: &str, min: i64, max: i64, default: i64, target: &mut i64) {
    if let Some(value) = fields.int(key, min, max).patch() {
        *target = value.unwrap_or(default);
    }
}

fn bool_field(fields: &mut Fields<'_>, key: &str, default: bool, target: &mut bool) {
    if let Some(value) = fields.bool(key).patch() {
        *target = value.unwrap_or(default);
    }
}

/// Applies the request `map` to `base` (the current challenge, or the defaults when
/// `creating`) and validates the result. `own_id` is the challenge being changed.
pub fn apply(
    map: &Map<String, Value>,
    base: &NewChallenge,
    creating: bool,
    own_id: Option<ChallengeId>,
) -> Result<(NewChallenge, References), AdminError> {
    let unknown: Vec<&String> = map.keys().filter(|key| !KNOWN_KEYS.contains(&key.as_str())).collect();
    if !unknown.is_empty() {
        tracing::debug!(?unknown, "ignoring unknown challenge keys");
    }
    let mut fields = Fields::new(map);
    let mut spec = base.clone();
    let mut references = References::default();
    if (creating || fields.has("name"))
        && let Some(name) = fields.required_text("name", 80)
    {
        spec.name = name;
    }
    text_field(&mut fields, "category", 80, &mut spec.category);
    text_field(&mut fields, "description", MAX_TEXT, &mut spec.description);
    text_field(&mut fields, "attribution", MAX_TEXT, &mut spec.attribution);
    if let Some(value) = fields.text("connection_info", MAX_TEXT).patch() {
        spec.connection_info = value;
    }
    let value_given = fields.int("value", 0, MAX_VALUE);
    if let Opt::Set(value) = value_given {
        spec.value = value;
    }
    int_field(&mut fields, "max_attempts", 0, MAX_VALUE, 0, &mut spec.max_attempts);
    if let Opt::Set(state) = fields.choice("state", &["visible", "hidden", "locked"]) {
        spec.state = match state.as_str() {
            "hidden" => ChallengeState::Hidden,
            "locked" => ChallengeState::Locked,
            _ => ChallengeState::Visible,
        };
    }
    let previous_kind = base.kind.clone();
    if let Opt::Set(kind) = fields.choice("type", &["standard", "dynamic", "multiple_choice"]) {
        spec.kind = kind;
    }
    if let Opt::Set(logic) = fields.choice("logic", &["any", "all", "team"]) {
        spec.logic = logic;
    }
    int_field(&mut fields, "position", 0, 32_767, 0, &mut spec.position);
    match requirements_of(&mut fields) {
        Opt::Set(requirements) => {
            if let Some(own) = own_id
                && requirements.prerequisites.contains(&own.get())
            {
                fields.error("requirements", "a challenge cannot require itself");
            }
            references.prerequisites = requirements.prerequisites.clone();
            spec.requirements = Some(requirements.to_json());
        }
        Opt::Null => spec.requirements = None,
        Opt::Absent => {}
    }
    match fields.int("next_id", 0, i64::MAX) {
        Opt::Set(0) | Opt::Null => spec.next_id = None,
        Opt::Set(next) => {
            if own_id.map(ChallengeId::get) == Some(next) {
                fields.error("next_id", "a challenge cannot be its own next challenge");
            }
            references.next_id = Some(next);
            spec.next_id = Some(ChallengeId(next));
        }
        Opt::Absent => {}
    }
    let initial_given = fields.int("initial", 0, MAX_VALUE);
    if let Some(value) = initial_given.clone().patch() {
        spec.initial = value;
    }
    optional_int(&mut fields, "decay", 0, MAX_VALUE, &mut spec.decay);
    optional_int(&mut fields, "minimum", 0, MAX_VALUE, &mut spec.minimum);
    let function_given = fields.choice("function", &["static", "linear", "logarithmic"]);
    if let Opt::Set(function) = &function_given {
        spec.function = function.clone();
    }
    match fields.raw("scheduled_at") {
        None => {}
        Some(Value::Null) => spec.scheduled_at = None,
        Some(value) => match time_of(value) {
            Some(time) => spec.scheduled_at = Some(time),
            None => fields.error("scheduled_at", "must be an ISO-8601 date-time or Unix seconds"),
        },
    }
    optional_int(&mut fields, "difficulty", 1, 5, &mut spec.difficulty);
    int_field(&mut fields, "cooldown", 0, 86_400, 0, &mut spec.cooldown);
    let deploy = &mut spec.deploy;
    bool_field(&mut fields, "require_deploy", false, &mut deploy.require_deploy);
    optional_text(&mut fields, "image", 512, &mut deploy.image);
    optional_text(&mut fields, "deploy_command", 4096, &mut deploy.command);
    optional_int(&mut fields, "exposed_port", 1, 65_535, &mut deploy.exposed_port);
    match fields.choice("connection_protocol", &["http", "tcp"]) {
        Opt::Set(protocol) => deploy.protocol = protocol,
        Opt::Null => deploy.protocol = "http".to_owned(),
        Opt::Absent => {}
    }
    optional_int(&mut fields, "time_limit", 1, 10_080, &mut deploy.time_limit_minutes);
    optional_int(&mut fields, "cpu_request", 1, 1_000_000, &mut deploy.cpu_request);
    optional_int(&mut fields, "cpu_limit", 1, 1_000_000, &mut deploy.cpu_limit);
    optional_int(&mut fields, "memory_request", 1, 1_048_576, &mut deploy.memory_request);
    optional_int(&mut fields, "memory_limit", 1, 1_048_576, &mut deploy.memory_limit);
    bool_field(&mut fields, "harden_container", true, &mut deploy.harden_container);
    bool_field(&mut fields, "use_gvisor", false, &mut deploy.use_gvisor);
    bool_field(&mut fields, "shared_instance", false, &mut deploy.shared_instance);
    int_field(&mut fields, "max_deploy_count", 0, 1_000_000, 0, &mut deploy.max_deploy_count);
    if let (Some(request), Some(limit)) = (deploy.cpu_request, deploy.cpu_limit)
        && request > limit
    {
        fields.error("cpu_request", "must not exceed cpu_limit");
    }
    if let (Some(request), Some(limit)) = (deploy.memory_request, deploy.memory_limit)
        && request > limit
    {
        fields.error("memory_request", "must not exceed memory_limit");
    }
    if deploy.require_deploy && deploy.image.is_none() && deploy.command.is_none() {
        fields.error("require_deploy", "a deployable challenge needs an image or a deploy_command");
    }
    settle_scoring(&mut fields, &mut spec, &previous_kind, &value_given, &initial_given, &function_given);
    fields.finish()?;
    Ok((spec, references))
}

/// Makes type, function and decay parameters consistent (see the module docs).
fn settle_scoring(
    fields: &mut Fields<'_>,
    spec: &mut NewChallenge,
    previous_kind: &str,
    value_given: &Opt<i64>,
    initial_given: &Opt<i64>,
    function_given: &Opt<String>,
) {
    let decaying = |function: &str| matches!(function, "linear" | "logarithmic");
    if spec.kind == "dynamic" {
        if !decaying(&spec.function) {
            if matches!(function_given, Opt::Set(function) if function == "static") {
                fields.error("function", "a dynamic challenge decays: use linear or logarithmic");
            }
            spec.function = "logarithmic".to_owned();
        }
        if spec.initial.is_none()
            && let Opt::Set(value) = value_given
            && !initial_given.is_present()
        {
            spec.initial = Some(*value);
        }
    } else if previous_kind == "dynamic" && !function_given.is_present() {
        // Switching away from dynamic stops the decay unless a function is given.
        spec.function = "static".to_owned();
    }
    if decaying(&spec.function) {
        for (key, value) in [("initial", spec.initial), ("decay", spec.decay), ("minimum", spec.minimum)] {
            if value.is_none() {
                fields.error(key, format!("Missing '{key}': a decaying challenge needs initial, decay and minimum"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value, base: &NewChallenge, creating: bool) -> Result<NewChallenge, AdminError> {
        apply(body.as_object().unwrap(), base, creating, Some(ChallengeId(1))).map(|(spec, _)| spec)
    }

    #[test]
    fn ctfcli_install_payload_parses() {
        let body = json!({
            "name": "warmup", "category": "misc", "description": "d", "attribution": "", "type": "standard",
            "state": "hidden", "value": 100, "max_attempts": 0, "connection_info": null, "position": 3,
            "require_deploy": true, "image": "nginx", "exposed_port": 80, "unknown_key": [1, 2],
        });
        let spec = parse(body, &NewChallenge::default(), true).unwrap();
        assert_eq!(spec.name, "warmup");
        assert_eq!(spec.state, ChallengeState::Hidden);
        assert_eq!(spec.value, 100);
        assert!(spec.deploy.require_deploy);
        assert_eq!(spec.deploy.exposed_port, Some(80));
    }

    #[test]
    fn dynamic_challenges_need_their_parameters() {
        let base = NewChallenge::default();
        let spec =
            parse(json!({"name": "d", "type": "dynamic", "initial": 500, "decay": 10, "minimum": 50}), &base, true)
                .unwrap();
        assert_eq!(spec.function, "logarithmic");
        let Err(AdminError::Invalid(errors)) = parse(json!({"name": "d", "type": "dynamic", "value": 5}), &base, true)
        else {
            panic!("missing parameters must be refused")
        };
        assert!(errors.contains_key("decay") && errors.contains_key("minimum") && !errors.contains_key("initial"));
        let back = parse(json!({"type": "standard"}), &spec, false).unwrap();
        assert_eq!(back.function, "static");
    }

    #[test]
    fn bad_fields_are_reported_together() {
        let body = json!({"name": "", "value": -1, "state": "gone", "requirements": {"prerequisites": [1]},
                          "next_id": 1, "exposed_port": 70000, "scheduled_at": "never"});
        let Err(AdminError::Invalid(errors)) = parse(body, &NewChallenge::default(), true) else {
            panic!("invalid input")
        };
        for key in ["name", "value", "state", "requirements", "next_id", "exposed_port", "scheduled_at"] {
            assert!(errors.contains_key(key), "{key}: {errors:?}");
        }
    }
}
