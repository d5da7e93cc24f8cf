//! Typed PATCH operations (RFC 7644 section 3.5.2) and a builder that
//! turns them into a [`PatchRequest`].
//!
//! ```
//! use scim_client::patch::PatchBuilder;
//! use serde_json::json;
//!
//! let request = PatchBuilder::new()
//!     .replace_where("emails", "type", "work", Some("value"), json!("bjensen@example.com"))
//!     .set_active(false)
//!     .build();
//! assert_eq!(
//!     serde_json::to_value(&request).unwrap()["Operations"],
//!     json!([
//!         {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "bjensen@example.com"},
//!         {"op": "replace", "path": "active", "value": false}
//!     ])
//! );
//! ```

use std::fmt;

use scim_core::messages::PatchRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A PATCH operation kind, written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    /// `add`: add values (to a multi-valued attribute: append).
    Add,
    /// `remove`: remove the values the path selects.
    Remove,
    /// `replace`: replace the values the path selects.
    Replace,
}

impl fmt::Display for PatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        })
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// The operation.
    pub op: PatchOp,
    /// The attribute path; `None` for a path-less `add` or `replace`
    /// whose value is an object of attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The value; `None` for `remove`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOperation {
    /// `add` at `path`.
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        Self {
            op: PatchOp::Add,
            path: Some(path.into()),
            value: Some(value),
        }
    }

    /// `replace` at `path`.
    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        Self {
            op: PatchOp::Replace,
            path: Some(path.into()),
            value: Some(value),
        }
    }

    /// `remove` at `path`.
    pub fn remove(path: impl Into<String>) -> Self {
        Self {
            op: PatchOp::Remove,
            path: Some(path.into()),
            value: None,
        }
    }

    /// The operation as a JSON object.
    pub fn to_value(&self) -> Value {
        let mut obj = serde_json::Map::new();
        obj.insert("op".into(), Value::String(self.op.to_string()));
        if let Some(p) = &self.path {
            obj.insert("path".into(), Value::String(p.clone()));
        }
        if let Some(v) = &self.value {
            obj.insert("value".into(), v.clone());
        }
        Value::Object(obj)
    }
}

impl fmt::Display for PatchOperation {
    /// `replace emails[type eq "work"].value = "x"`, for logs and tests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        if let Some(v) = &self.value {
            write!(f, " = {v}")?;
        }
        Ok(())
    }
}

/// A PatchOp message from typed operations.
pub fn patch_request(operations: &[PatchOperation]) -> PatchRequest {
    PatchRequest::new(operations.iter().map(PatchOperation::to_value).collect())
}

/// A string as a filter literal: a JSON string, so quotes, backslashes and
/// control characters are escaped as RFC 7644 section 3.4.2.2 requires.
///
/// ```
/// assert_eq!(scim_client::patch::filter_literal(r#"a"b\c"#), r#""a\"b\\c""#);
/// ```
pub fn filter_literal(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A value path selecting the elements of `attr` whose `key` equals
/// `value`, optionally narrowed to the sub-attribute `sub`:
/// `emails[type eq "work"].value`.
pub fn value_path(attr: &str, key: &str, value: &str, sub: Option<&str>) -> String {
    let mut out = format!("{attr}[{key} eq {}]", filter_literal(value));
    if let Some(sub) = sub {
        out.push('.');
        out.push_str(sub);
    }
    out
}

/// The path removing one group member: `members[value eq "id"]`.
pub fn member_path(id: &str) -> String {
    value_path("members", "value", id, None)
}

/// Builds a list of PATCH operations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

impl PatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an operation.
    #[must_use]
    pub fn op(mut self, op: PatchOperation) -> Self {
        self.ops.push(op);
        self
    }

    /// `add` at `path`.
    #[must_use]
    pub fn add(self, path: impl Into<String>, value: Value) -> Self {
        self.op(PatchOperation::add(path, value))
    }

    /// `replace` at `path`.
    #[must_use]
    pub fn replace(self, path: impl Into<String>, value: Value) -> Self {
        self.op(PatchOperation::replace(path, value))
    }

    /// `remove` at `path`.
    #[must_use]
    pub fn remove(self, path: impl Into<String>) -> Self {
        self.op(PatchOperation::remove(path))
    }

    /// `replace` of the elements (or their sub-attribute `sub`) of `attr`
    /// whose `key` equals `key_value`: `replace emails[type eq "work"].value`.
    #[must_use]
    pub fn replace_where(
        self,
        attr: &str,
        key: &str,
        key_value: &str,
        sub: Option<&str>,
        value: Value,
    ) -> Self {
        self.replace(value_path(attr, key, key_value, sub), value)
    }

    /// `remove` of the elements of `attr` whose `key` equals `key_value`.
    #[must_use]
    pub fn remove_where(self, attr: &str, key: &str, key_value: &str) -> Self {
        self.remove(value_path(attr, key, key_value, None))
    }

    /// `replace active`.
    #[must_use]
    pub fn set_active(self, active: bool) -> Self {
        self.replace("active", Value::Bool(active))
    }

    /// One `add members` operation with these member ids (nothing when empty).
    #[must_use]
    pub fn add_members<I, S>(self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let members: Vec<Value> = ids
            .into_iter()
            .map(|id| json!({"value": id.as_ref()}))
            .collect();
        if members.is_empty() {
            return self;
        }
        self.add("members", Value::Array(members))
    }

    /// `remove members[value eq "id"]`.
    #[must_use]
    pub fn remove_member(self, id: &str) -> Self {
        self.remove(member_path(id))
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations so far.
    pub fn operations(&self) -> &[PatchOperation] {
        &self.ops
    }

    /// The operations.
    pub fn into_operations(self) -> Vec<PatchOperation> {
        self.ops
    }

    /// The PatchOp message.
    pub fn build(&self) -> PatchRequest {
        patch_request(&self.ops)
    }
}

impl From<PatchBuilder> for PatchRequest {
    fn from(b: PatchBuilder) -> Self {
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::messages::PATCH_OP_SCHEMA;

    #[test]
    fn builds_rfc_operations() {
        let req = PatchBuilder::new()
            .add_members(["u1", "u\"2"])
            .remove_member("u3")
            .add_members(Vec::<String>::new())
            .remove_where("emails", "type", "home")
            .build();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u\"2"}]},
                    {"op": "remove", "path": "members[value eq \"u3\"]"},
                    {"op": "remove", "path": "emails[type eq \"home\"]"}
                ]
            })
        );
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(
            member_path(r#"x" or "1"#),
            r#"members[value eq "x\" or \"1"]"#
        );
        assert_eq!(filter_literal("tab\there"), r#""tab\there""#);
        let op = PatchOperation::replace("displayName", json!("A"));
        assert_eq!(op.to_string(), r#"replace displayName = "A""#);
        let back: PatchOperation =
            serde_json::from_value(json!({"op": "remove", "path": "title"})).unwrap();
        assert_eq!(back, PatchOperation::remove("title"));
    }
}
