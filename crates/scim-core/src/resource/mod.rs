//! SCIM resources: a schema-aware generic JSON [`Resource`], and typed
//! [`User`], [`Group`] and [`EnterpriseUser`] structs (RFC 7643 sections 3
//! and 4).
//!
//! ```
//! use scim_core::resource::{Resource, User};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//!
//! // Attribute names are case-insensitive: normalise them to the schema's spelling.
//! let mut doc = Resource::from_value(json!({
//!     "Schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
//!     "UserName": "bjensen",
//!     "NAME": {"GivenName": "Barbara"},
//!     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "Tours"}
//! }))
//! .unwrap();
//! doc.normalize_keys(&users);
//! let given = users.resolve("name.givenName").unwrap();
//! assert_eq!(doc.get(&given), Some(&json!("Barbara")));
//! assert_eq!(doc.as_value()["userName"], "bjensen");
//!
//! // The typed view keeps everything it does not model.
//! let user = User::try_from(doc).unwrap();
//! assert_eq!(user.user_name, "bjensen");
//! assert_eq!(user.enterprise().unwrap().department.as_deref(), Some("Tours"));
//! ```
//!
//! ## Design
//!
//! - [`Resource`] wraps the JSON object as received or stored; nothing is
//!   lost. Lookups by [`AttrRef`] are case-insensitive;
//!   [`Resource::normalize_keys`] rewrites every key the schema knows to its
//!   canonical spelling once, so later code can use plain lookups.
//! - The typed structs deserialise case-insensitively by themselves: before
//!   the derived deserializer runs, keys equal to a field's wire name in any
//!   case are renamed to it (so `serde_json::from_value::<User>` accepts
//!   `UserName`). Members the struct does not model (extension objects,
//!   unknown attributes, unknown sub-attributes) land in its `extra` map and
//!   are serialised back unchanged. [`User::from_value`] additionally
//!   normalises extension keys against a [`ResourceSchema`], for extensions
//!   the typed struct does not know.
//! - `meta` times are kept as the strings received (round trips are exact);
//!   [`Meta::created_at`] and [`Meta::last_modified_at`] parse them.
//! - Absent, `null` and (for multi-valued attributes) empty values are the
//!   same "unassigned" state (RFC 7643 section 2.5): the typed structs read
//!   `null` as unassigned and omit unassigned attributes when serialising.

mod group;
pub(crate) mod serde_ci;
mod user;

use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use group::Group;
pub use user::{Address, EnterpriseUser, Manager, MultiValue, Name, ResourceRef, User};

use crate::error::{Error, Result};
use crate::json::{self, get_ci, get_ci_mut, key_ci, remove_ci};
use crate::schema::{AttrRef, Attribute, Location, ResourceSchema};
use serde_ci::case_insensitive_serde;

/// The `meta` attribute (RFC 7643 section 3.1), with unknown members kept.
///
/// Times are the strings as received, so a document round-trips exactly;
/// use [`Meta::created_at`] / [`Meta::last_modified_at`] to read them and
/// [`Meta::format_time`] to write them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Meta {
    /// The resource type name, e.g. `User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// When the resource was created (xsd:dateTime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// When the resource was last modified (xsd:dateTime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The URI of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The version (entity tag), e.g. `W/"3694e05e9dff590"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Members this struct does not model, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    Meta,
    &[
        "resourceType",
        "created",
        "lastModified",
        "location",
        "version"
    ]
);

impl Meta {
    /// `created`, parsed as an RFC 3339 date-time.
    pub fn created_at(&self) -> Option<DateTime<FixedOffset>> {
        self.created.as_deref().and_then(parse_time)
    }

    /// `lastModified`, parsed as an RFC 3339 date-time.
    pub fn last_modified_at(&self) -> Option<DateTime<FixedOffset>> {
        self.last_modified.as_deref().and_then(parse_time)
    }

    /// Formats a time the way this crate writes `meta` times: RFC 3339 in
    /// UTC with a `Z` and millisecond precision, e.g. `2011-08-01T21:32:44.882Z`.
    pub fn format_time(time: DateTime<Utc>) -> String {
        time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s.trim()).ok()
}

/// A SCIM resource as a JSON object, read and written through the schema.
///
/// Serialises as the object itself; deserialises from any JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Resource {
    // Always a JSON object: every constructor guarantees it.
    doc: Value,
}

impl Default for Resource {
    fn default() -> Self {
        Self::new()
    }
}

static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl Resource {
    /// An empty resource (`{}`).
    pub fn new() -> Self {
        Self {
            doc: Value::Object(Map::new()),
        }
    }

    /// A resource from a JSON object.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self {
            doc: Value::Object(map),
        }
    }

    /// A resource from a JSON value, which must be an object
    /// ([`crate::ErrorKind::InvalidSyntax`] otherwise).
    pub fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Self::from_map(map)),
            other => Err(Error::invalid_syntax(format!(
                "a resource must be a JSON object, not {}",
                kind_of(&other)
            ))),
        }
    }

    /// The document as a JSON value (always an object).
    pub fn as_value(&self) -> &Value {
        &self.doc
    }

    /// The document's members.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.doc.as_object().unwrap_or(&EMPTY)
    }

    /// The document as a JSON value.
    pub fn into_value(self) -> Value {
        self.doc
    }

    /// The document's members.
    pub fn into_map(self) -> Map<String, Value> {
        match self.doc {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn map_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.doc.as_object_mut()
    }

    fn str_member(&self, name: &str) -> Option<&str> {
        get_ci(self.as_map(), name).and_then(|(_, v)| v.as_str())
    }

    /// The `id`, if present and a string.
    pub fn id(&self) -> Option<&str> {
        self.str_member("id")
    }

    /// Sets the `id`.
    pub fn set_id(&mut self, id: impl Into<String>) {
        if let Some(map) = self.map_mut() {
            put_ci(map, "id", Value::String(id.into()));
        }
    }

    /// The `externalId`, if present and a string.
    pub fn external_id(&self) -> Option<&str> {
        self.str_member("externalId")
    }

    /// The URNs listed in `schemas` (the string elements, in order).
    pub fn schemas(&self) -> Vec<&str> {
        match get_ci(self.as_map(), "schemas") {
            Some((_, Value::Array(items))) => items.iter().filter_map(Value::as_str).collect(),
            Some((_, Value::String(s))) => vec![s.as_str()],
            _ => Vec::new(),
        }
    }

    /// Whether `schemas` lists `urn`, case-insensitively.
    pub fn has_schema(&self, urn: &str) -> bool {
        self.schemas().iter().any(|s| s.eq_ignore_ascii_case(urn))
    }

    /// Adds `urn` to `schemas` unless listed (in any case); creates
    /// `schemas` when absent.
    pub fn add_schema(&mut self, urn: &str) {
        if let Some(map) = self.map_mut() {
            add_schema_urn(map, urn, true);
        }
    }

    /// The `meta` attribute, parsed (`None` when absent or not an object).
    pub fn meta(&self) -> Option<Meta> {
        let (_, value) = get_ci(self.as_map(), "meta")?;
        <Meta as Deserialize>::deserialize(value).ok()
    }

    /// Replaces the `meta` attribute.
    pub fn set_meta(&mut self, meta: &Meta) {
        if let Some(map) = self.map_mut() {
            put_ci(map, "meta", Value::Object(serde_ci::to_object(meta)));
        }
    }

    /// The value at `attr`: a top-level attribute's value, or a
    /// sub-attribute's value inside a singular complex attribute. `None`
    /// when absent or null, and for a sub-attribute of a multi-valued
    /// attribute (which has one value per element: use [`Resource::values`]).
    pub fn get(&self, attr: &AttrRef) -> Option<&Value> {
        let top = json::attribute_value(&self.doc, attr)?;
        let Some(sub) = attr.sub_attribute() else {
            return Some(top);
        };
        let v = get_ci(top.as_object()?, &sub.name)?.1;
        (!v.is_null()).then_some(v)
    }

    /// Every value `attr` reaches, flattening multi-valued attributes (see
    /// [`json::values_at`]).
    pub fn values(&self, attr: &AttrRef) -> Vec<&Value> {
        json::values_at(&self.doc, attr)
    }

    /// Sets the value at `attr`, with the attribute's canonical name as key
    /// (replacing a differently cased key). An extension attribute creates
    /// the extension object when needed and adds its URN to `schemas` (when
    /// the resource has a `schemas` array). A
    /// sub-attribute of a singular complex attribute creates the parent
    /// object when needed. `null` removes the value (RFC 7643 section 2.5).
    ///
    /// Errors ([`crate::ErrorKind::InvalidPath`]) for a sub-attribute of a
    /// multi-valued attribute, whose elements are addressed by PATCH value
    /// filters, and ([`crate::ErrorKind::InvalidValue`]) when the parent
    /// holds something other than an object.
    pub fn set(&mut self, attr: &AttrRef, value: Value) -> Result<()> {
        if value.is_null() {
            self.remove(attr);
            return Ok(());
        }
        if attr.has_sub() && attr.attribute().multi_valued {
            return Err(Error::invalid_path(format!(
                "'{}' is a sub-attribute of the multi-valued attribute '{}'; address its elements with a value filter",
                attr.path(),
                attr.attribute().name
            )));
        }
        let map = self
            .map_mut()
            .ok_or_else(|| Error::internal("resource is not a JSON object"))?;
        let container = match attr.location() {
            Location::TopLevel => map,
            Location::Extension => {
                let urn = attr.schema_urn();
                add_schema_urn(map, urn, false);
                if !matches!(get_ci(map, urn), Some((_, Value::Object(_)))) {
                    put_ci(map, urn, Value::Object(Map::new()));
                }
                object_member_mut(map, urn)
                    .ok_or_else(|| Error::internal("extension object vanished"))?
            }
        };
        let name = &attr.attribute().name;
        match attr.sub_attribute() {
            None => put_ci(container, name, value),
            Some(sub) => {
                match get_ci(container, name) {
                    None | Some((_, Value::Null)) => {
                        put_ci(container, name, Value::Object(Map::new()));
                    }
                    Some((_, Value::Object(_))) => {}
                    Some((_, other)) => {
                        return Err(Error::invalid_value(format!(
                            "cannot set '{}': '{name}' holds {}, not an object",
                            attr.path(),
                            kind_of(other)
                        )));
                    }
                }
                let parent = object_member_mut(container, name)
                    .ok_or_else(|| Error::internal("parent object vanished"))?;
                put_ci(parent, &sub.name, value);
            }
        }
        Ok(())
    }

    /// Removes the value at `attr` and returns it. For a sub-attribute of a
    /// multi-valued attribute, removes it from every element and returns the
    /// removed values as an array. Complex values and extension objects
    /// left empty are removed too; `schemas` is left as it is.
    pub fn remove(&mut self, attr: &AttrRef) -> Option<Value> {
        let map = self.map_mut()?;
        let urn = attr.schema_urn();
        let container = match attr.location() {
            Location::TopLevel => &mut *map,
            Location::Extension => object_member_mut(map, urn)?,
        };
        let name = &attr.attribute().name;
        let removed = match attr.sub_attribute() {
            None => remove_ci(container, name),
            Some(sub) => {
                let removed = match get_ci_mut(container, name)? {
                    Value::Object(parent) => remove_ci(parent, &sub.name),
                    Value::Array(items) => {
                        let mut removed = Vec::new();
                        for item in items.iter_mut() {
                            if let Some(v) =
                                item.as_object_mut().and_then(|o| remove_ci(o, &sub.name))
                            {
                                removed.push(v);
                            }
                        }
                        items.retain(|i| !is_empty_object(i));
                        (!removed.is_empty()).then_some(Value::Array(removed))
                    }
                    _ => None,
                };
                if get_ci(container, name).is_some_and(|(_, v)| is_empty_value(v)) {
                    remove_ci(container, name);
                }
                removed
            }
        };
        if attr.location() == Location::Extension
            && get_ci(map, urn).is_some_and(|(_, v)| is_empty_object(v))
        {
            remove_ci(map, urn);
        }
        removed
    }

    /// Rewrites every key the resource schema knows to its canonical
    /// spelling, in any case: common and core attributes (`UserName` ->
    /// `userName`), their sub-attributes (also inside multi-valued
    /// elements), extension URN keys (`urn:...:enterprise:2.0:user` ->
    /// `urn:...:enterprise:2.0:User`) and the attributes inside them. The
    /// URNs listed in `schemas` get their canonical spelling too. Unknown
    /// keys are kept untouched, and so is a differently cased duplicate of a
    /// key that is already spelled canonically (it is not silently merged:
    /// validation reports it). Member order is preserved.
    pub fn normalize_keys(&mut self, rs: &ResourceSchema) {
        if let Some(map) = self.map_mut() {
            let old = std::mem::take(map);
            *map = normalize_top(old, rs);
        }
    }
}

impl From<Map<String, Value>> for Resource {
    fn from(map: Map<String, Value>) -> Self {
        Self::from_map(map)
    }
}

impl TryFrom<Value> for Resource {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self> {
        Self::from_value(value)
    }
}

impl From<Resource> for Value {
    fn from(r: Resource) -> Self {
        r.into_value()
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Map::deserialize(d).map(Self::from_map)
    }
}

/// Sets `obj[name]`, replacing a member whose key equals `name` in another
/// case (the key becomes `name`).
pub(crate) fn put_ci(obj: &mut Map<String, Value>, name: &str, value: Value) {
    if let Some(slot) = obj.get_mut(name) {
        *slot = value;
        return;
    }
    if let Some(old) = key_ci(obj, name) {
        obj.shift_remove(&old);
    }
    obj.insert(name.to_string(), value);
}

fn object_member_mut<'a>(
    obj: &'a mut Map<String, Value>,
    name: &str,
) -> Option<&'a mut Map<String, Value>> {
    get_ci_mut(obj, name)?.as_object_mut()
}

/// Adds `urn` to the `schemas` array of `obj` unless listed (any case).
/// Creates the array when absent only if `create` is set.
pub(crate) fn add_schema_urn(obj: &mut Map<String, Value>, urn: &str, create: bool) {
    let listed = |items: &[Value]| {
        items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    };
    match get_ci_mut(obj, "schemas") {
        Some(Value::Array(items)) if !listed(items) => {
            items.push(Value::String(urn.to_string()));
        }
        Some(_) => {}
        None if create => {
            obj.insert(
                "schemas".to_string(),
                Value::Array(vec![Value::String(urn.to_string())]),
            );
        }
        None => {}
    }
}

pub(crate) fn is_empty_object(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.is_empty())
}

/// Null, an empty object or an empty array: "unassigned" (RFC 7643 section 2.5).
pub(crate) fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A short name of a JSON value's type, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Inserts `value` under `canonical` unless that would merge two members
/// (the exact spelling is present elsewhere, or already taken), in which
/// case the original key is kept.
fn insert_canonical(
    out: &mut Map<String, Value>,
    exact_present: bool,
    key: String,
    canonical: &str,
    value: Value,
) {
    if key != canonical && !exact_present && !out.contains_key(canonical) {
        out.insert(canonical.to_string(), value);
    } else {
        out.insert(key, value);
    }
}

fn normalize_top(map: Map<String, Value>, rs: &ResourceSchema) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len());
    let exact: Vec<String> = map.keys().cloned().collect();
    for (key, value) in map {
        let attr = rs
            .common()
            .attribute(&key)
            .or_else(|| rs.core().attribute(&key));
        if let Some(attr) = attr {
            let present = key != attr.name && exact.contains(&attr.name);
            let value = normalize_value(attr, value);
            insert_canonical(&mut out, present, key, &attr.name, value);
        } else if let Some(ext) = rs.extension(&key) {
            let present = key != ext.id && exact.contains(&ext.id);
            let value = match value {
                Value::Object(o) => Value::Object(normalize_object(&ext.attributes, o, false)),
                other => other,
            };
            insert_canonical(&mut out, present, key, &ext.id, value);
        } else {
            out.insert(key, value);
        }
    }
    if let Some(Value::Array(items)) = out.get_mut("schemas") {
        for item in items.iter_mut() {
            if let Value::String(s) = item {
                let canonical = std::iter::once(rs.core())
                    .chain(rs.extensions().iter().map(|(e, _)| e))
                    .find(|schema| schema.id.eq_ignore_ascii_case(s));
                if let Some(schema) = canonical {
                    s.clone_from(&schema.id);
                }
            }
        }
    }
    out
}

/// The sub-attribute every multi-valued complex attribute may carry even
/// when its schema does not list it (RFC 7643 section 2.4; the section 8.2
/// example uses it on `addresses`).
pub(crate) const IMPLIED_PRIMARY: &str = "primary";

fn normalize_object(
    attrs: &[Attribute],
    map: Map<String, Value>,
    implied_primary: bool,
) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len());
    let exact: Vec<String> = map.keys().cloned().collect();
    for (key, value) in map {
        match attrs.iter().find(|a| a.name.eq_ignore_ascii_case(&key)) {
            Some(attr) => {
                let present = key != attr.name && exact.contains(&attr.name);
                let value = normalize_value(attr, value);
                insert_canonical(&mut out, present, key, &attr.name, value);
            }
            None if implied_primary && key.eq_ignore_ascii_case(IMPLIED_PRIMARY) => {
                let present = key != IMPLIED_PRIMARY && exact.iter().any(|k| k == IMPLIED_PRIMARY);
                insert_canonical(&mut out, present, key, IMPLIED_PRIMARY, value);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    out
}

/// Normalises the sub-attribute keys of a complex value (or of each element
/// of a multi-valued one). Recursion follows the schema, not the input, so
/// its depth is bounded by the schema's.
pub(crate) fn normalize_value(attr: &Attribute, value: Value) -> Value {
    if attr.sub_attributes.is_empty() {
        return value;
    }
    let implied_primary = attr.multi_valued;
    let normalize_one = |v: Value| match v {
        Value::Object(o) => {
            Value::Object(normalize_object(&attr.sub_attributes, o, implied_primary))
        }
        other => other,
    };
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_one).collect()),
        other => normalize_one(other),
    }
}

/// Conversions shared by the typed resources.
macro_rules! typed_resource_conversions {
    ($ty:ident) => {
        impl $ty {
            /// Reads the typed resource from a JSON document, first
            /// normalising its keys against `rs` (see
            /// [`Resource::normalize_keys`]). Errors: not an object
            /// ([`crate::ErrorKind::InvalidSyntax`]); a value of the wrong
            /// JSON type ([`crate::ErrorKind::InvalidValue`]).
            pub fn from_value(value: Value, rs: &ResourceSchema) -> Result<Self> {
                let mut resource = Resource::from_value(value)?;
                resource.normalize_keys(rs);
                Self::try_from(resource)
            }

            /// The JSON document.
            pub fn to_value(&self) -> Value {
                Value::Object(serde_ci::to_object(self))
            }
        }

        impl TryFrom<Value> for $ty {
            type Error = Error;

            /// Reads the typed resource; keys match case-insensitively.
            fn try_from(value: Value) -> Result<Self> {
                if !value.is_object() {
                    return Err(Error::invalid_syntax(format!(
                        "a resource must be a JSON object, not {}",
                        kind_of(&value)
                    )));
                }
                serde_json::from_value(value).map_err(|e| {
                    Error::invalid_value(format!("not a valid {} resource: {e}", stringify!($ty)))
                })
            }
        }

        impl TryFrom<Resource> for $ty {
            type Error = Error;

            fn try_from(resource: Resource) -> Result<Self> {
                Self::try_from(resource.into_value())
            }
        }

        impl From<$ty> for Value {
            fn from(typed: $ty) -> Self {
                typed.to_value()
            }
        }

        impl From<$ty> for Resource {
            fn from(typed: $ty) -> Self {
                Resource::from_map(serde_ci::to_object(&typed))
            }
        }
    };
}
use typed_resource_conversions;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, SchemaRegistry, USER_SCHEMA};
    use serde_json::json;

    fn users() -> std::sync::Arc<ResourceSchema> {
        SchemaRegistry::core().resource_schema("User").unwrap()
    }

    #[test]
    fn normalize_keys_rewrites_known_keys_only() {
        let rs = users();
        let mut r = Resource::from_value(json!({
            "SCHEMAS": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER", "urn:other"],
            "ID": "1",
            "UserName": "bjensen",
            "EMAILS": [{"VALUE": "a@x", "Type": "work", "weird": 1}, "not-an-object"],
            "Name": {"FamilyName": "Jensen"},
            "Meta": {"ResourceType": "User"},
            "Unknown": {"Keep": true},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {
                "DEPARTMENT": "Tours", "Manager": {"Value": "m", "DisplayName": "Boss"}
            }
        }))
        .unwrap();
        r.normalize_keys(&rs);
        assert_eq!(
            r.into_value(),
            json!({
                "schemas": [USER_SCHEMA, "urn:other"],
                "id": "1",
                "userName": "bjensen",
                "emails": [{"value": "a@x", "type": "work", "weird": 1}, "not-an-object"],
                "name": {"familyName": "Jensen"},
                "meta": {"resourceType": "User"},
                "Unknown": {"Keep": true},
                ENTERPRISE_USER_SCHEMA: {
                    "department": "Tours", "manager": {"value": "m", "displayName": "Boss"}
                }
            })
        );
    }

    #[test]
    fn normalize_keys_keeps_differently_cased_duplicates() {
        let rs = users();
        let mut r = Resource::from_value(json!({"USERNAME": "a", "userName": "b"})).unwrap();
        r.normalize_keys(&rs);
        assert_eq!(r.into_value(), json!({"USERNAME": "a", "userName": "b"}));
        let mut r = Resource::from_value(json!({"USERNAME": "a", "UserName": "b"})).unwrap();
        r.normalize_keys(&rs);
        assert_eq!(r.into_value(), json!({"userName": "a", "UserName": "b"}));
    }

    #[test]
    fn get_set_remove_by_attr_ref() {
        let rs = users();
        let mut r = Resource::from_value(json!({
            "schemas": [USER_SCHEMA],
            "USERNAME": "old",
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x"}]
        }))
        .unwrap();
        let user_name = rs.resolve("userName").unwrap();
        assert_eq!(r.get(&user_name), Some(&json!("old")));
        r.set(&user_name, json!("new")).unwrap();
        assert_eq!(r.as_map().get("userName"), Some(&json!("new")));
        assert!(r.as_map().get("USERNAME").is_none());

        let given = rs.resolve("name.givenName").unwrap();
        r.set(&given, json!("Barbara")).unwrap();
        assert_eq!(r.get(&given), Some(&json!("Barbara")));
        assert_eq!(r.remove(&given), Some(json!("Barbara")));
        assert!(r.as_map().get("name").is_none(), "empty parent removed");

        let dept = rs.resolve("department").unwrap();
        r.set(&dept, json!("Tours")).unwrap();
        assert_eq!(r.schemas(), vec![USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        assert_eq!(r.values(&dept), vec![&json!("Tours")]);
        assert_eq!(r.remove(&dept), Some(json!("Tours")));
        assert!(r.as_map().get(ENTERPRISE_USER_SCHEMA).is_none());

        let email_values = rs.resolve("emails.value").unwrap();
        assert_eq!(r.get(&email_values), None);
        assert_eq!(r.values(&email_values).len(), 2);
        assert!(r.set(&email_values, json!("x")).is_err());
        assert_eq!(r.remove(&email_values), Some(json!(["a@x", "b@x"])));
        assert_eq!(r.as_map().get("emails"), Some(&json!([{"type": "work"}])));

        r.set(&user_name, Value::Null).unwrap();
        assert!(r.get(&user_name).is_none());
        let name = rs.resolve("name").unwrap();
        r.set(&name, json!("oops")).unwrap();
        assert!(r.set(&given, json!("x")).is_err());
    }

    #[test]
    fn common_accessors_and_meta() {
        let mut r = Resource::from_value(json!({
            "Id": "42", "externalId": "e", "schemas": [USER_SCHEMA],
            "META": {"Created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34+02:00", "x": 1}
        }))
        .unwrap();
        assert_eq!(r.id(), Some("42"));
        assert_eq!(r.external_id(), Some("e"));
        assert!(r.has_schema("urn:ietf:params:scim:schemas:core:2.0:user"));
        let mut meta = r.meta().unwrap();
        assert_eq!(meta.created.as_deref(), Some("2010-01-23T04:56:22Z"));
        assert_eq!(meta.extra.get("x"), Some(&json!(1)));
        assert_eq!(
            meta.last_modified_at().unwrap().to_rfc3339(),
            "2011-05-13T04:42:34+02:00"
        );
        meta.version = Some("W/\"1\"".into());
        r.set_meta(&meta);
        r.set_id("43");
        assert_eq!(r.as_value()["meta"]["version"], "W/\"1\"");
        assert_eq!(r.id(), Some("43"));
        let t = DateTime::parse_from_rfc3339("2011-08-01T21:32:44.882Z").unwrap();
        assert_eq!(
            Meta::format_time(t.with_timezone(&Utc)),
            "2011-08-01T21:32:44.882Z"
        );
        assert!(Resource::from_value(json!([1])).is_err());
        let back: Resource = serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), r#"{"a":1}"#);
        assert!(serde_json::from_str::<Resource>("[]").is_err());
    }
}
