//! Resources as lines of a file: JSON lines and CSV, read for `import`
//! and written by `export`.
//!
//! A CSV header names an attribute path per column:
//!
//! | column | becomes |
//! |---|---|
//! | `userName`, `displayName`, `externalId`, ... | the attribute |
//! | `name.givenName` | a sub-attribute |
//! | `emails[type eq "work"].value` | the value of the multi-valued entry of that type |
//! | `email` | a work email, primary |
//! | `members` | group members by id, separated by spaces or `;` |
//! | `urn:...:User:employeeNumber` | an extension attribute (its schema is added to `schemas`) |
//! | `id`, `meta.*` | ignored (assigned by the provider) |
//!
//! Empty cells are left out; `active` and `primary` cells are booleans
//! (`true`/`false`, `yes`/`no`, `1`/`0`), every other cell a string.

use serde_json::{Map, Value, json};

use crate::cli::{Format, Kind};

/// The core schema URN of a kind.
pub fn core_schema(kind: Kind) -> &'static str {
    match kind {
        Kind::Users => "urn:ietf:params:scim:schemas:core:2.0:User",
        Kind::Groups => "urn:ietf:params:scim:schemas:core:2.0:Group",
    }
}

/// One record of an input file: where it starts, and the resource or why
/// it cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The 1-based line where the record starts.
    pub line: u64,
    /// The resource to create, or why the record is unusable.
    pub resource: Result<Value, String>,
}

/// Reads every record of `text` in `format`. A file that cannot be read at
/// all (a CSV without a header, or an unsupported column) is an error; a
/// record that cannot be read is a [`Record`] with an error.
pub fn parse(text: &str, format: Format, kind: Kind) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Jsonl => Ok(parse_jsonl(text, kind)),
        Format::Csv => parse_csv(text, kind),
    }
}

fn parse_jsonl(text: &str, kind: Kind) -> Vec<Record> {
    // A JSON array of resources is accepted too.
    if text.trim_start().starts_with('[') {
        return match serde_json::from_str::<Vec<Value>>(text) {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Record {
                    line: i as u64 + 1,
                    resource: prepare(v, kind),
                })
                .collect(),
            Err(e) => vec![Record {
                line: e.line() as u64,
                resource: Err(format!("not a JSON array: {e}")),
            }],
        };
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Record {
            line: i as u64 + 1,
            resource: serde_json::from_str::<Value>(l)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| prepare(v, kind)),
        })
        .collect()
}

/// Drops what the provider assigns (`id`, `meta`) and adds the core schema
/// when `schemas` is missing.
fn prepare(value: Value, kind: Kind) -> Result<Value, String> {
    let Value::Object(mut obj) = value else {
        return Err("not a JSON object".into());
    };
    obj.remove("id");
    obj.remove("meta");
    if !obj.contains_key("schemas") {
        obj.insert("schemas".into(), json!([core_schema(kind)]));
    }
    Ok(Value::Object(obj))
}

fn parse_csv(text: &str, kind: Kind) -> Result<Vec<Record>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let headers: Vec<Column> = reader
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .iter()
        .map(Column::parse)
        .collect::<Result<_, _>>()?;
    if headers.iter().all(|c| matches!(c, Column::Ignored)) {
        return Err("the CSV header names no attribute".into());
    }
    let mut records = Vec::new();
    for row in reader.records() {
        let record = match row {
            Ok(row) => {
                let line = row.position().map_or(0, csv::Position::line);
                let resource = build(&headers, &row, kind);
                Record { line, resource }
            }
            Err(e) => Record {
                line: e.position().map_or(0, csv::Position::line),
                resource: Err(format!("CSV: {e}")),
            },
        };
        records.push(record);
    }
    Ok(records)
}

fn build(columns: &[Column], row: &csv::StringRecord, kind: Kind) -> Result<Value, String> {
    let mut obj = Map::new();
    let mut schemas = vec![core_schema(kind).to_string()];
    for (column, cell) in columns.iter().zip(row.iter()) {
        if cell.trim().is_empty() {
            continue;
        }
        if let Column::Extension { urn, .. } = column
            && !schemas.contains(urn)
        {
            schemas.push(urn.clone());
        }
        column.set(&mut obj, cell.trim())?;
    }
    if obj.is_empty() {
        return Err("an empty row".into());
    }
    obj.insert("schemas".into(), json!(schemas));
    Ok(Value::Object(obj))
}

/// What a CSV column means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// Assigned by the provider, or unnamed: not sent.
    Ignored,
    /// `email`: a primary work email.
    Email,
    /// `members`: member ids.
    Members,
    /// A dotted path of the core schema: `userName`, `name.givenName`.
    Path(Vec<String>),
    /// `attr[type eq "T"].sub`.
    Typed {
        /// The multi-valued attribute.
        attr: String,
        /// The `type` of the entry.
        kind: String,
        /// The sub-attribute.
        sub: String,
    },
    /// `urn:...:attr.sub`: an extension attribute.
    Extension {
        /// The extension's schema URN.
        urn: String,
        /// The dotted path within it.
        path: Vec<String>,
    },
}

impl Column {
    /// Reads a header cell.
    pub fn parse(header: &str) -> Result<Column, String> {
        let h = header.trim();
        let lower = h.to_ascii_lowercase();
        if h.is_empty() || lower == "id" || lower == "meta" || lower.starts_with("meta.") {
            return Ok(Column::Ignored);
        }
        if lower == "email" {
            return Ok(Column::Email);
        }
        if lower == "members" {
            return Ok(Column::Members);
        }
        if lower.starts_with("urn:") {
            let (urn, attr) = h
                .rsplit_once(':')
                .filter(|(_, a)| !a.is_empty())
                .ok_or_else(|| format!("column {h:?}: no attribute after the schema URN"))?;
            return Ok(Column::Extension {
                urn: urn.to_string(),
                path: dotted(attr, h)?,
            });
        }
        if let Some((attr, rest)) = h.split_once('[') {
            let (filter, sub) = rest
                .split_once("].")
                .ok_or_else(|| format!("column {h:?}: expected attr[type eq \"T\"].sub"))?;
            let words: Vec<&str> = filter.split_whitespace().collect();
            let [key, op, literal] = words[..] else {
                return Err(format!("column {h:?}: expected attr[type eq \"T\"].sub"));
            };
            let kind = literal
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .filter(|_| key.eq_ignore_ascii_case("type") && op.eq_ignore_ascii_case("eq"))
                .ok_or_else(|| format!("column {h:?}: only [type eq \"T\"] is supported"))?;
            return Ok(Column::Typed {
                attr: attr.to_string(),
                kind: kind.to_string(),
                sub: sub.to_string(),
            });
        }
        Ok(Column::Path(dotted(h, h)?))
    }

    fn set(&self, obj: &mut Map<String, Value>, cell: &str) -> Result<(), String> {
        match self {
            Column::Ignored => {}
            Column::Email => {
                let emails = array(obj, "emails");
                let primary = emails.is_empty();
                emails.push(json!({"value": cell, "type": "work", "primary": primary}));
            }
            Column::Members => {
                let members = array(obj, "members");
                for id in cell.split(|c: char| c.is_whitespace() || c == ';') {
                    if !id.is_empty() {
                        members.push(json!({"value": id}));
                    }
                }
            }
            Column::Path(path) => set_path(obj, path, cell)?,
            Column::Typed { attr, kind, sub } => {
                let entries = array(obj, attr);
                let index = match entries.iter().position(|e| e["type"] == kind.as_str()) {
                    Some(i) => i,
                    None => {
                        entries.push(json!({"type": kind}));
                        entries.len() - 1
                    }
                };
                if let Some(Value::Object(entry)) = entries.get_mut(index) {
                    entry.insert(sub.clone(), typed(sub, cell)?);
                }
            }
            Column::Extension { urn, path } => {
                let ext = obj
                    .entry(urn.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(ext) = ext {
                    set_path(ext, path, cell)?;
                }
            }
        }
        Ok(())
    }

    /// The cell of this column for `resource`, as exported.
    pub fn get(&self, resource: &Value) -> String {
        let value = match self {
            Column::Ignored => None,
            Column::Email => {
                let emails = resource.get("emails").and_then(Value::as_array);
                emails
                    .and_then(|list| {
                        list.iter()
                            .find(|e| e["primary"] == true)
                            .or_else(|| list.first())
                    })
                    .and_then(|e| e.get("value"))
            }
            Column::Members => {
                let ids: Vec<&str> = resource
                    .get("members")
                    .and_then(Value::as_array)
                    .map(|m| m.iter().filter_map(|m| m["value"].as_str()).collect())
                    .unwrap_or_default();
                return ids.join(" ");
            }
            Column::Path(path) => get_path(resource, path),
            Column::Typed { attr, kind, sub } => resource
                .get(attr)
                .and_then(Value::as_array)
                .and_then(|list| list.iter().find(|e| e["type"] == kind.as_str()))
                .and_then(|e| e.get(sub)),
            Column::Extension { urn, path } => resource.get(urn).and_then(|e| get_path(e, path)),
        };
        match value {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

/// The path of the `id` column, which export writes and import ignores.
pub fn id_column() -> Column {
    Column::Path(vec!["id".into()])
}

fn dotted(path: &str, header: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(char::is_whitespace))
    {
        return Err(format!("column {header:?} is not an attribute path"));
    }
    Ok(parts)
}

fn array<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = obj.entry(key.to_string()).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    match slot {
        Value::Array(a) => a,
        // Made an array just above.
        _ => unreachable!("an array"),
    }
}

fn set_path(obj: &mut Map<String, Value>, path: &[String], cell: &str) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut current = obj;
    for p in parents {
        let slot = current
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            return Err(format!("{} is both a value and an object", path.join(".")));
        }
        let Value::Object(next) = slot else {
            unreachable!("an object")
        };
        current = next;
    }
    current.insert(last.clone(), typed(last, cell)?);
    Ok(())
}

fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, p| v.get(p))
}

/// A cell as a JSON value: booleans for `active` and `primary`, strings
/// otherwise.
fn typed(attr: &str, cell: &str) -> Result<Value, String> {
    if attr.eq_ignore_ascii_case("active") || attr.eq_ignore_ascii_case("primary") {
        return match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{attr}: {cell:?} is not true or false")),
        };
    }
    Ok(Value::String(cell.to_string()))
}

/// The default export columns of a kind, which import reads back.
pub fn default_columns(kind: Kind) -> Vec<String> {
    let cols: &[&str] = match kind {
        Kind::Users => &[
            "id",
            "externalId",
            "userName",
            "name.givenName",
            "name.familyName",
            "displayName",
            "email",
            "active",
        ],
        Kind::Groups => &["id", "externalId", "displayName", "members"],
    };
    cols.iter().map(|c| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_map_to_attributes() {
        let text = "userName,name.givenName,name.familyName,email,emails[type eq \"home\"].value,active,externalId,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber,id\n\
                    bjensen,Barbara,Jensen,b@work,b@home,yes,701984,42,ignored\n\
                    alice,,,,,false,,,\n";
        let records = parse(text, Format::Csv, Kind::Users).unwrap();
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            records[0],
            Record {
                line: 2,
                resource: Ok(json!({
                    "userName": "bjensen",
                    "name": {"givenName": "Barbara", "familyName": "Jensen"},
                    "emails": [
                        {"value": "b@work", "type": "work", "primary": true},
                        {"type": "home", "value": "b@home"}
                    ],
                    "active": true,
                    "externalId": "701984",
                    ext: {"employeeNumber": "42"},
                    "schemas": [core_schema(Kind::Users), ext]
                }))
            }
        );
        assert_eq!(
            records[1].resource,
            Ok(
                json!({"userName": "alice", "active": false, "schemas": [core_schema(Kind::Users)]})
            )
        );
    }

    #[test]
    fn bad_cells_fail_their_record_only() {
        let records = parse(
            "userName,active\na,maybe\nb,true\n",
            Format::Csv,
            Kind::Users,
        )
        .unwrap();
        assert_eq!(
            records[0].resource,
            Err("active: \"maybe\" is not true or false".into())
        );
        assert!(records[1].resource.is_ok());
    }

    #[test]
    fn bad_headers_fail_the_file() {
        assert!(
            parse(
                "emails[value co \"x\"].value\n1\n",
                Format::Csv,
                Kind::Users
            )
            .is_err()
        );
        assert!(parse("id,meta.created\n1,2\n", Format::Csv, Kind::Users).is_err());
    }

    #[test]
    fn jsonl_records_drop_assigned_attributes() {
        let text = "{\"id\":\"1\",\"userName\":\"a\",\"meta\":{}}\n\n[1]\nnope\n";
        let records = parse(text, Format::Jsonl, Kind::Users).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].resource,
            Ok(json!({"userName": "a", "schemas": [core_schema(Kind::Users)]}))
        );
        assert_eq!(records[1].line, 3);
        assert_eq!(records[1].resource, Err("not a JSON object".into()));
        assert!(
            records[2]
                .resource
                .as_ref()
                .unwrap_err()
                .starts_with("not JSON")
        );
    }

    #[test]
    fn export_cells_read_back() {
        let user = json!({"id": "1", "userName": "b", "active": true,
            "emails": [{"value": "h"}, {"value": "w", "primary": true}],
            "name": {"givenName": "B"}});
        let cells: Vec<String> = default_columns(Kind::Users)
            .iter()
            .map(|c| Column::parse(c).unwrap())
            .map(|c| if c == Column::Ignored { id_column() } else { c })
            .map(|c| c.get(&user))
            .collect();
        assert_eq!(cells, ["1", "", "b", "B", "", "", "w", "true"]);
    }
}
