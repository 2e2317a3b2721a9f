//! Checking every row of an account CSV before anything is written.
//!
//! Columns (header row, any order, names case-insensitive):
//! - users: `name` (required), `email`, `password`, `team`, `website`, `affiliation`,
//!   `country`, `bracket`, `verified`, `hidden`, `banned`;
//! - teams: `name` (required), `email`, `password`, `website`, `affiliation`, `country`,
//!   `bracket`, `hidden`, `banned`;
//! - plus one column per custom field of that kind, named like the field.
//!
//! An unknown column is an error (a typo would otherwise drop data silently). Booleans accept
//! `true/false`, `yes/no`, `y/n`, `1/0` or empty (the default). `bracket` is a bracket's name
//! or id. Country codes are upper-cased. A user's `team` names an existing team, a team of the
//! same file, or a new team. Imported users are verified unless `verified` says otherwise.

use std::collections::{HashMap, HashSet};

use super::csv::{Record, records};
use crate::store::{Bracket, Field};

/// Which accounts a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Users (optionally with their team).
    Users,
    /// Teams.
    Teams,
}

impl Kind {
    /// `users` or `teams`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "users" | "user" => Some(Kind::Users),
            "teams" | "team" => Some(Kind::Teams),
            _ => None,
        }
    }

    /// The custom field kind (`user` or `team`).
    pub fn field_kind(self) -> &'static str {
        match self {
            Kind::Users => "user",
            Kind::Teams => "team",
        }
    }

    /// The standard columns.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Users => &[
                "name",
                "email",
                "password",
                "team",
                "website",
                "affiliation",
                "country",
                "bracket",
                "verified",
                "hidden",
                "banned",
            ],
            Kind::Teams => {
                &["name", "email", "password", "website", "affiliation", "country", "bracket", "hidden", "banned"]
            }
        }
    }
}

/// What the rows are checked against.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// Lower-cased names already taken (users or teams, as the file's kind).
    pub names: HashSet<String>,
    /// Lower-cased e-mail addresses already taken.
    pub emails: HashSet<String>,
    /// The brackets.
    pub brackets: Vec<Bracket>,
    /// The custom fields of the file's kind.
    pub fields: Vec<Field>,
}

/// One checked row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// Spreadsheet row number (the header is row 1).
    pub row: usize,
    /// Account name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// The given password (`None`: one is generated for users).
    pub password: Option<String>,
    /// Team name (users only).
    pub team: Option<String>,
    /// Profile website.
    pub website: Option<String>,
    /// Profile affiliation.
    pub affiliation: Option<String>,
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// Bracket id.
    pub bracket_id: Option<i64>,
    /// Verified (users).
    pub verified: bool,
    /// Hidden from the scoreboard.
    pub hidden: bool,
    /// Banned.
    pub banned: bool,
    /// `(field id, value)` of custom fields with a value.
    pub fields: Vec<(i64, String)>,
}

/// The problems of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowErrors {
    /// Spreadsheet row number (1 for the header or the file as a whole).
    pub row: usize,
    /// What is wrong.
    pub errors: Vec<String>,
}

/// The most rows one file may hold.
pub const MAX_ROWS: usize = 10_000;

enum Column {
    Standard(&'static str),
    Custom(usize),
}

/// Checks every row of `text`; every problem of every row, or the rows when there are none.
pub fn check(kind: Kind, text: &str, existing: &Existing) -> Result<Vec<Row>, Vec<RowErrors>> {
    let file_error = |message: String| vec![RowErrors { row: 1, errors: vec![message] }];
    let mut all =
        records(text).map_err(|open| file_error(format!("a quote opened on line {} is never closed", open.line)))?;
    if all.is_empty() {
        return Err(file_error("the file is empty: it needs a header row and at least one account".into()));
    }
    let header = all.remove(0);
    if all.is_empty() {
        return Err(file_error("the file has a header row but no accounts".into()));
    }
    if all.len() > MAX_ROWS {
        return Err(file_error(format!("at most {MAX_ROWS} accounts can be imported at once")));
    }
    let columns = header_columns(kind, &header, existing).map_err(|errors| vec![RowErrors { row: 1, errors }])?;
    let mut seen_names = HashSet::new();
    let mut seen_emails = HashSet::new();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (index, record) in all.iter().enumerate() {
        let number = index + 2;
        let mut errors = Vec::new();
        if record.fields.len() != columns.len() {
            errors.push(format!("has {} cells; the header has {}", record.fields.len(), columns.len()));
        } else {
            let row = check_row(kind, number, record, &columns, existing, &mut errors);
            if !row.name.is_empty() && !seen_names.insert(row.name.to_lowercase()) {
                errors.push(format!("name: {} appears twice in the file", row.name));
            }
            if let Some(email) = &row.email
                && !seen_emails.insert(email.to_lowercase())
            {
                errors.push(format!("email: {email} appears twice in the file"));
            }
            rows.push(row);
        }
        if !errors.is_empty() {
            problems.push(RowErrors { row: number, errors });
        }
    }
    if problems.is_empty() { Ok(rows) } else { Err(problems) }
}

fn header_columns(kind: Kind, header: &Record, existing: &Existing) -> Result<Vec<Column>, Vec<String>> {
    let mut columns = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for cell in &header.fields {
        let wanted = cell.trim().to_lowercase();
        if !seen.insert(wanted.clone()) {
            errors.push(format!("column {} appears twice", cell.trim()));
            continue;
        }
        if let Some(standard) = kind.columns().iter().find(|column| **column == wanted) {
            columns.push(Column::Standard(standard));
        } else if let Some(index) =
            existing.fields.iter().position(|field| field.field.name.trim().to_lowercase() == wanted)
        {
            columns.push(Column::Custom(index));
        } else {
            errors.push(format!(
                "unknown column {:?}: use {} or the name of a custom {} field",
                cell.trim(),
                kind.columns().join(", "),
                kind.field_kind()
            ));
        }
    }
    if !seen.contains("name") {
        errors.push("the header needs a name column".into());
    }
    if errors.is_empty() { Ok(columns) } else { Err(errors) }
}

fn boolean(text: &str) -> Option<Option<bool>> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Some(None),
        "true" | "yes" | "y" | "1" => Some(Some(true)),
        "false" | "no" | "n" | "0" => Some(Some(false)),
        _ => None,
    }
}

fn email_ok(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    }) && !email.chars().any(char::is_whitespace)
}

fn limited(errors: &mut Vec<String>, column: &str, value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        None
    } else if value.chars().count() > max {
        errors.push(format!("{column}: at most {max} characters"));
        None
    } else {
        Some(value.to_owned())
    }
}

fn check_row(
    kind: Kind,
    number: usize,
    record: &Record,
    columns: &[Column],
    existing: &Existing,
    errors: &mut Vec<String>,
) -> Row {
    let mut row = Row { row: number, verified: kind == Kind::Users, ..Row::default() };
    let mut values: HashMap<&str, &str> = HashMap::new();
    for (column, cell) in columns.iter().zip(&record.fields) {
        match column {
            Column::Standard(name) => {
                values.insert(name, cell.trim());
            }
            Column::Custom(index) => {
                let field = &existing.fields[*index];
                let value = cell.trim();
                if value.is_empty() {
                    continue;
                }
                if field.field.field_type == "boolean" {
                    match boolean(value) {
                        Some(Some(flag)) => row.fields.push((field.id, flag.to_string())),
                        _ => errors.push(format!("{}: must be true or false", field.field.name)),
                    }
                } else if value.chars().count() > 65_535 {
                    errors.push(format!("{}: at most 65535 characters", field.field.name));
                } else {
                    row.fields.push((field.id, value.to_owned()));
                }
            }
        }
    }
    let value = |name: &str| values.get(name).copied().unwrap_or("");
    match value("name") {
        "" => errors.push("name: is required".into()),
        name if name.chars().count() > 128 => errors.push("name: at most 128 characters".into()),
        name if existing.names.contains(&name.to_lowercase()) => errors.push(format!("name: {name} is already taken")),
        name => row.name = name.to_owned(),
    }
    if let Some(email) = limited(errors, "email", value("email"), 128) {
        if !email_ok(&email) {
            errors.push(format!("email: {email} is not an e-mail address"));
        } else if existing.emails.contains(&email.to_lowercase()) {
            errors.push(format!("email: {email} is already used"));
        } else {
            row.email = Some(email);
        }
    }
    let password = value("password");
    if !password.is_empty() && !(8..=128).contains(&password.chars().count()) {
        errors.push("password: must be 8 to 128 characters (leave it empty to generate one)".into());
    } else if !password.is_empty() {
        row.password = Some(password.to_owned());
    }
    row.team = limited(errors, "team", value("team"), 128);
    row.website = limited(errors, "website", value("website"), 128);
    row.affiliation = limited(errors, "affiliation", value("affiliation"), 128);
    let country = value("country").to_ascii_uppercase();
    if !country.is_empty() {
        if country.len() == 2 && country.bytes().all(|byte| byte.is_ascii_uppercase()) {
            row.country = Some(country);
        } else {
            errors.push(format!("country: {} is not a two-letter code such as FR", value("country")));
        }
    }
    let bracket = value("bracket");
    if !bracket.is_empty() {
        let found = existing.brackets.iter().find(|candidate| {
            candidate.name.eq_ignore_ascii_case(bracket)
                || bracket.parse::<i64>().is_ok_and(|id| candidate.id.get() == id)
        });
        match found {
            Some(found) => row.bracket_id = Some(found.id.get()),
            None => errors.push(format!("bracket: no bracket is named {bracket}")),
        }
    }
    for (name, target) in [("verified", &mut row.verified), ("hidden", &mut row.hidden), ("banned", &mut row.banned)] {
        match boolean(value(name)) {
            Some(Some(flag)) => *target = flag,
            Some(None) => {}
            None => errors.push(format!("{name}: must be true or false")),
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BracketId;
    use crate::store::NewField;

    fn existing() -> Existing {
        Existing {
            names: HashSet::from(["taken".to_owned()]),
            emails: HashSet::from(["used@example.test".to_owned()]),
            brackets: vec![Bracket {
                id: BracketId(3),
                name: "Students".into(),
                description: String::new(),
                kind: "users".into(),
            }],
            fields: vec![
                Field {
                    id: 7,
                    field: NewField {
                        name: "School".into(),
                        kind: "user".into(),
                        field_type: "text".into(),
                        ..NewField::default()
                    },
                },
                Field {
                    id: 8,
                    field: NewField {
                        name: "Adult".into(),
                        kind: "user".into(),
                        field_type: "boolean".into(),
                        ..NewField::default()
                    },
                },
            ],
        }
    }

    #[test]
    fn reads_every_column_and_custom_fields() {
        let text = "Name,Email,Password,Team,Country,Bracket,Verified,School,Adult\n\
                    alice,alice@example.test,,Red,fr,students,no,Lycée,yes\n\
                    bob,,s3cret-pass,,,3,,,\n";
        let rows = check(Kind::Users, text, &existing()).expect("valid");
        assert_eq!(rows.len(), 2);
        let alice = &rows[0];
        assert_eq!((alice.row, alice.name.as_str(), alice.email.as_deref()), (2, "alice", Some("alice@example.test")));
        assert_eq!(
            (alice.password.as_deref(), alice.team.as_deref(), alice.country.as_deref()),
            (None, Some("Red"), Some("FR"))
        );
        assert_eq!((alice.bracket_id, alice.verified), (Some(3), false));
        assert_eq!(alice.fields, vec![(7, "Lycée".to_owned()), (8, "true".to_owned())]);
        assert_eq!(
            (rows[1].password.as_deref(), rows[1].bracket_id, rows[1].verified),
            (Some("s3cret-pass"), Some(3), true)
        );
    }

    #[test]
    fn reports_every_problem_of_every_row() {
        let text = "name,email,password,country,hidden\n\
                    taken,used@example.test,short,France,maybe\n\
                    ok,ok@example.test,,,\n\
                    OK,bad address,,,\n\
                    late,,\n";
        let problems = check(Kind::Users, text, &existing()).expect_err("invalid");
        let rows: Vec<usize> = problems.iter().map(|problem| problem.row).collect();
        assert_eq!(rows, vec![2, 4, 5]);
        assert_eq!(
            problems[0].errors,
            vec![
                "name: taken is already taken",
                "email: used@example.test is already used",
                "password: must be 8 to 128 characters (leave it empty to generate one)",
                "country: France is not a two-letter code such as FR",
                "hidden: must be true or false",
            ]
        );
        assert_eq!(
            problems[1].errors,
            vec!["email: bad address is not an e-mail address", "name: OK appears twice in the file"]
        );
        assert_eq!(problems[2].errors, vec!["has 3 cells; the header has 5"]);
    }

    #[test]
    fn refuses_unknown_columns_and_a_missing_name() {
        let problems = check(Kind::Teams, "email,team\nx@y.z,a\n", &existing()).expect_err("invalid");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].row, 1);
        assert!(problems[0].errors[0].starts_with("unknown column \"team\""), "{:?}", problems[0].errors);
        assert_eq!(problems[0].errors[1], "the header needs a name column");
        let empty = check(Kind::Teams, "name\n", &existing()).expect_err("no rows");
        assert_eq!(empty[0].errors, vec!["the file has a header row but no accounts"]);
    }

    #[test]
    fn teams_are_not_verified_and_take_no_team_column() {
        let rows = check(Kind::Teams, "name,password,banned\nBlue,,1\n", &existing()).expect("valid");
        assert_eq!(
            (rows[0].name.as_str(), rows[0].password.as_deref(), rows[0].banned, rows[0].verified),
            ("Blue", None, true, false)
        );
        assert_eq!(Kind::parse(" Teams "), Some(Kind::Teams));
        assert_eq!(Kind::parse("both"), None);
    }
}
