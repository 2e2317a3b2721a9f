//! Challenge visibility and prerequisites (contract §3.2–§3.3), shared by the challenge, hint,
//! file and submission endpoints.
//!
//! A challenge is *hidden* from players when its state is `hidden`, its category is a hidden
//! category, or it is scheduled for later (`scheduled_at` in the future). Prerequisites are
//! the CTFd requirements JSON `{"prerequisites":[ids],"anonymize":bool}` (keys matched
//! case-insensitively); a prerequisite that no longer exists is ignored; malformed JSON reads
//! as "no requirements". An unmet, anonymized challenge is shown as a locked placeholder
//! without name, description, files or hints (fctf decision 4).

use std::collections::HashSet;

use serde_json::Value;

use super::error::ApiError;
use crate::api::ApiState;
use crate::api::json::lowercase_keys;
use crate::domain::ChallengeId;
use crate::event::EventConfig;
use crate::store::{Account, Challenge, ChallengeState, StoreError};

/// The name shown for a locked, anonymized challenge.
pub const PLACEHOLDER_NAME: &str = "???";

/// Parsed challenge requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Challenges that must be solved first.
    pub prerequisites: Vec<ChallengeId>,
    /// Show a locked placeholder instead of hiding the challenge.
    pub anonymize: bool,
}

impl Requirements {
    /// Parses the stored JSON; `None` when absent or malformed.
    pub fn parse(text: Option<&str>) -> Option<Self> {
        let value: Value = serde_json::from_str(text?.trim()).ok()?;
        let value = lowercase_keys(value);
        let object = value.as_object()?;
        let prerequisites = match object.get("prerequisites") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_i64().or_else(|| item.as_str().and_then(|text| text.trim().parse().ok())))
                .map(ChallengeId)
                .collect(),
            _ => Vec::new(),
        };
        let anonymize = object.get("anonymize").and_then(Value::as_bool).unwrap_or(false);
        Some(Self { prerequisites, anonymize })
    }

    /// The JSON the list endpoint shows.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "prerequisites": self.prerequisites.iter().map(|id| id.get()).collect::<Vec<_>>(),
            "anonymize": self.anonymize,
        })
    }

    /// True when every existing prerequisite is solved.
    pub fn met(&self, solved: &HashSet<ChallengeId>, existing: &HashSet<ChallengeId>) -> bool {
        self.prerequisites.iter().all(|id| solved.contains(id) || !existing.contains(id))
    }
}

/// True when players must not see the challenge at all.
pub fn is_hidden(challenge: &Challenge, config: &EventConfig, now: i64) -> bool {
    challenge.spec.state == ChallengeState::Hidden
        || config.is_category_hidden(&challenge.spec.category)
        || challenge.spec.scheduled_at.is_some_and(|at| at > now)
}

/// Whether a visible challenge is open to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Prerequisites met (or none).
    Open,
    /// Prerequisites unmet; shown as a locked placeholder.
    Anonymized,
    /// Prerequisites unmet; not shown.
    Locked,
}

/// Decides the access to one challenge.
pub fn access(challenge: &Challenge, solved: &HashSet<ChallengeId>, existing: &HashSet<ChallengeId>) -> Access {
    let Some(requirements) = Requirements::parse(challenge.spec.requirements.as_deref()) else {
        return Access::Open;
    };
    if requirements.met(solved, existing) {
        Access::Open
    } else if requirements.anonymize {
        Access::Anonymized
    } else {
        Access::Locked
    }
}

/// Decides the access to one challenge for an account, reading its solves and, for each unsolved
/// prerequisite, whether that challenge still exists (a deleted prerequisite does not block).
pub(super) async fn access_of(state: &ApiState, challenge: &Challenge, account: Account) -> Result<Access, ApiError> {
    let Some(requirements) = Requirements::parse(challenge.spec.requirements.as_deref()) else {
        return Ok(Access::Open);
    };
    if requirements.prerequisites.is_empty() {
        return Ok(Access::Open);
    }
    let solved: HashSet<ChallengeId> = state.store.solved_challenge_ids(account).await?.into_iter().collect();
    let mut existing = HashSet::new();
    for prerequisite in requirements.prerequisites.iter().filter(|id| !solved.contains(id)) {
        match state.store.get_challenge(*prerequisite).await {
            Ok(_) => {
                existing.insert(*prerequisite);
            }
            Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(access(challenge, &solved, &existing))
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Renders a multiple-choice description (`* () option` lines) as the contract's HTML
/// fragment; the raw description when it has no question or no option (§3.12).
pub fn multiple_choice_html(description: &str) -> String {
    let mut question = Vec::new();
    let mut options = Vec::new();
    for line in description.lines() {
        let trimmed = line.trim_start();
        if let Some(option) = trimmed.strip_prefix("* ()") {
            options.push(option.trim().to_owned());
        } else if !line.trim().is_empty() {
            question.push(line.trim().to_owned());
        }
    }
    if question.is_empty() || options.is_empty() {
        return description.to_owned();
    }
    let mut html = String::from("<div class=\"multiple-choice\">");
    html.push_str(&format!("<p>{}</p>", escape_html(&question.join(" "))));
    for (index, option) in options.iter().enumerate() {
        let escaped = escape_html(option);
        html.push_str(&format!(
            "<div><input type=\"radio\" id=\"option-{index}\" name=\"radio-group\" value=\"{escaped}\"><label for=\"option-{index}\">{escaped}</label></div>"
        ));
    }
    html.push_str("</div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_leniently() {
        let parsed = Requirements::parse(Some(r#"{"Prerequisites":[1,"2"],"ANONYMIZE":true}"#)).unwrap();
        assert_eq!(parsed.prerequisites, vec![ChallengeId(1), ChallengeId(2)]);
        assert!(parsed.anonymize);
        assert_eq!(Requirements::parse(Some("not json")), None);
        assert_eq!(Requirements::parse(None), None);
        assert_eq!(Requirements::parse(Some("{}")), Some(Requirements::default()));
    }

    #[test]
    fn deleted_prerequisites_are_ignored() {
        let requirements = Requirements { prerequisites: vec![ChallengeId(1), ChallengeId(9)], anonymize: false };
        let existing: HashSet<ChallengeId> = [ChallengeId(1), ChallengeId(2)].into();
        assert!(!requirements.met(&HashSet::new(), &existing));
        assert!(requirements.met(&[ChallengeId(1)].into(), &existing));
    }

    #[test]
    fn multiple_choice_rendering() {
        let html = multiple_choice_html("Which port\nis HTTPS?\n* () 80\n* () 443 <b>");
        assert!(html.contains("<p>Which port is HTTPS?</p>"));
        assert!(html.contains("value=\"443 &lt;b&gt;\""));
        assert_eq!(multiple_choice_html("no options here"), "no options here");
    }
}
