//! PATCH operations and the PatchOp message, parsed strictly from the
//! RFC 7644 section 3.5.2 wire form.
//!
//! Strict means: `op` is exactly `add`, `remove` or `replace`; an operation
//! object has no members besides `op`, `path` and `value` (matched
//! case-insensitively, as SCIM attribute names are); `add` and `replace`
//! carry a `value`; `remove` carries a `path` and no `value`. What identity
//! providers send instead is rewritten by [`super::dialect::normalize`].

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::PatchError;
use crate::error::{Error, Result};

/// The schema URN of the PatchOp message.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three PATCH operations (RFC 7644 section 3.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`: add a value, or set a single-valued attribute (3.5.2.1).
    Add,
    /// `remove`: remove the value at the path (3.5.2.2).
    Remove,
    /// `replace`: replace the value at the path (3.5.2.3).
    Replace,
}

impl PatchOpKind {
    /// The wire spelling: `add`, `remove` or `replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }

    /// The kind for its exact wire spelling; `None` for anything else
    /// (including `Add` or `REPLACE`, which only the dialect layer accepts).
    pub fn from_wire(op: &str) -> Option<Self> {
        match op {
            "add" => Some(Self::Add),
            "remove" => Some(Self::Remove),
            "replace" => Some(Self::Replace),
            _ => None,
        }
    }
}

impl fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One PATCH operation: `{"op": ..., "path": ..., "value": ...}`.
///
/// The path is kept as text; [`super::apply`] resolves it against the
/// resource type, so a bad path fails as that operation's `invalidPath`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// The operation.
    pub op: PatchOpKind,
    /// The target path; `None` targets the resource itself (not allowed for `remove`).
    pub path: Option<String>,
    /// The value; required for `add` and `replace`, absent for `remove`.
    pub value: Option<Value>,
}

impl PatchOperation {
    /// An `add` operation.
    pub fn add(path: Option<&str>, value: Value) -> Self {
        Self {
            op: PatchOpKind::Add,
            path: path.map(str::to_string),
            value: Some(value),
        }
    }

    /// A `replace` operation.
    pub fn replace(path: Option<&str>, value: Value) -> Self {
        Self {
            op: PatchOpKind::Replace,
            path: path.map(str::to_string),
            value: Some(value),
        }
    }

    /// A `remove` operation.
    pub fn remove(path: &str) -> Self {
        Self {
            op: PatchOpKind::Remove,
            path: Some(path.to_string()),
            value: None,
        }
    }

    /// Parses one operation object strictly.
    ///
    /// Errors: not an object, an unknown or duplicated member, or an `op`
    /// other than `add`/`remove`/`replace` is `invalidSyntax`; a `path` that
    /// is not a string is `invalidPath`; `add`/`replace` without `value` and
    /// `remove` with a value are `invalidValue` (RFC 7644 Table 9: "a
    /// required value was missing, or the value specified was not
    /// compatible with the operation"); `remove` without `path` is
    /// `noTarget` (RFC 7644 section 3.5.2.2).
    pub fn from_json(json: &Value) -> Result<Self> {
        let Some(obj) = json.as_object() else {
            return Err(Error::invalid_syntax(
                "a PATCH operation must be a JSON object",
            ));
        };
        let mut op = None;
        let mut path = None;
        let mut value = None;
        for (key, v) in obj {
            let slot = if key.eq_ignore_ascii_case("op") {
                &mut op
            } else if key.eq_ignore_ascii_case("path") {
                &mut path
            } else if key.eq_ignore_ascii_case("value") {
                &mut value
            } else {
                return Err(Error::invalid_syntax(format!(
                    "unknown member '{key}' in a PATCH operation; only op, path and value are allowed"
                )));
            };
            if slot.replace(v).is_some() {
                return Err(Error::invalid_syntax(format!(
                    "member '{key}' appears twice in a PATCH operation"
                )));
            }
        }
        let op = match op {
            None => {
                return Err(Error::invalid_syntax(
                    "a PATCH operation needs an 'op' member",
                ));
            }
            Some(Value::String(s)) => PatchOpKind::from_wire(s).ok_or_else(|| {
                Error::invalid_syntax(format!(
                    "unknown PATCH op '{s}'; expected add, remove or replace"
                ))
            })?,
            Some(other) => {
                return Err(Error::invalid_syntax(format!(
                    "'op' must be a string, not {}",
                    json_type(other)
                )));
            }
        };
        let path = match path {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(Error::invalid_path(format!(
                    "'path' must be a string, not {}",
                    json_type(other)
                )));
            }
        };
        let value = value.cloned();
        let parsed = Self { op, path, value };
        parsed.check()?;
        Ok(parsed)
    }

    /// Checks the combination of op, path and value (see [`Self::from_json`]).
    pub fn check(&self) -> Result<()> {
        match self.op {
            PatchOpKind::Remove => {
                if self.path.is_none() {
                    return Err(Error::no_target(
                        "remove needs a 'path' (RFC 7644 section 3.5.2.2)",
                    ));
                }
                if self.value.as_ref().is_some_and(|v| !v.is_null()) {
                    return Err(Error::invalid_value(
                        "remove takes no 'value'; select elements with a filter in the path, \
                         e.g. members[value eq \"id\"]",
                    ));
                }
            }
            PatchOpKind::Add | PatchOpKind::Replace => {
                if self.value.is_none() {
                    return Err(Error::invalid_value(format!(
                        "{} needs a 'value' (RFC 7644 section 3.5.2)",
                        self.op
                    )));
                }
            }
        }
        Ok(())
    }

    /// The wire form of the operation.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("op".into(), Value::String(self.op.as_str().into()));
        if let Some(path) = &self.path {
            obj.insert("path".into(), Value::String(path.clone()));
        }
        if let Some(value) = &self.value {
            obj.insert("value".into(), value.clone());
        }
        Value::Object(obj)
    }
}

impl Serialize for PatchOperation {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A whole PatchOp message: `{"schemas": [PatchOp URN], "Operations": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// A request of these operations.
    pub fn new(operations: Vec<PatchOperation>) -> Self {
        Self { operations }
    }

    /// Parses a PatchOp message body strictly.
    ///
    /// The body must be an object whose `schemas` array contains the PatchOp
    /// URN and whose `Operations` is a non-empty array (member names matched
    /// case-insensitively); any other member is refused. Body-level errors
    /// are `invalidSyntax` with no operation index; an error in one
    /// operation carries its index (see [`PatchOperation::from_json`]).
    pub fn from_json(body: &Value) -> Result<Self, PatchError> {
        let operations = message_operations(body, false)?;
        let operations = operations
            .iter()
            .enumerate()
            .map(|(i, op)| PatchOperation::from_json(op).map_err(|e| PatchError::at(i, e)))
            .collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }

    /// The wire form of the message.
    pub fn to_json(&self) -> Value {
        let ops = self
            .operations
            .iter()
            .map(PatchOperation::to_json)
            .collect();
        let mut obj = Map::new();
        obj.insert(
            "schemas".into(),
            Value::Array(vec![Value::String(PATCH_OP_SCHEMA.into())]),
        );
        obj.insert("Operations".into(), Value::Array(ops));
        Value::Object(obj)
    }
}

impl Serialize for PatchRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Checks the message envelope and returns its operations. With
/// `lenient_members`, members other than `schemas` and `Operations` are
/// ignored (the dialect layer reports them) instead of refused.
pub(super) fn message_operations(
    body: &Value,
    lenient_members: bool,
) -> Result<&Vec<Value>, PatchError> {
    let body_err = |detail: String| PatchError::body(Error::invalid_syntax(detail));
    let Some(obj) = body.as_object() else {
        return Err(body_err(
            "the PATCH body must be a JSON object (a PatchOp message)".into(),
        ));
    };
    let mut schemas = None;
    let mut operations = None;
    for (key, v) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            schemas = Some(v);
        } else if key.eq_ignore_ascii_case("Operations") {
            if operations.replace(v).is_some() {
                return Err(body_err("'Operations' appears twice".into()));
            }
        } else if !lenient_members {
            return Err(body_err(format!(
                "unknown member '{key}' in a PatchOp message; only schemas and Operations are allowed"
            )));
        }
    }
    let has_patch_op = |items: &Vec<Value>| {
        items.iter().any(|s| {
            s.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
        })
    };
    match schemas {
        Some(Value::Array(items)) if has_patch_op(items) => {}
        _ => {
            return Err(body_err(format!(
                "'schemas' must contain \"{PATCH_OP_SCHEMA}\""
            )));
        }
    }
    match operations {
        Some(Value::Array(ops)) if !ops.is_empty() => Ok(ops),
        Some(Value::Array(_)) => Err(body_err(
            "'Operations' must hold at least one operation".into(),
        )),
        _ => Err(body_err(
            "a PatchOp message needs an 'Operations' array".into(),
        )),
    }
}

/// The JSON type of a value, for messages.
pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn kind(v: Value) -> ErrorKind {
        PatchOperation::from_json(&v).unwrap_err().kind()
    }

    #[test]
    fn parses_the_wire_form() {
        let op = PatchOperation::from_json(
            &json!({"op": "add", "path": "members", "value": [{"value": "1"}]}),
        )
        .unwrap();
        assert_eq!(op.op, PatchOpKind::Add);
        assert_eq!(op.path.as_deref(), Some("members"));
        assert_eq!(
            op.to_json(),
            json!({"op": "add", "path": "members", "value": [{"value": "1"}]})
        );
        // Member names are attribute names: case-insensitive.
        let op = PatchOperation::from_json(&json!({"OP": "remove", "Path": "title"})).unwrap();
        assert_eq!(op, PatchOperation::remove("title"));
    }

    #[test]
    fn refuses_what_the_rfc_does_not_allow() {
        assert_eq!(
            kind(json!({"op": "Add", "value": {}})),
            ErrorKind::InvalidSyntax
        );
        assert_eq!(
            kind(json!({"op": "move", "path": "a"})),
            ErrorKind::InvalidSyntax
        );
        assert_eq!(kind(json!({"op": 1})), ErrorKind::InvalidSyntax);
        assert_eq!(kind(json!({"path": "title"})), ErrorKind::InvalidSyntax);
        assert_eq!(kind(json!("add")), ErrorKind::InvalidSyntax);
        assert_eq!(
            kind(json!({"op": "add", "value": 1, "id": "x"})),
            ErrorKind::InvalidSyntax
        );
        assert_eq!(
            kind(json!({"op": "add", "value": 1, "Value": 2})),
            ErrorKind::InvalidSyntax
        );
        assert_eq!(
            kind(json!({"op": "add", "path": "title"})),
            ErrorKind::InvalidValue
        );
        assert_eq!(kind(json!({"op": "replace"})), ErrorKind::InvalidValue);
        assert_eq!(kind(json!({"op": "remove"})), ErrorKind::NoTarget);
        assert_eq!(
            kind(json!({"op": "remove", "path": "members", "value": [{"value": "1"}]})),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            kind(json!({"op": "add", "path": 7, "value": 1})),
            ErrorKind::InvalidPath
        );
    }

    #[test]
    fn parses_messages_and_reports_the_operation_index() {
        let body = json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [
                {"op": "replace", "path": "active", "value": false},
                {"op": "remove"}
            ]
        });
        let err = PatchRequest::from_json(&body).unwrap_err();
        assert_eq!(err.operation(), Some(1));
        assert_eq!(err.kind(), ErrorKind::NoTarget);

        let ok = json!({"schemas": [PATCH_OP_SCHEMA], "operations": [{"op": "remove", "path": "title"}]});
        let req = PatchRequest::from_json(&ok).unwrap();
        assert_eq!(req.operations, vec![PatchOperation::remove("title")]);
        assert_eq!(
            req.to_json(),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "title"}]})
        );

        for bad in [
            json!([]),
            json!({"Operations": [{"op": "remove", "path": "title"}]}),
            json!({"schemas": ["urn:other"], "Operations": [{"op": "remove", "path": "title"}]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {}}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "a"}], "id": 1}),
        ] {
            let err = PatchRequest::from_json(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidSyntax, "{bad}");
            assert_eq!(err.operation(), None, "{bad}");
        }
    }
}
