//! The lists hanging off a challenge (flags, hints, files, tags, topics), described once as
//! data: each [`Child`] says which admin API list it reads, which columns it shows, how it is
//! added (the form and the API body) and how a row is removed. The challenge page renders every
//! entry of [`CHILDREN`] the same way, and one handler adds any of them.

use serde_json::{Value, json};

use super::{Fields, field, items};
use crate::web::admin::view::{Button, Cell, Field, Form as UiForm, Table};

/// How a column shows its value.
#[derive(Debug, Clone, Copy)]
enum Show {
    /// Plain text.
    Text,
    /// Monospaced (flag contents).
    Code,
    /// A link to the staff download `/files/<location>`.
    File,
}

/// How a new entry is added.
#[derive(Debug, Clone, Copy)]
enum Add {
    /// A URL-encoded form posted to `/admin/challenges/{id}/add/{kind}`, turned into the JSON
    /// body of `POST /api/v1/{kind}`.
    Json {
        /// The form's inputs.
        fields: fn() -> Vec<Field>,
        /// The API body, from the challenge id and the form.
        body: fn(i64, &Fields) -> Value,
        /// The message after success.
        done: &'static str,
    },
    /// A multipart upload handed to `POST /api/v1/files` unchanged.
    Upload,
}

/// One kind of child.
#[derive(Debug)]
pub struct Child {
    /// The admin API segment: `/api/v1/challenges/{id}/{kind}` lists, `/api/v1/{kind}` adds.
    pub kind: &'static str,
    /// Caption of the table.
    pub heading: &'static str,
    /// Columns: (heading, key of the API row, how to show it).
    columns: &'static [(&'static str, &'static str, Show)],
    /// Submit label of the add form.
    submit: &'static str,
    add: Add,
}

/// Every child list of the challenge page, in page order.
pub const CHILDREN: &[Child] = &[
    Child {
        kind: "flags",
        heading: "Flags",
        columns: &[("Type", "type", Show::Text), ("Content", "content", Show::Code), ("Options", "data", Show::Text)],
        submit: "Add flag",
        add: Add::Json {
            fields: || {
                vec![
                    Field::new("text", "content", "Flag", "").required(),
                    Field::select("type", "Type", "static", &[("static", "Static"), ("regex", "Regex")]),
                    Field::checkbox("case_insensitive", "Case-insensitive", false),
                ]
            },
            body: |id, fields| {
                let data = if fields.checked("case_insensitive") { "case_insensitive" } else { "" };
                json!({"challenge_id": id, "content": fields.raw("content"),
                       "type": fields.get("type").unwrap_or("static"), "data": data})
            },
            done: "Flag added",
        },
    },
    Child {
        kind: "hints",
        heading: "Hints",
        columns: &[("Title", "title", Show::Text), ("Content", "content", Show::Text), ("Cost", "cost", Show::Text)],
        submit: "Add hint",
        add: Add::Json {
            fields: || {
                vec![
                    Field::new("text", "title", "Hint title", ""),
                    Field::new("text", "content", "Hint", "").required(),
                    Field::new("number", "cost", "Cost", "0"),
                ]
            },
            body: |id, fields| {
                json!({"challenge_id": id, "content": fields.raw("content"), "title": fields.get("title"),
                       "cost": fields.number("cost").unwrap_or(json!(0))})
            },
            done: "Hint added",
        },
    },
    Child {
        kind: "files",
        heading: "Files",
        columns: &[("Location", "location", Show::File)],
        submit: "Upload",
        add: Add::Upload,
    },
    Child {
        kind: "tags",
        heading: "Tags",
        columns: &[("Tag", "value", Show::Text)],
        submit: "Add tag",
        add: Add::Json {
            fields: || vec![Field::new("text", "value", "Tag", "").required()],
            body: |id, fields| json!({"challenge": id, "value": fields.raw("value")}),
            done: "Tag added",
        },
    },
    Child {
        kind: "topics",
        heading: "Topics",
        columns: &[("Topic", "value", Show::Text)],
        submit: "Add topic",
        add: Add::Json {
            fields: || vec![Field::new("text", "value", "Topic", "").required()],
            body: |id, fields| json!({"challenge": id, "value": fields.raw("value"), "type": "challenge"}),
            done: "Topic added",
        },
    },
];

/// The child kind named `kind`.
pub fn child(kind: &str) -> Option<&'static Child> {
    CHILDREN.iter().find(|child| child.kind == kind)
}

impl Child {
    /// The table of a challenge's entries, with a remove button per row for writers.
    pub fn table(&self, challenge_id: i64, list: &Value, write: bool) -> Table {
        let mut headings: Vec<&str> = self.columns.iter().map(|(heading, _, _)| *heading).collect();
        headings.push("");
        let mut table = Table::new(self.heading, &headings);
        for entry in items(list) {
            let mut cells: Vec<Cell> = self
                .columns
                .iter()
                .map(|(_, key, show)| {
                    let value = field(entry, key);
                    match show {
                        Show::Text => Cell::text(value),
                        Show::Code => Cell::code(value),
                        Show::File => Cell::link(&value, format!("/files/{value}")),
                    }
                })
                .collect();
            let buttons = if write {
                let action = format!("/admin/challenges/{challenge_id}/remove");
                let child_id = field(entry, "id");
                vec![Button::new("Remove", action, &[("kind", self.kind), ("child", &child_id)]).danger()]
            } else {
                vec![]
            };
            cells.push(Cell::buttons(buttons));
            table.row(cells);
        }
        table
    }

    /// The one-line form adding an entry.
    pub fn form(&self, challenge_id: i64) -> UiForm {
        match self.add {
            Add::Json { fields, .. } => {
                let action = format!("/admin/challenges/{challenge_id}/add/{}", self.kind);
                let mut form = UiForm { inline: true, ..UiForm::post("", action, self.submit) };
                form.fields = fields();
                form
            }
            Add::Upload => UiForm {
                inline: true,
                multipart: true,
                ..UiForm::post("", format!("/admin/challenges/{challenge_id}/files"), self.submit)
            }
            .field(Field::new("hidden", "challenge", "", challenge_id))
            .field(Field::new("hidden", "type", "", "challenge"))
            .field(Field::new("file", "file", "File", "").required()),
        }
    }

    /// `(API path, body, success message)` of an add form; `None` for uploads.
    pub fn add_request(&self, challenge_id: i64, form: &Fields) -> Option<(String, Value, &'static str)> {
        match self.add {
            Add::Json { body, done, .. } => Some((format!("/api/v1/{}", self.kind), body(challenge_id, form), done)),
            Add::Upload => None,
        }
    }

    /// The API path deleting entry `child_id` (topics are unlinked from the challenge).
    pub fn remove_path(&self, child_id: i64) -> String {
        match self.kind {
            "topics" => format!("/api/v1/topics?type=challenge&target_id={child_id}"),
            kind => format!("/api/v1/{kind}/{child_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect())
    }

    #[test]
    fn flag_form_becomes_the_flags_api_body() {
        let flags = child("flags").expect("flags");
        let (path, body, done) =
            flags.add_request(7, &form(&[("content", "flag{x}"), ("case_insensitive", "true")])).expect("json");
        assert_eq!(path, "/api/v1/flags");
        assert_eq!(
            body,
            json!({"challenge_id": 7, "content": "flag{x}", "type": "static", "data": "case_insensitive"})
        );
        assert_eq!(done, "Flag added");
        assert!(child("files").expect("files").add_request(7, &form(&[])).is_none());
    }

    #[test]
    fn topics_are_unlinked_and_other_children_deleted() {
        assert_eq!(child("topics").expect("topics").remove_path(3), "/api/v1/topics?type=challenge&target_id=3");
        assert_eq!(child("hints").expect("hints").remove_path(3), "/api/v1/hints/3");
        assert!(child("challenges").is_none());
    }

    #[test]
    fn tables_show_remove_buttons_only_to_writers() {
        let list = json!([{"id": 4, "type": "static", "content": "flag{a}", "data": ""}]);
        let flags = child("flags").expect("flags");
        let table = flags.table(9, &list, true);
        assert_eq!(table.columns, ["Type", "Content", "Options", ""]);
        assert_eq!(
            table.rows[0].cells[3].buttons[0].fields,
            [("kind".into(), "flags".into()), ("child".into(), "4".into())]
        );
        assert!(flags.table(9, &list, false).rows[0].cells[3].buttons.is_empty());
    }
}
