//! Small SQL helpers shared by the store modules: boolean columns, dynamic `UPDATE` lists and
//! placeholder lists, all in the `$N` form both backends accept.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

/// Reads a 0/1 integer column as a boolean.
pub(crate) fn bool_of(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// `$start, $start+1, …` for `count` parameters.
pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count).map(|index| format!("${index}")).collect::<Vec<_>>().join(", ")
}

/// A value bound into a dynamically built statement.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Value {
    /// Binds this value as the next parameter of `query`.
    pub(crate) fn bind_to<'q>(self, query: Query<'q, Any, AnyArguments<'q>>) -> Query<'q, Any, AnyArguments<'q>> {
        match self {
            Value::Int(value) => query.bind(value),
            Value::Text(value) => query.bind(value),
        }
    }
}

/// The `SET` list of an `UPDATE` built from optional changes.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    sets: Vec<(&'static str, Value)>,
}

impl Patch {
    /// Sets an integer column when `value` is `Some`.
    pub(crate) fn int(&mut self, column: &'static str, value: Option<Option<i64>>) {
        if let Some(value) = value {
            self.sets.push((column, Value::Int(value)));
        }
    }

    /// Sets a 0/1 column when `value` is `Some`.
    pub(crate) fn bool(&mut self, column: &'static str, value: Option<bool>) {
        if let Some(value) = value {
            self.sets.push((column, Value::Int(Some(i64::from(value)))));
        }
    }

    /// Sets a text column when `value` is `Some`.
    pub(crate) fn text(&mut self, column: &'static str, value: Option<Option<String>>) {
        if let Some(value) = value {
            self.sets.push((column, Value::Text(value)));
        }
    }

    /// True when nothing changes.
    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// `UPDATE <table> SET … WHERE id = $n` and the values to bind, the id last.
    pub(crate) fn into_update(self, table: &str, id: i64) -> (String, Vec<Value>) {
        let mut assignments = Vec::with_capacity(self.sets.len());
        let mut values = Vec::with_capacity(self.sets.len() + 1);
        for (index, (column, value)) in self.sets.into_iter().enumerate() {
            assignments.push(format!("{column} = ${}", index + 1));
            values.push(value);
        }
        let sql = format!("UPDATE {table} SET {} WHERE id = ${}", assignments.join(", "), values.len() + 1);
        values.push(Value::Int(Some(id)));
        (sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_builds_numbered_assignments() {
        let mut patch = Patch::default();
        assert!(patch.is_empty());
        patch.text("name", Some(Some("a".to_owned())));
        patch.int("bracket_id", Some(None));
        patch.bool("hidden", None);
        let (sql, values) = patch.into_update("users", 7);
        assert_eq!(sql, "UPDATE users SET name = $1, bracket_id = $2 WHERE id = $3");
        assert_eq!(values.len(), 3);
        assert_eq!(placeholders(3, 2), "$3, $4");
    }
}
