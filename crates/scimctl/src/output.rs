//! How results are printed: tables and sentences for people, JSON for
//! scripts (`--json`). Results go to standard output; progress and errors
//! to standard error.

use std::io::{self, Write};

use serde_json::Value;

use crate::cli::Kind;
use crate::error::Result;

/// Where and how results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// JSON output when `json`, human output otherwise.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether JSON is asked for.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a value as one line of compact JSON.
    pub fn json_line(&self, value: &Value) -> Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    /// Prints text followed by a newline.
    pub fn line(&self, text: &str) -> Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        Ok(())
    }

    /// Prints text as it is.
    pub fn text(&self, text: &str) -> Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// Prints `value` as one JSON line, or as `human` renders it for
    /// people.
    pub fn show(&self, value: &Value, human: impl FnOnce(&Value) -> String) -> Result<()> {
        if self.json {
            self.json_line(value)
        } else {
            self.text(&human(value))
        }
    }

    /// Prints one resource: JSON, or its attributes one per line.
    pub fn resource(&self, resource: &Value) -> Result<()> {
        if self.json {
            self.json_line(resource)
        } else {
            self.text(&details(resource))
        }
    }
}

/// The singular noun of a kind, for sentences.
pub fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Users => "user",
        Kind::Groups => "group",
    }
}

/// The column headers of a listing of `kind`.
pub fn headers(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Users => &["ID", "USERNAME", "ACTIVE", "EMAILS"],
        Kind::Groups => &["ID", "DISPLAYNAME", "MEMBERS"],
    }
}

/// One row of a listing of `kind`.
pub fn row(kind: Kind, resource: &Value) -> Vec<String> {
    let text = |key: &str| {
        resource
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string()
    };
    match kind {
        Kind::Users => vec![
            text("id"),
            text("userName"),
            match resource.get("active").and_then(Value::as_bool) {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "-".into(),
            },
            emails(resource),
        ],
        Kind::Groups => vec![
            text("id"),
            text("displayName"),
            resource
                .get("members")
                .and_then(Value::as_array)
                .map_or_else(|| "-".into(), |m| m.len().to_string()),
        ],
    }
}

/// A user's email addresses, the primary one first.
fn emails(user: &Value) -> String {
    let Some(list) = user.get("emails").and_then(Value::as_array) else {
        return "-".into();
    };
    let mut values: Vec<(bool, &str)> = list
        .iter()
        .filter_map(|e| {
            let primary = e.get("primary").and_then(Value::as_bool) == Some(true);
            e.get("value").and_then(Value::as_str).map(|v| (primary, v))
        })
        .collect();
    values.sort_by_key(|(primary, _)| !primary);
    if values.is_empty() {
        return "-".into();
    }
    values
        .iter()
        .map(|(_, v)| *v)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON value as a table cell: strings as they are, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A table of the elements of the JSON array `list` (none when it is not
/// an array), one row each.
pub fn list_table(list: &Value, headers: &[&str], row: impl Fn(&Value) -> Vec<String>) -> String {
    let rows: Vec<Vec<String>> = list.as_array().into_iter().flatten().map(row).collect();
    table(headers, &rows)
}

/// Rows under headers, in columns as wide as their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(&mut headers.iter().copied());
    for row in rows {
        push_row(&mut row.iter().map(String::as_str));
    }
    out
}

/// A resource's attributes, one `path  value` pair a line, paths aligned.
pub fn details(resource: &Value) -> String {
    let mut pairs = Vec::new();
    flatten("", resource, &mut pairs);
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = width - key.chars().count();
        out.push_str(&key);
        out.extend(std::iter::repeat_n(' ', pad + 2));
        out.push_str(&value);
        out.push('\n');
    }
    out
}

/// Flattens `value` into `(path, text)` pairs. Attributes of a schema
/// extension read `urn:...:User:employeeNumber`, as in SCIM paths.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    flatten_in(prefix, value, false, out);
}

fn flatten_in(prefix: &str, value: &Value, urn: bool, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = match (prefix.is_empty(), urn) {
                    (true, _) => k.clone(),
                    (false, true) => format!("{prefix}:{k}"),
                    (false, false) => format!("{prefix}.{k}"),
                };
                let child_urn = prefix.is_empty() && k.starts_with("urn:");
                flatten_in(&key, v, child_urn, out);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let joined = items.iter().map(scalar).collect::<Vec<_>>().join(", ");
            out.push((prefix.to_string(), joined));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_in(&format!("{prefix}[{i}]"), item, false, out);
            }
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["ID", "USERNAME"],
            &[
                vec!["1".into(), "bjensen".into()],
                vec!["22".into(), "-".into()],
            ],
        );
        assert_eq!(t, "ID  USERNAME\n1   bjensen\n22  -\n");
    }

    #[test]
    fn user_rows_put_the_primary_email_first() {
        let user = json!({"id": "1", "userName": "b", "active": false, "emails": [
            {"value": "home@x"}, {"value": "work@x", "primary": true}]});
        assert_eq!(row(Kind::Users, &user), ["1", "b", "no", "work@x, home@x"]);
    }

    #[test]
    fn details_flatten_nested_attributes() {
        let user = json!({
            "userName": "b",
            "name": {"givenName": "B"},
            "emails": [{"value": "b@x"}],
            "schemas": ["urn:a", "urn:b"],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7"}
        });
        assert_eq!(
            details(&user),
            "userName                                                                   b\n\
             name.givenName                                                             B\n\
             emails[0].value                                                            b@x\n\
             schemas                                                                    urn:a, urn:b\n\
             urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber  7\n"
        );
    }
}
