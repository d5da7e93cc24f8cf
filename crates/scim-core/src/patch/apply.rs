//! The PATCH engine: one operation at a time on a working copy of the
//! resource. This file holds dispatch, path-less values, extensions,
//! single-valued attributes and mutability; `multi.rs` holds multi-valued
//! attributes and value filters.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::op::{PatchOpKind, PatchOperation};
use super::slots::{
    apply_plan, get_ci_mut, merge_plan, object_slot, put, remove_all_ci, rename_ci, sub_change,
    unchanged, union,
};
use super::value::{self, Drop};
use crate::error::{Error, Result};
use crate::json::{get_ci, key_ci};
use crate::path::Path;
use crate::schema::{AttrRef, COMMON_SCHEMA, Location, Mutability, ResourceSchema, Schema};

/// The working state of one PATCH request.
pub(super) struct Engine<'a> {
    pub(super) rs: &'a ResourceSchema,
    pub(super) doc: Map<String, Value>,
    /// Extension URNs whose attributes the current operation touched.
    touched: Vec<String>,
}

impl<'a> Engine<'a> {
    pub(super) fn new(rs: &'a ResourceSchema, doc: Map<String, Value>) -> Self {
        Self {
            rs,
            doc,
            touched: Vec::new(),
        }
    }

    pub(super) fn into_doc(self) -> Map<String, Value> {
        self.doc
    }

    /// Applies one operation. On error the working copy may be half
    /// changed; the caller throws it away.
    pub(super) fn apply(&mut self, op: &PatchOperation) -> Result<()> {
        op.check()?;
        let result = match (op.op, &op.path, &op.value) {
            (PatchOpKind::Remove, Some(text), _) => {
                let path = Path::parse(text, self.rs)?;
                self.remove(&path)
            }
            (PatchOpKind::Add | PatchOpKind::Replace, None, Some(value)) => {
                self.pathless(op.op, value)
            }
            (PatchOpKind::Add | PatchOpKind::Replace, Some(text), Some(value)) => {
                let path = Path::parse(text, self.rs)?;
                self.write(op.op, &path, value)
            }
            // `check` refuses these; kept total without panicking.
            (PatchOpKind::Remove, None, _) => Err(Error::no_target("remove needs a 'path'")),
            (_, _, None) => Err(Error::invalid_value("add and replace need a 'value'")),
        };
        result?;
        self.tidy_extensions();
        Ok(())
    }

    // ----- dispatch ---------------------------------------------------------

    fn write(&mut self, kind: PatchOpKind, path: &Path, value: &Value) -> Result<()> {
        match path {
            Path::Extension(schema) => self.write_extension(kind, schema, value),
            Path::Attribute {
                attr,
                filter: None,
                sub: None,
            } => self.write_attr(kind, attr, value),
            Path::Attribute {
                attr,
                filter: None,
                sub: Some(sub),
            } => {
                if attr.attribute().multi_valued {
                    self.guarded(attr, |e| e.write_elements(kind, attr, None, sub, value))
                } else {
                    self.guarded(attr, |e| e.write_sub(kind, attr, sub, value))
                }
            }
            Path::Attribute {
                attr,
                filter: Some(filter),
                sub,
            } => {
                require_multi(attr)?;
                match sub {
                    Some(sub) => self.guarded(attr, |e| {
                        e.write_elements(kind, attr, Some(filter), sub, value)
                    }),
                    None => self.guarded(attr, |e| e.write_records(kind, attr, filter, value)),
                }
            }
        }
    }

    fn remove(&mut self, path: &Path) -> Result<()> {
        match path {
            Path::Extension(schema) => self.remove_extension(schema),
            Path::Attribute {
                attr,
                filter: None,
                sub: None,
            } => self.guarded(attr, |e| Ok(e.remove_attr(attr))),
            Path::Attribute {
                attr,
                filter: None,
                sub: Some(sub),
            } => {
                if attr.attribute().multi_valued {
                    self.guarded(attr, |e| e.remove_in_elements(attr, None, sub))
                } else {
                    self.guarded(attr, |e| e.remove_sub(attr, sub))
                }
            }
            Path::Attribute {
                attr,
                filter: Some(filter),
                sub,
            } => {
                require_multi(attr)?;
                match sub {
                    Some(sub) => {
                        self.guarded(attr, |e| e.remove_in_elements(attr, Some(filter), sub))
                    }
                    None => self.guarded(attr, |e| e.remove_records(attr, filter)),
                }
            }
        }
    }

    /// Add or replace without a path: the value is an object of attributes
    /// (RFC 7644 sections 3.5.2.1 and 3.5.2.3). Keys are attribute names in
    /// any case, URN-qualified attribute names, or extension URNs holding an
    /// object of that extension's attributes. A `schemas` member is checked
    /// last, against the schemas the other members leave behind.
    fn pathless(&mut self, kind: PatchOpKind, value: &Value) -> Result<()> {
        let Some(obj) = value.as_object() else {
            return Err(Error::invalid_value(format!(
                "without a 'path', the value of {kind} must be an object of attributes"
            )));
        };
        let mut schemas = None;
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                schemas = Some(v);
            } else if let Some(schema) = self.rs.extension(key) {
                let schema = schema.clone();
                self.write_extension(kind, &schema, v)?;
            } else {
                let attr = self.rs.resolve(key).map_err(|e| {
                    Error::invalid_value(format!(
                        "the value names no attribute '{key}': {}",
                        e.detail()
                    ))
                })?;
                if attr.has_sub() {
                    return Err(Error::invalid_value(format!(
                        "'{key}' names a sub-attribute; a path-less value holds attributes, \
                         e.g. {{\"{}\": {{\"{}\": ...}}}}",
                        attr.attribute().name,
                        attr.target().name
                    )));
                }
                self.write_attr(kind, &attr, v)?;
            }
        }
        if let Some(v) = schemas {
            self.tidy_extensions();
            let attr = self.rs.resolve("schemas")?;
            self.write_attr(kind, &attr, v)?;
        }
        Ok(())
    }

    // ----- extensions -------------------------------------------------------

    /// The attribute `name` of an extension schema, as a plain name.
    fn extension_attr(&self, schema: &Schema, name: &str) -> Result<AttrRef> {
        if name.contains(['.', ':', '[']) {
            return Err(Error::invalid_value(format!(
                "'{name}' inside '{}' is not an attribute name",
                schema.id
            )));
        }
        self.rs
            .resolve(&format!("{}:{name}", schema.id))
            .map_err(|_| {
                Error::invalid_value(format!(
                    "extension '{}' has no attribute '{name}'",
                    schema.id
                ))
            })
    }

    fn write_extension(
        &mut self,
        kind: PatchOpKind,
        schema: &Arc<Schema>,
        value: &Value,
    ) -> Result<()> {
        if value.is_null() {
            return self.remove_extension(schema);
        }
        let Some(obj) = value.as_object() else {
            return Err(Error::invalid_value(format!(
                "'{}' takes an object of the extension's attributes",
                schema.id
            )));
        };
        for (key, v) in obj {
            let attr = self.extension_attr(schema, key)?;
            self.write_attr(kind, &attr, v)?;
        }
        self.touched.push(schema.id.clone());
        Ok(())
    }

    fn remove_extension(&mut self, schema: &Arc<Schema>) -> Result<()> {
        let required = self
            .rs
            .extensions()
            .iter()
            .any(|(s, required)| *required && s.id.eq_ignore_ascii_case(&schema.id));
        let present = get_ci(&self.doc, &schema.id).is_some();
        if required && present {
            return Err(Error::mutability(format!(
                "extension '{}' is required for this resource type; it cannot be removed",
                schema.id
            )));
        }
        for def in &schema.attributes {
            let attr = self.extension_attr(schema, &def.name)?;
            self.guarded(&attr, |e| Ok(e.remove_attr(&attr)))?;
        }
        remove_all_ci(&mut self.doc, &schema.id);
        self.touched.push(schema.id.clone());
        Ok(())
    }

    /// Keeps `schemas` in step with the extension objects the operation
    /// touched: an extension that gained its first attribute is added, one
    /// left without any attribute is removed (object and URN), except that a
    /// required extension keeps its URN.
    pub(super) fn tidy_extensions(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for urn in touched {
            let required = self
                .rs
                .extensions()
                .iter()
                .any(|(s, required)| *required && s.id == urn);
            let assigned = !value::is_unassigned(get_ci(&self.doc, &urn).map(|(_, v)| v));
            if assigned {
                rename_ci(&mut self.doc, &urn);
                self.add_schema_urn(&urn);
            } else {
                remove_all_ci(&mut self.doc, &urn);
                if !required
                    && let Some(Value::Array(schemas)) = get_ci_mut(&mut self.doc, "schemas")
                {
                    schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&urn)));
                }
            }
        }
    }

    fn add_schema_urn(&mut self, urn: &str) {
        match get_ci_mut(&mut self.doc, "schemas") {
            Some(Value::Array(schemas)) => {
                if !schemas
                    .iter()
                    .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
                {
                    schemas.push(Value::String(urn.to_string()));
                }
            }
            _ => {
                let core = self.rs.core().id.clone();
                put(
                    &mut self.doc,
                    "schemas",
                    Value::Array(vec![Value::String(core), Value::String(urn.to_string())]),
                );
            }
        }
    }

    // ----- attribute access ------------------------------------------------

    /// The object holding `attr` (the resource, or its extension object).
    pub(super) fn container(&self, attr: &AttrRef) -> Option<&Map<String, Value>> {
        match attr.location() {
            Location::TopLevel => Some(&self.doc),
            Location::Extension => get_ci(&self.doc, attr.schema_urn())?.1.as_object(),
        }
    }

    /// The object holding `attr`, created (for an extension) when missing.
    pub(super) fn container_mut(&mut self, attr: &AttrRef) -> Result<&mut Map<String, Value>> {
        if attr.location() == Location::TopLevel {
            return Ok(&mut self.doc);
        }
        let urn = attr.schema_urn();
        let key = key_ci(&self.doc, urn).unwrap_or_else(|| urn.to_string());
        object_slot(&mut self.doc, key)
    }

    /// The object value of the single-valued complex attribute `attr`,
    /// created when missing.
    fn complex_mut(&mut self, attr: &AttrRef) -> Result<&mut Map<String, Value>> {
        let name = attr.attribute().name.clone();
        let obj = self.container_mut(attr)?;
        rename_ci(obj, &name);
        object_slot(obj, name)
    }

    /// The current value of the top-level attribute `attr`.
    pub(super) fn get(&self, attr: &AttrRef) -> Option<&Value> {
        get_ci(self.container(attr)?, &attr.attribute().name).map(|(_, v)| v)
    }

    /// Mutable access to the current value of `attr`, under its canonical key.
    pub(super) fn get_mut(&mut self, attr: &AttrRef) -> Option<&mut Value> {
        self.container(attr)?;
        let name = &attr.attribute().name;
        let obj = self.container_mut(attr).ok()?;
        rename_ci(obj, name);
        obj.get_mut(name.as_str())
    }

    /// Sets the top-level attribute to a (normalised, non-null) value.
    pub(super) fn set_attr(&mut self, attr: &AttrRef, v: Value) -> Result<()> {
        let name = attr.attribute().name.clone();
        put(self.container_mut(attr)?, &name, v);
        Ok(())
    }

    /// Removes the top-level attribute; whether there was anything to remove.
    pub(super) fn remove_attr(&mut self, attr: &AttrRef) -> bool {
        let name = &attr.attribute().name;
        match attr.location() {
            Location::TopLevel => remove_all_ci(&mut self.doc, name).is_some(),
            Location::Extension => match get_ci_mut(&mut self.doc, attr.schema_urn()) {
                Some(Value::Object(obj)) => remove_all_ci(obj, name).is_some(),
                _ => false,
            },
        }
    }

    /// Runs `f`, which changes the top-level attribute `attr`, and enforces
    /// the attribute's mutability and `required` around it:
    /// - readOnly: the value after must be the same as before (so clients may
    ///   send back `id` or `meta` unchanged);
    /// - immutable: the same, once it had a value;
    /// - required: it must not end unassigned.
    pub(super) fn guarded(
        &mut self,
        attr: &AttrRef,
        f: impl FnOnce(&mut Self) -> Result<bool>,
    ) -> Result<()> {
        let def = attr.attribute();
        let mutability = effective_mutability(attr);
        let before = self.get(attr);
        let was_assigned = !value::is_unassigned(before);
        let snapshot = match mutability {
            Mutability::ReadOnly | Mutability::Immutable => before.cloned(),
            Mutability::ReadWrite | Mutability::WriteOnly => None,
        };
        if attr.is_extension() {
            self.touched.push(attr.schema_urn().to_string());
        }
        let wrote = f(self)?;
        let after = self.get(attr);
        let unchanged = || value::same(def, snapshot.as_ref(), after);
        match mutability {
            Mutability::ReadOnly if !unchanged() => {
                return Err(Error::mutability(format!(
                    "'{}' is readOnly; it cannot be changed",
                    attr.path()
                )));
            }
            Mutability::Immutable if was_assigned && !unchanged() => {
                return Err(Error::mutability(format!(
                    "'{}' is immutable and already has a value",
                    attr.path()
                )));
            }
            _ => {}
        }
        if def.required && was_assigned && value::is_unassigned(after) {
            return Err(Error::mutability(format!(
                "'{}' is required; it cannot be removed",
                attr.path()
            )));
        }
        if wrote && self.container(attr).is_some() {
            rename_ci(self.container_mut(attr)?, &def.name);
        }
        Ok(())
    }

    // ----- whole attributes -------------------------------------------------

    /// Add or replace the whole attribute `attr` with `value`.
    fn write_attr(&mut self, kind: PatchOpKind, attr: &AttrRef, value: &Value) -> Result<()> {
        let def = attr.attribute();
        let name = attr.path();
        let writable = effective_mutability(attr) != Mutability::ReadOnly;
        self.guarded(attr, |e| {
            if value.is_null() {
                // RFC 7643 section 2.5: assigning null unassigns.
                return Ok(e.remove_attr(attr));
            }
            if def.multi_valued {
                let drop = Drop {
                    read_only: writable,
                    refs: writable,
                };
                let elements = value::elements(def, value, &name, drop)?;
                match kind {
                    PatchOpKind::Replace => e.replace_list(attr, elements),
                    _ => e.append(attr, elements),
                }
            } else if def.is_complex() {
                let drop = Drop {
                    read_only: writable,
                    refs: false,
                };
                let patch = value::complex_object(def, value, &name, drop)?;
                e.merge_complex(attr, patch)
            } else {
                let v = value::simple_value(def, value, &name)?;
                if unchanged(def, effective_mutability(attr), e.get(attr), &v) {
                    return Ok(false);
                }
                e.set_attr(attr, v)?;
                Ok(true)
            }
        })
    }

    /// Merges sub-attributes into a single-valued complex attribute: add and
    /// replace both set the given sub-attributes and leave the others (RFC
    /// 7644 section 3.5.2.3); a null sub-attribute is unassigned.
    fn merge_complex(&mut self, attr: &AttrRef, patch: Map<String, Value>) -> Result<bool> {
        let def = attr.attribute();
        let current = self.get(attr).and_then(Value::as_object);
        let changes = merge_plan(def, &attr.path(), current, patch, false)?;
        if changes.is_empty() {
            return Ok(false);
        }
        apply_plan(self.complex_mut(attr)?, changes);
        if value::is_unassigned(self.get(attr)) {
            self.remove_attr(attr);
        }
        Ok(true)
    }

    /// Add or replace `attr.sub` of a single-valued complex attribute.
    fn write_sub(
        &mut self,
        kind: PatchOpKind,
        attr: &AttrRef,
        sub: &AttrRef,
        value: &Value,
    ) -> Result<bool> {
        let sdef = sub.target();
        let v = value::simple_value(sdef, value, &sub.path())?;
        let current = self.get(attr).and_then(Value::as_object);
        let cur = current.and_then(|o| get_ci(o, &sdef.name)).map(|(_, v)| v);
        let new = if v.is_null() {
            None
        } else if kind == PatchOpKind::Add && sdef.multi_valued {
            Some(union(sdef, cur, v))
        } else {
            Some(v)
        };
        let Some(change) = sub_change(sdef, &sub.path(), cur, new, true)? else {
            return Ok(false);
        };
        apply_plan(self.complex_mut(attr)?, vec![(sdef.name.clone(), change)]);
        if value::is_unassigned(self.get(attr)) {
            self.remove_attr(attr);
        }
        Ok(true)
    }

    /// Remove `attr.sub` of a single-valued complex attribute.
    fn remove_sub(&mut self, attr: &AttrRef, sub: &AttrRef) -> Result<bool> {
        self.write_sub(PatchOpKind::Replace, attr, sub, &Value::Null)
    }
}

/// The mutability the engine enforces: the schema's, except that
/// `schemas` is maintained by the engine and read-only to clients.
pub(super) fn effective_mutability(attr: &AttrRef) -> Mutability {
    let def = attr.attribute();
    if attr.schema_urn() == COMMON_SCHEMA && def.name == "schemas" {
        Mutability::ReadOnly
    } else {
        def.mutability
    }
}

fn require_multi(attr: &AttrRef) -> Result<()> {
    if attr.attribute().multi_valued {
        Ok(())
    } else {
        Err(Error::invalid_path(format!(
            "'{}' is single-valued; a '[...]' filter selects elements of a multi-valued attribute",
            attr.path()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::ErrorKind;
    use crate::patch::{PatchOperation, apply};
    use crate::schema::{ResourceSchema, SchemaRegistry};

    const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

    /// Users with a required extension holding an immutable badge and
    /// numeric and dateTime attributes.
    fn acme_users() -> Arc<ResourceSchema> {
        let mut r = SchemaRegistry::core();
        let id = r
            .add_schema_json(&format!(
                r#"{{"id":"{ACME}","name":"Acme","attributes":[
                  {{"name":"badge","type":"string","mutability":"immutable"}},
                  {{"name":"level","type":"integer"}},
                  {{"name":"score","type":"decimal"}},
                  {{"name":"hired","type":"dateTime"}},
                  {{"name":"tags","type":"string","multiValued":true}}]}}"#
            ))
            .unwrap();
        r.add_extension("User", &id, true).unwrap();
        r.resource_schema("User").unwrap()
    }

    fn doc() -> serde_json::Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ACME],
            "userName": "bjensen",
            ACME: {"level": 3}
        })
    }

    fn kind(ops: &[PatchOperation]) -> ErrorKind {
        apply(&doc(), ops, &acme_users()).unwrap_err().kind()
    }

    #[test]
    fn immutable_can_be_set_once() {
        let rs = acme_users();
        let set = [PatchOperation::add(Some("badge"), json!("B-1"))];
        let once = apply(&doc(), &set, &rs).unwrap();
        assert_eq!(once.resource[ACME]["badge"], "B-1");
        // Setting the same value again changes nothing and is allowed.
        let again = apply(&once.resource, &set, &rs).unwrap();
        assert!(!again.changed);
        let change = [PatchOperation::replace(Some("badge"), json!("B-2"))];
        let e = apply(&once.resource, &change, &rs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Mutability);
        let remove = [PatchOperation::remove("badge")];
        assert_eq!(
            apply(&once.resource, &remove, &rs).unwrap_err().kind(),
            ErrorKind::Mutability
        );
    }

    #[test]
    fn numbers_and_datetimes_are_typed() {
        let rs = acme_users();
        let ok = [
            PatchOperation::replace(Some("level"), json!(4)),
            PatchOperation::replace(Some("score"), json!(4.5)),
            PatchOperation::replace(Some("hired"), json!("2011-05-13T04:42:34Z")),
            PatchOperation::add(Some("tags"), json!("a")),
            PatchOperation::add(Some("tags"), json!(["A", "b"])),
        ];
        let out = apply(&doc(), &ok, &rs).unwrap();
        assert_eq!(
            out.resource[ACME],
            json!({"level": 4, "score": 4.5, "hired": "2011-05-13T04:42:34Z", "tags": ["a", "b"]})
        );
        for bad in [
            PatchOperation::replace(Some("level"), json!(4.5)),
            PatchOperation::replace(Some("level"), json!("4")),
            PatchOperation::replace(Some("score"), json!("4.5")),
            PatchOperation::replace(Some("hired"), json!("13 May 2011")),
            PatchOperation::add(Some("tags"), json!([["nested"]])),
        ] {
            assert_eq!(
                kind(std::slice::from_ref(&bad)),
                ErrorKind::InvalidValue,
                "{bad:?}"
            );
        }
        // The same number again changes nothing.
        let same = apply(
            &doc(),
            &[PatchOperation::replace(Some("level"), json!(3))],
            &rs,
        )
        .unwrap();
        assert!(!same.changed);
    }

    #[test]
    fn a_required_extension_stays() {
        let rs = acme_users();
        let e = apply(&doc(), &[PatchOperation::remove(ACME)], &rs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Mutability);
        // Its last attribute can go; the URN stays in schemas.
        let out = apply(&doc(), &[PatchOperation::remove("level")], &rs).unwrap();
        assert_eq!(
            out.resource,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ACME], "userName": "bjensen"})
        );
    }

    #[test]
    fn errors_name_the_operation_and_leave_the_input() {
        let rs = acme_users();
        let input = doc();
        let ops = [
            PatchOperation::replace(Some("level"), json!(5)),
            PatchOperation::add(Some("nickName"), json!("Babs")),
            PatchOperation::replace(Some("userName"), json!(null)),
        ];
        let e = apply(&input, &ops, &rs).unwrap_err();
        assert_eq!(e.operation(), Some(2));
        assert_eq!(input, doc());
        let wire = e.into_error();
        assert!(wire.detail().starts_with("Operations[2]: "), "{wire}");
        let e = apply(&json!([1]), &ops, &rs).unwrap_err();
        assert_eq!((e.kind(), e.operation()), (ErrorKind::InvalidValue, None));
    }
}
