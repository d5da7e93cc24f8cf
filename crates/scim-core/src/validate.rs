//! Validation of a resource body for create (POST, RFC 7644 section 3.3) and
//! replace (PUT, section 3.5.1) against a resource type's schemas.
//!
//! ```
//! use scim_core::schema::SchemaRegistry;
//! use scim_core::validate::validate_for_create;
//! use scim_core::ErrorKind;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//! let clean = validate_for_create(
//!     &json!({
//!         "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
//!         "id": "chosen-by-client",
//!         "UserName": "bjensen",
//!         "emails": {"value": "bjensen@example.com", "primary": true},
//!         "nickName": null
//!     }),
//!     &users,
//! )
//! .unwrap();
//! assert_eq!(
//!     clean,
//!     json!({
//!         "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
//!         "userName": "bjensen",
//!         "emails": [{"value": "bjensen@example.com", "primary": true}]
//!     })
//! );
//!
//! let err = validate_for_create(
//!     &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "active": "yes"}),
//!     &users,
//! )
//! .unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidValue);
//! assert!(err.detail().contains("active"));
//! ```
//!
//! ## Rules
//!
//! | Input | Result |
//! |---|---|
//! | body not a JSON object | `invalidSyntax` |
//! | `schemas` missing, or not an array of strings (one string is accepted) | `invalidSyntax` |
//! | `schemas` without the core schema URN, or listing a URN that is not a schema of the resource type | `invalidValue` (ignored with [`UnknownAttributes::Ignore`]) |
//! | an extension object whose URN is missing from `schemas` | the URN is added |
//! | an object under an unknown `urn:` key | `invalidValue` "unknown schema" (dropped with `Ignore`) |
//! | an unknown attribute or sub-attribute | `invalidValue` naming it (dropped with `Ignore`) |
//! | the same attribute twice in different case (`userName`, `USERNAME`) | `invalidSyntax` |
//! | a value of the wrong type | `invalidValue` with the attribute path (`emails[1].primary`) |
//! | a single value for a multi-valued attribute | wrapped in an array |
//! | an array for a single-valued attribute | `invalidValue` |
//! | more than one element with `"primary": true` | `invalidValue` |
//! | a required attribute missing, null or `""` | `invalidValue` |
//! | a required extension missing | `invalidValue` |
//! | `null`, `[]`, `{}` | dropped: unassigned (RFC 7643 section 2.5) |
//! | a `readOnly` attribute or sub-attribute (`id`, `meta`, `groups`, `manager.displayName`) | ignored (removed), per RFC 7644 section 3.3 |
//! | a value outside `canonicalValues` | accepted, unless [`ValidationOptions::strict_canonical_values`] |
//! | replace: an `immutable` attribute that has a value, changed | `mutability` |
//! | replace: an `immutable` attribute that has a value, omitted | the existing value is kept |
//! | replace: `readOnly` attributes | taken from the existing resource |
//! | replace: a `writeOnly` attribute (`password`) omitted | the existing value is kept |
//! | U+0000 in any string or key, at any depth, known attribute or not | `invalidValue` ([`crate::input`]) |
//! | `userName`, `externalId` or a Group's `displayName` over [`crate::input::MAX_KEY_BYTES`] | `invalidValue` |
//!
//! Types: `string` and `reference` are JSON strings; `boolean` a JSON
//! boolean (identity-provider strings such as `"True"` are converted by the
//! dialect layer before validation); `integer` a JSON number without
//! fraction or exponent; `decimal` any JSON number; `dateTime` a string in
//! RFC 3339 form with a time zone offset (xsd:dateTime as RFC 7643 section
//! 2.3.5 requires); `binary` base64 in the standard or URL-safe alphabet,
//! padding optional (section 2.3.6); `complex` a JSON object.
//!
//! Keys in the returned document have the schema's spelling
//! ([`Resource::normalize_keys`]).
//!
//! ## Decisions where the RFC leaves room
//!
//! - A body without `schemas` does not conform to the message structure
//!   (RFC 7643 section 3: REQUIRED), hence `invalidSyntax`; a `schemas`
//!   that names the wrong resource schema is a value "not compatible with
//!   the resource schema" (RFC 7644 section 3.12), hence `invalidValue`.
//! - RFC 7644 section 3.3 allows a provider to ignore what it does not
//!   understand; by default unknown attributes are rejected with an error
//!   that names them, because silently dropping data hides client mistakes.
//!   [`ValidationOptions::unknown_attributes`] switches to ignoring them.
//! - `primary` is accepted on the elements of any multi-valued complex
//!   attribute, even when its schema does not list it (RFC 7643 section 2.4
//!   defines it for all multi-valued attributes; the section 8.2 example
//!   uses it on `addresses`).
//! - On replace, readOnly sub-attributes of multi-valued elements are
//!   carried over from the existing element with the same `value`
//!   (`members.display` is readWrite in this project's Group schema, so it
//!   is taken as sent). Immutable sub-attributes are enforced inside singular
//!   complex attributes only: elements of a multi-valued attribute may be
//!   added and removed (RFC 7643 section 4.2), which a PUT expresses as a new list.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use chrono::DateTime;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::input::{check_key_lengths, check_text};
use crate::json::get_ci;
use crate::resource::{
    IMPLIED_PRIMARY, Resource, add_schema_urn, is_empty_value, kind_of, normalize_value,
};
use crate::schema::{AttrRef, Attribute, AttributeType, Mutability, ResourceSchema, Schema};

/// What to do with attributes the schema does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownAttributes {
    /// Answer `invalidValue`, naming the attribute. The default.
    #[default]
    Reject,
    /// Drop them from the document (RFC 7644 section 3.3 allows ignoring).
    Ignore,
}

/// How strict validation is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Unknown attributes, sub-attributes and schema URNs.
    pub unknown_attributes: UnknownAttributes,
    /// Enforce `canonicalValues` (case-insensitively unless `caseExact`).
    /// Off by default: RFC 7643 section 7 calls them suggested values.
    pub strict_canonical_values: bool,
}

/// Validates a create (POST) body with the default options and returns the
/// cleaned document. See the module documentation for the rules.
pub fn validate_for_create(body: &Value, rs: &ResourceSchema) -> Result<Value> {
    validate_for_create_with(body, rs, &ValidationOptions::default())
}

/// Validates a create (POST) body and returns the cleaned document.
pub fn validate_for_create_with(
    body: &Value,
    rs: &ResourceSchema,
    options: &ValidationOptions,
) -> Result<Value> {
    check_text(body)?;
    let doc = Checker::new(options).clean_body(body, rs)?;
    check_required(&doc, rs)?;
    let doc = Value::Object(doc);
    check_key_lengths(&doc, rs)?;
    Ok(doc)
}

/// Validates a replace (PUT) body against the `existing` resource with the
/// default options and returns the document to store. See the module
/// documentation for the rules.
pub fn validate_for_replace(body: &Value, existing: &Value, rs: &ResourceSchema) -> Result<Value> {
    validate_for_replace_with(body, existing, rs, &ValidationOptions::default())
}

/// Validates a replace (PUT) body against the `existing` resource and
/// returns the document to store.
pub fn validate_for_replace_with(
    body: &Value,
    existing: &Value,
    rs: &ResourceSchema,
    options: &ValidationOptions,
) -> Result<Value> {
    check_text(body)?;
    let mut doc = Checker::new(options).clean_body(body, rs)?;
    let mut old = Resource::from_value(existing.clone())
        .map_err(|_| Error::internal("the existing resource is not a JSON object"))?;
    old.normalize_keys(rs);
    let old = old.into_map();
    for schema in [rs.common(), rs.core()] {
        merge_container(&schema.attributes, &mut doc, &old, "")?;
    }
    for (ext, _) in rs.extensions() {
        let Some(Value::Object(old_ext)) = old.get(&ext.id) else {
            continue;
        };
        let mut new_ext = match doc.shift_remove(&ext.id) {
            Some(Value::Object(o)) => o,
            _ => Map::new(),
        };
        merge_container(
            &ext.attributes,
            &mut new_ext,
            old_ext,
            &format!("{}:", ext.id),
        )?;
        if !new_ext.is_empty() {
            doc.insert(ext.id.clone(), Value::Object(new_ext));
            add_schema_urn(&mut doc, &ext.id, true);
        }
    }
    check_required(&doc, rs)?;
    let doc = Value::Object(doc);
    check_key_lengths(&doc, rs)?;
    Ok(doc)
}

/// Checks and cleans a value for the attribute or sub-attribute `attr`
/// names, as a PATCH operation would set it: keys normalised to the
/// schema's spelling, types checked, nulls dropped (a null value returns
/// `Value::Null`), a single value for a multi-valued attribute wrapped in an
/// array. Mutability is not applied: that is the caller's business.
pub fn validate_value(attr: &AttrRef, value: &Value, options: &ValidationOptions) -> Result<Value> {
    check_text(value)?;
    let target = attr.target();
    let checker = Checker {
        options,
        drop_read_only: false,
    };
    let value = normalize_value(target, value.clone());
    Ok(checker
        .check_attr(target, value, &attr.path())?
        .unwrap_or(Value::Null))
}

/// Walks a body and builds the cleaned document.
struct Checker<'a> {
    options: &'a ValidationOptions,
    /// Remove readOnly attributes (create and replace bodies) or keep them
    /// (single values, whose mutability the caller judges).
    drop_read_only: bool,
}

impl<'a> Checker<'a> {
    fn new(options: &'a ValidationOptions) -> Self {
        Self {
            options,
            drop_read_only: true,
        }
    }

    fn reject_unknown(&self) -> bool {
        self.options.unknown_attributes == UnknownAttributes::Reject
    }

    fn clean_body(&self, body: &Value, rs: &ResourceSchema) -> Result<Map<String, Value>> {
        if !body.is_object() {
            return Err(Error::invalid_syntax(format!(
                "the request body must be a JSON object, not {}",
                kind_of(body)
            )));
        }
        let mut resource = Resource::from_value(body.clone())?;
        resource.normalize_keys(rs);
        let input = resource.into_map();
        if !input.contains_key("schemas") {
            return Err(Error::invalid_syntax(
                "the resource has no \"schemas\" attribute",
            ));
        }
        let mut out = Map::with_capacity(input.len());
        let mut extensions: Vec<&Arc<Schema>> = Vec::new();
        for (key, value) in input {
            let attr = rs
                .common()
                .attribute(&key)
                .or_else(|| rs.core().attribute(&key));
            if let Some(attr) = attr {
                check_spelling(&key, &attr.name)?;
                if attr.name == "schemas" {
                    out.insert(key, self.clean_schemas(value, rs)?);
                    continue;
                }
                if attr.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = self.check_attr(attr, value, &attr.name)? {
                    out.insert(key, v);
                }
            } else if let Some(ext) = rs.extension(&key) {
                check_spelling(&key, &ext.id)?;
                let obj = match value {
                    Value::Null => continue,
                    Value::Object(o) => o,
                    other => {
                        return Err(Error::invalid_value(format!(
                            "the extension \"{}\" must be a JSON object, not {}",
                            ext.id,
                            kind_of(&other)
                        )));
                    }
                };
                let cleaned =
                    self.check_container(&ext.attributes, obj, &format!("{}:", ext.id))?;
                if !cleaned.is_empty() {
                    out.insert(key, Value::Object(cleaned));
                    extensions.push(ext);
                }
            } else if is_urn(&key) {
                if self.reject_unknown() {
                    return Err(Error::invalid_value(format!(
                        "unknown schema \"{key}\": it is not a schema of resource type '{}'",
                        rs.resource_type().name
                    )));
                }
            } else if self.reject_unknown() {
                return Err(Error::invalid_value(format!(
                    "unknown attribute '{key}' for resource type '{}'",
                    rs.resource_type().name
                )));
            }
        }
        for ext in extensions {
            add_schema_urn(&mut out, &ext.id, true);
        }
        for (ext, required) in rs.extensions() {
            if *required && !out.contains_key(&ext.id) {
                return Err(Error::invalid_value(format!(
                    "the extension \"{}\" is required for resource type '{}'",
                    ext.id,
                    rs.resource_type().name
                )));
            }
        }
        Ok(out)
    }

    /// `schemas`: canonical spelling, duplicates removed, the core URN required.
    fn clean_schemas(&self, value: Value, rs: &ResourceSchema) -> Result<Value> {
        let items = match value {
            Value::Array(items) => items,
            s @ Value::String(_) => vec![s],
            other => {
                return Err(Error::invalid_syntax(format!(
                    "\"schemas\" must be an array of URN strings, not {}",
                    kind_of(&other)
                )));
            }
        };
        let has_core = items.iter().any(|i| {
            i.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&rs.core().id))
        });
        if !has_core && items.iter().all(Value::is_string) {
            return Err(Error::invalid_value(format!(
                "\"schemas\" must contain \"{}\"",
                rs.core().id
            )));
        }
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            let Value::String(urn) = item else {
                return Err(Error::invalid_syntax(format!(
                    "\"schemas\" must contain only URN strings, not {}",
                    kind_of(&item)
                )));
            };
            let canonical = if rs.core().id.eq_ignore_ascii_case(&urn) {
                Some(rs.core().id.clone())
            } else {
                rs.extension(&urn).map(|e| e.id.clone())
            };
            match canonical {
                Some(c) if !out.iter().any(|v| v.as_str() == Some(c.as_str())) => {
                    out.push(Value::String(c));
                }
                Some(_) => {}
                None if self.reject_unknown() => {
                    return Err(Error::invalid_value(format!(
                        "unknown schema \"{urn}\" in \"schemas\": it is not a schema of resource type '{}'",
                        rs.resource_type().name
                    )));
                }
                None => {}
            }
        }
        Ok(Value::Array(out))
    }

    /// The attributes of one schema inside an object (an extension object).
    fn check_container(
        &self,
        attrs: &[Attribute],
        obj: Map<String, Value>,
        prefix: &str,
    ) -> Result<Map<String, Value>> {
        let mut out = Map::with_capacity(obj.len());
        for (key, value) in obj {
            match attrs.iter().find(|a| a.name.eq_ignore_ascii_case(&key)) {
                Some(attr) => {
                    check_spelling(&key, &attr.name)?;
                    if self.drop_read_only && attr.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    if let Some(v) =
                        self.check_attr(attr, value, &format!("{prefix}{}", attr.name))?
                    {
                        out.insert(key, v);
                    }
                }
                None if self.reject_unknown() => {
                    return Err(Error::invalid_value(format!(
                        "unknown attribute '{prefix}{key}'"
                    )));
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// One attribute's value; `None` when it is unassigned.
    fn check_attr(&self, attr: &Attribute, value: Value, path: &str) -> Result<Option<Value>> {
        if value.is_null() {
            return Ok(None);
        }
        if !attr.multi_valued {
            if value.is_array() {
                return Err(Error::invalid_value(format!(
                    "'{path}' is single-valued; an array is not allowed"
                )));
            }
            return self.check_single(attr, value, path);
        }
        let items = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if let Some(v) = self.check_single(attr, item, &format!("{path}[{i}]"))? {
                out.push(v);
            }
        }
        let primaries = out
            .iter()
            .filter(|e| e.get(IMPLIED_PRIMARY) == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return Err(Error::invalid_value(format!(
                "at most one element of '{path}' may have \"primary\": true ({primaries} have)"
            )));
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    }

    /// One value (an element, for a multi-valued attribute).
    fn check_single(&self, attr: &Attribute, value: Value, path: &str) -> Result<Option<Value>> {
        let wrong = |expected: &str, got: &Value| {
            Error::invalid_value(format!(
                "'{path}' must be {expected} ({} attribute), not {}",
                attr.ty.as_str(),
                describe(got)
            ))
        };
        match (attr.ty, &value) {
            (_, Value::Null) => return Ok(None),
            (AttributeType::String | AttributeType::Reference, Value::String(_)) => {}
            (AttributeType::Boolean, Value::Bool(_)) => {}
            (AttributeType::Decimal, Value::Number(_)) => {}
            (AttributeType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            (AttributeType::DateTime, Value::String(s)) => {
                if DateTime::parse_from_rfc3339(s).is_err() {
                    return Err(Error::invalid_value(format!(
                        "'{path}' must be an xsd:dateTime with a time zone, e.g. 2008-01-23T04:56:22Z, not \"{s}\""
                    )));
                }
            }
            (AttributeType::Binary, Value::String(s)) => {
                let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                if STANDARD_PAD_INDIFFERENT.decode(&compact).is_err()
                    && URL_SAFE_PAD_INDIFFERENT.decode(&compact).is_err()
                {
                    return Err(Error::invalid_value(format!(
                        "'{path}' must be base64-encoded"
                    )));
                }
            }
            (AttributeType::Complex, Value::Object(_)) => {
                let Value::Object(obj) = value else {
                    return Ok(None);
                };
                return self.check_complex(attr, obj, path);
            }
            (AttributeType::String | AttributeType::Reference | AttributeType::DateTime, v)
            | (AttributeType::Binary, v) => return Err(wrong("a string", v)),
            (AttributeType::Boolean, v) => return Err(wrong("true or false", v)),
            (AttributeType::Integer, v) => return Err(wrong("an integer", v)),
            (AttributeType::Decimal, v) => return Err(wrong("a number", v)),
            (AttributeType::Complex, v) => return Err(wrong("an object", v)),
        }
        if self.options.strict_canonical_values {
            check_canonical(attr, &value, path)?;
        }
        Ok(Some(value))
    }

    fn check_complex(
        &self,
        attr: &Attribute,
        obj: Map<String, Value>,
        path: &str,
    ) -> Result<Option<Value>> {
        let mut out = Map::with_capacity(obj.len());
        for (key, value) in obj {
            match attr.sub_attribute(&key) {
                Some(sub) => {
                    check_spelling(&key, &sub.name)?;
                    if self.drop_read_only && sub.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    if let Some(v) = self.check_attr(sub, value, &format!("{path}.{}", sub.name))? {
                        out.insert(key, v);
                    }
                }
                None if attr.multi_valued && key.eq_ignore_ascii_case(IMPLIED_PRIMARY) => {
                    match value {
                        _ if key != IMPLIED_PRIMARY => check_spelling(&key, IMPLIED_PRIMARY)?,
                        Value::Null => {}
                        Value::Bool(b) => {
                            out.insert(IMPLIED_PRIMARY.to_string(), Value::Bool(b));
                        }
                        other => {
                            return Err(Error::invalid_value(format!(
                                "'{path}.primary' must be true or false (boolean attribute), not {}",
                                describe(&other)
                            )));
                        }
                    }
                }
                None if self.reject_unknown() => {
                    return Err(Error::invalid_value(format!(
                        "unknown sub-attribute '{path}.{key}'"
                    )));
                }
                None => {}
            }
        }
        for sub in &attr.sub_attributes {
            if sub.required
                && sub.mutability != Mutability::ReadOnly
                && out.get(&sub.name).is_none_or(is_blank)
            {
                return Err(Error::invalid_value(format!(
                    "'{path}.{}' is required",
                    sub.name
                )));
            }
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }
}

/// A key that only differs in case from the canonical name survived key
/// normalisation: the body has the attribute twice.
fn check_spelling(key: &str, canonical: &str) -> Result<()> {
    if key == canonical {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidSyntax,
            format!("attribute '{canonical}' is given more than once (also as '{key}')"),
        ))
    }
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// Null, `""`, `[]` or `{}`: not a usable value for a required attribute.
fn is_blank(v: &Value) -> bool {
    is_empty_value(v) || v.as_str().is_some_and(str::is_empty)
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 40 => format!("the string \"{s}\""),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        other => kind_of(other).to_string(),
    }
}

fn check_canonical(attr: &Attribute, value: &Value, path: &str) -> Result<()> {
    let (Some(allowed), Some(s)) = (attr.canonical_strings(), value.as_str()) else {
        return Ok(());
    };
    let ok = allowed.iter().any(|c| {
        if attr.case_exact {
            *c == s
        } else {
            c.eq_ignore_ascii_case(s)
        }
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_value(format!(
            "'{path}' must be one of {}, not \"{s}\"",
            allowed
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Required attributes of the core schema and of the extensions present
/// (readOnly ones are the service provider's to set).
fn check_required(doc: &Map<String, Value>, rs: &ResourceSchema) -> Result<()> {
    let missing = |attrs: &[Attribute], obj: &Map<String, Value>| {
        attrs
            .iter()
            .find(|a| {
                a.required
                    && a.mutability != Mutability::ReadOnly
                    && obj.get(&a.name).is_none_or(is_blank)
            })
            .map(|a| a.name.clone())
    };
    for schema in [rs.common(), rs.core()] {
        if let Some(name) = missing(&schema.attributes, doc) {
            return Err(Error::invalid_value(format!(
                "the required attribute '{name}' is missing"
            )));
        }
    }
    for (ext, _) in rs.extensions() {
        if let Some(Value::Object(obj)) = doc.get(&ext.id)
            && let Some(name) = missing(&ext.attributes, obj)
        {
            return Err(Error::invalid_value(format!(
                "the required attribute '{}:{name}' is missing",
                ext.id
            )));
        }
    }
    Ok(())
}

/// Applies the replace rules for the attributes of one schema: `out` is the
/// cleaned body's container, `old` the existing resource's.
fn merge_container(
    attrs: &[Attribute],
    out: &mut Map<String, Value>,
    old: &Map<String, Value>,
    prefix: &str,
) -> Result<()> {
    for attr in attrs {
        if attr.name == "schemas" {
            continue;
        }
        let Some(old_value) = old.get(&attr.name).filter(|v| !is_empty_value(v)) else {
            continue;
        };
        let path = format!("{prefix}{}", attr.name);
        match attr.mutability {
            Mutability::ReadOnly => {
                out.insert(attr.name.clone(), old_value.clone());
            }
            Mutability::WriteOnly => {
                if !out.contains_key(&attr.name) {
                    out.insert(attr.name.clone(), old_value.clone());
                }
            }
            Mutability::Immutable => match out.get(&attr.name) {
                None => {
                    out.insert(attr.name.clone(), old_value.clone());
                }
                Some(new) if !values_equal(attr, new, old_value) => {
                    return Err(Error::mutability(format!(
                        "'{path}' is immutable and already has a value; it cannot be changed"
                    )));
                }
                Some(_) => {}
            },
            Mutability::ReadWrite => {
                if let Some(new) = out.get_mut(&attr.name) {
                    merge_sub_attributes(attr, new, old_value, &path)?;
                }
            }
        }
    }
    Ok(())
}

/// Replace rules inside a complex attribute that the body gives.
fn merge_sub_attributes(attr: &Attribute, new: &mut Value, old: &Value, path: &str) -> Result<()> {
    if attr.sub_attributes.is_empty() {
        return Ok(());
    }
    match (new, old) {
        (Value::Object(n), Value::Object(o)) if !attr.multi_valued => {
            merge_container(&attr.sub_attributes, n, o, &format!("{path}."))
        }
        (Value::Array(ns), Value::Array(os)) if attr.multi_valued => {
            // Carry read-only sub-attributes over from the existing element
            // with the same `value`.
            let read_only: Vec<&Attribute> = attr
                .sub_attributes
                .iter()
                .filter(|s| s.mutability == Mutability::ReadOnly)
                .collect();
            if read_only.is_empty() {
                return Ok(());
            }
            for element in ns.iter_mut().filter_map(Value::as_object_mut) {
                let Some(value) = element.get("value").cloned() else {
                    continue;
                };
                let Some(previous) = os
                    .iter()
                    .filter_map(Value::as_object)
                    .find(|o| get_ci(o, "value").map(|(_, v)| v) == Some(&value))
                else {
                    continue;
                };
                for sub in &read_only {
                    if let Some((_, v)) = get_ci(previous, &sub.name) {
                        element.insert(sub.name.clone(), v.clone());
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether two values of `attr` are the same value: strings compared
/// case-insensitively unless `caseExact`, date-times as instants, numbers
/// numerically, multi-valued attributes as unordered lists.
fn values_equal(attr: &Attribute, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) if attr.multi_valued => {
            x.len() == y.len()
                && x.iter().all(|e| y.iter().any(|f| single_equal(attr, e, f)))
                && y.iter().all(|f| x.iter().any(|e| single_equal(attr, e, f)))
        }
        _ => single_equal(attr, a, b),
    }
}

fn single_equal(attr: &Attribute, a: &Value, b: &Value) -> bool {
    match (attr.ty, a, b) {
        (AttributeType::String, Value::String(x), Value::String(y)) if !attr.case_exact => {
            x.to_lowercase() == y.to_lowercase()
        }
        (AttributeType::DateTime, Value::String(x), Value::String(y)) => {
            match (
                DateTime::parse_from_rfc3339(x),
                DateTime::parse_from_rfc3339(y),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => x == y,
            }
        }
        (_, Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (AttributeType::Complex, Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    let other = get_ci(y, k).map(|(_, v)| v);
                    match (attr.sub_attribute(k), other) {
                        (Some(sub), Some(w)) => values_equal(sub, v, w),
                        (None, Some(w)) => v == w,
                        (_, None) => false,
                    }
                })
        }
        _ => a == b,
    }
}
