//! The typed event configuration and the validation of each known key.
//!
//! Defaults follow the FCTF contract (`shared/spec/contestant-api.md` §7.2) with fctf's
//! decisions applied: `captain_only_start_challenge` and `captain_only_submit_challenge` default
//! to false; a missing `ctf_name` reads as "CTF". Keys fctf adds: `team_self_service` (players
//! may create, join and leave teams), `team_size` (0 = unlimited), `dynamic_flag_sharing`
//! (`reject` or `record`: what happens when a team submits another team's per-team flag).

use std::collections::BTreeMap;

/// Teams or individual players.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMode {
    Teams,
    Users,
}

/// Who may see the scoreboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreVisibility {
    Public,
    Private,
    Hidden,
}

/// The event configuration, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct EventConfig {
    pub ctf_name: String,
    pub ctf_logo: Option<String>,
    pub ctf_small_icon: Option<String>,
    pub ctf_description: Option<String>,
    /// Unix seconds; 0 = not set.
    pub start: i64,
    pub end: i64,
    pub freeze: i64,
    pub paused: bool,
    pub view_after_ctf: bool,
    pub user_mode: UserMode,
    /// Lower-cased, trimmed category names.
    pub hidden_categories: Vec<String>,
    /// Concurrent instances per team.
    pub limit_challenges: u32,
    pub captain_only_start_challenge: bool,
    pub captain_only_submit_challenge: bool,
    pub challenge_difficulty_visibility: bool,
    pub incorrect_submissions_per_min: u32,
    pub contestant_registration_enabled: bool,
    /// Registration cap (0 = unlimited).
    pub num_users: u32,
    /// Team size cap (0 = unlimited).
    pub team_size: u32,
    pub team_self_service: bool,
    pub score_visibility: ScoreVisibility,
    pub bracket_view_other: bool,
    /// True: a team submitting another team's dynamic flag is refused (and recorded).
    pub reject_shared_dynamic_flags: bool,
    pub turnstile_site_key: Option<String>,
    pub turnstile_secret_key: Option<String>,
    /// Every stored row, including keys fctf does not interpret.
    pub raw: BTreeMap<String, String>,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self::from_map(BTreeMap::new())
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    let trimmed = value.trim();
    if let Ok(number) = trimmed.parse::<i64>() {
        return Some(number != 0);
    }
    match trimmed.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Some(true),
        "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

fn parse_time(value: &str) -> Option<i64> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Some(0);
    }
    if let Ok(seconds) = trimmed.parse::<i64>() {
        return (seconds >= 0).then_some(seconds);
    }
    if let Ok(float) = trimmed.parse::<f64>() {
        return (float.is_finite() && float >= 0.0).then_some(float as i64);
    }
    chrono::DateTime::parse_from_rfc3339(trimmed).ok().map(|time| time.timestamp())
}

fn parse_u32(value: &str) -> Option<u32> {
    value.trim().parse::<u32>().ok()
}

const MAX_VALUE_LEN: usize = 65_535;

/// Checks one value for a key; unknown keys accept any text up to 65535 characters.
pub fn validate_value(key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!("value must be at most {MAX_VALUE_LEN} characters"));
    }
    let ok = match key {
        "start" | "end" | "freeze" => parse_time(value).is_some(),
        "paused"
        | "view_after_ctf"
        | "captain_only_start_challenge"
        | "captain_only_submit_challenge"
        | "contestant_registration_enabled"
        | "bracket_view_other"
        | "team_self_service" => value.trim().is_empty() || parse_bool(value).is_some(),
        "limit_challenges" | "incorrect_submissions_per_min" | "num_users" | "team_size" => {
            value.trim().is_empty() || parse_u32(value).is_some()
        }
        "user_mode" => matches!(value.trim(), "teams" | "users"),
        "score_visibility" => matches!(value.trim(), "public" | "private" | "hidden" | "admins"),
        "challenge_difficulty_visibility" => matches!(value.trim(), "enabled" | "disabled" | ""),
        "dynamic_flag_sharing" => matches!(value.trim(), "reject" | "record" | ""),
        "ctf_name" => !value.trim().is_empty() && value.len() <= 256,
        // CTFd keys the admin API accepts (admin-api §2.11), checked so a typo cannot be stored.
        "challenge_visibility" | "account_visibility" => matches!(value.trim(), "public" | "private" | "admins"),
        "registration_visibility" => matches!(value.trim(), "public" | "private" | "mlc"),
        "max_attempts_behavior" => matches!(value.trim(), "lockout" | "timeout"),
        "challenge_ratings" => matches!(value.trim(), "public" | "private" | "disabled"),
        "team_disbanding" => matches!(value.trim(), "inactive_only" | "disabled"),
        "max_attempts_timeout" => value.trim().is_empty() || parse_u32(value).is_some(),
        "hints_free_public_access" | "name_changes" | "verify_emails" | "view_self_submissions" => {
            value.trim().is_empty() || parse_bool(value).is_some()
        }
        _ => true,
    };
    if ok { Ok(()) } else { Err(format!("invalid value for {key}")) }
}

impl EventConfig {
    /// Builds the typed view from stored rows; malformed values read as defaults.
    pub fn from_map(raw: BTreeMap<String, String>) -> Self {
        let text =
            |key: &str| raw.get(key).map(|value| value.trim()).filter(|value| !value.is_empty()).map(str::to_owned);
        let flag = |key: &str, default: bool| raw.get(key).and_then(|value| parse_bool(value)).unwrap_or(default);
        let number = |key: &str, default: u32| raw.get(key).and_then(|value| parse_u32(value)).unwrap_or(default);
        let time = |key: &str| raw.get(key).and_then(|value| parse_time(value)).unwrap_or(0);
        let hidden_categories = raw
            .get("hidden_categories")
            .map(|value| {
                value
                    .split(['\n', '\r'])
                    .map(|entry| entry.trim().to_lowercase())
                    .filter(|entry| !entry.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            ctf_name: text("ctf_name").unwrap_or_else(|| "CTF".to_owned()),
            ctf_logo: text("ctf_logo"),
            ctf_small_icon: text("ctf_small_icon"),
            ctf_description: text("ctf_description"),
            start: time("start"),
            end: time("end"),
            freeze: time("freeze"),
            paused: flag("paused", false),
            view_after_ctf: flag("view_after_ctf", false),
            user_mode: if text("user_mode").as_deref() == Some("users") { UserMode::Users } else { UserMode::Teams },
            hidden_categories,
            limit_challenges: number("limit_challenges", 3),
            captain_only_start_challenge: flag("captain_only_start_challenge", false),
            captain_only_submit_challenge: flag("captain_only_submit_challenge", false),
            challenge_difficulty_visibility: text("challenge_difficulty_visibility").as_deref() == Some("enabled"),
            incorrect_submissions_per_min: number("incorrect_submissions_per_min", 10),
            contestant_registration_enabled: flag("contestant_registration_enabled", false),
            num_users: number("num_users", 0),
            team_size: number("team_size", 0),
            team_self_service: flag("team_self_service", false),
            score_visibility: match text("score_visibility").as_deref() {
                Some("private") => ScoreVisibility::Private,
                Some("hidden") | Some("admins") => ScoreVisibility::Hidden,
                _ => ScoreVisibility::Public,
            },
            bracket_view_other: flag("bracket_view_other", false),
            reject_shared_dynamic_flags: text("dynamic_flag_sharing").as_deref() != Some("record"),
            turnstile_site_key: text("cloudflare_turnstile_site_key"),
            turnstile_secret_key: text("cloudflare_turnstile_secret_key"),
            raw,
        }
    }

    /// The CTF is running at `now` (unix seconds), per the contract's predicate.
    pub fn is_running(&self, now: i64) -> bool {
        match (self.start > 0, self.end > 0) {
            (true, true) => self.start < now && now < self.end,
            (true, false) => now > self.start,
            (false, true) => now < self.end,
            (false, false) => true,
        }
    }

    /// The CTF has started at `now`.
    pub fn has_started(&self, now: i64) -> bool {
        now > self.start
    }

    /// The CTF has ended at `now`.
    pub fn has_ended(&self, now: i64) -> bool {
        self.end > 0 && now > self.end
    }

    /// The scoreboard is frozen at `now`.
    pub fn is_frozen(&self, now: i64) -> bool {
        self.freeze > 0 && now >= self.freeze
    }

    /// True when the category is hidden from players.
    pub fn is_category_hidden(&self, category: &str) -> bool {
        let wanted = category.trim().to_lowercase();
        self.hidden_categories.contains(&wanted)
    }
}
