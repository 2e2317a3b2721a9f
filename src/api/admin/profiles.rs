//! What the users and teams endpoints share, written once: the flags organisers toggle on an
//! account (ban, hide and, for users, verify) and their effects, the profile fields both
//! kinds of account carry, list filtering and pagination, and the award list of an account.
//!
//! An account exposes the facts these need through [`Account`]; `users` and `teams` keep only
//! what differs (roles and passwords, captains and members).

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::accounts::{award_view, bracket_field, country_field, email_field};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, QueryParams};
use super::reply::{Page, page_of, paginated};
use crate::api::ApiState;
use crate::domain::{BracketId, UserId};
use crate::store::{Award, Team, User};

/// An account as the shared code sees it.
pub(super) trait Account: Clone {
    /// Display name.
    fn name(&self) -> &str;
    /// `(email, website, country, affiliation)`.
    fn contact(&self) -> [&Option<String>; 4];
    /// Scoreboard bracket.
    fn bracket(&self) -> Option<BracketId>;
    /// The toggled flags.
    fn flags(&self) -> Flags;
    /// Exact-match list filters beyond the shared ones (`?key=value`).
    fn extra_filters(&self) -> Vec<(&'static str, String)>;
}

/// The flags organisers toggle; `verified` is `None` for teams, which have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flags {
    pub hidden: bool,
    pub banned: bool,
    pub verified: Option<bool>,
}

impl Account for User {
    fn name(&self) -> &str {
        &self.name
    }
    fn contact(&self) -> [&Option<String>; 4] {
        [&self.email, &self.website, &self.country, &self.affiliation]
    }
    fn bracket(&self) -> Option<BracketId> {
        self.bracket_id
    }
    fn flags(&self) -> Flags {
        Flags { hidden: self.hidden, banned: self.banned, verified: Some(self.verified) }
    }
    fn extra_filters(&self) -> Vec<(&'static str, String)> {
        vec![
            ("type", self.role.as_str().to_owned()),
            ("team_id", self.team_id.map(|team| team.to_string()).unwrap_or_default()),
        ]
    }
}

impl Account for Team {
    fn name(&self) -> &str {
        &self.name
    }
    fn contact(&self) -> [&Option<String>; 4] {
        [&self.email, &self.website, &self.country, &self.affiliation]
    }
    fn bracket(&self) -> Option<BracketId> {
        self.bracket_id
    }
    fn flags(&self) -> Flags {
        Flags { hidden: self.hidden, banned: self.banned, verified: None }
    }
    fn extra_filters(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// True when `account` passes the list filters of `query`: without `view=admin` hidden and
/// banned accounts are left out; `affiliation`, `country` and the account's extra filters
/// match exactly; `bracket_id` (or `bracket`); the flags as booleans; `q` searched in `field`.
pub(super) fn matches(account: &impl Account, query: &QueryParams) -> Result<bool, AdminError> {
    let flags = account.flags();
    if query.text("view") != Some("admin") && (flags.hidden || flags.banned) {
        return Ok(false);
    }
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let [email, website, country, affiliation] = account.contact();
    let mut exact = vec![("affiliation", text(affiliation)), ("country", text(country))];
    exact.extend(account.extra_filters());
    for (key, actual) in &exact {
        if let Some(wanted) = query.text(key)
            && wanted != actual
        {
            return Ok(false);
        }
    }
    if let Some(bracket) = query.int("bracket_id")?.or(query.int("bracket")?)
        && account.bracket().map(BracketId::get) != Some(bracket)
    {
        return Ok(false);
    }
    let mut toggles = vec![("hidden", flags.hidden), ("banned", flags.banned)];
    if let Some(verified) = flags.verified {
        toggles.insert(0, ("verified", verified));
    }
    for (key, actual) in toggles {
        if let Some(wanted) = query.bool(key)?
            && wanted != actual
        {
            return Ok(false);
        }
    }
    if let Some(needle) = query.text("q") {
        let haystack = match query.text("field").unwrap_or("name") {
            "name" => account.name().to_owned(),
            "email" => text(email),
            "website" => text(website),
            "country" => text(country),
            "affiliation" => text(affiliation),
            "bracket" => account.bracket().map(|id| id.to_string()).unwrap_or_default(),
            _ => {
                return Err(AdminError::field(
                    "field",
                    "must be name, email, website, country, bracket or affiliation",
                ));
            }
        };
        if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One page (50 per page, `per_page` up to 100) of the accounts passing the filters.
pub(super) fn list_page<A: Account>(
    accounts: &[A],
    query: &QueryParams,
    view: fn(&A) -> Value,
) -> AdminResult<Response> {
    let page = Page::from_query(query, 50, 100)?;
    let mut selected = Vec::new();
    for account in accounts {
        if matches(account, query)? {
            selected.push(account.clone());
        }
    }
    let data = page_of(&selected, page).iter().map(view).collect();
    Ok(paginated(data, page, i64::try_from(selected.len()).unwrap_or(i64::MAX)))
}

/// The profile fields and flags both kinds of account take, as partial updates.
#[derive(Debug, Default)]
pub(super) struct Profile {
    pub email: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub affiliation: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub secret: Option<Option<String>>,
    pub bracket_id: Option<Option<BracketId>>,
    pub hidden: Option<bool>,
    pub banned: Option<bool>,
    /// Only read for users (`verifiable`).
    pub verified: Option<bool>,
}

/// Reads the shared profile fields and flags (validated; problems go to `fields`).
pub(super) async fn read_profile(state: &ApiState, fields: &mut Fields<'_>, verifiable: bool) -> AdminResult<Profile> {
    Ok(Profile {
        email: email_field(fields),
        website: fields.text("website", 128).patch(),
        affiliation: fields.text("affiliation", 128).patch(),
        country: country_field(fields),
        secret: fields.text("secret", 128).patch(),
        bracket_id: bracket_field(state, fields).await?,
        hidden: fields.bool("hidden").set(),
        banned: fields.bool("banned").set(),
        verified: if verifiable { fields.bool("verified").set() } else { None },
    })
}

/// What an update changed that others must learn about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Changes {
    /// The account is banned now and was not before: its sessions must end at once.
    pub newly_banned: bool,
    /// A flag, the name or the bracket changed: players' views and scores must refresh.
    pub visible: bool,
}

/// Compares an account before and after an update.
pub(super) fn changes<A: Account>(before: &A, after: &A) -> Changes {
    let (old, new) = (before.flags(), after.flags());
    Changes {
        newly_banned: new.banned && !old.banned,
        visible: old != new || before.name() != after.name() || before.bracket() != after.bracket(),
    }
}

/// Ends every session of `users` (a ban, a role or a password change takes effect at once).
pub(super) async fn revoke_sessions(state: &ApiState, users: impl IntoIterator<Item = UserId>) -> AdminResult<()> {
    for user in users {
        state.store.revoke_user_sessions(user, None).await?;
    }
    Ok(())
}

/// `{success, data: [award], meta: {count}}`.
pub(super) fn awards_response(awards: &[Award]) -> Response {
    let data: Vec<Value> = awards.iter().map(award_view).collect();
    let count = data.len();
    axum::Json(json!({"success": true, "data": data, "meta": {"count": count}})).into_response()
}
