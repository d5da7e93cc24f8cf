//! Identity-provider dialects: what Microsoft Entra ID, Okta and other
//! clients send instead of RFC 7644 PATCH, rewritten into the strict form,
//! with the name of every rule that fired so a server can log it.
//!
//! Every rule is schema-driven and narrow; a shape no rule covers is left
//! for the strict parser and engine to refuse (`invalidSyntax`,
//! `invalidPath`, `invalidValue`), never guessed at.
//!
//! ```
//! use scim_core::patch::{normalize, DialectRule};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//! let body = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [
//!         {"op": "Replace", "path": "active", "value": "False"},
//!         {"op": "replace", "value": {"name.givenName": "Barbara"}}
//!     ]
//! });
//! let n = normalize(&body, &users).unwrap();
//! assert_eq!(n.body()["Operations"], json!([
//!     {"op": "replace", "path": "active", "value": false},
//!     {"op": "replace", "value": {"name": {"givenName": "Barbara"}}}
//! ]));
//! assert_eq!(
//!     n.rules,
//!     [DialectRule::CapitalisedOp, DialectRule::StringBoolean, DialectRule::DottedKey]
//! );
//! ```

use serde_json::{Map, Value, json};

pub use super::rules::DialectRule;

use super::PatchError;
use super::op::{PatchOpKind, PatchOperation, PatchRequest, message_operations};
use crate::error::{Error, Result};
use crate::json::get_ci;
use crate::path::Path;
use crate::schema::{AttrRef, Attribute, AttributeType, ENTERPRISE_USER_SCHEMA, ResourceSchema};

/// A request rewritten into strict form.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The strict operations. May be empty (a value-list removal of no
    /// elements), which applies as no change.
    pub request: PatchRequest,
    /// The rules that fired, each once, in the order they first fired.
    pub rules: Vec<DialectRule>,
    /// For each operation of `request`, the index of the operation in the
    /// original body it came from (one original operation can become several).
    pub origins: Vec<usize>,
}

impl Normalized {
    /// The normalised PatchOp message body.
    pub fn body(&self) -> Value {
        self.request.to_json()
    }

    /// Maps an error from applying `request` back to the original
    /// operation index.
    pub fn map_error(&self, e: PatchError) -> PatchError {
        match e.operation() {
            Some(i) => match self.origins.get(i) {
                Some(&o) => PatchError::at(o, e.error().clone()),
                None => e,
            },
            None => e,
        }
    }
}

/// Rewrites a PatchOp message body as identity providers send it into
/// strict operations. The envelope must still be a PatchOp message (the
/// `schemas` URN and a non-empty `Operations` array); each operation is
/// rewritten by the rules of [`DialectRule`] and then parsed strictly, so
/// the result is always RFC form. Errors carry the original operation index.
pub fn normalize(body: &Value, rs: &ResourceSchema) -> Result<Normalized, PatchError> {
    let mut n = Normalizer {
        rs,
        rules: Vec::new(),
    };
    let ops = message_operations(body, true)?;
    if let Some(obj) = body.as_object()
        && obj
            .keys()
            .any(|k| !k.eq_ignore_ascii_case("schemas") && !k.eq_ignore_ascii_case("Operations"))
    {
        n.fire(DialectRule::ExtraMember);
    }
    let mut operations = Vec::with_capacity(ops.len());
    let mut origins = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let rewritten = n.operation(op).map_err(|e| PatchError::at(i, e))?;
        for json in rewritten {
            operations.push(PatchOperation::from_json(&json).map_err(|e| PatchError::at(i, e))?);
            origins.push(i);
        }
    }
    Ok(Normalized {
        request: PatchRequest::new(operations),
        rules: n.rules,
        origins,
    })
}

/// How a path's value is rewritten.
enum Rewrite {
    /// The operation keeps its op and path, with this value.
    Value(Value),
    /// The operation becomes `remove` of this path.
    Remove(String),
}

struct Normalizer<'a> {
    rs: &'a ResourceSchema,
    rules: Vec<DialectRule>,
}

impl Normalizer<'_> {
    fn fire(&mut self, rule: DialectRule) {
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }

    /// One operation object to one or more strict operation objects.
    fn operation(&mut self, op: &Value) -> Result<Vec<Value>> {
        let Some(obj) = op.as_object() else {
            return Err(Error::invalid_syntax(
                "a PATCH operation must be a JSON object",
            ));
        };
        let (mut op_member, mut path, mut value) = (None, None, None);
        for (key, v) in obj {
            let slot = if key.eq_ignore_ascii_case("op") {
                &mut op_member
            } else if key.eq_ignore_ascii_case("path") {
                &mut path
            } else if key.eq_ignore_ascii_case("value") {
                &mut value
            } else {
                self.fire(DialectRule::ExtraMember);
                continue;
            };
            if slot.replace(v).is_some() {
                return Err(Error::invalid_syntax(format!(
                    "member '{key}' appears twice in a PATCH operation"
                )));
            }
        }
        let kind = match op_member {
            Some(Value::String(s)) => {
                let kind = PatchOpKind::from_wire(&s.to_ascii_lowercase()).ok_or_else(|| {
                    Error::invalid_syntax(format!(
                        "unknown PATCH op '{s}'; expected add, remove or replace"
                    ))
                })?;
                if s != kind.as_str() {
                    self.fire(DialectRule::CapitalisedOp);
                }
                kind
            }
            Some(_) => return Err(Error::invalid_syntax("'op' must be a string")),
            None => {
                return Err(Error::invalid_syntax(
                    "a PATCH operation needs an 'op' member",
                ));
            }
        };
        let (text, path) = match path {
            None | Some(Value::Null) => (None, None),
            Some(Value::String(text)) => {
                let path = Path::parse(text, self.rs)?;
                // Written back in the schema's spelling when only the case
                // (or surrounding space) differs; otherwise kept as sent.
                let shown = path.to_string();
                let text = if shown == text.trim() {
                    shown
                } else if shown.eq_ignore_ascii_case(text.trim()) {
                    self.fire(DialectRule::PascalCaseName);
                    shown
                } else {
                    text.clone()
                };
                (Some(text), Some(path))
            }
            Some(_) => return Err(Error::invalid_path("'path' must be a string")),
        };
        let value = value.filter(|v| !(kind == PatchOpKind::Remove && v.is_null()));
        let Some(value) = value else {
            // Missing value or path: the strict parser says which error.
            return Ok(vec![wire(kind, text.as_deref(), None)]);
        };
        match (kind, &path) {
            (PatchOpKind::Remove, Some(path)) => self.removal_list(path, value, text.as_deref()),
            (PatchOpKind::Remove, None) => Ok(vec![wire(kind, None, Some(value.clone()))]),
            (_, None) => Ok(vec![wire(kind, None, Some(self.pathless(value)?))]),
            (_, Some(path)) => Ok(vec![match self.path_value(path, value)? {
                Rewrite::Value(v) => wire(kind, text.as_deref(), Some(v)),
                Rewrite::Remove(p) => wire(PatchOpKind::Remove, Some(&p), None),
            }]),
        }
    }

    /// `remove` with a value: Entra ID's list of members to remove.
    fn removal_list(
        &mut self,
        path: &Path,
        value: &Value,
        text: Option<&str>,
    ) -> Result<Vec<Value>> {
        let Path::Attribute {
            attr,
            filter: None,
            sub: None,
        } = path
        else {
            return Ok(vec![wire(PatchOpKind::Remove, text, Some(value.clone()))]);
        };
        let def = attr.attribute();
        let (true, true, Some(_), Value::Array(items)) = (
            def.multi_valued,
            def.is_complex(),
            def.sub_attribute("value"),
            value,
        ) else {
            // Not the known shape: the strict check refuses it.
            return Ok(vec![wire(PatchOpKind::Remove, text, Some(value.clone()))]);
        };
        self.fire(DialectRule::ValueListRemoval);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(obj) = item.as_object() else {
                return Err(Error::invalid_syntax(format!(
                    "removing from '{}' by value needs objects like {{\"value\": \"id\"}}",
                    attr.path()
                )));
            };
            let mut id = None;
            for (k, v) in obj {
                if k.eq_ignore_ascii_case("value") && v.is_string() {
                    id = Some(v);
                } else if k.eq_ignore_ascii_case("$ref") && v.is_null() {
                    self.fire(DialectRule::NullRef);
                } else if !(k.eq_ignore_ascii_case("$ref") && v.is_string()) {
                    return Err(Error::invalid_syntax(format!(
                        "removing from '{}' by value: unexpected member '{k}'",
                        attr.path()
                    )));
                }
            }
            let Some(id) = id else {
                return Err(Error::invalid_syntax(format!(
                    "removing from '{}' by value needs a string 'value' in each element",
                    attr.path()
                )));
            };
            let filter = format!("{}[value eq {id}]", attr.path());
            out.push(wire(PatchOpKind::Remove, Some(&filter), None));
        }
        Ok(out)
    }

    /// The value of an `add`/`replace` with a path.
    fn path_value(&mut self, path: &Path, value: &Value) -> Result<Rewrite> {
        match path {
            Path::Extension(schema) => {
                let Value::Object(obj) = value else {
                    return Ok(Rewrite::Value(value.clone()));
                };
                let mut root = Map::new();
                self.extension_members(&schema.id, obj, &mut root)?;
                Ok(Rewrite::Value(
                    root.remove(&schema.id)
                        .unwrap_or_else(|| Value::Object(Map::new())),
                ))
            }
            Path::Attribute { attr, filter, sub } => {
                if is_manager(attr) && filter.is_none() {
                    match sub {
                        None => {
                            let v = self.manager(value)?;
                            return Ok(if v.is_null() && !value.is_null() {
                                Rewrite::Remove(attr.path())
                            } else {
                                Rewrite::Value(v)
                            });
                        }
                        Some(s) if s.target().name == "value" && is_empty_string(value) => {
                            self.fire(DialectRule::ManagerEmptyValue);
                            return Ok(Rewrite::Remove(attr.parent().path()));
                        }
                        Some(_) => {}
                    }
                }
                let v = match (filter, sub) {
                    // A record of a multi-valued attribute.
                    (Some(_), None) => self.single(attr.attribute(), value)?,
                    (_, Some(sub)) => self.attr_value(sub.target(), value)?,
                    (None, None) => self.attr_value(attr.attribute(), value)?,
                };
                Ok(Rewrite::Value(v))
            }
        }
    }

    /// A path-less value: keys rewritten to attribute names and placed,
    /// values rewritten by their attribute's type.
    fn pathless(&mut self, value: &Value) -> Result<Value> {
        let Value::Object(obj) = value else {
            return Ok(value.clone());
        };
        let mut root = Map::new();
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                if key != "schemas" {
                    self.fire(DialectRule::PascalCaseName);
                }
                insert_at(&mut root, &["schemas".to_string()], v.clone(), key)?;
                continue;
            }
            if let Some(schema) = self.rs.extension(key) {
                let urn = schema.id.clone();
                if *key != urn {
                    self.fire(DialectRule::PascalCaseName);
                }
                match v {
                    Value::Object(members) => self.extension_members(&urn, members, &mut root)?,
                    other => insert_at(&mut root, &[urn], other.clone(), key)?,
                }
                continue;
            }
            match self.rs.resolve(key) {
                Ok(attr) => {
                    let is_urn = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
                    if is_urn {
                        self.fire(DialectRule::UrnKey);
                    }
                    self.place(&mut root, &attr, key, v)?;
                }
                Err(_) if key.contains(['.', ':', '[']) => {
                    return Err(Error::invalid_path(format!(
                        "'{key}' in a path-less value names no attribute of this resource type"
                    )));
                }
                // An unknown plain name: the engine refuses it.
                Err(_) => insert_at(&mut root, std::slice::from_ref(key), v.clone(), key)?,
            }
        }
        Ok(Value::Object(root))
    }

    /// The members of an extension object (`{"urn:...": {...}}`), placed in `root`.
    fn extension_members(
        &mut self,
        urn: &str,
        members: &Map<String, Value>,
        root: &mut Map<String, Value>,
    ) -> Result<()> {
        let mut placed = false;
        for (key, v) in members {
            match self.rs.resolve(&format!("{urn}:{key}")) {
                Ok(attr) if attr.schema_urn() == urn => self.place(root, &attr, key, v)?,
                _ if key.eq_ignore_ascii_case("schemas") && self.own_schemas(v) => {
                    self.fire(DialectRule::ExtensionSchemasMember);
                    continue;
                }
                _ => insert_at(root, &[urn.to_string(), key.clone()], v.clone(), key)?,
            }
            placed = true;
        }
        if !placed {
            // `{}` (or only a dropped `schemas`): the empty object, as sent.
            return insert_at(root, &[urn.to_string()], Value::Object(Map::new()), urn);
        }
        Ok(())
    }

    /// Whether `v` is an array of schema URNs of the resource type (core
    /// or extension, any case): a `schemas` member the engine can ignore.
    fn own_schemas(&self, v: &Value) -> bool {
        v.as_array().is_some_and(|urns| {
            urns.iter()
                .all(|u| u.as_str().is_some_and(|u| self.rs.has_schema(u)))
        })
    }

    /// Puts the value of `attr` (named `key` by the client) at its place
    /// in a path-less value.
    fn place(
        &mut self,
        root: &mut Map<String, Value>,
        attr: &AttrRef,
        key: &str,
        v: &Value,
    ) -> Result<()> {
        if attr.has_sub() {
            self.fire(DialectRule::DottedKey);
            if attr.attribute().multi_valued {
                return Err(Error::invalid_path(format!(
                    "'{key}' names a sub-attribute of the multi-valued '{}'; use a path with a filter",
                    attr.attribute().name
                )));
            }
        }
        if !key.ends_with(&attr.short_path()) {
            self.fire(DialectRule::PascalCaseName);
        }
        let v = match attr.sub_attribute() {
            None if is_manager(attr) => self.manager(v)?,
            Some(sub) if is_manager(attr) && sub.name == "value" && is_empty_string(v) => {
                self.fire(DialectRule::ManagerEmptyValue);
                Value::Null
            }
            _ => self.attr_value(attr.target(), v)?,
        };
        let mut segments = Vec::with_capacity(3);
        if attr.is_extension() {
            segments.push(attr.schema_urn().to_string());
        }
        segments.push(attr.attribute().name.clone());
        if let Some(sub) = attr.sub_attribute() {
            segments.push(sub.name.clone());
        }
        insert_at(root, &segments, v, key)
    }

    /// The enterprise manager's value: an id string becomes `{"value": id}`,
    /// an empty one clears it (null).
    fn manager(&mut self, value: &Value) -> Result<Value> {
        let value = match value {
            Value::Array(items) if items.len() == 1 => {
                self.fire(DialectRule::SingleValueArray);
                &items[0]
            }
            other => other,
        };
        let empty_value = value
            .as_object()
            .and_then(|o| get_ci(o, "value"))
            .is_some_and(|(_, v)| is_empty_string(v));
        match value {
            Value::String(_) if is_empty_string(value) => {
                self.fire(DialectRule::ManagerEmptyValue);
                Ok(Value::Null)
            }
            Value::String(id) => {
                self.fire(DialectRule::ManagerString);
                Ok(json!({ "value": id }))
            }
            Value::Object(_) if empty_value => {
                self.fire(DialectRule::ManagerEmptyValue);
                Ok(Value::Null)
            }
            other => self.manager_object(other),
        }
    }

    fn manager_object(&mut self, value: &Value) -> Result<Value> {
        let def = self
            .rs
            .resolve(&format!("{ENTERPRISE_USER_SCHEMA}:manager"))?
            .attribute()
            .clone();
        self.single(&def, value)
    }

    /// The value for an attribute (or sub-attribute): one level of arrays
    /// for multi-valued ones, a one-element array unwrapped for single-valued.
    fn attr_value(&mut self, def: &Attribute, value: &Value) -> Result<Value> {
        match value {
            Value::Array(items) if def.multi_valued => Ok(Value::Array(
                items
                    .iter()
                    .map(|item| self.single(def, item))
                    .collect::<Result<_>>()?,
            )),
            Value::Array(items) if items.len() == 1 => {
                self.fire(DialectRule::SingleValueArray);
                self.single(def, &items[0])
            }
            other => self.single(def, other),
        }
    }

    /// One value of `def` (never an array of its values).
    fn single(&mut self, def: &Attribute, value: &Value) -> Result<Value> {
        match (def.ty, value) {
            (AttributeType::Boolean, Value::String(s)) => {
                Ok(self.string_bool(s).unwrap_or_else(|| value.clone()))
            }
            (AttributeType::Complex, Value::Object(obj)) => {
                let mut out = Map::new();
                for (key, v) in obj {
                    let Some(sub) = def.sub_attribute(key) else {
                        // Unknown: the engine refuses it.
                        out.insert(key.clone(), v.clone());
                        continue;
                    };
                    // Elements of a multi-valued attribute drop `$ref`
                    // anyway; elsewhere a null `$ref` means "unassign".
                    if sub.name == "$ref" && v.is_null() && def.multi_valued {
                        self.fire(DialectRule::NullRef);
                        continue;
                    }
                    if *key != sub.name {
                        self.fire(DialectRule::PascalCaseName);
                    }
                    let v = match v {
                        Value::Array(items) if sub.multi_valued => {
                            Value::Array(items.iter().map(|i| self.sub_single(sub, i)).collect())
                        }
                        other => self.sub_single(sub, other),
                    };
                    if out.insert(sub.name.clone(), v).is_some() {
                        return Err(Error::invalid_syntax(format!(
                            "sub-attribute '{}' is given twice",
                            sub.name
                        )));
                    }
                }
                Ok(Value::Object(out))
            }
            _ => Ok(value.clone()),
        }
    }

    fn sub_single(&mut self, sub: &Attribute, v: &Value) -> Value {
        match (sub.ty, v) {
            (AttributeType::Boolean, Value::String(s)) => {
                self.string_bool(s).unwrap_or_else(|| v.clone())
            }
            _ => v.clone(),
        }
    }

    fn string_bool(&mut self, s: &str) -> Option<Value> {
        let b = if s.eq_ignore_ascii_case("true") {
            true
        } else if s.eq_ignore_ascii_case("false") {
            false
        } else {
            return None;
        };
        self.fire(DialectRule::StringBoolean);
        Some(Value::Bool(b))
    }
}

fn is_manager(attr: &AttrRef) -> bool {
    attr.schema_urn() == ENTERPRISE_USER_SCHEMA && attr.attribute().name == "manager"
}

fn is_empty_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.trim().is_empty())
}

/// One strict operation object.
fn wire(kind: PatchOpKind, path: Option<&str>, value: Option<Value>) -> Value {
    let mut obj = Map::new();
    obj.insert("op".into(), Value::String(kind.as_str().into()));
    if let Some(path) = path {
        obj.insert("path".into(), Value::String(path.into()));
    }
    if let Some(value) = value {
        obj.insert("value".into(), value);
    }
    Value::Object(obj)
}

/// Inserts `v` at `segments` in `root`, creating objects on the way and
/// merging objects that meet; setting the same member twice is an error.
fn insert_at(
    root: &mut Map<String, Value>,
    segments: &[String],
    v: Value,
    key: &str,
) -> Result<()> {
    let twice = || {
        Error::invalid_syntax(format!(
            "'{key}' sets an attribute that another member of the value also sets"
        ))
    };
    let Some((last, parents)) = segments.split_last() else {
        return Ok(());
    };
    let mut cur = root;
    for p in parents {
        let slot = cur
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        cur = slot.as_object_mut().ok_or_else(twice)?;
    }
    match (cur.get_mut(last), v) {
        (None, v) => {
            cur.insert(last.clone(), v);
            Ok(())
        }
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, x) in new {
                if existing.contains_key(&k) {
                    return Err(twice());
                }
                existing.insert(k, x);
            }
            Ok(())
        }
        _ => Err(twice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::schema::SchemaRegistry;
    use std::sync::Arc;

    fn users() -> Arc<ResourceSchema> {
        SchemaRegistry::core().resource_schema("User").unwrap()
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [super::super::PATCH_OP_SCHEMA], "Operations": ops})
    }

    #[test]
    fn rule_names_are_stable_and_unique() {
        for &rule in DialectRule::ALL {
            assert_eq!(DialectRule::from_name(rule.name()), Some(rule));
            assert_eq!(rule.to_string(), rule.name());
        }
        let mut names: Vec<_> = DialectRule::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DialectRule::ALL.len());
    }

    #[test]
    fn strict_bodies_pass_unchanged_with_no_rule() {
        let b = body(json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"},
            {"op": "add", "value": {"nickName": "Babs"}},
            {"op": "remove", "path": "title"}
        ]));
        let n = normalize(&b, &users()).unwrap();
        assert!(n.rules.is_empty(), "{:?}", n.rules);
        assert_eq!(n.body(), b);
        assert_eq!(n.origins, [0, 1, 2]);
    }

    #[test]
    fn string_booleans_only_for_boolean_attributes() {
        let b = body(json!([
            {"op": "replace", "path": "title", "value": "True"},
            {"op": "replace", "value": {"nickName": "false", "active": "TRUE"}},
            {"op": "add", "path": "emails", "value": [{"value": "a@x", "primary": "True"}]}
        ]));
        let n = normalize(&b, &users()).unwrap();
        assert_eq!(
            n.body()["Operations"],
            json!([
                {"op": "replace", "path": "title", "value": "True"},
                {"op": "replace", "value": {"nickName": "false", "active": true}},
                {"op": "add", "path": "emails", "value": [{"value": "a@x", "primary": true}]}
            ])
        );
        assert_eq!(n.rules, [DialectRule::StringBoolean]);
    }

    #[test]
    fn value_list_removal_splits_and_maps_indices() {
        let groups = SchemaRegistry::core().resource_schema("Group").unwrap();
        let b = body(json!([
            {"op": "replace", "path": "displayName", "value": "x"},
            {"op": "Remove", "path": "members", "value": [{"value": "a\"b"}, {"$ref": null, "value": "c"}]}
        ]));
        let n = normalize(&b, &groups).unwrap();
        assert_eq!(
            n.body()["Operations"],
            json!([
                {"op": "replace", "path": "displayName", "value": "x"},
                {"op": "remove", "path": "members[value eq \"a\\\"b\"]"},
                {"op": "remove", "path": "members[value eq \"c\"]"}
            ])
        );
        assert_eq!(n.origins, [0, 1, 1]);
        let e = n.map_error(PatchError::at(2, Error::no_target("x")));
        assert_eq!(e.operation(), Some(1));
    }

    #[test]
    fn extension_schemas_member_is_dropped_when_it_names_own_schemas() {
        let ext = ENTERPRISE_USER_SCHEMA;
        let b = body(json!([
            {"op": "add", "path": ext, "value": {"schemas": [ext], "department": "Ops"}},
            {"op": "replace", "value": {ext: {"Schemas": [], "division": "D"}}},
            {"op": "add", "path": ext, "value": {"schemas": [ext]}}
        ]));
        let n = normalize(&b, &users()).unwrap();
        assert_eq!(
            n.body()["Operations"],
            json!([
                {"op": "add", "path": ext, "value": {"department": "Ops"}},
                {"op": "replace", "value": {ext: {"division": "D"}}},
                {"op": "add", "path": ext, "value": {}}
            ])
        );
        assert_eq!(n.rules, [DialectRule::ExtensionSchemasMember]);
        // A foreign URN or a non-array is kept, for the engine to refuse.
        for schemas in [json!(["urn:example:other"]), json!(ext), json!([1])] {
            let b = body(json!([{"op": "add", "path": ext, "value": {"schemas": schemas}}]));
            let n = normalize(&b, &users()).unwrap();
            assert!(n.rules.is_empty(), "{schemas}");
            assert_eq!(n.body()["Operations"][0]["value"]["schemas"], schemas);
        }
    }

    #[test]
    fn unknown_shapes_are_refused() {
        let rs = users();
        for (ops, kind, index) in [
            (
                json!([{"op": "Merge", "path": "title", "value": "x"}]),
                ErrorKind::InvalidSyntax,
                0,
            ),
            (
                json!([{"op": "add", "path": "title", "value": "x"}, {"op": "replace", "path": "nope[", "value": 1}]),
                ErrorKind::InvalidPath,
                1,
            ),
            (
                json!([{"op": "replace", "value": {"name.nope": "x"}}]),
                ErrorKind::InvalidPath,
                0,
            ),
            (
                json!([{"op": "replace", "value": {"emails.value": "x"}}]),
                ErrorKind::InvalidPath,
                0,
            ),
            (
                json!([{"op": "replace", "value": {"name.givenName": "x", "name": {"givenName": "y"}}}]),
                ErrorKind::InvalidSyntax,
                0,
            ),
            (
                json!([{"op": "remove", "path": "emails", "value": [{"value": "a@x", "type": "work"}]}]),
                ErrorKind::InvalidSyntax,
                0,
            ),
            (
                json!([{"op": "remove", "path": "title", "value": "x"}]),
                ErrorKind::InvalidValue,
                0,
            ),
        ] {
            let e = normalize(&body(ops.clone()), &rs).unwrap_err();
            assert_eq!((e.kind(), e.operation()), (kind, Some(index)), "{ops}: {e}");
        }
    }
}
